//! The runbooks in `docs/runbooks/` against the alert rules they document
//! (`infra/alerts/default.toml`, as the engine loads it): one runbook per
//! rule, with the rule's facts as they are; none for a rule that is gone;
//! PromQL only on series the bundle's `/metrics` serves; and the link an
//! incident carries leads to the file. No AWS needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use monitoring_adapters::retry::TokioTimer;
use monitoring_core::domain::alerts::{
    AlertEngine, AlertRule, AlertRules, DEFAULT_RUNBOOK_BASE_URL, EngineSettings, Links,
    RUNBOOK_DIR,
};
use monitoring_core::domain::metrics::series::MetricKind;
use monitoring_core::domain::pipeline::pipeline_metrics;
use monitoring_core::domain::rules::{RuleSet, Signal};
use monitoring_core::memory::alerts::{
    MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
};
use regex::Regex;

/// The workspace root (the tests crate is one level down).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runbooks of Prometheus-only rules (`infra/prometheus/alerts.yml`).
const PROMETHEUS_ONLY: [&str; 1] = ["blindspotx_metrics_down"];

fn runbooks_dir() -> PathBuf {
    root().join("docs/runbooks")
}

/// Runbooks of the bundle's own failures (the operations alarms), not of
/// alert rules.
const OPERATIONS_RUNBOOKS: [&str; 2] = ["paging_failures", "redrive"];

fn rules() -> AlertRules {
    AlertRules::default_rules().unwrap()
}

fn runbook(rule: &str) -> String {
    let path = runbooks_dir().join(format!("{rule}.md"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("rule {rule}: no runbook {}: {e}", path.display()))
}

/// The facts table: `| name | value |` rows, first cell → second cell.
fn facts(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            (cells.len() == 2).then(|| (cells[0].to_owned(), cells[1].to_owned()))
        })
        .collect()
}

/// `value` is `expected` or starts with it followed by a space (so
/// "300 s (5 min)" is 300, and "3000 s" is not 300).
fn starts_with_token(value: &str, expected: &str) -> bool {
    value == expected
        || value
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with(' '))
}

fn seconds(ms: i64) -> i64 {
    ms / 1000
}

/// Every fact of `rule`'s table, as the rule file says it.
fn check_facts(rule: &AlertRule, text: &str) -> Vec<String> {
    let facts = facts(text);
    let mut problems = Vec::new();
    let mut expect = |field: &str, ok: &dyn Fn(&str) -> bool, wanted: String| match facts.get(field)
    {
        Some(value) if ok(value) => {}
        Some(value) => problems.push(format!("`{field}` is {value:?}, the rule says {wanted}")),
        None => problems.push(format!("no `{field}` row")),
    };
    let name = format!("`{}`", rule.name);
    expect("rule", &|v| v == name, name.clone());
    let signal = format!("`{}`", rule.signal);
    expect("signal", &|v| v == signal, signal.clone());
    let threshold = match rule.consecutive {
        Some(of) => format!("{} failed probes of the last {of}", rule.threshold),
        None => rule.threshold.to_string(),
    };
    expect(
        "threshold",
        &|v| starts_with_token(v, &threshold),
        threshold.clone(),
    );
    let window = format!("{} s", rule.window_seconds());
    expect("window", &|v| starts_with_token(v, &window), window.clone());
    let resolve = format!("{} s", seconds(rule.resolve_after_ms));
    expect(
        "resolves after",
        &|v| starts_with_token(v, &resolve),
        resolve.clone(),
    );
    let reminders = match rule.repeat_ms {
        Some(ms) => format!("every {} s", seconds(ms)),
        None => "none".to_owned(),
    };
    expect(
        "reminders",
        &|v| starts_with_token(v, &reminders),
        reminders.clone(),
    );
    let severity = rule.severity.as_str();
    expect("severity", &|v| v == severity, severity.to_owned());
    let category = rule.category.as_str();
    expect("category", &|v| v == category, category.to_owned());
    let key = match &rule.group_by {
        Some(g) => format!("`{g}`"),
        None => "none".to_owned(),
    };
    expect("grouping key", &|v| starts_with_token(v, &key), key.clone());
    let inhibit = if rule.inhibit_when_down.is_empty() {
        "none".to_owned()
    } else {
        rule.inhibit_when_down
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    expect("inhibited while down", &|v| v == inhibit, inhibit.clone());
    problems
}

#[test]
fn every_rule_has_a_runbook_with_its_facts() {
    let rules = rules();
    assert!(rules.rules().len() >= 3);
    let mut problems = Vec::new();
    for rule in rules.rules() {
        let text = runbook(&rule.name);
        let mut p = check_facts(rule, &text);
        if !text.starts_with(&format!("# `{}`", rule.name)) {
            p.push("the title does not name the rule".into());
        }
        for section in [
            "## What it means",
            "## Likely causes",
            "## Where to look",
            "## How to resolve",
            "## When to escalate",
            "## How to silence",
        ] {
            if !text.contains(section) {
                p.push(format!("no {section:?} section"));
            }
        }
        if !text.contains("Logs Insights") || !text.contains("/blindspotx/auth") {
            p.push("no Logs Insights query on the auth log group".into());
        }
        let silence = format!(r#"{{"name": "rule", "value": "{}"}}"#, rule.name);
        if !text.contains("/api/silences") || !text.contains(&silence) {
            p.push(format!(
                "no POST /api/silences example with the matcher {silence}"
            ));
        }
        problems.extend(p.into_iter().map(|p| format!("{}: {p}", rule.name)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_runbook_outlives_its_rule_and_the_index_lists_them_all() {
    let names: BTreeSet<String> = rules().rules().iter().map(|r| r.name.to_string()).collect();
    let index = std::fs::read_to_string(runbooks_dir().join("README.md")).unwrap();
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(runbooks_dir()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if file == "README.md"
            || OPERATIONS_RUNBOOKS
                .iter()
                .any(|o| file.strip_suffix(".md") == Some(o))
        {
            continue;
        }
        let stem = file
            .strip_suffix(".md")
            .unwrap_or_else(|| panic!("{file}: only runbooks (.md) belong in docs/runbooks"));
        files.insert(stem.to_owned());
    }
    // Rules of infra/prometheus/alerts.yml with no engine counterpart.
    for name in PROMETHEUS_ONLY {
        assert!(files.remove(name), "{name}.md is missing");
        assert!(
            index.contains(&format!("]({name}.md)")),
            "docs/runbooks/README.md does not link {name}.md"
        );
    }
    let orphans: Vec<_> = files.difference(&names).collect();
    assert!(
        orphans.is_empty(),
        "runbooks for rules not in infra/alerts/default.toml: {orphans:?}"
    );
    let missing: Vec<_> = names.difference(&files).collect();
    assert!(missing.is_empty(), "rules without a runbook: {missing:?}");

    for name in &names {
        assert!(
            index.contains(&format!("]({name}.md)")),
            "docs/runbooks/README.md does not link {name}.md"
        );
    }
}

/// A real incident's `runbook_url`, with the default links, is the
/// runbook's path in the repository.
#[tokio::test]
async fn an_incidents_runbook_link_leads_to_its_runbook() {
    let rules = Arc::new(rules());
    let publisher = RecordingPublisher::default();
    let engine = AlertEngine::new(
        Arc::clone(&rules),
        MemoryAlertStore::default(),
        publisher.clone(),
        StaticSilences::default(),
        StaticComponents::default(),
        EngineSettings {
            links: Links::default(),
            log_silence_after: None,
            ..EngineSettings::default()
        },
        Arc::new(TokioTimer),
    );
    let at = time::macros::datetime!(2026-11-30 08:00 UTC);
    let signals: Vec<Signal> = (0..5)
        .map(|i| Signal {
            name: "auth_failures".into(),
            keys: vec![("ip".into(), "ip:00".into())],
            event_id: format!("ev-{i}"),
            timestamp_ms: at.unix_timestamp() * 1000 + i,
            sample: String::new(),
        })
        .collect();
    engine.ingest(&signals, at).await.unwrap();
    let incident = publisher.incidents().remove(0);
    assert_eq!(incident.rule, "auth_failures");
    // Absolute (notifications are read away from any checkout), and the
    // default base is this repository's runbook folder.
    assert_eq!(
        incident.runbook_url,
        format!("{DEFAULT_RUNBOOK_BASE_URL}/auth_failures.md")
    );
    let file = |url: &str| {
        let name = url
            .strip_prefix(DEFAULT_RUNBOOK_BASE_URL)
            .unwrap_or_else(|| panic!("{url} is not under the default base"));
        root().join(format!("{RUNBOOK_DIR}{name}"))
    };
    assert!(file(&incident.runbook_url).is_file());
    // The same format for every rule.
    let base = Links::default().runbook_base_url;
    for rule in rules.rules() {
        let link = format!("{base}/{}.md", rule.name);
        assert!(file(&link).is_file(), "{link}");
    }
}

/// Metric names in the runbooks' ```promql blocks are series the bundle's
/// `/metrics` serves (the default log rules' metrics and the pipeline's own
/// counters), and the labels they select on are those metrics' labels.
#[test]
fn promql_in_runbooks_names_served_series_and_labels() {
    let log_rules = RuleSet::default_rules().unwrap();
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in log_rules
        .metrics()
        .iter()
        .cloned()
        .chain(pipeline_metrics())
    {
        let labels: BTreeSet<String> = m.labels.iter().cloned().collect();
        if m.kind == MetricKind::Histogram {
            let mut with_le = labels.clone();
            with_le.insert("le".into());
            served.insert(format!("{}_bucket", m.name), with_le);
            served.insert(format!("{}_sum", m.name), labels.clone());
            served.insert(format!("{}_count", m.name), labels);
        } else {
            served.insert(m.name, labels);
        }
    }
    // A metric name with a selector or a range right after it.
    let selector = Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*\[").unwrap();
    let with_labels = Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}").unwrap();
    let matcher = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*""#).unwrap();
    let bare = Regex::new(r"^\s*([a-z_][a-z0-9_]*)\s*$").unwrap();
    let mut problems = Vec::new();
    let mut blocks = 0;
    for rule in rules().rules() {
        let text = runbook(&rule.name);
        for block in text.split("```promql").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            blocks += 1;
            for line in block.lines().filter(|l| !l.trim_start().starts_with('#')) {
                let mut names: Vec<(String, Option<String>)> = Vec::new();
                for c in with_labels.captures_iter(line) {
                    names.push((c[1].to_owned(), Some(c[2].to_owned())));
                }
                for c in selector.captures_iter(line) {
                    names.push((c[1].to_owned(), None));
                }
                if let Some(c) = bare.captures(line) {
                    names.push((c[1].to_owned(), None));
                }
                for (name, selectors) in names {
                    let Some(labels) = served.get(&name) else {
                        problems.push(format!("{}: `{name}` is not served", rule.name));
                        continue;
                    };
                    for m in matcher.captures_iter(selectors.as_deref().unwrap_or_default()) {
                        if !labels.contains(&m[1]) {
                            problems.push(format!(
                                "{}: `{name}` has no label `{}` (it has {labels:?})",
                                rule.name, &m[1]
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        blocks >= rules().rules().len() / 2,
        "{blocks} PromQL blocks"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The operations runbooks exist and are indexed; every runbook
/// template.yaml names (the alarms' descriptions) exists; the `make`
/// targets and `ops` flags a runbook tells the reader to run exist.
#[test]
fn operations_runbooks_exist_and_what_they_name_exists() {
    let index = std::fs::read_to_string(runbooks_dir().join("README.md")).unwrap();
    for name in OPERATIONS_RUNBOOKS {
        assert!(
            runbooks_dir().join(format!("{name}.md")).is_file(),
            "docs/runbooks/{name}.md is missing"
        );
        assert!(
            index.contains(&format!("]({name}.md)")),
            "docs/runbooks/README.md does not link {name}.md"
        );
    }
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let named = Regex::new(r"docs/runbooks/([a-z_]+)\.md").unwrap();
    let mut seen = 0;
    for m in named.captures_iter(&template) {
        seen += 1;
        assert!(
            runbooks_dir().join(format!("{}.md", &m[1])).is_file(),
            "template.yaml names docs/runbooks/{}.md, which does not exist",
            &m[1]
        );
    }
    assert!(seen > 0, "the paging alarms name their runbook");
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let ops = std::fs::read_to_string(root().join("tools/ops/src/main.rs")).unwrap();
    let make = Regex::new(r"make ([a-z-]+)").unwrap();
    let flag = Regex::new(r"ops -- redrive[^`\n]*").unwrap();
    for name in OPERATIONS_RUNBOOKS {
        let text = std::fs::read_to_string(runbooks_dir().join(format!("{name}.md"))).unwrap();
        for m in make.captures_iter(&text) {
            assert!(
                makefile.contains(&format!("\n{}:", &m[1])),
                "{name}.md runs `make {}`, which the Makefile lacks",
                &m[1]
            );
        }
        for line in flag.find_iter(&text) {
            let args = line.as_str().trim_start_matches("ops -- redrive");
            let args = args.split('#').next().unwrap_or_default();
            for f in args.split_whitespace().filter(|w| w.starts_with("--")) {
                assert!(
                    ops.contains(&format!("long(\"{}\")", &f[2..])),
                    "{name}.md passes {f} to ops redrive, which it does not take"
                );
            }
        }
    }
}
