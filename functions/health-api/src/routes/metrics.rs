//! `GET /metrics`: every stored series of the log metrics, as Prometheus
//! text or (when asked by `Accept`) OpenMetrics, behind its own bearer token.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monitoring_core::domain::metrics::exposition;

use crate::auth::Access;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn metrics(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !access.granted {
        tracing::warn!(
            token_presented = access.token_presented(),
            "metrics refused: missing or wrong bearer token"
        );
        return Err(ApiError::Unauthorized);
    }
    let mut series = Vec::new();
    if let Some(source) = &state.series {
        let reads = state.metrics.iter().map(|m| source.read_metric(&m.name));
        for result in futures::future::join_all(reads).await {
            match result {
                Ok(s) => series.extend(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read metric series");
                    return Err(ApiError::MetricsUnavailable);
                }
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
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode, header};
    use http_body_util::BodyExt;
    use monitoring_core::domain::metrics::exposition;
    use tower::ServiceExt;

    use crate::testkit::{METRICS_TOKEN, app, get, metrics_app, store};

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
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let (status, headers, body) = text(metrics_app().await, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert!(!body.contains("auth_requests_total"));
        }
    }

    #[tokio::test]
    async fn serves_prometheus_text_and_openmetrics() {
        let bearer = format!("Bearer {METRICS_TOKEN}");
        let (status, headers, body) =
            text(metrics_app().await, &[("authorization", &bearer)]).await;
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
            metrics_app().await,
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
        let (router, _) = app(store(None));
        let (status, _, _) = text(router, &[("authorization", "Bearer anything")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
