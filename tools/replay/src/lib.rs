//! Replays log files through the very pipeline log-metrics runs (the
//! [`Evaluator`] and [`Aggregator`] behind `process_events`) and renders
//! the cumulative series.
//!
//! Inputs, by file:
//! - plain log files (JSON lines or Python text records), streamed in
//!   chunks and evaluated on every core ([`stream`]), events grouped like
//!   [`monitoring_core::domain::logs::parse::group_lines`];
//! - gzip (name ending in `.gz`, or content starting with the gzip magic),
//!   decompressed first;
//! - CloudWatch Logs subscription events (`{"awslogs":{"data":...}}`),
//!   recognized by content and decoded with [`decode_awslogs_data`].
//!
//! Arguments are parsed by hand: two options and a file list do not justify
//! a CLI framework dependency (and its build time) in the workspace.

pub mod alerts;
pub mod stream;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use monitoring_adapters::rules_loader::{RulesLoadError, load_file};
use monitoring_core::domain::logs::decode::{
    DEFAULT_MAX_DECOMPRESSED_BYTES, DecodeError, MessageType, decode_awslogs_data,
};
use monitoring_core::domain::logs::parse::{ParseSettings, parse_utc_offset};
use monitoring_core::domain::logs::redact::{RedactError, Redactor};
use monitoring_core::domain::metrics::aggregate::{CardinalityGuard, DEFAULT_BUCKETS};
use monitoring_core::domain::metrics::emf;
use monitoring_core::domain::metrics::exposition::{render_openmetrics, render_prometheus};
use monitoring_core::domain::metrics::series::{SeriesKey, StoredSeries, StoredValue};
use monitoring_core::domain::pipeline::{Aggregator, BatchReport, Evaluator};
use monitoring_core::domain::rules::{MetricInfo, RuleSet};
use monitoring_core::memory::series::MemorySeriesStore;
use monitoring_core::ports::{SeriesStore, StoreError};
use serde_json::Value;

/// Environment variable holding the pseudonymization key.
pub const KEY_ENV: &str = "REPLAY_REDACTION_KEY";
/// The key used when [`KEY_ENV`] is unset. Not a secret: replay output stays
/// on the machine running it. Set [`KEY_ENV`] to the deployed key to get the
/// same pseudonyms as production.
pub const DEFAULT_REDACTION_KEY: &str = "blindspotx-replay-local-key";

pub const USAGE: &str = "\
usage: replay [--rules PATH] [--format prometheus|openmetrics|json|emf] [--namespace NAME]
              [--timezone OFFSET] FILE...
       replay --alerts [--alert-rules PATH] [--rules PATH] [--timezone OFFSET] FILE...

Replays log files (plain, .gz, or CloudWatch Logs subscription event JSON)
through the log-metrics pipeline and prints the metrics to stdout, a summary
to stderr. Pseudonyms are keyed from REPLAY_REDACTION_KEY (default: a fixed
local key). --timezone gives the zone of Python text timestamps (UTC,
+02:00; default UTC), as LOG_TIMEZONE does for log-metrics.

--format emf prints the CloudWatch Embedded Metric Format documents
log-metrics would write for the input, one JSON line each, each file as one
batch, under the dimension policy (docs/metrics.md): what CloudWatch will
get, checked before deploying. --namespace is the stack's MetricsNamespace
(default BlindspotX); the documents carry the replay's time, as CloudWatch
takes no data older than two weeks.

With --alerts, backtests the alert rules (default: the embedded
infra/alerts/default.toml, checked against the log rules) instead: one JSON
line per incident transition, in event-time order.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Prometheus text format 0.0.4.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// One JSON object `{"name{label=value,...}": value}`.
    Json,
    /// The EMF documents log-metrics would write, one per line.
    Emf,
}

/// `--namespace`'s default: the template's `MetricsNamespace` default.
pub const DEFAULT_NAMESPACE: &str = "BlindspotX";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub rules: Option<PathBuf>,
    pub format: OutputFormat,
    pub files: Vec<PathBuf>,
    /// `--alerts`: backtest the alert rules instead of printing metrics.
    pub alerts: bool,
    pub alert_rules: Option<PathBuf>,
    /// `--timezone`: text timestamps' offset east of UTC, milliseconds.
    pub text_utc_offset_ms: i64,
    /// `--namespace`: the EMF documents' CloudWatch namespace.
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    // Causes are part of each message (no `source`), so a printed error
    // chain does not repeat them.
    #[error("cannot read {path}: {reason}")]
    Read {
        path: String,
        reason: std::io::Error,
    },
    #[error("{path}: not a CloudWatch Logs subscription event: {reason}")]
    Decode { path: String, reason: DecodeError },
    /// `file:line:column` or `file:line: rule "name", field: problem`.
    #[error("rules: {0}")]
    Rules(RulesLoadError),
    #[error("{KEY_ENV}: {0}")]
    Key(RedactError),
    #[error("{0}")]
    Store(StoreError),
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, ReplayError> {
    let mut rules = None;
    let mut alerts = false;
    let mut alert_rules = None;
    let mut format = OutputFormat::default();
    let mut text_utc_offset_ms = 0;
    let mut namespace = DEFAULT_NAMESPACE.to_owned();
    let mut files = Vec::new();
    let mut args = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if options_done || !text.starts_with('-') || text == "-" {
            files.push(PathBuf::from(arg));
            continue;
        }
        let (option, inline) = match text.split_once('=') {
            Some((o, v)) => (o.to_owned(), Some(OsString::from(v))),
            None => (text.clone(), None),
        };
        let mut value = |name: &str| -> Result<OsString, ReplayError> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| ReplayError::Usage(format!("{name} needs a value")))
        };
        match option.as_str() {
            "--" => options_done = true,
            "-h" | "--help" => return Ok(Command::Help),
            "--rules" => rules = Some(PathBuf::from(value("--rules")?)),
            "--alerts" => alerts = true,
            "--alert-rules" => alert_rules = Some(PathBuf::from(value("--alert-rules")?)),
            "--namespace" => {
                namespace = value("--namespace")?.to_string_lossy().into_owned();
                // The template's MetricsNamespace bounds.
                if namespace.is_empty() || namespace.len() > 255 {
                    return Err(ReplayError::Usage(
                        "--namespace: 1 to 255 characters".into(),
                    ));
                }
            }
            "--timezone" => {
                let zone = value("--timezone")?.to_string_lossy().into_owned();
                text_utc_offset_ms = parse_utc_offset(&zone).ok_or_else(|| {
                    ReplayError::Usage(format!(
                        "--timezone {zone:?}: use UTC or a fixed offset such as +02:00"
                    ))
                })?;
            }
            "--format" => {
                format = match value("--format")?.to_string_lossy().as_ref() {
                    "prometheus" => OutputFormat::Prometheus,
                    "openmetrics" => OutputFormat::OpenMetrics,
                    "json" => OutputFormat::Json,
                    "emf" => OutputFormat::Emf,
                    other => {
                        return Err(ReplayError::Usage(format!(
                            "unknown format {other:?}: use prometheus, openmetrics, json or emf"
                        )));
                    }
                }
            }
            _ => return Err(ReplayError::Usage(format!("unknown option {text}"))),
        }
    }
    if files.is_empty() {
        return Err(ReplayError::Usage("no input files".into()));
    }
    Ok(Command::Run(Args {
        rules,
        format,
        files,
        alerts,
        alert_rules,
        text_utc_offset_ms,
        namespace,
    }))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether a file is gzip: by name or by its first two bytes.
pub fn is_gzip(path: &Path, bytes: &[u8]) -> bool {
    path.extension().is_some_and(|e| e == "gz") || bytes.starts_with(&GZIP_MAGIC)
}

/// The `awslogs.data` string when `text` is one subscription event (a
/// single JSON object); `None` for log lines, JSON-lines logs included.
pub fn awslogs_data(text: &str) -> Option<String> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') || !trimmed.contains("\"awslogs\"") {
        return None;
    }
    let value: Value = serde_json::from_str(trimmed).ok()?;
    value
        .get("awslogs")?
        .get("data")?
        .as_str()
        .map(str::to_owned)
}

/// Counts over the whole replay.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub files: usize,
    pub control_messages: u64,
    /// Lines of plain files and events of subscription files.
    pub events: u64,
    pub records: u64,
    /// Records by format (json, text, plain).
    pub formats: BTreeMap<&'static str, u64>,
    /// Lines (or events) joined to the record before them.
    pub continuations: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    /// Events cut to the size limit; record times clamped to delivery.
    pub truncated: u64,
    pub clamped: u64,
    pub signals: u64,
    /// Signals raised, by name.
    pub signals_by_name: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn records_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        }
    }

    fn add(&mut self, report: &BatchReport) {
        self.events += report.events;
        self.records += report.records;
        self.continuations += report.continuations;
        for (reason, n) in &report.rejected {
            *self.rejected.entry(reason.as_str()).or_default() += n;
        }
        for (format, n) in &report.formats {
            *self.formats.entry(format.as_str()).or_default() += n;
        }
        self.truncated += report.parse.truncated;
        self.clamped += report.parse.clamped;
        for (name, n) in &report.signal_counts {
            *self.signals_by_name.entry(name.to_string()).or_default() += n;
        }
    }

    /// The stderr report: what was read, what became of it.
    pub fn render(&self, series: usize) -> String {
        let rejected: u64 = self.rejected.values().sum();
        let list = |map: &BTreeMap<&'static str, u64>| {
            map.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "replay: {} file(s): {} lines read, {} records ({}), {} lines joined into records, {} rejected",
            self.files,
            self.events,
            self.records,
            if self.formats.is_empty() {
                "none".to_owned()
            } else {
                list(&self.formats)
            },
            self.continuations,
            rejected
        );
        if rejected > 0 {
            out.push_str(&format!(" ({})", list(&self.rejected)));
        }
        if self.truncated + self.clamped > 0 {
            out.push_str(&format!(
                "\nreplay: {} events cut to the size limit, {} record times clamped to their delivery time",
                self.truncated, self.clamped
            ));
        }
        if self.control_messages > 0 {
            out.push_str(&format!(
                "\nreplay: {} control messages skipped",
                self.control_messages
            ));
        }
        out.push_str(&format!("\nreplay: {} signals", self.signals));
        if !self.signals_by_name.is_empty() {
            let by_name: Vec<String> = self
                .signals_by_name
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push_str(&format!(" ({})", by_name.join(", ")));
        }
        out.push_str(&format!(
            "\nreplay: {series} series, {:.3} s, {:.0} records/s",
            self.elapsed.as_secs_f64(),
            self.records_per_second()
        ));
        out
    }
}

/// The outcome of a replay.
#[derive(Debug)]
pub struct Replay {
    pub series: Vec<StoredSeries>,
    pub metrics: Vec<MetricInfo>,
    pub summary: Summary,
    /// The EMF documents of each file, in order, when asked for.
    pub emf: Vec<String>,
}

/// Loads the rules: the embedded defaults, or `path`.
pub fn load_rules(path: Option<&Path>) -> Result<RuleSet, ReplayError> {
    match path {
        None => RuleSet::default_rules().map_err(|e| ReplayError::Rules(RulesLoadError::from(e))),
        Some(path) => load_file::<RuleSet>(path).map_err(ReplayError::Rules),
    }
}

/// Whether the first bytes of a file look like one subscription event (a
/// JSON object naming `awslogs` near its start) rather than log lines.
fn looks_like_cloudwatch(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    text.trim_start().starts_with('{') && text.contains("\"awslogs\"")
}

/// How a file is read.
enum Input {
    /// A plain file on disk, mapped a chunk at a time.
    Mapped(stream::MappedChunker),
    /// Everything else, read: its first bytes and the rest.
    Read(Vec<u8>, Box<dyn Read + Send>),
}

/// Bytes looked at to tell a file's kind.
const PEEK_BYTES: u64 = 4096;

/// Opens `path`: gzip is decompressed, a subscription event or a pipe is
/// read, a plain file is mapped.
fn open(path: &Path) -> Result<Input, ReplayError> {
    let read_error = |reason| ReplayError::Read {
        path: path.display().to_string(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut peek = Vec::with_capacity(PEEK_BYTES as usize);
    (&mut file)
        .take(PEEK_BYTES)
        .read_to_end(&mut peek)
        .map_err(read_error)?;
    let gzip = is_gzip(path, &peek);
    if !gzip && !looks_like_cloudwatch(&peek) {
        // The mapping reads from offset 0, whatever was peeked.
        let mapped = file
            .try_clone()
            .and_then(stream::MappedChunker::new)
            .map_err(read_error)?;
        if let Some(chunker) = mapped {
            return Ok(Input::Mapped(chunker));
        }
    }
    let raw = std::io::Cursor::new(peek).chain(file);
    let mut reader: Box<dyn Read + Send> = if gzip {
        Box::new(MultiGzDecoder::new(std::io::BufReader::new(raw)))
    } else {
        Box::new(raw)
    };
    let mut head = Vec::new();
    (&mut reader)
        .take(stream::CHUNK_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    Ok(Input::Read(head, reader))
}

/// Runs `files` in order, each as one stream, through the pipeline, and
/// hands each file's report to `on_file` (index, name, report). Signals are
/// kept in the reports only when `keep_signals` (without sample lines:
/// nothing replay prints shows them); otherwise they are only counted.
/// Histograms keep their distinct values (EMF's) only when `emf_values`.
pub fn run_files(
    files: &[PathBuf],
    rules: &RuleSet,
    redactor: &Redactor,
    text_utc_offset_ms: i64,
    keep_signals: bool,
    emf_values: bool,
    mut on_file: impl FnMut(usize, &str, BatchReport) -> Result<(), ReplayError>,
) -> Result<Summary, ReplayError> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let mut guard = CardinalityGuard::default();
    let mut summary = Summary::default();
    let started = Instant::now();
    // Subscription events carry CloudWatch's time, which bounds each
    // record's own; lines of a plain file have none.
    let events = ParseSettings {
        text_utc_offset_ms,
        ..ParseSettings::default()
    };
    let lines = ParseSettings {
        time_bounds: None,
        ..events
    };
    for (index, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let read_error = |reason| ReplayError::Read {
            path: name.clone(),
            reason,
        };
        summary.files += 1;
        let input = open(path)?;
        let mut aggregator = Aggregator::new(&mut guard);
        if !emf_values {
            aggregator = aggregator.without_emf_values();
        }
        let source: Box<dyn stream::ChunkSource> = match input {
            Input::Mapped(chunker) => Box::new(chunker),
            Input::Read(mut head, mut reader) => {
                if looks_like_cloudwatch(&head) {
                    reader.read_to_end(&mut head).map_err(read_error)?;
                    let text = String::from_utf8_lossy(&head);
                    if let Some(data) = awslogs_data(&text) {
                        let batch = decode_awslogs_data(&data, DEFAULT_MAX_DECOMPRESSED_BYTES)
                            .map_err(|reason| ReplayError::Decode {
                                path: name.clone(),
                                reason,
                            })?;
                        if batch.message_type == MessageType::Control {
                            summary.control_messages += 1;
                            continue;
                        }
                        let mut evaluator =
                            Evaluator::new(rules, redactor, events).without_samples();
                        let mut joined = String::new();
                        evaluator
                            .push_events(batch.events.iter().map(|e| e.borrowed()), &mut joined);
                        let mut evaluated = evaluator.take();
                        summary.signals += evaluated.evaluation.signals.len() as u64;
                        if !keep_signals {
                            evaluated.evaluation.signals.clear();
                        }
                        aggregator.add(evaluated);
                        head = Vec::new();
                        reader = Box::new(std::io::empty());
                    }
                }
                Box::new(stream::Chunker::new(head, reader))
            }
        };
        let counts = stream::evaluate_stream(
            source,
            &name,
            rules,
            redactor,
            lines,
            workers,
            keep_signals,
            &mut aggregator,
        )
        .map_err(read_error)?;
        summary.signals += counts.signals;
        let report = aggregator.finish();
        summary.add(&report);
        on_file(index, &name, report)?;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Replays `files` in order, each as one stream, into one in-memory store.
/// With `emf_namespace`, also renders each file as log-metrics renders a
/// batch: the same [`emf::render`] (dimension policy included), gauges
/// with their value after the file.
pub fn replay(
    files: &[PathBuf],
    rules: &RuleSet,
    redactor: &Redactor,
    text_utc_offset_ms: i64,
    emf_namespace: Option<&str>,
) -> Result<Replay, ReplayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|reason| ReplayError::Read {
            path: "(runtime)".into(),
            reason,
        })?;
    let store = MemorySeriesStore::new();
    let mut documents = Vec::new();
    let summary = run_files(
        files,
        rules,
        redactor,
        text_utc_offset_ms,
        false,
        emf_namespace.is_some(),
        |index, name, report| {
            let batch_id = format!("replay#{index}#{name}");
            let now = time::OffsetDateTime::now_utc();
            runtime
                .block_on(store.apply_batch(&batch_id, &report.metrics, now))
                .map_err(ReplayError::Store)?;
            if let Some(namespace) = emf_namespace {
                let gauges = runtime
                    .block_on(emf::gauge_values(&store, &report.metrics))
                    .map_err(ReplayError::Store)?;
                let timestamp = (now.unix_timestamp_nanos() / 1_000_000) as i64;
                documents.extend(emf::render(&report.metrics, &gauges, namespace, timestamp));
            }
            Ok(())
        },
    )?;
    let mut metrics = rules.metrics().to_vec();
    metrics.extend(monitoring_core::domain::pipeline::pipeline_metrics());
    Ok(Replay {
        series: store.all_series(),
        metrics,
        summary,
        emf: documents,
    })
}

/// The redactor: keyed from `key` (the environment's value) or the default.
pub fn redactor(key: Option<&str>) -> Result<Redactor, ReplayError> {
    Redactor::new(key.unwrap_or(DEFAULT_REDACTION_KEY).as_bytes()).map_err(ReplayError::Key)
}

/// Renders the series in `format`.
pub fn render(replay: &Replay, format: OutputFormat) -> String {
    match format {
        OutputFormat::Prometheus => render_prometheus(&replay.series, &replay.metrics),
        OutputFormat::OpenMetrics => render_openmetrics(&replay.series, &replay.metrics),
        OutputFormat::Json => {
            let mut text = render_json(&replay.series).to_string();
            text.push('\n');
            text
        }
        OutputFormat::Emf => replay.emf.iter().map(|d| format!("{d}\n")).collect(),
    }
}

/// `{"name{a=x,...}": value}`; histograms as `_count`, `_sum` and
/// cumulative `_bucket{...,le=...}`.
pub fn render_json(series: &[StoredSeries]) -> Value {
    let mut out = serde_json::Map::new();
    for s in series {
        let name = s.key.name();
        let labels = s.key.labels();
        let key = |suffix: &str, le: Option<String>| {
            let extra = le.as_deref().map(|le| ("le", le));
            s.key.compact_with(suffix, extra).unwrap_or_else(|| {
                let all = labels
                    .iter()
                    .cloned()
                    .chain(le.map(|le| ("le".to_owned(), le)));
                SeriesKey::new(format!("{name}{suffix}"), all).compact()
            })
        };
        match &s.value {
            StoredValue::Counter(v) | StoredValue::Gauge(v) => {
                out.insert(s.key.compact(), number(*v));
            }
            StoredValue::Histogram {
                buckets,
                count,
                sum,
            } => {
                out.insert(key("_count", None), Value::from(*count));
                out.insert(key("_sum", None), number(*sum));
                let mut cumulative = 0u64;
                for (i, n) in buckets.iter().enumerate() {
                    cumulative += n;
                    let le = DEFAULT_BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                    out.insert(key("_bucket", Some(le)), Value::from(cumulative));
                }
            }
        }
    }
    Value::Object(out)
}

/// Whole numbers as JSON integers, others as floats (non-finite as null).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_core::domain::metrics::series::BUCKETS;

    fn parse(args: &[&str]) -> Result<Command, ReplayError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&["a.log", "b.gz"]).unwrap(),
            Command::Run(Args {
                rules: None,
                format: OutputFormat::Prometheus,
                files: vec!["a.log".into(), "b.gz".into()],
                alerts: false,
                alert_rules: None,
                text_utc_offset_ms: 0,
                namespace: DEFAULT_NAMESPACE.into(),
            })
        );
        assert_eq!(
            parse(&["--rules", "r.toml", "--format=json", "x", "--", "--odd"]).unwrap(),
            Command::Run(Args {
                rules: Some("r.toml".into()),
                format: OutputFormat::Json,
                files: vec!["x".into(), "--odd".into()],
                alerts: false,
                alert_rules: None,
                text_utc_offset_ms: 0,
                namespace: DEFAULT_NAMESPACE.into(),
            })
        );
        assert_eq!(
            parse(&["--rules=r.toml", "--format", "openmetrics", "-"]).unwrap(),
            Command::Run(Args {
                rules: Some("r.toml".into()),
                format: OutputFormat::OpenMetrics,
                files: vec!["-".into()],
                alerts: false,
                alert_rules: None,
                text_utc_offset_ms: 0,
                namespace: DEFAULT_NAMESPACE.into(),
            })
        );
        assert_eq!(
            parse(&["--alerts", "--alert-rules=a.toml", "x"]).unwrap(),
            Command::Run(Args {
                rules: None,
                format: OutputFormat::Prometheus,
                files: vec!["x".into()],
                alerts: true,
                alert_rules: Some("a.toml".into()),
                text_utc_offset_ms: 0,
                namespace: DEFAULT_NAMESPACE.into(),
            })
        );
        assert_eq!(parse(&["-h"]).unwrap(), Command::Help);
        assert_eq!(parse(&["x", "--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn argument_errors() {
        for (args, message) in [
            (&[][..], "no input files"),
            (&["--format", "xml", "a"][..], "unknown format \"xml\""),
            (&["--rules"][..], "--rules needs a value"),
            (&["--verbose", "a"][..], "unknown option --verbose"),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.starts_with(message), "{args:?}: {err}");
            assert!(err.contains("usage: replay"));
        }
    }

    #[test]
    fn format_detection() {
        assert!(is_gzip(Path::new("x.log.gz"), b"plain"));
        assert!(is_gzip(Path::new("x.log"), &[0x1f, 0x8b, 8, 0]));
        assert!(!is_gzip(Path::new("x.log"), b"{\"a\":1}"));

        let event = r#" {"awslogs": {"data": "H4sI"}}"#;
        assert!(looks_like_cloudwatch(event.as_bytes()));
        assert_eq!(awslogs_data(event).as_deref(), Some("H4sI"));
        // JSON-lines logs, even mentioning awslogs, are plain.
        let lines = "{\"msg\":\"a\",\"awslogs\":1}\n{\"msg\":\"b\"}\n";
        assert_eq!(awslogs_data(lines), None);
        assert_eq!(awslogs_data("{\"awslogs\":{\"other\":1}}"), None);
        let text = "2025-05-20 10:30:00,123 - auth - INFO - ok";
        assert!(!looks_like_cloudwatch(text.as_bytes()));
        assert_eq!(awslogs_data(text), None);
    }

    #[test]
    fn json_output_shape() {
        let mut buckets = [0u64; BUCKETS];
        buckets[0] = 1;
        buckets[BUCKETS - 1] = 2;
        let series = [
            StoredSeries {
                key: SeriesKey::new("c_total", [("b", "2"), ("a", "1")]),
                value: StoredValue::Counter(3.0),
            },
            StoredSeries {
                key: SeriesKey::new("g", [("x", "y")]),
                value: StoredValue::Gauge(0.5),
            },
            StoredSeries {
                key: SeriesKey::new("h", [("route", "/r")]),
                value: StoredValue::Histogram {
                    buckets,
                    count: 3,
                    sum: 30.25,
                },
            },
        ];
        let json = render_json(&series);
        assert_eq!(json["c_total{a=1,b=2}"], 3);
        assert_eq!(json["g{x=y}"], 0.5);
        assert_eq!(json["h_count{route=/r}"], 3);
        assert_eq!(json["h_sum{route=/r}"], 30.25);
        assert_eq!(json["h_bucket{le=0.005,route=/r}"], 1);
        assert_eq!(json["h_bucket{le=10,route=/r}"], 1);
        assert_eq!(json["h_bucket{le=+Inf,route=/r}"], 3);
        assert_eq!(json.as_object().unwrap().len(), 2 + 2 + BUCKETS);
    }

    #[test]
    fn redaction_key() {
        assert!(redactor(None).is_ok());
        assert!(redactor(Some("short")).is_err());
    }
}
