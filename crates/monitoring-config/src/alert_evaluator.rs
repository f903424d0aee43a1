//! Configuration of the alert-evaluator function, read once per cold start.

use super::alerts::AlertsConfig;
use super::env::{ConfigError, Env};
use super::probe::{DEFAULT_METRICS_NAMESPACE, DEFAULT_TABLE_NAME};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvaluatorConfig {
    /// `TABLE_NAME`: windows, incidents, the outbox, silences, probe results.
    pub table_name: String,
    /// The topic, links, alert rules and `LOG_SILENCE_AFTER_SECONDS`.
    pub alerts: AlertsConfig,
    /// `METRICS_NAMESPACE`: where the paging metrics (EMF) go.
    pub metrics_namespace: String,
}

impl AlertEvaluatorConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(AlertEvaluatorConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            alerts: AlertsConfig::from_env(env)?,
            metrics_namespace: env.string_or("METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_alerts() {
        let c = AlertEvaluatorConfig::from_env(&Env::from_pairs([
            (
                "INCIDENTS_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:t",
            ),
            ("LOG_SILENCE_AFTER_SECONDS", "600"),
        ]))
        .unwrap();
        assert_eq!(c.table_name, DEFAULT_TABLE_NAME);
        assert_eq!(
            c.alerts.log_silence_after,
            Some(std::time::Duration::from_secs(600))
        );
        assert!(AlertEvaluatorConfig::from_env(&Env::default()).is_err());
    }
}
