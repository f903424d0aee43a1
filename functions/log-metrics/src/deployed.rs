//! The function as its entry point deploys it, from the environment. The
//! Lambda entry point and the redrive tool (`tools/ops`) both build it
//! here, so a redriven batch goes through exactly the handler and adapters
//! the function runs.

use monitoring_adapters::alert_engine::{DeployedAlertEngine, deployed_alert_engine};
use monitoring_adapters::aws::SdkConfig;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::rules_loader::{AlertRulesLoadError, RulesLoadError, load};
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::alerts::AlertsConfig;
use monitoring_config::log_metrics::LogMetricsConfig;
use monitoring_config::{ConfigError, Env};
use monitoring_core::domain::logs::redact::{RedactError, Redactor};
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;

use crate::{LogMetrics, SeriesGuard};

/// log-metrics over the monitoring table, publishing to SNS.
pub type DeployedLogMetrics = LogMetrics<DynamoSeriesStore, DynamoStore, DeployedAlertEngine>;

/// Why the function could not start; each names the variable or the file.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("REDACTION_KEY: {0}")]
    Redaction(#[from] RedactError),
    #[error(transparent)]
    Rules(#[from] RulesLoadError),
    #[error(transparent)]
    AlertRules(#[from] AlertRulesLoadError),
}

/// Reads the configuration, the redaction key, the metric and alert rules,
/// and wires the adapters, as the entry point does at cold start.
pub async fn deployed(env: &Env, sdk: &SdkConfig) -> Result<DeployedLogMetrics, InitError> {
    let config = LogMetricsConfig::from_env(env)?;
    let alerts = AlertsConfig::from_env(env)
        .inspect_err(|e| tracing::error!(error = %e, "alerting configuration rejected"))?;
    let secrets = SecretResolver::new(sdk);
    let key = secrets
        .resolve("REDACTION_KEY", &config.redaction_key)
        .await?;
    let redactor = Redactor::new(key.expose().as_bytes())?;
    let rules: monitoring_core::domain::rules::RuleSet = load(&config.rules, &secrets).await?;
    tracing::info!(rules = rules.len(), file = rules.file(), "rules loaded");
    let engine =
        deployed_alert_engine(sdk, &config.table_name, alerts.engine_setup(), &secrets).await?;
    Ok(LogMetrics {
        rules,
        redactor,
        // Filled from the table on the first batch, not here: no DynamoDB
        // read in the init phase.
        guard: SeriesGuard::new(CardinalityGuard::new(config.max_series_per_metric)),
        store: DynamoSeriesStore::new(sdk, &config.table_name, config.batch_marker_ttl),
        heartbeats: DynamoStore::new(sdk, &config.table_name),
        alerts: engine,
        namespace: config.metrics_namespace,
        parse: config.parse,
        max_decompressed_bytes: config.max_decompressed_bytes,
    })
}
