//! The bounded load test: `senders` concurrent log-metrics instances (one
//! per Lambda container) each deliver `batches` subscription batches of
//! `events` log events to the real handler, against the local stack (moto's
//! DynamoDB and SNS), in a table and topic of their own. Every
//! `page_every`-th batch of a sender carries five failed logins from an
//! address of its own, which fires `auth_failures_by_ip`; a queue
//! subscribed to the topic sees the incident message. Reported: events/s,
//! batch latency p50/p99, DynamoDB requests and rejected requests
//! (cancelled transactions, failed conditions) per batch, items read and
//! written per batch, and the time to page (from the delivery of the batch
//! that crosses the threshold to the message on the queue) p50/p99.
//!
//! DynamoDB requests are counted by an SDK interceptor on the client every
//! adapter uses, so the counts are what would be billed: each request's
//! operation (`X-Amz-Target`), the items it names, and its answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use log_metrics::{LogMetrics, SeriesGuard};
use monitoring_adapters::aws::SdkConfig;
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_silences::DynamoSilenceStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::retry::TokioTimer;
use monitoring_adapters::sns_publisher::SnsPublisher;
use monitoring_core::domain::alerts::{AlertEngine, AlertRules, EngineSettings};
use monitoring_core::domain::logs::decode::SubscriptionBatch;
use monitoring_core::domain::logs::record::LogEvent;
use monitoring_core::domain::logs::redact::{PseudonymKind, Redactor};
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::rules::RuleSet;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// The rule the crossing batches fire (five failed logins from one address).
pub const PAGED_RULE: &str = "auth_failures_by_ip";
const KEY: &[u8] = b"load-test-redaction-key-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoadOptions {
    pub senders: usize,
    pub batches: usize,
    pub events: usize,
    /// Every n-th batch of a sender crosses a threshold (0: none).
    pub page_every: usize,
}

impl Default for LoadOptions {
    /// Small enough for a shared 2-core machine; the issue's full size is
    /// `--senders 8 --batches 200 --events 500`.
    fn default() -> Self {
        LoadOptions {
            senders: 8,
            batches: 20,
            events: 100,
            page_every: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("local stack: {0}")]
    Stack(String),
    #[error("batch failed: {0}")]
    Batch(String),
    #[error("alert rules: {0}")]
    Rules(String),
}

/// DynamoDB requests seen by the interceptor.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    /// 400 answers: cancelled transactions, failed conditions, throttles.
    rejected: AtomicU64,
    items_written: AtomicU64,
    items_written_transactionally: AtomicU64,
    items_read: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug)]
struct Counting(Arc<Counters>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "LoadTestRequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let c = &self.0;
        c.requests.fetch_add(1, Ordering::Relaxed);
        let request = context.request();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let (written, transactional, read) = items_named(&op, &body);
        c.items_written.fetch_add(written, Ordering::Relaxed);
        c.items_written_transactionally
            .fetch_add(transactional, Ordering::Relaxed);
        c.items_read.fetch_add(read, Ordering::Relaxed);
        if let Ok(mut ops) = c.by_operation.lock() {
            *ops.entry(op).or_default() += 1;
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().status().as_u16() == 400 {
            self.0.rejected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Items a request writes, writes in a transaction, and reads.
fn items_named(op: &str, body: &Value) -> (u64, u64, u64) {
    let len = |v: &Value| v.as_array().map_or(0, |a| a.len() as u64);
    let sum_tables = |key: &str| -> u64 {
        body.get("RequestItems")
            .and_then(Value::as_object)
            .map_or(0, |tables| {
                tables
                    .values()
                    .map(|t| {
                        if key.is_empty() {
                            len(t)
                        } else {
                            t.get(key).map_or(0, len)
                        }
                    })
                    .sum()
            })
    };
    match op {
        "PutItem" | "UpdateItem" | "DeleteItem" => (1, 0, 0),
        "TransactWriteItems" => {
            let n = body.get("TransactItems").map_or(0, len);
            (n, n, 0)
        }
        "BatchWriteItem" => (sum_tables(""), 0, 0),
        "GetItem" | "Query" => (0, 0, 1),
        "BatchGetItem" => (0, 0, sum_tables("Keys")),
        _ => (0, 0, 0),
    }
}

/// A DynamoDB client of `sdk` whose requests `counters` sees.
pub fn counting_client(sdk: &SdkConfig, counters: Arc<Counters>) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(Counting(counters))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub options: LoadOptions,
    pub batches: usize,
    pub events: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    pub batch_latency_ms_p50: f64,
    pub batch_latency_ms_p99: f64,
    pub dynamodb_requests: u64,
    pub dynamodb_requests_per_batch: f64,
    pub dynamodb_rejected_per_batch: f64,
    pub items_written_per_batch: f64,
    pub items_written_transactionally_per_batch: f64,
    pub items_read_per_batch: f64,
    pub requests_by_operation: BTreeMap<String, u64>,
    pub pages_expected: usize,
    pub pages_seen: usize,
    pub time_to_page_ms_p50: Option<f64>,
    pub time_to_page_ms_p99: Option<f64>,
}

/// The `p`-quantile (nearest rank) of sorted values, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1].as_secs_f64() * 1000.0)
}

/// One log line of the auth service.
fn login(at: OffsetDateTime, user: &str, ip: &str, success: bool) -> String {
    let ts = monitoring_core::domain::timefmt::rfc3339_millis(at);
    let level = if success { "INFO" } else { "WARNING" };
    format!(
        r#"{{"timestamp":"{ts}","level":"{level}","logger":"security","message":"Authentication attempt","user_id":"{user}","ip_address":"{ip}","success":{success},"method":"password","endpoint":"/api/auth/login","duration_ms":41.7}}"#
    )
}

/// A subscription batch as CloudWatch Logs delivers it.
fn payload(stream: &str, lines: &[String], at: OffsetDateTime) -> Result<Value, LoadError> {
    let ms = at.unix_timestamp() * 1000;
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, m)| LogEvent {
            id: format!("{stream}-{i:08}"),
            timestamp_ms: ms,
            message: m.clone(),
        })
        .collect();
    SubscriptionBatch::data(stream, events)
        .to_lambda_event()
        .map_err(|e| LoadError::Batch(e.to_string()))
}

async fn create_table(sdk: &SdkConfig, name: &str) -> Result<(), LoadError> {
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| LoadError::Stack(e.to_string()))
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| LoadError::Stack(e.to_string()))
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| LoadError::Stack(monitoring_adapters::aws::describe_sdk_error(&e)))?;
    Ok(())
}

/// A topic with a raw-delivery queue: `(topic ARN, queue URL)`.
async fn topic_with_queue(sdk: &SdkConfig, name: &str) -> Result<(String, String), LoadError> {
    let stack = |e: String| LoadError::Stack(e);
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| stack(e.to_string()))?
        .topic_arn
        .ok_or_else(|| stack("no topic ARN".into()))?;
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| stack(e.to_string()))?
        .queue_url
        .ok_or_else(|| stack("no queue URL".into()))?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| stack(e.to_string()))?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or_else(|| stack("no queue ARN".into()))?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(|e| stack(e.to_string()))?;
    Ok((topic, queue))
}

type App = LogMetrics<
    DynamoSeriesStore,
    DynamoStore,
    AlertEngine<DynamoAlertStore, SnsPublisher, DynamoSilenceStore, DynamoStore>,
>;

/// One container's log-metrics, wired as `log_metrics::deployed` wires it
/// but over the counting client (rules: the embedded defaults).
fn app(
    sdk: &SdkConfig,
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    topic: &str,
    alert_rules: Arc<AlertRules>,
) -> Result<App, LoadError> {
    Ok(LogMetrics {
        rules: RuleSet::default_rules().map_err(|e| LoadError::Rules(e.to_string()))?,
        redactor: Redactor::new(KEY).map_err(|e| LoadError::Rules(e.to_string()))?,
        guard: SeriesGuard::new(CardinalityGuard::default()),
        store: DynamoSeriesStore::from_client(client.clone(), table, Duration::from_secs(86_400)),
        heartbeats: DynamoStore::from_client(client.clone(), table),
        alerts: AlertEngine::new(
            alert_rules,
            DynamoAlertStore::from_client(client.clone(), table),
            SnsPublisher::new(sdk, topic),
            DynamoSilenceStore::from_client(client.clone(), table),
            DynamoStore::from_client(client.clone(), table),
            EngineSettings::default(),
            Arc::new(TokioTimer),
        ),
        namespace: "LoadTest".into(),
        parse: Default::default(),
        max_decompressed_bytes: 32 << 20,
    })
}

/// Runs the load test; `run_id` names the table, topic and queue.
pub async fn run(
    sdk: &SdkConfig,
    options: LoadOptions,
    run_id: &str,
) -> Result<LoadReport, LoadError> {
    let table = format!("load-{run_id}");
    create_table(sdk, &table).await?;
    let (topic, queue) = topic_with_queue(sdk, &format!("load-{run_id}")).await?;
    let counters = Arc::new(Counters::default());
    let client = counting_client(sdk, counters.clone());
    let alert_rules =
        Arc::new(AlertRules::default_rules().map_err(|e| LoadError::Rules(e.to_string()))?);
    let redactor = Redactor::new(KEY).map_err(|e| LoadError::Rules(e.to_string()))?;

    // Incident key (the pseudonymized address) -> when its batch was
    // delivered; the poller takes the entry when the message arrives.
    let delivered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let pages: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_pages(
        aws_sdk_sqs::Client::new(sdk),
        queue.clone(),
        delivered.clone(),
        pages.clone(),
        done.clone(),
    ));

    let started = Instant::now();
    let mut senders = Vec::new();
    let mut pages_expected = 0;
    for s in 0..options.senders {
        let app = app(sdk, &client, &table, &topic, alert_rules.clone())?;
        let mut plan = Vec::with_capacity(options.batches);
        for b in 0..options.batches {
            let crossing =
                options.page_every > 0 && b % options.page_every == options.page_every - 1;
            let ip = format!("10.{}.{}.{}", s % 250, b / 250, b % 250);
            if crossing {
                pages_expected += 1;
            }
            plan.push((
                b,
                crossing.then(|| (ip.clone(), redactor.pseudonym(PseudonymKind::Ip, &ip))),
            ));
        }
        let events = options.events;
        let delivered = delivered.clone();
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(plan.len());
            for (b, crossing) in plan {
                let now = OffsetDateTime::now_utc();
                let mut lines: Vec<String> = (0..events)
                    .map(|i| login(now, &format!("u{s}-{b}-{i}"), "192.0.2.10", true))
                    .collect();
                if let Some((ip, _)) = &crossing {
                    for (i, line) in lines.iter_mut().take(5).enumerate() {
                        *line = login(now, &format!("victim{s}-{b}-{i}"), ip, false);
                    }
                }
                let p = payload(&format!("sender{s}-batch{b}"), &lines, now)?;
                let t = Instant::now();
                if let Some((_, key)) = &crossing
                    && let Ok(mut d) = delivered.lock()
                {
                    d.insert(key.clone(), t);
                }
                app.handle(&p, now, &mut std::io::sink())
                    .await
                    .map_err(|e| LoadError::Batch(e.to_string()))?;
                latencies.push(t.elapsed());
            }
            Ok::<_, LoadError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for s in senders {
        latencies.extend(s.await.map_err(|e| LoadError::Batch(e.to_string()))??);
    }
    let seconds = started.elapsed().as_secs_f64();
    // The last pages may still be on their way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && pages.lock().map(|p| p.len()).unwrap_or(0) < pages_expected {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::SeqCst);
    let _ = poller.await;

    latencies.sort();
    let mut pages = pages.lock().map(|p| p.clone()).unwrap_or_default();
    pages.sort();
    let batches = latencies.len();
    let per_batch = |n: u64| n as f64 / batches.max(1) as f64;
    let requests = counters.requests.load(Ordering::Relaxed);
    Ok(LoadReport {
        options,
        batches,
        events: batches * options.events,
        seconds,
        events_per_second: (batches * options.events) as f64 / seconds,
        batch_latency_ms_p50: quantile_ms(&latencies, 0.50).unwrap_or(0.0),
        batch_latency_ms_p99: quantile_ms(&latencies, 0.99).unwrap_or(0.0),
        dynamodb_requests: requests,
        dynamodb_requests_per_batch: per_batch(requests),
        dynamodb_rejected_per_batch: per_batch(counters.rejected.load(Ordering::Relaxed)),
        items_written_per_batch: per_batch(counters.items_written.load(Ordering::Relaxed)),
        items_written_transactionally_per_batch: per_batch(
            counters
                .items_written_transactionally
                .load(Ordering::Relaxed),
        ),
        items_read_per_batch: per_batch(counters.items_read.load(Ordering::Relaxed)),
        requests_by_operation: counters
            .by_operation
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default(),
        pages_expected,
        pages_seen: pages.len(),
        time_to_page_ms_p50: quantile_ms(&pages, 0.50),
        time_to_page_ms_p99: quantile_ms(&pages, 0.99),
    })
}

/// Reads the topic's queue until `done`, timing each firing of
/// [`PAGED_RULE`] against its batch's delivery.
async fn poll_pages(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    delivered: Arc<Mutex<HashMap<String, Instant>>>,
    pages: Arc<Mutex<Vec<Duration>>>,
    done: Arc<AtomicBool>,
) {
    while !done.load(Ordering::SeqCst) {
        let out = match sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(error = %e, "load test: queue not read");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let arrived = Instant::now();
        for m in out.messages.unwrap_or_default() {
            let incident: Value =
                serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
            if incident["rule"] == PAGED_RULE && incident["status"] == "firing" {
                let key = incident["key"].as_str().unwrap_or_default();
                let sent = delivered.lock().ok().and_then(|mut d| d.remove(key));
                if let (Some(sent), Ok(mut p)) = (sent, pages.lock()) {
                    p.push(arrived.duration_since(sent));
                }
            }
            if let Some(receipt) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue)
                    .receipt_handle(receipt)
                    .send()
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&v, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&v, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&v[..1], 0.99), Some(1.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }

    #[test]
    fn items_are_counted_from_the_request() {
        let tx = json!({"TransactItems": [{}, {}, {}]});
        assert_eq!(items_named("TransactWriteItems", &tx), (3, 3, 0));
        let bw = json!({"RequestItems": {"t": [{}, {}]}});
        assert_eq!(items_named("BatchWriteItem", &bw), (2, 0, 0));
        let bg = json!({"RequestItems": {"t": {"Keys": [{}, {}, {}, {}]}}});
        assert_eq!(items_named("BatchGetItem", &bg), (0, 0, 4));
        assert_eq!(items_named("Query", &Value::Null), (0, 0, 1));
    }
}
