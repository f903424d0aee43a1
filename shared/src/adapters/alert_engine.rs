//! The alert engine as the functions deploy it: rules from configuration,
//! windows and outbox in the table, incidents on SNS, silences and
//! component state read from the table. One constructor for every function
//! that runs the engine.

use std::sync::Arc;

use aws_config::SdkConfig;

use super::dynamodb_alerts::DynamoAlertStore;
use super::dynamodb_silences::DynamoSilenceStore;
use super::dynamodb_store::DynamoStore;
use super::rules_loader::{AlertRulesLoadError, load};
use super::secrets::SecretResolver;
use super::sns_publisher::SnsPublisher;
use crate::config::alerts::AlertsConfig;
use std::future::Future;

use time::OffsetDateTime;

use crate::domain::alerts::crosscheck::{self, SignalCatalog};
use crate::domain::alerts::probe_signals::ProbeSignal;
use crate::domain::alerts::{AlertEngine, AlertRules, EngineError, EngineOutcome};
use crate::domain::rules::{RuleSet, Signal};
use crate::ports::{AlertStore, Alerts, ComponentStatus, IncidentPublisher, SilenceSource};

/// The deployed engine's type.
pub type DeployedAlertEngine =
    AlertEngine<DynamoAlertStore, SnsPublisher, DynamoSilenceStore, DynamoStore>;

/// Loads the configured alert rules (a broken file fails here, naming file,
/// rule and position) and builds the engine over `table`.
pub async fn deployed_alert_engine(
    sdk: &SdkConfig,
    table: &str,
    config: &AlertsConfig,
    secrets: &SecretResolver,
) -> Result<DeployedAlertEngine, AlertRulesLoadError> {
    let log_rules: RuleSet = load(&config.log_rules, secrets)
        .await
        .map_err(AlertRulesLoadError::LogRules)?;
    let rules: AlertRules = load(&config.rules, secrets)
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
        SnsPublisher::new(sdk, &config.incidents_topic_arn),
        DynamoSilenceStore::new(sdk, table),
        DynamoStore::new(sdk, table),
        config.engine_settings(),
    ))
}

impl<S, P, X, C> Alerts for AlertEngine<S, P, X, C>
where
    S: AlertStore,
    P: IncidentPublisher,
    X: SilenceSource,
    C: ComponentStatus,
{
    fn ingest(
        &self,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::ingest(self, signals, now)
    }

    fn ingest_probes(
        &self,
        signals: &[ProbeSignal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::ingest_probes(self, signals, now)
    }

    fn evaluate(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::evaluate(self, now)
    }
}
