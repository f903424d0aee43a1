//! What the replay CLI tests share: a scratch directory, gzip, the
//! CloudWatch Logs subscription envelope, and running the binary.
// Each test binary uses a part of it.
#![allow(dead_code)]

use monitoring_core::domain::logs::record::LogEvent;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

/// A scratch directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_else(|e| panic!("gzip: {e}"))
}

/// A CloudWatch Logs subscription payload (the Lambda event, as the bytes
/// of a file) carrying `events`.
pub fn subscription_payload(events: Vec<LogEvent>) -> Vec<u8> {
    test_support::logs::payload_bytes("app", events)
}

/// Runs replay with `extra` options on `args`, without a redaction key.
pub fn replay(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay-cli"))
        .args(extra)
        .args(args)
        .env_remove("REPLAY_REDACTION_KEY")
        .output()
        .unwrap_or_else(|e| panic!("cannot run replay: {e}"))
}

pub fn json_output(out: &Output) -> BTreeMap<String, Value> {
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("replay JSON: {e}"))
}
