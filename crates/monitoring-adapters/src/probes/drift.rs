//! The `drift_detection` probe: the configuration-drift scanner is alive when
//! its last scan is recent enough. By default the time is the `drift_scan`
//! heartbeat log-metrics keeps in the monitoring table from the drift job's
//! own log records, which every BlindspotX deployment writes; a SQL query on
//! the BlindspotX database is an opt-in for deployments that record scans
//! in a table of their own (the guide defines none).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;

use super::postgres::{PostgresConnector, failure};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::probe_result::{Component, Measurement, Observation, Reason, Unit};
use monitoring_core::ports::{HeartbeatSource, Probe};

pub enum LastScanSource {
    /// `query` returns one row with one timestamp (with or without time zone;
    /// UTC assumed). There is always a connector: `DRIFT_SOURCE=sql` without
    /// a database is rejected when the configuration loads.
    Sql {
        connector: Box<PostgresConnector>,
        query: String,
    },
    /// The `drift_scan` heartbeat (the default).
    Heartbeat(Arc<dyn HeartbeatSource>),
}

pub struct DriftProbe {
    source: LastScanSource,
    max_age: Duration,
}

impl DriftProbe {
    pub fn new(source: LastScanSource, max_age: Duration) -> Self {
        DriftProbe { source, max_age }
    }

    async fn last_scan(&self) -> Result<Option<OffsetDateTime>, Observation> {
        match &self.source {
            LastScanSource::Sql { connector, query } => {
                let client = connector.connect().await?;
                // Epoch seconds make timestamp and timestamptz columns alike.
                let wrapped = format!("SELECT extract(epoch FROM ({query}))::float8");
                let row = client
                    .query_one(&wrapped, &[])
                    .await
                    .map_err(|e| failure(&e, Reason::QueryFailed))?;
                let epoch: Option<f64> = row.get(0);
                Ok(epoch.and_then(|s| {
                    OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok()
                }))
            }
            LastScanSource::Heartbeat(source) => source
                .last_heartbeat(Heartbeat::DriftScan)
                .await
                .map_err(|e| Observation::failed(Reason::Unreachable, e.to_string())),
        }
    }
}

impl Probe for DriftProbe {
    fn component(&self) -> Component {
        Component::DriftDetection
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            match self.last_scan().await {
                Err(failed) => failed,
                Ok(None) => match self.source {
                    // The deployment pointed at its own table of scans:
                    // an empty one is a failure.
                    LastScanSource::Sql { .. } => Observation::failed(
                        Reason::NoScanRecorded,
                        "the DRIFT_SQL query found no drift scan",
                    ),
                    // A new stack (the default source): nothing to be late
                    // against yet, so a warning, healthy, which raises no
                    // incident; the first scan record starts the clock.
                    LastScanSource::Heartbeat(_) => Observation::default().with_reason(
                        monitoring_core::domain::probe_result::Status::Warn,
                        Reason::NoScanRecorded,
                        "log-metrics has seen no log record of the drift job yet",
                    ),
                },
                Ok(Some(at)) => {
                    let age = (OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0);
                    let limit = self.max_age.as_secs_f64();
                    let observation = Observation::measured(vec![
                        Measurement::new("lastScanAge", age, Unit::Seconds)
                            .rated_above(limit, limit),
                    ]);
                    if age >= limit {
                        observation.with_reason(
                            monitoring_core::domain::probe_result::Status::Fail,
                            Reason::ScanOverdue,
                            format!("last scan {age:.0} s ago, limit {limit:.0} s"),
                        )
                    } else {
                        observation
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_core::domain::probe_result::Status;
    use monitoring_core::memory::store::MemoryStore;

    fn probe(store: Arc<MemoryStore>) -> DriftProbe {
        DriftProbe::new(LastScanSource::Heartbeat(store), Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn recent_heartbeat_passes() {
        let store = Arc::new(MemoryStore::default());
        store.set_heartbeat(
            Heartbeat::DriftScan,
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
        );
        let obs = probe(store).observe().await;
        assert_eq!(obs.overall_status(), Status::Pass);
        assert!((obs.measurements[0].value - 300.0).abs() < 5.0);
    }

    #[tokio::test]
    async fn old_heartbeat_is_overdue() {
        let store = Arc::new(MemoryStore::default());
        store.set_heartbeat(
            Heartbeat::DriftScan,
            OffsetDateTime::now_utc() - time::Duration::hours(2),
        );
        let obs = probe(store).observe().await;
        assert_eq!(obs.overall_status(), Status::Fail);
        assert_eq!(obs.reason, Some(Reason::ScanOverdue));
    }

    /// A first deploy: no drift job record seen yet is a warning (health
    /// stays 200, no incident), not a failure.
    #[tokio::test]
    async fn missing_heartbeat_warns() {
        let obs = probe(Arc::new(MemoryStore::default())).observe().await;
        assert_eq!(obs.reason, Some(Reason::NoScanRecorded));
        assert_eq!(obs.overall_status(), Status::Warn);
        assert!(obs.overall_status().is_healthy());
    }
}
