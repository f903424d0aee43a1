//! Parses log events into records: JSON objects with the field aliases of
//! LOG-CONTRACT.md, Python text records
//! (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`), and every other
//! line as a plain record (the whole line is its message), so no line is
//! left unread. Lines that continue a record (tracebacks, SQL echoes) are
//! joined to it before parsing: see [`continues_record`].

use std::borrow::Cow;

use super::access;
use super::json::{Fields, Json};
use super::record::{EventRef, LogEvent, LogRecord, RecordFormat, is_exception_line};
use super::timestamp::parse_python_time;
pub use super::timestamp::{parse_timestamp, parse_utc_offset};

/// CloudWatch Logs' own limit on one event until 2025: events past it are
/// cut to it (and counted) before parsing.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// A JSON event up to this size is parsed whole even past the event limit
/// (its text is still cut for term patterns and samples): CloudWatch Logs
/// accepts events up to 1 MiB, and cutting a JSON object would lose every
/// field after the cut. Larger ones are cut and read as plain text.
pub const JSON_PARSE_MAX_BYTES: usize = 1024 * 1024;

/// Why an event produced no record: only what holds no text to read. Each
/// is counted under its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Empty or only white space.
    Empty,
    /// Control characters: binary data, not a log line.
    Binary,
}

impl RejectReason {
    /// The `reason` label of `log_events_rejected_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::Binary => "binary",
        }
    }
}

/// How far a record's own timestamp may stray from its event's CloudWatch
/// time before the event time is used instead: the record's timestamp is
/// written by whoever sends the request, an event's by CloudWatch's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub behind_ms: i64,
    pub ahead_ms: i64,
}

impl Default for TimeBounds {
    /// 24 hours behind (late delivery, a replayed backlog), 5 minutes ahead
    /// (clock skew).
    fn default() -> Self {
        TimeBounds {
            behind_ms: 24 * 3_600_000,
            ahead_ms: 5 * 60_000,
        }
    }
}

/// How events are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseSettings {
    /// Events past this are cut to it (see [`JSON_PARSE_MAX_BYTES`]).
    pub max_event_bytes: usize,
    /// `None` when events carry no delivery time (replay of plain files):
    /// record times are then taken as written.
    pub time_bounds: Option<TimeBounds>,
    /// The zone of text records' timestamps, as an offset east of UTC in
    /// milliseconds (Python's asctime has no zone).
    pub text_utc_offset_ms: i64,
}

impl Default for ParseSettings {
    fn default() -> Self {
        ParseSettings {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            time_bounds: Some(TimeBounds::default()),
            text_utc_offset_ms: 0,
        }
    }
}

/// What the parser noticed beside the records, counted by the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Events cut to the event limit.
    pub truncated: u64,
    /// Records whose own time lay outside the [`TimeBounds`] of their event.
    pub clamped: u64,
    /// Events that started like a JSON object but were not one (read as
    /// plain records).
    pub invalid_json: u64,
}

/// Parses events of one stream in order.
#[derive(Debug, Clone)]
pub struct RecordParser {
    settings: ParseSettings,
    /// The field vector of a record already evaluated (see [`Self::recycle`]).
    spare: Fields<'static>,
    /// Whether a JSON record's own timestamp is read (see
    /// [`Self::without_record_times`]).
    record_times: bool,
    /// The last record time of the stream: the time of a record that has
    /// none of its own when its event has none either (plain files).
    last_time_ms: Option<i64>,
    stats: ParseStats,
}

impl Default for RecordParser {
    fn default() -> Self {
        RecordParser::new(ParseSettings::default())
    }
}

impl RecordParser {
    pub fn new(settings: ParseSettings) -> Self {
        RecordParser {
            settings,
            spare: Vec::new(),
            record_times: true,
            last_time_ms: None,
            stats: ParseStats::default(),
        }
    }

    /// JSON records keep their event's time rather than their own
    /// `timestamp`: for callers that never read a record's time (replay
    /// counting signals without building them), as parsing it is a
    /// twentieth of a JSON record's cost.
    pub fn without_record_times(mut self) -> Self {
        self.record_times = false;
        self
    }

    /// Takes back a record done with, so the next JSON record is parsed
    /// into its field vector rather than a new allocation.
    pub fn recycle(&mut self, record: LogRecord<'_>) {
        if let Some(json) = record.json {
            self.spare = json.into_spare();
        }
    }

    /// The next event starts a new stream.
    pub fn reset_stream(&mut self) {
        self.last_time_ms = None;
    }

    /// What was noticed since the last call.
    pub fn take_stats(&mut self) -> ParseStats {
        std::mem::take(&mut self.stats)
    }

    pub fn parse<'a>(&mut self, event: &'a LogEvent) -> Result<LogRecord<'a>, RejectReason> {
        self.parse_ref(event.borrowed())
    }

    /// [`Self::parse`] for an event borrowed from elsewhere.
    pub fn parse_ref<'a>(&mut self, event: EventRef<'a>) -> Result<LogRecord<'a>, RejectReason> {
        let mut record = parse_event(event, self)?;
        self.bound_time(&mut record, event.timestamp_ms);
        Ok(record)
    }

    /// Clamps a record's time to its event's bounds, or gives a record
    /// without a time of its own the stream's last one.
    fn bound_time(&mut self, record: &mut LogRecord<'_>, event_ms: i64) {
        match (self.settings.time_bounds, record.own_time) {
            (Some(b), true) => {
                let lo = event_ms.saturating_sub(b.behind_ms);
                let hi = event_ms.saturating_add(b.ahead_ms);
                if record.timestamp_ms < lo || record.timestamp_ms > hi {
                    record.timestamp_ms = event_ms;
                    record.own_time = false;
                    self.stats.clamped += 1;
                }
            }
            (None, false) => {
                if let Some(last) = self.last_time_ms {
                    record.timestamp_ms = last;
                }
            }
            _ => {}
        }
        if record.own_time {
            self.last_time_ms = Some(record.timestamp_ms);
        }
    }
}

fn parse_event<'a>(
    event: EventRef<'a>,
    parser: &mut RecordParser,
) -> Result<LogRecord<'a>, RejectReason> {
    let full = event.message;
    let max = parser.settings.max_event_bytes;
    let text = if full.len() > max {
        parser.stats.truncated += 1;
        cut(full, max)
    } else {
        full
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(RejectReason::Empty);
    }
    if trimmed.starts_with('{') {
        let spare = std::mem::take(&mut parser.spare);
        // Parsed whole up to CloudWatch's own limit (see JSON_PARSE_MAX_BYTES).
        let json_text = if text.len() < full.len() && full.len() <= JSON_PARSE_MAX_BYTES {
            full.trim()
        } else {
            trimmed
        };
        match parse_json(event, json_text, text, spare, parser) {
            Ok(record) => return Ok(record),
            // Read as text: its fields are lost, its words are not (a cut
            // object, a Python dict printed after a message, a broken
            // formatter).
            Err(_) => parser.stats.invalid_json += 1,
        }
    }
    if let Some(mut record) = parse_text(event, text, parser.settings.text_utc_offset_ms) {
        // uvicorn's access logger formatted as Python logging: the message
        // is an access line.
        if let (true, Cow::Borrowed(message)) =
            (record.logger.ends_with(".access"), &record.message)
            && let Some(a) = access::uvicorn_message(message)
        {
            record.json = Some(Json::Object(a.fields));
        }
        return Ok(record);
    }
    if let Some(record) = parse_access(event, text) {
        return Ok(record);
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(RejectReason::Binary);
    }
    Ok(parse_plain(event, text))
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Not a JSON object after all.
struct NotJson;

/// The fields a JSON record's logger, level, message and time come from,
/// each the last field of its name (as `Json::get` gives), found in one
/// pass over the object: a lookup per name was a scan of the fields each.
#[derive(Default)]
struct RecordFields<'v, 'a> {
    logger: Option<&'v Json<'a>>,
    name: Option<&'v Json<'a>>,
    level: Option<&'v Json<'a>>,
    levelname: Option<&'v Json<'a>>,
    message: Option<&'v Json<'a>>,
    msg: Option<&'v Json<'a>>,
    timestamp: Option<&'v Json<'a>>,
    asctime: Option<&'v Json<'a>>,
    time: Option<&'v Json<'a>>,
}

impl<'v, 'a> RecordFields<'v, 'a> {
    fn of(value: &'v Json<'a>) -> Self {
        let mut f = RecordFields::default();
        if let Json::Object(fields) = value {
            for (k, v) in fields {
                let slot = match k.as_ref() {
                    "logger" => &mut f.logger,
                    "name" => &mut f.name,
                    "level" => &mut f.level,
                    "levelname" => &mut f.levelname,
                    "message" => &mut f.message,
                    "msg" => &mut f.msg,
                    "timestamp" => &mut f.timestamp,
                    "asctime" => &mut f.asctime,
                    "time" => &mut f.time,
                    _ => continue,
                };
                *slot = Some(v);
            }
        }
        f
    }
}

/// `text` is what is parsed, `raw` what term patterns and samples see (the
/// event text, or its cut prefix).
fn parse_json<'a>(
    event: EventRef<'a>,
    text: &'a str,
    raw: &'a str,
    spare: Fields<'a>,
    parser: &RecordParser,
) -> Result<LogRecord<'a>, NotJson> {
    let value = Json::parse_reusing(text, spare).map_err(|_| NotJson)?;
    if !value.is_object() {
        return Err(NotJson);
    }
    let found = RecordFields::of(&value);
    // The first that is a string, in order of preference. Borrowed from
    // the event unless the JSON string had escapes.
    let field = |candidates: [Option<&Json<'a>>; 2], default: &'static str| -> Cow<'a, str> {
        candidates
            .iter()
            .find_map(|v| match v {
                Some(Json::String(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or(Cow::Borrowed(default))
    };
    let logger = field([found.logger, found.name], "root");
    let level = field([found.level, found.levelname], "INFO");
    let message = field([found.message, found.msg], "");
    let own = parser
        .record_times
        .then(|| {
            [found.timestamp, found.asctime, found.time]
                .iter()
                .find_map(|v| v.and_then(Json::as_str))
                .and_then(parse_timestamp)
        })
        .flatten();
    Ok(LogRecord {
        event_id: event.id,
        timestamp_ms: own.unwrap_or(event.timestamp_ms),
        own_time: own.is_some(),
        format: RecordFormat::Json,
        logger,
        level,
        message,
        continuation: None,
        raw,
        json: Some(value),
    })
}

/// `2025-05-18 07:42:54,855 - app.core.security - INFO - message` (first line).
fn parse_text<'a>(event: EventRef<'a>, text: &'a str, utc_offset_ms: i64) -> Option<LogRecord<'a>> {
    let (first, continuation) = split_first_line(text);
    let timestamp = first.get(..23)?;
    let at = parse_python_time(timestamp)?;
    let rest = first.get(23..)?.strip_prefix(" - ")?;
    let (logger, rest) = split_dash(rest)?;
    let (level, message) = match split_dash(rest) {
        Some((level, message)) => (level, message),
        // A record with an empty message ends at the level.
        None => (rest.strip_suffix(" -").unwrap_or(rest), ""),
    };
    if logger.is_empty() || level.is_empty() || level.contains(' ') {
        return None;
    }
    Some(LogRecord {
        event_id: event.id,
        timestamp_ms: at.saturating_sub(utc_offset_ms),
        own_time: true,
        format: RecordFormat::PythonText,
        logger: Cow::Borrowed(logger),
        level: Cow::Borrowed(level),
        message: Cow::Borrowed(message),
        continuation,
        raw: text,
        json: None,
    })
}

/// An access-log line (see [`access`]), with the lines continuing it.
fn parse_access<'a>(event: EventRef<'a>, text: &'a str) -> Option<LogRecord<'a>> {
    let (first, continuation) = split_first_line(text);
    let (a, logger) = match access::plain_uvicorn(first) {
        Some(a) => (a, "uvicorn.access"),
        None => (access::common_log(first)?, access::ACCESS_LOGGER),
    };
    Some(LogRecord {
        event_id: event.id,
        timestamp_ms: a.time_ms.unwrap_or(event.timestamp_ms),
        own_time: a.time_ms.is_some(),
        format: RecordFormat::Access,
        logger: Cow::Borrowed(logger),
        level: Cow::Borrowed(a.level.unwrap_or("INFO")),
        message: Cow::Borrowed(access::ACCESS_MESSAGE),
        continuation,
        raw: text,
        json: Some(Json::Object(a.fields)),
    })
}

/// The logger of plain records: they name none.
pub const PLAIN_LOGGER: &str = "unknown";

/// Any other line: the whole first line is the message, after a level
/// prefix when there is one (`ERROR:    ...` as uvicorn writes,
/// `[date] [pid] [ERROR] ...` as gunicorn does).
fn parse_plain<'a>(event: EventRef<'a>, text: &'a str) -> LogRecord<'a> {
    let (first, continuation) = split_first_line(text);
    if continues_record(first) {
        // The rest of a traceback whose record came in an earlier batch:
        // read like the lines it continues (only its exception lines are
        // searched), not as a message of its own. Its source lines quote
        // code, `raise HTTPException(401, "Could not validate credentials")`.
        let rest = text.trim_end_matches(['\n', '\r']);
        return LogRecord {
            event_id: event.id,
            timestamp_ms: event.timestamp_ms,
            own_time: false,
            format: RecordFormat::Plain,
            logger: Cow::Borrowed(PLAIN_LOGGER),
            level: Cow::Borrowed("unknown"),
            message: Cow::Borrowed(""),
            continuation: (!rest.is_empty()).then_some(rest),
            raw: text,
            json: None,
        };
    }
    let (level, message) = plain_level(first).unwrap_or(("unknown", first.trim()));
    LogRecord {
        event_id: event.id,
        timestamp_ms: event.timestamp_ms,
        own_time: false,
        format: RecordFormat::Plain,
        logger: Cow::Borrowed(PLAIN_LOGGER),
        level: Cow::Borrowed(level),
        message: Cow::Borrowed(message),
        continuation,
        raw: text,
        json: None,
    }
}

const LEVELS: [&str; 7] = [
    "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL",
];

/// A leading `LEVEL:` or gunicorn's `[date] [pid] [LEVEL] `.
fn plain_level(line: &str) -> Option<(&str, &str)> {
    if let Some((head, rest)) = line.split_once(':')
        && let Some(level) = LEVELS.iter().find(|l| **l == head)
    {
        return Some((level, rest.trim()));
    }
    if line.starts_with('[') {
        // Up to three bracketed fields; the level is the last one.
        let mut rest = line;
        for _ in 0..3 {
            let inner = rest.strip_prefix('[')?;
            let (field, after) = inner.split_once(']')?;
            rest = after.strip_prefix(' ').unwrap_or(after);
            if let Some(level) = LEVELS.iter().find(|l| **l == field) {
                return Some((level, rest.trim()));
            }
        }
    }
    None
}

/// The first line and the rest (without trailing line ends), if any.
fn split_first_line(text: &str) -> (&str, Option<&str>) {
    match text.split_once('\n') {
        Some((first, rest)) => {
            let rest = rest.trim_end_matches(['\n', '\r']);
            (
                first.trim_end_matches('\r'),
                (!rest.is_empty()).then_some(rest),
            )
        }
        None => (text, None),
    }
}

/// Lines that begin a traceback, chain two exceptions or echo SQL: they
/// continue the record before them.
const CONTINUATION_PREFIXES: [&str; 7] = [
    "Traceback (most recent call last)",
    "During handling of the above exception",
    "The above exception was the direct cause",
    "Exception Group Traceback",
    "[SQL: ",
    "[parameters: ",
    "(Background on this error at",
];

/// True when `line` continues the record before it rather than starting
/// one: a blank or indented line, a traceback header, an SQL echo, or the
/// `module.ExceptionName: message` line that ends a traceback. After a
/// JSON record only a blank line continues (see [`joins_previous`]).
pub fn continues_record(line: &str) -> bool {
    let Some(&first) = line.as_bytes().first() else {
        return true;
    };
    match first {
        b' ' | b'\t' | b'\r' => true,
        b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'[' | b'(' => {
            CONTINUATION_PREFIXES.iter().any(|p| line.starts_with(p)) || is_exception_line(line)
        }
        _ => false,
    }
}

/// Whether `line` is joined to the event before it, a JSON object or not:
/// blank lines always are; continuation lines only after a text record.
pub fn joins_previous(previous_is_json: bool, line: &str) -> bool {
    if line.trim().is_empty() {
        return true;
    }
    !previous_is_json && continues_record(line)
}

/// Whether an event's text looks like a JSON object: it starts with `{`
/// and ends with `}`. A Python dict printed over several lines starts with
/// `{` too, but its first line does not end the object, so the lines after
/// it are joined to it as to any text.
pub fn is_json_event(text: &str) -> bool {
    let t = text.trim();
    t.starts_with('{') && t.ends_with('}')
}

/// `text.split_once(" - ")`, by a byte scan for the dash: a substring
/// searcher costs more to set up than these short fields take to scan.
fn split_dash(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let mut from = 1;
    while from + 1 < b.len() {
        let at = from + b[from..b.len() - 1].iter().position(|c| *c == b'-')?;
        if b[at - 1] == b' ' && b[at + 1] == b' ' {
            return Some((text.get(..at - 1)?, text.get(at + 2..)?));
        }
        from = at + 1;
    }
    None
}

/// True when `line` begins an event whatever came before it: a cut of a
/// file may be made there (see [`joins_previous`]).
pub fn starts_record(line: &str) -> bool {
    !continues_record(line)
}

/// The events of a plain log file's text, borrowed: [`group_lines`]
/// without copying. Lines end at `\n`; an event spans its lines and the
/// `\n`s between them.
pub fn split_events(text: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = text;
    // Where `rest`'s first line ends, when the event before found it while
    // looking for its own end: each line is scanned once.
    let mut first_end: Option<usize> = None;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        // The memchr crate's SIMD search: std's `find('\n')` took a tenth
        // of replay's time.
        let line_end =
            |from: usize| memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i);
        let mut end = first_end.take().unwrap_or_else(|| line_end(0));
        let json = is_json_event(&rest[..end]);
        while end + 1 < rest.len() {
            let next_end = line_end(end + 1);
            let line = &rest[end + 1..next_end];
            if !joins_previous(json, line) {
                first_end = Some(next_end - (end + 1));
                break;
            }
            end = next_end;
        }
        let event = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        Some(event.strip_suffix('\r').unwrap_or(event))
    })
}

/// Groups the lines of a plain log file into events: a line that
/// [`joins_previous`] is appended to the event before it.
pub fn group_lines<'a, I>(lines: I) -> impl Iterator<Item = String> + 'a
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: 'a,
{
    let mut lines = lines.into_iter().peekable();
    std::iter::from_fn(move || {
        let first = lines.next()?;
        let mut event = first.to_owned();
        let json = is_json_event(first);
        while let Some(next) = lines.next_if(|l| joins_previous(json, l)) {
            event.push('\n');
            event.push_str(next);
        }
        Some(event)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_splits_at_its_first_line_end() {
        assert_eq!(split_first_line("one line"), ("one line", None));
        assert_eq!(split_first_line("a\r\nb\nc\n\n"), ("a", Some("b\nc")));
        assert_eq!(split_first_line("é\n\r\n"), ("é", None));
        assert_eq!(split_first_line("\nrest"), ("", Some("rest")));
        assert_eq!(
            split_first_line("ü\r\nTraceback\r\n"),
            ("ü", Some("Traceback"))
        );
    }

    #[test]
    fn json_records_take_the_preferred_string_field_and_the_last_of_a_repeated_one() {
        let parse = |text: &str| {
            let mut parser = RecordParser::default();
            let event = LogEvent {
                id: "e".into(),
                timestamp_ms: 0,
                message: text.into(),
            };
            let r = parser.parse(&event).unwrap();
            (
                r.logger.to_string(),
                r.level.to_string(),
                r.message.to_string(),
            )
        };
        assert_eq!(
            parse(r#"{"name":"n","logger":"l","levelname":"WARNING","msg":"m"}"#),
            ("l".into(), "WARNING".into(), "m".into())
        );
        // Not a string: the next name in order of preference.
        assert_eq!(
            parse(r#"{"logger":7,"name":"n","level":null,"message":"a","message":"b"}"#),
            ("n".into(), "INFO".into(), "b".into())
        );
        // The last of a repeated field, even when it is not a string.
        assert_eq!(
            parse(r#"{"logger":"l","logger":1,"name":"n"}"#),
            ("n".into(), "INFO".into(), "".into())
        );
    }

    #[test]
    fn split_dash_is_split_once() {
        for text in [
            "",
            "-",
            " - ",
            "a - b",
            "a - b - c",
            "a-b - c",
            "a -b - c",
            " - x",
            "x - ",
            "a --- b",
            "a  -  b",
            "é - ü - x",
            "-- - -",
        ] {
            assert_eq!(split_dash(text), text.split_once(" - "), "{text:?}");
        }
    }

    fn event(message: &str) -> LogEvent {
        LogEvent {
            id: "e1".into(),
            timestamp_ms: 42,
            message: message.into(),
        }
    }

    /// Record times as written (the event times of these tests are 42).
    fn unbounded() -> RecordParser {
        RecordParser::new(ParseSettings {
            time_bounds: None,
            ..ParseSettings::default()
        })
    }

    fn record(message: &str) -> LogRecord<'static> {
        let e = Box::leak(Box::new(event(message)));
        match unbounded().parse(e) {
            Ok(r) => r,
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn json_record_with_aliases() {
        let r = record(
            r#"{"asctime":"2025-05-20T10:30:00.123Z","levelname":"WARNING","name":"security","msg":"Authentication attempt","success":false}"#,
        );
        assert_eq!(r.format, RecordFormat::Json);
        assert_eq!(r.logger, "security");
        assert_eq!(r.level, "WARNING");
        assert_eq!(r.message, "Authentication attempt");
        assert_eq!(r.timestamp_ms, 1_747_737_000_123);
        assert_eq!(r.field("success"), Some(&Json::Bool(false)));
    }

    #[test]
    fn without_record_times_json_records_keep_the_event_time() {
        let json = event(r#"{"timestamp":"2025-05-20T10:30:00.123Z","message":"x"}"#);
        let text = event("2025-05-18 07:42:54,855 - app - INFO - x");
        let mut parser = unbounded().without_record_times();
        let time = |p: Result<LogRecord<'_>, RejectReason>| match p {
            Ok(r) => r.timestamp_ms,
            other => panic!("not a record: {other:?}"),
        };
        assert_eq!(time(parser.parse(&json)), 42);
        assert_eq!(time(parser.parse(&text)), 1_747_554_174_855);
        assert_eq!(time(unbounded().parse(&json)), 1_747_737_000_123);
    }

    #[test]
    fn json_record_defaults() {
        let r = record(r#"{"message":"x"}"#);
        assert_eq!((r.logger.as_ref(), r.level.as_ref()), ("root", "INFO"));
        assert_eq!(r.timestamp_ms, 42, "event time when the record has none");
        let r = record(r#"{"message":"x","timestamp":"not a time"}"#);
        assert_eq!(r.timestamp_ms, 42);
    }

    #[test]
    fn text_record_with_continuation() {
        let r = record(
            "2025-05-18 07:42:54,855 - app.core.database - ERROR - Database error: refused\n[SQL: SELECT 1]\n",
        );
        assert_eq!(r.format, RecordFormat::PythonText);
        assert_eq!(r.logger, "app.core.database");
        assert_eq!(r.level, "ERROR");
        assert_eq!(r.message, "Database error: refused");
        assert_eq!(r.continuation, Some("[SQL: SELECT 1]"));
        assert_eq!(r.timestamp_ms, 1_747_554_174_855);
        assert!(r.is_error());
    }

    #[test]
    fn text_message_may_contain_separators() {
        let r = record("2025-05-18 07:42:54,855 - app - INFO - a - b - c");
        assert_eq!(r.message, "a - b - c");
    }

    #[test]
    fn rejects_with_reasons() {
        let mut p = RecordParser::new(ParseSettings {
            max_event_bytes: 64,
            ..ParseSettings::default()
        });
        let cases = [
            ("", RejectReason::Empty),
            ("   \n", RejectReason::Empty),
            ("\u{0}\u{1}binary\u{7f}", RejectReason::Binary),
        ];
        for (text, reason) in cases {
            let e = event(text);
            assert_eq!(p.parse(&e), Err(reason), "{text:?}");
        }
        assert_eq!(p.take_stats(), ParseStats::default());
    }

    #[test]
    fn lines_of_no_known_format_are_plain_records() {
        for (line, level, message) in [
            ("hello world", "unknown", "hello world"),
            ("[1,2]", "unknown", "[1,2]"),
            ("{not json", "unknown", "{not json"),
            (
                "{'error': 'invalid_grant'}",
                "unknown",
                "{'error': 'invalid_grant'}",
            ),
            (
                "2025-13-18 07:42:54,855 - app - INFO - bad month",
                "unknown",
                "2025-13-18 07:42:54,855 - app - INFO - bad month",
            ),
            (
                "ERROR:    Exception in ASGI application",
                "ERROR",
                "Exception in ASGI application",
            ),
            (
                "[2025-05-20 10:30:00 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:12)",
                "CRITICAL",
                "WORKER TIMEOUT (pid:12)",
            ),
            // The start of a traceback whose record is gone: read like the lines
            // it continues, with no message of its own.
            ("Traceback (most recent call last):", "unknown", ""),
        ] {
            let r = record(line);
            assert_eq!(r.format, RecordFormat::Plain, "{line}");
            assert_eq!(r.logger, PLAIN_LOGGER);
            assert_eq!(
                (r.level.as_ref(), r.message.as_ref()),
                (level, message),
                "{line}"
            );
            assert_eq!(r.timestamp_ms, 42, "the event's time");
            assert!(!r.own_time);
        }
    }

    #[test]
    fn access_log_lines_are_records_with_fields() {
        let r = record(
            "INFO:     203.0.113.9:51234 - \"POST /api/auth/login HTTP/1.1\" 401 Unauthorized",
        );
        assert_eq!(r.format, RecordFormat::Access);
        assert_eq!(
            (r.logger.as_ref(), r.level.as_ref()),
            ("uvicorn.access", "INFO")
        );
        assert_eq!(r.message, access::ACCESS_MESSAGE);
        assert_eq!(r.field("status_code"), Some(&Json::Number(401.into())));
        let r = record(
            "203.0.113.9 - - [20/May/2025:10:30:00 +0000] \"GET /api/users/42 HTTP/1.1\" 503 12 \"-\" \"curl/8.0\"",
        );
        assert_eq!(r.format, RecordFormat::Access);
        assert_eq!(r.logger, access::ACCESS_LOGGER);
        assert_eq!((r.timestamp_ms, r.own_time), (1_747_737_000_000, true));
        // uvicorn's logger formatted as Python logging: a text record with
        // the access fields.
        let r = record(
            "2025-05-18 09:15:28,603 - uvicorn.access - INFO - 198.51.100.23:50112 - \"GET /api/drift/reports/9f2e HTTP/1.1\" 404",
        );
        assert_eq!(r.format, RecordFormat::PythonText);
        assert_eq!(
            r.field("endpoint"),
            Some(&Json::String("/api/drift/reports/9f2e".into()))
        );
    }

    #[test]
    fn oversized_events_are_cut_and_still_read() {
        let settings = ParseSettings {
            max_event_bytes: 64,
            time_bounds: None,
            ..ParseSettings::default()
        };
        // Text: cut, read from the cut prefix.
        let long = format!(
            "2025-05-18 07:42:54,855 - app.core.security - WARNING - Login failed {}",
            "é".repeat(40)
        );
        let e = event(&long);
        let mut p = RecordParser::new(settings);
        let r = p.parse(&e).unwrap();
        assert!(r.raw.len() <= 64 && long.starts_with(r.raw));
        assert_eq!(r.message, "Login fa");
        assert_eq!(p.take_stats().truncated, 1);
        // JSON under CloudWatch's limit: parsed whole, raw cut.
        let json = format!(
            r#"{{"message":"Authentication attempt","agent":"{}","success":false}}"#,
            "A".repeat(200)
        );
        let e = event(&json);
        let r = p.parse(&e).unwrap();
        assert_eq!(r.format, RecordFormat::Json);
        assert_eq!(r.field("success"), Some(&Json::Bool(false)));
        assert_eq!(r.raw.len(), 64);
        // JSON past it: cut and read as plain text.
        let huge = format!(
            r#"{{"message":"x","pad":"{}"}}"#,
            "A".repeat(JSON_PARSE_MAX_BYTES)
        );
        let e = event(&huge);
        let r = p.parse(&e).unwrap();
        assert_eq!(r.format, RecordFormat::Plain);
        assert_eq!(p.take_stats().truncated, 2);
    }

    #[test]
    fn the_rest_of_a_traceback_is_searched_by_its_exception_lines_only() {
        let r = record(
            "    raise HTTPException(status_code=401, detail=\"Could not validate credentials\")\nKeyError: 'tid'",
        );
        assert_eq!(r.format, RecordFormat::Plain);
        assert_eq!(r.message, "");
        assert_eq!(r.searchable(), "KeyError: 'tid'");
    }

    #[test]
    fn a_gunicorn_traceback_is_searched_by_its_exception_lines_only() {
        let r = record(
            "[2025-05-20 10:30:00 +0000] [7] [ERROR] Error handling request /api/users\n    raise HTTPException(401, \"Could not validate credentials\")\nKeyError: 'tid'",
        );
        assert_eq!(r.format, RecordFormat::Plain);
        assert_eq!(
            r.searchable(),
            "Error handling request /api/users\nKeyError: 'tid'"
        );
        let dict = record("{'error': 'invalid_grant',\n 'error_codes': [70008]}");
        assert_eq!(dict.searchable(), dict.raw);
    }

    #[test]
    fn a_dict_printed_over_several_lines_is_one_event() {
        let text = "2025-05-18 07:42:54,855 - msal - WARNING - token request failed\n{'error': 'invalid_grant',\n 'error_codes': [70008]}\n{\"message\":\"json\"}";
        let events: Vec<&str> = split_events(text).collect();
        assert_eq!(
            events,
            [
                "2025-05-18 07:42:54,855 - msal - WARNING - token request failed",
                "{'error': 'invalid_grant',\n 'error_codes': [70008]}",
                "{\"message\":\"json\"}",
            ]
        );
    }

    #[test]
    fn record_times_are_bounded_by_the_delivery_time() {
        let delivered = 1_747_737_000_000; // 2025-05-20T10:30:00Z
        let at = |message: &str| LogEvent {
            id: "e".into(),
            timestamp_ms: delivered,
            message: message.into(),
        };
        let mut p = RecordParser::default();
        let cases = [
            // A year ahead: the delivery time, counted.
            (
                r#"{"timestamp":"2026-05-20T10:30:00.000Z","message":"x"}"#,
                delivered,
                false,
            ),
            // Minutes behind: its own.
            (
                r#"{"timestamp":"2025-05-20T10:25:00.000Z","message":"x"}"#,
                delivered - 300_000,
                true,
            ),
            // Ten minutes ahead: more skew than allowed.
            ("2025-05-20 10:40:00,000 - app - INFO - x", delivered, false),
            // Two days behind.
            ("2025-05-18 10:30:00,000 - app - INFO - x", delivered, false),
        ];
        for (line, want, own) in cases {
            let e = at(line);
            let r = p.parse(&e).unwrap();
            assert_eq!((r.timestamp_ms, r.own_time), (want, own), "{line}");
        }
        assert_eq!(p.take_stats().clamped, 3);
    }

    #[test]
    fn text_times_are_read_in_the_configured_zone() {
        let mut p = RecordParser::new(ParseSettings {
            time_bounds: None,
            text_utc_offset_ms: parse_utc_offset("+02:00").unwrap(),
            ..ParseSettings::default()
        });
        let e = event("2025-05-20 12:30:00,000 - app - INFO - x");
        assert_eq!(p.parse(&e).unwrap().timestamp_ms, 1_747_737_000_000);
        assert_eq!(parse_utc_offset("UTC"), Some(0));
        assert_eq!(parse_utc_offset("-0530"), Some(-(5 * 60 + 30) * 60_000));
        assert_eq!(parse_utc_offset("Europe/Berlin"), None);
        assert_eq!(parse_utc_offset("+25:00"), None);
    }

    #[test]
    fn without_a_delivery_time_records_take_the_streams_last_time() {
        let mut p = unbounded();
        let text = event("2025-05-18 07:42:54,855 - app - ERROR - boom");
        let plain = event("INFO:     Shutting down");
        assert_eq!(p.parse(&text).unwrap().timestamp_ms, 1_747_554_174_855);
        assert_eq!(p.parse(&plain).unwrap().timestamp_ms, 1_747_554_174_855);
        p.reset_stream();
        assert_eq!(p.parse(&plain).unwrap().timestamp_ms, 42);
    }

    #[test]
    fn continuation_lines() {
        for line in [
            "",
            "  File \"x.py\", line 1, in f",
            "\tat line",
            "Traceback (most recent call last):",
            "During handling of the above exception, another exception occurred:",
            "The above exception was the direct cause of the following exception:",
            "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not connect",
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached",
            "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already",
            "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379.",
            "ConnectionRefusedError: [Errno 111] Connection refused",
            "KeyboardInterrupt",
            "[SQL: SELECT 1]",
            "(Background on this error at: https://sqlalche.me/e/20/e3q8)",
        ] {
            assert!(continues_record(line), "{line:?}");
            assert!(!starts_record(line), "{line:?}");
        }
        for line in [
            "2025-05-18 07:42:54,855 - app - ERROR - boom",
            "{\"message\":\"x\"}",
            "INFO:     Started server process [1]",
            "ERROR:    Exception in ASGI application",
            "[2025-05-20 10:30:00 +0000] [7] [INFO] Booting worker with pid: 7",
            "hello world",
            "Errors: 3",
            "Done.",
        ] {
            assert!(!continues_record(line), "{line:?}");
        }
        assert!(joins_previous(true, "   "));
        assert!(!joins_previous(true, "  File \"x.py\""));
        assert!(joins_previous(false, "  File \"x.py\""));
    }

    #[test]
    fn file_lines_group_into_events() {
        let text = "junk first\nmore junk\n2025-05-18 07:42:54,855 - a - ERROR - x\nTraceback (most recent call last):\n  line\nValueError: bad\n{\"message\":\"j\"}\n  indented after json\n2025-05-18 07:42:55,000 - a - INFO - y";
        let events: Vec<String> = group_lines(text.lines()).collect();
        assert_eq!(
            events,
            [
                "junk first",
                "more junk",
                "2025-05-18 07:42:54,855 - a - ERROR - x\nTraceback (most recent call last):\n  line\nValueError: bad",
                "{\"message\":\"j\"}",
                "  indented after json",
                "2025-05-18 07:42:55,000 - a - INFO - y",
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(message in ".{0,300}") {
            let e = event(&message);
            let _ = RecordParser::new(ParseSettings { max_event_bytes: 200, ..ParseSettings::default() }).parse(&e);
        }

        /// split_events carries the end of the line that starts the next
        /// event over to it; any mix of record starts, continuation lines
        /// and blank lines groups as `group_lines` does.
        #[test]
        fn split_events_agrees_with_group_lines_on_any_mix(
            lines in proptest::collection::vec(0usize..6, 0..40),
            trailing_newline in proptest::bool::ANY,
        ) {
            const VOCABULARY: [&str; 6] = [
                "2025-05-18 07:42:54,855 - app - ERROR - boom",
                "{\"level\":\"INFO\",\"message\":\"ok\"}",
                "  File \"x.py\", line 1",
                "",
                "Traceback (most recent call last):",
                "  {not a record: indented}",
            ];
            let mut text = lines.iter().map(|i| VOCABULARY[*i]).collect::<Vec<_>>().join("\n");
            if trailing_newline {
                text.push('\n');
            }
            let grouped: Vec<String> = group_lines(text.lines()).collect();
            let split: Vec<&str> = split_events(&text).collect();
            proptest::prop_assert_eq!(split, grouped);
        }
    }

    #[test]
    fn split_events_agrees_with_group_lines() {
        let text = "junk\nmore junk\n2025-05-18 07:42:54,855 - app - ERROR - boom\nTraceback (most recent call last):\n  File \"x.py\"\n\n{\"level\":\"INFO\"}\n{\"a\":1}\n2025-05-18 07:42:54,856 - app - INFO - last";
        let grouped: Vec<String> = group_lines(text.lines()).collect();
        let split: Vec<&str> = split_events(text).collect();
        assert_eq!(split, grouped);
        assert_eq!(split.len(), 6);
        let with_newline = format!("{text}\n");
        assert_eq!(split_events(&with_newline).collect::<Vec<_>>(), grouped);
        assert_eq!(split_events("").count(), 0);
        assert_eq!(split_events("\n").collect::<Vec<_>>(), [""]);
    }
}
