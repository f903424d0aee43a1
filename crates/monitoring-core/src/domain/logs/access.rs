//! HTTP access-log lines as records with fields, so rules read them like
//! JSON records (`$.method`, `$.endpoint`, `$.status_code`, ...):
//!
//! - uvicorn's default access log, as a plain line
//!   (`INFO:     203.0.113.9:51234 - "POST /api/auth/login HTTP/1.1" 401 Unauthorized`)
//!   or as the message of a Python-logging record of `uvicorn.access`;
//! - the common and combined log formats (gunicorn's default access log,
//!   nginx, Apache): `203.0.113.9 - - [20/May/2025:10:30:00 +0000] "GET /x HTTP/1.1" 200 512 "-" "curl/8.0"`,
//!   optionally followed by a request time in seconds or microseconds.
//!
//! The fields: `method`, `endpoint` (the path without its query string),
//! `status_code` and `ip_address` always; `bytes`, `referer`,
//! `user_agent` and `duration_ms` when the line has them. The `message` of
//! such a record is [`ACCESS_MESSAGE`].

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Number;

use super::json::{Fields, Json};

/// The message of every access-log record.
pub const ACCESS_MESSAGE: &str = "HTTP request";
/// The logger of access lines that name none (common/combined format).
pub const ACCESS_LOGGER: &str = "access";

/// Longest line tried as an access line: longer ones (a hostile URL) are
/// not parsed for fields, and stay plain records.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// uvicorn: `<ip>:<port> - "<METHOD> <path> HTTP/<v>" <status>[ <reason>]`.
static UVICORN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"^(\S+?):\d+ - "([A-Z]{3,10}) (\S+) HTTP/[0-9.]+" (\d{3})(?: [A-Za-z' -]{0,40})?$"#,
    )
    .ok()
});

/// Common/combined log format, with an optional request time.
static CLF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"^(\S+) \S+ \S+ \[([^\]]{1,64})\] "([A-Z]{3,10}) (\S+)(?: [A-Z]+/[0-9.]+)?" (\d{3}) (\d+|-)"#,
        r#"(?: "([^"]*)" "([^"]*)")?(?: (\d+(?:\.\d+)?))?$"#
    ))
    .ok()
});

/// What an access line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Access<'a> {
    pub level: Option<&'a str>,
    pub fields: Fields<'a>,
    /// The common log format's `[20/May/2025:10:30:00 +0000]`, epoch ms.
    pub time_ms: Option<i64>,
}

/// uvicorn's access line as a plain line (`INFO:     <message>`).
pub fn plain_uvicorn(line: &str) -> Option<Access<'_>> {
    let (level, rest) = line.split_once(':')?;
    if !matches!(level, "INFO" | "WARNING" | "ERROR" | "DEBUG" | "CRITICAL") {
        return None;
    }
    let mut access = uvicorn_message(rest.trim_start())?;
    access.level = Some(level);
    Some(access)
}

/// uvicorn's access message (the text after the level).
pub fn uvicorn_message(message: &str) -> Option<Access<'_>> {
    // Cheap rejections first: most messages are not access lines.
    if message.len() > MAX_LINE_BYTES || !message.contains(" HTTP/") {
        return None;
    }
    let c = UVICORN.as_ref()?.captures(message)?;
    let mut fields = request_fields(c.get(2)?.as_str(), c.get(3)?.as_str(), c.get(4)?.as_str())?;
    fields.push((Cow::Borrowed("ip_address"), string(c.get(1)?.as_str())));
    Some(Access {
        level: None,
        fields,
        time_ms: None,
    })
}

/// A common or combined log format line.
pub fn common_log(line: &str) -> Option<Access<'_>> {
    if line.len() > MAX_LINE_BYTES || !line.contains("] \"") {
        return None;
    }
    let c = CLF.as_ref()?.captures(line)?;
    let mut fields = request_fields(c.get(3)?.as_str(), c.get(4)?.as_str(), c.get(5)?.as_str())?;
    fields.push((Cow::Borrowed("ip_address"), string(c.get(1)?.as_str())));
    if let Some(bytes) = c.get(6).and_then(|m| m.as_str().parse::<u64>().ok()) {
        fields.push((Cow::Borrowed("bytes"), Json::Number(bytes.into())));
    }
    for (name, at) in [("referer", 7), ("user_agent", 8)] {
        if let Some(m) = c.get(at).filter(|m| m.as_str() != "-") {
            fields.push((Cow::Borrowed(name), string(m.as_str())));
        }
    }
    if let Some(n) = c
        .get(9)
        .and_then(|m| duration_ms(m.as_str()))
        .and_then(Number::from_f64)
    {
        fields.push((Cow::Borrowed("duration_ms"), Json::Number(n)));
    }
    Some(Access {
        level: None,
        fields,
        time_ms: c.get(2).and_then(|m| clf_time(m.as_str())),
    })
}

fn string(s: &str) -> Json<'_> {
    Json::String(Cow::Borrowed(s))
}

fn request_fields<'a>(method: &'a str, target: &'a str, status: &'a str) -> Option<Fields<'a>> {
    let status: u16 = status.parse().ok()?;
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Some(vec![
        (Cow::Borrowed("message"), string(ACCESS_MESSAGE)),
        (Cow::Borrowed("method"), string(method)),
        (Cow::Borrowed("endpoint"), string(path)),
        (Cow::Borrowed("status_code"), Json::Number(status.into())),
    ])
}

/// A trailing request time: seconds with a fraction (`0.042`, nginx's
/// `$request_time`) or whole microseconds (gunicorn's `%(D)s`).
fn duration_ms(text: &str) -> Option<f64> {
    if text.contains('.') {
        text.parse::<f64>().ok().map(|s| s * 1000.0)
    } else {
        text.parse::<u64>().ok().map(|us| us as f64 / 1000.0)
    }
}

/// `20/May/2025:10:30:00 +0000` → epoch ms.
fn clf_time(text: &str) -> Option<i64> {
    let (date_time, zone) = text.split_once(' ')?;
    let mut parts = date_time.splitn(4, [':', '/']);
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let time = parts.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)?
        + 1;
    let asctime = format!("{year:0>4}-{month:02}-{day:0>2} {time},000");
    let local = super::timestamp::parse_timestamp(&asctime)?;
    let offset = super::timestamp::parse_utc_offset(zone)?;
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(a: &'a Access<'_>, name: &str) -> Option<&'a Json<'a>> {
        a.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    #[test]
    fn the_patterns_compile() {
        assert!(UVICORN.is_some() && CLF.is_some());
    }

    #[test]
    fn uvicorn_lines() {
        let a = plain_uvicorn(
            r#"INFO:     203.0.113.9:51234 - "POST /api/auth/login?next=/x HTTP/1.1" 401 Unauthorized"#,
        )
        .unwrap();
        assert_eq!(a.level, Some("INFO"));
        assert_eq!(field(&a, "method"), Some(&string("POST")));
        assert_eq!(field(&a, "endpoint"), Some(&string("/api/auth/login")));
        assert_eq!(field(&a, "status_code"), Some(&Json::Number(401.into())));
        assert_eq!(field(&a, "ip_address"), Some(&string("203.0.113.9")));
        let m =
            uvicorn_message(r#"198.51.100.23:50112 - "GET /api/drift/reports/9f2e HTTP/1.1" 404"#)
                .unwrap();
        assert_eq!(field(&m, "status_code"), Some(&Json::Number(404.into())));
        // IPv6 with its port.
        let v6 = uvicorn_message(r#"[::1]:50112 - "GET / HTTP/1.1" 200 OK"#).unwrap();
        assert_eq!(field(&v6, "ip_address"), Some(&string("[::1]")));
        for not in [
            "INFO:     Started server process [7]",
            "Application startup complete.",
            r#"INFO:     203.0.113.9:51234 - "POST /x HTTP/1.1" abc"#,
        ] {
            assert!(
                plain_uvicorn(not).is_none() && uvicorn_message(not).is_none(),
                "{not}"
            );
        }
    }

    #[test]
    fn common_and_combined_lines() {
        let a = common_log(
            r#"203.0.113.9 - - [20/May/2025:12:30:00 +0200] "POST /api/auth/login HTTP/1.1" 401 21 "-" "curl/8.0" 0.042"#,
        )
        .unwrap();
        assert_eq!(a.time_ms, Some(1_747_737_000_000));
        assert_eq!(field(&a, "bytes"), Some(&Json::Number(21.into())));
        assert_eq!(field(&a, "user_agent"), Some(&string("curl/8.0")));
        assert_eq!(field(&a, "referer"), None);
        let Some(Json::Number(ms)) = field(&a, "duration_ms") else {
            panic!("no duration")
        };
        assert!((ms.as_f64().unwrap() - 42.0).abs() < 1e-9);
        let c = common_log(
            r#"198.51.100.7 - ana [20/May/2025:10:30:00 +0000] "GET /api/users/42 HTTP/1.0" 200 -"#,
        )
        .unwrap();
        assert_eq!(field(&c, "bytes"), None);
        assert_eq!(field(&c, "status_code"), Some(&Json::Number(200.into())));
        // gunicorn's %(D)s: microseconds.
        let g = common_log(
            r#"10.0.0.1 - - [20/May/2025:10:30:00 +0000] "GET / HTTP/1.1" 200 5 "-" "x" 42000"#,
        )
        .unwrap();
        let Some(Json::Number(us)) = field(&g, "duration_ms") else {
            panic!("no duration")
        };
        assert_eq!(us.as_f64(), Some(42.0));
        assert!(common_log("[2025-05-20 10:30:00 +0000] [7] [INFO] Booting worker").is_none());
    }
}
