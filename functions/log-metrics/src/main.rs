//! Lambda entry point: wiring only. A broken rule file (metric or alert
//! rules), a missing redaction key or incidents topic fails the cold start
//! with a message naming the file, rule and position, or the variable.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use log_metrics::{LogMetrics, SeriesGuard};
use shared::adapters::alert_engine::deployed_alert_engine;
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb_series::DynamoSeriesStore;
use shared::adapters::dynamodb_store::DynamoStore;
use shared::adapters::rules_loader::load_rules;
use shared::adapters::secrets::SecretResolver;
use shared::config::Env;
use shared::config::alerts::AlertsConfig;
use shared::config::log_metrics::LogMetricsConfig;
use shared::domain::logs::redact::Redactor;
use shared::domain::metrics::aggregate::CardinalityGuard;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let env = Env::from_process();
    let config = LogMetricsConfig::from_env(&env)?;
    let alerts = AlertsConfig::from_env(&env)
        .inspect_err(|e| tracing::error!(error = %e, "alerting configuration rejected"))?;
    let sdk = load_sdk_config().await;
    let secrets = SecretResolver::new(&sdk);
    let key = secrets
        .resolve("REDACTION_KEY", &config.redaction_key)
        .await?;
    let redactor = Redactor::new(key.expose().as_bytes())?;
    let rules = load_rules(&config.rules, &secrets).await?;
    tracing::info!(rules = rules.len(), file = rules.file(), "rules loaded");
    let engine = deployed_alert_engine(&sdk, &config.table_name, &alerts, &secrets).await?;

    let app = LogMetrics {
        rules,
        redactor,
        // Filled from the table on the first batch, not here: no DynamoDB
        // read in the init phase.
        guard: SeriesGuard::new(CardinalityGuard::new(config.max_series_per_metric)),
        store: DynamoSeriesStore::new(&sdk, &config.table_name, config.batch_marker_ttl),
        heartbeats: DynamoStore::new(&sdk, &config.table_name),
        alerts: engine,
        namespace: config.metrics_namespace,
        parse: config.parse,
        max_decompressed_bytes: config.max_decompressed_bytes,
    };
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let mut stdout = std::io::stdout();
            let deadline = invocation_deadline(event.context.deadline);
            let summary = shared::retry::with_deadline(
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
