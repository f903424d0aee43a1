//! In-memory silence store for unit tests, the replay tool and benches.

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::domain::silence::Silence;
use crate::ports::{SilenceStore, StoreError};

#[derive(Debug, Default)]
pub struct MemorySilenceStore {
    silences: Mutex<BTreeMap<String, Silence>>,
}

impl MemorySilenceStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_silences(silences: impl IntoIterator<Item = Silence>) -> Self {
        let store = Self::default();
        store
            .silences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(silences.into_iter().map(|s| (s.id.clone(), s)));
        store
    }

    pub fn len(&self) -> usize {
        self.silences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SilenceStore for MemorySilenceStore {
    async fn create(&self, silence: &Silence) -> Result<(), StoreError> {
        self.silences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(silence.id.clone(), silence.clone());
        Ok(())
    }

    async fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        let mut out: Vec<Silence> = self
            .silences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| include_expired || s.ends_at > now)
            .cloned()
            .collect();
        // The DynamoDB adapter's order (its sort key), so both behave alike.
        out.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::silence::{Matcher, NewSilence};
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);

    fn silence(minutes: u64, at: OffsetDateTime) -> Silence {
        NewSilence {
            matchers: vec![Matcher::equal("rule", "auth_failures")],
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(minutes * 60),
            comment: "test".into(),
            created_by: "me".into(),
        }
        .validate(at)
        .unwrap()
    }

    #[tokio::test]
    async fn lists_unexpired_silences_soonest_end_first() {
        let store = MemorySilenceStore::new();
        let long = silence(120, NOW);
        let short = silence(30, NOW);
        let old = silence(10, NOW - Duration::hours(1));
        for s in [&long, &short, &old] {
            store.create(s).await.unwrap();
        }
        assert_eq!(
            store.list(NOW, false).await.unwrap(),
            [short.clone(), long.clone()]
        );
        assert_eq!(store.list(NOW, true).await.unwrap(), [old, short, long]);
    }
}
