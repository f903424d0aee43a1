//! One validation pass from the serde model to [`AlertRules`]. Every error
//! names the file, the rule and the field; TOML errors carry the line and
//! column, rule errors the line of the rule's `[[rule]]` header (the style
//! of the metric rules, [`crate::domain::rules::validate`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::config::{AlertFile, AlertRuleConfig, Category};
use super::rules::{AlertRule, AlertRules, DEFAULT_ALERTS_FILE, DEFAULT_ALERTS_TOML};
use super::window::MAX_ENTRIES;
use crate::domain::probe_result::Component;
use crate::domain::rules::validate::line_column;

/// Longest window and quiet period accepted: a week. Longer windows would
/// keep more state than the bound of [`MAX_ENTRIES`] can describe.
pub const MAX_WINDOW_SECONDS: u64 = 7 * 24 * 3600;
/// Largest `of` of a `consecutive` rule.
pub const MAX_CONSECUTIVE: u32 = 100;

/// An alert rule file that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertRuleError {
    /// Not TOML, or not the shape of an alert rule file (unknown key, wrong
    /// type or enum value, missing field).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed but wrong.
    #[error("{file}:{line}:{column}: alert rule {rule:?}, {field}: {problem}")]
    Invalid {
        file: String,
        /// Where the field is set in the rule, or the rule's `[[rule]]`
        /// header when the field is missing.
        line: usize,
        column: usize,
        rule: String,
        field: &'static str,
        /// Boxed: keeps `Result<_, AlertRuleError>` small.
        problem: Box<AlertProblem>,
    },
}

/// What is wrong with a field of an alert rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertProblem {
    #[error(
        "{0:?} is not a valid name ([a-z0-9_]+): names become storage keys and runbook file names"
    )]
    Name(String),
    #[error("name already used by rule #{first} of the file")]
    DuplicateRule { first: usize },
    #[error("{0:?} is not a valid signal name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    SignalName(String),
    #[error("{0:?} is not a valid key name ([a-zA-Z_][a-zA-Z0-9_]*, or \"none\")")]
    GroupBy(String),
    #[error("required unless the rule has `consecutive`")]
    MissingThreshold,
    #[error(
        "security rules are never inhibited: an outage an attacker can cause must not mute them"
    )]
    InhibitedSecurityRule,
    #[error("{0}")]
    Distinct(&'static str),
    #[error("must be between 1 and {max}, got {got}")]
    OutOfRange { got: u64, max: u64 },
    #[error("failures ({failures}) must be between 1 and of ({of}), and of at most {max}")]
    Consecutive { failures: u32, of: u32, max: u32 },
    #[error(
        "threshold {threshold} contradicts consecutive.failures {failures}; leave threshold out"
    )]
    ThresholdVersusConsecutive { threshold: u32, failures: u32 },
    #[error("{0}")]
    Sequence(&'static str),
    #[error(transparent)]
    Component(#[from] crate::domain::probe_result::UnknownComponent),
    #[error(
        "no log rule or probe produces signal {signal:?}{}",
        did_you_mean(nearest)
    )]
    UnknownSignal {
        signal: String,
        nearest: Option<String>,
    },
    #[error(
        "signal {signal:?} never carries key {key:?} (it carries {}{})",
        if carried.is_empty() { "no key".to_owned() } else { carried.join(", ") },
        nearest.as_ref().map(|n| format!("; did you mean {n:?}?")).unwrap_or_default()
    )]
    KeyNeverCarried {
        key: String,
        signal: String,
        carried: Vec<String>,
        nearest: Option<String>,
    },
}

fn did_you_mean(nearest: &Option<String>) -> String {
    nearest
        .as_ref()
        .map(|n| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

/// Loading is validation: the rule file's constructors live here, beside
/// the one pass they run.
impl AlertRules {
    /// Parses and validates a rule file's text.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, AlertRuleError> {
        from_toml(text, file)
    }

    /// The embedded `infra/alerts/default.toml` (a unit test proves it loads).
    pub fn default_rules() -> Result<Self, AlertRuleError> {
        Self::from_toml(DEFAULT_ALERTS_TOML, DEFAULT_ALERTS_FILE)
    }
}

/// Parses and compiles TOML text; `file` names it in errors.
pub fn from_toml(text: &str, file: &str) -> Result<AlertRules, AlertRuleError> {
    let parsed: AlertFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
        AlertRuleError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(parsed.rules.len());
    let mut positions = Vec::with_capacity(parsed.rules.len());
    for (index, spanned) in parsed.rules.iter().enumerate() {
        let rule = spanned.get_ref();
        let span = spanned.span();
        let err = |field: &'static str, problem: AlertProblem| {
            let (line, column) = field_position(text, span.clone(), field);
            AlertRuleError::Invalid {
                file: file.to_owned(),
                line,
                column,
                rule: rule.name.clone(),
                field,
                problem: Box::new(problem),
            }
        };
        if !valid_rule_name(&rule.name) {
            return Err(err("name", AlertProblem::Name(rule.name.clone())));
        }
        if let Some(first) = names.get(&rule.name) {
            return Err(err(
                "name",
                AlertProblem::DuplicateRule { first: *first + 1 },
            ));
        }
        names.insert(rule.name.clone(), index);
        rules.push(compile_rule(rule).map_err(|(f, p)| err(f, p))?);
        positions.push(
            ["signal", "group_by", "distinct", "then"]
                .map(|f| (f, field_position(text, span.clone(), f)))
                .to_vec(),
        );
    }
    Ok(AlertRules::new(file.to_owned(), rules).with_positions(positions))
}

fn compile_rule(rule: &AlertRuleConfig) -> Result<AlertRule, (&'static str, AlertProblem)> {
    if !valid_identifier(&rule.signal) {
        return Err(("signal", AlertProblem::SignalName(rule.signal.clone())));
    }
    let group_by = match rule.group_by.as_deref() {
        None | Some("none") => None,
        Some(g) if valid_identifier(g) => Some(Arc::<str>::from(g)),
        Some(g) => return Err(("group_by", AlertProblem::GroupBy(g.to_owned()))),
    };
    let seconds = |field: &'static str, v: u64| {
        if (1..=MAX_WINDOW_SECONDS).contains(&v) {
            Ok(v as i64 * 1000)
        } else {
            Err((
                field,
                AlertProblem::OutOfRange {
                    got: v,
                    max: MAX_WINDOW_SECONDS,
                },
            ))
        }
    };
    let window_ms = seconds("window", rule.window)?;
    let resolve_after_ms = match rule.resolve_after {
        Some(v) => seconds("resolve_after", v)?,
        None => window_ms,
    };
    let repeat_ms = rule
        .repeat_interval
        .map(|v| seconds("repeat_interval", v))
        .transpose()?;
    let threshold = match (rule.consecutive, rule.threshold) {
        (Some(c), t) => {
            if c.failures == 0 || c.failures > c.of || c.of > MAX_CONSECUTIVE {
                return Err((
                    "consecutive",
                    AlertProblem::Consecutive {
                        failures: c.failures,
                        of: c.of,
                        max: MAX_CONSECUTIVE,
                    },
                ));
            }
            if let Some(t) = t.filter(|t| *t != c.failures) {
                return Err((
                    "threshold",
                    AlertProblem::ThresholdVersusConsecutive {
                        threshold: t,
                        failures: c.failures,
                    },
                ));
            }
            c.failures
        }
        (None, None) => return Err(("threshold", AlertProblem::MissingThreshold)),
        (None, Some(t)) => {
            // Above the bound a window could not hold enough entries to
            // count to the threshold.
            if t == 0 || t as usize > MAX_ENTRIES {
                return Err((
                    "threshold",
                    AlertProblem::OutOfRange {
                        got: t.into(),
                        max: MAX_ENTRIES as u64,
                    },
                ));
            }
            t
        }
    };
    let distinct = match rule.distinct.as_deref() {
        None => None,
        Some(d) if !valid_identifier(d) || d == "none" => {
            return Err(("distinct", AlertProblem::GroupBy(d.to_owned())));
        }
        Some(_) if rule.consecutive.is_some() => {
            return Err((
                "distinct",
                AlertProblem::Distinct("a consecutive rule counts probe results, not values"),
            ));
        }
        Some(d) if group_by.as_deref() == Some(d) => {
            return Err((
                "distinct",
                AlertProblem::Distinct("counts the key the rule groups by: always one value"),
            ));
        }
        Some(d) => Some(Arc::<str>::from(d)),
    };
    let then = match rule.then.as_deref() {
        None => None,
        Some(t) if !valid_identifier(t) => {
            return Err(("then", AlertProblem::SignalName(t.to_owned())));
        }
        Some(t) if t == rule.signal => {
            return Err((
                "then",
                AlertProblem::Sequence("the closing signal must differ from the counted one"),
            ));
        }
        Some(_) if rule.consecutive.is_some() => {
            return Err((
                "then",
                AlertProblem::Sequence("a consecutive rule counts probe results, not sequences"),
            ));
        }
        Some(_) if distinct.is_some() => {
            return Err((
                "then",
                AlertProblem::Sequence("a sequence rule counts signals, not distinct values"),
            ));
        }
        // A shorter quiet period would let a later signal reopen an
        // episode on the evidence that already fired it.
        Some(_) if resolve_after_ms < window_ms => {
            return Err((
                "resolve_after",
                AlertProblem::Sequence("a sequence rule resolves no sooner than its window"),
            ));
        }
        Some(t) => Some(Arc::<str>::from(t)),
    };
    if rule.category == Category::Security && !rule.inhibit_when_down.is_empty() {
        return Err(("inhibit_when_down", AlertProblem::InhibitedSecurityRule));
    }
    let mut inhibit_when_down = Vec::with_capacity(rule.inhibit_when_down.len());
    for c in &rule.inhibit_when_down {
        let component: Component = c
            .parse()
            .map_err(|e| ("inhibit_when_down", AlertProblem::Component(e)))?;
        inhibit_when_down.push(component);
    }
    Ok(AlertRule {
        name: Arc::from(rule.name.as_str()),
        description: rule.description.clone().unwrap_or_default(),
        signal: Arc::from(rule.signal.as_str()),
        threshold,
        window_ms,
        severity: rule.severity,
        category: rule.category,
        group_by,
        distinct,
        resolve_after_ms,
        repeat_ms,
        consecutive: rule.consecutive.map(|c| c.of),
        then,
        inhibit_when_down,
    })
}

/// Line and column of `field = ...` inside the rule's text, or of the
/// rule's header when the field is not written there.
fn field_position(text: &str, span: std::ops::Range<usize>, field: &str) -> (usize, usize) {
    // The span of an array-of-tables element may cover only its header:
    // the rule's text runs to the next table header.
    let start = span.start.min(text.len());
    let after_header = text[start..]
        .find('\n')
        .map_or(text.len(), |i| start + i + 1);
    let end = text[after_header..]
        .find("\n[")
        .map_or(text.len(), |i| after_header + i + 1)
        .max(span.end.min(text.len()));
    let body = text.get(start..end).unwrap_or("");
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(field)
            && rest.trim_start().starts_with('=')
        {
            let indent = line.len() - trimmed.len();
            return line_column(text, start + offset + indent);
        }
        offset += line.len();
    }
    line_column(text, start)
}

/// Rule names end up in DynamoDB keys (`WINDOW#<rule>#<key>`), SNS
/// attributes and file names: keep them boring.
fn valid_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        from_toml(text, "alerts.toml").unwrap_err().to_string()
    }

    const GOOD: &str = "[[rule]]\nname = \"r\"\nsignal = \"s\"\nthreshold = 2\nwindow = 60\nseverity = \"low\"\ncategory = \"system\"\n";

    #[test]
    fn a_minimal_rule_gets_the_documented_defaults() {
        let rules = from_toml(GOOD, "alerts.toml").unwrap();
        let r = &rules.rules()[0];
        assert_eq!(r.resolve_after_ms, 60_000);
        assert_eq!(r.repeat_ms, None);
        assert_eq!(r.group_by, None);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = error(&format!("{GOOD}treshold = 3\n"));
        assert!(
            e.starts_with("alerts.toml:8:1: unknown field `treshold`"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"low\"", "\"urgent\""));
        assert!(
            e.starts_with("alerts.toml:6:12: unknown variant `urgent`"),
            "{e}"
        );
    }

    #[test]
    fn invalid_fields_name_file_line_rule_and_field() {
        let second = GOOD
            .replace("name = \"r\"", "name = \"q\"")
            .replace("window = 60", "window = 0");
        let e = error(&format!("{GOOD}\n{second}"));
        assert_eq!(
            e,
            "alerts.toml:13:1: alert rule \"q\", window: must be between 1 and 604800, got 0"
        );
        assert!(
            error(&format!("{GOOD}\n{GOOD}"))
                .contains("rule \"r\", name: name already used by rule #1")
        );
        let e = error(&GOOD.replace("threshold = 2\n", ""));
        assert!(
            e.starts_with("alerts.toml:1:1: alert rule \"r\", threshold: required unless"),
            "{e}"
        );
        assert!(
            error(&GOOD.replace("threshold = 2", "threshold = 501"))
                .contains("threshold: must be between 1 and 500")
        );
        assert!(
            error(&GOOD.replace("name = \"r\"", "name = \"R#1\""))
                .contains("name: \"R#1\" is not a valid name")
        );
        assert!(error(&format!("{GOOD}group_by = \"a-b\"\n")).contains("group_by: \"a-b\""));
        assert!(
            error(&format!("{GOOD}inhibit_when_down = [\"kafka\"]\n"))
                .contains("inhibit_when_down: unknown component `kafka`")
        );
        assert!(
            error(&format!("{GOOD}consecutive = {{ failures = 4, of = 3 }}\n"))
                .contains("consecutive: failures (4)")
        );
        assert!(
            error(&format!("{GOOD}consecutive = {{ failures = 3, of = 5 }}\n"))
                .contains("threshold 2 contradicts")
        );
    }

    #[test]
    fn distinct_counts_are_checked() {
        for (extra, want) in [
            ("group_by = \"ip\"\ndistinct = \"ip\"\n", "always one value"),
            ("distinct = \"a-b\"\n", "distinct: \"a-b\""),
        ] {
            let err = error(&format!("{GOOD}{extra}"));
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn sequence_rules_are_checked_at_load() {
        let base = "[[rule]]\nname = \"s\"\nsignal = \"auth_failures\"\nthreshold = 5\nwindow = 600\nseverity = \"critical\"\ncategory = \"security\"\ngroup_by = \"user\"\n";
        let ok = from_toml(&format!("{base}then = \"auth_successes\"\n"), "t.toml").unwrap();
        let r = &ok.rules()[0];
        assert_eq!(r.then.as_deref(), Some("auth_successes"));
        // Both signals route to the rule.
        assert_eq!(ok.for_signal("auth_failures"), [0]);
        assert_eq!(ok.for_signal("auth_successes"), [0]);
        for (extra, want) in [
            ("then = \"auth_failures\"\n", "must differ"),
            ("then = \"a-b\"\n", "not a valid signal name"),
            (
                "then = \"auth_successes\"\ndistinct = \"ip\"\n",
                "not distinct values",
            ),
            (
                "then = \"auth_successes\"\nresolve_after = 60\n",
                "no sooner than its window",
            ),
        ] {
            let err = from_toml(&format!("{base}{extra}"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }

    #[test]
    fn the_default_file_carries_alert_config_exactly() {
        let rules = AlertRules::default_rules().unwrap();
        let get = |n: &str| rules.rules().iter().find(|r| r.name.as_ref() == n).unwrap();
        for (name, threshold, window_s, severity) in [
            ("auth_failures", 5, 300, "high"),
            ("api_errors", 10, 60, "medium"),
            ("drift_detected", 1, 3600, "high"),
        ] {
            let r = get(name);
            assert_eq!(r.signal.as_ref(), name);
            assert_eq!((r.threshold, r.window_ms), (threshold, window_s * 1000));
            assert_eq!(r.severity.as_str(), severity);
        }
        // ALERT_CONFIG has no grouping: the three count across the service.
        for name in ["auth_failures", "api_errors", "drift_detected"] {
            assert_eq!(get(name).group_by, None, "{name}");
        }
        for (name, group_by, distinct) in [
            ("auth_failures_by_ip", "ip", None),
            ("auth_failures_by_user", "user", None),
            ("api_errors_by_endpoint", "endpoint", None),
            ("drift_detected_by_category", "category", None),
            ("password_spraying", "ip", Some("user")),
            ("distributed_guessing", "user", Some("ip")),
        ] {
            let r = get(name);
            assert_eq!(r.group_by.as_deref(), Some(group_by), "{name}");
            assert_eq!(r.distinct.as_deref(), distinct, "{name}");
        }
        // Nothing an attacker can cause mutes a security rule.
        for r in rules.rules() {
            if r.category.as_str() == "security" {
                assert!(r.inhibit_when_down.is_empty(), "{}", r.name);
            }
        }
        let brute = get("brute_force");
        assert_eq!(brute.severity.as_str(), "high");
        assert_eq!(brute.category.as_str(), "security");
        assert_eq!(brute.group_by.as_deref(), Some("user"));
        // Only evidence of compromise is critical among security rules:
        // failures alone are what anyone who knows a username can produce.
        let critical: Vec<&str> = rules
            .rules()
            .iter()
            .filter(|r| r.category.as_str() == "security" && r.severity.as_str() == "critical")
            .map(|r| r.name.as_ref())
            .collect();
        assert_eq!(
            critical,
            ["suspected_compromise", "suspected_compromise_by_ip"]
        );
        for (name, group_by) in [
            ("suspected_compromise", "user"),
            ("suspected_compromise_by_ip", "ip"),
        ] {
            let r = get(name);
            assert_eq!(r.signal.as_ref(), "auth_failures");
            assert_eq!(r.then.as_deref(), Some("auth_successes"));
            assert_eq!(r.group_by.as_deref(), Some(group_by));
            assert_eq!((r.threshold, r.window_ms), (5, 600_000));
        }
        assert_eq!(get("component_down").consecutive, Some(5));
        // One rule per alert of the guide's Alert Categories.
        for (name, category) in [
            ("auth_failures", "security"),
            ("permission_violations", "security"),
            ("token_revocations", "security"),
            ("config_changes", "security"),
            ("slow_requests", "performance"),
            ("error_rate_spike", "performance"),
            ("resource_utilization", "performance"),
            ("connection_pool_exhaustion", "performance"),
            ("component_down", "system"),
            ("drift_detected", "system"),
            ("certificate_expiring", "system"),
            ("database_errors", "system"),
        ] {
            assert_eq!(get(name).category.as_str(), category, "{name}");
        }
    }

    #[test]
    fn default_rules_only_count_signals_that_exist() {
        let log_rules = crate::domain::rules::RuleSet::default_rules().unwrap();
        let text = crate::domain::rules::engine::DEFAULT_RULES_TOML;
        let probe = super::super::probe_signals::SIGNALS;
        for rule in AlertRules::default_rules().unwrap().rules() {
            let name = rule.signal.as_ref();
            let from_logs = text.contains(&format!("name = \"{name}\"\n"));
            assert!(
                from_logs
                    || probe.contains(&name)
                    || name == super::super::rules::LOG_PIPELINE_SILENT,
                "rule {} counts unknown signal {name}",
                rule.name
            );
        }
        assert!(!log_rules.is_empty());
    }
}
