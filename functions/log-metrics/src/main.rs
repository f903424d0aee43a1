//! Lambda entry point: wiring only ([`log_metrics::deployed`]). A broken
//! rule file (metric or alert rules), a missing redaction key or incidents
//! topic fails the cold start with a message naming the file, rule and
//! position, or the variable.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use log_metrics::deployed::deployed;
use monitoring_adapters::aws::load_sdk_config;
use monitoring_config::Env;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    monitoring_adapters::telemetry::init();
    let sdk = load_sdk_config().await;
    let app = deployed(&Env::from_process(), &sdk).await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let mut stdout = std::io::stdout();
            let deadline = invocation_deadline(event.context.deadline);
            let summary = monitoring_adapters::retry::with_deadline(
                deadline,
                app.handle(&event.payload, OffsetDateTime::now_utc(), &mut stdout),
            )
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

/// Time kept back from Lambda's deadline for the reply and the error log:
/// retries stop this long before the function would be killed.
const DEADLINE_RESERVE: Duration = Duration::from_secs(2);

/// The instant retries must stop by, from the context's deadline (epoch
/// milliseconds).
fn invocation_deadline(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms =
        u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    tokio::time::Instant::now() + left.saturating_sub(DEADLINE_RESERVE)
}
