//! Lambda entry point: wiring only ([`log_metrics::deployed`]). A broken
//! rule file (metric or alert rules), a missing redaction key or incidents
//! topic fails the cold start with a message naming the file, rule and
//! position, or the variable.

use lambda_runtime::{LambdaEvent, service_fn};
use log_metrics::deployed::deployed;
use shared::adapters::aws::load_sdk_config;
use shared::config::Env;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = load_sdk_config().await;
    let app = deployed(&Env::from_process(), &sdk).await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let mut stdout = std::io::stdout();
            let summary = app
                .handle(&event.payload, OffsetDateTime::now_utc(), &mut stdout)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "batch not fully stored; Lambda will retry");
                    lambda_runtime::Error::from(e)
                })?;
            tracing::info!(?summary, "batch processed");
            Ok::<_, lambda_runtime::Error>(summary)
        },
    ))
    .await
}
