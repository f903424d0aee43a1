//! Lambda entry point: wiring only. Configuration problems (a missing
//! topic, a broken alert rule file) fail the cold start with a message
//! naming the variable or the file, rule and position; a store that cannot
//! be reached fails the run.

use std::io::Write;
use std::sync::Arc;

use alert_evaluator::Evaluator;
use lambda_runtime::{LambdaEvent, service_fn};
use monitoring_adapters::alert_engine::deployed_alert_engine;
use monitoring_adapters::aws::load_sdk_config;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::Env;
use monitoring_config::alert_evaluator::AlertEvaluatorConfig;
use monitoring_core::domain::metrics::emf::render_paging;
use monitoring_core::ports::SystemClock;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    monitoring_adapters::telemetry::init();
    let config = AlertEvaluatorConfig::from_env(&Env::from_process())
        .inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let sdk = load_sdk_config().await;
    let secrets = SecretResolver::new(&sdk);
    let evaluator = Evaluator {
        engine: deployed_alert_engine(
            &sdk,
            &config.table_name,
            config.alerts.engine_setup(),
            &secrets,
        )
        .await?,
        clock: Arc::new(SystemClock),
    };
    let evaluator = &evaluator;
    let namespace = config.metrics_namespace.as_str();
    // The schedule's event carries nothing the evaluator needs (its time is
    // the clock's); any JSON is accepted so it can be invoked by hand.
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let summary = evaluator.run().await.map_err(|e| {
                tracing::error!(error = %e, "alert evaluation failed; the next run repeats it");
                lambda_runtime::Error::from(e)
            })?;
            // EMF on stdout: Lambda's log pipeline turns it into the
            // metrics the paging alarms watch.
            let doc = render_paging(
                &summary.paging_metrics(),
                namespace,
                OffsetDateTime::now_utc().unix_timestamp() * 1000,
            );
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = writeln!(stdout, "{doc}") {
                tracing::error!(error = %e, "cannot write the paging metrics");
            }
            Ok::<_, lambda_runtime::Error>(summary)
        },
    ))
    .await
}
