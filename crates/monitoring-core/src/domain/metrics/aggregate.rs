//! Folds a batch's metric updates into one delta per touched series, so the
//! store is written once per series and batch, never once per event; and
//! caps the number of label sets per metric.

use std::collections::{HashMap, HashSet};

pub use super::series::DEFAULT_BUCKETS;
use super::series::{FastMap, MetricKind, SeriesKey};

/// Default cap on label sets per metric.
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 1000;

/// One change a rule makes to a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update {
    CounterAdd(f64),
    GaugeAdd(f64),
    GaugeSet(f64),
    Observe(f64),
}

impl Update {
    pub fn kind(self) -> MetricKind {
        match self {
            Update::CounterAdd(_) => MetricKind::Counter,
            Update::GaugeAdd(_) | Update::GaugeSet(_) => MetricKind::Gauge,
            Update::Observe(_) => MetricKind::Histogram,
        }
    }
}

/// What a batch did to a histogram series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramDelta {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    pub buckets: [u64; DEFAULT_BUCKETS.len() + 1],
    pub count: u64,
    pub sum: f64,
    /// Distinct observed values and how often each was seen, in first-seen
    /// order (EMF's Values/Counts).
    pub values: Vec<(f64, u64)>,
    value_index: FastMap<u64, usize>,
}

impl HistogramDelta {
    fn observe(&mut self, value: f64, track_values: bool) {
        let bucket = DEFAULT_BUCKETS
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(DEFAULT_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += value;
        if !track_values {
            return;
        }
        self.add_value(value, 1);
    }

    fn add_value(&mut self, value: f64, n: u64) {
        match self.value_index.get(&value.to_bits()) {
            Some(i) => self.values[*i].1 += n,
            None => {
                self.value_index.insert(value.to_bits(), self.values.len());
                self.values.push((value, n));
            }
        }
    }

    fn merge(&mut self, other: &HistogramDelta) {
        for (b, n) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *b += n;
        }
        self.count += other.count;
        self.sum += other.sum;
        for (value, n) in &other.values {
            self.add_value(*value, *n);
        }
    }
}

/// What a batch did to one series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesDelta {
    Counter(f64),
    /// Applied to a stored value `v`: `set.unwrap_or(v) + add`.
    Gauge {
        set: Option<f64>,
        add: f64,
    },
    Histogram(Box<HistogramDelta>),
}

impl SeriesDelta {
    pub fn kind(&self) -> MetricKind {
        match self {
            SeriesDelta::Counter(_) => MetricKind::Counter,
            SeriesDelta::Gauge { .. } => MetricKind::Gauge,
            SeriesDelta::Histogram(_) => MetricKind::Histogram,
        }
    }

    fn new(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => SeriesDelta::Counter(0.0),
            MetricKind::Gauge => SeriesDelta::Gauge {
                set: None,
                add: 0.0,
            },
            MetricKind::Histogram => SeriesDelta::Histogram(Box::default()),
        }
    }

    /// Adds `other` (a delta of the same kind) as if its updates came
    /// after this one's. Kinds that differ are left alone (checked before).
    fn merge(&mut self, other: &SeriesDelta) {
        match (self, other) {
            (SeriesDelta::Counter(a), SeriesDelta::Counter(b)) => *a += b,
            (SeriesDelta::Gauge { set, add }, SeriesDelta::Gauge { set: s, add: a }) => {
                if s.is_some() {
                    *set = *s;
                    *add = *a;
                } else {
                    *add += a;
                }
            }
            (SeriesDelta::Histogram(a), SeriesDelta::Histogram(b)) => a.merge(b),
            _ => {}
        }
    }

    fn apply(&mut self, update: Update, track_values: bool) {
        match (self, update) {
            (SeriesDelta::Counter(total), Update::CounterAdd(v)) => *total += v,
            (SeriesDelta::Gauge { add, .. }, Update::GaugeAdd(v)) => *add += v,
            (SeriesDelta::Gauge { set, add }, Update::GaugeSet(v)) => {
                *set = Some(v);
                *add = 0.0;
            }
            (SeriesDelta::Histogram(h), Update::Observe(v)) => h.observe(v, track_values),
            // Kinds are checked before apply.
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric {metric} is a {existing} but an update treats it as a {update}")]
pub struct KindConflict {
    pub metric: String,
    pub existing: &'static str,
    pub update: &'static str,
}

/// Caps label sets per metric: past the cap, new label sets are folded into
/// one series whose label values are all `__overflow__`.
#[derive(Debug, Clone)]
pub struct CardinalityGuard {
    max_per_metric: usize,
    /// False for [`CardinalityGuard::unbounded`]: admits every key and
    /// remembers none.
    tracking: bool,
    known: FastMap<String, HashSet<SeriesKey>>,
    folded: HashMap<String, u64>,
}

impl Default for CardinalityGuard {
    fn default() -> Self {
        CardinalityGuard::new(DEFAULT_MAX_SERIES_PER_METRIC)
    }
}

impl CardinalityGuard {
    pub fn new(max_per_metric: usize) -> Self {
        CardinalityGuard {
            max_per_metric,
            tracking: true,
            known: FastMap::default(),
            folded: HashMap::new(),
        }
    }

    /// A guard that folds nothing: the series a batch touches before any
    /// cap, which depend on the batch and the rules alone (the chunk plan
    /// of [`crate::domain::pipeline::chunk_batch`] is made from them).
    pub fn unbounded() -> Self {
        CardinalityGuard {
            tracking: false,
            ..CardinalityGuard::new(usize::MAX)
        }
    }

    /// Series that already exist (from the store), so the cap holds across
    /// invocations.
    pub fn preload<I: IntoIterator<Item = SeriesKey>>(&mut self, existing: I) {
        for key in existing {
            self.known
                .entry(key.name().to_owned())
                .or_default()
                .insert(key);
        }
    }

    /// The series to update: `key` itself, or its overflow series.
    pub fn admit(&mut self, key: SeriesKey) -> SeriesKey {
        if !self.tracking {
            return key;
        }
        // Look up by &str first: the name is only copied for a new metric.
        if !self.known.contains_key(key.name()) {
            self.known.insert(key.name().to_owned(), HashSet::new());
        }
        let Some(known) = self.known.get_mut(key.name()) else {
            return key;
        };
        if known.contains(&key) {
            return key;
        }
        if known.len() < self.max_per_metric {
            known.insert(key.clone());
            return key;
        }
        match self.folded.get_mut(key.name()) {
            Some(n) => *n += 1,
            None => {
                self.folded.insert(key.name().to_owned(), 1);
            }
        }
        key.overflowed()
    }

    /// How many updates each metric had folded into its overflow series.
    pub fn folded(&self) -> &HashMap<String, u64> {
        &self.folded
    }
}

/// One batch's metric deltas.
#[derive(Debug, Clone, Default)]
pub struct BatchMetrics {
    /// Series → its place in `deltas`.
    index: FastMap<SeriesKey, usize>,
    /// Every touched series, in first-touch order.
    deltas: Vec<(SeriesKey, SeriesDelta)>,
    /// Updates applied to each of `deltas` (the overflow accounting counts
    /// updates folded).
    updates: Vec<u64>,
    kinds: FastMap<String, MetricKind>,
    /// Histograms keep no distinct values (only EMF needs them).
    skip_values: bool,
    /// Scratch for [`Self::apply_indexed`]: where each key of the slice
    /// being applied landed, once known.
    resolved: Vec<Option<usize>>,
}

impl BatchMetrics {
    /// A batch whose histograms keep buckets, count and sum only: for
    /// callers that write no EMF (replay), which saves a map lookup per
    /// observation.
    pub fn without_values() -> Self {
        BatchMetrics {
            skip_values: true,
            ..BatchMetrics::default()
        }
    }

    pub fn apply(
        &mut self,
        key: SeriesKey,
        update: Update,
        guard: &mut CardinalityGuard,
    ) -> Result<(), KindConflict> {
        self.apply_at(key, update, guard).map(|_| ())
    }

    /// [`Self::apply`], saying where the update landed: the place in
    /// `deltas` of `key` itself (not of its overflow series), when it did.
    fn apply_at(
        &mut self,
        key: SeriesKey,
        update: Update,
        guard: &mut CardinalityGuard,
    ) -> Result<Option<usize>, KindConflict> {
        let kind = update.kind();
        // Fast path: a series this batch already has was admitted before
        // and has the metric's kind.
        if let Some(&at) = self.index.get(&key)
            && self.deltas[at].1.kind() == kind
        {
            self.deltas[at].1.apply(update, !self.skip_values);
            self.updates[at] += 1;
            return Ok(Some(at));
        }
        let (at, admitted) = self.slot(&key, kind, guard)?;
        self.deltas[at].1.apply(update, !self.skip_values);
        self.updates[at] += 1;
        Ok((admitted == key).then_some(at))
    }

    /// Applies `updates`, each naming its series by position in `keys`, in
    /// order: the same result as [`Self::apply`] on each, with one map
    /// lookup per key instead of one per update. Returns how many updates
    /// were refused for a kind conflict, and the first such conflict.
    pub fn apply_indexed(
        &mut self,
        keys: &[SeriesKey],
        updates: impl IntoIterator<Item = (u32, Update)>,
        guard: &mut CardinalityGuard,
    ) -> (u64, Option<KindConflict>) {
        let mut resolved = std::mem::take(&mut self.resolved);
        resolved.clear();
        resolved.resize(keys.len(), None);
        let mut conflicts = 0;
        let mut first = None;
        for (slot, update) in updates {
            let slot = slot as usize;
            let Some(key) = keys.get(slot) else {
                continue;
            };
            if let Some(at) = resolved[slot]
                && self.deltas[at].1.kind() == update.kind()
            {
                self.deltas[at].1.apply(update, !self.skip_values);
                self.updates[at] += 1;
                continue;
            }
            match self.apply_at(key.clone(), update, guard) {
                Ok(at) => resolved[slot] = at,
                Err(e) => {
                    conflicts += 1;
                    first.get_or_insert(e);
                }
            }
        }
        self.resolved = resolved;
        (conflicts, first)
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn get(&self, key: &SeriesKey) -> Option<&SeriesDelta> {
        self.index.get(key).map(|at| &self.deltas[*at].1)
    }

    /// Where an update of `kind` to `key` lands: the metric's kind is
    /// checked (the first kind seen for a metric is its kind), the key goes
    /// through `guard`, and the series it is admitted as gets a slot if it
    /// has none yet. Returns the slot and the admitted key.
    fn slot(
        &mut self,
        key: &SeriesKey,
        kind: MetricKind,
        guard: &mut CardinalityGuard,
    ) -> Result<(usize, SeriesKey), KindConflict> {
        // `get` first: the metric name is copied only the first time.
        let existing = match self.kinds.get(key.name()) {
            Some(k) => *k,
            None => {
                self.kinds.insert(key.name().to_owned(), kind);
                kind
            }
        };
        if existing != kind {
            return Err(KindConflict {
                metric: key.name().to_owned(),
                existing: existing.as_str(),
                update: kind.as_str(),
            });
        }
        let admitted = guard.admit(key.clone());
        let at = match self.index.get(&admitted) {
            Some(&at) => at,
            None => {
                self.index.insert(admitted.clone(), self.deltas.len());
                self.deltas.push((admitted.clone(), SeriesDelta::new(kind)));
                self.updates.push(0);
                self.deltas.len() - 1
            }
        };
        Ok((at, admitted))
    }

    /// Adds `delta` (made of `updates` updates) to `key` through `guard`,
    /// as [`Self::apply`] would have each update; returns the series it
    /// landed on. A delta of another kind than the metric's is refused.
    pub fn merge(
        &mut self,
        key: &SeriesKey,
        delta: &SeriesDelta,
        updates: u64,
        guard: &mut CardinalityGuard,
    ) -> Result<SeriesKey, KindConflict> {
        let (at, admitted) = self.slot(key, delta.kind(), guard)?;
        self.deltas[at].1.merge(delta);
        self.updates[at] += updates;
        Ok(admitted)
    }

    /// Every touched series with the number of updates it took, sorted by
    /// key.
    pub fn sorted_with_updates(&self) -> Vec<(&SeriesKey, &SeriesDelta, u64)> {
        let mut all: Vec<_> = self
            .deltas
            .iter()
            .zip(&self.updates)
            .map(|((k, d), n)| (k, d, *n))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Every touched series, sorted by key (deterministic output).
    pub fn sorted(&self) -> Vec<(&SeriesKey, &SeriesDelta)> {
        let mut all: Vec<_> = self.deltas.iter().map(|(k, d)| (k, d)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, v: &str) -> SeriesKey {
        SeriesKey::new(name, [("l", v)])
    }

    #[test]
    fn counters_sum_per_series() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for v in ["a", "b", "a"] {
            b.apply(key("c", v), Update::CounterAdd(1.0), &mut g)
                .unwrap();
        }
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(&key("c", "a")), Some(&SeriesDelta::Counter(2.0)));
    }

    #[test]
    fn gauge_set_resets_earlier_adds() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for u in [
            Update::GaugeAdd(1.0),
            Update::GaugeSet(10.0),
            Update::GaugeAdd(-2.0),
        ] {
            b.apply(key("g", "x"), u, &mut g).unwrap();
        }
        assert_eq!(
            b.get(&key("g", "x")),
            Some(&SeriesDelta::Gauge {
                set: Some(10.0),
                add: -2.0
            })
        );
    }

    #[test]
    fn histograms_bucket_and_keep_distinct_values() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for v in [0.004, 0.005, 0.3, 0.3, 99.0] {
            b.apply(key("h", "x"), Update::Observe(v), &mut g).unwrap();
        }
        let Some(SeriesDelta::Histogram(h)) = b.get(&key("h", "x")) else {
            panic!("not a histogram");
        };
        assert_eq!(h.count, 5);
        assert!((h.sum - 99.609).abs() < 1e-9);
        assert_eq!(h.buckets[0], 2, "le=0.005 is inclusive");
        assert_eq!(h.buckets[7], 2, "0.3 falls in le=0.5");
        assert_eq!(h.buckets[14], 1, "+Inf");
        assert_eq!(h.values, vec![(0.004, 1), (0.005, 1), (0.3, 2), (99.0, 1)]);
    }

    #[test]
    fn one_metric_has_one_kind() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        b.apply(key("m", "x"), Update::CounterAdd(1.0), &mut g)
            .unwrap();
        let err = b
            .apply(key("m", "y"), Update::Observe(1.0), &mut g)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric m is a counter but an update treats it as a histogram"
        );
    }

    #[test]
    fn label_sets_past_the_cap_fold_into_overflow() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::new(2);
        g.preload([key("c", "old")]);
        for v in ["old", "new", "third", "fourth", "new"] {
            b.apply(key("c", v), Update::CounterAdd(1.0), &mut g)
                .unwrap();
        }
        let keys: Vec<String> = b.sorted().iter().map(|(k, _)| k.compact()).collect();
        assert_eq!(keys, ["c{l=__overflow__}", "c{l=new}", "c{l=old}"]);
        assert_eq!(b.get(&key("c", "new")), Some(&SeriesDelta::Counter(2.0)));
        assert_eq!(
            b.get(&key("c", "x").overflowed()),
            Some(&SeriesDelta::Counter(2.0))
        );
        assert_eq!(g.folded().get("c"), Some(&2));
    }
}
