//! In-memory probe store for unit tests, benches and local tools.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;

use crate::domain::heartbeat::Heartbeat;
use crate::domain::probe_result::{Component, ProbeResult};
use crate::ports::{HeartbeatSource, ProbeStore, StoreError};

#[derive(Debug, Default)]
pub struct MemoryStore {
    latest: Mutex<BTreeMap<Component, ProbeResult>>,
    history: Mutex<Vec<ProbeResult>>,
    heartbeats: Mutex<BTreeMap<Heartbeat, OffsetDateTime>>,
    /// How many times `latest` was called: the health endpoint promises one
    /// store request per answer.
    latest_calls: AtomicUsize,
}

impl MemoryStore {
    pub fn with_results(results: Vec<ProbeResult>) -> Self {
        let store = MemoryStore::default();
        store.put(results);
        store
    }

    pub fn put(&self, results: Vec<ProbeResult>) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        for r in results {
            latest.insert(r.component, r);
        }
    }

    pub fn set_heartbeat(&self, heartbeat: Heartbeat, at: OffsetDateTime) {
        self.heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(heartbeat, at);
    }

    pub fn history_len(&self) -> usize {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn latest_calls(&self) -> usize {
        self.latest_calls.load(Ordering::Relaxed)
    }
}

impl ProbeStore for MemoryStore {
    async fn save(
        &self,
        results: &[ProbeResult],
        _history_ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(results.to_vec());
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(results);
        Ok(())
    }

    async fn latest(&self) -> Result<Vec<ProbeResult>, StoreError> {
        self.latest_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect())
    }
}

impl HeartbeatSource for MemoryStore {
    fn last_heartbeat(
        &self,
        heartbeat: Heartbeat,
    ) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        let at = self
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&heartbeat)
            .copied();
        Box::pin(async move { Ok(at) })
    }
}
