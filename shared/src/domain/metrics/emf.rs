//! CloudWatch Embedded Metric Format: a batch's metrics as JSON lines on
//! stdout, which Lambda's log pipeline turns into CloudWatch metrics without
//! an API call. Respects EMF's limits: 100 metrics per document, 30
//! dimensions per set, 100 values per metric.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::aggregate::{BatchMetrics, SeriesDelta};
use super::series::SeriesKey;

pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch unit from the Prometheus naming convention.
fn unit(metric: &str) -> &'static str {
    if metric.ends_with("_seconds") {
        "Seconds"
    } else if metric.ends_with("_bytes") {
        "Bytes"
    } else if metric.ends_with("_total") {
        "Count"
    } else {
        "None"
    }
}

/// A metric name and its data, one entry per document round.
type NamedData<'a> = (&'a str, Vec<Datum>);

/// A metric's value in one document.
enum Datum {
    Single(f64),
    Distribution(Vec<(f64, u64)>),
}

impl Datum {
    fn to_json(&self) -> Value {
        match self {
            Datum::Single(v) => json!(v),
            Datum::Distribution(pairs) => json!({
                "Values": pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
                "Counts": pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
            }),
        }
    }
}

/// The EMF documents of a batch. Counters are sent as the batch's increase
/// (CloudWatch sums them), histograms as their observed values, gauges as
/// the absolute values in `gauges` (the store knows them after the update);
/// a gauge without one is left out rather than sent wrong.
pub fn render(
    batch: &BatchMetrics,
    gauges: &HashMap<SeriesKey, f64>,
    namespace: &str,
    timestamp_ms: i64,
) -> Vec<String> {
    // Series sharing a label set share a document (dimension values are
    // top-level members, so one document holds exactly one label set).
    let mut groups: BTreeMap<&[(String, String)], Vec<NamedData<'_>>> = BTreeMap::new();
    for (key, delta) in batch.sorted() {
        let rounds: Vec<Datum> = match delta {
            SeriesDelta::Counter(v) => vec![Datum::Single(*v)],
            SeriesDelta::Gauge { .. } => match gauges.get(key) {
                Some(v) => vec![Datum::Single(*v)],
                None => continue,
            },
            SeriesDelta::Histogram(h) => h
                .values
                .chunks(MAX_VALUES_PER_METRIC)
                .map(|c| Datum::Distribution(c.to_vec()))
                .collect(),
        };
        groups
            .entry(key.labels())
            .or_default()
            .push((key.name(), rounds));
    }
    let mut documents = Vec::new();
    for (labels, metrics) in groups {
        let rounds = metrics.iter().map(|m| m.1.len()).max().unwrap_or(0);
        for round in 0..rounds {
            let present: Vec<(&str, &Datum)> = metrics
                .iter()
                .filter_map(|(name, data)| data.get(round).map(|d| (*name, d)))
                .collect();
            for chunk in present.chunks(MAX_METRICS_PER_DOCUMENT) {
                documents.push(document(labels, chunk, namespace, timestamp_ms));
            }
        }
    }
    documents
}

fn document(
    labels: &[(String, String)],
    metrics: &[(&str, &Datum)],
    namespace: &str,
    timestamp_ms: i64,
) -> String {
    let dimensions: Vec<&str> = labels
        .iter()
        .take(MAX_DIMENSIONS)
        .map(|(k, _)| k.as_str())
        .collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": unit(name)}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    for (k, v) in labels {
        root.insert(k.clone(), Value::String(v.clone()));
    }
    for (name, datum) in metrics {
        root.insert((*name).to_owned(), datum.to_json());
    }
    Value::Object(root).to_string()
}

/// The paging path's own metrics, for the CloudWatch alarms on the
/// operations topic (template.yaml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PagingMetrics {
    /// Publications that failed, whatever the reason.
    pub publish_failures: usize,
    /// Notices moved to the dead letters by this invocation.
    pub dead_lettered: usize,
    /// The evaluator's reading of the outbox: its oldest notice's age (0
    /// when empty, so the alarm always has data), and the dead letters
    /// kept. `None` from log-metrics, which does not read them.
    pub oldest_unpublished_ms: Option<i64>,
    pub dead_letters: Option<usize>,
}

/// Metric names of [`PagingMetrics`], as the alarms name them.
pub const PUBLISH_FAILURES: &str = "incident_publish_failures_total";
pub const DEAD_LETTERED: &str = "incident_dead_lettered_total";
pub const OUTBOX_OLDEST_AGE: &str = "incident_outbox_oldest_age_seconds";
pub const DEAD_LETTERS: &str = "incident_dead_letters";

/// One EMF document without dimensions (one alarm per metric, whatever
/// function wrote it).
pub fn render_paging(metrics: &PagingMetrics, namespace: &str, timestamp_ms: i64) -> String {
    let mut names: Vec<(&str, &str, Value)> = vec![
        (PUBLISH_FAILURES, "Count", json!(metrics.publish_failures)),
        (DEAD_LETTERED, "Count", json!(metrics.dead_lettered)),
    ];
    if let Some(ms) = metrics.oldest_unpublished_ms {
        names.push((OUTBOX_OLDEST_AGE, "Seconds", json!(ms as f64 / 1000.0)));
    }
    if let Some(n) = metrics.dead_letters {
        names.push((DEAD_LETTERS, "Count", json!(n)));
    }
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": names.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, _, value) in names {
        doc.insert(name.into(), value);
    }
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn paging_metrics_are_one_document_without_dimensions() {
        let doc = super::render_paging(
            &super::PagingMetrics {
                publish_failures: 2,
                dead_lettered: 1,
                oldest_unpublished_ms: Some(90_500),
                dead_letters: Some(3),
            },
            "Test",
            1_000,
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Test");
        assert_eq!(cw["Dimensions"], serde_json::json!([[]]));
        assert_eq!(cw["Metrics"].as_array().unwrap().len(), 4);
        assert_eq!(v[super::PUBLISH_FAILURES], 2);
        assert_eq!(v[super::DEAD_LETTERED], 1);
        assert_eq!(v[super::OUTBOX_OLDEST_AGE], 90.5);
        assert_eq!(v[super::DEAD_LETTERS], 3);
        // log-metrics knows neither the age nor the kept dead letters.
        let partial = super::render_paging(&super::PagingMetrics::default(), "Test", 1_000);
        let v: serde_json::Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(v.get(super::OUTBOX_OLDEST_AGE).is_none());
    }

    use super::*;
    use crate::domain::metrics::aggregate::{CardinalityGuard, Update};

    fn parse(doc: &str) -> Value {
        serde_json::from_str(doc).unwrap()
    }

    #[test]
    fn one_document_per_label_set() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        let ep = [("endpoint", "/api/auth/login")];
        b.apply(
            SeriesKey::new("auth_requests_total", ep),
            Update::CounterAdd(3.0),
            &mut g,
        )
        .unwrap();
        b.apply(
            SeriesKey::new("auth_request_duration_seconds", ep),
            Update::Observe(0.04),
            &mut g,
        )
        .unwrap();
        b.apply(
            SeriesKey::new("auth_request_duration_seconds", ep),
            Update::Observe(0.04),
            &mut g,
        )
        .unwrap();
        b.apply(
            SeriesKey::new("active_sessions", Vec::<(String, String)>::new()),
            Update::GaugeAdd(1.0),
            &mut g,
        )
        .unwrap();
        let docs = render(&b, &HashMap::new(), "BlindspotX", 1_000);
        assert_eq!(docs.len(), 1, "the gauge without a known value is left out");
        let d = parse(&docs[0]);
        assert_eq!(d["endpoint"], "/api/auth/login");
        assert_eq!(d["auth_requests_total"], 3.0);
        assert_eq!(
            d["auth_request_duration_seconds"],
            json!({"Values": [0.04], "Counts": [2]})
        );
        let cw = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "BlindspotX");
        assert_eq!(cw["Dimensions"], json!([["endpoint"]]));
        assert_eq!(d["_aws"]["Timestamp"], 1_000);
        let units: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Unit"].as_str().unwrap())
            .collect();
        assert_eq!(units, ["Seconds", "Count"]);

        let gauge = SeriesKey::new("active_sessions", Vec::<(String, String)>::new());
        let docs = render(&b, &HashMap::from([(gauge, 7.0)]), "NS", 1);
        let d = parse(&docs[0]);
        assert_eq!(d["active_sessions"], 7.0);
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }

    #[test]
    fn limits_split_documents() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for i in 0..150 {
            b.apply(
                SeriesKey::new(format!("m{i:03}_total"), [("a", "x")]),
                Update::CounterAdd(1.0),
                &mut g,
            )
            .unwrap();
        }
        for i in 0..250 {
            b.apply(
                SeriesKey::new("h_seconds", [("a", "x")]),
                Update::Observe(f64::from(i)),
                &mut g,
            )
            .unwrap();
        }
        let docs: Vec<Value> = render(&b, &HashMap::new(), "NS", 1)
            .iter()
            .map(|d| parse(d))
            .collect();
        // Round 0: 151 metrics → 2 documents; rounds 1 and 2: the histogram's next values.
        assert_eq!(docs.len(), 4);
        for d in &docs {
            let metrics = d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap();
            assert!(metrics.len() <= MAX_METRICS_PER_DOCUMENT);
        }
        let values: usize = docs
            .iter()
            .filter_map(|d| d.get("h_seconds"))
            .map(|h| h["Values"].as_array().unwrap().len())
            .sum();
        assert_eq!(values, 250);
        assert!(
            docs.iter()
                .filter_map(|d| d.get("h_seconds"))
                .all(|h| h["Values"].as_array().unwrap().len() <= 100)
        );
    }

    #[test]
    fn at_most_thirty_dimensions() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        let labels: Vec<(String, String)> = (0..35)
            .map(|i| (format!("l{i:02}"), "v".to_owned()))
            .collect();
        b.apply(
            SeriesKey::new("c_total", labels),
            Update::CounterAdd(1.0),
            &mut g,
        )
        .unwrap();
        let d = parse(&render(&b, &HashMap::new(), "NS", 1)[0]);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .unwrap()
                .len(),
            30
        );
    }
}
