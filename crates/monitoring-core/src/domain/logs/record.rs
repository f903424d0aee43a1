//! The log data model: a raw event as CloudWatch Logs delivers it, and the
//! record parsed from it.

use std::borrow::Cow;

use super::json::Json;

/// One log event: what a subscription batch carries, or one record of a
/// replayed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// CloudWatch's event id (unique per log group); replay makes one up.
    pub id: String,
    /// Ingestion-side event time, epoch milliseconds.
    pub timestamp_ms: i64,
    pub message: String,
}

impl LogEvent {
    pub fn borrowed(&self) -> EventRef<'_> {
        EventRef {
            id: &self.id,
            timestamp_ms: self.timestamp_ms,
            message: &self.message,
        }
    }
}

/// An event borrowed from where it lives (a decoded batch, a chunk of a
/// replayed file), so the pipeline copies nothing per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub id: &'a str,
    pub timestamp_ms: i64,
    pub message: &'a str,
}

/// How a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordFormat {
    /// One JSON object (a Python JSON formatter with `extra` fields merged in).
    Json,
    /// `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
    PythonText,
    /// An HTTP access-log line (uvicorn, common/combined log format), with
    /// its fields (see [`super::access`]).
    Access,
    /// Any other line (uvicorn and gunicorn output, `print`s, crash
    /// output): its first line is the message.
    Plain,
}

impl RecordFormat {
    pub const ALL: [RecordFormat; 4] = [
        RecordFormat::Json,
        RecordFormat::PythonText,
        RecordFormat::Access,
        RecordFormat::Plain,
    ];

    /// Its place in [`Self::ALL`]: counts per format are kept in an array
    /// on the hot path.
    pub const fn index(self) -> usize {
        match self {
            RecordFormat::Json => 0,
            RecordFormat::PythonText => 1,
            RecordFormat::Access => 2,
            RecordFormat::Plain => 3,
        }
    }

    /// The `format` label of `log_records_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordFormat::Json => "json",
            RecordFormat::PythonText => "text",
            RecordFormat::Access => "access",
            RecordFormat::Plain => "plain",
        }
    }
}

/// A parsed record. Borrows from its event; the JSON object is owned.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord<'a> {
    pub event_id: &'a str,
    /// Event time (epoch ms): the record's own timestamp when it has a
    /// readable one within the bounds of its event's time, else the
    /// event's.
    pub timestamp_ms: i64,
    /// Whether `timestamp_ms` is the record's own.
    pub own_time: bool,
    pub format: RecordFormat,
    pub logger: Cow<'a, str>,
    pub level: Cow<'a, str>,
    /// The message: `message`/`msg` of a JSON record, the text after the
    /// level of a text record, the line of a plain one (first line only).
    pub message: Cow<'a, str>,
    /// Lines after the first of a text record (tracebacks, SQL echoes).
    pub continuation: Option<&'a str>,
    /// The whole event text, for term patterns and sample lines.
    pub raw: &'a str,
    /// The JSON object of a JSON record, borrowed from `raw`; the fields
    /// of an access-log line (a text record of `uvicorn.access` included).
    pub json: Option<Json<'a>>,
}

impl<'a> LogRecord<'a> {
    /// A field of a JSON record; `None` for text records.
    pub fn field(&self, name: &str) -> Option<&Json<'a>> {
        self.json.as_ref().and_then(|j| j.get(name))
    }

    /// What regex rules search: the message, then the exception lines of
    /// the traceback that continues it (or of a JSON record's `exc_info`,
    /// `exc_text`, `exception` or `stack_info`), where the exception that
    /// ended the request is named. The other traceback lines quote source
    /// code (`raise HTTPException(401, "Could not validate credentials")`)
    /// and are not searched: they would make any error raised through that
    /// code look like what the code mentions.
    pub fn searchable(&self) -> Cow<'_, str> {
        // A dict or JSON document printed over several lines (an MSAL error
        // result) is data, not a traceback: all of it is searched.
        // Not `[`: gunicorn's `[date] [pid] [ERROR]` lines start with it,
        // and their tracebacks quote source code.
        if self.format == RecordFormat::Plain
            && self.continuation.is_some()
            && self.raw.trim_start().starts_with('{')
        {
            return Cow::Borrowed(self.raw);
        }
        let rest = self.continuation.or_else(|| match self.json.as_ref()? {
            // One pass over the fields: this runs for most records.
            Json::Object(fields) => fields.iter().find_map(|(k, v)| {
                let traceback = k.starts_with("exc") || k == "exception" || k == "stack_info";
                traceback.then(|| v.as_str()).flatten()
            }),
            _ => None,
        });
        let Some(rest) = rest else {
            return Cow::Borrowed(&self.message);
        };
        let mut text: Option<String> = None;
        for line in rest.lines().filter(|l| is_exception_line(l)) {
            let t = text.get_or_insert_with(|| self.message.to_string());
            if !t.is_empty() {
                t.push('\n');
            }
            t.push_str(line);
        }
        text.map_or(Cow::Borrowed(&self.message), Cow::Owned)
    }

    /// ERROR and CRITICAL records (case-insensitive; `FATAL` counts as critical).
    pub fn is_error(&self) -> bool {
        ["ERROR", "CRITICAL", "FATAL"]
            .iter()
            .any(|l| self.level.eq_ignore_ascii_case(l))
    }
}

/// Suffixes of Python exception class names (`sqlalchemy.exc.TimeoutError`).
const EXCEPTION_SUFFIXES: [&str; 7] = [
    "Error",
    "Exception",
    "Warning",
    "Exit",
    "Interrupt",
    "Timeout",
    "Group",
];

/// `name.space.SomeError` alone or followed by `: message`: the line that
/// names the exception a Python traceback ends with.
pub fn is_exception_line(line: &str) -> bool {
    let head = line.split_once(':').map_or(line, |(h, _)| h);
    let head = head.trim_end_matches('\r');
    !head.is_empty()
        && head.len() <= 200
        && head
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && {
            let last = head.rsplit('.').next().unwrap_or(head);
            EXCEPTION_SUFFIXES.iter().any(|s| last.ends_with(s))
        }
}
