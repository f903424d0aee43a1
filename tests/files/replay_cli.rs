//! Runs the built `replay` binary on files made in a temporary directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use test_support::logs;

use serde_json::Value;

use crate::replay_support::{TempDir, gzip, json_output, replay, subscription_payload};

const API_82: &str = r#"{"timestamp":"2025-05-20T10:30:00.005Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/drift/reports","method":"GET","status_code":200,"duration_ms":82.4}"#;
const API_24: &str = r#"{"timestamp":"2025-05-20T10:30:00.026Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/drift/reports","method":"GET","status_code":200,"duration_ms":24.4}"#;
const API_300: &str = r#"{"timestamp":"2025-05-20T10:30:01.000Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/drift/reports","method":"GET","status_code":200,"duration_ms":300}"#;
const SERIES: &str = "endpoint=/api/drift/reports,method=GET,status_code=200";

/// A CloudWatch Logs subscription event carrying `messages`.
fn cloudwatch_event(messages: &[&str]) -> Vec<u8> {
    let events = messages
        .iter()
        .enumerate()
        .map(|(i, m)| logs::event(format!("e{i}"), 1_747_737_000_000i64 + i as i64, *m))
        .collect();
    subscription_payload(events)
}

#[test]
fn plain_gzip_and_cloudwatch_inputs() {
    let dir = TempDir::new("inputs");
    let plain = dir.file(
        "app.log",
        format!("not a record\n{API_82}\n{API_24}\n").as_bytes(),
    );
    let gz = dir.file("more.log.gz", gzip(format!("{API_300}\n").as_bytes()));
    // Gzip detected by content, whatever the name.
    let gz_unnamed = dir.file("rotated.1", gzip(format!("{API_82}\n").as_bytes()));
    let cwl = dir.file("batch.json", cloudwatch_event(&[API_24, API_300]));

    let out = replay(&[&plain, &gz, &gz_unnamed, &cwl], &["--format", "json"]);
    let json = json_output(&out);
    let get = |k: &str| json.get(k).unwrap_or_else(|| panic!("no {k} in {json:?}"));

    assert_eq!(
        get(&format!("api_request_duration_seconds_count{{{SERIES}}}")),
        6
    );
    let sum = get(&format!("api_request_duration_seconds_sum{{{SERIES}}}"))
        .as_f64()
        .unwrap();
    assert!((sum - 0.8136).abs() < 1e-9, "{sum}");
    // 24.4 ms twice <= 0.025; 82.4 ms twice <= 0.1; 300 ms twice <= 0.5.
    for (le, n) in [
        ("0.01", 0),
        ("0.025", 2),
        ("0.1", 4),
        ("0.25", 4),
        ("0.5", 6),
        ("+Inf", 6),
    ] {
        assert_eq!(
            get(&format!(
                "api_request_duration_seconds_bucket{{endpoint=/api/drift/reports,le={le},method=GET,status_code=200}}"
            )),
            n,
            "le={le}"
        );
    }
    assert_eq!(get("log_events_total{}"), 7);
    // A line of no known format is read as a plain record, not rejected.
    assert_eq!(get("log_records_total{format=plain}"), 1);
    assert_eq!(get("log_records_total{format=json}"), 6);
    assert!(
        !json
            .keys()
            .any(|k| k.starts_with("log_events_rejected_total"))
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "4 file(s): 7 lines read, 7 records (json 6, plain 1), 0 lines joined into records, 0 rejected"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("records/s"), "{stderr}");

    // Default output: the Prometheus text format.
    let out = replay(&[&plain], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# TYPE api_request_duration_seconds histogram\n"));
    assert!(text.contains(
        "api_request_duration_seconds_count{endpoint=\"/api/drift/reports\",method=\"GET\",status_code=\"200\"} 2\n"
    ));
    assert!(text.contains("# TYPE log_events_total counter\nlog_events_total 3\n"));
}

#[test]
fn errors_exit_with_code_2() {
    let dir = TempDir::new("errors");
    let log = dir.file("app.log", format!("{API_82}\n").as_bytes());
    let syntax = dir.file("syntax.toml", b"[[rule]]\nname = \"x\"\nmatch = [\n");
    let invalid = dir.file(
        "invalid.toml",
        b"[[rule]]\nname = \"x\"\nmatch = \"API request\"\n",
    );
    // An alert rule counting a signal no log rule produces is refused
    // before anything is read, with its line and the nearest name.
    let alerts = dir.file(
        "alerts.toml",
        b"[[rule]]\nname = \"x\"\nsignal = \"auth_failure\"\nthreshold = 1\nwindow = 60\nseverity = \"high\"\ncategory = \"security\"\n",
    );
    let cases: [(Vec<&Path>, Vec<&str>, String); 5] = [
        (
            vec![&log],
            vec!["--alerts", "--alert-rules", alerts.to_str().unwrap()],
            format!(
                "{}:3:1: alert rule \"x\", signal: no log rule or probe produces signal \"auth_failure\" (did you mean \"auth_failures\"?)",
                alerts.display()
            ),
        ),
        (
            vec![&log],
            vec!["--rules", syntax.to_str().unwrap()],
            format!("{}:3:", syntax.display()),
        ),
        (
            vec![&log],
            vec!["--rules", invalid.to_str().unwrap()],
            format!("{}:1: rule \"x\"", invalid.display()),
        ),
        (
            vec![Path::new("/nonexistent/replay.log")],
            vec![],
            "cannot read /nonexistent/replay.log".to_owned(),
        ),
        (
            vec![&log],
            vec!["--format", "xml"],
            "unknown format".to_owned(),
        ),
    ];
    for (files, args, expected) in cases {
        let out = replay(&files, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// Every series `shared/bench/reference_counts.py` computes equals replay's
/// value. Skipped when python3 or the shared bench directory is missing.
#[test]
fn matches_reference_counts() {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench");
    if !bench.join("gen_logs.py").is_file() || !bench.join("reference_counts.py").is_file() {
        return;
    }
    let dir = TempDir::new("reference");
    let corpus = dir.0.join("corpus.log");
    let python = |script: &str, args: &[&str]| -> Option<Vec<u8>> {
        let out = Command::new("python3")
            .arg(bench.join(script))
            .args(args)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.stdout)
    };
    let corpus_arg = corpus.to_str().unwrap();
    if python("gen_logs.py", &["20000", corpus_arg, "11"]).is_none() {
        return; // no python3
    }
    let reference: BTreeMap<String, u64> =
        serde_json::from_slice(&python("reference_counts.py", &[corpus_arg]).unwrap()).unwrap();
    assert!(reference.len() > 50);

    let ours = json_output(&replay(&[&corpus], &["--format", "json"]));
    let mismatched: Vec<String> = reference
        .iter()
        .filter(|(k, v)| ours.get(*k).and_then(Value::as_u64) != Some(**v))
        .map(|(k, v)| format!("{k}: reference {v}, replay {:?}", ours.get(k)))
        .collect();
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
    // Every line is read: the records, and the SQL echo lines joined to
    // the database errors before them.
    let joined = ours["log_lines_joined_total{}"].as_u64().unwrap();
    assert!(joined > 0);
    assert_eq!(ours["log_events_total{}"].as_u64(), Some(20000 + joined));
    let records: u64 = ["json", "text"]
        .iter()
        .map(|f| {
            ours[&format!("log_records_total{{format={f}}}")]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(records, 20000);
}

/// A failed password login from `ip` at `second` past 10:30:00.
fn failed_login(ip: &str, second: u32) -> String {
    format!(
        r#"{{"timestamp":"2025-05-20T10:{:02}:{:02}.000Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"u-{second}","ip_address":"{ip}","success":false,"method":"password","endpoint":"/api/auth/login","duration_ms":12.5}}"#,
        30 + second / 60,
        second % 60
    )
}

#[test]
fn alerts_backtest_prints_one_line_per_transition() {
    let dir = TempDir::new("alerts");
    // Five failures from one address within 300 s, a sixth 10 minutes
    // later (after the quiet period), and four from another address.
    let mut lines: Vec<String> = [0, 30, 60, 90, 120]
        .iter()
        .map(|s| failed_login("203.0.113.7", *s))
        .collect();
    lines.extend(
        [10, 20, 30, 40]
            .iter()
            .map(|s| failed_login("198.51.100.9", *s)),
    );
    lines.push(failed_login("203.0.113.7", 1200));
    let log = dir.file("auth.log", lines.join("\n").as_bytes());
    let out = replay(&[&log], &["--alerts"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transitions: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .filter(|t: &Value| t["rule"] == "auth_failures_by_ip")
        .collect();
    let summary: Vec<(String, String, u64)> = transitions
        .iter()
        .map(|t| {
            (
                t["status"].as_str().unwrap().to_owned(),
                t["at"].as_str().unwrap().to_owned(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("firing".into(), "2025-05-20T10:32:00.000Z".into(), 5),
            ("resolved".into(), "2025-05-20T10:37:00.000Z".into(), 5),
        ]
    );
    assert_eq!(transitions[0]["severity"], "high");
    let key = transitions[0]["key"].as_str().unwrap();
    assert!(
        key.starts_with("ip:") && !key.contains("203.0.113.7"),
        "{key}"
    );
}

/// `--format emf`: the documents log-metrics would write, one batch per
/// file: the dimension policy applied (status class, no request counter),
/// the session gauge with its value after each file, the namespace given.
#[test]
fn emf_output_is_what_log_metrics_writes() {
    let dir = TempDir::new("emf");
    let session = |message: &str| {
        format!(
            r#"{{"timestamp":"2025-05-20T10:30:02.000Z","level":"INFO","logger":"security","message":"{message}","user_id":"u1"}}"#
        )
    };
    let server_error = API_300.replace("\"status_code\":200", "\"status_code\":503");
    let first = dir.file(
        "first.log",
        format!(
            "{API_82}\n{API_24}\n{server_error}\n{}\n{}\n",
            session("Session created"),
            session("Session created")
        )
        .as_bytes(),
    );
    let second = dir.file(
        "second.log",
        format!("{}\n", session("Session ended")).as_bytes(),
    );
    let out = replay(
        &[&first, &second],
        &["--format", "emf", "--namespace", "Shop"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!docs.is_empty());
    for d in &docs {
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Shop");
        assert!(d.get("http_requests_total").is_none(), "{d}");
    }
    let latency: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("api_request_duration_seconds").is_some())
        .collect();
    assert_eq!(latency.len(), 2, "{latency:?}");
    for d in &latency {
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["endpoint", "status_class"]])
        );
    }
    let ok = latency.iter().find(|d| d["status_class"] == "2xx").unwrap();
    let values: Vec<f64> = ok["api_request_duration_seconds"]["Values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 2, "{ok}");
    assert!(
        (values[0] - 0.0824).abs() < 1e-9 && (values[1] - 0.0244).abs() < 1e-9,
        "{values:?}"
    );
    let server = latency.iter().find(|d| d["status_class"] == "5xx").unwrap();
    assert_eq!(
        server["api_request_duration_seconds"]["Counts"],
        serde_json::json!([1])
    );
    let sessions: Vec<f64> = docs
        .iter()
        .filter_map(|d| d.get("active_sessions").and_then(Value::as_f64))
        .collect();
    assert_eq!(sessions, [2.0, 1.0]);
}
