//! Alerting: rules as data (`infra/alerts/default.toml`), exact sliding
//! windows over event time, incidents with a deterministic id and a
//! firing → resolved lifecycle, published exactly once through an outbox.
//!
//! - [`config`] / [`validate`] / [`rules`]: the rule file, its one
//!   validation pass and the compiled rules; [`crosscheck`]: alert rules
//!   against the signals the log rules and probes produce.
//! - [`window`]: the pure per-(rule, key) state machine, over [`input`]s,
//!   with the stable hashes and ids of [`keys`].
//! - [`incident`]: the `blindspotx.incident/v1` message.
//! - [`stream`]: the engine in memory over a stream (replay, benches).
//! - [`engine`]: the engine over an [`crate::ports::AlertStore`] with its
//!   outbox (log-metrics, component-probe, alert-evaluator).
//! - [`probe_signals`]: probe results as alert inputs.
//! - [`records`]: what the engine stores.
//!
//! Wiring (one [`AlertEngine`] per cold start, over
//! `monitoring_adapters::dynamodb_alerts::DynamoAlertStore`, the SNS publisher, the
//! silence store, `monitoring_adapters::dynamodb_store::DynamoStore` for the
//! components' state and `monitoring_adapters::retry::TokioTimer` between
//! attempts at contended windows):
//! - log-metrics: `engine.ingest(&report.signals, now)` for every batch,
//!   empty ones included (it refreshes the log-delivery heartbeat);
//! - component-probe: `engine.ingest_probes(&probe_signals(&previous,
//!   &results), now)` with the latest results read before saving;
//! - alert-evaluator (every minute): `engine.evaluate(now)`.
//!
//! An [`EngineError`] means "retry the invocation"; failed publications are
//! not errors (they wait in the outbox for the evaluator).

pub mod config;
pub mod crosscheck;
pub mod engine;
pub mod incident;
pub mod input;
pub mod keys;
pub mod probe_signals;
pub mod records;
pub mod rules;
pub mod stream;
pub mod validate;
pub mod window;

pub use config::{Category, Severity};
pub use engine::{AlertEngine, EngineError, EngineOutcome, EngineSettings, TransitionRecord};
pub use incident::{DEFAULT_RUNBOOK_BASE_URL, INCIDENT_SCHEMA, Incident, Links, RUNBOOK_DIR};
pub use records::{
    CommitResult, DeadLetter, IncidentWrite, Notice, OpenIncident, PendingNotice, StoredIncident,
    StoredWindow, WindowChange, WindowId,
};
pub use rules::{AlertRule, AlertRules, SignalAccounting, SignalOutcome};
pub use stream::{StreamEngine, StreamTransition};
pub use validate::{AlertProblem, AlertRuleError};
pub use window::{AlertInput, InputKeys, Transition, TransitionKind, WindowState};
