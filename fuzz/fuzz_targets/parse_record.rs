//! Fuzzes `RecordParser` over a stream of events cut from one input (so the
//! text-record / continuation state machine sees arbitrary sequences), and
//! `group_lines` over the input's lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::logs::parse::{
    Parsed, RecordParser, RejectReason, group_lines, parse_timestamp, starts_record,
};
use shared::domain::logs::record::LogEvent;

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks the event size limit (0..=255 bytes, or the
    // default when 255) so the Oversized path is reachable.
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

    let mut parser = RecordParser::new(max_event_bytes);
    let mut after_text = false;
    for event in &events {
        match parser.parse(event) {
            Ok(Parsed::Record(record)) => {
                assert_eq!(record.event_id, event.id);
                assert_eq!(record.raw, event.message);
                assert!(event.message.len() <= max_event_bytes);
                if let Some(c) = record.continuation {
                    assert!(event.message.contains(c));
                }
                let _ = record.is_error();
                let _ = record.field("message");
                after_text = record.json.is_none();
            }
            Ok(Parsed::Continuation(line)) => {
                assert!(after_text, "continuation without a text record before it");
                assert_eq!(line, event.message);
            }
            Err(reason) => {
                assert!(!reason.as_str().is_empty());
                if reason == RejectReason::Oversized {
                    assert!(event.message.len() > max_event_bytes);
                }
                after_text = false;
            }
        }
    }

    // group_lines over the whole text: every line ends up in exactly one
    // event, in order.
    let lines: Vec<&str> = text.lines().collect();
    let grouped: Vec<String> = group_lines(lines.iter().copied()).collect();
    assert_eq!(grouped.join("\n"), lines.join("\n"));
    for (i, event) in grouped.iter().enumerate() {
        let first_line = event.split('\n').next().unwrap_or("");
        if i > 0 {
            assert!(starts_record(first_line));
        }
    }

    for line in &lines {
        let _ = parse_timestamp(line);
    }
});
