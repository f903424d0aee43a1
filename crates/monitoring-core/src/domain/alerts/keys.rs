//! Stable hashes, ids and keys of the alert engine: the event-id hash a
//! window deduplicates by, the window key of a (possibly very long) signal
//! key, and the deterministic incident id. Stored values, so they never
//! change; nothing here depends on the rest of the engine.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// Keys longer than this are shortened (prefix + hash) before they become
/// part of storage keys, which DynamoDB limits to 1 KiB / 2 KiB.
pub const KEY_MAX_BYTES: usize = 200;

/// FNV-1a, 64 bits: stable across processes (the hash is stored), fast, and
/// collisions among a window's few hundred event ids are negligible (the
/// ids come from CloudWatch, not from an adversary).
pub fn event_hash(event_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in event_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The window key of a signal key: itself, or for very long keys a prefix
/// and a hash, so distinct keys stay distinct.
pub fn window_key(key: &str) -> Cow<'_, str> {
    cap_bytes(key, KEY_MAX_BYTES)
}

/// `text` when at most `max` bytes (`max` ≥ 18), else a prefix cut at a
/// character boundary, `~` and a 16-digit hash of the whole text: distinct
/// long values stay distinct, and the result is at most `max` bytes.
pub fn cap_bytes(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub(17);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}~{:016x}", &text[..end], event_hash(text)))
}

/// Deterministic incident id: the same (rule, key, episode, opening event)
/// gives the same id in every invocation, so racing writers agree.
pub fn incident_id(rule: &str, key: &str, episode: u32, opening_event_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [rule, key, &episode.to_string(), opening_event_id] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
