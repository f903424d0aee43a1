//! Retries' timer: tokio's sleep, bounded by the deadline of the current
//! invocation ([`TokioTimer`], the core's [`RetryTimer`]).
//!
//! The Lambda entry point runs each invocation under [`with_deadline`]
//! (the context's deadline less a reserve for the reply); every retry
//! loop asks [`Backoff::wait`] before sleeping, which refuses once the
//! delay would end past that deadline. The backoff policy itself is the
//! core's ([`monitoring_core::retry`]).

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

pub use monitoring_core::ports::RetryTimer;
pub use monitoring_core::retry::{Backoff, GiveUp};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` as the bound of every [`Backoff::wait`] inside.
pub async fn with_deadline<F: Future>(deadline: Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// Time left before the deadline of the current invocation, if one is set.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// The functions' [`RetryTimer`]: tokio's sleep, and the deadline set by
/// [`with_deadline`] (none outside it).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

impl RetryTimer for TokioTimer {
    fn remaining(&self) -> Option<Duration> {
        remaining()
    }

    fn sleep(&self, delay: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_retry_sleeps_past_the_deadline() {
        let b = Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(10),
            max_retries: 3,
        };
        // Without a deadline only the attempt count bounds the loop.
        assert_eq!(b.wait(4, &TokioTimer).await, Err(GiveUp::Attempts(4)));
        let deadline = Instant::now() + Duration::from_millis(1);
        let refused = with_deadline(deadline, async {
            // A 10 s ceiling: almost every draw ends past 1 ms.
            let mut refusals = 0;
            for _ in 0..20 {
                if b.wait(1, &TokioTimer).await == Err(GiveUp::Deadline(1)) {
                    refusals += 1;
                }
            }
            refusals
        })
        .await;
        assert!(refused >= 19, "{refused}");
        assert!(Instant::now() <= deadline, "never slept past the deadline");
        assert_eq!(remaining(), None);
    }
}
