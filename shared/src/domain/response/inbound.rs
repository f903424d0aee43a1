//! Incident messages as subscribers receive them: the SNS message body,
//! checked against `blindspotx.incident/v1`. A body that is not an incident
//! is rejected with a typed reason (counted and logged by the caller, never
//! retried: sending it again cannot make it valid).

use crate::domain::alerts::{INCIDENT_SCHEMA, Incident};
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
    rejected: &mut std::collections::BTreeMap<&'static str, usize>,
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
    use crate::domain::response::payloads::tests::incident;

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
}
