//! Lambda entry point: wiring only. Configuration problems fail the cold
//! start with a message naming the variable; run failures make Lambda retry.

use std::sync::Arc;

use component_probe::{ProbeRun, build_probes};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::cloudwatch_metrics::CloudWatchMetrics;
use shared::adapters::dynamodb_store::DynamoStore;
use shared::adapters::secrets::SecretResolver;
use shared::config::Env;
use shared::config::probe::ProbeConfig;
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = ProbeConfig::from_env(&Env::from_process())?;
    let sdk = load_sdk_config().await;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let (probes, scrubber) =
        build_probes(&config, &SecretResolver::new(&sdk), Arc::new(store.clone())).await?;
    let run = ProbeRun {
        probes,
        store,
        metrics: CloudWatchMetrics::new(&sdk, &config.metrics_namespace),
        limits: config.limits,
        history_ttl: config.history_ttl,
        scrubber,
        clock: Arc::new(SystemClock),
    };
    let run = &run;
    // The schedule's event carries nothing the probe needs; any JSON is accepted
    // so the function can also be invoked by hand.
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            run.run().await.map_err(|e| {
                tracing::error!(error = %e, "probe run failed; Lambda will retry");
                lambda_runtime::Error::from(e)
            })
        },
    ))
    .await
}
