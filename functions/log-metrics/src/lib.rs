//! One subscription batch: decode, run the pipeline, add the deltas to the
//! series store exactly once, write EMF lines, refresh the drift heartbeat.
//!
//! Bad input never fails the invocation (Lambda would retry it for
//! nothing): a payload that does not decode is counted under
//! `log_batches_rejected_total{reason}`, a bad event under
//! `log_events_rejected_total{reason}`. A store that cannot be reached does
//! fail it, so Lambda retries and the batch marker keeps the retry exact.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::config::probe::DRIFT_HEARTBEAT;
use shared::domain::logs::decode::{
    DecodeError, MessageType, SubscriptionBatch, decode_awslogs_data,
};
use shared::domain::logs::redact::Redactor;
use shared::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use shared::domain::metrics::emf;
use shared::domain::metrics::series::SeriesKey;
use shared::domain::pipeline::{BATCHES_REJECTED_TOTAL, process_events};
use shared::domain::rules::RuleSet;
use shared::ports::{HeartbeatSink, SeriesStore, StoreError};
use time::OffsetDateTime;

/// The signal the default rules raise for every drift scan record.
pub const DRIFT_HEARTBEAT_SIGNAL: &str = "drift_scan_heartbeat";

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("series store unavailable: {0}")]
    Store(#[from] StoreError),
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
}

pub struct LogMetrics<S, H> {
    pub rules: RuleSet,
    pub redactor: Redactor,
    /// Learns the series this container writes; preloaded at cold start.
    pub guard: Mutex<CardinalityGuard>,
    pub store: S,
    pub heartbeats: H,
    pub namespace: String,
    pub max_event_bytes: usize,
    pub max_decompressed_bytes: usize,
}

impl<S: SeriesStore, H: HeartbeatSink> LogMetrics<S, H> {
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
            Err(e) => return self.reject_batch(payload, &e, now).await,
        };
        if batch.message_type == MessageType::Control {
            return Ok(BatchSummary {
                skipped_control_message: true,
                ..BatchSummary::default()
            });
        }
        let report = {
            let mut guard = self.guard.lock().unwrap_or_else(|p| p.into_inner());
            process_events(
                &batch.events,
                &self.rules,
                &self.redactor,
                &mut guard,
                self.max_event_bytes,
            )
        };
        let outcome = self
            .store
            .apply_batch(&batch_id(&batch), &report.metrics, now)
            .await?;
        let duplicate = outcome.duplicate_chunks > 0;
        // EMF only for a first delivery: CloudWatch would count a redelivered
        // batch twice.
        if !duplicate {
            let timestamp = batch.events.iter().map(|e| e.timestamp_ms).max();
            let documents = emf::render(
                &report.metrics,
                &Default::default(),
                &self.namespace,
                timestamp.unwrap_or_else(|| millis(now)),
            );
            write_lines(emf_out, &documents);
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
            self.heartbeats.beat(DRIFT_HEARTBEAT, at).await?;
        }
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
            store_requests: outcome.requests,
        };
        for (reason, n) in &report.rejected {
            tracing::warn!(reason = reason.as_str(), events = n, "log events rejected");
        }
        Ok(summary)
    }

    /// Counts a payload that did not decode; idempotent per payload.
    async fn reject_batch(
        &self,
        payload: &Value,
        error: &DecodeError,
        now: OffsetDateTime,
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
