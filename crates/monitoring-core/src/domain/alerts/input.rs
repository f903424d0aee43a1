//! What the engine counts: one input (a log signal or a probe
//! observation) and the keys it carries.

use std::sync::Arc;

use crate::domain::rules::Signal;

/// The named keys of an input (`ip`, `user`, `component`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKeys<'a> {
    None,
    /// One key: a probe's component, say.
    One(&'a str, &'a str),
    /// A log signal's keys (see [`Signal::keys`]).
    Many(&'a [(Arc<str>, String)]),
}

impl<'a> InputKeys<'a> {
    /// The value of the key `name`, if the input carries it.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match *self {
            InputKeys::None => None,
            InputKeys::One(n, v) => (n == name).then_some(v),
            InputKeys::Many(keys) => keys
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// The key names carried.
    pub fn names(&self) -> Vec<&'a str> {
        match *self {
            InputKeys::None => Vec::new(),
            InputKeys::One(n, _) => vec![n],
            InputKeys::Many(keys) => keys.iter().map(|(n, _)| n.as_ref()).collect(),
        }
    }
}

/// One input of the engine: a log signal, or a probe observation (which may
/// be a miss: a passing probe, which matters to `consecutive` rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertInput<'a> {
    pub signal: &'a str,
    pub keys: InputKeys<'a>,
    /// Unique per event time: a signal with the same id and time is a
    /// duplicate.
    pub event_id: &'a str,
    pub timestamp_ms: i64,
    /// Redacted record text.
    pub sample: &'a str,
    /// `false` for an observation that breaks a failure streak.
    pub hit: bool,
    /// For a rule counting distinct values: the hash of this input's value
    /// (set by [`AlertRule::route`] per rule); 0 otherwise.
    pub distinct: u64,
}

impl<'a> AlertInput<'a> {
    pub fn from_signal(s: &'a Signal) -> Self {
        AlertInput {
            signal: &s.name,
            keys: InputKeys::Many(&s.keys),
            event_id: &s.event_id,
            timestamp_ms: s.timestamp_ms,
            sample: &s.sample,
            hit: true,
            distinct: 0,
        }
    }
}
