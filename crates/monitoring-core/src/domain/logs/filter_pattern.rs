//! CloudWatch Logs filter patterns, parsed once and matched per event, so a
//! team can port the metric and subscription filters it already has.
//!
//! The syntax follows AWS's "Filter pattern syntax for metric filters,
//! subscription filters, filter log events, and Live Tail"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html>);
//! `docs/filter-patterns.md` is the user-facing summary.
//!
//! ```text
//! pattern    = ws* ( ""                      (empty: every event)
//!                  | json ws*                (JSON pattern)
//!                  | delimited ws*           (space-delimited pattern)
//!                  | term ( ws+ term )* ws* ) (term pattern)
//! term       = [ "?" | "-" ] ( phrase | regex | word )
//! phrase     = '"' ( any char, \" and \\ escaped )* '"'
//! regex      = "%" ( any char, \% escaped )+ "%"
//! word       = ( letter | digit | one of _ . : / @ - )+
//!
//! json       = "{" or "}"
//! or         = and ( "||" and )*
//! and        = primary ( "&&" primary )*
//! primary    = "(" or ")" | condition
//! condition  = selector ( cmp-op value
//!                       | "IS" ( "TRUE" | "FALSE" | "NULL" )
//!                       | "EXISTS" | "NOT" "EXISTS" )
//! cmp-op     = "=" | "!=" | "<" | "<=" | ">" | ">="
//! value      = number | phrase | regex | unquoted
//! selector   = "$" segment+
//! segment    = "." name | "." "*" | "."? "[" ( index | "*" | "'" key "'" ) "]"
//! name       = ( letter | digit | one of _ - @ )+
//!
//! delimited  = "[" ws* ( element ( ws* "," ws* element )* )? ws* "]"
//! element    = "..." | "" (an unnamed field) | field-name [ field-or ]
//! field-or   = field-and ( "||" field-and )*
//! field-and  = field-cond ( "&&" field-cond )*
//! field-cond = [ field-name ] cmp-op value   (the element's own name)
//! field-name = ( letter | "_" ) ( letter | digit | "_" )*
//! ```
//!
//! Keywords (`IS`, `TRUE`, `NOT`, ...) are case-insensitive.
//!
//! Matching semantics, AWS's where documented:
//!
//! - Terms are case-sensitive substrings of the raw message (JSON events
//!   included). All plain terms must appear, no `-` term may appear, and at
//!   least one `?` term must appear. AWS documents that `?` terms cannot be
//!   combined with other terms: "if you combine `?` with other filter
//!   patterns, all question mark terms will be ignored" — so
//!   `?ERROR ?ARGUMENTS REQUEST` matches every event containing `REQUEST`.
//!   This module does the same, so ported filters count what they counted
//!   in CloudWatch.
//! - A quoted phrase that is empty or only white space is contained in
//!   every event (AWS: `" "` is the "match everything" pattern); as a `-`
//!   term it therefore excludes every event.
//! - `%regex%` is CloudWatch's regex dialect, rewritten at parse time for the
//!   `regex` crate so it means what AWS documents: `\d` is `[0-9]`, `\w` is
//!   `[a-zA-Z0-9_]` and `\s` ASCII white space (the crate's own classes are
//!   Unicode), `{,n}` is `{0,n}` and `{m, n}` may hold spaces. What AWS
//!   refuses (groups `( )`, other symbols than its list, multi-byte
//!   characters, other escapes, more than two regexes in a pattern) still
//!   parses here, as an extension, and is reported by
//!   [`FilterPattern::cloudwatch_compatibility`]. A regex searches anywhere
//!   in the text, as AWS's `%AUTHORIZED%` example matches `UNAUTHORIZED`.
//! - A JSON pattern never matches an event that is not JSON.
//! - A selector that is missing, or that points at a value of another type
//!   than the comparison needs, makes the comparison false, whatever the
//!   operator (`!=` included). The one exception is `NOT EXISTS`, true
//!   exactly when the selector finds nothing (a JSON `null` exists).
//!   AWS: "if a property selector points to an array or object, the filter
//!   pattern won't match".
//! - String values (quoted, or unquoted words that are not numbers) support
//!   `=` and `!=` only, with `*` as a wildcard over any run of characters.
//!   They match JSON strings, and JSON numbers through their decimal text,
//!   so `{ $.status_code = 5* }` matches `503` (AWS: "use the asterisk as a
//!   wild card to match numbers"). Booleans never equal a string: use
//!   `IS TRUE` / `IS FALSE`.
//! - Number values (`400`, `-1.5`, `1e3`, `+2E-3`) support every comparison
//!   and match JSON numbers only, compared by value (`1e3 = 1000`); integers
//!   are compared exactly, beyond `f64` precision.
//! - `IS TRUE`, `IS FALSE` and `IS NULL` test the JSON value itself; a
//!   missing selector is not `NULL`.
//! - `EXISTS` is an extension: AWS documents only `NOT EXISTS` (and that
//!   `IS NOT` is unsupported, which is rejected here too).
//! - A wildcard segment (`$.list[*].id`, `$.*`) selects every element or
//!   field at that level and the condition holds when it holds for at least
//!   one of them. AWS allows one wildcard per selector; so does this module.
//! - Bracket keys (`$.['cluster.name']`) select properties whose names
//!   contain periods, with single quotes as AWS requires.
//! - A space-delimited pattern splits the raw message into fields at runs of
//!   white space; text between `"..."` or `[...]` is one field (without its
//!   quotes or brackets). Without `...`, the pattern's fields take the
//!   message's first fields in order and the last one takes the rest of the
//!   line, so `[w1=ERROR, w2]` matches any line whose first word is `ERROR`
//!   but needs a second word (AWS: "you must include a blank indicator"),
//!   and `[w1=ERROR]` only matches a line that is exactly `ERROR`. With
//!   `...` (one per pattern) the fields before it take the first fields,
//!   the fields after it the last ones, and `...` any number in between.
//!   `[]` is `[...]`. A field's conditions use the JSON values: strings and
//!   `*` wildcards (`=`, `!=`), regexes, and numbers, compared by value
//!   when the field is a number (`status_code >= 400`); `=`/`!=` with a
//!   number compare the text when the field is not a number, the ordering
//!   operators are false. A matching pattern names its fields: `$name`, or
//!   `$N` for the Nth field of the message (see [`FilterPattern::field`]).
//!
//! Everything is compiled at parse time (regexes, wildcard strings into
//! prefix/suffix/contains checks or an anchored regex), and matching an event
//! allocates nothing.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use regex::Regex;
use serde_json::Number;

use super::json::Json;

/// Parentheses deeper than this are refused, so a hostile pattern cannot
/// exhaust the stack of the recursive-descent parser.
const MAX_NESTING: usize = 64;

/// CloudWatch's `filterPattern` is at most this many characters
/// (PutMetricFilter, PutSubscriptionFilter, FilterLogEvents).
pub const CLOUDWATCH_MAX_PATTERN_CHARS: usize = 1024;

/// CloudWatch accepts at most this many `%regex%` in one filter pattern.
pub const CLOUDWATCH_MAX_REGEXES: usize = 2;

/// CloudWatch accepts at most this many wildcard selectors (`[*]`, `.*`) in
/// one JSON filter pattern.
pub const CLOUDWATCH_MAX_WILDCARD_SELECTORS: usize = 3;

/// A parsed filter pattern; immutable and cheap to share between threads.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    source: Box<str>,
    kind: Kind,
    /// What CloudWatch itself would refuse; found while parsing.
    incompatibilities: Box<[Incompatibility]>,
    has_regex: bool,
}

/// Why a pattern was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter pattern, column {column}: {message}")]
pub struct FilterPatternError {
    /// 1-based column, in characters, of the offending text.
    pub column: usize,
    pub message: String,
}

/// Something this module accepts (an extension) but CloudWatch Logs would
/// refuse or does not document, so a rule using it cannot be ported to a
/// metric or subscription filter as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// 1-based column, in characters, of the construct.
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

impl FilterPattern {
    /// Parses `text`; see the module documentation for the grammar.
    pub fn parse(text: &str) -> Result<Self, FilterPatternError> {
        let mut cur = Cursor::new(text);
        cur.skip_ws();
        let kind = match cur.peek() {
            None => Kind::All,
            Some('{') => {
                let mut parser = JsonParser::new(cur);
                let expr = parser.parse()?;
                cur = parser.cur;
                Kind::Json(expr)
            }
            Some('[') => Kind::Delimited(Arc::new(parse_delimited(&mut cur)?)),
            Some(_) => parse_terms(&mut cur)?,
        };
        cur.check_regex_quota();
        let chars = text.chars().count();
        if chars > CLOUDWATCH_MAX_PATTERN_CHARS {
            cur.notes.push(Incompatibility {
                column: CLOUDWATCH_MAX_PATTERN_CHARS + 1,
                reason: format!(
                    "the pattern has {chars} characters; CloudWatch takes at most \
                     {CLOUDWATCH_MAX_PATTERN_CHARS}"
                ),
            });
        }
        cur.notes.sort_by_key(|n| n.column);
        Ok(FilterPattern {
            source: text.into(),
            kind,
            has_regex: !cur.regexes.is_empty(),
            incompatibilities: cur.notes.into(),
        })
    }

    /// Whether the event matches. `message` is the raw event text; `json` is
    /// the event parsed as JSON when it is JSON (the caller parses once for
    /// all patterns).
    pub fn matches(&self, message: &str, json: Option<&Json<'_>>) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Terms(terms) => terms.matches(message),
            Kind::Json(expr) => json.is_some_and(|root| expr.eval(root)),
            Kind::Delimited(fields) => fields.matches(message),
        }
    }

    /// A top-level field the pattern requires to be exactly this string:
    /// a `$.key = "text"` condition (no wildcard in the text) that is the
    /// whole JSON pattern or one operand of its top-level `&&`. An event
    /// that is not JSON, or whose field is missing or holds another
    /// string, cannot match: a caller may skip the pattern for it (a field
    /// holding a number, whose text could equal, must still be evaluated).
    pub fn required_text(&self) -> Option<(&str, &str)> {
        let Kind::Json(expr) = &self.kind else {
            return None;
        };
        fn required(e: &Expr) -> Option<(&str, &str)> {
            match e {
                Expr::Cond(Condition {
                    selector,
                    test:
                        Test::Text {
                            negated: false,
                            matcher: TextMatcher::Glob(Glob::Exact(text)),
                        },
                }) if selector.wildcard.is_none() => match &*selector.segments {
                    [Seg::Key(key)] => Some((&**key, &**text)),
                    _ => None,
                },
                _ => None,
            }
        }
        match expr {
            Expr::And(items) => items.iter().find_map(required),
            other => required(other),
        }
    }

    /// Whether this is a JSON (`{ ... }`) pattern, which only JSON events
    /// can match.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// Whether this is a space-delimited (`[ ... ]`) pattern, whose fields
    /// a rule can read as `$name` or `$N`.
    pub fn is_space_delimited(&self) -> bool {
        matches!(self.kind, Kind::Delimited(_))
    }

    /// The pattern text as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Why CloudWatch Logs itself would refuse this pattern, in column
    /// order: empty when a metric filter, subscription filter or
    /// FilterLogEvents call would accept it as it is. Covers the documented
    /// quotas (pattern length, two regexes per pattern, three wildcard
    /// selectors per JSON pattern) and the constructs this module accepts as
    /// extensions (regex groups and escapes outside AWS's list, `EXISTS`,
    /// unquoted terms with punctuation, ...). AWS's quota of five filter
    /// patterns holding a regex per log group concerns a set of patterns,
    /// not one: count [`Self::has_regex`] over the set.
    pub fn cloudwatch_compatibility(&self) -> Vec<Incompatibility> {
        self.incompatibilities.to_vec()
    }

    /// Whether [`Self::cloudwatch_compatibility`] is empty.
    pub fn is_cloudwatch_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }

    /// Whether the pattern holds a `%regex%` (AWS limits these per log
    /// group).
    pub fn has_regex(&self) -> bool {
        self.has_regex
    }

    /// A field of a space-delimited pattern, by name as metric filters write
    /// it without the `$`: `"size"` for the field named `size`, `"7"` for
    /// the 7th field of the message (named or not, and the ones `...`
    /// covers). `None` when the pattern is not space-delimited, has no
    /// field of that name, or cannot have that position (`[a, b]` has two).
    pub fn field(&self, name: &str) -> Option<DelimitedField> {
        let Kind::Delimited(d) = &self.kind else {
            return None;
        };
        let which = if let Some(n) = parse_position(name) {
            if d.ellipsis.is_none() && n > d.fields.len() {
                return None;
            }
            Which::Position(n)
        } else {
            Which::Named(
                d.fields
                    .iter()
                    .position(|f| f.name.as_deref() == Some(name))?,
            )
        };
        Some(DelimitedField {
            pattern: Arc::clone(d),
            which,
        })
    }

    /// The named fields of a space-delimited pattern, in order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> + '_ {
        let fields = match &self.kind {
            Kind::Delimited(d) => &d.fields[..],
            _ => &[],
        };
        fields.iter().filter_map(|f| f.name.as_deref())
    }

    /// The fields a space-delimited pattern reads from `message`, as
    /// CloudWatch's TestMetricFilter reports them: `$name` for named fields,
    /// `$N` (position in the message) for unnamed ones and the ones `...`
    /// covers. Empty for other pattern kinds (CloudWatch extracts nothing
    /// from them) and when the message has too few fields; conditions are
    /// not checked (call [`Self::matches`] first).
    pub fn extracted_values<'m>(&self, message: &'m str) -> Vec<(String, &'m str)> {
        let Kind::Delimited(d) = &self.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let complete = d.walk(message, true, |field, position, value| {
            let name = field
                .and_then(|i| d.fields.get(i))
                .and_then(|f| f.name.as_deref());
            out.push((
                name.map_or_else(|| format!("${position}"), |n| format!("${n}")),
                value,
            ));
            true
        });
        if !complete {
            out.clear();
        }
        out
    }
}

impl fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone)]
enum Kind {
    /// Empty pattern, or only blank phrases.
    All,
    Terms(TermPattern),
    Json(Expr),
    /// Shared with the [`DelimitedField`]s that values read.
    Delimited(Arc<Delimited>),
}

/// Character-level scanner shared by every pattern kind. Positions are byte
/// offsets; they become character columns only when an error is reported,
/// which keeps the happy path free of counting.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    /// What CloudWatch would refuse, found on the way.
    notes: Vec<Incompatibility>,
    /// Where each `%regex%` starts, for CloudWatch's quota.
    regexes: Vec<usize>,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor {
            src,
            pos: 0,
            notes: Vec::new(),
            regexes: Vec::new(),
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Consumes characters while `keep` holds and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn column(&self, pos: usize) -> usize {
        self.src.get(..pos).map_or(0, |s| s.chars().count()) + 1
    }

    fn error(&self, pos: usize, message: impl Into<String>) -> FilterPatternError {
        FilterPatternError {
            column: self.column(pos),
            message: message.into(),
        }
    }

    /// Records something CloudWatch would refuse, at byte offset `pos`.
    fn note(&mut self, pos: usize, reason: impl Into<String>) {
        let column = self.column(pos);
        self.notes.push(Incompatibility {
            column,
            reason: reason.into(),
        });
    }

    /// AWS: "There is a limit of 2 regex for each filter pattern".
    fn check_regex_quota(&mut self) {
        if let Some(&third) = self.regexes.get(CLOUDWATCH_MAX_REGEXES) {
            let count = self.regexes.len();
            self.note(
                third,
                format!(
                    "{count} regexes; CloudWatch takes at most {CLOUDWATCH_MAX_REGEXES} \
                     per filter pattern"
                ),
            );
        }
    }

    /// A `"..."` string at the cursor. Only `\"` and `\\` are escapes, so a
    /// Windows path or a regex-looking phrase keeps its other backslashes.
    fn quoted(&mut self) -> Result<String, FilterPatternError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(start, "unclosed '\"'")),
                Some('"') => return Ok(out),
                Some('\\') if matches!(self.peek(), Some('"' | '\\')) => {
                    out.extend(self.bump());
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// A `%regex%` at the cursor, in CloudWatch's dialect (see
    /// [`translate_regex`]), compiled. `\%` does not end the regex (it is a
    /// literal `%`), and any other escape is skipped over whole so `\\%`
    /// still ends it.
    fn regex(&mut self) -> Result<Regex, FilterPatternError> {
        let start = self.pos;
        self.bump();
        let body_start = self.pos;
        loop {
            match self.bump() {
                None => return Err(self.error(start, "unclosed '%' regex")),
                Some('%') => break,
                Some('\\') => {
                    self.bump();
                }
                Some(_) => {}
            }
        }
        let body = self.src.get(body_start..self.pos - 1).unwrap_or("");
        if body.is_empty() {
            return Err(self.error(start, "empty %regex%"));
        }
        self.regexes.push(start);
        let mut notes = Vec::new();
        let translated = translate_regex(body, &mut notes);
        for (at, reason) in notes {
            self.note(body_start + at, reason);
        }
        Regex::new(&translated)
            .map_err(|e| self.error(start, format!("invalid regex: {}", regex_reason(&e))))
    }
}

/// Rewrites a regex of CloudWatch's dialect into the `regex` crate's syntax
/// with the same meaning, and notes (byte offset in `body`, reason) what
/// CloudWatch would refuse.
///
/// AWS documents: letters, digits, the symbols `: _ # = @ / ; , -`, the
/// operators `^ $ ? [ ] { } | \ * + .`, the classes `\d \D \s \S \w \W`
/// (ASCII: `\w` is `[a-zA-Z_0-9]`, white space is tab, space and newline),
/// `\xhh`, `{m,n}` with either bound omitted; no groups `( )`, no
/// multi-byte characters. Its examples also hold spaces (`%^shutting down%`).
///
/// - `\d \D \w \W \s \S` become explicit ASCII classes (nested classes when
///   inside `[...]`, which the regex crate supports), since the crate's are
///   Unicode.
/// - `{,n}` becomes `{0,n}`, and spaces inside a repetition are dropped.
/// - Inside a class, the crate's set operators (`&&`, `--`, `~~`) and
///   nested classes (`[`) are escaped: CloudWatch has none of them.
/// - A `]` right after `[` or `[^` is literal, as in POSIX.
/// - Everything else is passed through: groups, lazy quantifiers and other
///   escapes keep the regex crate's meaning and are noted.
fn translate_regex(body: &str, notes: &mut Vec<(usize, String)>) -> String {
    let mut note = |at: usize, reason: String| {
        if !notes.iter().any(|(_, r)| *r == reason) {
            notes.push((at, reason));
        }
    };
    let mut out = String::with_capacity(body.len() + 16);
    let mut chars = body.char_indices().peekable();
    let mut in_class = false;
    // Right after `[` or `[^`: a `]` there is a literal.
    let mut class_start = false;
    // The previous item was a quantifier: a `?` now makes it lazy.
    let mut after_quantifier = false;
    let mut class_prev_dash = false;
    while let Some((i, c)) = chars.next() {
        let was_quantifier = std::mem::replace(&mut after_quantifier, false);
        let was_class_start = std::mem::replace(&mut class_start, false);
        let was_dash = std::mem::replace(&mut class_prev_dash, false);
        if !c.is_ascii() {
            note(
                i,
                format!("'{c}': CloudWatch regexes take no multi-byte characters"),
            );
        }
        match c {
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    // The regex crate reports the dangling escape.
                    out.push('\\');
                    break;
                };
                match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => out.push_str(ascii_class(e)),
                    'x' => {
                        out.push_str("\\x");
                        let hex: String = (0..2)
                            .map_while(|_| chars.next_if(|(_, h)| h.is_ascii_hexdigit()))
                            .map(|(_, h)| h)
                            .collect();
                        if hex.len() != 2 {
                            note(i, "CloudWatch's '\\x' takes exactly two hex digits".into());
                        }
                        out.push_str(&hex);
                    }
                    e if e.is_ascii_punctuation() || e == ' ' => {
                        if !is_regex_symbol(e) && !is_regex_operator(e) {
                            note(
                                i,
                                format!(
                                    "'\\{e}': '{e}' is not in CloudWatch's regex character set \
                                     (write \\x{:02X})",
                                    u32::from(e)
                                ),
                            );
                        }
                        // A literal: the crate's escape where it has one
                        // (`\<` is a word boundary there, `<` is not).
                        out.push_str(&regex::escape(e.encode_utf8(&mut [0; 4])));
                    }
                    e => {
                        note(
                            i,
                            format!("escape '\\{e}' is not in CloudWatch's regex syntax"),
                        );
                        out.push('\\');
                        out.push(e);
                        // `\p{Greek}`: copy the braces whole.
                        if matches!(e, 'p' | 'P' | 'u')
                            && chars.peek().is_some_and(|(_, n)| *n == '{')
                        {
                            for (_, n) in chars.by_ref() {
                                out.push(n);
                                if n == '}' {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if let Some((_, '^')) = chars.peek() {
                    chars.next();
                    out.push('^');
                }
            }
            ']' if in_class && was_class_start => out.push_str("\\]"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' | '&' | '~' if in_class => {
                if c != '[' {
                    note(
                        i,
                        format!("'{c}' is not in CloudWatch's regex character set"),
                    );
                }
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && was_dash => out.push_str("\\-"),
            '-' if in_class => {
                class_prev_dash = true;
                out.push('-');
            }
            '{' if !in_class => match repetition(&body[i..]) {
                Some((len, normalized)) => {
                    out.push_str(&normalized);
                    while chars.peek().is_some_and(|(j, _)| *j < i + len) {
                        chars.next();
                    }
                    after_quantifier = true;
                }
                None => out.push('{'),
            },
            '*' | '+' | '?' if !in_class => {
                if c == '?' && was_quantifier {
                    note(
                        i,
                        "a '?' after a quantifier (lazy repetition) is not CloudWatch syntax"
                            .into(),
                    );
                } else {
                    after_quantifier = true;
                }
                out.push(c);
            }
            '(' | ')' if !in_class => {
                note(
                    i,
                    "CloudWatch regexes take no '(' or ')' (no groups); escape them as \\x28 \\x29"
                        .into(),
                );
                out.push(c);
            }
            c => {
                if c.is_ascii()
                    && !(c.is_ascii_alphanumeric()
                        || c == ' '
                        || is_regex_symbol(c)
                        || is_regex_operator(c))
                {
                    note(
                        i,
                        format!(
                            "'{c}' is not in CloudWatch's regex character set (write \\x{:02X})",
                            u32::from(c)
                        ),
                    );
                }
                out.push(c);
            }
        }
    }
    out
}

/// CloudWatch's `\d \D \w \W \s \S`, spelled as ASCII classes.
fn ascii_class(escape: char) -> &'static str {
    match escape {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => "[\\t\\n\\x0B\\x0C\\r ]",
        _ => "[^\\t\\n\\x0B\\x0C\\r ]",
    }
}

/// The symbols AWS lists for regexes.
fn is_regex_symbol(c: char) -> bool {
    matches!(c, ':' | '_' | '#' | '=' | '@' | '/' | ';' | ',' | '-')
}

/// The operators AWS lists for regexes.
fn is_regex_operator(c: char) -> bool {
    matches!(
        c,
        '^' | '$' | '?' | '[' | ']' | '{' | '}' | '|' | '\\' | '*' | '+' | '.'
    )
}

/// A counted repetition at the start of `text` (which starts with `{`):
/// `{m}`, `{m,}`, `{,n}`, `{m,n}`, spaces allowed around the numbers. Its
/// length in bytes and its regex-crate spelling.
fn repetition(text: &str) -> Option<(usize, String)> {
    let close = text.find('}')?;
    let inner = text.get(1..close)?;
    let digits = |s: &str| {
        let s = s.trim();
        (s.is_empty() || s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
    };
    let normalized = match inner.split_once(',') {
        None => {
            let m = digits(inner).filter(|m| !m.is_empty())?;
            format!("{{{m}}}")
        }
        Some((m, n)) => {
            let (m, n) = (digits(m)?, digits(n)?);
            if m.is_empty() && n.is_empty() {
                return None;
            }
            let m = if m.is_empty() { "0".to_owned() } else { m };
            format!("{{{m},{n}}}")
        }
    };
    Some((close + 1, normalized))
}

/// The regex crate renders syntax errors over several lines (pattern, caret,
/// reason); a one-line error keeps config-load messages readable.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.replace('\n', " "), str::to_owned)
}

/// Characters AWS lets a term contain unquoted ("enclose terms that include
/// non-alphanumeric characters in double quotation marks"), widened to the
/// punctuation of paths, loggers, emails and times that log searches use.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '@' | '-')
}

/// One text term: a literal substring or a regex search.
#[derive(Debug, Clone)]
enum Term {
    Literal(Box<str>),
    Regex(Regex),
}

impl Term {
    fn is_match(&self, message: &str) -> bool {
        match self {
            // std's substring search beats a literal regex here (about 6 ns
            // against 15 ns on a typical line), and needs no compiled state.
            Term::Literal(lit) => message.contains(&**lit),
            Term::Regex(re) => re.is_match(message),
        }
    }
}

#[derive(Debug, Clone)]
struct TermPattern {
    required: Box<[Term]>,
    any_of: Box<[Term]>,
    none_of: Box<[Term]>,
}

impl TermPattern {
    fn matches(&self, message: &str) -> bool {
        self.required.iter().all(|t| t.is_match(message))
            && (self.any_of.is_empty() || self.any_of.iter().any(|t| t.is_match(message)))
            && !self.none_of.iter().any(|t| t.is_match(message))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Required,
    Optional,
    Excluded,
}

fn parse_terms(cur: &mut Cursor<'_>) -> Result<Kind, FilterPatternError> {
    let mut required = Vec::new();
    let mut any_of = Vec::new();
    let mut none_of = Vec::new();
    loop {
        cur.skip_ws();
        let prefix_at = cur.pos;
        let Some(first) = cur.peek() else { break };
        let role = match first {
            '?' => Role::Optional,
            '-' => Role::Excluded,
            _ => Role::Required,
        };
        if role != Role::Required {
            cur.bump();
        }
        let start = cur.pos;
        let (term, bare) = match cur.peek() {
            Some('"') => {
                let phrase = cur.quoted()?;
                // AWS's "match everything" pattern is `" "`: a blank phrase
                // is a term every event contains.
                let phrase = if phrase.trim().is_empty() {
                    ""
                } else {
                    phrase.as_str()
                };
                (Term::Literal(phrase.into()), false)
            }
            Some('%') => (Term::Regex(cur.regex()?), false),
            Some(c) if is_word_char(c) => {
                let word = cur.take_while(is_word_char);
                if let Some(odd) = word
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                {
                    cur.note(
                        start,
                        format!(
                            "CloudWatch wants terms with characters other than letters, digits \
                             and '_' double-quoted ('{odd}' in {word}): write \"{word}\""
                        ),
                    );
                }
                (Term::Literal(word.into()), true)
            }
            Some(c) if !c.is_whitespace() => return Err(must_quote(cur, start, c)),
            _ => {
                return Err(cur.error(prefix_at, format!("expected a term right after '{first}'")));
            }
        };
        // Terms are separated by spaces; `"a"b` is more likely a typo than
        // two terms, and a bare word stops at the first character that needs
        // quoting, which is reported as such.
        if let Some(c) = cur.peek().filter(|c| !c.is_whitespace()) {
            return Err(if bare && !matches!(c, '"' | '%') {
                must_quote(cur, cur.pos, c)
            } else {
                cur.error(cur.pos, "expected a space between terms")
            });
        }
        match role {
            Role::Required => required.push(term),
            Role::Optional => any_of.push(term),
            Role::Excluded => none_of.push(term),
        }
    }
    // AWS ignores `?` terms as soon as the pattern has any other term.
    if !required.is_empty() || !none_of.is_empty() {
        any_of.clear();
    }
    // Blank phrases hold for every event: as required terms they add nothing.
    required.retain(|t| !matches!(t, Term::Literal(lit) if lit.is_empty()));
    if required.is_empty() && any_of.is_empty() && none_of.is_empty() {
        return Ok(Kind::All);
    }
    Ok(Kind::Terms(TermPattern {
        required: required.into(),
        any_of: any_of.into(),
        none_of: none_of.into(),
    }))
}

fn must_quote(cur: &Cursor<'_>, pos: usize, c: char) -> FilterPatternError {
    cur.error(
        pos,
        format!("'{c}' must be inside a double-quoted term (\"...\")"),
    )
}

/// A JSON-pattern token. The tokenizer is context-free: it does not know
/// whether a word is a keyword or an unquoted value; the parser decides.
#[derive(Debug)]
enum Tok<'a> {
    LParen,
    RParen,
    RBrace,
    And,
    Or,
    /// A run of `=!<>` characters; the parser validates it, which turns
    /// `==` into a precise "unknown operator" error.
    Op(&'a str),
    Selector(&'a str),
    Word(&'a str),
    Quoted(String),
    Regex(Regex),
    End,
}

#[derive(Debug)]
struct Token<'a> {
    tok: Tok<'a>,
    pos: usize,
}

/// Unquoted JSON values: AWS's alphanumerics and underscore, plus the
/// characters of numbers (`-1.5e+3`), wildcards (`123.123.*`) and the term
/// punctuation above.
fn is_value_char(c: char) -> bool {
    is_word_char(c) || matches!(c, '*' | '+')
}

fn is_selector_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '$' | '.' | '*' | '[' | ']')
}

/// Recursive-descent parser for `{ ... }`, over a one-token lookahead.
struct JsonParser<'a> {
    cur: Cursor<'a>,
    peeked: Option<Token<'a>>,
    /// Where the opening `{` is: running out of input anywhere inside is
    /// reported there, as an unclosed brace.
    brace: usize,
    /// Where each wildcard selector is, for CloudWatch's quota.
    wildcards: Vec<usize>,
}

impl<'a> JsonParser<'a> {
    fn new(cur: Cursor<'a>) -> Self {
        let brace = cur.pos;
        JsonParser {
            cur,
            peeked: None,
            brace,
            wildcards: Vec::new(),
        }
    }

    fn parse(&mut self) -> Result<Expr, FilterPatternError> {
        self.cur.bump();
        let expr = self.or(0)?;
        if let Some(&fourth) = self.wildcards.get(CLOUDWATCH_MAX_WILDCARD_SELECTORS) {
            let count = self.wildcards.len();
            self.cur.note(
                fourth,
                format!(
                    "{count} wildcard selectors; CloudWatch takes at most \
                     {CLOUDWATCH_MAX_WILDCARD_SELECTORS} per filter pattern"
                ),
            );
        }
        let close = self.next()?;
        match close.tok {
            Tok::RBrace => {}
            Tok::End => return Err(self.cur.error(self.brace, "unclosed '{'")),
            _ => return Err(self.cur.error(close.pos, "expected '&&', '||' or '}'")),
        }
        self.cur.skip_ws();
        if !self.cur.rest().is_empty() {
            return Err(self
                .cur
                .error(self.cur.pos, "unexpected text after the closing '}'"));
        }
        Ok(expr)
    }

    fn next(&mut self) -> Result<Token<'a>, FilterPatternError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    fn peek(&mut self) -> Result<&Tok<'a>, FilterPatternError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        match &self.peeked {
            Some(token) => Ok(&token.tok),
            None => Ok(&Tok::End),
        }
    }

    fn lex(&mut self) -> Result<Token<'a>, FilterPatternError> {
        let cur = &mut self.cur;
        cur.skip_ws();
        let pos = cur.pos;
        let Some(c) = cur.peek() else {
            return Ok(Token { tok: Tok::End, pos });
        };
        let tok = match c {
            '(' | ')' | '}' => {
                cur.bump();
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::RBrace,
                }
            }
            '&' | '|' => {
                cur.bump();
                if cur.peek() != Some(c) {
                    return Err(cur.error(pos, format!("expected '{c}{c}'")));
                }
                cur.bump();
                if c == '&' { Tok::And } else { Tok::Or }
            }
            '=' | '!' | '<' | '>' => {
                Tok::Op(cur.take_while(|c| matches!(c, '=' | '!' | '<' | '>')))
            }
            '"' => Tok::Quoted(cur.quoted()?),
            '%' => Tok::Regex(cur.regex()?),
            '$' => Tok::Selector(lex_selector(cur)?),
            c if is_value_char(c) => Tok::Word(cur.take_while(is_value_char)),
            c => return Err(cur.error(pos, format!("unexpected character '{c}'"))),
        };
        Ok(Token { tok, pos })
    }

    fn or(&mut self, depth: usize) -> Result<Expr, FilterPatternError> {
        let mut items = vec![self.and(depth)?];
        while matches!(self.peek()?, Tok::Or) {
            self.next()?;
            items.push(self.and(depth)?);
        }
        Ok(Expr::flatten(items, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterPatternError> {
        let mut items = vec![self.primary(depth)?];
        while matches!(self.peek()?, Tok::And) {
            self.next()?;
            items.push(self.primary(depth)?);
        }
        Ok(Expr::flatten(items, Expr::And))
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterPatternError> {
        let token = self.next()?;
        match token.tok {
            Tok::LParen => {
                if depth >= MAX_NESTING {
                    return Err(self.cur.error(
                        token.pos,
                        format!("parentheses nested deeper than {MAX_NESTING}"),
                    ));
                }
                let inner = self.or(depth + 1)?;
                let close = self.next()?;
                match close.tok {
                    Tok::RParen => Ok(inner),
                    Tok::End => Err(self.cur.error(token.pos, "unclosed '('")),
                    _ => Err(self.cur.error(close.pos, "expected '&&', '||' or ')'")),
                }
            }
            Tok::Selector(text) => {
                let selector = parse_selector(&self.cur, text, token.pos)?;
                if selector.wildcard.is_some() {
                    self.wildcards.push(token.pos);
                }
                if let Some(odd) = odd_selector_char(text) {
                    self.cur.note(
                        token.pos,
                        format!(
                            "'{odd}' in {text}: CloudWatch property names are letters, digits, \
                             '-' and '_' (use $.['...'] for others)"
                        ),
                    );
                }
                self.condition(selector)
            }
            Tok::End => Err(self.cur.error(self.brace, "unclosed '{'")),
            _ => Err(self.cur.error(
                token.pos,
                "expected a property selector starting with '$.' (or '(')",
            )),
        }
    }

    fn condition(&mut self, selector: Selector) -> Result<Expr, FilterPatternError> {
        let token = self.next()?;
        let test = match token.tok {
            Tok::Op(op) => {
                let op = CmpOp::parse(op).ok_or_else(|| {
                    self.cur
                        .error(token.pos, format!("unknown operator '{op}'"))
                })?;
                self.value(op)?
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("IS") => {
                let what = self.next()?;
                match what.tok {
                    Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Test::IsTrue,
                    Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Test::IsFalse,
                    Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Test::IsNull,
                    Tok::Word(w) if w.eq_ignore_ascii_case("NOT") => {
                        return Err(self.cur.error(
                            what.pos,
                            "IS NOT is not supported (as in CloudWatch); use != or NOT EXISTS",
                        ));
                    }
                    _ => {
                        return Err(self
                            .cur
                            .error(what.pos, "expected TRUE, FALSE or NULL after IS"));
                    }
                }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("EXISTS") => {
                self.cur.note(
                    token.pos,
                    "CloudWatch does not support EXISTS (only NOT EXISTS); \
                     `= *` matches any string or number",
                );
                Test::Exists
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("NOT") => {
                let what = self.next()?;
                match what.tok {
                    Tok::Word(w) if w.eq_ignore_ascii_case("EXISTS") => Test::NotExists,
                    _ => return Err(self.cur.error(what.pos, "expected EXISTS after NOT")),
                }
            }
            _ => {
                return Err(self.cur.error(
                    token.pos,
                    "expected an operator (=, !=, <, <=, >, >=), IS, EXISTS or NOT EXISTS",
                ));
            }
        };
        Ok(Expr::Cond(Condition { selector, test }))
    }

    fn value(&mut self, op: CmpOp) -> Result<Test, FilterPatternError> {
        let token = self.next()?;
        let not_a_number = |cur: &Cursor<'_>| {
            cur.error(
                token.pos,
                format!(
                    "'{}' compares numbers; the value must be a number",
                    op.as_str()
                ),
            )
        };
        let glob = |cur: &Cursor<'_>, text: &str| {
            Glob::new(text).map(TextMatcher::Glob).map_err(|e| {
                cur.error(
                    token.pos,
                    format!("wildcard value too complex: {}", regex_reason(&e)),
                )
            })
        };
        let text = match token.tok {
            Tok::Word(w) => {
                if let Some(number) = NumLit::parse(w) {
                    return Ok(Test::Number { op, number });
                }
                if !op.is_equality() {
                    return Err(not_a_number(&self.cur));
                }
                if let Some(odd) = w.chars().find(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-' | '+'))
                }) {
                    self.cur.note(
                        token.pos,
                        format!(
                            "CloudWatch wants string values with characters such as '{odd}' \
                             double-quoted: write \"{w}\""
                        ),
                    );
                }
                glob(&self.cur, w)?
            }
            Tok::Quoted(s) if op.is_equality() => glob(&self.cur, &s)?,
            Tok::Regex(re) if op.is_equality() => TextMatcher::Regex(re),
            Tok::Quoted(_) | Tok::Regex(_) => return Err(not_a_number(&self.cur)),
            _ => {
                return Err(self.cur.error(
                    token.pos,
                    format!("expected a value after '{}'", op.as_str()),
                ));
            }
        };
        Ok(Test::Text {
            negated: op == CmpOp::Ne,
            matcher: text,
        })
    }
}

/// Consumes a selector's text. Bracket keys (`['a.b']`) may hold any
/// character but a quote, so they are skipped whole.
fn lex_selector<'a>(cur: &mut Cursor<'a>) -> Result<&'a str, FilterPatternError> {
    let start = cur.pos;
    loop {
        match cur.peek() {
            Some('[') if cur.peek_second() == Some('\'') => {
                let open = cur.pos;
                cur.bump();
                cur.bump();
                cur.take_while(|c| c != '\'');
                if cur.bump().is_none() {
                    return Err(cur.error(open, "unclosed \"['\" in selector"));
                }
            }
            Some(c) if is_selector_char(c) => {
                cur.bump();
            }
            _ => break,
        }
    }
    Ok(cur.src.get(start..cur.pos).unwrap_or(""))
}

/// Splits a selector's text into segments. `pos` is where the text starts
/// in the pattern, for error columns.
fn parse_selector(
    pattern: &Cursor<'_>,
    text: &str,
    pos: usize,
) -> Result<Selector, FilterPatternError> {
    let mut cur = Cursor::new(text);
    let err = |at: usize, msg: &str| pattern.error(pos + at, msg);
    cur.bump(); // `$`
    let mut segments = Vec::new();
    let mut wildcard = None;
    while let Some(c) = cur.peek() {
        let seg_start = cur.pos;
        let segment = match c {
            '.' => {
                cur.bump();
                match cur.peek() {
                    Some('[') => continue,
                    Some('*') => {
                        cur.bump();
                        Seg::Wildcard
                    }
                    Some(c) if is_name_char(c) => Seg::Key(cur.take_while(is_name_char).into()),
                    _ => return Err(err(cur.pos, "expected a property name after '.'")),
                }
            }
            '[' => {
                cur.bump();
                let segment = match cur.peek() {
                    Some('\'') => {
                        cur.bump();
                        let key = cur.take_while(|c| c != '\'');
                        cur.bump();
                        Seg::Key(key.into())
                    }
                    Some('*') => {
                        cur.bump();
                        Seg::Wildcard
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let digits = cur.take_while(|c| c.is_ascii_digit());
                        let index = digits
                            .parse()
                            .map_err(|_| err(seg_start, "array index too large"))?;
                        Seg::Index(index)
                    }
                    _ => {
                        return Err(err(
                            cur.pos,
                            "expected an index, '*' or a single-quoted key after '['",
                        ));
                    }
                };
                if cur.peek() != Some(']') {
                    return Err(err(cur.pos, "expected ']'"));
                }
                cur.bump();
                segment
            }
            _ => return Err(err(seg_start, "expected '.' or '[' in selector")),
        };
        if matches!(segment, Seg::Wildcard) {
            if wildcard.is_some() {
                return Err(err(
                    seg_start,
                    "only one wildcard is allowed per selector (CloudWatch quota)",
                ));
            }
            wildcard = Some(segments.len());
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(err(0, "expected a property selector such as '$.field'"));
    }
    Ok(Selector {
        segments: segments.into(),
        wildcard,
    })
}

/// A character of a selector's dotted names that CloudWatch does not
/// document (bracket keys `['...']` may hold anything).
fn odd_selector_char(text: &str) -> Option<char> {
    let mut quoted = false;
    text.chars().find(|&c| {
        if c == '\'' {
            quoted = !quoted;
        }
        !(quoted
            || c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '$' | '.' | '*' | '[' | ']' | '\''))
    })
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '@')
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
    Cond(Condition),
}

impl Expr {
    /// A single operand needs no `And`/`Or` node around it.
    fn flatten(items: Vec<Expr>, wrap: fn(Box<[Expr]>) -> Expr) -> Expr {
        Expr::flatten_with(items, wrap)
    }

    /// [`Self::flatten`] for any tree of `And`/`Or` nodes.
    fn flatten_with<T>(mut items: Vec<T>, wrap: fn(Box<[T]>) -> T) -> T {
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return only;
        }
        wrap(items.into())
    }

    fn eval(&self, root: &Json<'_>) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(root)),
            Expr::Or(items) => items.iter().any(|e| e.eval(root)),
            Expr::Cond(cond) => cond.eval(root),
        }
    }
}

#[derive(Debug, Clone)]
struct Condition {
    selector: Selector,
    test: Test,
}

impl Condition {
    fn eval(&self, root: &Json<'_>) -> bool {
        let sel = &self.selector;
        match &self.test {
            Test::Exists => sel.any(root, |_| true),
            Test::NotExists => !sel.any(root, |_| true),
            Test::IsTrue => sel.any(root, |v| matches!(v, Json::Bool(true))),
            Test::IsFalse => sel.any(root, |v| matches!(v, Json::Bool(false))),
            Test::IsNull => sel.any(root, |v| v.is_null()),
            Test::Text { negated, matcher } => sel.any(root, |v| match v {
                Json::String(s) => matcher.is_match(s) != *negated,
                Json::Number(n) => {
                    with_number_text(n, |s| matcher.is_match(s) != *negated).unwrap_or(false)
                }
                _ => false,
            }),
            Test::Number { op, number } => sel.any(root, |v| match v {
                Json::Number(n) => number.compare(n).is_some_and(|ord| op.holds(ord)),
                _ => false,
            }),
        }
    }
}

#[derive(Debug, Clone)]
enum Test {
    Exists,
    NotExists,
    IsTrue,
    IsFalse,
    IsNull,
    Text { negated: bool, matcher: TextMatcher },
    Number { op: CmpOp, number: NumLit },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// Whether `event_value.cmp(literal) == ord` satisfies the operator.
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Ne => ord.is_ne(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Le => ord.is_le(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Ge => ord.is_ge(),
        }
    }
}

/// A number literal of a JSON pattern. Integers keep their exact value so
/// ids and byte counts above 2^53 still compare exactly.
#[derive(Debug, Clone, Copy)]
struct NumLit {
    float: f64,
    int: Option<i64>,
}

impl NumLit {
    /// `[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?`. Checked
    /// by hand because `f64::from_str` also takes `inf` and `NaN`, which are
    /// words here.
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        let mut mantissa = digits(&mut i);
        let mut integral = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            integral = false;
            mantissa += digits(&mut i);
        }
        if mantissa == 0 {
            return None;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            integral = false;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if i != bytes.len() {
            return None;
        }
        let float = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
        let int = if integral {
            text.parse::<i64>().ok()
        } else {
            None
        };
        Some(NumLit { float, int })
    }

    /// Orders this number (a field's) against the literal `lit`.
    fn cmp_lit(&self, lit: &NumLit) -> Option<Ordering> {
        if let (Some(a), Some(b)) = (self.int, lit.int) {
            return Some(a.cmp(&b));
        }
        self.float.partial_cmp(&lit.float)
    }

    /// Orders the event's number against this literal.
    fn compare(&self, n: &Number) -> Option<Ordering> {
        if let Some(lit) = self.int {
            let exact = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from));
            if let Some(value) = exact {
                return Some(value.cmp(&i128::from(lit)));
            }
        }
        n.as_f64()?.partial_cmp(&self.float)
    }
}

/// Renders a JSON number as text on the stack, so wildcard and regex values
/// can match numbers without allocating.
fn with_number_text<R>(n: &Number, f: impl FnOnce(&str) -> R) -> Option<R> {
    struct StackText {
        buf: [u8; 64],
        len: usize,
    }
    impl fmt::Write for StackText {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut text = StackText {
        buf: [0; 64],
        len: 0,
    };
    fmt::write(&mut text, format_args!("{n}")).ok()?;
    let s = std::str::from_utf8(text.buf.get(..text.len)?).ok()?;
    Some(f(s))
}

#[derive(Debug, Clone)]
enum TextMatcher {
    Glob(Glob),
    Regex(Regex),
}

impl TextMatcher {
    fn is_match(&self, s: &str) -> bool {
        match self {
            TextMatcher::Glob(glob) => glob.is_match(s),
            TextMatcher::Regex(re) => re.is_match(s),
        }
    }
}

/// A string value with `*` wildcards, reduced at parse time to the cheapest
/// check that decides it; only patterns with stars in the middle need a
/// regex.
#[derive(Debug, Clone)]
enum Glob {
    Exact(Box<str>),
    Any,
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    PrefixSuffix(Box<str>, Box<str>),
    Regex(Regex),
}

impl Glob {
    fn new(text: &str) -> Result<Self, regex::Error> {
        let parts: Vec<&str> = text.split('*').collect();
        // `a**b` means `a*b`: drop the empty pieces between adjacent stars,
        // keeping the first and last, which say whether the ends are open.
        let last = parts.len() - 1;
        let parts: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|&(i, p)| i == 0 || i == last || !p.is_empty())
            .map(|(_, p)| *p)
            .collect();
        Ok(match parts.as_slice() {
            [exact] => Glob::Exact((*exact).into()),
            ["", ""] => Glob::Any,
            [prefix, ""] => Glob::Prefix((*prefix).into()),
            ["", suffix] => Glob::Suffix((*suffix).into()),
            ["", middle, ""] => Glob::Contains((*middle).into()),
            [prefix, suffix] => Glob::PrefixSuffix((*prefix).into(), (*suffix).into()),
            _ => {
                let body: Vec<String> = parts.iter().map(|p| regex::escape(p)).collect();
                let source = format!("(?s)^{}$", body.join(".*"));
                Glob::Regex(Regex::new(&source)?)
            }
        })
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Glob::Exact(exact) => s == &**exact,
            Glob::Any => true,
            Glob::Prefix(prefix) => s.starts_with(&**prefix),
            Glob::Suffix(suffix) => s.ends_with(&**suffix),
            Glob::Contains(middle) => s.contains(&**middle),
            Glob::PrefixSuffix(prefix, suffix) => {
                s.len() >= prefix.len() + suffix.len()
                    && s.starts_with(&**prefix)
                    && s.ends_with(&**suffix)
            }
            Glob::Regex(re) => re.is_match(s),
        }
    }
}

#[derive(Debug, Clone)]
struct Selector {
    segments: Box<[Seg]>,
    /// Index of the one wildcard segment, if any.
    wildcard: Option<usize>,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(Box<str>),
    Index(usize),
    Wildcard,
}

impl Selector {
    /// Whether some value the selector selects satisfies `test`. Without a
    /// wildcard there is at most one such value.
    fn any(&self, root: &Json<'_>, test: impl Fn(&Json<'_>) -> bool) -> bool {
        match self.wildcard {
            None => resolve(root, &self.segments).is_some_and(test),
            Some(at) => {
                let (before, after) = self.segments.split_at(at);
                let after = after.get(1..).unwrap_or(&[]);
                let Some(parent) = resolve(root, before) else {
                    return false;
                };
                let hit = |child: &Json<'_>| resolve(child, after).is_some_and(&test);
                parent.children().any(hit)
            }
        }
    }
}

/// Follows wildcard-free segments.
fn resolve<'v, 'a>(mut value: &'v Json<'a>, segments: &[Seg]) -> Option<&'v Json<'a>> {
    for segment in segments {
        value = match segment {
            Seg::Key(key) => value.get(key)?,
            Seg::Index(index) => value.index(*index)?,
            Seg::Wildcard => return None,
        };
    }
    Some(value)
}

/// A compiled space-delimited pattern: its fields in order, with the one
/// `...` (if any) between them.
#[derive(Debug)]
struct Delimited {
    /// The pattern text, which identifies the pattern for
    /// [`DelimitedField`] equality.
    source: Box<str>,
    fields: Box<[DelimitedSpec]>,
    /// How many fields come before the `...`; `None` without one, when
    /// the last field takes the rest of the line.
    ellipsis: Option<usize>,
}

/// One field of a space-delimited pattern.
#[derive(Debug)]
struct DelimitedSpec {
    /// `None` for an unnamed field (an empty element, `[a, , c]`).
    name: Option<Box<str>>,
    test: Option<FieldExpr>,
}

#[derive(Debug)]
enum FieldExpr {
    And(Box<[FieldExpr]>),
    Or(Box<[FieldExpr]>),
    Cond(FieldTest),
}

#[derive(Debug)]
enum FieldTest {
    /// A string, wildcard or regex value with `=` or `!=`.
    Text { negated: bool, matcher: TextMatcher },
    /// A number value: compared by value when the field is a number, else
    /// (`=` and `!=` only) by text.
    Number {
        op: CmpOp,
        number: NumLit,
        text: Box<str>,
    },
}

impl FieldExpr {
    fn eval(&self, value: &str) -> bool {
        match self {
            FieldExpr::And(items) => items.iter().all(|e| e.eval(value)),
            FieldExpr::Or(items) => items.iter().any(|e| e.eval(value)),
            FieldExpr::Cond(FieldTest::Text { negated, matcher }) => {
                matcher.is_match(value) != *negated
            }
            FieldExpr::Cond(FieldTest::Number { op, number, text }) => match NumLit::parse(value) {
                Some(v) => v.cmp_lit(number).is_some_and(|ord| op.holds(ord)),
                None => match op {
                    CmpOp::Eq => value == &**text,
                    CmpOp::Ne => value != &**text,
                    _ => false,
                },
            },
        }
    }
}

/// One field of a message: where its text starts (quote or bracket
/// included), where it ends, and its value (without them).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    value: (usize, usize),
}

impl Span {
    fn value<'m>(&self, message: &'m str) -> &'m str {
        message.get(self.value.0..self.value.1).unwrap_or("")
    }
}

fn is_field_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// The message's next field from byte `pos`: runs of white space separate
/// fields; a field starting with `"` runs to the next `"` (`\"` does not
/// end it), one starting with `[` to the next `]`, either to the end of
/// the message when unclosed. The delimiters are ASCII, so every offset is
/// a character boundary.
fn next_token(message: &str, pos: usize) -> Option<Span> {
    let bytes = message.as_bytes();
    let start = pos + bytes.get(pos..)?.iter().position(|&b| !is_field_space(b))?;
    let rest = bytes.get(start + 1..).unwrap_or(&[]);
    let close = |at: Option<usize>| {
        let i = at.map_or(bytes.len(), |at| start + 1 + at);
        Span {
            start,
            end: (i + 1).min(bytes.len()),
            value: (start + 1, i),
        }
    };
    Some(match bytes[start] {
        b'[' => close(memchr::memchr(b']', rest)),
        b'"' => {
            // The first `"` not escaped by a backslash.
            let mut from = 0;
            let at = loop {
                match memchr::memchr(b'"', rest.get(from..).unwrap_or(&[])) {
                    Some(i)
                        if rest[..from + i]
                            .iter()
                            .rev()
                            .take_while(|&&b| b == b'\\')
                            .count()
                            % 2
                            == 1 =>
                    {
                        from += i + 1;
                    }
                    found => break found.map(|i| from + i),
                }
            };
            close(at)
        }
        _ => {
            let end = start
                + rest
                    .iter()
                    .position(|&b| is_field_space(b))
                    .map_or(rest.len(), |i| i)
                + 1;
            Span {
                start,
                end,
                value: (start, end),
            }
        }
    })
}

impl Delimited {
    fn matches(&self, message: &str) -> bool {
        self.walk(message, false, |field, _, value| {
            field
                .and_then(|i| self.fields.get(i))
                .and_then(|f| f.test.as_ref())
                .is_none_or(|t| t.eval(value))
        })
    }

    /// Lays the fields over the message and calls `visit(field, position,
    /// value)` for each in order (`position` is 1-based in the message;
    /// `field` is `None` for what `...` covers, visited only with
    /// `ellipsis_fields`). False when a visit returns false or the message
    /// has too few fields. Allocates nothing: with fields after `...`, the
    /// message is read twice, once to count its fields.
    fn walk<'m>(
        &self,
        message: &'m str,
        ellipsis_fields: bool,
        mut visit: impl FnMut(Option<usize>, usize, &'m str) -> bool,
    ) -> bool {
        let k = self.fields.len();
        match self.ellipsis {
            None => {
                let mut pos = 0;
                for i in 0..k {
                    let Some(token) = next_token(message, pos) else {
                        return false;
                    };
                    if i + 1 < k {
                        if !visit(Some(i), i + 1, token.value(message)) {
                            return false;
                        }
                        pos = token.end;
                        continue;
                    }
                    // The last field takes the rest of the line.
                    let value = if next_token(message, token.end).is_none() {
                        token.value(message)
                    } else {
                        message.get(token.start..).unwrap_or("").trim_end()
                    };
                    return visit(Some(i), i + 1, value);
                }
                true
            }
            Some(before) => {
                let after = k - before;
                let total = if after == 0 && !ellipsis_fields {
                    before
                } else {
                    let mut count = 0;
                    let mut pos = 0;
                    while let Some(token) = next_token(message, pos) {
                        count += 1;
                        pos = token.end;
                    }
                    count
                };
                if total < k {
                    return false;
                }
                let mut pos = 0;
                for t in 0..total {
                    let Some(token) = next_token(message, pos) else {
                        return false;
                    };
                    pos = token.end;
                    let field = if t < before {
                        Some(t)
                    } else if t >= total - after {
                        Some(before + t - (total - after))
                    } else if ellipsis_fields {
                        None
                    } else {
                        continue;
                    };
                    if !visit(field, t + 1, token.value(message)) {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// `"7"` as a position (1-based).
fn parse_position(name: &str) -> Option<usize> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|n| *n >= 1)
}

/// Which field a [`DelimitedField`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The pattern's field at this index.
    Named(usize),
    /// The message's field at this position (1-based).
    Position(usize),
}

/// A field of a space-delimited pattern (`$size`, `$7`), bound to the
/// pattern so a value can read it from a message the pattern matched (see
/// [`FilterPattern::field`]). Reading re-splits the message up to the
/// field: only values that read fields pay for it.
#[derive(Debug, Clone)]
pub struct DelimitedField {
    pattern: Arc<Delimited>,
    which: Which,
}

impl PartialEq for DelimitedField {
    fn eq(&self, other: &Self) -> bool {
        self.which == other.which && self.pattern.source == other.pattern.source
    }
}

impl Eq for DelimitedField {}

impl DelimitedField {
    /// The field's text in `message`, without its quotes or brackets;
    /// `None` when the message has too few fields. Meant for messages the
    /// pattern matched: conditions are not checked.
    pub fn value<'m>(&self, message: &'m str) -> Option<&'m str> {
        let d = &self.pattern;
        let mut found = None;
        let stop_at = self.which;
        d.walk(
            message,
            matches!(self.which, Which::Position(_)),
            |field, position, value| {
                let hit = match stop_at {
                    Which::Named(i) => field == Some(i),
                    Which::Position(n) => position == n,
                };
                if hit {
                    found = Some(value);
                }
                // Stop once found: the fields after it need not be read.
                !hit
            },
        );
        found
    }
}

fn is_field_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_field_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Unquoted values of a space-delimited condition: up to white space or
/// the punctuation of the pattern itself.
fn is_delimited_value_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ',' | ']' | '[' | '&' | '|' | '"' | '(' | ')')
}

/// Parses `[ ... ]` at the cursor.
fn parse_delimited(cur: &mut Cursor<'_>) -> Result<Delimited, FilterPatternError> {
    let open = cur.pos;
    cur.bump();
    let mut fields: Vec<DelimitedSpec> = Vec::new();
    let mut ellipsis: Option<usize> = None;
    cur.skip_ws();
    if cur.peek() == Some(']') {
        // `[]`: no field is constrained, so every event matches.
        cur.bump();
        ellipsis = Some(0);
    } else {
        loop {
            cur.skip_ws();
            let at = cur.pos;
            match cur.peek() {
                None => return Err(cur.error(open, "unclosed '['")),
                Some(',' | ']') => fields.push(DelimitedSpec {
                    name: None,
                    test: None,
                }),
                Some('.') if cur.rest().starts_with("...") => {
                    cur.pos += 3;
                    if ellipsis.is_some() {
                        return Err(cur.error(at, "only one '...' is allowed per pattern"));
                    }
                    ellipsis = Some(fields.len());
                }
                Some(c) if is_field_name_start(c) => {
                    let name = cur.take_while(is_field_name_char);
                    if fields.iter().any(|f| f.name.as_deref() == Some(name)) {
                        return Err(cur.error(at, format!("field '{name}' is named twice")));
                    }
                    cur.skip_ws();
                    let test = match cur.peek() {
                        Some('=' | '!' | '<' | '>') => Some(field_or(cur, name)?),
                        _ => None,
                    };
                    fields.push(DelimitedSpec {
                        name: Some(name.into()),
                        test,
                    });
                }
                Some(c) => {
                    return Err(cur.error(
                        at,
                        if c.is_ascii_digit() {
                            format!("a field name starts with a letter or '_', not '{c}'")
                        } else {
                            format!("expected a field name, '...' or ',', found '{c}'")
                        },
                    ));
                }
            }
            cur.skip_ws();
            match cur.bump() {
                Some(',') => {}
                Some(']') => break,
                None => return Err(cur.error(open, "unclosed '['")),
                Some(_) => {
                    return Err(cur.error(
                        cur.pos - 1,
                        "expected ',' or ']' after a field (conditions on a field \
                         repeat its name: [code = 404 || code = 410])",
                    ));
                }
            }
        }
    }
    cur.skip_ws();
    if !cur.rest().is_empty() {
        return Err(cur.error(cur.pos, "unexpected text after the closing ']'"));
    }
    Ok(Delimited {
        source: cur.src.into(),
        fields: fields.into(),
        ellipsis,
    })
}

/// `cond ( "&&" cond )* ( "||" ... )*` for the field `name`, whose name the
/// cursor has already passed for the first condition.
fn field_or(cur: &mut Cursor<'_>, name: &str) -> Result<FieldExpr, FilterPatternError> {
    let mut first = true;
    let mut ors = Vec::new();
    loop {
        let mut ands = Vec::new();
        loop {
            ands.push(field_cond(cur, name, first)?);
            first = false;
            cur.skip_ws();
            if cur.rest().starts_with("&&") {
                cur.pos += 2;
                continue;
            }
            break;
        }
        ors.push(Expr::flatten_with(ands, FieldExpr::And));
        if cur.rest().starts_with("||") {
            cur.pos += 2;
            continue;
        }
        return Ok(Expr::flatten_with(ors, FieldExpr::Or));
    }
}

/// `[name] op value`; the name is required after `&&` or `||` and must be
/// the field's own.
fn field_cond(
    cur: &mut Cursor<'_>,
    name: &str,
    name_read: bool,
) -> Result<FieldExpr, FilterPatternError> {
    cur.skip_ws();
    if !name_read {
        let at = cur.pos;
        let other = cur.take_while(is_field_name_char);
        if other.is_empty() {
            return Err(cur.error(at, format!("expected a condition on '{name}'")));
        }
        if other != name {
            return Err(cur.error(
                at,
                format!(
                    "a condition in the element of '{name}' names '{other}': each field's \
                     conditions go in its own element"
                ),
            ));
        }
        cur.skip_ws();
    }
    let op_at = cur.pos;
    let op_text = cur.take_while(|c| matches!(c, '=' | '!' | '<' | '>'));
    let op = CmpOp::parse(op_text).ok_or_else(|| {
        if op_text.is_empty() {
            cur.error(op_at, format!("expected an operator after '{name}'"))
        } else {
            cur.error(op_at, format!("unknown operator '{op_text}'"))
        }
    })?;
    cur.skip_ws();
    let at = cur.pos;
    let not_a_number = |cur: &Cursor<'_>| {
        cur.error(
            at,
            format!(
                "'{}' compares numbers; the value must be a number",
                op.as_str()
            ),
        )
    };
    let glob = |cur: &Cursor<'_>, text: &str| {
        Glob::new(text).map(TextMatcher::Glob).map_err(|e| {
            cur.error(
                at,
                format!("wildcard value too complex: {}", regex_reason(&e)),
            )
        })
    };
    let matcher = match cur.peek() {
        Some('"') => {
            let text = cur.quoted()?;
            if !op.is_equality() {
                return Err(not_a_number(cur));
            }
            glob(cur, &text)?
        }
        Some('%') => {
            let re = cur.regex()?;
            if !op.is_equality() {
                return Err(not_a_number(cur));
            }
            TextMatcher::Regex(re)
        }
        Some(c) if is_delimited_value_char(c) => {
            let word = cur.take_while(is_delimited_value_char);
            if let Some(number) = NumLit::parse(word) {
                return Ok(FieldExpr::Cond(FieldTest::Number {
                    op,
                    number,
                    text: word.into(),
                }));
            }
            if !op.is_equality() {
                return Err(not_a_number(cur));
            }
            glob(cur, word)?
        }
        _ => {
            return Err(cur.error(at, format!("expected a value after '{}'", op.as_str())));
        }
    };
    Ok(FieldExpr::Cond(FieldTest::Text {
        negated: op == CmpOp::Ne,
        matcher,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECURITY_FAILURE: &str = r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"security","message":"Authentication attempt","user_id":"7c0e42","ip_address":"203.0.113.7","success":false,"method":"password","endpoint":"/api/auth/login","duration_ms":41.7,"user":{"id":"7c0e42"}}"#;
    const SECURITY_SUCCESS: &str = r#"{"level":"INFO","logger":"security","message":"Authentication attempt","success":true,"duration_ms":1200,"user":{"id":"9a11"}}"#;
    const API_ERROR: &str = r#"{"level":"ERROR","logger":"performance","message":"API request completed","endpoint":"/api/users/:id","method":"GET","status_code":503,"duration_ms":1500.5,"roles":["user","admin"],"tags":null,"cluster.name":"prod","big":9007199254740993,"ratio":-0.25,"coordinates":[[0,1,2],[4,5,6]],"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}"#;
    const AUDIT_CRITICAL: &str =
        r#"{"level":"CRITICAL","logger":"audit","message":"Role modified","status_code":"500"}"#;
    const SECURITY_CRITICAL: &str =
        r#"{"level":"CRITICAL","logger":"security","message":"Token operation"}"#;
    const INVALID_STATE: &str =
        "2025-05-18 07:42:55,101 - app.api.auth - ERROR - Invalid state parameter: 3f2c";
    const INVALID_TOKEN: &str =
        "2025-05-18 07:42:55,101 - app.api.auth - WARNING - Invalid token for user";
    const TOKEN_CREATED: &str = "2025-05-18 07:42:54,855 - app.core.security - INFO - Access token created for user ana@example.com";
    const DEBUG_LINE: &str = "2025-05-18 07:42:54,000 - app.db - DEBUG - ERROR counters reset";
    const CRITICAL_LINE: &str =
        "2025-05-18 07:42:56,000 - app.db - CRITICAL - Database error: timeout";
    const QUOTED_LINE: &str = r#"user said "stop" at C:\temp 50% done"#;

    /// Parses `event` the way the pipeline does: JSON objects only.
    fn check(pattern: &str, event: &str) -> bool {
        let parsed = FilterPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("pattern {pattern:?} should parse: {e}"));
        let json = Json::parse(event).ok().filter(Json::is_object);
        parsed.matches(event, json.as_ref())
    }

    #[test]
    fn required_text_is_a_top_level_exact_string_condition() {
        let required = |p: &str| {
            FilterPattern::parse(p)
                .expect("parses")
                .required_text()
                .map(|(k, v)| (k.to_string(), v.to_string()))
        };
        let pair = |k: &str, v: &str| Some((k.to_string(), v.to_string()));
        assert_eq!(
            required(r#"{ $.message = "HTTP request" }"#),
            pair("message", "HTTP request")
        );
        assert_eq!(
            required(r#"{ $.status_code = 429 && $.message = "HTTP request" }"#),
            pair("message", "HTTP request")
        );
        assert_eq!(
            required(r#"{ $.level = ERROR && $.x > 1 }"#),
            pair("level", "ERROR")
        );
        // Not required: alternatives, negations, wildcards, nested paths,
        // numbers, other kinds of pattern.
        for p in [
            r#"{ $.message = "a" || $.status_code = 1 }"#,
            r#"{ $.message != "a" }"#,
            r#"{ $.message = "HTTP*" }"#,
            r#"{ $.user.id = "a" }"#,
            r#"{ $.status_code = 401 }"#,
            "ERROR",
            "[ip, user]",
            "",
        ] {
            assert_eq!(required(p), None, "{p}");
        }
        // Whenever the field is missing or another string, the pattern
        // does not match (what lets a caller skip it).
        let pattern = r#"{ $.message = "HTTP request" && $.status_code >= 400 }"#;
        for event in [
            r#"{"message":"HTTP requests","status_code":500}"#,
            r#"{"msg":"HTTP request","status_code":500}"#,
            r#"{"message":"http request","status_code":500}"#,
            "HTTP request 500",
        ] {
            assert!(!check(pattern, event), "{event}");
        }
        assert!(check(
            pattern,
            r#"{"message":"HTTP request","status_code":500}"#
        ));
    }

    #[test]
    fn table_of_patterns_and_events() {
        let table: &[(&str, &str, bool)] = &[
            // Empty and match-everything patterns.
            ("", INVALID_STATE, true),
            ("   ", API_ERROR, true),
            (r#""""#, TOKEN_CREATED, true),
            (r#"" ""#, "no spaces here", true),
            // Single and multiple terms: all must appear, case-sensitive.
            ("ERROR", INVALID_STATE, true),
            ("ERROR", INVALID_TOKEN, false),
            ("error", INVALID_STATE, false),
            ("ERROR Invalid", INVALID_STATE, true),
            ("ERROR Exception", INVALID_STATE, false),
            ("app.api.auth ERROR", INVALID_STATE, true),
            ("ana@example.com", TOKEN_CREATED, true),
            ("/api/auth/login", SECURITY_FAILURE, true),
            // Terms search JSON events as text too.
            ("security", SECURITY_FAILURE, true),
            // Quoted phrases, with escapes.
            (r#""Invalid state""#, INVALID_STATE, true),
            (r#""Invalid state""#, INVALID_TOKEN, false),
            (r#""\"stop\"""#, QUOTED_LINE, true),
            (r#""C:\temp 50%""#, QUOTED_LINE, true),
            (r#""\"go\"""#, QUOTED_LINE, false),
            // ?-terms: at least one must appear.
            ("?ERROR ?CRITICAL", INVALID_STATE, true),
            ("?ERROR ?CRITICAL", CRITICAL_LINE, true),
            ("?ERROR ?CRITICAL", TOKEN_CREATED, false),
            (r#"?"Invalid state" ?%token for%"#, INVALID_TOKEN, true),
            // -terms: must not appear.
            ("-DEBUG", TOKEN_CREATED, true),
            ("-DEBUG", DEBUG_LINE, false),
            ("ERROR -DEBUG", INVALID_STATE, true),
            ("ERROR -DEBUG", DEBUG_LINE, false),
            (r#"ERROR -"counters reset""#, DEBUG_LINE, false),
            (r#"-"counters reset""#, CRITICAL_LINE, true),
            ("-%D[A-Z]+G%", DEBUG_LINE, false),
            // Mixtures: AWS ignores ?-terms next to plain or - terms.
            ("?CRITICAL ?WARNING app", INVALID_STATE, true),
            ("?CRITICAL ?WARNING app", TOKEN_CREATED, true),
            ("?CRITICAL -DEBUG", TOKEN_CREATED, true),
            ("?CRITICAL -DEBUG", DEBUG_LINE, false),
            ("ERROR app -DEBUG", INVALID_STATE, true),
            ("ERROR app -DEBUG", DEBUG_LINE, false),
            // %regex% terms, searching anywhere.
            ("%Invalid (state|token)%", INVALID_STATE, true),
            ("%Invalid (state|token)%", INVALID_TOKEN, true),
            ("%Invalid (state|token)%", TOKEN_CREATED, false),
            ("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST", true),
            ("%^2025-05-18 07:42:5[45]%", TOKEN_CREATED, true),
            ("%timeout$%", CRITICAL_LINE, true),
            ("%50\\% done%", QUOTED_LINE, true),
            ("%\\d{3} done%", QUOTED_LINE, false),
            ("app %token (created|revoked)%", TOKEN_CREATED, true),
            // JSON patterns: strings, && binds tighter than ||.
            (
                r#"{ $.logger = "security" && $.success IS FALSE }"#,
                SECURITY_FAILURE,
                true,
            ),
            (
                r#"{ $.logger = "security" && $.success IS FALSE }"#,
                SECURITY_SUCCESS,
                false,
            ),
            (r#"{ $.logger = security }"#, SECURITY_FAILURE, true),
            (r#"{ $.logger != "security" }"#, SECURITY_FAILURE, false),
            (r#"{ $.logger != "security" }"#, API_ERROR, true),
            (
                r#"{ ($.level = "ERROR" || $.level = "CRITICAL") && $.logger != "audit" }"#,
                API_ERROR,
                true,
            ),
            (
                r#"{ ($.level = "ERROR" || $.level = "CRITICAL") && $.logger != "audit" }"#,
                SECURITY_CRITICAL,
                true,
            ),
            (
                r#"{ ($.level = "ERROR" || $.level = "CRITICAL") && $.logger != "audit" }"#,
                AUDIT_CRITICAL,
                false,
            ),
            (
                r#"{ ($.level = "ERROR" || $.level = "CRITICAL") && $.logger != "audit" }"#,
                SECURITY_FAILURE,
                false,
            ),
            (
                r#"{ $.level = "CRITICAL" || $.level = "ERROR" && $.logger = "audit" }"#,
                API_ERROR,
                false,
            ),
            (
                r#"{ $.level = "CRITICAL" || $.level = "ERROR" && $.logger = "audit" }"#,
                SECURITY_CRITICAL,
                true,
            ),
            (r#"{(($.level = "CRITICAL"))}"#, SECURITY_CRITICAL, true),
            (r#"{ $.level = "ERROR" } "#, API_ERROR, true),
            // Wildcard strings.
            (r#"{ $.user.id = "7c*" }"#, SECURITY_FAILURE, true),
            (r#"{ $.user.id = "7c*" }"#, SECURITY_SUCCESS, false),
            (r#"{ $.endpoint = "*/auth/*" }"#, SECURITY_FAILURE, true),
            (r#"{ $.endpoint = "*login" }"#, SECURITY_FAILURE, true),
            (r#"{ $.endpoint = "/api*login" }"#, SECURITY_FAILURE, true),
            (r#"{ $.endpoint = "/api*users*:id" }"#, API_ERROR, true),
            (r#"{ $.endpoint = "/api*users*:x" }"#, API_ERROR, false),
            (r#"{ $.endpoint = "*" }"#, API_ERROR, true),
            (r#"{ $.ip_address != 198.51.* }"#, SECURITY_FAILURE, true),
            (r#"{ $.ip_address != 203.0.* }"#, SECURITY_FAILURE, false),
            // Wildcards and quoted strings match numbers through their text.
            (r#"{ $.status_code = 5* }"#, API_ERROR, true),
            (r#"{ $.status_code = "503" }"#, API_ERROR, true),
            // Numbers compare by value and only with JSON numbers.
            ("{ $.status_code >= 500 }", API_ERROR, true),
            ("{ $.status_code >= 500 }", AUDIT_CRITICAL, false),
            ("{ $.status_code >= 500 }", SECURITY_FAILURE, false),
            ("{ $.status_code = 503 }", API_ERROR, true),
            ("{ $.status_code != 503 }", API_ERROR, false),
            ("{ $.status_code < 503 }", API_ERROR, false),
            ("{ $.status_code <= 503 }", API_ERROR, true),
            ("{ $.status_code > 502.5 }", API_ERROR, true),
            ("{ $.duration_ms > 1e3 }", API_ERROR, true),
            ("{ $.duration_ms > 1e3 }", SECURITY_FAILURE, false),
            ("{ $.duration_ms > 1E+3 }", SECURITY_SUCCESS, true),
            ("{ $.duration_ms = 1.2e3 }", SECURITY_SUCCESS, true),
            ("{ $.duration_ms = 41.7 }", SECURITY_FAILURE, true),
            ("{ $.ratio < -0.2 }", API_ERROR, true),
            ("{ $.ratio >= -2.5e-1 }", API_ERROR, true),
            ("{ $.big = 9007199254740993 }", API_ERROR, true),
            ("{ $.big > 9007199254740992 }", API_ERROR, true),
            ("{ $.message > 1 }", API_ERROR, false),
            // Arrays, nested objects, bracket keys, wildcard selectors.
            (r#"{ $.roles[1] = "admin" }"#, API_ERROR, true),
            (r#"{ $.roles[0] = "admin" }"#, API_ERROR, false),
            (r#"{ $.roles[7] = "admin" }"#, API_ERROR, false),
            (r#"{ $.roles[*] = "admin" }"#, API_ERROR, true),
            (r#"{ $.roles[*] = "root" }"#, API_ERROR, false),
            ("{ $.items[1].id = 2 }", API_ERROR, true),
            ("{ $.items[*].id >= 2 }", API_ERROR, true),
            ("{ $.items[*].id > 2 }", API_ERROR, false),
            ("{ $.coordinates[1][2] = 6 }", API_ERROR, true),
            (r#"{ $.['cluster.name'] = "prod" }"#, API_ERROR, true),
            (r#"{ $['cluster.name'] = "prod" }"#, API_ERROR, true),
            (r#"{ $.* = %^/api/users% }"#, API_ERROR, true),
            (r#"{ $.user.* = "9a11" }"#, SECURITY_SUCCESS, true),
            // Regex values.
            (
                r#"{ $.message = %Invalid.*% }"#,
                r#"{"message":"Invalid state parameter"}"#,
                true,
            ),
            (r#"{ $.message = %Invalid.*% }"#, API_ERROR, false),
            (r#"{ $.message != %^API% }"#, API_ERROR, false),
            (r#"{ $.message != %^API% }"#, SECURITY_FAILURE, true),
            (r#"{ $.status_code = %^5\d\d$% }"#, API_ERROR, true),
            // IS, EXISTS and NOT EXISTS.
            ("{ $.success IS TRUE }", SECURITY_SUCCESS, true),
            ("{ $.success IS TRUE }", SECURITY_FAILURE, false),
            ("{ $.success is false }", SECURITY_FAILURE, true),
            ("{ $.missing IS FALSE }", SECURITY_FAILURE, false),
            ("{ $.tags IS NULL }", API_ERROR, true),
            ("{ $.missing IS NULL }", API_ERROR, false),
            ("{ $.status_code IS NULL }", API_ERROR, false),
            ("{ $.missing NOT EXISTS }", API_ERROR, true),
            ("{ $.tags NOT EXISTS }", API_ERROR, false),
            ("{ $.roles[5] NOT EXISTS }", API_ERROR, true),
            ("{ $.message.deeper NOT EXISTS }", API_ERROR, true),
            ("{ $.tags EXISTS }", API_ERROR, true),
            ("{ $.user EXISTS }", API_ERROR, false),
            (
                "{ $.user NOT EXISTS || $.level = \"ERROR\" }",
                SECURITY_FAILURE,
                false,
            ),
            // Missing selectors and other types: false, even for !=.
            (r#"{ $.missing != "x" }"#, API_ERROR, false),
            ("{ $.missing != 1 }", API_ERROR, false),
            (r#"{ $.roles != "x" }"#, API_ERROR, false),
            (r#"{ $.tags != "x" }"#, API_ERROR, false),
            (r#"{ $.success = "false" }"#, SECURITY_FAILURE, false),
            ("{ $.status_code = 500 }", AUDIT_CRITICAL, false),
            (r#"{ $.status_code = "500" }"#, AUDIT_CRITICAL, true),
            // JSON patterns never match text events.
            (r#"{ $.level = "ERROR" }"#, INVALID_STATE, false),
            ("{ $.missing NOT EXISTS }", INVALID_STATE, false),
            ("{ $.x NOT EXISTS }", "[1, 2]", false),
        ];
        let failures: Vec<String> = table
            .iter()
            .filter(|(pattern, event, expected)| check(pattern, event) != *expected)
            .map(|(pattern, event, expected)| {
                format!("{pattern:?} on {event:?}: expected {expected}")
            })
            .collect();
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn parse_errors_name_the_column() {
        let table: &[(&str, usize, &str)] = &[
            // Unclosed brace: reported at the brace.
            ("{ $.a = 1", 1, "unclosed '{'"),
            ("  {", 3, "unclosed '{'"),
            // Unclosed quote: reported at the opening quote.
            (r#"ERROR "Invalid state"#, 7, "unclosed '\"'"),
            (r#"{ $.a = "x }"#, 9, "unclosed '\"'"),
            ("{ $.a == 1 }", 7, "unknown operator '=='"),
            ("{ $.a => 1 }", 7, "unknown operator '=>'"),
            ("{ $.a = }", 9, "expected a value after '='"),
            ("{ $.a != }", 10, "expected a value after '!='"),
            ("{ $.a = 1 && }", 14, "expected a property selector"),
            ("{ a = 1 }", 3, "expected a property selector"),
            ("{ $ = 1 }", 3, "expected a property selector such as"),
            ("{ $.a. = 1 }", 7, "expected a property name after '.'"),
            ("{ $.[0 = 1 }", 7, "expected ']'"),
            (r#"{ $.["k"] = 1 }"#, 6, "single-quoted key"),
            ("{ $.a.*.b[*] = 1 }", 10, "only one wildcard"),
            ("{ $.a }", 7, "expected an operator"),
            ("{ $.a IS NOT NULL }", 10, "IS NOT is not supported"),
            ("{ $.a IS MAYBE }", 10, "expected TRUE, FALSE or NULL"),
            ("{ $.a NOT THERE }", 11, "expected EXISTS after NOT"),
            (r#"{ $.a < "5" }"#, 9, "'<' compares numbers"),
            ("{ $.a >= fast }", 10, "'>=' compares numbers"),
            ("{ $.a > %5% }", 9, "'>' compares numbers"),
            ("{ $.a = 1 & $.b = 2 }", 11, "expected '&&'"),
            ("{ $.a = 1 $.b = 2 }", 11, "expected '&&', '||' or '}'"),
            ("{ ($.a = 1 }", 12, "expected '&&', '||' or ')'"),
            ("{ ($.a = 1", 3, "unclosed '('"),
            ("{ $.a = 1 ; }", 11, "unexpected character ';'"),
            // Invalid regex: reported at the opening '%'.
            ("%Invalid (state%", 1, "invalid regex: unclosed group"),
            ("ERROR %a{2,1}%", 7, "invalid regex"),
            ("{ $.m = %a(% }", 9, "invalid regex"),
            ("%%", 1, "empty %regex%"),
            ("ERROR %abc", 7, "unclosed '%'"),
            // Trailing garbage after a JSON pattern.
            (
                "{ $.a = 1 } extra",
                13,
                "unexpected text after the closing '}'",
            ),
            ("{ $.a = 1 }}", 12, "unexpected text after the closing '}'"),
            // Space-delimited patterns.
            ("[a, b", 1, "unclosed '['"),
            ("  [ip, user=x", 3, "unclosed '['"),
            ("[a, a]", 5, "field 'a' is named twice"),
            ("[a, ..., b, ...]", 13, "only one '...'"),
            ("[1a]", 2, "starts with a letter or '_'"),
            ("[a, -b]", 5, "expected a field name, '...' or ','"),
            ("[a = ]", 6, "expected a value after '='"),
            ("[a == 1]", 4, "unknown operator '=='"),
            ("[a > x]", 6, "'>' compares numbers"),
            ("[a < \"1\"]", 6, "'<' compares numbers"),
            ("[a = 1 ||]", 10, "expected a condition on 'a'"),
            ("[a = 1 || b = 2]", 11, "names 'b'"),
            ("[a = 1 b]", 8, "expected ',' or ']'"),
            ("[a] x", 5, "unexpected text after the closing ']'"),
            ("[a = %(%]", 6, "invalid regex"),
            // Terms needing quotes, and term separation; columns count
            // characters, not bytes.
            ("ERROR !x", 7, "'!' must be inside a double-quoted term"),
            ("foo!bar", 4, "'!' must be inside a double-quoted term"),
            ("ünï ~", 5, "'~' must be inside a double-quoted term"),
            ("ERROR [a]", 7, "'[' must be inside a double-quoted term"),
            ("ERROR {", 7, "'{' must be inside a double-quoted term"),
            ("? ERROR", 1, "expected a term right after '?'"),
            ("ERROR -", 7, "expected a term right after '-'"),
            (r#""a"b"#, 4, "expected a space between terms"),
            ("%a%b", 4, "expected a space between terms"),
            (r#"ERROR"x""#, 6, "expected a space between terms"),
        ];
        for (pattern, column, message) in table {
            let err = FilterPattern::parse(pattern)
                .err()
                .unwrap_or_else(|| panic!("{pattern:?} should not parse"));
            assert_eq!(
                (err.column, err.message.contains(message)),
                (*column, true),
                "{pattern:?}: got column {} message {:?}, want column {column} containing {message:?}",
                err.column,
                err.message
            );
        }
    }

    #[test]
    fn error_display_is_one_line_with_the_column() {
        let err = FilterPattern::parse("{ $.a == 1 }").unwrap_err();
        assert_eq!(
            err.to_string(),
            "filter pattern, column 7: unknown operator '=='"
        );
        let err = FilterPattern::parse("%a(%").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{ {}$.a = 1{} }}", "(".repeat(200), ")".repeat(200));
        let err = FilterPattern::parse(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
        let fine = format!("{{ {}$.a = 1{} }}", "(".repeat(60), ")".repeat(60));
        assert!(check(&fine, r#"{"a":1}"#));
    }

    #[test]
    fn kind_source_and_thread_safety() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<FilterPattern>();
        shareable::<FilterPatternError>();

        let json = FilterPattern::parse(" { $.a EXISTS } ").unwrap();
        assert!(json.is_json());
        assert_eq!(json.as_str(), " { $.a EXISTS } ");
        assert_eq!(json.to_string(), " { $.a EXISTS } ");
        for text in ["", "ERROR", "%x%", r#"" ""#] {
            assert!(!FilterPattern::parse(text).unwrap().is_json(), "{text:?}");
        }
        // A clone matches like the original.
        let copy = json.clone();
        let event = Json::parse("{\"a\":1}").unwrap();
        assert!(copy.matches("{\"a\":1}", Some(&event)));
        assert!(!copy.matches("{\"a\":1}", None));
    }

    #[test]
    fn number_literals() {
        for ok in [
            "0", "-1", "+2", "1.5", ".5", "5.", "1e3", "1E-3", "-2.5e+10",
        ] {
            assert!(NumLit::parse(ok).is_some(), "{ok}");
        }
        for not in [
            "", "-", ".", "e3", "1e", "1e+", "inf", "NaN", "1.2.3", "12a", "1e999",
        ] {
            assert!(NumLit::parse(not).is_none(), "{not}");
        }
    }

    #[test]
    fn globs_pick_the_cheap_form() {
        let kind = |text: &str| match Glob::new(text).unwrap() {
            Glob::Exact(_) => "exact",
            Glob::Any => "any",
            Glob::Prefix(_) => "prefix",
            Glob::Suffix(_) => "suffix",
            Glob::Contains(_) => "contains",
            Glob::PrefixSuffix(..) => "prefix-suffix",
            Glob::Regex(_) => "regex",
        };
        assert_eq!(kind("abc"), "exact");
        assert_eq!(kind("*"), "any");
        assert_eq!(kind("***"), "any");
        assert_eq!(kind("ab*"), "prefix");
        assert_eq!(kind("ab**"), "prefix");
        assert_eq!(kind("*ab"), "suffix");
        assert_eq!(kind("*ab*"), "contains");
        assert_eq!(kind("a*b"), "prefix-suffix");
        assert_eq!(kind("a**b"), "prefix-suffix");
        assert_eq!(kind("a*b*c"), "regex");
        // Overlapping prefix and suffix must not share characters.
        let g = Glob::new("ab*ba").unwrap();
        assert!(!g.is_match("aba"));
        assert!(g.is_match("abba"));
        // Regex metacharacters in wildcard values are literal.
        let g = Glob::new("a.(*)*c").unwrap();
        assert!(g.is_match("a.(x)yc"));
        assert!(!g.is_match("ab(x)yc"));
    }

    const APACHE: &str =
        r#"127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;

    #[test]
    fn space_delimited_layout() {
        let table: &[(&str, &str, bool)] = &[
            // Seven fields, quotes and brackets making one field each.
            ("[a, b, c, d, e, f, g]", APACHE, true),
            ("[a, b, c, d, e, f, g, h]", APACHE, false),
            // The last field takes the rest of the line...
            ("[a, b]", APACHE, true),
            ("[w1=ERROR, w2]", "ERROR 09/25/2014 12:00:02 Failed", true),
            ("[w1=ERROR, w2]", "ERROR", false),
            ("[w1=ERROR]", "ERROR 09/25/2014", false),
            ("[w1=ERROR]", "ERROR", true),
            ("[w1, w2=*12:00*]", "ERROR 09/25/2014 12:00:02 Failed", true),
            // ...unless the pattern ends with `...`.
            ("[w1=ERROR, ...]", "ERROR", true),
            ("[w1=ERROR, ...]", "ERROR a b", true),
            ("[..., bytes=1534]", APACHE, true),
            ("[..., bytes=1535]", APACHE, false),
            ("[ip=127.0.0.1, ..., bytes=1534]", APACHE, true),
            ("[ip, user=Prod, ..., status=404, bytes]", APACHE, true),
            ("[ip, user=Prod, ..., status=200, bytes]", APACHE, false),
            ("[a, b, c, d, e, f, ..., g]", APACHE, true),
            ("[a, b, c, d, e, f, g, ..., h]", APACHE, false),
            ("[]", APACHE, true),
            ("[...]", "", true),
            ("[a]", "", false),
            // Unnamed fields.
            ("[, user=Prod, ...]", APACHE, true),
            ("[..., status_code=4*,]", APACHE, true),
            // Brackets and quotes are stripped from values.
            ("[ip, user, name, ts=10/Oct*, ...]", APACHE, true),
            (
                r#"[..., req="GET /index.html HTTP/1.0", code, size]"#,
                APACHE,
                true,
            ),
            ("[..., req=*index.html*, code, size]", APACHE, true),
            // White space runs separate fields; leading white space is not a field.
            ("[a=x, b=y, c=z]", "  x \t y   z  ", true),
            // An unclosed quote or bracket runs to the end.
            ("[a, b=\"y z\"]", "x \"y z", true),
            ("[a, b=*z]", "x \"y z", true),
            ("[a, b=\"y z\"]", "x [y z", true),
            // Numbers by value, text otherwise.
            ("[..., code >= 400 && code < 500, size]", APACHE, true),
            ("[..., code, size > 1000]", APACHE, true),
            ("[..., code, size > 2000]", APACHE, false),
            ("[..., code, size = 1.534e3]", APACHE, true),
            ("[w1 != 404, w2]", "ERROR x", true),
            ("[w1 = 404, w2]", "404 x", true),
            ("[w1 = 404, w2]", "0404 x", true),
            ("[w1 > 1, w2]", "ERROR x", false),
            // Regexes search the field.
            (r"[ip=%127\.0\.0\.[1-9]%, ...]", APACHE, true),
            (r"[ip=%^27%, ...]", APACHE, false),
            (r"[ip!=%^27%, ...]", APACHE, true),
            ("[w1=ERROR || w1=WARNING, w2]", "WARNING x", true),
            ("[w1!=ERROR && w1!=WARNING, w2]", "WARNING x", false),
            ("[w1!=ERROR && w1!=WARNING, w2]", "INFO x", true),
        ];
        let failures: Vec<String> = table
            .iter()
            .filter(|(pattern, event, expected)| check(pattern, event) != *expected)
            .map(|(pattern, event, expected)| {
                format!("{pattern:?} on {event:?}: expected {expected}")
            })
            .collect();
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn space_delimited_fields() {
        let value = |pattern: &str, name: &str, message: &str| {
            FilterPattern::parse(pattern)
                .unwrap()
                .field(name)
                .unwrap_or_else(|| panic!("{pattern} has no field {name}"))
                .value(message)
                .map(str::to_owned)
        };
        let all = "[ip, user, username, timestamp, request, status_code, bytes]";
        assert_eq!(value(all, "ip", APACHE).as_deref(), Some("127.0.0.1"));
        assert_eq!(
            value(all, "timestamp", APACHE).as_deref(),
            Some("10/Oct/2000:13:25:15 -0700")
        );
        assert_eq!(
            value(all, "request", APACHE).as_deref(),
            Some("GET /index.html HTTP/1.0")
        );
        assert_eq!(value(all, "bytes", APACHE).as_deref(), Some("1534"));
        assert_eq!(value(all, "7", APACHE).as_deref(), Some("1534"));
        assert_eq!(value(all, "bytes", "a b c"), None);
        assert_eq!(
            value("[ip, user, rest]", "rest", APACHE).as_deref(),
            Some(r#"frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#)
        );
        assert_eq!(
            value("[..., size]", "size", APACHE).as_deref(),
            Some("1534")
        );
        assert_eq!(value("[..., size]", "2", APACHE).as_deref(), Some("Prod"));
        assert_eq!(value("[..., size]", "9", APACHE), None);
        assert_eq!(value("[a, ..., z]", "z", "only").as_deref(), None);
        // Positions a pattern cannot have, and names it does not define.
        let p = FilterPattern::parse("[a, b]").unwrap();
        assert!(p.field("3").is_none() && p.field("0").is_none() && p.field("c").is_none());
        assert!(
            FilterPattern::parse("{ $.a = 1 }")
                .unwrap()
                .field("a")
                .is_none()
        );
        assert_eq!(p.field_names().collect::<Vec<_>>(), ["a", "b"]);
        // Equal when they read the same field of the same pattern text.
        let q = FilterPattern::parse("[a, b]").unwrap();
        assert_eq!(p.field("a"), q.field("a"));
        assert_ne!(p.field("a"), q.field("b"));
        assert_ne!(p.field("1"), q.field("a"));
    }

    #[test]
    fn extracted_values_are_testmetricfilter_s() {
        let p = FilterPattern::parse("[..., request=*.html*, status_code=4*,]").unwrap();
        assert!(p.matches(APACHE, None));
        let got = p.extracted_values(APACHE);
        let want = [
            ("$1", "127.0.0.1"),
            ("$2", "Prod"),
            ("$3", "frank"),
            ("$4", "10/Oct/2000:13:25:15 -0700"),
            ("$request", "GET /index.html HTTP/1.0"),
            ("$status_code", "404"),
            ("$7", "1534"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, want);
        assert!(p.extracted_values("a b").is_empty());
        assert!(
            FilterPattern::parse("ERROR")
                .unwrap()
                .extracted_values("ERROR")
                .is_empty()
        );
    }

    #[test]
    fn regexes_mean_what_cloudwatch_says() {
        let table: &[(&str, &str, bool)] = &[
            // ASCII classes, not Unicode ones.
            ("%^\\d+$%", "123", true),
            ("%^\\d+$%", "١٢٣", false),
            ("%^\\w+$%", "abc_XYZ_09", true),
            ("%^\\w+$%", "café", false),
            ("%\\W%", "café", true),
            ("%^\\D+$%", "é", true),
            ("%a\\sb%", "a\tb", true),
            ("%a\\sb%", "a\u{2003}b", false),
            ("%a\\Sb%", "a\u{2003}b", true),
            ("%[\\d]x%", "5x", true),
            ("%[^\\d]x%", "5x", false),
            ("%[^\\d]x%", "yx", true),
            // Repetitions with an omitted bound, and with spaces.
            ("%xa{,2}y%", "xy", true),
            ("%xa{,2}y%", "xaay", true),
            ("%xa{,2}y%", "xaaay", false),
            ("%^a{2,}$%", "aaa", true),
            ("%^a{2, 3}$%", "aaa", true),
            ("%^a{ 2 , 3 }$%", "aaaa", false),
            // \xhh and literal escapes.
            ("%\\x3A%", "key:value", true),
            ("%\\x28%", "f(x)", true),
            ("%\\[.\\]%", "[]]", true),
            ("%a\\<b%", "a<b", true),
            // A `]` first in a class is literal; set operators are not.
            ("%[]a]%", "]", true),
            ("%[a&&b]%", "&", true),
            ("%[a~~b]%", "~", true),
            // Groups stay (an extension).
            ("%Invalid (state|token)%", "Invalid token", true),
        ];
        let failures: Vec<String> = table
            .iter()
            .filter(|(pattern, event, expected)| check(pattern, event) != *expected)
            .map(|(pattern, event, expected)| {
                format!("{pattern:?} on {event:?}: expected {expected}")
            })
            .collect();
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn cloudwatch_compatibility() {
        let reasons = |text: &str| -> Vec<String> {
            FilterPattern::parse(text)
                .unwrap()
                .cloudwatch_compatibility()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        for ok in [
            "",
            "ERROR",
            "?ERROR ?ARGUMENTS REQUEST",
            r#""INTERNAL SERVER ERROR" -"app.db""#,
            "%AUTHORIZED%",
            r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%",
            "%^starting|^initializing|^shutting down%",
            "%xa{,2}y%",
            r"%\x28%",
            r#"{ $.eventType = "UpdateTrail" && $.sourceIPAddress != 123.123.* }"#,
            "{ $.* = %111\\.111% || $.arrayKey[*] = %val.{2}% }",
            "{ $.['cluster.name'] = \"c\" }",
            "{ $.SomeOtherObject NOT EXISTS || $.SomeObject IS NULL }",
            "{ $.a[*] = 1 || $.b[*] = 2 || $.c.* = 3 }",
            "[ip=%127\\.0\\.0\\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
            "[w1!=ERROR && w1!=WARNING, w2]",
        ] {
            assert_eq!(reasons(ok), Vec::<String>::new(), "{ok}");
            assert!(FilterPattern::parse(ok).unwrap().is_cloudwatch_compatible());
        }
        let table: &[(&str, &str)] = &[
            ("app.api.auth ERROR", "column 1: CloudWatch wants terms"),
            ("-app.db", "column 2: CloudWatch wants terms"),
            (
                "%Invalid (state)%",
                "column 10: CloudWatch regexes take no '(' or ')'",
            ),
            (
                "%something!%",
                "column 11: '!' is not in CloudWatch's regex character set",
            ),
            (
                "%café%",
                "column 5: 'é': CloudWatch regexes take no multi-byte",
            ),
            (
                r"%\bword%",
                "column 2: escape '\\b' is not in CloudWatch's regex syntax",
            ),
            (r"%\p{L}%", "escape '\\p'"),
            (
                r"%a\!%",
                "'\\!': '!' is not in CloudWatch's regex character set",
            ),
            ("%a+?%", "column 4: a '?' after a quantifier"),
            ("%[a&&b]%", "'&' is not in CloudWatch's regex character set"),
            (
                "%a% %b% %c%",
                "column 9: 3 regexes; CloudWatch takes at most 2",
            ),
            (
                "{ $.a = %a% || $.b = %b% || $.c = %c% }",
                "column 35: 3 regexes",
            ),
            ("[a=%a%, b=%b%, c=%c%]", "column 18: 3 regexes"),
            (
                "{ $.a EXISTS }",
                "column 7: CloudWatch does not support EXISTS",
            ),
            ("{ $.a@b = 1 }", "column 3: '@' in $.a@b"),
            ("{ $.a = a:b }", "column 9: CloudWatch wants string values"),
            (
                "{ $.a[*] = 1 || $.b[*] = 2 || $.c[*] = 3 || $.d[*] = 4 }",
                "column 45: 4 wildcard selectors",
            ),
        ];
        for (pattern, want) in table {
            let got = reasons(pattern);
            assert!(
                got.iter().any(|r| r.contains(want)),
                "{pattern:?}: {got:?} lacks {want:?}"
            );
        }
        let long = format!("\"{}\"", "x".repeat(1100));
        assert!(reasons(&long)[0].starts_with("column 1025: the pattern has 1102 characters"));
        // Several reasons, in column order, each kind once per regex.
        let got = reasons("%(a)(b)% x.y");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("column 2:") && got[1].starts_with("column 10:"));
        assert!(FilterPattern::parse("%a%").unwrap().has_regex());
        assert!(FilterPattern::parse("?%a% b").unwrap().has_regex());
        assert!(!FilterPattern::parse("\"50%\"").unwrap().has_regex());
    }

    /// The patterns of the default rules (`match`, and `when` of metrics
    /// and signals; `regex` is this project's own extension, not a filter
    /// pattern) are ones CloudWatch itself accepts, so each could be a
    /// metric or subscription filter as it is.
    #[test]
    fn default_rule_patterns_are_cloudwatch_compatible() {
        let file: crate::domain::rules::config::RuleFile =
            toml::from_str(crate::domain::rules::engine::DEFAULT_RULES_TOML).unwrap();
        let mut patterns = Vec::new();
        for rule in &file.rules {
            let rule = rule.get_ref();
            let whens = rule
                .metrics
                .iter()
                .filter_map(|m| m.when.as_deref())
                .chain(rule.signals.iter().filter_map(|s| s.when.as_deref()));
            for text in rule.match_pattern.as_deref().into_iter().chain(whens) {
                patterns.push((rule.name.clone(), text.to_owned()));
            }
        }
        assert!(patterns.len() >= 6, "{patterns:?}");
        let mut with_regex = 0;
        for (rule, text) in &patterns {
            let pattern = FilterPattern::parse(text).unwrap();
            let reasons = pattern.cloudwatch_compatibility();
            assert!(
                reasons.is_empty(),
                "rule {rule:?}, pattern {text:?}: {}",
                reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            with_regex += usize::from(pattern.has_regex());
        }
        // CloudWatch: at most 5 filter patterns holding a regex per log group.
        assert!(with_regex <= 5, "{with_regex} patterns hold a regex");
    }

    /// Patterns used to check that matching never panics, whatever the event.
    const FIXED_PATTERNS: &[&str] = &[
        "[ip, user=x*, ..., code >= 400 || code = %5%, size]",
        "[a, b]",
        "[..., z]",
        "[a, ...]",
        "",
        "ERROR",
        r#"?ERROR ?"Invalid state" -DEBUG"#,
        "%Invalid (state|token)%",
        r#"{ $.logger = "security" && $.success IS FALSE }"#,
        "{ $.status_code >= 500 || $.a[2].b < -1e3 }",
        r#"{ $.* = %x% || $.a[*] = "7c*" || $.b.c = "*a*b*" }"#,
        r#"{ $.['k.k'] NOT EXISTS && $.z IS NULL || $.y EXISTS }"#,
    ];

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z*.]{0,3}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = FilterPattern::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_pattern_like_text(
            text in r#"[{}()\[\]$.'"%?*=!<>&| a-zA-Z0-9_\\-]{0,40}"#
        ) {
            if let Err(err) = FilterPattern::parse(&text) {
                prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 1);
            }
        }

        #[test]
        fn matching_never_panics(message in any::<String>(), json in json_value()) {
            for text in FIXED_PATTERNS {
                let pattern = FilterPattern::parse(text).unwrap();
                let _ = pattern.matches(&message, None);
                let _ = pattern.matches(&message, Some(&Json::from(&json)));
            }
        }
    }
}
