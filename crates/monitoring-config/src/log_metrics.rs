//! Configuration of the log-metrics function, read once per cold start.

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::probe::{DEFAULT_METRICS_NAMESPACE, DEFAULT_TABLE_NAME};
use super::secret::SecretSource;
use monitoring_core::domain::logs::decode::DEFAULT_MAX_DECOMPRESSED_BYTES;
use monitoring_core::domain::logs::parse::{
    DEFAULT_MAX_EVENT_BYTES, ParseSettings, TimeBounds, parse_utc_offset,
};
use monitoring_core::domain::metrics::aggregate::DEFAULT_MAX_SERIES_PER_METRIC;

/// Where a rule file comes from: the loader's type, read from the
/// environment by [`RulesSource::from_env`].
pub use monitoring_adapters::rules_loader::RulesSource;

#[derive(Debug, Clone, PartialEq)]
pub struct LogMetricsConfig {
    pub table_name: String,
    /// Namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// `REDACTION_KEY`: keys the HMAC pseudonyms of emails and IPs. Required:
    /// without it, pseudonyms would be guessable.
    pub redaction_key: SecretSource,
    pub rules: RulesSource,
    pub max_series_per_metric: usize,
    /// `MAX_EVENT_BYTES` (events past it are cut and still evaluated),
    /// `LOG_TIMEZONE` (the zone of text records' timestamps: `UTC`,
    /// `+02:00`; default UTC), `RECORD_TIME_MAX_BEHIND_SECONDS` (86400) and
    /// `RECORD_TIME_MAX_AHEAD_SECONDS` (300): how far a record's own time
    /// may lie from its CloudWatch time before the latter is used.
    pub parse: ParseSettings,
    pub max_decompressed_bytes: usize,
    /// How long a batch's idempotency marker is kept: longer than Lambda
    /// retries a batch and than the failure queue keeps it for a redrive
    /// ([`FAILURE_QUEUE_RETENTION`]), so a redriven batch still finds the
    /// chunks it had stored.
    pub batch_marker_ttl: Duration,
}

/// `MessageRetentionPeriod` of the log-metrics failure queue in
/// template.yaml (14 days, SQS's longest): a batch can be redriven that
/// long after it failed.
pub const FAILURE_QUEUE_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
/// The default marker lifetime: the queue's retention and a day to spare
/// (Lambda's own retries, up to six hours, come before the queue).
pub const DEFAULT_BATCH_MARKER_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

/// `BATCH_MARKER_TTL_HOURS`, refused when a batch could outlive its
/// markers in the failure queue (a redrive would then store it twice).
fn marker_ttl(env: &Env) -> Result<Duration, ConfigError> {
    let ttl = env.duration_or("BATCH_MARKER_TTL_HOURS", DEFAULT_BATCH_MARKER_TTL, |h| {
        Duration::from_secs(h.saturating_mul(3600))
    })?;
    if ttl <= FAILURE_QUEUE_RETENTION {
        return Err(ConfigError::Invalid {
            var: "BATCH_MARKER_TTL_HOURS".into(),
            value: (ttl.as_secs() / 3600).to_string(),
            reason: format!(
                "batch markers must outlive the failure queue's retention ({} hours), or a redriven batch is stored twice",
                FAILURE_QUEUE_RETENTION.as_secs() / 3600
            ),
        });
    }
    Ok(ttl)
}

impl LogMetricsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let redaction_key =
            SecretSource::from_env(env, "REDACTION_KEY")?.ok_or(ConfigError::Missing {
                var: "REDACTION_KEY".into(),
                hint: "at least 16 random bytes (e.g. `openssl rand -hex 32`), directly or as REDACTION_KEY_SECRET_ARN / REDACTION_KEY_SSM_PARAMETER",
            })?;
        let rules = RulesSource::from_env(env)?;
        let positive = |var: &str, default: usize| -> Result<usize, ConfigError> {
            match env.parse_or(var, default)? {
                0 => Err(ConfigError::Invalid {
                    var: var.into(),
                    value: "0".into(),
                    reason: "must be greater than zero".into(),
                }),
                n => Ok(n),
            }
        };
        Ok(LogMetricsConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            metrics_namespace: env.string_or("METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
            redaction_key,
            rules,
            max_series_per_metric: positive(
                "MAX_SERIES_PER_METRIC",
                DEFAULT_MAX_SERIES_PER_METRIC,
            )?,
            parse: parse_settings(env, positive("MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES)?)?,
            max_decompressed_bytes: positive(
                "MAX_DECOMPRESSED_BYTES",
                DEFAULT_MAX_DECOMPRESSED_BYTES,
            )?,
            batch_marker_ttl: marker_ttl(env)?,
        })
    }
}

/// How events are read (see [`LogMetricsConfig::parse`]).
pub fn parse_settings(env: &Env, max_event_bytes: usize) -> Result<ParseSettings, ConfigError> {
    let zone = env.get("LOG_TIMEZONE").unwrap_or("UTC");
    let text_utc_offset_ms = parse_utc_offset(zone).ok_or_else(|| ConfigError::Invalid {
        var: "LOG_TIMEZONE".into(),
        value: zone.to_owned(),
        reason: "expected UTC or a fixed offset such as +02:00 (asctime carries no zone; log in UTC where daylight saving applies)".into(),
    })?;
    let defaults = TimeBounds::default();
    let seconds = |var: &str, default_ms: i64| -> Result<i64, ConfigError> {
        let s: u64 = env.parse_or(var, (default_ms / 1000).unsigned_abs())?;
        Ok(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
    };
    Ok(ParseSettings {
        max_event_bytes,
        time_bounds: Some(TimeBounds {
            behind_ms: seconds("RECORD_TIME_MAX_BEHIND_SECONDS", defaults.behind_ms)?,
            ahead_ms: seconds("RECORD_TIME_MAX_AHEAD_SECONDS", defaults.ahead_ms)?,
        }),
        text_utc_offset_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redaction_key_is_required() {
        let err = LogMetricsConfig::from_env(&Env::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("REDACTION_KEY is required"),
            "{err}"
        );
    }

    #[test]
    fn defaults_and_rule_sources() {
        let c = LogMetricsConfig::from_env(&Env::from_pairs([("REDACTION_KEY", "k")])).unwrap();
        assert_eq!(c.rules, RulesSource::Embedded);
        assert_eq!(c.max_series_per_metric, 1000);
        assert_eq!(c.batch_marker_ttl, Duration::from_secs(360 * 3600));
        let short = LogMetricsConfig::from_env(&Env::from_pairs([
            ("REDACTION_KEY", "k"),
            ("BATCH_MARKER_TTL_HOURS", "48"),
        ]));
        assert!(
            short.is_err_and(|e| e.to_string().contains("failure queue")),
            "a marker that dies before the queued batch is refused"
        );
        let c = LogMetricsConfig::from_env(&Env::from_pairs([
            ("REDACTION_KEY", "k"),
            ("RULES_SSM_PARAMETER", "/blindspotx/rules"),
        ]))
        .unwrap();
        assert_eq!(
            c.rules,
            RulesSource::SsmParameter("/blindspotx/rules".into())
        );
        let both = Env::from_pairs([
            ("REDACTION_KEY", "k"),
            ("RULES_FILE", "a.toml"),
            ("RULES_SSM_PARAMETER", "/p"),
        ]);
        assert!(LogMetricsConfig::from_env(&both).is_err());
        let zero = Env::from_pairs([("REDACTION_KEY", "k"), ("MAX_SERIES_PER_METRIC", "0")]);
        assert!(LogMetricsConfig::from_env(&zero).is_err());
    }

    /// The retention this module assumes is the template's: a marker must
    /// outlive the queue a redrive reads from.
    #[test]
    fn markers_outlive_the_failure_queue_of_the_template() {
        let template = include_str!("../../../template.yaml");
        let queue = template
            .split("-log-metrics-failures")
            .nth(1)
            .expect("the log-metrics failure queue");
        let retention: u64 = queue
            .lines()
            .find_map(|l| l.trim().strip_prefix("MessageRetentionPeriod:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("its MessageRetentionPeriod");
        assert_eq!(Duration::from_secs(retention), FAILURE_QUEUE_RETENTION);
        assert!(DEFAULT_BATCH_MARKER_TTL > FAILURE_QUEUE_RETENTION);
    }
}
