//! One validation pass from the serde model to the compiled rule set. Every
//! error names the file, the rule and the field; TOML errors carry the line
//! and column.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::{
    GaugeOp, MetricConfig, MetricType, OneOrMany, PseudonymizeConfig, RuleConfig, RuleFile,
    SignalConfig, ValueSpecConfig,
};
use super::engine::{
    CompiledKey, CompiledMetric, CompiledRule, CompiledSignal, DEFAULT_RULES_FILE,
    DEFAULT_RULES_TOML, MetricInfo, MetricOp, RuleRegex, RuleSet,
};
use super::value::ValueSpec;
use crate::domain::logs::filter_pattern::FilterPattern;
use crate::domain::metrics::series::MetricKind;

/// A rule file that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not TOML, or not the shape of a rule file (unknown key, wrong type,
    /// missing field).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed but wrong.
    #[error("{file}:{line}: rule {rule:?}, {field}: {problem}")]
    Invalid {
        file: String,
        /// Line of the rule's `[[rule]]` header.
        line: usize,
        rule: String,
        /// e.g. `metric[0].labels.endpoint`.
        field: String,
        /// Boxed: keeps `Result<_, RuleError>` small.
        problem: Box<Problem>,
    },
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("rule name is empty")]
    EmptyRuleName,
    #[error("rule name already used by rule #{first} of the file")]
    DuplicateRule { first: usize },
    #[error("needs a matcher: match, regex, logger, level or message")]
    NoMatcher,
    #[error("an empty list matches nothing; leave the field out instead")]
    EmptyList,
    #[error("give either match or regex, not both")]
    BothMatchers,
    #[error("needs at least one [[rule.metric]] or [[rule.signal]]")]
    NoOutput,
    #[error("filter pattern, column {column}: {message}")]
    Pattern { column: usize, message: String },
    #[error("regex does not compile: {0}")]
    Regex(String),
    #[error("{0:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, no __ prefix)")]
    MetricName(String),
    #[error("{0:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no __ prefix, not le)")]
    LabelName(String),
    #[error("{0:?} is not a valid signal name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    SignalName(String),
    #[error("metric {metric} is a {this} here but a {first} in rule {first_rule:?}")]
    TypeConflict {
        metric: String,
        this: &'static str,
        first: &'static str,
        first_rule: String,
    },
    #[error("metric {metric} has labels {this:?} here but {first:?} in rule {first_rule:?}")]
    LabelConflict {
        metric: String,
        this: Vec<String>,
        first: Vec<String>,
        first_rule: String,
    },
    #[error("a histogram needs a value")]
    HistogramWithoutValue,
    #[error("op = \"set\" needs a value")]
    SetWithoutValue,
    #[error("op is for gauges only")]
    OpOnNonGauge,
    #[error("capture ${{{0}}} is not a named group of the rule's regex")]
    UnknownCapture(String),
    #[error("capture ${{{0}}} needs a regex matcher on the rule")]
    CaptureWithoutRegex(String),
    #[error(
        "field ${0} is not a field of the space-delimited pattern (name one of its fields, or a position $1, $2, ...)"
    )]
    UnknownField(String),
    #[error(
        "field ${0} needs a space-delimited pattern ([field, ...]) in the rule's match or in this when"
    )]
    FieldWithoutPattern(String),
    #[error("{0}")]
    Path(String),
    #[error("{0:?} is not a valid key name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    KeyName(String),
    #[error("key {0:?} is given twice")]
    DuplicateKey(String),
    #[error("key_name names a `key`; give the key too, or use keys = {{ ... }}")]
    KeyNameWithoutKey,
    #[error("pseudonymize = \"...\" applies to `key`; for `keys` write {{ <key> = \"ip\" }}")]
    PseudonymizeWithoutKey,
    #[error("pseudonymize names key {0:?}, which the signal does not have")]
    UnknownKey(String),
}

/// Compiles a parsed rule file; `text` is what it was parsed from (for
/// line numbers).
fn compile(file: &str, text: &str, parsed: RuleFile) -> Result<RuleSet, RuleError> {
    let mut rules = Vec::with_capacity(parsed.rules.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<String> = Vec::new();
    let mut metrics: HashMap<String, (MetricInfo, String)> = HashMap::new();
    // Where each rule starts, for errors found once all are compiled.
    let mut starts: Vec<(usize, String)> = Vec::with_capacity(parsed.rules.len());
    let error = |line: usize, rule: &str, field: &str, problem: Problem| RuleError::Invalid {
        file: file.to_owned(),
        line,
        rule: rule.to_owned(),
        field: field.to_owned(),
        problem: Box::new(problem),
    };

    // Rules come in file order: each one's line is counted on from the
    // one before (counted from the file's start each time, the default
    // rules' lines took 6 M instructions of the load).
    let mut counted = (0, 1);
    for (index, spanned) in parsed.rules.into_iter().enumerate() {
        let rule = spanned.get_ref();
        let start = spanned.span().start.min(text.len());
        if start < counted.0 {
            counted = (0, 1);
        }
        let newlines = text.as_bytes()[counted.0..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        counted = (start, counted.1 + newlines);
        let line = counted.1;
        starts.push((line, rule.name.clone()));
        let err = |field: &str, problem: Problem| error(line, &rule.name, field, problem);
        if rule.name.trim().is_empty() {
            return Err(err("name", Problem::EmptyRuleName));
        }
        if let Some(first) = names.get(&rule.name) {
            return Err(err("name", Problem::DuplicateRule { first: *first + 1 }));
        }
        names.insert(rule.name.clone(), index);
        let compiled =
            compile_rule(rule, &mut groups, &mut metrics).map_err(|(f, p)| err(&f, p))?;
        rules.push(compiled);
    }
    let mut infos: Vec<MetricInfo> = metrics.into_values().map(|(info, _)| info).collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let set = RuleSet::new(file.to_owned(), rules, groups.len(), infos);
    set.compile_unshared_regexes().map_err(|(index, e)| {
        let (line, rule) = &starts[index];
        error(*line, rule, "regex", Problem::Regex(e.to_string()))
    })?;
    Ok(set)
}

type FieldError = (String, Problem);

/// Compiles value specs of one rule, checking `${capture}` references
/// against the rule's regex and `$field` references against its
/// space-delimited pattern.
struct Specs<'r> {
    has_regex: bool,
    captures: HashSet<String>,
    /// The rule's `match` pattern.
    filter: Option<&'r FilterPattern>,
}

impl Specs<'_> {
    /// `when` is the metric's or signal's own pattern: a `$field` is read
    /// from it when it is space-delimited and has the field, else from the
    /// rule's `match` (both matched when the value is read).
    fn compile(
        &self,
        field: String,
        config: &ValueSpecConfig,
        when: Option<&FilterPattern>,
    ) -> Result<ValueSpec, FieldError> {
        let mut spec = ValueSpec::compile(config)
            .map_err(|e| (field.clone(), Problem::Path(e.to_string())))?;
        if let Some(name) = spec.capture() {
            if !self.has_regex {
                return Err((field, Problem::CaptureWithoutRegex(name.to_owned())));
            }
            if !self.captures.contains(name) {
                return Err((field, Problem::UnknownCapture(name.to_owned())));
            }
        }
        if let Some(name) = spec.field().map(str::to_owned) {
            let patterns = [when, self.filter];
            let bound = patterns.iter().flatten().any(|p| spec.bind_field(p));
            if !bound {
                let delimited = patterns.iter().flatten().any(|p| p.is_space_delimited());
                return Err((
                    field,
                    if delimited {
                        Problem::UnknownField(name)
                    } else {
                        Problem::FieldWithoutPattern(name)
                    },
                ));
            }
        }
        Ok(spec)
    }
}

fn pattern(field: &str, text: &str) -> Result<FilterPattern, FieldError> {
    FilterPattern::parse(text).map_err(|e| {
        (
            field.to_owned(),
            Problem::Pattern {
                column: e.column,
                message: e.message,
            },
        )
    })
}

fn compile_rule(
    rule: &RuleConfig,
    groups: &mut Vec<String>,
    metrics: &mut HashMap<String, (MetricInfo, String)>,
) -> Result<CompiledRule, FieldError> {
    let has_shortcut = rule.logger.is_some() || rule.level.is_some() || rule.message.is_some();
    match (&rule.match_pattern, &rule.regex) {
        (Some(_), Some(_)) => return Err(("regex".into(), Problem::BothMatchers)),
        (None, None) if !has_shortcut => return Err(("match".into(), Problem::NoMatcher)),
        _ => {}
    }
    for (field, list) in [("level", &rule.level), ("message", &rule.message)] {
        if matches!(list, Some(OneOrMany::Many(v)) if v.is_empty()) {
            return Err((field.into(), Problem::EmptyList));
        }
    }
    if rule.metrics.is_empty() && rule.signals.is_empty() {
        return Err(("metric".into(), Problem::NoOutput));
    }
    let filter = rule
        .match_pattern
        .as_deref()
        .map(|p| pattern("match", p))
        .transpose()?
        // An empty pattern matches everything: skip it on the hot path.
        .filter(|p| !p.as_str().trim().is_empty());
    // Parsed only: the regex is compiled when first needed (RuleRegex).
    // The parser is the one the regex crate compiles with, with its
    // defaults, so the errors read the same.
    let mut captures = HashSet::new();
    let regex = match rule.regex.as_deref() {
        Some(r) => {
            let hir = regex_syntax::Parser::new()
                .parse(r)
                .map_err(|e| ("regex".to_owned(), Problem::Regex(e.to_string())))?;
            capture_names(&hir, &mut captures);
            Some(RuleRegex::new(r, hir))
        }
        None => None,
    };
    let spec = Specs {
        has_regex: regex.is_some(),
        captures,
        filter: filter.as_ref(),
    };

    let mut compiled_metrics = Vec::with_capacity(rule.metrics.len());
    for (i, m) in rule.metrics.iter().enumerate() {
        compiled_metrics.push(compile_metric(rule, i, m, &spec, metrics)?);
    }
    let mut signals = Vec::with_capacity(rule.signals.len());
    for (i, s) in rule.signals.iter().enumerate() {
        signals.push(compile_signal(i, s, &spec)?);
    }
    let group: Vec<usize> = rule
        .group
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .iter()
        .map(|g| {
            groups.iter().position(|x| x == g).unwrap_or_else(|| {
                groups.push(g.clone());
                groups.len() - 1
            })
        })
        .collect();
    let mut compiled = CompiledRule {
        name: Arc::from(rule.name.as_str()),
        group,
        logger: rule.logger.clone(),
        levels: rule.level.clone().map(|l| l.into_vec()).unwrap_or_default(),
        messages: rule
            .message
            .clone()
            .map(|m| m.into_vec())
            .unwrap_or_default(),
        filter,
        regex,
        needs_captures: false,
        metrics: compiled_metrics,
        signals,
    };
    compiled.needs_captures = compiled.uses_captures();
    Ok(compiled)
}

/// The named groups of a parsed regex.
fn capture_names(hir: &regex_syntax::hir::Hir, out: &mut HashSet<String>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(capture) => {
            if let Some(name) = &capture.name {
                out.insert(name.to_string());
            }
            capture_names(&capture.sub, out);
        }
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().for_each(|sub| capture_names(sub, out));
        }
        HirKind::Repetition(repetition) => capture_names(&repetition.sub, out),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

fn compile_metric(
    rule: &RuleConfig,
    i: usize,
    m: &MetricConfig,
    spec: &Specs,
    metrics: &mut HashMap<String, (MetricInfo, String)>,
) -> Result<CompiledMetric, FieldError> {
    let at = |f: &str| format!("metric[{i}].{f}");
    if !valid_name(&m.name, true) {
        return Err((at("name"), Problem::MetricName(m.name.clone())));
    }
    let when = m
        .when
        .as_deref()
        .map(|w| pattern(&at("when"), w))
        .transpose()?;
    let mut labels = Vec::with_capacity(m.labels.len());
    for (label, value) in &m.labels {
        let field = at(&format!("labels.{label}"));
        if !valid_name(label, false) || (label == "le" && m.kind == MetricType::Histogram) {
            return Err((field, Problem::LabelName(label.clone())));
        }
        labels.push((
            Arc::<str>::from(label.as_str()),
            spec.compile(field, value, when.as_ref())?,
        ));
    }
    let value = m
        .value
        .as_ref()
        .map(|v| spec.compile(at("value"), v, when.as_ref()))
        .transpose()?;
    let kind = match m.kind {
        MetricType::Counter => MetricKind::Counter,
        MetricType::Gauge => MetricKind::Gauge,
        MetricType::Histogram => MetricKind::Histogram,
    };
    if m.op.is_some() && kind != MetricKind::Gauge {
        return Err((at("op"), Problem::OpOnNonGauge));
    }
    let op = match (kind, m.op.unwrap_or(GaugeOp::Inc)) {
        (MetricKind::Counter, _) => MetricOp::CounterAdd,
        (MetricKind::Histogram, _) => MetricOp::Observe,
        (MetricKind::Gauge, GaugeOp::Inc) => MetricOp::GaugeAdd(1.0),
        (MetricKind::Gauge, GaugeOp::Dec) => MetricOp::GaugeAdd(-1.0),
        (MetricKind::Gauge, GaugeOp::Set) => MetricOp::GaugeSet,
    };
    if value.is_none() {
        match op {
            MetricOp::Observe => return Err((at("value"), Problem::HistogramWithoutValue)),
            MetricOp::GaugeSet => return Err((at("value"), Problem::SetWithoutValue)),
            _ => {}
        }
    }
    let label_names: Vec<String> = m.labels.keys().cloned().collect();
    match metrics.get_mut(&m.name) {
        Some((info, first_rule)) => {
            // The HELP text is any rule's that gives one, the first in the
            // file: a metric is documented once, where it is defined first
            // or best.
            if info.help.is_none() {
                info.help.clone_from(&m.help);
            }
            if info.kind != kind {
                return Err((
                    at("type"),
                    Problem::TypeConflict {
                        metric: m.name.clone(),
                        this: kind.as_str(),
                        first: info.kind.as_str(),
                        first_rule: first_rule.clone(),
                    },
                ));
            }
            if info.labels != label_names {
                return Err((
                    at("labels"),
                    Problem::LabelConflict {
                        metric: m.name.clone(),
                        this: label_names,
                        first: info.labels.clone(),
                        first_rule: first_rule.clone(),
                    },
                ));
            }
        }
        None => {
            metrics.insert(
                m.name.clone(),
                (
                    MetricInfo {
                        name: m.name.clone(),
                        kind,
                        help: m.help.clone(),
                        labels: label_names,
                    },
                    rule.name.clone(),
                ),
            );
        }
    }
    Ok(CompiledMetric {
        name: Arc::from(m.name.as_str()),
        op,
        labels,
        value,
        scale: m.unit.map_or(1.0, |u| u.to_seconds()),
        when,
        key_id: None,
    })
}

fn compile_signal(i: usize, s: &SignalConfig, spec: &Specs) -> Result<CompiledSignal, FieldError> {
    let at = |f: &str| format!("signal[{i}].{f}");
    if !valid_name(&s.name, false) {
        return Err((at("name"), Problem::SignalName(s.name.clone())));
    }
    let when = s
        .when
        .as_deref()
        .map(|w| pattern(&at("when"), w))
        .transpose()?;
    let mut named: Vec<(String, &ValueSpecConfig, &'static str)> = Vec::new();
    if let Some(k) = &s.key {
        named.push((
            s.key_name.clone().unwrap_or_else(|| "key".to_owned()),
            k,
            "key",
        ));
    } else if s.key_name.is_some() {
        return Err((at("key_name"), Problem::KeyNameWithoutKey));
    }
    for (name, k) in &s.keys {
        named.push((name.clone(), k, "keys"));
    }
    let mut keys: Vec<CompiledKey> = Vec::with_capacity(named.len());
    for (name, k, field) in named {
        if !valid_name(&name, false) {
            return Err((at(field), Problem::KeyName(name)));
        }
        if keys.iter().any(|c| c.name.as_ref() == name) {
            return Err((at(field), Problem::DuplicateKey(name)));
        }
        let pseudonymize = match &s.pseudonymize {
            None => None,
            Some(PseudonymizeConfig::One(p)) if field == "key" => Some(*p),
            Some(PseudonymizeConfig::One(_)) => None,
            Some(PseudonymizeConfig::PerKey(map)) => map.get(&name).copied(),
        };
        keys.push(CompiledKey {
            spec: spec.compile(format!("signal[{i}].{field}.{name}"), k, when.as_ref())?,
            name: Arc::from(name.as_str()),
            pseudonymize,
        });
    }
    match &s.pseudonymize {
        Some(PseudonymizeConfig::One(_)) if s.key.is_none() => {
            return Err((at("pseudonymize"), Problem::PseudonymizeWithoutKey));
        }
        Some(PseudonymizeConfig::PerKey(map)) => {
            if let Some(unknown) = map
                .keys()
                .find(|k| !keys.iter().any(|c| c.name.as_ref() == *k))
            {
                return Err((at("pseudonymize"), Problem::UnknownKey(unknown.clone())));
            }
        }
        _ => {}
    }
    Ok(CompiledSignal {
        name: Arc::from(s.name.as_str()),
        when,
        keys,
    })
}

/// Prometheus metric (`colon` allowed) or label name, without the reserved
/// `__` prefix.
pub fn valid_name(name: &str, colon: bool) -> bool {
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    let ok_rest = |c: char| ok_first(c) || c.is_ascii_digit();
    let mut chars = name.chars();
    chars.next().is_some_and(ok_first) && chars.all(ok_rest) && !name.starts_with("__")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Loading is validation: the rule set's constructors live here, beside
/// the one pass they run.
impl RuleSet {
    /// Parses and validates a rule file; `file_name` is quoted in errors.
    pub fn from_toml(text: &str, file_name: &str) -> Result<Self, RuleError> {
        from_toml(text, file_name)
    }

    /// The embedded `infra/rules/default.toml` (a unit test proves it loads).
    pub fn default_rules() -> Result<Self, RuleError> {
        Self::from_toml(DEFAULT_RULES_TOML, DEFAULT_RULES_FILE)
    }
}

/// Parses and compiles TOML text.
pub fn from_toml(text: &str, file: &str) -> Result<RuleSet, RuleError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
        RuleError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    compile(file, text, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        from_toml(text, "rules.toml").unwrap_err().to_string()
    }

    /// A valid rule named `name` with `body` inserted after its matcher line.
    fn rule(name: &str, matcher: &str, body: &str) -> String {
        format!("[[rule]]\nname = \"{name}\"\n{matcher}\n{body}\n")
    }

    const COUNTER: &str = "[[rule.metric]]\nname = \"hits_total\"\ntype = \"counter\"\n";

    #[test]
    fn toml_syntax_and_shape_errors_have_line_and_column() {
        assert_eq!(
            error("[[rule]]\nname = \"a\"\nmatch = \"x\n"),
            "rules.toml:3:11: invalid basic string, expected `\"`"
        );
        assert_eq!(
            error("[[rule]]\nname = \"a\"\nmatch = \"x\"\nlogger_name = \"y\"\n"),
            "rules.toml:4:1: unknown field `logger_name`, expected one of `name`, `description`, `group`, `match`, `regex`, `logger`, `level`, `message`, `metric`, `signal`"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = \"x\"",
                "[[rule.metric]]\nname = \"m\"\ntype = \"summary\"\n"
            )),
            "rules.toml:6:8: unknown variant `summary`, expected one of `counter`, `gauge`, `histogram`"
        );
        assert_eq!(
            error("[[rule]]\nmatch = \"x\"\n"),
            "rules.toml:1:1: missing field `name`"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = \"x\"",
                &format!("{COUNTER}labels = {{ l = {{ from = \"$.x\", mapping = {{}} }} }}\n")
            )),
            "rules.toml:7:32: unknown field `mapping`, expected one of `from`, `map`, `default`, `transform`"
        );
    }

    #[test]
    fn rule_level_errors() {
        assert_eq!(
            error(&(rule("a", "match = \"x\"", COUNTER) + &rule("a", "match = \"y\"", COUNTER))),
            "rules.toml:8: rule \"a\", name: rule name already used by rule #1 of the file"
        );
        assert_eq!(
            error(&rule("a", "", COUNTER)),
            "rules.toml:1: rule \"a\", match: needs a matcher: match, regex, logger, level or message"
        );
        assert_eq!(
            error(&rule("a", "match = \"x\"\nregex = \"y\"", COUNTER)),
            "rules.toml:1: rule \"a\", regex: give either match or regex, not both"
        );
        assert_eq!(
            error(&rule("a", "match = \"x\"", "")),
            "rules.toml:1: rule \"a\", metric: needs at least one [[rule.metric]] or [[rule.signal]]"
        );
        assert_eq!(
            error(&rule("a", "level = []", COUNTER)),
            "rules.toml:1: rule \"a\", level: an empty list matches nothing; leave the field out instead"
        );
        assert_eq!(
            error(&rule(" ", "match = \"x\"", COUNTER)),
            "rules.toml:1: rule \" \", name: rule name is empty"
        );
    }

    /// A regex that parses but whose program is past the compiler's size
    /// limit is reported when the file loads, whether or not the set holds
    /// it (regexes are otherwise compiled when first needed).
    #[test]
    fn a_regex_too_big_to_compile_is_reported_at_load() {
        const HUGE: &str = "regex = '(?:\\w{100}){100}'";
        let alone = error(&rule("a", HUGE, COUNTER));
        assert!(
            alone.starts_with("rules.toml:1: rule \"a\", regex: regex does not compile: "),
            "{alone}"
        );
        // Past the set's 64 patterns, the regex is compiled on its own.
        let mut file = String::new();
        for n in 0..64 {
            file.push_str(&rule(
                &format!("r{n}"),
                &format!("regex = 'x{n}y'"),
                COUNTER,
            ));
        }
        let line = file.lines().count() + 1;
        file.push_str(&rule("late", HUGE, COUNTER));
        let late = error(&file);
        assert!(
            late.starts_with(&format!(
                "rules.toml:{line}: rule \"late\", regex: regex does not compile: "
            )),
            "{late}"
        );
        // Compiled when first needed: the capture still reads right.
        let set = RuleSet::from_toml(
            &rule(
                "a",
                "regex = '^(?P<who>\\w+) logged in'",
                "[[rule.metric]]\nname = \"hits_total\"\ntype = \"counter\"\nlabels = { who = \"${who}\" }\n",
            ),
            "rules.toml",
        )
        .unwrap();
        assert!(!set.rule(0).regex.as_ref().unwrap().is_compiled());
    }

    #[test]
    fn pattern_and_regex_errors() {
        assert_eq!(
            error(&rule("a", "match = '{ $.x = }'", COUNTER)),
            "rules.toml:1: rule \"a\", match: filter pattern, column 9: expected a value after '='"
        );
        assert_eq!(
            error(&rule("a", "regex = '(unclosed'", COUNTER)),
            "rules.toml:1: rule \"a\", regex: regex does not compile: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                &format!("{COUNTER}when = '{{ $.a >'\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].when: filter pattern, column 8: expected a value after '>'"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.signal]]\nname = \"s\"\nwhen = '[a, a]'\n"
            )),
            "rules.toml:1: rule \"a\", signal[0].when: filter pattern, column 5: field 'a' is named twice"
        );
    }

    #[test]
    fn fields_must_be_fields_of_a_space_delimited_pattern() {
        let apache = "match = '[ip, id, user, timestamp, request, status_code=4*, size]'";
        assert_eq!(
            error(&rule(
                "a",
                apache,
                &format!("{COUNTER}labels = {{ code = \"$status\" }}\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].labels.code: field $status is not a field of the space-delimited pattern (name one of its fields, or a position $1, $2, ...)"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                &format!("{COUNTER}value = \"$size\"\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].value: field $size needs a space-delimited pattern ([field, ...]) in the rule's match or in this when"
        );
        assert_eq!(
            error(&rule(
                "a",
                "regex = 'x'",
                "[[rule.signal]]\nname = \"s\"\nkey = \"$ip\"\n"
            )),
            "rules.toml:1: rule \"a\", signal[0].key.key: field $ip needs a space-delimited pattern ([field, ...]) in the rule's match or in this when"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = '[a, b]'",
                &format!("{COUNTER}value = \"$3\"\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].value: field $3 is not a field of the space-delimited pattern (name one of its fields, or a position $1, $2, ...)"
        );
        // Fields of the match, of a metric's or signal's own when, and
        // positions: all load, and read the matched line.
        let text = format!(
            "{}\n{}",
            rule(
                "access",
                apache,
                "[[rule.metric]]\nname = \"bytes_total\"\ntype = \"counter\"\nvalue = \"$size\"\nlabels = { code = \"$status_code\", method = \"$5\" }\n\
                 [[rule.signal]]\nname = \"not_found\"\nwhen = '[..., code=404, bytes]'\nkeys = { ip = \"$1\", code = \"$code\" }\n"
            ),
            rule(
                "lines",
                "match = \"\"",
                "[[rule.metric]]\nname = \"first_words_total\"\ntype = \"counter\"\nwhen = '[w1, ...]'\nlabels = { w = \"$w1\" }\n"
            ),
        );
        let rules = from_toml(&text, "rules.toml").unwrap();
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326"#;
        let event = crate::domain::logs::record::LogEvent {
            id: "e".into(),
            timestamp_ms: 0,
            message: line.into(),
        };
        let record = crate::domain::logs::parse::RecordParser::default()
            .parse(&event)
            .unwrap();
        let redactor =
            crate::domain::logs::redact::Redactor::new(b"0123456789abcdef-test-key").unwrap();
        let mut out = super::super::engine::Evaluation::default();
        rules.evaluate(&record, &redactor, &mut out);
        let ev = out.take_results();
        let updates: Vec<String> = ev
            .keyed_updates()
            .map(|(key, update)| format!("{key:?} {update:?}"))
            .collect();
        let all = updates.join("\n");
        assert!(all.contains("bytes_total") && all.contains("2326"), "{all}");
        assert!(
            all.contains("\"404\"") && all.contains("GET /apache_pb.gif HTTP/1.0"),
            "{all}"
        );
        // The first word is an IP address: label values are redacted.
        assert!(
            all.contains("first_words_total") && all.contains("\"ip:"),
            "{all}"
        );
        let signal = ev.signals.iter().find(|s| &*s.name == "not_found").unwrap();
        assert_eq!(signal.key("code"), Some("404"));
        assert!(signal.key("ip").is_some());
    }

    #[test]
    fn name_errors() {
        let metric =
            |name: &str| format!("[[rule.metric]]\nname = \"{name}\"\ntype = \"counter\"\n");
        assert_eq!(
            error(&rule("a", "match = 'x'", &metric("__hits"))),
            "rules.toml:1: rule \"a\", metric[0].name: \"__hits\" is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, no __ prefix)"
        );
        assert_eq!(
            error(&rule("a", "match = 'x'", &metric("hits-total"))),
            "rules.toml:1: rule \"a\", metric[0].name: \"hits-total\" is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, no __ prefix)"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                &format!("{COUNTER}labels = {{ \"1x\" = \"v\" }}\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].labels.1x: \"1x\" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no __ prefix, not le)"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.metric]]\nname = \"h\"\ntype = \"histogram\"\nvalue = \"$.v\"\nlabels = { le = \"1\" }\n"
            )),
            "rules.toml:1: rule \"a\", metric[0].labels.le: \"le\" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no __ prefix, not le)"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.signal]]\nname = \"auth failures\"\n"
            )),
            "rules.toml:1: rule \"a\", signal[0].name: \"auth failures\" is not a valid signal name ([a-zA-Z_][a-zA-Z0-9_]*)"
        );
    }

    #[test]
    fn one_type_and_one_label_set_per_metric() {
        let a = rule(
            "a",
            "match = 'x'",
            &format!("{COUNTER}labels = {{ x = \"1\" }}\n"),
        );
        assert_eq!(
            error(
                &(a.clone()
                    + &rule(
                        "b",
                        "match = 'y'",
                        "[[rule.metric]]\nname = \"hits_total\"\ntype = \"gauge\"\nlabels = { x = \"1\" }\n"
                    ))
            ),
            "rules.toml:9: rule \"b\", metric[0].type: metric hits_total is a gauge here but a counter in rule \"a\""
        );
        assert_eq!(
            error(
                &(a + &rule(
                    "b",
                    "match = 'y'",
                    &format!("{COUNTER}labels = {{ x = \"1\", y = \"2\" }}\n")
                ))
            ),
            "rules.toml:9: rule \"b\", metric[0].labels: metric hits_total has labels [\"x\", \"y\"] here but [\"x\"] in rule \"a\""
        );
    }

    #[test]
    fn metric_shape_errors() {
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.metric]]\nname = \"h\"\ntype = \"histogram\"\n"
            )),
            "rules.toml:1: rule \"a\", metric[0].value: a histogram needs a value"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.metric]]\nname = \"g\"\ntype = \"gauge\"\nop = \"set\"\n"
            )),
            "rules.toml:1: rule \"a\", metric[0].value: op = \"set\" needs a value"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                &format!("{COUNTER}op = \"inc\"\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].op: op is for gauges only"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                &format!("{COUNTER}labels = {{ x = \"$.a[\" }}\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].labels.x: invalid path \"$.a[\": unclosed ["
        );
    }

    #[test]
    fn captures_must_exist() {
        assert_eq!(
            error(&rule(
                "a",
                "regex = '^(?P<user>\\S+) logged in'",
                &format!("{COUNTER}labels = {{ who = \"${{usr}}\" }}\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].labels.who: capture ${usr} is not a named group of the rule's regex"
        );
        assert_eq!(
            error(&rule(
                "a",
                "match = 'x'",
                "[[rule.signal]]\nname = \"s\"\nkey = { from = \"${ip}\" }\n"
            )),
            "rules.toml:1: rule \"a\", signal[0].key.key: capture ${ip} needs a regex matcher on the rule"
        );
        assert_eq!(
            error(&rule(
                "a",
                "regex = '(?P<n>\\d+)'",
                &format!("{COUNTER}value = \"${{m}}\"\n")
            )),
            "rules.toml:1: rule \"a\", metric[0].value: capture ${m} is not a named group of the rule's regex"
        );
    }

    #[test]
    fn errors_are_typed() {
        let err = from_toml(
            &rule(
                "r",
                "match = 'x'",
                "[[rule.metric]]\nname = \"h\"\ntype = \"histogram\"\n",
            ),
            "f.toml",
        )
        .unwrap_err();
        assert_eq!(
            err,
            RuleError::Invalid {
                file: "f.toml".into(),
                line: 1,
                rule: "r".into(),
                field: "metric[0].value".into(),
                problem: Box::new(Problem::HistogramWithoutValue),
            }
        );
    }

    #[test]
    fn names_and_positions() {
        assert!(valid_name("auth_requests_total", false));
        assert!(valid_name("ns:metric", true));
        assert!(!valid_name("ns:metric", false));
        assert!(!valid_name("", true));
        assert!(!valid_name("__name__", false));
        assert_eq!(line_column("ab\ncdé\nx", 7), (2, 4));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
