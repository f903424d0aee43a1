//! The bundle's two functions wired as their entry points wire them, with
//! real adapters against the local stack and configuration overrides.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use axum::body::Body;
use component_probe::{ProbeRun, build_probes};
use health_api::{AppState, router};
use http_body_util::BodyExt;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::emf_metrics::EmfMetrics;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_config::probe::ProbeConfig;
use monitoring_config::{Env, Secret};
use monitoring_core::ports::SystemClock;
use tower::ServiceExt;

pub const TOKEN: &str = "integration-test-token";

/// health-api's state over the probe results in `table`, as deployed
/// (results stale after 180 s, cached 10 s, the system clock); tests add
/// silences or `/metrics` with its builder methods.
pub fn health_state(sdk: &SdkConfig, table: &str, token: Option<&str>) -> AppState {
    AppState::new(
        DynamoStore::new(sdk, table),
        token.map(Secret::new).as_ref(),
        Duration::from_secs(180),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    )
}

/// The process environment (the stack's coordinates) with `overrides` on top;
/// an empty override value unsets the variable.
pub fn env(overrides: &[(&str, &str)]) -> Env {
    let mut vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Env::from_pairs(vars)
}

pub async fn probe_run(
    sdk: &SdkConfig,
    table: &str,
    namespace: &str,
    overrides: &[(&str, &str)],
) -> ProbeRun<DynamoStore, EmfMetrics> {
    let config = ProbeConfig::from_env(&env(overrides)).expect("probe configuration");
    let store = DynamoStore::new(sdk, table);
    let (probes, scrubber) =
        build_probes(&config, &SecretResolver::new(sdk), Arc::new(store.clone()))
            .await
            .expect("probes");
    ProbeRun {
        probes,
        store,
        metrics: EmfMetrics::buffered(namespace),
        limits: config.limits,
        history_ttl: config.history_ttl,
        scrubber,
        clock: Arc::new(SystemClock),
    }
}

/// One `GET /api/health` through the health API over the same table.
pub async fn get_health(
    sdk: &SdkConfig,
    table: &str,
    headers: &[(&str, &str)],
) -> (http::StatusCode, serde_json::Value) {
    let state = health_state(sdk, table, Some(TOKEN));
    let mut req = http::Request::get("/api/health");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = router(Arc::new(state))
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}
