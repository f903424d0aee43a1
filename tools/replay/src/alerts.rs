//! `replay --alerts`: backtests the alert rules on historic logs. The
//! signals the log rules produce run, in event-time order, through the same
//! window engine the functions use (in memory), and every incident
//! transition becomes one JSON line:
//!
//! `{"rule":..,"key":..,"status":"firing"|"resolved","at":"<RFC 3339>","count":..,"severity":..}`
//!
//! with `"subject":..` last for a sequence rule's incident (the account
//! whose successful login closed the sequence).
//!
//! Firing is at the event time of the signal that reached the threshold;
//! resolution at the last signal plus the rule's quiet period, emitted once
//! the stream's event time reaches it. At the end of the input only the
//! episodes whose resolution time is at most the last event time seen are
//! resolved: the others were still firing when the logs end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use monitoring_adapters::rules_loader::{AlertRulesLoadError, load_file};
use monitoring_core::domain::alerts::crosscheck::{self, SignalCatalog};
use monitoring_core::domain::alerts::incident::ms_to_rfc3339;
use monitoring_core::domain::alerts::{
    AlertInput, AlertRuleError, AlertRules, SignalAccounting, SignalOutcome, StreamEngine,
    StreamTransition,
};
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::rules::{RuleSet, Signal};
use serde_json::Value;

use crate::{ReplayError, Summary, run_files};

/// Alert rules that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Load(#[from] AlertRulesLoadError),
    #[error(transparent)]
    Rules(#[from] AlertRuleError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// The embedded `infra/alerts/default.toml`, or the file at `path`.
pub fn load_alert_rules(path: Option<&Path>) -> Result<AlertRules, AlertsError> {
    match path {
        None => Ok(AlertRules::default_rules()?),
        Some(path) => Ok(load_file::<AlertRules>(path)?),
    }
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLine {
    pub rule: String,
    pub key: String,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Event time, milliseconds.
    pub at_ms: i64,
    pub count: u32,
    pub severity: &'static str,
    /// A sequence rule's account (see `Incident::subject`).
    pub subject: Option<String>,
}

impl AlertLine {
    /// The JSON object, keys in the documented order.
    pub fn to_json(&self) -> String {
        let subject = self
            .subject
            .as_ref()
            .map(|s| format!(",\"subject\":{}", Value::String(s.clone())))
            .unwrap_or_default();
        format!(
            "{{\"rule\":{},\"key\":{},\"status\":\"{}\",\"at\":\"{}\",\"count\":{},\"severity\":\"{}\"{subject}}}",
            Value::String(self.rule.clone()),
            Value::String(self.key.clone()),
            self.status,
            ms_to_rfc3339(self.at_ms),
            self.count,
            self.severity
        )
    }
}

/// Collects the signals of a replay, then runs the engine over them.
/// Signals no alert rule counts are not kept, nor any sample text (the
/// output has none), so a month of logs fits in memory.
#[derive(Debug)]
pub struct Backtest {
    rules: Arc<AlertRules>,
    signals: Vec<Signal>,
    /// Signals no rule counts, accounted for as they are left out.
    unrouted: SignalAccounting,
}

impl Backtest {
    pub fn new(rules: AlertRules) -> Self {
        Backtest {
            rules: Arc::new(rules),
            signals: Vec::new(),
            unrouted: SignalAccounting::default(),
        }
    }

    /// Adds one batch of signals (any order; they are sorted at the end).
    pub fn add(&mut self, signals: impl IntoIterator<Item = Signal>) {
        for mut s in signals {
            if self.rules.for_signal(&s.name).is_empty() {
                self.unrouted.receive(&s.name, 0);
                continue;
            }
            s.sample = String::new();
            self.signals.push(s);
        }
    }

    pub fn len(&self) -> usize {
        self.signals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }

    /// The transitions, in event-time order.
    pub fn run(self) -> Vec<AlertLine> {
        self.run_accounted().0
    }

    /// [`Self::run`], with what became of every signal.
    pub fn run_accounted(mut self) -> (Vec<AlertLine>, SignalAccounting) {
        // Stable: signals of one event time keep their log order.
        self.signals.sort_by_key(|s| s.timestamp_ms);
        let mut engine = StreamEngine::new(Arc::clone(&self.rules));
        let mut out: Vec<StreamTransition> = Vec::new();
        for s in &self.signals {
            engine.push(&AlertInput::from_signal(s), &mut out);
        }
        engine.finish(&mut out);
        let mut accounting = std::mem::take(&mut engine.accounting);
        accounting.add(&self.unrouted);
        let lines = out
            .into_iter()
            .filter_map(|t| {
                let rule = self.rules.get(t.rule)?;
                Some(AlertLine {
                    rule: rule.name.to_string(),
                    key: t.key,
                    status: t.transition.kind.as_str(),
                    at_ms: t.transition.at_ms,
                    count: t.transition.count,
                    severity: rule.severity.as_str(),
                    subject: t.transition.episode.subject,
                })
            })
            .collect();
        (lines, accounting)
    }
}

/// One JSON object per line, each line ending with `\n`.
pub fn render_alerts(lines: &[AlertLine]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_json());
        out.push('\n');
    }
    out
}

/// Backtests `signals` (any order) with `rules`: the transitions in
/// event-time order.
pub fn backtest(signals: impl IntoIterator<Item = Signal>, rules: AlertRules) -> Vec<AlertLine> {
    let mut b = Backtest::new(rules);
    b.add(signals);
    b.run()
}

/// What `replay --alerts` prints, and how much it read.
#[derive(Debug)]
pub struct BacktestReport {
    pub lines: Vec<AlertLine>,
    pub summary: Summary,
    /// What became of every signal, per rule.
    pub accounting: SignalAccounting,
}

impl BacktestReport {
    /// The stderr report: the replay's, then signals by name and what each
    /// rule counted and dropped, then incidents by rule.
    pub fn render(&self) -> String {
        let mut out = self.summary.render(0);
        // The series line means nothing here.
        if let Some(at) = out.rfind("\nreplay: 0 series") {
            out.truncate(at);
        }
        let a = &self.accounting;
        let mut rules: Vec<&str> = a.outcomes.keys().map(|(r, _)| r.as_ref()).collect();
        rules.dedup();
        for rule in rules {
            let counted = a.for_rule(rule, SignalOutcome::Counted);
            let dropped: Vec<String> = SignalOutcome::ALL
                .iter()
                .filter(|o| **o != SignalOutcome::Counted)
                .filter_map(|o| {
                    let n = a.for_rule(rule, *o);
                    (n > 0).then(|| format!("{} {n}", o.as_str()))
                })
                .collect();
            out.push_str(&format!("\nreplay: rule {rule}: {counted} counted"));
            if !dropped.is_empty() {
                out.push_str(&format!(", dropped {}", dropped.join(", ")));
            }
        }
        if !a.unrouted.is_empty() {
            let unrouted: Vec<String> =
                a.unrouted.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push_str(&format!(
                "\nreplay: signals no alert rule counts: {}",
                unrouted.join(", ")
            ));
        }
        let mut incidents: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for line in &self.lines {
            let e = incidents.entry(line.rule.as_str()).or_default();
            match line.status {
                "firing" => e.0 += 1,
                "resolved" => e.1 += 1,
                _ => {}
            }
        }
        let by_rule: Vec<String> = incidents
            .iter()
            .map(|(r, (f, res))| format!("{r} {f} fired/{res} resolved"))
            .collect();
        out.push_str(&format!(
            "\nreplay: {} incidents{}",
            incidents.values().map(|v| v.0).sum::<u64>(),
            if by_rule.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_rule.join(", "))
            }
        ));
        out
    }
}

/// `replay --alerts FILE...`: reads the files as `replay` does, runs the
/// log rules, then the alert rules over every signal in event-time order.
pub fn backtest_files(
    files: &[PathBuf],
    rules: &RuleSet,
    redactor: &Redactor,
    alert_rules: AlertRules,
    text_utc_offset_ms: i64,
) -> Result<BacktestReport, AlertsError> {
    crosscheck::check(&alert_rules, &SignalCatalog::new(rules))?;
    let mut backtest = Backtest::new(alert_rules);
    let summary = run_files(
        files,
        rules,
        redactor,
        text_utc_offset_ms,
        true,
        false,
        |_, _, report| {
            backtest.add(report.signals);
            Ok(())
        },
    )?;
    let (lines, accounting) = backtest.run_accounted();
    Ok(BacktestReport {
        lines,
        summary,
        accounting,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use monitoring_core::domain::alerts::window::window_key;

    use super::*;

    const T0: i64 = 1_764_489_600_000; // 2025-11-30T08:00:00Z

    fn signal(name: &str, key_name: Option<&str>, key: &str, id: &str, at_s: i64) -> Signal {
        signal_with(name, key_name.map(|n| (n, key)).as_slice(), id, at_s)
    }

    fn signal_with(name: &str, keys: &[(&str, &str)], id: &str, at_s: i64) -> Signal {
        Signal {
            name: name.into(),
            keys: keys
                .iter()
                .map(|(n, v)| (Arc::from(*n), (*v).to_owned()))
                .collect(),
            event_id: id.to_owned(),
            timestamp_ms: T0 + at_s * 1000,
            sample: "redacted".into(),
        }
    }

    #[test]
    fn a_hand_built_sequence_gives_the_expected_lines() {
        let mut b = Backtest::new(AlertRules::default_rules().unwrap());
        let mut signals = Vec::new();
        // Five failures from one address within 300 s (out of order in the
        // input, duplicated once): auth_failures fires at the fifth.
        for (i, at) in [(0, 10), (1, 0), (2, 100), (3, 200), (4, 290), (4, 290)] {
            signals.push(signal(
                "auth_failures",
                Some("ip"),
                "ip:aa",
                &format!("e{i}"),
                at,
            ));
        }
        // Four from another: nothing.
        for i in 0..4 {
            signals.push(signal(
                "auth_failures",
                Some("ip"),
                "ip:bb",
                &format!("f{i}"),
                i,
            ));
        }
        // One drift: fires at once (threshold 1), resolves an hour later.
        signals.push(signal("drift_detected", Some("category"), "iam", "d1", 400));
        // A late event an hour and a half on: resolves both on the way.
        signals.push(signal("config_changes", Some("user"), "u1", "c1", 5400));
        b.add(signals);
        b.add([signal("no_rule_counts_this", None, "", "x", 0)]);
        assert_eq!(b.len(), 12);
        let text = render_alerts(&b.run());
        // The service-wide rules fire on the fifth signal of any key, the
        // per-key ones on the fifth of one key.
        let expected = [
            r#"{"rule":"auth_failures","key":"","status":"firing","at":"2025-11-30T08:00:03.000Z","count":5,"severity":"high"}"#,
            r#"{"rule":"auth_failures_by_ip","key":"ip:aa","status":"firing","at":"2025-11-30T08:04:50.000Z","count":5,"severity":"high"}"#,
            r#"{"rule":"drift_detected","key":"","status":"firing","at":"2025-11-30T08:06:40.000Z","count":1,"severity":"high"}"#,
            r#"{"rule":"drift_detected_by_category","key":"iam","status":"firing","at":"2025-11-30T08:06:40.000Z","count":1,"severity":"high"}"#,
            r#"{"rule":"auth_failures","key":"","status":"resolved","at":"2025-11-30T08:09:50.000Z","count":9,"severity":"high"}"#,
            r#"{"rule":"auth_failures_by_ip","key":"ip:aa","status":"resolved","at":"2025-11-30T08:09:50.000Z","count":5,"severity":"high"}"#,
            r#"{"rule":"drift_detected","key":"","status":"resolved","at":"2025-11-30T09:06:40.000Z","count":1,"severity":"high"}"#,
            r#"{"rule":"drift_detected_by_category","key":"iam","status":"resolved","at":"2025-11-30T09:06:40.000Z","count":1,"severity":"high"}"#,
            r#"{"rule":"config_changes","key":"u1","status":"firing","at":"2025-11-30T09:30:00.000Z","count":1,"severity":"low"}"#,
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }

    /// The brute-force reference: per (rule, key), in event-time order,
    /// distinct event ids counted in the closed interval [t − window, t];
    /// fire when the count reaches the threshold and no episode is open;
    /// resolve at last + quiet period once event time reaches it.
    fn reference(
        rules: &AlertRules,
        signals: &[Signal],
    ) -> BTreeSet<(i64, String, String, &'static str, u32)> {
        let mut sorted: Vec<&Signal> = signals.iter().collect();
        sorted.sort_by_key(|s| s.timestamp_ms);
        let end = sorted.last().map_or(i64::MIN, |s| s.timestamp_ms);
        let mut per_window: BTreeMap<(usize, String), Vec<&Signal>> = BTreeMap::new();
        for s in &sorted {
            for &r in rules.for_signal(&s.name) {
                let rule = rules.get(r).unwrap();
                // These streams hold no successful login: a sequence rule
                // never fires on them (its own tests are in the engine).
                if rule.then.is_some() {
                    continue;
                }
                let key = match &rule.group_by {
                    None => Some(String::new()),
                    Some(g) => s.key(g).map(|k| window_key(k).into_owned()),
                };
                let counted = rule.distinct.as_ref().is_none_or(|d| s.key(d).is_some());
                if let (Some(key), true) = (key, counted) {
                    per_window.entry((r, key)).or_default().push(s);
                }
            }
        }
        let mut out = BTreeSet::new();
        for ((r, key), list) in per_window {
            let rule = rules.get(r).unwrap();
            let name = rule.name.to_string();
            // Event id → (time, the value a distinct rule counts).
            let mut seen: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
            let mut open: Option<(i64, u32)> = None; // (last event, count)
            for s in list {
                let t = s.timestamp_ms;
                if let Some((last, count)) = open
                    && t >= last + rule.resolve_after_ms
                {
                    out.insert((
                        last + rule.resolve_after_ms,
                        name.clone(),
                        key.clone(),
                        "resolved",
                        count,
                    ));
                    open = None;
                }
                let value = rule.distinct.as_ref().and_then(|d| s.key(d)).unwrap_or("");
                if seen.insert(&s.event_id, (t, value)).is_some() {
                    continue;
                }
                match &mut open {
                    Some((last, count)) => {
                        *last = (*last).max(t);
                        *count += 1;
                    }
                    None => {
                        let n = seen
                            .values()
                            .filter(|(x, _)| *x >= t - rule.window_ms && *x <= t)
                            .map(|(_, v)| *v)
                            .collect::<Vec<_>>();
                        let n = if rule.distinct.is_some() {
                            n.iter().collect::<BTreeSet<_>>().len() as u32
                        } else {
                            n.len() as u32
                        };
                        if n >= rule.threshold {
                            out.insert((t, name.clone(), key.clone(), "firing", n));
                            open = Some((t, n));
                        }
                    }
                }
            }
            if let Some((last, count)) = open
                && last + rule.resolve_after_ms <= end
            {
                out.insert((
                    last + rule.resolve_after_ms,
                    name.clone(),
                    key.clone(),
                    "resolved",
                    count,
                ));
            }
        }
        out
    }

    #[test]
    fn backtests_match_the_brute_force_reference() {
        let rules = AlertRules::default_rules().unwrap();
        // A small LCG: many reproducible random streams without a dependency.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut transitions = 0;
        for _ in 0..200 {
            let mut signals = Vec::new();
            for i in 0..(50 + next(250)) {
                let at = next(7200) as i64;
                let ip = format!("ip:{}", next(3));
                let user = format!("u{}", next(2));
                let id = if next(10) == 0 {
                    format!("dup{}", next(5))
                } else {
                    format!("e{i}")
                };
                let at = if id.starts_with("dup") {
                    id.len() as i64 * 10
                } else {
                    at
                };
                match next(4) {
                    0 => signals.push(signal_with(
                        "auth_failures",
                        &[("ip", &ip), ("user", &user)],
                        &id,
                        at,
                    )),
                    // Text failures name neither.
                    1 => signals.push(signal("auth_failures", None, "", &id, at)),
                    2 => signals.push(signal("api_errors", Some("endpoint"), "/api/x", &id, at)),
                    _ => signals.push(signal("error_logs", Some("logger"), "app", &id, at)),
                }
            }
            let expected = reference(&rules, &signals);
            let mut b = Backtest::new(rules.clone());
            b.add(signals);
            let lines = b.run();
            assert!(
                lines.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
                "not in event-time order"
            );
            let got: BTreeSet<_> = lines
                .iter()
                .map(|l| (l.at_ms, l.rule.clone(), l.key.clone(), l.status, l.count))
                .collect();
            assert_eq!(got.len(), lines.len());
            assert_eq!(got, expected);
            transitions += lines.len();
        }
        assert!(transitions > 200, "the streams should fire: {transitions}");
    }

    /// From log lines on disk to alert lines, through the log rules.
    #[test]
    fn log_files_are_backtested_through_the_log_rules() {
        let path = std::env::temp_dir().join(format!("replay-alerts-{}.log", std::process::id()));
        let mut text = String::new();
        for i in 0..6 {
            text.push_str(&format!(
                "{{\"timestamp\":\"2025-05-20T10:30:0{i}.000Z\",\"level\":\"WARNING\",\"logger\":\"security\",\"message\":\"Authentication attempt\",\"user_id\":\"u{i}\",\"ip_address\":\"203.0.113.9\",\"success\":false,\"method\":\"password\",\"endpoint\":\"/api/auth/login\",\"duration_ms\":40}}\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        let rules = crate::load_rules(None).unwrap();
        let redactor = crate::redactor(None).unwrap();
        let report = backtest_files(
            std::slice::from_ref(&path),
            &rules,
            &redactor,
            AlertRules::default_rules().unwrap(),
            0,
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((report.summary.events, report.summary.signals), (6, 6));
        // The service-wide rule, and the per-address one.
        assert_eq!(report.lines.len(), 2);
        assert_eq!(
            report
                .accounting
                .for_rule("auth_failures", SignalOutcome::Counted),
            6
        );
        let line = report.lines[1].to_json();
        assert!(
            line.starts_with(r#"{"rule":"auth_failures_by_ip","key":"ip:"#),
            "{line}"
        );
        assert!(
            line.ends_with(
                r#""status":"firing","at":"2025-05-20T10:30:04.000Z","count":5,"severity":"high"}"#
            ),
            "{line}"
        );
        assert!(
            !line.contains("203.0.113.9"),
            "the address is pseudonymized"
        );
    }
}
