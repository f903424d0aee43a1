//! The domain's edges: small traits that adapters implement (DynamoDB,
//! CloudWatch, Postgres, Redis, HTTP) and in-memory versions stand in for in
//! unit tests.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;

use crate::domain::metrics::aggregate::BatchMetrics;
use crate::domain::metrics::series::StoredSeries;
use crate::domain::probe_result::{Component, Observation, ProbeResult};

/// Something the component probe checks. Object-safe so a run can hold one
/// list of heterogeneous probes.
pub trait Probe: Send + Sync {
    fn component(&self) -> Component;
    /// Observes the dependency once. Must not enforce its own overall timeout:
    /// the runner does, and drops the future when it expires.
    fn observe(&self) -> BoxFuture<'_, Observation>;
}

/// Where probe results live between the probe and the health endpoint.
pub trait ProbeStore: Send + Sync {
    /// Stores each result as its component's latest and in its history,
    /// which expires after `history_ttl`.
    fn save(
        &self,
        results: &[ProbeResult],
        history_ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest result of every component that has one, in one request.
    fn latest(&self) -> impl Future<Output = Result<Vec<ProbeResult>, StoreError>> + Send;
}

/// Reads liveness marks written by other parts of the system (e.g. the drift
/// scanner's "scan completed" heartbeat).
pub trait HeartbeatSource: Send + Sync {
    fn last_heartbeat<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<OffsetDateTime>, StoreError>>;
}

/// Records liveness marks (the drift scanner's heartbeat, seen in its logs).
pub trait HeartbeatSink: Send + Sync {
    fn beat(
        &self,
        name: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where probe metrics go (CloudWatch in AWS).
pub trait MetricSink: Send + Sync {
    fn publish(
        &self,
        results: &[ProbeResult],
    ) -> impl Future<Output = Result<(), MetricsError>> + Send;
}

/// Where cumulative metric series live (DynamoDB in AWS).
pub trait SeriesStore: Send + Sync {
    /// Adds a batch's deltas exactly once per `batch_id`: a redelivered
    /// batch changes nothing.
    fn apply_batch(
        &self,
        batch_id: &str,
        metrics: &BatchMetrics,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<ApplyOutcome, StoreError>> + Send;
}

/// Reads cumulative series back (for `/metrics`).
pub trait SeriesSource: Send + Sync {
    /// Every stored series of one metric.
    fn read_metric(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<StoredSeries>, StoreError>> + Send;
}

/// What applying a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// Writes (transactions) that changed the store.
    pub applied_chunks: usize,
    /// Writes refused because an earlier delivery applied them.
    pub duplicate_chunks: usize,
    /// Store requests made, retries included.
    pub requests: usize,
}

/// The current time, injectable for tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, network, service errors: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item that does not decode: a bug or a foreign writer.
    #[error("stored item {pk}/{sk} is malformed: {reason}")]
    Malformed {
        pk: String,
        sk: String,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics backend unavailable: {0}")]
    Unavailable(String),
}
