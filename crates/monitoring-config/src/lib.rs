//! Typed configuration of each function, from environment variables, with one
//! validation pass at start that names the variable at fault.
//!
//! Depends on `monitoring-core` (the vocabulary: [`ConfigError`], [`Env`],
//! [`Secret`], [`SecretSource`], re-exported here) and `monitoring-adapters`
//! (the settings types of the adapters it configures, which it re-exports
//! where a function reads them from here). Nothing below depends on it.

pub mod alert_evaluator;
pub mod alerts;
pub mod health_api;
pub mod log_metrics;
pub mod notifier;
pub mod probe;
pub mod responder;

pub use monitoring_core::config::{ConfigError, Env, Secret, SecretSource, env, secret};

/// `INCIDENTS_TOPIC_ARN`: the topic whose records the notifier and the
/// responder accept; required, an SNS topic ARN.
pub fn incidents_topic_arn(env: &Env) -> Result<String, ConfigError> {
    let arn = env.get("INCIDENTS_TOPIC_ARN").ok_or(ConfigError::Missing {
        var: "INCIDENTS_TOPIC_ARN".into(),
        hint: "the incidents topic's ARN (the template sets it to IncidentsTopic; locally, the \
               ARN of the topic the test or sample event names): records of any other topic \
               are refused",
    })?;
    if !arn.starts_with("arn:") || arn.split(':').count() != 6 || !arn.contains(":sns:") {
        return Err(ConfigError::Invalid {
            var: "INCIDENTS_TOPIC_ARN".into(),
            value: arn.to_owned(),
            reason: "expected an SNS topic ARN".into(),
        });
    }
    Ok(arn.to_owned())
}
