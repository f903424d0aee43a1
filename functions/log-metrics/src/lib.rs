//! One subscription batch: decode, run the pipeline, add the deltas to the
//! series store exactly once, write EMF lines (gauges with their stored
//! value after the batch), refresh the drift heartbeat,
//! and feed the batch's signals to the alert engine.
//!
//! Bad input never fails the invocation (Lambda would retry it for
//! nothing): a payload that does not decode is counted under
//! `log_batches_rejected_total{reason}`, a bad event under
//! `log_events_rejected_total{reason}`. A store that cannot be reached does
//! fail it, so Lambda retries and the batch marker keeps the retry exact.
//!
//! The alert engine runs for every decoded batch, a redelivered one
//! included: when a first attempt stored the series and then failed before
//! its alert windows were written, the retry finds the series marker
//! (`duplicate`) and still counts the signals; signals an earlier attempt
//! did count are duplicates by log event id, so a retry is exact for the
//! alerts too. An empty batch still refreshes the log-delivery heartbeat
//! the alert-evaluator's dead man's switch reads.

pub mod deployed;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use monitoring_core::domain::alerts::EngineError;
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::logs::decode::{
    DecodeError, MessageType, SubscriptionBatch, decode_awslogs_data,
};
use monitoring_core::domain::logs::parse::ParseSettings;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use monitoring_core::domain::metrics::emf;
use monitoring_core::domain::metrics::series::SeriesKey;
use monitoring_core::domain::pipeline::{
    BATCHES_REJECTED_TOTAL, accounting_metrics, chunk_batch, process_events,
};
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::ports::{
    Alerts, ApplyOutcome, HeartbeatSink, SeriesSource, SeriesStore, StoreError,
};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The signal the default rules raise for every drift scan record.
pub const DRIFT_HEARTBEAT_SIGNAL: &str = "drift_scan_heartbeat";

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("series store unavailable: {0}")]
    Store(#[from] StoreError),
    /// The alert windows could not be written: retried by Lambda, and the
    /// retry counts each signal once.
    #[error("alert engine: {0}")]
    Alerts(#[from] EngineError),
}

/// The series writes of one invocation so far.
#[derive(Default)]
struct SeriesProgress {
    outcome: ApplyOutcome,
    failed: Option<StoreError>,
}

/// What the invocation did, returned as its result and logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchSummary {
    pub skipped_control_message: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_rejected: Option<&'static str>,
    pub events: u64,
    pub records: u64,
    pub continuations: u64,
    pub rejected: u64,
    pub series: usize,
    pub signals: usize,
    /// True when an earlier delivery of the same batch was already applied.
    pub duplicate: bool,
    pub store_requests: usize,
    /// Alert windows the signals touched.
    pub alert_windows: usize,
    /// Incident transitions committed (firing, reminders), suppressed ones
    /// included.
    pub alert_transitions: usize,
    /// Incident messages published to SNS; the ones that failed wait in the
    /// outbox for the alert-evaluator.
    pub alerts_published: usize,
}

/// The cardinality guard of one container. The cap on label sets must hold
/// across containers, so the guard starts from the series the table already
/// holds. It reads them on the first batch rather than at cold start:
/// those reads (one Query per metric) would otherwise make the init phase
/// wait on DynamoDB, and a table that cannot be reached would fail the
/// start instead of one retried batch.
pub struct SeriesGuard {
    guard: Mutex<CardinalityGuard>,
    loaded: tokio::sync::OnceCell<()>,
}

impl SeriesGuard {
    pub fn new(guard: CardinalityGuard) -> Self {
        SeriesGuard {
            guard: Mutex::new(guard),
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// Preloads the stored series of every metric of `rules` once per
    /// container (concurrently); a failure leaves it to the next batch.
    async fn ensure_loaded<S: SeriesSource>(
        &self,
        rules: &RuleSet,
        store: &S,
    ) -> Result<(), StoreError> {
        self.loaded
            .get_or_try_init(|| async {
                let reads = rules.metrics().iter().map(|m| store.read_metric(&m.name));
                let existing = futures::future::try_join_all(reads).await?;
                let mut guard = self.lock();
                for series in existing {
                    guard.preload(series.into_iter().map(|s| s.key));
                }
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CardinalityGuard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct LogMetrics<S, H, A> {
    pub rules: RuleSet,
    pub redactor: Redactor,
    /// Learns the series this container writes.
    pub guard: SeriesGuard,
    pub store: S,
    pub heartbeats: H,
    /// The alert engine (one per cold start).
    pub alerts: A,
    pub namespace: String,
    pub parse: ParseSettings,
    pub max_decompressed_bytes: usize,
}

impl<S: SeriesStore + SeriesSource, H: HeartbeatSink, A: Alerts> LogMetrics<S, H, A> {
    /// Handles one invocation payload (`{"awslogs": {"data": ...}}`); EMF
    /// documents go to `emf_out` (stdout in Lambda).
    pub async fn handle(
        &self,
        payload: &Value,
        now: OffsetDateTime,
        emf_out: &mut (dyn Write + Send),
    ) -> Result<BatchSummary, HandlerError> {
        let data = payload
            .get("awslogs")
            .and_then(|a| a.get("data"))
            .and_then(Value::as_str);
        let decoded = match data {
            None => Err(DecodeError::InvalidEnvelope(
                "no awslogs.data string".into(),
            )),
            Some(data) => decode_awslogs_data(data, self.max_decompressed_bytes),
        };
        let batch = match decoded {
            Ok(batch) => batch,
            Err(e) => return self.reject_batch(payload, &e, now, emf_out).await,
        };
        if batch.message_type == MessageType::Control {
            return Ok(BatchSummary {
                skipped_control_message: true,
                ..BatchSummary::default()
            });
        }
        // The guard works from what this container saw when the stored
        // series cannot be read; the series write below then fails and
        // the batch is retried, after its signals were counted.
        if let Err(e) = self.guard.ensure_loaded(&self.rules, &self.store).await {
            tracing::warn!(error = %e, "stored series not read; the cardinality guard starts from this container's");
        }
        // The series before any cardinality cap, so the chunks depend on
        // the batch and the rules alone: a retry or a redrive in another
        // container (with another guard) forms the same chunks, and each
        // chunk's marker keeps it exact. The guard folds within a chunk.
        let report = process_events(
            &batch.events,
            &self.rules,
            &self.redactor,
            &mut CardinalityGuard::unbounded(),
            self.parse,
        );
        let chunks = chunk_batch(&report.metrics, &mut self.guard.lock());
        let id = batch_id(&batch);
        let timestamp = batch
            .events
            .iter()
            .map(|e| e.timestamp_ms)
            .max()
            .unwrap_or_else(|| millis(now));
        // The series and the alert windows are written independently: a
        // series the store refuses must not cost the batch its signals.
        let mut series = SeriesProgress::default();
        for (index, chunk) in chunks.iter().enumerate() {
            match self.store.apply_chunk(&id, index, chunk, now).await {
                Ok(done) => {
                    // EMF for the chunks applied now, as each is: a chunk
                    // an earlier attempt applied was written to CloudWatch
                    // by that attempt, and one this attempt applies is
                    // written even when a later chunk fails.
                    if done.applied {
                        let gauges = self.gauges(chunk).await;
                        self.write_emf(chunk, &gauges, timestamp, emf_out);
                    }
                    series.outcome.add(index, done);
                }
                Err(e) => {
                    tracing::error!(error = %e, batch = %id, chunk = index, "series not stored; the alert signals are ingested all the same and the batch is retried");
                    series.failed = Some(e);
                    break;
                }
            }
        }
        let duplicate = series.outcome.duplicate_chunks > 0;
        let mut store_requests = series.outcome.requests;
        // Also for a duplicate: the first attempt may have failed between
        // the series and the alert windows.
        let alerts = self.alerts.ingest(&report.signals, now).await?;
        // The engine's accounting (signals counted or dropped, by rule and
        // reason), once per batch under a marker of its own.
        if !report.signals.is_empty() {
            let metrics = accounting_metrics(&alerts.accounting);
            let chunks = chunk_batch(&metrics, &mut CardinalityGuard::unbounded());
            let alerts_id = format!("{id}:alerts");
            for (index, chunk) in chunks.iter().enumerate() {
                let done = self
                    .store
                    .apply_chunk(&alerts_id, index, chunk, now)
                    .await?;
                store_requests += done.requests;
                if done.applied {
                    self.write_emf(chunk, &HashMap::new(), timestamp, emf_out);
                }
            }
        }
        let heartbeat = report
            .signals
            .iter()
            .filter(|s| s.name.as_ref() == DRIFT_HEARTBEAT_SIGNAL)
            .map(|s| s.timestamp_ms)
            .max();
        if let Some(ms) = heartbeat
            && let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        {
            self.heartbeats.beat(Heartbeat::DriftScan, at).await?;
        }
        // Paging failures are metrics too (the operations alarms), written
        // only when there are some: the evaluator writes the series every
        // minute.
        if alerts.publish_failures > 0 {
            let paging = emf::PagingMetrics {
                publish_failures: alerts.publish_failures,
                dead_lettered: alerts.dead_lettered,
                ..emf::PagingMetrics::default()
            };
            write_lines(
                emf_out,
                &[emf::render_paging(&paging, &self.namespace, timestamp)],
            );
        }
        monitoring_adapters::telemetry::log_transitions(&alerts.transitions);
        let summary = BatchSummary {
            skipped_control_message: false,
            batch_rejected: None,
            events: report.events,
            records: report.records,
            continuations: report.continuations,
            rejected: report.rejected_total(),
            series: report.metrics.len(),
            signals: report.signals.len(),
            duplicate,
            store_requests,
            alert_windows: alerts.windows,
            alert_transitions: alerts.transitions.len(),
            alerts_published: alerts.published,
        };
        for (reason, n) in &report.rejected {
            tracing::warn!(reason = reason.as_str(), events = n, "log events rejected");
        }
        if let Some(e) = series.failed {
            return Err(e.into());
        }
        Ok(summary)
    }

    /// The gauges' values after the batch, for EMF. The series are stored
    /// already: a failed read costs the gauges this batch's sample, not the
    /// batch a retry (which would find it a duplicate and send no EMF).
    async fn gauges(&self, metrics: &BatchMetrics) -> HashMap<SeriesKey, f64> {
        emf::gauge_values(&self.store, metrics)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "gauge values not read; this batch's EMF leaves the gauges out");
                HashMap::new()
            })
    }

    fn write_emf(
        &self,
        metrics: &BatchMetrics,
        gauges: &HashMap<SeriesKey, f64>,
        timestamp: i64,
        out: &mut (dyn Write + Send),
    ) {
        let documents = emf::render(metrics, gauges, &self.namespace, timestamp);
        write_lines(out, &documents);
    }

    /// Counts a payload that did not decode, in the store and in EMF (the
    /// performance dashboard's "rejected batches"); idempotent per payload.
    async fn reject_batch(
        &self,
        payload: &Value,
        error: &DecodeError,
        now: OffsetDateTime,
        emf_out: &mut (dyn Write + Send),
    ) -> Result<BatchSummary, HandlerError> {
        tracing::warn!(reason = error.reason(), error = %error, "subscription payload rejected");
        let mut metrics = BatchMetrics::default();
        let key = SeriesKey::new(BATCHES_REJECTED_TOTAL, [("reason", error.reason())]);
        let mut guard = CardinalityGuard::default();
        // One series, one fixed kind: cannot conflict.
        let _ = metrics.apply(key, Update::CounterAdd(1.0), &mut guard);
        let digest = Sha256::digest(payload.to_string().as_bytes());
        let id = format!("rejected-{}", hex(&digest[..16]));
        let outcome = self.store.apply_batch(&id, &metrics, now).await?;
        if outcome.duplicate_chunks == 0 {
            self.write_emf(&metrics, &HashMap::new(), millis(now), emf_out);
        }
        Ok(BatchSummary {
            batch_rejected: Some(error.reason()),
            duplicate: outcome.duplicate_chunks > 0,
            store_requests: outcome.requests,
            ..BatchSummary::default()
        })
    }
}

/// The same batch always gets the same id, whichever delivery it is.
pub fn batch_id(batch: &SubscriptionBatch) -> String {
    let mut h = Sha256::new();
    for part in [&batch.owner, &batch.log_group, &batch.log_stream] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for e in &batch.events {
        h.update(e.id.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize()[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn write_lines(out: &mut (dyn Write + Send), documents: &[String]) {
    for doc in documents {
        // Losing stdout is not worth failing the batch over: the series are
        // stored already.
        if let Err(e) = writeln!(out, "{doc}") {
            tracing::error!(error = %e, "cannot write EMF document");
            return;
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use monitoring_core::domain::alerts::{
        AlertRules, CommitResult, EngineSettings, Notice, OpenIncident, PendingNotice,
        StoredIncident, StoredWindow, TransitionKind, WindowChange, WindowId,
    };
    use monitoring_core::domain::metrics::series::StoredValue;
    use monitoring_core::memory::alerts::{
        MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
    };
    use monitoring_core::memory::series::MemorySeriesStore;
    use serde_json::json;
    use test_support::logs;
    use time::macros::datetime;

    use super::*;
    use monitoring_adapters::retry::TokioTimer;
    use monitoring_core::domain::alerts::AlertEngine;
    use monitoring_core::ports::AlertStore;

    const NOW: OffsetDateTime = datetime!(2025-05-20 10:31 UTC);

    /// The alert rules of these tests of the handler's mechanics (exactly
    /// once under redelivery and retry), apart from the default rules: five
    /// failed logins from one address are one incident. `auth_failures`
    /// counts per address here, as the default `auth_failures_by_ip` does.
    const TEST_ALERT_RULES: &str = r#"
[[rule]]
name = "auth_failures"
signal = "auth_failures"
group_by = "ip"
threshold = 5
window = 300
severity = "high"
category = "security"
"#;

    /// The memory alert store, whose next commit fails while `fail` is set
    /// (DynamoDB unreachable between the series write and the alert write).
    #[derive(Clone, Default)]
    struct FlakyAlerts {
        inner: MemoryAlertStore,
        fail: Arc<AtomicBool>,
    }

    impl AlertStore for FlakyAlerts {
        async fn load_windows(
            &self,
            ids: &[WindowId],
        ) -> Result<Vec<Option<StoredWindow>>, StoreError> {
            self.inner.load_windows(ids).await
        }
        async fn commit(
            &self,
            changes: &[WindowChange],
            log_delivery: Option<OffsetDateTime>,
        ) -> Result<Vec<CommitResult>, StoreError> {
            if self.fail.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Unavailable("connection reset".into()));
            }
            self.inner.commit(changes, log_delivery).await
        }
        async fn mark_sent(&self, notices: &[Notice]) -> Result<usize, StoreError> {
            self.inner.mark_sent(notices).await
        }
        async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
            self.inner.open_incidents().await
        }
        async fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
            self.inner.pending_notices().await
        }
        async fn claim_notice(
            &self,
            transition_id: &str,
            now_ms: i64,
            lease_ms: i64,
        ) -> Result<bool, StoreError> {
            self.inner
                .claim_notice(transition_id, now_ms, lease_ms)
                .await
        }
        async fn incident(&self, id: &str) -> Result<Option<StoredIncident>, StoreError> {
            self.inner.incident(id).await
        }
        async fn dead_letter(
            &self,
            notice: &Notice,
            reason: &str,
            at: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            self.inner.dead_letter(notice, reason, at).await
        }
        async fn dead_letters(
            &self,
        ) -> Result<Vec<monitoring_core::domain::alerts::DeadLetter>, StoreError> {
            self.inner.dead_letters().await
        }
        async fn last_log_delivery(&self) -> Result<Option<OffsetDateTime>, StoreError> {
            self.inner.last_log_delivery().await
        }
    }

    struct NoBeats;
    impl HeartbeatSink for NoBeats {
        async fn beat(&self, _: Heartbeat, _: OffsetDateTime) -> Result<(), StoreError> {
            Ok(())
        }
    }

    type Engine = AlertEngine<FlakyAlerts, RecordingPublisher, StaticSilences, StaticComponents>;

    fn app(
        alerts: &FlakyAlerts,
        publisher: &RecordingPublisher,
    ) -> LogMetrics<MemorySeriesStore, NoBeats, Engine> {
        app_with(alerts, publisher)
    }

    fn app_with<S: Default>(
        alerts: &FlakyAlerts,
        publisher: &RecordingPublisher,
    ) -> LogMetrics<S, NoBeats, Engine> {
        LogMetrics {
            rules: RuleSet::default_rules().unwrap(),
            redactor: Redactor::new(b"unit-test-redaction-key").unwrap(),
            guard: SeriesGuard::new(CardinalityGuard::default()),
            store: S::default(),
            heartbeats: NoBeats,
            alerts: AlertEngine::new(
                Arc::new(AlertRules::from_toml(TEST_ALERT_RULES, "test.toml").unwrap()),
                alerts.clone(),
                publisher.clone(),
                StaticSilences(vec![]),
                StaticComponents(vec![]),
                EngineSettings::default(),
                Arc::new(TokioTimer),
            ),
            namespace: "Test".into(),
            parse: Default::default(),
            max_decompressed_bytes: 32 << 20,
        }
    }

    /// `n` failed logins from one address, a second apart.
    fn failed_logins(n: usize) -> Value {
        let events = (0..n)
            .map(|i| {
                logs::event(
                    format!("{i:056}"),
                    1_747_737_000_000_i64 + i as i64 * 1000,
                    format!(
                        r#"{{"timestamp":"2025-05-20T10:30:0{i}.000Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"u{i}","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login"}}"#
                    ),
                )
            })
            .collect();
        logs::lambda_event("app-1", events)
    }

    fn counter(store: &MemorySeriesStore, key: &SeriesKey) -> f64 {
        match store.get(key) {
            Some(StoredValue::Counter(v)) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn failed_login_count(store: &MemorySeriesStore) -> f64 {
        let key = SeriesKey::new(
            "auth_requests_total",
            [
                ("endpoint", "/api/auth/login"),
                ("method", "password"),
                ("status", "failure"),
            ],
        );
        counter(store, &key)
    }

    /// The alert accounting's count of `auth_failures` signals the rule
    /// counted.
    fn counted_by_auth_failures(store: &MemorySeriesStore) -> f64 {
        let key = SeriesKey::new(
            "alert_signal_outcomes_total",
            [("outcome", "counted"), ("rule", "auth_failures")],
        );
        counter(store, &key)
    }

    #[tokio::test]
    async fn five_failed_logins_fire_one_incident_and_a_redelivery_changes_nothing() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let app = app(&alerts, &publisher);
        let p = failed_logins(5);
        let first = app.handle(&p, NOW, &mut Vec::new()).await.unwrap();
        assert!(!first.duplicate);
        assert_eq!((first.alert_transitions, first.alerts_published), (1, 1));
        let again = app.handle(&p, NOW, &mut Vec::new()).await.unwrap();
        assert!(again.duplicate);
        assert_eq!((again.alert_transitions, again.alerts_published), (0, 0));
        let incidents = publisher.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            (incidents[0].rule.as_str(), incidents[0].status),
            ("auth_failures", TransitionKind::Firing)
        );
        assert!(!incidents[0].to_json().contains("203.0.113.7"));
        // The alert accounting is stored once too.
        assert_eq!(counted_by_auth_failures(&app.store), 5.0);
        let received = SeriesKey::new("alert_signals_total", [("signal", "auth_failures")]);
        assert_eq!(counter(&app.store, &received), 5.0);
    }

    /// The first delivery stores the series, then the alert write fails:
    /// the invocation fails, and the retry (a duplicate for the series)
    /// still counts the signals, so the incident is not lost.
    #[tokio::test]
    async fn a_retry_after_the_alert_write_failed_still_counts_the_signals() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let app = app(&alerts, &publisher);
        let p = failed_logins(5);
        alerts.fail.store(true, Ordering::SeqCst);
        let err = app.handle(&p, NOW, &mut Vec::new()).await.unwrap_err();
        assert!(matches!(err, HandlerError::Alerts(_)), "{err}");
        assert_eq!(failed_login_count(&app.store), 5.0);
        assert!(publisher.messages().is_empty());
        assert_eq!(alerts.inner.last_log_delivery().await.unwrap(), None);

        let retry = app.handle(&p, NOW, &mut Vec::new()).await.unwrap();
        assert!(
            retry.duplicate,
            "the series were applied by the first attempt"
        );
        assert_eq!(failed_login_count(&app.store), 5.0);
        assert_eq!((retry.alert_transitions, retry.alerts_published), (1, 1));
        assert_eq!(publisher.incidents().len(), 1);
        assert_eq!(publisher.incidents()[0].count, 5);
        assert_eq!(counted_by_auth_failures(&app.store), 5.0);
        assert_eq!(alerts.inner.last_log_delivery().await.unwrap(), Some(NOW));
    }

    /// A new container (fresh guard, cap of one label set per metric) over
    /// a table another container already wrote: the stored series count
    /// against the cap, read on its first batch.
    #[tokio::test]
    async fn the_cardinality_cap_counts_the_series_other_containers_stored() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let first = app(&alerts, &publisher);
        first
            .handle(&failed_logins(1), NOW, &mut Vec::new())
            .await
            .unwrap();
        let second = LogMetrics {
            guard: SeriesGuard::new(CardinalityGuard::new(1)),
            ..first
        };
        let success = logs::lambda_event(
            "app-1",
            vec![logs::event(
                format!("{:056}", 99),
                1_747_737_100_000_i64,
                r#"{"timestamp":"2025-05-20T10:31:40.000Z","level":"INFO","logger":"security","message":"Authentication attempt","user_id":"u9","ip_address":"203.0.113.8","success":true,"method":"password","endpoint":"/api/auth/login"}"#,
            )],
        );
        second.handle(&success, NOW, &mut Vec::new()).await.unwrap();
        let overflow = second
            .store
            .all_series()
            .into_iter()
            .filter(|s| s.key.name() == "auth_requests_total")
            .map(|s| s.key.to_string())
            .collect::<Vec<_>>();
        assert_eq!(overflow.len(), 2, "{overflow:?}");
        assert!(
            overflow.iter().any(|k| k.contains("__overflow__")),
            "the new label set is folded: {overflow:?}"
        );
        assert_eq!(failed_login_count(&second.store), 1.0);
    }

    #[tokio::test]
    async fn an_empty_batch_refreshes_the_log_delivery_heartbeat() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let app = app(&alerts, &publisher);
        let summary = app
            .handle(&logs::lambda_event("app-1", vec![]), NOW, &mut Vec::new())
            .await
            .unwrap();
        assert_eq!((summary.events, summary.alert_windows), (0, 0));
        assert_eq!(alerts.inner.last_log_delivery().await.unwrap(), Some(NOW));
        // Undecodable payloads and control messages are not log deliveries.
        let later = NOW + time::Duration::minutes(5);
        let bad = json!({"awslogs": {"data": "%%%"}});
        app.handle(&bad, later, &mut Vec::new()).await.unwrap();
        assert_eq!(alerts.inner.last_log_delivery().await.unwrap(), Some(NOW));
    }

    fn session_records(messages: &[&str], first_id: usize) -> Value {
        let events = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                logs::event(
                    format!("{:056}", first_id + i),
                    1_747_737_000_000_i64 + i as i64 * 1000,
                    format!(
                        r#"{{"timestamp":"2025-05-20T10:30:0{i}.000Z","level":"INFO","logger":"security","message":"{message}","user_id":"u{i}"}}"#
                    ),
                )
            })
            .collect();
        logs::lambda_event("app-1", events)
    }

    /// The `active_sessions` value each EMF document of `out` sends.
    fn active_sessions(out: &[u8]) -> Vec<f64> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter_map(|d| d.get("active_sessions").and_then(Value::as_f64))
            .collect()
    }

    /// A gauge moves by increments; EMF gets its value after the batch,
    /// read from the store (the dashboards' "Active sessions" widgets).
    #[tokio::test]
    async fn gauges_reach_emf_with_their_value_after_the_batch() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let app = app(&alerts, &publisher);
        let mut out = Vec::new();
        let created = session_records(&["Session created"; 3], 0);
        app.handle(&created, NOW, &mut out).await.unwrap();
        assert_eq!(active_sessions(&out), [3.0]);
        let mut out = Vec::new();
        let ended = session_records(&["Session ended", "Session ended"], 10);
        app.handle(&ended, NOW, &mut out).await.unwrap();
        assert_eq!(active_sessions(&out), [1.0]);
        // A redelivery sends no EMF at all.
        let mut out = Vec::new();
        app.handle(&ended, NOW, &mut out).await.unwrap();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }

    #[tokio::test]
    async fn rejected_batches_reach_emf() {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        let app = app(&alerts, &publisher);
        let bad = json!({"awslogs": {"data": "%%%"}});
        let mut out = Vec::new();
        app.handle(&bad, NOW, &mut out).await.unwrap();
        let docs: Vec<Value> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0][BATCHES_REJECTED_TOTAL], 1.0);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["reason"]])
        );
        let mut again = Vec::new();
        app.handle(&bad, NOW, &mut again).await.unwrap();
        assert!(again.is_empty(), "a redelivery is not counted twice");
    }

    /// The memory series store, failing chunk `fail` once (a throttled
    /// transaction after the chunks before it were stored).
    #[derive(Clone, Default)]
    struct FailingSeries {
        inner: Arc<MemorySeriesStore>,
        fail: Arc<std::sync::Mutex<Option<usize>>>,
    }

    impl SeriesStore for FailingSeries {
        async fn apply_chunk(
            &self,
            batch_id: &str,
            index: usize,
            chunk: &monitoring_core::domain::metrics::aggregate::BatchMetrics,
            now: OffsetDateTime,
        ) -> Result<monitoring_core::ports::ChunkOutcome, StoreError> {
            let fail = {
                let mut f = self.fail.lock().unwrap();
                if *f == Some(index) { f.take() } else { None }
            };
            if fail.is_some() {
                return Err(StoreError::Unavailable("throttled".into()));
            }
            self.inner.apply_chunk(batch_id, index, chunk, now).await
        }
    }

    impl SeriesSource for FailingSeries {
        async fn read_metric(
            &self,
            name: &str,
        ) -> Result<Vec<monitoring_core::domain::metrics::series::StoredSeries>, StoreError>
        {
            self.inner.read_metric(name).await
        }
    }

    fn container(series: &FailingSeries, cap: usize) -> LogMetrics<FailingSeries, NoBeats, Engine> {
        let (alerts, publisher) = (FlakyAlerts::default(), RecordingPublisher::default());
        LogMetrics {
            guard: SeriesGuard::new(CardinalityGuard::new(cap)),
            store: series.clone(),
            ..app_with(&alerts, &publisher)
        }
    }

    /// 120 text records from as many loggers: more series than one chunk.
    fn wide_batch() -> Value {
        let events = (0..120)
            .map(|i| {
                logs::event(
                    format!("{i:056}"),
                    1_747_737_000_000_i64 + i as i64,
                    format!("2025-05-20 10:30:00,000 - app.mod{i:03} - INFO - handled"),
                )
            })
            .collect();
        logs::lambda_event("app-1", events)
    }

    fn emf_lines(out: &[u8]) -> Vec<String> {
        let mut lines: Vec<String> = String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    fn metric_total(store: &MemorySeriesStore, name: &str) -> f64 {
        store
            .all_series()
            .iter()
            .filter(|s| s.key.name() == name)
            .map(|s| match s.value {
                StoredValue::Counter(v) => v,
                ref other => panic!("{other:?}"),
            })
            .sum()
    }

    /// EMF goes out for each chunk as it is stored: the chunk the first
    /// attempt stored by the first attempt, the rest by the retry; none
    /// twice, none lost.
    #[tokio::test]
    async fn emf_is_written_for_the_chunks_applied_by_each_attempt() {
        let clean = container(&FailingSeries::default(), 1000);
        let mut all = Vec::new();
        clean.handle(&wide_batch(), NOW, &mut all).await.unwrap();

        let series = FailingSeries::default();
        *series.fail.lock().unwrap() = Some(1);
        let app = container(&series, 1000);
        let mut first = Vec::new();
        let err = app
            .handle(&wide_batch(), NOW, &mut first)
            .await
            .unwrap_err();
        assert!(matches!(err, HandlerError::Store(_)), "{err}");
        let mut second = Vec::new();
        let retry = app.handle(&wide_batch(), NOW, &mut second).await.unwrap();
        assert!(retry.duplicate, "chunk 0 was stored by the first attempt");
        let (first, second) = (emf_lines(&first), emf_lines(&second));
        assert!(!first.is_empty() && !second.is_empty());
        assert!(first.iter().all(|l| !second.contains(l)));
        let mut both: Vec<String> = first.into_iter().chain(second).collect();
        both.sort();
        assert_eq!(both, emf_lines(&all));
    }

    /// The retry runs in another container whose guard folds some of the
    /// batch's label sets: the chunks are the same all the same (planned
    /// before the guard), so every update is stored once.
    #[tokio::test]
    async fn a_retry_in_a_container_that_folds_forms_the_same_chunks() {
        let series = FailingSeries::default();
        *series.fail.lock().unwrap() = Some(1);
        let first = container(&series, 1000);
        first
            .handle(&wide_batch(), NOW, &mut Vec::new())
            .await
            .unwrap_err();
        let other = container(&series, 10);
        other
            .handle(&wide_batch(), NOW, &mut Vec::new())
            .await
            .unwrap();

        let clean = FailingSeries::default();
        container(&clean, 1000)
            .handle(&wide_batch(), NOW, &mut Vec::new())
            .await
            .unwrap();
        for name in [
            "log_messages_total",
            "log_events_total",
            "log_records_total",
        ] {
            assert_eq!(
                metric_total(&series.inner, name),
                metric_total(&clean.inner, name),
                "{name}"
            );
        }
        let folded = series
            .inner
            .all_series()
            .into_iter()
            .filter(|s| s.key.name() == "log_series_overflow_total")
            .count();
        assert_eq!(folded, 1, "the second container folded some label sets");
    }
}
