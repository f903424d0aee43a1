//! Silences: time-bounded label matchers that keep matching alerts from
//! notifying, as in Alertmanager.
//!
//! A silence matches an alert when every matcher matches one of its labels
//! (`rule`, `key`, `category`, `severity`) and the time lies in
//! `[starts_at, ends_at)`. Regex matchers are anchored at both ends, so
//! `auth_.*` matches `auth_failures` but `auth` does not.
//!
//! A create request ([`NewSilence`]) is validated once, into a [`Silence`],
//! with an error that names the field at fault.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::domain::timefmt::rfc3339_millis;

/// The labels a matcher can name: the ones every incident carries.
pub const MATCHER_NAMES: [&str; 4] = ["rule", "key", "category", "severity"];
/// The longest silence: long enough for a maintenance window or a known
/// noisy key, short enough that a forgotten one runs out.
pub const MAX_DURATION: Duration = Duration::days(30);
pub const MAX_MATCHERS: usize = 16;
pub const MAX_VALUE_CHARS: usize = 256;
pub const MAX_COMMENT_CHARS: usize = 1024;
pub const MAX_CREATED_BY_CHARS: usize = 128;
/// Compiled-program bound for regex matchers, so a hostile pattern cannot
/// make every match expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One label condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// One of [`MATCHER_NAMES`].
    pub name: String,
    /// The exact value, or with `is_regex` an anchored regular expression.
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex: false,
        }
    }

    pub fn regex(name: impl Into<String>, pattern: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            value: pattern.into(),
            is_regex: true,
        }
    }

    fn compile(&self) -> Result<Regex, regex::Error> {
        RegexBuilder::new(&format!("^(?:{})$", self.value))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    }

    /// Whether `value` satisfies the matcher. An invalid regex (which
    /// validation never lets in) matches nothing, so it cannot silence
    /// everything by accident.
    pub fn matches_value(&self, value: &str) -> bool {
        if self.is_regex {
            self.compile().is_ok_and(|re| re.is_match(value))
        } else {
            self.value == value
        }
    }
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub created_by: String,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Silence {
    /// Whether the silence is in force at `at`.
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// Whether the silence covers an alert with `labels` at `at`: in force,
    /// and every matcher matches. A label the alert lacks counts as empty,
    /// as in Alertmanager.
    ///
    /// Regex matchers are compiled per call: the engine consults silences
    /// on incident transitions, not per signal, and a silence has few
    /// matchers.
    pub fn matches(&self, labels: &[(&str, &str)], at: OffsetDateTime) -> bool {
        self.is_active(at)
            && !self.matchers.is_empty()
            && self.matchers.iter().all(|m| {
                let value = labels
                    .iter()
                    .find(|(name, _)| *name == m.name)
                    .map_or("", |(_, v)| *v);
                m.matches_value(value)
            })
    }
}

/// What a client asks for (`POST /api/silences`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// Default: now. A start in the past means now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub starts_at: Option<OffsetDateTime>,
    /// Either `ends_at` or `duration_seconds`, not both.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub duration_seconds: Option<u64>,
    pub comment: String,
    pub created_by: String,
}

/// Why a create request is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("matchers: at least one matcher is required")]
    NoMatchers,
    #[error("matchers: at most {MAX_MATCHERS} matchers are allowed, got {0}")]
    TooManyMatchers(usize),
    #[error("matchers[{index}].name: {name:?} is not one of rule, key, category, severity")]
    UnknownMatcherName { index: usize, name: String },
    #[error("matchers[{index}].value: must not be empty")]
    EmptyMatcherValue { index: usize },
    #[error("matchers[{index}].value: longer than {MAX_VALUE_CHARS} characters")]
    MatcherValueTooLong { index: usize },
    #[error("matchers[{index}].value: not a valid regular expression: {reason}")]
    InvalidRegex { index: usize, reason: String },
    #[error("matchers: at least one matcher must not match the empty string")]
    MatchesEverything,
    #[error("ends_at, duration_seconds: give exactly one of them")]
    EndAmbiguous,
    #[error("duration_seconds: must be positive")]
    ZeroDuration,
    #[error("ends_at: must be in the future and after starts_at")]
    EndsBeforeStart,
    #[error("ends_at: the silence would last longer than {} days", MAX_DURATION.whole_days())]
    TooLong,
    #[error("comment: must not be empty")]
    EmptyComment,
    #[error("comment: longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error("created_by: must not be empty")]
    EmptyCreatedBy,
    #[error("created_by: longer than {MAX_CREATED_BY_CHARS} characters or has control characters")]
    InvalidCreatedBy,
}

impl NewSilence {
    /// The silence this request creates at `now`, or the first problem.
    /// The id is derived from the content and `now`, so it needs no random
    /// source and the same request at the same instant gets the same id.
    pub fn validate(self, now: OffsetDateTime) -> Result<Silence, SilenceError> {
        validate_matchers(&self.matchers)?;
        let comment = self.comment.trim();
        if comment.is_empty() {
            return Err(SilenceError::EmptyComment);
        }
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(SilenceError::CommentTooLong);
        }
        let created_by = self.created_by.trim();
        if created_by.is_empty() {
            return Err(SilenceError::EmptyCreatedBy);
        }
        if created_by.chars().count() > MAX_CREATED_BY_CHARS
            || created_by.chars().any(char::is_control)
        {
            return Err(SilenceError::InvalidCreatedBy);
        }
        let starts_at = self.starts_at.map_or(now, |s| s.max(now));
        let ends_at = match (self.ends_at, self.duration_seconds) {
            (Some(end), None) => end,
            (None, Some(0)) => return Err(SilenceError::ZeroDuration),
            (None, Some(secs)) => {
                // Anything past the maximum is refused below; capping first
                // keeps the addition from overflowing.
                let secs = i64::try_from(secs).unwrap_or(i64::MAX);
                let capped = secs.min(MAX_DURATION.whole_seconds() + 1);
                starts_at + Duration::seconds(capped)
            }
            _ => return Err(SilenceError::EndAmbiguous),
        };
        if ends_at <= starts_at {
            return Err(SilenceError::EndsBeforeStart);
        }
        if ends_at - starts_at > MAX_DURATION {
            return Err(SilenceError::TooLong);
        }
        let mut silence = Silence {
            id: String::new(),
            matchers: self.matchers,
            starts_at: starts_at.to_offset(time::UtcOffset::UTC),
            ends_at: ends_at.to_offset(time::UtcOffset::UTC),
            created_by: created_by.to_owned(),
            comment: comment.to_owned(),
            created_at: now.to_offset(time::UtcOffset::UTC),
        };
        silence.id = silence_id(&silence, now);
        Ok(silence)
    }
}

fn validate_matchers(matchers: &[Matcher]) -> Result<(), SilenceError> {
    if matchers.is_empty() {
        return Err(SilenceError::NoMatchers);
    }
    if matchers.len() > MAX_MATCHERS {
        return Err(SilenceError::TooManyMatchers(matchers.len()));
    }
    for (index, m) in matchers.iter().enumerate() {
        if !MATCHER_NAMES.contains(&m.name.as_str()) {
            return Err(SilenceError::UnknownMatcherName {
                index,
                name: m.name.chars().take(MAX_VALUE_CHARS).collect(),
            });
        }
        if m.value.is_empty() {
            return Err(SilenceError::EmptyMatcherValue { index });
        }
        if m.value.chars().count() > MAX_VALUE_CHARS {
            return Err(SilenceError::MatcherValueTooLong { index });
        }
        if m.is_regex {
            m.compile().map_err(|e| SilenceError::InvalidRegex {
                index,
                reason: regex_problem(&e.to_string()),
            })?;
        }
    }
    // As in Alertmanager: a silence of only `.*`-like matchers would mute
    // everything, which is never what a responder meant.
    if matchers.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::MatchesEverything);
    }
    Ok(())
}

/// regex errors span several lines with a caret diagram around the
/// anchored pattern; the last line says what is wrong.
fn regex_problem(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid")
        .trim_start_matches("error: ")
        .to_owned()
}

/// 32 hex digits of SHA-256 over the silence's content and creation time.
fn silence_id(silence: &Silence, now: OffsetDateTime) -> String {
    let mut hash = Sha256::new();
    for m in &silence.matchers {
        hash.update(m.name.as_bytes());
        hash.update([0]);
        hash.update(m.value.as_bytes());
        hash.update([0, u8::from(m.is_regex), 0]);
    }
    for part in [
        rfc3339_millis(silence.starts_at),
        rfc3339_millis(silence.ends_at),
        silence.created_by.clone(),
        silence.comment.clone(),
        now.unix_timestamp_nanos().to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);

    fn request(matchers: Vec<Matcher>) -> NewSilence {
        NewSilence {
            matchers,
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(3600),
            comment: "maintenance of the IdP".into(),
            created_by: "ops@example.com".into(),
        }
    }

    fn silence(matchers: Vec<Matcher>) -> Silence {
        request(matchers).validate(NOW).unwrap()
    }

    #[test]
    fn all_matchers_must_match_inside_the_time_range() {
        let s = silence(vec![
            Matcher::equal("category", "security"),
            Matcher::equal("severity", "critical"),
        ]);
        let labels = [
            ("rule", "brute_force"),
            ("category", "security"),
            ("severity", "critical"),
        ];
        assert!(s.matches(&labels, NOW));
        assert!(s.matches(&labels, NOW + Duration::minutes(59)));
        assert!(
            !s.matches(&labels, NOW + Duration::hours(1)),
            "end excluded"
        );
        assert!(!s.matches(&labels, NOW - Duration::seconds(1)));
        let high = [("category", "security"), ("severity", "high")];
        assert!(!s.matches(&high, NOW));
    }

    #[test]
    fn regex_matchers_are_anchored() {
        let s = silence(vec![Matcher::regex("rule", "auth_.*|api_errors")]);
        assert!(s.matches(&[("rule", "auth_failures")], NOW));
        assert!(s.matches(&[("rule", "api_errors")], NOW));
        assert!(!s.matches(&[("rule", "brute_auth_failures")], NOW));
        assert!(!s.matches(&[("rule", "api_errors_total")], NOW));
        let s = silence(vec![Matcher::regex("key", "10\\.0\\.0\\.[0-9]+")]);
        assert!(s.matches(&[("key", "10.0.0.17")], NOW));
        assert!(!s.matches(&[("key", "110.0.0.17")], NOW));
    }

    #[test]
    fn a_missing_label_counts_as_empty() {
        let s = silence(vec![Matcher::equal("rule", "auth_failures")]);
        assert!(!s.matches(&[("category", "security")], NOW));
        let s = silence(vec![
            Matcher::equal("rule", "auth_failures"),
            Matcher::regex("key", ".*"),
        ]);
        assert!(s.matches(&[("rule", "auth_failures")], NOW));
    }

    #[test]
    fn ends_at_or_duration_defines_the_end() {
        let mut r = request(vec![Matcher::equal("rule", "x")]);
        r.duration_seconds = None;
        r.ends_at = Some(datetime!(2026-11-30 14:00:00 +01:00));
        let s = r.clone().validate(NOW).unwrap();
        assert_eq!(s.ends_at, datetime!(2026-11-30 13:00:00 UTC));
        assert_eq!(s.starts_at, NOW);
        assert_eq!(s.created_at, NOW);

        r.starts_at = Some(NOW - Duration::days(2));
        assert_eq!(
            r.clone().validate(NOW).unwrap().starts_at,
            NOW,
            "past start means now"
        );
        r.starts_at = Some(NOW + Duration::minutes(30));
        let s = r.clone().validate(NOW).unwrap();
        assert!(!s.is_active(NOW));
        assert!(s.is_active(NOW + Duration::minutes(30)));

        r.duration_seconds = Some(60);
        assert_eq!(r.clone().validate(NOW), Err(SilenceError::EndAmbiguous));
        r.ends_at = None;
        r.duration_seconds = None;
        assert_eq!(r.validate(NOW), Err(SilenceError::EndAmbiguous));
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let ok = || request(vec![Matcher::equal("rule", "x")]);
        let cases: Vec<(NewSilence, SilenceError)> = vec![
            (request(vec![]), SilenceError::NoMatchers),
            (
                request(vec![Matcher::equal("rule", "x"); MAX_MATCHERS + 1]),
                SilenceError::TooManyMatchers(MAX_MATCHERS + 1),
            ),
            (
                request(vec![Matcher::equal("host", "x")]),
                SilenceError::UnknownMatcherName {
                    index: 0,
                    name: "host".into(),
                },
            ),
            (
                request(vec![Matcher::equal("rule", "x"), Matcher::equal("key", "")]),
                SilenceError::EmptyMatcherValue { index: 1 },
            ),
            (
                request(vec![Matcher::equal(
                    "rule",
                    "x".repeat(MAX_VALUE_CHARS + 1),
                )]),
                SilenceError::MatcherValueTooLong { index: 0 },
            ),
            (
                request(vec![
                    Matcher::regex("rule", ".*"),
                    Matcher::regex("key", "a*"),
                ]),
                SilenceError::MatchesEverything,
            ),
            (
                NewSilence {
                    duration_seconds: Some(0),
                    ..ok()
                },
                SilenceError::ZeroDuration,
            ),
            (
                NewSilence {
                    duration_seconds: Some(31 * 86_400),
                    ..ok()
                },
                SilenceError::TooLong,
            ),
            (
                NewSilence {
                    duration_seconds: Some(u64::MAX),
                    ..ok()
                },
                SilenceError::TooLong,
            ),
            (
                NewSilence {
                    duration_seconds: None,
                    ends_at: Some(NOW - Duration::minutes(1)),
                    ..ok()
                },
                SilenceError::EndsBeforeStart,
            ),
            (
                NewSilence {
                    comment: "  ".into(),
                    ..ok()
                },
                SilenceError::EmptyComment,
            ),
            (
                NewSilence {
                    comment: "c".repeat(MAX_COMMENT_CHARS + 1),
                    ..ok()
                },
                SilenceError::CommentTooLong,
            ),
            (
                NewSilence {
                    created_by: String::new(),
                    ..ok()
                },
                SilenceError::EmptyCreatedBy,
            ),
            (
                NewSilence {
                    created_by: "a\nb".into(),
                    ..ok()
                },
                SilenceError::InvalidCreatedBy,
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(req.validate(NOW), Err(expected));
        }
        let err = request(vec![Matcher::regex("rule", "(unclosed")])
            .validate(NOW)
            .unwrap_err();
        assert!(
            matches!(err, SilenceError::InvalidRegex { index: 0, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("matchers[0].value: not a valid regular expression")
        );
        assert!(!err.to_string().contains('\n'), "{err}");
        assert_eq!(
            SilenceError::TooLong.to_string(),
            "ends_at: the silence would last longer than 30 days"
        );
    }

    #[test]
    fn ids_are_stable_for_the_same_request_and_instant() {
        let a = silence(vec![Matcher::equal("rule", "x")]);
        let b = silence(vec![Matcher::equal("rule", "x")]);
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        let c = request(vec![Matcher::equal("rule", "x")])
            .validate(NOW + Duration::nanoseconds(1))
            .unwrap();
        assert_ne!(a.id, c.id);
        let d = silence(vec![Matcher::equal("rule", "y")]);
        assert_ne!(a.id, d.id);
    }

    #[test]
    fn requests_parse_from_json_and_refuse_unknown_fields() {
        let r: NewSilence = serde_json::from_str(
            r#"{"matchers":[{"name":"rule","value":"auth_.*","is_regex":true}],
                "ends_at":"2026-11-30T13:00:00Z","comment":"c","created_by":"me"}"#,
        )
        .unwrap();
        assert!(r.matchers[0].is_regex);
        assert_eq!(r.ends_at, Some(datetime!(2026-11-30 13:00:00 UTC)));
        let bad = serde_json::from_str::<NewSilence>(
            r#"{"matchers":[],"comment":"c","created_by":"me","endsAt":"x"}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn silences_round_trip_through_json() {
        let s = silence(vec![Matcher::regex("key", "a|b")]);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Silence>(&text).unwrap(), s);
    }
}
