//! Cost of the log pipeline per event: a subscription payload decoded
//! (base64 + gzip + envelope) and run through the default rules, and the
//! same events without the decoding. Run with
//! `cargo bench -p shared --bench pipeline`.

use std::hint::black_box;
use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use shared::domain::logs::decode::decode_awslogs_data;
use shared::domain::logs::record::LogEvent;
use shared::domain::logs::redact::Redactor;
use shared::domain::metrics::aggregate::CardinalityGuard;
use shared::domain::pipeline::process_events;
use shared::domain::rules::RuleSet;

/// A mix shaped like `shared/bench/gen_logs.py`: mostly JSON security and
/// performance records, some Python text records.
fn messages(i: usize) -> String {
    let ip = format!("203.0.113.{}", i % 250 + 1);
    let user = format!("7c0e{:04x}-0000-4000-8000-{:012x}", i % 3000, i % 3000);
    match i % 10 {
        0..=2 => format!(
            r#"{{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"security","message":"Authentication attempt","user_id":"{user}","ip_address":"{ip}","success":{},"method":"password","endpoint":"/api/auth/login","duration_ms":41.7}}"#,
            !i.is_multiple_of(7)
        ),
        3 => format!(
            r#"{{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"security","message":"Token operation","operation":"refresh","token_type":"access","status":"success","user_id":"{user}"}}"#
        ),
        4..=6 => format!(
            r#"{{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/users/{}","method":"GET","status_code":200,"duration_ms":55.2}}"#,
            i % 9999
        ),
        7 => format!(
            "2025-05-18 07:42:54,855 - app.core.security - INFO - Access token created for user user{}@example.com, expires at 2025-05-18 10:42:54.855515",
            i % 1500
        ),
        8 => format!(
            "2025-05-18 07:42:54,855 - app.api.routes.auth - INFO - Initiating OAuth2 flow with state: 00000000-0000-4000-8000-{i:012x}"
        ),
        _ => "2025-05-18 07:42:54,855 - app.core.database - INFO - Database and tables created successfully".to_owned(),
    }
}

fn events(n: usize) -> Vec<LogEvent> {
    (0..n)
        .map(|i| LogEvent {
            id: format!("{i:056}"),
            timestamp_ms: 1_747_737_000_000 + i as i64,
            message: messages(i),
        })
        .collect()
}

fn payload(events: &[LogEvent]) -> String {
    let envelope = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/blindspotx/auth",
        "logStream": "app-1",
        "subscriptionFilters": ["blindspotx-monitoring"],
        "logEvents": events.iter().map(|e| serde_json::json!({
            "id": e.id, "timestamp": e.timestamp_ms, "message": e.message,
        })).collect::<Vec<_>>(),
    });
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(envelope.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    STANDARD.encode(gz.finish().unwrap_or_else(|e| panic!("gzip: {e}")))
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::default_rules().unwrap_or_else(|e| panic!("{e}"));
    let redactor = Redactor::new(b"bench-redaction-key-0123").unwrap_or_else(|e| panic!("{e}"));
    let batch = events(5_000);
    let data = payload(&batch);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("events_through_default_rules", |b| {
        b.iter(|| {
            let mut guard = CardinalityGuard::default();
            black_box(process_events(
                &batch,
                &rules,
                &redactor,
                &mut guard,
                256 * 1024,
            ))
        })
    });
    group.bench_function("subscription_payload_end_to_end", |b| {
        b.iter(|| {
            let decoded = decode_awslogs_data(&data, 32 << 20).unwrap_or_else(|e| panic!("{e}"));
            let mut guard = CardinalityGuard::default();
            black_box(process_events(
                &decoded.events,
                &rules,
                &redactor,
                &mut guard,
                256 * 1024,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
