//! `ops redrive` against the local stack: a log-metrics failure queue and
//! an incident-notifier failure queue, each holding Lambda invocation
//! records, some of whose events were already applied (and one record
//! twice). The dry run applies and deletes nothing; the redrive applies
//! each event exactly once through the functions' own handlers (built by
//! their `deployed` wiring from the environment), deletes what it applied
//! and leaves the queues empty; a second redrive finds nothing.

use std::sync::Mutex;

use crate::bundle::env;
use monitoring_adapters::dynamodb_series::{DynamoSeriesStore, StoredValue};
use monitoring_core::domain::logs::decode::SubscriptionBatch;
use monitoring_core::domain::logs::record::LogEvent;
use ops::redrive::{LogMetricsHandler, NotifierHandler, Options, redrive_queue};
use serde_json::{Value, json};
use test_support::receiver::{Receiver, incident, sns_event_from};
use test_support::sns::{drain, topic_with_queue};
use test_support::stack::{create_table, sdk, unique};
use time::OffsetDateTime;

const SIGNING_KEY: &str = "redrive-test-signing-key-0123456789";

fn login(i: usize, ip: &str, success: bool) -> String {
    format!(
        r#"{{"timestamp":"2026-12-06T10:00:0{}.000Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"u{i}","ip_address":"{ip}","success":{success},"method":"password","endpoint":"/api/auth/login"}}"#,
        i % 10
    )
}

/// A subscription batch of these log lines, from log stream `stream`.
fn batch(stream: &str, lines: &[String]) -> Value {
    let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, m)| LogEvent {
            id: format!("{stream}-{i:040}"),
            timestamp_ms: now_ms + i as i64,
            message: m.clone(),
        })
        .collect();
    SubscriptionBatch::data(stream, events)
        .to_lambda_event()
        .unwrap()
}

/// What Lambda puts on an on-failure destination after the retries.
fn invocation_record(payload: &Value) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-12-06T10:00:10.000Z",
        "requestContext": {
            "requestId": unique("req"),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:blindspotx-log-metrics:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "store unavailable: dispatch failure", "errorType": "HandlerError"}
    })
    .to_string()
}

async fn queue(sdk: &aws_config::SdkConfig, bodies: &[String]) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(unique("failures"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in bodies {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    url
}

async fn visible(sdk: &aws_config::SdkConfig, url: &str) -> usize {
    let out = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap();
    let get = |n: aws_sdk_sqs::types::QueueAttributeName| -> usize {
        attrs.get(&n).map_or(0, |v| v.parse().unwrap())
    };
    get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        + get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// Failed and successful logins stored, by `status` label.
async fn logins(store: &DynamoSeriesStore) -> (f64, f64) {
    let mut by_status = (0.0, 0.0);
    for s in store.read_metric("auth_requests_total").await.unwrap() {
        let StoredValue::Counter(v) = s.value else {
            continue;
        };
        match s.key.to_string() {
            k if k.contains("status=\"failure\"") => by_status.0 += v,
            k if k.contains("status=\"success\"") => by_status.1 += v,
            _ => {}
        }
    }
    by_status
}

#[tokio::test]
async fn redrive_applies_each_failed_batch_and_notice_once_and_empties_the_queues() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, topic_queue) = topic_with_queue(&sdk, false, None).await;
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let env = env(&[
        ("TABLE_NAME", table.as_str()),
        ("REDACTION_KEY", "redrive-test-redaction-key-0123456789"),
        ("INCIDENTS_TOPIC_ARN", topic.as_str()),
        ("WEBHOOK_URL", hook.as_str()),
        ("WEBHOOK_SIGNING_KEY", SIGNING_KEY),
        ("SLACK_WEBHOOK_URL", ""),
        ("PAGERDUTY_ROUTING_KEY", ""),
        // The local stack exports these; this test counts webhook deliveries.
        ("TEAMS_WEBHOOK_URL", ""),
        ("ALERTMANAGER_URL", ""),
    ]);
    // The handlers as the functions build them.
    let app = log_metrics::deployed::deployed(&env, &sdk).await.unwrap();
    let notifier = incident_notifier::deployed::deployed(&env, &sdk)
        .await
        .unwrap();

    // Batch A: 3 failed and 4 successful logins, already applied before it
    // failed (its failure came later, e.g. a timeout after the commit).
    // Batch B: 5 failed logins from one address (fires
    // auth_failures_by_ip) and 2 successful ones, never applied.
    let a: Vec<String> = (0..7).map(|i| login(i, "198.51.100.1", i >= 3)).collect();
    let b: Vec<String> = (0..7).map(|i| login(i, "203.0.113.9", i >= 5)).collect();
    let (a, b) = (batch("app-a", &a), batch("app-b", &b));
    app.handle(&a, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();
    let series = DynamoSeriesStore::new(&sdk, &table, std::time::Duration::from_secs(3600));
    assert_eq!(logins(&series).await, (3.0, 4.0));
    // A twice: Lambda's retries can leave two records of one batch.
    let log_queue = queue(
        &sdk,
        &[
            invocation_record(&a),
            invocation_record(&b),
            invocation_record(&a),
        ],
    )
    .await;

    // Notice X was delivered before its invocation failed; Y never was.
    let x = incident("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let y = incident("0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let event = |i: &monitoring_core::domain::alerts::Incident| {
        let m = i.to_message();
        serde_json::to_value(sns_event_from(&topic, &[(m.body, m.attributes)])).unwrap()
    };
    let delivered_before = notifier
        .handle(&serde_json::from_value(event(&x)).unwrap())
        .await
        .unwrap();
    assert_eq!(delivered_before.delivered, 1, "{delivered_before:?}");
    let notice_queue = queue(
        &sdk,
        &[invocation_record(&event(&x)), invocation_record(&event(&y))],
    )
    .await;

    let emf = Mutex::new(Vec::new());
    let logs = LogMetricsHandler {
        app: &app,
        emf: &emf,
    };
    let notices = NotifierHandler {
        notifier: &notifier,
    };

    // The dry run: everything reported, nothing applied or deleted.
    let dry = Options {
        dry_run: true,
        ..Options::default()
    };
    let r = redrive_queue(&aws_sdk_sqs::Client::new(&sdk), &log_queue, &logs, &dry)
        .await
        .unwrap();
    assert_eq!((r.received, r.would_apply, r.applied), (3, 3, 0), "{r:?}");
    let r = redrive_queue(
        &aws_sdk_sqs::Client::new(&sdk),
        &notice_queue,
        &notices,
        &dry,
    )
    .await
    .unwrap();
    assert_eq!((r.received, r.would_apply, r.applied), (2, 2, 0), "{r:?}");
    assert_eq!(logins(&series).await, (3.0, 4.0));
    assert_eq!(receiver.accepted("/hook").len(), 1);
    assert_eq!(visible(&sdk, &log_queue).await, 3);
    assert_eq!(visible(&sdk, &notice_queue).await, 2);

    // The redrive.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let r = redrive_queue(&sqs, &log_queue, &logs, &Options::default())
        .await
        .unwrap();
    assert_eq!(
        (r.received, r.applied, r.failed, r.unreadable),
        (3, 3, 0, 0),
        "{r:?}"
    );
    let r = redrive_queue(&sqs, &notice_queue, &notices, &Options::default())
        .await
        .unwrap();
    assert_eq!((r.received, r.applied, r.failed), (2, 2, 0), "{r:?}");

    // Exactly once: A counted once (not three times), B once.
    assert_eq!(logins(&series).await, (8.0, 6.0));
    // B's incident published once; A fired nothing.
    let paged = drain(&sdk, &topic_queue).await;
    let firing: Vec<Value> = paged
        .iter()
        .map(|(body, _)| serde_json::from_str::<Value>(body).unwrap())
        .filter(|i| i["rule"] == "auth_failures_by_ip")
        .collect();
    assert_eq!(firing.len(), 1, "{paged:?}");
    // The redriven batch's metrics, for the first time only: B's EMF.
    let emf_text = String::from_utf8(emf.lock().unwrap().clone()).unwrap();
    assert!(emf_text.contains("auth_requests_total"), "{emf_text}");
    // X not notified again, Y notified once.
    let hooks = receiver.accepted("/hook");
    let ids: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(hooks.len(), 2, "{ids:?}");
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("a1b2")).count(),
        1,
        "{ids:?}"
    );
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("0f1e")).count(),
        1,
        "{ids:?}"
    );

    // Empty queues; a second redrive finds nothing and changes nothing.
    assert_eq!(visible(&sdk, &log_queue).await, 0);
    assert_eq!(visible(&sdk, &notice_queue).await, 0);
    let again = redrive_queue(&sqs, &log_queue, &logs, &Options::default())
        .await
        .unwrap();
    assert_eq!(again.received, 0);
    assert_eq!(logins(&series).await, (8.0, 6.0));
}

#[tokio::test]
async fn a_message_the_handler_cannot_apply_stays_in_the_queue() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, _) = topic_with_queue(&sdk, false, None).await;
    let env = env(&[
        ("TABLE_NAME", table.as_str()),
        ("INCIDENTS_TOPIC_ARN", topic.as_str()),
        ("WEBHOOK_URL", "http://127.0.0.1:9/hook"),
        ("WEBHOOK_SIGNING_KEY", SIGNING_KEY),
        ("SLACK_WEBHOOK_URL", ""),
        ("PAGERDUTY_ROUTING_KEY", ""),
        // The local stack exports these; this test counts webhook deliveries.
        ("TEAMS_WEBHOOK_URL", ""),
        ("ALERTMANAGER_URL", ""),
        ("DELIVERY_ATTEMPTS", "1"),
    ]);
    let notifier = incident_notifier::deployed::deployed(&env, &sdk)
        .await
        .unwrap();
    let x = incident("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let m = x.to_message();
    let event = serde_json::to_value(sns_event_from(&topic, &[(m.body, m.attributes)])).unwrap();
    // The webhook is down (nothing listens on port 9), and one message is
    // not JSON: both stay, reported, visible again for the next redrive.
    let url = queue(&sdk, &[invocation_record(&event), "not json".into()]).await;
    let r = redrive_queue(
        &aws_sdk_sqs::Client::new(&sdk),
        &url,
        &NotifierHandler {
            notifier: &notifier,
        },
        &Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.received, r.applied, r.failed, r.unreadable),
        (2, 0, 1, 1),
        "{r:?}"
    );
    assert_eq!(visible(&sdk, &url).await, 2);
}
