//! Cold start and memory of the function binaries (issue 7): the pure
//! parts of the `coldstart` harness. The harness (`main.rs`) starts each
//! function's release binary against a local stub of the Lambda Runtime API
//! (`stub.rs`), times it from just before the spawn to its first
//! `GET /runtime/invocation/next`, then feeds it the sample events and reads
//! its peak resident set (`VmHWM`) from `/proc/<pid>/status`.
//!
//! Units: times in milliseconds; resident sets in MiB (what Lambda's
//! `Max Memory Used` counts in); binary sizes in decimal MB, as the release
//! size table of `BENCHMARKS.md`.

pub mod stub;

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;

/// The bundle's functions, as built by `cargo build --release -p <name>`.
pub const FUNCTIONS: [&str; 6] = [
    "component-probe",
    "health-api",
    "log-metrics",
    "alert-evaluator",
    "incident-notifier",
    "security-responder",
];

/// Issue 7's targets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Targets {
    /// Median time to the first `/next`.
    pub init_ms: f64,
    /// Peak resident set over the sample events.
    pub peak_rss_mib: f64,
    /// Stripped release binary.
    pub binary_mb: f64,
}

pub const TARGETS: Targets = Targets {
    init_ms: 20.0,
    peak_rss_mib: 40.0,
    binary_mb: 10.0,
};

/// CloudWatch Logs puts at most 1 MiB of event data in one subscription
/// delivery: the largest payload log-metrics can be handed.
pub const SUBSCRIPTION_MESSAGE_BYTES: usize = 1 << 20;

/// The sample events (file names in `events/`) each function is fed.
pub fn sample_events(function: &str) -> &'static [&'static str] {
    const SNS: &[&str] = &[
        "sns-incident-auth-failures-high.json",
        "sns-incident-brute-force-critical.json",
        "sns-incident-brute-force-resolved.json",
    ];
    match function {
        "component-probe" => &["scheduled.json"],
        "health-api" => &[
            "api-health.json",
            "api-health-json.json",
            "api-health-details.json",
        ],
        "log-metrics" => &[
            "logs-json.json",
            "logs-text.json",
            "logs-control.json",
            "logs-bad-base64.json",
        ],
        "alert-evaluator" => &["scheduled-evaluator.json"],
        "incident-notifier" | "security-responder" => SNS,
        _ => &[],
    }
}

/// The deployed memory size (`template.yaml`): 256 MB for log-metrics,
/// the global 128 MB for the others.
pub fn memory_size_mb(function: &str) -> u32 {
    if function == "log-metrics" { 256 } else { 128 }
}

/// Where the functions' AWS clients and the incident channels point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `http://127.0.0.1:<port>` of the stub: `AWS_LAMBDA_RUNTIME_API` is
    /// this without the scheme.
    pub stub: String,
    /// `AWS_ENDPOINT_URL`: the local stack's moto, or a port nothing
    /// listens on.
    pub aws: String,
}

/// Variables passed through from the harness's own environment when set
/// (the local stack's `scripts/stack.sh env`; `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// to try another root store); the functions get nothing else from it.
pub const PASSTHROUGH: [&str; 13] = [
    "AWS_REGION",
    "TABLE_NAME",
    "INCIDENTS_TOPIC_ARN",
    "DATABASE_URL",
    "REDIS_URL",
    "OIDC_ISSUER",
    "CERT_ENDPOINTS",
    "CERT_EXTRA_CA_FILE",
    "RUST_LOG",
    "PATH",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The environment a function is started with: what the Lambda service
/// sets, dummy credentials, and what its configuration requires to start
/// (`crates/monitoring-config/src`). `outer` reads the harness's environment.
pub fn function_env(
    function: &str,
    endpoints: &Endpoints,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let runtime_api = endpoints
        .stub
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), function.into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            memory_size_mb(function).to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            "2026/11/30/[$LATEST]0123456789abcdef0123456789abcdef".into(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_SESSION_TOKEN".into(), "test".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), endpoints.aws.clone()),
        ("TABLE_NAME".into(), "blindspotx-monitoring".into()),
        (
            "INCIDENTS_TOPIC_ARN".into(),
            "arn:aws:sns:us-east-1:123456789012:blindspotx-incidents".into(),
        ),
        ("RUST_LOG".into(), "info".into()),
    ];
    let sink = |name: &str| format!("{}/sink/{name}", endpoints.stub.trim_end_matches('/'));
    let specific: Vec<(&str, String)> = match function {
        // The token of events/api-health-details.json.
        "health-api" => vec![
            ("HEALTH_TOKEN", "local-dev-token".into()),
            ("METRICS_TOKEN", "coldstart-metrics-token".into()),
            ("ADMIN_TOKEN", "coldstart-admin-token".into()),
        ],
        "log-metrics" => vec![("REDACTION_KEY", "coldstart-redaction-key-0123".into())],
        // Every channel configured, delivered to the stub's sink.
        "incident-notifier" => vec![
            ("SLACK_WEBHOOK_URL", sink("slack")),
            ("WEBHOOK_URL", sink("webhook")),
            (
                "WEBHOOK_SIGNING_KEY",
                "coldstart-webhook-signing-key".into(),
            ),
            ("PAGERDUTY_EVENTS_URL", sink("pagerduty")),
            ("PAGERDUTY_ROUTING_KEY", "coldstart-routing-key".into()),
        ],
        _ => Vec::new(),
    };
    env.extend(specific.into_iter().map(|(k, v)| (k.to_owned(), v)));
    for var in PASSTHROUGH {
        if let Some(value) = outer(var).filter(|v| !v.trim().is_empty()) {
            env.retain(|(k, _)| k != var);
            env.push((var.to_owned(), value));
        }
    }
    env
}

/// A field of `/proc/<pid>/status` given in kB (`VmHWM`, `VmRSS`), in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != field {
            return None;
        }
        let rest = rest.trim();
        let number = rest.strip_suffix("kB").unwrap_or(rest).trim();
        number.parse().ok()
    })
}

/// Median, p90 and extremes of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

/// `None` for no samples. The median of an even count is the mean of the
/// middle two; p90 is the nearest rank (the 18th of 20).
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let (first, last) = (*ms.first()?, *ms.last()?);
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    Some(Summary {
        runs: n,
        min_ms: first,
        median_ms: median,
        p90_ms: nearest_rank(&ms, 90.0),
        max_ms: last,
    })
}

/// The nearest-rank percentile of sorted, non-empty samples.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One sample event fed to a function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    pub event: String,
    pub event_bytes: usize,
    /// `response`, `error` (the function posted an error), `timeout` or
    /// `exited` (the process died).
    pub outcome: String,
    pub ms: f64,
    /// The error the function reported, shortened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything measured for one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionReport {
    pub function: String,
    pub binary: String,
    pub binary_bytes: Option<u64>,
    pub init: Option<Summary>,
    /// Starts that never reached `/next`, with why.
    pub init_failures: Vec<String>,
    /// Resident set at the first `/next` of the memory run, in KiB.
    pub rss_after_init_kib: Option<u64>,
    /// `VmHWM` after the last response, in KiB.
    pub peak_rss_kib: Option<u64>,
    pub invocations: Vec<Invocation>,
}

/// What missed a target, one line each; empty when all are met. A figure
/// that could not be measured counts as missed.
pub fn misses(report: &FunctionReport, targets: &Targets) -> Vec<String> {
    let mut out = Vec::new();
    let f = &report.function;
    match report.init {
        Some(s) if s.median_ms <= targets.init_ms => {}
        Some(s) => out.push(format!(
            "{f}: init median {:.1} ms > {} ms",
            s.median_ms, targets.init_ms
        )),
        None => out.push(format!("{f}: init not measured")),
    }
    if !report.init_failures.is_empty() {
        out.push(format!(
            "{f}: {} start(s) never reached /next",
            report.init_failures.len()
        ));
    }
    match report.peak_rss_kib.map(kib_to_mib) {
        Some(m) if m <= targets.peak_rss_mib => {}
        Some(m) => out.push(format!(
            "{f}: peak RSS {m:.1} MiB > {} MiB",
            targets.peak_rss_mib
        )),
        None => out.push(format!("{f}: peak RSS not measured")),
    }
    match report.binary_bytes.map(bytes_to_mb) {
        Some(mb) if mb <= targets.binary_mb => {}
        Some(mb) => out.push(format!("{f}: binary {mb:.1} MB > {} MB", targets.binary_mb)),
        None => out.push(format!("{f}: binary not found")),
    }
    out
}

pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn bytes_to_mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The human-readable report: one row per function, then the misses.
pub fn render_table(reports: &[FunctionReport], targets: &Targets) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<19} {:>11} {:>9} {:>9} {:>10} {:>10} {:>9}  invocations",
        "function", "init median", "init p90", "init max", "RSS init", "peak RSS", "binary"
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    let mib =
        |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.1} MiB", kib_to_mib(v)));
    for r in reports {
        let ok = r
            .invocations
            .iter()
            .filter(|i| i.outcome == "response")
            .count();
        let mut calls = format!("{ok}/{} ok", r.invocations.len());
        for i in r.invocations.iter().filter(|i| i.outcome != "response") {
            let _ = write!(calls, "; {} {}", i.event, i.outcome);
        }
        let _ = writeln!(
            s,
            "{:<19} {:>11} {:>9} {:>9} {:>10} {:>10} {:>9}  {calls}",
            r.function,
            ms(r.init.map(|i| i.median_ms)),
            ms(r.init.map(|i| i.p90_ms)),
            ms(r.init.map(|i| i.max_ms)),
            mib(r.rss_after_init_kib),
            mib(r.peak_rss_kib),
            r.binary_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", bytes_to_mb(b))),
        );
    }
    let _ = writeln!(
        s,
        "targets: init median <= {} ms, peak RSS <= {} MiB, binary <= {} MB",
        targets.init_ms, targets.peak_rss_mib, targets.binary_mb
    );
    let missed: Vec<String> = reports.iter().flat_map(|r| misses(r, targets)).collect();
    if missed.is_empty() {
        let _ = writeln!(s, "all targets met");
    }
    for m in missed {
        let _ = writeln!(s, "MISSED {m}");
    }
    for r in reports {
        for f in &r.init_failures {
            let _ = writeln!(s, "{}: start failed: {f}", r.function);
        }
        for i in &r.invocations {
            if let Some(d) = &i.detail {
                let _ = writeln!(s, "{}: {} {}: {d}", r.function, i.event, i.outcome);
            }
        }
    }
    s
}

/// The machine-readable report.
pub fn render_json(reports: &[FunctionReport], targets: &Targets) -> serde_json::Value {
    let missed: Vec<String> = reports.iter().flat_map(|r| misses(r, targets)).collect();
    serde_json::json!({
        "targets": targets,
        "functions": reports,
        "missed": missed,
    })
}

#[path = "../../../crates/monitoring-core/benches/common/log_mix.rs"]
mod log_mix;

/// One log message of the benches' mix (`crates/monitoring-core/benches/common/log_mix.rs`),
/// dated the day this harness was written.
pub fn log_message(i: usize) -> String {
    log_mix::log_message(i, "2026-11-30")
}

/// A generated subscription delivery.
#[derive(Debug, Clone)]
pub struct GeneratedPayload {
    /// The invocation event, `{"awslogs": {"data": <base64 of gzip>}}`.
    pub event: String,
    pub log_events: usize,
    pub message_bytes: usize,
}

/// A CloudWatch Logs subscription event carrying at least `message_bytes`
/// of log messages (the whole mix, gzip + base64, as CloudWatch sends it).
/// `start_ms` is the first event's time; the events are 1 ms apart.
pub fn subscription_payload(
    message_bytes: usize,
    start_ms: i64,
) -> std::io::Result<GeneratedPayload> {
    let mut messages = Vec::new();
    let mut total = 0;
    while total < message_bytes {
        let m = log_message(messages.len());
        total += m.len();
        messages.push(m);
    }
    let data = log_mix::awslogs_data(messages.iter().enumerate().map(|(i, m)| {
        (
            format!("{:056}", start_ms as u128 * 1000 + i as u128),
            start_ms + i as i64,
            m.as_str(),
        )
    }))?;
    Ok(GeneratedPayload {
        event: serde_json::json!({ "awslogs": { "data": data } }).to_string(),
        log_events: messages.len(),
        message_bytes: total,
    })
}

/// Writes `text` to a locked stdout, ignoring a closed pipe.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use flate2::read::GzDecoder;

    use super::*;

    const STATUS: &str = "Name:\thealth-api\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  612340 kB\nVmSize:\t  547212 kB\nVmHWM:\t   12876 kB\nVmRSS:\t   11020 kB\nThreads:\t3\n";

    #[test]
    fn reads_vmhwm_and_vmrss_from_proc_status() {
        assert_eq!(status_kib(STATUS, "VmHWM"), Some(12_876));
        assert_eq!(status_kib(STATUS, "VmRSS"), Some(11_020));
        assert_eq!(status_kib(STATUS, "VmPeak"), Some(612_340));
    }

    #[test]
    fn a_missing_or_garbled_field_is_none() {
        assert_eq!(status_kib(STATUS, "VmSwap"), None);
        // A prefix of another field's name does not match.
        assert_eq!(status_kib(STATUS, "VmH"), None);
        assert_eq!(status_kib("VmHWM:\tlots kB\n", "VmHWM"), None);
        assert_eq!(status_kib("", "VmHWM"), None);
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn summary_of_an_odd_count() {
        let s = summarize(&ms(&[30, 10, 20])).unwrap();
        assert_eq!(s.runs, 3);
        assert_eq!((s.min_ms, s.median_ms, s.max_ms), (10.0, 20.0, 30.0));
        assert_eq!(s.p90_ms, 30.0);
    }

    #[test]
    fn summary_of_twenty_runs_takes_the_18th_as_p90() {
        let samples: Vec<u64> = (1..=20).rev().collect();
        let s = summarize(&ms(&samples)).unwrap();
        assert_eq!(s.median_ms, 10.5);
        assert_eq!(s.p90_ms, 18.0);
        assert_eq!((s.min_ms, s.max_ms), (1.0, 20.0));
    }

    #[test]
    fn summary_of_one_and_of_none() {
        let s = summarize(&ms(&[7])).unwrap();
        assert_eq!((s.median_ms, s.p90_ms, s.max_ms), (7.0, 7.0, 7.0));
        assert_eq!(summarize(&[]), None);
    }

    fn report(init_ms: f64, peak_kib: u64, bytes: u64) -> FunctionReport {
        FunctionReport {
            function: "f".into(),
            binary: "target/release/f".into(),
            binary_bytes: Some(bytes),
            init: Some(Summary {
                runs: 1,
                min_ms: init_ms,
                median_ms: init_ms,
                p90_ms: init_ms,
                max_ms: init_ms,
            }),
            init_failures: Vec::new(),
            rss_after_init_kib: Some(peak_kib / 2),
            peak_rss_kib: Some(peak_kib),
            invocations: vec![Invocation {
                event: "e.json".into(),
                event_bytes: 10,
                outcome: "response".into(),
                ms: 1.0,
                detail: None,
            }],
        }
    }

    #[test]
    fn targets_met_and_missed() {
        assert!(misses(&report(20.0, 40 * 1024, 10_000_000), &TARGETS).is_empty());
        let m = misses(&report(20.5, 40 * 1024 + 1, 10_000_001), &TARGETS);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].starts_with("f: init median 20.5 ms"));
        let mut unmeasured = report(1.0, 1, 1);
        unmeasured.init = None;
        unmeasured.peak_rss_kib = None;
        unmeasured.binary_bytes = None;
        unmeasured.init_failures.push("exited with 1".into());
        assert_eq!(misses(&unmeasured, &TARGETS).len(), 4);
    }

    #[test]
    fn table_and_json_name_every_function_and_miss() {
        let reports = [report(5.0, 8 * 1024, 5_000_000), {
            let mut r = report(30.0, 8 * 1024, 18_481_512);
            r.function = "g".into();
            r
        }];
        let table = render_table(&reports, &TARGETS);
        assert!(table.contains("5.0 ms"), "{table}");
        assert!(table.contains("18.5 MB"), "{table}");
        assert!(table.contains("8.0 MiB"), "{table}");
        assert!(
            table.contains("MISSED g: init median 30.0 ms > 20 ms"),
            "{table}"
        );
        assert!(
            table.contains("MISSED g: binary 18.5 MB > 10 MB"),
            "{table}"
        );
        let json = render_json(&reports, &TARGETS);
        assert_eq!(json["functions"][1]["function"], "g");
        assert_eq!(json["missed"].as_array().unwrap().len(), 2);
        assert_eq!(json["targets"]["init_ms"], 20.0);
    }

    #[test]
    fn env_has_the_runtime_variables_and_what_each_function_needs() {
        let endpoints = Endpoints {
            stub: "http://127.0.0.1:4000".into(),
            aws: "http://127.0.0.1:4001".into(),
        };
        let none = |_: &str| None;
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        let env = function_env("log-metrics", &endpoints, &none);
        assert_eq!(
            get(&env, "AWS_LAMBDA_RUNTIME_API").unwrap(),
            "127.0.0.1:4000"
        );
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap(), "256");
        assert_eq!(
            get(&env, "AWS_ENDPOINT_URL").unwrap(),
            "http://127.0.0.1:4001"
        );
        assert!(get(&env, "REDACTION_KEY").unwrap().len() >= 16);
        assert!(
            get(&env, "INCIDENTS_TOPIC_ARN")
                .unwrap()
                .starts_with("arn:aws:sns:")
        );
        let env = function_env("incident-notifier", &endpoints, &none);
        assert_eq!(
            get(&env, "WEBHOOK_URL").unwrap(),
            "http://127.0.0.1:4000/sink/webhook"
        );
        assert!(get(&env, "WEBHOOK_SIGNING_KEY").is_some());
        // The local stack's settings win; each variable appears once.
        let stack = |k: &str| (k == "TABLE_NAME").then(|| "other-table".to_owned());
        let env = function_env("health-api", &endpoints, &stack);
        assert_eq!(get(&env, "TABLE_NAME").unwrap(), "other-table");
        assert_eq!(env.iter().filter(|(k, _)| k == "TABLE_NAME").count(), 1);
        assert_eq!(get(&env, "HEALTH_TOKEN").unwrap(), "local-dev-token");
    }

    #[test]
    fn every_function_has_sample_events() {
        for f in FUNCTIONS {
            assert!(!sample_events(f).is_empty(), "{f}");
        }
    }

    #[test]
    fn generated_payload_carries_a_mebibyte_of_messages() {
        let p = subscription_payload(SUBSCRIPTION_MESSAGE_BYTES, 1_796_000_000_000).unwrap();
        assert!(p.message_bytes >= SUBSCRIPTION_MESSAGE_BYTES);
        assert!(p.message_bytes < SUBSCRIPTION_MESSAGE_BYTES + 1024);
        let event: serde_json::Value = serde_json::from_str(&p.event).unwrap();
        let data = STANDARD
            .decode(event["awslogs"]["data"].as_str().unwrap())
            .unwrap();
        let mut text = String::new();
        GzDecoder::new(&data[..]).read_to_string(&mut text).unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
        let events = envelope["logEvents"].as_array().unwrap();
        assert_eq!(events.len(), p.log_events);
        assert_eq!(envelope["messageType"], "DATA_MESSAGE");
        // Ids are unique, so the batch is not mistaken for a redelivery.
        assert_ne!(events[0]["id"], events[1]["id"]);
        assert_eq!(events[0]["id"].as_str().unwrap().len(), 56);
    }
}
