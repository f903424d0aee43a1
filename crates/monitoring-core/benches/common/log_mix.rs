//! The log message mix of the pipeline benches and of the cold-start
//! harness (`tools/coldstart`), shaped like `shared/bench/gen_logs.py`
//! (mostly JSON security and performance records, some Python text
//! records), and the subscription payload that carries it.
//!
//! It needs only serde_json, flate2 and base64: the benches use it as a
//! module, and the harness, which does not link `monitoring-core`, includes the file
//! with `#[path]`.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Message `i` of the mix, dated `day` (`YYYY-MM-DD`).
pub fn log_message(i: usize, day: &str) -> String {
    let ip = format!("203.0.113.{}", i % 250 + 1);
    let user = format!("7c0e{:04x}-0000-4000-8000-{:012x}", i % 3000, i % 3000);
    match i % 10 {
        0..=2 => format!(
            r#"{{"timestamp":"{day}T10:30:00.123Z","level":"INFO","logger":"security","message":"Authentication attempt","user_id":"{user}","ip_address":"{ip}","success":{},"method":"password","endpoint":"/api/auth/login","duration_ms":41.7}}"#,
            !i.is_multiple_of(7)
        ),
        3 => format!(
            r#"{{"timestamp":"{day}T10:30:00.123Z","level":"INFO","logger":"security","message":"Token operation","operation":"refresh","token_type":"access","status":"success","user_id":"{user}"}}"#
        ),
        4..=6 => format!(
            r#"{{"timestamp":"{day}T10:30:00.123Z","level":"INFO","logger":"performance","message":"API request completed","endpoint":"/api/users/{}","method":"GET","status_code":200,"duration_ms":55.2}}"#,
            i % 9999
        ),
        7 => format!(
            "{day} 10:30:00,855 - app.core.security - INFO - Access token created for user user{}@example.com, expires at {day} 13:30:00.855515",
            i % 1500
        ),
        8 => format!(
            "{day} 10:30:00,855 - app.api.routes.auth - INFO - Initiating OAuth2 flow with state: 00000000-0000-4000-8000-{i:012x}"
        ),
        _ => format!(
            "{day} 10:30:00,855 - app.core.database - INFO - Database and tables created successfully"
        ),
    }
}

/// `awslogs.data` of a subscription delivery of `events` (id, time in ms,
/// message): the envelope CloudWatch Logs sends, gzip, base64.
pub fn awslogs_data<'a>(
    events: impl IntoIterator<Item = (String, i64, &'a str)>,
) -> std::io::Result<String> {
    let envelope = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/blindspotx/auth",
        "logStream": "app-1",
        "subscriptionFilters": ["blindspotx-monitoring"],
        "logEvents": events.into_iter().map(|(id, timestamp, message)| serde_json::json!({
            "id": id, "timestamp": timestamp, "message": message,
        })).collect::<Vec<_>>(),
    });
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(envelope.to_string().as_bytes())?;
    Ok(STANDARD.encode(gz.finish()?))
}
