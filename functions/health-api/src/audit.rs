//! Access audit (issue 6, item 7): every authenticated call to the health
//! details, `/metrics` and `/api/silences` (list, create, expire) leaves
//! one structured record:
//! who (the role of the token presented, or a fingerprint of an unknown
//! token, never the token), what, when, from where, and whether it was let
//! through.
//!
//! Records are `tracing` events with target `audit` at INFO, message
//! `access audit` and field `event = "access_audit"` (the functions' JSON
//! log lines leave the target out; filter on the field in CloudWatch Logs
//! Insights: `filter fields.event = "access_audit"`). A public health
//! request, one without a bearer token, is not an authenticated call and
//! is not recorded; a `/metrics` or silences request without one is, as
//! `anonymous` and `denied`.

use axum::http::{HeaderMap, Method, header};
use lambda_http::request::RequestContext;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::tokens::Stage;

/// What an audited request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `GET /api/health` with a bearer token: asks for the details.
    HealthDetails,
    /// `GET /metrics`.
    MetricsRead,
    /// `GET /api/silences`, `GET /api/v2/silences`, `GET /api/v2/silence/{id}`.
    SilencesList,
    /// `POST /api/silences`, `POST /api/v2/silences`.
    SilencesCreate,
    /// `DELETE /api/silences/{id}`, `DELETE /api/v2/silence/{id}`: ends a
    /// silence early.
    SilencesExpire,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::HealthDetails => "health.details",
            Action::MetricsRead => "metrics.read",
            Action::SilencesList => "silences.list",
            Action::SilencesCreate => "silences.create",
            Action::SilencesExpire => "silences.expire",
        }
    }

    /// The action of a request, `None` for what is not audited (other
    /// paths, other methods: they answer 404/405 before any token check).
    pub fn of(method: &Method, path: &str) -> Option<Action> {
        match (method, path) {
            (&Method::GET, "/api/health") => Some(Action::HealthDetails),
            (&Method::GET, "/metrics") => Some(Action::MetricsRead),
            (&Method::GET, "/api/silences" | "/api/v2/silences") => Some(Action::SilencesList),
            (&Method::POST, "/api/silences" | "/api/v2/silences") => Some(Action::SilencesCreate),
            (&Method::GET, p) if one_silence(p, "/api/v2/silence/") => Some(Action::SilencesList),
            (&Method::DELETE, p)
                if one_silence(p, "/api/silences/") || one_silence(p, "/api/v2/silence/") =>
            {
                Some(Action::SilencesExpire)
            }
            _ => None,
        }
    }

    /// The token that grants it.
    pub fn role(self) -> Role {
        match self {
            Action::HealthDetails => Role::Health,
            Action::MetricsRead => Role::Metrics,
            Action::SilencesList | Action::SilencesCreate | Action::SilencesExpire => Role::Admin,
        }
    }
}

/// `path` is `prefix` and one id segment.
fn one_silence(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The configured tokens, by what they grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `HEALTH_TOKEN`: health details.
    Health,
    /// `METRICS_TOKEN`: `/metrics`.
    Metrics,
    /// `ADMIN_TOKEN`: silences.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Health, Role::Metrics, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Health => "health-token",
            Role::Metrics => "metrics-token",
            Role::Admin => "admin-token",
        }
    }
}

/// Who made the call, as far as the token tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No bearer token.
    Anonymous,
    /// One of the configured tokens, in force or (during a rotation) the
    /// previous version.
    Token(Role, Stage),
    /// A token that is none of them: its fingerprint (see [`fingerprint`]).
    Unknown(String),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Anonymous => f.write_str("anonymous"),
            Caller::Token(role, Stage::Current) => f.write_str(role.as_str()),
            Caller::Token(role, Stage::Previous) => write!(f, "{}:previous", role.as_str()),
            Caller::Unknown(print) => write!(f, "unknown-token:{print}"),
        }
    }
}

/// How many leading characters of an unknown token its fingerprint covers.
pub const FINGERPRINT_PREFIX_CHARS: usize = 6;

/// The first 12 hex digits of SHA-256 over the token's first
/// [`FINGERPRINT_PREFIX_CHARS`] characters: enough to tell repeated
/// attempts with the same token apart from others, while the record holds
/// neither the token nor anything derived from past its first characters.
pub fn fingerprint(token: &str) -> String {
    let prefix: String = token.chars().take(FINGERPRINT_PREFIX_CHARS).collect();
    let digest = Sha256::digest(prefix.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// `Authorization: Bearer <token>`: the token, trimmed; `None` when there
/// is none (or it is empty, or another scheme).
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
}

/// Where the request came from: API Gateway's (or the function URL's)
/// `requestContext.http.sourceIp`, which the client cannot set, and the
/// request id to find the access log line with.
pub fn origin(context: Option<&RequestContext>) -> (Option<String>, Option<String>) {
    match context {
        Some(RequestContext::ApiGatewayV2(c)) => (c.http.source_ip.clone(), c.request_id.clone()),
        _ => (None, None),
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    pub action: &'static str,
    pub caller: String,
    /// `allowed` (the token grants the action) or `denied`.
    pub result: &'static str,
    /// The HTTP status answered: an allowed call can still fail (400, 503).
    pub status: u16,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// Writes the record as a `tracing` event, target `audit`.
    pub fn emit(&self) {
        tracing::info!(
            target: "audit",
            event = "access_audit",
            time = %self.time,
            action = self.action,
            caller = %self.caller,
            result = self.result,
            status = self.status,
            source_ip = self.source_ip.as_deref().unwrap_or("unknown"),
            request_id = self.request_id.as_deref().unwrap_or(""),
            "access audit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_of_the_audited_routes_only() {
        assert_eq!(
            Action::of(&Method::GET, "/metrics"),
            Some(Action::MetricsRead)
        );
        assert_eq!(
            Action::of(&Method::POST, "/api/silences"),
            Some(Action::SilencesCreate)
        );
        assert_eq!(
            Action::of(&Method::GET, "/api/silences"),
            Some(Action::SilencesList)
        );
        assert_eq!(
            Action::of(&Method::GET, "/api/health"),
            Some(Action::HealthDetails)
        );
        assert_eq!(Action::of(&Method::DELETE, "/api/silences"), None);
        assert_eq!(
            Action::of(&Method::DELETE, "/api/silences/abc"),
            Some(Action::SilencesExpire)
        );
        assert_eq!(Action::of(&Method::DELETE, "/api/silences/a/b"), None);
        assert_eq!(Action::of(&Method::GET, "/nope"), None);
        assert_eq!(Action::SilencesCreate.role(), Role::Admin);
    }

    #[test]
    fn a_fingerprint_never_contains_the_token_and_is_stable() {
        let token = "s3cr3t-token-value-0123456789";
        let print = fingerprint(token);
        assert_eq!(print.len(), 12);
        assert!(print.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!print.contains("s3cr3t"));
        assert_eq!(print, fingerprint(token));
        // Only the prefix counts: the rest of a token is never hashed.
        assert_eq!(print, fingerprint("s3cr3t-something-else"));
        assert_ne!(print, fingerprint("other-token"));
        assert_eq!(
            Caller::Unknown(print.clone()).to_string(),
            format!("unknown-token:{print}")
        );
        assert_eq!(
            Caller::Token(Role::Admin, Stage::Current).to_string(),
            "admin-token"
        );
        assert_eq!(
            Caller::Token(Role::Admin, Stage::Previous).to_string(),
            "admin-token:previous"
        );
        assert_eq!(Caller::Anonymous.to_string(), "anonymous");
    }

    #[test]
    fn presented_token_is_the_bearer_credential() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(presented_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(presented_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic YWJj".parse().unwrap());
        assert_eq!(presented_token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(presented_token(&h), None);
    }

    #[test]
    fn origin_comes_from_the_request_context() {
        let text = include_str!("../../../events/api-health-details.json");
        let request = lambda_http::request::from_str(text).unwrap();
        let context = request.extensions().get::<RequestContext>();
        let (ip, id) = origin(context);
        assert!(ip.is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()));
        assert!(id.is_some());
        assert_eq!(origin(None), (None, None));
    }
}
