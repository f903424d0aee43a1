//! The `database` probe: the BlindspotX Postgres, as the guide's Maintenance
//! Monitoring asks — latency, connection pool use, lock contention, query
//! performance and index usage of the auth tables.

use std::error::Error as _;
use std::sync::Arc;

use futures::future::BoxFuture;
use rustls::ClientConfig;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use monitoring_core::config::{ConfigError, Secret};
use monitoring_core::domain::probe_result::{Component, Measurement, Observation, Reason, Unit};
use monitoring_core::ports::Probe;

/// Warn / fail levels of the database measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatabaseThresholds {
    /// Percent of `max_connections` in use.
    pub connection_utilization: (f64, f64),
    /// Sessions waiting on a lock.
    pub lock_waits: (f64, f64),
    /// Seconds the longest active query has run.
    pub longest_query_seconds: (f64, f64),
}

impl Default for DatabaseThresholds {
    fn default() -> Self {
        DatabaseThresholds {
            connection_utilization: (80.0, 95.0),
            lock_waits: (5.0, 50.0),
            longest_query_seconds: (60.0, 600.0),
        }
    }
}

/// Opens connections to the BlindspotX database (TLS when `sslmode` asks).
#[derive(Clone)]
pub struct PostgresConnector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl PostgresConnector {
    pub fn new(url: &Secret, tls: Arc<ClientConfig>) -> Result<Self, ConfigError> {
        let config = url
            .expose()
            .parse::<tokio_postgres::Config>()
            .map_err(|e| ConfigError::InvalidSecret {
                var: "DATABASE_URL".into(),
                reason: format!("not a Postgres connection string: {e}"),
            })?;
        Ok(PostgresConnector {
            config,
            tls: MakeRustlsConnect::new((*tls).clone()),
        })
    }

    /// A fresh connection; its driver task ends when the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, Observation> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| failure(&e, Reason::Unreachable))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed with an error");
            }
        });
        Ok(client)
    }
}

/// Maps a driver error to a public reason; `otherwise` when nothing more
/// specific applies (unreachable while connecting, query failure after).
pub fn failure(err: &tokio_postgres::Error, otherwise: Reason) -> Observation {
    let reason = match err.code() {
        Some(code)
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            Reason::AuthenticationFailed
        }
        Some(_) => Reason::QueryFailed,
        None => otherwise,
    };
    let mut detail = err.to_string();
    if let Some(source) = err.source() {
        detail = format!("{detail}: {source}");
    }
    Observation::failed(reason, detail)
}

pub struct PostgresProbe {
    connector: Option<PostgresConnector>,
    auth_tables: Vec<String>,
    thresholds: DatabaseThresholds,
}

impl PostgresProbe {
    /// `connector` is `None` when no database is configured (`DATABASE_URL`
    /// unset): the probe then reports `not_configured`, which is neither a
    /// pass (nothing was checked) nor a failure (unset means off).
    pub fn new(
        connector: Option<PostgresConnector>,
        auth_tables: Vec<String>,
        thresholds: DatabaseThresholds,
    ) -> Self {
        PostgresProbe {
            connector,
            auth_tables,
            thresholds,
        }
    }

    async fn check(&self, connector: &PostgresConnector) -> Result<Observation, Observation> {
        let client = connector.connect().await?;
        let started = Instant::now();
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| failure(&e, Reason::QueryFailed))?;
        let response_ms = started.elapsed().as_secs_f64() * 1000.0;

        let stats = client
            .query_one(
                "SELECT \
                   (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8, \
                   current_setting('max_connections')::float8, \
                   (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock')::float8, \
                   (SELECT greatest(coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0), 0) \
                      FROM pg_stat_activity \
                      WHERE state = 'active' AND backend_type = 'client backend' \
                        AND pid <> pg_backend_pid())::float8",
                &[],
            )
            .await
            .map_err(|e| failure(&e, Reason::QueryFailed))?;
        let connections: f64 = stats.get(0);
        let max_connections: f64 = stats.get(1);
        let lock_waits: f64 = stats.get(2);
        let longest_query: f64 = stats.get(3);

        let t = &self.thresholds;
        let mut measurements = vec![
            Measurement::new("responseTime", response_ms, Unit::Milliseconds),
            Measurement::new("connections", connections, Unit::Count),
            Measurement::new(
                "connectionUtilization",
                100.0 * connections / max_connections.max(1.0),
                Unit::Percent,
            )
            .rated_above(t.connection_utilization.0, t.connection_utilization.1),
            Measurement::new("lockWaits", lock_waits, Unit::Count)
                .rated_above(t.lock_waits.0, t.lock_waits.1),
            Measurement::new("longestQuery", longest_query, Unit::Seconds)
                .rated_above(t.longest_query_seconds.0, t.longest_query_seconds.1),
        ];

        let tables = client
            .query(
                "SELECT relname::text, seq_scan::float8, coalesce(idx_scan, 0)::float8 \
                 FROM pg_stat_user_tables WHERE relname = ANY($1) ORDER BY relname",
                &[&self.auth_tables],
            )
            .await
            .map_err(|e| failure(&e, Reason::QueryFailed))?;
        for row in tables {
            let (table, seq, idx): (String, f64, f64) = (row.get(0), row.get(1), row.get(2));
            // A table nobody has read yet says nothing about index use.
            if seq + idx > 0.0 {
                measurements.push(
                    Measurement::new("indexScanRatio", 100.0 * idx / (seq + idx), Unit::Percent)
                        .with_target(table),
                );
            }
        }
        Ok(Observation::measured(measurements))
    }
}

impl Probe for PostgresProbe {
    fn component(&self) -> Component {
        Component::Database
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            match &self.connector {
                None => Observation::not_configured("DATABASE_URL is not set"),
                Some(connector) => self.check(connector).await.unwrap_or_else(|failed| failed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_core::domain::probe_result::Status;

    /// Unset means off: no `DATABASE_URL` is `not_configured`, not a failure.
    #[tokio::test]
    async fn unconfigured_database_is_not_configured_not_failing() {
        let probe = PostgresProbe::new(None, vec![], DatabaseThresholds::default());
        let obs = probe.observe().await;
        assert_eq!(obs.overall_status(), Status::NotConfigured);
        assert_eq!(obs.reason, None);
        assert_eq!(obs.detail.as_deref(), Some("DATABASE_URL is not set"));
    }
}
