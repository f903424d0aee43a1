//! The alert engine in memory over one stream of inputs in event time: the
//! replay tool's backtest and the benches. Same window code as the
//! functions; quiet episodes resolve as soon as the stream's event time
//! reaches their resolution time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use super::rules::{AlertRules, SignalAccounting};
use super::window::{AlertInput, Transition, TransitionKind, WindowState};

/// A transition of one (rule, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTransition {
    /// Index in [`AlertRules::rules`].
    pub rule: usize,
    pub key: String,
    pub transition: Transition,
}

/// In-memory windows of every (rule, key).
#[derive(Debug)]
pub struct StreamEngine {
    rules: Arc<AlertRules>,
    /// Per rule: window key → state.
    windows: Vec<HashMap<String, WindowState>>,
    /// (resolution time, rule, key) of open episodes; an entry whose
    /// episode moved on is pushed again with its new time when popped.
    due: BinaryHeap<Reverse<(i64, usize, String)>>,
    /// Newest event time seen.
    now_ms: Option<i64>,
    scratch: Vec<Transition>,
    /// What became of every input, per rule.
    pub accounting: SignalAccounting,
}

impl StreamEngine {
    pub fn new(rules: Arc<AlertRules>) -> Self {
        let windows = vec![HashMap::new(); rules.rules().len()];
        StreamEngine {
            rules,
            windows,
            due: BinaryHeap::new(),
            now_ms: None,
            scratch: Vec::new(),
            accounting: SignalAccounting::default(),
        }
    }

    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    /// Windows held (every (rule, key) seen).
    pub fn window_count(&self) -> usize {
        self.windows.iter().map(HashMap::len).sum()
    }

    /// Counts one input. Feed inputs in event-time order for transitions in
    /// event-time order; late inputs are handled as the functions do.
    pub fn push(&mut self, input: &AlertInput<'_>, out: &mut Vec<StreamTransition>) {
        let ts = input.timestamp_ms;
        if self.now_ms.is_none_or(|n| ts > n) {
            self.advance(ts, out);
            self.now_ms = Some(ts);
        }
        let rules = Arc::clone(&self.rules);
        let for_signal = rules.for_signal(input.signal);
        self.accounting.receive(input.signal, for_signal.len());
        for &index in for_signal {
            let Some(rule) = rules.get(index) else {
                continue;
            };
            let (key, routed) = match rule.route(input) {
                Ok(r) => r,
                Err(outcome) => {
                    self.accounting.outcome(&rule.name, outcome, 1);
                    continue;
                }
            };
            let windows = &mut self.windows[index];
            let state = match windows.get_mut(key.as_ref()) {
                Some(s) => s,
                None => windows.entry(key.to_string()).or_default(),
            };
            let observed = state.observe(rule, &key, &routed, &mut self.scratch);
            self.accounting.outcome(&rule.name, observed.outcome(), 1);
            for transition in self.scratch.drain(..) {
                if transition.kind == TransitionKind::Firing {
                    self.due.push(Reverse((
                        transition.episode.resolve_at_ms(rule),
                        index,
                        key.to_string(),
                    )));
                }
                out.push(StreamTransition {
                    rule: index,
                    key: key.to_string(),
                    transition,
                });
            }
        }
    }

    /// Resolves every episode whose resolution time is at most `now_ms`,
    /// oldest first.
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<StreamTransition>) {
        while let Some(Reverse((at, _, _))) = self.due.peek() {
            if *at > now_ms {
                break;
            }
            let Some(Reverse((at, index, key))) = self.due.pop() else {
                break;
            };
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            let Some(state) = self.windows[index].get_mut(&key) else {
                continue;
            };
            let Some(resolve_at) = state.open.as_ref().map(|o| o.resolve_at_ms(rule)) else {
                continue;
            };
            if resolve_at > at {
                // The episode moved on since this entry was pushed: back in
                // the queue at its true time, so resolutions stay in order.
                self.due.push(Reverse((resolve_at, index, key)));
                continue;
            }
            state.resolve_due(rule, now_ms, &mut self.scratch);
            for transition in self.scratch.drain(..) {
                out.push(StreamTransition {
                    rule: index,
                    key: key.clone(),
                    transition,
                });
            }
        }
    }

    /// End of input: resolves what is due by the newest event time seen
    /// (episodes still within their quiet period stay open).
    pub fn finish(&mut self, out: &mut Vec<StreamTransition>) {
        if let Some(now) = self.now_ms {
            self.advance(now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::{AlertRules, InputKeys, SignalOutcome};

    const RULES: &str = r#"
[[rule]]
name = "a"
signal = "s"
group_by = "ip"
threshold = 2
window = 10
resolve_after = 30
severity = "high"
category = "security"
"#;

    fn input<'a>(key: &'a str, id: &'a str, ts_s: i64) -> AlertInput<'a> {
        AlertInput {
            signal: "s",
            keys: InputKeys::One("ip", key),
            event_id: id,
            timestamp_ms: ts_s * 1000,
            sample: "",
            hit: true,
            distinct: 0,
        }
    }

    #[test]
    fn transitions_come_out_in_event_time_order() {
        let rules = Arc::new(AlertRules::from_toml(RULES, "t.toml").unwrap());
        let mut engine = StreamEngine::new(rules);
        let mut out = Vec::new();
        for (key, id, ts) in [
            ("x", "1", 0),
            ("x", "2", 5),
            ("y", "3", 6),
            ("y", "4", 7),
            ("x", "5", 20),
            ("z", "6", 40),
            ("z", "7", 100),
        ] {
            engine.push(&input(key, id, ts), &mut out);
        }
        engine.finish(&mut out);
        let got: Vec<(String, &str, i64)> = out
            .iter()
            .map(|t| {
                (
                    t.key.clone(),
                    t.transition.kind.as_str(),
                    t.transition.at_ms / 1000,
                )
            })
            .collect();
        let want = [
            ("x", "firing", 5),
            ("y", "firing", 7),
            ("y", "resolved", 37),
            ("x", "resolved", 50),
        ];
        assert_eq!(got, want.map(|(k, s, t)| (k.to_owned(), s, t)));
        // Signals without the key a rule groups by do not count for it,
        // and are accounted for.
        let mut other = input("x", "9", 200);
        other.keys = InputKeys::One("user", "x");
        engine.push(&other, &mut out);
        assert_eq!(engine.window_count(), 3);
        let a = &engine.accounting;
        assert_eq!(a.for_rule("a", SignalOutcome::MissingKey), 1);
        assert_eq!(a.for_rule("a", SignalOutcome::Counted), 7);
        assert_eq!(a.received.get("s"), Some(&8));
    }

    /// An episode extended after its queue entry was made must not resolve
    /// before an episode whose resolution is earlier.
    #[test]
    fn resolutions_stay_in_order_when_episodes_are_extended() {
        let rules = Arc::new(AlertRules::from_toml(RULES, "t.toml").unwrap());
        let mut engine = StreamEngine::new(rules);
        let mut out = Vec::new();
        // x fires at 1 (queued to resolve at 31), then is extended to 25
        // (resolves at 55); y fires at 20 and resolves at 50.
        for (key, id, ts) in [
            ("x", "1", 0),
            ("x", "2", 1),
            ("y", "3", 19),
            ("y", "4", 20),
            ("x", "5", 25),
            ("z", "6", 60),
        ] {
            engine.push(&input(key, id, ts), &mut out);
        }
        let got: Vec<(String, i64)> = out
            .iter()
            .filter(|t| t.transition.kind == TransitionKind::Resolved)
            .map(|t| (t.key.clone(), t.transition.at_ms / 1000))
            .collect();
        assert_eq!(got, [("y".to_owned(), 50), ("x".to_owned(), 55)]);
    }
}
