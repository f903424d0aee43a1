//! One probe run: probe every component concurrently, store the results
//! (latest + history), feed them to the alert engine and publish them as
//! CloudWatch metrics (Embedded Metric Format lines on stdout).
//!
//! The alert inputs compare this run with the previous one (Redis evicted
//! keys), so the latest results are read before the new ones are saved.

use std::sync::Arc;
use std::time::Duration;

use monitoring_adapters::probe_runner::{ProbeLimits, run_probes};
use monitoring_adapters::probes::certificates::CertificateProbe;
use monitoring_adapters::probes::drift::{DriftProbe, LastScanSource};
use monitoring_adapters::probes::oidc::OidcProbe;
use monitoring_adapters::probes::postgres::{DatabaseThresholds, PostgresConnector, PostgresProbe};
use monitoring_adapters::probes::redis::{CacheThresholds, RedisProbe};
use monitoring_adapters::probes::tls;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::ConfigError;
use monitoring_config::probe::{DriftSource, ProbeConfig};
use monitoring_core::domain::alerts::probe_signals::{ProbeSignal, probe_signals};
use monitoring_core::domain::alerts::{EngineError, EngineOutcome};
use monitoring_core::domain::probe_result::{Component, ProbeResult, Reason, Status};
use monitoring_core::domain::rules::Signal;
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::ports::{
    Alerts, Clock, HeartbeatSource, MetricSink, MetricsError, Probe, ProbeStore, StoreError,
};
use serde::Serialize;
use time::OffsetDateTime;

/// Why a run failed. All are transient: Lambda retries the invocation.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("storing probe results failed: {0}")]
    Store(#[from] StoreError),
    #[error("publishing probe metrics failed: {0}")]
    Metrics(#[from] MetricsError),
    #[error("alert engine: {0}")]
    Alerts(#[from] EngineError),
}

/// No alerting: [`ProbeRun::run`] (health tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAlerts;

impl Alerts for NoAlerts {
    async fn ingest(&self, _: &[Signal], _: OffsetDateTime) -> Result<EngineOutcome, EngineError> {
        Ok(EngineOutcome::default())
    }

    async fn ingest_probes(
        &self,
        _: &[ProbeSignal],
        _: OffsetDateTime,
    ) -> Result<EngineOutcome, EngineError> {
        Ok(EngineOutcome::default())
    }

    async fn evaluate(&self, _: OffsetDateTime) -> Result<EngineOutcome, EngineError> {
        Ok(EngineOutcome::default())
    }
}

/// The invocation's answer: per component, status and public reason only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub components: Vec<ComponentSummary>,
    /// Incident transitions the run committed (firing, reminders),
    /// suppressed ones included.
    pub alert_transitions: usize,
    /// Incident messages published; failed ones wait in the outbox for the
    /// alert-evaluator.
    pub alerts_published: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentSummary {
    pub component: Component,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub latency_ms: f64,
}

/// Everything a run needs, built once per cold start.
pub struct ProbeRun<S, M> {
    pub probes: Vec<Box<dyn Probe>>,
    pub store: S,
    pub metrics: M,
    pub limits: ProbeLimits,
    pub history_ttl: Duration,
    pub scrubber: Scrubber,
    pub clock: Arc<dyn Clock>,
}

impl<S: ProbeStore, M: MetricSink> ProbeRun<S, M> {
    /// A run without alerting: probes, stores, publishes metrics.
    pub async fn run(&self) -> Result<RunSummary, RunError> {
        self.run_with_alerts(&NoAlerts).await
    }

    /// Probes, stores, feeds the alert engine, publishes metrics. Results
    /// are stored before anything else, so neither an alerting outage nor
    /// a failed metrics write hides the health state; the alert engine
    /// runs even when the metrics cannot be written, and its error is
    /// reported first.
    pub async fn run_with_alerts<A: Alerts>(&self, alerts: &A) -> Result<RunSummary, RunError> {
        let results = run_probes(
            &self.probes,
            self.limits,
            self.clock.as_ref(),
            &self.scrubber,
        )
        .await;
        for r in &results {
            match r.status {
                Status::Pass => {
                    tracing::info!(component = %r.component, latency_ms = r.latency_ms, "probe passed")
                }
                // A deliberate choice of the deployment, not a problem: no warning.
                Status::NotConfigured => tracing::info!(
                    component = %r.component,
                    detail = r.detail.as_deref(),
                    "component not configured"
                ),
                _ => tracing::warn!(
                    component = %r.component,
                    status = r.status.as_str(),
                    reason = r.reason.map(Reason::as_str),
                    detail = r.detail.as_deref(),
                    "probe not passing"
                ),
            }
        }
        let previous = self.store.latest().await?;
        self.store.save(&results, self.history_ttl).await?;
        let signals = probe_signals(&previous, &results);
        let alerted = alerts.ingest_probes(&signals, self.clock.now()).await;
        let published = self.metrics.publish(&results).await;
        let outcome = alerted?;
        monitoring_adapters::telemetry::log_transitions(&outcome.transitions);
        published?;
        let mut summary = summarize(&results);
        summary.alert_transitions = outcome.transitions.len();
        summary.alerts_published = outcome.published;
        Ok(summary)
    }
}

fn summarize(results: &[ProbeResult]) -> RunSummary {
    RunSummary {
        components: results
            .iter()
            .map(|r| ComponentSummary {
                component: r.component,
                status: r.status,
                reason: r.reason,
                latency_ms: r.latency_ms,
            })
            .collect(),
        alert_transitions: 0,
        alerts_published: 0,
    }
}

/// The five probes and a scrubber that knows every configured secret. A
/// component without settings still gets its probe, which reports
/// `not_configured` every run: the health endpoint then shows it as such
/// instead of `no_data`.
pub async fn build_probes(
    config: &ProbeConfig,
    secrets: &SecretResolver,
    heartbeats: Arc<dyn HeartbeatSource>,
) -> Result<(Vec<Box<dyn Probe>>, Scrubber), ConfigError> {
    let database_url = secrets
        .resolve_opt("DATABASE_URL", config.database.as_ref())
        .await?;
    let redis_url = secrets
        .resolve_opt("REDIS_URL", config.redis.as_ref())
        .await?;
    let tls = tls::client_config(config.certificates.extra_ca_file.as_deref())?;
    let connector = database_url
        .as_ref()
        .map(|url| PostgresConnector::new(url, tls.clone()))
        .transpose()?;

    let drift_source = match &config.drift.source {
        DriftSource::Sql { query } => LastScanSource::Sql {
            // `ProbeConfig::from_env` already refuses `sql` without a
            // database; a configuration built otherwise gets the same error.
            connector: Box::new(connector.clone().ok_or(ConfigError::Missing {
                var: "DATABASE_URL".into(),
                hint: "DRIFT_SOURCE=sql runs DRIFT_SQL on the BlindspotX database",
            })?),
            query: query.clone(),
        },
        DriftSource::Logs => LastScanSource::Heartbeat(heartbeats),
    };
    let probes: Vec<Box<dyn Probe>> = vec![
        Box::new(PostgresProbe::new(
            connector,
            config.auth_tables.clone(),
            DatabaseThresholds::default(),
        )),
        Box::new(RedisProbe::new(
            redis_url.as_ref(),
            CacheThresholds::default(),
        )?),
        Box::new(OidcProbe::new(config.oidc.clone(), config.limits.timeout)?),
        Box::new(DriftProbe::new(drift_source, config.drift.max_age)),
        Box::new(CertificateProbe::new(config.certificates.clone(), tls)),
    ];
    let scrubber = Scrubber::new(
        [database_url, redis_url]
            .into_iter()
            .flatten()
            .flat_map(|s| secret_parts(s.expose())),
    );
    Ok((probes, scrubber))
}

/// A connection URL and its password on their own, so either is masked
/// wherever a driver echoes it.
fn secret_parts(url: &str) -> Vec<String> {
    let mut parts = vec![url.to_owned()];
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        parts.push(password.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_adapters::retry::TokioTimer;
    use monitoring_core::domain::alerts::AlertEngine;
    use monitoring_core::domain::alerts::{AlertRules, EngineSettings};
    use monitoring_core::domain::probe_result::{Measurement, Observation, Unit};
    use monitoring_core::memory::alerts::{
        MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
    };
    use monitoring_core::memory::clock::ManualClock;
    use monitoring_core::memory::store::MemoryStore;
    use monitoring_core::ports::ComponentStatus;
    use monitoring_core::ports::SystemClock;

    struct Fixed(Component, Observation);
    impl Probe for Fixed {
        fn component(&self) -> Component {
            self.0
        }
        fn observe(
            &self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Observation> + Send + '_>> {
            let o = self.1.clone();
            Box::pin(async move { o })
        }
    }

    struct NoMetrics;
    impl MetricSink for NoMetrics {
        async fn publish(&self, _: &[ProbeResult]) -> Result<(), MetricsError> {
            Err(MetricsError::Unavailable("down".into()))
        }
    }

    #[test]
    fn secret_parts_include_the_password() {
        assert_eq!(
            secret_parts("postgres://app:s3cret@db:5432/x"),
            vec![
                "postgres://app:s3cret@db:5432/x".to_owned(),
                "s3cret".to_owned()
            ]
        );
        assert_eq!(
            secret_parts("redis://cache:6379"),
            vec!["redis://cache:6379".to_owned()]
        );
    }

    /// Redis, whose evicted-keys counter grows by 10 at every probe.
    struct Evicting(std::sync::atomic::AtomicU32);
    impl Probe for Evicting {
        fn component(&self) -> Component {
            Component::Redis
        }
        fn observe(
            &self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Observation> + Send + '_>> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Box::pin(async move {
                Observation::measured(vec![Measurement::new(
                    "evictedKeys",
                    f64::from(n * 10),
                    Unit::Count,
                )])
            })
        }
    }

    struct OkMetrics;
    impl MetricSink for OkMetrics {
        async fn publish(&self, _: &[ProbeResult]) -> Result<(), MetricsError> {
            Ok(())
        }
    }

    type Engine =
        AlertEngine<MemoryAlertStore, RecordingPublisher, StaticSilences, StaticComponents>;

    fn engine(publisher: &RecordingPublisher) -> Engine {
        AlertEngine::new(
            Arc::new(AlertRules::default_rules().unwrap()),
            MemoryAlertStore::default(),
            publisher.clone(),
            StaticSilences(vec![]),
            StaticComponents(vec![]),
            EngineSettings::default(),
            Arc::new(TokioTimer),
        )
    }

    /// Evictions are the difference to the previous run's result, so the
    /// latest results are read before the new ones replace them: two runs
    /// with evictions (within 5 minutes) fire `resource_utilization`.
    #[tokio::test]
    async fn evictions_between_runs_raise_an_alert() {
        let t0 = time::macros::datetime!(2026-11-30 08:00 UTC);
        let clock = Arc::new(ManualClock::new(t0));
        let run = ProbeRun {
            probes: vec![Box::new(Evicting(Default::default()))],
            store: MemoryStore::default(),
            metrics: OkMetrics,
            limits: ProbeLimits::default(),
            history_ttl: Duration::from_secs(60),
            scrubber: Scrubber::default(),
            clock: clock.clone(),
        };
        let publisher = RecordingPublisher::default();
        let alerts = engine(&publisher);
        let mut transitions = Vec::new();
        for minute in 0..3 {
            clock.set(t0 + time::Duration::minutes(minute));
            let summary = run.run_with_alerts(&alerts).await.unwrap();
            transitions.push(summary.alert_transitions);
        }
        // The first run has no previous result, the second sees one
        // eviction, the third a second one: the rule fires.
        assert_eq!(transitions, [0, 0, 1]);
        let incidents = publisher.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            (incidents[0].rule.as_str(), incidents[0].key.as_str()),
            ("resource_utilization", "redis_evictions")
        );
    }

    /// Three failed probes in a row fire `component_down`, once.
    #[tokio::test]
    async fn a_component_down_for_three_probes_fires_once() {
        let t0 = time::macros::datetime!(2026-11-30 08:00 UTC);
        let clock = Arc::new(ManualClock::new(t0));
        let run = ProbeRun {
            probes: vec![Box::new(Fixed(
                Component::Database,
                Observation::failed(Reason::Unreachable, "refused"),
            ))],
            store: MemoryStore::default(),
            metrics: OkMetrics,
            limits: ProbeLimits::default(),
            history_ttl: Duration::from_secs(60),
            scrubber: Scrubber::default(),
            clock: clock.clone(),
        };
        let publisher = RecordingPublisher::default();
        let alerts = engine(&publisher);
        for minute in 0..5 {
            clock.set(t0 + time::Duration::minutes(minute));
            run.run_with_alerts(&alerts).await.unwrap();
        }
        let incidents = publisher.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            (incidents[0].rule.as_str(), incidents[0].key.as_str()),
            ("component_down", "database")
        );
    }

    /// The alert inputs of each run, kept for the test to read.
    #[derive(Default)]
    struct RecordingAlerts(std::sync::Mutex<Vec<ProbeSignal>>);
    impl Alerts for RecordingAlerts {
        async fn ingest(
            &self,
            _: &[monitoring_core::domain::rules::Signal],
            _: OffsetDateTime,
        ) -> Result<EngineOutcome, EngineError> {
            Ok(EngineOutcome::default())
        }

        async fn evaluate(&self, _: OffsetDateTime) -> Result<EngineOutcome, EngineError> {
            Ok(EngineOutcome::default())
        }

        async fn ingest_probes(
            &self,
            signals: &[ProbeSignal],
            _: OffsetDateTime,
        ) -> Result<EngineOutcome, EngineError> {
            self.0.lock().unwrap().extend_from_slice(signals);
            Ok(EngineOutcome::default())
        }
    }

    /// Secrets are resolved from the environment here, never from AWS.
    fn offline_secrets() -> SecretResolver {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        SecretResolver::new(&sdk)
    }

    /// Unset means off: with nothing set, database, redis, oauth and
    /// certificates are `not_configured`, the drift probe reads the heartbeat
    /// of the drift job's log records, the system is healthy, no
    /// `not_configured` component raises a probe signal, and none is down.
    #[tokio::test]
    async fn nothing_set_is_not_configured_and_healthy() {
        let config = ProbeConfig::from_env(&monitoring_config::Env::default()).unwrap();
        assert_eq!(config.drift.source, DriftSource::Logs);
        let heartbeats = Arc::new(MemoryStore::default());
        heartbeats.set_heartbeat(
            monitoring_core::domain::heartbeat::Heartbeat::DriftScan,
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
        );
        let (probes, scrubber) = build_probes(&config, &offline_secrets(), heartbeats)
            .await
            .unwrap();
        let clock = Arc::new(SystemClock);
        let run = ProbeRun {
            probes,
            store: MemoryStore::default(),
            metrics: OkMetrics,
            limits: config.limits,
            history_ttl: config.history_ttl,
            scrubber,
            clock: clock.clone(),
        };
        let alerts = RecordingAlerts::default();
        let summary = run.run_with_alerts(&alerts).await.unwrap();
        let statuses: Vec<(Component, Status)> = summary
            .components
            .iter()
            .map(|c| (c.component, c.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (Component::Database, Status::NotConfigured),
                (Component::Redis, Status::NotConfigured),
                (Component::Oauth, Status::NotConfigured),
                (Component::DriftDetection, Status::Pass),
                (Component::Certificates, Status::NotConfigured),
            ]
        );
        assert!(summary.components.iter().all(|c| c.reason.is_none()));

        let report = monitoring_core::domain::health_report::HealthReport::assess(
            run.store.latest().await.unwrap(),
            clock.now(),
            Duration::from_secs(180),
        );
        assert_eq!(report.status, Status::Pass);
        assert!(report.is_healthy());

        let keys: Vec<String> = alerts
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.key.clone())
            .collect();
        assert_eq!(keys, ["drift_detection"]);
        assert!(
            run.store
                .down_components(OffsetDateTime::UNIX_EPOCH)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A component that is not configured never pages, however many runs
    /// (the same runs as `a_component_down_for_three_probes_fires_once`).
    #[tokio::test]
    async fn a_component_that_is_not_configured_never_fires() {
        let t0 = time::macros::datetime!(2026-11-30 08:00 UTC);
        let clock = Arc::new(ManualClock::new(t0));
        let run = ProbeRun {
            probes: vec![Box::new(Fixed(
                Component::Database,
                Observation::not_configured("DATABASE_URL is not set"),
            ))],
            store: MemoryStore::default(),
            metrics: OkMetrics,
            limits: ProbeLimits::default(),
            history_ttl: Duration::from_secs(60),
            scrubber: Scrubber::default(),
            clock: clock.clone(),
        };
        let publisher = RecordingPublisher::default();
        let alerts = engine(&publisher);
        for minute in 0..5 {
            clock.set(t0 + time::Duration::minutes(minute));
            let summary = run.run_with_alerts(&alerts).await.unwrap();
            assert_eq!(summary.alert_transitions, 0);
        }
        assert!(publisher.incidents().is_empty());
    }

    /// `sql` without a database cannot run: an error at cold start, also
    /// for a configuration not read from the environment.
    #[tokio::test]
    async fn a_sql_drift_source_without_a_database_is_refused() {
        let mut config = ProbeConfig::from_env(&monitoring_config::Env::default()).unwrap();
        config.drift.source = DriftSource::Sql {
            query: "SELECT now()".into(),
        };
        let err = build_probes(
            &config,
            &offline_secrets(),
            Arc::new(MemoryStore::default()),
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(&err, ConfigError::Missing { var, .. } if var == "DATABASE_URL"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn results_are_stored_even_when_metrics_fail() {
        let run = ProbeRun {
            probes: vec![Box::new(Fixed(
                Component::Redis,
                Observation::failed(Reason::Unreachable, "redis://:pw@x refused"),
            ))],
            store: MemoryStore::default(),
            metrics: NoMetrics,
            limits: ProbeLimits::default(),
            history_ttl: Duration::from_secs(60),
            scrubber: Scrubber::default(),
            clock: Arc::new(SystemClock),
        };
        assert!(matches!(run.run().await, Err(RunError::Metrics(_))));
        let stored = run.store.latest().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].detail.as_deref(), Some("redis://***@x refused"));
    }
}
