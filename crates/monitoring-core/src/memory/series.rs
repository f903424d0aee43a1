//! An in-memory [`SeriesStore`] with the DynamoDB store's semantics: batch
//! deltas applied into cumulative series, chunk by chunk (at most 99 series
//! each), each chunk at most once per batch id. Used by the replay tool and
//! tests.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use crate::domain::metrics::aggregate::{BatchMetrics, SeriesDelta};
use crate::domain::metrics::series::{BUCKETS, SeriesKey, StoredSeries, StoredValue};
use crate::ports::{ChunkOutcome, SeriesSource, SeriesStore, StoreError};

use crate::domain::pipeline::SERIES_PER_CHUNK;

#[derive(Debug, Default)]
pub struct MemorySeriesStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `(batch id, chunk)` markers.
    applied: HashSet<(String, usize)>,
    series: BTreeMap<SeriesKey, StoredValue>,
}

impl MemorySeriesStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every series, sorted by key.
    pub fn all_series(&self) -> Vec<StoredSeries> {
        self.lock()
            .series
            .iter()
            .map(|(key, value)| StoredSeries {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// One series' value.
    pub fn get(&self, key: &SeriesKey) -> Option<StoredValue> {
        self.lock().series.get(key).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // mutation is a single insert or in-place add.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SeriesSource for MemorySeriesStore {
    async fn read_metric(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        Ok(self
            .all_series()
            .into_iter()
            .filter(|s| s.key.name() == name)
            .collect())
    }
}

impl SeriesStore for MemorySeriesStore {
    async fn apply_chunk(
        &self,
        batch_id: &str,
        index: usize,
        chunk: &BatchMetrics,
        _now: OffsetDateTime,
    ) -> Result<ChunkOutcome, StoreError> {
        if chunk.len() > SERIES_PER_CHUNK {
            return Err(StoreError::Malformed {
                pk: batch_id.to_owned(),
                sk: format!("DONE#{index}"),
                reason: format!("{} series exceed one write", chunk.len()),
            });
        }
        let mut state = self.lock();
        if !state.applied.insert((batch_id.to_owned(), index)) {
            return Ok(ChunkOutcome {
                applied: false,
                requests: 1,
            });
        }
        for (key, delta) in chunk.sorted() {
            match state.series.get_mut(key) {
                Some(stored) => add(stored, delta),
                None => {
                    let mut stored = empty(delta);
                    add(&mut stored, delta);
                    state.series.insert(key.clone(), stored);
                }
            }
        }
        Ok(ChunkOutcome {
            applied: true,
            requests: 1,
        })
    }
}

fn empty(delta: &SeriesDelta) -> StoredValue {
    match delta {
        SeriesDelta::Counter(_) => StoredValue::Counter(0.0),
        SeriesDelta::Gauge { .. } => StoredValue::Gauge(0.0),
        SeriesDelta::Histogram(_) => StoredValue::Histogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum: 0.0,
        },
    }
}

/// Adds `delta` to `stored`; a delta of another kind is ignored (the stored
/// kind wins, as `if_not_exists(kind)` does in DynamoDB).
fn add(stored: &mut StoredValue, delta: &SeriesDelta) {
    match (stored, delta) {
        (StoredValue::Counter(v), SeriesDelta::Counter(d)) => *v += d,
        (StoredValue::Gauge(v), SeriesDelta::Gauge { set, add }) => *v = set.unwrap_or(*v) + add,
        (
            StoredValue::Histogram {
                buckets,
                count,
                sum,
            },
            SeriesDelta::Histogram(h),
        ) => {
            for (b, n) in buckets.iter_mut().zip(h.buckets.iter()) {
                *b += n;
            }
            *count += h.count;
            *sum += h.sum;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::aggregate::{CardinalityGuard, Update};
    use crate::ports::ApplyOutcome;

    fn batch(updates: &[(&str, &str, Update)]) -> BatchMetrics {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for (name, label, update) in updates {
            b.apply(SeriesKey::new(*name, [("l", *label)]), *update, &mut g)
                .unwrap();
        }
        b
    }

    fn key(name: &str, label: &str) -> SeriesKey {
        SeriesKey::new(name, [("l", label)])
    }

    async fn apply(store: &MemorySeriesStore, id: &str, b: &BatchMetrics) -> ApplyOutcome {
        store
            .apply_batch(id, b, OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn accumulates_and_ignores_redelivery() {
        let store = MemorySeriesStore::new();
        let b1 = batch(&[
            ("c_total", "a", Update::CounterAdd(2.0)),
            ("g", "a", Update::GaugeAdd(3.0)),
            ("h", "a", Update::Observe(0.2)),
        ]);
        let first = apply(&store, "b1", &b1).await;
        assert_eq!((first.applied_chunks, first.duplicate_chunks), (1, 0));
        let again = apply(&store, "b1", &b1).await;
        assert_eq!((again.applied_chunks, again.duplicate_chunks), (0, 1));

        let b2 = batch(&[
            ("c_total", "a", Update::CounterAdd(1.0)),
            ("g", "a", Update::GaugeSet(10.0)),
            ("g", "a", Update::GaugeAdd(-1.0)),
            ("h", "a", Update::Observe(20.0)),
        ]);
        apply(&store, "b2", &b2).await;

        assert_eq!(
            store.get(&key("c_total", "a")),
            Some(StoredValue::Counter(3.0))
        );
        assert_eq!(store.get(&key("g", "a")), Some(StoredValue::Gauge(9.0)));
        let Some(StoredValue::Histogram {
            buckets,
            count,
            sum,
        }) = store.get(&key("h", "a"))
        else {
            panic!("no histogram");
        };
        assert_eq!((count, sum), (2, 20.2));
        assert_eq!(buckets[6], 1); // 0.2 <= 0.25
        assert_eq!(buckets[BUCKETS - 1], 1); // 20 > 10
        assert_eq!(store.all_series().len(), 3);
    }

    #[tokio::test]
    async fn large_batches_are_chunked_and_sorted() {
        let store = MemorySeriesStore::new();
        let labels: Vec<String> = (0..150).map(|i| format!("{i:03}")).collect();
        let updates: Vec<(&str, &str, Update)> = labels
            .iter()
            .map(|l| ("c_total", l.as_str(), Update::CounterAdd(1.0)))
            .collect();
        let b = batch(&updates);
        let outcome = apply(&store, "big", &b).await;
        assert_eq!(outcome.applied_chunks, 2);
        assert_eq!(outcome.requests, 2);
        let all = store.all_series();
        assert_eq!(all.len(), 150);
        assert!(all.windows(2).all(|w| w[0].key < w[1].key));
        let empty = apply(&store, "empty", &BatchMetrics::default()).await;
        assert_eq!(empty, ApplyOutcome::default());
    }
}
