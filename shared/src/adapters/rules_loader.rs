//! Loads the rule set a function was configured with: embedded, a file, or
//! an SSM parameter. Errors name the file (or parameter), rule and position.

use std::path::Path;

use crate::adapters::secrets::SecretResolver;
use crate::config::log_metrics::RulesSource;
use crate::config::{ConfigError, SecretSource};
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
