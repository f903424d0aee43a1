//! One probe run: probe every component concurrently, store the results
//! (latest + history) and publish them as CloudWatch metrics.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use shared::adapters::secrets::SecretResolver;
use shared::config::ConfigError;
use shared::config::probe::{DriftSource, ProbeConfig};
use shared::domain::probe_result::{Component, ProbeResult, Reason, Status};
use shared::domain::probe_runner::{ProbeLimits, run_probes};
use shared::domain::scrub::Scrubber;
use shared::ports::{
    Clock, HeartbeatSource, MetricSink, MetricsError, Probe, ProbeStore, StoreError,
};
use shared::probes::certificates::CertificateProbe;
use shared::probes::drift::{DriftProbe, LastScanSource};
use shared::probes::oidc::OidcProbe;
use shared::probes::postgres::{DatabaseThresholds, PostgresConnector, PostgresProbe};
use shared::probes::redis::{CacheThresholds, RedisProbe};
use shared::probes::tls;

/// Why a run failed. Both are transient: Lambda retries the invocation.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("storing probe results failed: {0}")]
    Store(#[from] StoreError),
    #[error("publishing probe metrics failed: {0}")]
    Metrics(#[from] MetricsError),
}

/// The invocation's answer: per component, status and public reason only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub components: Vec<ComponentSummary>,
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
    /// Probes, stores, publishes. Results are stored before metrics are sent,
    /// so a CloudWatch outage never hides the health state.
    pub async fn run(&self) -> Result<RunSummary, RunError> {
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
                _ => tracing::warn!(
                    component = %r.component,
                    status = r.status.as_str(),
                    reason = r.reason.map(Reason::as_str),
                    detail = r.detail.as_deref(),
                    "probe not passing"
                ),
            }
        }
        self.store.save(&results, self.history_ttl).await?;
        self.metrics.publish(&results).await?;
        Ok(summarize(&results))
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
    }
}

/// The five probes and a scrubber that knows every configured secret.
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
            connector: connector.clone().map(Box::new),
            query: query.clone(),
        },
        DriftSource::Table => LastScanSource::Heartbeat(heartbeats),
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
    use shared::adapters::memory_store::MemoryStore;
    use shared::domain::probe_result::Observation;
    use shared::ports::SystemClock;

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
