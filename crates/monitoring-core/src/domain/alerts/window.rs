//! Exact sliding windows over event time, per (rule, key): the pure state
//! machine behind every alert. The same code runs in memory (replay,
//! benches) and on state loaded from DynamoDB (the functions).
//!
//! A rule fires when at least `threshold` distinct signals fall within a
//! closed interval of `window` (last − first ≤ window). The state keeps the
//! distinct signals (event time, event-id hash) of the last two windows
//! before the newest event time seen: a late signal is accepted when it is
//! at most one window older than that newest time (older ones are counted as
//! `late` and dropped), and every interval containing an accepted signal
//! then lies inside what is kept, so the count is exact.
//!
//! Bound: at most [`MAX_ENTRIES`] signals are kept (the newest). Counting is
//! exact while no two windows hold more than that; beyond it the oldest
//! signals are forgotten, which cannot hide a firing of an in-order stream
//! (thresholds are at most [`MAX_ENTRIES`], validated at load), but a
//! redelivered or late signal older than everything kept is then treated as
//! late.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use super::input::{AlertInput, InputKeys};
use super::keys::incident_id;
pub use super::keys::{KEY_MAX_BYTES, cap_bytes, event_hash, window_key};
use super::rules::{AlertRule, SignalOutcome};

/// Most signals kept per window (see the module documentation).
pub const MAX_ENTRIES: usize = 500;
/// Most closing signals a sequence rule keeps per window (the newest): a
/// shared address (an office behind NAT) logs in all day, and each kept
/// closing holds its subject.
pub const MAX_CLOSINGS: usize = 50;
/// Redacted sample lines an incident carries.
pub const MAX_SAMPLES: usize = 3;
/// Longest sample line kept, in bytes (cut at a character boundary).
pub const SAMPLE_MAX_BYTES: usize = 1024;

/// One counted signal: event time (ms), event-id hash, hit, and the hash
/// of the value a distinct-count rule counts (0 for other rules). Stored
/// as a 3-element array when the last is 0, so windows written before
/// distinct counts existed read unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry(pub i64, pub u64, pub bool, pub u64);

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let len = if self.3 == 0 { 3 } else { 4 };
        let mut t = serializer.serialize_tuple(len)?;
        t.serialize_element(&self.0)?;
        t.serialize_element(&self.1)?;
        t.serialize_element(&self.2)?;
        if self.3 != 0 {
            t.serialize_element(&self.3)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Four(i64, u64, bool, u64),
            Three(i64, u64, bool),
        }
        Ok(match Repr::deserialize(deserializer)? {
            Repr::Four(a, b, c, d) => Entry(a, b, c, d),
            Repr::Three(a, b, c) => Entry(a, b, c, 0),
        })
    }
}

/// One closing signal of a sequence rule: event time (ms), event-id hash,
/// and the account it names (its `user` key), the incident's subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Closing {
    #[serde(rename = "t")]
    pub ts: i64,
    #[serde(rename = "h")]
    pub hash: u64,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The key of a closing signal that names the account: the incident's
/// subject, whom a responder may act on.
pub const SUBJECT_KEY: &str = "user";

/// What kind of incident transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Firing,
    Reminder,
    Resolved,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Firing => "firing",
            TransitionKind::Reminder => "reminder",
            TransitionKind::Resolved => "resolved",
        }
    }
}

/// Why an episode's transitions are recorded but not published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// Components down when it fired (inhibition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibited_by: Vec<String>,
    /// The silence that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// For people: why nothing was sent.
    pub reason: String,
}

/// One firing period of a (rule, key): from firing to resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The incident id (see [`incident_id`]).
    pub id: String,
    /// 1 for the first episode of the window, then 2, ...
    pub number: u32,
    /// The event that reached the threshold.
    pub opened_by: String,
    /// Event time at which the threshold was reached.
    pub fired_at_ms: i64,
    pub first_event_ms: i64,
    pub last_event_ms: i64,
    /// Signals counted: those of the firing interval, then every new one.
    pub count: u32,
    pub reminders: u32,
    /// When the last notification (firing or reminder) was due.
    pub last_notice_ms: i64,
    pub samples: Vec<String>,
    /// Why the last firing or reminder was not published, if it was not
    /// (decided again at each of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
    /// Whether a firing or reminder of the episode was published: its
    /// resolution is published then, whatever the last decision was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub published_any: bool,
    /// Sequence rules: the account the closing signal named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Episode {
    pub fn resolve_at_ms(&self, rule: &AlertRule) -> i64 {
        self.last_event_ms.saturating_add(rule.resolve_after_ms)
    }

    pub fn next_reminder_ms(&self, rule: &AlertRule) -> Option<i64> {
        rule.repeat_ms
            .map(|r| self.last_notice_ms.saturating_add(r))
    }
}

/// A change of an episode's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub kind: TransitionKind,
    /// Event time for firing and resolution (deterministic: concurrent
    /// invocations compute the same), the evaluator's clock for reminders.
    pub at_ms: i64,
    pub count: u32,
    /// The episode as of this transition.
    pub episode: Episode,
}

impl Transition {
    /// Unique per transition: the outbox key and the publish dedup id.
    pub fn id(&self) -> String {
        match self.kind {
            TransitionKind::Reminder => {
                format!("{}:reminder:{}", self.episode.id, self.episode.reminders)
            }
            k => format!("{}:{}", self.episode.id, k.as_str()),
        }
    }
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Counted,
    /// Same event id and time as a signal already counted.
    Duplicate,
    /// Older than the window before the newest event time: dropped.
    Late,
    /// A miss for a rule that only counts hits: it only moved time.
    Ignored,
}

impl Observed {
    /// The accounting outcome.
    pub fn outcome(self) -> SignalOutcome {
        match self {
            Observed::Counted => SignalOutcome::Counted,
            Observed::Duplicate => SignalOutcome::Duplicate,
            Observed::Late => SignalOutcome::Late,
            Observed::Ignored => SignalOutcome::Ignored,
        }
    }
}

/// The state of one (rule, key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowState {
    /// Counted signals, sorted by (time, hash).
    #[serde(rename = "e", default)]
    pub entries: VecDeque<Entry>,
    /// Newest event time counted.
    #[serde(default)]
    pub max_ts: Option<i64>,
    /// Episodes opened so far.
    #[serde(default)]
    pub episodes: u32,
    #[serde(default)]
    pub open: Option<Episode>,
    /// The newest redacted sample lines.
    #[serde(default)]
    pub samples: VecDeque<String>,
    /// Inputs dropped as late (not persisted as a change on their own).
    #[serde(default)]
    pub late: u64,
    /// Duplicate inputs (not persisted as a change on their own).
    #[serde(default)]
    pub duplicates: u64,
    /// Sequence rules: the closing signals kept, sorted by (time, hash);
    /// `entries` holds the signals counted before them.
    #[serde(rename = "c", default, skip_serializing_if = "VecDeque::is_empty")]
    pub closings: VecDeque<Closing>,
    /// Sequence rules: event time of the closing that fired the last
    /// episode. Closings at or before it never fire again, so a late or
    /// redelivered signal cannot reopen an episode on spent evidence.
    #[serde(rename = "ct", default, skip_serializing_if = "Option::is_none")]
    pub closed_through: Option<i64>,
}

impl WindowState {
    /// Counts one input in event time; transitions go to `out`.
    pub fn observe(
        &mut self,
        rule: &AlertRule,
        key: &str,
        input: &AlertInput<'_>,
        out: &mut Vec<Transition>,
    ) -> Observed {
        let ts = input.timestamp_ms;
        // Event time moved on: a quiet episode ends before this input counts.
        self.resolve_due(rule, ts, out);
        if !input.hit && rule.consecutive.is_none() {
            return Observed::Ignored;
        }
        let horizon = self
            .max_ts
            .map_or(i64::MIN, |m| m.saturating_sub(rule.window_ms));
        if ts < horizon {
            self.late += 1;
            return Observed::Late;
        }
        if rule.then.is_some() {
            return self.observe_sequence(rule, key, input, out);
        }
        let entry = Entry(ts, event_hash(input.event_id), input.hit, input.distinct);
        let cap = self.cap(rule);
        if let Err(refused) = self.insert_entry(entry, cap) {
            return refused;
        }
        let max = self.max_ts.map_or(ts, |m| m.max(ts));
        self.max_ts = Some(max);
        let keep_from = max.saturating_sub(rule.window_ms.saturating_mul(2));
        while self.entries.front().is_some_and(|e| e.0 < keep_from) || self.entries.len() > cap {
            self.entries.pop_front();
        }
        if !input.hit {
            return Observed::Counted;
        }
        self.keep_sample(input.sample);
        if self.extend_open(ts) {
            return Observed::Counted;
        }
        if let Some(found) = self.qualifying(rule, ts, max) {
            self.fire(rule, key, input.event_id, found, out);
        }
        Observed::Counted
    }

    /// [`Self::observe`] for a sequence rule (`rule.then`): failures are
    /// kept in `entries`, closing signals in `closings`, and the rule fires
    /// on the earliest closing whose window (the `window` before it, its own
    /// time included) holds `threshold` failures. Only closings whose
    /// window contains the new input are examined: an input completes a
    /// sequence, or nothing.
    fn observe_sequence(
        &mut self,
        rule: &AlertRule,
        key: &str,
        input: &AlertInput<'_>,
        out: &mut Vec<Transition>,
    ) -> Observed {
        let ts = input.timestamp_ms;
        let hash = event_hash(input.event_id);
        let closes = rule.closes(input);
        if closes {
            let pos = self
                .closings
                .partition_point(|c| (c.ts, c.hash) < (ts, hash));
            if self
                .closings
                .get(pos)
                .is_some_and(|c| c.ts == ts && c.hash == hash)
            {
                self.duplicates += 1;
                return Observed::Duplicate;
            }
            if pos == 0 && self.closings.len() >= MAX_CLOSINGS {
                self.late += 1;
                return Observed::Late;
            }
            let subject = input
                .keys
                .get(SUBJECT_KEY)
                .map(|u| cap_bytes(u, KEY_MAX_BYTES).into_owned());
            self.closings.insert(pos, Closing { ts, hash, subject });
        } else {
            if let Err(refused) = self.insert_entry(Entry(ts, hash, true, 0), MAX_ENTRIES) {
                return refused;
            }
        }
        let max = self.max_ts.map_or(ts, |m| m.max(ts));
        self.max_ts = Some(max);
        let keep_from = max.saturating_sub(rule.window_ms.saturating_mul(2));
        while self.entries.front().is_some_and(|e| e.0 < keep_from)
            || self.entries.len() > MAX_ENTRIES
        {
            self.entries.pop_front();
        }
        while self.closings.front().is_some_and(|c| c.ts < keep_from)
            || self.closings.len() > MAX_CLOSINGS
        {
            self.closings.pop_front();
        }
        self.keep_sample(input.sample);
        if self.extend_open(ts) {
            return Observed::Counted;
        }
        // Closings whose window holds the input: itself, or for a failure
        // those at most one window after it.
        let (from, to) = if closes {
            (ts, ts)
        } else {
            (ts, ts.saturating_add(rule.window_ms))
        };
        let through = self.closed_through.unwrap_or(i64::MIN);
        let found = self
            .closings
            .iter()
            .filter(|c| c.ts >= from && c.ts <= to && c.ts > through)
            .find_map(|c| {
                let lo = self
                    .entries
                    .partition_point(|e| e.0 < c.ts.saturating_sub(rule.window_ms));
                let hi = self.entries.partition_point(|e| e.0 <= c.ts);
                (hi - lo >= rule.threshold as usize).then(|| {
                    (
                        Found {
                            count: (hi - lo) as u32,
                            first_ms: self.entries[lo].0,
                            reached_ms: c.ts,
                            last_ms: c.ts,
                        },
                        c.subject.clone(),
                    )
                })
            });
        if let Some((found, subject)) = found {
            self.closed_through = Some(found.reached_ms);
            self.fire(rule, key, input.event_id, found, out);
            if let Some(open) = &mut self.open {
                open.subject = subject.clone();
            }
            if let Some(t) = out.last_mut() {
                t.episode.subject = subject;
            }
        }
        Observed::Counted
    }

    /// Wall-clock work of the evaluator: resolution after the quiet period,
    /// reminders while firing.
    pub fn tick(&mut self, rule: &AlertRule, now_ms: i64, out: &mut Vec<Transition>) {
        self.resolve_due(rule, now_ms, out);
        let Some(open) = &mut self.open else { return };
        if open.next_reminder_ms(rule).is_some_and(|due| now_ms >= due) {
            open.reminders += 1;
            open.last_notice_ms = now_ms;
            out.push(Transition {
                kind: TransitionKind::Reminder,
                at_ms: now_ms,
                count: open.count,
                episode: open.clone(),
            });
        }
    }

    /// Resolves the open episode when `now_ms` reached its quiet-period end.
    pub fn resolve_due(&mut self, rule: &AlertRule, now_ms: i64, out: &mut Vec<Transition>) {
        let due = self
            .open
            .as_ref()
            .is_some_and(|o| now_ms >= o.resolve_at_ms(rule));
        if !due {
            return;
        }
        if let Some(episode) = self.open.take() {
            out.push(Transition {
                kind: TransitionKind::Resolved,
                at_ms: episode.resolve_at_ms(rule),
                count: episode.count,
                episode,
            });
        }
    }

    /// Inserts `entry` in (time, event) order, or says why not: the same
    /// event again (a redelivery), or older than everything a full window
    /// of `cap` entries keeps.
    fn insert_entry(&mut self, entry: Entry, cap: usize) -> Result<(), Observed> {
        let pos = self
            .entries
            .partition_point(|e| (e.0, e.1) < (entry.0, entry.1));
        if self
            .entries
            .get(pos)
            .is_some_and(|e| e.0 == entry.0 && e.1 == entry.1)
        {
            self.duplicates += 1;
            return Err(Observed::Duplicate);
        }
        if pos == 0 && self.entries.len() >= cap {
            self.late += 1;
            return Err(Observed::Late);
        }
        self.entries.insert(pos, entry);
        Ok(())
    }

    fn cap(&self, rule: &AlertRule) -> usize {
        rule.consecutive.map_or(MAX_ENTRIES, |n| n as usize)
    }

    /// The interval containing the new hit at `ts` that reaches the
    /// threshold earliest, if any.
    fn qualifying(&self, rule: &AlertRule, ts: i64, max: i64) -> Option<Found> {
        let threshold = rule.threshold as usize;
        let w = rule.window_ms;
        if let Some(n) = rule.consecutive {
            let skip = self.entries.len().saturating_sub(n as usize);
            let last: Vec<&Entry> = self.entries.iter().skip(skip).filter(|e| e.2).collect();
            let (first, end) = (last.first()?, last.last()?);
            return (last.len() >= threshold && ts >= first.0).then_some(Found {
                count: last.len() as u32,
                first_ms: first.0,
                reached_ms: end.0,
                last_ms: end.0,
            });
        }
        let lo = self.entries.partition_point(|e| e.0 < ts.saturating_sub(w));
        if ts == max {
            // In order (the common case): the one interval ending now.
            let (count, _) = self.reach(rule, lo, self.entries.len());
            return (count >= threshold).then(|| Found {
                count: count as u32,
                first_ms: self.entries[lo].0,
                reached_ms: ts,
                last_ms: ts,
            });
        }
        // Late: every interval [l, l + w] with a left end l in [ts - w, ts].
        let mut best: Option<Found> = None;
        let mut i = lo;
        while i < self.entries.len() && self.entries[i].0 <= ts {
            let l = self.entries[i].0;
            let hi = self.entries.partition_point(|e| e.0 <= l.saturating_add(w));
            let (count, reached_at) = self.reach(rule, i, hi);
            if let Some(at) = reached_at.filter(|_| count >= threshold) {
                let reached = self.entries[at].0.max(ts);
                if best.as_ref().is_none_or(|b| reached < b.reached_ms) {
                    best = Some(Found {
                        count: count as u32,
                        first_ms: l,
                        reached_ms: reached,
                        last_ms: self.entries[hi - 1].0,
                    });
                }
            }
            i += 1;
        }
        best
    }

    /// What the entries `from..to` count for `rule`: every entry, or for a
    /// distinct-count rule the distinct values; and the index of the entry
    /// at which the count reached the threshold, if it did.
    fn reach(&self, rule: &AlertRule, from: usize, to: usize) -> (usize, Option<usize>) {
        let threshold = rule.threshold as usize;
        if rule.distinct.is_none() {
            let count = to - from;
            return (count, (count >= threshold).then(|| from + threshold - 1));
        }
        let mut seen = std::collections::HashSet::new();
        let mut reached = None;
        for (i, e) in self.entries.range(from..to).enumerate() {
            if seen.insert(e.3) && seen.len() == threshold {
                reached = Some(from + i);
            }
        }
        (seen.len(), reached)
    }

    /// Keeps the last `MAX_SAMPLES` sample lines (an empty one is none).
    fn keep_sample(&mut self, sample: &str) {
        if sample.is_empty() {
            return;
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples
            .push_back(truncate(sample, SAMPLE_MAX_BYTES).to_owned());
    }

    /// Counts a hit at `ts` into the open episode; `false` when none is open.
    fn extend_open(&mut self, ts: i64) -> bool {
        let Some(open) = &mut self.open else {
            return false;
        };
        open.count = open.count.saturating_add(1);
        open.first_event_ms = open.first_event_ms.min(ts);
        open.last_event_ms = open.last_event_ms.max(ts);
        true
    }

    fn fire(
        &mut self,
        rule: &AlertRule,
        key: &str,
        event_id: &str,
        found: Found,
        out: &mut Vec<Transition>,
    ) {
        self.episodes += 1;
        let episode = Episode {
            id: incident_id(&rule.name, key, self.episodes, event_id),
            number: self.episodes,
            opened_by: event_id.to_owned(),
            fired_at_ms: found.reached_ms,
            first_event_ms: found.first_ms,
            last_event_ms: found.last_ms,
            count: found.count,
            reminders: 0,
            last_notice_ms: found.reached_ms,
            samples: self.samples.iter().cloned().collect(),
            suppression: None,
            published_any: false,
            subject: None,
        };
        out.push(Transition {
            kind: TransitionKind::Firing,
            at_ms: found.reached_ms,
            count: found.count,
            episode: episode.clone(),
        });
        self.open = Some(episode);
    }

    /// The state without its counters: what must be persisted.
    pub fn same_content(&self, other: &WindowState) -> bool {
        self.entries == other.entries
            && self.max_ts == other.max_ts
            && self.episodes == other.episodes
            && self.open == other.open
            && self.samples == other.samples
            && self.closings == other.closings
            && self.closed_through == other.closed_through
    }
}

struct Found {
    count: u32,
    first_ms: i64,
    reached_ms: i64,
    last_ms: i64,
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::alerts::config::{Category, Severity};

    pub(crate) fn rule(threshold: u32, window_s: i64, resolve_s: i64) -> AlertRule {
        AlertRule {
            name: "r".into(),
            description: String::new(),
            signal: "s".into(),
            threshold,
            window_ms: window_s * 1000,
            severity: Severity::High,
            category: Category::Security,
            group_by: None,
            distinct: None,
            resolve_after_ms: resolve_s * 1000,
            repeat_ms: None,
            consecutive: None,
            then: None,
            inhibit_when_down: Vec::new(),
        }
    }

    fn input(id: &str, ts_s: i64) -> AlertInput<'_> {
        AlertInput {
            signal: "s",
            keys: InputKeys::None,
            distinct: 0,
            event_id: id,
            timestamp_ms: ts_s * 1000,
            sample: "line",
            hit: true,
        }
    }

    fn feed(state: &mut WindowState, r: &AlertRule, events: &[(&str, i64)]) -> Vec<Transition> {
        let mut out = Vec::new();
        for (id, ts) in events {
            state.observe(r, "k", &input(id, *ts), &mut out);
        }
        out
    }

    #[test]
    fn fires_once_at_the_threshold_and_resolves_after_the_quiet_period() {
        let r = rule(3, 60, 120);
        let mut s = WindowState::default();
        let out = feed(&mut s, &r, &[("a", 0), ("b", 30), ("c", 60), ("d", 61)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].kind, out[0].at_ms, out[0].count),
            (TransitionKind::Firing, 60_000, 3)
        );
        assert_eq!(s.open.as_ref().unwrap().count, 4);
        let mut out = Vec::new();
        s.tick(&r, 180_999, &mut out);
        assert!(out.is_empty());
        s.tick(&r, 181_000, &mut out);
        assert_eq!(
            (out[0].kind, out[0].at_ms),
            (TransitionKind::Resolved, 181_000)
        );
        assert_eq!(out[0].id(), format!("{}:resolved", out[0].episode.id));
    }

    #[test]
    fn the_interval_is_closed_and_one_window_long() {
        let r = rule(2, 60, 60);
        let mut s = WindowState::default();
        assert!(feed(&mut s, &r, &[("a", 0), ("b", 61)]).is_empty());
        let mut s = WindowState::default();
        assert_eq!(feed(&mut s, &r, &[("a", 0), ("b", 60)]).len(), 1);
    }

    #[test]
    fn duplicates_count_once_and_old_signals_are_late() {
        let r = rule(3, 60, 60);
        let mut s = WindowState::default();
        assert!(
            feed(
                &mut s,
                &r,
                &[("a", 100), ("a", 100), ("b", 101), ("b", 101)]
            )
            .is_empty()
        );
        assert_eq!(s.duplicates, 2);
        let mut out = Vec::new();
        assert_eq!(
            s.observe(&r, "k", &input("z", 39), &mut out),
            Observed::Late
        );
        // Late but inside the horizon: counts, and completes the threshold.
        assert_eq!(
            s.observe(&r, "k", &input("y", 41), &mut out),
            Observed::Counted
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].at_ms, out[0].episode.first_event_ms),
            (101_000, 41_000)
        );
    }

    #[test]
    fn a_later_episode_gets_a_new_id() {
        let r = rule(1, 60, 60);
        let mut s = WindowState::default();
        let out = feed(&mut s, &r, &[("a", 0), ("b", 10), ("c", 500)]);
        let kinds: Vec<_> = out.iter().map(|t| (t.kind, t.at_ms)).collect();
        assert_eq!(
            kinds,
            [
                (TransitionKind::Firing, 0),
                (TransitionKind::Resolved, 70_000),
                (TransitionKind::Firing, 500_000)
            ]
        );
        assert_ne!(out[0].episode.id, out[2].episode.id);
        assert_eq!(out[2].episode.number, 2);
    }

    #[test]
    fn reminders_repeat_while_firing() {
        let mut r = rule(1, 60, 3600);
        r.repeat_ms = Some(600_000);
        let mut s = WindowState::default();
        feed(&mut s, &r, &[("a", 0)]);
        let mut out = Vec::new();
        s.tick(&r, 599_999, &mut out);
        s.tick(&r, 600_000, &mut out);
        s.tick(&r, 600_001, &mut out);
        s.tick(&r, 1_200_000, &mut out);
        let ids: Vec<String> = out.iter().map(Transition::id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids[0].ends_with(":reminder:1") && ids[1].ends_with(":reminder:2"));
    }

    #[test]
    fn consecutive_rules_need_m_failures_among_the_last_n() {
        let mut r = rule(3, 600, 180);
        r.consecutive = Some(5);
        let mut s = WindowState::default();
        let mut out = Vec::new();
        for (i, hit) in [true, false, true, false, false, true, false, true, true]
            .iter()
            .enumerate()
        {
            let id = format!("p{i}");
            let mut inp = input(&id, i as i64 * 60);
            inp.hit = *hit;
            s.observe(&r, "database", &inp, &mut out);
        }
        // Fails at 0, 2, 5, 7, 8: the last five (4..=8) hold 3 failures at 8.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].at_ms, 8 * 60_000);
        assert_eq!(s.entries.len(), 5);
    }

    fn sequence_rule() -> AlertRule {
        let mut r = rule(5, 600, 600);
        r.signal = "auth_failures".into();
        r.then = Some("auth_successes".into());
        r.group_by = Some("ip".into());
        r
    }

    /// A failure (`f`) or success (`s`, naming `user`) at `ts_s`.
    fn step<'a>(
        kind: char,
        id: &'a str,
        ts_s: i64,
        keys: &'a [(Arc<str>, String)],
    ) -> AlertInput<'a> {
        AlertInput {
            signal: if kind == 's' {
                "auth_successes"
            } else {
                "auth_failures"
            },
            keys: InputKeys::Many(keys),
            distinct: 0,
            event_id: id,
            timestamp_ms: ts_s * 1000,
            sample: "line",
            hit: true,
        }
    }

    /// Feeds `(kind, id, second)` steps, the successes naming `admin`.
    fn run_sequence(
        state: &mut WindowState,
        steps: &[(char, &str, i64)],
    ) -> (Vec<Transition>, Vec<Observed>) {
        let r = sequence_rule();
        let keys: Vec<(Arc<str>, String)> = vec![
            ("ip".into(), "ip:1".to_owned()),
            ("user".into(), "admin".to_owned()),
        ];
        let mut out = Vec::new();
        let observed = steps
            .iter()
            .map(|(k, id, ts)| state.observe(&r, "ip:1", &step(*k, id, *ts, &keys), &mut out))
            .collect();
        (out, observed)
    }

    fn failures_then(n: usize, success_at: Option<i64>) -> Vec<(char, String, i64)> {
        let mut steps: Vec<(char, String, i64)> = (0..n)
            .map(|i| ('f', format!("f{i}"), i as i64 * 10))
            .collect();
        if let Some(at) = success_at {
            steps.push(('s', "ok".to_owned(), at));
        }
        steps
    }

    fn run_owned(state: &mut WindowState, steps: &[(char, String, i64)]) -> Vec<Transition> {
        let borrowed: Vec<(char, &str, i64)> = steps
            .iter()
            .map(|(k, id, t)| (*k, id.as_str(), *t))
            .collect();
        run_sequence(state, &borrowed).0
    }

    #[test]
    fn a_sequence_fires_on_a_success_after_the_failures_and_names_the_subject() {
        let mut s = WindowState::default();
        let out = run_owned(&mut s, &failures_then(5, Some(100)));
        assert_eq!(out.len(), 1);
        let t = &out[0];
        assert_eq!(
            (t.kind, t.at_ms, t.count),
            (TransitionKind::Firing, 100_000, 5)
        );
        assert_eq!(t.episode.subject.as_deref(), Some("admin"));
        assert_eq!(t.episode.first_event_ms, 0);
        assert_eq!(s.open.as_ref().unwrap().subject.as_deref(), Some("admin"));
    }

    #[test]
    fn a_sequence_needs_the_threshold_a_success_and_the_window() {
        // Four failures, then a success: not enough.
        let mut s = WindowState::default();
        assert!(run_owned(&mut s, &failures_then(4, Some(100))).is_empty());
        // Failures alone, however many: never.
        let mut s = WindowState::default();
        assert!(run_owned(&mut s, &failures_then(50, None)).is_empty());
        assert!(s.open.is_none());
        // The success more than a window after the failures: the oldest
        // fell out, four remain.
        let mut s = WindowState::default();
        assert!(run_owned(&mut s, &failures_then(5, Some(640))).is_empty());
        // A success before the failures closes nothing.
        let mut s = WindowState::default();
        let mut steps = vec![('s', "ok".to_owned(), 0)];
        steps.extend(
            failures_then(5, None)
                .into_iter()
                .map(|(k, id, t)| (k, id, t + 1)),
        );
        assert!(run_owned(&mut s, &steps).is_empty());
    }

    #[test]
    fn a_late_failure_completes_a_sequence_once_and_redelivery_changes_nothing() {
        let mut s = WindowState::default();
        // The success is delivered before the fifth failure.
        let mut steps = failures_then(4, Some(100));
        steps.push(('f', "late".to_owned(), 50));
        let out = run_owned(&mut s, &steps);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].at_ms, out[0].count), (100_000, 5));
        let before = s.clone();
        let (out, observed) = run_sequence(
            &mut s,
            &[('s', "ok", 100), ('f', "late", 50), ('f', "f0", 0)],
        );
        assert!(out.is_empty());
        assert_eq!(observed, [Observed::Duplicate; 3]);
        assert!(s.same_content(&before));
    }

    #[test]
    fn spent_evidence_never_reopens_an_episode() {
        let mut s = WindowState::default();
        let out = run_owned(&mut s, &failures_then(5, Some(100)));
        assert_eq!(out.len(), 1);
        // Quiet for a window: the evaluator resolves it.
        let mut out = Vec::new();
        s.tick(&sequence_rule(), 700_000, &mut out);
        assert_eq!(
            out.iter().map(|t| t.kind).collect::<Vec<_>>(),
            [TransitionKind::Resolved]
        );
        // A late failure before the spent success: counted, fires nothing.
        let (out, observed) = run_sequence(&mut s, &[('f', "older", 95)]);
        assert_eq!(observed, [Observed::Counted]);
        assert!(out.is_empty());
        // Five new failures then a new success: a second episode.
        let steps: Vec<(char, String, i64)> = (0..5)
            .map(|i| ('f', format!("g{i}"), 710 + i))
            .chain([('s', "ok2".to_owned(), 720)])
            .collect();
        let out = run_owned(&mut s, &steps);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].episode.number, 2);
    }

    #[test]
    fn sequence_state_round_trips_and_old_windows_read_unchanged() {
        let mut s = WindowState::default();
        run_owned(&mut s, &failures_then(5, Some(100)));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"c\":[{\"t\":100000"), "{json}");
        assert_eq!(serde_json::from_str::<WindowState>(&json).unwrap(), s);
        // A counting rule's window has no closings and serializes as before.
        let mut counting = WindowState::default();
        feed(&mut counting, &rule(3, 60, 60), &[("a", 0)]);
        let json = serde_json::to_string(&counting).unwrap();
        assert!(
            !json.contains("\"c\"") && !json.contains("\"ct\""),
            "{json}"
        );
        let old = r#"{"e":[[0,1,true]],"max_ts":0,"episodes":0,"open":null,"samples":[],"late":0,"duplicates":0}"#;
        let read: WindowState = serde_json::from_str(old).unwrap();
        assert!(read.closings.is_empty() && read.closed_through.is_none());
    }

    #[test]
    fn the_bound_keeps_the_newest_entries() {
        let r = rule(MAX_ENTRIES as u32, 100_000, 60);
        let mut s = WindowState::default();
        let mut out = Vec::new();
        for i in 0..(MAX_ENTRIES as i64 + 50) {
            s.observe(&r, "k", &input(&format!("e{i}"), i), &mut out);
        }
        assert_eq!(s.entries.len(), MAX_ENTRIES);
        assert_eq!(out.len(), 1);
        assert_eq!(
            s.observe(&r, "k", &input("e0", 0), &mut out),
            Observed::Late
        );
    }

    #[test]
    fn long_keys_are_shortened_but_stay_distinct() {
        let a = "x".repeat(300) + "a";
        let b = "x".repeat(300) + "b";
        assert!(window_key(&a).len() <= KEY_MAX_BYTES);
        assert_ne!(window_key(&a), window_key(&b));
        assert_eq!(window_key("short"), "short");
    }

    /// The reference: which distinct events are accepted (not late), and
    /// whether any closed interval of length `w` holds `t` of them.
    fn reference_fired(arrivals: &[(u32, i64)], w: i64, t: usize) -> Vec<bool> {
        let mut accepted: BTreeMap<u32, i64> = BTreeMap::new();
        let mut max = i64::MIN;
        let mut fired = false;
        let mut out = Vec::new();
        for (id, ts) in arrivals {
            if !accepted.contains_key(id) && *ts >= max.saturating_sub(w) {
                accepted.insert(*id, *ts);
                max = max.max(*ts);
            }
            let times: Vec<i64> = accepted.values().copied().collect();
            fired |= times
                .iter()
                .any(|l| times.iter().filter(|x| **x >= *l && **x <= l + w).count() >= t);
            out.push(fired);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any arrival order, duplicates and late signals included: the
        /// window fires exactly when the reference says.
        #[test]
        fn window_matches_brute_force(
            times in proptest::collection::vec(0i64..120, 1..40),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..80),
            threshold in 1u32..6,
            window_s in 1i64..40,
        ) {
            let arrivals: Vec<(u32, i64)> = order
                .iter()
                .map(|ix| {
                    let id = ix.index(times.len());
                    (id as u32, times[id])
                })
                .collect();
            let r = rule(threshold, window_s, 1_000_000);
            let expected = reference_fired(
                &arrivals.iter().map(|(i, t)| (*i, t * 1000)).collect::<Vec<_>>(),
                window_s * 1000,
                threshold as usize,
            );
            let mut s = WindowState::default();
            let mut out = Vec::new();
            for ((id, ts), want) in arrivals.iter().zip(expected) {
                s.observe(&r, "k", &input(&format!("ev{id}"), *ts), &mut out);
                prop_assert_eq!(s.open.is_some(), want);
            }
            prop_assert!(out.len() <= 1);
            let distinct: BTreeSet<u32> = arrivals.iter().map(|a| a.0).collect();
            prop_assert!(s.entries.len() <= distinct.len());
        }

        /// In-order probes: fires exactly when some N consecutive probes
        /// hold M failures.
        #[test]
        fn consecutive_matches_brute_force(
            hits in proptest::collection::vec(any::<bool>(), 1..40),
            of in 1u32..7,
            m in 1u32..7,
        ) {
            let m = m.min(of);
            let mut r = rule(m, 100_000, 1_000_000);
            r.consecutive = Some(of);
            let mut s = WindowState::default();
            let mut out = Vec::new();
            let mut fired = false;
            for (i, hit) in hits.iter().enumerate() {
                let id = format!("p{i}");
                let mut inp = input(&id, i as i64);
                inp.hit = *hit;
                s.observe(&r, "c", &inp, &mut out);
                let from = (i + 1).saturating_sub(of as usize);
                fired |= hits[from..=i].iter().filter(|h| **h).count() >= m as usize;
                prop_assert_eq!(s.open.is_some(), fired);
            }
        }
    }
}
