//! Loads the rule sets a function was configured with (log rules and alert
//! rules): embedded, a file, or an SSM parameter. Errors name the file (or
//! parameter), rule and position.

use std::path::Path;

use crate::adapters::secrets::SecretResolver;
use crate::config::log_metrics::RulesSource;
use crate::config::{ConfigError, SecretSource};
use crate::domain::alerts::{AlertRuleError, AlertRules};
use crate::domain::rules::{RuleError, RuleSet};

#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RuleError),
}

/// A rule file on disk; errors name the file (and rule and position).
pub fn load_rules_file(path: &Path) -> Result<RuleSet, RulesLoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(RuleSet::from_toml(&text, &path.display().to_string())?)
}

pub async fn load_rules(
    source: &RulesSource,
    secrets: &SecretResolver,
) -> Result<RuleSet, RulesLoadError> {
    let rules = match source {
        RulesSource::Embedded => RuleSet::default_rules()?,
        RulesSource::File(path) => load_rules_file(path)?,
        RulesSource::SsmParameter(name) => {
            let text = secrets
                .resolve("RULES", &SecretSource::SsmParameter(name.clone()))
                .await?;
            RuleSet::from_toml(text.expose(), &format!("ssm:{name}"))?
        }
    };
    Ok(rules)
}

/// An alert rule file that cannot be loaded: unreadable (names the file or
/// parameter) or invalid (names `file:line:column`, the rule and field).
#[derive(Debug, thiserror::Error)]
pub enum AlertRulesLoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] AlertRuleError),
    /// The log rules the alert rules are checked against.
    #[error("log rules: {0}")]
    LogRules(RulesLoadError),
}

/// An alert rule file on disk.
pub fn load_alert_rules_file(path: &Path) -> Result<AlertRules, AlertRulesLoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(AlertRules::from_toml(&text, &path.display().to_string())?)
}

/// The alert rules a function was configured with: embedded, a file, or an
/// SSM parameter (named `ssm:<name>` in errors).
pub async fn load_alert_rules(
    source: &RulesSource,
    secrets: &SecretResolver,
) -> Result<AlertRules, AlertRulesLoadError> {
    Ok(match source {
        RulesSource::Embedded => AlertRules::default_rules()?,
        RulesSource::File(path) => load_alert_rules_file(path)?,
        RulesSource::SsmParameter(name) => {
            let text = secrets
                .resolve("ALERT_RULES", &SecretSource::SsmParameter(name.clone()))
                .await?;
            AlertRules::from_toml(text.expose(), &format!("ssm:{name}"))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_rule_file_names_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("alert-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.toml");
        std::fs::write(
            &path,
            "[[rule]]\nname = \"x\"\nsignal = \"auth_failures\"\nthreshold = 0\nwindow = 60\nseverity = \"high\"\ncategory = \"security\"\ngroup_by = \"ip\"\n",
        )
        .unwrap();
        let err = load_alert_rules_file(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
        let err = load_alert_rules_file(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
