//! Evaluation of a compiled rule set against one record: metric updates,
//! alert signals, and a count of every update skipped for a missing value.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use regex::{Captures, Regex};
use regex_syntax::hir::Hir;

use super::pattern_set::PatternSet;

use super::config::PseudonymizeAs;
use super::value::{RawText, ValueSpec};
use crate::domain::alerts::window::cap_bytes;
use crate::domain::logs::filter_pattern::FilterPattern;
use crate::domain::logs::json::Json;
use crate::domain::logs::record::LogRecord;
use crate::domain::logs::redact::{PseudonymKind, Redactor};
use crate::domain::metrics::aggregate::Update;
use crate::domain::metrics::series::{FastMap, MetricKind, SeriesKey};

/// The default rules of LOG-CONTRACT.md, embedded at build time.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../../../infra/rules/default.toml");

/// The file name errors of the embedded default rules mention.
pub const DEFAULT_RULES_FILE: &str = "infra/rules/default.toml";

/// Longest signal sample, in characters.
pub const SAMPLE_MAX_CHARS: usize = 500;

/// Longest label value or signal key, in bytes: longer ones (a 2 KB URL,
/// a made-up user name) are cut with a hash suffix, so every stored key
/// stays within DynamoDB's limits and distinct values stay distinct.
pub const LABEL_MAX_BYTES: usize = 128;

/// The value of a label whose field the record lacks.
pub const MISSING_LABEL: &str = "unknown";

/// Series remembered per [`Evaluation`] (see `Evaluation::series`); past
/// this the memory is cleared and refilled.
const SERIES_CACHE_MAX: usize = 8192;

/// A metric the rules can update: type, HELP text and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: String,
    pub kind: MetricKind,
    pub help: Option<String>,
    /// Sorted label names.
    pub labels: Vec<String>,
}

/// An event the alert engine counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// e.g. `auth_failures`.
    pub name: Arc<str>,
    /// The keys alert rules group by or count (`ip`, `user`): each
    /// redacted, or a pseudonym when the rule asks for one, and at most
    /// [`LABEL_MAX_BYTES`]. A key whose field the record lacks is absent.
    pub keys: Vec<(Arc<str>, String)>,
    pub event_id: String,
    pub timestamp_ms: i64,
    /// The redacted raw record, at most [`SAMPLE_MAX_CHARS`] characters.
    pub sample: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MetricOp {
    CounterAdd,
    /// Gauge step sign: +1 for `inc`, -1 for `dec`.
    GaugeAdd(f64),
    GaugeSet,
    Observe,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledMetric {
    pub name: Arc<str>,
    pub op: MetricOp,
    /// Sorted by label name.
    pub labels: Vec<(Arc<str>, ValueSpec)>,
    pub value: Option<ValueSpec>,
    /// Unit conversion factor to seconds (1 without a unit).
    pub scale: f64,
    pub when: Option<FilterPattern>,
    /// Names the metric in series-cache keys: its position in the rule
    /// set's metrics as a char (set by [`RuleSet::new`]; `None` past the
    /// chars, whose updates then bypass the cache).
    pub key_id: Option<char>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledSignal {
    pub name: Arc<str>,
    pub when: Option<FilterPattern>,
    pub keys: Vec<CompiledKey>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledKey {
    pub name: Arc<str>,
    pub spec: ValueSpec,
    pub pseudonymize: Option<PseudonymizeAs>,
}

impl Signal {
    /// The value of the key `name`.
    pub fn key(&self, name: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub name: Arc<str>,
    /// Indexes of the rule's groups.
    pub group: Vec<usize>,
    pub logger: Option<String>,
    pub levels: Vec<String>,
    pub messages: Vec<String>,
    /// `None` for no pattern or the match-everything pattern.
    pub filter: Option<FilterPattern>,
    pub regex: Option<RuleRegex>,
    /// Whether a value reads `${capture}` (else the regex only tests).
    pub needs_captures: bool,
    pub metrics: Vec<CompiledMetric>,
    pub signals: Vec<CompiledSignal>,
}

impl CompiledRule {
    pub(crate) fn uses_captures(&self) -> bool {
        self.metrics.iter().any(|m| {
            m.labels.iter().any(|(_, v)| v.capture().is_some())
                || m.value.as_ref().is_some_and(|v| v.capture().is_some())
        }) || self
            .signals
            .iter()
            .any(|s| s.keys.iter().any(|k| k.spec.capture().is_some()))
    }

    /// Whether the record matches, cheapest tests first (the logger aside). `Some(captures)`
    /// when it matches and the rule reads captures. `regex_hit` says
    /// whether the rule's regex matches the message (from the rule set's
    /// [`PatternSet`], which tests every regex in one pass).
    fn matches<'r>(
        &'r self,
        record: &LogRecord<'_>,
        text: impl FnOnce() -> &'r str,
        regex_hit: impl FnOnce() -> bool,
    ) -> Option<Option<Captures<'r>>> {
        // The logger is not tested: the dispatch offers a record only the
        // rules naming its logger or none.
        debug_assert!(self.logger.as_deref().is_none_or(|l| l == record.logger));
        if !self.levels.is_empty()
            && !self
                .levels
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&record.level))
        {
            return None;
        }
        if !self.messages.is_empty() && !self.messages.iter().any(|m| *m == record.message) {
            return None;
        }
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(record.raw, record.json.as_ref()))
        {
            return None;
        }
        match &self.regex {
            None => Some(None),
            Some(_) if !regex_hit() => None,
            Some(re) if self.needs_captures => re.get()?.captures(text()).map(Some),
            Some(_) => Some(None),
        }
    }
}

/// A rule's regex: its pattern, checked when the rule file loads, and the
/// regex compiled from it the first time the rule needs it. The rule set's
/// [`PatternSet`] says whether a record matches; a rule's own regex only runs
/// for its captures (or when it is past the set's 64 patterns, see
/// [`RuleSet::compile_unshared_regexes`]), so most are never compiled:
/// compiling all 36 of the default rules up front was most of replay's
/// start-up (0.13 s against 0.03 s for the 13 regexes before them).
#[derive(Debug, Clone)]
pub(crate) struct RuleRegex {
    pattern: Box<str>,
    /// `Some(None)`: the pattern parsed but did not compile. That cannot
    /// happen for a pattern of a set that compiled (each pattern's program
    /// is part of the set's, under the same limits), and the others are
    /// compiled when the file loads, where an error is reported.
    compiled: std::sync::OnceLock<Option<Regex>>,
    /// The pattern as validation parsed it, which is how the rule set's
    /// [`PatternSet`] parses it in Unicode mode: handed to the set, so
    /// the set does not parse it again (34 M of the 222 M instructions
    /// of loading the default rules), then dropped by [`RuleSet::new`].
    parsed: Option<Arc<Hir>>,
}

impl RuleRegex {
    /// `parsed` is `pattern` as `regex_syntax`'s parser with its defaults
    /// (regex's) gives it.
    pub(crate) fn new(pattern: &str, parsed: Hir) -> Self {
        RuleRegex {
            pattern: pattern.into(),
            compiled: std::sync::OnceLock::new(),
            parsed: Some(Arc::new(parsed)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled regex; `None` if it does not compile (see `compiled`).
    pub(crate) fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Self::compile(&self.pattern).ok())
            .as_ref()
    }

    fn compile(pattern: &str) -> Result<Regex, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .dfa_size_limit(32 << 20)
            .build()
    }

    #[cfg(test)]
    pub(crate) fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    /// Compiles now, reporting why it does not.
    fn compile_now(&self) -> Result<(), regex::Error> {
        if self.compiled.get().is_none() {
            let compiled = Self::compile(&self.pattern)?;
            let _ = self.compiled.set(Some(compiled));
        }
        Ok(())
    }
}

/// What evaluating records produced. Reuse one across records (and clear
/// or drain it per batch).
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// The series updated since the last [`Self::take_results`], in
    /// first-update order (once each, unless the series cache was cleared
    /// in between)...
    pub touched: Vec<SeriesKey>,
    /// ...and the metric updates in rule order, naming their series by
    /// position in `touched`: the fold looks each series up once per batch
    /// rather than once per update (see
    /// [`crate::domain::metrics::aggregate::BatchMetrics::apply_indexed`]).
    pub updates: Vec<(u32, Update)>,
    pub signals: Vec<Signal>,
    /// Per rule: updates skipped because a value was missing (no
    /// default) or not a number. (A missing label is `unknown`, a missing
    /// signal key is left out: neither is a miss.)
    pub misses: BTreeMap<Arc<str>, u64>,
    /// Per metric: label values cut to [`LABEL_MAX_BYTES`].
    pub capped_labels: BTreeMap<Arc<str>, u64>,
    /// Records evaluated, and records at least one rule matched.
    pub records: u64,
    pub matched_records: u64,
    /// When set, signals carry an empty `sample`: for callers that only
    /// count signals (replay without `--alerts`), redacting each sample
    /// line would be most of the work.
    pub skip_samples: bool,
    /// When set, signals are only counted in `signals_counted`, never
    /// built: for callers that print no signal (replay without `--alerts`).
    pub count_signals_only: bool,
    pub signals_counted: u64,
    /// Signals raised, by name (built or only counted).
    pub signal_counts: BTreeMap<Arc<str>, u64>,
    /// When set, a counter update of a series already updated since the
    /// last [`Self::take_results`] is added to that first update instead of
    /// being pushed: for callers that fold whole batches (replay), whose
    /// fold then applies one update per counter series and batch rather
    /// than one per record. Series keep their first-update order, so the
    /// cardinality guard admits them in the same order. Sums are taken in
    /// another grouping: exact for whole counts.
    pub coalesce_counters: bool,
    group_taken: Vec<bool>,
    /// Metric name and raw label values → the redacted series. Label
    /// values repeat from record to record, so most updates neither redact
    /// nor allocate.
    series: FastMap<String, CachedSeries>,
    /// The rule set (its dispatch id) the series cache was filled by.
    series_owner: u64,
    /// Bumped by [`Self::take_results`]: a cached series' slot in
    /// `touched` is current only when its epoch is this one.
    epoch: u64,
    /// Raw signal key (prefixed by how it is masked) → the key as emitted:
    /// keys repeat too, and a pseudonym is an HMAC.
    keys: FastMap<String, String>,
    regex_memo: RegexMemo,
    scratch: String,
}

/// A series cache entry: the key, and where it sits in `touched` (valid
/// in epoch `epoch` only).
#[derive(Debug, Clone)]
struct CachedSeries {
    key: SeriesKey,
    epoch: u64,
    slot: u32,
    /// Where the series' first update of epoch `epoch` is in `updates`.
    first_update: u32,
    /// Whether a label value of the series was cut.
    capped: bool,
}

impl Evaluation {
    /// The metric updates in rule order, with their series.
    pub fn keyed_updates(&self) -> impl Iterator<Item = (&SeriesKey, Update)> + '_ {
        self.updates
            .iter()
            .filter_map(|(slot, update)| Some((self.touched.get(*slot as usize)?, *update)))
    }

    /// Moves out what was produced (updates, signals, misses, counts),
    /// keeping the caches for the records that follow.
    pub fn take_results(&mut self) -> Evaluation {
        self.take_results_reusing(Evaluation::default())
    }

    /// [`Self::take_results`], continuing in the buffers of `spare` (an
    /// evaluation already consumed, see [`Self::clear_results`]): a fresh
    /// buffer for every few thousand records cost a page fault per page
    /// and the kernel's zeroing of it.
    pub fn take_results_reusing(&mut self, spare: Evaluation) -> Evaluation {
        self.epoch += 1;
        Evaluation {
            touched: reuse_or_refill(&mut self.touched, spare.touched),
            updates: reuse_or_refill(&mut self.updates, spare.updates),
            signals: std::mem::take(&mut self.signals),
            misses: std::mem::take(&mut self.misses),
            capped_labels: std::mem::take(&mut self.capped_labels),
            records: std::mem::take(&mut self.records),
            matched_records: std::mem::take(&mut self.matched_records),
            skip_samples: self.skip_samples,
            count_signals_only: self.count_signals_only,
            signals_counted: std::mem::take(&mut self.signals_counted),
            signal_counts: std::mem::take(&mut self.signal_counts),
            coalesce_counters: self.coalesce_counters,
            ..Evaluation::default()
        }
    }

    /// Empties what [`Self::take_results`] moved out, keeping the buffers'
    /// room, for [`Self::take_results_reusing`].
    pub fn clear_results(&mut self) {
        self.touched.clear();
        self.updates.clear();
        self.signals.clear();
        self.misses.clear();
        self.capped_labels.clear();
        self.records = 0;
        self.matched_records = 0;
        self.signals_counted = 0;
        self.signal_counts.clear();
    }

    /// Total misses over all rules.
    pub fn miss_total(&self) -> u64 {
        self.misses.values().sum()
    }

    /// Records `update` of the series `key`.
    fn push_update(&mut self, key: SeriesKey, update: Update) {
        let slot = self.touched.len() as u32;
        self.touched.push(key);
        self.updates.push((slot, update));
    }

    fn masked_key(
        &mut self,
        how: Option<PseudonymizeAs>,
        raw: &str,
        redactor: &Redactor,
    ) -> String {
        self.scratch.clear();
        self.scratch.push(match how {
            Some(PseudonymizeAs::Ip) => 'i',
            Some(PseudonymizeAs::Email) => 'e',
            None => 'r',
        });
        self.scratch.push_str(raw);
        if let Some(masked) = self.keys.get(self.scratch.as_str()) {
            return masked.clone();
        }
        let masked = match how {
            Some(PseudonymizeAs::Ip) => redactor.pseudonym(PseudonymKind::Ip, raw),
            Some(PseudonymizeAs::Email) => redactor.pseudonym(PseudonymKind::Email, raw),
            None => cap_bytes(&redactor.redact_text(raw), LABEL_MAX_BYTES).into_owned(),
        };
        if self.keys.len() >= SERIES_CACHE_MAX {
            self.keys.clear();
        }
        self.keys.insert(self.scratch.clone(), masked.clone());
        masked
    }

    fn miss(&mut self, rule: &Arc<str>) {
        match self.misses.get_mut(rule) {
            Some(n) => *n += 1,
            None => {
                self.misses.insert(rule.clone(), 1);
            }
        }
    }
}

/// A validated, compiled rule file.
#[derive(Debug, Clone)]
pub struct RuleSet {
    file: String,
    rules: Vec<CompiledRule>,
    groups: usize,
    metrics: Vec<MetricInfo>,
    dispatch: Dispatch,
}

/// What makes evaluation cheap: which rules a record's logger can match at
/// all, and every rule regex in one [`PatternSet`], so a message is scanned
/// once rather than once per regex rule.
#[derive(Debug, Clone)]
struct Dispatch {
    /// Logger → the rules naming that logger or none, in order.
    by_logger: FastMap<String, Candidates>,
    /// Rules naming no logger: the candidates for any other logger.
    any_logger: Candidates,
    /// At most 64 patterns, so the hits of one message are a `u64`;
    /// `None` when the set did not compile.
    regexes: Option<PatternSet>,
    /// Rule index → its pattern's index in `regexes`.
    regex_of: Vec<Option<usize>>,
    /// Tells the rule sets apart in an [`Evaluation`]'s regex memo (a clone
    /// has the same regexes, so keeps the id).
    id: u64,
    /// The field values filters require (see [`Slot::required`]).
    required: Required,
}

/// The strings that rules' filters require a top-level field to hold
/// (`{ $.message = "HTTP request" && ... }`): a record's field is looked up
/// once for all of them, and a rule whose required string is not there is
/// skipped without evaluating its filter (three access-log rules ran their
/// filter on every record).
#[derive(Debug, Clone, Default)]
struct Required {
    /// The fields, at most [`REQUIRED_KEYS_MAX`].
    keys: Vec<Box<str>>,
    /// (index in `keys`, the string).
    texts: Vec<(usize, Box<str>)>,
}

/// Fields looked up per record for [`Required`]; a rule requiring another
/// field just evaluates its filter.
const REQUIRED_KEYS_MAX: usize = 4;

impl Required {
    fn index_of(&mut self, rule: &CompiledRule) -> u16 {
        let Some((key, text)) = rule.filter.as_ref().and_then(FilterPattern::required_text) else {
            return 0;
        };
        let key_at = match self.keys.iter().position(|k| &**k == key) {
            Some(at) => at,
            None if self.keys.len() < REQUIRED_KEYS_MAX => {
                self.keys.push(key.into());
                self.keys.len() - 1
            }
            None => return 0,
        };
        let at = match self
            .texts
            .iter()
            .position(|(k, t)| *k == key_at && &**t == text)
        {
            Some(at) => at,
            None => {
                self.texts.push((key_at, text.into()));
                self.texts.len() - 1
            }
        };
        u16::try_from(at + 1).unwrap_or(0)
    }

    /// Whether a record whose looked-up fields are `values` can match the
    /// rule of `slot`: not when the field is missing or holds another
    /// string (a number, whose text might be equal, is left to the filter).
    fn admits<'v>(
        &self,
        slot: u16,
        record: &'v LogRecord<'_>,
        values: &mut [Option<Option<&'v Json<'v>>>; REQUIRED_KEYS_MAX],
    ) -> bool {
        let Some((key_at, text)) = self.texts.get(usize::from(slot).wrapping_sub(1)) else {
            return true;
        };
        let value = *values[*key_at].get_or_insert_with(|| record.field(&self.keys[*key_at]));
        match value {
            None => false,
            Some(Json::String(s)) => s == &**text,
            Some(Json::Number(_)) => true,
            Some(_) => false,
        }
    }
}

/// One candidate rule, as the evaluation loop reads it: what rules the
/// rule out before the rule itself is read. Most records are ruled out of
/// most rules by their groups or the regex hits; read from this compact
/// list, rather than from each rule, that costs a few bytes per rule (the
/// rule-by-rule loop was a sixth of replay's time).
#[derive(Debug, Clone, Copy)]
struct Slot {
    rule: usize,
    /// Bits of the rule's groups numbered below 64.
    groups: u64,
    /// The rule also has groups numbered 64 or more (read from the rule).
    more_groups: bool,
    /// Its pattern's bit in the set's hits; 0 when its regex (if any) is
    /// not in the set.
    regex_bit: u64,
    /// 1 + the index in [`Dispatch::required`] of the string a field must
    /// hold for the rule's filter to match (see
    /// [`FilterPattern::required_text`]); 0 for none.
    required: u16,
}

impl Slot {
    fn new(
        rule: usize,
        compiled: &CompiledRule,
        regex_of: &[Option<usize>],
        required: &mut Required,
    ) -> Self {
        Slot {
            required: required.index_of(compiled),
            rule,
            groups: compiled
                .group
                .iter()
                .filter(|g| **g < 64)
                .fold(0, |acc, g| acc | (1 << g)),
            more_groups: compiled.group.iter().any(|g| *g >= 64),
            regex_bit: regex_of[rule].map_or(0, |at| 1 << at),
        }
    }
}

/// The rules a record of one logger may match, in order, and how to reach
/// the few it can match without reading the others: a rule the set decides
/// is read only when its pattern hit.
#[derive(Debug, Clone, Default)]
struct Candidates {
    slots: Vec<Slot>,
    /// Positions in `slots` of the rules the set does not decide.
    plain: Vec<u16>,
    /// The set's patterns among these rules, as bits...
    patterns: u64,
    /// ...and, by pattern index, the position in `slots` of its rule.
    position_of: Vec<u16>,
}

impl Candidates {
    fn new(slots: Vec<Slot>) -> Self {
        let mut plain = Vec::new();
        let mut patterns = 0;
        let mut position_of = vec![0; 64];
        for (at, slot) in slots.iter().enumerate() {
            // At most a few hundred rules: a position fits.
            let at = u16::try_from(at).unwrap_or(u16::MAX);
            if slot.regex_bit == 0 {
                plain.push(at);
            } else {
                patterns |= slot.regex_bit;
                position_of[slot.regex_bit.trailing_zeros() as usize] = at;
            }
        }
        Candidates {
            slots,
            plain,
            patterns,
            position_of,
        }
    }
}

/// Messages at most this long have their [`PatternSet`] hits remembered:
/// short messages are the repeated ones ("Authentication attempt"); long
/// ones mostly carry ids, times or addresses and never repeat.
const REGEX_MEMO_MAX_LEN: usize = 64;

/// Messages remembered per [`Evaluation`]; past this the memo is cleared.
const REGEX_MEMO_MAX: usize = 4096;

impl Dispatch {
    /// Which patterns of the set match `message`, as bits.
    fn regex_hits(&self, message: &str, memo: &mut RegexMemo) -> u64 {
        if memo.owner != self.id {
            memo.hits.clear();
            memo.owner = self.id;
        }
        let short = message.len() <= REGEX_MEMO_MAX_LEN;
        if short && let Some(hits) = memo.hits.get(message) {
            return *hits;
        }
        let hits = self.regexes.as_ref().map_or(0, |set| set.hits(message));
        if short {
            if memo.hits.len() >= REGEX_MEMO_MAX {
                memo.hits.clear();
            }
            memo.hits.insert(message.into(), hits);
        }
        hits
    }
}

/// Short messages → the [`PatternSet`] hits of the rule set `owner`.
#[derive(Debug, Clone, Default)]
struct RegexMemo {
    owner: u64,
    hits: FastMap<Box<str>, u64>,
}

impl Dispatch {
    fn new(rules: &[CompiledRule]) -> Self {
        let mut regex_of = Vec::with_capacity(rules.len());
        let mut patterns = Vec::new();
        let mut parsed = Vec::new();
        for rule in rules {
            // Past 64 patterns (the hit bits), a regex is tried on its own.
            regex_of.push(
                rule.regex
                    .as_ref()
                    .filter(|_| patterns.len() < 64)
                    .map(|re| {
                        patterns.push(re.as_str().to_owned());
                        parsed.push(re.parsed.clone());
                        patterns.len() - 1
                    }),
            );
        }
        let parsed: Option<Vec<Arc<Hir>>> = parsed.into_iter().collect();
        // Each pattern was parsed at validation; should the set not
        // compile (its program past the size limit), every regex rule is
        // compiled at load and tried on its own
        // (`compile_unshared_regexes`).
        let regexes = PatternSet::new(&patterns, parsed.as_deref());
        if regexes.is_none() {
            regex_of.iter_mut().for_each(|r| *r = None);
        }
        let mut required = Required::default();
        let mut slots = |keep: &dyn Fn(&CompiledRule) -> bool| -> Vec<Slot> {
            (0..rules.len())
                .filter(|i| keep(&rules[*i]))
                .map(|i| Slot::new(i, &rules[i], &regex_of, &mut required))
                .collect()
        };
        let any_logger = Candidates::new(slots(&|r| r.logger.is_none()));
        let mut by_logger: FastMap<String, Candidates> = FastMap::default();
        for logger in rules.iter().filter_map(|r| r.logger.as_ref()) {
            if !by_logger.contains_key(logger) {
                let list = slots(&|r| r.logger.as_ref().is_none_or(|l| l == logger));
                by_logger.insert(logger.clone(), Candidates::new(list));
            }
        }
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Dispatch {
            by_logger,
            any_logger,
            regexes,
            regex_of,
            required,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl RuleSet {
    /// Every rule's regex, in rule order.
    #[cfg(test)]
    pub(crate) fn regex_patterns(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter_map(|r| r.regex.as_ref().map(RuleRegex::as_str))
            .collect()
    }

    pub(crate) fn new(
        file: String,
        mut rules: Vec<CompiledRule>,
        groups: usize,
        metrics: Vec<MetricInfo>,
    ) -> Self {
        for metric in rules.iter_mut().flat_map(|r| r.metrics.iter_mut()) {
            metric.key_id = metrics
                .iter()
                .position(|m| *m.name == *metric.name)
                .and_then(|at| u32::try_from(at).ok())
                .and_then(char::from_u32);
        }
        let dispatch = Dispatch::new(&rules);
        for regex in rules.iter_mut().filter_map(|r| r.regex.as_mut()) {
            regex.parsed = None;
        }
        RuleSet {
            file,
            rules,
            groups,
            metrics,
            dispatch,
        }
    }

    #[cfg(test)]
    pub(crate) fn rule(&self, index: usize) -> &CompiledRule {
        &self.rules[index]
    }

    /// Compiles the regexes the set does not hold (past its 64 patterns, or
    /// all of them if the set did not compile), which every record runs;
    /// the error names the rule whose regex does not compile.
    pub(crate) fn compile_unshared_regexes(&self) -> Result<(), (usize, regex::Error)> {
        for (index, rule) in self.rules.iter().enumerate() {
            if self.dispatch.regex_of[index].is_none()
                && let Some(re) = &rule.regex
            {
                re.compile_now().map_err(|e| (index, e))?;
            }
        }
        Ok(())
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every metric the rules can update, sorted by name.
    pub fn metrics(&self) -> &[MetricInfo] {
        &self.metrics
    }

    /// Every signal the rules can raise, with the key names any rule gives
    /// it.
    pub fn signals(&self) -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for signal in self.rules.iter().flat_map(|r| &r.signals) {
            out.entry(signal.name.to_string())
                .or_default()
                .extend(signal.keys.iter().map(|k| k.name.to_string()));
        }
        out
    }

    /// Evaluates every rule against `record`, appending to `out`.
    pub fn evaluate(&self, record: &LogRecord<'_>, redactor: &Redactor, out: &mut Evaluation) {
        out.records += 1;
        if out.series_owner != self.dispatch.id {
            // Another rule set may give a metric other label names.
            out.series.clear();
            out.series_owner = self.dispatch.id;
        }
        // Groups numbered below 64 are bits here; the others (a rule file
        // with that many groups) are flags in `out.group_taken`.
        let mut taken: u64 = 0;
        if self.groups > 64 {
            out.group_taken.clear();
            out.group_taken.resize(self.groups, false);
        }
        let mut sample: Option<String> = None;
        let mut matched = false;
        let dispatch = &self.dispatch;
        let candidates = dispatch
            .by_logger
            .get(record.logger.as_ref())
            .unwrap_or(&dispatch.any_logger);
        // What regexes search (see LogRecord::searchable), made once.
        let searchable = std::cell::OnceCell::new();
        let text = || -> &str { searchable.get_or_init(|| record.searchable()) };
        // The set's answer first (one scan per record, shared by every
        // rule; all of a rule's tests must pass, so it may come first):
        // of the rules it decides, only those whose pattern hit are read.
        let hits = if candidates.patterns == 0 {
            0
        } else {
            dispatch.regex_hits(text(), &mut out.regex_memo) & candidates.patterns
        };
        let mut hit_positions = [0u16; 64];
        let mut hit_count = 0;
        let mut bits = hits;
        while bits != 0 {
            // Patterns are numbered in rule order: positions ascend.
            hit_positions[hit_count] = candidates.position_of[bits.trailing_zeros() as usize];
            hit_count += 1;
            bits &= bits - 1;
        }
        // Fields filters require, looked up once per record.
        let mut required = [None; REQUIRED_KEYS_MAX];
        let mut plain = candidates.plain.iter().copied().peekable();
        let mut hit = hit_positions[..hit_count].iter().copied().peekable();
        // The two ascending lists merged: the candidates in rule order.
        let next = || match (plain.peek(), hit.peek()) {
            (Some(p), Some(h)) if p < h => plain.next(),
            (Some(_), Some(_)) | (None, Some(_)) => hit.next(),
            (Some(_), None) => plain.next(),
            (None, None) => None,
        };
        for at in std::iter::from_fn(next) {
            let slot = &candidates.slots[usize::from(at)];
            if slot.groups & taken != 0 {
                continue;
            }
            if slot.required != 0
                && !dispatch
                    .required
                    .admits(slot.required, record, &mut required)
            {
                continue;
            }
            let rule = &self.rules[slot.rule];
            if slot.more_groups && rule.group.iter().any(|g| *g >= 64 && out.group_taken[*g]) {
                continue;
            }
            let in_set = slot.regex_bit != 0;
            // Not in the set: the rule's own regex is tested.
            let regex_hit = || {
                in_set
                    || rule
                        .regex
                        .as_ref()
                        .and_then(RuleRegex::get)
                        .is_some_and(|re| re.is_match(text()))
            };
            let Some(caps) = rule.matches(record, text, regex_hit) else {
                continue;
            };
            taken |= slot.groups;
            if slot.more_groups {
                for g in rule.group.iter().filter(|g| **g >= 64) {
                    out.group_taken[*g] = true;
                }
            }
            matched = true;
            let caps = caps.as_ref();
            for metric in &rule.metrics {
                apply_metric(rule, metric, record, caps, redactor, out);
            }
            for signal in &rule.signals {
                if signal
                    .when
                    .as_ref()
                    .is_some_and(|w| !w.matches(record.raw, record.json.as_ref()))
                {
                    continue;
                }
                count_one(&mut out.signal_counts, &signal.name);
                if out.count_signals_only {
                    out.signals_counted += 1;
                    continue;
                }
                let mut keys = Vec::with_capacity(signal.keys.len());
                for k in &signal.keys {
                    if let Some(raw) = k.spec.text(record, caps) {
                        let masked = out.masked_key(k.pseudonymize, &raw, redactor);
                        keys.push((k.name.clone(), masked));
                    }
                }
                let sample = if out.skip_samples {
                    String::new()
                } else {
                    sample
                        .get_or_insert_with(|| {
                            truncate_chars(redactor.redact_text(record.raw), SAMPLE_MAX_CHARS)
                        })
                        .clone()
                };
                out.signals.push(Signal {
                    name: signal.name.clone(),
                    keys,
                    event_id: record.event_id.to_owned(),
                    timestamp_ms: record.timestamp_ms,
                    sample,
                });
            }
        }
        if matched {
            out.matched_records += 1;
        }
    }
}

fn apply_metric(
    rule: &CompiledRule,
    metric: &CompiledMetric,
    record: &LogRecord<'_>,
    caps: Option<&Captures<'_>>,
    redactor: &Redactor,
    out: &mut Evaluation,
) {
    if metric
        .when
        .as_ref()
        .is_some_and(|w| !w.matches(record.raw, record.json.as_ref()))
    {
        return;
    }
    let value = match &metric.value {
        None => None,
        Some(spec) => match spec.number(record, caps) {
            Some(v) if v.is_finite() => Some(v * metric.scale),
            _ => {
                out.miss(&rule.name);
                return;
            }
        },
    };
    let update = match metric.op {
        MetricOp::CounterAdd => {
            let v = value.unwrap_or(1.0);
            if v < 0.0 {
                out.miss(&rule.name);
                return;
            }
            Update::CounterAdd(v)
        }
        MetricOp::GaugeAdd(sign) => Update::GaugeAdd(sign * value.unwrap_or(1.0)),
        MetricOp::GaugeSet => Update::GaugeSet(value.unwrap_or_default()),
        MetricOp::Observe => Update::Observe(value.unwrap_or_default()),
    };
    // The cache key: the metric's id (one char), then each label's source
    // text as the record has it (before map, transform and default, see
    // `ValueSpec::append_key`) followed by one char: the text's length in
    // bytes, or a mark for a missing or unusable value (the label names
    // are the metric's: one set per metric, and the cache is emptied when
    // the rule set changes). Read from its end, the key gives back each
    // text whatever bytes it holds, so no value can forge another's key
    // and none needs scanning (a scan for forged separators had a sixth of
    // this function's perf samples). A text too long for its length to be
    // such a char bypasses the cache.
    let mut scratch = std::mem::take(&mut out.scratch);
    scratch.clear();
    let mut cacheable = metric.key_id.is_some();
    scratch.push(metric.key_id.unwrap_or_default());
    for (_, spec) in &metric.labels {
        let start = scratch.len();
        let end = match spec.append_key(record, caps, &mut scratch) {
            RawText::Present => u32::try_from(scratch.len() - start)
                .ok()
                .filter(|len| *len < KEY_MISSING as u32)
                .and_then(char::from_u32),
            RawText::Missing => Some(KEY_MISSING),
            RawText::Unusable => Some(KEY_UNUSABLE),
        };
        match end {
            Some(end) => scratch.push(end),
            None => cacheable = false,
        }
    }
    let epoch = out.epoch;
    let cached = if cacheable {
        out.series.get_mut(scratch.as_str())
    } else {
        None
    };
    let key = match cached {
        // Already touched this epoch: no key to clone.
        Some(c) if c.epoch == epoch => {
            if c.capped {
                count_one(&mut out.capped_labels, &metric.name);
            }
            if let (true, Update::CounterAdd(v)) = (out.coalesce_counters, update)
                && let Some((_, Update::CounterAdd(total))) =
                    out.updates.get_mut(c.first_update as usize)
            {
                *total += v;
            } else {
                out.updates.push((c.slot, update));
            }
            out.scratch = scratch;
            return;
        }
        Some(c) => {
            if c.capped {
                count_one(&mut out.capped_labels, &metric.name);
            }
            c.epoch = epoch;
            c.slot = out.touched.len() as u32;
            c.first_update = out.updates.len() as u32;
            out.touched.push(c.key.clone());
            out.updates.push((c.slot, update));
            out.scratch = scratch;
            return;
        }
        None => {
            let mut labels: Vec<(String, String)> = Vec::with_capacity(metric.labels.len());
            let mut capped = false;
            for (name, spec) in &metric.labels {
                let text = spec
                    .text(record, caps)
                    .unwrap_or(Cow::Borrowed(MISSING_LABEL));
                let redacted = match redactor.redact_text(&text) {
                    Cow::Borrowed(_) => text.into_owned(),
                    Cow::Owned(s) => s,
                };
                let value = match cap_bytes(&redacted, LABEL_MAX_BYTES) {
                    Cow::Borrowed(_) => redacted,
                    Cow::Owned(cut) => {
                        capped = true;
                        cut
                    }
                };
                labels.push((name.to_string(), value));
            }
            if capped {
                count_one(&mut out.capped_labels, &metric.name);
            }
            let key = SeriesKey::new(metric.name.as_ref(), labels);
            if cacheable {
                if out.series.len() >= SERIES_CACHE_MAX {
                    out.series.clear();
                }
                let slot = out.touched.len() as u32;
                out.series.insert(
                    scratch.clone(),
                    CachedSeries {
                        key: key.clone(),
                        epoch,
                        slot,
                        first_update: out.updates.len() as u32,
                        capped,
                    },
                );
            }
            key
        }
    };
    out.scratch = scratch;
    out.push_update(key, update);
}

/// Series-cache key marks of a label with no value or no text; below
/// them, a char is a text's length (surrogates, just below, are no chars).
const KEY_MISSING: char = '\u{E000}';
const KEY_UNUSABLE: char = '\u{E001}';

/// Adds one under `name`, cloning the name only the first time.
fn count_one(counts: &mut BTreeMap<Arc<str>, u64>, name: &Arc<str>) {
    match counts.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            counts.insert(name.clone(), 1);
        }
    }
}

/// Takes `v`, leaving `spare` (emptied) in its place, or an empty vector
/// with room for as many items when `spare` has less: the next batch is
/// likely as large, and growing again would copy it.
fn reuse_or_refill<T>(v: &mut Vec<T>, mut spare: Vec<T>) -> Vec<T> {
    spare.clear();
    if spare.capacity() < v.len() {
        spare = Vec::with_capacity(v.len());
    }
    std::mem::replace(v, spare)
}

fn truncate_chars(text: Cow<'_, str>, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::logs::parse::RecordParser;
    use crate::domain::logs::record::LogEvent;

    const KEY: &[u8] = b"0123456789abcdef-test-key";

    fn redactor() -> Redactor {
        Redactor::new(KEY).unwrap()
    }

    fn run(rules: &RuleSet, messages: &[&str]) -> Evaluation {
        run_into(rules, messages, Evaluation::default())
    }

    /// [`run`], continuing `out` (with its flags).
    fn run_into(rules: &RuleSet, messages: &[&str], mut out: Evaluation) -> Evaluation {
        let redactor = redactor();
        // Record times as written: these events' own are made up.
        let mut parser = RecordParser::new(crate::domain::logs::parse::ParseSettings {
            time_bounds: None,
            ..Default::default()
        });
        for (i, m) in messages.iter().enumerate() {
            let event = LogEvent {
                id: format!("e{i}"),
                timestamp_ms: 1_000 + i as i64,
                message: (*m).to_owned(),
            };
            match parser.parse(&event) {
                Ok(r) => rules.evaluate(&r, &redactor, &mut out),
                other => panic!("not a record: {m}: {other:?}"),
            }
        }
        out
    }

    fn defaults(messages: &[&str]) -> Evaluation {
        run(&RuleSet::default_rules().unwrap(), messages)
    }

    /// Updates as sorted `series op` lines: `+1` counter/gauge steps,
    /// `=v` gauge sets, `obs v` observations (6 decimals).
    fn lines(ev: &Evaluation) -> Vec<String> {
        let mut out: Vec<String> = ev
            .keyed_updates()
            .map(|(k, u)| {
                let op = match u {
                    Update::CounterAdd(v) | Update::GaugeAdd(v) => format!("{v:+}"),
                    Update::GaugeSet(v) => format!("={v}"),
                    Update::Observe(v) => format!("obs {v:.6}"),
                };
                format!("{} {op}", k.compact())
            })
            .collect();
        out.sort();
        out
    }

    fn expect(ev: &Evaluation, want: &[&str]) {
        let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(lines(ev), want);
        assert_eq!(ev.miss_total(), 0, "misses: {:?}", ev.misses);
    }

    /// `name key_name=key` per signal, in order.
    fn signals(ev: &Evaluation) -> Vec<String> {
        ev.signals
            .iter()
            .map(|s| {
                if s.keys.is_empty() {
                    format!("{} -=", s.name)
                } else {
                    let keys: Vec<String> =
                        s.keys.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    format!("{} {}", s.name, keys.join(" "))
                }
            })
            .collect()
    }

    fn json(logger: &str, level: &str, message: &str, extra: &str) -> String {
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(",{extra}")
        };
        format!(
            r#"{{"timestamp":"2025-05-20T10:30:00.123Z","level":"{level}","logger":"{logger}","message":"{message}"{extra}}}"#
        )
    }

    fn text(logger: &str, level: &str, message: &str) -> String {
        format!("2025-05-18 07:42:54,855 - {logger} - {level} - {message}")
    }

    #[test]
    fn default_rules_load_and_declare_the_contract_metrics() {
        let rules = RuleSet::default_rules().unwrap();
        let names: Vec<(&str, MetricKind)> = rules
            .metrics()
            .iter()
            .map(|m| (m.name.as_str(), m.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("active_sessions", MetricKind::Gauge),
                ("api_request_duration_seconds", MetricKind::Histogram),
                ("auth_defence_events_total", MetricKind::Counter),
                ("auth_request_duration_seconds", MetricKind::Histogram),
                ("auth_requests_total", MetricKind::Counter),
                ("config_changes_total", MetricKind::Counter),
                ("dependency_errors_total", MetricKind::Counter),
                ("drift_changes_total", MetricKind::Counter),
                ("drift_comparisons_total", MetricKind::Counter),
                ("drift_detections_total", MetricKind::Counter),
                ("drift_scan_errors_total", MetricKind::Counter),
                ("drift_scans_total", MetricKind::Counter),
                ("graph_api_errors_total", MetricKind::Counter),
                ("http_requests_total", MetricKind::Counter),
                ("log_messages_total", MetricKind::Counter),
                ("permission_denials_total", MetricKind::Counter),
                ("scheduler_jobs_total", MetricKind::Counter),
                ("token_operations_total", MetricKind::Counter),
                ("user_operations_total", MetricKind::Counter),
            ]
        );
        assert_eq!(rules.file(), DEFAULT_RULES_FILE);
    }

    #[test]
    fn json_authentication_attempt() {
        let ev = defaults(&[&json(
            "security",
            "WARNING",
            "Authentication attempt",
            r#""user_id":"7c0e","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login","duration_ms":41.7"#,
        )]);
        expect(
            &ev,
            &[
                "auth_request_duration_seconds{endpoint=/api/auth/login} obs 0.041700",
                "auth_requests_total{endpoint=/api/auth/login,method=password,status=failure} +1",
                "log_messages_total{level=WARNING,logger=security} +1",
            ],
        );
        let ip = redactor().pseudonym(PseudonymKind::Ip, "203.0.113.7");
        assert!(ip.starts_with("ip:"));
        assert_eq!(signals(&ev), [format!("auth_failures ip={ip} user=7c0e"),]);
        let s = &ev.signals[0];
        assert_eq!(
            (s.event_id.as_str(), s.timestamp_ms),
            ("e0", 1_747_737_000_123)
        );
        assert!(
            !s.sample.contains("203.0.113.7"),
            "sample is redacted: {}",
            s.sample
        );
        assert!(s.sample.contains(&ip), "{}", s.sample);

        // Aliases (`levelname`, `name`, `msg`), success, integer duration.
        let ev = defaults(&[
            r#"{"levelname":"INFO","name":"security","msg":"Authentication attempt","success":true,"method":"oauth2","endpoint":"/api/auth/callback","duration_ms":12}"#,
        ]);
        expect(
            &ev,
            &[
                "auth_request_duration_seconds{endpoint=/api/auth/callback} obs 0.012000",
                "auth_requests_total{endpoint=/api/auth/callback,method=oauth2,status=success} +1",
                "log_messages_total{level=INFO,logger=security} +1",
            ],
        );
        // A success closes the suspected_compromise sequences (this record
        // names no user or address: the signal carries no key).
        assert_eq!(signals(&ev), ["auth_successes -="]);
    }

    #[test]
    fn only_the_services_json_record_says_a_login_succeeded() {
        let ev = defaults(&[&json(
            "security",
            "INFO",
            "Authentication attempt",
            r#""user_id":"u-admin","ip_address":"203.0.113.7","success":true"#,
        )]);
        let ip = redactor().pseudonym(PseudonymKind::Ip, "203.0.113.7");
        assert_eq!(
            signals(&ev),
            [format!("auth_successes ip={ip} user=u-admin")]
        );
        // What an outsider can shape: a username in a text record spelling
        // a successful login of someone else, as a JSON record or in words,
        // on the same line or on the lines after it (one event); a string
        // `"true"`; a JSON value smuggling fields into a failure.
        let fake = r#"{"logger":"security","message":"Authentication attempt","user_id":"u-admin","success":true}"#;
        for message in [
            text(
                "app.api.routes.auth",
                "WARNING",
                &format!("Login failed for user {fake}"),
            ),
            text(
                "app.api.routes.auth",
                "WARNING",
                &format!(
                    "Login failed for user x\n{fake}\nAuthentication attempt succeeded for user_id=u-admin success=true"
                ),
            ),
            text(
                "security",
                "INFO",
                "Authentication attempt user_id=u-admin success=true",
            ),
            json(
                "security",
                "INFO",
                "Authentication attempt",
                r#""user_id":"u-admin","success":"true""#,
            ),
            json(
                "security",
                "WARNING",
                "Authentication attempt",
                r#""user_id":"u-admin\",\"success\":true,\"x\":\"","success":false"#,
            ),
        ] {
            let ev = defaults(&[&message]);
            assert!(
                ev.signals.iter().all(|s| &*s.name != "auth_successes"),
                "{message}: {:?}",
                signals(&ev)
            );
        }
    }

    #[test]
    fn json_token_operations() {
        let ev = defaults(&[
            &json(
                "security",
                "INFO",
                "Token operation",
                r#""operation":"revoke","token_type":"refresh","status":"success","user_id":"u1""#,
            ),
            &json(
                "security",
                "WARNING",
                "Token operation",
                r#""operation":"validate","token_type":"access","status":"failure","user_id":"u2""#,
            ),
            &json(
                "security",
                "INFO",
                "Token operation",
                r#""operation":"issue","token_type":"id","user_id":"u3""#,
            ),
            &json(
                "security",
                "INFO",
                "Token operation",
                r#""operation":"validate","token_type":"access","status":"success","user_id":"u4""#,
            ),
        ]);
        expect(
            &ev,
            &[
                "log_messages_total{level=INFO,logger=security} +1",
                "log_messages_total{level=INFO,logger=security} +1",
                "log_messages_total{level=INFO,logger=security} +1",
                "log_messages_total{level=WARNING,logger=security} +1",
                "token_operations_total{operation=issue,status=success,token_type=id} +1",
                "token_operations_total{operation=revoke,status=success,token_type=refresh} +1",
                "token_operations_total{operation=validate,status=failure,token_type=access} +1",
                "token_operations_total{operation=validate,status=success,token_type=access} +1",
            ],
        );
        assert_eq!(
            signals(&ev),
            ["token_revocations user=u1", "auth_failures user=u2"]
        );
    }

    #[test]
    fn json_permission_denied_and_sessions() {
        let ev = defaults(&[
            &json(
                "security",
                "WARNING",
                "Permission denied",
                r#""user_id":"u1","permission":"users:write","endpoint":"/api/users/42""#,
            ),
            &json(
                "security",
                "INFO",
                "Session created",
                r#""user_id":"u1","session_id":"s1""#,
            ),
            &json(
                "security",
                "INFO",
                "Session ended",
                r#""user_id":"u1","session_id":"s1""#,
            ),
        ]);
        expect(
            &ev,
            &[
                "active_sessions{} +1",
                "active_sessions{} -1",
                "log_messages_total{level=INFO,logger=security} +1",
                "log_messages_total{level=INFO,logger=security} +1",
                "log_messages_total{level=WARNING,logger=security} +1",
                "permission_denials_total{permission=users:write} +1",
            ],
        );
        assert_eq!(signals(&ev), ["permission_violations user=u1"]);
    }

    #[test]
    fn json_audit_records() {
        let audit = |m: &str, extra: &str| json("audit", "INFO", m, extra);
        let ev = defaults(&[
            &audit(
                "Role modified",
                r#""role_id":3,"modifier_id":"m1","changes":{"added":["x"]},"user_id":"u1""#,
            ),
            &audit(
                "Role assigned",
                r#""role_id":3,"modifier_id":"m1","user_id":"u1""#,
            ),
            &audit("Role removed", r#""modifier_id":"m1""#),
            &audit("Permission granted", r#""modifier_id":"m2""#),
            &audit(
                "Permission revoked",
                r#""modifier_id":"m2","status":"failure""#,
            ),
            &audit("User created", r#""user_id":"u1","modifier_id":"m1""#),
            &audit(
                "User updated",
                r#""user_id":"u1","modifier_id":"m1","status":"failure""#,
            ),
            &audit("User deleted", r#""user_id":"u1","modifier_id":"m1""#),
            &audit(
                "Configuration changed",
                r#""setting":"session_timeout","modifier_id":"m3""#,
            ),
        ]);
        let mut want = vec!["log_messages_total{level=INFO,logger=audit} +1"; 9];
        want.extend([
            "user_operations_total{operation=role_modified,status=success} +1",
            "user_operations_total{operation=role_assigned,status=success} +1",
            "user_operations_total{operation=role_removed,status=success} +1",
            "user_operations_total{operation=permission_granted,status=success} +1",
            "user_operations_total{operation=permission_revoked,status=failure} +1",
            "user_operations_total{operation=create,status=success} +1",
            "user_operations_total{operation=update,status=failure} +1",
            "user_operations_total{operation=delete,status=success} +1",
            "config_changes_total{setting=session_timeout} +1",
        ]);
        expect(&ev, &want);
        assert_eq!(
            signals(&ev),
            [
                "privilege_changes user=m1",
                "privilege_changes user=m1",
                "privilege_changes user=m1",
                "privilege_changes user=m2",
                "privilege_changes user=m2",
                "config_changes user=m3",
            ]
        );
    }

    #[test]
    fn json_api_requests() {
        let ev = defaults(&[
            &json(
                "performance",
                "INFO",
                "API request completed",
                r#""endpoint":"/api/users/1234","method":"GET","status_code":200,"duration_ms":44.2"#,
            ),
            &json(
                "performance",
                "ERROR",
                "API request completed",
                r#""endpoint":"/api/roles/7c0e0d7a-1b2c-4d5e-8f90-a1b2c3d4e5f6","method":"PUT","status_code":503,"duration_ms":1500"#,
            ),
        ]);
        expect(
            &ev,
            &[
                "api_request_duration_seconds{endpoint=/api/roles/:id,method=PUT,status_code=503} obs 1.500000",
                "api_request_duration_seconds{endpoint=/api/users/:id,method=GET,status_code=200} obs 0.044200",
                "log_messages_total{level=ERROR,logger=performance} +1",
                "log_messages_total{level=INFO,logger=performance} +1",
            ],
        );
        assert_eq!(
            signals(&ev),
            [
                "error_logs logger=performance",
                "api_errors endpoint=/api/roles/:id",
                "slow_requests endpoint=/api/roles/:id",
            ]
        );
    }

    #[test]
    fn json_drift_records() {
        let ev = defaults(&[
            &json(
                "drift",
                "WARNING",
                "Drift detected",
                r#""severity":"high","status":"new","category":"role""#,
            ),
            &json(
                "drift",
                "INFO",
                "Drift scan completed",
                r#""duration_ms":900,"changes":2"#,
            ),
            &json("drift", "ERROR", "Drift scan failed", r#""duration_ms":12"#),
        ]);
        expect(
            &ev,
            &[
                "drift_detections_total{severity=high,status=new} +1",
                "drift_scans_total{status=failed} +1",
                "drift_scans_total{status=success} +1",
                "log_messages_total{level=ERROR,logger=drift} +1",
                "log_messages_total{level=INFO,logger=drift} +1",
                "log_messages_total{level=WARNING,logger=drift} +1",
            ],
        );
        assert_eq!(
            signals(&ev),
            [
                "drift_detected category=role",
                "drift_scan_heartbeat -=",
                "error_logs logger=drift",
                "drift_scan_failures -=",
            ]
        );
    }

    #[test]
    fn any_error_or_critical_record() {
        let ev = defaults(&[
            &json("app.worker", "CRITICAL", "Out of memory", ""),
            &text("app.main", "ERROR", "Something broke"),
            &text("app.main", "DEBUG", "noise"),
        ]);
        expect(
            &ev,
            &[
                "log_messages_total{level=CRITICAL,logger=app.worker} +1",
                "log_messages_total{level=DEBUG,logger=app.main} +1",
                "log_messages_total{level=ERROR,logger=app.main} +1",
            ],
        );
        assert_eq!(
            signals(&ev),
            ["error_logs logger=app.worker", "error_logs logger=app.main"]
        );
    }

    #[test]
    fn text_records_of_the_contract() {
        let sec = "app.core.security";
        let auth = "app.api.routes.auth";
        let drift = "app.services.drift_service";
        let ev = defaults(&[
            &text(
                sec,
                "INFO",
                "Access token created for user ana@example.com, expires at 2025-05-18 10:42:54.855515",
            ),
            &text(
                sec,
                "INFO",
                "Refresh token created for user ana@example.com, expires at 2025-05-18 10:42:54.855515",
            ),
            &text(
                auth,
                "INFO",
                "Initiating OAuth2 flow with state: 0f8fad5b-d9cb-469f-a165-70867728950e",
            ),
            &text(
                auth,
                "WARNING",
                "Invalid state parameter: 0f8fad5b-d9cb-469f-a165-70867728950e",
            ),
            &text(auth, "INFO", "Created new user: ana@example.com"),
            &text(drift, "INFO", "Starting drift detection job"),
            &text(
                drift,
                "ERROR",
                "Error during drift detection: timeout contacting Microsoft Graph",
            ),
            &(text(
                "app.core.database",
                "ERROR",
                "Database error: (psycopg.OperationalError) connection refused",
            ) + "\n[SQL: SELECT user.id FROM user WHERE user.azure_object_id = %s]"),
        ]);
        expect(
            &ev,
            &[
                "auth_requests_total{endpoint=/api/auth/callback,method=oauth2,status=failure} +1",
                "auth_requests_total{endpoint=/api/auth/login,method=oauth2,status=initiated} +1",
                "dependency_errors_total{dependency=database,kind=error} +1",
                "drift_scans_total{status=failed} +1",
                "drift_scans_total{status=started} +1",
                "log_messages_total{level=ERROR,logger=app.core.database} +1",
                "log_messages_total{level=ERROR,logger=app.services.drift_service} +1",
                "log_messages_total{level=INFO,logger=app.api.routes.auth} +1",
                "log_messages_total{level=INFO,logger=app.api.routes.auth} +1",
                "log_messages_total{level=INFO,logger=app.core.security} +1",
                "log_messages_total{level=INFO,logger=app.core.security} +1",
                "log_messages_total{level=INFO,logger=app.services.drift_service} +1",
                "log_messages_total{level=WARNING,logger=app.api.routes.auth} +1",
                "token_operations_total{operation=issue,status=success,token_type=access} +1",
                "token_operations_total{operation=issue,status=success,token_type=refresh} +1",
                "user_operations_total{operation=create,status=success} +1",
            ],
        );
        assert_eq!(
            signals(&ev),
            [
                "auth_failures -=",
                "error_logs logger=app.services.drift_service",
                "drift_scan_failures -=",
                "error_logs logger=app.core.database",
                "database_errors logger=app.core.database",
            ]
        );
        // The sample of a text record is the whole event, redacted.
        let db = ev.signals.last().unwrap();
        assert!(db.sample.contains("[SQL: SELECT"), "{}", db.sample);
    }

    #[test]
    fn other_wordings_are_classified_once() {
        let auth = "app.api.deps";
        for message in [
            "Invalid token: signature verification failed",
            "Token has expired for user ana@example.com",
            "Authentication failed for user ana@example.com",
            "Could not validate credentials",
            "Missing credentials in request",
            "Expired signature on ID token",
            "Failed to validate token: bad audience",
        ] {
            let ev = defaults(&[&text(auth, "WARNING", message)]);
            expect(
                &ev,
                &[
                    "auth_requests_total{endpoint=unknown,method=unknown,status=failure} +1",
                    "log_messages_total{level=WARNING,logger=app.api.deps} +1",
                ],
            );
            assert_eq!(signals(&ev), ["auth_failures -="], "{message}");
        }
        let drift = "app.services.drift_service";
        for message in [
            "Drift detection job failed: Graph API returned 503",
            "Unexpected exception in drift scan",
            "Error during drift detection: drift scan failed",
        ] {
            let ev = defaults(&[&text(drift, "WARNING", message)]);
            expect(
                &ev,
                &[
                    "drift_scans_total{status=failed} +1",
                    "log_messages_total{level=WARNING,logger=app.services.drift_service} +1",
                ],
            );
            assert_eq!(signals(&ev), ["drift_scan_failures -="], "{message}");
        }
        // Near misses stay plain log lines.
        for message in [
            "Database and tables created successfully",
            "Access token refresh requested",
            "Drift report generated",
            "Token validation succeeded",
        ] {
            let ev = defaults(&[&text(auth, "INFO", message)]);
            expect(
                &ev,
                &["log_messages_total{level=INFO,logger=app.api.deps} +1"],
            );
            assert!(ev.signals.is_empty(), "{message}: {:?}", signals(&ev));
        }
    }

    const GROUPED: &str = r#"
        [[rule]]
        name = "specific"
        group = "g"
        regex = '^Invalid state'
        [[rule.metric]]
        name = "hits_total"
        type = "counter"
        labels = { rule = "specific" }

        [[rule]]
        name = "general"
        group = "g"
        regex = '(?i)invalid'
        [[rule.metric]]
        name = "hits_total"
        type = "counter"
        labels = { rule = "general" }

        [[rule]]
        name = "ungrouped"
        regex = '(?i)invalid'
        [[rule.metric]]
        name = "hits_total"
        type = "counter"
        labels = { rule = "ungrouped" }
    "#;

    #[test]
    fn first_matching_rule_of_a_group_wins() {
        let rules = RuleSet::from_toml(GROUPED, "grouped.toml").unwrap();
        let ev = run(&rules, &[&text("a", "INFO", "Invalid state parameter: x")]);
        expect(
            &ev,
            &[
                "hits_total{rule=specific} +1",
                "hits_total{rule=ungrouped} +1",
            ],
        );
        let ev = run(&rules, &[&text("a", "INFO", "invalid token")]);
        expect(
            &ev,
            &[
                "hits_total{rule=general} +1",
                "hits_total{rule=ungrouped} +1",
            ],
        );
        let ev = run(&rules, &[&text("a", "INFO", "fine")]);
        assert!(ev.updates.is_empty());
        assert_eq!((ev.records, ev.matched_records), (1, 0));
    }

    /// Groups past the 64 the evaluation loop keeps as bits still hold.
    #[test]
    fn groups_numbered_past_64_still_take_the_record() {
        let mut file = String::new();
        for n in 0..70 {
            // Each filler group's rule matches nothing.
            file.push_str(&format!(
                "[[rule]]\nname = \"filler{n}\"\ngroup = \"g{n}\"\nregex = 'never{n}x'\n\
                 [[rule.metric]]\nname = \"hits_total\"\ntype = \"counter\"\nlabels = {{ rule = \"filler\" }}\n"
            ));
        }
        for (name, regex) in [
            ("specific", "(?i)invalid state"),
            ("general", "(?i)invalid"),
        ] {
            file.push_str(&format!(
                "[[rule]]\nname = \"{name}\"\ngroup = [\"g3\", \"g69\"]\nregex = '{regex}'\n\
                 [[rule.metric]]\nname = \"hits_total\"\ntype = \"counter\"\nlabels = {{ rule = \"{name}\" }}\n"
            ));
        }
        // Only in group 69: taken by `specific` too.
        file.push_str(
            "[[rule]]\nname = \"late\"\ngroup = \"g69\"\nregex = '(?i)invalid'\n\
             [[rule.metric]]\nname = \"hits_total\"\ntype = \"counter\"\nlabels = { rule = \"late\" }\n",
        );
        let rules = RuleSet::from_toml(&file, "many-groups.toml").unwrap();
        assert_eq!(rules.groups, 70);
        let ev = run(&rules, &[&text("a", "INFO", "Invalid state parameter: x")]);
        expect(&ev, &["hits_total{rule=specific} +1"]);
        let ev = run(&rules, &[&text("a", "INFO", "invalid token")]);
        expect(&ev, &["hits_total{rule=general} +1"]);
    }

    #[test]
    fn access_logs_give_requests_errors_and_failed_logins() {
        let ev = defaults(&[
            "INFO:     203.0.113.9:51234 - \"POST /api/auth/login HTTP/1.1\" 401 Unauthorized",
            "INFO:     203.0.113.9:51236 - \"DELETE /api/roles/3 HTTP/1.1\" 403 Forbidden",
            "198.51.100.7 - - [20/May/2025:10:30:00 +0000] \"GET /api/users/42 HTTP/1.1\" 503 12 \"-\" \"curl/8.0\" 1.5",
        ]);
        let got = lines(&ev);
        for want in [
            "http_requests_total{endpoint=/api/auth/login,method=POST,status_code=401} +1",
            "http_requests_total{endpoint=/api/roles/:id,method=DELETE,status_code=403} +1",
            "http_requests_total{endpoint=/api/users/:id,method=GET,status_code=503} +1",
            "api_request_duration_seconds{endpoint=/api/users/:id,method=GET,status_code=503} obs 1.500000",
            "auth_requests_total{endpoint=/api/auth/login,method=unknown,status=failure} +1",
        ] {
            assert!(got.iter().any(|l| l == want), "{want} in {got:?}");
        }
        let ip = redactor().pseudonym(PseudonymKind::Ip, "203.0.113.9");
        let names: Vec<String> = signals(&ev)
            .into_iter()
            .filter(|s| !s.starts_with("error_logs"))
            .collect();
        assert_eq!(
            names,
            [
                format!("auth_failures ip={ip}"),
                "api_errors endpoint=/api/users/:id".to_owned(),
                "slow_requests endpoint=/api/users/:id".to_owned(),
            ],
            "a 403 outside /api/auth/ is a permission matter, not a failed login"
        );
        assert_eq!(ev.miss_total(), 0, "{:?}", ev.misses);
    }

    /// One rule counting `{"kind":"x"}` records in `a_total` with `labels`
    /// (a TOML inline table).
    fn counter_of_kind_x(labels: &str) -> RuleSet {
        let toml = format!(
            r#"
            [[rule]]
            name = "r"
            match = '{{ $.kind = "x" }}'
            [[rule.metric]]
            name = "a_total"
            type = "counter"
            labels = {labels}
            "#
        );
        RuleSet::from_toml(&toml, "kind_x.toml").unwrap()
    }

    #[test]
    fn label_values_never_forge_another_series_cache_key() {
        // Joined with a separator, ("x\0y", "z") and ("x", "y\0z") would
        // make the same cache key, and so would values holding the length
        // chars the key uses instead: each pair here is two series.
        let rules = counter_of_kind_x(r#"{ a = "$.a", b = "$.b" }"#);
        let pairs = [
            ("x\\u0000y", "z"),
            ("x", "y\\u0000z"),
            ("x\\u0001y", "z"),
            ("x", "y\\u0001z"),
            ("x\\u0001", ""),
            ("x", "\\u0001"),
            ("", "x\\u0000\\u0001"),
        ];
        let mut messages: Vec<String> = pairs
            .iter()
            .map(|(a, b)| format!(r#"{{"kind":"x","a":"{a}","b":"{b}"}}"#))
            .collect();
        // Repeated: the second time each comes from the cache.
        messages.extend(messages.clone());
        let messages: Vec<&str> = messages.iter().map(String::as_str).collect();
        let ev = run(&rules, &messages);
        let keys: std::collections::BTreeSet<String> =
            ev.keyed_updates().map(|(k, _)| k.compact()).collect();
        assert_eq!(keys.len(), pairs.len(), "{keys:?}");
        assert_eq!(ev.keyed_updates().count(), 2 * pairs.len());
    }

    #[test]
    fn the_series_cache_tells_missing_unusable_and_mapped_values_apart() {
        // Keyed by the text before map, default and transform: a missing
        // value takes the default, an array has no text, and "success"
        // is mapped, so the four records make three series, each time.
        let rules = counter_of_kind_x(
            r#"{ s = { from = "$.s", default = "success", map = { success = "ok" } }, p = { from = "$.p", transform = "route" } }"#,
        );
        let records = [
            r#"{"kind":"x","s":"success","p":"/api/users/42"}"#,
            r#"{"kind":"x","p":"/api/users/42"}"#,
            r#"{"kind":"x","s":[1],"p":"/api/users/42"}"#,
            r#"{"kind":"x","s":null,"p":"/api/users/7"}"#,
        ];
        let twice: Vec<&str> = records.iter().chain(records.iter()).copied().collect();
        let ev = run(&rules, &twice);
        let label = |k: &SeriesKey, name: &str| {
            k.labels()
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let s: Vec<String> = ev.keyed_updates().map(|(k, _)| label(k, "s")).collect();
        assert_eq!(
            s,
            ["ok", "success", "unknown", "success"].repeat(2),
            "{s:?}"
        );
        let p: Vec<String> = ev.keyed_updates().map(|(k, _)| label(k, "p")).collect();
        // Routed on every update, cached or not (two raw paths, one route).
        assert_eq!(p, ["/api/users/:id"].repeat(8));
    }

    #[test]
    fn missing_values_are_counted_not_dropped() {
        let rules = RuleSet::from_toml(
            r#"
            [[rule]]
            name = "r"
            match = '{ $.kind = "x" }'
            [[rule.metric]]
            name = "a_total"
            type = "counter"
            labels = { user = "$.user", status = { from = "$.status", default = "success" } }
            [[rule.metric]]
            name = "b_seconds"
            type = "histogram"
            value = "$.took"
            unit = "us"
            [[rule.signal]]
            name = "s"
            key = "$.user"
            "#,
            "miss.toml",
        )
        .unwrap();
        let ev = run(
            &rules,
            &[
                r#"{"kind":"x","user":"u","took":"250"}"#,
                r#"{"kind":"x","took":"n/a"}"#,
            ],
        );
        // A missing label is `unknown` and the record counts; a missing
        // number is a miss; a missing key leaves the signal without it.
        assert_eq!(
            lines(&ev),
            [
                "a_total{status=success,user=unknown} +1",
                "a_total{status=success,user=u} +1",
                "b_seconds{} obs 0.000250",
            ]
        );
        assert_eq!(
            ev.misses.get("r"),
            Some(&1),
            "the value of the second record"
        );
        assert_eq!(ev.miss_total(), 1);
        assert_eq!(signals(&ev), ["s key=u", "s -="]);

        // Records with only the guide's own example fields produce every
        // metric they can (monitoring-guide.md, "Log Categories").
        let ev = defaults(&[
            &json(
                "security",
                "INFO",
                "Authentication attempt",
                r#""user_id":"u1","ip_address":"203.0.113.7","success":false"#,
            ),
            &json(
                "performance",
                "INFO",
                "API request completed",
                r#""endpoint":"/api/users/42","duration_ms":12.5,"status_code":503"#,
            ),
        ]);
        let got = lines(&ev);
        for want in [
            "auth_requests_total{endpoint=unknown,method=unknown,status=failure} +1",
            "api_request_duration_seconds{endpoint=/api/users/:id,method=unknown,status_code=503} obs 0.012500",
        ] {
            assert!(got.iter().any(|l| l == want), "{want} in {got:?}");
        }
        assert_eq!(
            ev.misses.get("auth_attempt"),
            Some(&1),
            "only the duration, which the record does not carry"
        );
        let names: Vec<&str> = ev.signals.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["auth_failures", "api_errors"]);
    }

    #[test]
    fn label_values_and_keys_are_redacted() {
        let rules = RuleSet::from_toml(
            r#"
            [[rule]]
            name = "who"
            regex = '^login by (?P<who>\S+)'
            [[rule.metric]]
            name = "logins_total"
            type = "counter"
            labels = { who = "${who}" }
            [[rule.signal]]
            name = "logins"
            key = "${who}"
            [[rule.signal]]
            name = "logins_by_email"
            key = "${who}"
            key_name = "email"
            pseudonymize = "email"
            "#,
            "redact.toml",
        )
        .unwrap();
        let line = text(
            "a",
            "INFO",
            "login by Ana@Example.com with Authorization: Bearer abc.def.ghi",
        );
        let ev = run(&rules, &[&line]);
        let email = redactor().pseudonym(PseudonymKind::Email, "ana@example.com");
        assert!(email.starts_with("email:"));
        assert_eq!(lines(&ev), [format!("logins_total{{who={email}}} +1")]);
        assert_eq!(
            signals(&ev),
            [
                format!("logins key={email}"),
                format!("logins_by_email email={email}")
            ]
        );
        let sample = &ev.signals[0].sample;
        assert!(
            !sample.contains("Example.com") && !sample.contains("abc.def"),
            "{sample}"
        );
    }

    #[test]
    fn samples_are_truncated_to_500_chars() {
        let rules = RuleSet::from_toml(
            "[[rule]]\nname = \"r\"\nmatch = \"x\"\n[[rule.signal]]\nname = \"s\"\n",
            "t.toml",
        )
        .unwrap();
        let long = text("a", "INFO", &"é x ".repeat(400));
        let ev = run(&rules, &[&long]);
        assert_eq!(ev.signals[0].sample.chars().count(), SAMPLE_MAX_CHARS);
        assert!(long.starts_with(&ev.signals[0].sample));
    }

    #[test]
    fn coalesced_counters_sum_to_the_same_series() {
        let rules = RuleSet::default_rules().unwrap();
        let attempt = |success: bool, ms: f64| {
            let extra = format!(
                r#""method":"password","endpoint":"/api/auth/login","success":{success},"duration_ms":{ms}"#
            );
            json("security", "INFO", "Authentication attempt", &extra)
        };
        let api = r#""endpoint":"/api/users/7","method":"GET","status_code":200,"duration_ms":3"#;
        let messages = [
            attempt(true, 12.5),
            json("performance", "INFO", "API request completed", api),
            json("security", "INFO", "Session created", ""),
            attempt(false, 40.0),
            json("security", "INFO", "Session ended", ""),
            attempt(true, 7.0),
            text(
                "app.core.security",
                "INFO",
                "Access token created for user u1",
            ),
            text(
                "app.core.security",
                "INFO",
                "Access token created for user u2",
            ),
        ];
        let messages: Vec<&str> = messages.iter().map(String::as_str).collect();
        let plain = run(&rules, &messages);
        let coalescing = Evaluation {
            coalesce_counters: true,
            ..Evaluation::default()
        };
        let mut coalesced = run_into(&rules, &messages, coalescing);
        // Per series: the counter total, and every other update in order.
        let fold = |ev: &Evaluation| {
            let mut by_series: BTreeMap<String, (f64, Vec<Update>)> = BTreeMap::new();
            for (key, update) in ev.keyed_updates() {
                let entry = by_series.entry(format!("{key:?}")).or_default();
                match update {
                    Update::CounterAdd(v) => entry.0 += v,
                    other => entry.1.push(other),
                }
            }
            by_series
        };
        assert_eq!(fold(&coalesced), fold(&plain));
        assert_eq!(coalesced.touched, plain.touched, "same series, same order");
        let counter_slots = |ev: &Evaluation| -> Vec<u32> {
            ev.updates
                .iter()
                .filter(|(_, u)| matches!(u, Update::CounterAdd(_)))
                .map(|(slot, _)| *slot)
                .collect()
        };
        let once = counter_slots(&coalesced);
        let distinct: std::collections::BTreeSet<u32> = once.iter().copied().collect();
        assert_eq!(once.len(), distinct.len(), "one counter update per series");
        assert!(once.len() < counter_slots(&plain).len());
        // A new batch starts from new first updates, not the last batch's.
        let _ = coalesced.take_results();
        let next = run_into(&rules, &[messages[1], messages[0], messages[5]], coalesced);
        let counters: Vec<Update> = next
            .updates
            .iter()
            .map(|(_, u)| *u)
            .filter(|u| matches!(u, Update::CounterAdd(_)))
            .collect();
        assert_eq!(
            counters,
            [
                Update::CounterAdd(1.0),
                Update::CounterAdd(2.0),
                Update::CounterAdd(2.0)
            ],
            "log_messages_total of both loggers and auth_requests_total, once each"
        );
    }

    #[test]
    fn gauge_set_and_metric_when() {
        let rules = RuleSet::from_toml(
            r#"
            [[rule]]
            name = "pool"
            logger = "db"
            [[rule.metric]]
            name = "pool_size"
            type = "gauge"
            op = "set"
            value = "$.size"
            [[rule.metric]]
            name = "pool_big_total"
            type = "counter"
            when = "{ $.size > 10 }"
            value = { from = "$.size" }
            "#,
            "g.toml",
        )
        .unwrap();
        let ev = run(
            &rules,
            &[
                r#"{"logger":"db","size":5}"#,
                r#"{"logger":"db","size":"12"}"#,
                r#"{"logger":"db","size":20}"#,
            ],
        );
        assert_eq!(
            lines(&ev),
            [
                "pool_big_total{} +20",
                "pool_size{} =12",
                "pool_size{} =20",
                "pool_size{} =5"
            ]
        );
    }
}
