//! The default rules reproduce the contract exactly: a corpus from
//! `shared/bench/gen_logs.py`, evaluated with the embedded default rules,
//! gives the counter (and histogram `_count`) series that
//! `shared/bench/reference_counts.py` computes from LOG-CONTRACT.md.
//!
//! Needs `python3` and the shared bench directory next to the project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use monitoring_core::domain::logs::parse::{ParseSettings, RecordParser, group_lines};
use monitoring_core::domain::logs::record::LogEvent;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::Update;
use monitoring_core::domain::rules::{Evaluation, RuleSet};

/// Records per corpus, and the seeds (not the generator's default 42).
const RECORDS: &str = "20000";
const SEEDS: [&str; 2] = ["7", "2025"];

/// Counter metrics the default rules emit that `reference_counts.py` does
/// not model (LOG-CONTRACT.md lists them, the reference script does not
/// count them): `Permission denied` records, drift scans (JSON scan records,
/// and the text rows `Starting drift detection job` / `Error during drift
/// detection`), and `Configuration changed` audit records.
const NOT_IN_REFERENCE: [&str; 4] = [
    "permission_denials_total",
    "drift_scans_total",
    "config_changes_total",
    "dependency_errors_total",
];

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench");
    assert!(
        dir.join("gen_logs.py").is_file() && dir.join("reference_counts.py").is_file(),
        "{} has no gen_logs.py / reference_counts.py: this test needs the shared \
         bench directory next to the project (../shared/bench)",
        dir.display()
    );
    dir
}

fn python(script: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "python3 {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs the default rules over the file the way replay does: lines grouped
/// into events, parsed, evaluated; counters summed, histogram observations
/// counted as `name_count{...}`.
fn rule_counts(corpus: &str) -> (BTreeMap<String, u64>, Evaluation, u64) {
    let rules = RuleSet::default_rules().unwrap();
    let redactor = Redactor::new(b"reference-test-key-0123456789").unwrap();
    // Lines of a file: no delivery time bounds their own.
    let mut parser = RecordParser::new(ParseSettings {
        time_bounds: None,
        ..ParseSettings::default()
    });
    let mut eval = Evaluation::default();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    let mut rejected = 0;
    for (i, message) in group_lines(corpus.lines()).enumerate() {
        let event = LogEvent {
            id: format!("{i}"),
            timestamp_ms: 0,
            message,
        };
        match parser.parse(&event) {
            Ok(record) => rules.evaluate(&record, &redactor, &mut eval),
            Err(_) => rejected += 1,
        }
    }
    for (key, update) in eval.keyed_updates() {
        let (name, add) = match update {
            Update::CounterAdd(v) => (key.name().to_owned(), v),
            Update::Observe(_) => (format!("{}_count", key.name()), 1.0),
            Update::GaugeAdd(_) | Update::GaugeSet(_) => continue,
        };
        let compact = key.compact();
        let labels = &compact[key.name().len()..];
        *counts.entry(format!("{name}{labels}")).or_default() += add;
    }
    let counts = counts
        .into_iter()
        .map(|(k, v)| {
            assert!(v.fract() == 0.0 && v >= 0.0, "{k} = {v}");
            (k, v as u64)
        })
        .collect();
    (counts, eval, rejected)
}

#[test]
fn default_rules_reproduce_reference_counts() {
    for seed in SEEDS {
        check_seed(seed);
    }
}

fn check_seed(seed: &str) {
    let bench = bench_dir();
    let corpus_path = std::env::temp_dir().join(format!(
        "default_rules_reference_{}_{seed}.log",
        std::process::id()
    ));
    let corpus_arg = corpus_path.to_string_lossy().into_owned();
    python(&bench.join("gen_logs.py"), &[RECORDS, &corpus_arg, seed]);
    let reference_json = python(&bench.join("reference_counts.py"), &[&corpus_arg]);
    let corpus = std::fs::read_to_string(&corpus_path).unwrap();
    let _ = std::fs::remove_file(&corpus_path);
    let reference: BTreeMap<String, u64> = serde_json::from_slice(&reference_json).unwrap();

    let (ours, eval, rejected) = rule_counts(&corpus);

    assert_eq!(
        rejected, 0,
        "seed {seed}: every grouped event parses as a record"
    );
    assert_eq!(eval.records, RECORDS.parse::<u64>().unwrap());
    assert_eq!(
        eval.miss_total(),
        0,
        "seed {seed}: misses {:?}",
        eval.misses
    );

    let mismatched: Vec<String> = reference
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: reference {v}, rules {:?}", ours.get(k)))
        .collect();
    assert!(
        mismatched.is_empty(),
        "seed {seed}: series differ:\n{}",
        mismatched.join("\n")
    );

    let extra: Vec<&String> = ours
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .filter(|k| {
            !NOT_IN_REFERENCE
                .iter()
                .any(|m| k.starts_with(&format!("{m}{{")))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "seed {seed}: series the reference lacks: {extra:?}"
    );

    // The corpus exercises every reference metric and the unmodelled ones.
    for metric in [
        "log_messages_total{",
        "auth_requests_total{",
        "auth_request_duration_seconds_count{",
        "token_operations_total{",
        "user_operations_total{",
        "api_request_duration_seconds_count{",
        "drift_detections_total{",
        "permission_denials_total{",
        "drift_scans_total{",
    ] {
        assert!(
            ours.keys().any(|k| k.starts_with(metric)),
            "no {metric} series"
        );
    }
    assert!(
        reference.len() > 50,
        "reference has {} series",
        reference.len()
    );
}
