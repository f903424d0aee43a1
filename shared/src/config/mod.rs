//! Typed configuration of each function, from environment variables, with one
//! validation pass at start that names the variable at fault.

pub mod alert_evaluator;
pub mod alerts;
pub mod env;
pub mod health_api;
pub mod log_metrics;
pub mod notifier;
pub mod probe;
pub mod responder;
pub mod secret;

pub use env::{ConfigError, Env};
pub use secret::{Secret, SecretSource};
