//! The incident message (`blindspotx.incident/v1`): the one type that the
//! store keeps, SNS carries, subscribers read and
//! `docs/schema/incident-v1.schema.json` documents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::config::{Category, Severity};
pub use super::keys::incident_id;
use super::rules::AlertRule;
use super::window::{Transition, TransitionKind, truncate};
use crate::domain::timefmt::rfc3339_millis;

pub const INCIDENT_SCHEMA: &str = "blindspotx.incident/v1";
/// Upper bound of a serialized incident. SNS takes 256 KiB, but chat and
/// pager integrations choke long before; samples are dropped and cut first.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// One message for the incidents topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The serialized incident (JSON, `blindspotx.incident/v1`).
    pub body: String,
    /// SNS message attributes for filter policies: `severity`, `category`,
    /// `rule`, `status`.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Stable per transition, so a FIFO topic can drop a republication.
    pub dedup_id: String,
}

/// The default of `RUNBOOK_BASE_URL`: the runbooks (`docs/runbooks/` of
/// this repository) as the project publishes them. A notification is read
/// away from any checkout, so the link must be absolute; a fork or an
/// internal wiki sets its own base.
pub const DEFAULT_RUNBOOK_BASE_URL: &str =
    "https://github.com/blindspotx/blindspotx-monitoring/blob/main/docs/runbooks";
/// Where the runbooks live in the repository (`<dir>/<rule>.md`).
pub const RUNBOOK_DIR: &str = "docs/runbooks";

/// Where incidents link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The dashboard to open from a notification.
    pub dashboard_url: String,
    /// Base of the runbooks: `<base>/<rule>.md`.
    pub runbook_base_url: String,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            dashboard_url: "https://console.aws.amazon.com/cloudwatch/home#dashboards".into(),
            runbook_base_url: DEFAULT_RUNBOOK_BASE_URL.into(),
        }
    }
}

/// One incident transition, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Always [`INCIDENT_SCHEMA`].
    pub schema: String,
    pub id: String,
    /// 1 for the first episode of the (rule, key), then 2, ...
    pub episode: u32,
    /// Unique per transition (`<id>:firing`, `<id>:reminder:<n>`, `<id>:resolved`).
    pub transition_id: String,
    pub status: TransitionKind,
    pub rule: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    /// What the key is (`ip`, `user`, `component`), absent for ungrouped rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Redacted or pseudonymized grouping key; `""` for ungrouped rules.
    pub key: String,
    /// The account a sequence rule's closing success named (the user to
    /// revoke when the key is an address); absent for counting rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub count: u32,
    pub threshold: u32,
    pub window_seconds: u64,
    pub first_event_at: String,
    pub last_event_at: String,
    /// When the transition happened (event time for firing and resolution).
    pub transition_at: String,
    /// Up to three redacted sample lines.
    pub samples: Vec<String>,
    /// Components whose outage explains the signals (inhibition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibited_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// Why the transition was not published, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub dashboard_url: String,
    pub runbook_url: String,
}

impl Incident {
    pub fn new(rule: &AlertRule, key: &str, transition: &Transition, links: &Links) -> Self {
        let ep = &transition.episode;
        let suppression = ep.suppression.as_ref();
        let mut incident = Incident {
            schema: INCIDENT_SCHEMA.to_owned(),
            id: ep.id.clone(),
            episode: ep.number,
            transition_id: transition.id(),
            status: transition.kind,
            rule: rule.name.to_string(),
            description: rule.description.clone(),
            category: rule.category,
            severity: rule.severity,
            key_name: rule.group_by.as_deref().map(str::to_owned),
            key: key.to_owned(),
            subject: ep.subject.clone(),
            count: transition.count,
            threshold: rule.threshold,
            window_seconds: rule.window_seconds(),
            first_event_at: ms_to_rfc3339(ep.first_event_ms),
            last_event_at: ms_to_rfc3339(ep.last_event_ms),
            transition_at: ms_to_rfc3339(transition.at_ms),
            samples: ep.samples.clone(),
            inhibited_by: suppression
                .map(|s| s.inhibited_by.clone())
                .unwrap_or_default(),
            silenced_by: suppression.and_then(|s| s.silenced_by.clone()),
            reason: suppression.map(|s| s.reason.clone()),
            dashboard_url: links.dashboard_url.clone(),
            runbook_url: format!(
                "{}/{}.md",
                links.runbook_base_url.trim_end_matches('/'),
                rule.name
            ),
        };
        incident.bound();
        incident
    }

    /// Whether this transition goes to subscribers.
    pub fn is_published(&self) -> bool {
        self.reason.is_none()
    }

    /// The JSON body, at most [`MAX_MESSAGE_BYTES`].
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail; `{}` would be
        // caught by every schema check downstream.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Drops and cuts samples, then the description, until the message fits.
    fn bound(&mut self) {
        let mut size = self.to_json().len();
        while size > MAX_MESSAGE_BYTES && !self.samples.is_empty() {
            let over = size - MAX_MESSAGE_BYTES;
            let last = self.samples.len() - 1;
            let len = self.samples[last].len();
            if len > over + 64 {
                let cut = truncate(&self.samples[last], len - over - 64).to_owned();
                self.samples[last] = cut;
            } else {
                self.samples.pop();
            }
            size = self.to_json().len();
        }
        if size > MAX_MESSAGE_BYTES {
            let keep = self
                .description
                .len()
                .saturating_sub(size - MAX_MESSAGE_BYTES);
            self.description = truncate(&self.description, keep).to_owned();
        }
    }

    /// The SNS message: body, filter attributes, dedup id.
    pub fn to_message(&self) -> OutgoingMessage {
        OutgoingMessage {
            body: self.to_json(),
            attributes: BTreeMap::from([
                ("severity".to_owned(), self.severity.as_str().to_owned()),
                ("category".to_owned(), self.category.as_str().to_owned()),
                ("rule".to_owned(), self.rule.clone()),
                ("status".to_owned(), self.status.as_str().to_owned()),
            ]),
            dedup_id: self.transition_id.clone(),
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, milliseconds).
pub fn ms_to_rfc3339(ms: i64) -> String {
    rfc3339_millis(ms_to_time(ms))
}

pub fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn time_to_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::domain::alerts::window::{Episode, Suppression};

    const SCHEMA: &str = include_str!("../../../../../docs/schema/incident-v1.schema.json");

    fn transition(kind: TransitionKind, samples: Vec<String>) -> Transition {
        Transition {
            kind,
            at_ms: 1_764_500_000_000,
            count: 5,
            episode: Episode {
                id: incident_id("auth_failures", "ip:ab12", 1, "ev5"),
                number: 1,
                opened_by: "ev5".into(),
                fired_at_ms: 1_764_500_000_000,
                first_event_ms: 1_764_499_900_000,
                last_event_ms: 1_764_500_000_000,
                count: 5,
                reminders: 0,
                last_notice_ms: 1_764_500_000_000,
                samples,
                suppression: None,
                published_any: false,
                subject: None,
            },
        }
    }

    fn sample_incident(kind: TransitionKind) -> Incident {
        let rules = crate::domain::alerts::AlertRules::default_rules().unwrap();
        let rule = &rules.rules()[0];
        Incident::new(
            rule,
            "ip:ab12",
            &transition(kind, vec!["a line".into()]),
            &Links::default(),
        )
    }

    #[test]
    fn ids_are_deterministic_and_distinct_per_episode() {
        let a = incident_id("r", "k", 1, "e");
        assert_eq!(a, incident_id("r", "k", 1, "e"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, incident_id("r", "k", 2, "e"));
        assert_ne!(
            incident_id("r", "k\0", 1, "e"),
            incident_id("r", "k", 1, "\0e")
        );
    }

    #[test]
    fn message_carries_attributes_and_links() {
        let i = sample_incident(TransitionKind::Firing);
        let m = i.to_message();
        assert_eq!(m.attributes["severity"], "high");
        assert_eq!(m.attributes["category"], "security");
        assert_eq!(m.attributes["rule"], "auth_failures");
        assert_eq!(m.attributes["status"], "firing");
        assert_eq!(m.dedup_id, format!("{}:firing", i.id));
        assert_eq!(
            i.runbook_url,
            format!("{DEFAULT_RUNBOOK_BASE_URL}/auth_failures.md")
        );
        assert_eq!(i.first_event_at, "2025-11-30T10:51:40.000Z");
        let back: Incident = serde_json::from_str(&m.body).unwrap();
        assert_eq!(back, i);
    }

    #[test]
    fn messages_stay_under_the_bound() {
        let rules = crate::domain::alerts::AlertRules::default_rules().unwrap();
        let big = vec!["x".repeat(9000), "é".repeat(5000), "y".repeat(9000)];
        let i = Incident::new(
            &rules.rules()[0],
            "k",
            &transition(TransitionKind::Firing, big),
            &Links::default(),
        );
        let n = i.to_json().len();
        assert!(n <= MAX_MESSAGE_BYTES && n > MAX_MESSAGE_BYTES - 200, "{n}");
        assert!(!i.samples.is_empty());
    }

    /// Serialized incidents against the schema file: every required field
    /// present, enums and types as declared, no undeclared property.
    #[test]
    fn serialized_incidents_follow_the_json_schema() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["properties"]["schema"]["const"], INCIDENT_SCHEMA);
        let props = schema["properties"].as_object().unwrap();
        let mut suppressed = transition(TransitionKind::Resolved, vec!["l".into()]);
        suppressed.episode.suppression = Some(Suppression {
            inhibited_by: vec!["oauth".into()],
            silenced_by: Some("s1".into()),
            reason: "why".into(),
        });
        let rules = crate::domain::alerts::AlertRules::default_rules().unwrap();
        let incidents = [
            sample_incident(TransitionKind::Firing),
            sample_incident(TransitionKind::Reminder),
            Incident::new(&rules.rules()[1], "", &suppressed, &Links::default()),
        ];
        for incident in incidents {
            let v: Value = serde_json::from_str(&incident.to_json()).unwrap();
            let obj = v.as_object().unwrap();
            for req in schema["required"].as_array().unwrap() {
                assert!(obj.contains_key(req.as_str().unwrap()), "missing {req}");
            }
            for (name, value) in obj {
                let prop = props
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} not in schema"));
                let ty = prop["type"].as_str().unwrap();
                let ok = match ty {
                    "string" => value.is_string(),
                    "integer" => value.is_u64(),
                    "array" => value.as_array().unwrap().iter().all(Value::is_string),
                    other => panic!("type {other}"),
                };
                assert!(ok, "{name}: {value} is not {ty}");
                if let Some(allowed) = prop.get("enum") {
                    assert!(
                        allowed.as_array().unwrap().contains(value),
                        "{name}: {value}"
                    );
                }
                if let Some(max) = prop.get("maxItems") {
                    assert!(value.as_array().unwrap().len() as u64 <= max.as_u64().unwrap());
                }
            }
        }
    }
}
