//! The default rules on the drift detector's own words (LOG-CONTRACT.md
//! section 2): BlindspotX's drift service, its Celery task and its scheduler
//! log plain Python text, not the JSON `Drift detected` record. Each case is
//! a line as the detector writes it (logger, level and message), and what
//! the rules must make of it: metric updates and alert signals.

use std::collections::BTreeMap;

use super::engine::{Evaluation, RuleSet};
use crate::domain::logs::parse::{ParseSettings, RecordParser, group_lines};
use crate::domain::logs::record::LogEvent;
use crate::domain::logs::redact::Redactor;
use crate::domain::metrics::aggregate::Update;

const DRIFT: &str = "app.services.drift_service";
const TASKS: &str = "app.tasks.drift_tasks";
const SCHEDULER: &str = "app.core.drift.scheduler";

fn defaults() -> RuleSet {
    RuleSet::default_rules().unwrap()
}

/// Evaluates a log file's text (lines grouped into events as log-metrics
/// and replay group them, so tracebacks stay with their record).
fn run(text: &str) -> Evaluation {
    let rules = defaults();
    let redactor = Redactor::new(b"0123456789abcdef-drift-tests").unwrap();
    // Lines of a file: no delivery time bounds their own.
    let mut parser = RecordParser::new(ParseSettings {
        time_bounds: None,
        ..ParseSettings::default()
    });
    let mut out = Evaluation::default();
    for (i, message) in group_lines(text.lines()).enumerate() {
        let event = LogEvent {
            id: format!("e{i}"),
            timestamp_ms: 0,
            message,
        };
        match parser.parse(&event) {
            Ok(r) => rules.evaluate(&r, &redactor, &mut out),
            other => panic!("not a record: {other:?}"),
        }
    }
    out
}

/// `2025-06-02 07:00:03,201 - logger - LEVEL - message`.
fn text(logger: &str, level: &str, message: &str) -> String {
    format!("2025-06-02 07:00:03,201 - {logger} - {level} - {message}")
}

/// Counter totals per series (`name{labels}`), `log_messages_total` and
/// `dependency_errors_total` left out.
fn counters(ev: &Evaluation) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, update) in ev.keyed_updates() {
        // Every record has a log_messages_total; a driver exception in a
        // drift error is also a database error (dependency_errors_total).
        if ["log_messages_total", "dependency_errors_total"].contains(&key.name()) {
            continue;
        }
        let Update::CounterAdd(v) = update else {
            panic!("{} is not a counter update: {update:?}", key.compact());
        };
        *out.entry(key.compact()).or_default() += v;
    }
    out
}

/// `name key_name=key` per signal, in order; `error_logs` (every ERROR
/// record) and `database_errors` (a driver exception in the message, such
/// as the snapshot errors' `sqlite3.OperationalError`) left out.
fn signals(ev: &Evaluation) -> Vec<String> {
    ev.signals
        .iter()
        .filter(|s| !["error_logs", "database_errors"].contains(&s.name.as_ref()))
        .map(|s| match s.keys.as_slice() {
            [] => format!("{} -=", s.name),
            keys => {
                let keys: Vec<String> = keys.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{} {}", s.name, keys.join(" "))
            }
        })
        .collect()
}

/// One line: its counters and signals, and no update missed.
fn classify(logger: &str, level: &str, message: &str) -> (BTreeMap<String, f64>, Vec<String>) {
    let ev = run(&text(logger, level, message));
    assert_eq!(ev.miss_total(), 0, "{message}: misses {:?}", ev.misses);
    (counters(&ev), signals(&ev))
}

fn series(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn changes_in_a_category_count_n_and_raise_drift_detected_once() {
    for (message, category, n) in [
        (
            "Detected 3 changes in conditional_access configuration",
            "conditional_access",
            3.0,
        ),
        // The service's f-string does not make the noun singular...
        ("Detected 1 changes in user configuration", "user", 1.0),
        // ...other wordings do.
        ("Detected 1 change in role configuration", "role", 1.0),
        (
            "detected 12 CHANGES in Groups configuration",
            "groups",
            12.0,
        ),
        (
            "Found 2 differences in applications configuration",
            "applications",
            2.0,
        ),
        (
            "Detected 4 configuration changes for category roles",
            "roles",
            4.0,
        ),
        // The Celery task's wording.
        ("Generated 5 drift reports for role", "role", 5.0),
        ("Generated 1 drift report for user", "user", 1.0),
    ] {
        let (counters, signals) = classify(DRIFT, "INFO", message);
        assert_eq!(
            counters,
            series(&[
                (&format!("drift_changes_total{{category={category}}}"), n),
                (
                    &format!("drift_comparisons_total{{category={category},result=drift}}"),
                    1.0
                ),
                ("drift_detections_total{severity=unknown,status=success}", n),
            ]),
            "{message}"
        );
        assert_eq!(
            signals,
            [format!("drift_detected category={category}")],
            "{message}"
        );
    }
}

#[test]
fn zero_changes_are_clean_comparisons_without_a_signal() {
    for (message, category) in [
        (
            "Detected 0 changes in conditional_access configuration",
            "conditional_access",
        ),
        ("No changes detected in role configuration", "role"),
        ("No changes detected in user configuration.", "user"),
        ("Generated 0 drift reports for role", "role"),
        ("Found no changes in groups configuration", "groups"),
    ] {
        let (counters, signals) = classify(DRIFT, "INFO", message);
        assert_eq!(
            counters,
            series(&[(
                &format!("drift_comparisons_total{{category={category},result=clean}}"),
                1.0
            )]),
            "{message}"
        );
        assert!(signals.is_empty(), "{message}: {signals:?}");
    }
}

#[test]
fn only_a_cleanly_completed_scan_is_a_heartbeat() {
    let completed = [
        "Drift detection completed. Found 3 changes.",
        "Drift detection completed. Found 0 changes.",
        "Drift detection completed: {'role': {'items_processed': 11, 'drift_reports': 2}, 'user': {'items_processed': 37, 'drift_reports': 0}}",
        "Drift detection completed: {}",
    ];
    for message in completed {
        let (counters, signals) = classify(DRIFT, "INFO", message);
        assert_eq!(
            counters,
            series(&[("drift_scans_total{status=success}", 1.0)]),
            "{message}"
        );
        // The scan total is no drift signal: the per-category lines raise them.
        assert_eq!(signals, ["drift_scan_heartbeat -="], "{message}");
    }

    // The Celery task goes on after a category fails and says so in its results.
    for message in [
        "Drift detection completed: {'role': {'error': 'Server disconnected without sending a response.'}, 'user': {'items_processed': 37, 'drift_reports': 0}}",
        "Drift detection completed with 2 errors",
    ] {
        let (counters, signals) = classify(TASKS, "INFO", message);
        assert_eq!(
            counters,
            series(&[("drift_scans_total{status=partial}", 1.0)]),
            "{message}"
        );
        assert_eq!(signals, ["drift_scan_failures -="], "{message}");
    }

    // A start proves nothing: no heartbeat.
    for (logger, message) in [
        (DRIFT, "Starting drift detection job"),
        (TASKS, "Starting drift detection task"),
    ] {
        let (counters, signals) = classify(logger, "INFO", message);
        assert_eq!(
            counters,
            series(&[("drift_scans_total{status=started}", 1.0)])
        );
        assert!(signals.is_empty(), "{message}: {signals:?}");
    }

    // Nor does a failure.
    for message in [
        "Error during drift detection: (psycopg.errors.UndefinedColumn) column \"batch_id\" of relation \"configurationsnapshot\" does not exist",
        "Error during drift detection: Retry in 300s",
        "Drift detection job failed: Graph API returned 503",
    ] {
        let (counters, signals) = classify(DRIFT, "ERROR", message);
        assert_eq!(
            counters,
            series(&[("drift_scans_total{status=failed}", 1.0)]),
            "{message}"
        );
        assert_eq!(signals, ["drift_scan_failures -="], "{message}");
    }
}

#[test]
fn scheduler_runs_attempts_and_drift_job_failures() {
    let job =
        |status: &str| format!("scheduler_jobs_total{{job_name=drift_detection,status={status}}}");
    for (level, message, status, signal) in [
        (
            "INFO",
            "Job drift_detection completed successfully in 3.19s",
            "success",
            None,
        ),
        (
            "INFO",
            "Job drift_detection succeeded in 3.20s",
            "success",
            None,
        ),
        (
            "WARNING",
            "Job drift_detection failed: Could not connect to graph.microsoft.com",
            "attempt_failed",
            None,
        ),
        (
            "ERROR",
            "Job drift_detection failed after 3 retries: Could not connect to graph.microsoft.com",
            "failed",
            Some("drift_scan_failures -="),
        ),
        (
            "ERROR",
            "Job drift_detection failed after retries: Could not connect to graph.microsoft.com",
            "failed",
            Some("drift_scan_failures -="),
        ),
        (
            "ERROR",
            "Unexpected error in job drift_detection: 'NoneType' object has no attribute 'get'",
            "failed",
            Some("drift_scan_failures -="),
        ),
    ] {
        let (counters, signals) = classify(SCHEDULER, level, message);
        assert_eq!(counters, series(&[(&job(status), 1.0)]), "{message}");
        let want: Vec<&str> = signal.into_iter().collect();
        assert_eq!(signals, want, "{message}");
    }

    // Another job's failure is counted, not a drift scan failure.
    for message in [
        "Job snapshot_cleanup failed after 3 retries: database is locked",
        "Unexpected error in job snapshot_cleanup: database is locked",
    ] {
        let (other, other_signals) = classify(SCHEDULER, "ERROR", message);
        assert_eq!(
            other,
            series(&[(
                "scheduler_jobs_total{job_name=snapshot_cleanup,status=failed}",
                1.0
            )]),
            "{message}"
        );
        assert!(other_signals.is_empty(), "{message}: {other_signals:?}");
    }
    // A quoted name is the same job.
    let (quoted, quoted_signals) = classify(
        SCHEDULER,
        "ERROR",
        "Job 'nightly_drift_scan' failed after 3 retries: timeout",
    );
    assert_eq!(
        quoted,
        series(&[(
            "scheduler_jobs_total{job_name=nightly_drift_scan,status=failed}",
            1.0
        )])
    );
    assert_eq!(quoted_signals, ["drift_scan_failures -="]);

    // The wrapper's logger.exception carries a traceback: still one record.
    let ev = run(&(text(
        SCHEDULER,
        "ERROR",
        "Unexpected error in job drift_detection: division by zero",
    ) + "\nTraceback (most recent call last):\n  File \"/app/app/core/drift/scheduler.py\", line 152, in _job_wrapper\n    success, result, error = await _run_with_retry(job_func, job_name)\nZeroDivisionError: division by zero"));
    assert_eq!(ev.records, 1);
    assert_eq!(counters(&ev), series(&[(&job("failed"), 1.0)]));
    assert_eq!(signals(&ev), ["drift_scan_failures -="]);
}

#[test]
fn a_scan_that_cannot_authenticate_to_graph() {
    for (logger, message) in [
        (DRIFT, "Could not retrieve access token for drift detection"),
        (
            DRIFT,
            "Failed to acquire token through both silent auth and client credentials",
        ),
        (TASKS, "Failed to acquire access token for drift detection"),
        (TASKS, "Failed to acquire access token"),
        (
            TASKS,
            "Error acquiring access token: AADSTS7000215: Invalid client secret provided.",
        ),
        (
            DRIFT,
            "Unable to obtain a Graph access token for drift detection",
        ),
    ] {
        let (counters, signals) = classify(logger, "ERROR", message);
        assert_eq!(
            counters,
            series(&[("drift_scan_errors_total{step=auth}", 1.0)]),
            "{message}"
        );
        // Not a failed login of a user, not a failed scan of its own (the
        // scan's own line, if any, says that).
        assert_eq!(signals, ["drift_scan_auth_failures -="], "{message}");
    }
}

#[test]
fn graph_api_throttling_and_failed_fetches() {
    for (logger, message, kind, endpoint, signal) in [
        (
            DRIFT,
            "Rate limited or server error from Graph API (directoryRoles). Retrying after 2s...",
            "throttled",
            "directoryRoles",
            "graph_api_throttling -=",
        ),
        (
            TASKS,
            "Rate limited or server error. Retrying after 30s...",
            "throttled",
            "unknown",
            "graph_api_throttling -=",
        ),
        (
            DRIFT,
            "Failed to fetch from Graph API (users): {\"error\":{\"code\":\"Authorization_RequestDenied\",\"message\":\"Insufficient privileges to complete the operation.\",\"innerError\":{\"date\":\"2025-05-20T06:24:39\",\"request-id\":\"4144cef7-2502-45e9-9dec-b2f480545bb3\"}}}",
            "fetch_failed",
            "users",
            "drift_scan_failures -=",
        ),
        (
            TASKS,
            "Failed to fetch from Graph API: {\"error\":{\"code\":\"Request_ResourceNotFound\",\"message\":\"Resource 'directoryRoles' does not exist.\"}}",
            "fetch_failed",
            "unknown",
            "drift_scan_failures -=",
        ),
        (
            DRIFT,
            "Failed to fetch from Graph API (users/0f0d697c-b448-448b-b384-407f16f2ad73/memberOf): {}",
            "fetch_failed",
            "users/:id/memberOf",
            "drift_scan_failures -=",
        ),
        (
            DRIFT,
            "Exception fetching Graph data: ReadTimeout('The read operation timed out')",
            "exception",
            "unknown",
            "drift_scan_failures -=",
        ),
    ] {
        let (counters, signals) = classify(logger, "WARNING", message);
        assert_eq!(
            counters,
            series(&[(
                &format!("graph_api_errors_total{{endpoint={endpoint},kind={kind}}}"),
                1.0
            )]),
            "{message}"
        );
        assert_eq!(signals, [signal], "{message}");
    }
}

#[test]
fn failed_scan_steps_are_counted_by_step() {
    for (logger, message, step) in [
        (
            DRIFT,
            "Error saving snapshots: (sqlite3.OperationalError) table configurationsnapshot has no column named batch_id",
            "snapshot_save",
        ),
        (
            TASKS,
            "Error comparing snapshots: 'DriftResult' object has no attribute 'changed'",
            "snapshot_compare",
        ),
        (
            TASKS,
            "Error processing category role: Server disconnected without sending a response.",
            "category",
        ),
        (
            TASKS,
            "Failed to save snapshot: connection reset",
            "snapshot_save",
        ),
    ] {
        let (counters, signals) = classify(logger, "ERROR", message);
        assert_eq!(
            counters,
            series(&[(&format!("drift_scan_errors_total{{step={step}}}"), 1.0)]),
            "{message}"
        );
        // The scan's own failure line (or partial completion) that follows
        // raises drift_scan_failures, once per scan.
        assert!(signals.is_empty(), "{message}: {signals:?}");
    }
    // The SQL echo is part of the record.
    let ev = run(&(text(
        DRIFT,
        "ERROR",
        "Error saving snapshots: (sqlite3.OperationalError) table configurationsnapshot has no column named batch_id",
    ) + "\n[SQL: INSERT INTO configurationsnapshot (id, category, \"key\", value, timestamp, batch_id) VALUES (?, ?, ?, ?, ?, ?)]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)"));
    assert_eq!(
        counters(&ev),
        series(&[("drift_scan_errors_total{step=snapshot_save}", 1.0)])
    );
}

/// Lines near the vocabulary that are something else: the scheduler's own
/// life cycle, the login flow's Graph and token errors, the login rate
/// limiter, the drift API routes.
#[test]
fn near_misses_are_plain_log_lines() {
    for (logger, level, message) in [
        (SCHEDULER, "INFO", "Starting drift detection scheduler"),
        (SCHEDULER, "INFO", "Drift detection scheduler started"),
        (
            SCHEDULER,
            "INFO",
            "Scheduling drift detection job to run every 3600 seconds",
        ),
        (
            SCHEDULER,
            "INFO",
            "Scheduled job drift_detection starting with interval of 3600s",
        ),
        (
            SCHEDULER,
            "INFO",
            "Drift detection job drift_detection scheduled",
        ),
        (SCHEDULER, "INFO", "Retry attempt 1 for job drift_detection"),
        (
            SCHEDULER,
            "INFO",
            "Will retry job drift_detection in 5.73 seconds",
        ),
        (
            SCHEDULER,
            "INFO",
            "Job drift_detection cancelled during sleep",
        ),
        (SCHEDULER, "INFO", "Job drift_detection exiting"),
        (
            DRIFT,
            "INFO",
            "Saved 11 role snapshots with batch ID 543b8214-baf9-43ad-bae3-c32587773fb0",
        ),
        (
            DRIFT,
            "INFO",
            "No previous snapshots available for comparison",
        ),
        (DRIFT, "WARNING", "No cached token found for silent auth"),
        (TASKS, "INFO", "Comparing snapshots for category role"),
        (TASKS, "WARNING", "No data retrieved for category role"),
        (TASKS, "INFO", "No drift reports to alert on"),
        (TASKS, "INFO", "Sent alerts for 2 high-severity reports"),
        (
            "app.api.routes.auth",
            "ERROR",
            "Error acquiring token: invalid_grant - AADSTS54005: OAuth2 Authorization code was already redeemed",
        ),
        (
            "app.api.routes.auth",
            "WARNING",
            "Error fetching user info from Graph API: 403 {\"error\":{\"code\":\"Authorization_RequestDenied\"}}",
        ),
        (
            "app.core.security",
            "WARNING",
            "Rate limit exceeded for IP: 203.0.113.7",
        ),
        (
            "app.core.security",
            "WARNING",
            "Blocked request from rate-limited IP: 203.0.113.7",
        ),
        (
            "app.api.routes.drift_celery",
            "ERROR",
            "Error fetching snapshots: connection refused",
        ),
        (
            "app.api.routes.drift_celery",
            "INFO",
            "Drift report 7 acknowledged by ana@example.com",
        ),
    ] {
        let ev = run(&text(logger, level, message));
        let ours: Vec<String> = counters(&ev)
            .into_keys()
            .filter(|k| {
                ["drift_", "scheduler_", "graph_api_"]
                    .iter()
                    .any(|p| k.starts_with(p))
            })
            .collect();
        assert!(ours.is_empty(), "{message}: {ours:?}");
        let drift_signals: Vec<String> = signals(&ev)
            .into_iter()
            .filter(|s| s.starts_with("drift_") || s.starts_with("graph_api_"))
            .collect();
        assert!(drift_signals.is_empty(), "{message}: {drift_signals:?}");
    }
}

/// The JSON records of LOG-CONTRACT.md section 1 keep their meaning:
/// drift_detections_total{severity,status} as the reference counts it, the
/// signal keyed by the record's category, a completed scan is a heartbeat,
/// a failed one is not.
#[test]
fn the_json_form_still_works() {
    let json = |level: &str, message: &str, extra: &str| {
        format!(
            r#"{{"timestamp":"2025-06-02T07:00:03.201Z","level":"{level}","logger":"drift","message":"{message}"{extra}}}"#
        )
    };
    let ev = run(&[
        json(
            "WARNING",
            "Drift detected",
            r#","severity":"high","status":"new","category":"conditional_access""#,
        ),
        json(
            "WARNING",
            "Drift detected",
            r#","severity":"low","status":"acknowledged""#,
        ),
        json(
            "INFO",
            "Drift scan completed",
            r#","duration_ms":8420.0,"changes":2"#,
        ),
        json("ERROR", "Drift scan failed", r#","duration_ms":12"#),
    ]
    .join("\n"));
    assert_eq!(ev.miss_total(), 0, "{:?}", ev.misses);
    assert_eq!(
        counters(&ev),
        series(&[
            ("drift_detections_total{severity=high,status=new}", 1.0),
            (
                "drift_detections_total{severity=low,status=acknowledged}",
                1.0
            ),
            ("drift_scans_total{status=failed}", 1.0),
            ("drift_scans_total{status=success}", 1.0),
        ])
    );
    assert_eq!(
        signals(&ev),
        [
            "drift_detected category=conditional_access",
            "drift_detected -=",
            "drift_scan_heartbeat -=",
            "drift_scan_failures -=",
        ]
    );
}

/// A day of a detector that starts every hour and never completes: no
/// heartbeat at all, so the drift probe (DRIFT_SOURCE=table) sees the scan
/// go stale instead of fresh.
#[test]
fn a_day_of_failing_scans_has_no_heartbeat() {
    let mut lines = Vec::new();
    for hour in 0..24 {
        let at = |m: u32, s: u32, ms: u32| format!("2025-06-02 {hour:02}:{m:02}:{s:02},{ms:03}");
        lines.push(format!(
            "{} - {DRIFT} - INFO - Starting drift detection job",
            at(0, 0, 5)
        ));
        if hour % 2 == 0 {
            lines.push(format!(
                "{} - {DRIFT} - ERROR - Could not retrieve access token for drift detection",
                at(0, 1, 118)
            ));
        } else {
            lines.push(format!("{} - {DRIFT} - ERROR - Error saving snapshots: (psycopg.errors.UndefinedColumn) column \"batch_id\" does not exist", at(0, 2, 40)));
            lines.push("[SQL: INSERT INTO configurationsnapshot (id, category, \"key\", value) VALUES (%s, %s, %s, %s)]".to_owned());
            lines.push(format!("{} - {DRIFT} - ERROR - Error during drift detection: (psycopg.errors.UndefinedColumn) column \"batch_id\" does not exist", at(0, 2, 41)));
        }
        // detect_drift caught its own error: the scheduler saw a success.
        lines.push(format!(
            "{} - {SCHEDULER} - INFO - Job drift_detection completed successfully in 2.04s",
            at(0, 2, 45)
        ));
        lines.push(format!(
            "{} - {SCHEDULER} - INFO - Job drift_detection succeeded in 2.05s",
            at(0, 2, 46)
        ));
    }
    let ev = run(&lines.join("\n"));
    assert_eq!(ev.records, 24 * 4 + 12);
    let names: Vec<&str> = ev.signals.iter().map(|s| s.name.as_ref()).collect();
    assert!(!names.contains(&"drift_scan_heartbeat"), "{names:?}");
    assert!(!names.contains(&"drift_detected"), "{names:?}");
    let count = |n: &str| names.iter().filter(|x| **x == n).count();
    assert_eq!(count("drift_scan_auth_failures"), 12);
    assert_eq!(count("drift_scan_failures"), 12);
    let c = counters(&ev);
    assert_eq!(c["drift_scans_total{status=started}"], 24.0);
    assert_eq!(c["drift_scans_total{status=failed}"], 12.0);
    assert!(!c.contains_key("drift_scans_total{status=success}"));
    assert_eq!(c["drift_scan_errors_total{step=auth}"], 12.0);
    assert_eq!(c["drift_scan_errors_total{step=snapshot_save}"], 12.0);
    assert_eq!(
        c["scheduler_jobs_total{job_name=drift_detection,status=success}"],
        48.0
    );
}
