//! Alertmanager's v2 silence shape over our silences, so `amtool silence
//! add/query/expire` (and anything else speaking Alertmanager's API) can
//! manage them with the admin token:
//! - `GET /api/v2/silences[?filter=<matcher>...]`, `POST /api/v2/silences`,
//! - `GET /api/v2/silence/{id}`, `DELETE /api/v2/silence/{id}`.
//!
//! The mapping, and what cannot be mapped (refused with 400 and a message
//! saying why, never approximated):
//! - label names: `alertname` is our `rule`; `rule`, `key`, `category`
//!   and `severity` keep their names. Any other label is refused (incidents
//!   carry no other label a silence could match).
//! - `isEqual: false` (negative matchers, `!=` / `!~`) is refused: our
//!   silences match positively only.
//! - a body with an `id` (Alertmanager's update in place) is refused:
//!   expire the silence and add a new one.
//! - `createdBy` is the client's word, kept as `requested_by`; the silence's
//!   creator is the admin token's identity, as on `/api/silences`.
//! - the security flag: a silence that can mute a security rule needs
//!   `[security]` in its comment (Alertmanager's shape has no field for it),
//!   so muting a security rule stays a deliberate act.
//!
//! Every guard rail of `POST /api/silences` applies unchanged (maximum
//! duration, maximum number, matchers that mute every rule).

use monitoring_core::domain::silence::{Matcher, NewSilence, Silence};
use monitoring_core::domain::timefmt::rfc3339_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The comment tag that sets the security flag.
pub const SECURITY_TAG: &str = "[security]";
/// At most this many `filter` parameters on a query.
pub const MAX_FILTERS: usize = 16;

/// An Alertmanager matcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// Alertmanager's `postableSilence`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<AmMatcher>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub created_by: String,
    pub comment: String,
}

/// Why an Alertmanager-shaped request has no equivalent here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "matchers[{index}].name: {name:?} is not a label of incidents; use alertname (or rule), key, category or severity"
    )]
    UnknownLabel { index: usize, name: String },
    #[error(
        "matchers[{index}]: negative matchers (isEqual=false, != and !~) are not supported; match the labels to silence"
    )]
    Negative { index: usize },
    #[error("id: updating a silence in place is not supported; expire it and add a new one")]
    Update,
    #[error("filter: {0}")]
    Filter(String),
}

/// Our label name for an Alertmanager one.
fn our_name(am: &str) -> Option<&'static str> {
    match am {
        "alertname" | "rule" => Some("rule"),
        "key" => Some("key"),
        "category" => Some("category"),
        "severity" => Some("severity"),
        _ => None,
    }
}

/// The Alertmanager label name for ours.
fn am_name(ours: &str) -> &str {
    if ours == "rule" { "alertname" } else { ours }
}

impl PostableSilence {
    /// The create request it maps to, or why it cannot be mapped.
    pub fn into_request(self) -> Result<NewSilence, MappingError> {
        if self.id.as_deref().is_some_and(|id| !id.is_empty()) {
            return Err(MappingError::Update);
        }
        let matchers = self
            .matchers
            .into_iter()
            .enumerate()
            .map(|(index, m)| {
                if !m.is_equal {
                    return Err(MappingError::Negative { index });
                }
                let name = our_name(&m.name).ok_or_else(|| MappingError::UnknownLabel {
                    index,
                    name: m.name.chars().take(64).collect(),
                })?;
                Ok(Matcher {
                    name: name.to_owned(),
                    value: m.value,
                    is_regex: m.is_regex,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let security = self.comment.to_ascii_lowercase().contains(SECURITY_TAG);
        Ok(NewSilence {
            matchers,
            starts_at: Some(self.starts_at),
            ends_at: Some(self.ends_at),
            duration_seconds: None,
            comment: self.comment,
            requested_by: Some(self.created_by),
            security,
        })
    }
}

/// Alertmanager's `silenceStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: &'static str,
}

/// Alertmanager's `gettableSilence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    pub updated_at: String,
    pub matchers: Vec<AmMatcher>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence stands at `now`.
pub fn state(silence: &Silence, now: OffsetDateTime) -> &'static str {
    if silence.ends_at <= now {
        "expired"
    } else if silence.starts_at > now {
        "pending"
    } else {
        "active"
    }
}

impl GettableSilence {
    pub fn new(silence: &Silence, now: OffsetDateTime) -> Self {
        GettableSilence {
            id: silence.id.clone(),
            status: SilenceStatus {
                state: state(silence, now),
            },
            updated_at: rfc3339_millis(silence.expired_at.unwrap_or(silence.created_at)),
            matchers: silence
                .matchers
                .iter()
                .map(|m| AmMatcher {
                    name: am_name(&m.name).to_owned(),
                    value: m.value.clone(),
                    is_regex: m.is_regex,
                    is_equal: true,
                })
                .collect(),
            starts_at: rfc3339_millis(silence.starts_at),
            ends_at: rfc3339_millis(silence.ends_at),
            created_by: silence
                .requested_by
                .clone()
                .unwrap_or_else(|| silence.created_by.clone()),
            comment: silence.comment.clone(),
        }
    }
}

/// One `filter` of `GET /api/v2/silences`: `name="value"`, `name=~"re"`,
/// `name!="value"` or `name!~"re"` (quotes optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    matcher: Matcher,
    negative: bool,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let text = text.trim();
        let (at, op) = ["=~", "!~", "!=", "="]
            .iter()
            .filter_map(|op| text.find(op).map(|at| (at, *op)))
            .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())))
            .ok_or_else(|| MappingError::Filter(format!("{text:?} is not name=value")))?;
        let name = text[..at].trim();
        let raw = text[at + op.len()..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        let name = our_name(name).ok_or_else(|| {
            MappingError::Filter(format!(
                "{name:?} is not a label of incidents; use alertname (or rule), key, category or severity"
            ))
        })?;
        let matcher = Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            is_regex: op.ends_with('~'),
        };
        // An invalid pattern would match nothing: say so rather than answer
        // an empty list.
        if matcher.is_regex && regex_invalid(value) {
            return Err(MappingError::Filter(format!(
                "{value:?} is not a valid regular expression"
            )));
        }
        Ok(Filter {
            matcher,
            negative: op.starts_with('!'),
        })
    }

    /// Alertmanager's rule: the silence's equality matchers form a label
    /// set, and the filter must match it (a label it lacks is empty).
    pub fn keeps(&self, silence: &Silence) -> bool {
        let value = silence
            .matchers
            .iter()
            .find(|m| !m.is_regex && m.name == self.matcher.name)
            .map_or("", |m| m.value.as_str());
        self.matcher.matches_value(value) != self.negative
    }
}

fn regex_invalid(pattern: &str) -> bool {
    NewSilence {
        matchers: vec![Matcher::regex("rule", pattern)],
        starts_at: None,
        ends_at: None,
        duration_seconds: Some(60),
        comment: "check".into(),
        requested_by: None,
        security: true,
    }
    .validate(
        OffsetDateTime::UNIX_EPOCH,
        "check",
        &monitoring_core::domain::silence::SilencePolicy::default(),
    )
    .is_err_and(|e| {
        matches!(
            e,
            monitoring_core::domain::silence::SilenceError::InvalidRegex { .. }
        )
    })
}

/// The `filter` parameters of a query string; any other parameter is
/// refused.
pub fn filters(query: Option<&str>) -> Result<Vec<Filter>, MappingError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| MappingError::Filter(format!("unreadable query: {e}")))?;
    if pairs.len() > MAX_FILTERS {
        return Err(MappingError::Filter(format!(
            "at most {MAX_FILTERS} filters are allowed"
        )));
    }
    pairs
        .iter()
        .map(|(name, value)| {
            if name == "filter" {
                Filter::parse(value)
            } else {
                Err(MappingError::Filter(format!(
                    "unknown query parameter {:?}; only `filter` is supported",
                    name.chars().take(64).collect::<String>()
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use monitoring_core::domain::silence::SilencePolicy;

    use super::*;

    fn body(matchers: &str, comment: &str) -> PostableSilence {
        serde_json::from_str(&format!(
            r#"{{"matchers":{matchers},"startsAt":"2026-12-01T10:00:00Z",
                "endsAt":"2026-12-01T11:00:00Z","createdBy":"alice","comment":"{comment}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn amtool_bodies_map_onto_our_requests() {
        let request = body(
            r#"[{"name":"alertname","value":"api_errors","isRegex":false,"isEqual":true},
                {"name":"key","value":"10\\..*","isRegex":true}]"#,
            "deploy",
        )
        .into_request()
        .unwrap();
        assert_eq!(
            request.matchers,
            [
                Matcher::equal("rule", "api_errors"),
                Matcher::regex("key", "10\\..*")
            ]
        );
        assert_eq!(request.requested_by.as_deref(), Some("alice"));
        assert!(!request.security);
        let now = time::macros::datetime!(2026-12-01 10:00 UTC);
        let silence = request
            .validate(now, "admin-token", &SilencePolicy::default())
            .unwrap();
        let shown = GettableSilence::new(&silence, now);
        assert_eq!(shown.matchers[0].name, "alertname");
        assert_eq!(shown.status.state, "active");
        assert_eq!(shown.created_by, "alice");
        assert_eq!(shown.ends_at, "2026-12-01T11:00:00.000Z");
    }

    #[test]
    fn what_cannot_be_mapped_is_refused_with_the_reason() {
        let unknown = body(r#"[{"name":"instance","value":"x"}]"#, "c").into_request();
        assert!(matches!(
            unknown,
            Err(MappingError::UnknownLabel { index: 0, .. })
        ));
        let negative = body(r#"[{"name":"rule","value":"x","isEqual":false}]"#, "c").into_request();
        assert_eq!(negative, Err(MappingError::Negative { index: 0 }));
        let mut update = body(r#"[{"name":"rule","value":"x"}]"#, "c");
        update.id = Some("abc".into());
        assert_eq!(update.into_request(), Err(MappingError::Update));
        assert!(
            serde_json::from_str::<PostableSilence>(
                r#"{"matchers":[],"startsAt":"2026-12-01T10:00:00Z","endsAt":"2026-12-01T11:00:00Z","createdBy":"a","comment":"c","extra":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn the_security_tag_sets_the_flag() {
        let r = body(
            r#"[{"name":"category","value":"security"}]"#,
            "[Security] pen test",
        )
        .into_request()
        .unwrap();
        assert!(r.security);
    }

    #[test]
    fn filters_follow_alertmanager() {
        let now = time::macros::datetime!(2026-12-01 10:00 UTC);
        let silence = body(r#"[{"name":"alertname","value":"api_errors"}]"#, "c")
            .into_request()
            .unwrap()
            .validate(now, "admin-token", &SilencePolicy::default())
            .unwrap();
        let keeps = |q: &str| filters(Some(q)).unwrap().iter().all(|f| f.keeps(&silence));
        assert!(keeps("filter=alertname%3D%22api_errors%22"));
        assert!(keeps("filter=alertname%3D~api_.*"));
        assert!(!keeps("filter=alertname%3Dother"));
        assert!(keeps("filter=alertname%21%3Dother"));
        assert!(!keeps("filter=severity%3Dhigh"));
        assert!(keeps(""));
        assert!(filters(Some("silenced=true")).is_err());
        assert!(filters(Some("filter=instance%3Dx")).is_err());
        assert!(filters(Some("filter=nothing")).is_err());
        assert!(filters(Some("filter=rule%3D~%28")).is_err());
    }
}
