//! Fuzzes `decode_awslogs_data` three ways from one input:
//! 1. the input itself as `awslogs.data` (lossy UTF-8): base64 edge cases;
//! 2. the input base64-encoded: the gzip magic check and gzip decoding of
//!    arbitrary bytes (the input usually has to start with 1f 8b);
//! 3. the input gzip-compressed then base64-encoded: the JSON envelope
//!    parser on arbitrary decompressed bytes, with a small size limit so the
//!    `TooLarge` path is reached too.
#![no_main]

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use monitoring_core::domain::logs::decode::{DecodeError, decode_awslogs_data};

const LIMIT: usize = 1 << 20;

fn check(data: &str, limit: usize) {
    match decode_awslogs_data(data, limit) {
        Ok(batch) => {
            let _ = batch.events.iter().map(|e| e.message.len()).sum::<usize>();
        }
        Err(e) => {
            assert!(!e.reason().is_empty());
            if let DecodeError::TooLarge { limit: l } = e {
                assert_eq!(l, limit);
            }
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    check(&text, LIMIT);

    let encoded = STANDARD.encode(bytes);
    check(&encoded, LIMIT);

    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    if gz.write_all(bytes).is_ok()
        && let Ok(compressed) = gz.finish()
    {
        let encoded = STANDARD.encode(&compressed);
        check(&encoded, LIMIT);
        // A limit just under the JSON length exercises the size guard.
        check(&encoded, bytes.len().saturating_sub(1));
    }
});
