//! Lambda entry point: wiring only.

use std::sync::Arc;
use std::time::Duration;

use health_api::audit::Role;
use health_api::tokens::{Tokens, var_of};
use health_api::{AppState, router};
use monitoring_adapters::aws::load_sdk_config;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_silences::DynamoSilenceStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::rules_loader::load;
use monitoring_adapters::secrets::{RotatingSecret, SecretResolver};
use monitoring_config::Env;
use monitoring_config::health_api::HealthApiConfig;
use monitoring_core::domain::pipeline::pipeline_metrics;
use monitoring_core::domain::silence::SilencePolicy;
use monitoring_core::ports::{SecretVersionSource, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    monitoring_adapters::telemetry::init();
    let config = HealthApiConfig::from_env(&Env::from_process())?;
    let sdk = load_sdk_config().await;
    let resolver = Arc::new(SecretResolver::new(&sdk));
    let mut sources: Vec<(Role, Arc<dyn SecretVersionSource>)> = Vec::new();
    for (role, source, unset) in [
        (
            Role::Health,
            &config.token,
            "health details are available to nobody",
        ),
        (
            Role::Metrics,
            &config.metrics_token,
            "/metrics answers 401 to everyone",
        ),
        (
            Role::Admin,
            &config.admin_token,
            "/api/silences answers 401 to everyone",
        ),
    ] {
        match source {
            Some(s) => sources.push((
                role,
                Arc::new(RotatingSecret::new(
                    resolver.clone(),
                    var_of(role),
                    s.clone(),
                )),
            )),
            None => tracing::warn!(var = var_of(role), "token not set: {unset}"),
        }
    }
    let clock = Arc::new(SystemClock);
    // Too short or shared tokens stop the start here, with the variable named.
    let tokens = Tokens::load(sources, config.token_refresh, clock.clone()).await?;
    let rules: monitoring_core::domain::rules::RuleSet = load(&config.rules, &resolver).await?;
    let mut metrics = rules.metrics().to_vec();
    metrics.extend(pipeline_metrics());
    let alert_rules: monitoring_core::domain::alerts::AlertRules =
        load(&config.alert_rules, &resolver).await?;
    let policy = SilencePolicy {
        max_duration: time::Duration::seconds(
            i64::try_from(config.silence_max_duration.as_secs()).unwrap_or(i64::MAX),
        ),
        max_active: config.silence_max_active,
        rules: alert_rules.silence_labels(),
    };
    let state = AppState::new(
        DynamoStore::new(&sdk, &config.table_name),
        None,
        config.stale_after,
        config.cache_max_age,
        clock,
    )
    .with_metrics(
        // Reading only: the marker TTL is irrelevant here.
        DynamoSeriesStore::new(&sdk, &config.table_name, Duration::ZERO),
        None,
        metrics,
    )
    .with_silences(DynamoSilenceStore::new(&sdk, &config.table_name), None)
    .with_tokens(tokens)
    .with_silence_policy(policy);
    lambda_http::run(router(Arc::new(state))).await
}
