//! Detection on hostile and real-world logs, end to end through log-metrics
//! against the local stack (moto's DynamoDB and SNS): what an attacker can
//! put in a log line (a 2 KB path, a record dated a year ahead, a 400 KB
//! event) costs no batch its alert signals, key-less text failures still
//! fire the guide's `auth_failures`, an outage does not mute security
//! alerts, and a traceback split over two batches is still read.
//!
//! The property test at the end needs no stack: for any interleaving of
//! those records, every signal has one outcome per rule that counts it.

use std::sync::Arc;
use std::time::Duration;
use test_support::logs;

use log_metrics::{LogMetrics, SeriesGuard};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::retry::TokioTimer;
use monitoring_adapters::sns_publisher::SnsPublisher;
use monitoring_core::domain::alerts::{AlertEngine, AlertRules, EngineSettings, SignalOutcome};
use monitoring_core::domain::logs::record::LogEvent;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::metrics::series::SeriesKey;
use monitoring_core::domain::pipeline::process_events;
use monitoring_core::domain::probe_result::Component;
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::memory::alerts::{
    MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
};
use serde_json::{Value, json};
use test_support::sns::{drain_settled, topic_with_queue};
use test_support::stack::{create_table, sdk, stored_counter};
use time::OffsetDateTime;

/// CloudWatch's time of the first event: 2025-05-20T10:30:00Z.
const T0_MS: i64 = 1_747_737_000_000;

fn failed_login(second: i64, user: &str, ip: &str, endpoint: &str) -> String {
    json!({
        "timestamp": monitoring_core::domain::alerts::incident::ms_to_rfc3339(T0_MS + second * 1000),
        "level": "WARNING",
        "logger": "security",
        "message": "Authentication attempt",
        "user_id": user,
        "ip_address": ip,
        "success": false,
        "method": "password",
        "endpoint": endpoint,
        "duration_ms": 40.5,
    })
    .to_string()
}

fn text(second: i64, logger: &str, level: &str, message: &str) -> String {
    let at = OffsetDateTime::from_unix_timestamp(T0_MS / 1000 + second).unwrap();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},000 - {logger} - {level} - {message}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// One subscription payload; event `i` is delivered at `T0 + offset + i` ms.
fn payload(events: &[String], offset_ms: i64, stream: &str) -> Value {
    let events = events
        .iter()
        .enumerate()
        .map(|(i, m)| {
            logs::event(
                format!("{stream}-{offset_ms}-{i:040}"),
                T0_MS + offset_ms + i as i64,
                m.as_str(),
            )
        })
        .collect();
    logs::lambda_event(stream, events)
}

type Alerts = AlertEngine<DynamoAlertStore, SnsPublisher, StaticSilences, StaticComponents>;

/// log-metrics over a fresh table and topic; `down` components are taken
/// as down (a probe timeout under attack).
async fn app(
    sdk: &aws_config::SdkConfig,
    series_table: &str,
    table: &str,
    topic: &str,
    down: Vec<Component>,
) -> LogMetrics<DynamoSeriesStore, DynamoStore, Alerts> {
    LogMetrics {
        rules: RuleSet::default_rules().unwrap(),
        redactor: Redactor::new(b"integration-test-redaction-key").unwrap(),
        guard: SeriesGuard::new(CardinalityGuard::default()),
        store: DynamoSeriesStore::new(sdk, series_table, Duration::from_secs(3600)),
        heartbeats: DynamoStore::new(sdk, table),
        alerts: AlertEngine::new(
            Arc::new(AlertRules::default_rules().unwrap()),
            DynamoAlertStore::new(sdk, table),
            SnsPublisher::new(sdk, topic),
            StaticSilences(vec![]),
            StaticComponents(down),
            EngineSettings {
                log_silence_after: None,
                ..EngineSettings::default()
            },
            Arc::new(TokioTimer),
        ),
        namespace: "Test".into(),
        parse: Default::default(),
        max_decompressed_bytes: 32 << 20,
    }
}

/// The rules of the incidents published to the topic (its queue).
async fn published(sdk: &aws_config::SdkConfig, queue: &str) -> Vec<String> {
    drain_settled(sdk, queue, Duration::from_millis(100))
        .await
        .into_iter()
        .map(|(body, _)| {
            let v: Value = serde_json::from_str(&body).unwrap();
            let message: Value = v
                .get("Message")
                .and_then(Value::as_str)
                .map_or(v.clone(), |m| serde_json::from_str(m).unwrap());
            format!(
                "{} {}",
                message["rule"].as_str().unwrap(),
                message["status"].as_str().unwrap()
            )
        })
        .collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0_MS / 1000 + 600).unwrap()
}

#[tokio::test]
async fn a_2kb_path_beside_a_brute_force_burst_costs_nothing() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    let app = app(&sdk, &table, &table, &topic, vec![]).await;
    let long_path = format!("/api/auth/login/{}", "a".repeat(2048));
    let mut events = vec![failed_login(0, "victim", "203.0.113.50", &long_path)];
    events.extend((1..=10).map(|i| failed_login(i, "victim", "203.0.113.50", "/api/auth/login")));
    let mut emf = Vec::new();
    let summary = app
        .handle(&payload(&events, 0, "burst"), now(), &mut emf)
        .await
        .expect("the batch succeeds");
    assert_eq!((summary.records, summary.rejected), (11, 0));
    let rules = published(&sdk, &queue).await;
    for rule in [
        "auth_failures firing",
        "auth_failures_by_ip firing",
        "auth_failures_by_user firing",
        "brute_force firing",
    ] {
        assert!(rules.iter().any(|r| r == rule), "{rule} in {rules:?}");
    }
    // The long label was cut (with a hash suffix) and counted.
    let capped = SeriesKey::new(
        "log_label_values_capped_total",
        [("metric", "auth_requests_total")],
    );
    assert!(stored_counter(&app.store, &capped).await >= 1.0);
    let series = app.store.read_metric("auth_requests_total").await.unwrap();
    assert!(
        series
            .iter()
            .all(|s| s.key.labels().iter().all(|(_, v)| v.len() <= 128)),
        "{series:?}"
    );
}

#[tokio::test]
async fn a_store_that_refuses_the_series_does_not_cost_the_signals() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    // The series go to a table that does not exist: every write fails.
    let broken = app(&sdk, "no-such-table", &table, &topic, vec![]).await;
    let events: Vec<String> = (0..5)
        .map(|i| {
            text(
                i,
                "app.core.security",
                "WARNING",
                "Could not validate credentials",
            )
        })
        .collect();
    let p = payload(&events, 0, "refused");
    let err = broken.handle(&p, now(), &mut Vec::new()).await;
    assert!(err.is_err(), "the batch is retried for its series");
    assert_eq!(published(&sdk, &queue).await, ["auth_failures firing"]);
    // The retry stores the series and publishes nothing again.
    let working = app(&sdk, &table, &table, &topic, vec![]).await;
    let summary = working.handle(&p, now(), &mut Vec::new()).await.unwrap();
    assert!(!summary.duplicate);
    assert!(published(&sdk, &queue).await.is_empty());
    let failures = SeriesKey::new(
        "alert_signal_outcomes_total",
        [("outcome", "duplicate"), ("rule", "auth_failures")],
    );
    assert_eq!(stored_counter(&working.store, &failures).await, 5.0);
}

#[tokio::test]
async fn key_less_text_failures_fire_the_guides_alert_even_with_components_down() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    // A probe timed out under the attack: oauth and the database look down.
    let app = app(
        &sdk,
        &table,
        &table,
        &topic,
        vec![Component::Oauth, Component::Database],
    )
    .await;
    let events = vec![
        text(
            0,
            "app.api.deps",
            "WARNING",
            "Could not validate credentials",
        ),
        text(
            1,
            "app.api.routes.auth",
            "WARNING",
            "Invalid state parameter: 5f1c",
        ),
        text(2, "app.core.security", "WARNING", "Token has expired"),
        // A record dated a year ahead: its time is clamped to delivery.
        text(365 * 86_400, "app.core.security", "WARNING", "Login failed"),
        text(
            3,
            "app.core.security",
            "WARNING",
            "Signature verification failed",
        ),
        text(
            4,
            "app.api.deps",
            "WARNING",
            "Could not validate credentials",
        ),
    ];
    let summary = app
        .handle(&payload(&events, 0, "keyless"), now(), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(summary.signals, 6);
    assert_eq!(published(&sdk, &queue).await, ["auth_failures firing"]);
    let clamped = SeriesKey::new(
        "log_record_times_clamped_total",
        Vec::<(String, String)>::new(),
    );
    assert_eq!(stored_counter(&app.store, &clamped).await, 1.0);
    // Counted by the service-wide rule, dropped with a reason by the
    // per-key ones: nothing vanishes.
    for (rule, outcome, n) in [
        ("auth_failures", "counted", 6.0),
        ("auth_failures_by_ip", "missing_key", 6.0),
        ("brute_force", "missing_key", 6.0),
    ] {
        let key = SeriesKey::new(
            "alert_signal_outcomes_total",
            [("outcome", outcome), ("rule", rule)],
        );
        assert_eq!(
            stored_counter(&app.store, &key).await,
            n,
            "{rule} {outcome}"
        );
    }
}

#[tokio::test]
async fn oversized_events_and_split_tracebacks_are_read() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    let app = app(&sdk, &table, &table, &topic, vec![]).await;
    // A 400 KB event carrying a failed login (a huge user agent).
    let mut huge: Value =
        serde_json::from_str(&failed_login(0, "u1", "198.51.100.7", "/api/auth/login")).unwrap();
    huge["user_agent"] = Value::String("A".repeat(400 * 1024));
    let first = vec![
        huge.to_string(),
        text(1, "uvicorn.error", "ERROR", "Exception in ASGI application"),
        "Traceback (most recent call last):".to_owned(),
        "  File \"/app/api/deps.py\", line 42, in get_db".to_owned(),
    ];
    let second = vec![
        "    raise exc".to_owned(),
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00".to_owned(),
    ];
    let a = app
        .handle(&payload(&first, 0, "split"), now(), &mut Vec::new())
        .await
        .unwrap();
    let b = app
        .handle(&payload(&second, 10, "split"), now(), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!((a.records, a.continuations, a.rejected), (2, 2, 0));
    // The second batch's lines form one plain record, whose exception line
    // is searched.
    assert_eq!((b.records, b.continuations, b.rejected), (1, 1, 0));
    assert_eq!(b.signals, 2, "connection_pool and database_errors");
    let truncated = SeriesKey::new("log_events_truncated_total", Vec::<(String, String)>::new());
    assert_eq!(stored_counter(&app.store, &truncated).await, 1.0);
    let pool = SeriesKey::new(
        "dependency_errors_total",
        [("dependency", "database"), ("kind", "pool_exhausted")],
    );
    assert_eq!(stored_counter(&app.store, &pool).await, 1.0);
    assert!(
        published(&sdk, &queue).await.is_empty(),
        "one of each: nothing fires"
    );
}

// ------------------------------------------------------------ no stack

/// The hostile records of the tests above, as a vocabulary to shuffle.
fn vocabulary(i: usize, second: i64) -> String {
    match i % 8 {
        0 => text(second, "app.api.deps", "WARNING", "Could not validate credentials"),
        1 => failed_login(second, "victim", "203.0.113.50", "/api/auth/login"),
        2 => failed_login(second, "victim", "203.0.113.50", &format!("/x/{}", "a".repeat(2048))),
        3 => text(second + 365 * 86_400, "app.core.security", "WARNING", "Login failed"),
        4 => json!({"message": "Authentication attempt", "user_id": format!("u{second}"), "ip_address": "198.51.100.7", "success": false}).to_string(),
        5 => "Traceback (most recent call last):".to_owned(),
        6 => "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection refused".to_owned(),
        _ => {
            let mut v: Value = serde_json::from_str(&failed_login(second, "u2", "198.51.100.8", "/api/auth/login")).unwrap();
            v["pad"] = Value::String("B".repeat(300 * 1024));
            v.to_string()
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the order and the batching, every signal offered to a rule
    /// has exactly one outcome for it, and a signal no rule counts is
    /// counted as unrouted: signals in = counted + dropped by reason.
    #[test]
    fn every_signal_is_accounted_for(
        picks in proptest::collection::vec((0usize..8, 0i64..900), 1..60),
        cut in 0usize..60,
    ) {
        let rules = RuleSet::default_rules().unwrap();
        let alert_rules = Arc::new(AlertRules::default_rules().unwrap());
        let redactor = Redactor::new(b"integration-test-redaction-key").unwrap();
        let events: Vec<LogEvent> = picks
            .iter()
            .enumerate()
            .map(|(n, (i, s))| LogEvent {
                id: format!("{n:040}"),
                timestamp_ms: T0_MS + s * 1000,
                message: vocabulary(*i, *s),
            })
            .collect();
        let engine = AlertEngine::new(
            Arc::clone(&alert_rules),
            MemoryAlertStore::default(),
            RecordingPublisher::default(),
            StaticSilences(vec![]),
            StaticComponents(vec![Component::Oauth]),
            EngineSettings { log_silence_after: None, ..EngineSettings::default() },
            Arc::new(TokioTimer),
        );
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let cut = cut.min(events.len());
        let mut raised = 0u64;
        for batch in [&events[..cut], &events[cut..], &events[..]] {
            let report = process_events(batch, &rules, &redactor, &mut CardinalityGuard::default(), Default::default());
            proptest::prop_assert_eq!(report.records + report.continuations + report.rejected_total(), report.events);
            let out = runtime.block_on(engine.ingest(&report.signals, now())).unwrap();
            let a = &out.accounting;
            let received: u64 = a.received.values().sum();
            proptest::prop_assert_eq!(received, report.signals.len() as u64);
            raised += received;
            for signal in &report.signals {
                proptest::prop_assert!(a.received.contains_key(signal.name.as_ref()));
            }
            for (name, n) in &a.received {
                let counting = alert_rules.for_signal(name);
                if counting.is_empty() {
                    proptest::prop_assert_eq!(a.unrouted.get(name), Some(n));
                }
                for &index in counting {
                    let rule = &alert_rules.rules()[index].name;
                    let offered: u64 = report.signals.iter().filter(|s| s.name.as_ref() == name.as_ref()).count() as u64;
                    let outcomes: u64 = SignalOutcome::ALL.iter().map(|o| a.for_rule(rule, *o)).sum();
                    // Several signal names may feed one rule only if the
                    // file says so; the defaults give each rule one.
                    proptest::prop_assert_eq!(outcomes, offered, "rule {}", rule);
                }
            }
        }
        // Only an orphan traceback line (5) and a login record naming no
        // logger (4: the rules read `Authentication attempt` from the
        // `security` logger, LOG-CONTRACT.md section 1) raise nothing.
        proptest::prop_assert!(raised > 0 || picks.iter().all(|(i, _)| matches!(i % 8, 4 | 5)));
    }
}
