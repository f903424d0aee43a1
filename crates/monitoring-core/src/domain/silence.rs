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
/// The ceiling of the longest-silence setting: even a configured maximum
/// cannot let a forgotten silence outlive a month.
pub const MAX_DURATION: Duration = Duration::days(30);
/// The longest silence by default: a maintenance window or a known noisy
/// key fits, and a forgotten one runs out within the week.
pub const DEFAULT_MAX_DURATION: Duration = Duration::days(7);
/// Unexpired silences (in force or pending) allowed at once by default: far
/// more than a team keeps on purpose, few enough that a runaway script or a
/// stolen admin token cannot bury the alerts under silences.
pub const DEFAULT_MAX_ACTIVE: usize = 50;
/// The ceiling of the max-active setting: the list is one Query read on
/// every alert transition, so it must stay small.
pub const MAX_ACTIVE_CEILING: usize = 1000;
pub const MAX_MATCHERS: usize = 16;
pub const MAX_VALUE_CHARS: usize = 256;
pub const MAX_COMMENT_CHARS: usize = 1024;
pub const MAX_CREATED_BY_CHARS: usize = 128;
/// Compiled-program bound for regex matchers, so a hostile pattern cannot
/// make every match expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Keys a `key` regex must reject at least one of to count as narrowing a
/// silence: keys are attacker-influenced values (addresses, user names,
/// paths), so a pattern accepting all of these accepts any key. The empty
/// key is what rules without `group_by` carry.
const SAMPLE_KEYS: [&str; 5] = ["", "k", "user@example.com", "203.0.113.7", "GET /api/x"];

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
    /// When it stops; set to the expiry time by [`Silence::expire`].
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// The identity of the token that created it (`admin-token`, or
    /// `admin-token:previous` during a rotation), never the client's word.
    pub created_by: String,
    /// Who the client said asks for it, unverified (the request's
    /// `requested_by`, formerly `created_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether it can mute a security rule (created with `security: true`).
    #[serde(default)]
    pub security: bool,
    /// When `DELETE /api/silences/{id}` ended it early.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expired_at: Option<OffsetDateTime>,
    /// The identity of the token that ended it early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<String>,
}

/// Expiring a silence that has already ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the silence has already ended")]
pub struct AlreadyEnded;

impl Silence {
    /// Whether the silence is in force at `at`.
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// Whether the silence has not ended at `at` (in force or pending):
    /// what counts against the maximum number of silences.
    pub fn is_unexpired(&self, at: OffsetDateTime) -> bool {
        at < self.ends_at
    }

    /// The silence ended at `at` by `by`, kept for the record: as in
    /// Alertmanager, the end moves to `at` (a pending one starts and ends
    /// there), and who ended it early and when is written down.
    pub fn expire(&self, at: OffsetDateTime, by: &str) -> Result<Silence, AlreadyEnded> {
        if !self.is_unexpired(at) {
            return Err(AlreadyEnded);
        }
        let at = at.to_offset(time::UtcOffset::UTC);
        Ok(Silence {
            starts_at: self.starts_at.min(at),
            ends_at: at,
            expired_at: Some(at),
            expired_by: Some(by.to_owned()),
            ..self.clone()
        })
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

/// The labels of one configured alert rule, as silences see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLabels {
    pub rule: String,
    pub category: String,
    pub severity: String,
}

impl RuleLabels {
    pub fn new(
        rule: impl Into<String>,
        category: impl Into<String>,
        severity: impl Into<String>,
    ) -> Self {
        RuleLabels {
            rule: rule.into(),
            category: category.into(),
            severity: severity.into(),
        }
    }

    fn is_security(&self) -> bool {
        self.category == "security"
    }
}

/// The bounds silences are created under (one per deployment, from config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilencePolicy {
    /// The longest silence (at most [`MAX_DURATION`]).
    pub max_duration: Duration,
    /// Unexpired silences allowed at once.
    pub max_active: usize,
    /// The configured alert rules, to tell a silence that covers every one
    /// of them or any security rule. Empty: only the label checks apply.
    pub rules: Vec<RuleLabels>,
}

impl Default for SilencePolicy {
    fn default() -> Self {
        SilencePolicy {
            max_duration: DEFAULT_MAX_DURATION,
            max_active: DEFAULT_MAX_ACTIVE,
            rules: Vec::new(),
        }
    }
}

impl SilencePolicy {
    pub fn with_rules(mut self, rules: Vec<RuleLabels>) -> Self {
        self.rules = rules;
        self
    }

    /// Whether one more silence fits beside the unexpired ones in
    /// `existing` at `now`.
    pub fn admit(&self, existing: &[Silence], now: OffsetDateTime) -> Result<(), SilenceError> {
        let unexpired = existing.iter().filter(|s| s.is_unexpired(now)).count();
        if unexpired >= self.max_active {
            return Err(SilenceError::TooManyActive {
                max: self.max_active,
            });
        }
        Ok(())
    }

    /// Whether `matchers` can mute a security rule: one of the configured
    /// security rules passes them, or they name the security category.
    pub fn touches_security(&self, matchers: &[Matcher]) -> bool {
        let names_security = matchers.iter().any(|m| m.name == "category")
            && admits(matchers, "category", "security");
        names_security
            || self
                .rules
                .iter()
                .any(|r| r.is_security() && rule_passes(matchers, r))
    }

    /// Whether `matchers` mute every configured rule for every key.
    pub fn covers_every_rule(&self, matchers: &[Matcher]) -> bool {
        !self.rules.is_empty()
            && self.rules.iter().all(|r| rule_passes(matchers, r))
            && !key_narrows(matchers)
    }
}

/// Every matcher on `name` accepts `value` (none: any value passes).
fn admits(matchers: &[Matcher], name: &str, value: &str) -> bool {
    matchers
        .iter()
        .filter(|m| m.name == name)
        .all(|m| m.matches_value(value))
}

fn rule_passes(matchers: &[Matcher], rule: &RuleLabels) -> bool {
    admits(matchers, "rule", &rule.rule)
        && admits(matchers, "category", &rule.category)
        && admits(matchers, "severity", &rule.severity)
}

/// Whether a `key` matcher restricts the silence to some keys.
fn key_narrows(matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .filter(|m| m.name == "key")
        .any(|m| !m.is_regex || SAMPLE_KEYS.iter().any(|k| !m.matches_value(k)))
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
    /// Who asks, in the client's words: kept as a note, never as the
    /// creator (that is the authenticating token). `created_by` is
    /// accepted as its older name.
    #[serde(default, alias = "created_by")]
    pub requested_by: Option<String>,
    /// Must be `true` for a silence that can mute a security rule.
    #[serde(default)]
    pub security: bool,
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
    #[error(
        "matchers: they match every configured alert rule for every key; name the rules, categories or keys to silence"
    )]
    MatchesEveryRule,
    #[error(
        "security: the matchers can mute a security rule; send \"security\": true with a comment saying why"
    )]
    SecurityNeedsFlag,
    #[error("ends_at, duration_seconds: give exactly one of them")]
    EndAmbiguous,
    #[error("duration_seconds: must be positive")]
    ZeroDuration,
    #[error("ends_at: must be in the future and after starts_at")]
    EndsBeforeStart,
    #[error("ends_at: the silence would last longer than the maximum of {max_seconds} seconds")]
    TooLong { max_seconds: i64 },
    #[error("comment: must not be empty")]
    EmptyComment,
    #[error("comment: longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error(
        "requested_by: longer than {MAX_CREATED_BY_CHARS} characters or has control characters"
    )]
    InvalidRequestedBy,
    #[error("silences: {max} unexpired silences already exist; expire one first")]
    TooManyActive { max: usize },
}

impl NewSilence {
    /// The silence this request creates at `now` for the token identity
    /// `created_by`, under `policy`, or the first problem. The id is
    /// derived from the content and `now`, so it needs no random source
    /// and the same request at the same instant gets the same id.
    pub fn validate(
        self,
        now: OffsetDateTime,
        created_by: &str,
        policy: &SilencePolicy,
    ) -> Result<Silence, SilenceError> {
        validate_matchers(&self.matchers)?;
        if policy.covers_every_rule(&self.matchers) {
            return Err(SilenceError::MatchesEveryRule);
        }
        let comment = self.comment.trim();
        if comment.is_empty() {
            return Err(SilenceError::EmptyComment);
        }
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(SilenceError::CommentTooLong);
        }
        let security = policy.touches_security(&self.matchers);
        // The flag makes muting a security rule a deliberate act, never a
        // side effect of a broad matcher.
        if security && !self.security {
            return Err(SilenceError::SecurityNeedsFlag);
        }
        let requested_by = match self.requested_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r)
                if r.chars().count() > MAX_CREATED_BY_CHARS || r.chars().any(char::is_control) =>
            {
                return Err(SilenceError::InvalidRequestedBy);
            }
            Some(r) => Some(r.to_owned()),
        };
        let max = policy.max_duration.min(MAX_DURATION);
        let starts_at = self.starts_at.map_or(now, |s| s.max(now));
        let ends_at = match (self.ends_at, self.duration_seconds) {
            (Some(end), None) => end,
            (None, Some(0)) => return Err(SilenceError::ZeroDuration),
            (None, Some(secs)) => {
                // Anything past the maximum is refused below; capping first
                // keeps the addition from overflowing.
                let secs = i64::try_from(secs).unwrap_or(i64::MAX);
                let capped = secs.min(max.whole_seconds() + 1);
                starts_at + Duration::seconds(capped)
            }
            _ => return Err(SilenceError::EndAmbiguous),
        };
        if ends_at <= starts_at {
            return Err(SilenceError::EndsBeforeStart);
        }
        if ends_at - starts_at > max {
            return Err(SilenceError::TooLong {
                max_seconds: max.whole_seconds(),
            });
        }
        let mut silence = Silence {
            id: String::new(),
            matchers: self.matchers,
            starts_at: starts_at.to_offset(time::UtcOffset::UTC),
            ends_at: ends_at.to_offset(time::UtcOffset::UTC),
            created_by: created_by.to_owned(),
            requested_by,
            comment: comment.to_owned(),
            created_at: now.to_offset(time::UtcOffset::UTC),
            security: self.security || security,
            expired_at: None,
            expired_by: None,
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
            requested_by: Some("ops@example.com".into()),
            security: false,
        }
    }

    fn policy() -> SilencePolicy {
        SilencePolicy::default()
    }

    impl NewSilence {
        fn check(self, now: OffsetDateTime) -> Result<Silence, SilenceError> {
            self.validate(now, "admin-token", &policy())
        }
    }

    /// A silence for the matching tests: the security flag set, so
    /// matchers on the security category pass.
    fn silence(matchers: Vec<Matcher>) -> Silence {
        NewSilence {
            security: true,
            ..request(matchers)
        }
        .check(NOW)
        .unwrap()
    }

    fn rules() -> Vec<RuleLabels> {
        vec![
            RuleLabels::new("brute_force", "security", "critical"),
            RuleLabels::new("auth_failures", "security", "high"),
            RuleLabels::new("api_errors", "performance", "medium"),
            RuleLabels::new("redis_down", "system", "critical"),
        ]
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
        let s = r.clone().check(NOW).unwrap();
        assert_eq!(s.ends_at, datetime!(2026-11-30 13:00:00 UTC));
        assert_eq!(s.starts_at, NOW);
        assert_eq!(s.created_at, NOW);

        r.starts_at = Some(NOW - Duration::days(2));
        assert_eq!(
            r.clone().check(NOW).unwrap().starts_at,
            NOW,
            "past start means now"
        );
        r.starts_at = Some(NOW + Duration::minutes(30));
        let s = r.clone().check(NOW).unwrap();
        assert!(!s.is_active(NOW));
        assert!(s.is_active(NOW + Duration::minutes(30)));

        r.duration_seconds = Some(60);
        assert_eq!(r.clone().check(NOW), Err(SilenceError::EndAmbiguous));
        r.ends_at = None;
        r.duration_seconds = None;
        assert_eq!(r.check(NOW), Err(SilenceError::EndAmbiguous));
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
                SilenceError::TooLong {
                    max_seconds: 7 * 86_400,
                },
            ),
            (
                NewSilence {
                    duration_seconds: Some(u64::MAX),
                    ..ok()
                },
                SilenceError::TooLong {
                    max_seconds: 7 * 86_400,
                },
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
                    requested_by: Some("a\nb".into()),
                    ..ok()
                },
                SilenceError::InvalidRequestedBy,
            ),
            (
                NewSilence {
                    duration_seconds: Some(8 * 86_400),
                    ..ok()
                },
                SilenceError::TooLong {
                    max_seconds: 7 * 86_400,
                },
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(req.check(NOW), Err(expected));
        }
        let err = request(vec![Matcher::regex("rule", "(unclosed")])
            .check(NOW)
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
            SilenceError::TooLong { max_seconds: 3600 }.to_string(),
            "ends_at: the silence would last longer than the maximum of 3600 seconds"
        );
    }

    #[test]
    fn ids_are_stable_for_the_same_request_and_instant() {
        let a = silence(vec![Matcher::equal("rule", "x")]);
        let b = silence(vec![Matcher::equal("rule", "x")]);
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        let c = request(vec![Matcher::equal("rule", "x")])
            .check(NOW + Duration::nanoseconds(1))
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

    #[test]
    fn created_by_is_the_token_identity_and_the_clients_name_a_note() {
        let r: NewSilence = serde_json::from_str(
            r#"{"matchers":[{"name":"rule","value":"api_errors"}],
                "duration_seconds":60,"comment":"c","created_by":"mallory"}"#,
        )
        .unwrap();
        let s = r.validate(NOW, "admin-token:previous", &policy()).unwrap();
        assert_eq!(s.created_by, "admin-token:previous");
        assert_eq!(s.requested_by.as_deref(), Some("mallory"));
        let text = serde_json::to_value(&s).unwrap();
        assert_eq!(text["created_by"], "admin-token:previous");
        assert_eq!(text["requested_by"], "mallory");
    }

    #[test]
    fn the_maximum_duration_is_configurable_below_the_ceiling() {
        let r = NewSilence {
            duration_seconds: Some(3 * 3600),
            ..request(vec![Matcher::equal("rule", "x")])
        };
        let tight = SilencePolicy {
            max_duration: Duration::hours(2),
            ..policy()
        };
        assert_eq!(
            r.clone().validate(NOW, "admin-token", &tight),
            Err(SilenceError::TooLong { max_seconds: 7200 })
        );
        let loose = SilencePolicy {
            max_duration: Duration::days(365),
            ..policy()
        };
        let r = NewSilence {
            duration_seconds: Some(31 * 86_400),
            ..r
        };
        assert_eq!(
            r.validate(NOW, "admin-token", &loose),
            Err(SilenceError::TooLong {
                max_seconds: MAX_DURATION.whole_seconds()
            }),
            "the ceiling holds whatever the setting"
        );
    }

    #[test]
    fn the_number_of_unexpired_silences_is_bounded() {
        let p = SilencePolicy {
            max_active: 2,
            ..policy()
        };
        let a = silence(vec![Matcher::equal("rule", "a")]);
        let b = silence(vec![Matcher::equal("rule", "b")]);
        assert_eq!(p.admit(std::slice::from_ref(&a), NOW), Ok(()));
        let both = [a.clone(), b.clone()];
        assert_eq!(
            p.admit(&both, NOW),
            Err(SilenceError::TooManyActive { max: 2 })
        );
        // An expired one no longer counts.
        let b = b.expire(NOW, "admin-token").unwrap();
        assert_eq!(p.admit(&[a, b], NOW), Ok(()));
    }

    #[test]
    fn matchers_covering_every_rule_are_refused() {
        let p = policy().with_rules(rules());
        let check = |m: Vec<Matcher>| {
            NewSilence {
                security: true,
                ..request(m)
            }
            .validate(NOW, "admin-token", &p)
        };
        for every in [
            vec![Matcher::regex("rule", ".+")],
            vec![Matcher::regex("severity", "medium|high|critical")],
            vec![
                Matcher::regex("category", "security|performance|system"),
                Matcher::regex("key", ".*"),
            ],
        ] {
            assert_eq!(
                check(every.clone()),
                Err(SilenceError::MatchesEveryRule),
                "{every:?}"
            );
        }
        // A key narrows it; so does leaving one rule out.
        assert!(
            check(vec![
                Matcher::regex("rule", ".+"),
                Matcher::equal("key", "k")
            ])
            .is_ok()
        );
        assert!(
            check(vec![Matcher::regex(
                "rule",
                "brute_force|auth_failures|api_errors"
            )])
            .is_ok()
        );
        // Without a known rule set only the empty-string guard applies.
        assert!(
            NewSilence {
                security: true,
                ..request(vec![Matcher::regex("rule", ".+")])
            }
            .check(NOW)
            .is_ok()
        );
    }

    #[test]
    fn muting_a_security_rule_needs_the_flag_and_a_comment() {
        let p = policy().with_rules(rules());
        let ask = |m: Vec<Matcher>, security: bool, comment: &str| {
            NewSilence {
                security,
                comment: comment.into(),
                ..request(m)
            }
            .validate(NOW, "admin-token", &p)
        };
        for touching in [
            vec![Matcher::equal("rule", "brute_force")],
            vec![Matcher::equal("severity", "critical")],
            vec![Matcher::equal("category", "security")],
            vec![Matcher::regex("rule", "auth_.*|api_errors")],
        ] {
            assert_eq!(
                ask(touching.clone(), false, "pen test"),
                Err(SilenceError::SecurityNeedsFlag),
                "{touching:?}"
            );
            assert_eq!(
                ask(touching.clone(), true, "  "),
                Err(SilenceError::EmptyComment)
            );
            let s = ask(touching, true, "pen test, ticket SEC-12").unwrap();
            assert!(s.security);
        }
        let s = ask(vec![Matcher::equal("rule", "api_errors")], false, "deploy").unwrap();
        assert!(!s.security, "a performance rule needs no flag");
        // Without the rule set, naming the category still counts.
        assert_eq!(
            request(vec![Matcher::regex("category", "sec.*")]).check(NOW),
            Err(SilenceError::SecurityNeedsFlag)
        );
    }

    #[test]
    fn expiring_ends_the_silence_now_and_keeps_the_record() {
        let s = silence(vec![Matcher::equal("rule", "x")]);
        let at = NOW + Duration::minutes(10);
        let e = s.expire(at, "admin-token").unwrap();
        assert_eq!(e.ends_at, at);
        assert_eq!(e.starts_at, s.starts_at);
        assert_eq!(e.expired_at, Some(at));
        assert_eq!(e.expired_by.as_deref(), Some("admin-token"));
        assert_eq!(
            (e.id.as_str(), e.comment.as_str()),
            (s.id.as_str(), s.comment.as_str())
        );
        assert!(!e.matches(&[("rule", "x")], at));
        assert_eq!(e.expire(at, "admin-token"), Err(AlreadyEnded));
        // A pending one starts and ends at the expiry.
        let pending = NewSilence {
            starts_at: Some(NOW + Duration::hours(1)),
            ..request(vec![Matcher::equal("rule", "x")])
        }
        .check(NOW)
        .unwrap();
        let e = pending.expire(NOW, "admin-token").unwrap();
        assert_eq!((e.starts_at, e.ends_at), (NOW, NOW));
        // Stored items from before these fields decode.
        let mut old = serde_json::to_value(&s).unwrap();
        for f in ["security", "requested_by"] {
            old.as_object_mut().unwrap().remove(f);
        }
        let back: Silence = serde_json::from_value(old).unwrap();
        assert!(!back.security && back.expired_at.is_none());
    }
}
