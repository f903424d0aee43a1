//! Revocation where BlindspotX checks it: a row in its `blocklistedtoken`
//! table (LOG-CONTRACT.md section 4; the row itself is decided in
//! `domain::security_response::blocklist`).
//!
//! Each revocation, on its own connection (at most a handful per
//! incident, under the guard rails' caps):
//! 1. `INSERT ... ON CONFLICT DO NOTHING`: the row's id is derived from the
//!    incident and the user, so a redelivery inserts nothing;
//! 2. the row is read back by its id (what is really there, also after a
//!    redelivery);
//! 3. the service's own check runs for a token of the user (any `jti`):
//!    the revocation counts only when that check now rejects it.
//!
//! The connection uses its own secret (`BLOCKLIST_DATABASE_URL`) for a role
//! holding exactly `INSERT, SELECT` on that one table: the responder can
//! add revocations and see them, not lift or alter them, and reads nothing
//! else of the service's data. Connection and TLS are the database
//! probe's ([`PostgresConnector`]). The columns are the service's: `id` and
//! `user_id` UUID, `expires_at` and `created_at` `timestamp` (without time
//! zone, UTC), the rest `varchar`.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::probes::postgres::PostgresConnector;
use monitoring_core::config::{ConfigError, Secret};
use monitoring_core::domain::probe_result::Reason;
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::domain::security_response::blocklist::{BlocklistEntry, Verification};
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::RevokeError;

/// The write: nothing when a row with this id (or any other unique key the
/// deployment added) is there already.
pub const INSERT_SQL: &str = "INSERT INTO blocklistedtoken \
     (id, jti, token_type, user_id, expires_at, reason, created_at) \
     VALUES ($1::text::uuid, $2, $3, $4::text::uuid, $5, $6, $7) \
     ON CONFLICT DO NOTHING";

/// The read-back of the row by its id.
pub const READ_BACK_SQL: &str = "SELECT id::text, jti, token_type, user_id::text, \
     expires_at, reason, created_at FROM blocklistedtoken WHERE id = $1::text::uuid";

/// The service's check of a token (`$1` its `jti`, `$2` its `uid` claim).
pub const SERVICE_CHECK_SQL: &str = "SELECT count(*) FROM blocklistedtoken \
     WHERE jti = $1 OR (user_id = $2::text::uuid AND token_type = 'all')";

/// The `jti` the verification asks about: no real token has it (the
/// service's are UUIDs), so only the user-wide `all` row can match, as for
/// any token of the user.
pub const VERIFY_JTI: &str = "blindspotx-monitoring:any-token";

/// Lifetime of the rows and time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlocklistSettings {
    /// `expires_at` minus `created_at`: at least the refresh-token
    /// lifetime (one year by default, as the service does).
    pub lifetime: Duration,
    /// Connecting, and each statement.
    pub timeout: Duration,
}

impl Default for BlocklistSettings {
    fn default() -> Self {
        BlocklistSettings {
            lifetime: monitoring_core::domain::security_response::blocklist::DEFAULT_LIFETIME,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What a write found and left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocklistWrite {
    /// The row as read back from the table.
    pub stored: BlocklistEntry,
    pub verification: Verification,
}

pub struct BlocklistRevoker {
    /// `None`: no database configured; rows can be shown (dry-run) but
    /// not written.
    connector: Option<PostgresConnector>,
    settings: BlocklistSettings,
    scrubber: Scrubber,
}

impl BlocklistRevoker {
    /// `database` is the `BLOCKLIST_DATABASE_URL` secret (`None` in a
    /// dry-run without one); `tls` the probes' client configuration.
    pub fn new(
        database: Option<&Secret>,
        tls: Arc<ClientConfig>,
        settings: BlocklistSettings,
    ) -> Result<Self, ConfigError> {
        let mut secrets = Vec::new();
        let connector = match database {
            None => None,
            Some(url) => {
                secrets.push(url.expose().to_owned());
                if let Ok(config) = url.expose().parse::<tokio_postgres::Config>()
                    && let Some(pw) = config.get_password()
                    && !pw.is_empty()
                {
                    secrets.push(String::from_utf8_lossy(pw).into_owned());
                }
                Some(PostgresConnector::new(url, tls).map_err(|e| match e {
                    ConfigError::InvalidSecret { reason, .. } => ConfigError::InvalidSecret {
                        var: "BLOCKLIST_DATABASE_URL".into(),
                        reason,
                    },
                    other => other,
                })?)
            }
        };
        Ok(BlocklistRevoker {
            connector,
            settings,
            scrubber: Scrubber::new(secrets),
        })
    }

    pub fn settings(&self) -> &BlocklistSettings {
        &self.settings
    }

    /// Whether rows can be written (a database is configured).
    pub fn can_write(&self) -> bool {
        self.connector.is_some()
    }

    /// Writes `entry` (nothing when it is there already), reads it back and
    /// runs the service's check. Unreachable or timed out: `Unavailable`
    /// (Lambda retries; the write is idempotent). Refused by the database
    /// (no privilege, no such table, a column of another type) or a
    /// read-back that does not show the revocation: `Refused`, for a human.
    pub async fn write(&self, entry: &BlocklistEntry) -> Result<BlocklistWrite, RevokeError> {
        let Some(connector) = &self.connector else {
            return Err(RevokeError::Refused(
                "no blocklist database configured (BLOCKLIST_DATABASE_URL)".into(),
            ));
        };
        let limit = self.settings.timeout.saturating_mul(4);
        match tokio::time::timeout(limit, self.write_on(connector, entry)).await {
            Ok(result) => result.map_err(|e| self.scrub(e)),
            Err(_) => Err(RevokeError::Unavailable(format!(
                "blocklist database did not answer within {} s",
                limit.as_secs()
            ))),
        }
    }

    /// The service's check for a token of `user_id` with `jti`: how many
    /// rows reject it.
    pub async fn check(&self, jti: &str, user_id: &str) -> Result<i64, RevokeError> {
        let Some(connector) = &self.connector else {
            return Err(RevokeError::Refused(
                "no blocklist database configured (BLOCKLIST_DATABASE_URL)".into(),
            ));
        };
        let run = async {
            let client = connect(connector).await?;
            let row = client
                .query_one(SERVICE_CHECK_SQL, &[&jti, &user_id])
                .await
                .map_err(|e| sql_error(&e, "the service's check"))?;
            Ok::<i64, RevokeError>(row.get(0))
        };
        match tokio::time::timeout(self.settings.timeout.saturating_mul(2), run).await {
            Ok(result) => result.map_err(|e| self.scrub(e)),
            Err(_) => Err(RevokeError::Unavailable(
                "blocklist database timed out".into(),
            )),
        }
    }

    async fn write_on(
        &self,
        connector: &PostgresConnector,
        entry: &BlocklistEntry,
    ) -> Result<BlocklistWrite, RevokeError> {
        let client = connect(connector).await?;
        let inserted = client
            .execute(
                INSERT_SQL,
                &[
                    &entry.id,
                    &entry.jti,
                    &entry.token_type,
                    &entry.user_id,
                    &naive_utc(entry.expires_at),
                    &entry.reason,
                    &naive_utc(entry.created_at),
                ],
            )
            .await
            .map_err(|e| sql_error(&e, "the insert"))?;
        let stored = client
            .query_opt(READ_BACK_SQL, &[&entry.id])
            .await
            .map_err(|e| sql_error(&e, "the read-back"))?
            .ok_or_else(|| {
                RevokeError::Refused(format!(
                    "row {} is not in blocklistedtoken after the insert (another unique key \
                     conflicted, or the role cannot see it): nothing verified",
                    entry.id
                ))
            })?;
        let stored = BlocklistEntry {
            id: stored.get(0),
            jti: stored.get(1),
            token_type: stored.get(2),
            user_id: stored.get::<_, Option<String>>(3).unwrap_or_default(),
            expires_at: stored
                .get::<_, Option<PrimitiveDateTime>>(4)
                .map(PrimitiveDateTime::assume_utc)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: stored.get::<_, Option<String>>(5).unwrap_or_default(),
            created_at: stored
                .get::<_, Option<PrimitiveDateTime>>(6)
                .map(PrimitiveDateTime::assume_utc)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        let matching: i64 = client
            .query_one(SERVICE_CHECK_SQL, &[&VERIFY_JTI, &entry.user_id])
            .await
            .map_err(|e| sql_error(&e, "the service's check"))?
            .get(0);
        let verification = Verification {
            query: format!(
                "{SERVICE_CHECK_SQL} -- $1 = '{VERIFY_JTI}' (any token), $2 = '{}'",
                entry.user_id
            ),
            matching_rows: matching,
            tokens_rejected: matching > 0,
            inserted: inserted > 0,
            checked_at: rfc3339_millis(OffsetDateTime::now_utc()),
        };
        if stored.user_id != entry.user_id || stored.token_type != entry.token_type {
            return Err(RevokeError::Refused(format!(
                "row {} in blocklistedtoken is not this revocation (user {:?}, token_type {:?})",
                entry.id, stored.user_id, stored.token_type
            )));
        }
        if !verification.tokens_rejected {
            return Err(RevokeError::Refused(format!(
                "row {} was written but the service's check does not match it",
                entry.id
            )));
        }
        Ok(BlocklistWrite {
            stored,
            verification,
        })
    }

    fn scrub(&self, e: RevokeError) -> RevokeError {
        match e {
            RevokeError::Refused(m) => RevokeError::Refused(self.scrubber.scrub(&m)),
            RevokeError::Unavailable(m) => RevokeError::Unavailable(self.scrubber.scrub(&m)),
        }
    }
}

async fn connect(connector: &PostgresConnector) -> Result<tokio_postgres::Client, RevokeError> {
    connector.connect().await.map_err(|failed| {
        let detail = format!(
            "blocklist database: {}",
            failed.detail.unwrap_or_else(|| "connection failed".into())
        );
        match failed.reason {
            // Wrong credentials do not heal on a retry: a human fixes the secret.
            Some(Reason::AuthenticationFailed) => RevokeError::Refused(detail),
            _ => RevokeError::Unavailable(detail),
        }
    })
}

/// Transient classes (connection, resources, shutdown, serialization) are
/// worth a retry; any other database error is a refusal.
fn sql_error(err: &tokio_postgres::Error, step: &str) -> RevokeError {
    let Some(code) = err.code() else {
        return RevokeError::Unavailable(format!("blocklist database: {step} failed: {err}"));
    };
    let message = err
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| err.to_string());
    let text = format!(
        "blocklist database: {step} failed: SQLSTATE {}: {message}",
        code.code()
    );
    let class = &code.code()[..2.min(code.code().len())];
    if matches!(class, "08" | "53" | "57" | "40") {
        RevokeError::Unavailable(text)
    } else {
        RevokeError::Refused(text)
    }
}

/// The service's `timestamp` columns hold UTC without a zone.
fn naive_utc(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::tls;

    #[test]
    fn a_bad_url_names_the_blocklist_variable_without_the_value() {
        let err = BlocklistRevoker::new(
            Some(&Secret::new("postgres://u:hunter2@h:notaport/db")),
            tls::client_config(None).unwrap(),
            BlocklistSettings::default(),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("BLOCKLIST_DATABASE_URL"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn without_a_database_nothing_is_written() {
        let r = BlocklistRevoker::new(
            None,
            tls::client_config(None).unwrap(),
            BlocklistSettings::default(),
        )
        .unwrap();
        assert!(!r.can_write());
        assert!(matches!(
            r.check("j", "00000000-0000-4000-8000-000000000001").await,
            Err(RevokeError::Refused(_))
        ));
    }
}
