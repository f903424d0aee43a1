//! Lambda entry point: wiring only. Configuration problems (a broken alert
//! rule file included) fail the cold start with a message naming the
//! variable or the file, rule and position; run failures make Lambda retry.

use std::sync::Arc;

use component_probe::{ProbeRun, build_probes};
use lambda_runtime::{LambdaEvent, service_fn};
use monitoring_adapters::alert_engine::deployed_alert_engine;
use monitoring_adapters::aws::load_sdk_config;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::emf_metrics::EmfMetrics;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::Env;
use monitoring_config::alerts::AlertsConfig;
use monitoring_config::probe::ProbeConfig;
use monitoring_core::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    monitoring_adapters::telemetry::init();
    let env = Env::from_process();
    let config = ProbeConfig::from_env(&env)?;
    let alerts = AlertsConfig::from_env(&env)
        .inspect_err(|e| tracing::error!(error = %e, "alerting configuration rejected"))?;
    let sdk = load_sdk_config().await;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let secrets = SecretResolver::new(&sdk);
    let (probes, scrubber) = build_probes(&config, &secrets, Arc::new(store.clone())).await?;
    let engine =
        deployed_alert_engine(&sdk, &config.table_name, alerts.engine_setup(), &secrets).await?;
    let run = ProbeRun {
        probes,
        store,
        metrics: EmfMetrics::stdout(&config.metrics_namespace),
        limits: config.limits,
        history_ttl: config.history_ttl,
        scrubber,
        clock: Arc::new(SystemClock),
    };
    let (run, engine) = (&run, &engine);
    // The schedule's event carries nothing the probe needs; any JSON is accepted
    // so the function can also be invoked by hand.
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            run.run_with_alerts(engine).await.map_err(|e| {
                tracing::error!(error = %e, "probe run failed; Lambda will retry");
                lambda_runtime::Error::from(e)
            })
        },
    ))
    .await
}
