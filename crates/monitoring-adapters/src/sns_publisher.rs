//! Publishes incident messages to the SNS incidents topic.
//!
//! Each attribute goes out as a `String` message attribute, so subscribers
//! can filter (`{"category": ["security"], "severity": ["critical"]}`). On a
//! FIFO topic (ARN ending in `.fifo`) the message is grouped by rule and
//! carries the transition's dedup id; SNS's five-minute dedup window is only
//! a second line of defence, the outbox is the first.
//!
//! Incident messages go out with `MessageStructure=json`: the incident JSON
//! as `default` (what Lambda, SQS and HTTP subscribers receive, unchanged)
//! and a plain-text `email` body with a `Subject`, so e-mail subscribers
//! read a message rather than raw JSON (`payloads::email_structure`). A
//! body that is not an incident, or whose structured form would pass SNS's
//! size limit, goes out as it is.
//!
//! Errors are classified permanent or transient. Permanent
//! ([`PublishError::Rejected`]): the message is invalid, or the topic
//! refuses it until someone changes the deployment: the topic is gone
//! (`NotFound`), the role may not publish (`AuthorizationError`), the
//! topic's KMS key is disabled, missing or denied, the request is not
//! signed as SNS wants. Retrying every minute cannot help, and would hide
//! the fault behind a green bundle; the engine moves such a notice to the
//! dead letters, with an alarm, and the runbook requeues it after the fix.
//! Transient ([`PublishError::Unavailable`]): throttling (SNS's or KMS's),
//! 5xx, timeouts, refused connections, unreadable answers and errors this
//! SDK does not model: the outbox keeps the message until a later run gets
//! it through.

use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError as SnsPublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use sha2::{Digest, Sha256};

use super::aws::describe_sdk_error;
use monitoring_core::domain::security_response::payloads::email_structure;
use monitoring_core::ports::{IncidentPublisher, OutgoingMessage, PublishError};

/// SNS's limit on a message, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SNS's limit on `MessageDeduplicationId` and `MessageGroupId`.
const MAX_FIFO_ID_CHARS: usize = 128;
/// The FIFO group of messages that name no rule.
const DEFAULT_GROUP: &str = "incidents";

/// Service error codes that mean "refused for good", not "try later" (the
/// awsQuery codes of SNS's modelled errors, and the generic ones a front
/// end may answer with).
const REJECTION_CODES: [&str; 15] = [
    "InvalidParameter",
    "InvalidParameterValue",
    "ValidationException",
    "ValidationError",
    "NotFound",
    "AuthorizationError",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidSecurity",
    "KMSAccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
    "EndpointDisabled",
];

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
    fifo: bool,
}

impl SnsPublisher {
    pub fn new(sdk: &SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self::from_client(Client::new(sdk), topic_arn)
    }

    /// With a client built elsewhere (e.g. with test timeouts).
    pub fn from_client(client: Client, topic_arn: impl Into<String>) -> Self {
        let topic_arn = topic_arn.into();
        SnsPublisher {
            fifo: topic_arn.ends_with(".fifo"),
            client,
            topic_arn,
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    pub fn is_fifo(&self) -> bool {
        self.fifo
    }
}

impl IncidentPublisher for SnsPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        check(message)?;
        let attribute_bytes: usize = message
            .attributes
            .iter()
            .map(|(n, v)| n.len() + "String".len() + v.len())
            .sum();
        let structure = email_structure(&message.body).filter(|s| {
            let fits = s.message.len() + s.subject.len() + attribute_bytes <= MAX_MESSAGE_BYTES;
            if !fits {
                tracing::warn!(
                    dedup_id = %message.dedup_id,
                    reason = "structured_too_large",
                    "incident published without its e-mail text"
                );
            }
            fits
        });
        let mut request = self.client.publish().topic_arn(&self.topic_arn);
        request = match &structure {
            Some(s) => request
                .message(&s.message)
                .message_structure("json")
                .subject(&s.subject),
            None => request.message(&message.body),
        };
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PublishError::Rejected(format!("attribute {name}: {e}")))?;
            request = request.message_attributes(name, attribute);
        }
        if self.fifo {
            let group = message
                .attributes
                .get("rule")
                .map(String::as_str)
                .unwrap_or(DEFAULT_GROUP);
            request = request
                .message_group_id(fifo_id(group))
                .message_deduplication_id(fifo_id(&message.dedup_id));
        }
        request.send().await.map_err(|e| classify(&e))?;
        tracing::debug!(dedup_id = %message.dedup_id, "incident message published");
        Ok(())
    }
}

/// Refuses locally what SNS would refuse anyway, with a clearer message and
/// without a request.
fn check(message: &OutgoingMessage) -> Result<(), PublishError> {
    if message.body.is_empty() {
        return Err(PublishError::Rejected("empty message body".into()));
    }
    let mut size = message.body.len();
    for (name, value) in &message.attributes {
        if name.is_empty() || value.is_empty() {
            return Err(PublishError::Rejected(format!(
                "attribute {name:?} has an empty name or value"
            )));
        }
        // SNS counts the name, the data type and the value.
        size += name.len() + "String".len() + value.len();
    }
    if size > MAX_MESSAGE_BYTES {
        return Err(PublishError::Rejected(format!(
            "message is {size} bytes, over SNS's {MAX_MESSAGE_BYTES}"
        )));
    }
    if message.dedup_id.is_empty() {
        return Err(PublishError::Rejected("empty dedup id".into()));
    }
    Ok(())
}

/// A FIFO id within SNS's limits (at most 128 characters of
/// `[A-Za-z0-9!-/:-@[-`{-~]`): ids that already fit pass unchanged, so
/// they stay readable; others become their SHA-256, which is still
/// deterministic, so a republication keeps its dedup id.
fn fifo_id(id: &str) -> String {
    let fits = id.len() <= MAX_FIFO_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        id.to_owned()
    } else {
        Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn classify(err: &SdkError<SnsPublishError, HttpResponse>) -> PublishError {
    let description = describe_sdk_error(err);
    match err {
        SdkError::ServiceError(service) if is_rejection(service.err()) => {
            PublishError::Rejected(description)
        }
        // Timeouts, refused connections, unreadable answers, throttles, 5xx,
        // and errors this SDK does not model: kept for a later attempt,
        // never dropped.
        _ => PublishError::Unavailable(description),
    }
}

/// Whether SNS refused the message for good (sending it again cannot help
/// until the message or the deployment changes).
fn is_rejection(e: &SnsPublishError) -> bool {
    matches!(
        e,
        SnsPublishError::InvalidParameterException(_)
            | SnsPublishError::InvalidParameterValueException(_)
            | SnsPublishError::ValidationException(_)
            | SnsPublishError::NotFoundException(_)
            | SnsPublishError::AuthorizationErrorException(_)
            | SnsPublishError::InvalidSecurityException(_)
            | SnsPublishError::KmsAccessDeniedException(_)
            | SnsPublishError::KmsDisabledException(_)
            | SnsPublishError::KmsInvalidStateException(_)
            | SnsPublishError::KmsNotFoundException(_)
            | SnsPublishError::KmsOptInRequired(_)
            | SnsPublishError::EndpointDisabledException(_)
    ) || ProvideErrorMetadata::code(e).is_some_and(|c| REJECTION_CODES.contains(&c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn message(body: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: body.to_owned(),
            attributes: BTreeMap::from([
                ("rule".to_owned(), "auth_failures".to_owned()),
                ("severity".to_owned(), "high".to_owned()),
            ]),
            dedup_id: "inc-1#firing".to_owned(),
        }
    }

    #[test]
    fn fifo_ids_that_fit_pass_unchanged() {
        assert_eq!(fifo_id("inc-1#firing"), "inc-1#firing");
        let long = "x".repeat(129);
        let hashed = fifo_id(&long);
        assert_eq!(hashed.len(), 64);
        assert_eq!(hashed, fifo_id(&long), "deterministic");
        assert_eq!(fifo_id("with space").len(), 64);
    }

    #[test]
    fn oversized_and_empty_messages_are_rejected_locally() {
        assert!(check(&message("{}")).is_ok());
        let big = message(&"x".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(check(&big), Err(PublishError::Rejected(m)) if m.contains("over SNS")));
        assert!(matches!(
            check(&message("")),
            Err(PublishError::Rejected(_))
        ));
        let mut empty_value = message("{}");
        empty_value
            .attributes
            .insert("status".into(), String::new());
        assert!(matches!(
            check(&empty_value),
            Err(PublishError::Rejected(_))
        ));
    }

    #[test]
    fn fifo_is_recognized_by_the_arn() {
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let p = SnsPublisher::new(&sdk, "arn:aws:sns:eu-west-1:123456789012:incidents.fifo");
        assert!(p.is_fifo());
        let p = SnsPublisher::new(&sdk, "arn:aws:sns:eu-west-1:123456789012:incidents");
        assert!(!p.is_fifo());
    }

    #[test]
    fn validation_errors_are_rejections_and_the_rest_unavailable() {
        use aws_sdk_sns::error::ErrorMetadata;
        use aws_sdk_sns::types::error::{InternalErrorException, InvalidParameterException};
        let invalid = SnsPublishError::InvalidParameterException(
            InvalidParameterException::builder().message("bad").build(),
        );
        assert!(is_rejection(&invalid));
        let coded =
            SnsPublishError::generic(ErrorMetadata::builder().code("ValidationError").build());
        assert!(is_rejection(&coded));
        for code in [
            "NotFound",
            "AuthorizationError",
            "KMSDisabled",
            "InvalidParameter",
        ] {
            let e = SnsPublishError::generic(ErrorMetadata::builder().code(code).build());
            assert!(is_rejection(&e), "{code} is permanent");
        }
        let missing = SnsPublishError::NotFoundException(
            aws_sdk_sns::types::error::NotFoundException::builder().build(),
        );
        assert!(is_rejection(&missing));
        let denied = SnsPublishError::AuthorizationErrorException(
            aws_sdk_sns::types::error::AuthorizationErrorException::builder().build(),
        );
        assert!(is_rejection(&denied));
        let kms_throttled = SnsPublishError::KmsThrottlingException(
            aws_sdk_sns::types::error::KmsThrottlingException::builder().build(),
        );
        assert!(!is_rejection(&kms_throttled), "throttling is transient");
        for code in [
            "Throttling",
            "ThrottledException",
            "ServiceUnavailable",
            "InternalError",
            "KMSThrottling",
        ] {
            let e = SnsPublishError::generic(ErrorMetadata::builder().code(code).build());
            assert!(!is_rejection(&e), "{code}");
        }
        let internal =
            SnsPublishError::InternalErrorException(InternalErrorException::builder().build());
        assert!(!is_rejection(&internal));
    }
}
