//! Lambda entry point: wiring only.

use std::sync::Arc;
use std::time::Duration;

use health_api::{AppState, router};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb_series::DynamoSeriesStore;
use shared::adapters::dynamodb_silences::DynamoSilenceStore;
use shared::adapters::dynamodb_store::DynamoStore;
use shared::adapters::rules_loader::load_rules;
use shared::adapters::secrets::SecretResolver;
use shared::config::Env;
use shared::config::health_api::HealthApiConfig;
use shared::domain::pipeline::pipeline_metrics;
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = HealthApiConfig::from_env(&Env::from_process())?;
    let sdk = load_sdk_config().await;
    let token = SecretResolver::new(&sdk)
        .resolve_opt("HEALTH_TOKEN", config.token.as_ref())
        .await?;
    if token.is_none() {
        tracing::warn!("HEALTH_TOKEN is not set: health details are available to nobody");
    }
    let metrics_token = SecretResolver::new(&sdk)
        .resolve_opt("METRICS_TOKEN", config.metrics_token.as_ref())
        .await?;
    if metrics_token.is_none() {
        tracing::warn!("METRICS_TOKEN is not set: /metrics answers 401 to everyone");
    }
    let admin_token = SecretResolver::new(&sdk)
        .resolve_opt("ADMIN_TOKEN", config.admin_token.as_ref())
        .await?;
    if admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: /api/silences answers 401 to everyone");
    }
    let rules = load_rules(&config.rules, &SecretResolver::new(&sdk)).await?;
    let mut metrics = rules.metrics().to_vec();
    metrics.extend(pipeline_metrics());
    let state = AppState::new(
        DynamoStore::new(&sdk, &config.table_name),
        token.as_ref(),
        config.stale_after,
        config.cache_max_age,
        Arc::new(SystemClock),
    )
    .with_metrics(
        // Reading only: the marker TTL is irrelevant here.
        DynamoSeriesStore::new(&sdk, &config.table_name, Duration::ZERO),
        metrics_token.as_ref(),
        metrics,
    )
    .with_silences(
        DynamoSilenceStore::new(&sdk, &config.table_name),
        admin_token.as_ref(),
    );
    lambda_http::run(router(Arc::new(state))).await
}
