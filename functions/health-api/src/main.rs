//! Lambda entry point: wiring only.

use std::sync::Arc;

use health_api::{AppState, router};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb_store::DynamoStore;
use shared::adapters::secrets::SecretResolver;
use shared::config::Env;
use shared::config::health_api::HealthApiConfig;
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
    let state = AppState::new(
        DynamoStore::new(&sdk, &config.table_name),
        token.as_ref(),
        config.stale_after,
        config.cache_max_age,
        Arc::new(SystemClock),
    );
    lambda_http::run(router(Arc::new(state))).await
}
