//! The health API's router:
//! - `GET /api/health` in the guide's shape or as `application/health+json`,
//!   public or (with the bearer token) detailed. It reads the latest stored
//!   probe results with one store request and never calls the dependencies
//!   itself, so a slow database cannot slow it down.
//! - `GET /metrics`: every stored series of the log metrics, as Prometheus
//!   text or (when asked by `Accept`) OpenMetrics, behind its own bearer token.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::config::Secret;
use shared::domain::health_report::{HealthReport, Visibility};
use shared::domain::metrics::exposition;
use shared::domain::metrics::series::StoredSeries;
use shared::domain::rules::MetricInfo;
use shared::domain::timefmt::rfc3339_millis;
use shared::ports::{Clock, ProbeStore, SeriesSource, StoreError};
use subtle::ConstantTimeEq;

pub const HEALTH_JSON: &str = "application/health+json";

/// Shared, read-only state of the router.
pub struct AppState<S, M = NoSeries> {
    pub store: S,
    /// SHA-256 of the details token; comparing digests keeps the comparison
    /// constant-time whatever the presented token's length.
    token_digest: Option<[u8; 32]>,
    pub stale_after: Duration,
    pub cache_max_age: Duration,
    pub clock: Arc<dyn Clock>,
    pub series: M,
    metrics_token_digest: Option<[u8; 32]>,
    /// The metrics `/metrics` lists, with their type and help.
    metrics: Vec<MetricInfo>,
}

/// No log metrics: `/metrics` lists nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSeries;

impl SeriesSource for NoSeries {
    async fn read_metric(&self, _name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        Ok(Vec::new())
    }
}

fn digest(secret: &Secret) -> [u8; 32] {
    Sha256::digest(secret.expose().as_bytes()).into()
}

/// `Authorization: Bearer <token>` matches `expected` (constant time).
fn bearer_matches(headers: &HeaderMap, expected: Option<&[u8; 32]>) -> Option<bool> {
    let expected = expected?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())?;
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    Some(bool::from(presented.ct_eq(expected)))
}

impl<S> AppState<S, NoSeries> {
    pub fn new(
        store: S,
        token: Option<&Secret>,
        stale_after: Duration,
        cache_max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AppState {
            store,
            token_digest: token.map(digest),
            stale_after,
            cache_max_age,
            clock,
            series: NoSeries,
            metrics_token_digest: None,
            metrics: Vec::new(),
        }
    }

    /// Serves `metrics` (their stored series) on `/metrics` to holders of `token`.
    pub fn with_metrics<M>(
        self,
        series: M,
        token: Option<&Secret>,
        metrics: Vec<MetricInfo>,
    ) -> AppState<S, M> {
        AppState {
            store: self.store,
            token_digest: self.token_digest,
            stale_after: self.stale_after,
            cache_max_age: self.cache_max_age,
            clock: self.clock,
            series,
            metrics_token_digest: token.map(digest),
            metrics,
        }
    }
}

impl<S, M> AppState<S, M> {
    /// Whether the request carries `Authorization: Bearer <token>`.
    fn visibility(&self, headers: &HeaderMap) -> Visibility {
        match bearer_matches(headers, self.token_digest.as_ref()) {
            Some(true) => Visibility::Detailed,
            Some(false) => {
                tracing::warn!("health details refused: token does not match");
                Visibility::Public
            }
            None => Visibility::Public,
        }
    }
}

pub fn router<S, M>(state: Arc<AppState<S, M>>) -> Router
where
    S: ProbeStore + 'static,
    M: SeriesSource + 'static,
{
    Router::new()
        .route("/api/health", get(health::<S, M>))
        .route("/metrics", get(metrics::<S, M>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

fn error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, axum::Json(ErrorBody { error, message })).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not support the method",
    )
}

fn wants_health_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(HEALTH_JSON))
        })
}

async fn health<S: ProbeStore, M>(
    State(state): State<Arc<AppState<S, M>>>,
    headers: HeaderMap,
) -> Response {
    let visibility = state.visibility(&headers);
    let health_json = wants_health_json(&headers);
    let now = state.clock.now();
    let latest = match state.store.latest().await {
        Ok(latest) => latest,
        Err(e) => {
            tracing::error!(error = %e, "cannot read probe results");
            return store_unavailable(now, health_json);
        }
    };
    let report = HealthReport::assess(latest, now, state.stale_after);
    if visibility == Visibility::Detailed {
        tracing::info!(status = report.status.as_str(), "health details served");
    }
    let code = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = if health_json {
        let mut r = (code, axum::Json(report.health_json_body(visibility))).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
        r
    } else {
        (code, axum::Json(report.guide_body(visibility))).into_response()
    };
    let cache = match visibility {
        // Details must not sit in a shared cache.
        Visibility::Detailed => HeaderValue::from_static("no-store"),
        Visibility::Public => {
            HeaderValue::from_str(&format!("max-age={}", state.cache_max_age.as_secs()))
                .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    response
}

fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

async fn metrics<S, M: SeriesSource>(
    State(state): State<Arc<AppState<S, M>>>,
    headers: HeaderMap,
) -> Response {
    match bearer_matches(&headers, state.metrics_token_digest.as_ref()) {
        Some(true) => {}
        outcome => {
            tracing::warn!(
                token_presented = outcome.is_some(),
                "metrics refused: missing or wrong bearer token"
            );
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let reads = state
        .metrics
        .iter()
        .map(|m| state.series.read_metric(&m.name));
    let mut series = Vec::new();
    for result in futures::future::join_all(reads).await {
        match result {
            Ok(s) => series.extend(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot read metric series");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "metric series cannot be read right now",
                );
            }
        }
    }
    tracing::info!(series = series.len(), "metrics served");
    let (body, content_type) = if wants_openmetrics(&headers) {
        (
            exposition::render_openmetrics(&series, &state.metrics),
            exposition::OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (
            exposition::render_prometheus(&series, &state.metrics),
            exposition::PROMETHEUS_CONTENT_TYPE,
        )
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Without the store nothing is known: unhealthy, and said so plainly.
fn store_unavailable(now: time::OffsetDateTime, health_json: bool) -> Response {
    let timestamp = rfc3339_millis(now);
    let mut response = if health_json {
        let body = serde_json::json!({
            "status": "fail",
            "output": "health store unavailable",
        });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
        r
    } else {
        let body = serde_json::json!({
            "status": "unhealthy",
            "components": {},
            "reason": "store_unavailable",
            "timestamp": timestamp,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use shared::adapters::memory_store::MemoryStore;
    use shared::domain::probe_result::{
        Component, Measurement, Observation, ProbeResult, Reason, Status, Unit,
    };
    use shared::ports::{StoreError, SystemClock};
    use tower::ServiceExt;

    const TOKEN: &str = "t0ken-for-tests";

    fn result(component: Component, status: Status) -> ProbeResult {
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

    fn store(failing: Option<Component>) -> MemoryStore {
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

    fn app<S: ProbeStore + 'static>(store: S) -> (Router, Arc<AppState<S>>) {
        let state = Arc::new(AppState::new(
            store,
            Some(&Secret::new(TOKEN)),
            Duration::from_secs(180),
            Duration::from_secs(10),
            Arc::new(SystemClock),
        ));
        (router(state.clone()), state)
    }

    async fn call(router: Router, req: http::Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = router.oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
        let mut b = http::Request::get(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn healthy_system_answers_200_in_the_guide_shape() {
        let (router, state) = app(store(None));
        let (status, headers, body) = call(router, get("/api/health", &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
        let components = body["components"].as_object().unwrap();
        let names: Vec<_> = components.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "certificates",
                "database",
                "drift_detection",
                "oauth",
                "redis"
            ]
        );
        assert!(
            components
                .values()
                .all(|c| c == &serde_json::json!({"healthy": true}))
        );
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=10");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            state.store.latest_calls(),
            1,
            "one store request per answer"
        );
    }

    #[tokio::test]
    async fn a_failing_component_answers_503_without_details() {
        let (router, _) = app(store(Some(Component::Redis)));
        let (status, _, body) = call(router, get("/api/health", &[])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(
            body["components"]["redis"],
            serde_json::json!({"healthy": false, "reason": "unreachable"})
        );
        assert!(!body.to_string().contains("internal.example"));
    }

    #[tokio::test]
    async fn details_need_the_right_token() {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic dDBrZW4="),
            Some("Bearer "),
            Some(TOKEN),
        ] {
            let (router, _) = app(store(Some(Component::Database)));
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let (_, _, body) = call(router, get("/api/health", &headers)).await;
            let text = body.to_string();
            assert!(!text.contains("internal.example"), "{auth:?}: {text}");
            assert!(body["components"]["database"].get("latency_ms").is_none());
        }
        let (router, _) = app(store(Some(Component::Database)));
        let bearer = format!("bearer {TOKEN}");
        let (status, headers, body) =
            call(router, get("/api/health", &[("authorization", &bearer)])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["components"]["database"]["error"],
            "connect db.internal.example:5432 refused"
        );
        assert_eq!(body["components"]["redis"]["latency_ms"], 3.0);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn no_configured_token_means_no_details_for_anyone() {
        let state = Arc::new(AppState::new(
            store(None),
            None,
            Duration::from_secs(180),
            Duration::from_secs(10),
            Arc::new(SystemClock),
        ));
        let bearer = format!("Bearer {TOKEN}");
        let (_, _, body) = call(
            router(state),
            get("/api/health", &[("authorization", &bearer)]),
        )
        .await;
        assert!(body["components"]["redis"].get("latency_ms").is_none());
    }

    #[tokio::test]
    async fn health_json_is_negotiated() {
        let (router, _) = app(store(Some(Component::Oauth)));
        let accept = "text/html;q=0.9, application/health+json;q=1";
        let (status, headers, body) = call(router, get("/api/health", &[("accept", accept)])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=10");
        assert_eq!(body["status"], "fail");
        assert_eq!(body["checks"]["oauth:responseTime"][0]["status"], "fail");
        assert_eq!(
            body["checks"]["oauth:responseTime"][0]["output"],
            "unreachable"
        );
        assert_eq!(
            body["checks"]["database:responseTime"][0]["componentType"],
            "datastore"
        );
        assert!(
            body["checks"]["database:connections"][0]
                .get("observedValue")
                .is_none()
        );

        let (router, _) = app(store(None));
        let bearer = format!("Bearer {TOKEN}");
        let (status, _, body) = call(
            router,
            get(
                "/api/health",
                &[("accept", HEALTH_JSON), ("authorization", &bearer)],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "pass");
        let conns = &body["checks"]["database:connections"][0];
        assert_eq!(conns["observedValue"], 4.0);
        assert_eq!(conns["observedUnit"], "count");
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_json_errors() {
        let (router, _) = app(store(None));
        let (status, _, body) = call(router, get("/api/nothing", &[])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (router, _) = app(store(None));
        let req = http::Request::post("/api/health")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = call(router, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "method_not_allowed");
    }

    struct DownStore;
    impl ProbeStore for DownStore {
        async fn save(&self, _: &[ProbeResult], _: Duration) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn latest(&self) -> Result<Vec<ProbeResult>, StoreError> {
            Err(StoreError::Unavailable(
                "ResourceNotFoundException: table x".into(),
            ))
        }
    }

    #[tokio::test]
    async fn store_outage_is_unhealthy_and_says_little() {
        let (router, _) = app(DownStore);
        let (status, headers, body) = call(router, get("/api/health", &[])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["reason"], "store_unavailable");
        assert!(!body.to_string().contains("table x"));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }

    /// The sample events in `events/` drive the router as API Gateway would.
    #[tokio::test]
    async fn sample_events_reach_the_router() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        for (file, content_type) in [
            ("api-health.json", "application/json"),
            ("api-health-json.json", HEALTH_JSON),
            ("api-health-details.json", "application/json"),
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            let request = lambda_http::request::from_str(&text).unwrap();
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::from(body.to_vec()));
            let (router, _) = app(store(None));
            let (status, headers, _) = call(router, request).await;
            assert_eq!(status, StatusCode::OK, "{file}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{file}");
        }
    }

    mod metrics_endpoint {
        use super::*;
        use shared::adapters::memory_series::MemorySeriesStore;
        use shared::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
        use shared::domain::metrics::series::{MetricKind, SeriesKey};
        use shared::ports::SeriesStore;

        const METRICS_TOKEN: &str = "scrape-token";

        async fn app() -> Router {
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

        async fn text(router: Router, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
            let response = router.oneshot(get("/metrics", headers)).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
        }

        #[tokio::test]
        async fn needs_its_own_bearer_token() {
            for auth in [None, Some("Bearer wrong"), Some("Bearer t0ken-for-tests")] {
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", *a)).collect();
                let (status, headers, body) = text(app().await, &headers).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
                assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
                assert!(!body.contains("auth_requests_total"));
            }
        }

        #[tokio::test]
        async fn serves_prometheus_text_and_openmetrics() {
            let bearer = format!("Bearer {METRICS_TOKEN}");
            let (status, headers, body) = text(app().await, &[("authorization", &bearer)]).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                headers[header::CONTENT_TYPE],
                exposition::PROMETHEUS_CONTENT_TYPE
            );
            assert!(
                body.contains("# TYPE auth_requests_total counter"),
                "{body}"
            );
            assert!(
                body.contains("auth_requests_total{status=\"failure\"} 5"),
                "{body}"
            );

            let (_, headers, body) = text(
                app().await,
                &[
                    ("authorization", &bearer),
                    ("accept", "application/openmetrics-text; version=1.0.0"),
                ],
            )
            .await;
            assert_eq!(
                headers[header::CONTENT_TYPE],
                exposition::OPENMETRICS_CONTENT_TYPE
            );
            assert!(body.ends_with("# EOF\n"), "{body}");
        }

        #[tokio::test]
        async fn without_a_configured_token_nobody_gets_metrics() {
            let (router, _) = super::app(store(None));
            let (status, _, _) = text(router, &[("authorization", "Bearer anything")]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
}
