//! Lambda entry point: wiring only ([`incident_notifier::deployed`]).
//! Configuration problems (a webhook without its signing key, a broken
//! routing file, an unreadable secret) fail the cold start with a message
//! naming the variable or the file.

use aws_lambda_events::event::sns::SnsEvent;
use incident_notifier::deployed::deployed;
use lambda_runtime::{LambdaEvent, service_fn};
use monitoring_adapters::aws::load_sdk_config;
use monitoring_config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    monitoring_adapters::telemetry::init();
    let sdk = load_sdk_config().await;
    let notifier = deployed(&Env::from_process(), &sdk).await?;
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        notifier.handle(&event.payload).await.map_err(|e| {
            tracing::error!(error = %e, "incident delivery failed; SNS/Lambda retry the message");
            lambda_runtime::Error::from(e)
        })
    }))
    .await
}
