//! The compiled alert rules: what the window engine reads per signal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::config::{Category, Severity};
use super::input::AlertInput;
use super::keys::{event_hash, window_key};
use crate::domain::probe_result::Component;

/// The embedded default rule file.
pub const DEFAULT_ALERTS_TOML: &str = include_str!("../../../../../infra/alerts/default.toml");
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
    /// The signal key whose distinct values are counted (see
    /// [`super::config::AlertRuleConfig::distinct`]).
    pub distinct: Option<Arc<str>>,
    pub resolve_after_ms: i64,
    pub repeat_ms: Option<i64>,
    /// `Some(n)`: fire on `threshold` hits among the last `n` signals.
    pub consecutive: Option<u32>,
    /// Sequence rules: the signal that closes the sequence (see
    /// [`super::config::AlertRuleConfig::then`]); `signal` is then the one
    /// counted before it.
    pub then: Option<Arc<str>>,
    pub inhibit_when_down: Vec<Component>,
}

impl AlertRule {
    /// Where `input` counts for this rule: its window key and, for a
    /// distinct-count rule, the hash of the counted value (set on the
    /// returned input). An input lacking a key the rule reads is dropped,
    /// and the caller counts it under [`SignalOutcome::MissingKey`].
    pub fn route<'a>(
        &self,
        input: &AlertInput<'a>,
    ) -> Result<(std::borrow::Cow<'a, str>, AlertInput<'a>), SignalOutcome> {
        let key = match &self.group_by {
            None => std::borrow::Cow::Borrowed(""),
            Some(g) => window_key(input.keys.get(g).ok_or(SignalOutcome::MissingKey)?),
        };
        let mut routed = *input;
        if let Some(d) = &self.distinct {
            let value = input.keys.get(d).ok_or(SignalOutcome::MissingKey)?;
            // Never 0: 0 marks an entry of a rule counting signals.
            routed.distinct = event_hash(value).max(1);
        }
        Ok((key, routed))
    }

    /// Whether `input` is the closing signal of a sequence rule.
    pub fn closes(&self, input: &AlertInput<'_>) -> bool {
        self.then.as_deref() == Some(input.signal)
    }

    /// `window` in whole seconds, as rule files and incidents say it.
    pub fn window_seconds(&self) -> u64 {
        (self.window_ms / 1000).unsigned_abs()
    }

    /// Every key name the rule reads from a signal.
    pub fn keys_read(&self) -> impl Iterator<Item = &str> {
        self.group_by
            .iter()
            .chain(&self.distinct)
            .map(AsRef::as_ref)
    }
}

/// What became of a signal offered to a rule (see [`SignalAccounting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalOutcome {
    /// In the rule's window.
    Counted,
    /// Same event id and time as one already counted (a redelivery).
    Duplicate,
    /// Older than the window before the newest event time of its key.
    Late,
    /// The signal lacks a key the rule groups by or counts.
    MissingKey,
    /// A passing probe offered to a rule that counts only failures.
    Ignored,
}

impl SignalOutcome {
    /// The `outcome` label of `alert_signal_outcomes_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalOutcome::Counted => "counted",
            SignalOutcome::Duplicate => "duplicate",
            SignalOutcome::Late => "late",
            SignalOutcome::MissingKey => "missing_key",
            SignalOutcome::Ignored => "ignored",
        }
    }

    pub const ALL: [SignalOutcome; 5] = [
        SignalOutcome::Counted,
        SignalOutcome::Duplicate,
        SignalOutcome::Late,
        SignalOutcome::MissingKey,
        SignalOutcome::Ignored,
    ];
}

/// The alert engine's accounting, which closes like the log pipeline's:
/// every signal offered to a rule has one outcome for it, and a signal no
/// rule counts is counted as unrouted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalAccounting {
    /// Inputs received, by signal name.
    pub received: BTreeMap<Arc<str>, u64>,
    /// Inputs of a signal no rule counts, by signal name.
    pub unrouted: BTreeMap<Arc<str>, u64>,
    /// Per (rule, outcome).
    pub outcomes: BTreeMap<(Arc<str>, SignalOutcome), u64>,
}

impl SignalAccounting {
    pub fn receive(&mut self, signal: &str, rules: usize) {
        bump(&mut self.received, signal, 1);
        if rules == 0 {
            bump(&mut self.unrouted, signal, 1);
        }
    }

    pub fn outcome(&mut self, rule: &Arc<str>, outcome: SignalOutcome, n: u64) {
        if n > 0 {
            *self.outcomes.entry((rule.clone(), outcome)).or_default() += n;
        }
    }

    pub fn add(&mut self, other: &SignalAccounting) {
        for (k, n) in &other.received {
            bump(&mut self.received, k, *n);
        }
        for (k, n) in &other.unrouted {
            bump(&mut self.unrouted, k, *n);
        }
        for (k, n) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += n;
        }
    }

    /// Outcomes of one rule.
    pub fn for_rule(&self, rule: &str, outcome: SignalOutcome) -> u64 {
        self.outcomes
            .iter()
            .filter(|((r, o), _)| r.as_ref() == rule && *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Signals dropped by a rule, any reason.
    pub fn dropped(&self, rule: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|((r, o), _)| r.as_ref() == rule && *o != SignalOutcome::Counted)
            .map(|(_, n)| n)
            .sum()
    }
}

fn bump(map: &mut BTreeMap<Arc<str>, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(Arc::from(key), n);
        }
    }
}

/// A validated alert rule file.
#[derive(Debug, Clone)]
pub struct AlertRules {
    file: String,
    rules: Vec<AlertRule>,
    /// Signal name → indexes of the rules counting it.
    by_signal: HashMap<Arc<str>, Vec<usize>>,
    /// Per rule: where some of its fields are written (line, column), for
    /// the checks made after loading (see [`super::crosscheck`]).
    positions: Vec<Vec<(&'static str, (usize, usize))>>,
}

impl AlertRules {
    pub(crate) fn new(file: String, rules: Vec<AlertRule>) -> Self {
        let mut by_signal: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            for signal in std::iter::once(&r.signal).chain(&r.then) {
                by_signal.entry(signal.clone()).or_default().push(i);
            }
        }
        AlertRules {
            file,
            rules,
            by_signal,
            positions: Vec::new(),
        }
    }

    pub(crate) fn with_positions(
        mut self,
        positions: Vec<Vec<(&'static str, (usize, usize))>>,
    ) -> Self {
        self.positions = positions;
        self
    }

    /// Line and column of a rule's field in its file ((1, 1) when unknown).
    pub fn position(&self, index: usize, field: &str) -> (usize, usize) {
        self.positions
            .get(index)
            .and_then(|p| p.iter().find(|(f, _)| *f == field))
            .map_or((1, 1), |(_, at)| *at)
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Each rule's labels as silences match them.
    pub fn silence_labels(&self) -> Vec<crate::domain::silence::RuleLabels> {
        self.rules()
            .iter()
            .map(|r| {
                crate::domain::silence::RuleLabels::new(
                    r.name.as_ref(),
                    r.category.as_str(),
                    r.severity.as_str(),
                )
            })
            .collect()
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
