//! Alerting configuration shared by the functions that run the alert engine
//! (log-metrics, component-probe, alert-evaluator), read once per cold
//! start, and the loader of the alert rule file.

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::log_metrics::RulesSource;
use monitoring_adapters::alert_engine::AlertEngineSetup;
use monitoring_core::domain::alerts::{EngineSettings, Links};

/// Default of `LOG_SILENCE_AFTER_SECONDS`: fifteen minutes without a log
/// batch raises `log_pipeline_silent`.
pub const DEFAULT_LOG_SILENCE_AFTER: Duration = Duration::from_secs(900);
/// The shortest dead man's switch accepted: the evaluator runs every
/// minute, and a quieter log group than that is normal.
pub const MIN_LOG_SILENCE_AFTER_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// `INCIDENTS_TOPIC_ARN`: the SNS topic incidents are published to.
    pub incidents_topic_arn: String,
    /// `DASHBOARD_URL` and `RUNBOOK_BASE_URL`: the links in every incident.
    pub links: Links,
    /// `ALERT_RULES_FILE` or `ALERT_RULES_SSM_PARAMETER`, else the embedded
    /// `infra/alerts/default.toml`.
    pub rules: RulesSource,
    /// `RULES_FILE` or `RULES_SSM_PARAMETER`, else the embedded
    /// `infra/rules/default.toml`: the log rules the alert rules are
    /// checked against at start (every function running the engine needs
    /// the same setting as log-metrics).
    pub log_rules: RulesSource,
    /// `LOG_SILENCE_AFTER_SECONDS` (default 900, `0` disables): how long the
    /// log group may deliver nothing before the evaluator raises
    /// `log_pipeline_silent`. Only the alert-evaluator acts on it.
    pub log_silence_after: Option<Duration>,
}

impl AlertsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let incidents_topic_arn = env
            .get("INCIDENTS_TOPIC_ARN")
            .ok_or(ConfigError::Missing {
                var: "INCIDENTS_TOPIC_ARN".into(),
                hint: "the ARN of the SNS topic incidents are published to (arn:aws:sns:<region>:<account>:<name>)",
            })?
            .to_owned();
        if !incidents_topic_arn.starts_with("arn:") || incidents_topic_arn.split(':').count() != 6 {
            return Err(ConfigError::Invalid {
                var: "INCIDENTS_TOPIC_ARN".into(),
                value: incidents_topic_arn,
                reason: "expected an SNS topic ARN, arn:<partition>:sns:<region>:<account>:<name>"
                    .into(),
            });
        }
        let defaults = Links::default();
        let links = Links {
            dashboard_url: env.string_or("DASHBOARD_URL", &defaults.dashboard_url),
            runbook_base_url: env
                .string_or("RUNBOOK_BASE_URL", &defaults.runbook_base_url)
                .trim_end_matches('/')
                .to_owned(),
        };
        // Notifications are read in chat and mail, far from any checkout:
        // a relative runbook link would be dead there.
        if !(links.runbook_base_url.starts_with("https://")
            || links.runbook_base_url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                var: "RUNBOOK_BASE_URL".into(),
                value: links.runbook_base_url.chars().take(200).collect(),
                reason:
                    "expected an absolute http(s) URL (the runbooks are linked from notifications)"
                        .into(),
            });
        }
        let silence_seconds = env.parse_or::<u64>(
            "LOG_SILENCE_AFTER_SECONDS",
            DEFAULT_LOG_SILENCE_AFTER.as_secs(),
        )?;
        let log_silence_after = match silence_seconds {
            0 => None,
            s if s < MIN_LOG_SILENCE_AFTER_SECONDS => {
                return Err(ConfigError::Invalid {
                    var: "LOG_SILENCE_AFTER_SECONDS".into(),
                    value: s.to_string(),
                    reason: format!(
                        "must be 0 (off) or at least {MIN_LOG_SILENCE_AFTER_SECONDS} seconds"
                    ),
                });
            }
            s => Some(Duration::from_secs(s)),
        };
        Ok(AlertsConfig {
            incidents_topic_arn,
            links,
            rules: RulesSource::from_env_prefixed(env, "ALERT_RULES")?,
            log_rules: RulesSource::from_env(env)?,
            log_silence_after,
        })
    }

    /// The engine's settings: these links and this dead man's switch, the
    /// engine's defaults otherwise.
    /// What `monitoring_adapters::alert_engine::deployed_alert_engine`
    /// builds the engine from.
    pub fn engine_setup(&self) -> AlertEngineSetup<'_> {
        AlertEngineSetup {
            rules: &self.rules,
            log_rules: &self.log_rules,
            incidents_topic_arn: &self.incidents_topic_arn,
            log_silence_after: self.log_silence_after,
            settings: self.engine_settings(),
        }
    }

    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            links: self.links.clone(),
            log_silence_after: self.log_silence_after,
            ..EngineSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:blindspotx-incidents";

    #[test]
    fn the_topic_is_required_and_must_be_an_arn() {
        let err = AlertsConfig::from_env(&Env::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("INCIDENTS_TOPIC_ARN is required"),
            "{err}"
        );
        let err = AlertsConfig::from_env(&Env::from_pairs([("INCIDENTS_TOPIC_ARN", "incidents")]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn defaults() {
        let c = AlertsConfig::from_env(&Env::from_pairs([("INCIDENTS_TOPIC_ARN", TOPIC)])).unwrap();
        assert_eq!(c.incidents_topic_arn, TOPIC);
        assert_eq!(c.links, Links::default());
        assert_eq!(c.rules, RulesSource::Embedded);
        assert_eq!(c.log_silence_after, Some(DEFAULT_LOG_SILENCE_AFTER));
        let settings = c.engine_settings();
        assert_eq!(settings.log_silence_after, Some(DEFAULT_LOG_SILENCE_AFTER));
        assert_eq!(
            settings.outbox_grace,
            EngineSettings::default().outbox_grace
        );
    }

    #[test]
    fn overrides() {
        let c = AlertsConfig::from_env(&Env::from_pairs([
            ("INCIDENTS_TOPIC_ARN", TOPIC),
            ("DASHBOARD_URL", "https://grafana.example/d/auth"),
            ("RUNBOOK_BASE_URL", "https://wiki.example/runbooks/"),
            ("ALERT_RULES_FILE", "alerts.toml"),
            ("LOG_SILENCE_AFTER_SECONDS", "0"),
        ]))
        .unwrap();
        let relative = AlertsConfig::from_env(&Env::from_pairs([
            ("INCIDENTS_TOPIC_ARN", TOPIC),
            ("RUNBOOK_BASE_URL", "docs/runbooks"),
        ]))
        .unwrap_err();
        assert!(
            relative.to_string().contains("RUNBOOK_BASE_URL"),
            "{relative}"
        );
        assert_eq!(c.links.dashboard_url, "https://grafana.example/d/auth");
        assert_eq!(c.links.runbook_base_url, "https://wiki.example/runbooks");
        assert_eq!(c.rules, RulesSource::File("alerts.toml".into()));
        assert_eq!(c.log_silence_after, None);
        assert_eq!(c.engine_settings().links, c.links);

        let both = Env::from_pairs([
            ("INCIDENTS_TOPIC_ARN", TOPIC),
            ("ALERT_RULES_FILE", "a.toml"),
            ("ALERT_RULES_SSM_PARAMETER", "/p"),
        ]);
        let err = AlertsConfig::from_env(&both).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ALERT_RULES: set only one of ALERT_RULES_FILE, ALERT_RULES_SSM_PARAMETER"
        );
        for bad in ["30", "soon"] {
            let env = Env::from_pairs([
                ("INCIDENTS_TOPIC_ARN", TOPIC),
                ("LOG_SILENCE_AFTER_SECONDS", bad),
            ]);
            assert!(AlertsConfig::from_env(&env).is_err(), "{bad}");
        }
    }
}
