//! The silences in Alertmanager's v2 shape (`GET`/`POST /api/v2/silences`,
//! `GET`/`DELETE /api/v2/silence/{id}`), so `amtool silence
//! add/query/expire` works with the admin token. The mapping is
//! `crate::alertmanager`; the checks are those of `/api/silences`
//! (`silences`). Refusals are answered in Alertmanager's error shape
//! ([`AmError`]).

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::alertmanager::{self, GettableSilence, PostableSilence};
use crate::auth::Access;
use crate::error::{AmError, ApiError};
use crate::routes::silences::{
    admin, create_checked, expire_checked, no_store, silence_body, store_failed,
};
use crate::state::AppState;

/// `POST /api/v2/silences`: Alertmanager's shape, mapped (see
/// `alertmanager`); answers `{"silenceID": "<id>"}` as Alertmanager does.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AmError> {
    let (store, caller) = admin(&state, access)?;
    let bytes = silence_body(&headers, body).await?;
    let request = serde_json::from_slice::<PostableSilence>(&bytes)
        .map_err(|e| format!("the body is not an Alertmanager silence: {e}"))
        .and_then(|p| p.into_request().map_err(|e| e.to_string()))
        .map_err(|message| {
            tracing::warn!(reason = "unmappable", error = %message, "silence refused");
            ApiError::Unmappable(message)
        })?;
    let now = state.clock.now();
    let silence = create_checked(&state, store, &caller, request, now).await?;
    Ok(no_store(
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "silenceID": silence.id })),
        )
            .into_response(),
    ))
}

/// `GET /api/v2/silences[?filter=...]`: every silence, expired ones
/// included (as Alertmanager lists them; amtool hides them unless asked).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    RawQuery(query): RawQuery,
) -> Result<Response, AmError> {
    let (store, _) = admin(&state, access)?;
    let filters = alertmanager::filters(query.as_deref())
        .map_err(|e| ApiError::InvalidQuery(e.to_string()))?;
    let now = state.clock.now();
    let silences = store.list(now, true).await.map_err(|e| store_failed(&e))?;
    let shown: Vec<GettableSilence> = silences
        .iter()
        .filter(|s| filters.iter().all(|f| f.keeps(s)))
        .map(|s| GettableSilence::new(s, now))
        .collect();
    Ok(no_store(
        (StatusCode::OK, axum::Json(shown)).into_response(),
    ))
}

/// `GET /api/v2/silence/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, AmError> {
    let (store, _) = admin(&state, access)?;
    let now = state.clock.now();
    let silences = store.list(now, true).await.map_err(|e| store_failed(&e))?;
    let silence = silences
        .iter()
        .find(|s| s.id == id)
        .ok_or(ApiError::UnknownSilence)?;
    Ok(no_store(
        (
            StatusCode::OK,
            axum::Json(GettableSilence::new(silence, now)),
        )
            .into_response(),
    ))
}

/// `DELETE /api/v2/silence/{id}`: as `DELETE /api/silences/{id}`, with
/// Alertmanager's empty 200.
pub async fn expire(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, AmError> {
    let (store, caller) = admin(&state, access)?;
    expire_checked(store, &caller, &id, state.clock.now()).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use monitoring_core::memory::silences::MemorySilenceStore;
    use serde_json::{Value, json};

    use crate::testkit::{ADMIN, T0, app_at, call, get};

    /// What the router refuses before reading the request keeps our shape
    /// (amtool shows the status); a refused silence request answers
    /// Alertmanager's, a JSON string, never cached.
    #[tokio::test]
    async fn refusals_keep_the_shape_of_who_refused() {
        let admin = format!("Bearer {ADMIN}");
        let (router, _) = app_at(T0, MemorySilenceStore::new());
        let (status, headers, body) = call(router.clone(), get("/api/v2/silences", &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(headers.get(header::CACHE_CONTROL).is_none());

        let id = "0123456789abcdef0123456789abcdef";
        let (status, headers, body) = call(
            router.clone(),
            get(
                &format!("/api/v2/silence/{id}"),
                &[("authorization", &admin)],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, Value::String("no such silence".into()));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");

        let (status, headers, body) = call(
            router.clone(),
            get(
                "/api/v2/silences?filter=nonsense",
                &[("authorization", &admin)],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.is_string(), "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");

        let (status, _, body) = call(
            router,
            get("/api/v2/silences", &[("authorization", &admin)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!([]));
    }
}
