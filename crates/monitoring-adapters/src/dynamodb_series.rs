//! Cumulative Prometheus series in the monitoring table, updated once per
//! batch chunk per touched series. Redelivered batches change nothing: each
//! chunk's transaction also writes an idempotency marker, conditionally,
//! and is refused whole when the marker exists.
//!
//! Counters and histograms are write-sharded: a chunk adds to one of
//! [`SERIES_SHARDS`] items per series, picked from the batch id and chunk,
//! so concurrent invocations that touch the same busy series (every batch
//! adds to `log_events_total`) mostly write different items instead of
//! conflicting on one. [`DynamoSeriesStore::read_metric`] sums the shards.
//! Gauges are not sharded: a set must land on the one item it replaces.
//!
//! Items:
//! - `SERIES#<metric>` / `<labels as a JSON array of pairs>`: shard 0 (and
//!   every gauge): `kind`, and `v` (counter, gauge) or `c`, `s`,
//!   `b0`..`b14` (histogram count, sum and per-bucket, non-cumulative
//!   counts);
//! - `SERIES#<metric>` / `S#<n>#<labels>`: shard `n` (1..[`SERIES_SHARDS`])
//!   of a counter or histogram, the same attributes;
//! - `BATCH#<batch id>` / `DONE#<chunk>`: the marker, expiring through `ttl`.

use super::key_layout::Family;
use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update as DynamoUpdate};
use time::OffsetDateTime;

use super::aws::describe_sdk_error;
use super::dynamodb_pages::query_items;
use monitoring_core::domain::metrics::aggregate::{BatchMetrics, SeriesDelta};
// Domain types, re-exported here for existing users of this module.
use crate::retry::{Backoff, TokioTimer};
use monitoring_core::domain::metrics::series::{BUCKETS, SeriesKey};
pub use monitoring_core::domain::metrics::series::{StoredSeries, StoredValue};
use monitoring_core::domain::pipeline::SERIES_PER_CHUNK;
use monitoring_core::ports::{ChunkOutcome, SeriesSource, SeriesStore, StoreError};

/// Items a counter or histogram series is spread over. Each takes about
/// 1/8 of the series' writes: DynamoDB serves about 1,000 writes/s per
/// item's partition, and a transaction conflicts only with another on the
/// same item, so 8 shards hold 8x the batch rate of one item (see
/// docs/reliability.md). Changing it is safe: reads sum whatever shards
/// exist.
pub const SERIES_SHARDS: u64 = 8;
/// Sort key prefix of shards 1.. (shard 0 keeps the bare labels).
const SHARD_PREFIX: &str = "S#";

/// One metric's pages, at most (1 MB each): the cardinality guard keeps a
/// metric to hundreds of series, far below one page.
const SERIES_MAX_PAGES: usize = 1_000;

#[derive(Debug, Clone)]
pub struct DynamoSeriesStore {
    client: Client,
    table: String,
    marker_ttl: Duration,
}

impl DynamoSeriesStore {
    /// `marker_ttl` must exceed how long Lambda may redeliver a batch (hours).
    pub fn new(sdk: &SdkConfig, table: impl Into<String>, marker_ttl: Duration) -> Self {
        Self::from_client(Client::new(sdk), table, marker_ttl)
    }

    /// With a client built elsewhere (the load test's counting one).
    pub fn from_client(client: Client, table: impl Into<String>, marker_ttl: Duration) -> Self {
        DynamoSeriesStore {
            client,
            table: table.into(),
            marker_ttl,
        }
    }

    /// Every stored series of one metric, its shards summed.
    pub async fn read_metric(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        let pk = Family::Series.key(name);
        let mut out: std::collections::BTreeMap<SeriesKey, StoredValue> = Default::default();
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()));
        for item in &query_items(query, SERIES_MAX_PAGES, &pk, || {}).await? {
            let series = decode_series(name, &pk, item)?;
            match out.get_mut(&series.key) {
                Some(sum) => add_shard(sum, series.value),
                None => {
                    out.insert(series.key, series.value);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(key, value)| StoredSeries { key, value })
            .collect())
    }

    fn marker(
        &self,
        batch_id: &str,
        chunk: usize,
        expires: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Family::BatchMarker.key(batch_id)))
            .item("sk", AttributeValue::S(format!("DONE#{chunk}")))
            .item("ttl", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn update(
        &self,
        key: &SeriesKey,
        delta: &SeriesDelta,
        shard: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let labels = serde_json::to_string(key.labels()).map_err(|e| StoreError::Malformed {
            pk: Family::Series.key(key.name()),
            sk: key.compact(),
            reason: e.to_string(),
        })?;
        let (sk, long_labels) = series_sort_key(labels);
        let sk = match delta {
            SeriesDelta::Counter(_) | SeriesDelta::Histogram(_) if shard > 0 => {
                format!("{SHARD_PREFIX}{shard}#{sk}")
            }
            _ => sk,
        };
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        values.insert(
            ":kind".into(),
            AttributeValue::S(delta.kind().as_str().into()),
        );
        // Attribute names go through placeholders: several short names are
        // DynamoDB reserved words.
        let mut names: HashMap<String, String> = HashMap::from([("#kind".into(), "kind".into())]);
        let mut set = vec!["#kind = if_not_exists(#kind, :kind)".to_owned()];
        if let Some(labels) = long_labels {
            names.insert("#labels".into(), LABELS_ATTRIBUTE.into());
            set.push("#labels = if_not_exists(#labels, :labels)".to_owned());
            values.insert(":labels".into(), AttributeValue::S(labels));
        }
        let mut add = Vec::new();
        let number = |v: f64| AttributeValue::N(format_number(v));
        match delta {
            SeriesDelta::Counter(d) => {
                names.insert("#v".into(), "v".into());
                add.push("#v :d".to_owned());
                values.insert(":d".into(), number(*d));
            }
            SeriesDelta::Gauge {
                set: Some(s),
                add: a,
            } => {
                names.insert("#v".into(), "v".into());
                set.push("#v = :v".to_owned());
                values.insert(":v".into(), number(s + a));
            }
            SeriesDelta::Gauge { set: None, add: a } => {
                names.insert("#v".into(), "v".into());
                add.push("#v :d".to_owned());
                values.insert(":d".into(), number(*a));
            }
            SeriesDelta::Histogram(h) => {
                names.insert("#c".into(), "c".into());
                names.insert("#s".into(), "s".into());
                add.push("#c :c".to_owned());
                add.push("#s :s".to_owned());
                values.insert(":c".into(), AttributeValue::N(h.count.to_string()));
                values.insert(":s".into(), number(h.sum));
                for (i, n) in h.buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
                    names.insert(format!("#b{i}"), format!("b{i}"));
                    add.push(format!("#b{i} :b{i}"));
                    values.insert(format!(":b{i}"), AttributeValue::N(n.to_string()));
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        let update = DynamoUpdate::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Family::Series.key(key.name())))
            .key("sk", AttributeValue::S(sk))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl SeriesStore for DynamoSeriesStore {
    /// One transaction per chunk: its marker and its series' updates, all
    /// on the chunk's shard. Conflicts and throttling are retried with
    /// [`Backoff::STORE`] within the invocation's deadline.
    async fn apply_chunk(
        &self,
        batch_id: &str,
        index: usize,
        chunk: &BatchMetrics,
        now: OffsetDateTime,
    ) -> Result<ChunkOutcome, StoreError> {
        if chunk.len() > SERIES_PER_CHUNK {
            return Err(StoreError::Malformed {
                pk: Family::BatchMarker.key(batch_id),
                sk: format!("DONE#{index}"),
                reason: format!("{} series exceed one transaction", chunk.len()),
            });
        }
        let expires = (now + self.marker_ttl).unix_timestamp();
        let shard = shard_of(batch_id, index);
        let mut items = Vec::with_capacity(chunk.len() + 1);
        items.push(self.marker(batch_id, index, expires)?);
        for (key, delta) in chunk.sorted() {
            items.push(self.update(key, delta, shard)?);
        }
        let mut outcome = ChunkOutcome::default();
        let mut retry = 0;
        loop {
            outcome.requests += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match sent {
                Ok(_) => {
                    outcome.applied = true;
                    return Ok(outcome);
                }
                Err(e) => e,
            };
            match classify(&e) {
                // The marker exists: applied before (possibly by this very
                // call, when a response was lost and the SDK resent it).
                Failure::AlreadyApplied => return Ok(outcome),
                Failure::Retryable => {
                    retry += 1;
                    if let Err(give_up) = Backoff::STORE.wait(retry, &TokioTimer).await {
                        return Err(StoreError::Unavailable(format!(
                            "{give_up}: {}",
                            describe_sdk_error(&e)
                        )));
                    }
                }
                Failure::Other => return Err(StoreError::Unavailable(describe_sdk_error(&e))),
            }
        }
    }
}

/// The shard a chunk writes: fixed per (batch, chunk), so a retry writes
/// where the first attempt would have, and spread over batches.
fn shard_of(batch_id: &str, chunk: usize) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(batch_id.as_bytes());
    h.update((chunk as u64).to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % SERIES_SHARDS
}

/// Adds one shard's value to the sum of the others (same kind; a gauge is
/// never sharded, so its one item stands).
fn add_shard(sum: &mut StoredValue, shard: StoredValue) {
    match (sum, shard) {
        (StoredValue::Counter(a), StoredValue::Counter(b)) => *a += b,
        (
            StoredValue::Histogram {
                buckets,
                count,
                sum,
            },
            StoredValue::Histogram {
                buckets: b,
                count: c,
                sum: s,
            },
        ) => {
            for (x, y) in buckets.iter_mut().zip(b) {
                *x += y;
            }
            *count += c;
            *sum += s;
        }
        _ => {}
    }
}

impl SeriesSource for DynamoSeriesStore {
    async fn read_metric(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        DynamoSeriesStore::read_metric(self, name).await
    }
}

/// DynamoDB numbers: finite decimals only.
fn format_number(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        "0".to_owned()
    }
}

enum Failure {
    /// The marker exists: an earlier delivery applied this chunk.
    AlreadyApplied,
    /// Another transaction touched the same items, or the table throttled
    /// the request: retry after a backoff.
    Retryable,
    Other,
}

fn classify<R>(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> Failure {
    let cancel = match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => cancel,
        Some(
            TransactWriteItemsError::ProvisionedThroughputExceededException(_)
            | TransactWriteItemsError::ThrottlingException(_)
            | TransactWriteItemsError::TransactionInProgressException(_)
            | TransactWriteItemsError::RequestLimitExceeded(_),
        ) => return Failure::Retryable,
        _ => return Failure::Other,
    };
    let reasons = cancel.cancellation_reasons();
    // The marker is the first action of every transaction.
    match reasons.first().and_then(|r| r.code()) {
        Some("ConditionalCheckFailed") => Failure::AlreadyApplied,
        _ if reasons.iter().any(|r| {
            matches!(
                r.code(),
                Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
            )
        }) =>
        {
            Failure::Retryable
        }
        _ => Failure::Other,
    }
}

/// Longest sort key written as the labels' JSON itself. DynamoDB refuses
/// sort keys over 1,024 bytes; capped label values keep most series far
/// below, but JSON escapes can grow a value sixfold.
const SK_MAX_BYTES: usize = 1000;
/// Sort keys of longer label sets: this prefix and a SHA-256 of the JSON,
/// which is kept in [`LABELS_ATTRIBUTE`].
const HASHED_SK_PREFIX: &str = "H#";
const LABELS_ATTRIBUTE: &str = "labels";

/// The sort key of a series, and the labels' JSON when it does not fit.
fn series_sort_key(labels: String) -> (String, Option<String>) {
    use sha2::{Digest, Sha256};
    if labels.len() <= SK_MAX_BYTES && !labels.starts_with(HASHED_SK_PREFIX) {
        return (labels, None);
    }
    let digest = Sha256::digest(labels.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (format!("{HASHED_SK_PREFIX}{hex}"), Some(labels))
}

fn decode_series(
    name: &str,
    pk: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<StoredSeries, StoreError> {
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let malformed = |reason: String| StoreError::Malformed {
        pk: pk.to_owned(),
        sk: sk.clone(),
        reason,
    };
    // A shard's sort key is the series' own behind `S#<n>#`.
    let series_sk = sk
        .strip_prefix(SHARD_PREFIX)
        .and_then(|rest| rest.split_once('#'))
        .map_or(sk.as_str(), |(_, rest)| rest);
    let labels_json = if series_sk.starts_with(HASHED_SK_PREFIX) {
        item.get(LABELS_ATTRIBUTE)
            .and_then(|v| v.as_s().ok())
            .map_or("", String::as_str)
    } else {
        series_sk
    };
    let labels: Vec<(String, String)> =
        serde_json::from_str(labels_json).map_err(|e| malformed(format!("labels: {e}")))?;
    let number = |attr: &str| -> f64 {
        item.get(attr)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    let kind = item
        .get("kind")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str);
    let value = match kind {
        Some("counter") => StoredValue::Counter(number("v")),
        Some("gauge") => StoredValue::Gauge(number("v")),
        Some("histogram") => {
            let mut buckets = [0u64; BUCKETS];
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = number(&format!("b{i}")) as u64;
            }
            StoredValue::Histogram {
                buckets,
                count: number("c") as u64,
                sum: number("s"),
            }
        }
        other => return Err(malformed(format!("unknown kind {other:?}"))),
    };
    Ok(StoredSeries {
        key: SeriesKey::new(name, labels),
        value,
    })
}
