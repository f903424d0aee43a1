//! The health API's router:
//! - `GET /api/health` in the guide's shape or as `application/health+json`,
//!   public or (with the bearer token) detailed. It reads the latest stored
//!   probe results with one store request and never calls the dependencies
//!   itself, so a slow database cannot slow it down.
//! - `GET /metrics`: every stored series of the log metrics, as Prometheus
//!   text or (when asked by `Accept`) OpenMetrics, behind its own bearer token.
//! - `POST /api/silences`, `GET /api/silences` and
//!   `DELETE /api/silences/{id}`: create, list and expire silences, behind
//!   the admin token; 404 when no silence store is configured.
//! - The same silences in Alertmanager's v2 shape (`GET`/`POST
//!   /api/v2/silences`, `GET`/`DELETE /api/v2/silence/{id}`), so `amtool
//!   silence add/query/expire` works with the admin token (`alertmanager`).
//!
//! Every authenticated call to these leaves an access audit record (`audit`).

pub mod alertmanager;
pub mod audit;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lambda_http::request::RequestContext;
use serde::Serialize;
use shared::config::Secret;
use shared::domain::health_report::{HealthReport, Visibility};
use shared::domain::metrics::exposition;
use shared::domain::metrics::series::StoredSeries;
use shared::domain::rules::MetricInfo;
use shared::domain::silence::{NewSilence, Silence, SilenceError, SilencePolicy};
use shared::domain::timefmt::rfc3339_millis;
use shared::ports::{Clock, ExpireOutcome, ProbeStore, SeriesSource, SilenceStore, StoreError};

use audit::{Action, AuditRecord, Caller, Role};
use tokens::Tokens;

pub const HEALTH_JSON: &str = "application/health+json";
/// The largest `POST /api/silences` body: a silence at its bounds (16
/// matchers of 256 characters, a 1 KiB comment) fits several times over.
pub const MAX_SILENCE_BODY_BYTES: usize = 16 * 1024;

/// Shared, read-only state of the router.
pub struct AppState<S, M = NoSeries, L = NoSilences> {
    pub store: S,
    /// The bearer tokens of the three roles (see `tokens`).
    tokens: Tokens,
    pub stale_after: Duration,
    pub cache_max_age: Duration,
    pub clock: Arc<dyn Clock>,
    pub series: M,
    /// The metrics `/metrics` lists, with their type and help.
    metrics: Vec<MetricInfo>,
    /// Where `/api/silences` reads and writes; `None`: the routes answer 404.
    pub silences: Option<L>,
    /// The bounds new silences must keep.
    pub silence_policy: SilencePolicy,
}

/// No log metrics: `/metrics` lists nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSeries;

impl SeriesSource for NoSeries {
    async fn read_metric(&self, _name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        Ok(Vec::new())
    }
}

/// No silence store: `/api/silences` answers 404.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSilences;

impl SilenceStore for NoSilences {
    async fn create(&self, _silence: &Silence) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("no silence store".into()))
    }
    async fn list(
        &self,
        _now: time::OffsetDateTime,
        _include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        Ok(Vec::new())
    }
    async fn expire(
        &self,
        _id: &str,
        _at: time::OffsetDateTime,
        _by: &str,
    ) -> Result<ExpireOutcome, StoreError> {
        Ok(ExpireOutcome::NotFound)
    }
}

impl<S> AppState<S, NoSeries, NoSilences> {
    pub fn new(
        store: S,
        token: Option<&Secret>,
        stale_after: Duration,
        cache_max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let fixed: Vec<(Role, &Secret)> = token.map(|t| (Role::Health, t)).into_iter().collect();
        AppState {
            store,
            tokens: Tokens::fixed(&fixed, clock.clone()),
            stale_after,
            cache_max_age,
            clock,
            series: NoSeries,
            metrics: Vec::new(),
            silences: None,
            silence_policy: SilencePolicy::default(),
        }
    }
}

impl<S, L> AppState<S, NoSeries, L> {
    /// Serves `metrics` (their stored series) on `/metrics` to holders of `token`.
    pub fn with_metrics<M>(
        self,
        series: M,
        token: Option<&Secret>,
        metrics: Vec<MetricInfo>,
    ) -> AppState<S, M, L> {
        AppState {
            store: self.store,
            tokens: self.tokens.with_fixed(Role::Metrics, token),
            stale_after: self.stale_after,
            cache_max_age: self.cache_max_age,
            clock: self.clock,
            series,
            metrics,
            silences: self.silences,
            silence_policy: self.silence_policy,
        }
    }
}

impl<S, M> AppState<S, M, NoSilences> {
    /// Serves `/api/silences` from `silences` to holders of `admin_token`
    /// (no token: 401 to everyone).
    pub fn with_silences<L>(self, silences: L, admin_token: Option<&Secret>) -> AppState<S, M, L> {
        AppState {
            store: self.store,
            tokens: self.tokens.with_fixed(Role::Admin, admin_token),
            stale_after: self.stale_after,
            cache_max_age: self.cache_max_age,
            clock: self.clock,
            series: self.series,
            metrics: self.metrics,
            silences: Some(silences),
            silence_policy: self.silence_policy,
        }
    }
}

impl<S, M, L> AppState<S, M, L> {
    /// Uses `tokens` (loaded and checked at start, refreshed on their TTL)
    /// for every role instead of the fixed ones given so far.
    pub fn with_tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Creates silences under `policy` instead of the defaults.
    pub fn with_silence_policy(mut self, policy: SilencePolicy) -> Self {
        self.silence_policy = policy;
        self
    }

    /// Whether the request carries the health token.
    async fn visibility(&self, headers: &HeaderMap) -> Visibility {
        let Some(token) = audit::presented_token(headers) else {
            return Visibility::Public;
        };
        let snapshot = self.tokens.snapshot().await;
        if !snapshot.has(Role::Health) {
            return Visibility::Public;
        }
        match snapshot.identify(token) {
            Some((Role::Health, _)) => Visibility::Detailed,
            _ => {
                tracing::warn!("health details refused: token does not match");
                Visibility::Public
            }
        }
    }

    /// Who the request's bearer token says the caller is (the role and
    /// version of the configured token it matches, compared in constant
    /// time, or a fingerprint), and whether it grants `action`.
    async fn caller(&self, headers: &HeaderMap, action: Action) -> (Caller, bool) {
        let Some(token) = audit::presented_token(headers) else {
            return (Caller::Anonymous, false);
        };
        match self.tokens.snapshot().await.identify(token) {
            Some((role, stage)) => (Caller::Token(role, stage), role == action.role()),
            None => (Caller::Unknown(audit::fingerprint(token)), false),
        }
    }
}

/// Records the calls [`Action::of`] names, once answered (see `audit`).
async fn audit_access<S, M, L>(
    State(state): State<Arc<AppState<S, M, L>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(action) = Action::of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let (caller, allowed) = state.caller(request.headers(), action).await;
    // A health check without a token is public, not an authenticated call.
    if action == Action::HealthDetails && caller == Caller::Anonymous {
        return next.run(request).await;
    }
    let time = rfc3339_millis(state.clock.now());
    let (source_ip, request_id) = audit::origin(request.extensions().get::<RequestContext>());
    let response = next.run(request).await;
    AuditRecord {
        time,
        action: action.as_str(),
        caller: caller.to_string(),
        result: if allowed { "allowed" } else { "denied" },
        status: response.status().as_u16(),
        source_ip,
        request_id,
    }
    .emit();
    response
}

pub fn router<S, M, L>(state: Arc<AppState<S, M, L>>) -> Router
where
    S: ProbeStore + 'static,
    M: SeriesSource + 'static,
    L: SilenceStore + 'static,
{
    Router::new()
        .route("/api/health", get(health::<S, M, L>))
        .route("/metrics", get(metrics::<S, M, L>))
        .route(
            "/api/silences",
            get(list_silences::<S, M, L>).post(create_silence::<S, M, L>),
        )
        .route(
            "/api/silences/{id}",
            axum::routing::delete(expire_silence::<S, M, L>),
        )
        .route(
            "/api/v2/silences",
            get(am_list_silences::<S, M, L>).post(am_create_silence::<S, M, L>),
        )
        .route(
            "/api/v2/silence/{id}",
            get(am_get_silence::<S, M, L>).delete(am_expire_silence::<S, M, L>),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_access::<S, M, L>,
        ))
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
    not_found_response()
}

fn not_found_response() -> Response {
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

async fn health<S: ProbeStore, M, L>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
) -> Response {
    let visibility = state.visibility(&headers).await;
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

fn unauthorized() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a bearer token is required",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn metrics<S, M: SeriesSource, L>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
) -> Response {
    if let Err(presented) = authorize(&state, &headers, Role::Metrics).await {
        tracing::warn!(
            token_presented = presented,
            "metrics refused: missing or wrong bearer token"
        );
        return unauthorized();
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

/// A silence as the API shows it: the stored fields and where it stands now.
#[derive(Serialize)]
struct SilenceView<'a> {
    #[serde(flatten)]
    silence: &'a Silence,
    /// `pending` (starts later), `active` or `expired`.
    status: &'static str,
}

impl<'a> SilenceView<'a> {
    fn new(silence: &'a Silence, now: time::OffsetDateTime) -> Self {
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

/// Why a silence request is refused before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No silence store: the routes do not exist (404).
    NotConfigured,
    /// No admin token, or a wrong one (401).
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotConfigured => not_found_response(),
            Refusal::Unauthorized => unauthorized(),
        }
    }
}

/// The identity of the caller when its token is `role`'s (current or
/// previous version); `Err(token_presented)` otherwise.
async fn authorize<S, M, L>(
    state: &AppState<S, M, L>,
    headers: &HeaderMap,
    role: Role,
) -> Result<Caller, bool> {
    let token = audit::presented_token(headers).ok_or(false)?;
    match state.tokens.snapshot().await.identify(token) {
        Some((r, stage)) if r == role => Ok(Caller::Token(r, stage)),
        _ => Err(true),
    }
}

/// The silence store and the caller's identity, once the request is known
/// to be allowed.
async fn silence_store<'a, S, M, L>(
    state: &'a AppState<S, M, L>,
    headers: &HeaderMap,
) -> Result<(&'a L, Caller), Refusal> {
    let store = state.silences.as_ref().ok_or(Refusal::NotConfigured)?;
    match authorize(state, headers, Role::Admin).await {
        Ok(caller) => Ok((store, caller)),
        Err(presented) => {
            tracing::warn!(
                token_presented = presented,
                "silences refused: missing or wrong admin token"
            );
            Err(Refusal::Unauthorized)
        }
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A silence request refused, in either API shape: the status, our error
/// code and the message naming the field.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refused {
            status,
            code,
            message: message.into(),
        }
    }

    /// `/api/silences`: `{"error", "message"}`.
    fn ours(self) -> Response {
        no_store(error(self.status, self.code, &self.message))
    }

    /// `/api/v2/...`: Alertmanager's error body, a JSON string (what its
    /// clients, amtool included, print).
    fn alertmanager(self) -> Response {
        no_store((self.status, axum::Json(self.message)).into_response())
    }

    fn store(e: &StoreError) -> Self {
        tracing::error!(error = %e, "silence store unavailable");
        Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "silences cannot be read or written right now",
        )
    }
}

/// The body of a create request, at most [`MAX_SILENCE_BODY_BYTES`].
async fn silence_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Refused> {
    let too_large = || {
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body must be at most {MAX_SILENCE_BODY_BYTES} bytes"),
        )
    };
    // Refuse a declared oversize before reading anything.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_SILENCE_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // Lambda hands over the body already in memory, so the limit is the
    // only way reading it can fail.
    axum::body::to_bytes(body, MAX_SILENCE_BODY_BYTES)
        .await
        .map_err(|_| too_large())
}

/// Validates `request` under the policy and stores it: the one path both
/// API shapes create silences through.
async fn create_checked<S, M, L: SilenceStore>(
    state: &AppState<S, M, L>,
    store: &L,
    caller: &Caller,
    request: NewSilence,
    now: time::OffsetDateTime,
) -> Result<Silence, Refused> {
    let created_by = caller.to_string();
    let silence = request
        .validate(now, &created_by, &state.silence_policy)
        .map_err(|e| silence_refused(&e))?;
    // A check before the write, not a lock: concurrent creates can pass it
    // together, so the bound can be exceeded by the number of admin
    // requests in flight at once, which is what it is for (a runaway
    // script, not a race).
    let existing = store
        .list(now, false)
        .await
        .map_err(|e| Refused::store(&e))?;
    state
        .silence_policy
        .admit(&existing, now)
        .map_err(|e| silence_refused(&e))?;
    store
        .create(&silence)
        .await
        .map_err(|e| Refused::store(&e))?;
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

async fn create_silence<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (store, caller) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let bytes = match silence_body(&headers, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.ours(),
    };
    let request: NewSilence = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return no_store(error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &format!("the body is not a silence request: {e}"),
            ));
        }
    };
    let now = state.clock.now();
    match create_checked(&state, store, &caller, request, now).await {
        Ok(silence) => no_store(
            (
                StatusCode::CREATED,
                axum::Json(SilenceView::new(&silence, now)),
            )
                .into_response(),
        ),
        Err(refused) => refused.ours(),
    }
}

/// A refused silence request: 409 when the limit on silences is reached
/// (the request itself was fine), 400 otherwise. Logged with its reason.
fn silence_refused(e: &SilenceError) -> Refused {
    let (status, code) = match e {
        SilenceError::TooManyActive { .. } => (StatusCode::CONFLICT, "too_many_silences"),
        SilenceError::SecurityNeedsFlag => (StatusCode::BAD_REQUEST, "security_flag_required"),
        SilenceError::MatchesEveryRule | SilenceError::MatchesEverything => {
            (StatusCode::BAD_REQUEST, "matches_everything")
        }
        SilenceError::TooLong { .. } => (StatusCode::BAD_REQUEST, "too_long"),
        _ => (StatusCode::BAD_REQUEST, "invalid_silence"),
    };
    tracing::warn!(reason = code, error = %e, "silence refused");
    Refused::new(status, code, e.to_string())
}

/// Ends silence `id` now for `caller`: 404 for an unknown id, 409 for one
/// that has already ended.
async fn expire_checked<L: SilenceStore>(
    store: &L,
    caller: &Caller,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<Silence, Refused> {
    let not_found = || Refused::new(StatusCode::NOT_FOUND, "not_found", "no such silence");
    // Ids are 32 hex digits; anything else names no silence, and is not
    // worth a store request.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        tracing::warn!(reason = "unknown_silence", "silence expiry refused");
        return Err(not_found());
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
            Err(Refused::new(
                StatusCode::CONFLICT,
                "already_expired",
                "the silence has already ended",
            ))
        }
        Ok(ExpireOutcome::NotFound) => {
            tracing::warn!(reason = "unknown_silence", id = %id, "silence expiry refused");
            Err(not_found())
        }
        Err(e) => Err(Refused::store(&e)),
    }
}

/// `DELETE /api/silences/{id}`: ends the silence now. It stays listed
/// (`?all=true`) as expired, with who ended it and when.
async fn expire_silence<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let (store, caller) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let now = state.clock.now();
    match expire_checked(store, &caller, &id, now).await {
        Ok(silence) => {
            no_store((StatusCode::OK, axum::Json(SilenceView::new(&silence, now))).into_response())
        }
        Err(refused) => refused.ours(),
    }
}

/// `POST /api/v2/silences`: Alertmanager's shape, mapped (see
/// `alertmanager`); answers `{"silenceID": "<id>"}` as Alertmanager does.
async fn am_create_silence<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (store, caller) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let bytes = match silence_body(&headers, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.alertmanager(),
    };
    let request = match serde_json::from_slice::<alertmanager::PostableSilence>(&bytes)
        .map_err(|e| format!("the body is not an Alertmanager silence: {e}"))
        .and_then(|p| p.into_request().map_err(|e| e.to_string()))
    {
        Ok(request) => request,
        Err(message) => {
            tracing::warn!(reason = "unmappable", error = %message, "silence refused");
            return Refused::new(StatusCode::BAD_REQUEST, "invalid_silence", message)
                .alertmanager();
        }
    };
    let now = state.clock.now();
    match create_checked(&state, store, &caller, request, now).await {
        Ok(silence) => no_store(
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "silenceID": silence.id })),
            )
                .into_response(),
        ),
        Err(refused) => refused.alertmanager(),
    }
}

/// `GET /api/v2/silences[?filter=...]`: every silence, expired ones
/// included (as Alertmanager lists them; amtool hides them unless asked).
async fn am_list_silences<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (store, _) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let filters = match alertmanager::filters(query.as_deref()) {
        Ok(filters) => filters,
        Err(e) => {
            return Refused::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
                .alertmanager();
        }
    };
    let now = state.clock.now();
    match store.list(now, true).await {
        Ok(silences) => {
            let shown: Vec<alertmanager::GettableSilence> = silences
                .iter()
                .filter(|s| filters.iter().all(|f| f.keeps(s)))
                .map(|s| alertmanager::GettableSilence::new(s, now))
                .collect();
            no_store((StatusCode::OK, axum::Json(shown)).into_response())
        }
        Err(e) => Refused::store(&e).alertmanager(),
    }
}

/// `GET /api/v2/silence/{id}`.
async fn am_get_silence<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let (store, _) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let now = state.clock.now();
    match store.list(now, true).await {
        Ok(silences) => match silences.iter().find(|s| s.id == id) {
            Some(s) => no_store(
                (
                    StatusCode::OK,
                    axum::Json(alertmanager::GettableSilence::new(s, now)),
                )
                    .into_response(),
            ),
            None => {
                Refused::new(StatusCode::NOT_FOUND, "not_found", "no such silence").alertmanager()
            }
        },
        Err(e) => Refused::store(&e).alertmanager(),
    }
}

/// `DELETE /api/v2/silence/{id}`: as `DELETE /api/silences/{id}`, with
/// Alertmanager's empty 200.
async fn am_expire_silence<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let (store, caller) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    match expire_checked(store, &caller, &id, state.clock.now()).await {
        Ok(_) => no_store(StatusCode::OK.into_response()),
        Err(refused) => refused.alertmanager(),
    }
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

async fn list_silences<S, M, L: SilenceStore>(
    State(state): State<Arc<AppState<S, M, L>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (store, _) = match silence_store(&state, &headers).await {
        Ok(allowed) => allowed,
        Err(refusal) => return refusal.into_response(),
    };
    let all = match include_expired(query.as_deref()) {
        Ok(all) => all,
        Err(message) => {
            return no_store(error(StatusCode::BAD_REQUEST, "invalid_query", &message));
        }
    };
    let now = state.clock.now();
    match store.list(now, all).await {
        Ok(silences) => {
            let views: Vec<SilenceView<'_>> =
                silences.iter().map(|s| SilenceView::new(s, now)).collect();
            no_store((StatusCode::OK, axum::Json(views)).into_response())
        }
        Err(e) => Refused::store(&e).ours(),
    }
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
        let (router, state) = app(store);
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
        assert_eq!(state.store.latest_calls(), 2);
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

        pub(super) const METRICS_TOKEN: &str = "scrape-token";

        pub(super) async fn app() -> Router {
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

    mod silences_endpoint {
        use super::*;
        use shared::adapters::memory_silences::MemorySilenceStore;
        use shared::domain::silence::{Matcher, RuleLabels};
        use time::OffsetDateTime;
        use time::macros::datetime;

        pub(super) const ADMIN: &str = "admin-token-for-tests";
        pub(super) const T0: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);

        struct FixedClock(OffsetDateTime);
        impl Clock for FixedClock {
            fn now(&self) -> OffsetDateTime {
                self.0
            }
        }

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

        pub(super) fn app_at(
            now: OffsetDateTime,
            silences: MemorySilenceStore,
        ) -> (
            Router,
            Arc<AppState<MemoryStore, NoSeries, MemorySilenceStore>>,
        ) {
            app_with(now, silences, SilencePolicy::default())
        }

        /// The default bounds and a small rule set.
        fn policy() -> SilencePolicy {
            SilencePolicy::default().with_rules(vec![
                RuleLabels::new("brute_force", "security", "critical"),
                RuleLabels::new("auth_failures", "security", "high"),
                RuleLabels::new("api_errors", "performance", "medium"),
            ])
        }

        fn app_with(
            now: OffsetDateTime,
            silences: MemorySilenceStore,
            policy: SilencePolicy,
        ) -> (
            Router,
            Arc<AppState<MemoryStore, NoSeries, MemorySilenceStore>>,
        ) {
            let state = Arc::new(
                AppState::new(
                    store(None),
                    Some(&Secret::new(TOKEN)),
                    Duration::from_secs(180),
                    Duration::from_secs(10),
                    Arc::new(FixedClock(now)),
                )
                .with_silences(silences, Some(&Secret::new(ADMIN)))
                .with_silence_policy(policy),
            );
            (router(state.clone()), state)
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
            let (router, state) = app_at(T0, MemorySilenceStore::with_silences([s.clone()]));
            let (status, _, body) = call(router.clone(), delete(&s.id, None)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            let (status, headers, body) = call(router.clone(), delete(&s.id, Some(&admin()))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            assert_eq!(body["status"], "expired");
            assert_eq!(body["ends_at"], "2026-11-30T12:00:00Z");
            assert_eq!(body["expired_by"], "admin-token");
            assert_eq!(body["created_by"], "admin-token");
            assert_eq!(state.silences.as_ref().unwrap().len(), 1, "kept");
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
            let (status, _, body) =
                call(router.clone(), delete(&"0".repeat(32), Some(&admin()))).await;
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
            let (router, state) =
                app_with(T0, MemorySilenceStore::with_silences(existing), bounded);
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
            assert_eq!(state.silences.as_ref().unwrap().len(), 2);
            // Expiring one makes room.
            let (status, _, _) = call(router.clone(), delete(&first, Some(&admin()))).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _, body) = call(router, post(VALID, Some(&admin()))).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }

        fn admin() -> String {
            format!("Bearer {ADMIN}")
        }

        pub(super) fn post(body: impl Into<Body>, auth: Option<&str>) -> http::Request<Body> {
            let mut b =
                http::Request::post("/api/silences").header("content-type", "application/json");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(body.into()).unwrap()
        }

        pub(super) const VALID: &str = r#"{"matchers":[{"name":"category","value":"security"},
            {"name":"rule","value":"auth_.*","is_regex":true}],
            "duration_seconds":3600,"comment":"pen test until 13:00","created_by":"alice",
            "security":true}"#;

        #[tokio::test]
        async fn an_admin_creates_and_lists_a_silence() {
            let (router, state) = app_at(T0, MemorySilenceStore::new());
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
            assert_eq!(state.silences.as_ref().unwrap().len(), 1);

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
                let (router, state) = app_at(T0, MemorySilenceStore::new());
                let (status, headers, body) = call(router.clone(), post(VALID, auth)).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
                assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
                assert_eq!(body["error"], "unauthorized");
                assert!(state.silences.as_ref().unwrap().is_empty());
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", *a)).collect();
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
                let (router, state) = app_with(T0, MemorySilenceStore::new(), policy());
                let (status, _, answer) = call(router, post(body, Some(&admin()))).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
                assert_eq!(answer["error"], code, "{body}");
                let text = answer["message"].as_str().unwrap();
                assert!(text.contains(message), "{body}: {text}");
                assert!(state.silences.as_ref().unwrap().is_empty());
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

    mod audit_trail {
        use std::io::Write;
        use std::sync::Mutex;

        use super::*;
        use shared::adapters::memory_silences::MemorySilenceStore;

        /// Keeps what a test's subscriber writes.
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);

        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl Capture {
            fn text(&self) -> String {
                String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
            }

            /// The fields of the audit records written so far.
            fn records(&self) -> Vec<Value> {
                self.text()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .filter(|v| v["target"] == "audit")
                    .map(|v| v["fields"].clone())
                    .collect()
            }
        }

        /// Every event at INFO and above, as JSON lines with their target,
        /// for as long as the guard lives (the test runtime has one thread).
        fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_target(true)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            (capture, tracing::subscriber::set_default(subscriber))
        }

        fn bearer(token: &str) -> String {
            format!("Bearer {token}")
        }

        fn summary(records: &[Value]) -> Vec<(String, String, String, u64)> {
            records
                .iter()
                .map(|r| {
                    (
                        r["action"].as_str().unwrap().to_owned(),
                        r["caller"].as_str().unwrap().to_owned(),
                        r["result"].as_str().unwrap().to_owned(),
                        r["status"].as_u64().unwrap(),
                    )
                })
                .collect()
        }

        fn row(
            action: &str,
            caller: &str,
            result: &str,
            status: u64,
        ) -> (String, String, String, u64) {
            (action.into(), caller.into(), result.into(), status)
        }

        #[tokio::test]
        async fn every_metrics_call_is_recorded_and_no_token_is_logged() {
            let (capture, _guard) = capture();
            let guessed = "guessed-token-1234567890";
            let right = bearer(metrics_endpoint::METRICS_TOKEN);
            let other_role = bearer(TOKEN);
            let unknown = bearer(guessed);
            for auth in [Some(&right), None, Some(&other_role), Some(&unknown)] {
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let app = metrics_endpoint::app().await;
                app.oneshot(get("/metrics", &headers)).await.unwrap();
            }
            let records = capture.records();
            let print = audit::fingerprint(guessed);
            assert_eq!(
                summary(&records),
                [
                    row("metrics.read", "metrics-token", "allowed", 200),
                    row("metrics.read", "anonymous", "denied", 401),
                    row("metrics.read", "health-token", "denied", 401),
                    row(
                        "metrics.read",
                        &format!("unknown-token:{print}"),
                        "denied",
                        401
                    ),
                ]
            );
            for r in &records {
                assert_eq!(r["event"], "access_audit");
                assert_eq!(r["message"], "access audit");
                assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
                // No request context outside Lambda.
                assert_eq!(r["source_ip"], "unknown");
            }
            let text = capture.text();
            for secret in [metrics_endpoint::METRICS_TOKEN, TOKEN, guessed] {
                assert!(!text.contains(secret), "{secret} logged: {text}");
            }
        }

        #[tokio::test]
        async fn health_details_are_recorded_and_public_checks_are_not() {
            let (capture, _guard) = capture();
            let right = bearer(TOKEN);
            let wrong = bearer("not-the-health-token");
            for headers in [
                vec![],
                vec![("authorization", right.as_str())],
                vec![("authorization", wrong.as_str())],
            ] {
                let (router, _) = app(store(None));
                router.oneshot(get("/api/health", &headers)).await.unwrap();
            }
            // A wrong token still gets the public answer (200), recorded as
            // denied.
            assert_eq!(
                summary(&capture.records()),
                [
                    row("health.details", "health-token", "allowed", 200),
                    row(
                        "health.details",
                        &format!(
                            "unknown-token:{}",
                            audit::fingerprint("not-the-health-token")
                        ),
                        "denied",
                        200
                    ),
                ]
            );
        }

        #[tokio::test]
        async fn silence_calls_carry_the_source_ip_of_the_request_context() {
            let (capture, _guard) = capture();
            let text = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../events/api-health-details.json"
            ))
            .unwrap();
            let context = lambda_http::request::from_str(&text)
                .unwrap()
                .extensions()
                .get::<RequestContext>()
                .cloned()
                .unwrap();
            let (router, _) =
                silences_endpoint::app_at(silences_endpoint::T0, MemorySilenceStore::new());
            let admin = bearer(silences_endpoint::ADMIN);
            let mut create = silences_endpoint::post(silences_endpoint::VALID, Some(&admin));
            create.extensions_mut().insert(context.clone());
            let (status, _, _) = call(router.clone(), create).await;
            assert_eq!(status, StatusCode::CREATED);
            let mut list = get("/api/silences", &[]);
            list.extensions_mut().insert(context);
            let (status, _, _) = call(router, list).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);

            let records = capture.records();
            assert_eq!(
                summary(&records),
                [
                    row("silences.create", "admin-token", "allowed", 201),
                    row("silences.list", "anonymous", "denied", 401),
                ]
            );
            for r in &records {
                assert_eq!(r["source_ip"], "192.0.2.10");
                assert_eq!(r["request_id"], "Ux3mNgVXoAMEb1C=");
                assert_eq!(r["time"], "2026-11-30T12:00:00.000Z");
            }
            assert!(!capture.text().contains(silences_endpoint::ADMIN));
        }
    }
}
