//! Fuzzes `RecordParser` over a stream of events cut from one input, and
//! `group_lines` over the input's lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitoring_core::domain::logs::parse::{
    ParseSettings, RecordParser, group_lines, is_json_event, joins_previous, parse_timestamp,
};
use monitoring_core::domain::logs::record::LogEvent;

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks the event size limit (0..=255 bytes, or the
    // default when 255) so the truncation path is reachable.
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let max_event_bytes = if first == 255 {
        256 * 1024
    } else {
        usize::from(first) * 4
    };
    let text = String::from_utf8_lossy(rest);

    // Events are separated by NUL bytes (a NUL inside an event would be
    // "binary" anyway, and this keeps newlines inside events for tracebacks).
    let events: Vec<LogEvent> = text
        .split('\u{0}')
        .enumerate()
        .map(|(i, message)| LogEvent {
            id: i.to_string(),
            timestamp_ms: i64::try_from(i).unwrap_or(0) * 1000,
            message: message.to_owned(),
        })
        .collect();

    let mut parser = RecordParser::new(ParseSettings {
        max_event_bytes,
        ..ParseSettings::default()
    });
    for event in &events {
        match parser.parse(event) {
            Ok(record) => {
                assert_eq!(record.event_id, event.id);
                assert!(event.message.starts_with(record.raw));
                assert!(record.raw.len() <= max_event_bytes.max(1));
                if let Some(c) = record.continuation {
                    assert!(event.message.contains(c));
                }
                // The message, then the traceback's exception lines: each
                // line is a part of the event unless it came from JSON.
                let searchable = record.searchable();
                assert!(
                    searchable.lines().all(|l| record.raw.contains(l)) || record.json.is_some()
                );
                let _ = record.is_error();
                let _ = record.field("message");
            }
            Err(reason) => assert!(!reason.as_str().is_empty()),
        }
    }

    // group_lines over the whole text: every line ends up in exactly one
    // event, in order.
    let lines: Vec<&str> = text.lines().collect();
    let grouped: Vec<String> = group_lines(lines.iter().copied()).collect();
    assert_eq!(grouped.join("\n"), lines.join("\n"));
    for pair in grouped.windows(2) {
        let first_line = pair[1].split('\n').next().unwrap_or("");
        assert!(!joins_previous(is_json_event(&pair[0]), first_line));
    }

    for line in &lines {
        let _ = parse_timestamp(line);
    }
});
