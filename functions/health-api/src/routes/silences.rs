//! `POST /api/silences`, `GET /api/silences` and `DELETE /api/silences/{id}`:
//! create, list and expire silences, behind the admin token; 404 when no
//! silence store is configured. Creating and expiring go through
//! [`create_checked`] and [`expire_checked`], which the Alertmanager-shaped
//! routes (`alertmanager_v2`) share.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monitoring_core::domain::silence::{NewSilence, Silence, SilenceError};
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{ExpireOutcome, StoreError};
use serde::Serialize;
use time::OffsetDateTime;

use crate::MAX_SILENCE_BODY_BYTES;
use crate::audit::Caller;
use crate::auth::Access;
use crate::error::ApiError;
use crate::state::{AppState, Silences};

/// A silence as the API shows it: the stored fields and where it stands now.
#[derive(Serialize)]
struct SilenceView<'a> {
    #[serde(flatten)]
    silence: &'a Silence,
    /// `pending` (starts later), `active` or `expired`.
    status: &'static str,
}

impl<'a> SilenceView<'a> {
    fn new(silence: &'a Silence, now: OffsetDateTime) -> Self {
        let status = if silence.ends_at <= now {
            "expired"
        } else if silence.starts_at > now {
            "pending"
        } else {
            "active"
        };
        SilenceView { silence, status }
    }
}

/// The silence store and the caller's identity, once the request is known
/// to be allowed: 404 without a store (the routes do not exist), 401
/// without the admin token.
pub(crate) fn admin(state: &AppState, access: Access) -> Result<(&dyn Silences, Caller), ApiError> {
    let store = state.silences.as_deref().ok_or(ApiError::NotFound)?;
    if !access.granted {
        tracing::warn!(
            token_presented = access.token_presented(),
            "silences refused: missing or wrong admin token"
        );
        return Err(ApiError::Unauthorized);
    }
    Ok((store, access.caller))
}

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The silence store failed: logged here, answered 503.
pub(crate) fn store_failed(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "silence store unavailable");
    ApiError::SilencesUnavailable
}

/// The body of a create request, at most [`MAX_SILENCE_BODY_BYTES`].
pub(crate) async fn silence_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    // Refuse a declared oversize before reading anything.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_SILENCE_BODY_BYTES as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    // Lambda hands over the body already in memory, so the limit is the
    // only way reading it can fail.
    axum::body::to_bytes(body, MAX_SILENCE_BODY_BYTES)
        .await
        .map_err(|_| ApiError::BodyTooLarge)
}

/// Validates `request` under the policy and stores it: the one path both
/// API shapes create silences through.
pub(crate) async fn create_checked(
    state: &AppState,
    store: &dyn Silences,
    caller: &Caller,
    request: NewSilence,
    now: OffsetDateTime,
) -> Result<Silence, ApiError> {
    let created_by = caller.to_string();
    let silence = request
        .validate(now, &created_by, &state.silence_policy)
        .map_err(refused)?;
    // A check before the write, not a lock: concurrent creates can pass it
    // together, so the bound can be exceeded by the number of admin
    // requests in flight at once, which is what it is for (a runaway
    // script, not a race).
    let existing = store.list(now, false).await.map_err(|e| store_failed(&e))?;
    state
        .silence_policy
        .admit(&existing, now)
        .map_err(refused)?;
    store.create(&silence).await.map_err(|e| store_failed(&e))?;
    tracing::info!(
        id = %silence.id,
        created_by = %silence.created_by,
        requested_by = silence.requested_by.as_deref().unwrap_or(""),
        security = silence.security,
        matchers = silence.matchers.len(),
        ends_at = %rfc3339_millis(silence.ends_at),
        "silence created"
    );
    Ok(silence)
}

/// A refused silence request: 409 when the limit on silences is reached
/// (the request itself was fine), 400 otherwise. Logged with its reason.
fn refused(e: SilenceError) -> ApiError {
    let error = ApiError::Silence(e);
    tracing::warn!(reason = error.code(), error = %error, "silence refused");
    error
}

/// Ends silence `id` now for `caller`: 404 for an unknown id, 409 for one
/// that has already ended.
pub(crate) async fn expire_checked(
    store: &dyn Silences,
    caller: &Caller,
    id: &str,
    now: OffsetDateTime,
) -> Result<Silence, ApiError> {
    // Ids are 32 hex digits; anything else names no silence, and is not
    // worth a store request.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        tracing::warn!(reason = "unknown_silence", "silence expiry refused");
        return Err(ApiError::UnknownSilence);
    }
    let expired_by = caller.to_string();
    match store.expire(id, now, &expired_by).await {
        Ok(ExpireOutcome::Expired(silence)) => {
            tracing::info!(
                id = %silence.id,
                expired_by = %expired_by,
                created_by = %silence.created_by,
                security = silence.security,
                "silence expired"
            );
            Ok(silence)
        }
        Ok(ExpireOutcome::AlreadyEnded(_)) => {
            tracing::warn!(reason = "already_ended", id = %id, "silence expiry refused");
            Err(ApiError::AlreadyExpired)
        }
        Ok(ExpireOutcome::NotFound) => {
            tracing::warn!(reason = "unknown_silence", id = %id, "silence expiry refused");
            Err(ApiError::UnknownSilence)
        }
        Err(e) => Err(store_failed(&e)),
    }
}

/// `POST /api/silences`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (store, caller) = admin(&state, access)?;
    let bytes = silence_body(&headers, body).await?;
    let request: NewSilence =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let now = state.clock.now();
    let silence = create_checked(&state, store, &caller, request, now).await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            axum::Json(SilenceView::new(&silence, now)),
        )
            .into_response(),
    ))
}

/// `GET /api/silences[?all=true]`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (store, _) = admin(&state, access)?;
    let all = include_expired(query.as_deref()).map_err(ApiError::InvalidQuery)?;
    let now = state.clock.now();
    let silences = store.list(now, all).await.map_err(|e| store_failed(&e))?;
    let views: Vec<SilenceView<'_>> = silences.iter().map(|s| SilenceView::new(s, now)).collect();
    Ok(no_store(
        (StatusCode::OK, axum::Json(views)).into_response(),
    ))
}

/// `DELETE /api/silences/{id}`: ends the silence now. It stays listed
/// (`?all=true`) as expired, with who ended it and when.
pub async fn expire(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, caller) = admin(&state, access)?;
    let now = state.clock.now();
    let silence = expire_checked(store, &caller, &id, now).await?;
    Ok(no_store(
        (StatusCode::OK, axum::Json(SilenceView::new(&silence, now))).into_response(),
    ))
}

/// `?all=true` (or `1`) includes expired silences; `false`/`0`/absent not.
fn include_expired(query: Option<&str>) -> Result<bool, String> {
    let mut all = false;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if name != "all" {
            return Err(format!(
                "unknown query parameter {name:?}; only `all` is supported"
            ));
        }
        all = match value {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err("all: must be true or false".to_owned()),
        };
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use monitoring_core::domain::silence::{
        Matcher, NewSilence, RuleLabels, Silence, SilencePolicy,
    };
    use monitoring_core::memory::silences::MemorySilenceStore;
    use monitoring_core::ports::SystemClock;
    use time::OffsetDateTime;

    use crate::MAX_SILENCE_BODY_BYTES;
    use crate::testkit::{ADMIN, T0, TOKEN, VALID, app, app_at, app_with, call, get, post, store};
    use crate::{AppState, router};

    fn silence(minutes: u64, at: OffsetDateTime) -> Silence {
        NewSilence {
            matchers: vec![Matcher::equal("rule", "auth_failures")],
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(minutes * 60),
            comment: "known noisy key".into(),
            requested_by: None,
            security: true,
        }
        .validate(at, "admin-token", &SilencePolicy::default())
        .unwrap()
    }

    fn policy() -> SilencePolicy {
        SilencePolicy::default().with_rules(vec![
            RuleLabels::new("brute_force", "security", "critical"),
            RuleLabels::new("auth_failures", "security", "high"),
            RuleLabels::new("api_errors", "performance", "medium"),
        ])
    }

    fn delete(id: &str, auth: Option<&str>) -> http::Request<Body> {
        let mut b = http::Request::delete(format!("/api/silences/{id}"));
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn delete_expires_a_silence_and_keeps_it_listed() {
        let s = silence(60, T0 - time::Duration::minutes(5));
        let (router, silences) = app_at(T0, MemorySilenceStore::with_silences([s.clone()]));
        let (status, _, body) = call(router.clone(), delete(&s.id, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, headers, body) = call(router.clone(), delete(&s.id, Some(&admin()))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["status"], "expired");
        assert_eq!(body["ends_at"], "2026-11-30T12:00:00Z");
        assert_eq!(body["expired_by"], "admin-token");
        assert_eq!(body["created_by"], "admin-token");
        assert_eq!(silences.len(), 1, "kept");
        let (_, _, list) = call(
            router.clone(),
            get("/api/silences", &[("authorization", &admin())]),
        )
        .await;
        assert_eq!(list, serde_json::json!([]));
        let (_, _, all) = call(
            router.clone(),
            get("/api/silences?all=true", &[("authorization", &admin())]),
        )
        .await;
        assert_eq!(all[0]["id"], s.id.as_str());
        assert_eq!(all[0]["expired_at"], "2026-11-30T12:00:00Z");

        let (status, _, body) = call(router.clone(), delete(&s.id, Some(&admin()))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "already_expired");
        let (status, _, body) = call(router.clone(), delete(&"0".repeat(32), Some(&admin()))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (status, _, _) = call(router, delete("../x", Some(&admin()))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_number_of_silences_is_bounded_with_a_clear_409() {
        let bounded = SilencePolicy {
            max_active: 2,
            ..policy()
        };
        let existing = [silence(60, T0), silence(90, T0)];
        let first = existing[0].id.clone();
        let (router, silences) = app_with(T0, MemorySilenceStore::with_silences(existing), bounded);
        let (status, _, body) = call(router.clone(), post(VALID, Some(&admin()))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "too_many_silences");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("2 unexpired silences already exist"),
            "{body}"
        );
        assert_eq!(silences.len(), 2);
        // Expiring one makes room.
        let (status, _, _) = call(router.clone(), delete(&first, Some(&admin()))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = call(router, post(VALID, Some(&admin()))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    fn admin() -> String {
        format!("Bearer {ADMIN}")
    }

    #[tokio::test]
    async fn an_admin_creates_and_lists_a_silence() {
        let (router, silences) = app_at(T0, MemorySilenceStore::new());
        let (status, headers, body) = call(router.clone(), post(VALID, Some(&admin()))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["status"], "active");
        assert_eq!(body["ends_at"], "2026-11-30T13:00:00Z");
        // The token's identity, not the client's word (kept as a note).
        assert_eq!(body["created_by"], "admin-token");
        assert_eq!(body["requested_by"], "alice");
        assert_eq!(body["security"], true);
        assert_eq!(body["matchers"][1]["is_regex"], true);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        assert_eq!(silences.len(), 1);

        let (status, _, list) =
            call(router, get("/api/silences", &[("authorization", &admin())])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], id.as_str());
    }

    #[tokio::test]
    async fn expired_silences_show_only_when_asked() {
        let store = MemorySilenceStore::with_silences([
            silence(60, T0 - time::Duration::hours(2)),
            silence(60, T0),
            silence(10, T0 + time::Duration::minutes(30)),
        ]);
        // Ends: T0 - 1 h, T0 + 60 min, T0 + 40 min.
        let now = T0 + time::Duration::minutes(35);
        let (router, _) = app_at(now, store);
        let auth = admin();
        let (_, _, active) = call(
            router.clone(),
            get("/api/silences", &[("authorization", &auth)]),
        )
        .await;
        let statuses: Vec<_> = active
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(statuses, ["active", "active"]);
        for query in ["all=true", "all=1", "all"] {
            let (status, _, all) = call(
                router.clone(),
                get(
                    &format!("/api/silences?{query}"),
                    &[("authorization", &auth)],
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(all.as_array().unwrap().len(), 3, "{query}");
            assert_eq!(all[0]["status"], "expired", "soonest end first");
        }
        let (status, _, body) = call(
            router,
            get("/api/silences?all=maybe", &[("authorization", &auth)]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_query");
    }

    #[tokio::test]
    async fn the_admin_token_is_required() {
        let health_token = format!("Bearer {TOKEN}");
        for auth in [
            None,
            Some("Bearer wrong"),
            Some(health_token.as_str()),
            Some(ADMIN),
        ] {
            let (router, silences) = app_at(T0, MemorySilenceStore::new());
            let (status, headers, body) = call(router.clone(), post(VALID, auth)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(body["error"], "unauthorized");
            assert!(silences.is_empty());
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let (status, _, _) = call(router, get("/api/silences", &headers)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        }
    }

    #[tokio::test]
    async fn no_configured_admin_token_means_401_for_everyone() {
        let state = AppState::new(
            store(None),
            None,
            Duration::from_secs(180),
            Duration::from_secs(10),
            Arc::new(SystemClock),
        )
        .with_silences(MemorySilenceStore::new(), None);
        let (status, _, _) = call(router(Arc::new(state)), post(VALID, Some(&admin()))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn invalid_requests_get_a_clear_400() {
        let cases = [
            ("not json", "invalid_json", "not a silence request"),
            (
                r#"{"matchers":[],"duration_seconds":60,"comment":"c","created_by":"a"}"#,
                "invalid_silence",
                "matchers: at least one matcher is required",
            ),
            (
                r#"{"matchers":[{"name":"host","value":"x"}],"duration_seconds":60,"comment":"c","created_by":"a"}"#,
                "invalid_silence",
                "matchers[0].name",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":"(x","is_regex":true}],"duration_seconds":60,"comment":"c","created_by":"a"}"#,
                "invalid_silence",
                "not a valid regular expression",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":"x"}],"ends_at":"2026-11-30T11:00:00Z","comment":"c","created_by":"a"}"#,
                "invalid_silence",
                "ends_at: must be in the future",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":"x"}],"duration_seconds":3000000,"comment":"c","created_by":"a"}"#,
                "too_long",
                "longer than the maximum of 604800 seconds",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":"x"}],"duration_seconds":60,"comment":"","created_by":"a"}"#,
                "invalid_silence",
                "comment: must not be empty",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":"x"}],"duration_seconds":60,"comment":"c","created_by":"a","extra":1}"#,
                "invalid_json",
                "unknown field `extra`",
            ),
            (
                r#"{"matchers":[{"name":"category","value":"security"}],"duration_seconds":60,"comment":"c"}"#,
                "security_flag_required",
                "send \"security\": true",
            ),
            (
                r#"{"matchers":[{"name":"category","value":"security"}],"duration_seconds":60,"comment":" ","security":true}"#,
                "invalid_silence",
                "comment: must not be empty",
            ),
            (
                r#"{"matchers":[{"name":"rule","value":".+","is_regex":true}],"duration_seconds":60,"comment":"c","security":true}"#,
                "matches_everything",
                "match every configured alert rule",
            ),
        ];
        for (body, code, message) in cases {
            let (router, silences) = app_with(T0, MemorySilenceStore::new(), policy());
            let (status, _, answer) = call(router, post(body, Some(&admin()))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["error"], code, "{body}");
            let text = answer["message"].as_str().unwrap();
            assert!(text.contains(message), "{body}: {text}");
            assert!(silences.is_empty());
        }
    }

    #[tokio::test]
    async fn oversized_bodies_get_413() {
        let big = format!(
            r#"{{"matchers":[{{"name":"rule","value":"x"}}],"duration_seconds":60,"comment":"{}","created_by":"a"}}"#,
            "c".repeat(MAX_SILENCE_BODY_BYTES)
        );
        let (router, _) = app_at(T0, MemorySilenceStore::new());
        // Without Content-Length: the limit applies while reading.
        let (status, _, body) = call(router.clone(), post(big.clone(), Some(&admin()))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"], "body_too_large");
        let req = http::Request::post("/api/silences")
            .header("authorization", admin())
            .header("content-length", big.len().to_string())
            .body(Body::from(big))
            .unwrap();
        let (status, _, _) = call(router, req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn other_methods_get_405() {
        for method in ["DELETE", "PUT", "PATCH"] {
            let (router, _) = app_at(T0, MemorySilenceStore::new());
            let req = http::Request::builder()
                .method(method)
                .uri("/api/silences")
                .header("authorization", admin())
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = call(router, req).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(body["error"], "method_not_allowed");
        }
    }

    #[tokio::test]
    async fn without_a_silence_store_the_routes_are_absent() {
        let (router, _) = app(store(None));
        let (status, _, body) = call(
            router.clone(),
            get("/api/silences", &[("authorization", "Bearer x")]),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (status, _, _) = call(router, post(VALID, Some("Bearer x"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn health_still_answers_with_silences_configured() {
        let (router, _) = app_at(OffsetDateTime::now_utc(), MemorySilenceStore::new());
        let (status, _, body) = call(router, get("/api/health", &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
    }
}
