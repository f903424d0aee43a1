//! One evaluator run, every minute: the alert engine's time-based work
//! ([`AlertEngine::evaluate`]). It publishes what a crashed or failing
//! invocation left in the outbox, resolves incidents whose quiet period
//! passed, sends repeat reminders, and raises `log_pipeline_silent` when the
//! log group delivered nothing for the configured time (the dead man's
//! switch of the whole log pipeline).
//!
//! Every transition is claimed with a conditional write before it is
//! published, so overlapping runs (a retry next to the next minute's run)
//! publish each one once. A store that cannot be reached fails the run;
//! a publication that fails for now does not (it waits in the outbox for
//! the next run), and one the topic refuses for good is moved to the dead
//! letters. Either way it is loud: every run writes the paging metrics
//! (publish failures, notices dead-lettered, the oldest outbox entry's age,
//! the dead letters kept) as EMF, which the operations alarms watch.

use std::sync::Arc;

use monitoring_core::domain::alerts::{EngineError, EngineOutcome, TransitionRecord};
use monitoring_core::domain::metrics::emf::PagingMetrics;
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{Alerts, Clock};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum EvaluatorError {
    /// The table could not be read or written: Lambda retries, and the next
    /// minute's run does the same work anyway.
    #[error("alert engine: {0}")]
    Engine(#[from] EngineError),
}

/// What a run did: the invocation's result, and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvaluationSummary {
    /// The run's clock, RFC 3339.
    pub at: String,
    /// Windows due (quiet period over, reminder due, log silence).
    pub windows: usize,
    pub transitions: Vec<TransitionRecord>,
    /// Notices published and marked sent (leftovers included).
    pub published: usize,
    /// Outbox leftovers of other invocations published by this run.
    pub republished: usize,
    /// Publications that failed: they stay in the outbox for the next run,
    /// unless the topic refused them for good (then `dead_lettered`).
    pub publish_failures: usize,
    /// Notices the topic refused for good, moved to the dead letters now.
    pub dead_lettered: usize,
    /// The oldest outbox entry's age in milliseconds when the run started
    /// (0: empty).
    pub oldest_unpublished_ms: i64,
    /// Dead letters kept, waiting for an operator.
    pub dead_letters: usize,
}

impl EvaluationSummary {
    pub fn new(at: OffsetDateTime, outcome: &EngineOutcome) -> Self {
        EvaluationSummary {
            at: rfc3339_millis(at),
            windows: outcome.windows,
            transitions: outcome.transitions.clone(),
            published: outcome.published,
            republished: outcome.republished,
            publish_failures: outcome.publish_failures,
            dead_lettered: outcome.dead_lettered,
            oldest_unpublished_ms: outcome.oldest_unpublished_ms.unwrap_or(0),
            dead_letters: outcome.dead_letters,
        }
    }

    /// The run's paging metrics (written as EMF by the entry point).
    pub fn paging_metrics(&self) -> PagingMetrics {
        PagingMetrics {
            publish_failures: self.publish_failures,
            dead_lettered: self.dead_lettered,
            oldest_unpublished_ms: Some(self.oldest_unpublished_ms),
            dead_letters: Some(self.dead_letters),
        }
    }
}

/// The evaluator, built once per cold start.
pub struct Evaluator<E> {
    pub engine: E,
    /// The wall clock in Lambda, a set one in tests.
    pub clock: Arc<dyn Clock>,
}

impl<E: Alerts> Evaluator<E> {
    /// One run at the clock's `now`.
    pub async fn run(&self) -> Result<EvaluationSummary, EvaluatorError> {
        let now = self.clock.now();
        let outcome = self.engine.evaluate(now).await?;
        let summary = EvaluationSummary::new(now, &outcome);
        log(&summary);
        Ok(summary)
    }
}

/// One JSON log line per transition, and one for the run.
fn log(summary: &EvaluationSummary) {
    monitoring_adapters::telemetry::log_transitions(&summary.transitions);
    let outcome = serde_json::to_string(summary).unwrap_or_default();
    if summary.dead_letters > 0 {
        tracing::error!(
            dead_lettered = summary.dead_lettered,
            dead_letters = summary.dead_letters,
            %outcome,
            "incident notices refused for good by the topic are kept as dead letters; see docs/runbooks/paging_failures.md"
        );
    } else if summary.publish_failures > 0 {
        tracing::warn!(
            publish_failures = summary.publish_failures,
            %outcome,
            "incident publications failed; they stay in the outbox for the next run"
        );
    } else {
        tracing::info!(
            windows = summary.windows,
            transitions = summary.transitions.len(),
            published = summary.published,
            republished = summary.republished,
            %outcome,
            "alerts evaluated"
        );
    }
}

#[cfg(test)]
mod tests {
    use monitoring_core::memory::clock::ManualClock;
    use std::time::Duration;

    use monitoring_core::domain::alerts::{
        AlertRules, CommitResult, DeadLetter, EngineSettings, Notice, OpenIncident, PendingNotice,
        StoredIncident, StoredWindow, WindowChange, WindowId,
    };
    use monitoring_core::domain::rules::Signal;
    use monitoring_core::memory::alerts::{
        MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
    };
    use monitoring_core::ports::StoreError;
    use time::macros::datetime;

    use super::*;
    use monitoring_adapters::retry::TokioTimer;
    use monitoring_core::domain::alerts::{AlertEngine, TransitionKind};
    use monitoring_core::ports::AlertStore;

    const T0: OffsetDateTime = datetime!(2026-11-30 08:00 UTC);

    /// The rules of the tests of the evaluator's mechanics (resolution,
    /// republication), apart from the default rules: five failed logins
    /// from one address are one incident. `auth_failures` counts per
    /// address here, as the default `auth_failures_by_ip` does.
    const TEST_RULES: &str = r#"
[[rule]]
name = "auth_failures"
signal = "auth_failures"
group_by = "ip"
threshold = 5
window = 300
severity = "high"
category = "security"
"#;

    fn test_rules() -> AlertRules {
        AlertRules::from_toml(TEST_RULES, "test.toml").unwrap()
    }

    type Engine<S> = AlertEngine<S, RecordingPublisher, StaticSilences, StaticComponents>;

    fn engine<S: AlertStore>(
        rules: AlertRules,
        store: S,
        publisher: &RecordingPublisher,
        log_silence_after: Option<Duration>,
    ) -> Engine<S> {
        AlertEngine::new(
            Arc::new(rules),
            store,
            publisher.clone(),
            StaticSilences(vec![]),
            StaticComponents(vec![]),
            EngineSettings {
                log_silence_after,
                ..EngineSettings::default()
            },
            Arc::new(TokioTimer),
        )
    }

    fn evaluator<S: AlertStore>(engine: Engine<S>) -> (Evaluator<Engine<S>>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        (
            Evaluator {
                engine,
                clock: clock.clone(),
            },
            clock,
        )
    }

    /// `n` failed logins from one address, a second apart from `T0`.
    fn failures(n: usize) -> Vec<Signal> {
        (0..n)
            .map(|i| Signal {
                name: "auth_failures".into(),
                keys: vec![("ip".into(), "ip:1a2b".into())],
                event_id: format!("ev-{i}"),
                timestamp_ms: T0.unix_timestamp() * 1000 + i as i64 * 1000,
                sample: String::new(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_quiet_incident_is_resolved_and_published_once() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let (ev, clock) = evaluator(engine(test_rules(), store.clone(), &publisher, None));
        ev.engine.ingest(&failures(5), T0).await.unwrap();
        assert_eq!(publisher.messages().len(), 1);

        // The last failure was at T0 + 4 s; the quiet period is 300 s.
        clock.set(T0 + time::Duration::seconds(303));
        let early = ev.run().await.unwrap();
        assert!(early.transitions.is_empty());
        clock.set(T0 + time::Duration::seconds(305));
        let run = ev.run().await.unwrap();
        assert_eq!(run.transitions.len(), 1);
        assert_eq!(run.transitions[0].status, TransitionKind::Resolved);
        assert_eq!(run.transitions[0].rule, "auth_failures");
        assert_eq!(run.published, 1);
        assert_eq!(run.at, "2026-11-30T08:05:05.000Z");
        clock.set(T0 + time::Duration::seconds(365));
        let again = ev.run().await.unwrap();
        assert!(again.transitions.is_empty());
        assert_eq!(again.published, 0);
        let statuses: Vec<TransitionKind> =
            publisher.incidents().iter().map(|i| i.status).collect();
        assert_eq!(statuses, [TransitionKind::Firing, TransitionKind::Resolved]);
        assert!(store.open_incidents().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_log_delivery_for_the_configured_time_raises_log_pipeline_silent_once() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        store.set_log_delivery(T0);
        // The dead man's switch's rule as it ships.
        let (ev, clock) = evaluator(engine(
            AlertRules::default_rules().unwrap(),
            store.clone(),
            &publisher,
            Some(Duration::from_secs(600)),
        ));
        clock.set(T0 + time::Duration::minutes(9));
        assert!(ev.run().await.unwrap().transitions.is_empty());
        let mut fired = Vec::new();
        for minute in 10..14 {
            clock.set(T0 + time::Duration::minutes(minute));
            fired.extend(ev.run().await.unwrap().transitions);
        }
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].rule.as_str(), fired[0].status),
            ("log_pipeline_silent", TransitionKind::Firing)
        );
        let incidents = publisher.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].rule, "log_pipeline_silent");
    }

    #[tokio::test]
    async fn a_failed_publication_is_republished_by_a_later_run_once() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let (ev, clock) = evaluator(engine(test_rules(), store.clone(), &publisher, None));
        publisher.set_failing(true);
        let out = ev.engine.ingest(&failures(5), T0).await.unwrap();
        assert_eq!(out.publish_failures, 1);
        clock.set(T0 + time::Duration::seconds(60));
        let failing = ev.run().await.unwrap();
        assert_eq!(failing.republished, 0, "within the grace period");
        publisher.set_failing(false);
        clock.set(T0 + time::Duration::seconds(180));
        let run = ev.run().await.unwrap();
        assert_eq!((run.republished, run.published), (1, 1));
        clock.set(T0 + time::Duration::seconds(240));
        assert_eq!(ev.run().await.unwrap().republished, 0);
        assert_eq!(publisher.messages().len(), 1);
    }

    #[tokio::test]
    async fn a_publication_the_topic_refuses_is_dead_lettered_and_reported() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let (ev, clock) = evaluator(engine(test_rules(), store.clone(), &publisher, None));
        publisher.set_failing(true);
        ev.engine.ingest(&failures(5), T0).await.unwrap();
        publisher.set_failing(false);
        publisher.set_rejecting(true);
        clock.set(T0 + time::Duration::seconds(180));
        let run = ev.run().await.unwrap();
        assert_eq!(
            (run.published, run.publish_failures, run.dead_lettered),
            (0, 1, 1)
        );
        assert_eq!(run.oldest_unpublished_ms, 180_000);
        assert_eq!(run.dead_letters, 1);
        let metrics = run.paging_metrics();
        assert_eq!(metrics.oldest_unpublished_ms, Some(180_000));
        assert_eq!(metrics.dead_letters, Some(1));
        // Not retried every minute: the next run finds nothing to publish
        // and still reports the dead letter.
        publisher.set_rejecting(false);
        clock.set(T0 + time::Duration::seconds(240));
        let next = ev.run().await.unwrap();
        assert_eq!((next.republished, next.publish_failures), (0, 0));
        assert_eq!((next.oldest_unpublished_ms, next.dead_letters), (0, 1));
        assert!(publisher.messages().is_empty());
    }

    /// Every request fails, as when DynamoDB is unreachable.
    struct Unreachable;
    fn down() -> StoreError {
        StoreError::Unavailable("dispatch failure: connection refused".into())
    }
    impl AlertStore for Unreachable {
        async fn load_windows(
            &self,
            _: &[WindowId],
        ) -> Result<Vec<Option<StoredWindow>>, StoreError> {
            Err(down())
        }
        async fn commit(
            &self,
            _: &[WindowChange],
            _: Option<OffsetDateTime>,
        ) -> Result<Vec<CommitResult>, StoreError> {
            Err(down())
        }
        async fn mark_sent(&self, _: &[Notice]) -> Result<usize, StoreError> {
            Err(down())
        }
        async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
            Err(down())
        }
        async fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
            Err(down())
        }
        async fn claim_notice(&self, _: &str, _: i64, _: i64) -> Result<bool, StoreError> {
            Err(down())
        }
        async fn incident(&self, _: &str) -> Result<Option<StoredIncident>, StoreError> {
            Err(down())
        }
        async fn dead_letter(
            &self,
            _: &Notice,
            _: &str,
            _: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            Err(down())
        }
        async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
            Err(down())
        }
        async fn last_log_delivery(&self) -> Result<Option<OffsetDateTime>, StoreError> {
            Err(down())
        }
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_the_run() {
        let publisher = RecordingPublisher::default();
        let (ev, _) = evaluator(engine(
            AlertRules::default_rules().unwrap(),
            Unreachable,
            &publisher,
            Some(Duration::from_secs(900)),
        ));
        let err = ev.run().await.unwrap_err();
        assert!(err.to_string().contains("store unavailable"), "{err}");
    }

    #[test]
    fn the_summary_serializes_as_documented() {
        let summary = EvaluationSummary::new(
            T0,
            &EngineOutcome {
                windows: 1,
                published: 1,
                transitions: vec![monitoring_core::domain::alerts::TransitionRecord {
                    rule: "auth_failures".into(),
                    key: "ip:1a2b".into(),
                    status: TransitionKind::Resolved,
                    incident_id: "abc".into(),
                    transition_id: "abc:resolved".into(),
                    suppressed: None,
                }],
                ..EngineOutcome::default()
            },
        );
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            serde_json::json!({
                "at": "2026-11-30T08:00:00.000Z",
                "windows": 1,
                "transitions": [{"rule": "auth_failures", "key": "ip:1a2b", "status": "resolved", "incident_id": "abc"}],
                "published": 1,
                "republished": 0,
                "publish_failures": 0,
                "dead_lettered": 0,
                "oldest_unpublished_ms": 0,
                "dead_letters": 0,
            })
        );
    }
}
