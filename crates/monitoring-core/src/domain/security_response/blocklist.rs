//! The row the security responder writes into BlindspotX's own token
//! blocklist, decided before any I/O.
//!
//! BlindspotX keeps revocations in its database (LOG-CONTRACT.md section 4):
//! table `blocklistedtoken` (SQLModel class `BlocklistedToken`), and on
//! every authenticated request it rejects a token whose `jti` has a row and
//! every token of a user who has a row with `token_type = 'all'`. Revoking
//! all of a user's tokens is therefore one row, shaped the way the service
//! writes its own:
//!
//! - `token_type` `all`, `user_id` the user's id (a UUID, the service's type);
//! - `jti` `all_tokens_<user_id>_<unix time>`, the service's form. The time
//!   is the incident's first event, not the clock: every delivery of one
//!   incident yields the same `jti`, so the row can be recognised;
//! - `id` a UUID derived from the incident and the user (version 8,
//!   RFC 9562 custom), the primary key: a redelivery's insert conflicts
//!   with the first one and adds nothing;
//! - `reason` `security_incident:<incident id>`: the service's own reason
//!   for this case (`security_incident`), and which incident it was;
//! - `expires_at` `created_at` plus the configured lifetime, one year by
//!   default as the service does (at least the refresh-token lifetime);
//!   `created_at` when the responder acted.
//!
//! The incident must name the user by the id the service checks. The alert
//! rules key `user` by the records' `user_id`, kept as it is (only e-mail
//! addresses and IPs are pseudonymized, and a pseudonym cannot be turned
//! back into anyone). A key that is not a UUID — a pseudonym, an e-mail, a
//! name — names nobody the table can block: the row is refused, and the
//! record says why, rather than writing a row the service never matches.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::alerts::Incident;

/// The service's table (SQLModel's default name for `BlocklistedToken`).
pub const TABLE: &str = "blocklistedtoken";
/// `token_type` of a row that revokes every token of its user.
pub const TOKEN_TYPE_ALL: &str = "all";
/// The service's `reason` for a revocation after a security incident.
pub const REASON: &str = "security_incident";
/// The service's own lifetime of an all-tokens row: one year.
pub const DEFAULT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Why no row can be written for an incident's user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlocklistError {
    /// The key is not the service's user id type.
    #[error(
        "the incident's user key is not a user id the service's blocklist can match (a UUID); \
         a pseudonym or an e-mail cannot be turned back into one: nobody revoked, a human decides"
    )]
    NotAUserId,
    /// The incident's first event time is not RFC 3339 (incidents made by
    /// this bundle always are).
    #[error("the incident's first_event_at {0:?} is not an RFC 3339 time")]
    IncidentTime(String),
    /// `created_at` plus the lifetime is out of range.
    #[error("the blocklist lifetime of {0} s is out of range")]
    Lifetime(u64),
}

/// One row of `blocklistedtoken`, as written (or, in dry-run, as it would
/// be). Times are UTC, to the millisecond, so the row read back from the
/// table equals the row written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistEntry {
    /// Primary key (UUID), derived from the incident and the user.
    pub id: String,
    pub jti: String,
    pub token_type: String,
    /// The user's id (UUID, lower case).
    pub user_id: String,
    #[serde(with = "millis")]
    pub expires_at: OffsetDateTime,
    pub reason: String,
    #[serde(with = "millis")]
    pub created_at: OffsetDateTime,
}

impl BlocklistEntry {
    /// The row revoking every token of `user` for `incident`, written at
    /// `now`, kept for `lifetime`.
    pub fn for_incident(
        incident: &Incident,
        user: &str,
        now: OffsetDateTime,
        lifetime: std::time::Duration,
    ) -> Result<Self, BlocklistError> {
        let user_id = canonical_uuid(user).ok_or(BlocklistError::NotAUserId)?;
        let first_event = OffsetDateTime::parse(&incident.first_event_at, &Rfc3339)
            .map_err(|_| BlocklistError::IncidentTime(incident.first_event_at.clone()))?;
        let created_at = to_millis(now.to_offset(time::UtcOffset::UTC));
        let expires_at = time::Duration::try_from(lifetime)
            .ok()
            .and_then(|d| created_at.checked_add(d))
            .ok_or(BlocklistError::Lifetime(lifetime.as_secs()))?;
        Ok(BlocklistEntry {
            id: entry_id(&incident.id, &user_id),
            jti: format!("all_tokens_{user_id}_{}", first_event.unix_timestamp()),
            token_type: TOKEN_TYPE_ALL.to_owned(),
            reason: format!("{REASON}:{}", incident.id),
            user_id,
            expires_at,
            created_at,
        })
    }
}

/// What the responder saw when it read the table back, the way the service
/// checks a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The query run, with its parameters named.
    pub query: String,
    /// Rows the service's check matched for a token of the user.
    pub matching_rows: i64,
    /// Whether the service now rejects every token of the user.
    pub tokens_rejected: bool,
    /// `true`: this delivery inserted the row; `false`: it was there
    /// already (a redelivery, or an earlier attempt that failed later).
    pub inserted: bool,
    /// When the check ran (RFC 3339).
    pub checked_at: String,
}

/// `user` as the service writes a UUID (`str(uuid)`: lower case with
/// hyphens), or `None` when it is not one.
pub fn canonical_uuid(user: &str) -> Option<String> {
    let bytes = user.as_bytes();
    let shaped = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    shaped.then(|| user.to_ascii_lowercase())
}

/// The row's primary key: the first 128 bits of SHA-256 over the incident
/// and the user, marked as a version-8 (custom) UUID of the RFC variant.
fn entry_id(incident_id: &str, user_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"blindspotx-monitoring/blocklist/v1\0");
    hash.update(incident_id.as_bytes());
    hash.update(b"\0");
    hash.update(user_id.as_bytes());
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `at` without its sub-millisecond part.
fn to_millis(at: OffsetDateTime) -> OffsetDateTime {
    at - time::Duration::nanoseconds(i64::from(at.nanosecond() % 1_000_000))
}

/// Times in the record: RFC 3339, UTC, milliseconds (the bundle's format).
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::timefmt::rfc3339_millis(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::{Severity, TransitionKind};
    use crate::domain::security_response::payloads::tests::incident;
    use time::macros::datetime;

    const USER: &str = "7C0E4F2A-0000-4000-8000-00000000ABCD";

    fn entry(now: OffsetDateTime) -> BlocklistEntry {
        let i = incident(TransitionKind::Firing, Severity::Critical);
        BlocklistEntry::for_incident(&i, USER, now, DEFAULT_LIFETIME).unwrap()
    }

    #[test]
    fn the_row_is_shaped_like_the_services_own() {
        let e = entry(datetime!(2026-11-30 08:05:00.123456 UTC));
        let user = "7c0e4f2a-0000-4000-8000-00000000abcd";
        assert_eq!(e.user_id, user);
        assert_eq!(e.token_type, "all");
        // first_event_at of the test incident: 2026-11-30T08:00:00Z.
        assert_eq!(e.jti, format!("all_tokens_{user}_1796025600"));
        assert_eq!(
            e.reason,
            "security_incident:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(e.created_at, datetime!(2026-11-30 08:05:00.123 UTC));
        assert_eq!(e.expires_at, datetime!(2027-11-30 08:05:00.123 UTC));
        assert!(canonical_uuid(&e.id).is_some(), "{}", e.id);
        assert_eq!(&e.id[14..15], "8", "version 8: {}", e.id);
        assert!(matches!(&e.id[19..20], "8" | "9" | "a" | "b"), "{}", e.id);
    }

    #[test]
    fn every_delivery_of_an_incident_names_the_same_row() {
        let a = entry(datetime!(2026-11-30 08:05 UTC));
        let b = entry(datetime!(2026-11-30 09:30 UTC));
        assert_eq!((&a.id, &a.jti), (&b.id, &b.jti));
        let mut other = incident(TransitionKind::Firing, Severity::Critical);
        other.id = "ffffffffffffffffffffffffffffffff".into();
        let c = BlocklistEntry::for_incident(
            &other,
            USER,
            datetime!(2026-11-30 08:05 UTC),
            DEFAULT_LIFETIME,
        )
        .unwrap();
        assert_ne!(a.id, c.id, "another incident is another row");
        let d = BlocklistEntry::for_incident(
            &incident(TransitionKind::Firing, Severity::Critical),
            "00000000-0000-4000-8000-000000000001",
            datetime!(2026-11-30 08:05 UTC),
            DEFAULT_LIFETIME,
        )
        .unwrap();
        assert_ne!(a.id, d.id, "another user is another row");
    }

    #[test]
    fn keys_that_are_not_user_ids_name_nobody() {
        let i = incident(TransitionKind::Firing, Severity::Critical);
        let now = datetime!(2026-11-30 08:05 UTC);
        for key in [
            "u-victim",
            "email:0123456789ab",
            "alice@example.org",
            "7c0e4f2a00004000800000000000abcd",
            "7c0e4f2a-0000-4000-8000-00000000abcg",
            "{7c0e4f2a-0000-4000-8000-00000000abcd}",
        ] {
            assert_eq!(
                BlocklistEntry::for_incident(&i, key, now, DEFAULT_LIFETIME),
                Err(BlocklistError::NotAUserId),
                "{key}"
            );
        }
        let mut bad_time = i.clone();
        bad_time.first_event_at = "t".into();
        assert!(matches!(
            BlocklistEntry::for_incident(&bad_time, USER, now, DEFAULT_LIFETIME),
            Err(BlocklistError::IncidentTime(_))
        ));
    }

    #[test]
    fn entries_round_trip_through_the_record() {
        let e = entry(datetime!(2026-11-30 08:05:00.5 UTC));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["created_at"], "2026-11-30T08:05:00.500Z");
        assert_eq!(v["expires_at"], "2027-11-30T08:05:00.500Z");
        let back: BlocklistEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
