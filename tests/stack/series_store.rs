//! The Prometheus series store against moto: once per batch per series,
//! redelivery changes nothing, concurrent batches add up exactly.

use std::time::Duration;

use monitoring_adapters::dynamodb_series::{DynamoSeriesStore, StoredValue};
use monitoring_core::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use monitoring_core::domain::metrics::series::SeriesKey;
use monitoring_core::ports::SeriesStore;
use test_support::stack::{create_table, sdk, unique};
use time::OffsetDateTime;

fn key(name: &str, status: &str) -> SeriesKey {
    SeriesKey::new(name, [("status", status)])
}

fn batch(events: usize) -> BatchMetrics {
    let mut b = BatchMetrics::default();
    let mut g = CardinalityGuard::default();
    for i in 0..events {
        let status = if i % 3 == 0 { "failure" } else { "success" };
        b.apply(
            key("auth_requests_total", status),
            Update::CounterAdd(1.0),
            &mut g,
        )
        .unwrap();
        b.apply(
            key("auth_request_duration_seconds", "all"),
            Update::Observe(0.04),
            &mut g,
        )
        .unwrap();
        b.apply(
            SeriesKey::new("active_sessions", Vec::<(String, String)>::new()),
            Update::GaugeAdd(1.0),
            &mut g,
        )
        .unwrap();
    }
    b
}

async fn store() -> DynamoSeriesStore {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    DynamoSeriesStore::new(&sdk, table, Duration::from_secs(86_400))
}

fn counter(series: &[monitoring_adapters::dynamodb_series::StoredSeries], status: &str) -> f64 {
    match series
        .iter()
        .find(|s| s.key == key("auth_requests_total", status))
        .map(|s| &s.value)
    {
        Some(StoredValue::Counter(v)) => *v,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_is_applied_once_with_one_request_per_chunk() {
    let store = store().await;
    let metrics = batch(3000);
    let now = OffsetDateTime::now_utc();
    let first = store.apply_batch("b-1", &metrics, now).await.unwrap();
    assert_eq!(first.applied_chunks, 1);
    assert_eq!(first.requests, 1, "3000 events, 4 series: one transaction");

    let again = store.apply_batch("b-1", &metrics, now).await.unwrap();
    assert_eq!(again.applied_chunks, 0);
    assert_eq!(again.duplicate_chunks, 1);

    let counters = store.read_metric("auth_requests_total").await.unwrap();
    assert_eq!(counter(&counters, "failure"), 1000.0);
    assert_eq!(counter(&counters, "success"), 2000.0);
    let hist = store
        .read_metric("auth_request_duration_seconds")
        .await
        .unwrap();
    match &hist[0].value {
        StoredValue::Histogram {
            buckets,
            count,
            sum,
        } => {
            assert_eq!(*count, 3000);
            assert!((sum - 120.0).abs() < 1e-6);
            assert_eq!(buckets[3], 3000, "0.04 s falls in le=0.05");
        }
        other => panic!("unexpected {other:?}"),
    }
    let gauge = store.read_metric("active_sessions").await.unwrap();
    assert_eq!(gauge[0].value, StoredValue::Gauge(3000.0));
}

#[tokio::test]
async fn large_batches_chunk_and_redeliver_safely() {
    let store = store().await;
    let mut metrics = BatchMetrics::default();
    let mut g = CardinalityGuard::default();
    for i in 0..250 {
        metrics
            .apply(
                SeriesKey::new("m_total", [("n", i.to_string())]),
                Update::CounterAdd(2.0),
                &mut g,
            )
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let first = store.apply_batch("big", &metrics, now).await.unwrap();
    assert_eq!(first.applied_chunks, 3);
    let again = store.apply_batch("big", &metrics, now).await.unwrap();
    assert_eq!(again.duplicate_chunks, 3);
    let series = store.read_metric("m_total").await.unwrap();
    assert_eq!(series.len(), 250);
    assert!(series.iter().all(|s| s.value == StoredValue::Counter(2.0)));
}

#[tokio::test]
async fn concurrent_batches_add_up_exactly() {
    let store = store().await;
    let now = OffsetDateTime::now_utc();
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        runs.spawn(async move {
            let id = unique(&format!("c{i}"));
            store.apply_batch(&id, &batch(30), now).await.unwrap()
        });
    }
    let outcomes = runs.join_all().await;
    assert!(outcomes.iter().all(|o| o.applied_chunks == 1));
    let counters = store.read_metric("auth_requests_total").await.unwrap();
    assert_eq!(counter(&counters, "failure"), 8.0 * 10.0);
    assert_eq!(counter(&counters, "success"), 8.0 * 20.0);
}

/// A busy counter is spread over several items (one shard per batch
/// chunk), and the read sums them: no single item takes every batch.
#[tokio::test]
async fn a_busy_counter_is_write_sharded_and_summed_on_read() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let store = DynamoSeriesStore::new(&sdk, table.clone(), Duration::from_secs(86_400));
    let now = OffsetDateTime::now_utc();
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = store.clone();
        runs.spawn(async move {
            store
                .apply_batch(&unique(&format!("s{i}")), &batch(3), now)
                .await
                .unwrap()
        });
    }
    runs.join_all().await;
    let items = aws_sdk_dynamodb::Client::new(&sdk)
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("SERIES#auth_requests_total".into()),
        )
        .send()
        .await
        .unwrap();
    let shards: std::collections::BTreeSet<String> = items
        .items()
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .filter(|sk| sk.contains("failure"))
        .collect();
    assert!(
        shards.len() >= 4,
        "24 batches over {} shards wrote {shards:?}",
        monitoring_adapters::dynamodb_series::SERIES_SHARDS
    );
    let counters = store.read_metric("auth_requests_total").await.unwrap();
    assert_eq!(counters.len(), 2, "one series per label set: {counters:?}");
    assert_eq!(counter(&counters, "failure"), 24.0);
    assert_eq!(counter(&counters, "success"), 48.0);
    // The gauge is one item: a set must replace the one value.
    let gauge = store.read_metric("active_sessions").await.unwrap();
    assert_eq!(
        gauge,
        [monitoring_adapters::dynamodb_series::StoredSeries {
            key: SeriesKey::new("active_sessions", Vec::<(String, String)>::new()),
            value: StoredValue::Gauge(72.0),
        }]
    );
}
