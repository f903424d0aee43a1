//! Configuration of the component probe, read once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::secret::SecretSource;
use crate::domain::probe_runner::ProbeLimits;

pub const DEFAULT_TABLE_NAME: &str = "blindspotx-monitoring";
pub const DEFAULT_METRICS_NAMESPACE: &str = "BlindspotX";
pub const DEFAULT_DRIFT_SQL: &str = "SELECT max(finished_at) FROM drift_scans";
pub const DEFAULT_AUTH_TABLES: &str = "users,roles,permissions,user_roles,role_permissions";
/// The heartbeat the drift scanner's "scan completed" log records keep fresh.
pub const DRIFT_HEARTBEAT: &str = "drift_scan";

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub table_name: String,
    pub metrics_namespace: String,
    pub limits: ProbeLimits,
    /// How long probe history is kept (DynamoDB TTL).
    pub history_ttl: Duration,
    /// `DATABASE_URL`: the BlindspotX Postgres.
    pub database: Option<SecretSource>,
    /// `REDIS_URL`: the BlindspotX Redis.
    pub redis: Option<SecretSource>,
    pub oidc: Option<OidcSettings>,
    pub drift: DriftSettings,
    pub certificates: CertificateSettings,
    /// Tables whose index usage the database probe reports.
    pub auth_tables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer the discovery document must name.
    pub issuer: String,
    pub discovery_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftSource {
    /// A query on the BlindspotX database returning the last scan time.
    Sql { query: String },
    /// The `drift_scan` heartbeat item in the monitoring table.
    Table,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftSettings {
    pub source: DriftSource,
    /// Older than this, the drift scanner counts as down.
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateSettings {
    pub endpoints: Vec<Endpoint>,
    /// PEM file of extra trusted CAs (private CAs, the local stack).
    pub extra_ca_file: Option<PathBuf>,
    pub warn_days: f64,
    pub fail_days: f64,
}

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
        let drift_source = match env.get("DRIFT_SOURCE").unwrap_or("sql") {
            "sql" => DriftSource::Sql {
                query: env.string_or("DRIFT_SQL", DEFAULT_DRIFT_SQL),
            },
            "table" => DriftSource::Table,
            other => {
                return Err(ConfigError::Invalid {
                    var: "DRIFT_SOURCE".into(),
                    value: other.into(),
                    reason: "expected `sql` or `table`".into(),
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
            database: SecretSource::from_env(env, "DATABASE_URL")?,
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
    use crate::config::secret::Secret;

    #[test]
    fn defaults() {
        let c = ProbeConfig::from_env(&Env::default()).unwrap();
        assert_eq!(c.table_name, DEFAULT_TABLE_NAME);
        assert_eq!(c.limits, ProbeLimits::default());
        assert_eq!(c.database, None);
        assert_eq!(c.oidc, None);
        assert_eq!(
            c.drift.source,
            DriftSource::Sql {
                query: DEFAULT_DRIFT_SQL.into()
            }
        );
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
            ("DRIFT_SOURCE", "table"),
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
        assert_eq!(c.drift.source, DriftSource::Table);
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
                "DRIFT_SOURCE=\"kafka\" is invalid: expected `sql` or `table`",
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
    fn fail_days_cannot_exceed_warn_days() {
        let env = Env::from_pairs([("CERT_WARN_DAYS", "2"), ("CERT_FAIL_DAYS", "5")]);
        assert!(ProbeConfig::from_env(&env).is_err());
    }
}
