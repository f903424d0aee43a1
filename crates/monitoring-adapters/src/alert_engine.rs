//! The alert engine as the functions deploy it: rules from configuration,
//! windows and outbox in the table, incidents on SNS, silences and
//! component state read from the table, tokio's timer between retries. One
//! constructor for every function that runs the engine.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use super::dynamodb_alerts::DynamoAlertStore;
use super::dynamodb_silences::DynamoSilenceStore;
use super::dynamodb_store::DynamoStore;
use super::retry::TokioTimer;
use super::rules_loader::{AlertRulesLoadError, RulesSource, load};
use super::secrets::SecretResolver;
use super::sns_publisher::SnsPublisher;
use monitoring_core::domain::alerts::crosscheck::{self, SignalCatalog};
use monitoring_core::domain::alerts::{AlertEngine, AlertRules, EngineSettings};
use monitoring_core::domain::rules::RuleSet;

/// The deployed engine's type.
pub type DeployedAlertEngine =
    AlertEngine<DynamoAlertStore, SnsPublisher, DynamoSilenceStore, DynamoStore>;

/// What the deployed engine is built from: the alerting configuration
/// (`monitoring_config::alerts::AlertsConfig::engine_setup`).
#[derive(Debug, Clone)]
pub struct AlertEngineSetup<'a> {
    /// The alert rule file.
    pub rules: &'a RulesSource,
    /// The log rule file the alert rules are checked against.
    pub log_rules: &'a RulesSource,
    /// The SNS topic incidents are published to.
    pub incidents_topic_arn: &'a str,
    /// Logged at start (only the alert-evaluator acts on it, through
    /// `settings`).
    pub log_silence_after: Option<Duration>,
    pub settings: EngineSettings,
}

/// Loads the configured alert rules (a broken file fails here, naming file,
/// rule and position) and builds the engine over `table`.
pub async fn deployed_alert_engine(
    sdk: &SdkConfig,
    table: &str,
    config: AlertEngineSetup<'_>,
    secrets: &SecretResolver,
) -> Result<DeployedAlertEngine, AlertRulesLoadError> {
    let log_rules: RuleSet = load(config.log_rules, secrets)
        .await
        .map_err(AlertRulesLoadError::LogRules)?;
    let rules: AlertRules = load(config.rules, secrets)
        .await
        .and_then(|rules| {
            crosscheck::check(&rules, &SignalCatalog::new(&log_rules))?;
            Ok(rules)
        })
        .inspect_err(|e| tracing::error!(error = %e, "alert rules rejected"))?;
    tracing::info!(
        rules = rules.rules().len(),
        file = rules.file(),
        log_silence_after_seconds = config.log_silence_after.map(|d| d.as_secs()),
        "alert rules loaded"
    );
    Ok(AlertEngine::new(
        Arc::new(rules),
        DynamoAlertStore::new(sdk, table),
        SnsPublisher::new(sdk, config.incidents_topic_arn),
        DynamoSilenceStore::new(sdk, table),
        DynamoStore::new(sdk, table),
        config.settings,
        Arc::new(TokioTimer),
    ))
}
