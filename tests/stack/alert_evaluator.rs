//! The alert engine wired as the functions wire it, against moto: log-metrics
//! fires an incident from a log batch, the alert-evaluator resolves it after
//! its quiet period, and the dead man's switch raises `log_pipeline_silent`.
//! Publications are observed on SNS through a subscribed SQS queue.
//!
//! The engine is built as the entry points build it
//! ([`deployed_alert_engine`]): the firing and resolution tests load the
//! rules of `test_support::alert_rules` through `ALERT_RULES_FILE` (the engine's
//! mechanics, one incident per scenario); the dead man's switch runs on the
//! default rules it ships in.

use monitoring_core::memory::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;
use test_support::logs;

use alert_evaluator::Evaluator;
use log_metrics::{HandlerError, LogMetrics, SeriesGuard};
use monitoring_adapters::alert_engine::{DeployedAlertEngine, deployed_alert_engine};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::rules_loader::load_file;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::Env;
use monitoring_config::alert_evaluator::AlertEvaluatorConfig;
use monitoring_core::domain::alerts::{AlertRules, TransitionKind};
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::ports::AlertStore;
use serde_json::Value;
use test_support::alert_rules::test_alert_rules_file;
use test_support::servers::free_port;
use test_support::sns::{Delivered, drain, topic_with_queue};
use test_support::stack::{create_table, sdk};
use time::OffsetDateTime;
use time::macros::datetime;

/// The event time of the first log event.
const T0: OffsetDateTime = datetime!(2026-11-30 08:00 UTC);

type Engine = DeployedAlertEngine;

struct Setup {
    sdk: aws_config::SdkConfig,
    table: String,
    queue: String,
    config: AlertEvaluatorConfig,
}

/// Where the alert rules come from.
enum Rules {
    /// The embedded default rules.
    Default,
    /// `test_support::alert_rules`, through `ALERT_RULES_FILE`.
    Test,
}

/// A fresh table and topic with a queue, and the evaluator's configuration
/// from the variables the template sets.
async fn setup(log_silence_after_seconds: &str, rules: Rules) -> Setup {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    let mut vars = vec![
        ("TABLE_NAME".to_owned(), table.clone()),
        ("INCIDENTS_TOPIC_ARN".to_owned(), topic),
        (
            "LOG_SILENCE_AFTER_SECONDS".to_owned(),
            log_silence_after_seconds.to_owned(),
        ),
        (
            "DASHBOARD_URL".to_owned(),
            "https://grafana.example/d/blindspotx".to_owned(),
        ),
    ];
    if let Rules::Test = rules {
        let path = test_alert_rules_file();
        vars.push((
            "ALERT_RULES_FILE".to_owned(),
            path.to_str().unwrap().to_owned(),
        ));
    }
    let config = AlertEvaluatorConfig::from_env(&Env::from_pairs(vars)).unwrap();
    Setup {
        sdk,
        table,
        queue,
        config,
    }
}

impl Setup {
    /// The engine as the functions' entry points build it, from the
    /// configuration.
    async fn engine(&self, sdk: &aws_config::SdkConfig) -> Engine {
        deployed_alert_engine(
            sdk,
            &self.config.table_name,
            self.config.alerts.engine_setup(),
            &SecretResolver::new(sdk),
        )
        .await
        .unwrap()
    }

    async fn evaluator(&self) -> (Evaluator<Engine>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let evaluator = Evaluator {
            engine: self.engine(&self.sdk).await,
            clock: clock.clone(),
        };
        (evaluator, clock)
    }

    /// log-metrics with its series on `series_sdk` and its alert engine on
    /// `alerts_sdk` (either may point at nothing).
    async fn log_metrics(
        &self,
        series_sdk: &aws_config::SdkConfig,
        alerts_sdk: &aws_config::SdkConfig,
    ) -> LogMetrics<DynamoSeriesStore, DynamoStore, Engine> {
        LogMetrics {
            rules: RuleSet::default_rules().unwrap(),
            redactor: Redactor::new(b"integration-test-redaction-key").unwrap(),
            guard: SeriesGuard::new(CardinalityGuard::default()),
            store: DynamoSeriesStore::new(series_sdk, &self.table, Duration::from_secs(3600)),
            heartbeats: DynamoStore::new(series_sdk, &self.table),
            alerts: self.engine(alerts_sdk).await,
            namespace: "Test".into(),
            parse: Default::default(),
            max_decompressed_bytes: 32 << 20,
        }
    }

    async fn published(&self) -> Vec<(Value, Delivered)> {
        drain(&self.sdk, &self.queue)
            .await
            .into_iter()
            .map(|d| (serde_json::from_str(&d.0).unwrap(), d))
            .collect()
    }
}

/// A subscription batch of `n` failed logins from one address, a second
/// apart from `T0`.
fn failed_logins(n: usize) -> Value {
    let events = (0..n)
        .map(|i| {
            logs::event(
                format!("{i:056}"),
                T0.unix_timestamp() * 1000 + i as i64 * 1000,
                format!(
                    r#"{{"timestamp":"2026-11-30T08:00:0{i}.000Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"u{i}","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login"}}"#
                ),
            )
        })
        .collect();
    logs::lambda_event("app-1", events)
}

#[tokio::test]
async fn a_quiet_incident_is_resolved_and_published_once() {
    let s = setup("0", Rules::Test).await;
    let app = s.log_metrics(&s.sdk, &s.sdk).await;
    let batch = failed_logins(5);
    let summary = app.handle(&batch, T0, &mut Vec::new()).await.unwrap();
    assert_eq!(
        (summary.alert_transitions, summary.alerts_published),
        (1, 1)
    );
    let fired = s.published().await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let (incident, (_, attributes)) = &fired[0];
    assert_eq!(incident["schema"], "blindspotx.incident/v1");
    assert_eq!(incident["rule"], "auth_failures");
    assert_eq!(incident["key_name"], "ip");
    assert_eq!(incident["status"], "firing");
    assert_eq!(attributes["status"], "firing");
    assert_eq!(attributes["severity"], "high");
    assert!(
        !fired[0].1.0.contains("203.0.113.7"),
        "the address is pseudonymized"
    );
    // A redelivered batch publishes nothing more.
    app.handle(&batch, T0, &mut Vec::new()).await.unwrap();
    assert!(s.published().await.is_empty());

    // The last failure is at T0 + 4 s; auth_failures resolves after 300 s.
    let (evaluator, clock) = s.evaluator().await;
    clock.set(T0 + time::Duration::seconds(300));
    assert!(evaluator.run().await.unwrap().transitions.is_empty());
    assert!(s.published().await.is_empty());

    clock.set(T0 + time::Duration::seconds(304));
    let run = evaluator.run().await.unwrap();
    assert_eq!(run.transitions.len(), 1);
    assert_eq!(run.transitions[0].status, TransitionKind::Resolved);
    assert_eq!(run.published, 1);
    let resolved = s.published().await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let (message, (_, attributes)) = &resolved[0];
    assert_eq!(message["status"], "resolved");
    assert_eq!(message["id"], incident["id"]);
    assert_eq!(attributes["status"], "resolved");
    assert_eq!(
        message["dashboard_url"], "https://grafana.example/d/blindspotx",
        "{message}"
    );

    // The next minute, and a second evaluator racing it: nothing more.
    clock.set(T0 + time::Duration::seconds(364));
    let (other, other_clock) = s.evaluator().await;
    other_clock.set(T0 + time::Duration::seconds(364));
    let (a, b) = tokio::join!(evaluator.run(), other.run());
    assert_eq!(a.unwrap().published + b.unwrap().published, 0);
    assert!(s.published().await.is_empty());
    let store = DynamoAlertStore::new(&s.sdk, &s.table);
    assert!(store.open_incidents().await.unwrap().is_empty());
    assert!(store.pending_notices().await.unwrap().is_empty());
}

#[tokio::test]
async fn no_log_delivery_for_the_configured_time_raises_log_pipeline_silent_once() {
    let s = setup("600", Rules::Default).await;
    // An empty batch: the last log delivery is T0.
    let app = s.log_metrics(&s.sdk, &s.sdk).await;
    app.handle(&logs::lambda_event("app-1", vec![]), T0, &mut Vec::new())
        .await
        .unwrap();

    let (evaluator, clock) = s.evaluator().await;
    clock.set(T0 + time::Duration::seconds(599));
    assert!(evaluator.run().await.unwrap().transitions.is_empty());
    assert!(s.published().await.is_empty());

    let mut fired = Vec::new();
    for minute in 10..13 {
        clock.set(T0 + time::Duration::minutes(minute));
        fired.extend(evaluator.run().await.unwrap().transitions);
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, "log_pipeline_silent");
    let published = s.published().await;
    assert_eq!(published.len(), 1, "{published:?}");
    let (message, (_, attributes)) = &published[0];
    assert_eq!(message["rule"], "log_pipeline_silent");
    assert_eq!(message["status"], "firing");
    assert_eq!(attributes["rule"], "log_pipeline_silent");
    assert_eq!(attributes["category"], "system");
}

/// The first delivery stores its series, then cannot write its alert
/// windows and fails; Lambda's retry finds the series applied (duplicate)
/// and still counts the signals: the incident is published once.
#[tokio::test]
async fn a_batch_whose_alert_write_failed_fires_on_the_retry() {
    let s = setup("0", Rules::Test).await;
    let down = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", free_port().await))
        .load()
        .await;
    let batch = failed_logins(5);
    let first = s.log_metrics(&s.sdk, &down).await;
    let err = first.handle(&batch, T0, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, HandlerError::Alerts(_)), "{err}");
    assert!(s.published().await.is_empty());

    let retry = s
        .log_metrics(&s.sdk, &s.sdk)
        .await
        .handle(&batch, T0, &mut Vec::new())
        .await
        .unwrap();
    assert!(retry.duplicate, "the first attempt applied the series");
    assert_eq!((retry.alert_transitions, retry.alerts_published), (1, 1));
    let fired = s.published().await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].0["count"], 5);
}

/// The default alert rule file on disk loads as the embedded one does (the
/// file an `ALERT_RULES_FILE` override starts from).
#[test]
fn the_default_alert_rule_file_loads_from_disk() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/alerts/default.toml");
    let rules: AlertRules = load_file(std::path::Path::new(path)).unwrap();
    assert_eq!(
        rules.rules().len(),
        AlertRules::default_rules().unwrap().rules().len()
    );
}

#[tokio::test]
async fn a_notice_the_topic_refuses_is_dead_lettered_loudly_and_requeued_after_the_fix() {
    let s = setup("0", Rules::Test).await;
    // log-metrics publishes to a topic that is gone (a deployment fault):
    // SNS answers NotFound, which no retry fixes.
    let mut broken = s.config.clone();
    broken.alerts.incidents_topic_arn = format!("{}-gone", s.config.alerts.incidents_topic_arn);
    let broken_engine = deployed_alert_engine(
        &s.sdk,
        &broken.table_name,
        broken.alerts.engine_setup(),
        &SecretResolver::new(&s.sdk),
    )
    .await
    .unwrap();
    let mut app = s.log_metrics(&s.sdk, &s.sdk).await;
    app.alerts = broken_engine;
    let mut emf = Vec::new();
    let summary = app.handle(&failed_logins(5), T0, &mut emf).await.unwrap();
    assert_eq!(
        (summary.alert_transitions, summary.alerts_published),
        (1, 0)
    );
    // Loud: a paging EMF document with the failure and the dead letter.
    let paging: Vec<Value> = String::from_utf8(emf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|d| d.get("incident_dead_lettered_total").is_some())
        .collect();
    assert_eq!(paging.len(), 1, "{paging:?}");
    assert_eq!(paging[0]["incident_publish_failures_total"], 1);
    assert_eq!(paging[0]["incident_dead_lettered_total"], 1);

    // Moved aside with its reason, out of the outbox: not retried forever.
    let store = DynamoAlertStore::new(&s.sdk, &s.table);
    assert!(store.pending_notices().await.unwrap().is_empty());
    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].reason.contains("NotFound"), "{}", dead[0].reason);
    let incident = store
        .incident(&dead[0].notice.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert!(incident.outbox.is_empty());

    // The evaluator (its topic fine) reports the dead letter every run and
    // publishes nothing of it.
    let (evaluator, clock) = s.evaluator().await;
    clock.set(T0 + time::Duration::seconds(180));
    let run = evaluator.run().await.unwrap();
    assert_eq!((run.republished, run.dead_letters), (0, 1));
    assert_eq!(run.paging_metrics().dead_letters, Some(1));
    assert!(s.published().await.is_empty());

    // After the fix, the runbook requeues it (once) and the next run pages.
    let tid = dead[0].notice.transition_id.clone();
    assert!(store.requeue_dead_letter(&tid).await.unwrap());
    assert!(!store.requeue_dead_letter(&tid).await.unwrap());
    clock.set(T0 + time::Duration::seconds(240));
    let run = evaluator.run().await.unwrap();
    assert_eq!((run.republished, run.dead_letters), (1, 0));
    assert!(run.oldest_unpublished_ms >= 240_000 - 5_000, "{run:?}");
    let paged = s.published().await;
    assert_eq!(paged.len(), 1, "{paged:?}");
    assert_eq!(paged[0].0["status"], "firing");
    assert!(store.pending_notices().await.unwrap().is_empty());
    clock.set(T0 + time::Duration::seconds(250));
    assert_eq!(evaluator.run().await.unwrap().republished, 0);
    assert!(s.published().await.is_empty());
}
