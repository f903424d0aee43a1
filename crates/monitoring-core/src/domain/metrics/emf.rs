//! CloudWatch Embedded Metric Format: a batch's metrics, and the probe's
//! results, as JSON lines on stdout, which Lambda's log pipeline turns into
//! CloudWatch metrics without an API call (and without PutMetricData's
//! request charge). Respects EMF's limits: 100 metrics per document, 30
//! dimensions per set, 100 values per metric.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::aggregate::{BatchMetrics, SeriesDelta};
use super::cloudwatch::cloudwatch_key;
use super::series::{SeriesKey, StoredValue};
use crate::domain::probe_result::{ProbeResult, Unit};
use crate::ports::{SeriesSource, StoreError};

pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch unit of a log metric, from the Prometheus naming convention.
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

/// A metric's CloudWatch value in one batch, after the dimension policy
/// merged the series it maps together.
enum Merged {
    Sum(f64),
    /// Distinct values and their counts, in first-seen order.
    Distribution(Vec<(f64, u64)>, HashMap<u64, usize>),
}

/// The EMF documents of a batch. Counters are sent as the batch's increase
/// (CloudWatch sums them), histograms as their observed values, gauges as
/// the absolute values in `gauges` (read from the store after the update,
/// [`gauge_values`]); a gauge without one is left out rather than sent
/// wrong. Dimensions follow the policy of [`super::cloudwatch`]: series it
/// maps to one CloudWatch series are merged, metrics it keeps in
/// Prometheus are left out.
pub fn render(
    batch: &BatchMetrics,
    gauges: &HashMap<SeriesKey, f64>,
    namespace: &str,
    timestamp_ms: i64,
) -> Vec<String> {
    let mut merged: BTreeMap<SeriesKey, Merged> = BTreeMap::new();
    for (key, delta) in batch.sorted() {
        let Some(cw) = cloudwatch_key(key) else {
            continue;
        };
        match delta {
            SeriesDelta::Counter(v) => add(&mut merged, cw, *v),
            SeriesDelta::Gauge { .. } => {
                if let Some(v) = gauges.get(key) {
                    add(&mut merged, cw, *v);
                }
            }
            SeriesDelta::Histogram(h) => {
                let entry = merged
                    .entry(cw)
                    .or_insert_with(|| Merged::Distribution(Vec::new(), HashMap::new()));
                if let Merged::Distribution(values, index) = entry {
                    for (v, n) in &h.values {
                        match index.get(&v.to_bits()) {
                            Some(i) => values[*i].1 += n,
                            None => {
                                index.insert(v.to_bits(), values.len());
                                values.push((*v, *n));
                            }
                        }
                    }
                }
            }
        }
    }
    // Series sharing a label set share a document (dimension values are
    // top-level members, so one document holds exactly one label set).
    let mut groups: BTreeMap<&[(String, String)], Vec<NamedData<'_>>> = BTreeMap::new();
    for (key, value) in &merged {
        let rounds: Vec<Datum> = match value {
            Merged::Sum(v) => vec![Datum::Single(*v)],
            Merged::Distribution(values, _) => values
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
                documents.push(document(labels, chunk, unit, namespace, timestamp_ms));
            }
        }
    }
    documents
}

fn add(merged: &mut BTreeMap<SeriesKey, Merged>, key: SeriesKey, v: f64) {
    if let Merged::Sum(total) = merged.entry(key).or_insert(Merged::Sum(0.0)) {
        *total += v;
    }
}

/// The absolute values, after the batch was applied, of the gauges the
/// batch touched: one read per gauge metric. A gauge moves by increments
/// (`active_sessions`: +1 per session created, -1 per session ended), so
/// only the store knows its value. The read may already include another
/// container's later update: the sample is the value at the time of the
/// read, which is what a gauge means.
pub async fn gauge_values<S: SeriesSource>(
    store: &S,
    batch: &BatchMetrics,
) -> Result<HashMap<SeriesKey, f64>, StoreError> {
    let touched: Vec<&SeriesKey> = batch
        .sorted()
        .into_iter()
        .filter(|(key, delta)| {
            matches!(delta, SeriesDelta::Gauge { .. }) && cloudwatch_key(key).is_some()
        })
        .map(|(key, _)| key)
        .collect();
    let mut names: Vec<&str> = touched.iter().map(|k| k.name()).collect();
    names.dedup();
    let mut out = HashMap::new();
    for name in names {
        for series in store.read_metric(name).await? {
            if let StoredValue::Gauge(v) = series.value
                && touched.contains(&&series.key)
            {
                out.insert(series.key, v);
            }
        }
    }
    Ok(out)
}

fn document(
    labels: &[(String, String)],
    metrics: &[(&str, &Datum)],
    unit: impl Fn(&str) -> &'static str,
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

/// `responseTime` → `ResponseTime`: probe measurements are camelCase in the
/// health report, CloudWatch metric names PascalCase.
pub fn probe_metric_name(measurement: &str) -> String {
    let mut chars = measurement.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn probe_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Milliseconds => "Milliseconds",
        Unit::Seconds => "Seconds",
        Unit::Percent => "Percent",
        Unit::Bytes => "Bytes",
        Unit::Count => "Count",
        // CloudWatch has no day unit; the metric name says it.
        Unit::Days => "None",
    }
}

/// Probe results as EMF documents. Per configured result: `ComponentUp`
/// (1 healthy, 0 not), `ProbeLatency` (ms) and one metric per measurement
/// (`ResponseTime`, `ConnectionUtilization`, ...), with a `Component`
/// dimension and, where the measurement has a target (a table, an
/// endpoint), a `Target` dimension: one document per dimension set. A
/// component that is not configured sends nothing: its graphs show no data
/// rather than an "up" that nothing measured or a "down" that would trip
/// an alarm. Non-finite values are left out (EMF refuses them).
pub fn render_probe_results(results: &[ProbeResult], namespace: &str) -> Vec<String> {
    let mut documents = Vec::new();
    for result in results.iter().filter(|r| r.status.is_configured()) {
        let timestamp_ms = (result.checked_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let component = ("Component".to_owned(), result.component.as_str().to_owned());
        // Target → (metric name, unit, value), in measurement order; `None`
        // is the component's own document.
        let mut by_target: BTreeMap<Option<&str>, Vec<(String, &'static str, Datum)>> =
            BTreeMap::new();
        let up = if result.status.is_healthy() { 1.0 } else { 0.0 };
        let own = by_target.entry(None).or_default();
        own.push(("ComponentUp".into(), "Count", Datum::Single(up)));
        if result.latency_ms.is_finite() {
            own.push((
                "ProbeLatency".into(),
                "Milliseconds",
                Datum::Single(result.latency_ms),
            ));
        }
        for m in result.measurements.iter().filter(|m| m.value.is_finite()) {
            let list = by_target.entry(m.target.as_deref()).or_default();
            let name = probe_metric_name(&m.name);
            // A name twice in one document would be one JSON member.
            if !list.iter().any(|(n, ..)| *n == name) {
                list.push((name, probe_unit(m.unit), Datum::Single(m.value)));
            }
        }
        for (target, metrics) in &by_target {
            let mut labels = vec![component.clone()];
            if let Some(t) = target {
                labels.push(("Target".to_owned(), (*t).to_owned()));
            }
            let units: HashMap<&str, &'static str> =
                metrics.iter().map(|(n, u, _)| (n.as_str(), *u)).collect();
            let named: Vec<(&str, &Datum)> =
                metrics.iter().map(|(n, _, d)| (n.as_str(), d)).collect();
            for chunk in named.chunks(MAX_METRICS_PER_DOCUMENT) {
                documents.push(document(
                    &labels,
                    chunk,
                    |name| units.get(name).copied().unwrap_or("None"),
                    namespace,
                    timestamp_ms,
                ));
            }
        }
    }
    documents
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

    #[test]
    fn the_dimension_policy_merges_status_codes_and_keeps_request_counts_out() {
        let mut b = BatchMetrics::default();
        let mut g = CardinalityGuard::default();
        for (method, code, seconds) in [
            ("GET", "500", 0.2),
            ("POST", "503", 0.2),
            ("GET", "200", 0.01),
        ] {
            let labels = [
                ("endpoint", "/api/users/:id"),
                ("method", method),
                ("status_code", code),
            ];
            b.apply(
                SeriesKey::new("api_request_duration_seconds", labels),
                Update::Observe(seconds),
                &mut g,
            )
            .unwrap();
            b.apply(
                SeriesKey::new("http_requests_total", labels),
                Update::CounterAdd(1.0),
                &mut g,
            )
            .unwrap();
        }
        let docs: Vec<Value> = render(&b, &HashMap::new(), "NS", 1)
            .iter()
            .map(|d| parse(d))
            .collect();
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert!(docs.iter().all(|d| d.get("http_requests_total").is_none()));
        let server = docs.iter().find(|d| d["status_class"] == "5xx").unwrap();
        assert_eq!(
            server["api_request_duration_seconds"],
            json!({"Values": [0.2], "Counts": [2]})
        );
        assert_eq!(
            server["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["endpoint", "status_class"]])
        );
        assert!(server.get("method").is_none() && server.get("status_code").is_none());
        let ok = docs.iter().find(|d| d["status_class"] == "2xx").unwrap();
        assert_eq!(ok["api_request_duration_seconds"]["Counts"], json!([1]));
    }

    #[test]
    fn probe_names_are_pascal_case() {
        assert_eq!(probe_metric_name("responseTime"), "ResponseTime");
        assert_eq!(probe_metric_name(""), "");
    }

    #[test]
    fn a_probe_result_becomes_up_latency_and_measurements() {
        use crate::domain::probe_result::{Component, Measurement, Observation, Reason, Status};
        use time::OffsetDateTime;

        let obs = Observation::measured(vec![
            Measurement::new("daysRemaining", 9.5, Unit::Days).with_target("auth.example.com:443"),
            Measurement::new("bogus", f64::NAN, Unit::Count),
        ])
        .with_reason(Status::Fail, Reason::CertificateExpiring, "x");
        let r = ProbeResult::from_observation(
            Component::Certificates,
            obs,
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(2),
            4.0,
        );
        let docs: Vec<Value> = render_probe_results(&[r], "NS")
            .iter()
            .map(|d| parse(d))
            .collect();
        assert_eq!(docs.len(), 2);
        let own = &docs[0];
        assert_eq!(
            (own["ComponentUp"].clone(), own["ProbeLatency"].clone()),
            (json!(0.0), json!(4.0))
        );
        assert_eq!(own["Component"], "certificates");
        assert!(own.get("Bogus").is_none(), "a NaN is left out");
        assert_eq!(
            own["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Component"]])
        );
        assert_eq!(own["_aws"]["Timestamp"], 2000);
        let targeted = &docs[1];
        assert_eq!(targeted["DaysRemaining"], 9.5);
        assert_eq!(targeted["Target"], "auth.example.com:443");
        let cw = &targeted["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Dimensions"], json!([["Component", "Target"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "DaysRemaining", "Unit": "None"}])
        );
    }

    #[test]
    fn a_component_that_is_not_configured_sends_nothing() {
        use crate::domain::probe_result::{Component, Observation};
        let r = ProbeResult::from_observation(
            Component::Redis,
            Observation::not_configured("REDIS_URL is not set"),
            time::OffsetDateTime::UNIX_EPOCH,
            0.1,
        );
        assert!(render_probe_results(&[r], "NS").is_empty());
    }
}
