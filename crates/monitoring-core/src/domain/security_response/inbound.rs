//! Incident messages as subscribers receive them: the SNS message body,
//! checked against `blindspotx.incident/v1`. A body that is not an incident
//! is rejected with a typed reason (counted and logged by the caller, never
//! retried: sending it again cannot make it valid).
//!
//! Before anything acts on a message, it is checked against its source
//! ([`from_topic`]: the record's topic must be the configured incidents
//! topic) and, by the security responder, against the table
//! ([`verify_stored`]: the incident must exist as delivered). Either
//! refusal is a [`Refusal`], counted by reason and acknowledged: a forged or
//! stale message does not become true on a retry.

use std::collections::BTreeMap;

use crate::domain::alerts::{INCIDENT_SCHEMA, Incident, TransitionKind};
use crate::domain::logs::redact::mask_secrets;

/// Why a message is not an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not JSON, or not the incident's shape (missing or unknown field,
    /// wrong type).
    #[error("not an incident message: {0}")]
    InvalidJson(String),
    /// JSON of another schema or version.
    #[error("schema {0:?} is not {INCIDENT_SCHEMA}")]
    WrongSchema(String),
}

impl Rejection {
    /// The reason label of the rejection counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::InvalidJson(_) => "invalid_json",
            Rejection::WrongSchema(_) => "wrong_schema",
        }
    }
}

/// The incident in an SNS message, or `None` for a message that is not
/// one: then it is counted in `rejected` by reason and logged (scrubbed),
/// and the caller acknowledges it, since a retry would fail the same way.
pub fn accept_incident(
    message: &str,
    message_id: &str,
    rejected: &mut BTreeMap<&'static str, usize>,
) -> Option<Incident> {
    match parse_incident(message) {
        Ok(incident) => Some(incident),
        Err(rejection) => {
            *rejected.entry(rejection.reason()).or_default() += 1;
            tracing::warn!(
                reason = rejection.reason(),
                message_id,
                error = %rejection,
                "incident message rejected; acknowledged without retry"
            );
            None
        }
    }
}

/// Why a well-formed incident message is not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The SNS record names another topic than the configured incidents
    /// topic: whoever can invoke the function can write any record.
    #[error("the record comes from another topic than the configured incidents topic")]
    WrongTopic,
    /// No incident with this id in the table.
    #[error("no such incident in the table")]
    UnknownIncident,
    /// The stored incident differs in this field.
    #[error("the stored incident differs in `{}`", .0.as_str())]
    Mismatch(Field),
}

/// The incident fields a delivered message is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    Rule,
    Category,
    Severity,
    KeyName,
    Key,
    Subject,
    Episode,
    Status,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Rule => "rule",
            Field::Category => "category",
            Field::Severity => "severity",
            Field::KeyName => "key_name",
            Field::Key => "key",
            Field::Subject => "subject",
            Field::Episode => "episode",
            Field::Status => "status",
        }
    }
}

impl Refusal {
    /// The reason label of the rejection counter: `wrong_topic`,
    /// `unknown_incident`, `mismatch:<field>`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::WrongTopic => "wrong_topic",
            Refusal::UnknownIncident => "unknown_incident",
            Refusal::Mismatch(field) => match field {
                Field::Id => "mismatch:id",
                Field::Rule => "mismatch:rule",
                Field::Category => "mismatch:category",
                Field::Severity => "mismatch:severity",
                Field::KeyName => "mismatch:key_name",
                Field::Key => "mismatch:key",
                Field::Subject => "mismatch:subject",
                Field::Episode => "mismatch:episode",
                Field::Status => "mismatch:status",
            },
        }
    }
}

/// Whether a record of `topic_arn` may be read at all: only the configured
/// incidents topic publishes incidents. Compared exactly (ARNs are
/// case-sensitive).
pub fn from_topic(topic_arn: &str, expected: &str) -> Result<(), Refusal> {
    if topic_arn == expected {
        Ok(())
    } else {
        Err(Refusal::WrongTopic)
    }
}

/// Longest incident id looked up (the engine's ids are 32 hex digits).
pub const MAX_INCIDENT_ID_CHARS: usize = 64;

/// Whether `id` can name an incident at all: a forged id (too long for a
/// table key, or with characters no id has) is unknown without a read.
pub fn plausible_incident_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INCIDENT_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `delivered` is the incident the table holds (`stored`, its latest
/// transition). Every field an action depends on must match: the id, the
/// rule (and its category and severity, which route it here), whom it is
/// about (key name, key, subject) and the episode. The status must be of the
/// same phase: a firing or reminder message needs the incident still open
/// (stored firing or reminder), a resolution a resolved incident; an
/// incident that resolved before the message was handled is not acted on.
pub fn verify_stored(delivered: &Incident, stored: Option<&Incident>) -> Result<(), Refusal> {
    let Some(stored) = stored else {
        return Err(Refusal::UnknownIncident);
    };
    let open = |s: TransitionKind| matches!(s, TransitionKind::Firing | TransitionKind::Reminder);
    let checks = [
        (Field::Id, delivered.id == stored.id),
        (Field::Rule, delivered.rule == stored.rule),
        (Field::Category, delivered.category == stored.category),
        (Field::Severity, delivered.severity == stored.severity),
        (Field::KeyName, delivered.key_name == stored.key_name),
        (Field::Key, delivered.key == stored.key),
        (Field::Subject, delivered.subject == stored.subject),
        (Field::Episode, delivered.episode == stored.episode),
        (Field::Status, open(delivered.status) == open(stored.status)),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((field, _)) => Err(Refusal::Mismatch(*field)),
        None => Ok(()),
    }
}

/// Counts and logs a refusal (the caller acknowledges the record).
pub fn count_refusal(
    refusal: Refusal,
    message_id: &str,
    incident_id: Option<&str>,
    rejected: &mut BTreeMap<&'static str, usize>,
) {
    *rejected.entry(refusal.reason()).or_default() += 1;
    // The incident id of an unverified message is attacker input: cut.
    let incident: String = incident_id
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    tracing::warn!(
        reason = refusal.reason(),
        message_id,
        incident = %mask_secrets(&incident),
        error = %refusal,
        "incident message refused; acknowledged without acting or retrying"
    );
}

/// The incident in an SNS message body.
pub fn parse_incident(message: &str) -> Result<Incident, Rejection> {
    // The schema first, so another version is named as such rather than as
    // a shape error.
    let value: serde_json::Value = serde_json::from_str(message)
        .map_err(|e| Rejection::InvalidJson(mask_secrets(&e.to_string()).into_owned()))?;
    match value.get("schema").and_then(serde_json::Value::as_str) {
        Some(INCIDENT_SCHEMA) => {}
        Some(other) => {
            return Err(Rejection::WrongSchema(
                mask_secrets(&other.chars().take(64).collect::<String>()).into_owned(),
            ));
        }
        None => return Err(Rejection::WrongSchema(String::new())),
    }
    serde_json::from_value(value)
        .map_err(|e| Rejection::InvalidJson(mask_secrets(&e.to_string()).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::{Severity, TransitionKind};
    use crate::domain::security_response::payloads::tests::incident;

    #[test]
    fn incidents_round_trip_and_others_are_rejected() {
        let i = incident(TransitionKind::Firing, Severity::Critical);
        assert_eq!(parse_incident(&i.to_json()).unwrap(), i);
        assert_eq!(parse_incident("nope").unwrap_err().reason(), "invalid_json");
        assert_eq!(
            parse_incident(r#"{"schema":"blindspotx.incident/v2"}"#).unwrap_err(),
            Rejection::WrongSchema("blindspotx.incident/v2".into())
        );
        assert_eq!(parse_incident("{}").unwrap_err().reason(), "wrong_schema");
        let mut v: serde_json::Value = serde_json::from_str(&i.to_json()).unwrap();
        v["surprise"] = 1.into();
        assert_eq!(
            parse_incident(&v.to_string()).unwrap_err().reason(),
            "invalid_json"
        );
    }

    #[test]
    fn only_the_configured_topic_is_read() {
        let topic = "arn:aws:sns:eu-west-1:123456789012:incidents";
        assert_eq!(from_topic(topic, topic), Ok(()));
        for other in [
            "arn:aws:sns:eu-west-1:123456789012:incidents-2",
            "arn:aws:sns:eu-west-1:999999999999:incidents",
            "ARN:AWS:SNS:EU-WEST-1:123456789012:INCIDENTS",
            "",
        ] {
            assert_eq!(
                from_topic(other, topic),
                Err(Refusal::WrongTopic),
                "{other}"
            );
        }
        assert_eq!(Refusal::WrongTopic.reason(), "wrong_topic");
    }

    #[test]
    fn a_delivered_incident_must_be_the_stored_one() {
        let stored = incident(TransitionKind::Firing, Severity::Critical);
        assert_eq!(verify_stored(&stored, Some(&stored)), Ok(()));
        assert_eq!(
            verify_stored(&stored, None).unwrap_err().reason(),
            "unknown_incident"
        );
        // A reminder of the same episode is still the open incident.
        let mut reminded = stored.clone();
        reminded.status = TransitionKind::Reminder;
        assert_eq!(verify_stored(&stored, Some(&reminded)), Ok(()));
        type Edit = fn(&mut Incident);
        let edits: [(&str, Edit); 9] = [
            ("mismatch:id", |i| i.id = "other".into()),
            ("mismatch:rule", |i| i.rule = "other".into()),
            ("mismatch:category", |i| {
                i.category = crate::domain::alerts::Category::System
            }),
            ("mismatch:severity", |i| i.severity = Severity::High),
            ("mismatch:key_name", |i| i.key_name = Some("ip".into())),
            ("mismatch:key", |i| i.key = "u-someone-else".into()),
            ("mismatch:subject", |i| i.subject = Some("u-1".into())),
            ("mismatch:episode", |i| i.episode += 1),
            ("mismatch:status", |i| i.status = TransitionKind::Resolved),
        ];
        for (reason, edit) in edits {
            let mut forged = stored.clone();
            edit(&mut forged);
            assert_eq!(
                verify_stored(&forged, Some(&stored)).unwrap_err().reason(),
                reason
            );
        }
        assert!(plausible_incident_id(&stored.id));
        for forged in ["", "a#b", "a b", &"0".repeat(65)] {
            assert!(!plausible_incident_id(forged), "{forged}");
        }
        // Resolved in the table, firing on the wire: not acted on.
        let mut resolved = stored.clone();
        resolved.status = TransitionKind::Resolved;
        assert_eq!(
            verify_stored(&stored, Some(&resolved))
                .unwrap_err()
                .reason(),
            "mismatch:status"
        );
    }
}
