//! Configuration of security-responder, read once per cold start.
//!
//! Dry-run unless `RESPONDER_MODE=enforce`. The default revoker writes the
//! row BlindspotX checks into its `blocklistedtoken` table
//! (`REVOKER=blocklist`, docs/response.md). Credentials
//! (`BLOCKLIST_DATABASE_URL`, `REVOKE_CREDENTIAL`) are secrets: `NAME`,
//! `NAME_SECRET_ARN` or `NAME_SSM_PARAMETER`.
//!
//! `INCIDENTS_TOPIC_ARN` is required everywhere, locally too: a record of
//! any other topic is refused, and there is no "accept any topic" value.
//! Enforce mode also requires `PROTECTED_PRINCIPALS`, given explicitly
//! (`none` for an empty list), so a missing setting never means "anyone
//! may be revoked".

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::probe::DEFAULT_TABLE_NAME;
use super::secret::SecretSource;
use monitoring_adapters::blocklist_revoker::BlocklistSettings;
use monitoring_adapters::webhook_http::RetryPolicy;
use monitoring_core::domain::security_response::{Guardrails, Mode};

/// The value of `PROTECTED_PRINCIPALS` that says "nobody is protected".
pub const NO_PROTECTED_PRINCIPALS: &str = "none";
/// Longest `RESPONDER_USER_COOLDOWN_SECONDS`: 30 days.
const MAX_COOLDOWN_SECS: u64 = 30 * 24 * 3600;

/// Shortest and longest `BLOCKLIST_LIFETIME_SECONDS`: an hour (anything
/// shorter outlives no refresh token) to ten years.
const LIFETIME_RANGE: (u64, u64) = (3600, 10 * 365 * 24 * 3600);

/// Which revoker the responder uses (`REVOKER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokerConfig {
    /// `none`: notify and record only.
    None,
    /// `blocklist` (the default): a row in the service's `blocklistedtoken`
    /// table, read back and checked the way the service checks tokens.
    Blocklist {
        /// `BLOCKLIST_DATABASE_URL` (or `_SECRET_ARN`, `_SSM_PARAMETER`):
        /// the service's database as a role with `INSERT, SELECT` on that
        /// table only. Required in enforce mode; a dry run without it shows
        /// the rows it would write and touches no database.
        database: Option<SecretSource>,
        /// `BLOCKLIST_DATABASE_CA_FILE`: PEM of extra trusted CAs (a private
        /// or the RDS CA), beside the Mozilla roots.
        ca_file: Option<PathBuf>,
        /// `BLOCKLIST_LIFETIME_SECONDS` (one year): `expires_at` after
        /// `created_at`; at least the service's refresh-token lifetime.
        settings: BlocklistSettings,
    },
    /// `http`: POST the auth service's revoke endpoint (for services that
    /// expose one; BlindspotX itself does not, see docs/response.md).
    Http {
        endpoint: String,
        credential: SecretSource,
        retry: RetryPolicy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// `TABLE_NAME`: incidents (read), claims, hourly counters, cooldowns,
    /// response records.
    pub table_name: String,
    /// `INCIDENTS_TOPIC_ARN` (required): only its records are read.
    pub incidents_topic_arn: String,
    /// `RESPONDER_MODE` (`dry-run` default, `enforce`),
    /// `MAX_REVOCATIONS_PER_INCIDENT` (5), `MAX_REVOCATIONS_PER_HOUR` (20,
    /// per rule), `PROTECTED_PRINCIPALS` (comma-separated user ids, never
    /// revoked; `none` for nobody; required in enforce mode),
    /// `REVOKE_USER_KEY_NAMES` (`user`), `RESPONDER_RULES` (the rules that
    /// may revoke, default `suspected_compromise,suspected_compromise_by_ip`),
    /// `RESPONDER_USER_COOLDOWN_SECONDS` (86400: one revocation per user per
    /// period; 0 to 2592000).
    pub guardrails: Guardrails,
    /// `REVOKER`: `blocklist` (default), `http` or `none`.
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
        let protected = env.list("PROTECTED_PRINCIPALS");
        if protected.is_empty() && mode == Mode::Enforce {
            return Err(ConfigError::Missing {
                var: "PROTECTED_PRINCIPALS".into(),
                hint: "enforce mode needs the user ids that are never revoked (break-glass and \
                       service accounts), comma-separated, or `none` to say that nobody is",
            });
        }
        let none = protected
            .iter()
            .any(|p| p.eq_ignore_ascii_case(NO_PROTECTED_PRINCIPALS));
        if none && protected.len() > 1 {
            return Err(ConfigError::Invalid {
                var: "PROTECTED_PRINCIPALS".into(),
                value: protected.join(","),
                reason: "`none` stands alone: either user ids or `none`".into(),
            });
        }
        let rules = match env.list("RESPONDER_RULES") {
            v if v.is_empty() => defaults.rules.clone(),
            v => v,
        };
        let user_cooldown = env.duration_or(
            "RESPONDER_USER_COOLDOWN_SECONDS",
            defaults.user_cooldown,
            Duration::from_secs,
        )?;
        if user_cooldown.as_secs() > MAX_COOLDOWN_SECS {
            return Err(ConfigError::Invalid {
                var: "RESPONDER_USER_COOLDOWN_SECONDS".into(),
                value: user_cooldown.as_secs().to_string(),
                reason: format!("expected 0 to {MAX_COOLDOWN_SECS} seconds"),
            });
        }
        let guardrails = Guardrails {
            mode,
            max_per_incident: env
                .parse_or("MAX_REVOCATIONS_PER_INCIDENT", defaults.max_per_incident)?,
            max_per_hour: env.parse_or("MAX_REVOCATIONS_PER_HOUR", defaults.max_per_hour)?,
            protected: if none {
                BTreeSet::new()
            } else {
                protected.into_iter().collect()
            },
            user_key_names,
            rules,
            user_cooldown,
        };
        let revoker = match env.get("REVOKER").unwrap_or("blocklist") {
            "none" => RevokerConfig::None,
            "blocklist" => {
                let d = BlocklistSettings::default();
                let lifetime = env.duration_or(
                    "BLOCKLIST_LIFETIME_SECONDS",
                    d.lifetime,
                    Duration::from_secs,
                )?;
                if !(LIFETIME_RANGE.0..=LIFETIME_RANGE.1).contains(&lifetime.as_secs()) {
                    return Err(ConfigError::Invalid {
                        var: "BLOCKLIST_LIFETIME_SECONDS".into(),
                        value: lifetime.as_secs().to_string(),
                        reason: format!(
                            "expected {} to {} seconds, at least the service's refresh-token lifetime",
                            LIFETIME_RANGE.0, LIFETIME_RANGE.1
                        ),
                    });
                }
                RevokerConfig::Blocklist {
                    database: SecretSource::from_env(env, "BLOCKLIST_DATABASE_URL")?,
                    ca_file: env.get("BLOCKLIST_DATABASE_CA_FILE").map(PathBuf::from),
                    settings: BlocklistSettings {
                        lifetime,
                        timeout: d.timeout,
                    },
                }
            }
            "redis" => {
                return Err(ConfigError::Invalid {
                    var: "REVOKER".into(),
                    value: "redis".into(),
                    reason: "the redis revoker is gone: BlindspotX keeps revocations in its \
                             blocklistedtoken table and never reads Redis revocation keys, so it \
                             revoked nothing; use REVOKER=blocklist with BLOCKLIST_DATABASE_URL \
                             (docs/response.md)"
                        .into(),
                });
            }
            "http" => {
                let endpoint = env
                    .get("REVOKE_ENDPOINT_URL")
                    .ok_or(ConfigError::Missing {
                        var: "REVOKE_ENDPOINT_URL".into(),
                        hint: "the auth service's revoke endpoint (https://.../revoke)",
                    })?
                    .to_owned();
                if let Err(reason) = monitoring_adapters::http_revoker::check_endpoint(&endpoint) {
                    return Err(ConfigError::Invalid {
                        var: "REVOKE_ENDPOINT_URL".into(),
                        value: endpoint,
                        reason,
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
                    reason: "expected blocklist, http or none".into(),
                });
            }
        };
        match &revoker {
            RevokerConfig::None if mode == Mode::Enforce => {
                return Err(ConfigError::Invalid {
                    var: "RESPONDER_MODE".into(),
                    value: "enforce".into(),
                    reason: "enforce needs REVOKER=blocklist or REVOKER=http".into(),
                });
            }
            RevokerConfig::Blocklist { database: None, .. } if mode == Mode::Enforce => {
                return Err(ConfigError::Missing {
                    var: "BLOCKLIST_DATABASE_URL".into(),
                    hint: "enforce mode writes the service's blocklistedtoken table: its database \
                           as a role with INSERT, SELECT on that table, as BLOCKLIST_DATABASE_URL, \
                           _SECRET_ARN or _SSM_PARAMETER",
                });
            }
            _ => {}
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
            incidents_topic_arn: super::incidents_topic_arn(env)?,
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

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:blindspotx-incidents";

    /// `pairs` with the incidents topic.
    fn env<const N: usize>(pairs: [(&'static str, &'static str); N]) -> Env {
        Env::from_pairs(
            pairs
                .into_iter()
                .chain([("INCIDENTS_TOPIC_ARN", TOPIC)])
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn dry_run_with_the_blocklist_by_default() {
        let c = ResponderConfig::from_env(&env([])).unwrap();
        assert_eq!(c.incidents_topic_arn, TOPIC);
        assert_eq!(
            c.guardrails.rules,
            ["suspected_compromise", "suspected_compromise_by_ip"]
        );
        assert_eq!(c.guardrails.user_cooldown, Duration::from_secs(86_400));
        assert!(c.guardrails.protected.is_empty());
        assert_eq!(c.guardrails.mode, Mode::DryRun);
        assert_eq!(
            c.revoker,
            RevokerConfig::Blocklist {
                database: None,
                ca_file: None,
                settings: BlocklistSettings::default(),
            }
        );
        assert_eq!(
            BlocklistSettings::default().lifetime,
            Duration::from_secs(365 * 24 * 3600)
        );
        assert_eq!(c.guardrails.max_per_hour, 20);
        assert_eq!(c.guardrails.user_key_names, ["user"]);
    }

    #[test]
    fn enforce_with_the_blocklist() {
        let c = ResponderConfig::from_env(&env([
            ("RESPONDER_MODE", "enforce"),
            ("RESPONDER_RULES", "suspected_compromise"),
            ("RESPONDER_USER_COOLDOWN_SECONDS", "3600"),
            (
                "BLOCKLIST_DATABASE_URL_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:b",
            ),
            ("BLOCKLIST_LIFETIME_SECONDS", "1209600"),
            ("PROTECTED_PRINCIPALS", "break-glass, admin"),
            ("MAX_REVOCATIONS_PER_HOUR", "2"),
        ]))
        .unwrap();
        assert_eq!(c.guardrails.mode, Mode::Enforce);
        assert!(c.guardrails.is_protected("ADMIN"));
        assert_eq!(c.guardrails.max_per_hour, 2);
        assert_eq!(c.guardrails.rules, ["suspected_compromise"]);
        assert_eq!(c.guardrails.user_cooldown, Duration::from_secs(3600));
        let RevokerConfig::Blocklist {
            database, settings, ..
        } = c.revoker
        else {
            panic!("{:?}", c.revoker);
        };
        assert!(matches!(database, Some(SecretSource::SecretsManager(_))));
        assert_eq!(settings.lifetime, Duration::from_secs(1_209_600));
    }

    #[test]
    fn enforce_needs_protected_principals_spelled_out() {
        let db = (
            "BLOCKLIST_DATABASE_URL_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:b",
        );
        let missing = ResponderConfig::from_env(&env([("RESPONDER_MODE", "enforce"), db]))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("PROTECTED_PRINCIPALS is required"),
            "{missing}"
        );
        assert!(missing.contains("`none`"), "{missing}");
        for blank in ["", " , "] {
            assert!(
                ResponderConfig::from_env(&env([
                    ("RESPONDER_MODE", "enforce"),
                    db,
                    ("PROTECTED_PRINCIPALS", blank)
                ]))
                .is_err(),
                "{blank:?}"
            );
        }
        let none = ResponderConfig::from_env(&env([
            ("RESPONDER_MODE", "enforce"),
            db,
            ("PROTECTED_PRINCIPALS", "NONE"),
        ]))
        .unwrap();
        assert!(none.guardrails.protected.is_empty());
        assert!(!none.guardrails.is_protected("none"));
        assert!(
            ResponderConfig::from_env(&env([
                ("RESPONDER_MODE", "enforce"),
                db,
                ("PROTECTED_PRINCIPALS", "none,admin"),
            ]))
            .is_err()
        );
    }

    #[test]
    fn the_incidents_topic_is_required_everywhere() {
        let missing = ResponderConfig::from_env(&Env::default())
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("INCIDENTS_TOPIC_ARN is required"),
            "{missing}"
        );
        for bad in [
            "topic",
            "arn:aws:sqs:eu-west-1:1:q",
            "arn:aws:sns:eu-west-1:1",
        ] {
            assert!(
                ResponderConfig::from_env(&Env::from_pairs([("INCIDENTS_TOPIC_ARN", bad)]))
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn refusals() {
        for pairs in [
            vec![("RESPONDER_MODE", "yes")],
            vec![
                ("RESPONDER_MODE", "enforce"),
                ("PROTECTED_PRINCIPALS", "none"),
            ],
            vec![
                ("RESPONDER_MODE", "enforce"),
                ("PROTECTED_PRINCIPALS", "none"),
                ("REVOKER", "none"),
            ],
            vec![("REVOKER", "redis"), ("REVOKE_REDIS_URL", "redis://h:6379")],
            vec![("BLOCKLIST_LIFETIME_SECONDS", "60")],
            vec![
                ("BLOCKLIST_DATABASE_URL", "postgres://a@h/db"),
                ("BLOCKLIST_DATABASE_URL_SSM_PARAMETER", "/x"),
            ],
            vec![("REVOKER", "http"), ("REVOKE_CREDENTIAL", "t")],
            vec![
                ("REVOKER", "http"),
                ("REVOKE_ENDPOINT_URL", "https://a/revoke"),
            ],
            vec![("REVOKER", "ldap")],
            vec![("SECURITY_TOPIC_ARN", "topic")],
            vec![("RESPONDER_USER_COOLDOWN_SECONDS", "2592001")],
            vec![("RESPONDER_USER_COOLDOWN_SECONDS", "-1")],
        ] {
            let mut pairs = pairs.clone();
            pairs.push(("INCIDENTS_TOPIC_ARN", TOPIC));
            assert!(
                ResponderConfig::from_env(&Env::from_pairs(pairs.clone())).is_err(),
                "{pairs:?}"
            );
        }
        let redis = ResponderConfig::from_env(&env([("REVOKER", "redis")]))
            .unwrap_err()
            .to_string();
        assert!(redis.contains("blocklistedtoken"), "{redis}");
        let enforce = ResponderConfig::from_env(&env([
            ("RESPONDER_MODE", "enforce"),
            ("PROTECTED_PRINCIPALS", "none"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            enforce.starts_with("BLOCKLIST_DATABASE_URL is required"),
            "{enforce}"
        );
    }
}
