//! Faults on demand: wrappers of the series store, alert store, heartbeat
//! and publisher ports that fail the way DynamoDB and SNS do under load
//! (transaction conflicts, throttling, timeouts after the write landed,
//! partial commits) and crash an invocation between its commit and its
//! publish, around any implementation of the port (the in-memory adapters,
//! the DynamoDB and SNS ones).
//!
//! Reproducible: whether a call fails, and how, is a function of the seed,
//! the operation, a key naming what it writes (batch id and chunk, window
//! ids, transition id) and how many times that key was tried before; not
//! of the order concurrent invocations happen to run in. A seed that
//! failed replays the same faults.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;
use tokio::sync::Notify;

use monitoring_core::domain::alerts::{
    CommitResult, Notice, OpenIncident, PendingNotice, StoredIncident, StoredWindow, WindowChange,
    WindowId,
};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::metrics::aggregate::BatchMetrics;
use monitoring_core::domain::metrics::series::StoredSeries;
use monitoring_core::ports::{
    AlertStore, ChunkOutcome, HeartbeatSink, IncidentPublisher, OutgoingMessage, PublishError,
    SeriesSource, SeriesStore, StoreError,
};

/// How often each fault is injected, per call (probabilities, summing to
/// at most 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// A write refused for a concurrent transaction (nothing written).
    pub conflict: f64,
    /// A request throttled (nothing written).
    pub throttle: f64,
    /// The write landed, then the response was lost: an error the caller
    /// cannot tell from a failure.
    pub timeout: f64,
    /// A multi-item write half done: the first part landed, then an error.
    pub partial: f64,
    /// The invocation dies after its commit, before the publish (and, for
    /// the series, between the series and the alert windows).
    pub crash: f64,
}

impl FaultPlan {
    pub const NONE: FaultPlan = FaultPlan {
        conflict: 0.0,
        throttle: 0.0,
        timeout: 0.0,
        partial: 0.0,
        crash: 0.0,
    };

    /// About one call in four fails.
    pub const HEAVY: FaultPlan = FaultPlan {
        conflict: 0.08,
        throttle: 0.06,
        timeout: 0.05,
        partial: 0.04,
        crash: 0.03,
    };
}

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Conflict,
    Throttle,
    Timeout,
    Partial,
    Crash,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Conflict => "conflict",
            Fault::Throttle => "throttle",
            Fault::Timeout => "timeout",
            Fault::Partial => "partial",
            Fault::Crash => "crash",
        }
    }
}

/// The fault source the wrappers share: seed, plan, and the record of what
/// was injected.
#[derive(Debug)]
pub struct Chaos {
    seed: u64,
    plan: FaultPlan,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Calls so far per (operation, key).
    calls: BTreeMap<(&'static str, String), u64>,
    /// Faults injected per (operation, fault).
    injected: BTreeMap<(&'static str, Fault), u64>,
    /// Items (notices, messages) the injected faults touched.
    affected: BTreeMap<(&'static str, Fault), u64>,
}

/// One invocation under [`run_invocation`].
#[derive(Debug, Default)]
struct Invocation {
    crash: Notify,
    /// Messages it published so far (a crash leaves them unmarked).
    published: std::sync::atomic::AtomicU64,
}

tokio::task_local! {
    static INVOCATION: Arc<Invocation>;
}

/// An invocation the chaos killed (see [`run_invocation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invocation crashed (injected)")]
pub struct Crashed;

/// Runs one invocation so that an injected crash ends it on the spot, as
/// Lambda's runtime dying would: whatever it wrote stays, the rest never
/// happens. Outside it, a crash is reported as an unavailable store or
/// publisher instead.
pub async fn run_invocation<F: Future>(f: F) -> Result<F::Output, Crashed> {
    let invocation = Arc::new(Invocation::default());
    let signal = invocation.clone();
    INVOCATION
        .scope(invocation, async move {
            tokio::select! {
                out = f => Ok(out),
                () = signal.crash.notified() => Err(Crashed),
            }
        })
        .await
}

impl Chaos {
    pub fn new(seed: u64, plan: FaultPlan) -> Arc<Self> {
        Arc::new(Chaos {
            seed,
            plan,
            state: Mutex::new(State::default()),
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Faults injected so far, by `operation/fault`.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.lock()
            .injected
            .iter()
            .map(|((op, fault), n)| (format!("{op}/{}", fault.as_str()), *n))
            .collect()
    }

    /// Items the faults injected so far touched (a failed `mark_sent` of
    /// three notices touches three), by `operation/fault`.
    pub fn affected(&self) -> BTreeMap<String, u64> {
        self.lock()
            .affected
            .iter()
            .map(|((op, fault), n)| (format!("{op}/{}", fault.as_str()), *n))
            .collect()
    }

    /// Counts `n` more items touched by a fault injected in `op`.
    pub fn add_affected(&self, op: &'static str, fault: Fault, n: u64) {
        *self.lock().affected.entry((op, fault)).or_default() += n;
    }

    /// Faults injected so far of one kind, over every operation.
    pub fn injected_of(&self, fault: Fault) -> u64 {
        self.lock()
            .injected
            .iter()
            .filter(|((_, f), _)| *f == fault)
            .map(|(_, n)| n)
            .sum()
    }

    /// The fault (if any) for this call of `op` on `key`, among `allowed`.
    pub fn decide(&self, op: &'static str, key: &str, allowed: &[Fault]) -> Option<Fault> {
        self.decide_for(op, key, allowed, 1)
    }

    /// [`Self::decide`] for a call on `items` items.
    pub fn decide_for(
        &self,
        op: &'static str,
        key: &str,
        allowed: &[Fault],
        items: usize,
    ) -> Option<Fault> {
        let mut state = self.lock();
        let n = state.calls.entry((op, key.to_owned())).or_default();
        let attempt = *n;
        *n += 1;
        let mut h = DefaultHasher::new();
        (self.seed, op, key, attempt).hash(&mut h);
        let draw = fastrand::Rng::with_seed(h.finish()).f64();
        let plan = self.plan;
        let mut edge = 0.0;
        let fault = [
            (Fault::Conflict, plan.conflict),
            (Fault::Throttle, plan.throttle),
            (Fault::Timeout, plan.timeout),
            (Fault::Partial, plan.partial),
            (Fault::Crash, plan.crash),
        ]
        .into_iter()
        .find(|(_, p)| {
            edge += p;
            draw < edge
        })
        .map(|(f, _)| f)
        .filter(|f| allowed.contains(f))?;
        *state.injected.entry((op, fault)).or_default() += 1;
        *state.affected.entry((op, fault)).or_default() += items as u64;
        Some(fault)
    }

    /// For calls that only fail before doing anything (reads, idempotent
    /// claims): a scheduling hop, then a throttle when the draw says so,
    /// else on to the inner store.
    async fn throttle_or_pass(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        hop().await;
        match self.decide(op, key, &[Fault::Throttle]) {
            Some(f) => Err(injected(op, f)),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn injected(op: &str, fault: Fault) -> StoreError {
    let what = match fault {
        Fault::Conflict => "TransactionCanceledException: TransactionConflict",
        Fault::Throttle => "ThrottlingException: rate of requests exceeds the allowed throughput",
        Fault::Timeout => "timeout: no response (the write may have landed)",
        Fault::Partial => "connection reset after part of the write",
        Fault::Crash => "crashed",
    };
    StoreError::Unavailable(format!("injected by chaos in {op}: {what}"))
}

/// Ends the invocation here when it runs under [`run_invocation`]; returns
/// otherwise (the caller then reports an error).
async fn crash() {
    if let Ok(invocation) = INVOCATION.try_with(Arc::clone) {
        invocation.crash.notify_one();
        std::future::pending::<()>().await;
    }
}

/// Lets other invocations run between the steps of this one, as network
/// round trips would.
async fn hop() {
    tokio::task::yield_now().await;
}

/// A [`SeriesStore`] (and [`SeriesSource`]) with faults.
pub struct ChaosSeries<S> {
    inner: Arc<S>,
    chaos: Arc<Chaos>,
}

impl<S> Clone for ChaosSeries<S> {
    fn clone(&self) -> Self {
        ChaosSeries {
            inner: self.inner.clone(),
            chaos: self.chaos.clone(),
        }
    }
}

impl<S> ChaosSeries<S> {
    pub fn new(inner: Arc<S>, chaos: Arc<Chaos>) -> Self {
        ChaosSeries { inner, chaos }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: SeriesStore> SeriesStore for ChaosSeries<S> {
    async fn apply_chunk(
        &self,
        batch_id: &str,
        index: usize,
        chunk: &BatchMetrics,
        now: OffsetDateTime,
    ) -> Result<ChunkOutcome, StoreError> {
        const OP: &str = "series.apply_chunk";
        hop().await;
        let key = format!("{batch_id}#{index}");
        let fault = self.chaos.decide(
            OP,
            &key,
            &[
                Fault::Conflict,
                Fault::Throttle,
                Fault::Timeout,
                Fault::Crash,
            ],
        );
        if let Some(f @ (Fault::Conflict | Fault::Throttle)) = fault {
            return Err(injected(OP, f));
        }
        let done = self.inner.apply_chunk(batch_id, index, chunk, now).await?;
        hop().await;
        match fault {
            Some(Fault::Timeout) => Err(injected(OP, Fault::Timeout)),
            Some(Fault::Crash) => {
                crash().await;
                Err(injected(OP, Fault::Crash))
            }
            _ => Ok(done),
        }
    }
}

impl<S: SeriesSource> SeriesSource for ChaosSeries<S> {
    async fn read_metric(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        const OP: &str = "series.read_metric";
        self.chaos.throttle_or_pass(OP, name).await?;
        self.inner.read_metric(name).await
    }
}

/// An [`AlertStore`] with faults.
pub struct ChaosAlerts<S> {
    inner: Arc<S>,
    chaos: Arc<Chaos>,
}

impl<S> Clone for ChaosAlerts<S> {
    fn clone(&self) -> Self {
        ChaosAlerts {
            inner: self.inner.clone(),
            chaos: self.chaos.clone(),
        }
    }
}

impl<S> ChaosAlerts<S> {
    pub fn new(inner: Arc<S>, chaos: Arc<Chaos>) -> Self {
        ChaosAlerts { inner, chaos }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn window_key(ids: impl Iterator<Item = String>) -> String {
    ids.collect::<Vec<_>>().join(",")
}

impl<S: AlertStore> AlertStore for ChaosAlerts<S> {
    async fn load_windows(
        &self,
        ids: &[WindowId],
    ) -> Result<Vec<Option<StoredWindow>>, StoreError> {
        const OP: &str = "alerts.load_windows";
        hop().await;
        let key = window_key(ids.iter().map(WindowId::storage_key));
        if let Some(f) = self
            .chaos
            .decide(OP, &key, &[Fault::Throttle, Fault::Timeout])
        {
            return Err(injected(OP, f));
        }
        let out = self.inner.load_windows(ids).await;
        hop().await;
        out
    }

    async fn commit(
        &self,
        changes: &[WindowChange],
        log_delivery: Option<OffsetDateTime>,
    ) -> Result<Vec<CommitResult>, StoreError> {
        const OP: &str = "alerts.commit";
        hop().await;
        let key = window_key(changes.iter().map(|c| c.id.storage_key()));
        // The heartbeat alone is a plain put: it cannot conflict.
        let allowed: &[Fault] = if changes.is_empty() {
            &[Fault::Throttle, Fault::Timeout]
        } else {
            &[
                Fault::Conflict,
                Fault::Throttle,
                Fault::Timeout,
                Fault::Partial,
            ]
        };
        let fault = self.chaos.decide(OP, &key, allowed);
        match fault {
            // A cancelled transaction: every change in it lost the race.
            Some(Fault::Conflict) => return Ok(vec![CommitResult::Conflict; changes.len()]),
            Some(Fault::Throttle) => return Err(injected(OP, Fault::Throttle)),
            // The first transaction of several went through, then the
            // connection failed (and the heartbeat was not written).
            Some(Fault::Partial) if changes.len() > 1 => {
                let half = changes.len() / 2;
                self.inner.commit(&changes[..half], None).await?;
                return Err(injected(OP, Fault::Partial));
            }
            _ => {}
        }
        let out = self.inner.commit(changes, log_delivery).await?;
        hop().await;
        // A partial commit of a single change is a lost answer.
        if let Some(f) = fault {
            return Err(injected(OP, f));
        }
        Ok(out)
    }

    async fn mark_sent(&self, notices: &[Notice]) -> Result<usize, StoreError> {
        const OP: &str = "alerts.mark_sent";
        hop().await;
        let key = window_key(notices.iter().map(|n| n.transition_id.clone()));
        let allowed = [Fault::Throttle, Fault::Timeout];
        let fault = self.chaos.decide_for(OP, &key, &allowed, notices.len());
        if let Some(Fault::Throttle) = fault {
            return Err(injected(OP, Fault::Throttle));
        }
        let marked = self.inner.mark_sent(notices).await?;
        match fault {
            Some(f) => Err(injected(OP, f)),
            None => Ok(marked),
        }
    }

    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        const OP: &str = "alerts.open_incidents";
        self.chaos.throttle_or_pass(OP, "").await?;
        self.inner.open_incidents().await
    }

    async fn dead_letter(
        &self,
        notice: &Notice,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const OP: &str = "alerts.dead_letter";
        hop().await;
        let fault = self.chaos.decide(
            OP,
            &notice.transition_id,
            &[Fault::Throttle, Fault::Timeout],
        );
        if let Some(Fault::Throttle) = fault {
            return Err(injected(OP, Fault::Throttle));
        }
        let moved = self.inner.dead_letter(notice, reason, at).await?;
        match fault {
            // Moved, but the answer was lost.
            Some(f) => Err(injected(OP, f)),
            None => Ok(moved),
        }
    }

    async fn dead_letters(
        &self,
    ) -> Result<Vec<monitoring_core::domain::alerts::DeadLetter>, StoreError> {
        const OP: &str = "alerts.dead_letters";
        self.chaos.throttle_or_pass(OP, "").await?;
        self.inner.dead_letters().await
    }

    async fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
        const OP: &str = "alerts.pending_notices";
        self.chaos.throttle_or_pass(OP, "").await?;
        self.inner.pending_notices().await
    }

    async fn claim_notice(
        &self,
        transition_id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "alerts.claim_notice";
        self.chaos.throttle_or_pass(OP, transition_id).await?;
        self.inner
            .claim_notice(transition_id, now_ms, lease_ms)
            .await
    }

    async fn incident(&self, id: &str) -> Result<Option<StoredIncident>, StoreError> {
        self.inner.incident(id).await
    }

    async fn last_log_delivery(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.inner.last_log_delivery().await
    }
}

/// A [`HeartbeatSink`] with faults.
pub struct ChaosHeartbeats<H> {
    inner: Arc<H>,
    chaos: Arc<Chaos>,
}

impl<H> ChaosHeartbeats<H> {
    pub fn new(inner: Arc<H>, chaos: Arc<Chaos>) -> Self {
        ChaosHeartbeats { inner, chaos }
    }
}

impl<H: HeartbeatSink> HeartbeatSink for ChaosHeartbeats<H> {
    async fn beat(&self, heartbeat: Heartbeat, at: OffsetDateTime) -> Result<(), StoreError> {
        const OP: &str = "heartbeat.beat";
        let key = format!("{heartbeat}@{}", at.unix_timestamp_nanos());
        self.chaos.throttle_or_pass(OP, &key).await?;
        self.inner.beat(heartbeat, at).await
    }
}

/// An [`IncidentPublisher`] with faults: throttled (nothing sent), timed
/// out after the topic took the message (sent, reported failed), or the
/// invocation crashing just before the publish (the commit is stored, the
/// message is not sent: the outbox must carry it).
pub struct ChaosPublisher<P> {
    inner: Arc<P>,
    chaos: Arc<Chaos>,
}

impl<P> Clone for ChaosPublisher<P> {
    fn clone(&self) -> Self {
        ChaosPublisher {
            inner: self.inner.clone(),
            chaos: self.chaos.clone(),
        }
    }
}

impl<P> ChaosPublisher<P> {
    pub fn new(inner: Arc<P>, chaos: Arc<Chaos>) -> Self {
        ChaosPublisher { inner, chaos }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: IncidentPublisher> IncidentPublisher for ChaosPublisher<P> {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        const OP: &str = "publisher.publish";
        hop().await;
        let fault = self.chaos.decide(
            OP,
            &message.dedup_id,
            &[Fault::Throttle, Fault::Timeout, Fault::Crash],
        );
        match fault {
            Some(Fault::Throttle) => Err(PublishError::Unavailable(
                "injected by chaos: Throttling: Rate exceeded".into(),
            )),
            Some(Fault::Crash) => {
                // What this invocation published before dies unmarked.
                let earlier = INVOCATION
                    .try_with(|i| i.published.load(std::sync::atomic::Ordering::SeqCst))
                    .unwrap_or(0);
                self.chaos.add_affected(OP, Fault::Crash, earlier);
                crash().await;
                Err(PublishError::Unavailable(
                    "injected by chaos: crashed".into(),
                ))
            }
            Some(_) => {
                self.inner.publish(message).await?;
                Err(PublishError::Unavailable(
                    "injected by chaos: timeout after the topic took the message".into(),
                ))
            }
            None => {
                self.inner.publish(message).await?;
                let _ = INVOCATION.try_with(|i| {
                    i.published
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_injects_the_same_faults_whatever_the_call_order() {
        let keys: Vec<String> = (0..200).map(|i| format!("batch-{i}")).collect();
        let all = [Fault::Conflict, Fault::Throttle, Fault::Timeout];
        let run = |order: &[String]| {
            let chaos = Chaos::new(42, FaultPlan::HEAVY);
            let mut out: BTreeMap<String, Vec<Option<Fault>>> = BTreeMap::new();
            for _ in 0..3 {
                for k in order {
                    out.entry(k.clone())
                        .or_default()
                        .push(chaos.decide("op", k, &all));
                }
            }
            (out, chaos.injected())
        };
        let forward = run(&keys);
        let mut reversed = keys.clone();
        reversed.reverse();
        assert_eq!(forward, run(&reversed));
        let faults: u64 = forward.1.values().sum();
        assert!((50..250).contains(&faults), "{:?}", forward.1);
        let other = Chaos::new(43, FaultPlan::HEAVY);
        let differs = keys
            .iter()
            .any(|k| other.decide("op", k, &all) != forward.0[k][0]);
        assert!(differs, "another seed, other faults");
    }

    #[tokio::test]
    async fn a_crash_ends_the_invocation_there() {
        let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = reached.clone();
        let out = run_invocation(async move {
            crash().await;
            r.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await;
        assert_eq!(out, Err(Crashed));
        assert!(!reached.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(run_invocation(async { 7 }).await, Ok(7));
    }
}
