//! The local stack started by `make test` (`scripts/stack.sh env`).

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::{DynamoSeriesStore, StoredValue};
use monitoring_core::domain::alerts::Incident;
use monitoring_core::domain::metrics::series::SeriesKey;

/// A variable the stack exports; a clear message when the tests are run
/// without it.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `make test`, which starts the local stack")
    })
}

pub async fn sdk() -> SdkConfig {
    var("AWS_ENDPOINT_URL");
    monitoring_adapters::aws::load_sdk_config().await
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A user id (a UUID, as the service's) no other test or run uses.
pub fn fresh_user_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff,
        (nanos >> 48) & 0xfff,
        nanos & 0xffff_ffff_ffff
    )
}

/// The value of counter `key` in `store`; 0 when never written.
pub async fn stored_counter(store: &DynamoSeriesStore, key: &SeriesKey) -> f64 {
    let series = store.read_metric(key.name()).await.unwrap();
    match series.iter().find(|s| &s.key == key).map(|s| &s.value) {
        Some(StoredValue::Counter(v)) => *v,
        None => 0.0,
        other => panic!("{key}: {other:?}"),
    }
}

/// A fresh monitoring table with the template's key schema.
pub async fn create_table(sdk: &SdkConfig) -> String {
    let name = unique("test-table");
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&name)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table in moto");
    name
}

/// Stores incidents in `table` the way the alert engine does (its DynamoDB
/// adapter's commit: `INCIDENT#<id>` / `META`), each as its latest
/// transition with nothing left in its outbox, as after publication. An
/// incident already there is replaced.
pub async fn store_incidents(sdk: &SdkConfig, table: &str, incidents: &[&Incident]) {
    use monitoring_core::domain::alerts::{
        CommitResult, IncidentWrite, WindowChange, WindowId, WindowState,
    };
    use monitoring_core::ports::AlertStore;
    let store = DynamoAlertStore::new(sdk, table);
    for incident in incidents {
        // A window of its own per call, so the commit never conflicts.
        let change = WindowChange {
            id: WindowId {
                rule: incident.rule.clone(),
                key: unique("store-incident"),
            },
            expected_version: None,
            state: WindowState::default(),
            incidents: vec![IncidentWrite {
                incident_id: incident.id.clone(),
                create: true,
                snapshot: (*incident).clone(),
                notices: vec![],
            }],
            open: None,
            closed: vec![],
        };
        let done = store
            .commit(&[change], None)
            .await
            .expect("commit incident");
        assert_eq!(done, [CommitResult::Committed]);
    }
}

/// Every item of a table, as text (for "no secret anywhere" checks).
pub async fn dump_table(sdk: &SdkConfig, table: &str) -> String {
    let out = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap();
    format!("{:?}", out.items())
}
