//! Secret configuration values: given directly in the environment (local
//! stack), or as a reference to Secrets Manager or SSM Parameter Store (AWS).

use std::fmt;

use super::env::{ConfigError, Env};

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `NAME` itself holds the value.
    Plain(Secret),
    /// `NAME_SECRET_ARN` names a Secrets Manager secret whose SecretString is the value.
    SecretsManager(String),
    /// `NAME_SSM_PARAMETER` names an SSM (SecureString) parameter.
    SsmParameter(String),
}

impl SecretSource {
    /// Finds how `name` is configured; `None` when it is not at all.
    pub fn from_env(env: &Env, name: &str) -> Result<Option<Self>, ConfigError> {
        let arn_var = format!("{name}_SECRET_ARN");
        let ssm_var = format!("{name}_SSM_PARAMETER");
        let found: Vec<SecretSource> = [
            env.get(name).map(|v| SecretSource::Plain(Secret::new(v))),
            env.get(&arn_var)
                .map(|v| SecretSource::SecretsManager(v.to_owned())),
            env.get(&ssm_var)
                .map(|v| SecretSource::SsmParameter(v.to_owned())),
        ]
        .into_iter()
        .flatten()
        .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            _ => Err(ConfigError::Conflict {
                var: name.to_owned(),
                choices: format!("{name}, {arn_var}, {ssm_var}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let src = SecretSource::Plain(s);
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn finds_each_source() {
        let env = Env::from_pairs([
            ("A", "v"),
            (
                "B_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:b",
            ),
            ("C_SSM_PARAMETER", "/x/c"),
        ]);
        assert_eq!(
            SecretSource::from_env(&env, "A").unwrap(),
            Some(SecretSource::Plain(Secret::new("v")))
        );
        assert!(matches!(
            SecretSource::from_env(&env, "B").unwrap(),
            Some(SecretSource::SecretsManager(_))
        ));
        assert_eq!(
            SecretSource::from_env(&env, "C").unwrap(),
            Some(SecretSource::SsmParameter("/x/c".into()))
        );
        assert_eq!(SecretSource::from_env(&env, "D").unwrap(), None);
    }

    #[test]
    fn two_sources_conflict() {
        let env = Env::from_pairs([("A", "v"), ("A_SSM_PARAMETER", "/a")]);
        let err = SecretSource::from_env(&env, "A").unwrap_err();
        assert_eq!(
            err.to_string(),
            "A: set only one of A, A_SECRET_ARN, A_SSM_PARAMETER"
        );
    }
}
