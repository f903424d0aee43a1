//! log-metrics against moto: a subscription batch becomes stored series and
//! EMF lines; a redelivery changes nothing; bad payloads are counted, not
//! retried; an unreachable store fails the invocation and the retry is exact.

use std::io::Write;
use std::time::Duration;
use test_support::logs;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use log_metrics::{LogMetrics, SeriesGuard};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::retry::TokioTimer;
use monitoring_core::domain::alerts::{AlertEngine, AlertRules, EngineSettings};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::metrics::series::SeriesKey;
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::memory::alerts::{RecordingPublisher, StaticComponents, StaticSilences};
use monitoring_core::ports::HeartbeatSource;
use serde_json::{Value, json};
use std::sync::Arc;
use test_support::servers::free_port;
use test_support::stack::{create_table, sdk, stored_counter};
use time::OffsetDateTime;

const FAILED_LOGIN: &str = r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"7c0e","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login","duration_ms":41.7}"#;

fn payload(events: &[&str], message_type: &str) -> Value {
    let events = events
        .iter()
        .enumerate()
        .map(|(i, m)| logs::event(format!("{i:056}"), 1_747_737_000_000_i64 + i as i64, *m))
        .collect();
    match message_type {
        "CONTROL_MESSAGE" => logs::control_event("app-1", events),
        _ => logs::lambda_event("app-1", events),
    }
}

/// The alert engine over the same table; publications are recorded (the
/// SNS path is tested in `alert_evaluator.rs`).
type Alerts = AlertEngine<DynamoAlertStore, RecordingPublisher, StaticSilences, StaticComponents>;

async fn app(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> LogMetrics<DynamoSeriesStore, DynamoStore, Alerts> {
    LogMetrics {
        rules: RuleSet::default_rules().unwrap(),
        redactor: Redactor::new(b"integration-test-redaction-key").unwrap(),
        guard: SeriesGuard::new(CardinalityGuard::default()),
        store: DynamoSeriesStore::new(sdk, table, Duration::from_secs(3600)),
        heartbeats: DynamoStore::new(sdk, table),
        alerts: AlertEngine::new(
            std::sync::Arc::new(AlertRules::default_rules().unwrap()),
            DynamoAlertStore::new(sdk, table),
            RecordingPublisher::default(),
            StaticSilences(vec![]),
            StaticComponents(vec![]),
            EngineSettings::default(),
            Arc::new(TokioTimer),
        ),
        namespace: "Test".into(),
        parse: Default::default(),
        max_decompressed_bytes: 32 << 20,
    }
}

fn failed_logins() -> SeriesKey {
    SeriesKey::new(
        "auth_requests_total",
        [
            ("endpoint", "/api/auth/login"),
            ("method", "password"),
            ("status", "failure"),
        ],
    )
}

#[tokio::test]
async fn a_batch_becomes_series_and_emf_once() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let app = app(&sdk, &table).await;
    let events = [
        FAILED_LOGIN,
        FAILED_LOGIN,
        // Written seconds before their delivery (10:30:00): their own times
        // stand (a record more than a day older is given its event's).
        "2025-05-20 10:29:54,855 - app.services.drift_service - INFO - Drift detection completed. Found 0 changes.",
        "2025-05-20 10:29:55,000 - app.core.database - ERROR - Database error: refused\n[SQL: SELECT 1]",
        "Traceback (most recent call last):",
        "\u{0}\u{1} binary garbage",
    ];
    let p = payload(&events, "DATA_MESSAGE");
    let mut emf: Vec<u8> = Vec::new();
    let summary = app
        .handle(&p, OffsetDateTime::now_utc(), &mut emf)
        .await
        .unwrap();
    assert_eq!(summary.events, 6);
    assert_eq!(summary.records, 4);
    assert_eq!(summary.continuations, 1);
    assert_eq!(summary.rejected, 1);
    assert!(!summary.duplicate);
    assert_eq!(
        summary.store_requests, 2,
        "one transaction for the batch's series, one for its alert accounting"
    );

    assert_eq!(stored_counter(&app.store, &failed_logins()).await, 2.0);
    assert_eq!(
        stored_counter(
            &app.store,
            &SeriesKey::new("log_events_total", Vec::<(String, String)>::new())
        )
        .await,
        6.0
    );
    assert_eq!(
        stored_counter(
            &app.store,
            &SeriesKey::new("log_events_rejected_total", [("reason", "binary")])
        )
        .await,
        1.0
    );

    let emf = String::from_utf8(emf).unwrap();
    let documents: Vec<Value> = emf
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let login_doc = documents
        .iter()
        .find(|d| d.get("auth_requests_total").is_some() && d["status"] == "failure")
        .expect("an EMF document for failed logins");
    assert_eq!(login_doc["auth_requests_total"], 2.0);
    assert_eq!(
        login_doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Test"
    );
    assert!(!emf.contains("203.0.113.7"), "no raw IP address in EMF");
    // The alert accounting (the second transaction), in EMF too.
    let signals = SeriesKey::new("alert_signals_total", [("signal", "auth_failures")]);
    assert_eq!(stored_counter(&app.store, &signals).await, 2.0);
    assert!(
        documents
            .iter()
            .any(|d| d["signal"] == "auth_failures" && d["alert_signals_total"] == 2.0),
        "{emf}"
    );

    // The drift scan record refreshed the heartbeat the drift probe reads,
    // with the record's own time.
    let beat = app
        .heartbeats
        .last_heartbeat(Heartbeat::DriftScan)
        .await
        .unwrap();
    assert_eq!(beat.map(|t| t.unix_timestamp()), Some(1_747_736_994));
    let clamped = SeriesKey::new(
        "log_record_times_clamped_total",
        Vec::<(String, String)>::new(),
    );
    assert_eq!(stored_counter(&app.store, &clamped).await, 0.0);

    // Redelivery: nothing changes, no EMF again.
    let mut again: Vec<u8> = Vec::new();
    let summary = app
        .handle(&p, OffsetDateTime::now_utc(), &mut again)
        .await
        .unwrap();
    assert!(summary.duplicate);
    assert!(again.is_empty());
    assert_eq!(stored_counter(&app.store, &failed_logins()).await, 2.0);
    assert_eq!(stored_counter(&app.store, &signals).await, 2.0);
}

#[tokio::test]
async fn bad_payloads_are_counted_and_acknowledged() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let app = app(&sdk, &table).await;
    let data = |s: &str| json!({"awslogs": {"data": s}});
    let full = payload(&[FAILED_LOGIN], "DATA_MESSAGE");
    let encoded = full["awslogs"]["data"].as_str().unwrap();
    let raw = STANDARD.decode(encoded).unwrap();
    let cases = [
        (data("%%% not base64"), "invalid_base64"),
        (data(&STANDARD.encode(b"plain text")), "not_gzip"),
        (
            data(&STANDARD.encode(&raw[..raw.len() / 2])),
            "corrupt_gzip",
        ),
        (json!({"something": "else"}), "invalid_envelope"),
        (
            data(&{
                let mut gz = GzEncoder::new(Vec::new(), Compression::default());
                gz.write_all(b"{\"not\": \"an envelope\"}").unwrap();
                STANDARD.encode(gz.finish().unwrap())
            }),
            "invalid_envelope",
        ),
    ];
    for (payload, reason) in &cases {
        let summary = app
            .handle(payload, OffsetDateTime::now_utc(), &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(summary.batch_rejected, Some(*reason));
    }
    for reason in ["invalid_base64", "not_gzip", "corrupt_gzip"] {
        let key = SeriesKey::new("log_batches_rejected_total", [("reason", reason)]);
        assert_eq!(stored_counter(&app.store, &key).await, 1.0, "{reason}");
    }
    let key = SeriesKey::new(
        "log_batches_rejected_total",
        [("reason", "invalid_envelope")],
    );
    assert_eq!(stored_counter(&app.store, &key).await, 2.0);

    let control = payload(
        &["CWL CONTROL MESSAGE: Checking health of destination."],
        "CONTROL_MESSAGE",
    );
    let summary = app
        .handle(&control, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();
    assert!(summary.skipped_control_message);
    assert_eq!(summary.events, 0);
}

#[tokio::test]
async fn an_unreachable_store_fails_the_invocation_and_the_retry_is_exact() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let down = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", free_port().await))
        .load()
        .await;
    let broken = app(&down, &table).await;
    let p = payload(&[FAILED_LOGIN, FAILED_LOGIN, FAILED_LOGIN], "DATA_MESSAGE");
    assert!(
        broken
            .handle(&p, OffsetDateTime::now_utc(), &mut Vec::new())
            .await
            .is_err()
    );

    // Lambda retries once the store is back: counted once, and only once.
    let working = app(&sdk, &table).await;
    let first = working
        .handle(&p, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();
    assert!(!first.duplicate);
    let second = working
        .handle(&p, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(stored_counter(&working.store, &failed_logins()).await, 3.0);
}

/// The sample events in `events/` do what docs/development.md ("Running locally") says.
#[tokio::test]
async fn the_sample_events_behave_as_documented() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let app = app(&sdk, &table).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap()).unwrap()
    };
    let now = OffsetDateTime::now_utc();
    let json = app
        .handle(&read("logs-json.json"), now, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (json.events, json.records, json.rejected),
        (6, 6, 0),
        "{json:?}"
    );
    assert!(json.signals > 0);
    let text = app
        .handle(&read("logs-text.json"), now, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (text.events, text.records, text.rejected),
        (5, 5, 0),
        "{text:?}"
    );
    let again = app
        .handle(&read("logs-json.json"), now, &mut Vec::new())
        .await
        .unwrap();
    assert!(again.duplicate);
    let control = app
        .handle(&read("logs-control.json"), now, &mut Vec::new())
        .await
        .unwrap();
    assert!(control.skipped_control_message);
    let bad = app
        .handle(&read("logs-bad-base64.json"), now, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(bad.batch_rejected, Some("invalid_base64"));
    // Every default-rule miss would be a silent gap in the metrics.
    let misses = app
        .store
        .read_metric("log_rule_misses_total")
        .await
        .unwrap();
    assert!(misses.is_empty(), "{misses:?}");
}

/// `/metrics` serves what log-metrics stored, and a redelivered batch leaves
/// it byte for byte unchanged.
#[tokio::test]
async fn metrics_endpoint_serves_the_series_and_redelivery_changes_nothing() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use monitoring_config::Secret;
    use monitoring_core::domain::pipeline::pipeline_metrics;
    use std::sync::Arc;
    use tower::ServiceExt;

    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let app = app(&sdk, &table).await;
    let p = payload(&[FAILED_LOGIN, FAILED_LOGIN], "DATA_MESSAGE");
    app.handle(&p, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();

    let scrape = || async {
        let mut metrics = RuleSet::default_rules().unwrap().metrics().to_vec();
        metrics.extend(pipeline_metrics());
        let state = crate::bundle::health_state(&sdk, &table, None).with_metrics(
            DynamoSeriesStore::new(&sdk, &table, Duration::ZERO),
            Some(&Secret::new("scrape")),
            metrics,
        );
        let request = http::Request::get("/metrics")
            .header("authorization", "Bearer scrape")
            .body(Body::empty())
            .unwrap();
        let response = health_api::router(Arc::new(state))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let before = scrape().await;
    assert!(
        before.contains(r#"auth_requests_total{endpoint="/api/auth/login",method="password",status="failure"} 2"#),
        "{before}"
    );
    assert!(before.contains("log_events_total 2"), "{before}");
    assert!(
        before.contains("auth_request_duration_seconds_count{endpoint=\"/api/auth/login\"} 2"),
        "{before}"
    );

    app.handle(&p, OffsetDateTime::now_utc(), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(scrape().await, before);
}
