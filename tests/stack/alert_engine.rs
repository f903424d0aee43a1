//! The alert engine against moto's DynamoDB: exactly one incident per
//! transition when batches are redelivered, when invocations race on one
//! key, when the publisher is down; inhibition and silences. Publications
//! are observed through the in-memory recording publisher (the SNS → SQS
//! variant of these tests uses the SNS adapter).
//!
//! These are the engine's mechanics, on the rules of
//! `test_support::alert_rules` (one incident per scenario); `component_down` and
//! `log_pipeline_silent` are tested on the default rules they ship in.

use std::sync::Arc;
use std::time::Duration;

use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_silences::DynamoSilenceStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::retry::TokioTimer;
use monitoring_core::domain::alerts::probe_signals::probe_signals;
use monitoring_core::domain::alerts::{
    AlertEngine, AlertRules, Category, EngineSettings, Severity, TransitionKind,
};
use monitoring_core::domain::probe_result::{Component, ProbeResult, Reason, Status};
use monitoring_core::domain::rules::Signal;
use monitoring_core::domain::silence::{Matcher, Silence};
use monitoring_core::memory::alerts::{RecordingPublisher, StaticComponents, StaticSilences};
use monitoring_core::ports::{
    AlertStore, ComponentStatus, ProbeStore, SilenceSource, SilenceStore,
};
use test_support::alert_rules::test_alert_rules;
use test_support::stack::{create_table, sdk};
use time::OffsetDateTime;
use time::macros::datetime;

type Engine = AlertEngine<DynamoAlertStore, RecordingPublisher, StaticSilences, StaticComponents>;

const T0: OffsetDateTime = datetime!(2026-11-30 08:00 UTC);

struct Setup {
    store: DynamoAlertStore,
    publisher: RecordingPublisher,
    sdk: aws_config::SdkConfig,
    table: String,
}

async fn setup() -> Setup {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    Setup {
        store: DynamoAlertStore::new(&sdk, &table),
        publisher: RecordingPublisher::default(),
        sdk,
        table,
    }
}

impl Setup {
    /// An engine on the test rules with its own DynamoDB client, as a
    /// separate invocation has.
    fn engine(&self, silences: Vec<Silence>, down: Vec<Component>) -> Engine {
        self.engine_with(
            test_alert_rules(),
            StaticSilences(silences),
            StaticComponents(down),
        )
    }

    fn engine_with<X: SilenceSource, C: ComponentStatus>(
        &self,
        rules: Arc<AlertRules>,
        silences: X,
        components: C,
    ) -> AlertEngine<DynamoAlertStore, RecordingPublisher, X, C> {
        AlertEngine::new(
            rules,
            DynamoAlertStore::new(&self.sdk, &self.table),
            self.publisher.clone(),
            silences,
            components,
            EngineSettings {
                log_silence_after: None,
                ..EngineSettings::default()
            },
            Arc::new(TokioTimer),
        )
    }
}

/// Failed logins `from..to` from one address, a second apart from `T0`.
/// Each signal names the address and the user, as the log rules emit it;
/// the users rotate over four accounts, so `brute_force` (10 per user in 2
/// minutes) stays quiet in these tests.
fn failures(ip: &str, from: usize, to: usize) -> Vec<Signal> {
    (from..to)
        .map(|i| Signal {
            name: "auth_failures".into(),
            keys: vec![
                ("ip".into(), ip.to_owned()),
                ("user".into(), format!("user-{}", i % 4)),
            ],
            event_id: format!("3{:055}", i),
            timestamp_ms: T0.unix_timestamp() * 1000 + i as i64 * 1000,
            sample: format!(
                "{{\"logger\":\"security\",\"message\":\"Authentication attempt\",\"ip_address\":\"{ip}\",\"success\":false,\"n\":{i}}}"
            ),
        })
        .collect()
}

/// Database errors `from..to` logged by `logger`, a second apart from `T0`.
fn database_errors(logger: &str, from: usize, to: usize) -> Vec<Signal> {
    (from..to)
        .map(|i| Signal {
            name: "database_errors".into(),
            keys: vec![("logger".into(), logger.to_owned())],
            event_id: format!("4{:055}", i),
            timestamp_ms: T0.unix_timestamp() * 1000 + i as i64 * 1000,
            sample: format!("{logger} - ERROR - Database error: connection refused ({i})"),
        })
        .collect()
}

fn statuses(p: &RecordingPublisher) -> Vec<(String, TransitionKind)> {
    p.incidents()
        .into_iter()
        .map(|i| (i.rule, i.status))
        .collect()
}

#[tokio::test]
async fn five_failures_from_one_ip_fire_exactly_once_high() {
    let s = setup().await;
    let e = s.engine(vec![], vec![]);
    let out = e.ingest(&failures("ip:1a2b", 0, 5), T0).await.unwrap();
    assert_eq!(out.transitions.len(), 1);
    let published = s.publisher.incidents();
    assert_eq!(published.len(), 1);
    let incident = &published[0];
    assert_eq!(
        (incident.rule.as_str(), incident.severity),
        ("auth_failures", Severity::High)
    );
    assert_eq!(
        (incident.key_name.as_deref(), incident.key.as_str()),
        (Some("ip"), "ip:1a2b")
    );
    assert_eq!(
        (incident.count, incident.threshold, incident.window_seconds),
        (5, 5, 300)
    );
    let message = &s.publisher.messages()[0];
    assert_eq!(message.attributes["severity"], "high");
    assert_eq!(message.attributes["status"], "firing");
    // Stored, index entry written, outbox drained.
    let stored = s.store.incident(&incident.id).await.unwrap().unwrap();
    assert!(stored.outbox.is_empty());
    assert_eq!(s.store.open_incidents().await.unwrap().len(), 1);
    assert!(s.store.pending_notices().await.unwrap().is_empty());
}

#[tokio::test]
async fn four_failures_fire_nothing() {
    let s = setup().await;
    let out = s
        .engine(vec![], vec![])
        .ingest(&failures("ip:1a2b", 0, 4), T0)
        .await
        .unwrap();
    assert!(out.transitions.is_empty());
    assert!(s.publisher.messages().is_empty());
    assert!(s.store.open_incidents().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_same_batch_twice_fires_once() {
    let s = setup().await;
    let batch = failures("ip:1a2b", 0, 5);
    let first = s.engine(vec![], vec![]).ingest(&batch, T0).await.unwrap();
    let second = s.engine(vec![], vec![]).ingest(&batch, T0).await.unwrap();
    assert_eq!(first.transitions.len(), 1);
    assert!(second.transitions.is_empty());
    // Five signals, each a duplicate for both rules counting them
    // (auth_failures per address, brute_force per user).
    assert_eq!((second.duplicates, second.counted), (10, 0));
    assert_eq!(s.publisher.messages().len(), 1);
}

/// Eight invocations, each with its own engine and client, on overlapping
/// batches of one address: exactly one firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_invocations_fire_exactly_once() {
    let s = setup().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = s.engine(vec![], vec![]);
        // Batches [i, i + 5) of a run of 12 failures: every batch alone
        // reaches the threshold.
        let batch = failures("ip:1a2b", i, i + 5);
        tasks.push(tokio::spawn(
            async move { e.ingest(&batch, T0).await.unwrap() },
        ));
    }
    let mut firings = 0;
    let mut conflicts = 0;
    for t in tasks {
        let out = t.await.unwrap();
        firings += out
            .transitions
            .iter()
            .filter(|t| t.status == TransitionKind::Firing)
            .count();
        conflicts += out.conflicts;
    }
    assert_eq!(firings, 1, "conflicts: {conflicts}");
    eprintln!("8 racing invocations: {conflicts} commits lost and applied again");
    assert_eq!(
        statuses(&s.publisher),
        [("auth_failures".to_owned(), TransitionKind::Firing)]
    );
    // Every distinct signal counted once, whoever won which race.
    let incident = s.publisher.incidents().remove(0);
    let stored = s.store.incident(&incident.id).await.unwrap().unwrap();
    assert!(stored.outbox.is_empty());
    let resolved = s
        .engine(vec![], vec![])
        .evaluate(T0 + time::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(resolved.transitions[0].status, TransitionKind::Resolved);
    assert_eq!(s.publisher.incidents()[1].count, 12);
}

#[tokio::test]
async fn the_quiet_period_resolves_exactly_once() {
    let s = setup().await;
    let e = s.engine(vec![], vec![]);
    e.ingest(&failures("ip:1a2b", 0, 5), T0).await.unwrap();
    let last_event = T0 + time::Duration::seconds(4);
    assert!(
        e.evaluate(last_event + time::Duration::seconds(299))
            .await
            .unwrap()
            .transitions
            .is_empty()
    );
    // Two evaluators at once, then a later one: one resolution.
    let other = s.engine(vec![], vec![]);
    let at = last_event + time::Duration::seconds(300);
    let (a, b) = tokio::join!(e.evaluate(at), other.evaluate(at));
    let n = a.unwrap().transitions.len() + b.unwrap().transitions.len();
    assert_eq!(n, 1);
    assert!(
        e.evaluate(at + time::Duration::minutes(5))
            .await
            .unwrap()
            .transitions
            .is_empty()
    );
    assert_eq!(
        statuses(&s.publisher),
        [
            ("auth_failures".to_owned(), TransitionKind::Firing),
            ("auth_failures".to_owned(), TransitionKind::Resolved)
        ]
    );
    assert!(s.store.open_incidents().await.unwrap().is_empty());
    // A later episode is a new incident.
    let later = failures("ip:1a2b", 3600, 3605);
    e.ingest(&later, T0).await.unwrap();
    let ids: Vec<String> = s.publisher.incidents().into_iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[0], ids[2]);
}

#[tokio::test]
async fn a_publisher_down_at_firing_loses_nothing_and_the_evaluator_publishes_once() {
    let s = setup().await;
    let e = s.engine(vec![], vec![]);
    s.publisher.set_failing(true);
    let out = e.ingest(&failures("ip:1a2b", 0, 5), T0).await.unwrap();
    assert_eq!((out.transitions.len(), out.publish_failures), (1, 1));
    let id = &out.transitions[0].incident_id;
    assert_eq!(s.store.incident(id).await.unwrap().unwrap().outbox.len(), 1);
    assert_eq!(s.store.pending_notices().await.unwrap().len(), 1);
    s.publisher.set_failing(false);
    // Two evaluators past the grace period: one publication.
    let later = T0 + time::Duration::minutes(3);
    let other = s.engine(vec![], vec![]);
    let (a, b) = tokio::join!(e.evaluate(later), other.evaluate(later));
    assert_eq!(a.unwrap().republished + b.unwrap().republished, 1);
    assert!(
        e.evaluate(later + time::Duration::seconds(60))
            .await
            .unwrap()
            .republished
            == 0
    );
    assert_eq!(
        statuses(&s.publisher),
        [("auth_failures".to_owned(), TransitionKind::Firing)]
    );
    assert!(
        s.store
            .incident(id)
            .await
            .unwrap()
            .unwrap()
            .outbox
            .is_empty()
    );
    assert!(s.store.pending_notices().await.unwrap().is_empty());
}

/// The components' state comes from the probe results in the same table
/// (the component-probe's latest), read through `DynamoStore`. The
/// database and oauth are down: `database_errors`, which the database's
/// outage explains, is recorded as inhibited and not published;
/// `auth_failures` at the same time is published, as security rules are
/// never inhibited (an attacker can cause an outage).
#[tokio::test]
async fn an_inhibited_alert_says_so_and_is_not_published() {
    let s = setup().await;
    let probes = DynamoStore::new(&s.sdk, &s.table);
    let down = |component| ProbeResult {
        component,
        status: Status::Fail,
        reason: Some(Reason::Unreachable),
        checked_at: T0,
        latency_ms: 3000.0,
        measurements: Vec::new(),
        detail: None,
    };
    probes
        .save(
            &[down(Component::Database), down(Component::Oauth)],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let e = s.engine_with(
        test_alert_rules(),
        StaticSilences::default(),
        probes.clone(),
    );
    let out = e
        .ingest(&database_errors("app.core.database", 0, 5), T0)
        .await
        .unwrap();
    assert_eq!(out.transitions.len(), 1);
    let inhibited = &out.transitions[0];
    assert_eq!(
        (inhibited.rule.as_str(), inhibited.status),
        ("database_errors", TransitionKind::Firing)
    );
    let reason = inhibited.suppressed.clone().unwrap();
    assert!(reason.contains("database down"), "{reason}");
    let stored = s
        .store
        .incident(&inhibited.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.incident.inhibited_by, ["database"]);
    assert_eq!(stored.incident.reason.as_deref(), Some(reason.as_str()));
    assert!(stored.outbox.is_empty());
    assert!(s.publisher.messages().is_empty());

    // A security rule is published while the components are down.
    let auth = e.ingest(&failures("ip:1a2b", 0, 5), T0).await.unwrap();
    assert_eq!(auth.transitions.len(), 1);
    assert_eq!(auth.transitions[0].suppressed, None);
    let incident = s.publisher.incidents().remove(0);
    assert!(incident.inhibited_by.is_empty());
    assert_eq!(
        statuses(&s.publisher),
        [("auth_failures".to_owned(), TransitionKind::Firing)]
    );

    // The inhibited incident's resolution is recorded, not published; the
    // security incident's is.
    let r = e.evaluate(T0 + time::Duration::hours(1)).await.unwrap();
    let mut resolved: Vec<(&str, TransitionKind)> = r
        .transitions
        .iter()
        .map(|t| (t.rule.as_str(), t.status))
        .collect();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            ("auth_failures", TransitionKind::Resolved),
            ("database_errors", TransitionKind::Resolved)
        ]
    );
    let stored = s
        .store
        .incident(&inhibited.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.incident.status, TransitionKind::Resolved);
    assert_eq!(stored.incident.inhibited_by, ["database"]);
    assert!(stored.outbox.is_empty());
    assert_eq!(
        statuses(&s.publisher),
        [
            ("auth_failures".to_owned(), TransitionKind::Firing),
            ("auth_failures".to_owned(), TransitionKind::Resolved)
        ]
    );

    // The database is back: the next episode is published.
    let later = T0 + time::Duration::hours(2);
    probes
        .save(
            &[ProbeResult {
                status: Status::Pass,
                reason: None,
                checked_at: later,
                ..down(Component::Database)
            }],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let out = e
        .ingest(&database_errors("app.core.database", 7200, 7205), later)
        .await
        .unwrap();
    assert_eq!(out.transitions.len(), 1);
    assert_eq!(out.transitions[0].suppressed, None);
    assert_eq!(
        statuses(&s.publisher)[2],
        ("database_errors".to_owned(), TransitionKind::Firing)
    );
    assert_eq!(s.publisher.incidents().len(), 3);
}

/// Probe results in, `component_down` out: 3 failures of the last 5
/// probes, critical; reminders while it lasts; resolved when probes pass.
#[tokio::test]
async fn three_failed_probes_of_five_raise_component_down() {
    let s = setup().await;
    let e = s.engine_with(
        Arc::new(AlertRules::default_rules().unwrap()),
        StaticSilences::default(),
        StaticComponents::default(),
    );
    let mut fired = Vec::new();
    let statuses_in = [
        Status::Fail,
        Status::Pass,
        Status::Fail,
        Status::Pass,
        Status::Fail,
        Status::Fail,
        Status::Pass,
    ];
    for (minute, status) in statuses_in.into_iter().enumerate() {
        let result = ProbeResult {
            component: Component::Database,
            status,
            reason: (status == Status::Fail).then_some(Reason::Unreachable),
            checked_at: T0 + time::Duration::minutes(minute as i64),
            latency_ms: 5.0,
            measurements: Vec::new(),
            detail: None,
        };
        let out = e
            .ingest_probes(&probe_signals(&[], &[result]), T0)
            .await
            .unwrap();
        fired.extend(out.transitions);
    }
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].rule.as_str(), fired[0].key.as_str()),
        ("component_down", "database")
    );
    let incident = s.publisher.incidents().remove(0);
    assert_eq!(
        (incident.severity, incident.category),
        (Severity::Critical, Category::System)
    );
    assert_eq!(incident.transition_at, "2026-11-30T08:04:00.000Z");
    // No failure since minute 5: resolved 3 minutes later.
    let out = e.evaluate(T0 + time::Duration::minutes(8)).await.unwrap();
    assert_eq!(out.transitions[0].status, TransitionKind::Resolved);
}

/// The dead man's switch against the table's heartbeat item.
#[tokio::test]
async fn silent_logs_raise_log_pipeline_silent_once() {
    let s = setup().await;
    let e = AlertEngine::new(
        Arc::new(AlertRules::default_rules().unwrap()),
        DynamoAlertStore::new(&s.sdk, &s.table),
        s.publisher.clone(),
        StaticSilences::default(),
        StaticComponents::default(),
        EngineSettings {
            log_silence_after: Some(Duration::from_secs(900)),
            ..EngineSettings::default()
        },
        Arc::new(TokioTimer),
    );
    e.ingest(&[], T0).await.unwrap();
    assert!(s.store.last_log_delivery().await.unwrap().is_some());
    assert!(
        e.evaluate(T0 + time::Duration::minutes(14))
            .await
            .unwrap()
            .transitions
            .is_empty()
    );
    for minute in 15..20 {
        e.evaluate(T0 + time::Duration::minutes(minute))
            .await
            .unwrap();
    }
    e.ingest(&[], T0 + time::Duration::minutes(20))
        .await
        .unwrap();
    e.evaluate(T0 + time::Duration::minutes(30)).await.unwrap();
    assert_eq!(
        statuses(&s.publisher),
        [
            ("log_pipeline_silent".to_owned(), TransitionKind::Firing),
            ("log_pipeline_silent".to_owned(), TransitionKind::Resolved)
        ]
    );
}

/// The silence is stored in the table through the silence store and read
/// back by the engine through it.
#[tokio::test]
async fn a_silence_suppresses() {
    let s = setup().await;
    let silences = DynamoSilenceStore::new(&s.sdk, &s.table);
    let silence = Silence {
        id: "sil-ops-1".into(),
        matchers: vec![
            Matcher::equal("rule", "auth_failures"),
            Matcher::equal("key", "ip:1a2b"),
        ],
        starts_at: T0 - time::Duration::hours(1),
        ends_at: T0 + time::Duration::hours(1),
        created_by: "ops".into(),
        comment: "pen test".into(),
        created_at: T0 - time::Duration::hours(1),
        requested_by: None,
        security: true,
        expired_at: None,
        expired_by: None,
    };
    silences.create(&silence).await.unwrap();
    let e = s.engine_with(test_alert_rules(), silences, StaticComponents::default());
    let out = e.ingest(&failures("ip:1a2b", 0, 5), T0).await.unwrap();
    assert_eq!(
        out.transitions[0].suppressed.as_deref(),
        Some("silenced by sil-ops-1")
    );
    // Another address is not covered by the silence.
    e.ingest(&failures("ip:9f9f", 0, 5), T0).await.unwrap();
    let published = s.publisher.incidents();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].key, "ip:9f9f");
    let stored = s
        .store
        .incident(&out.transitions[0].incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.incident.silenced_by.as_deref(), Some("sil-ops-1"));
    assert!(stored.outbox.is_empty());
    // The silence is over: the next episode of the silenced key is published.
    e.ingest(
        &failures("ip:1a2b", 7200, 7205),
        T0 + time::Duration::hours(2),
    )
    .await
    .unwrap();
    assert_eq!(s.publisher.incidents().len(), 2);
}

/// DynamoDB requests per batch: at most the distinct windows touched plus
/// a small constant (printed for BENCHMARKS.md).
#[tokio::test]
async fn requests_per_batch_stay_within_windows_plus_a_constant() {
    let s = setup().await;
    let e = s.engine(vec![], vec![]);
    let store = e.store().clone();
    let mut report = Vec::new();
    // 40 addresses × 3 failures: 40 ip windows + 4 user windows (brute_force
    // fires on each of the 4 sprayed users).
    let mut quiet = Vec::new();
    for a in 0..40 {
        quiet.extend(failures(&format!("ip:{a:04x}"), a * 3, a * 3 + 3));
    }
    for (name, batch) in [
        ("40 addresses x 3 failures", quiet.clone()),
        ("same batch redelivered", quiet),
        ("firing batch", failures("ip:ffff", 1000, 1005)),
        ("empty batch (heartbeat)", Vec::new()),
    ] {
        let before = store.requests();
        let out = e.ingest(&batch, T0).await.unwrap();
        let used = store.requests() - before;
        assert!(
            used <= out.windows + 3,
            "{name}: {used} requests for {} windows",
            out.windows
        );
        report.push(format!(
            "{name}: {} signals, {} windows, {} transitions, {used} requests",
            batch.len(),
            out.windows,
            out.transitions.len()
        ));
    }
    for line in report {
        eprintln!("alert engine requests: {line}");
    }
}
