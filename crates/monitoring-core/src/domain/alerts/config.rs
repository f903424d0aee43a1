//! The serde model of an alert rule file (TOML, `infra/alerts/default.toml`).
//! Every table refuses unknown keys, so a typo fails at load with its line
//! and column. Semantic checks happen afterwards in [`super::validate`].

use serde::{Deserialize, Serialize};

/// A whole alert rule file: a list of `[[rule]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFile {
    /// The rules, with their place in the file for error messages.
    #[serde(default, rename = "rule")]
    pub rules: Vec<toml::Spanned<AlertRuleConfig>>,
}

/// One `[[rule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleConfig {
    /// Unique name: the `rule` of every incident, the runbook file name
    /// (`docs/runbooks/<name>.md`) and part of window and incident ids.
    pub name: String,
    /// Free text for people reading the file and the incident.
    #[serde(default)]
    pub description: Option<String>,
    /// The signal counted (e.g. `auth_failures`).
    pub signal: String,
    /// At least this many distinct signals within `window` fire the rule.
    /// Optional only for `consecutive` rules, where it is `failures`.
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Window length in seconds of event time.
    pub window: u64,
    pub severity: Severity,
    pub category: Category,
    /// The signal key the count is grouped by (`ip`, `user`, ...), or
    /// `"none"` for one count over every signal of the name. Signals with
    /// another key name do not count for a grouped rule.
    #[serde(default)]
    pub group_by: Option<String>,
    /// Count distinct values of this signal key instead of signals: the
    /// rule fires when `threshold` distinct values (users, addresses) fall
    /// within the window of one group. Password spraying is one address
    /// (`group_by = "ip"`) failing against many users (`distinct = "user"`).
    #[serde(default)]
    pub distinct: Option<String>,
    /// Seconds without a new signal after which a firing incident resolves;
    /// default: the window.
    #[serde(default)]
    pub resolve_after: Option<u64>,
    /// Seconds between reminders while the incident keeps firing; none
    /// when absent.
    #[serde(default)]
    pub repeat_interval: Option<u64>,
    /// Probe rules: fire on `failures` failed probes among the last `of`.
    #[serde(default)]
    pub consecutive: Option<Consecutive>,
    /// Sequence rules: the signal that closes the sequence. The rule fires
    /// on a `then` signal that follows at least `threshold` signals of
    /// `signal` of the same group within `window` seconds before it (event
    /// time): a successful login after a burst of failures, not the
    /// failures alone.
    #[serde(default)]
    pub then: Option<String>,
    /// Components (`oauth`, `database`, ...) whose outage explains this
    /// rule's signals: while one is down (by a probe result no older than
    /// two probe periods, checked at each transition), transitions are
    /// recorded as inhibited and not published. Refused on security rules:
    /// an attacker can cause an outage.
    #[serde(default)]
    pub inhibit_when_down: Vec<String>,
}

/// `consecutive = { failures = M, of = N }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consecutive {
    pub failures: u32,
    pub of: u32,
}

/// How urgent an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The guide's three alert categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Security,
    Performance,
    System,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Performance => "performance",
            Category::System => "system",
        }
    }
}
