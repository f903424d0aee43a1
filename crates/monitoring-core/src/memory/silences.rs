//! In-memory silence store for unit tests, the replay tool and benches.

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::domain::silence::Silence;
use crate::ports::{ExpireOutcome, SilenceStore, StoreError};

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

    async fn expire(
        &self,
        id: &str,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<ExpireOutcome, StoreError> {
        let mut silences = self.silences.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = silences.get_mut(id) else {
            return Ok(ExpireOutcome::NotFound);
        };
        match current.expire(at, by) {
            Ok(expired) => {
                *current = expired.clone();
                Ok(ExpireOutcome::Expired(expired))
            }
            Err(_) => Ok(ExpireOutcome::AlreadyEnded(current.clone())),
        }
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
            requested_by: None,
            security: false,
        }
        .validate(at, "admin-token", &Default::default())
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

    #[tokio::test]
    async fn expiring_keeps_the_silence_as_ended() {
        let store = MemorySilenceStore::new();
        let s = silence(60, NOW);
        store.create(&s).await.unwrap();
        let at = NOW + Duration::minutes(5);
        let ExpireOutcome::Expired(e) = store.expire(&s.id, at, "admin-token").await.unwrap()
        else {
            panic!("not expired");
        };
        assert_eq!(e.ends_at, at);
        assert!(store.list(at, false).await.unwrap().is_empty());
        assert_eq!(
            store.list(at, true).await.unwrap(),
            std::slice::from_ref(&e)
        );
        assert_eq!(
            store.expire(&s.id, at, "admin-token").await.unwrap(),
            ExpireOutcome::AlreadyEnded(e)
        );
        assert_eq!(
            store.expire("nope", at, "admin-token").await.unwrap(),
            ExpireOutcome::NotFound
        );
    }
}
