//! Every error the API answers, and the one place that turns each into its
//! status, headers and body.
//!
//! Two body shapes: ours, `{"error": <code>, "message": <text>}`, and
//! Alertmanager's, the message as a JSON string (what amtool prints), for a
//! silence request refused on `/api/v2/...`. Errors of a silence request
//! carry `Cache-Control: no-store`, like every silence answer. What the
//! router refuses before any handler reads the request (no such resource,
//! method, missing token) and the `/metrics` outage are answered in our
//! shape on every path.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monitoring_core::domain::silence::SilenceError;
use serde::Serialize;

use crate::MAX_SILENCE_BODY_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such path, or silences without a silence store.
    #[error("no such resource")]
    NotFound,
    #[error("this resource does not support the method")]
    MethodNotAllowed,
    /// No bearer token, or not the one the route needs.
    #[error("a bearer token is required")]
    Unauthorized,
    #[error("metric series cannot be read right now")]
    MetricsUnavailable,
    #[error("silences cannot be read or written right now")]
    SilencesUnavailable,
    #[error("no such silence")]
    UnknownSilence,
    #[error("the silence has already ended")]
    AlreadyExpired,
    #[error("the body must be at most {MAX_SILENCE_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// `POST /api/silences`: the body is not a silence request.
    #[error("the body is not a silence request: {0}")]
    InvalidJson(String),
    /// `POST /api/v2/silences`: the body is not one, or it cannot be mapped
    /// onto ours (see `alertmanager`).
    #[error("{0}")]
    Unmappable(String),
    /// The query string, with why.
    #[error("{0}")]
    InvalidQuery(String),
    /// The silence breaks a rule of the policy.
    #[error("{0}")]
    Silence(SilenceError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound | ApiError::UnknownSilence => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MetricsUnavailable | ApiError::SilencesUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::AlreadyExpired | ApiError::Silence(SilenceError::TooManyActive { .. }) => {
                StatusCode::CONFLICT
            }
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidJson(_)
            | ApiError::Unmappable(_)
            | ApiError::InvalidQuery(_)
            | ApiError::Silence(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error` field of our shape, and the `reason` of a refused silence
    /// in the logs.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound | ApiError::UnknownSilence => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unauthorized => "unauthorized",
            ApiError::MetricsUnavailable | ApiError::SilencesUnavailable => "store_unavailable",
            ApiError::AlreadyExpired => "already_expired",
            ApiError::BodyTooLarge => "body_too_large",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::Unmappable(_) => "invalid_silence",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::Silence(e) => match e {
                SilenceError::TooManyActive { .. } => "too_many_silences",
                SilenceError::SecurityNeedsFlag => "security_flag_required",
                SilenceError::MatchesEveryRule | SilenceError::MatchesEverything => {
                    "matches_everything"
                }
                SilenceError::TooLong { .. } => "too_long",
                _ => "invalid_silence",
            },
        }
    }

    /// Answered before the request is read, so in our shape on every path
    /// and without `no-store`.
    fn is_gate(&self) -> bool {
        matches!(
            self,
            ApiError::NotFound
                | ApiError::MethodNotAllowed
                | ApiError::Unauthorized
                | ApiError::MetricsUnavailable
        )
    }

    /// The answer in Alertmanager's shape (`/api/v2/...`).
    pub fn alertmanager(self) -> Response {
        self.render(Shape::Alertmanager)
    }

    fn render(self, shape: Shape) -> Response {
        let status = self.status();
        let message = self.to_string();
        let mut response = if self.is_gate() || shape == Shape::Ours {
            let body = ErrorBody {
                error: self.code(),
                message: &message,
            };
            (status, axum::Json(body)).into_response()
        } else {
            (status, axum::Json(message)).into_response()
        };
        let headers = response.headers_mut();
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if !self.is_gate() {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Ours,
    Alertmanager,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(Shape::Ours)
    }
}

/// An error answered in Alertmanager's shape: what the `/api/v2/...`
/// handlers return.
#[derive(Debug)]
pub struct AmError(pub ApiError);

impl From<ApiError> for AmError {
    fn from(e: ApiError) -> Self {
        AmError(e)
    }
}

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        self.0.alertmanager()
    }
}
