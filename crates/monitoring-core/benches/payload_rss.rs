//! Peak memory of one invocation's work on a 1 MB subscription payload:
//! the event JSON parsed, `awslogs.data` decoded (base64 + gzip + envelope),
//! the events run through the default rules with signal samples, and the
//! EMF documents rendered. Run with `cargo bench -p monitoring-core --bench payload_rss`.
//!
//! The payload is written to a file first and measured in a fresh child
//! process, so building it does not count: the figure is the child's peak
//! resident set (`VmHWM`), next to its resident set before the payload was
//! read (rules compiled, as after a cold start).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;

use common::{events, payload};
use monitoring_core::domain::logs::decode::decode_awslogs_data;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::metrics::emf;
use monitoring_core::domain::pipeline::process_events;
use monitoring_core::domain::rules::RuleSet;

const CHILD_ENV: &str = "PAYLOAD_RSS_FILE";
/// CloudWatch Logs delivers at most 1 MiB of event data per subscription
/// payload.
const TARGET_EVENT_BYTES: usize = 1 << 20;

/// `VmRSS` / `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn child(path: &str) {
    let rules = RuleSet::default_rules().unwrap_or_else(|e| panic!("{e}"));
    let redactor = Redactor::new(b"bench-redaction-key-0123").unwrap_or_else(|e| panic!("{e}"));
    let before = status_kib("VmRSS:");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    drop(text);
    let data = event["awslogs"]["data"].as_str().unwrap_or_default();
    let batch = decode_awslogs_data(data, 32 << 20).unwrap_or_else(|e| panic!("{e}"));
    let mut guard = CardinalityGuard::default();
    let report = process_events(
        &batch.events,
        &rules,
        &redactor,
        &mut guard,
        Default::default(),
    );
    let documents = emf::render(&report.metrics, &HashMap::new(), "BlindspotX/Auth", 0);
    let emf_bytes: usize = documents.iter().map(String::len).sum();
    let peak = status_kib("VmHWM:");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {} {} {} {}",
        batch.events.len(),
        report.signals.len(),
        emf_bytes,
        before,
        peak
    );
}

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    // Enough events to carry 1 MiB of messages.
    let mut n = 1000;
    let batch = loop {
        let batch = events(n);
        let bytes: usize = batch.iter().map(|e| e.message.len()).sum();
        if bytes >= TARGET_EVENT_BYTES {
            break batch;
        }
        n = n * TARGET_EVENT_BYTES / bytes.max(1) + 1;
    };
    let message_bytes: usize = batch.iter().map(|e| e.message.len()).sum();
    let event = serde_json::json!({ "awslogs": { "data": payload(&batch) } }).to_string();
    let path = std::env::temp_dir().join(format!("payload-rss-{}.json", std::process::id()));
    std::fs::write(&path, &event).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(exe)
        .env(CHILD_ENV, &path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let [events, signals, emf_bytes, before, peak] = f[..] else {
        panic!("child printed {line:?}");
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "payload_rss: {events} events, {:.2} MiB of messages, event JSON {:.2} MiB, {signals} signals, {:.1} KiB of EMF\n\
         payload_rss: resident before the payload {:.1} MiB, peak {:.1} MiB",
        message_bytes as f64 / (1 << 20) as f64,
        event.len() as f64 / (1 << 20) as f64,
        emf_bytes as f64 / 1024.0,
        mib(before),
        mib(peak)
    );
}
