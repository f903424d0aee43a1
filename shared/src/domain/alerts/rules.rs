//! The compiled alert rules: what the window engine reads per signal.

use std::collections::HashMap;
use std::sync::Arc;

use super::config::{Category, Severity};
use super::validate::{self, AlertRuleError};
use crate::domain::probe_result::Component;

/// The embedded default rule file.
pub const DEFAULT_ALERTS_TOML: &str = include_str!("../../../../infra/alerts/default.toml");
pub const DEFAULT_ALERTS_FILE: &str = "infra/alerts/default.toml";

/// The signal the alert-evaluator raises when the log group went silent.
pub const LOG_PIPELINE_SILENT: &str = "log_pipeline_silent";

/// One validated alert rule. Times are in milliseconds of event time.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: Arc<str>,
    pub description: String,
    pub signal: Arc<str>,
    /// Distinct signals within `window_ms` that fire the rule; for
    /// `consecutive` rules, the failures among the last `consecutive`.
    pub threshold: u32,
    pub window_ms: i64,
    pub severity: Severity,
    pub category: Category,
    /// The signal key name counted per value; `None`: one count per rule.
    pub group_by: Option<Arc<str>>,
    pub resolve_after_ms: i64,
    pub repeat_ms: Option<i64>,
    /// `Some(n)`: fire on `threshold` hits among the last `n` signals.
    pub consecutive: Option<u32>,
    pub inhibit_when_down: Vec<Component>,
}

impl AlertRule {
    /// Whether a signal with this key name counts for the rule.
    pub fn accepts(&self, key_name: Option<&str>) -> bool {
        match &self.group_by {
            None => true,
            Some(g) => key_name == Some(g.as_ref()),
        }
    }

    /// `window` in whole seconds, as rule files and incidents say it.
    pub fn window_seconds(&self) -> u64 {
        (self.window_ms / 1000).unsigned_abs()
    }
}

/// A validated alert rule file.
#[derive(Debug, Clone)]
pub struct AlertRules {
    file: String,
    rules: Vec<AlertRule>,
    /// Signal name → indexes of the rules counting it.
    by_signal: HashMap<Arc<str>, Vec<usize>>,
}

impl AlertRules {
    pub(crate) fn new(file: String, rules: Vec<AlertRule>) -> Self {
        let mut by_signal: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_signal.entry(r.signal.clone()).or_default().push(i);
        }
        AlertRules {
            file,
            rules,
            by_signal,
        }
    }

    /// Parses and validates a rule file's text.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, AlertRuleError> {
        validate::from_toml(text, file)
    }

    /// The embedded `infra/alerts/default.toml` (a unit test proves it loads).
    pub fn default_rules() -> Result<Self, AlertRuleError> {
        Self::from_toml(DEFAULT_ALERTS_TOML, DEFAULT_ALERTS_FILE)
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    pub fn get(&self, index: usize) -> Option<&AlertRule> {
        self.rules.get(index)
    }

    /// Index of the rule of this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.name.as_ref() == name)
    }

    /// Indexes of the rules counting this signal.
    pub fn for_signal(&self, signal: &str) -> &[usize] {
        self.by_signal.get(signal).map_or(&[], Vec::as_slice)
    }
}

impl AlertRule {
    /// The window a signal key counts in: `""` for ungrouped rules.
    pub fn window_key<'a>(&self, key: &'a str) -> std::borrow::Cow<'a, str> {
        if self.group_by.is_none() {
            std::borrow::Cow::Borrowed("")
        } else {
            super::window::window_key(key)
        }
    }
}
