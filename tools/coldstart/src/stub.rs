//! A local stub of the Lambda Runtime API (2018-06-01), enough for
//! `lambda_runtime`: `GET /runtime/invocation/next` long-polls for the next
//! queued event, and the response, error and init-error posts are reported
//! to the harness with the time they arrived. `/sink/*` answers 202 to
//! anything, as the incident channels' (Slack, webhook, PagerDuty) endpoint.
//!
//! One stub serves one process: dropping it stops the server and answers
//! a pending `/next` with 410.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

const API: &str = "/2018-06-01/runtime";
/// How much of an error body is kept for the report.
const DETAIL_CHARS: usize = 300;

/// What the process asked or posted, with when the stub received it.
#[derive(Debug, Clone)]
pub enum StubEvent {
    Next {
        at: Instant,
    },
    Response {
        id: String,
        at: Instant,
        bytes: usize,
    },
    Error {
        id: String,
        at: Instant,
        detail: String,
    },
    InitError {
        at: Instant,
        detail: String,
    },
}

struct Shared {
    events: mpsc::UnboundedSender<StubEvent>,
    queue: Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    function_arn: String,
    deadline: Duration,
}

pub struct Stub {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<StubEvent>,
    queue: mpsc::UnboundedSender<(String, Bytes)>,
    server: JoinHandle<()>,
}

impl Stub {
    /// Listens on a free port of 127.0.0.1. `deadline` is how long each
    /// invocation is given (`Lambda-Runtime-Deadline-Ms`).
    pub async fn start(function: &str, deadline: Duration) -> std::io::Result<Stub> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: events_tx,
            queue: Mutex::new(queue_rx),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            deadline,
        });
        let app = Router::new()
            .route(&format!("{API}/invocation/next"), get(next))
            .route(&format!("{API}/invocation/{{id}}/response"), post(response))
            .route(&format!("{API}/invocation/{{id}}/error"), post(error))
            .route(&format!("{API}/init/error"), post(init_error))
            .route("/sink/{*channel}", any(sink))
            .layer(DefaultBodyLimit::disable())
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Stub {
            addr,
            events,
            queue,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an event for the next `/next`.
    pub fn invoke(&self, request_id: &str, event: Bytes) -> bool {
        self.queue.send((request_id.to_owned(), event)).is_ok()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let _ = s.events.send(StubEvent::Next { at: Instant::now() });
    let queued = s.queue.lock().await.recv().await;
    let Some((id, body)) = queued else {
        return (StatusCode::GONE, "the stub is closing").into_response();
    };
    let deadline_ms = SystemTime::now()
        .checked_add(s.deadline)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        s.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-692c0000-{:0>24};Parent=0123456789abcdef;Sampled=0",
            hex_id(&id)
        ),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, body).into_response()
}

/// The request id's hex digits, for a trace id of the right shape.
fn hex_id(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_hexdigit)
        .take(24)
        .collect()
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = s.events.send(StubEvent::Response {
        id,
        at: Instant::now(),
        bytes: body.len(),
    });
    StatusCode::ACCEPTED
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = s.events.send(StubEvent::Error {
        id,
        at: Instant::now(),
        detail: detail(&headers, &body),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = s.events.send(StubEvent::InitError {
        at: Instant::now(),
        detail: detail(&headers, &body),
    });
    StatusCode::ACCEPTED
}

async fn sink() -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"success","message":"Event processed"}"#,
    )
}

/// The error type header and the start of the body.
fn detail(headers: &HeaderMap, body: &[u8]) -> String {
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .take(DETAIL_CHARS)
        .collect();
    if kind.is_empty() {
        text
    } else {
        format!("{kind}: {text}")
    }
}
