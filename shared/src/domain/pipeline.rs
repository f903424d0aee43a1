//! The log pipeline for one batch of events, pure: parse → rules (which
//! redact what they emit) → per-series deltas and alert signals. Every event
//! is accounted for in the pipeline's own counters: it fed the rules, it
//! continued a text record, or it was rejected with a reason.

use std::collections::BTreeMap;

use super::logs::parse::{Parsed, RecordParser, RejectReason};
use super::logs::record::{EventRef, LogEvent};
use super::logs::redact::Redactor;
use super::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use super::metrics::series::MetricKind;
use super::metrics::series::SeriesKey;
use super::rules::{Evaluation, MetricInfo, RuleSet, Signal};

/// Events received (`log_events_total`).
pub const EVENTS_TOTAL: &str = "log_events_total";
/// Events that produced no record, by `reason`.
pub const REJECTED_TOTAL: &str = "log_events_rejected_total";
/// Metric updates or signals a rule skipped because a value was missing, by `rule`.
pub const RULE_MISSES_TOTAL: &str = "log_rule_misses_total";
/// Subscription payloads that did not decode, by `reason`.
pub const BATCHES_REJECTED_TOTAL: &str = "log_batches_rejected_total";
/// Updates folded into a metric's `__overflow__` series, by `metric`.
pub const SERIES_OVERFLOW_TOTAL: &str = "log_series_overflow_total";

/// The pipeline's own metrics, described like the rules' metrics.
pub fn pipeline_metrics() -> Vec<MetricInfo> {
    let counter = |name: &str, help: &str, labels: &[&str]| MetricInfo {
        name: name.to_owned(),
        kind: MetricKind::Counter,
        help: Some(help.to_owned()),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    };
    vec![
        counter(EVENTS_TOTAL, "Log events received.", &[]),
        counter(
            REJECTED_TOTAL,
            "Log events that produced no record, by reason.",
            &["reason"],
        ),
        counter(
            RULE_MISSES_TOTAL,
            "Metric updates or signals skipped because a value a rule needed was missing.",
            &["rule"],
        ),
        counter(
            BATCHES_REJECTED_TOTAL,
            "Subscription payloads that did not decode, by reason.",
            &["reason"],
        ),
        counter(
            SERIES_OVERFLOW_TOTAL,
            "Updates folded into a metric's __overflow__ series (too many label sets).",
            &["metric"],
        ),
    ]
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub events: u64,
    pub records: u64,
    pub continuations: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Rule updates plus the pipeline's own counters.
    pub metrics: BatchMetrics,
    pub signals: Vec<Signal>,
    /// Updates dropped because a rule used a metric with two kinds (the
    /// rule file's validation makes this impossible; counted in case).
    pub kind_conflicts: u64,
}

impl BatchReport {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// The parse-and-rules half of the pipeline for one stream of events, in
/// order: what it produced is folded into series with [`Aggregator`].
/// Independent runs of events (chunks of a replayed file that start at a
/// record) can be evaluated on several threads and folded in order.
pub struct Evaluator<'r> {
    rules: &'r RuleSet,
    redactor: &'r Redactor,
    parser: RecordParser,
    out: Evaluated,
}

/// What an [`Evaluator`] produced.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub events: u64,
    pub records: u64,
    pub continuations: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Metric updates (in event order), signals and misses.
    pub evaluation: Evaluation,
}

impl<'r> Evaluator<'r> {
    pub fn new(rules: &'r RuleSet, redactor: &'r Redactor, max_event_bytes: usize) -> Self {
        Evaluator {
            rules,
            redactor,
            parser: RecordParser::new(max_event_bytes),
            out: Evaluated::default(),
        }
    }

    /// Signals without sample lines (see [`Evaluation::skip_samples`]).
    pub fn without_samples(mut self) -> Self {
        self.out.evaluation.skip_samples = true;
        self
    }

    /// Signals only counted (in [`Evaluation::signals_counted`]), never
    /// built (see [`Evaluation::count_signals_only`]).
    pub fn counting_signals_only(mut self) -> Self {
        self.out.evaluation.count_signals_only = true;
        // Only a signal shows a record's time.
        self.parser = self.parser.without_record_times();
        self
    }

    /// Counter updates of a series merged per batch (see
    /// [`Evaluation::coalesce_counters`]).
    pub fn coalescing_counters(mut self) -> Self {
        self.out.evaluation.coalesce_counters = true;
        self
    }

    /// The next event starts a new stream: a bare line is no longer taken
    /// to continue the last text record.
    pub fn reset_stream(&mut self) {
        self.parser.reset_stream();
    }

    pub fn push(&mut self, event: EventRef<'_>) {
        self.out.events += 1;
        match self.parser.parse_ref(event) {
            Ok(Parsed::Record(record)) => {
                self.out.records += 1;
                self.rules
                    .evaluate(&record, self.redactor, &mut self.out.evaluation);
                self.parser.recycle(record);
            }
            Ok(Parsed::Continuation(_)) => self.out.continuations += 1,
            Err(reason) => *self.out.rejected.entry(reason).or_default() += 1,
        }
    }

    /// Takes what was produced so far, keeping the caches (and the
    /// stream's parser state) for the events that follow.
    pub fn take(&mut self) -> Evaluated {
        self.take_reusing(Evaluated::default())
    }

    /// [`Self::take`], continuing in the buffers of `spare` (what
    /// [`Aggregator::add_and_return`] gave back).
    pub fn take_reusing(&mut self, spare: Evaluated) -> Evaluated {
        let out = &mut self.out;
        Evaluated {
            events: std::mem::take(&mut out.events),
            records: std::mem::take(&mut out.records),
            continuations: std::mem::take(&mut out.continuations),
            rejected: std::mem::take(&mut out.rejected),
            evaluation: out.evaluation.take_results_reusing(spare.evaluation),
        }
    }
}

/// Folds evaluated events into one batch, in order, through the
/// cardinality guard; then adds the pipeline's own counters.
pub struct Aggregator<'g> {
    guard: &'g mut CardinalityGuard,
    folded_before: std::collections::HashMap<String, u64>,
    misses: BTreeMap<std::sync::Arc<str>, u64>,
    report: BatchReport,
}

impl<'g> Aggregator<'g> {
    pub fn new(guard: &'g mut CardinalityGuard) -> Self {
        Aggregator {
            folded_before: guard.folded().clone(),
            guard,
            misses: BTreeMap::new(),
            report: BatchReport::default(),
        }
    }

    /// Histograms without EMF's distinct values (see
    /// [`BatchMetrics::without_values`]).
    pub fn without_emf_values(mut self) -> Self {
        self.report.metrics = BatchMetrics::without_values();
        self
    }

    pub fn add(&mut self, evaluated: Evaluated) {
        self.add_and_return(evaluated);
    }

    /// [`Self::add`], giving back the emptied buffers for
    /// [`Evaluator::take_reusing`].
    pub fn add_and_return(&mut self, evaluated: Evaluated) -> Evaluated {
        let Evaluated {
            events,
            records,
            continuations,
            rejected,
            mut evaluation,
        } = evaluated;
        let report = &mut self.report;
        report.events += events;
        report.records += records;
        report.continuations += continuations;
        for (reason, n) in rejected {
            *report.rejected.entry(reason).or_default() += n;
        }
        let (conflicts, _) = report.metrics.apply_indexed(
            &evaluation.touched,
            evaluation.updates.drain(..),
            self.guard,
        );
        report.kind_conflicts += conflicts;
        report.signals.append(&mut evaluation.signals);
        for (rule, n) in std::mem::take(&mut evaluation.misses) {
            *self.misses.entry(rule).or_default() += n;
        }
        evaluation.clear_results();
        Evaluated {
            evaluation,
            ..Evaluated::default()
        }
    }

    pub fn finish(self) -> BatchReport {
        let Aggregator {
            guard,
            folded_before,
            misses,
            mut report,
        } = self;
        let mut own: Vec<(SeriesKey, u64)> =
            vec![(SeriesKey::new(EVENTS_TOTAL, no_labels()), report.events)];
        own.extend(report.rejected.iter().map(|(reason, n)| {
            (
                SeriesKey::new(REJECTED_TOTAL, [("reason", reason.as_str())]),
                *n,
            )
        }));
        own.extend(misses.iter().map(|(rule, n)| {
            (
                SeriesKey::new(RULE_MISSES_TOTAL, [("rule", rule.as_ref())]),
                *n,
            )
        }));
        own.extend(guard.folded().iter().map(|(metric, n)| {
            let before = folded_before.get(metric).copied().unwrap_or(0);
            (
                SeriesKey::new(SERIES_OVERFLOW_TOTAL, [("metric", metric.as_str())]),
                n - before,
            )
        }));
        for (key, n) in own.into_iter().filter(|(_, n)| *n > 0) {
            if report
                .metrics
                .apply(key, Update::CounterAdd(n as f64), guard)
                .is_err()
            {
                report.kind_conflicts += 1;
            }
        }
        report
    }
}

/// Runs `events` (one stream, in order) through the rules.
pub fn process_events(
    events: &[LogEvent],
    rules: &RuleSet,
    redactor: &Redactor,
    guard: &mut CardinalityGuard,
    max_event_bytes: usize,
) -> BatchReport {
    let mut evaluator = Evaluator::new(rules, redactor, max_event_bytes);
    let mut aggregator = Aggregator::new(guard);
    let mut spare = Evaluated::default();
    for (i, event) in events.iter().enumerate() {
        evaluator.push(event.borrowed());
        // Fold every few thousand events: keeps the update buffer small on
        // large batches.
        if i % 4096 == 4095 {
            spare = aggregator.add_and_return(evaluator.take_reusing(spare));
        }
    }
    aggregator.add(evaluator.take_reusing(spare));
    aggregator.finish()
}

fn no_labels() -> [(&'static str, &'static str); 0] {
    []
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::aggregate::SeriesDelta;

    fn event(id: usize, message: &str) -> LogEvent {
        LogEvent {
            id: id.to_string(),
            timestamp_ms: 1_747_737_000_000,
            message: message.to_owned(),
        }
    }

    fn counter(report: &BatchReport, key: &SeriesKey) -> f64 {
        match report.metrics.get(key) {
            Some(SeriesDelta::Counter(v)) => *v,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn every_event_is_accounted_for() {
        let rules = RuleSet::default_rules().unwrap();
        let redactor = Redactor::new(b"0123456789abcdef0123").unwrap();
        let events = [
            event(
                1,
                r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"WARNING","logger":"security","message":"Authentication attempt","user_id":"u1","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login","duration_ms":41.7}"#,
            ),
            event(
                2,
                "2025-05-18 07:42:54,855 - app.core.database - ERROR - Database error: refused",
            ),
            event(3, "Traceback (most recent call last):"),
            event(4, "{broken json"),
            event(5, "\u{0}\u{1}garbage"),
            event(6, &"x".repeat(300)),
        ];
        let report = process_events(
            &events,
            &rules,
            &redactor,
            &mut CardinalityGuard::default(),
            256,
        );
        assert_eq!(report.events, 6);
        assert_eq!(report.records, 2);
        assert_eq!(report.continuations, 1);
        assert_eq!(report.rejected_total(), 3);
        assert_eq!(
            report.records + report.continuations + report.rejected_total(),
            report.events
        );
        assert_eq!(
            counter(&report, &SeriesKey::new(EVENTS_TOTAL, no_labels())),
            6.0
        );
        for reason in ["invalid_json", "binary", "oversized"] {
            let key = SeriesKey::new(REJECTED_TOTAL, [("reason", reason)]);
            assert_eq!(counter(&report, &key), 1.0, "{reason}");
        }
        let auth = SeriesKey::new(
            "auth_requests_total",
            [
                ("method", "password"),
                ("endpoint", "/api/auth/login"),
                ("status", "failure"),
            ],
        );
        assert_eq!(counter(&report, &auth), 1.0);
        let names: Vec<&str> = report.signals.iter().map(|s| s.name.as_ref()).collect();
        assert!(names.contains(&"auth_failures"), "{names:?}");
        assert!(names.contains(&"database_errors"), "{names:?}");
        let overflow = report
            .metrics
            .sorted()
            .iter()
            .any(|(k, _)| k.name() == SERIES_OVERFLOW_TOTAL);
        assert!(!overflow, "no metric overflowed");
        let all_samples: String = report.signals.iter().map(|s| s.sample.as_str()).collect();
        assert!(
            !all_samples.contains("203.0.113.7"),
            "IP addresses leave only as pseudonyms"
        );
    }

    #[test]
    fn folded_label_sets_are_counted_per_batch() {
        let rules = RuleSet::default_rules().unwrap();
        let redactor = Redactor::new(b"0123456789abcdef0123").unwrap();
        // One label set per metric: the second logger overflows.
        let mut guard = CardinalityGuard::new(1);
        let events = [
            event(1, "2025-05-18 07:42:54,855 - app.a - INFO - one"),
            event(2, "2025-05-18 07:42:54,856 - app.b - INFO - two"),
            event(3, "2025-05-18 07:42:54,857 - app.c - INFO - three"),
        ];
        let first = process_events(&events, &rules, &redactor, &mut guard, 1024);
        let key = SeriesKey::new(SERIES_OVERFLOW_TOTAL, [("metric", "log_messages_total")]);
        assert_eq!(counter(&first, &key), 2.0);
        let second = process_events(&events[1..2], &rules, &redactor, &mut guard, 1024);
        assert_eq!(counter(&second, &key), 1.0, "per batch, not cumulative");
    }
}
