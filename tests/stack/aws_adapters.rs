//! The AWS adapters against moto: the probe store, heartbeats, and secret
//! references resolved from Secrets Manager and SSM Parameter Store.

use std::sync::Arc;
use std::time::Duration;

use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::probes::drift::{DriftProbe, LastScanSource};
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::{ConfigError, SecretSource};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::probe_result::{
    Component, Measurement, Observation, ProbeResult, Reason, Status, Unit,
};
use monitoring_core::ports::Probe;
use monitoring_core::ports::{HeartbeatSource, ProbeStore};
use test_support::stack::{create_table, dump_table, sdk, unique};
use time::OffsetDateTime;

fn result(component: Component, at: OffsetDateTime) -> ProbeResult {
    let obs = Observation::measured(vec![
        Measurement::new("indexScanRatio", 97.5, Unit::Percent).with_target("users"),
    ])
    .with_reason(Status::Warn, Reason::ThresholdExceeded, "some detail");
    ProbeResult::from_observation(component, obs, at, 12.25)
}

#[tokio::test]
async fn the_store_keeps_latest_and_history() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let store = DynamoStore::new(&sdk, &table);
    let t0 = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let first: Vec<_> = Component::ALL.into_iter().map(|c| result(c, t0)).collect();
    store.save(&first, Duration::from_secs(3600)).await.unwrap();
    let later = result(Component::Redis, t0 + time::Duration::seconds(60));
    store
        .save(std::slice::from_ref(&later), Duration::from_secs(3600))
        .await
        .unwrap();

    let mut latest = store.latest().await.unwrap();
    latest.sort_by_key(|r| r.component);
    assert_eq!(latest.len(), 5);
    assert_eq!(latest[1], later, "latest redis result replaced the first");
    assert_eq!(latest[0], first[0], "round trip is lossless");

    let dump = dump_table(&sdk, &table).await;
    assert_eq!(dump.matches("AT#").count(), 6, "history keeps every run");
    let expected_ttl = (t0 + time::Duration::seconds(3600))
        .unix_timestamp()
        .to_string();
    assert!(dump.contains(&expected_ttl), "history expires through ttl");
}

#[tokio::test]
async fn a_missing_table_is_a_store_error() {
    let sdk = sdk().await;
    let store = DynamoStore::new(&sdk, unique("no-such-table"));
    let err = store.latest().await.unwrap_err();
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}

#[tokio::test]
async fn the_drift_heartbeat_lives_in_the_table() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let store = Arc::new(DynamoStore::new(&sdk, &table));
    assert_eq!(
        store.last_heartbeat(Heartbeat::DriftScan).await.unwrap(),
        None
    );
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(2);
    store.put_heartbeat(Heartbeat::DriftScan, at).await.unwrap();
    let read = store
        .last_heartbeat(Heartbeat::DriftScan)
        .await
        .unwrap()
        .unwrap();
    assert!((read - at).abs() < time::Duration::milliseconds(1));

    let probe = DriftProbe::new(LastScanSource::Heartbeat(store), Duration::from_secs(3600));
    let obs = probe.observe().await;
    assert_eq!(obs.overall_status(), Status::Pass, "{obs:?}");
}

#[tokio::test]
async fn secrets_come_from_secrets_manager_and_ssm() {
    let sdk = sdk().await;
    let name = unique("db-url");
    let arn = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string("postgres://app:from-secrets-manager@db/x\n")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let parameter = format!("/{}", unique("redis-url"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value("redis://:from-ssm@cache:6379")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    let resolver = SecretResolver::new(&sdk);
    let db = resolver
        .resolve("DATABASE_URL", &SecretSource::SecretsManager(arn))
        .await
        .unwrap();
    assert_eq!(db.expose(), "postgres://app:from-secrets-manager@db/x");
    let redis = resolver
        .resolve("REDIS_URL", &SecretSource::SsmParameter(parameter))
        .await
        .unwrap();
    assert_eq!(redis.expose(), "redis://:from-ssm@cache:6379");

    let missing = resolver
        .resolve(
            "HEALTH_TOKEN",
            &SecretSource::SecretsManager(unique("missing")),
        )
        .await
        .unwrap_err();
    match missing {
        ConfigError::SecretUnavailable {
            var, source_kind, ..
        } => {
            assert_eq!(var, "HEALTH_TOKEN_SECRET_ARN");
            assert_eq!(source_kind, "Secrets Manager");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The one pagination helper: every page followed, each request counted,
/// a partition past the page bound refused rather than cut.
#[tokio::test]
async fn queries_are_read_page_by_page_within_their_bound() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use monitoring_adapters::dynamodb_pages::query_items;

    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    for i in 0..5 {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("PAGES".into()))
            .item("sk", AttributeValue::S(format!("{i}")))
            .send()
            .await
            .unwrap();
    }
    let query = || {
        client
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("PAGES".into()))
            .limit(2)
    };
    let mut requests = 0;
    let items = query_items(query(), 10, "test items", || requests += 1)
        .await
        .unwrap();
    let keys: Vec<_> = items
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(keys, ["0", "1", "2", "3", "4"]);
    assert_eq!(requests, 3, "pages of 2, 2 and 1");

    let err = query_items(query(), 2, "test items", || {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("more than 2 pages of test items"),
        "{err}"
    );
}
