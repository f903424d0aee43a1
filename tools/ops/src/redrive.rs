//! Redrive: what the failure queues hold goes back through the functions'
//! own handlers, and dead-lettered incident notices go back to the outbox.
//!
//! The failure queues are the on-failure destinations of template.yaml: a
//! message there is Lambda's invocation record (`requestContext`,
//! `requestPayload`, `responseContext`, `responsePayload`), whose
//! `requestPayload` is the event the function failed on; a bare event (a
//! dead-letter queue's format) is taken as it is. Each payload is handed to
//! the library entry point the function runs ([`LogMetrics::handle`],
//! [`Notifier::handle`]), built by the same wiring (`deployed`), and the
//! message is deleted only after the handler returned success. Applying
//! twice is harmless, which is what makes the whole exactly once: a log
//! batch's chunks carry batch markers (a chunk already applied is skipped,
//! signals are counted once per log event id), and an incident notice's
//! deliveries carry delivery markers (a channel already notified is not
//! notified again). A crash between the handler and the delete only means
//! the next redrive applies the message again, to no effect.
//!
//! A message that does not decode, or whose handler fails, stays in the
//! queue (visible again at the end of the pass) and is reported; nothing
//! is deleted that was not applied. A dry run applies and deletes nothing.

use std::future::Future;
use std::io::Write;
use std::sync::Mutex;

use aws_lambda_events::event::sns::SnsEvent;
use aws_sdk_sqs::Client as Sqs;
use incident_notifier::Notifier;
use log_metrics::LogMetrics;
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_core::ports::Alerts;
use monitoring_core::ports::{
    AlertStore, ChannelSender, DeliveryLog, HeartbeatSink, SeriesSource, SeriesStore, StoreError,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// SQS's largest message: a body beyond it is not one of ours.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The queue could not be read or a message not deleted: stop, what is
    /// left stays in the queue for the next run.
    #[error("queue {queue}: {message}")]
    Queue { queue: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a message is not an event to apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableMessage {
    #[error("message body of {0} bytes is over SQS's limit")]
    TooLarge(usize),
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("invocation record without an object `requestPayload`")]
    NoPayload,
}

/// The event a failed invocation was given: the `requestPayload` of
/// Lambda's invocation record, or the body itself when it is a bare event.
pub fn failed_payload(body: &str) -> Result<Value, UnreadableMessage> {
    if body.len() > MAX_BODY_BYTES {
        return Err(UnreadableMessage::TooLarge(body.len()));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| UnreadableMessage::NotJson(e.to_string()))?;
    let is_record = value.get("requestContext").is_some() || value.get("responseContext").is_some();
    if !is_record {
        return Ok(value);
    }
    match value.get("requestPayload") {
        Some(p) if p.is_object() => Ok(p.clone()),
        _ => Err(UnreadableMessage::NoPayload),
    }
}

/// A function's handler, as the redrive applies it.
pub trait Handler: Sync {
    /// Applies one failed event again: `Ok` with a summary once it is
    /// fully applied (only then is the message deleted).
    fn apply(&self, payload: &Value) -> impl Future<Output = Result<String, String>> + Send;
}

/// log-metrics' handler. Its EMF documents (the CloudWatch metrics of the
/// chunks applied for the first time) are collected in `emf`, since outside
/// Lambda stdout is no metrics pipeline.
pub struct LogMetricsHandler<'a, S, H, A> {
    pub app: &'a LogMetrics<S, H, A>,
    pub emf: &'a Mutex<Vec<u8>>,
}

impl<S, H, A> Handler for LogMetricsHandler<'_, S, H, A>
where
    S: SeriesStore + SeriesSource,
    H: HeartbeatSink,
    A: Alerts,
{
    async fn apply(&self, payload: &Value) -> Result<String, String> {
        let mut emf = Vec::new();
        let summary = self
            .app
            .handle(payload, OffsetDateTime::now_utc(), &mut emf)
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(mut sink) = self.emf.lock() {
            sink.extend_from_slice(&emf);
        }
        if let Some(reason) = summary.batch_rejected {
            // Counted as rejected by the handler, as in the function: the
            // batch will never decode, applying it again cannot help.
            return Ok(format!("batch rejected ({reason}), counted"));
        }
        Ok(format!(
            "{} events, {} records, {} signals, duplicate: {}",
            summary.events, summary.records, summary.signals, summary.duplicate
        ))
    }
}

/// incident-notifier's handler.
pub struct NotifierHandler<'a, S, L> {
    pub notifier: &'a Notifier<S, L>,
}

impl<S: ChannelSender, L: DeliveryLog> Handler for NotifierHandler<'_, S, L> {
    async fn apply(&self, payload: &Value) -> Result<String, String> {
        let event: SnsEvent = serde_json::from_value(payload.clone())
            .map_err(|e| format!("not an SNS event: {e}"))?;
        let summary = self
            .notifier
            .handle(&event)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "{} records, {} delivered, {} already delivered, {} suppressed",
            summary.records, summary.delivered, summary.already_delivered, summary.suppressed
        ))
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    /// Stop after this many messages (the rest waits for the next run).
    pub max_messages: usize,
    /// How long a received message stays hidden during the pass; longer
    /// than any handler takes, so a pass sees each message once.
    pub visibility_seconds: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            max_messages: 10_000,
            visibility_seconds: 300,
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    pub message_id: String,
    /// `applied` (then deleted), `would_apply` (dry run), `failed`,
    /// `unreadable` (both kept in the queue).
    pub outcome: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueReport {
    pub queue: String,
    pub received: usize,
    pub applied: usize,
    pub would_apply: usize,
    pub failed: usize,
    pub unreadable: usize,
    pub messages: Vec<MessageReport>,
}

/// One pass over a failure queue.
pub async fn redrive_queue<H: Handler>(
    sqs: &Sqs,
    queue_url: &str,
    handler: &H,
    options: &Options,
) -> Result<QueueReport, RedriveError> {
    let queue_error = |e: String| RedriveError::Queue {
        queue: queue_url.to_owned(),
        message: e,
    };
    let mut report = QueueReport {
        queue: queue_url.to_owned(),
        ..QueueReport::default()
    };
    let mut kept: Vec<String> = Vec::new();
    while report.received < options.max_messages {
        let batch = (options.max_messages - report.received).min(10) as i32;
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(batch)
            .visibility_timeout(options.visibility_seconds)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| queue_error(monitoring_adapters::aws::describe_sdk_error(&e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            report.received += 1;
            let id = m.message_id.clone().unwrap_or_default();
            let receipt = m.receipt_handle.clone().unwrap_or_default();
            let body = m.body.as_deref().unwrap_or_default();
            let (outcome, detail) = match failed_payload(body) {
                Err(e) => {
                    report.unreadable += 1;
                    kept.push(receipt);
                    ("unreadable", e.to_string())
                }
                Ok(_) if options.dry_run => {
                    report.would_apply += 1;
                    kept.push(receipt);
                    ("would_apply", format!("{} bytes", body.len()))
                }
                Ok(payload) => match handler.apply(&payload).await {
                    Ok(summary) => {
                        sqs.delete_message()
                            .queue_url(queue_url)
                            .receipt_handle(&receipt)
                            .send()
                            .await
                            .map_err(|e| {
                                queue_error(monitoring_adapters::aws::describe_sdk_error(&e))
                            })?;
                        report.applied += 1;
                        ("applied", summary)
                    }
                    Err(e) => {
                        report.failed += 1;
                        kept.push(receipt);
                        ("failed", e)
                    }
                },
            };
            tracing::info!(queue = queue_url, message = %id, outcome, %detail, "redrive");
            report.messages.push(MessageReport {
                message_id: id,
                outcome,
                detail,
            });
        }
    }
    // What was kept is visible again at once: a dry run, or a failure,
    // leaves the queue as it found it.
    for receipt in kept {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            // It reappears after the visibility timeout anyway.
            tracing::warn!(queue = queue_url, error = %monitoring_adapters::aws::describe_sdk_error(&e), "message not made visible again");
        }
    }
    Ok(report)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterReport {
    pub found: usize,
    pub requeued: usize,
    pub would_requeue: usize,
    /// Transition id and the reason the topic gave.
    pub notices: Vec<(String, String)>,
}

/// Puts every dead-lettered incident notice back into the outbox, where the
/// evaluator's next run publishes it (once: the requeue and the outbox are
/// conditional). Run it after fixing what the topic refused them for.
pub async fn requeue_dead_letters(
    store: &DynamoAlertStore,
    dry_run: bool,
) -> Result<DeadLetterReport, RedriveError> {
    let dead = store.dead_letters().await?;
    let mut report = DeadLetterReport {
        found: dead.len(),
        ..DeadLetterReport::default()
    };
    for d in dead {
        let id = d.notice.transition_id.clone();
        if dry_run {
            report.would_requeue += 1;
        } else if store.requeue_dead_letter(&id).await? {
            report.requeued += 1;
        }
        report.notices.push((id, d.reason));
    }
    Ok(report)
}

/// Writes the collected EMF documents (one JSON line each).
pub fn write_emf(out: &mut dyn Write, emf: &Mutex<Vec<u8>>) -> std::io::Result<()> {
    let bytes = emf.lock().map(|b| b.clone()).unwrap_or_default();
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_payload_of_an_invocation_record_is_the_event() {
        let record = r#"{"version":"1.0","timestamp":"2026-12-06T10:00:00.000Z",
            "requestContext":{"requestId":"r1","functionArn":"arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3},
            "requestPayload":{"awslogs":{"data":"H4sI"}},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "responsePayload":{"errorMessage":"store unavailable"}}"#;
        assert_eq!(
            failed_payload(record).unwrap(),
            serde_json::json!({"awslogs": {"data": "H4sI"}})
        );
        // A bare event (a DLQ's format) is the event.
        assert_eq!(
            failed_payload(r#"{"Records":[]}"#).unwrap(),
            serde_json::json!({"Records": []})
        );
        assert_eq!(
            failed_payload(r#"{"requestContext":{},"requestPayload":"x"}"#),
            Err(UnreadableMessage::NoPayload)
        );
        assert!(matches!(
            failed_payload("not json"),
            Err(UnreadableMessage::NotJson(_))
        ));
        let huge = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            failed_payload(&huge),
            Err(UnreadableMessage::TooLarge(_))
        ));
    }
}
