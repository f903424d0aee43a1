//! Configuration of the component probe, read once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::secret::SecretSource;
use monitoring_adapters::probe_runner::ProbeLimits;

pub const DEFAULT_TABLE_NAME: &str = "blindspotx-monitoring";
pub const DEFAULT_METRICS_NAMESPACE: &str = "BlindspotX";
pub const DEFAULT_AUTH_TABLES: &str = "users,roles,permissions,user_roles,role_permissions";

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub table_name: String,
    pub metrics_namespace: String,
    pub limits: ProbeLimits,
    /// How long probe history is kept (DynamoDB TTL).
    pub history_ttl: Duration,
    /// `DATABASE_URL`: the BlindspotX Postgres; unset, the `database`
    /// component is `not_configured`.
    pub database: Option<SecretSource>,
    /// `REDIS_URL`: the BlindspotX Redis; unset, `redis` is `not_configured`.
    pub redis: Option<SecretSource>,
    /// `OIDC_ISSUER` (and `OIDC_DISCOVERY_URL`); unset, `oauth` is
    /// `not_configured`.
    pub oidc: Option<OidcSettings>,
    /// Always configured: the default source needs no setting.
    pub drift: DriftSettings,
    /// With no `CERT_ENDPOINTS`, `certificates` is `not_configured`.
    pub certificates: CertificateSettings,
    /// Tables whose index usage the database probe reports.
    pub auth_tables: Vec<String>,
}

/// Where the drift probe reads the time of the last drift scan (`DRIFT_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftSource {
    /// `logs` (the default; `table` is an alias kept for existing
    /// deployments): the [`monitoring_core::domain::heartbeat::Heartbeat::DriftScan`] item log-metrics keeps in the
    /// monitoring table from the drift job's own log records. Every
    /// BlindspotX deployment writes those records, so this needs no setting.
    Logs,
    /// `sql` (opt-in): `DRIFT_SQL` on the BlindspotX database, for
    /// deployments that record scans in a table of their own. The guide
    /// defines no such table, so there is no default query.
    Sql { query: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftSettings {
    pub source: DriftSource,
    /// Older than this, the drift scanner counts as down.
    pub max_age: Duration,
}

/// The probes' settings types, built here from the environment.
pub use monitoring_adapters::probes::certificates::{CertificateSettings, Endpoint};
pub use monitoring_adapters::probes::oidc::OidcSettings;

impl ProbeConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let limits = ProbeLimits {
            timeout: env.duration_or(
                "PROBE_TIMEOUT_MS",
                ProbeLimits::default().timeout,
                Duration::from_millis,
            )?,
            deadline: env.duration_or(
                "PROBE_DEADLINE_MS",
                ProbeLimits::default().deadline,
                Duration::from_millis,
            )?,
        };
        let oidc = match env.get("OIDC_ISSUER") {
            None => None,
            Some(issuer) => {
                let discovery_url = env.get("OIDC_DISCOVERY_URL").map_or_else(
                    || {
                        format!(
                            "{}/.well-known/openid-configuration",
                            issuer.trim_end_matches('/')
                        )
                    },
                    str::to_owned,
                );
                for (var, url) in [
                    ("OIDC_ISSUER", issuer),
                    ("OIDC_DISCOVERY_URL", &discovery_url),
                ] {
                    require_http_url(var, url)?;
                }
                Some(OidcSettings {
                    issuer: issuer.to_owned(),
                    discovery_url,
                })
            }
        };
        let database = SecretSource::from_env(env, "DATABASE_URL")?;
        let drift_source = match env.get("DRIFT_SOURCE").unwrap_or("logs") {
            "logs" | "table" => DriftSource::Logs,
            // Asked for explicitly, a SQL source that cannot run is a
            // configuration error at cold start, not a component quietly
            // reported as not configured: the operator wanted it checked.
            "sql" => {
                let query = env.get("DRIFT_SQL").ok_or(ConfigError::Missing {
                    var: "DRIFT_SQL".into(),
                    hint: "DRIFT_SOURCE=sql needs the query returning the time of the last drift scan",
                })?;
                if database.is_none() {
                    return Err(ConfigError::Missing {
                        var: "DATABASE_URL".into(),
                        hint: "DRIFT_SOURCE=sql runs DRIFT_SQL on the BlindspotX database",
                    });
                }
                DriftSource::Sql {
                    query: query.to_owned(),
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    var: "DRIFT_SOURCE".into(),
                    value: other.into(),
                    reason: "expected `logs` (the default), `sql`, or `table` (an alias of `logs`)"
                        .into(),
                });
            }
        };
        let warn_days = env.parse_or("CERT_WARN_DAYS", 14.0)?;
        let fail_days = env.parse_or("CERT_FAIL_DAYS", 3.0)?;
        if fail_days > warn_days {
            return Err(ConfigError::Invalid {
                var: "CERT_FAIL_DAYS".into(),
                value: fail_days.to_string(),
                reason: format!("must not exceed CERT_WARN_DAYS ({warn_days})"),
            });
        }
        let auth_tables = match env.list("AUTH_TABLES") {
            tables if tables.is_empty() => {
                DEFAULT_AUTH_TABLES.split(',').map(str::to_owned).collect()
            }
            tables => tables,
        };
        Ok(ProbeConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            metrics_namespace: env.string_or("METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
            limits,
            history_ttl: env.duration_or(
                "PROBE_HISTORY_TTL_DAYS",
                Duration::from_secs(7 * 86_400),
                |d| Duration::from_secs(d * 86_400),
            )?,
            database,
            redis: SecretSource::from_env(env, "REDIS_URL")?,
            oidc,
            drift: DriftSettings {
                source: drift_source,
                max_age: env.duration_or(
                    "DRIFT_MAX_AGE_SECONDS",
                    Duration::from_secs(7200),
                    Duration::from_secs,
                )?,
            },
            certificates: CertificateSettings {
                endpoints: env
                    .list("CERT_ENDPOINTS")
                    .iter()
                    .map(|e| parse_endpoint(e))
                    .collect::<Result<_, _>>()?,
                extra_ca_file: env.get("CERT_EXTRA_CA_FILE").map(PathBuf::from),
                warn_days,
                fail_days,
            },
            auth_tables,
        })
    }
}

fn require_http_url(var: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::Invalid {
            var: var.into(),
            value: url.into(),
            reason: "expected an http(s) URL with a host".into(),
        }),
        Err(e) => Err(ConfigError::Invalid {
            var: var.into(),
            value: url.into(),
            reason: e.to_string(),
        }),
    }
}

/// `host`, `host:port` or `[v6]:port`; the port defaults to 443.
fn parse_endpoint(text: &str) -> Result<Endpoint, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        var: "CERT_ENDPOINTS".into(),
        value: text.into(),
        reason: reason.into(),
    };
    if text.contains('/') {
        return Err(invalid("expected host[:port]"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("unclosed `[`"))?;
        let port = after.strip_prefix(':');
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("expected host[:port]"));
    }
    // The certificates probe connects by this name: reject at load what no
    // TLS connection could use, rather than fail every probe run.
    if rustls_pki_types::ServerName::try_from(host).is_err() {
        return Err(invalid("expected a DNS name or an IP address"));
    }
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("port must be 1-65535"))?,
    };
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn defaults() {
        let c = ProbeConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.table_name, DEFAULT_TABLE_NAME);
        assert_eq!(c.limits, ProbeLimits::default());
        assert_eq!(c.database, None);
        assert_eq!(c.redis, None);
        assert_eq!(c.oidc, None);
        // The drift job's own log records, which every deployment has.
        assert_eq!(c.drift.source, DriftSource::Logs);
        assert_eq!(c.drift.max_age, Duration::from_secs(7200));
        assert!(c.certificates.endpoints.is_empty());
        assert_eq!(c.auth_tables.len(), 5);
    }

    #[test]
    fn reads_everything() {
        let env = Env::from_pairs([
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("REDIS_URL_SECRET_ARN", "arn:redis"),
            ("OIDC_ISSUER", "https://login.example.com/tenant/v2.0/"),
            ("DRIFT_SOURCE", "sql"),
            ("DRIFT_SQL", "SELECT max(ended) FROM scans"),
            ("DRIFT_MAX_AGE_SECONDS", "600"),
            (
                "CERT_ENDPOINTS",
                "a.example.com, b.example.com:8443,[::1]:9443",
            ),
            ("PROBE_TIMEOUT_MS", "500"),
            ("AUTH_TABLES", "users"),
        ]);
        let c = ProbeConfig::from_env(&env).unwrap();
        assert_eq!(
            c.database,
            Some(SecretSource::Plain(Secret::new("postgres://u:p@h/db")))
        );
        assert_eq!(
            c.redis,
            Some(SecretSource::SecretsManager("arn:redis".into()))
        );
        let oidc = c.oidc.unwrap();
        assert_eq!(
            oidc.discovery_url,
            "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            c.drift.source,
            DriftSource::Sql {
                query: "SELECT max(ended) FROM scans".into()
            }
        );
        assert_eq!(c.drift.max_age, Duration::from_secs(600));
        let eps: Vec<String> = c
            .certificates
            .endpoints
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(eps, ["a.example.com:443", "b.example.com:8443", "::1:9443"]);
        assert_eq!(c.limits.timeout, Duration::from_millis(500));
        assert_eq!(c.auth_tables, ["users"]);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            (
                "DRIFT_SOURCE",
                "kafka",
                "DRIFT_SOURCE=\"kafka\" is invalid: expected `logs` (the default), `sql`, or `table` (an alias of `logs`)",
            ),
            (
                "CERT_ENDPOINTS",
                "h:99999",
                "CERT_ENDPOINTS=\"h:99999\" is invalid: port must be 1-65535",
            ),
            (
                "CERT_ENDPOINTS",
                "https://h/",
                "CERT_ENDPOINTS=\"https://h/\" is invalid: expected host[:port]",
            ),
            (
                "CERT_ENDPOINTS",
                "bad name:443",
                "CERT_ENDPOINTS=\"bad name:443\" is invalid: expected a DNS name or an IP address",
            ),
            (
                "PROBE_TIMEOUT_MS",
                "-1",
                "PROBE_TIMEOUT_MS=\"-1\" is invalid: expected a whole number greater than zero",
            ),
            (
                "OIDC_ISSUER",
                "ftp://x",
                "OIDC_ISSUER=\"ftp://x\" is invalid: expected an http(s) URL with a host",
            ),
        ];
        for (var, value, message) in cases {
            let err = ProbeConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn logs_and_its_alias_table_read_the_heartbeat() {
        for value in ["logs", "table"] {
            let env = Env::from_pairs([("DRIFT_SOURCE", value), ("DRIFT_SQL", "SELECT 1")]);
            let c = ProbeConfig::from_env(&env).unwrap();
            assert_eq!(c.drift.source, DriftSource::Logs, "{value}");
        }
    }

    /// `sql` is an opt-in: without its query or its database it cannot
    /// run, and saying so at cold start beats a component that silently
    /// stops being checked.
    #[test]
    fn sql_needs_a_query_and_a_database() {
        let err = ProbeConfig::from_env(&Env::from_pairs([
            ("DRIFT_SOURCE", "sql"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { var, .. } if var == "DRIFT_SQL"),
            "{err}"
        );
        let err = ProbeConfig::from_env(&Env::from_pairs([
            ("DRIFT_SOURCE", "sql"),
            ("DRIFT_SQL", "SELECT max(ended) FROM scans"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { var, .. } if var == "DATABASE_URL"),
            "{err}"
        );
        // Any form of the secret will do.
        let c = ProbeConfig::from_env(&Env::from_pairs([
            ("DRIFT_SOURCE", "sql"),
            ("DRIFT_SQL", "SELECT max(ended) FROM scans"),
            ("DATABASE_URL_SECRET_ARN", "arn:db"),
        ]))
        .unwrap();
        assert!(matches!(c.drift.source, DriftSource::Sql { .. }));
    }

    #[test]
    fn fail_days_cannot_exceed_warn_days() {
        let env = Env::from_pairs([("CERT_WARN_DAYS", "2"), ("CERT_FAIL_DAYS", "5")]);
        assert!(ProbeConfig::from_env(&env).is_err());
    }
}
