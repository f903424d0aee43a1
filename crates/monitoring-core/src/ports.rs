//! The domain's edges: small traits that adapters implement (DynamoDB,
//! CloudWatch, Postgres, Redis, HTTP) and in-memory versions stand in for in
//! unit tests.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;

use crate::domain::heartbeat::Heartbeat;
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
    fn last_heartbeat(
        &self,
        heartbeat: Heartbeat,
    ) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>>;
}

/// Records liveness marks (the drift scanner's heartbeat, seen in its logs).
pub trait HeartbeatSink: Send + Sync {
    fn beat(
        &self,
        heartbeat: Heartbeat,
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
    /// Adds one chunk's deltas unless chunk `index` of `batch_id` was
    /// applied before: whole or not at all. A chunk holds at most
    /// [`SERIES_PER_CHUNK`](crate::domain::pipeline::SERIES_PER_CHUNK)
    /// series.
    fn apply_chunk(
        &self,
        batch_id: &str,
        index: usize,
        chunk: &BatchMetrics,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<ChunkOutcome, StoreError>> + Send;

    /// Applies `chunks` in order, as chunks `0..` of `batch_id`; an error
    /// leaves the chunks before it applied (a retry finds them done).
    fn apply_chunks(
        &self,
        batch_id: &str,
        chunks: &[BatchMetrics],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<ApplyOutcome, StoreError>> + Send {
        async move {
            let mut outcome = ApplyOutcome::default();
            for (index, chunk) in chunks.iter().enumerate() {
                let done = self.apply_chunk(batch_id, index, chunk, now).await?;
                outcome.add(index, done);
            }
            Ok(outcome)
        }
    }

    /// Adds a batch's deltas exactly once per `batch_id`: a redelivered
    /// batch changes nothing. For batches that went through no cardinality
    /// guard (or one that never folds), chunked by
    /// [`chunk_batch`](crate::domain::pipeline::chunk_batch).
    fn apply_batch(
        &self,
        batch_id: &str,
        metrics: &BatchMetrics,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<ApplyOutcome, StoreError>> + Send {
        async move {
            let chunks = crate::domain::pipeline::chunk_batch(
                metrics,
                &mut crate::domain::metrics::aggregate::CardinalityGuard::unbounded(),
            );
            self.apply_chunks(batch_id, &chunks, now).await
        }
    }
}

/// What applying one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkOutcome {
    /// False when an earlier delivery had applied it.
    pub applied: bool,
    /// Store requests made, retries included.
    pub requests: usize,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// Writes (transactions) that changed the store.
    pub applied_chunks: usize,
    /// The indexes of the chunks this call applied (the others were
    /// applied before): what to write EMF for.
    pub applied: Vec<usize>,
    /// Writes refused because an earlier delivery applied them.
    pub duplicate_chunks: usize,
    /// Store requests made, retries included.
    pub requests: usize,
}

impl ApplyOutcome {
    /// Counts chunk `index`'s outcome.
    pub fn add(&mut self, index: usize, chunk: ChunkOutcome) {
        self.requests += chunk.requests;
        if chunk.applied {
            self.applied_chunks += 1;
            self.applied.push(index);
        } else {
            self.duplicate_chunks += 1;
        }
    }
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

/// One message for the incidents topic (the incident's serialization).
pub use crate::domain::alerts::incident::OutgoingMessage;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Refused for good: the message itself (too large, bad attribute) or
    /// the topic (missing, no rights to publish, its key disabled).
    /// Sending it again cannot help until someone fixes it, so the engine
    /// moves it aside as a dead letter (with an alarm) instead of retrying.
    #[error("publish rejected: {0}")]
    Rejected(String),
    /// Network, throttling, 5xx: worth retrying; the notice stays in the
    /// outbox.
    #[error("publisher unreachable: {0}")]
    Unavailable(String),
}

/// Where incident transitions are published (SNS in AWS).
pub trait IncidentPublisher: Send + Sync {
    fn publish(
        &self,
        message: &OutgoingMessage,
    ) -> impl std::future::Future<Output = Result<(), PublishError>> + Send;
}

/// Where silences live (the monitoring table in AWS).
pub trait SilenceStore: Send + Sync {
    /// Stores a validated silence; creating the same id again replaces it.
    fn create(
        &self,
        silence: &crate::domain::silence::Silence,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The silences not yet over at `now` (in force or starting later),
    /// soonest end first; with `include_expired`, the ended ones the store
    /// still keeps too.
    fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> impl Future<Output = Result<Vec<crate::domain::silence::Silence>, StoreError>> + Send;

    /// Ends silence `id` at `at`, recording `by` ([`Silence::expire`]),
    /// and keeps it for the record.
    ///
    /// [`Silence::expire`]: crate::domain::silence::Silence::expire
    fn expire(
        &self,
        id: &str,
        at: OffsetDateTime,
        by: &str,
    ) -> impl Future<Output = Result<ExpireOutcome, StoreError>> + Send;
}

/// What [`SilenceStore::expire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// Ended now; the silence as stored.
    Expired(crate::domain::silence::Silence),
    /// It had already ended (on its own or expired before): unchanged.
    AlreadyEnded(crate::domain::silence::Silence),
    /// No such silence (or its record is past retention).
    NotFound,
}

/// Where alert windows, incidents and their outbox live (DynamoDB in AWS).
/// Commits are atomic per window change: the window's new version, its
/// incidents, outbox entries and index entries together or not at all.
pub trait AlertStore: Send + Sync {
    /// The windows, in the order asked (`None`: never written).
    fn load_windows(
        &self,
        ids: &[crate::domain::alerts::WindowId],
    ) -> impl Future<Output = Result<Vec<Option<crate::domain::alerts::StoredWindow>>, StoreError>> + Send;

    /// Writes each change if its window still has the expected version;
    /// `log_delivery` also refreshes the log-delivery heartbeat.
    fn commit(
        &self,
        changes: &[crate::domain::alerts::WindowChange],
        log_delivery: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<Vec<crate::domain::alerts::CommitResult>, StoreError>> + Send;

    /// Removes published notices from the outbox (and the pending index);
    /// returns how many were still there (the others were marked by
    /// someone else).
    fn mark_sent(
        &self,
        notices: &[crate::domain::alerts::Notice],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Every firing incident's index entry.
    fn open_incidents(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::domain::alerts::OpenIncident>, StoreError>> + Send;

    /// Every unsent notice.
    fn pending_notices(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::domain::alerts::PendingNotice>, StoreError>> + Send;

    /// Takes a lease on a pending notice before republishing it; `false`
    /// when it is gone or another holder's lease runs.
    fn claim_notice(
        &self,
        transition_id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn incident(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<crate::domain::alerts::StoredIncident>, StoreError>> + Send;

    /// Moves a notice the topic refused for good out of the outbox (and
    /// the pending index) into the dead letters, with the reason; `false`
    /// when it was no longer in the outbox (sent or moved by another run).
    fn dead_letter(
        &self,
        notice: &crate::domain::alerts::Notice,
        reason: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every dead letter kept (counted by the evaluator for its alarm).
    fn dead_letters(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::domain::alerts::DeadLetter>, StoreError>> + Send;

    /// When a log batch was last ingested (the dead man's switch).
    fn last_log_delivery(
        &self,
    ) -> impl Future<Output = Result<Option<OffsetDateTime>, StoreError>> + Send;
}

/// The silences in force, for the alert engine.
pub trait SilenceSource: Send + Sync {
    fn active(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<crate::domain::silence::Silence>, StoreError>> + Send;
}

impl<T: SilenceStore> SilenceSource for T {
    async fn active(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::domain::silence::Silence>, StoreError> {
        self.list(now, false).await
    }
}

/// Which components are down now, for inhibition.
pub trait ComponentStatus: Send + Sync {
    /// Components whose latest probe, made at `fresh_since` or later,
    /// failed: an older result says nothing about now.
    fn down_components(
        &self,
        fresh_since: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Component>, StoreError>> + Send;
}

/// A component is down when its latest probe failed, recently. Only `fail` counts: a
/// component that is not configured is never down, so it never inhibits a
/// rule (nothing about it explains anyone's signals).
impl<T: ProbeStore> ComponentStatus for T {
    async fn down_components(
        &self,
        fresh_since: OffsetDateTime,
    ) -> Result<Vec<Component>, StoreError> {
        Ok(self
            .latest()
            .await?
            .into_iter()
            .filter(|r| {
                r.status == crate::domain::probe_result::Status::Fail && r.checked_at >= fresh_since
            })
            .map(|r| r.component)
            .collect())
    }
}

// ------------------------------------------------ incident delivery, response

/// Why a channel did not take an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver refused the request (HTTP 4xx other than 408/429):
    /// sending it again cannot help. `detail` is scrubbed.
    #[error("refused with HTTP {status}: {detail}")]
    Refused { status: u16, detail: String },
    /// Timeouts, connection errors, 5xx, throttling: worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The channel has no URL or key configured.
    #[error("not configured")]
    NotConfigured,
}

impl DeliveryError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, DeliveryError::Unavailable(_))
    }
}

/// Sends one incident transition to one channel (HTTP in AWS), retries
/// included.
pub trait ChannelSender: Send + Sync {
    /// Whether the channel has what it needs (URL, key).
    fn configured(&self, channel: crate::domain::security_response::Channel) -> bool;

    fn send(
        &self,
        channel: crate::domain::security_response::Channel,
        incident: &crate::domain::alerts::Incident,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// Delivery markers: which (incident, transition, channel) went out, so a
/// redelivered message notifies no channel twice.
pub trait DeliveryLog: Send + Sync {
    fn delivered(
        &self,
        incident_id: &str,
        transition_id: &str,
        channel: crate::domain::security_response::Channel,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a delivery; recording one that is already there is not an
    /// error (a concurrent invocation delivered it too).
    fn mark_delivered(
        &self,
        incident_id: &str,
        transition_id: &str,
        channel: crate::domain::security_response::Channel,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One revocation done: what happened and how to undo it, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub detail: String,
    pub undo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    /// The auth service refused (4xx): a human has to look.
    #[error("revocation refused: {0}")]
    Refused(String),
    /// Redis or the auth service unreachable, 5xx: worth retrying.
    #[error("revoker unavailable: {0}")]
    Unavailable(String),
}

/// Revokes a user's tokens (Redis keys, or the auth service's endpoint).
pub trait Revoker: Send + Sync {
    /// `redis`, `http` or `none`, for the record.
    fn name(&self) -> &'static str;

    /// Revokes every token of `user_id`; idempotent (revoking twice leaves
    /// the same state).
    fn revoke_user(
        &self,
        user_id: &str,
        incident_id: &str,
    ) -> impl Future<Output = Result<Revocation, RevokeError>> + Send;
}

/// Incidents as the alert engine stored them, for a subscriber to check a
/// delivered message against (the security responder acts only on an
/// incident the table holds as delivered).
pub trait IncidentSource: Send + Sync {
    /// The incident's latest transition, `None` when there is no such
    /// incident.
    fn stored_incident(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<crate::domain::alerts::Incident>, StoreError>> + Send;
}

/// Where the security responder claims incidents, counts revocations per
/// hour and keeps its records (the monitoring table in AWS).
pub trait ResponseStore: Send + Sync {
    /// The record of an incident already handled.
    fn record(
        &self,
        incident_id: &str,
    ) -> impl Future<
        Output = Result<Option<crate::domain::security_response::ResponseRecord>, StoreError>,
    > + Send;

    /// Takes the incident for `lease`; `false` when another invocation
    /// holds it.
    fn claim(
        &self,
        incident_id: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes one revocation of `now`'s clock hour for `rule` if fewer than
    /// `cap` were taken for that rule; `false` when its cap is reached.
    /// Counted per rule, so one attack cannot use up another rule's cap.
    fn take_hourly_slot(
        &self,
        rule: &str,
        now: OffsetDateTime,
        cap: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks `user` as revoked by `incident_id` until `now + period`;
    /// `false` when another incident's mark still runs. Taking it again for
    /// the same incident succeeds (a retry after a failure).
    fn take_user_cooldown(
        &self,
        user: &str,
        incident_id: &str,
        now: OffsetDateTime,
        period: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes `incident_id`'s mark on `user` (nothing was revoked after
    /// all); another incident's mark stays.
    fn release_user_cooldown(
        &self,
        user: &str,
        incident_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes (or rewrites) the incident's record.
    fn save(
        &self,
        record: &crate::domain::security_response::ResponseRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::probe_result::Reason;
    use crate::memory::store::MemoryStore;

    fn stored(component: Component, observation: Observation) -> ProbeResult {
        ProbeResult::from_observation(component, observation, OffsetDateTime::UNIX_EPOCH, 1.0)
    }

    /// Inhibition reads this: a component that is not configured is never
    /// down, a failing one is.
    #[tokio::test]
    async fn not_configured_components_are_never_down() {
        let store = MemoryStore::with_results(vec![
            stored(
                Component::Database,
                Observation::not_configured("DATABASE_URL is not set"),
            ),
            stored(
                Component::Oauth,
                Observation::not_configured("OIDC_ISSUER is not set"),
            ),
            stored(
                Component::Redis,
                Observation::failed(Reason::Unreachable, "refused"),
            ),
            stored(Component::DriftDetection, Observation::default()),
        ]);
        let epoch = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            store.down_components(epoch).await.unwrap(),
            [Component::Redis]
        );
        // A failure older than the freshness bound explains nothing now.
        let later = epoch + time::Duration::minutes(3);
        assert!(store.down_components(later).await.unwrap().is_empty());
    }
}

/// A secret's value now and, while a rotation is under way, the value it
/// replaces (Secrets Manager's AWSCURRENT and AWSPREVIOUS stages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersions {
    pub current: crate::config::Secret,
    pub previous: Option<crate::config::Secret>,
}

/// Where a rotating secret is read from (re-read on a schedule by its
/// user). Boxed futures keep it object-safe: one function holds several.
pub trait SecretVersionSource: Send + Sync {
    fn fetch(&self) -> BoxFuture<'_, Result<SecretVersions, crate::config::ConfigError>>;
}

/// Waits between retries ([`crate::retry::Backoff::wait`]): the sleep, and
/// the deadline of the current invocation that no sleep may end past. The
/// functions use `monitoring_adapters::retry::TokioTimer` (tokio's sleep,
/// and the deadline the Lambda entry point sets).
pub trait RetryTimer: Send + Sync {
    /// Time left before the deadline of the current invocation, if one is
    /// set.
    fn remaining(&self) -> Option<Duration>;
    /// Sleeps for `delay`.
    fn sleep(&self, delay: Duration) -> BoxFuture<'static, ()>;
}

/// The alert engine as the functions hold it (log-metrics, component-probe,
/// alert-evaluator), defined beside its implementation
/// [`crate::domain::alerts::AlertEngine`], whose outcome and error it
/// returns; tests stand in with their own.
pub use crate::domain::alerts::engine::Alerts;
