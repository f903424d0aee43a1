//! The log pipeline for one batch of events, pure: parse → rules (which
//! redact what they emit) → per-series deltas and alert signals. Every event
//! is accounted for in the pipeline's own counters: it fed the rules, it
//! continued a text record, or it was rejected with a reason.

use std::collections::BTreeMap;

use super::alerts::SignalAccounting;
use super::logs::parse::{
    ParseSettings, ParseStats, RecordParser, RejectReason, is_json_event, joins_previous,
};
use super::logs::record::{EventRef, LogEvent, RecordFormat};
use super::logs::redact::Redactor;
use super::metrics::aggregate::{BatchMetrics, CardinalityGuard, SeriesDelta, Update};
use super::metrics::series::MetricKind;
use super::metrics::series::SeriesKey;
use super::rules::{Evaluation, MetricInfo, RuleSet, Signal};

/// Events received (`log_events_total`).
pub const EVENTS_TOTAL: &str = "log_events_total";
/// Records by format (`json`, `text`, `plain`).
pub const RECORDS_TOTAL: &str = "log_records_total";
/// Events (or file lines) joined to the record before them.
pub const JOINED_TOTAL: &str = "log_lines_joined_total";
/// Events cut to the event size limit (and still evaluated).
pub const TRUNCATED_TOTAL: &str = "log_events_truncated_total";
/// Events that started like JSON but were not (read as plain records).
pub const INVALID_JSON_TOTAL: &str = "log_events_invalid_json_total";
/// Records whose own time lay outside the bounds of their delivery time.
pub const CLAMPED_TOTAL: &str = "log_record_times_clamped_total";
/// Label values cut to the label limit, by `metric`.
pub const LABELS_CAPPED_TOTAL: &str = "log_label_values_capped_total";
/// Events that produced no record, by `reason`.
pub const REJECTED_TOTAL: &str = "log_events_rejected_total";
/// Metric updates a rule skipped because a value was missing, by `rule`.
pub const RULE_MISSES_TOTAL: &str = "log_rule_misses_total";
/// Subscription payloads that did not decode, by `reason`.
pub const BATCHES_REJECTED_TOTAL: &str = "log_batches_rejected_total";
/// Updates folded into a metric's `__overflow__` series, by `metric`.
pub const SERIES_OVERFLOW_TOTAL: &str = "log_series_overflow_total";

/// Signals the alert engine received, by `signal`.
pub const ALERT_SIGNALS_TOTAL: &str = "alert_signals_total";
/// Signals no alert rule counts, by `signal`.
pub const ALERT_SIGNALS_UNROUTED_TOTAL: &str = "alert_signals_unrouted_total";
/// What became of the signals offered to each alert rule, by `rule` and
/// `outcome` (counted, duplicate, late, missing_key, ignored).
pub const ALERT_SIGNAL_OUTCOMES_TOTAL: &str = "alert_signal_outcomes_total";

/// The alert engine's accounting of one batch as counters.
pub fn accounting_metrics(accounting: &SignalAccounting) -> BatchMetrics {
    let mut metrics = BatchMetrics::default();
    // Few series, fixed kinds: the guard never folds them.
    let mut guard = CardinalityGuard::default();
    let series = accounting
        .received
        .iter()
        .map(|(signal, n)| {
            (
                SeriesKey::new(ALERT_SIGNALS_TOTAL, [("signal", signal.as_ref())]),
                *n,
            )
        })
        .chain(accounting.unrouted.iter().map(|(signal, n)| {
            (
                SeriesKey::new(ALERT_SIGNALS_UNROUTED_TOTAL, [("signal", signal.as_ref())]),
                *n,
            )
        }))
        .chain(accounting.outcomes.iter().map(|((rule, outcome), n)| {
            (
                SeriesKey::new(
                    ALERT_SIGNAL_OUTCOMES_TOTAL,
                    [("outcome", outcome.as_str()), ("rule", rule.as_ref())],
                ),
                *n,
            )
        }));
    for (key, n) in series {
        let _ = metrics.apply(key, Update::CounterAdd(n as f64), &mut guard);
    }
    metrics
}

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
            RECORDS_TOTAL,
            "Log records by format (json, text, access, plain).",
            &["format"],
        ),
        counter(
            JOINED_TOTAL,
            "Log events or lines joined to the record before them (tracebacks, SQL echoes).",
            &[],
        ),
        counter(
            TRUNCATED_TOTAL,
            "Log events cut to the event size limit, then evaluated.",
            &[],
        ),
        counter(
            INVALID_JSON_TOTAL,
            "Log events that started like a JSON object but were not one: read as plain records.",
            &[],
        ),
        counter(
            CLAMPED_TOTAL,
            "Records whose own timestamp lay too far from their delivery time: the delivery time was used.",
            &[],
        ),
        counter(
            LABELS_CAPPED_TOTAL,
            "Label values cut to 128 bytes (with a hash suffix), by metric.",
            &["metric"],
        ),
        counter(
            REJECTED_TOTAL,
            "Log events that produced no record, by reason.",
            &["reason"],
        ),
        counter(
            RULE_MISSES_TOTAL,
            "Metric updates skipped because a value a rule needed was missing or not a number.",
            &["rule"],
        ),
        counter(
            BATCHES_REJECTED_TOTAL,
            "Subscription payloads that did not decode, by reason.",
            &["reason"],
        ),
        counter(
            ALERT_SIGNALS_TOTAL,
            "Alert signals received by the alert engine, by signal.",
            &["signal"],
        ),
        counter(
            ALERT_SIGNALS_UNROUTED_TOTAL,
            "Alert signals no alert rule counts, by signal.",
            &["signal"],
        ),
        counter(
            ALERT_SIGNAL_OUTCOMES_TOTAL,
            "Alert signals offered to a rule, by rule and outcome (counted, duplicate, late, missing_key, ignored).",
            &["outcome", "rule"],
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
    /// Records by format, and what the parser noticed.
    pub formats: BTreeMap<RecordFormat, u64>,
    pub parse: ParseStats,
    /// Rule updates plus the pipeline's own counters.
    pub metrics: BatchMetrics,
    pub signals: Vec<Signal>,
    /// Signals raised, by name (also when only counted).
    pub signal_counts: BTreeMap<std::sync::Arc<str>, u64>,
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
    /// Events, or lines of a plain file: `records + continuations +
    /// rejected`.
    pub events: u64,
    pub records: u64,
    /// Events or lines joined to the record before them.
    pub continuations: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Records by format, in the order of [`RecordFormat::ALL`].
    pub formats: [u64; RecordFormat::ALL.len()],
    pub parse: ParseStats,
    /// Metric updates (in event order), signals and misses.
    pub evaluation: Evaluation,
}

impl<'r> Evaluator<'r> {
    pub fn new(rules: &'r RuleSet, redactor: &'r Redactor, settings: ParseSettings) -> Self {
        Evaluator {
            rules,
            redactor,
            parser: RecordParser::new(settings),
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

    /// The next event starts a new stream.
    pub fn reset_stream(&mut self) {
        self.parser.reset_stream();
    }

    /// One event of a plain file, made of its lines (see
    /// [`crate::domain::logs::parse::split_events`]): each line after the
    /// first counts as a line joined, so `events` counts the file's lines.
    pub fn push(&mut self, event: EventRef<'_>) {
        self.push_joined(event, None);
    }

    /// One event; `joined` is how many CloudWatch events were joined to it
    /// (see [`Self::push_events`]), `None` for a file's event, whose joined
    /// lines are counted from its text.
    fn push_joined(&mut self, event: EventRef<'_>, joined: Option<u64>) {
        match self.parser.parse_ref(event) {
            Ok(record) => {
                let lines = joined.unwrap_or_else(|| {
                    record.continuation.map_or(0, |rest| {
                        1 + memchr::memchr_iter(b'\n', rest.as_bytes()).count() as u64
                    })
                });
                self.out.events += 1 + lines;
                self.out.continuations += lines;
                self.out.records += 1;
                self.out.formats[record.format.index()] += 1;
                self.rules
                    .evaluate(&record, self.redactor, &mut self.out.evaluation);
                self.parser.recycle(record);
            }
            Err(reason) => {
                let joined = joined.unwrap_or(0);
                self.out.events += 1 + joined;
                *self.out.rejected.entry(reason).or_default() += 1 + joined;
            }
        }
    }

    /// Events of one stream in order, as CloudWatch delivers them: an event
    /// that continues the record before it (a traceback line logged on its
    /// own) is joined to that record first, so rules see it whole. `joined`
    /// is a buffer kept between calls.
    pub fn push_events<'e, I>(&mut self, events: I, joined: &mut String)
    where
        I: IntoIterator<Item = EventRef<'e>>,
    {
        let mut events = events.into_iter().peekable();
        while let Some(first) = events.next() {
            let json = is_json_event(first.message);
            let mut count = 0u64;
            while let Some(next) = events.next_if(|e| joins_previous(json, e.message)) {
                if count == 0 {
                    joined.clear();
                    joined.push_str(first.message);
                }
                joined.push('\n');
                joined.push_str(next.message);
                count += 1;
            }
            if count == 0 {
                self.push_joined(first, Some(0));
            } else {
                let event = EventRef {
                    message: joined.as_str(),
                    ..first
                };
                self.push_joined(event, Some(count));
            }
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
            formats: std::mem::take(&mut out.formats),
            parse: self.parser.take_stats(),
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
    capped: BTreeMap<std::sync::Arc<str>, u64>,
    report: BatchReport,
}

impl<'g> Aggregator<'g> {
    pub fn new(guard: &'g mut CardinalityGuard) -> Self {
        Aggregator {
            folded_before: guard.folded().clone(),
            guard,
            misses: BTreeMap::new(),
            capped: BTreeMap::new(),
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
            formats,
            parse,
            mut evaluation,
        } = evaluated;
        let report = &mut self.report;
        report.events += events;
        report.records += records;
        report.continuations += continuations;
        for (reason, n) in rejected {
            *report.rejected.entry(reason).or_default() += n;
        }
        for (format, n) in RecordFormat::ALL.into_iter().zip(formats) {
            if n > 0 {
                *report.formats.entry(format).or_default() += n;
            }
        }
        report.parse.truncated += parse.truncated;
        report.parse.clamped += parse.clamped;
        report.parse.invalid_json += parse.invalid_json;
        let (conflicts, _) = report.metrics.apply_indexed(
            &evaluation.touched,
            evaluation.updates.drain(..),
            self.guard,
        );
        report.kind_conflicts += conflicts;
        report.signals.append(&mut evaluation.signals);
        for (name, n) in std::mem::take(&mut evaluation.signal_counts) {
            *report.signal_counts.entry(name).or_default() += n;
        }
        for (rule, n) in std::mem::take(&mut evaluation.misses) {
            *self.misses.entry(rule).or_default() += n;
        }
        for (metric, n) in std::mem::take(&mut evaluation.capped_labels) {
            *self.capped.entry(metric).or_default() += n;
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
            capped,
            mut report,
        } = self;
        let mut own: Vec<(SeriesKey, u64)> = vec![
            (SeriesKey::new(EVENTS_TOTAL, no_labels()), report.events),
            (
                SeriesKey::new(JOINED_TOTAL, no_labels()),
                report.continuations,
            ),
            (
                SeriesKey::new(TRUNCATED_TOTAL, no_labels()),
                report.parse.truncated,
            ),
            (
                SeriesKey::new(CLAMPED_TOTAL, no_labels()),
                report.parse.clamped,
            ),
            (
                SeriesKey::new(INVALID_JSON_TOTAL, no_labels()),
                report.parse.invalid_json,
            ),
        ];
        own.extend(report.formats.iter().map(|(format, n)| {
            (
                SeriesKey::new(RECORDS_TOTAL, [("format", format.as_str())]),
                *n,
            )
        }));
        own.extend(capped.iter().map(|(metric, n)| {
            (
                SeriesKey::new(LABELS_CAPPED_TOTAL, [("metric", metric.as_ref())]),
                *n,
            )
        }));
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
    settings: ParseSettings,
) -> BatchReport {
    let mut evaluator = Evaluator::new(rules, redactor, settings);
    let mut aggregator = Aggregator::new(guard);
    let mut spare = Evaluated::default();
    let mut joined = String::new();
    // Fold every few thousand events: keeps the update buffer small on
    // large batches. A block never ends before an event that may continue
    // the record before it.
    let mut start = 0;
    while start < events.len() {
        let mut end = (start + 4096).min(events.len());
        while end < events.len() && joins_previous(false, &events[end].message) {
            end += 1;
        }
        evaluator.push_events(
            events[start..end].iter().map(LogEvent::borrowed),
            &mut joined,
        );
        spare = aggregator.add_and_return(evaluator.take_reusing(spare));
        start = end;
    }
    aggregator.finish()
}

/// Series per store write: one DynamoDB transaction takes 100 actions, and
/// one is the chunk's batch marker.
pub const SERIES_PER_CHUNK: usize = 99;

/// Splits a batch's series into the chunks the series store writes, each
/// at most once per batch (a marker per chunk), folding each chunk through
/// the container's cardinality `guard`.
///
/// `unguarded` must come from [`process_events`] with
/// [`CardinalityGuard::unbounded`]: its series, and so the plan, depend
/// only on the batch's events and the rules. A retry or a redrive, in any
/// container, forms the same chunks with the same events' updates in each;
/// only which label sets a chunk folds into `__overflow__` may differ, and
/// a chunk is applied whole or not at all, so every update is stored
/// exactly once. The plan leaves room in each chunk for one
/// `log_series_overflow_total{metric}` per metric it holds (the updates it
/// folded), so no chunk exceeds [`SERIES_PER_CHUNK`].
pub fn chunk_batch(unguarded: &BatchMetrics, guard: &mut CardinalityGuard) -> Vec<BatchMetrics> {
    let mut chunks = Vec::new();
    for planned in plan_chunks(unguarded) {
        let mut chunk = BatchMetrics::default();
        let mut folded: BTreeMap<&str, u64> = BTreeMap::new();
        for (key, delta, updates) in planned {
            // Kinds were checked when the batch was built: one kind per
            // metric, so this cannot be refused.
            if let Ok(admitted) = chunk.merge(key, delta, updates, guard)
                && &admitted != key
            {
                *folded.entry(key.name()).or_default() += updates;
            }
        }
        let mut own = CardinalityGuard::unbounded();
        for (metric, n) in folded {
            let key = SeriesKey::new(SERIES_OVERFLOW_TOTAL, [("metric", metric)]);
            let _ = chunk.merge(&key, &SeriesDelta::Counter(n as f64), n, &mut own);
        }
        chunks.push(chunk);
    }
    chunks
}

/// Sorted series in runs that hold, with one overflow counter per metric,
/// at most [`SERIES_PER_CHUNK`] series.
fn plan_chunks(metrics: &BatchMetrics) -> Vec<Vec<(&SeriesKey, &SeriesDelta, u64)>> {
    let mut chunks: Vec<Vec<(&SeriesKey, &SeriesDelta, u64)>> = Vec::new();
    let mut current = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for entry in metrics.sorted_with_updates() {
        let name = entry.0.name();
        let new_name = usize::from(names.last() != Some(&name));
        if current.len() + 1 + names.len() + new_name > SERIES_PER_CHUNK {
            chunks.push(std::mem::take(&mut current));
            names.clear();
        }
        // Sorted by key, so by metric name first: a new name is the last.
        if names.last() != Some(&name) {
            names.push(name);
        }
        current.push(entry);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn no_labels() -> [(&'static str, &'static str); 0] {
    []
}

#[cfg(test)]
mod tests {
    use super::*;

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
            other => panic!("{key}: {other:?} in {:?}", report.metrics.sorted()),
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
            ParseSettings {
                max_event_bytes: 256,
                ..ParseSettings::default()
            },
        );
        assert_eq!(report.events, 6);
        // JSON, the text record with the traceback line joined, the broken
        // JSON and the oversized line (cut) as plain records.
        assert_eq!(report.records, 4);
        assert_eq!(report.continuations, 1);
        assert_eq!(report.rejected_total(), 1);
        assert_eq!(report.parse.truncated, 1);
        assert_eq!(report.parse.invalid_json, 1);
        assert_eq!(
            report.records + report.continuations + report.rejected_total(),
            report.events
        );
        assert_eq!(
            counter(&report, &SeriesKey::new(EVENTS_TOTAL, no_labels())),
            6.0
        );
        let key = SeriesKey::new(REJECTED_TOTAL, [("reason", "binary")]);
        assert_eq!(counter(&report, &key), 1.0);
        for (format, n) in [("json", 1.0), ("text", 1.0), ("plain", 2.0)] {
            let key = SeriesKey::new(RECORDS_TOTAL, [("format", format)]);
            assert_eq!(counter(&report, &key), n, "{format}");
        }
        for name in [JOINED_TOTAL, TRUNCATED_TOTAL, INVALID_JSON_TOTAL] {
            assert_eq!(counter(&report, &SeriesKey::new(name, no_labels())), 1.0);
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
        let first = process_events(&events, &rules, &redactor, &mut guard, Default::default());
        let key = SeriesKey::new(SERIES_OVERFLOW_TOTAL, [("metric", "log_messages_total")]);
        assert_eq!(counter(&first, &key), 2.0);
        let second = process_events(
            &events[1..2],
            &rules,
            &redactor,
            &mut guard,
            Default::default(),
        );
        assert_eq!(counter(&second, &key), 1.0, "per batch, not cumulative");
    }

    fn totals(chunk: &BatchMetrics) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (key, delta) in chunk.sorted() {
            if let SeriesDelta::Counter(v) = delta {
                *out.entry(key.name().to_owned()).or_default() += v;
            }
        }
        out
    }

    /// The plan is made before the guard: a guard that folds yields the
    /// same chunks, each with the same updates (under other label sets),
    /// and no chunk outgrows one transaction.
    #[test]
    fn chunks_do_not_depend_on_the_guard() {
        let mut unguarded = BatchMetrics::default();
        let mut none = CardinalityGuard::unbounded();
        for i in 0..150 {
            for name in ["a_total", "b_total"] {
                let key = SeriesKey::new(name, [("l", format!("{i:03}"))]);
                unguarded
                    .apply(key, Update::CounterAdd(1.0), &mut none)
                    .unwrap();
            }
        }
        let wide = chunk_batch(&unguarded, &mut CardinalityGuard::new(1000));
        let mut small = CardinalityGuard::new(5);
        let folded = chunk_batch(&unguarded, &mut small);
        assert_eq!(wide.len(), folded.len());
        assert_eq!(wide.len(), 4, "300 series in chunks of 98 or 97");
        let mut overflowed = 0.0;
        for (w, f) in wide.iter().zip(&folded) {
            assert!(w.len() <= SERIES_PER_CHUNK && f.len() <= SERIES_PER_CHUNK);
            let (mut tw, mut tf) = (totals(w), totals(f));
            overflowed += tf.remove(SERIES_OVERFLOW_TOTAL).unwrap_or(0.0);
            tw.remove(SERIES_OVERFLOW_TOTAL);
            assert_eq!(tw, tf, "the same updates in the same chunk");
        }
        assert_eq!(
            overflowed, 290.0,
            "all but 5 label sets of each metric folded"
        );
        // Replanned from scratch, the same chunks again.
        let again = chunk_batch(&unguarded, &mut CardinalityGuard::new(1000));
        let keys = |c: &[BatchMetrics]| -> Vec<Vec<String>> {
            c.iter()
                .map(|m| m.sorted().iter().map(|(k, _)| k.to_string()).collect())
                .collect()
        };
        assert_eq!(keys(&wide), keys(&again));
    }
}
