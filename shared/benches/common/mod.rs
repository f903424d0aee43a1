//! What the pipeline benches share: a log mix shaped like
//! `shared/bench/gen_logs.py` and the subscription payload carrying it.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use shared::domain::logs::record::LogEvent;

/// A mix shaped like `shared/bench/gen_logs.py`: mostly JSON security and
/// performance records, some Python text records.
pub fn messages(i: usize) -> String {
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
