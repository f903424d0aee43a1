//! A metric series: a metric name and a sorted label set. One type used for
//! aggregation, storage keys and every output format.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The hash map of the log pipeline's hot paths (rule caches, series):
/// foldhash is several times cheaper than std's SipHash on short keys and
/// still seeded at random per map, so label values an attacker writes into
/// logs cannot be chosen to collide.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Counter, gauge or histogram, as Prometheus means them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// The label value every label of a series gets when its metric has too many
/// label sets already (see [`super::aggregate::CardinalityGuard`]).
pub const OVERFLOW: &str = "__overflow__";

/// Metric name plus labels, sorted by label name so equal series compare and
/// hash equal however the labels were produced.
///
/// Shared and hashed once: the pipeline clones and looks up keys several
/// times per log event, so a clone is a reference count and a hash is the
/// stored one.
#[derive(Clone)]
pub struct SeriesKey(Arc<KeyData>);

struct KeyData {
    name: String,
    labels: Vec<(String, String)>,
    hash: u64,
}

impl SeriesKey {
    pub fn new<I, K, V>(name: impl Into<String>, labels: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<(String, String)> = labels
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        Self::from_sorted(name.into(), labels)
    }

    fn from_sorted(name: String, labels: Vec<(String, String)>) -> Self {
        // A fixed-key hasher: the value only has to be consistent within
        // one process (maps still hash it again with their random state).
        let mut hasher = std::hash::DefaultHasher::new();
        name.hash(&mut hasher);
        labels.hash(&mut hasher);
        let hash = hasher.finish();
        SeriesKey(Arc::new(KeyData { name, labels, hash }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn labels(&self) -> &[(String, String)] {
        &self.0.labels
    }

    /// The same series with every label value replaced by [`OVERFLOW`].
    pub fn overflowed(&self) -> Self {
        let labels = self
            .labels()
            .iter()
            .map(|(k, _)| (k.clone(), OVERFLOW.to_owned()))
            .collect();
        Self::from_sorted(self.0.name.clone(), labels)
    }

    /// `name{a=x,b=y}`: the replay tool's JSON key and the reference
    /// counter's format (labels sorted, values unquoted).
    pub fn compact(&self) -> String {
        self.compact_as("", None)
    }

    /// [`Self::compact`] of the series named with `suffix` (`_bucket`) and
    /// holding the label `extra` (`le`) too, without building that key (a
    /// histogram's buckets were most of replay's JSON output time): `None`
    /// when the series already has a label of that name (the key would
    /// then keep one of the two; build it to know which).
    pub fn compact_with(&self, suffix: &str, extra: Option<(&str, &str)>) -> Option<String> {
        if let Some((name, _)) = extra
            && self.labels().iter().any(|(k, _)| k == name)
        {
            return None;
        }
        Some(self.compact_as(suffix, extra))
    }

    fn compact_as(&self, suffix: &str, extra: Option<(&str, &str)>) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(self.name());
        out.push_str(suffix);
        out.push('{');
        let mut extra = extra;
        let mut first = true;
        let mut push = |out: &mut String, k: &str, v: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        };
        for (k, v) in self.labels() {
            // Labels are sorted by name: the extra one goes before the
            // first that sorts after it.
            if let Some((ek, ev)) = extra.filter(|(ek, _)| *ek < k.as_str()) {
                push(&mut out, ek, ev);
                extra = None;
            }
            push(&mut out, k, v);
        }
        if let Some((ek, ev)) = extra {
            push(&mut out, ek, ev);
        }
        out.push('}');
        out
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.name == other.0.name
                && self.0.labels == other.0.labels)
    }
}

impl Eq for SeriesKey {}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.0.name, &self.0.labels).cmp(&(&other.0.name, &other.0.labels))
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesKey")
            .field("name", &self.0.name)
            .field("labels", &self.0.labels)
            .finish()
    }
}

/// Prometheus style: `name{a="x",b="y"}` with escaped values.
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if self.labels().is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.labels().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// The Prometheus client libraries' default histogram buckets (seconds).
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Histogram buckets as stored: the default bounds plus `+Inf`.
pub const BUCKETS: usize = DEFAULT_BUCKETS.len() + 1;

/// A series' value as stored: cumulative since it was first written.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredValue {
    Counter(f64),
    Gauge(f64),
    Histogram {
        /// Per bucket, not cumulative; the last is `+Inf`.
        buckets: [u64; BUCKETS],
        count: u64,
        sum: f64,
    },
}

impl StoredValue {
    pub fn kind(&self) -> MetricKind {
        match self {
            StoredValue::Counter(_) => MetricKind::Counter,
            StoredValue::Gauge(_) => MetricKind::Gauge,
            StoredValue::Histogram { .. } => MetricKind::Histogram,
        }
    }
}

/// A stored series: its key and cumulative value.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    pub key: SeriesKey,
    pub value: StoredValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_unique() {
        let a = SeriesKey::new("m", [("b", "2"), ("a", "1")]);
        let b = SeriesKey::new("m", [("a", "1"), ("b", "2"), ("a", "dup")]);
        assert_eq!(a, b);
        assert_eq!(a.compact(), "m{a=1,b=2}");
    }

    #[test]
    fn compact_with_an_extra_label_is_the_compact_key_built_with_it() {
        let labels = [
            vec![],
            vec![("a", "1")],
            vec![("method", "GET"), ("status", "200")],
            vec![("endpoint", "/x"), ("method", "GET")],
            vec![("a", "1"), ("lf", "2"), ("lz", "3"), ("z", "4")],
        ];
        for labels in labels {
            let key = SeriesKey::new("m", labels.clone());
            for (suffix, extra) in [("", None), ("_sum", None), ("_bucket", Some(("le", "0.5")))] {
                let built =
                    SeriesKey::new(format!("m{suffix}"), labels.iter().copied().chain(extra));
                assert_eq!(key.compact_with(suffix, extra), Some(built.compact()));
            }
        }
        // A series already holding the label: the caller builds the key.
        let key = SeriesKey::new("m", [("le", "1")]);
        assert_eq!(key.compact_with("_bucket", Some(("le", "0.5"))), None);
    }

    #[test]
    fn display_escapes_values() {
        let k = SeriesKey::new("m", [("q", "a\"b\\c\nd")]);
        assert_eq!(k.to_string(), r#"m{q="a\"b\\c\nd"}"#);
        assert_eq!(
            SeriesKey::new("up", Vec::<(String, String)>::new()).to_string(),
            "up"
        );
    }

    #[test]
    fn overflow_keeps_label_names() {
        let k = SeriesKey::new("m", [("ip", "x"), ("user", "y")]).overflowed();
        assert_eq!(k.compact(), "m{ip=__overflow__,user=__overflow__}");
    }
}
