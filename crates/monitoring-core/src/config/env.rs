//! Typed access to environment variables, with errors that name the variable.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

/// A configuration error, naming the variable at fault. Never carries a
/// secret value: only the variable name and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {hint}")]
    Missing { var: String, hint: &'static str },
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
    #[error("{var} is invalid: {reason}")]
    InvalidSecret { var: String, reason: String },
    #[error("{var}: set only one of {choices}")]
    Conflict { var: String, choices: String },
    #[error("could not read secret {var} from {source_kind}: {reason}")]
    SecretUnavailable {
        var: String,
        source_kind: &'static str,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// A snapshot of the environment, so configuration parsing is a pure function
/// of a map and unit tests need not touch the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value, with blank values treated as unset (templates often pass "").
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).to_owned()
    }

    pub fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var: var.to_owned(),
                value: value.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// A positive whole number of `unit_secs`-long units, as a duration.
    pub fn duration_or(
        &self,
        var: &str,
        default: Duration,
        from_number: fn(u64) -> Duration,
    ) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(value) => match value.parse::<u64>() {
                Ok(n) if n > 0 => Ok(from_number(n)),
                _ => Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: value.to_owned(),
                    reason: "expected a whole number greater than zero".to_owned(),
                }),
            },
        }
    }

    /// A comma-separated list; blank entries are dropped.
    pub fn list(&self, var: &str) -> Vec<String> {
        self.get(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset() {
        let env = Env::from_pairs([("A", "  "), ("B", " x ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(env.string_or("A", "d"), "d");
    }

    #[test]
    fn numbers_name_the_variable_on_error() {
        let env = Env::from_pairs([("N", "twelve")]);
        let err = env.parse_or::<u32>("N", 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "N=\"twelve\" is invalid: invalid digit found in string"
        );
        assert_eq!(env.parse_or::<u32>("M", 7), Ok(7));
    }

    #[test]
    fn durations_must_be_positive() {
        let env = Env::from_pairs([("T", "0"), ("U", "250")]);
        assert!(
            env.duration_or("T", Duration::ZERO, Duration::from_millis)
                .is_err()
        );
        assert_eq!(
            env.duration_or("U", Duration::ZERO, Duration::from_millis),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn lists_split_on_commas() {
        let env = Env::from_pairs([("L", "a, b,,c ")]);
        assert_eq!(env.list("L"), vec!["a", "b", "c"]);
        assert!(env.list("missing").is_empty());
    }
}
