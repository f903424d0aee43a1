//! Configuration of the health API, read once per cold start.

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::log_metrics::RulesSource;
use super::probe::DEFAULT_TABLE_NAME;
use super::secret::SecretSource;
use monitoring_core::domain::silence;

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
    /// `TOKEN_REFRESH_SECONDS` (default 300, at least 10): how long the
    /// tokens are used before their source is read again, so a rotation
    /// takes effect without a cold start.
    pub token_refresh: Duration,
    /// `SILENCE_MAX_DURATION_SECONDS` (default 7 days, 60 s to 30 days):
    /// the longest silence.
    pub silence_max_duration: Duration,
    /// `SILENCE_MAX_ACTIVE` (default 50, 1 to 1000): unexpired silences
    /// allowed at once.
    pub silence_max_active: usize,
    /// The alert rules (`ALERT_RULES_FILE` / `ALERT_RULES_SSM_PARAMETER`,
    /// as the alert-evaluator's), so a silence that mutes every rule or a
    /// security rule is recognised.
    pub alert_rules: RulesSource,
}

/// A whole number of seconds from `var`, within `[min, max]`.
fn bounded_seconds(
    env: &Env,
    var: &str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let secs: u64 = env.parse_or(var, default.as_secs())?;
    if secs < min.as_secs() || secs > max.as_secs() {
        return Err(ConfigError::Invalid {
            var: var.into(),
            value: secs.to_string(),
            reason: format!("must be {} to {} seconds", min.as_secs(), max.as_secs()),
        });
    }
    Ok(Duration::from_secs(secs))
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
            token_refresh: bounded_seconds(
                env,
                "TOKEN_REFRESH_SECONDS",
                Duration::from_secs(300),
                Duration::from_secs(10),
                Duration::from_secs(86_400),
            )?,
            silence_max_duration: bounded_seconds(
                env,
                "SILENCE_MAX_DURATION_SECONDS",
                Duration::from_secs(silence::DEFAULT_MAX_DURATION.whole_seconds().unsigned_abs()),
                Duration::from_secs(60),
                Duration::from_secs(silence::MAX_DURATION.whole_seconds().unsigned_abs()),
            )?,
            silence_max_active: {
                let n: usize = env.parse_or("SILENCE_MAX_ACTIVE", silence::DEFAULT_MAX_ACTIVE)?;
                if !(1..=silence::MAX_ACTIVE_CEILING).contains(&n) {
                    return Err(ConfigError::Invalid {
                        var: "SILENCE_MAX_ACTIVE".into(),
                        value: n.to_string(),
                        reason: format!("must be 1 to {}", silence::MAX_ACTIVE_CEILING),
                    });
                }
                n
            },
            alert_rules: RulesSource::from_env_prefixed(env, "ALERT_RULES")?,
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
    fn silence_bounds_and_token_refresh_have_defaults_and_limits() {
        let c = HealthApiConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.token_refresh, Duration::from_secs(300));
        assert_eq!(c.silence_max_duration, Duration::from_secs(7 * 86_400));
        assert_eq!(c.silence_max_active, 50);
        let env = Env::from_pairs([
            ("SILENCE_MAX_DURATION_SECONDS", "3600"),
            ("SILENCE_MAX_ACTIVE", "5"),
            ("TOKEN_REFRESH_SECONDS", "60"),
        ]);
        let c = HealthApiConfig::from_env(&env).unwrap();
        assert_eq!(c.silence_max_duration, Duration::from_secs(3600));
        assert_eq!(c.silence_max_active, 5);
        assert_eq!(c.token_refresh, Duration::from_secs(60));
        for (var, value) in [
            ("SILENCE_MAX_DURATION_SECONDS", "2678400"),
            ("SILENCE_MAX_ACTIVE", "0"),
            ("TOKEN_REFRESH_SECONDS", "1"),
        ] {
            let err = HealthApiConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn bad_numbers_are_rejected() {
        let env = Env::from_pairs([("HEALTH_CACHE_SECONDS", "soon")]);
        assert!(HealthApiConfig::from_env(&env).is_err());
    }
}
