//! What the alert engine reads from and writes to its store: the records
//! behind [`crate::ports::AlertStore`], free of any storage type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::incident::{Incident, OutgoingMessage};
use super::window::WindowState;

/// One (rule, key) window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    pub rule: String,
    /// Window key (see [`super::window::window_key`]); `""` for ungrouped rules.
    pub key: String,
}

impl WindowId {
    /// `WINDOW#<rule>#<key>`: rule names have no `#`, so the split is unambiguous.
    pub fn storage_key(&self) -> String {
        format!("WINDOW#{}#{}", self.rule, self.key)
    }
}

/// A window as stored, with its optimistic-concurrency version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWindow {
    pub version: u64,
    pub state: WindowState,
}

/// A notification waiting in an incident's outbox until it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub transition_id: String,
    pub incident_id: String,
    /// Transition time (orders a republication).
    pub at_ms: i64,
    /// Wall-clock time of the commit that created it.
    pub created_ms: i64,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub dedup_id: String,
}

impl Notice {
    pub fn new(incident: &Incident, at_ms: i64, created_ms: i64) -> Self {
        let message = incident.to_message();
        Notice {
            transition_id: incident.transition_id.clone(),
            incident_id: incident.id.clone(),
            at_ms,
            created_ms,
            body: message.body,
            attributes: message.attributes,
            dedup_id: message.dedup_id,
        }
    }

    pub fn message(&self) -> OutgoingMessage {
        OutgoingMessage {
            body: self.body.clone(),
            attributes: self.attributes.clone(),
            dedup_id: self.dedup_id.clone(),
        }
    }
}

/// A notice as the outbox index returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotice {
    pub notice: Notice,
    /// Until when an evaluator holds it (claimed for republication).
    pub lease_until_ms: Option<i64>,
}

/// A notice the topic refused for good (an invalid message, a missing
/// topic, missing rights): moved out of the outbox so it is not retried
/// forever, kept with the reason until an operator requeues it
/// (`ops redrive --dead-letters`, docs/runbooks/paging_failures.md) or
/// deletes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub notice: Notice,
    /// The publisher's error, as logged.
    pub reason: String,
    /// When it was moved aside (wall clock, ms).
    pub at_ms: i64,
}

/// The writes of one incident in one commit (several transitions of one
/// incident merge into one write: a transaction touches an item once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentWrite {
    pub incident_id: String,
    /// The incident opens in this commit (a put, not an update).
    pub create: bool,
    /// The incident as of its last transition in this commit.
    pub snapshot: Incident,
    /// Outbox entries to add (none for suppressed transitions).
    pub notices: Vec<Notice>,
}

/// Index entry of a firing incident, so the evaluator finds its work
/// without a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub incident_id: String,
    pub rule: String,
    pub key: String,
    /// When the quiet period ends unless a new signal arrives.
    pub resolve_at_ms: i64,
    pub next_reminder_ms: Option<i64>,
}

/// One window's new state and what it implies, committed atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowChange {
    pub id: WindowId,
    /// The version read; `None`: the window must not exist yet.
    pub expected_version: Option<u64>,
    pub state: WindowState,
    pub incidents: Vec<IncidentWrite>,
    /// The open incident's index entry, when it is new or changed.
    pub open: Option<OpenIncident>,
    /// Incidents resolved in this change: their index entries go.
    pub closed: Vec<String>,
}

/// The fate of one [`WindowChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitResult {
    Committed,
    /// Not written: another writer changed the window (or a change sharing
    /// its transaction); re-read and apply again.
    Conflict,
}

/// An incident as stored: its latest transition and its unsent outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIncident {
    pub incident: Incident,
    /// Transition ids still waiting to be published.
    pub outbox: Vec<String>,
}
