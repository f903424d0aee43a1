//! The notifier as its entry point deploys it, from the environment. The
//! Lambda entry point and the redrive tool (`tools/ops`) both build it
//! here, so a redriven notice goes through exactly the handler, channels
//! and delivery markers the function uses.

use std::sync::Arc;

use monitoring_adapters::aws::SdkConfig;
use monitoring_adapters::dynamodb_response::DynamoDeliveryLog;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_adapters::webhook_http::{ChannelSetupError, HttpChannels};
use monitoring_config::notifier::{NotifierConfig, RoutingLoadError, load_routing};
use monitoring_config::{ConfigError, Env};
use monitoring_core::ports::SystemClock;

use crate::Notifier;

pub type DeployedNotifier = Notifier<HttpChannels, DynamoDeliveryLog>;

/// Why the notifier could not start; each names the variable or the file.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Routing(#[from] RoutingLoadError),
    #[error(transparent)]
    Channels(#[from] ChannelSetupError),
}

/// Reads the configuration, the routing and the channel secrets, and wires
/// the adapters, as the entry point does at cold start.
pub async fn deployed(env: &Env, sdk: &SdkConfig) -> Result<DeployedNotifier, InitError> {
    let config = NotifierConfig::from_env(env)
        .inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let secrets = SecretResolver::new(sdk);
    let routing = load_routing(&config.routing, &secrets)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "routing rejected"))?;
    let settings = config
        .channel_settings(&secrets)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "channel secrets unavailable"))?;
    let sender = HttpChannels::new(settings)
        .inspect_err(|e| tracing::error!(error = %e, "channels rejected"))?;
    let notifier = Notifier {
        incidents_topic: config.incidents_topic_arn.clone(),
        routing: Arc::new(routing),
        sender,
        markers: DynamoDeliveryLog::new(sdk, &config.table_name).with_ttl(config.marker_ttl),
        clock: Arc::new(SystemClock),
    };
    let off: Vec<&str> = notifier
        .unconfigured_routed_channels()
        .iter()
        .map(|c| c.as_str())
        .collect();
    tracing::info!(
        routing = notifier.routing.file(),
        incidents_topic = %notifier.incidents_topic,
        routed_but_not_configured = ?off,
        attempts = config.retry.attempts,
        "incident notifier ready"
    );
    Ok(notifier)
}
