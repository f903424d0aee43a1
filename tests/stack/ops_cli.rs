//! The `ops` binary as an operator runs it, against the local stack
//! (`make test` starts it; the environment comes from `scripts/stack.sh env`).
//!
//! A small `ops load` must finish, exit 0, print its report as JSON on
//! stdout (logs go to stderr) and see every page it caused. It once hung
//! for good: `main` held the stdout lock across the run while the handlers'
//! tracing, on the runtime's worker threads, waited for it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the run takes a few seconds on the local stack. Only a hang
/// gets this far.
const HANG: Duration = Duration::from_secs(180);

#[test]
fn a_small_load_run_finishes_and_reports_every_page() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ops-cli"))
        .args(["load", "--senders", "2", "--batches", "2", "--events", "20"])
        .args(["--page-every", "1"])
        // Deliveries the test does not read: no Alertmanager, no Teams.
        .env("ALERTMANAGER_URL", "")
        .env("TEAMS_WEBHOOK_URL", "")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ops starts");
    // Read while it runs: a full pipe would stall it like a hang.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).map(|_| text)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("ops can be waited for") {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("ops load did not finish within {HANG:?}: hung");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap().unwrap();
    let stderr = stderr.join().unwrap().unwrap();
    assert!(status.success(), "ops load failed: {status}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not the report ({e}):\n{stdout}"));
    assert_eq!(report["batches"], 4);
    assert_eq!(report["pages_expected"], 4);
    assert_eq!(report["pages_seen"], report["pages_expected"]);
    assert!(report["time_to_page_ms_p99"].as_f64().is_some(), "{report}");
    assert!(
        stderr.contains("incident transition"),
        "the handlers' logs go to stderr:\n{stderr}"
    );
}
