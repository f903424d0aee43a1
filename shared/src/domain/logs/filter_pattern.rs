//! CloudWatch Logs filter patterns, parsed once and matched per event, so a
//! team can port the metric and subscription filters it already has.
//!
//! The syntax follows AWS's "Filter pattern syntax for metric filters,
//! subscription filters, filter log events, and Live Tail":
//!
//! ```text
//! pattern    = ws* ( ""                      (empty: every event)
//!                  | json ws*                (JSON pattern)
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
//! ```
//!
//! Keywords (`IS`, `TRUE`, `NOT`, ...) are case-insensitive. Space-delimited
//! patterns (`[ip, user, ...]`) are not supported and fail to parse.
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
//! - `%regex%` uses the `regex` crate's RE2-like syntax, a superset of what
//!   AWS accepts: groups `( )` are allowed, and `\d`, `\w`, `\s` also match
//!   non-ASCII digits, letters and spaces (AWS's are ASCII). AWS's quota of
//!   two regexes per JSON pattern is not enforced. A regex searches anywhere
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
//!
//! Everything is compiled at parse time (regexes, wildcard strings into
//! prefix/suffix/contains checks or an anchored regex), and matching an event
//! allocates nothing.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde_json::Number;

use super::json::Json;

/// Parentheses deeper than this are refused, so a hostile pattern cannot
/// exhaust the stack of the recursive-descent parser.
const MAX_NESTING: usize = 64;

/// A parsed filter pattern; immutable and cheap to share between threads.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    source: Box<str>,
    kind: Kind,
}

/// Why a pattern was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter pattern, column {column}: {message}")]
pub struct FilterPatternError {
    /// 1-based column, in characters, of the offending text.
    pub column: usize,
    pub message: String,
}

impl FilterPattern {
    /// Parses `text`; see the module documentation for the grammar.
    pub fn parse(text: &str) -> Result<Self, FilterPatternError> {
        let mut cur = Cursor::new(text);
        cur.skip_ws();
        let kind = match cur.peek() {
            None => Kind::All,
            Some('{') => Kind::Json(JsonParser::new(cur).parse()?),
            Some('[') => {
                return Err(cur.error(
                    cur.pos,
                    "space-delimited patterns ('[field, ...]') are not supported; \
                     use terms, a %regex% or a JSON pattern",
                ));
            }
            Some(_) => parse_terms(&mut cur)?,
        };
        Ok(FilterPattern {
            source: text.into(),
            kind,
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
        }
    }

    /// Whether this is a JSON (`{ ... }`) pattern, which only JSON events
    /// can match.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// The pattern text as written.
    pub fn as_str(&self) -> &str {
        &self.source
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
}

/// Character-level scanner shared by both pattern kinds. Positions are byte
/// offsets; they become character columns only when an error is reported,
/// which keeps the happy path free of counting.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
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

    /// A `%regex%` at the cursor, compiled. `\%` does not end the regex (the
    /// regex crate reads it as a literal `%`), and any other escape is
    /// skipped over whole so `\\%` still ends it.
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
        Regex::new(body)
            .map_err(|e| self.error(start, format!("invalid regex: {}", regex_reason(&e))))
    }
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
                (Term::Literal(cur.take_while(is_word_char).into()), true)
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
}

impl<'a> JsonParser<'a> {
    fn new(cur: Cursor<'a>) -> Self {
        let brace = cur.pos;
        JsonParser {
            cur,
            peeked: None,
            brace,
        }
    }

    fn parse(mut self) -> Result<Expr, FilterPatternError> {
        self.cur.bump();
        let expr = self.or(0)?;
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
            Tok::Word(w) if w.eq_ignore_ascii_case("EXISTS") => Test::Exists,
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
    fn flatten(mut items: Vec<Expr>, wrap: fn(Box<[Expr]>) -> Expr) -> Expr {
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
            // Space-delimited patterns are not supported.
            ("[a, b]", 1, "space-delimited patterns"),
            ("  [ip, user=x]", 3, "space-delimited patterns"),
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

    /// Patterns used to check that matching never panics, whatever the event.
    const FIXED_PATTERNS: &[&str] = &[
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
