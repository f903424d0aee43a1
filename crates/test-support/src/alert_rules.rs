//! The alert rules of the tests about the engine's mechanics (exactly-once
//! publication, the outbox, redeliveries, races, silences, inhibition,
//! resolution), apart from the default rules: a scenario there fires one
//! incident, whatever rules `infra/alerts/default.toml` adds. The same
//! file as the engine's own unit tests read
//! (`crates/monitoring-core/src/domain/alerts/test_rules.toml`).
//!
//! The names are the default rules' (so runbook links resolve), but
//! `auth_failures` here counts per client address, as the default
//! `auth_failures_by_ip` does; the default `auth_failures` counts across
//! the service. Tests of what the default rules mean use
//! `AlertRules::default_rules()`.

use std::path::PathBuf;
use std::sync::Arc;

use monitoring_core::domain::alerts::AlertRules;
use monitoring_core::domain::alerts::crosscheck::{self, SignalCatalog};
use monitoring_core::domain::rules::RuleSet;

/// Five failed logins from one address fire `auth_failures` (high,
/// security, never inhibited); ten against one user within two minutes
/// fire `brute_force` (critical); ten server errors on one route within a
/// minute fire `api_errors`; five database errors of one logger fire
/// `database_errors`, inhibited while the database is down.
pub const TEST_ALERT_RULES: &str =
    include_str!("../../monitoring-core/src/domain/alerts/test_rules.toml");

/// [`TEST_ALERT_RULES`], checked against the default log rules as the
/// functions check their rules at start (every signal and key is one the
/// log rules or probes produce).
pub fn test_alert_rules() -> Arc<AlertRules> {
    let rules = AlertRules::from_toml(TEST_ALERT_RULES, "test-alerts.toml").unwrap();
    let log_rules = RuleSet::default_rules().unwrap();
    crosscheck::check(&rules, &SignalCatalog::new(&log_rules)).unwrap();
    Arc::new(rules)
}

/// [`TEST_ALERT_RULES`] in a file of its own, for `ALERT_RULES_FILE`.
pub fn test_alert_rules_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", super::stack::unique("alert-rules")));
    std::fs::write(&path, TEST_ALERT_RULES).unwrap();
    path
}
