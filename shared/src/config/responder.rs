//! Configuration of security-responder, read once per cold start.
//!
//! Dry-run unless `RESPONDER_MODE=enforce`. Credentials (`REVOKE_REDIS_URL`,
//! `REVOKE_CREDENTIAL`) are secrets: `NAME`, `NAME_SECRET_ARN` or
//! `NAME_SSM_PARAMETER`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::probe::DEFAULT_TABLE_NAME;
use super::secret::SecretSource;
use crate::adapters::redis_revoker::RedisRevokerSettings;
use crate::adapters::webhook_http::RetryPolicy;
use crate::domain::response::{Guardrails, Mode};

/// Which revoker the responder uses (`REVOKER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokerConfig {
    /// `none`: notify and record only.
    None,
    /// `redis`: delete refresh-token keys, write deny-list entries.
    Redis {
        url: SecretSource,
        settings: RedisRevokerSettings,
    },
    /// `http`: POST the auth service's revoke endpoint.
    Http {
        endpoint: String,
        credential: SecretSource,
        retry: RetryPolicy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// `TABLE_NAME`: claims, hourly counters, response records.
    pub table_name: String,
    /// `RESPONDER_MODE` (`dry-run` default, `enforce`),
    /// `MAX_REVOCATIONS_PER_INCIDENT` (5), `MAX_REVOCATIONS_PER_HOUR` (20),
    /// `PROTECTED_PRINCIPALS` (comma-separated user ids, never revoked),
    /// `REVOKE_USER_KEY_NAMES` (`user`).
    pub guardrails: Guardrails,
    pub revoker: RevokerConfig,
    /// `SECURITY_TOPIC_ARN`: the security team's SNS topic (optional: without
    /// it the record and the audit log are the notification).
    pub security_topic_arn: Option<String>,
    /// `RESPONSE_LEASE_SECONDS` (120): how long a claim on an incident holds
    /// before a retry may take it over.
    pub claim_lease: Duration,
}

impl ResponderConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env
            .get("RESPONDER_MODE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("dry-run" | "dry_run" | "dryrun") => Mode::DryRun,
            Some("enforce") => Mode::Enforce,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "RESPONDER_MODE".into(),
                    value: other.to_owned(),
                    reason: "expected dry-run or enforce".into(),
                });
            }
        };
        let defaults = Guardrails::default();
        let user_key_names = match env.list("REVOKE_USER_KEY_NAMES") {
            v if v.is_empty() => defaults.user_key_names.clone(),
            v => v,
        };
        let guardrails = Guardrails {
            mode,
            max_per_incident: env
                .parse_or("MAX_REVOCATIONS_PER_INCIDENT", defaults.max_per_incident)?,
            max_per_hour: env.parse_or("MAX_REVOCATIONS_PER_HOUR", defaults.max_per_hour)?,
            protected: env
                .list("PROTECTED_PRINCIPALS")
                .into_iter()
                .collect::<BTreeSet<_>>(),
            user_key_names,
        };
        let revoker = match env.get("REVOKER").unwrap_or("none") {
            "none" => RevokerConfig::None,
            "redis" => {
                let d = RedisRevokerSettings::default();
                RevokerConfig::Redis {
                    url: SecretSource::from_env(env, "REVOKE_REDIS_URL")?.ok_or(
                        ConfigError::Missing {
                            var: "REVOKE_REDIS_URL".into(),
                            hint: "the auth service's Redis URL (redis:// or rediss://), as REVOKE_REDIS_URL, _SECRET_ARN or _SSM_PARAMETER",
                        },
                    )?,
                    settings: RedisRevokerSettings {
                        token_prefix: env.string_or("REVOKE_TOKEN_PREFIX", &d.token_prefix),
                        deny_prefix: env.string_or("REVOKE_DENY_PREFIX", &d.deny_prefix),
                        deny_ttl: env.duration_or(
                            "REVOKE_DENY_TTL_SECONDS",
                            d.deny_ttl,
                            Duration::from_secs,
                        )?,
                        timeout: d.timeout,
                    },
                }
            }
            "http" => {
                let endpoint = env
                    .get("REVOKE_ENDPOINT_URL")
                    .ok_or(ConfigError::Missing {
                        var: "REVOKE_ENDPOINT_URL".into(),
                        hint: "the auth service's revoke endpoint (https://.../revoke)",
                    })?
                    .to_owned();
                if reqwest::Url::parse(&endpoint).is_err() {
                    return Err(ConfigError::Invalid {
                        var: "REVOKE_ENDPOINT_URL".into(),
                        value: endpoint,
                        reason: "expected an http(s) URL".into(),
                    });
                }
                RevokerConfig::Http {
                    endpoint,
                    credential: SecretSource::from_env(env, "REVOKE_CREDENTIAL")?.ok_or(
                        ConfigError::Missing {
                            var: "REVOKE_CREDENTIAL".into(),
                            hint: "the service credential (bearer token) of the revoke endpoint, as REVOKE_CREDENTIAL, _SECRET_ARN or _SSM_PARAMETER",
                        },
                    )?,
                    retry: RetryPolicy {
                        attempts: env.parse_or("REVOKE_ATTEMPTS", 3u32)?.clamp(1, 10),
                        backoff: env.duration_or(
                            "REVOKE_BACKOFF_MS",
                            Duration::from_millis(500),
                            Duration::from_millis,
                        )?,
                        timeout: Duration::from_secs(5),
                    },
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    var: "REVOKER".into(),
                    value: other.to_owned(),
                    reason: "expected none, redis or http".into(),
                });
            }
        };
        if mode == Mode::Enforce && revoker == RevokerConfig::None {
            return Err(ConfigError::Invalid {
                var: "RESPONDER_MODE".into(),
                value: "enforce".into(),
                reason: "enforce needs REVOKER=redis or REVOKER=http".into(),
            });
        }
        let security_topic_arn = env.get("SECURITY_TOPIC_ARN").map(str::to_owned);
        if let Some(arn) = &security_topic_arn
            && (!arn.starts_with("arn:") || arn.split(':').count() != 6)
        {
            return Err(ConfigError::Invalid {
                var: "SECURITY_TOPIC_ARN".into(),
                value: arn.clone(),
                reason: "expected an SNS topic ARN".into(),
            });
        }
        Ok(ResponderConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            guardrails,
            revoker,
            security_topic_arn,
            claim_lease: env.duration_or(
                "RESPONSE_LEASE_SECONDS",
                Duration::from_secs(120),
                Duration::from_secs,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_with_no_revoker_by_default() {
        let c = ResponderConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.guardrails.mode, Mode::DryRun);
        assert_eq!(c.revoker, RevokerConfig::None);
        assert_eq!(c.guardrails.max_per_hour, 20);
        assert_eq!(c.guardrails.user_key_names, ["user"]);
    }

    #[test]
    fn enforce_with_redis() {
        let c = ResponderConfig::from_env(&Env::from_pairs([
            ("RESPONDER_MODE", "enforce"),
            ("REVOKER", "redis"),
            ("REVOKE_REDIS_URL", "redis://127.0.0.1:6379"),
            ("PROTECTED_PRINCIPALS", "break-glass, admin"),
            ("MAX_REVOCATIONS_PER_HOUR", "2"),
        ]))
        .unwrap();
        assert_eq!(c.guardrails.mode, Mode::Enforce);
        assert!(c.guardrails.is_protected("ADMIN"));
        assert_eq!(c.guardrails.max_per_hour, 2);
        assert!(matches!(c.revoker, RevokerConfig::Redis { .. }));
    }

    #[test]
    fn refusals() {
        for pairs in [
            vec![("RESPONDER_MODE", "yes")],
            vec![("RESPONDER_MODE", "enforce")],
            vec![("REVOKER", "redis")],
            vec![("REVOKER", "http"), ("REVOKE_CREDENTIAL", "t")],
            vec![
                ("REVOKER", "http"),
                ("REVOKE_ENDPOINT_URL", "https://a/revoke"),
            ],
            vec![("REVOKER", "ldap")],
            vec![("SECURITY_TOPIC_ARN", "topic")],
        ] {
            assert!(
                ResponderConfig::from_env(&Env::from_pairs(pairs.clone())).is_err(),
                "{pairs:?}"
            );
        }
    }
}
