//! `GET /api/health` in the guide's shape or as `application/health+json`,
//! public or (with the health token) detailed. It reads the latest stored
//! probe results with one store request and never calls the dependencies
//! itself, so a slow database cannot slow it down.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monitoring_core::domain::health_report::{HealthReport, Visibility};
use monitoring_core::domain::timefmt::rfc3339_millis;

use crate::HEALTH_JSON;
use crate::auth::Access;
use crate::state::AppState;

pub async fn health(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
) -> Response {
    let visibility = visibility(&access);
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

/// Details for the health token; a wrong token (when one is configured)
/// is logged and gets the public answer.
fn visibility(access: &Access) -> Visibility {
    if access.granted {
        return Visibility::Detailed;
    }
    if access.token_presented() && access.configured {
        tracing::warn!("health details refused: token does not match");
    }
    Visibility::Public
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
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use monitoring_core::domain::probe_result::{Component, Observation, ProbeResult};
    use monitoring_core::ports::{ProbeStore, StoreError, SystemClock};

    use crate::testkit::{TOKEN, app, call, get, store};
    use crate::{AppState, HEALTH_JSON, router};

    #[tokio::test]
    async fn healthy_system_answers_200_in_the_guide_shape() {
        let (router, probes) = app(store(None));
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
        assert_eq!(probes.latest_calls(), 1, "one store request per answer");
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

    /// Unset means off: components the probe found without settings answer
    /// 200, listed as `not_configured`, in both formats.
    #[tokio::test]
    async fn components_that_are_not_configured_keep_the_answer_200() {
        let store = store(None);
        store.put(
            [Component::Redis, Component::Certificates]
                .into_iter()
                .map(|c| {
                    ProbeResult::from_observation(
                        c,
                        Observation::not_configured("not set"),
                        time::OffsetDateTime::now_utc(),
                        0.1,
                    )
                })
                .collect(),
        );
        let (router, probes) = app(store);
        let (status, _, body) = call(router.clone(), get("/api/health", &[])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "healthy");
        assert_eq!(
            body["components"]["redis"],
            serde_json::json!({"healthy": true, "status": "not_configured"})
        );
        assert_eq!(
            body["components"]["database"],
            serde_json::json!({"healthy": true})
        );
        let (status, _, body) = call(
            router,
            get("/api/health", &[("accept", "application/health+json")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "pass");
        assert_eq!(
            body["notes"],
            serde_json::json!(["redis: not_configured", "certificates: not_configured"])
        );
        assert!(body["checks"].get("redis:responseTime").is_none());
        assert_eq!(probes.latest_calls(), 2);
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
}
