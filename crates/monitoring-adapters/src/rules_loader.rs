//! Loads the rule sets a function was configured with (log rules and alert
//! rules): embedded, a file, or an SSM parameter. Errors name the file (or
//! parameter), rule and position.

use std::path::{Path, PathBuf};

use crate::secrets::SecretResolver;
use monitoring_core::config::{ConfigError, Env, SecretSource};
use monitoring_core::domain::alerts::{AlertRuleError, AlertRules};
use monitoring_core::domain::rules::{RuleError, RuleSet};

/// Where a rule file (metric rules, or alert rules) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// The default built into the binary (`infra/rules/default.toml`, or
    /// `infra/alerts/default.toml` for alert rules).
    Embedded,
    /// `RULES_FILE` (`ALERT_RULES_FILE`): a TOML file on disk (the replay
    /// tool, a Lambda layer).
    File(PathBuf),
    /// `RULES_SSM_PARAMETER` (`ALERT_RULES_SSM_PARAMETER`): a parameter
    /// whose value is the TOML text.
    SsmParameter(String),
}

impl RulesSource {
    /// `RULES_FILE` or `RULES_SSM_PARAMETER` (not both), else the embedded rules.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_env_prefixed(env, "RULES")
    }

    /// `<prefix>_FILE` or `<prefix>_SSM_PARAMETER` (not both), else the
    /// embedded default of that kind of rule file (the alert rules use
    /// `ALERT_RULES`).
    pub fn from_env_prefixed(env: &Env, prefix: &str) -> Result<Self, ConfigError> {
        let file_var = format!("{prefix}_FILE");
        let ssm_var = format!("{prefix}_SSM_PARAMETER");
        match (env.get(&file_var), env.get(&ssm_var)) {
            (None, None) => Ok(RulesSource::Embedded),
            (Some(path), None) => Ok(RulesSource::File(PathBuf::from(path))),
            (None, Some(name)) => Ok(RulesSource::SsmParameter(name.to_owned())),
            (Some(_), Some(_)) => Err(ConfigError::Conflict {
                var: prefix.to_owned(),
                choices: format!("{file_var}, {ssm_var}"),
            }),
        }
    }
}

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
