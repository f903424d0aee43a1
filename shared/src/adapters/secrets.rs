//! Resolves secret references (Secrets Manager, SSM Parameter Store) once per
//! cold start.

use aws_config::SdkConfig;

use super::aws::describe_sdk_error;
use crate::config::{ConfigError, Secret, SecretSource};

pub struct SecretResolver {
    secrets_manager: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
}

impl SecretResolver {
    pub fn new(sdk: &SdkConfig) -> Self {
        SecretResolver {
            secrets_manager: aws_sdk_secretsmanager::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
        }
    }

    /// The secret's value; `var` names the variable in errors.
    pub async fn resolve(&self, var: &str, source: &SecretSource) -> Result<Secret, ConfigError> {
        match source {
            SecretSource::Plain(secret) => Ok(secret.clone()),
            SecretSource::SecretsManager(id) => {
                let out = self
                    .secrets_manager
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| ConfigError::SecretUnavailable {
                        var: format!("{var}_SECRET_ARN"),
                        source_kind: "Secrets Manager",
                        reason: describe_sdk_error(&e),
                    })?;
                out.secret_string()
                    .map(|s| Secret::new(s.trim()))
                    .ok_or_else(|| ConfigError::SecretUnavailable {
                        var: format!("{var}_SECRET_ARN"),
                        source_kind: "Secrets Manager",
                        reason: "the secret has no SecretString".into(),
                    })
            }
            SecretSource::SsmParameter(name) => {
                let out = self
                    .ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| ConfigError::SecretUnavailable {
                        var: format!("{var}_SSM_PARAMETER"),
                        source_kind: "SSM Parameter Store",
                        reason: describe_sdk_error(&e),
                    })?;
                out.parameter()
                    .and_then(|p| p.value())
                    .map(|s| Secret::new(s.trim()))
                    .ok_or_else(|| ConfigError::SecretUnavailable {
                        var: format!("{var}_SSM_PARAMETER"),
                        source_kind: "SSM Parameter Store",
                        reason: "the parameter has no value".into(),
                    })
            }
        }
    }

    /// Resolves an optional source.
    pub async fn resolve_opt(
        &self,
        var: &str,
        source: Option<&SecretSource>,
    ) -> Result<Option<Secret>, ConfigError> {
        match source {
            None => Ok(None),
            Some(s) => self.resolve(var, s).await.map(Some),
        }
    }
}
