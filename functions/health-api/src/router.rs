//! Which handler answers which request, and the auth layer in front of
//! them all.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::error::ApiError;
use crate::routes::{alertmanager_v2, health, metrics, silences};
use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/api/silences", get(silences::list).post(silences::create))
        .route(
            "/api/silences/{id}",
            axum::routing::delete(silences::expire),
        )
        .route(
            "/api/v2/silences",
            get(alertmanager_v2::list).post(alertmanager_v2::create),
        )
        .route(
            "/api/v2/silence/{id}",
            get(alertmanager_v2::get).delete(alertmanager_v2::expire),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
