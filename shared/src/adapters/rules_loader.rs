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

/// A rule file the functions load: the log rules ([`RuleSet`]) and the
/// alert rules ([`AlertRules`]), both TOML, both embedded, on disk or in an
/// SSM parameter, loaded by the one [`load`] / [`load_file`].
pub trait RuleFile: Sized {
    /// The setting named in secret-resolution errors.
    const SETTING: &'static str;
    type Error: From<ConfigError>;
    /// Parses `text`; errors name `file`, rule and position.
    fn parse(text: &str, file: &str) -> Result<Self, Self::Error>;
    /// The rules built into the bundle.
    fn embedded() -> Result<Self, Self::Error>;
}

impl RuleFile for RuleSet {
    const SETTING: &'static str = "RULES";
    type Error = RulesLoadError;
    fn parse(text: &str, file: &str) -> Result<Self, RulesLoadError> {
        Ok(RuleSet::from_toml(text, file)?)
    }
    fn embedded() -> Result<Self, RulesLoadError> {
        Ok(RuleSet::default_rules()?)
    }
}

impl RuleFile for AlertRules {
    const SETTING: &'static str = "ALERT_RULES";
    type Error = AlertRulesLoadError;
    fn parse(text: &str, file: &str) -> Result<Self, AlertRulesLoadError> {
        Ok(AlertRules::from_toml(text, file)?)
    }
    fn embedded() -> Result<Self, AlertRulesLoadError> {
        Ok(AlertRules::default_rules()?)
    }
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

/// A rule file on disk; errors name the file (and rule and position).
pub fn load_file<R: RuleFile>(path: &Path) -> Result<R, R::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    R::parse(&text, &path.display().to_string())
}

/// The rules a function was configured with: embedded, a file, or an SSM
/// parameter (named `ssm:<name>` in errors).
pub async fn load<R: RuleFile>(
    source: &RulesSource,
    secrets: &SecretResolver,
) -> Result<R, R::Error> {
    match source {
        RulesSource::Embedded => R::embedded(),
        RulesSource::File(path) => load_file(path),
        RulesSource::SsmParameter(name) => {
            let text = secrets
                .resolve(R::SETTING, &SecretSource::SsmParameter(name.clone()))
                .await?;
            R::parse(text.expose(), &format!("ssm:{name}"))
        }
    }
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
        let err = load_file::<AlertRules>(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
        let err = load_file::<AlertRules>(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
