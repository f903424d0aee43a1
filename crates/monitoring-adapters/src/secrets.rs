//! Resolves secret references (Secrets Manager, SSM Parameter Store): once
//! per cold start ([`SecretResolver::resolve`]), or again whenever asked,
//! with the previous version during a rotation ([`RotatingSecret`]).

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use futures::future::BoxFuture;

use super::aws::describe_sdk_error;
use monitoring_core::config::{ConfigError, Secret, SecretSource};
use monitoring_core::ports::{SecretVersionSource, SecretVersions};

/// Secrets Manager's label of the version a rotation replaced.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";
/// Secrets Manager's label of the version in force.
pub const CURRENT_STAGE: &str = "AWSCURRENT";

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

    /// Secrets Manager's `stage` of secret `id`; `None` when the secret
    /// has no version with that label (no rotation yet).
    async fn secrets_manager_stage(
        &self,
        var: &str,
        id: &str,
        stage: &str,
    ) -> Result<Option<Secret>, ConfigError> {
        let unavailable = |reason: String| ConfigError::SecretUnavailable {
            var: format!("{var}_SECRET_ARN"),
            source_kind: "Secrets Manager",
            reason,
        };
        let out = match self
            .secrets_manager
            .get_secret_value()
            .secret_id(id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) && stage != CURRENT_STAGE =>
            {
                return Ok(None);
            }
            Err(e) => return Err(unavailable(describe_sdk_error(&e))),
        };
        out.secret_string()
            .map(|s| Some(Secret::new(s.trim())))
            .ok_or_else(|| unavailable(format!("the {stage} version has no SecretString")))
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

/// A secret re-read on every [`SecretVersionSource::fetch`]: from Secrets
/// Manager with its previous version, from SSM or the environment without.
pub struct RotatingSecret {
    resolver: std::sync::Arc<SecretResolver>,
    var: String,
    source: SecretSource,
}

impl RotatingSecret {
    /// `var` names the variable in errors (`ADMIN_TOKEN`).
    pub fn new(
        resolver: std::sync::Arc<SecretResolver>,
        var: impl Into<String>,
        source: SecretSource,
    ) -> Self {
        RotatingSecret {
            resolver,
            var: var.into(),
            source,
        }
    }
}

impl SecretVersionSource for RotatingSecret {
    fn fetch(&self) -> BoxFuture<'_, Result<SecretVersions, ConfigError>> {
        Box::pin(async move {
            match &self.source {
                SecretSource::SecretsManager(id) => {
                    let current = self
                        .resolver
                        .secrets_manager_stage(&self.var, id, CURRENT_STAGE)
                        .await?
                        .ok_or_else(|| ConfigError::SecretUnavailable {
                            var: format!("{}_SECRET_ARN", self.var),
                            source_kind: "Secrets Manager",
                            reason: "no AWSCURRENT version".into(),
                        })?;
                    let previous = self
                        .resolver
                        .secrets_manager_stage(&self.var, id, PREVIOUS_STAGE)
                        .await?;
                    Ok(SecretVersions { current, previous })
                }
                other => Ok(SecretVersions {
                    current: self.resolver.resolve(&self.var, other).await?,
                    previous: None,
                }),
            }
        })
    }
}

/// A secret that never changes (a value given in the environment, tests).
pub struct FixedSecret(pub SecretVersions);

impl FixedSecret {
    pub fn new(secret: Secret) -> Self {
        FixedSecret(SecretVersions {
            current: secret,
            previous: None,
        })
    }
}

impl SecretVersionSource for FixedSecret {
    fn fetch(&self) -> BoxFuture<'_, Result<SecretVersions, ConfigError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}
