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
//!
//! Where things are: `router` (which handler answers what), `auth` (the one
//! layer that checks the bearer token, once per request, hands the caller
//! to the handler and writes the audit record), `routes::*` (one module per
//! resource: `health`, `metrics`, `silences`, `alertmanager_v2`), `error`
//! (every error answer: status, headers and body in one place), `state`
//! (what the handlers read, one concrete type), `tokens` (the token
//! digests and their rotation), `audit` (the record), `alertmanager`
//! (Alertmanager's silence shape mapped onto ours).

pub mod alertmanager;
pub mod audit;
mod auth;
pub mod error;
mod router;
mod routes;
mod state;
pub mod tokens;

#[cfg(test)]
mod testkit;

pub use router::router;
pub use state::AppState;

pub const HEALTH_JSON: &str = "application/health+json";
/// The largest `POST /api/silences` body: a silence at its bounds (16
/// matchers of 256 characters, a 1 KiB comment) fits several times over.
pub const MAX_SILENCE_BODY_BYTES: usize = 16 * 1024;
