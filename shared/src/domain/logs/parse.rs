//! Parses log events into records: JSON objects with the field aliases of
//! LOG-CONTRACT.md, and Python text records
//! (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`) whose extra lines
//! (tracebacks, SQL echoes) continue the record.

use std::borrow::Cow;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::json::{Fields, Json};
use super::record::{EventRef, LogEvent, LogRecord, RecordFormat};

/// CloudWatch Logs' own limit on one event.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// Why an event produced no record. Each is counted under its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Neither a JSON object nor a Python text record.
    Unparsed,
    /// Starts like JSON but is not a valid JSON object.
    InvalidJson,
    /// Larger than the configured event limit.
    Oversized,
    /// Empty or only white space.
    Empty,
    /// Control characters: binary data, not a log line.
    Binary,
}

impl RejectReason {
    /// The `reason` label of `log_events_rejected_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Unparsed => "unparsed",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::Oversized => "oversized",
            RejectReason::Empty => "empty",
            RejectReason::Binary => "binary",
        }
    }
}

/// What one event turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<'a> {
    Record(LogRecord<'a>),
    /// A line that only continues the previous text record (a traceback
    /// line shipped as its own event).
    Continuation(&'a str),
}

/// Parses events of one stream in order, remembering whether a text record
/// came last, so a bare traceback line after it is a continuation rather
/// than an unknown format.
#[derive(Debug, Clone)]
pub struct RecordParser {
    max_event_bytes: usize,
    after_text_record: bool,
    /// The field vector of a record already evaluated (see [`Self::recycle`]).
    spare: Fields<'static>,
    /// Whether a JSON record's own timestamp is read (see
    /// [`Self::without_record_times`]).
    record_times: bool,
}

impl Default for RecordParser {
    fn default() -> Self {
        RecordParser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl RecordParser {
    pub fn new(max_event_bytes: usize) -> Self {
        RecordParser {
            max_event_bytes,
            after_text_record: false,
            spare: Vec::new(),
            record_times: true,
        }
    }

    /// JSON records keep their event's time rather than their own
    /// `timestamp`: for callers that never read a record's time (replay
    /// counting signals without building them), as parsing it is a
    /// twentieth of a JSON record's cost. Text records are unchanged: their
    /// timestamp is what tells a record from a continuation line.
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

    /// The next event starts a new stream: a bare line no longer continues
    /// the last text record.
    pub fn reset_stream(&mut self) {
        self.after_text_record = false;
    }

    pub fn parse<'a>(&mut self, event: &'a LogEvent) -> Result<Parsed<'a>, RejectReason> {
        self.parse_ref(event.borrowed())
    }

    /// [`Self::parse`] for an event borrowed from elsewhere.
    pub fn parse_ref<'a>(&mut self, event: EventRef<'a>) -> Result<Parsed<'a>, RejectReason> {
        let result = parse_event(event, self);
        self.after_text_record = match &result {
            Ok(Parsed::Record(r)) => r.format == RecordFormat::PythonText,
            Ok(Parsed::Continuation(_)) => self.after_text_record,
            Err(_) => false,
        };
        result
    }
}

fn parse_event<'a>(
    event: EventRef<'a>,
    parser: &mut RecordParser,
) -> Result<Parsed<'a>, RejectReason> {
    let text = event.message;
    if text.len() > parser.max_event_bytes {
        return Err(RejectReason::Oversized);
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(RejectReason::Empty);
    }
    if trimmed.starts_with('{') {
        let spare = std::mem::take(&mut parser.spare);
        return parse_json(event, trimmed, spare, parser.record_times).map(Parsed::Record);
    }
    if let Some(record) = parse_text(event, text) {
        return Ok(Parsed::Record(record));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(RejectReason::Binary);
    }
    if parser.after_text_record {
        Ok(Parsed::Continuation(text))
    } else {
        Err(RejectReason::Unparsed)
    }
}

/// The first of several aliases that is a string.
fn string_field<'v>(object: &'v Json<'_>, names: &[&str]) -> Option<&'v str> {
    names
        .iter()
        .find_map(|n| object.get(n).and_then(Json::as_str))
}

fn parse_json<'a>(
    event: EventRef<'a>,
    text: &'a str,
    spare: Fields<'a>,
    record_time: bool,
) -> Result<LogRecord<'a>, RejectReason> {
    let value = Json::parse_reusing(text, spare).map_err(|_| RejectReason::InvalidJson)?;
    if !value.is_object() {
        return Err(RejectReason::InvalidJson);
    }
    // Borrowed from the event unless the JSON string had escapes.
    let field = |names: &[&str], default: &'static str| -> Cow<'a, str> {
        names
            .iter()
            .find_map(|n| match value.get(n) {
                Some(Json::String(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or(Cow::Borrowed(default))
    };
    let logger = field(&["logger", "name"], "root");
    let level = field(&["level", "levelname"], "INFO");
    let message = field(&["message", "msg"], "");
    let timestamp_ms = record_time
        .then(|| string_field(&value, &["timestamp", "asctime", "time"]).and_then(parse_timestamp))
        .flatten()
        .unwrap_or(event.timestamp_ms);
    Ok(LogRecord {
        event_id: event.id,
        timestamp_ms,
        format: RecordFormat::Json,
        logger,
        level,
        message,
        continuation: None,
        raw: event.message,
        json: Some(value),
    })
}

/// `2025-05-18 07:42:54,855 - app.core.security - INFO - message` (first line).
fn parse_text<'a>(event: EventRef<'a>, text: &'a str) -> Option<LogRecord<'a>> {
    let (first, continuation) = match text.split_once('\n') {
        Some((first, rest)) => {
            let rest = rest.trim_end_matches(['\n', '\r']);
            (
                first.trim_end_matches('\r'),
                (!rest.is_empty()).then_some(rest),
            )
        }
        None => (text, None),
    };
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
        timestamp_ms: at,
        format: RecordFormat::PythonText,
        logger: Cow::Borrowed(logger),
        level: Cow::Borrowed(level),
        message: Cow::Borrowed(message),
        continuation,
        raw: text,
        json: None,
    })
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

/// True when `line` begins a record (JSON object or Python text record); a
/// line that does not continues the previous one.
pub fn starts_record(line: &str) -> bool {
    line.trim_start().starts_with('{') || line.get(..23).and_then(parse_python_time).is_some()
}

/// RFC 3339 (`2025-05-20T10:30:00.123Z`), else Python's asctime.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Some(ms) = parse_utc_millis(text) {
        return Some(ms);
    }
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => Some(epoch_ms(t)),
        Err(_) => text.get(..23).and_then(parse_python_time),
    }
}

fn epoch_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The common shape `YYYY-MM-DDTHH:MM:SS.mmmZ` by hand (every JSON record
/// has one); anything else goes to the full RFC 3339 parser.
fn parse_utc_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let mut python = [0u8; 23];
    python.copy_from_slice(&b[..23]);
    python[10] = b' ';
    python[19] = b',';
    parse_python_time(std::str::from_utf8(&python).ok()?)
}

/// `YYYY-MM-DD HH:MM:SS,mmm` (Python's asctime, taken as UTC), by hand:
/// it is tried on every line of every text record.
fn parse_python_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 23 {
        return None;
    }
    let punct = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b','),
    ];
    if punct.iter().any(|(i, c)| b[*i] != *c) {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    // The calendar by hand (what `time` checks and computes, without its
    // types): this runs on every line of every text record.
    let year = i64::from(num(0, 4)?);
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = num(20, 23)?;
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + i64::from(hour)) * 60 + i64::from(minute)) * 60 + i64::from(second);
    Some(seconds * 1000 + i64::from(millis))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        while end + 1 < rest.len() {
            let next_end = line_end(end + 1);
            if starts_record(&rest[end + 1..next_end]) {
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

/// Groups the lines of a plain log file into events: a line that does not
/// start a record is appended to the previous one (so lines before the
/// first record form one event, which will be rejected as unparsed).
pub fn group_lines<'a, I>(lines: I) -> impl Iterator<Item = String> + 'a
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: 'a,
{
    let mut lines = lines.into_iter().peekable();
    std::iter::from_fn(move || {
        let first = lines.next()?;
        let mut event = first.to_owned();
        while let Some(next) = lines.next_if(|l| !starts_record(l)) {
            event.push('\n');
            event.push_str(next);
        }
        Some(event)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written calendar agrees with `time` on every day of
    /// several centuries and on the invalid fields.
    #[test]
    fn python_time_agrees_with_the_time_crate() {
        use time::{Date, Month, PrimitiveDateTime, Time};
        let by_time = |text: &str| -> Option<i64> {
            let b = text.as_bytes();
            let num = |from: usize, to: usize| text.get(from..to)?.parse::<u32>().ok();
            if b.len() != 23
                || !b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 => *c == b' ',
                    13 | 16 => *c == b':',
                    19 => *c == b',',
                    _ => c.is_ascii_digit(),
                })
            {
                return None;
            }
            let month = Month::try_from(u8::try_from(num(5, 7)?).ok()?).ok()?;
            let date = Date::from_calendar_date(
                i32::try_from(num(0, 4)?).ok()?,
                month,
                u8::try_from(num(8, 10)?).ok()?,
            )
            .ok()?;
            let time = Time::from_hms_milli(
                u8::try_from(num(11, 13)?).ok()?,
                u8::try_from(num(14, 16)?).ok()?,
                u8::try_from(num(17, 19)?).ok()?,
                u16::try_from(num(20, 23)?).ok()?,
            )
            .ok()?;
            Some(epoch_ms(PrimitiveDateTime::new(date, time).assume_utc()))
        };
        let mut day = Date::from_calendar_date(1600, Month::January, 1).unwrap();
        let end = Date::from_calendar_date(2500, Month::January, 1).unwrap();
        while day < end {
            let text = format!(
                "{:04}-{:02}-{:02} 23:59:58,999",
                day.year(),
                u8::from(day.month()),
                day.day()
            );
            assert_eq!(parse_python_time(&text), by_time(&text), "{text}");
            day = day.next_day().unwrap();
        }
        for text in [
            "0000-01-01 00:00:00,000",
            "9999-12-31 23:59:59,999",
            "2024-02-29 12:00:00,000",
            "2023-02-29 12:00:00,000",
            "1900-02-29 12:00:00,000",
            "2000-02-29 12:00:00,000",
            "2025-00-10 12:00:00,000",
            "2025-13-10 12:00:00,000",
            "2025-04-31 12:00:00,000",
            "2025-04-00 12:00:00,000",
            "2025-04-10 24:00:00,000",
            "2025-04-10 23:60:00,000",
            "2025-04-10 23:59:60,000",
            "2025-04-10 23:59:59,9x9",
            "2025-04-10T23:59:59,999",
        ] {
            assert_eq!(parse_python_time(text), by_time(text), "{text}");
        }
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

    fn record(message: &str) -> LogRecord<'static> {
        let e = Box::leak(Box::new(event(message)));
        match RecordParser::default().parse(e) {
            Ok(Parsed::Record(r)) => r,
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
        let mut parser = RecordParser::default().without_record_times();
        let time = |p: Result<Parsed<'_>, RejectReason>| match p {
            Ok(Parsed::Record(r)) => r.timestamp_ms,
            other => panic!("not a record: {other:?}"),
        };
        assert_eq!(time(parser.parse(&json)), 42);
        assert_eq!(time(parser.parse(&text)), 1_747_554_174_855);
        assert_eq!(
            time(RecordParser::default().parse(&json)),
            1_747_737_000_123
        );
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
        let mut p = RecordParser::new(64);
        let cases = [
            ("", RejectReason::Empty),
            ("   \n", RejectReason::Empty),
            ("{not json", RejectReason::InvalidJson),
            ("[1,2]", RejectReason::Unparsed),
            ("{\"a\":1} trailing", RejectReason::InvalidJson),
            ("hello world", RejectReason::Unparsed),
            ("\u{0}\u{1}binary\u{7f}", RejectReason::Binary),
            (
                "2025-13-18 07:42:54,855 - app - INFO - bad month",
                RejectReason::Unparsed,
            ),
        ];
        for (text, reason) in cases {
            let e = event(text);
            assert_eq!(p.parse(&e), Err(reason), "{text:?}");
        }
        let big = event(&"x".repeat(65));
        assert_eq!(p.parse(&big), Err(RejectReason::Oversized));
    }

    #[test]
    fn a_bare_line_after_a_text_record_continues_it() {
        let mut p = RecordParser::default();
        let events = [
            event("2025-05-18 07:42:54,855 - app - ERROR - boom"),
            event("Traceback (most recent call last):"),
            event("  File \"x.py\", line 1"),
            event(r#"{"message":"json"}"#),
            event("Traceback after json"),
            event("2025-05-18 07:42:55,000 - app - ERROR - again"),
            event("\u{0}\u{1} binary after a text record"),
        ];
        let kinds: Vec<_> = events
            .iter()
            .map(|e| match p.parse(e) {
                Ok(Parsed::Record(_)) => "record",
                Ok(Parsed::Continuation(_)) => "continuation",
                Err(_) => "rejected",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "record",
                "continuation",
                "continuation",
                "record",
                "rejected",
                "record",
                "rejected"
            ]
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2025-05-20T10:30:00Z"),
            Some(1_747_737_000_000)
        );
        assert_eq!(
            parse_timestamp("2025-05-20T12:30:00.5+02:00"),
            Some(1_747_737_000_500)
        );
        assert_eq!(
            parse_timestamp("2025-05-20 10:30:00,123"),
            Some(1_747_737_000_123)
        );
        assert_eq!(parse_timestamp("2025-05-20 10:30:00.123"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_python_time("2025-02-30 10:30:00,123"), None);
    }

    #[test]
    fn file_lines_group_into_events() {
        let text = "junk first\n2025-05-18 07:42:54,855 - a - ERROR - x\nTraceback\n  line\n{\"message\":\"j\"}\n2025-05-18 07:42:55,000 - a - INFO - y";
        let events: Vec<String> = group_lines(text.lines()).collect();
        assert_eq!(
            events,
            [
                "junk first",
                "2025-05-18 07:42:54,855 - a - ERROR - x\nTraceback\n  line",
                "{\"message\":\"j\"}",
                "2025-05-18 07:42:55,000 - a - INFO - y",
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(message in ".{0,300}") {
            let e = event(&message);
            let _ = RecordParser::new(200).parse(&e);
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
        assert_eq!(split.len(), 5);
        let with_newline = format!("{text}\n");
        assert_eq!(split_events(&with_newline).collect::<Vec<_>>(), grouped);
        assert_eq!(split_events("").count(), 0);
        assert_eq!(split_events("\n").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_rfc3339() {
        for text in [
            "2025-05-20T10:30:00.123Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let full = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            assert_eq!(parse_timestamp(text), Some(epoch_ms(full)), "{text}");
        }
        assert_eq!(parse_utc_millis("2025-02-30T10:30:00.123Z"), None);
        assert_eq!(parse_utc_millis("2025-05-20T10:30:00.123+00:00"), None);
        assert_eq!(
            parse_timestamp("2025-05-20T12:30:00.123+02:00"),
            parse_timestamp("2025-05-20T10:30:00.123Z")
        );
    }
}
