//! Decodes a CloudWatch Logs subscription payload (`awslogs.data`: base64 of
//! gzip of a JSON envelope) with typed errors and a cap on the decompressed
//! size, so a malformed or hostile payload is counted and dropped instead of
//! failing the invocation (which Lambda would retry for nothing).

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::Deserialize;

use super::record::LogEvent;

/// Decompressed payloads above this are refused (a gzip bomb guard). A real
/// batch is at most about 1 MB compressed and rarely 10 MB expanded.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("awslogs.data is not valid base64")]
    InvalidBase64,
    #[error("awslogs.data is not gzip data")]
    NotGzip,
    #[error("the gzip stream is truncated or corrupt")]
    CorruptGzip,
    #[error("the payload expands to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the payload is not a CloudWatch Logs subscription envelope: {0}")]
    InvalidEnvelope(String),
}

impl DecodeError {
    /// The `reason` label of `log_batches_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::InvalidBase64 => "invalid_base64",
            DecodeError::NotGzip => "not_gzip",
            DecodeError::CorruptGzip => "corrupt_gzip",
            DecodeError::TooLarge { .. } => "oversized_batch",
            DecodeError::InvalidEnvelope(_) => "invalid_envelope",
        }
    }
}

/// `DATA_MESSAGE` carries events; `CONTROL_MESSAGE` is CloudWatch checking
/// that the destination is reachable and carries none worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Data,
    Control,
}

/// A decoded subscription batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionBatch {
    pub message_type: MessageType,
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
    pub subscription_filters: Vec<String>,
    pub events: Vec<LogEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    message_type: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    log_group: String,
    #[serde(default)]
    log_stream: String,
    #[serde(default)]
    subscription_filters: Vec<String>,
    #[serde(default)]
    log_events: Vec<EnvelopeEvent>,
}

#[derive(Deserialize)]
struct EnvelopeEvent {
    id: String,
    timestamp: i64,
    message: String,
}

impl SubscriptionBatch {
    /// A `DATA_MESSAGE` of `events` from `log_stream` of BlindspotX's log
    /// group, as the tools (`ops load`) and tests send them.
    pub fn data(log_stream: &str, events: Vec<LogEvent>) -> Self {
        SubscriptionBatch {
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/blindspotx/auth".into(),
            log_stream: log_stream.into(),
            subscription_filters: vec!["blindspotx-monitoring".into()],
            events,
        }
    }

    /// The Lambda event CloudWatch Logs delivers for this batch,
    /// `{"awslogs": {"data": base64(gzip(JSON))}}`: what
    /// [`decode_awslogs_data`] reads back.
    pub fn to_lambda_event(&self) -> std::io::Result<serde_json::Value> {
        let body = serde_json::json!({
            "messageType": match self.message_type {
                MessageType::Data => "DATA_MESSAGE",
                MessageType::Control => "CONTROL_MESSAGE",
            },
            "owner": self.owner,
            "logGroup": self.log_group,
            "logStream": self.log_stream,
            "subscriptionFilters": self.subscription_filters,
            "logEvents": self.events.iter().map(|e| serde_json::json!({
                "id": e.id,
                "timestamp": e.timestamp_ms,
                "message": e.message,
            })).collect::<Vec<_>>(),
        });
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(body.to_string().as_bytes())?;
        Ok(serde_json::json!({"awslogs": {"data": STANDARD.encode(gz.finish()?)}}))
    }
}

/// Decodes `awslogs.data`.
pub fn decode_awslogs_data(
    data: &str,
    max_decompressed_bytes: usize,
) -> Result<SubscriptionBatch, DecodeError> {
    let compressed = STANDARD
        .decode(data.trim())
        .map_err(|_| DecodeError::InvalidBase64)?;
    if !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(DecodeError::NotGzip);
    }
    let mut json = Vec::with_capacity(compressed.len() * 8);
    let limit = u64::try_from(max_decompressed_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    MultiGzDecoder::new(compressed.as_slice())
        .take(limit)
        .read_to_end(&mut json)
        .map_err(|_| DecodeError::CorruptGzip)?;
    if json.len() > max_decompressed_bytes {
        return Err(DecodeError::TooLarge {
            limit: max_decompressed_bytes,
        });
    }
    let envelope: Envelope =
        serde_json::from_slice(&json).map_err(|e| DecodeError::InvalidEnvelope(e.to_string()))?;
    let message_type = match envelope.message_type.as_str() {
        "DATA_MESSAGE" => MessageType::Data,
        "CONTROL_MESSAGE" => MessageType::Control,
        other => {
            return Err(DecodeError::InvalidEnvelope(format!(
                "unknown messageType {other:?}"
            )));
        }
    };
    Ok(SubscriptionBatch {
        message_type,
        owner: envelope.owner,
        log_group: envelope.log_group,
        log_stream: envelope.log_stream,
        subscription_filters: envelope.subscription_filters,
        events: envelope
            .log_events
            .into_iter()
            .map(|e| LogEvent {
                id: e.id,
                timestamp_ms: e.timestamp,
                message: e.message,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn encode(json: &str) -> String {
        STANDARD.encode(gzip(json.as_bytes()))
    }

    const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/blindspotx/auth","logStream":"app-1","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1747737000123,"message":"hello"},{"id":"2","timestamp":1747737000124,"message":"{\"a\":1}"}]}"#;

    #[test]
    fn decodes_a_data_message() {
        let batch = decode_awslogs_data(&encode(DATA), DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap();
        assert_eq!(batch.message_type, MessageType::Data);
        assert_eq!(batch.log_group, "/blindspotx/auth");
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[1].message, "{\"a\":1}");
        assert_eq!(batch.events[0].timestamp_ms, 1_747_737_000_123);
    }

    #[test]
    fn the_encoder_is_the_decoders_inverse() {
        let event = |id: &str, message: &str| LogEvent {
            id: id.into(),
            timestamp_ms: 1_747_737_000_123,
            message: message.into(),
        };
        let mut batch =
            SubscriptionBatch::data("app-1", vec![event("1", "hello"), event("2", "é \"x\"")]);
        let lambda_event = batch.to_lambda_event().unwrap();
        let data = lambda_event["awslogs"]["data"].as_str().unwrap();
        assert_eq!(
            decode_awslogs_data(data, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap(),
            batch
        );
        batch.message_type = MessageType::Control;
        let lambda_event = batch.to_lambda_event().unwrap();
        let data = lambda_event["awslogs"]["data"].as_str().unwrap();
        assert_eq!(
            decode_awslogs_data(data, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap(),
            batch
        );
    }

    #[test]
    fn recognises_control_messages() {
        let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        let batch = decode_awslogs_data(&encode(control), DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap();
        assert_eq!(batch.message_type, MessageType::Control);
    }

    #[test]
    fn bad_payloads_fail_with_their_reason() {
        let full = gzip(DATA.as_bytes());
        let truncated = STANDARD.encode(&full[..full.len() / 2]);
        let cases = [
            ("%%% not base64 %%%".to_owned(), "invalid_base64"),
            (STANDARD.encode(b"plain text, not gzip"), "not_gzip"),
            (truncated, "corrupt_gzip"),
            (encode("{\"messageType\": 5}"), "invalid_envelope"),
            (encode("not json"), "invalid_envelope"),
            (encode(r#"{"messageType":"OTHER"}"#), "invalid_envelope"),
            (
                STANDARD.encode([0x1f, 0x8b, 0, 1, 2, 3, 4, 5]),
                "corrupt_gzip",
            ),
        ];
        for (data, reason) in cases {
            let err = decode_awslogs_data(&data, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap_err();
            assert_eq!(err.reason(), reason, "{err}");
        }
    }

    #[test]
    fn refuses_payloads_that_expand_too_far() {
        let bomb = STANDARD.encode(gzip(&vec![b' '; 10_000]));
        let err = decode_awslogs_data(&bomb, 1_000).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { limit: 1_000 });
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(data in ".{0,200}") {
            let _ = decode_awslogs_data(&data, 4096);
        }

        #[test]
        fn decoding_garbage_gzip_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut payload = vec![0x1f, 0x8b];
            payload.extend(bytes);
            let _ = decode_awslogs_data(&STANDARD.encode(payload), 4096);
        }
    }
}
