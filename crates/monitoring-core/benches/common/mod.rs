//! What the pipeline benches share: a log mix shaped like
//! `shared/bench/gen_logs.py` and the subscription payload carrying it.

use monitoring_core::domain::logs::record::LogEvent;

mod log_mix;

/// Message `i` of the mix shaped like `shared/bench/gen_logs.py`.
pub fn messages(i: usize) -> String {
    log_mix::log_message(i, "2025-05-20")
}

pub fn events(n: usize) -> Vec<LogEvent> {
    (0..n)
        .map(|i| LogEvent {
            id: format!("{i:056}"),
            timestamp_ms: 1_747_737_000_000 + i as i64,
            message: messages(i),
        })
        .collect()
}

pub fn payload(events: &[LogEvent]) -> String {
    log_mix::awslogs_data(
        events
            .iter()
            .map(|e| (e.id.clone(), e.timestamp_ms, e.message.as_str())),
    )
    .unwrap_or_else(|e| panic!("gzip: {e}"))
}
