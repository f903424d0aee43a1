//! In-memory alert store and publishers for unit tests, benches and the
//! replay tool. The store keeps the DynamoDB adapter's semantics: versioned
//! windows (a stale version is a conflict), incidents with an outbox, the
//! open-incident and pending-outbox indexes, leases.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

use crate::domain::alerts::{
    CommitResult, DeadLetter, Incident, Notice, OpenIncident, PendingNotice, StoredIncident,
    StoredWindow, WindowChange, WindowId, WindowState,
};
use crate::domain::probe_result::Component;
use crate::domain::silence::Silence;
use crate::ports::{
    AlertStore, ComponentStatus, IncidentPublisher, IncidentSource, OutgoingMessage, PublishError,
    SilenceSource, StoreError,
};

#[derive(Debug, Default)]
struct Tables {
    windows: BTreeMap<WindowId, (u64, WindowState)>,
    incidents: BTreeMap<String, (Incident, BTreeMap<String, Notice>)>,
    open: BTreeMap<String, OpenIncident>,
    pending: BTreeMap<String, (Notice, Option<i64>)>,
    dead: BTreeMap<String, DeadLetter>,
    log_delivery: Option<OffsetDateTime>,
}

/// The alert store in memory. Clones share the same tables.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlertStore {
    tables: Arc<Mutex<Tables>>,
    requests: Arc<AtomicUsize>,
}

impl MemoryAlertStore {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls made to the store (each would be one request to DynamoDB).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn set_log_delivery(&self, at: OffsetDateTime) {
        self.lock().log_delivery = Some(at);
    }

    /// Stores `incident` as its latest transition, with an empty outbox (an
    /// incident as the engine left it after publishing), replacing any.
    pub fn put_incident(&self, incident: Incident) {
        self.lock()
            .incidents
            .insert(incident.id.clone(), (incident, BTreeMap::new()));
    }

    /// Every incident's latest snapshot.
    pub fn incidents(&self) -> Vec<Incident> {
        self.lock()
            .incidents
            .values()
            .map(|(i, _)| i.clone())
            .collect()
    }
}

impl IncidentSource for MemoryAlertStore {
    async fn stored_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock().incidents.get(id).map(|(i, _)| i.clone()))
    }
}

impl AlertStore for MemoryAlertStore {
    async fn load_windows(
        &self,
        ids: &[WindowId],
    ) -> Result<Vec<Option<StoredWindow>>, StoreError> {
        let t = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                t.windows.get(id).map(|(version, state)| StoredWindow {
                    version: *version,
                    state: state.clone(),
                })
            })
            .collect())
    }

    async fn commit(
        &self,
        changes: &[WindowChange],
        log_delivery: Option<OffsetDateTime>,
    ) -> Result<Vec<CommitResult>, StoreError> {
        let mut t = self.lock();
        // Newer wins, as the DynamoDB store's conditional put.
        if log_delivery > t.log_delivery {
            t.log_delivery = log_delivery;
        }
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let current = t.windows.get(&change.id).map(|(v, _)| *v);
            if current != change.expected_version {
                results.push(CommitResult::Conflict);
                continue;
            }
            let version = current.map_or(1, |v| v + 1);
            t.windows
                .insert(change.id.clone(), (version, change.state.clone()));
            for write in &change.incidents {
                let entry = t
                    .incidents
                    .entry(write.incident_id.clone())
                    .or_insert_with(|| (write.snapshot.clone(), BTreeMap::new()));
                entry.0 = write.snapshot.clone();
                for n in &write.notices {
                    entry.1.insert(n.transition_id.clone(), n.clone());
                }
                for n in &write.notices {
                    t.pending.insert(n.transition_id.clone(), (n.clone(), None));
                }
            }
            for id in &change.closed {
                t.open.remove(id);
            }
            if let Some(open) = &change.open {
                t.open.insert(open.incident_id.clone(), open.clone());
            }
            results.push(CommitResult::Committed);
        }
        Ok(results)
    }

    async fn mark_sent(&self, notices: &[Notice]) -> Result<usize, StoreError> {
        let mut t = self.lock();
        let mut marked = 0;
        for notice in notices {
            t.pending.remove(&notice.transition_id);
            if t.incidents
                .get_mut(&notice.incident_id)
                .and_then(|(_, outbox)| outbox.remove(&notice.transition_id))
                .is_some()
            {
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        Ok(self.lock().open.values().cloned().collect())
    }

    async fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
        Ok(self
            .lock()
            .pending
            .values()
            .map(|(notice, lease)| PendingNotice {
                notice: notice.clone(),
                lease_until_ms: *lease,
            })
            .collect())
    }

    async fn claim_notice(
        &self,
        transition_id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        match t.pending.get_mut(transition_id) {
            Some((_, lease)) if lease.is_none_or(|l| l < now_ms) => {
                *lease = Some(now_ms.saturating_add(lease_ms));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn incident(&self, id: &str) -> Result<Option<StoredIncident>, StoreError> {
        Ok(self
            .lock()
            .incidents
            .get(id)
            .map(|(incident, outbox)| StoredIncident {
                incident: incident.clone(),
                outbox: outbox.keys().cloned().collect(),
            }))
    }

    async fn dead_letter(
        &self,
        notice: &Notice,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let was_pending = t.pending.remove(&notice.transition_id).is_some();
        let in_outbox = t
            .incidents
            .get_mut(&notice.incident_id)
            .and_then(|(_, outbox)| outbox.remove(&notice.transition_id))
            .is_some();
        if !(was_pending || in_outbox) {
            return Ok(false);
        }
        t.dead.insert(
            notice.transition_id.clone(),
            DeadLetter {
                notice: notice.clone(),
                reason: reason.to_owned(),
                at_ms: crate::domain::alerts::incident::time_to_ms(at),
            },
        );
        Ok(true)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.lock().dead.values().cloned().collect())
    }

    async fn last_log_delivery(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.lock().log_delivery)
    }
}

/// Records what it publishes; can be switched to failing. Clones share.
#[derive(Debug, Clone, Default)]
pub struct RecordingPublisher {
    messages: Arc<Mutex<Vec<OutgoingMessage>>>,
    failing: Arc<AtomicBool>,
    rejecting: Arc<AtomicBool>,
}

impl RecordingPublisher {
    /// While set, every publish is refused for good, as by a topic that
    /// is gone.
    pub fn set_rejecting(&self, rejecting: bool) {
        self.rejecting.store(rejecting, Ordering::SeqCst);
    }

    /// While set, every publish fails as unreachable.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The published incidents, decoded.
    pub fn incidents(&self) -> Vec<Incident> {
        self.messages()
            .iter()
            .filter_map(|m| serde_json::from_str(&m.body).ok())
            .collect()
    }
}

impl IncidentPublisher for RecordingPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PublishError::Unavailable(
                "recording publisher set to fail".into(),
            ));
        }
        if self.rejecting.load(Ordering::SeqCst) {
            return Err(PublishError::Rejected(
                "NotFound: recording publisher set to reject".into(),
            ));
        }
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.clone());
        Ok(())
    }
}

/// A fixed list of silences.
#[derive(Debug, Clone, Default)]
pub struct StaticSilences(pub Vec<Silence>);

impl SilenceSource for StaticSilences {
    async fn active(&self, now: OffsetDateTime) -> Result<Vec<Silence>, StoreError> {
        Ok(self
            .0
            .iter()
            .filter(|s| s.is_active(now))
            .cloned()
            .collect())
    }
}

/// A fixed set of components down (empty: all up).
#[derive(Debug, Clone, Default)]
pub struct StaticComponents(pub Vec<Component>);

impl ComponentStatus for StaticComponents {
    async fn down_components(
        &self,
        _fresh_since: OffsetDateTime,
    ) -> Result<Vec<Component>, StoreError> {
        Ok(self.0.clone())
    }
}
