//! Rules as data: a TOML rule file (`infra/rules/default.toml` embedded,
//! overridable) turns log records into metric updates and alert signals.
//!
//! - [`config`]: the serde model of the file (unknown keys refused).
//! - [`validate`]: the one validation pass that compiles it, with errors
//!   naming file, rule and field.
//! - [`value`]: label, key and number extraction (`$.path`, `${capture}`,
//!   literals) with map, default and transforms.
//! - [`engine`]: [`RuleSet`] and its per-record evaluation.
//! - `pattern_set`: every rule regex in one set (ASCII and Unicode builds).

pub mod config;
pub mod engine;
mod pattern_set;
pub mod validate;
pub mod value;

#[cfg(test)]
mod drift_tests;

pub use engine::{Evaluation, MetricInfo, RuleSet, Signal};
pub use validate::{Problem, RuleError};
