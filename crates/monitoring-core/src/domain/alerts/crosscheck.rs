//! Rule files checked against each other at load: an alert rule counting a
//! signal that no log rule and no probe produces, or grouping by (or
//! counting) a key that signal never carries, could never fire. It is
//! refused with the file, the line of the field and the nearest known name,
//! as a typo in either file would otherwise pass silently.

use std::collections::{BTreeMap, BTreeSet};

use super::probe_signals::{
    CERTIFICATE_EXPIRING, COMPONENT_PROBE, CONNECTION_POOL, RESOURCE_UTILIZATION,
};
use super::rules::{AlertRules, LOG_PIPELINE_SILENT};
use super::validate::{AlertProblem, AlertRuleError};
use crate::domain::rules::RuleSet;

/// Every signal the bundle can produce, with the key names it carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalCatalog {
    signals: BTreeMap<String, BTreeSet<String>>,
}

impl SignalCatalog {
    /// The signals of `log_rules`, of the component probes and of the
    /// alert-evaluator's dead man's switch.
    pub fn new(log_rules: &RuleSet) -> Self {
        let mut catalog = SignalCatalog::default();
        for (name, keys) in log_rules.signals() {
            catalog.add(&name, keys.iter().map(String::as_str));
        }
        for (name, key) in [
            (COMPONENT_PROBE, "component"),
            (CERTIFICATE_EXPIRING, "endpoint"),
            (RESOURCE_UTILIZATION, "resource"),
            (CONNECTION_POOL, "pool"),
        ] {
            catalog.add(name, [key]);
        }
        catalog.add(LOG_PIPELINE_SILENT, []);
        catalog
    }

    fn add<'a>(&mut self, name: &str, keys: impl IntoIterator<Item = &'a str>) {
        self.signals
            .entry(name.to_owned())
            .or_default()
            .extend(keys.into_iter().map(str::to_owned));
    }

    /// The key names a signal carries, if anything produces it.
    pub fn keys(&self, signal: &str) -> Option<&BTreeSet<String>> {
        self.signals.get(signal)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.signals.keys().map(String::as_str)
    }
}

/// Refuses the first alert rule that counts an unknown signal or reads a
/// key its signal never carries.
pub fn check(rules: &AlertRules, catalog: &SignalCatalog) -> Result<(), AlertRuleError> {
    for (index, rule) in rules.rules().iter().enumerate() {
        let at = |field: &'static str| rules.position(index, field);
        let err = |field: &'static str, problem: AlertProblem| {
            let (line, column) = at(field);
            AlertRuleError::Invalid {
                file: rules.file().to_owned(),
                line,
                column,
                rule: rule.name.to_string(),
                field,
                problem: Box::new(problem),
            }
        };
        let Some(keys) = catalog.keys(&rule.signal) else {
            return Err(err(
                "signal",
                AlertProblem::UnknownSignal {
                    signal: rule.signal.to_string(),
                    nearest: nearest(&rule.signal, catalog.names()),
                },
            ));
        };
        for (field, key) in [("group_by", &rule.group_by), ("distinct", &rule.distinct)] {
            let Some(key) = key else { continue };
            if !keys.contains(key.as_ref()) {
                return Err(err(
                    field,
                    AlertProblem::KeyNeverCarried {
                        key: key.to_string(),
                        signal: rule.signal.to_string(),
                        carried: keys.iter().cloned().collect(),
                        nearest: nearest(key, keys.iter().map(String::as_str)),
                    },
                ));
            }
        }
        // A sequence's closing signal is grouped like the counted one.
        let Some(then) = &rule.then else { continue };
        let Some(then_keys) = catalog.keys(then) else {
            return Err(err(
                "then",
                AlertProblem::UnknownSignal {
                    signal: then.to_string(),
                    nearest: nearest(then, catalog.names()),
                },
            ));
        };
        if let Some(key) = rule.group_by.as_deref().filter(|k| !then_keys.contains(*k)) {
            return Err(err(
                "then",
                AlertProblem::KeyNeverCarried {
                    key: key.to_owned(),
                    signal: then.to_string(),
                    carried: then_keys.iter().cloned().collect(),
                    nearest: nearest(key, then_keys.iter().map(String::as_str)),
                },
            ));
        }
    }
    Ok(())
}

/// The known name closest to `name` by edit distance, if close enough to be
/// a typo of it (at most a third of its length).
fn nearest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= name.chars().count().div_ceil(3).max(1))
        .min()
        .map(|(_, k)| k.to_owned())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> SignalCatalog {
        SignalCatalog::new(&RuleSet::default_rules().unwrap())
    }

    fn check_text(text: &str) -> Result<(), String> {
        let rules = AlertRules::from_toml(text, "alerts.toml").map_err(|e| e.to_string())?;
        check(&rules, &catalog()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_sequences_closing_signal_is_checked_too() {
        let base = "[[rule]]\nname = \"a\"\nsignal = \"auth_failures\"\nthreshold = 5\nwindow = 600\nseverity = \"critical\"\ncategory = \"security\"\ngroup_by = \"user\"\n";
        let err = check_text(&format!("{base}then = \"auth_success\"\n")).unwrap_err();
        assert_eq!(
            err,
            "alerts.toml:9:1: alert rule \"a\", then: no log rule or probe produces signal \"auth_success\" (did you mean \"auth_successes\"?)"
        );
        let err = check_text(
            &format!("{base}then = \"token_revocations\"\n").replace("\"user\"", "\"ip\""),
        )
        .unwrap_err();
        assert!(
            err.contains("then: signal \"token_revocations\" never carries key \"ip\""),
            "{err}"
        );
    }

    #[test]
    fn the_default_files_agree() {
        check(&AlertRules::default_rules().unwrap(), &catalog()).unwrap();
    }

    #[test]
    fn an_unknown_signal_is_refused_with_line_and_nearest_name() {
        let err = check_text(
            "[[rule]]\nname = \"a\"\nsignal = \"auth_failure\"\nthreshold = 1\nwindow = 60\nseverity = \"high\"\ncategory = \"security\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "alerts.toml:3:1: alert rule \"a\", signal: no log rule or probe produces signal \"auth_failure\" (did you mean \"auth_failures\"?)"
        );
    }

    #[test]
    fn a_key_the_signal_never_carries_is_refused() {
        let err = check_text(
            "[[rule]]\nname = \"a\"\nsignal = \"auth_failures\"\nthreshold = 1\nwindow = 60\nseverity = \"high\"\ncategory = \"security\"\ngroup_by = \"usr\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "alerts.toml:8:1: alert rule \"a\", group_by: signal \"auth_failures\" never carries key \"usr\" (it carries ip, user; did you mean \"user\"?)"
        );
        let err = check_text(
            "[[rule]]\nname = \"a\"\nsignal = \"api_errors\"\nthreshold = 1\nwindow = 60\nseverity = \"high\"\ncategory = \"performance\"\ngroup_by = \"endpoint\"\ndistinct = \"ip\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("alerts.toml:9:1: alert rule \"a\", distinct:"),
            "{err}"
        );
    }

    #[test]
    fn probe_and_silence_signals_are_known() {
        check_text(
            "[[rule]]\nname = \"a\"\nsignal = \"component_probe\"\ngroup_by = \"component\"\nconsecutive = { failures = 1, of = 2 }\nwindow = 60\nseverity = \"high\"\ncategory = \"system\"\n\n[[rule]]\nname = \"b\"\nsignal = \"log_pipeline_silent\"\nthreshold = 1\nwindow = 60\nseverity = \"high\"\ncategory = \"system\"\n",
        )
        .unwrap();
    }

    #[test]
    fn edit_distance_and_nearest() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(
            nearest("usr", ["ip", "user"].into_iter()).as_deref(),
            Some("user")
        );
        assert_eq!(nearest("zzzzzz", ["ip", "user"].into_iter()), None);
    }
}
