//! Lambda entry point: wiring only. Configuration problems (a webhook
//! without its signing key, a broken routing file, an unreadable secret)
//! fail the cold start with a message naming the variable or the file.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use incident_notifier::Notifier;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb_response::DynamoDeliveryLog;
use shared::adapters::secrets::SecretResolver;
use shared::adapters::webhook_http::HttpChannels;
use shared::config::Env;
use shared::config::notifier::{NotifierConfig, load_routing};
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = NotifierConfig::from_env(&Env::from_process())
        .inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let sdk = load_sdk_config().await;
    let secrets = SecretResolver::new(&sdk);
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
        markers: DynamoDeliveryLog::new(&sdk, &config.table_name).with_ttl(config.marker_ttl),
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
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        notifier.handle(&event.payload).await.map_err(|e| {
            tracing::error!(error = %e, "incident delivery failed; SNS/Lambda retry the message");
            lambda_runtime::Error::from(e)
        })
    }))
    .await
}
