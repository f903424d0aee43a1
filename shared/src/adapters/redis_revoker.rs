//! Revocation in the auth service's Redis: BlindspotX keeps a user's
//! refresh tokens under `refresh_token:<user id>` (and per-session
//! `refresh_token:<user id>:<session>` keys). Revoking deletes them and
//! writes `revoked:user:<user id>` with a TTL, the deny-list entry the auth
//! service checks; the TTL should be at least the refresh-token lifetime.
//!
//! User ids reach here only after `domain::response::revocation::
//! is_revocable_id` (no `:`, `*`, `?`, `[`), so the SCAN pattern cannot
//! match another user's keys.

use std::time::Duration;

use redis::AsyncCommands;

use crate::config::{ConfigError, Secret};
use crate::ports::{Revocation, RevokeError, Revoker};

/// Key layout and deny-list lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRevokerSettings {
    /// Prefix of refresh-token keys (`refresh_token:`).
    pub token_prefix: String,
    /// Prefix of deny-list entries (`revoked:user:`).
    pub deny_prefix: String,
    /// Lifetime of a deny-list entry.
    pub deny_ttl: Duration,
    /// Per Redis command.
    pub timeout: Duration,
}

impl Default for RedisRevokerSettings {
    fn default() -> Self {
        RedisRevokerSettings {
            token_prefix: "refresh_token:".to_owned(),
            deny_prefix: "revoked:user:".to_owned(),
            deny_ttl: Duration::from_secs(7 * 24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

pub struct RedisRevoker {
    client: redis::Client,
    settings: RedisRevokerSettings,
}

impl RedisRevoker {
    pub fn new(url: &Secret, settings: RedisRevokerSettings) -> Result<Self, ConfigError> {
        let client = redis::Client::open(url.expose()).map_err(|e| ConfigError::InvalidSecret {
            var: "REVOKE_REDIS_URL".into(),
            reason: format!("not a Redis URL ({:?})", e.kind()),
        })?;
        Ok(RedisRevoker { client, settings })
    }

    async fn revoke(
        &self,
        user_id: &str,
        incident_id: &str,
    ) -> Result<Revocation, redis::RedisError> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let exact = format!("{}{user_id}", self.settings.token_prefix);
        let pattern = format!("{exact}:*");
        let mut keys: Vec<String> = Vec::new();
        {
            let mut iter: redis::AsyncIter<'_, String> = conn.scan_match(&pattern).await?;
            while let Some(item) = futures::StreamExt::next(&mut iter).await {
                keys.push(item?);
            }
        }
        keys.push(exact);
        keys.sort();
        keys.dedup();
        let deleted: u64 = conn.del(&keys).await?;
        let deny_key = format!("{}{user_id}", self.settings.deny_prefix);
        let deny_value = serde_json::json!({
            "reason": "blindspotx security incident",
            "incident_id": incident_id,
            "revoked_at": crate::domain::timefmt::rfc3339_millis(time::OffsetDateTime::now_utc()),
        })
        .to_string();
        let _: () = conn
            .set_ex(
                &deny_key,
                deny_value,
                self.settings.deny_ttl.as_secs().max(1),
            )
            .await?;
        Ok(Revocation {
            detail: format!(
                "deleted {deleted} refresh-token key(s) {}{user_id}[:*]; wrote {deny_key} for {} s",
                self.settings.token_prefix,
                self.settings.deny_ttl.as_secs()
            ),
            undo: format!(
                "DEL {deny_key} to lift the deny-list entry; the deleted refresh tokens cannot be restored, the user signs in again"
            ),
        })
    }
}

impl Revoker for RedisRevoker {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        incident_id: &str,
    ) -> Result<Revocation, RevokeError> {
        match tokio::time::timeout(
            self.settings.timeout.saturating_mul(4),
            self.revoke(user_id, incident_id),
        )
        .await
        {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(RevokeError::Unavailable(format!(
                "redis {:?}{}",
                e.kind(),
                e.code().map(|c| format!(" {c}")).unwrap_or_default()
            ))),
            Err(_) => Err(RevokeError::Unavailable("redis timed out".to_owned())),
        }
    }
}
