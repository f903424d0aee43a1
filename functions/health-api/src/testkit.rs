//! What the unit tests of the routes share: a router over in-memory
//! stores, with handles on the stores to look at afterwards, and requests.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use monitoring_config::Secret;
use monitoring_core::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use monitoring_core::domain::metrics::series::{MetricKind, SeriesKey};
use monitoring_core::domain::probe_result::{
    Component, Measurement, Observation, ProbeResult, Reason, Status, Unit,
};
use monitoring_core::domain::rules::MetricInfo;
use monitoring_core::domain::silence::{Silence, SilencePolicy};
use monitoring_core::memory::clock::ManualClock;
use monitoring_core::memory::series::MemorySeriesStore;
use monitoring_core::memory::silences::MemorySilenceStore;
use monitoring_core::memory::store::MemoryStore;
use monitoring_core::ports::{
    ExpireOutcome, ProbeStore, SeriesStore, SilenceStore, StoreError, SystemClock,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

use crate::{AppState, router};

pub const TOKEN: &str = "t0ken-for-tests";
pub const METRICS_TOKEN: &str = "scrape-token";
pub const ADMIN: &str = "admin-token-for-tests";
pub const T0: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);

/// A store the router owns while the test keeps a handle on it.
pub struct Shared<T>(pub Arc<T>);

impl<T: ProbeStore> ProbeStore for Shared<T> {
    async fn save(&self, results: &[ProbeResult], ttl: Duration) -> Result<(), StoreError> {
        self.0.save(results, ttl).await
    }
    async fn latest(&self) -> Result<Vec<ProbeResult>, StoreError> {
        self.0.latest().await
    }
}

impl<T: SilenceStore> SilenceStore for Shared<T> {
    async fn create(&self, silence: &Silence) -> Result<(), StoreError> {
        self.0.create(silence).await
    }
    async fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        self.0.list(now, include_expired).await
    }
    async fn expire(
        &self,
        id: &str,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<ExpireOutcome, StoreError> {
        self.0.expire(id, at, by).await
    }
}

pub fn result(component: Component, status: Status) -> ProbeResult {
    let obs = Observation::measured(vec![
        Measurement::new("connections", 4.0, Unit::Count).with_target("db.internal.example"),
    ]);
    let obs = match status {
        Status::Pass => obs,
        s => obs.with_reason(
            s,
            Reason::Unreachable,
            "connect db.internal.example:5432 refused",
        ),
    };
    ProbeResult::from_observation(component, obs, time::OffsetDateTime::now_utc(), 3.0)
}

pub fn store(failing: Option<Component>) -> MemoryStore {
    MemoryStore::with_results(
        Component::ALL
            .into_iter()
            .map(|c| {
                result(
                    c,
                    if Some(c) == failing {
                        Status::Fail
                    } else {
                        Status::Pass
                    },
                )
            })
            .collect(),
    )
}

/// The router over `store`, details for [`TOKEN`]; and the store.
pub fn app<S: ProbeStore + 'static>(store: S) -> (Router, Arc<S>) {
    let store = Arc::new(store);
    let state = AppState::new(
        Shared(store.clone()),
        Some(&Secret::new(TOKEN)),
        Duration::from_secs(180),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    );
    (router(Arc::new(state)), store)
}

pub async fn call(router: Router, req: http::Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
    let mut b = http::Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// One counter series on `/metrics` for [`METRICS_TOKEN`].
pub async fn metrics_app() -> Router {
    let series = MemorySeriesStore::new();
    let mut batch = BatchMetrics::default();
    let mut guard = CardinalityGuard::default();
    let key = SeriesKey::new("auth_requests_total", [("status", "failure")]);
    batch
        .apply(key, Update::CounterAdd(5.0), &mut guard)
        .unwrap();
    series
        .apply_batch("b", &batch, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let info = MetricInfo {
        name: "auth_requests_total".into(),
        kind: MetricKind::Counter,
        help: Some("Authentication requests.".into()),
        labels: vec!["status".into()],
    };
    let state = AppState::new(
        store(None),
        Some(&Secret::new(TOKEN)),
        Duration::from_secs(180),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    )
    .with_metrics(series, Some(&Secret::new(METRICS_TOKEN)), vec![info]);
    router(Arc::new(state))
}

/// Silences on a fixed clock, for [`ADMIN`]; and the silence store.
pub fn app_at(
    now: OffsetDateTime,
    silences: MemorySilenceStore,
) -> (Router, Arc<MemorySilenceStore>) {
    app_with(now, silences, SilencePolicy::default())
}

pub fn app_with(
    now: OffsetDateTime,
    silences: MemorySilenceStore,
    policy: SilencePolicy,
) -> (Router, Arc<MemorySilenceStore>) {
    let silences = Arc::new(silences);
    let state = AppState::new(
        store(None),
        Some(&Secret::new(TOKEN)),
        Duration::from_secs(180),
        Duration::from_secs(10),
        Arc::new(ManualClock::new(now)),
    )
    .with_silences(Shared(silences.clone()), Some(&Secret::new(ADMIN)))
    .with_silence_policy(policy);
    (router(Arc::new(state)), silences)
}

pub fn post(body: impl Into<Body>, auth: Option<&str>) -> http::Request<Body> {
    let mut b = http::Request::post("/api/silences").header("content-type", "application/json");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(body.into()).unwrap()
}

pub const VALID: &str = r#"{"matchers":[{"name":"category","value":"security"},
    {"name":"rule","value":"auth_.*","is_regex":true}],
    "duration_seconds":3600,"comment":"pen test until 13:00","created_by":"alice",
    "security":true}"#;
