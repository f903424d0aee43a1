//! The bearer tokens of the three roles, re-read from their source on a
//! short TTL so a rotation takes effect without a cold start, with the
//! previous version accepted until the rotation finishes.
//!
//! Rules, checked at start (an error stops the function) and on every
//! refresh (a bad refresh keeps the tokens in force and is logged):
//! - a token shorter than [`MIN_TOKEN_BYTES`] is refused: bearer tokens
//!   are the only credential here, so they must not be guessable;
//! - one value serving two roles is refused: the admin token would then
//!   also be sent by every Prometheus scraper, and the audit could not
//!   tell the roles apart.
//!
//! A previous version that breaks a rule is not accepted (logged, not
//! fatal), so rotating away from a bad token is always possible.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use monitoring_config::{ConfigError, Secret};
use monitoring_core::ports::{Clock, SecretVersionSource, SecretVersions};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::audit::Role;

/// The shortest token accepted: 32 bytes, 256 bits when random.
pub const MIN_TOKEN_BYTES: usize = 32;
/// How long tokens are used before their source is read again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Which version of a role's token matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Current,
    /// Accepted while a rotation is under way.
    Previous,
}

/// Why the tokens cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{var}: the token is {len} bytes; at least {MIN_TOKEN_BYTES} are required")]
    TooShort { var: &'static str, len: usize },
    #[error("{first} and {second} hold the same token; each role needs its own")]
    Reused {
        first: &'static str,
        second: &'static str,
    },
    #[error(transparent)]
    Unavailable(#[from] ConfigError),
}

/// The environment variable that configures `role`'s token.
pub fn var_of(role: Role) -> &'static str {
    match role {
        Role::Health => "HEALTH_TOKEN",
        Role::Metrics => "METRICS_TOKEN",
        Role::Admin => "ADMIN_TOKEN",
    }
}

/// The token digests in force: SHA-256, so comparisons are constant time
/// whatever the presented token's length.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    digests: Vec<(Role, Stage, [u8; 32])>,
}

impl Snapshot {
    /// Whether `role` has a token at all.
    pub fn has(&self, role: Role) -> bool {
        self.digests.iter().any(|(r, _, _)| *r == role)
    }

    /// The role and version `token` is, if any. Every digest is compared,
    /// so the time taken tells nothing about which one matched.
    pub fn identify(&self, token: &str) -> Option<(Role, Stage)> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (role, stage, digest) in &self.digests {
            if bool::from(presented.ct_eq(digest)) && found.is_none() {
                found = Some((*role, *stage));
            }
        }
        found
    }
}

fn digest(secret: &Secret) -> [u8; 32] {
    Sha256::digest(secret.expose().as_bytes()).into()
}

/// Checks the fetched tokens against the rules; the previous versions
/// that break one are dropped (and logged).
fn validate(
    fetched: &[(Role, SecretVersions)],
    enforce_length: bool,
) -> Result<Snapshot, TokenError> {
    let mut digests: Vec<(Role, Stage, [u8; 32])> = Vec::new();
    for (role, versions) in fetched {
        let len = versions.current.expose().len();
        if enforce_length && len < MIN_TOKEN_BYTES {
            return Err(TokenError::TooShort {
                var: var_of(*role),
                len,
            });
        }
        digests.push((*role, Stage::Current, digest(&versions.current)));
    }
    for (i, (role, _, d)) in digests.iter().enumerate() {
        if let Some((other, _, _)) = digests[..i].iter().find(|(_, _, o)| o == d) {
            return Err(TokenError::Reused {
                first: var_of(*other),
                second: var_of(*role),
            });
        }
    }
    for (role, versions) in fetched {
        let Some(previous) = &versions.previous else {
            continue;
        };
        let d = digest(previous);
        if d == digest(&versions.current) {
            continue;
        }
        if enforce_length && previous.expose().len() < MIN_TOKEN_BYTES {
            tracing::warn!(
                var = var_of(*role),
                reason = "too_short",
                "previous token version not accepted"
            );
            continue;
        }
        if digests.iter().any(|(r, _, o)| r != role && *o == d) {
            tracing::warn!(
                var = var_of(*role),
                reason = "reused",
                "previous token version not accepted: another role holds it"
            );
            continue;
        }
        digests.push((*role, Stage::Previous, d));
    }
    Ok(Snapshot { digests })
}

struct Cached {
    snapshot: Arc<Snapshot>,
    fetched_at: OffsetDateTime,
}

/// The roles' tokens, refreshed every `refresh`.
pub struct Tokens {
    sources: Vec<(Role, Arc<dyn SecretVersionSource>)>,
    refresh: Duration,
    clock: Arc<dyn Clock>,
    enforce_length: bool,
    cached: RwLock<Cached>,
    /// One refresh at a time; the others keep using the cached tokens.
    refreshing: tokio::sync::Mutex<()>,
}

impl Tokens {
    /// Reads every role's token and checks the rules: the start-up path.
    pub async fn load(
        sources: Vec<(Role, Arc<dyn SecretVersionSource>)>,
        refresh: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TokenError> {
        let fetched = fetch_all(&sources).await?;
        let snapshot = validate(&fetched, true)?;
        Ok(Tokens {
            sources,
            refresh,
            cached: RwLock::new(Cached {
                snapshot: Arc::new(snapshot),
                fetched_at: clock.now(),
            }),
            clock,
            enforce_length: true,
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Fixed tokens, checked for reuse but not for length (unit tests use
    /// short ones); never refreshed.
    pub fn fixed(tokens: &[(Role, &Secret)], clock: Arc<dyn Clock>) -> Self {
        let fetched: Vec<(Role, SecretVersions)> = tokens
            .iter()
            .map(|(role, secret)| {
                (
                    *role,
                    SecretVersions {
                        current: (*secret).clone(),
                        previous: None,
                    },
                )
            })
            .collect();
        let snapshot = validate(&fetched, false).unwrap_or_else(|e| {
            tracing::error!(error = %e, "tokens refused");
            Snapshot::default()
        });
        Tokens {
            sources: Vec::new(),
            refresh: Duration::MAX,
            cached: RwLock::new(Cached {
                snapshot: Arc::new(snapshot),
                fetched_at: clock.now(),
            }),
            clock,
            enforce_length: false,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The same tokens with `role`'s replaced by `token` (no refresh).
    pub fn with_fixed(self, role: Role, token: Option<&Secret>) -> Self {
        let mut snapshot = (*self.snapshot_now()).clone();
        snapshot.digests.retain(|(r, _, _)| *r != role);
        if let Some(t) = token {
            snapshot.digests.push((role, Stage::Current, digest(t)));
        }
        Tokens {
            cached: RwLock::new(Cached {
                snapshot: Arc::new(snapshot),
                fetched_at: self.clock.now(),
            }),
            ..self
        }
    }

    fn snapshot_now(&self) -> Arc<Snapshot> {
        self.cached
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot
            .clone()
    }

    /// The tokens in force, read again first when older than the TTL.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let (snapshot, fetched_at) = {
            let c = self.cached.read().unwrap_or_else(|p| p.into_inner());
            (c.snapshot.clone(), c.fetched_at)
        };
        let age = self.clock.now() - fetched_at;
        if self.sources.is_empty() || age < self.refresh {
            return snapshot;
        }
        let Ok(_guard) = self.refreshing.try_lock() else {
            return snapshot;
        };
        let now = self.clock.now();
        let fresh = match fetch_all(&self.sources).await {
            Ok(fetched) => validate(&fetched, self.enforce_length),
            Err(e) => Err(e),
        };
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        match fresh {
            Ok(fresh) => {
                tracing::info!(tokens = fresh.digests.len(), "tokens refreshed");
                cached.snapshot = Arc::new(fresh);
            }
            // The tokens in force were valid: keep them, try again after
            // another TTL rather than on every request.
            Err(e) => tracing::error!(
                error = %e,
                reason = "token_refresh_failed",
                "tokens not refreshed; the previous ones stay in force"
            ),
        }
        cached.fetched_at = now;
        cached.snapshot.clone()
    }
}

async fn fetch_all(
    sources: &[(Role, Arc<dyn SecretVersionSource>)],
) -> Result<Vec<(Role, SecretVersions)>, TokenError> {
    let mut fetched = Vec::with_capacity(sources.len());
    for (role, source) in sources {
        fetched.push((*role, source.fetch().await?));
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use monitoring_core::memory::clock::ManualClock;
    use std::sync::Mutex;
    use time::macros::datetime;

    /// An in-memory secret whose versions a test rotates.
    struct Rotating(Mutex<SecretVersions>);
    impl Rotating {
        fn set(&self, current: &str, previous: Option<&str>) {
            *self.0.lock().unwrap() = SecretVersions {
                current: Secret::new(current),
                previous: previous.map(Secret::new),
            };
        }
    }
    impl SecretVersionSource for Rotating {
        fn fetch(&self) -> BoxFuture<'_, Result<SecretVersions, ConfigError>> {
            Box::pin(async move { Ok(self.0.lock().unwrap().clone()) })
        }
    }

    const OLD: &str = "old-admin-token-0123456789abcdef0123";
    const NEW: &str = "new-admin-token-0123456789abcdef0123";
    const METRICS: &str = "metrics-token-0123456789abcdef01234";
    const T0: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);

    fn rotating(current: &str) -> Arc<Rotating> {
        let r = Arc::new(Rotating(Mutex::new(SecretVersions {
            current: Secret::new("x"),
            previous: None,
        })));
        r.set(current, None);
        r
    }

    #[tokio::test]
    async fn a_rotation_is_picked_up_after_the_ttl_with_the_previous_version_accepted() {
        let clock = Arc::new(ManualClock::new(T0));
        let admin = rotating(OLD);
        let tokens = Tokens::load(
            vec![
                (Role::Admin, admin.clone() as Arc<dyn SecretVersionSource>),
                (Role::Metrics, rotating(METRICS)),
            ],
            Duration::from_secs(300),
            clock.clone(),
        )
        .await
        .unwrap();
        let s = tokens.snapshot().await;
        assert_eq!(s.identify(OLD), Some((Role::Admin, Stage::Current)));
        assert_eq!(s.identify(NEW), None);

        // Secrets Manager rotates: NEW is AWSCURRENT, OLD AWSPREVIOUS.
        admin.set(NEW, Some(OLD));
        clock.set(T0 + time::Duration::seconds(299));
        assert_eq!(
            tokens.snapshot().await.identify(NEW),
            None,
            "within the TTL"
        );
        clock.set(T0 + time::Duration::seconds(300));
        let s = tokens.snapshot().await;
        assert_eq!(s.identify(NEW), Some((Role::Admin, Stage::Current)));
        assert_eq!(s.identify(OLD), Some((Role::Admin, Stage::Previous)));
        assert_eq!(s.identify(METRICS), Some((Role::Metrics, Stage::Current)));

        // The rotation finishes: the old token stops working.
        admin.set(NEW, None);
        clock.set(T0 + time::Duration::seconds(600));
        let s = tokens.snapshot().await;
        assert_eq!(s.identify(OLD), None);
        assert_eq!(s.identify(NEW), Some((Role::Admin, Stage::Current)));

        // A refresh that breaks a rule keeps the tokens in force.
        admin.set(METRICS, Some(NEW));
        clock.set(T0 + time::Duration::seconds(900));
        let s = tokens.snapshot().await;
        assert_eq!(s.identify(NEW), Some((Role::Admin, Stage::Current)));
        assert_eq!(s.identify(METRICS), Some((Role::Metrics, Stage::Current)));
    }

    #[tokio::test]
    async fn short_or_shared_tokens_stop_the_start() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
        let err = Tokens::load(
            vec![(Role::Admin, rotating("short-token"))],
            DEFAULT_REFRESH,
            clock.clone(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "ADMIN_TOKEN: the token is 11 bytes; at least 32 are required"
        );
        let err = Tokens::load(
            vec![
                (Role::Metrics, rotating(METRICS)),
                (Role::Admin, rotating(METRICS)),
            ],
            DEFAULT_REFRESH,
            clock.clone(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "METRICS_TOKEN and ADMIN_TOKEN hold the same token; each role needs its own"
        );
        // A short previous version is only not accepted.
        let admin = rotating(NEW);
        admin.set(NEW, Some("short"));
        let tokens = Tokens::load(
            vec![(Role::Admin, admin as Arc<dyn SecretVersionSource>)],
            DEFAULT_REFRESH,
            clock,
        )
        .await
        .unwrap();
        let s = tokens.snapshot().await;
        assert_eq!(s.identify("short"), None);
        assert_eq!(s.identify(NEW), Some((Role::Admin, Stage::Current)));
    }
}
