//! Backtests on the drift detector's own words: BlindspotX's drift service
//! (`app.services.drift_service`), its Celery task (`app.tasks.drift_tasks`)
//! and its scheduler (`app.core.drift.scheduler`) log plain Python text
//! (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`), never the JSON
//! `Drift detected` record. Each test writes a log file as the detector
//! would, runs the built `replay` binary on it, and reads the counters
//! (`--format json`) and the incident transitions (`--alerts`).
//!
//! The heartbeat the drift probe reads is the `drift_scan_heartbeat`
//! signal, which no default alert rule counts: the tests see it through an
//! alert rule file of their own that fires on the first one.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::replay_support::{TempDir, json_output, replay};

const DRIFT: &str = "app.services.drift_service";
const TASKS: &str = "app.tasks.drift_tasks";
const SCHEDULER: &str = "app.core.drift.scheduler";

/// An alert rule file with one rule that fires on any heartbeat.
const HEARTBEAT_RULES: &str = r#"
[[rule]]
name = "heartbeat_seen"
description = "Any drift scan heartbeat (tests only)."
signal = "drift_scan_heartbeat"
group_by = "none"
threshold = 1
window = 60
severity = "low"
category = "system"
"#;

/// A log file's counters.
fn counters(log: &Path) -> BTreeMap<String, Value> {
    json_output(&replay(&[log], &["--format", "json"]))
}

/// One incident transition of `replay --alerts`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transition {
    rule: String,
    key: String,
    status: String,
    at: String,
    count: u64,
}

impl Transition {
    fn new(rule: &str, key: &str, status: &str, at: &str, count: u64) -> Self {
        Transition {
            rule: rule.to_owned(),
            key: key.to_owned(),
            status: status.to_owned(),
            at: format!("2025-06-02T{at}Z"),
            count,
        }
    }
}

/// The transitions of `replay --alerts` (with `extra` options), in order.
fn transitions(log: &Path, extra: &[&str]) -> Vec<Transition> {
    let mut args = vec!["--alerts"];
    args.extend_from_slice(extra);
    let out = replay(&[log], &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let t: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            let text = |field: &str| {
                t[field]
                    .as_str()
                    .unwrap_or_else(|| panic!("{l}: no {field}"))
                    .to_owned()
            };
            Transition {
                rule: text("rule"),
                key: text("key"),
                status: text("status"),
                at: text("at"),
                count: t["count"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{l}: no count")),
            }
        })
        .collect()
}

/// The transitions of the rules named `rules` only.
fn only(all: &[Transition], rules: &[&str]) -> Vec<Transition> {
    all.iter()
        .filter(|t| rules.contains(&t.rule.as_str()))
        .cloned()
        .collect()
}

/// The heartbeats a log file raises, seen through [`HEARTBEAT_RULES`]: the
/// transitions of a rule firing on the first one.
fn heartbeats(dir: &TempDir, log: &Path) -> Vec<Transition> {
    let rules = dir.file("heartbeat.toml", HEARTBEAT_RULES.as_bytes());
    let rules = rules.to_string_lossy();
    transitions(log, &["--alert-rules", &rules])
}

/// `2025-06-02 HH:MM:SS,mmm - logger - LEVEL - message`.
fn line(hms: (u32, u32, u32), ms: u32, logger: &str, level: &str, message: &str) -> String {
    let (h, m, s) = hms;
    format!("2025-06-02 {h:02}:{m:02}:{s:02},{ms:03} - {logger} - {level} - {message}")
}

/// One scan of the asyncio drift service, scheduled by BlindspotX's
/// scheduler, starting at `hms`: `changes` per category (0: a clean
/// comparison), then the service's and the scheduler's completions.
fn service_scan(out: &mut Vec<String>, (h, m): (u32, u32), changes: &[(&str, u32)]) {
    out.push(line(
        (h, m, 0),
        10,
        DRIFT,
        "INFO",
        "Starting drift detection job",
    ));
    out.push(line(
        (h, m, 0),
        412,
        DRIFT,
        "INFO",
        "No cached token found, falling back to client credentials flow",
    ));
    for (i, (category, _)) in changes.iter().enumerate() {
        out.push(line(
            (h, m, 1),
            100 + 200 * i as u32,
            DRIFT,
            "INFO",
            &format!(
                "Saved 11 {category} snapshots with batch ID 543b8214-baf9-43ad-bae3-c32587773f{h:02}"
            ),
        ));
    }
    let mut total = 0;
    for (i, (category, n)) in changes.iter().enumerate() {
        total += n;
        let message = if *n == 0 {
            format!("No changes detected in {category} configuration")
        } else {
            format!("Detected {n} changes in {category} configuration")
        };
        out.push(line(
            (h, m, 2),
            911 + 50 * i as u32,
            DRIFT,
            "INFO",
            &message,
        ));
    }
    out.push(line(
        (h, m, 3),
        201,
        DRIFT,
        "INFO",
        &format!("Drift detection completed. Found {total} changes."),
    ));
    out.push(line(
        (h, m, 3),
        204,
        SCHEDULER,
        "INFO",
        "Job drift_detection completed successfully in 3.19s",
    ));
    out.push(line(
        (h, m, 3),
        205,
        SCHEDULER,
        "INFO",
        "Job drift_detection succeeded in 3.20s",
    ));
}

/// A scanner on the default 30-minute interval (with the scheduler's
/// jitter): drift in two categories at 07:00, in one again at 07:33, clean
/// scans until 10:15, and drift in a third category at 10:48.
fn scans_with_changes() -> String {
    let mut out = Vec::new();
    service_scan(&mut out, (7, 0), &[("role", 3), ("user", 1)]);
    service_scan(&mut out, (7, 33), &[("role", 2), ("user", 0)]);
    for start in [(8, 5), (8, 38), (9, 10), (9, 41), (10, 15)] {
        service_scan(&mut out, start, &[("role", 0), ("user", 0)]);
    }
    service_scan(&mut out, (10, 48), &[("role", 0), ("groups", 1)]);
    out.join("\n") + "\n"
}

#[test]
fn drift_fires_once_per_episode_and_once_per_category() {
    let dir = TempDir::new("changes");
    let log = dir.file("drift.log", scans_with_changes().as_bytes());

    let all = transitions(&log, &[]);
    assert_eq!(
        only(&all, &["drift_detected", "drift_detected_by_category"]),
        [
            // Across the service: one incident for the whole episode (three
            // signals: role and user at 07:00, role at 07:33).
            Transition::new("drift_detected", "", "firing", "07:00:02.911", 1),
            Transition::new(
                "drift_detected_by_category",
                "role",
                "firing",
                "07:00:02.911",
                1
            ),
            Transition::new(
                "drift_detected_by_category",
                "user",
                "firing",
                "07:00:02.961",
                1
            ),
            Transition::new(
                "drift_detected_by_category",
                "user",
                "resolved",
                "08:00:02.961",
                1
            ),
            // An hour without drift resolves it (the backtest sees that when
            // a later signal passes that time)...
            Transition::new("drift_detected", "", "resolved", "08:33:02.911", 3),
            Transition::new(
                "drift_detected_by_category",
                "role",
                "resolved",
                "08:33:02.911",
                2
            ),
            // ...and later drift is a new episode.
            Transition::new("drift_detected", "", "firing", "10:48:02.961", 1),
            Transition::new(
                "drift_detected_by_category",
                "groups",
                "firing",
                "10:48:02.961",
                1
            ),
        ]
    );
    assert_eq!(all.len(), 8, "nothing else fires: {all:?}");

    let c = counters(&log);
    let get = |k: &str| {
        c.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {k} in {c:?}"))
    };
    assert_eq!(
        get("drift_detections_total{severity=unknown,status=success}"),
        7
    );
    assert_eq!(get("drift_changes_total{category=role}"), 5);
    assert_eq!(get("drift_changes_total{category=user}"), 1);
    assert_eq!(get("drift_changes_total{category=groups}"), 1);
    assert_eq!(
        get("drift_comparisons_total{category=role,result=drift}"),
        2
    );
    assert_eq!(
        get("drift_comparisons_total{category=role,result=clean}"),
        6
    );
    assert_eq!(
        get("drift_comparisons_total{category=user,result=clean}"),
        6
    );
    assert_eq!(get("drift_scans_total{status=started}"), 8);
    assert_eq!(get("drift_scans_total{status=success}"), 8);
    // BlindspotX's scheduler logs each run's outcome twice.
    assert_eq!(
        get("scheduler_jobs_total{job_name=drift_detection,status=success}"),
        16
    );

    // Every completed scan is a heartbeat: the test rule (60 s window)
    // fires once per scan, the first at the first completion.
    let beats = heartbeats(&dir, &log);
    assert_eq!(
        beats[0],
        Transition::new("heartbeat_seen", "", "firing", "07:00:03.201", 1)
    );
    assert_eq!(beats.iter().filter(|t| t.status == "firing").count(), 8);
}

#[test]
fn zero_change_scans_raise_no_drift_signal() {
    let dir = TempDir::new("clean");
    let mut out = Vec::new();
    for (h, m) in [(6, 0), (6, 31), (7, 4), (7, 36)] {
        service_scan(&mut out, (h, m), &[("role", 0), ("user", 0)]);
    }
    // The Celery task's words for clean comparisons.
    for (h, m) in [(8, 0), (8, 32)] {
        out.push(line(
            (h, m, 0),
            5,
            TASKS,
            "INFO",
            "Starting drift detection task",
        ));
        out.push(line(
            (h, m, 1),
            310,
            TASKS,
            "INFO",
            "Comparing snapshots for category role",
        ));
        out.push(line(
            (h, m, 1),
            522,
            TASKS,
            "INFO",
            "Generated 0 drift reports for role",
        ));
        out.push(line(
            (h, m, 1),
            940,
            TASKS,
            "INFO",
            "Generated 0 drift reports for user",
        ));
        out.push(line(
            (h, m, 2),
            77,
            TASKS,
            "INFO",
            "Drift detection completed: {'role': {'items_processed': 11, 'drift_reports': 0}, 'user': {'items_processed': 37, 'drift_reports': 0}}",
        ));
    }
    // The service's own words for a zero count.
    out.push(line(
        (9, 0, 2),
        911,
        DRIFT,
        "INFO",
        "Detected 0 changes in groups configuration",
    ));
    let log = dir.file("clean.log", (out.join("\n") + "\n").as_bytes());

    let all = transitions(&log, &[]);
    assert!(all.is_empty(), "clean scans fire nothing: {all:?}");
    let c = counters(&log);
    let get = |k: &str| {
        c.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {k} in {c:?}"))
    };
    assert_eq!(
        get("drift_comparisons_total{category=role,result=clean}"),
        6
    );
    assert_eq!(
        get("drift_comparisons_total{category=user,result=clean}"),
        6
    );
    assert_eq!(
        get("drift_comparisons_total{category=groups,result=clean}"),
        1
    );
    assert_eq!(get("drift_scans_total{status=success}"), 6);
    for key in c.keys() {
        assert!(
            !key.starts_with("drift_detections_total") && !key.starts_with("drift_changes_total"),
            "{key}"
        );
    }
    // Clean scans completed: each is a heartbeat.
    let beats = heartbeats(&dir, &log);
    assert_eq!(beats.iter().filter(|t| t.status == "firing").count(), 6);
}

/// A day of hourly scans that never complete, in three ways BlindspotX
/// fails: the drift service cannot get a token (it logs it and returns, so
/// its scheduler reports success), the scheduled job raises and the
/// scheduler retries it three times (with a traceback from the job
/// wrapper), and the Celery task cannot get a token and retries every 5
/// minutes.
fn failing_day() -> String {
    let err =
        "Could not connect to graph.microsoft.com: [Errno -3] Temporary failure in name resolution";
    let mut out = Vec::new();
    for h in 0..8 {
        out.push(line(
            (h, 0, 0),
            5,
            DRIFT,
            "INFO",
            "Starting drift detection job",
        ));
        out.push(line(
            (h, 0, 0),
            431,
            DRIFT,
            "WARNING",
            "No cached token found for silent auth",
        ));
        out.push(line(
            (h, 0, 1),
            118,
            DRIFT,
            "ERROR",
            "Could not retrieve access token for drift detection",
        ));
        out.push(line(
            (h, 0, 1),
            120,
            SCHEDULER,
            "INFO",
            "Job drift_detection completed successfully in 1.12s",
        ));
        out.push(line(
            (h, 0, 1),
            121,
            SCHEDULER,
            "INFO",
            "Job drift_detection succeeded in 1.12s",
        ));
    }
    for h in 8..16 {
        let mut s = 0;
        for attempt in 0..4 {
            if attempt > 0 {
                out.push(line(
                    (h, 0, s),
                    700,
                    SCHEDULER,
                    "INFO",
                    &format!("Retry attempt {attempt} for job drift_detection"),
                ));
            }
            out.push(line(
                (h, 0, s),
                900,
                SCHEDULER,
                "WARNING",
                &format!("Job drift_detection failed: {err}"),
            ));
            if attempt < 3 {
                let delay = 5 << attempt;
                out.push(line(
                    (h, 0, s),
                    901,
                    SCHEDULER,
                    "INFO",
                    &format!("Will retry job drift_detection in {delay}.42 seconds"),
                ));
                s += delay + 1;
            }
        }
        out.push(line(
            (h, 0, s),
            902,
            SCHEDULER,
            "ERROR",
            &format!("Job drift_detection failed after 3 retries: {err}"),
        ));
        out.push(line(
            (h, 0, s),
            903,
            SCHEDULER,
            "ERROR",
            &format!("Job drift_detection failed after retries: {err}"),
        ));
    }
    for h in 16..24 {
        for attempt in 0..4u32 {
            let m = attempt * 5;
            out.push(line(
                (h, m, 0),
                5,
                TASKS,
                "INFO",
                "Starting drift detection task",
            ));
            out.push(line(
                (h, m, 0),
                640,
                TASKS,
                "INFO",
                "No cached token found, using client credentials flow",
            ));
            out.push(line(
                (h, m, 1),
                2,
                TASKS,
                "ERROR",
                "Failed to acquire access token for drift detection",
            ));
            out.push(line(
                (h, m, 1),
                4,
                TASKS,
                "ERROR",
                "Error during drift detection: Retry in 300s",
            ));
            if attempt < 3 {
                out.push(line(
                    (h, m, 1),
                    5,
                    TASKS,
                    "INFO",
                    &format!("Retrying drift detection (attempt {})", attempt + 1),
                ));
            }
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn a_day_of_failing_scans_raises_scan_health_alerts_and_no_heartbeat() {
    let dir = TempDir::new("failing");
    let log = dir.file("failing.log", failing_day().as_bytes());

    let all = transitions(&log, &[]);
    assert_eq!(
        only(&all, &["drift_scan_auth_failures"]),
        [
            // The second failed token acquisition within two hours...
            Transition::new("drift_scan_auth_failures", "", "firing", "01:00:01.118", 2),
            // ...two hours after the last of the service's eight...
            Transition::new(
                "drift_scan_auth_failures",
                "",
                "resolved",
                "09:00:01.118",
                8
            ),
            // ...and again at the Celery task's first retry.
            Transition::new("drift_scan_auth_failures", "", "firing", "16:05:01.002", 2),
        ]
    );
    // The scheduled job gives up at 08:00 and 09:00 (each logged by the
    // retry loop and by the job wrapper): the third failure fires, and the
    // Celery task's failed scans keep the incident open to the end.
    assert_eq!(
        only(&all, &["drift_scan_failures"]),
        [Transition::new(
            "drift_scan_failures",
            "",
            "firing",
            "09:00:38.902",
            3
        )]
    );
    let drift: Vec<&Transition> = all
        .iter()
        .filter(|t| t.rule.starts_with("drift_detected"))
        .collect();
    assert!(drift.is_empty(), "{drift:?}");

    // No scan completed: not one heartbeat, whatever the scheduler said.
    let beats = heartbeats(&dir, &log);
    assert!(beats.is_empty(), "{beats:?}");

    let c = counters(&log);
    let get = |k: &str| {
        c.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {k} in {c:?}"))
    };
    assert_eq!(get("drift_scans_total{status=started}"), 8 + 32);
    assert_eq!(get("drift_scans_total{status=failed}"), 32);
    assert!(!c.contains_key("drift_scans_total{status=success}"));
    assert_eq!(get("drift_scan_errors_total{step=auth}"), 8 + 32);
    assert_eq!(
        get("scheduler_jobs_total{job_name=drift_detection,status=attempt_failed}"),
        8 * 4
    );
    assert_eq!(
        get("scheduler_jobs_total{job_name=drift_detection,status=failed}"),
        8 * 2
    );
    assert_eq!(
        get("scheduler_jobs_total{job_name=drift_detection,status=success}"),
        8 * 2
    );
    // The token failures are the scanner's, not failed logins.
    assert!(
        !c.keys().any(|k| k.starts_with("auth_requests_total")),
        "{c:?}"
    );
}

#[test]
fn graph_keeps_throttling() {
    let dir = TempDir::new("throttled");
    let mut out = Vec::new();
    // Two scans 35 minutes apart; Graph answers 429 to most requests.
    for (h, m, throttled) in [(10, 0, 3), (10, 35, 2)] {
        out.push(line(
            (h, m, 0),
            5,
            DRIFT,
            "INFO",
            "Starting drift detection job",
        ));
        for (i, endpoint) in ["directoryRoles", "users"].iter().enumerate() {
            let attempts = if i == 0 { throttled } else { 1 };
            for a in 0..attempts {
                out.push(line(
                    (h, m, 2 + 2 * a),
                    300,
                    DRIFT,
                    "WARNING",
                    &format!(
                        "Rate limited or server error from Graph API ({endpoint}). Retrying after 2s..."
                    ),
                ));
            }
        }
        // All retries of directoryRoles were throttled at 10:00: the fetch
        // gives up and the scan compares nothing for roles.
        out.push(line(
            (h, m, 9),
            12,
            DRIFT,
            "INFO",
            "No changes detected in user configuration",
        ));
        out.push(line(
            (h, m, 9),
            40,
            DRIFT,
            "INFO",
            "Drift detection completed. Found 0 changes.",
        ));
    }
    let log = dir.file("throttled.log", (out.join("\n") + "\n").as_bytes());

    // Five throttled requests within the hour fire (the log ends before
    // the quiet hour that would resolve it).
    assert_eq!(
        transitions(&log, &[]),
        [Transition::new(
            "graph_api_throttling",
            "",
            "firing",
            "10:35:02.300",
            5
        )]
    );
    let c = counters(&log);
    assert_eq!(
        c["graph_api_errors_total{endpoint=directoryRoles,kind=throttled}"],
        5
    );
    assert_eq!(
        c["graph_api_errors_total{endpoint=users,kind=throttled}"],
        2
    );
}

#[test]
fn the_json_form_still_works() {
    let dir = TempDir::new("json");
    let records = [
        r#"{"timestamp":"2025-06-02T11:52:34.000Z","level":"WARNING","logger":"drift","message":"Drift detected","severity":"high","status":"new","category":"conditional_access"}"#,
        r#"{"timestamp":"2025-06-02T11:52:34.500Z","level":"WARNING","logger":"drift","message":"Drift detected","severity":"medium","status":"new","category":"role"}"#,
        r#"{"timestamp":"2025-06-02T11:52:35.000Z","level":"INFO","logger":"drift","message":"Drift scan completed","duration_ms":8420.0,"changes":2}"#,
        r#"{"timestamp":"2025-06-02T13:10:00.000Z","level":"ERROR","logger":"drift","message":"Drift scan failed","duration_ms":12}"#,
    ];
    let log = dir.file("json.log", (records.join("\n") + "\n").as_bytes());

    let all = transitions(&log, &[]);
    assert_eq!(
        only(&all, &["drift_detected", "drift_detected_by_category"]),
        [
            Transition::new("drift_detected", "", "firing", "11:52:34.000", 1),
            Transition::new(
                "drift_detected_by_category",
                "conditional_access",
                "firing",
                "11:52:34.000",
                1
            ),
            Transition::new(
                "drift_detected_by_category",
                "role",
                "firing",
                "11:52:34.500",
                1
            ),
            Transition::new(
                "drift_detected_by_category",
                "conditional_access",
                "resolved",
                "12:52:34.000",
                1
            ),
            Transition::new("drift_detected", "", "resolved", "12:52:34.500", 2),
            Transition::new(
                "drift_detected_by_category",
                "role",
                "resolved",
                "12:52:34.500",
                1
            ),
        ]
    );
    let c = counters(&log);
    assert_eq!(c["drift_detections_total{severity=high,status=new}"], 1);
    assert_eq!(c["drift_detections_total{severity=medium,status=new}"], 1);
    assert_eq!(c["drift_scans_total{status=success}"], 1);
    assert_eq!(c["drift_scans_total{status=failed}"], 1);
    // The completed scan is a heartbeat; the failed one is not a second.
    assert_eq!(
        heartbeats(&dir, &log),
        [Transition::new(
            "heartbeat_seen",
            "",
            "firing",
            "11:52:35.000",
            1
        )]
    );
}
