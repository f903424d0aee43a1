//! Retries of store writes: jittered exponential backoff, bounded by the
//! invocation's deadline.
//!
//! The Lambda entry point runs each invocation under a deadline (the
//! context's deadline less a reserve for the reply:
//! `monitoring_adapters::retry::with_deadline`); every retry loop asks
//! [`Backoff::wait`] before sleeping, which refuses once the delay would
//! end past that deadline. The invocation then fails while it still can,
//! and Lambda's own retry (whose markers keep it exact) takes over, rather
//! than the runtime killing it mid-write. Without a deadline (tests, tools)
//! only the attempt limit bounds the loop. The sleep and the deadline come
//! through the [`RetryTimer`] port (`monitoring_adapters::retry::TokioTimer`).

use std::time::Duration;

use crate::ports::RetryTimer;

/// Why a retry loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GiveUp {
    #[error("gave up after {0} attempts")]
    Attempts(u32),
    #[error("the invocation's deadline leaves no time for retry {0}")]
    Deadline(u32),
}

/// Full-jitter exponential backoff: the delay before retry `n` (from 1) is
/// uniform in `[0, min(cap, base × 2^(n-1))]`, so concurrent writers that
/// lost the same race spread out instead of colliding again in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
}

impl Backoff {
    /// The store writes' policy: 25 ms doubling to 1 s, 8 retries (about
    /// 4 s of sleep at most, usually half).
    pub const STORE: Backoff = Backoff {
        base: Duration::from_millis(25),
        cap: Duration::from_secs(1),
        max_retries: 8,
    };

    /// The longest delay before retry `retry` (from 1).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry `retry`, drawn from `rng`.
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.u64(0..=ceiling))
    }

    /// Sleeps before retry `retry` (from 1) on `timer`, or says why not:
    /// the attempts are used up, or the delay would end past the timer's
    /// deadline.
    pub async fn wait(&self, retry: u32, timer: &dyn RetryTimer) -> Result<(), GiveUp> {
        if retry > self.max_retries {
            return Err(GiveUp::Attempts(retry));
        }
        // The thread's generator: a test that seeds it (`fastrand::seed`)
        // replays the same delays.
        let ceiling = u64::try_from(self.ceiling(retry).as_micros()).unwrap_or(u64::MAX);
        let delay = Duration::from_micros(fastrand::u64(0..=ceiling));
        if timer.remaining().is_some_and(|left| left <= delay) {
            return Err(GiveUp::Deadline(retry));
        }
        timer.sleep(delay).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_and_are_jittered() {
        let b = Backoff::STORE;
        assert_eq!(b.ceiling(1), Duration::from_millis(25));
        assert_eq!(b.ceiling(3), Duration::from_millis(100));
        assert_eq!(b.ceiling(7), Duration::from_secs(1));
        assert_eq!(b.ceiling(40), Duration::from_secs(1));
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(4, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(200)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jittered: {}", distinct.len());
    }
}
