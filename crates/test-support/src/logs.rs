//! CloudWatch Logs subscription events as the tests send them, encoded by
//! the bundle's own encoder beside its decoder
//! (`SubscriptionBatch::to_lambda_event`), never by hand.

use monitoring_core::domain::logs::decode::{MessageType, SubscriptionBatch};
use monitoring_core::domain::logs::record::LogEvent;
use serde_json::Value;

/// One log event.
pub fn event(id: impl Into<String>, timestamp_ms: i64, message: impl Into<String>) -> LogEvent {
    LogEvent {
        id: id.into(),
        timestamp_ms,
        message: message.into(),
    }
}

/// The Lambda event of a `DATA_MESSAGE` of `events` from `stream`.
pub fn lambda_event(stream: &str, events: Vec<LogEvent>) -> Value {
    encode(&SubscriptionBatch::data(stream, events))
}

/// The Lambda event of the `CONTROL_MESSAGE` CloudWatch Logs sends to check
/// a new subscription (its events are not log records).
pub fn control_event(stream: &str, events: Vec<LogEvent>) -> Value {
    encode(&SubscriptionBatch {
        message_type: MessageType::Control,
        ..SubscriptionBatch::data(stream, events)
    })
}

/// [`lambda_event`] as the bytes of a payload file (what `replay` reads).
pub fn payload_bytes(stream: &str, events: Vec<LogEvent>) -> Vec<u8> {
    lambda_event(stream, events).to_string().into_bytes()
}

fn encode(batch: &SubscriptionBatch) -> Value {
    batch
        .to_lambda_event()
        .unwrap_or_else(|e| panic!("encoding a subscription batch in memory: {e}"))
}
