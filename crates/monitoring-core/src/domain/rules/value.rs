//! Value specs compiled for evaluation: where a label, key or number comes
//! from (`$.path`, `${capture}`, `$field` of a space-delimited pattern,
//! literal), and the map/default/transform applied to it.

use std::borrow::Cow;

use crate::domain::logs::filter_pattern::{DelimitedField, FilterPattern};
use crate::domain::logs::json::Json;
use regex::Captures;

use super::config::{Transform, ValueSpecConfig};
use crate::domain::logs::record::LogRecord;
use crate::domain::metrics::series::FastMap;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Literal(String),
    /// `$.logger`: the record's normalized logger (JSON or text).
    Logger,
    /// `$.level`: the record's normalized level.
    Level,
    /// `$.message`: the record's normalized message.
    Message,
    /// Any other `$.a.b[0]` path into a JSON record.
    Path(Vec<Segment>),
    /// `${name}`: a named capture of the rule's regex.
    Capture(String),
    /// `$name` or `$7`: a field of the rule's space-delimited filter
    /// pattern, as CloudWatch metric filters write it (`metricValue =
    /// $size`).
    Field(FieldSource),
}

/// A `$name` / `$N` source and, once the rule is compiled, the pattern
/// field it reads ([`ValueSpec::bind_field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSource {
    /// Without the `$`: `size`, or `7` for the 7th field of the message.
    pub name: String,
    bound: Option<DelimitedField>,
}

/// A compiled value spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    pub source: Source,
    map: FastMap<String, String>,
    default: Option<String>,
    transform: Option<Transform>,
}

/// A source string that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

impl ValueSpec {
    pub fn compile(config: &ValueSpecConfig) -> Result<Self, PathError> {
        Ok(match config {
            ValueSpecConfig::Simple(s) => ValueSpec {
                source: parse_source(s)?,
                map: FastMap::default(),
                default: None,
                transform: None,
            },
            ValueSpecConfig::Table(t) => ValueSpec {
                source: parse_source(&t.from)?,
                map: t.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                default: t.default.clone(),
                transform: t.transform,
            },
        })
    }

    /// The capture this spec reads, if any.
    pub fn capture(&self) -> Option<&str> {
        match &self.source {
            Source::Capture(name) => Some(name),
            _ => None,
        }
    }

    /// The space-delimited field (`size` for `$size`) this spec reads, if
    /// any.
    pub fn field(&self) -> Option<&str> {
        match &self.source {
            Source::Field(f) => Some(&f.name),
            _ => None,
        }
    }

    /// Makes a `$field` spec read its field from the messages `pattern`
    /// matched; false when `pattern` is not space-delimited or lacks the
    /// field (the spec is then left as it was). Until bound, a `$field`
    /// is missing. The rule compiler binds every `$field` (or refuses the
    /// rule), so the reading costs only the rules that use fields: the
    /// message is split again up to the field when the value is read.
    pub fn bind_field(&mut self, pattern: &FilterPattern) -> bool {
        let Source::Field(f) = &mut self.source else {
            return false;
        };
        match pattern.field(&f.name) {
            Some(field) => {
                f.bound = Some(field);
                true
            }
            None => false,
        }
    }

    /// The value as text, after map, transform or default; `None` when the
    /// source is missing and there is no default.
    pub fn text<'r>(
        &'r self,
        record: &'r LogRecord<'_>,
        caps: Option<&Captures<'r>>,
    ) -> Option<Cow<'r, str>> {
        let Some(raw) = lookup(&self.source, record, caps) else {
            return self.default.as_deref().map(Cow::Borrowed);
        };
        let text = raw.into_text()?;
        if let Some(mapped) = self.map.get(text.as_ref()) {
            return Some(Cow::Borrowed(mapped.as_str()));
        }
        Some(match self.transform {
            None => text,
            Some(Transform::Lower) => lower(text),
            Some(Transform::SnakeCase) => Cow::Owned(snake_case(&text)),
            Some(Transform::Route) => route(text),
        })
    }

    /// Appends what [`Self::text`] returns to `out`, and says whether there
    /// was a value. The same text, without the allocations `text` makes for
    /// numbers and transforms: every metric update builds its series-cache
    /// key this way.
    pub fn append_text(
        &self,
        record: &LogRecord<'_>,
        caps: Option<&Captures<'_>>,
        out: &mut String,
    ) -> bool {
        let Some(raw) = lookup(&self.source, record, caps) else {
            return match &self.default {
                Some(default) => {
                    out.push_str(default);
                    true
                }
                None => false,
            };
        };
        with_raw_text(raw, |text| {
            if let Some(mapped) = self.map.get(text) {
                out.push_str(mapped);
                return;
            }
            match self.transform {
                None => out.push_str(text),
                Some(Transform::Lower) => out.push_str(&lower(Cow::Borrowed(text))),
                Some(Transform::SnakeCase) => snake_case_into(text, out),
                Some(Transform::Route) => route_into(text, out),
            }
        })
        .is_some()
    }

    /// Appends what identifies the value's [`Self::text`] in a cache, and
    /// says what was found: the source's text as it is, before map,
    /// transform or default, except for routed paths, which give their
    /// route (many paths, one route: keyed by the path, the series cache
    /// missed on every new id). Records whose appended text and answer are
    /// the same get the same `text`; a cache keyed by them skips the map
    /// lookup and the other transforms on every hit.
    pub fn append_key(
        &self,
        record: &LogRecord<'_>,
        caps: Option<&Captures<'_>>,
        out: &mut String,
    ) -> RawText {
        let Some(raw) = lookup(&self.source, record, caps) else {
            return RawText::Missing;
        };
        with_raw_text(raw, |text| {
            if self.transform != Some(Transform::Route) {
                out.push_str(text);
            } else if let Some(mapped) = self.map.get(text) {
                out.push_str(mapped);
            } else {
                route_into(text, out);
            }
        })
        .map_or(RawText::Unusable, |()| RawText::Present)
    }

    /// The value as a number: a JSON number directly, else the text parsed.
    pub fn number(&self, record: &LogRecord<'_>, caps: Option<&Captures<'_>>) -> Option<f64> {
        if self.map.is_empty()
            && self.transform.is_none()
            && let Source::Path(path) = &self.source
            && let Some(Json::Number(n)) = record.json.as_ref().and_then(|j| walk(j, path))
        {
            return n.as_f64();
        }
        self.text(record, caps)?.trim().parse::<f64>().ok()
    }
}

fn parse_source(s: &str) -> Result<Source, PathError> {
    let err = |reason| PathError {
        path: s.to_owned(),
        reason,
    };
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(err("a capture name is letters, digits and _"));
        }
        return Ok(Source::Capture(name.to_owned()));
    }
    let Some(rest) = s.strip_prefix('$') else {
        return Ok(Source::Literal(s.to_owned()));
    };
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return field_source(rest).ok_or_else(|| {
            err("a field is $ followed by a field name ([a-zA-Z_][a-zA-Z0-9_]*) or a position (1, 2, ...)")
        });
    }
    match rest {
        ".logger" => return Ok(Source::Logger),
        ".level" => return Ok(Source::Level),
        ".message" => return Ok(Source::Message),
        _ => {}
    }
    let mut segments = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while let Some((j, c)) = chars.peek().copied() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    end = j + c.len_utf8();
                    chars.next();
                }
                if end == start {
                    return Err(err("empty field name"));
                }
                segments.push(Segment::Key(rest[start..end].to_owned()));
            }
            '[' => {
                let start = i + 1;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    if c == ']' {
                        end = Some(j);
                        break;
                    }
                }
                let end = end.ok_or_else(|| err("unclosed ["))?;
                let index = rest[start..end]
                    .parse::<usize>()
                    .map_err(|_| err("an index is a non-negative integer"))?;
                segments.push(Segment::Index(index));
            }
            _ => {
                return Err(err(
                    "a path is $ followed by .name or [n] segments, a field $name or $N",
                ));
            }
        }
    }
    if segments.is_empty() {
        return Err(err("empty path"));
    }
    Ok(Source::Path(segments))
}

/// `size` or `7` (after the `$`) as a field source.
fn field_source(rest: &str) -> Option<Source> {
    let name_ok = if rest.starts_with(|c: char| c.is_ascii_digit()) {
        rest.bytes().all(|b| b.is_ascii_digit()) && rest.parse::<usize>().is_ok_and(|n| n >= 1)
    } else {
        rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    name_ok.then(|| {
        Source::Field(FieldSource {
            name: rest.to_owned(),
            bound: None,
        })
    })
}

/// What [`ValueSpec::append_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawText {
    /// A text, appended.
    Present,
    /// No value: the default, if any, applies.
    Missing,
    /// A value with no text: an array or an object (a null is missing).
    Unusable,
}

/// `f` of the text [`Raw::into_text`] gives, without its allocation for
/// numbers; `None` when there is no text.
fn with_raw_text<T>(raw: Raw<'_>, f: impl FnOnce(&str) -> T) -> Option<T> {
    let mut digits = itoa::Buffer::new();
    let owned: String;
    let text: &str = match raw {
        Raw::Text(s) => s,
        Raw::Json(Json::String(s)) => s,
        Raw::Json(Json::Bool(b)) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        Raw::Json(Json::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => digits.format(u),
            (None, Some(i)) => digits.format(i),
            _ => {
                owned = number_text(n);
                &owned
            }
        },
        Raw::Json(_) => return None,
    };
    Some(f(text))
}

/// What a source found, before conversion to text.
enum Raw<'r> {
    Text(&'r str),
    Json(&'r Json<'r>),
}

impl<'r> Raw<'r> {
    /// Strings as they are; booleans `true`/`false`; numbers as their
    /// decimal text (integral floats without `.0`); null, arrays and objects
    /// are missing.
    fn into_text(self) -> Option<Cow<'r, str>> {
        match self {
            Raw::Text(s) => Some(Cow::Borrowed(s)),
            Raw::Json(Json::String(s)) => Some(Cow::Borrowed(s)),
            Raw::Json(Json::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Raw::Json(Json::Number(n)) => Some(Cow::Owned(number_text(n))),
            Raw::Json(_) => None,
        }
    }
}

fn number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

fn lookup<'r>(
    source: &'r Source,
    record: &'r LogRecord<'_>,
    caps: Option<&Captures<'r>>,
) -> Option<Raw<'r>> {
    match source {
        Source::Literal(s) => Some(Raw::Text(s)),
        Source::Logger => Some(Raw::Text(&record.logger)),
        Source::Level => Some(Raw::Text(&record.level)),
        Source::Message => Some(Raw::Text(&record.message)),
        Source::Path(path) => walk(record.json.as_ref()?, path)
            .filter(|v| !v.is_null())
            .map(Raw::Json),
        Source::Capture(name) => caps?.name(name).map(|m| Raw::Text(m.as_str())),
        Source::Field(f) => f.bound.as_ref()?.value(record.raw).map(Raw::Text),
    }
}

fn walk<'v, 'a>(root: &'v Json<'a>, path: &[Segment]) -> Option<&'v Json<'a>> {
    path.iter().try_fold(root, |v, seg| match seg {
        Segment::Key(k) => v.get(k.as_str()),
        Segment::Index(i) => v.index(*i),
    })
}

fn lower(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        Cow::Owned(text.to_lowercase())
    } else {
        text
    }
}

/// `Role modified` → `role_modified`: lower case, every run of other
/// characters than letters and digits becomes one `_`, none at the ends.
pub fn snake_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    snake_case_into(text, &mut out);
    out
}

/// [`snake_case`], appended to `out`.
fn snake_case_into(text: &str, out: &mut String) {
    let start = out.len();
    let mut gap = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if gap && out.len() > start {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
}

/// A path segment that identifies one object rather than a route.
fn is_id_segment(seg: &str) -> bool {
    if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let b = seg.as_bytes();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    let long_hex =
        b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit);
    uuid || long_hex
}

/// `/api/users/1234?x=1` → `/api/users/:id`: numeric, UUID and long hex
/// (16+ characters) segments become `:id`, the query string and fragment
/// are dropped, so endpoint labels stay bounded.
pub fn route(text: Cow<'_, str>) -> Cow<'_, str> {
    let path = route_path(&text);
    if path.len() == text.len() && !path.split('/').any(is_id_segment) {
        return text;
    }
    let mut out = String::with_capacity(path.len());
    route_into(path, &mut out);
    Cow::Owned(out)
}

/// The path of a route: up to a `?` or `#`.
fn route_path(text: &str) -> &str {
    let end = text
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(text.len());
    &text[..end]
}

/// [`route`], appended to `out`. A byte scan: this runs for every request
/// record, and `str::split` costs more to set up than these paths take.
/// The text between id segments is appended in one piece, most paths
/// (`/api/auth/callback`) whole.
fn route_into(text: &str, out: &mut String) {
    // Most paths hold no digit, '-', '?' or '#', so no id segment (a UUID
    // has dashes) and nothing to cut: checked in one branch-free pass,
    // they are appended whole.
    let special = text.bytes().fold(false, |any, b| {
        any | b.is_ascii_digit() | (b == b'-') | (b == b'?') | (b == b'#')
    });
    if !special {
        out.push_str(text);
        return;
    }
    let path = route_path(text);
    let mut copied = 0;
    let mut start = 0;
    loop {
        let end = path.as_bytes()[start..]
            .iter()
            .position(|b| *b == b'/')
            .map_or(path.len(), |i| start + i);
        if is_id_segment(&path[start..end]) {
            out.push_str(&path[copied..start]);
            out.push_str(":id");
            copied = end;
        }
        if end == path.len() {
            break;
        }
        start = end + 1;
    }
    out.push_str(&path[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::logs::parse::RecordParser;
    use crate::domain::logs::record::LogEvent;
    use crate::domain::rules::config::ValueTable;
    use proptest::prelude::{Just, Strategy};

    fn with_record<T>(message: &str, f: impl FnOnce(&LogRecord<'_>) -> T) -> T {
        let event = LogEvent {
            id: "e".into(),
            timestamp_ms: 0,
            message: message.into(),
        };
        match RecordParser::default().parse(&event) {
            Ok(r) => f(&r),
            other => panic!("not a record: {other:?}"),
        }
    }

    fn simple(s: &str) -> ValueSpec {
        ValueSpec::compile(&ValueSpecConfig::Simple(s.into())).unwrap()
    }

    fn table(
        from: &str,
        map: &[(&str, &str)],
        default: Option<&str>,
        t: Option<Transform>,
    ) -> ValueSpec {
        ValueSpec::compile(&ValueSpecConfig::Table(ValueTable {
            from: from.into(),
            map: map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            default: default.map(str::to_owned),
            transform: t,
        }))
        .unwrap()
    }

    const JSON: &str = r#"{"levelname":"WARNING","name":"security","msg":"Role modified","success":false,"code":500,"d":41.0,"f":1.5,"a":{"b":[{"c":"deep"}]},"n":null}"#;

    #[test]
    fn sources_resolve_for_json_records() {
        with_record(JSON, |r| {
            let text = |s: &str| simple(s).text(r, None).map(Cow::into_owned);
            assert_eq!(text("$.logger").as_deref(), Some("security"));
            assert_eq!(text("$.level").as_deref(), Some("WARNING"));
            assert_eq!(text("$.message").as_deref(), Some("Role modified"));
            assert_eq!(text("$.success").as_deref(), Some("false"));
            assert_eq!(text("$.code").as_deref(), Some("500"));
            assert_eq!(text("$.d").as_deref(), Some("41"));
            assert_eq!(text("$.f").as_deref(), Some("1.5"));
            assert_eq!(text("$.a.b[0].c").as_deref(), Some("deep"));
            assert_eq!(text("$.a"), None, "objects are not label values");
            assert_eq!(text("$.n"), None, "null is missing");
            assert_eq!(text("$.absent"), None);
            assert_eq!(text("plain").as_deref(), Some("plain"));
            assert_eq!(simple("$.f").number(r, None), Some(1.5));
        });
    }

    #[test]
    fn sources_resolve_for_text_records() {
        with_record(
            "2025-05-18 07:42:54,855 - app.core.security - INFO - Access token created",
            |r| {
                assert_eq!(
                    simple("$.logger").text(r, None).unwrap(),
                    "app.core.security"
                );
                assert_eq!(simple("$.level").text(r, None).unwrap(), "INFO");
                assert_eq!(
                    simple("$.message").text(r, None).unwrap(),
                    "Access token created"
                );
                assert_eq!(simple("$.user_id").text(r, None), None);
            },
        );
    }

    #[test]
    fn map_wins_over_transform_and_default_fills_missing() {
        with_record(JSON, |r| {
            let m = table(
                "$.success",
                &[("false", "failure")],
                Some("success"),
                Some(Transform::SnakeCase),
            );
            assert_eq!(m.text(r, None).unwrap(), "failure");
            let m = table(
                "$.message",
                &[("User created", "create")],
                None,
                Some(Transform::SnakeCase),
            );
            assert_eq!(m.text(r, None).unwrap(), "role_modified");
            let m = table("$.status", &[], Some("success"), None);
            assert_eq!(m.text(r, None).unwrap(), "success");
            let m = table("$.status", &[], None, None);
            assert_eq!(m.text(r, None), None);
        });
    }

    #[test]
    fn transforms() {
        assert_eq!(snake_case("Role modified"), "role_modified");
        assert_eq!(snake_case("  Permission  granted! "), "permission_granted");
        assert_eq!(route("/api/users/1234".into()), "/api/users/:id");
        assert_eq!(
            route("/api/users/1234/roles/7".into()),
            "/api/users/:id/roles/:id"
        );
        assert_eq!(
            route("/api/x/7c0e0d7a-1b2c-4d5e-8f90-a1b2c3d4e5f6?q=1".into()),
            "/api/x/:id"
        );
        assert_eq!(route("/api/t/0123456789abcdef0123".into()), "/api/t/:id");
        assert_eq!(route("/api/users/me".into()), "/api/users/me");
        assert_eq!(route("/api/deadbeef".into()), "/api/deadbeef");
        assert!(matches!(route("/api/users/me".into()), Cow::Borrowed(_)));
        // route_into's whole-path shortcut: a UUID of letters alone has
        // dashes, a long hex id has a digit.
        for (path, want) in [
            ("/api/auth/login", "/api/auth/login"),
            ("/api/x/abcdefab-abcd-abcd-abcd-abcdefabcdef", "/api/x/:id"),
            ("/api/x/abcdefabcdefabcdef", "/api/x/abcdefabcdefabcdef"),
            ("/api/x/abcdefabcdefabcde1", "/api/x/:id"),
            ("/api/x?y", "/api/x"),
            ("/api/x#y", "/api/x"),
            ("/api/self-service", "/api/self-service"),
            ("", ""),
        ] {
            let mut out = String::new();
            route_into(path, &mut out);
            assert_eq!(out, want, "{path}");
        }
    }

    proptest::proptest! {
        /// The series-cache key is built with `append_text`, the series
        /// from `text`: they must never differ.
        #[test]
        fn append_text_writes_what_text_returns(
            value in proptest::prop_oneof![
                "[ -~]{0,24}".prop_map(serde_json::Value::from),
                "(/(api|users|[0-9]{1,5}|[0-9a-f]{16,20}|7c0e0d7a-1b2c-4d5e-8f90-a1b2c3d4e5f6|)){0,4}([?#][a-z=&]{0,6})?"
                    .prop_map(serde_json::Value::from),
                "(Role|USER|é|Ünïcode|[-_ !]){0,5}".prop_map(serde_json::Value::from),
                proptest::num::i64::ANY.prop_map(serde_json::Value::from),
                proptest::num::u64::ANY.prop_map(serde_json::Value::from),
                proptest::num::f64::NORMAL.prop_map(serde_json::Value::from),
                proptest::prop_oneof![Just(1.0), Just(-0.0), Just(2e20), Just(0.5)]
                    .prop_map(serde_json::Value::from),
                proptest::bool::ANY.prop_map(serde_json::Value::from),
                Just(serde_json::Value::Null),
                Just(serde_json::json!([1, "a"])),
                Just(serde_json::json!({"a": 1})),
            ],
            from in proptest::prop_oneof![Just("$.v"), Just("$.message"), Just("$.missing")],
            transform in proptest::prop_oneof![
                Just(None),
                Just(Some(Transform::Lower)),
                Just(Some(Transform::SnakeCase)),
                Just(Some(Transform::Route)),
            ],
            mapped in proptest::bool::ANY,
            default in proptest::option::of("[a-z]{0,4}"),
        ) {
            let message = value.as_str().unwrap_or("Some message").to_owned();
            let record = serde_json::json!({"logger": "x", "message": message, "v": value});
            let map: &[(&str, &str)] = if mapped {
                &[("true", "yes"), ("1", "one"), ("/api/users", "users"), ("", "empty")]
            } else {
                &[]
            };
            let spec = table(from, map, default.as_deref(), transform);
            with_record(&record.to_string(), |r| {
                let want = spec.text(r, None).map(Cow::into_owned);
                let mut out = String::from("key\0");
                let found = spec.append_text(r, None, &mut out);
                proptest::prop_assert_eq!(found, want.is_some());
                let want = want.map_or_else(|| "key\0".to_owned(), |w| format!("key\0{w}"));
                proptest::prop_assert_eq!(out, want);
                Ok(())
            })?;
        }
    }

    #[test]
    fn fields_of_space_delimited_patterns() {
        let line =
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        let pattern =
            FilterPattern::parse("[ip, id, user, timestamp, request, status_code=4*, size]")
                .unwrap();
        let bound = |s: &str| {
            let mut spec = simple(s);
            assert!(spec.bind_field(&pattern), "{s}");
            spec
        };
        with_record(line, |r| {
            assert_eq!(bound("$size").number(r, None), Some(1534.0));
            assert_eq!(
                bound("$request").text(r, None).unwrap(),
                "GET /index.html HTTP/1.0"
            );
            assert_eq!(bound("$7").text(r, None).unwrap(), "1534");
            let mut out = String::new();
            assert!(bound("$ip").append_text(r, None, &mut out));
            assert_eq!(out, "127.0.0.1");
            // A table: map, default and transform apply as for any source.
            let mut t = table("$status_code", &[("404", "not_found")], None, None);
            assert!(t.bind_field(&pattern));
            assert_eq!(t.text(r, None).unwrap(), "not_found");
            // Unbound (no rule compiled it): missing.
            assert_eq!(simple("$size").text(r, None), None);
            assert_eq!(simple("$size").field(), Some("size"));
        });
        // A message with too few fields: missing, or the default.
        with_record("just two", |r| {
            assert_eq!(bound("$size").text(r, None), None);
            let mut t = table("$size", &[], Some("0"), None);
            assert!(t.bind_field(&pattern));
            assert_eq!(t.text(r, None).unwrap(), "0");
        });
        // Only fields the pattern has bind.
        for (s, pattern) in [
            ("$bytes", "[ip, size]"),
            ("$3", "[ip, size]"),
            ("$size", "{ $.size = 1 }"),
            ("$size", "size"),
            ("$.size", "[size]"),
        ] {
            let mut spec = simple(s);
            assert!(
                !spec.bind_field(&FilterPattern::parse(pattern).unwrap()),
                "{s} {pattern}"
            );
        }
        assert!(simple("$9").bind_field(&FilterPattern::parse("[a, ..., b]").unwrap()));
        assert_eq!(simple("$_x").field(), Some("_x"));
        assert_eq!(simple("$.a").field(), None);
    }

    #[test]
    fn bad_sources_are_refused() {
        for bad in [
            "$", "$.", "$.a..b", "$.a[x]", "$.a[1", "$a-b", "$0", "$1x", "$5.00", "${}", "${a-b}",
        ] {
            assert!(
                ValueSpec::compile(&ValueSpecConfig::Simple(bad.into())).is_err(),
                "{bad}"
            );
        }
    }
}
