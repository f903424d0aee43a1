//! The one place a bearer token is checked: a layer in front of every
//! route. For a request to a route that takes a token, it identifies the
//! caller once (constant-time, against the tokens in force), hands the
//! result to the handler as an [`Access`] request extension, and, once the
//! handler has answered, writes the access audit record (`audit`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;
use monitoring_core::domain::timefmt::rfc3339_millis;

use crate::audit::{self, Action, AuditRecord, Caller};
use crate::state::AppState;

/// Who the caller is and what the token lets it do, for the route asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The role and version of the configured token presented, a
    /// fingerprint of an unknown one, or anonymous.
    pub caller: Caller,
    /// The token is the one the route needs.
    pub granted: bool,
    /// The route's token is configured at all.
    pub configured: bool,
}

impl Access {
    /// Whether the request carried a bearer token at all (for the logs of
    /// a refusal).
    pub fn token_presented(&self) -> bool {
        self.caller != Caller::Anonymous
    }
}

/// The layer: see the module documentation. Requests to no route that
/// takes a token pass untouched (they answer 404/405).
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    // HEAD is answered by the GET handler, so it needs the same identity;
    // it is not an audited call.
    let lookup = if request.method() == Method::HEAD {
        &Method::GET
    } else {
        request.method()
    };
    let Some(action) = Action::of(lookup, request.uri().path()) else {
        return next.run(request).await;
    };
    let audited = request.method() != Method::HEAD;
    let access = identify(&state, request.headers(), action).await;
    request.extensions_mut().insert(access.clone());
    // A health check without a token is public, not an authenticated call.
    if !audited || (action == Action::HealthDetails && access.caller == Caller::Anonymous) {
        return next.run(request).await;
    }
    let time = rfc3339_millis(state.clock.now());
    let (source_ip, request_id) = audit::origin(request.extensions().get::<RequestContext>());
    let response = next.run(request).await;
    AuditRecord {
        time,
        action: action.as_str(),
        caller: access.caller.to_string(),
        result: if access.granted { "allowed" } else { "denied" },
        status: response.status().as_u16(),
        source_ip,
        request_id,
    }
    .emit();
    response
}

/// The caller presenting `headers` and whether its token grants `action`: one
/// look at the tokens in force, none without a bearer token.
async fn identify(state: &AppState, headers: &HeaderMap, action: Action) -> Access {
    let Some(token) = audit::presented_token(headers) else {
        return Access {
            caller: Caller::Anonymous,
            granted: false,
            configured: false,
        };
    };
    let snapshot = state.tokens.snapshot().await;
    let configured = snapshot.has(action.role());
    match snapshot.identify(token) {
        Some((role, stage)) => Access {
            caller: Caller::Token(role, stage),
            granted: role == action.role(),
            configured,
        },
        None => Access {
            caller: Caller::Unknown(audit::fingerprint(token)),
            granted: false,
            configured,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::http::StatusCode;
    use lambda_http::request::RequestContext;
    use monitoring_core::memory::silences::MemorySilenceStore;
    use serde_json::Value;
    use tower::ServiceExt;

    use crate::audit;
    use crate::testkit::{
        ADMIN, METRICS_TOKEN, T0, TOKEN, VALID, app, app_at, call, get, metrics_app, post, store,
    };

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

    fn row(action: &str, caller: &str, result: &str, status: u64) -> (String, String, String, u64) {
        (action.into(), caller.into(), result.into(), status)
    }

    #[tokio::test]
    async fn every_metrics_call_is_recorded_and_no_token_is_logged() {
        let (capture, _guard) = capture();
        let guessed = "guessed-token-1234567890";
        let right = bearer(METRICS_TOKEN);
        let other_role = bearer(TOKEN);
        let unknown = bearer(guessed);
        for auth in [Some(&right), None, Some(&other_role), Some(&unknown)] {
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let app = metrics_app().await;
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
        for secret in [METRICS_TOKEN, TOKEN, guessed] {
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
        let (router, _) = app_at(T0, MemorySilenceStore::new());
        let admin = bearer(ADMIN);
        let mut create = post(VALID, Some(&admin));
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
        assert!(!capture.text().contains(ADMIN));
    }
}
