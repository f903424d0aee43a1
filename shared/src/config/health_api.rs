//! Configuration of the health API, read once per cold start.

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::log_metrics::RulesSource;
use super::probe::DEFAULT_TABLE_NAME;
use super::secret::SecretSource;

#[derive(Debug, Clone, PartialEq)]
pub struct HealthApiConfig {
    pub table_name: String,
    /// `HEALTH_TOKEN`: bearer token that unlocks details. Unset: no details for anyone.
    pub token: Option<SecretSource>,
    /// A component whose latest result is older than this is unhealthy (`stale`).
    pub stale_after: Duration,
    /// `Cache-Control: max-age` of public answers.
    pub cache_max_age: Duration,
    /// `METRICS_TOKEN`: bearer token `/metrics` requires. Unset: `/metrics`
    /// answers 401 to everyone.
    pub metrics_token: Option<SecretSource>,
    /// The rules whose metrics `/metrics` lists (the ones log-metrics uses).
    pub rules: RulesSource,
    /// `ADMIN_TOKEN`: bearer token `/api/silences` requires. Unset: the
    /// silence routes answer 401 to everyone.
    pub admin_token: Option<SecretSource>,
}

impl HealthApiConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let interval = env.duration_or(
            "PROBE_INTERVAL_SECONDS",
            Duration::from_secs(60),
            Duration::from_secs,
        )?;
        Ok(HealthApiConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            token: SecretSource::from_env(env, "HEALTH_TOKEN")?,
            stale_after: env.duration_or(
                "STALE_AFTER_SECONDS",
                interval * 3,
                Duration::from_secs,
            )?,
            cache_max_age: Duration::from_secs(env.parse_or("HEALTH_CACHE_SECONDS", 10)?),
            metrics_token: SecretSource::from_env(env, "METRICS_TOKEN")?,
            rules: RulesSource::from_env(env)?,
            admin_token: SecretSource::from_env(env, "ADMIN_TOKEN")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_defaults_to_three_probe_intervals() {
        let c = HealthApiConfig::from_env(&Env::from_pairs([("PROBE_INTERVAL_SECONDS", "30")]))
            .unwrap();
        assert_eq!(c.stale_after, Duration::from_secs(90));
        let c = HealthApiConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.stale_after, Duration::from_secs(180));
        assert_eq!(c.cache_max_age, Duration::from_secs(10));
        assert_eq!(c.token, None);
        assert_eq!(c.admin_token, None);
    }

    #[test]
    fn the_admin_token_is_a_secret_like_the_others() {
        let env = Env::from_pairs([("ADMIN_TOKEN_SSM_PARAMETER", "/bx/admin")]);
        let c = HealthApiConfig::from_env(&env).unwrap();
        assert_eq!(
            c.admin_token,
            Some(SecretSource::SsmParameter("/bx/admin".into()))
        );
        let env = Env::from_pairs([("ADMIN_TOKEN", "a"), ("ADMIN_TOKEN_SECRET_ARN", "arn")]);
        assert!(HealthApiConfig::from_env(&env).is_err());
    }

    #[test]
    fn explicit_staleness_wins() {
        let env = Env::from_pairs([("STALE_AFTER_SECONDS", "45"), ("HEALTH_CACHE_SECONDS", "0")]);
        let c = HealthApiConfig::from_env(&env).unwrap();
        assert_eq!(c.stale_after, Duration::from_secs(45));
        assert_eq!(c.cache_max_age, Duration::ZERO);
    }

    #[test]
    fn bad_numbers_are_rejected() {
        let env = Env::from_pairs([("HEALTH_CACHE_SECONDS", "soon")]);
        assert!(HealthApiConfig::from_env(&env).is_err());
    }
}
