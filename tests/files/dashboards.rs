//! The dashboards and Prometheus files name only what the bundle emits: no
//! dead widgets, panels or alert rules. No stack needed.
//!
//! What is emitted:
//! - log metrics in CloudWatch: derived from what reaches it, the EMF
//!   documents `replay --format emf` prints (the rendering log-metrics
//!   runs, dimension policy included) for a corpus: the shared bench
//!   generator's logs (`../shared/bench/gen_logs.py`), the demo traffic,
//!   replay's test logs and a hostile file for the pipeline's own counters
//!   (binary lines, a rule miss, a metric past its series cap), the drift
//!   job's text records of `tests/data/*.log`, plus the
//!   files `DASHBOARD_CORPUS` names (`:`-separated), a held-out corpus.
//! - log metrics in Prometheus: the default log rules (`infra/rules/*.toml`,
//!   loaded with the functions' own loader) and the pipeline's own counters,
//!   every label kept, from `/metrics`, histograms as `_bucket` / `_sum` /
//!   `_count`.
//! - probe metrics: `ComponentUp`, `ProbeLatency` and one metric per probe
//!   measurement (PascalCase), read from the probes' source, dimension
//!   `Component` plus `Target` for targeted measurements (CloudWatch only,
//!   as EMF).
//! - the incidents topic's `AWS/SNS` `NumberOfMessagesPublished`, and
//!   Prometheus' own `ALERTS` series of the rules in `alerts.yml`.
//!
//! Checked: `infra/dashboards/*.json` against that and against the bodies
//! embedded in `template.yaml` (`scripts/dashboards.py`); the Grafana
//! dashboards' PromQL and CloudWatch queries; `infra/prometheus/alerts.yml`
//! against `infra/alerts/default.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use monitoring_adapters::rules_loader::load_file;
use monitoring_core::domain::metrics::series::MetricKind;
use monitoring_core::domain::pipeline::pipeline_metrics;
use monitoring_core::domain::probe_result::Component;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

const NAMESPACE: &str = "${MetricsNamespace}";

/// Default alert rules with no Prometheus counterpart (alerts.yml's header
/// says why): probe results go to CloudWatch only, never to `/metrics`;
/// per-address and per-user counts, and distinct counts, have no series,
/// and summed over all keys these rules are `auth_failures` again. The
/// bundle's engine still raises them.
const NOT_IN_PROMETHEUS: [&str; 10] = [
    "component_down",
    "resource_utilization",
    "connection_pool_exhaustion",
    "certificate_expiring",
    "auth_failures_by_ip",
    "auth_failures_by_user",
    "password_spraying",
    "distributed_guessing",
    "suspected_compromise",
    "suspected_compromise_by_ip",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.{ext} in {dir}");
    out
}

fn json_file(path: &Path) -> Json {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_file(path: &Path) -> Yaml {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------- what is emitted

/// A log metric: its kind and label names (= EMF dimension names).
#[derive(Debug, Clone)]
struct LogMetric {
    kind: MetricKind,
    labels: BTreeSet<String>,
}

/// A probe metric: the components that send it and its dimension names.
#[derive(Debug, Clone)]
struct ProbeMetric {
    components: BTreeSet<String>,
    dimensions: BTreeSet<String>,
}

/// A log metric as the EMF output carries it.
#[derive(Debug, Clone, Default)]
struct EmfMetric {
    /// Every dimension set it was sent with.
    dimension_sets: BTreeSet<BTreeSet<String>>,
    /// Sent as Values/Counts (a histogram): percentiles apply.
    distribution: bool,
}

struct Catalogue {
    log: BTreeMap<String, LogMetric>,
    emf: BTreeMap<String, EmfMetric>,
    probe: BTreeMap<String, ProbeMetric>,
}

/// Only log-metrics' handler sends it (a subscription payload that does not
/// decode is no line of a log file); `rejected_batches_reach_emf` in
/// functions/log-metrics checks its EMF.
const NOT_FROM_A_LOG_FILE: [&str; 1] = ["log_batches_rejected_total"];

/// The hostile part of the corpus: what makes the pipeline count against
/// itself. The permission denials go past the series cap of one metric.
fn hostile_corpus(dir: &Path) -> PathBuf {
    let mut text = String::new();
    text.push_str("binary \u{1}\u{2}\u{3} line\n");
    text.push_str(r#"{"timestamp":"2025-05-20T10:30:00.000Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/users/me","method":"GET","status_code":200}"#);
    text.push('\n');
    let cap = monitoring_core::domain::metrics::aggregate::DEFAULT_MAX_SERIES_PER_METRIC;
    for i in 0..=cap {
        text.push_str(&format!(
            r#"{{"timestamp":"2025-05-20T10:30:01.000Z","level":"WARNING","logger":"security","message":"Permission denied","user_id":"u{i}","permission":"perm{i}"}}"#
        ));
        text.push('\n');
    }
    let path = dir.join("hostile.log");
    std::fs::write(&path, text).unwrap();
    path
}

/// The corpus the EMF is derived from (see the module's header).
fn corpus(dir: &Path) -> Vec<PathBuf> {
    let generator = root().join("../shared/bench/gen_logs.py");
    assert!(
        generator.is_file(),
        "{} is missing: this test needs the shared bench directory next to the project",
        generator.display()
    );
    let generated = dir.join("generated.log");
    let status = std::process::Command::new("python3")
        .arg(&generator)
        .args(["20000"])
        .arg(&generated)
        .arg("11")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success(), "gen_logs.py failed");
    let mut out = vec![generated, root().join("events/demo/traffic.log")];
    out.extend(files("tests/data", "log"));
    // The drift job's own text records (scheduler, Graph API, changes by
    // category), which the generator does not write.
    out.extend(files("tests/data", "log"));
    out.push(hostile_corpus(dir));
    if let Ok(extra) = std::env::var("DASHBOARD_CORPUS") {
        out.extend(
            extra
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        );
    }
    out
}

/// What reaches CloudWatch of the log metrics: `replay --format emf`'s
/// documents for the corpus, read back as CloudWatch reads them. Replayed
/// once per test process.
fn emf_metrics() -> BTreeMap<String, EmfMetric> {
    static EMF: std::sync::OnceLock<BTreeMap<String, EmfMetric>> = std::sync::OnceLock::new();
    EMF.get_or_init(replay_corpus).clone()
}

fn replay_corpus() -> BTreeMap<String, EmfMetric> {
    let dir = std::env::temp_dir().join(format!("dashboards-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = corpus(&dir);
    let rules =
        replay::load_rules(Some(root().join("infra/rules/default.toml").as_path())).unwrap();
    let redactor = replay::redactor(None).unwrap();
    let result = replay::replay(&files, &rules, &redactor, 0, Some(NAMESPACE)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut out: BTreeMap<String, EmfMetric> = BTreeMap::new();
    for line in &result.emf {
        let doc: Json = serde_json::from_str(line).unwrap();
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for dims in directive["Dimensions"].as_array().unwrap() {
                let dims: BTreeSet<String> = dims
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let d = d.as_str().unwrap();
                        assert!(doc[d].is_string(), "dimension {d} has no value: {doc}");
                        d.to_owned()
                    })
                    .collect();
                for m in directive["Metrics"].as_array().unwrap() {
                    let name = m["Name"].as_str().unwrap();
                    let entry = out.entry(name.to_owned()).or_default();
                    entry.dimension_sets.insert(dims.clone());
                    entry.distribution |= doc[name].is_object();
                }
            }
        }
    }
    assert!(out.contains_key("auth_requests_total") && out.contains_key("active_sessions"));
    out
}

fn log_metrics() -> BTreeMap<String, LogMetric> {
    let mut out = BTreeMap::new();
    let mut infos = pipeline_metrics();
    for path in files("infra/rules", "toml") {
        let rules: monitoring_core::domain::rules::RuleSet =
            load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        infos.extend(rules.metrics().iter().cloned());
    }
    for info in infos {
        let metric = LogMetric {
            kind: info.kind,
            labels: info.labels.into_iter().collect(),
        };
        if let Some(old) = out.insert(info.name.clone(), metric.clone()) {
            assert_eq!(
                (old.kind, &old.labels),
                (metric.kind, &metric.labels),
                "{} is defined twice, differently",
                info.name
            );
        }
    }
    assert!(out.contains_key("auth_requests_total") && out.contains_key("log_events_total"));
    out
}

/// `responseTime` → `ResponseTime`, as the CloudWatch adapter names them.
fn pascal(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The probe metrics, read from the probes' source: each probe file names
/// its component (`fn component`) and its measurements
/// (`Measurement::new("name", ...)`, with `.with_target(..)` when targeted).
fn probe_metrics() -> BTreeMap<String, ProbeMetric> {
    let component_re =
        regex::Regex::new(r"fn component\(&self\) -> Component \{\s*Component::(\w+)").unwrap();
    let measurement_re = regex::Regex::new(r#"Measurement::new\(\s*"(\w+)""#).unwrap();
    let mut out: BTreeMap<String, ProbeMetric> = BTreeMap::new();
    for path in files("crates/monitoring-adapters/src/probes", "rs") {
        let text = read(&path);
        let Some(variant) = component_re.captures(&text) else {
            continue;
        };
        let component = Component::ALL
            .into_iter()
            .find(|c| format!("{c:?}") == variant[1])
            .unwrap_or_else(|| panic!("{}: unknown component {}", path.display(), &variant[1]))
            .as_str();
        let starts: Vec<_> = measurement_re.captures_iter(&text).collect();
        for (i, m) in starts.iter().enumerate() {
            let whole = m.get(0).unwrap();
            // The measurement's expression: up to the next measurement or `;`.
            let rest = &text[whole.end()..];
            let next = starts
                .get(i + 1)
                .map_or(rest.len(), |n| n.get(0).unwrap().start() - whole.end());
            let stmt_end = rest.find(';').unwrap_or(rest.len()).min(next);
            let targeted = rest[..stmt_end].contains(".with_target(");
            let mut dimensions = set(&["Component"]);
            if targeted {
                dimensions.insert("Target".into());
            }
            let entry = out.entry(pascal(&m[1])).or_insert_with(|| ProbeMetric {
                components: BTreeSet::new(),
                dimensions: dimensions.clone(),
            });
            assert_eq!(
                entry.dimensions, dimensions,
                "{} has two dimension sets",
                &m[1]
            );
            entry.components.insert(component.to_owned());
        }
    }
    let adapter = read(&root().join("crates/monitoring-core/src/domain/metrics/emf.rs"));
    for every in ["ComponentUp", "ProbeLatency"] {
        assert!(
            adapter.contains(&format!("\"{every}\"")),
            "the probe's EMF no longer sends {every}"
        );
        out.insert(
            every.to_owned(),
            ProbeMetric {
                components: Component::ALL
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                dimensions: set(&["Component"]),
            },
        );
    }
    for expected in [
        "HitRate",
        "ConnectionUtilization",
        "DaysRemaining",
        "SigningKeys",
    ] {
        assert!(
            out.contains_key(expected),
            "probe scan missed {expected}: {out:?}"
        );
    }
    assert_eq!(
        out["DaysRemaining"].dimensions,
        set(&["Component", "Target"])
    );
    out
}

fn catalogue() -> Catalogue {
    Catalogue {
        log: log_metrics(),
        emf: emf_metrics(),
        probe: probe_metrics(),
    }
}

fn is_percentile(stat: &str) -> bool {
    stat.strip_prefix('p')
        .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
}

impl Catalogue {
    /// A CloudWatch metric a widget names: `Err` says why it is not emitted.
    /// `dimensions` are (name, value) pairs; a value of `None` is unknown
    /// (a search or wildcard), else it must be one the metric is sent with.
    fn check_cloudwatch(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(String, Option<String>)],
        stat: Option<&str>,
    ) -> Result<(), String> {
        let names: BTreeSet<String> = dimensions.iter().map(|d| d.0.clone()).collect();
        if namespace == "AWS/SNS" {
            let topic = dimensions.iter().find(|d| d.0 == "TopicName");
            return match (name, topic) {
                ("NumberOfMessagesPublished", Some((_, Some(t))))
                    if names.len() == 1
                        && (t == "${IncidentsTopicName}" || t == "$incidents_topic") =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "AWS/SNS {name} {dimensions:?}: only the incidents topic's NumberOfMessagesPublished"
                )),
            };
        }
        if namespace != NAMESPACE && namespace != "$namespace" {
            return Err(format!(
                "namespace {namespace}: not the stack's metrics namespace"
            ));
        }
        let exempt = NOT_FROM_A_LOG_FILE.contains(&name);
        if let Some(m) = self.emf.get(name).filter(|_| !exempt) {
            if !m.dimension_sets.contains(&names) {
                return Err(format!(
                    "{name}: dimensions {names:?}, but EMF sends it with {:?}",
                    m.dimension_sets
                ));
            }
            if let Some(stat) = stat
                && is_percentile(stat)
                && !m.distribution
            {
                return Err(format!("{name}: percentile {stat} of a non-histogram"));
            }
            return Ok(());
        }
        if let Some(m) = self.log.get(name) {
            if !exempt {
                return Err(format!(
                    "{name}: a log rule defines it, but no EMF document of the corpus carries it"
                ));
            }
            if names != m.labels {
                return Err(format!(
                    "{name}: dimensions {names:?}, but EMF sends it with {:?}",
                    m.labels
                ));
            }
            return Ok(());
        }
        if let Some(m) = self.probe.get(name) {
            if names != m.dimensions {
                return Err(format!(
                    "{name}: dimensions {names:?}, but the probe sends {:?}",
                    m.dimensions
                ));
            }
            let component = dimensions.iter().find(|d| d.0 == "Component");
            match component {
                Some((_, Some(c))) if m.components.contains(c) => {}
                _ => {
                    return Err(format!(
                        "{name}: Component {component:?}, but only {:?} send it",
                        m.components
                    ));
                }
            }
            if let Some(stat) = stat
                && is_percentile(stat)
            {
                return Err(format!("{name}: percentile {stat} of a probe gauge"));
            }
            return Ok(());
        }
        Err(format!("{name}: no rule or probe emits it"))
    }

    /// The series names `/metrics` exposes, with their label names.
    fn exposed(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for (name, m) in &self.log {
            match m.kind {
                MetricKind::Counter | MetricKind::Gauge => {
                    out.insert(name.clone(), m.labels.clone());
                }
                MetricKind::Histogram => {
                    let mut bucket = m.labels.clone();
                    bucket.insert("le".into());
                    out.insert(format!("{name}_bucket"), bucket);
                    out.insert(format!("{name}_sum"), m.labels.clone());
                    out.insert(format!("{name}_count"), m.labels.clone());
                }
            }
        }
        out
    }
}

#[test]
fn the_exposed_names_follow_the_exposition_writer() {
    use monitoring_core::domain::metrics::exposition::render_prometheus;
    use monitoring_core::domain::metrics::series::{BUCKETS, SeriesKey, StoredSeries, StoredValue};

    // One series of every log metric, rendered as /metrics renders them:
    // the sample names must be exactly the names the checks below accept.
    let cat = catalogue();
    let series: Vec<StoredSeries> = cat
        .log
        .iter()
        .map(|(name, m)| StoredSeries {
            key: SeriesKey::new(name.clone(), m.labels.iter().map(|l| (l.clone(), "x"))),
            value: match m.kind {
                MetricKind::Counter => StoredValue::Counter(1.0),
                MetricKind::Gauge => StoredValue::Gauge(1.0),
                MetricKind::Histogram => StoredValue::Histogram {
                    buckets: [1; BUCKETS],
                    count: 1,
                    sum: 0.1,
                },
            },
        })
        .collect();
    let text = render_prometheus(&series, &[]);
    let mut rendered = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap();
        rendered.insert(line[..end].to_owned());
    }
    let exposed: BTreeSet<String> = cat.exposed().into_keys().collect();
    assert_eq!(rendered, exposed);
}

// ---------------------------------------------------------------- CloudWatch dashboards

/// `SEARCH('{"ns",d1,d2} MetricName="m" d1="v" ...', 'Stat', 300)` inside
/// an expression: (namespace, metric, dimension names, filtered dimensions, stat).
#[derive(Debug)]
struct Search {
    namespace: String,
    metric: String,
    dimensions: Vec<String>,
    filters: Vec<(String, String)>,
    stat: String,
}

fn searches(expression: &str) -> Result<Vec<Search>, String> {
    let search_re = regex::Regex::new(r"SEARCH\(\s*'([^']*)'\s*,\s*'([^']*)'").unwrap();
    let schema_re = regex::Regex::new(r#"^\s*\{((?:"[^"]*"|[^}"])*)\}(.*)$"#).unwrap();
    let term_re = regex::Regex::new(r#"(\w+)\s*=\s*"([^"]*)""#).unwrap();
    let mut out = Vec::new();
    let count = expression.matches("SEARCH(").count();
    for c in search_re.captures_iter(expression) {
        let Some(schema) = schema_re.captures(&c[1]) else {
            return Err(format!("SEARCH without a metric schema: {}", &c[1]));
        };
        let mut parts = schema[1]
            .split(',')
            .map(|p| p.trim().trim_matches('"').to_owned());
        let namespace = parts.next().unwrap_or_default();
        let dimensions: Vec<String> = parts.collect();
        let mut metric = None;
        let mut filters = Vec::new();
        for t in term_re.captures_iter(&schema[2]) {
            if &t[1] == "MetricName" {
                metric = Some(t[2].to_owned());
            } else {
                filters.push((t[1].to_owned(), t[2].to_owned()));
            }
        }
        let Some(metric) = metric else {
            return Err(format!("SEARCH without MetricName=\"...\": {}", &c[1]));
        };
        out.push(Search {
            namespace,
            metric,
            dimensions,
            filters,
            stat: c[2].to_owned(),
        });
    }
    if out.len() != count {
        return Err(format!("unparsed SEARCH in {expression}"));
    }
    Ok(out)
}

/// Every problem of one CloudWatch dashboard body; `checked` counts the
/// metric references looked at.
fn cloudwatch_problems(cat: &Catalogue, body: &Json, checked: &mut usize) -> Vec<String> {
    let mut problems = Vec::new();
    let functions: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let source_re = regex::Regex::new(r"SOURCE '([^']*)'").unwrap();
    let widgets = body["widgets"].as_array().expect("widgets");
    for w in widgets {
        let p = &w["properties"];
        let title = p["title"].as_str().unwrap_or("(untitled)");
        match w["type"].as_str() {
            Some("text") => {}
            Some("log") => {
                let query = p["query"].as_str().unwrap_or_default();
                let sources: Vec<_> = source_re.captures_iter(query).collect();
                if sources.is_empty() {
                    problems.push(format!("{title}: a log widget without SOURCE"));
                }
                for s in sources {
                    let ok = s[1]
                        .strip_prefix("/aws/lambda/${AWS::StackName}-")
                        .is_some_and(|f| functions.contains(f));
                    if !ok {
                        problems.push(format!("{title}: log group {} is no function's", &s[1]));
                    }
                    *checked += 1;
                }
            }
            Some("metric") => {
                let default_stat = p["stat"].as_str();
                for row in p["metrics"].as_array().into_iter().flatten() {
                    let row = row.as_array().expect("a metrics row is an array");
                    if let Some(expr) = row.first().and_then(|r| r.get("expression")) {
                        let expr = expr.as_str().unwrap_or_default();
                        match searches(expr) {
                            Err(e) => problems.push(format!("{title}: {e}")),
                            Ok(list) => {
                                for s in list {
                                    for (f, _) in &s.filters {
                                        if !s.dimensions.contains(f) {
                                            problems.push(format!(
                                                "{title}: {} filters on {f}, not in its schema",
                                                s.metric
                                            ));
                                        }
                                    }
                                    let dims: Vec<(String, Option<String>)> = s
                                        .dimensions
                                        .iter()
                                        .map(|d| {
                                            let v = s.filters.iter().find(|f| &f.0 == d);
                                            (d.clone(), v.map(|f| f.1.clone()))
                                        })
                                        .collect();
                                    if let Err(e) = cat.check_cloudwatch(
                                        &s.namespace,
                                        &s.metric,
                                        &dims,
                                        Some(&s.stat),
                                    ) {
                                        problems.push(format!("{title}: {e}"));
                                    }
                                    *checked += 1;
                                }
                            }
                        }
                        continue;
                    }
                    let strings: Vec<&str> = row.iter().filter_map(Json::as_str).collect();
                    let options = row.iter().find(|v| v.is_object());
                    if strings.len() < 2
                        || !strings.len().is_multiple_of(2)
                        || strings.contains(&".")
                    {
                        problems.push(format!(
                            "{title}: metric row {row:?} is not [namespace, name, dim, value, ...]"
                        ));
                        continue;
                    }
                    let dims: Vec<(String, Option<String>)> = strings[2..]
                        .chunks(2)
                        .map(|kv| (kv[0].to_owned(), Some(kv[1].to_owned())))
                        .collect();
                    let stat = options.and_then(|o| o["stat"].as_str()).or(default_stat);
                    if let Err(e) = cat.check_cloudwatch(strings[0], strings[1], &dims, stat) {
                        problems.push(format!("{title}: {e}"));
                    }
                    *checked += 1;
                }
            }
            other => problems.push(format!("{title}: unexpected widget type {other:?}")),
        }
    }
    problems
}

/// The dashboards embedded in template.yaml: DashboardName suffix → body.
fn template_dashboards(template: &Yaml) -> BTreeMap<String, (String, Json)> {
    let mut out = BTreeMap::new();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Dashboard") {
            continue;
        }
        let id = id.as_str().unwrap().to_owned();
        let sub = |v: &Yaml| -> String {
            match v {
                Yaml::Tagged(t) if t.tag == "Sub" => t.value.as_str().unwrap().to_owned(),
                other => panic!("{id}: expected a !Sub string, got {other:?}"),
            }
        };
        let name = sub(&resource["Properties"]["DashboardName"]);
        let suffix = name
            .strip_prefix("${AWS::StackName}-")
            .unwrap_or_else(|| {
                panic!("{id}: DashboardName {name} is not ${{AWS::StackName}}-<file>")
            })
            .to_owned();
        let body_text = sub(&resource["Properties"]["DashboardBody"]);
        let body: Json = serde_json::from_str(&body_text)
            .unwrap_or_else(|e| panic!("{id}: DashboardBody is not JSON: {e}"));
        out.insert(suffix, (id, body));
    }
    out
}

#[test]
fn cloudwatch_dashboards_show_only_emitted_metrics() {
    let cat = catalogue();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut stems = BTreeSet::new();
    for path in files("infra/dashboards", "json") {
        let body = json_file(&path);
        stems.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        for p in cloudwatch_problems(&cat, &body, &mut checked) {
            problems.push(format!("{}: {p}", path.display()));
        }
    }
    assert_eq!(
        stems,
        set(&["authentication", "performance", "security"]),
        "the three dashboards of the guide"
    );
    assert!(
        problems.is_empty(),
        "dead widgets:\n{}",
        problems.join("\n")
    );
    assert!(checked > 60, "only {checked} metric references checked");
}

#[test]
fn cloudwatch_dashboard_checks_catch_dead_widgets() {
    let cat = catalogue();
    let widget = |metrics: Json| serde_json::json!({"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": metrics}}]});
    let bad = [
        widget(serde_json::json!([[
            NAMESPACE,
            "auth_requests_total",
            "status",
            "failure"
        ]])),
        widget(serde_json::json!([[NAMESPACE, "login_failures_total"]])),
        widget(serde_json::json!([[
            NAMESPACE,
            "HitRate",
            "Component",
            "database"
        ]])),
        widget(
            serde_json::json!([[{"expression": format!("SEARCH('{{\"{NAMESPACE}\",endpoint}} MetricName=\"api_request_duration_seconds\"', 'p99', 300)"), "id": "e1"}]]),
        ),
        widget(
            serde_json::json!([[{"expression": format!("SEARCH('{{\"{NAMESPACE}\",operation,status,token_type}} MetricName=\"token_operations_total\"', 'p99', 300)"), "id": "e1"}]]),
        ),
        widget(
            serde_json::json!([[{"expression": format!("SEARCH('{{\"{NAMESPACE}\"}} auth', 'Sum', 300)"), "id": "e1"}]]),
        ),
        // What CloudWatch got before the dimension policy: every status
        // code and method, and the request counter.
        widget(
            serde_json::json!([[{"expression": format!("SEARCH('{{\"{NAMESPACE}\",endpoint,method,status_code}} MetricName=\"api_request_duration_seconds\"', 'p99', 300)"), "id": "e1"}]]),
        ),
        widget(
            serde_json::json!([[{"expression": format!("SEARCH('{{\"{NAMESPACE}\",endpoint,method,status_code}} MetricName=\"http_requests_total\"', 'Sum', 300)"), "id": "e1"}]]),
        ),
    ];
    for body in bad {
        let mut n = 0;
        assert!(
            !cloudwatch_problems(&cat, &body, &mut n).is_empty(),
            "accepted {body}"
        );
    }
    let good = widget(serde_json::json!([
        [NAMESPACE, "active_sessions", {"stat": "Maximum"}],
        [NAMESPACE, "DaysRemaining", "Component", "certificates", "Target", "a:443"],
        [{"expression": format!("SUM(SEARCH('{{\"{NAMESPACE}\",endpoint}} MetricName=\"auth_request_duration_seconds\" endpoint=\"/x\"', 'p90', 300))"), "id": "e1"}],
    ]));
    let mut n = 0;
    assert_eq!(
        cloudwatch_problems(&cat, &good, &mut n),
        Vec::<String>::new()
    );
    assert_eq!(n, 3);
}

#[test]
fn template_embeds_the_dashboard_files() {
    let template = yaml_file(&root().join("template.yaml"));
    let embedded = template_dashboards(&template);
    let mut files_by_stem = BTreeMap::new();
    for path in files("infra/dashboards", "json") {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        files_by_stem.insert(stem, json_file(&path));
    }
    assert_eq!(
        embedded.keys().collect::<Vec<_>>(),
        files_by_stem.keys().collect::<Vec<_>>(),
        "one AWS::CloudWatch::Dashboard per infra/dashboards file"
    );
    let cat = catalogue();
    for (stem, file) in &files_by_stem {
        let (id, body) = &embedded[stem];
        assert_eq!(
            body, file,
            "{id} differs from infra/dashboards/{stem}.json: run `python3 scripts/dashboards.py --write`"
        );
        let mut n = 0;
        assert_eq!(
            cloudwatch_problems(&cat, body, &mut n),
            Vec::<String>::new()
        );
    }

    // The read policy covers exactly these dashboards.
    let policy = &template["Resources"]["DashboardReadPolicy"];
    assert_eq!(policy["Type"].as_str(), Some("AWS::IAM::ManagedPolicy"));
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let get = statements
        .iter()
        .find(|s| s["Action"].as_str() == Some("cloudwatch:GetDashboard"))
        .expect("a GetDashboard statement");
    let arns: BTreeSet<String> = get["Resource"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| match r {
            Yaml::Tagged(t) => t.value.as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    let wanted: BTreeSet<String> = embedded
        .values()
        .map(|(id, _)| {
            format!("arn:${{AWS::Partition}}:cloudwatch::${{AWS::AccountId}}:dashboard/${{{id}}}")
        })
        .collect();
    assert_eq!(arns, wanted);

    // Its readers may query the log groups the log widgets read.
    let tag_value = |v: &Yaml| match v {
        Yaml::Tagged(t) => t.value.as_str().map(str::to_owned),
        _ => None,
    };
    let queryable: BTreeSet<String> = statements
        .iter()
        .find(|s| s["Action"].as_str() == Some("logs:StartQuery"))
        .expect("a StartQuery statement")["Resource"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|r| tag_value(r)?.strip_suffix(".Arn").map(str::to_owned))
        .collect();
    let source_re = regex::Regex::new(r"SOURCE '([^']*)'").unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    for (_, body) in embedded.values() {
        for w in body["widgets"].as_array().unwrap() {
            let query = w["properties"]["query"].as_str().unwrap_or_default();
            for group in source_re.captures_iter(query) {
                let id = resources
                    .iter()
                    .find(|(_, r)| {
                        r["Type"].as_str() == Some("AWS::Logs::LogGroup")
                            && tag_value(&r["Properties"]["LogGroupName"]).as_deref()
                                == Some(&group[1])
                    })
                    .and_then(|(id, _)| id.as_str())
                    .unwrap_or_else(|| panic!("no AWS::Logs::LogGroup named {}", &group[1]));
                assert!(
                    queryable.contains(id),
                    "DashboardReadPolicy cannot query {id}"
                );
            }
        }
    }
    assert!(
        template["Outputs"]["DashboardReadPolicyArn"].is_mapping(),
        "the policy's ARN is an output"
    );
}

// ---------------------------------------------------------------- PromQL

const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];
const PROMQL_LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const PROMQL_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count_over_time",
    "delta",
    "deriv",
    "floor",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "sum_over_time",
    "time",
    "timestamp",
    "vector",
];

/// A PromQL expression's metric selectors (name, label names in its braces)
/// and the label names of its `by (...)`-style lists. A small tokenizer:
/// strings, ranges `[...]` and Grafana variables are skipped; identifiers
/// followed by `(` must be functions; the remaining ones are metric names.
#[derive(Debug, Default)]
struct PromQl {
    selectors: Vec<(String, Vec<String>)>,
    grouping: Vec<String>,
}

fn parse_promql(expr: &str) -> Result<PromQl, String> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = PromQl::default();
    let mut i = 0;
    // Whether the last token was a metric name (its braces follow).
    let mut after_metric = false;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let read_ident = |mut j: usize| {
        let start = j;
        while j < chars.len() && ident(chars[j]) {
            j += 1;
        }
        (chars[start..j].iter().collect::<String>(), j)
    };
    let skip_string = |j: usize| -> Result<usize, String> {
        let quote = chars[j];
        let mut k = j + 1;
        while k < chars.len() {
            if chars[k] == '\\' && quote != '`' {
                k += 2;
                continue;
            }
            if chars[k] == quote {
                return Ok(k + 1);
            }
            k += 1;
        }
        Err(format!("unterminated string in {expr}"))
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(i)?;
            after_metric = false;
        } else if c == '[' {
            let close = chars[i..]
                .iter()
                .position(|&x| x == ']')
                .ok_or(format!("unclosed [ in {expr}"))?;
            i += close + 1;
            after_metric = false;
        } else if c == '{' {
            if !after_metric {
                return Err(format!("a selector without a metric name in {expr}"));
            }
            let mut labels = Vec::new();
            i += 1;
            loop {
                i = skip_ws(i);
                match chars.get(i) {
                    None => return Err(format!("unclosed {{ in {expr}")),
                    Some('}') => {
                        i += 1;
                        break;
                    }
                    Some(',') => i += 1,
                    Some(&c) if ident(c) => {
                        let (name, j) = read_ident(i);
                        labels.push(name);
                        i = skip_ws(j);
                        while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
                            i += 1;
                        }
                        i = skip_ws(i);
                        if !matches!(chars.get(i), Some('"' | '\'' | '`')) {
                            return Err(format!("a label matcher without a string in {expr}"));
                        }
                        i = skip_string(i)?;
                    }
                    Some(other) => return Err(format!("unexpected {other:?} in braces of {expr}")),
                }
            }
            out.selectors
                .last_mut()
                .expect("after a metric")
                .1
                .extend(labels);
            after_metric = false;
        } else if c == '$' {
            // A Grafana variable ($__rate_interval, ${var}).
            i += 1;
            if chars.get(i) == Some(&'{') {
                i += chars[i..].iter().position(|&x| x == '}').unwrap_or(0) + 1;
            } else {
                i = read_ident(i).1;
            }
            after_metric = false;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            after_metric = false;
        } else if ident(c) {
            let (name, j) = read_ident(i);
            let next = skip_ws(j);
            let lower = name.to_ascii_lowercase();
            if PROMQL_LABEL_LISTS.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    let close = chars[next..]
                        .iter()
                        .position(|&x| x == ')')
                        .ok_or(format!("unclosed ( in {expr}"))?;
                    let list: String = chars[next + 1..next + close].iter().collect();
                    out.grouping.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_owned),
                    );
                    i = next + close + 1;
                } else {
                    i = j;
                }
                after_metric = false;
            } else if PROMQL_KEYWORDS.contains(&lower.as_str()) {
                i = j;
                after_metric = false;
            } else if chars.get(next) == Some(&'(') {
                if !PROMQL_FUNCTIONS.contains(&name.as_str()) {
                    return Err(format!("unknown function {name} in {expr}"));
                }
                i = j;
                after_metric = false;
            } else {
                out.selectors.push((name, Vec::new()));
                i = j;
                after_metric = true;
            }
        } else {
            i += 1;
            after_metric = false;
        }
    }
    Ok(out)
}

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// Problems of one PromQL expression against the exposed series.
/// `alerts_loaded`: Prometheus' `ALERTS` series exist (alerts.yml loaded).
fn promql_problems(
    expr: &str,
    exposed: &BTreeMap<String, BTreeSet<String>>,
    alerts_loaded: bool,
) -> Vec<String> {
    let parsed = match parse_promql(expr) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    if parsed.selectors.is_empty() {
        problems.push(format!("no metric in {expr}"));
    }
    let mut known: BTreeSet<String> = TARGET_LABELS.iter().map(|l| (*l).to_owned()).collect();
    for (name, labels) in &parsed.selectors {
        let metric_labels = if name == "ALERTS" && alerts_loaded {
            let mut l = set(&["alertname", "alertstate", "severity", "category"]);
            l.extend(exposed.values().flatten().cloned());
            l
        } else if let Some(l) = exposed.get(name) {
            l.clone()
        } else {
            problems.push(format!("{name} is not exposed by /metrics (in {expr})"));
            continue;
        };
        for l in labels {
            if !metric_labels.contains(l) && !TARGET_LABELS.contains(&l.as_str()) {
                problems.push(format!("{name} has no label {l} (in {expr})"));
            }
        }
        known.extend(metric_labels);
    }
    for l in &parsed.grouping {
        if !known.contains(l) {
            problems.push(format!(
                "grouping by {l}, which no selected metric has (in {expr})"
            ));
        }
    }
    problems
}

#[test]
fn the_promql_tokenizer() {
    let p = parse_promql(
        r#"histogram_quantile(0.99, sum by (le, endpoint) (rate(api_request_duration_seconds_bucket{status_code=~"5..", method!="GET"}[$__rate_interval])))"#,
    )
    .unwrap();
    assert_eq!(
        p.selectors,
        [(
            "api_request_duration_seconds_bucket".to_owned(),
            vec!["status_code".to_owned(), "method".to_owned()]
        )]
    );
    assert_eq!(p.grouping, ["le", "endpoint"]);
    let p = parse_promql(
        "sum(increase(log_events_total[15m])) == 0 or absent(log_events_total) offset 5m",
    )
    .unwrap();
    let names: Vec<_> = p.selectors.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["log_events_total", "log_events_total"]);

    let exposed = catalogue().exposed();
    for bad in [
        "rate(auth_requests_total{route=\"/x\"}[5m])",
        "sum by (route) (rate(auth_requests_total[5m]))",
        "rate(api_request_duration_seconds[5m])",
        "active_sessions_total",
        "ratez(auth_requests_total[5m])",
        "{__name__=\"auth_requests_total\"}",
        "ALERTS",
    ] {
        assert!(
            !promql_problems(bad, &exposed, false).is_empty(),
            "accepted {bad}"
        );
    }
    assert!(
        promql_problems(
            "sum by (le) (rate(auth_request_duration_seconds_bucket{job=\"blindspotx\"}[5m]))",
            &exposed,
            false
        )
        .is_empty()
    );
}

// ---------------------------------------------------------------- Grafana

#[test]
fn grafana_dashboards_query_only_emitted_metrics() {
    let cat = catalogue();
    let exposed = cat.exposed();
    let provisioned =
        yaml_file(&root().join("infra/grafana/provisioning/datasources/blindspotx.yml"));
    let uids: BTreeMap<String, String> = provisioned["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["uid"].as_str().unwrap().to_owned(),
                d["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for kind in ["prometheus", "cloudwatch"] {
        assert!(
            uids.values().any(|t| t == kind),
            "a {kind} data source is provisioned"
        );
    }
    let header = provisioned["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|d| d["type"].as_str() == Some("prometheus"))
        .unwrap();
    assert_eq!(
        header["jsonData"]["httpHeaderName1"].as_str(),
        Some("Authorization")
    );
    assert!(
        header["secureJsonData"]["httpHeaderValue1"]
            .as_str()
            .is_some_and(|v| v.starts_with("Bearer $")),
        "the bearer token comes from the environment"
    );
    let providers = yaml_file(&root().join("infra/grafana/provisioning/dashboards/blindspotx.yml"));
    assert_eq!(providers["providers"][0]["type"].as_str(), Some("file"));

    let mut problems = Vec::new();
    let mut checked = 0;
    let mut stems = BTreeSet::new();
    for path in files("infra/grafana/dashboards", "json") {
        stems.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        let dashboard = json_file(&path);
        // Data sources are picked through datasource variables, so the
        // dashboard works provisioned and imported by hand alike:
        // `${name}` → the plugin type the variable lists.
        let variables: BTreeMap<String, String> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["type"] == "datasource")
            .map(|v| {
                (
                    format!("${{{}}}", v["name"].as_str().unwrap()),
                    v["query"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut panels: Vec<&Json> = Vec::new();
        for p in dashboard["panels"].as_array().unwrap() {
            panels.push(p);
            panels.extend(p["panels"].as_array().into_iter().flatten());
        }
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            if let Some(uid) = panel["datasource"]["uid"].as_str()
                && !variables.contains_key(uid)
            {
                problems.push(format!(
                    "{}: {title}: data source {uid:?} is a fixed uid, not a datasource variable",
                    path.display()
                ));
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                let ds = target
                    .get("datasource")
                    .filter(|d| d.is_object())
                    .unwrap_or(&panel["datasource"]);
                let uid = ds["uid"].as_str().unwrap_or_default();
                let Some(kind) = variables.get(uid) else {
                    problems.push(format!(
                        "{}: {title}: data source {uid:?} is not a datasource variable",
                        path.display()
                    ));
                    continue;
                };
                if ds["type"].as_str() != Some(kind.as_str()) {
                    problems.push(format!(
                        "{title}: {uid} is a {kind} variable, not {}",
                        ds["type"]
                    ));
                }
                checked += 1;
                match kind.as_str() {
                    "prometheus" => {
                        let expr = target["expr"].as_str().unwrap_or_default();
                        for p in promql_problems(expr, &exposed, true) {
                            problems.push(format!("{}: {title}: {p}", path.display()));
                        }
                    }
                    "cloudwatch" => {
                        let dims: Vec<(String, Option<String>)> = target["dimensions"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| {
                                let v = v.as_str().filter(|v| *v != "*").map(str::to_owned);
                                (k.clone(), v)
                            })
                            .collect();
                        if let Err(e) = cat.check_cloudwatch(
                            target["namespace"].as_str().unwrap_or_default(),
                            target["metricName"].as_str().unwrap_or_default(),
                            &dims,
                            target["statistic"].as_str(),
                        ) {
                            problems.push(format!("{}: {title}: {e}", path.display()));
                        }
                    }
                    other => problems.push(format!("{title}: data source type {other}")),
                }
            }
        }
        // No fixed uid anywhere, not even outside panels and targets.
        for (uid, kind) in &uids {
            assert!(
                !read(&path).contains(&format!("\"{uid}\"")),
                "{}: names the provisioned {kind} uid {uid}",
                path.display()
            );
        }
    }
    assert_eq!(stems, set(&["authentication", "performance", "security"]));
    assert!(problems.is_empty(), "dead panels:\n{}", problems.join("\n"));
    assert!(checked > 50, "only {checked} queries checked");
}

/// Where scripts/bootstrap.sh installs Grafana's published dashboard
/// schema (the npm package `@grafana/schema`) and the TypeScript compiler.
fn grafana_schema_dir() -> PathBuf {
    let dir = root().join(".local/grafana-schema");
    assert!(
        dir.join("node_modules/typescript/bin/tsc").is_file()
            && dir
                .join("node_modules/@grafana/schema/package.json")
                .is_file(),
        "{} has no @grafana/schema and typescript: run scripts/bootstrap.sh",
        dir.display()
    );
    dir
}

/// Type-checks each dashboard as a value of `@grafana/schema`'s
/// `Dashboard` (the classic dashboard JSON model Grafana publishes, what
/// provisioning and import read) with tsc; `Err` holds tsc's report.
fn grafana_schema_check(dashboards: &[(String, Json)], label: &str) -> Result<(), String> {
    let work = grafana_schema_dir().join(format!("check-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    for (name, dashboard) in dashboards {
        let text = format!(
            "import type {{ Dashboard }} from \"@grafana/schema\";\nexport const dashboard: Dashboard = {};\n",
            serde_json::to_string_pretty(dashboard).unwrap()
        );
        std::fs::write(work.join(format!("{name}.ts")), text).unwrap();
    }
    let tsconfig = serde_json::json!({
        "compilerOptions": {
            "strict": true, "noEmit": true, "skipLibCheck": true,
            "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022"
        },
        "include": ["*.ts"]
    });
    std::fs::write(work.join("tsconfig.json"), tsconfig.to_string()).unwrap();
    let out = std::process::Command::new("node")
        .arg(work.join("../node_modules/typescript/bin/tsc"))
        .arg("-p")
        .arg(&work)
        .output()
        .expect("node (scripts/bootstrap.sh installs it)");
    let _ = std::fs::remove_dir_all(&work);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn grafana_dashboards() -> Vec<(String, Json)> {
    files("infra/grafana/dashboards", "json")
        .iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                json_file(p),
            )
        })
        .collect()
}

#[test]
fn grafana_dashboards_follow_grafanas_published_schema() {
    let dashboards = grafana_dashboards();
    assert_eq!(dashboards.len(), 3);
    if let Err(report) = grafana_schema_check(&dashboards, "ours") {
        panic!("the Grafana dashboards do not fit @grafana/schema's Dashboard:\n{report}");
    }
    // The check is real: a misspelt variable type and a string grid height
    // are refused, each where it is.
    let mut broken = dashboards[0].1.clone();
    broken["templating"]["list"][0]["type"] = "datasourse".into();
    broken["panels"][1]["gridPos"]["h"] = "eight".into();
    let report = grafana_schema_check(&[("broken".into(), broken)], "broken").unwrap_err();
    assert!(
        report.contains("\"datasourse\"") && report.contains("VariableType"),
        "{report}"
    );
    assert!(
        report.contains("not assignable to type 'number'"),
        "{report}"
    );
}

/// Import anywhere: every data source is a datasource variable, and the
/// variables name no fixed instance, so Grafana picks the instance of that
/// type (the provisioned one, or the one chosen on import).
#[test]
fn grafana_dashboards_pick_their_data_sources_through_variables() {
    let uid_re = regex::Regex::new(r#""uid":"([^"]*)""#).unwrap();
    for (name, dashboard) in grafana_dashboards() {
        let variables: Vec<&Json> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == "datasource")
            .collect();
        let kinds: BTreeSet<&str> = variables
            .iter()
            .map(|v| v["query"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains("prometheus"),
            "{name}: no Prometheus variable"
        );
        for v in &variables {
            assert!(
                v["current"].as_object().is_none_or(|c| c.is_empty()),
                "{name}: variable {} is preset to an instance",
                v["name"]
            );
        }
        let text = serde_json::to_string(&dashboard).unwrap();
        for c in uid_re.captures_iter(&text) {
            let uid = &c[1];
            let is_variable = variables
                .iter()
                .any(|v| uid == format!("${{{}}}", v["name"].as_str().unwrap()));
            // The dashboard's own uid is the one other `uid`.
            assert!(
                is_variable || dashboard["uid"] == uid,
                "{name}: fixed data source uid {uid}"
            );
        }
    }
}

// ---------------------------------------------------------------- Prometheus

/// `5m` → 300.
fn duration_seconds(d: &str) -> Option<u64> {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}

#[test]
fn prometheus_alerts_match_the_default_alert_rules() {
    let defaults: monitoring_core::domain::alerts::AlertRules =
        load_file(&root().join("infra/alerts/default.toml")).unwrap_or_else(|e| panic!("{e}"));
    let exposed = catalogue().exposed();
    let alerts_path = root().join("infra/prometheus/alerts.yml");
    let alerts = yaml_file(&alerts_path);
    let range_re = regex::Regex::new(r"\[(\w+)\]").unwrap();
    let threshold_re = regex::Regex::new(r">=\s*(\d+)\s*$").unwrap();

    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("alerting rules only");
            assert!(seen.insert(name.to_owned()), "{name} twice");
            let runbook = format!("docs/runbooks/{name}.md");
            let link = format!("{{{{ $externalLabels.runbook_base_url }}}}/{name}.md");
            if rule["annotations"]["runbook_url"].as_str() != Some(link.as_str()) {
                problems.push(format!("{name}: runbook_url is not {link}"));
            }
            assert!(root().join(&runbook).is_file(), "{runbook} is missing");
            // The scrape's own health: no engine counterpart.
            if group["name"].as_str() == Some("blindspotx-scrape") {
                let expr = rule["expr"].as_str().unwrap();
                if expr != r#"up{job="blindspotx"} == 0"# || rule["for"].as_str().is_none() {
                    problems.push(format!("{name}: expected up == 0 held with for:"));
                }
                continue;
            }
            let Some(want) = defaults.rules().iter().find(|r| &*r.name == name) else {
                problems.push(format!("{name}: not a default alert rule"));
                continue;
            };
            let expr = rule["expr"].as_str().unwrap();
            for p in promql_problems(expr, &exposed, false) {
                problems.push(format!("{name}: {p}"));
            }
            let labels = &rule["labels"];
            if labels["severity"].as_str() != Some(want.severity.as_str())
                || labels["category"].as_str() != Some(want.category.as_str())
            {
                problems.push(format!(
                    "{name}: severity/category differ from default.toml"
                ));
            }
            let windows: BTreeSet<Option<u64>> = range_re
                .captures_iter(expr)
                .map(|c| duration_seconds(&c[1]))
                .collect();
            if windows != BTreeSet::from([Some(want.window_seconds())]) {
                problems.push(format!(
                    "{name}: ranges {windows:?}, window is {} s",
                    want.window_seconds()
                ));
            }
            // The engine's own accounting: exactly the signals this rule
            // counted. Required where the engine counts service-wide (no
            // key to lose), and the series of no other rule.
            let counted =
                format!(r#"alert_signal_outcomes_total{{rule="{name}",outcome="counted"}}"#);
            if expr.contains("alert_signal_outcomes_total") {
                let uses = expr.matches("alert_signal_outcomes_total").count();
                if expr.matches(&counted).count() != uses {
                    problems.push(format!(
                        "{name}: counts another rule's or outcome's signals"
                    ));
                }
            } else if want.group_by.is_none() && name != "log_pipeline_silent" {
                problems.push(format!("{name}: service-wide, expected {counted}"));
            }
            if name == "log_pipeline_silent" {
                // Absence: no event in the window, not a count reaching a threshold.
                if !expr.contains("== 0") {
                    problems.push(format!("{name}: expected an absence check"));
                }
            } else {
                let threshold = threshold_re
                    .captures(expr.trim())
                    .and_then(|c| c[1].parse::<u32>().ok());
                if threshold != Some(want.threshold) {
                    problems.push(format!(
                        "{name}: threshold {threshold:?}, default.toml says {}",
                        want.threshold
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let header = read(&alerts_path);
    for rule in defaults.rules() {
        let name = &*rule.name;
        if NOT_IN_PROMETHEUS.contains(&name) {
            assert!(
                !seen.contains(name),
                "{name} is listed as not in Prometheus"
            );
            assert!(
                header.contains(name),
                "alerts.yml's header explains why {name} is not there"
            );
        } else {
            assert!(seen.contains(name), "no Prometheus rule named {name}");
        }
    }
    for name in NOT_IN_PROMETHEUS {
        assert!(
            defaults.rules().iter().any(|r| &*r.name == name),
            "{name} is no longer a default rule"
        );
    }

    let config = yaml_file(&root().join("infra/prometheus/prometheus.yml"));
    let files: Vec<&str> = config["rule_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(files, ["alerts.yml"]);
    let job = &config["scrape_configs"][0];
    assert_eq!(job["scheme"].as_str(), Some("https"));
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(job["authorization"]["type"].as_str(), Some("Bearer"));
    // The runbook links of alerts.yml resolve to the bundle's default base.
    assert_eq!(
        config["global"]["external_labels"]["runbook_base_url"].as_str(),
        Some(monitoring_core::domain::alerts::DEFAULT_RUNBOOK_BASE_URL)
    );
}
