//! Runs every probe concurrently, each under its own timeout inside one
//! overall deadline, so a hung dependency costs its timeout and nothing more.

use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;

use monitoring_core::domain::probe_result::{Observation, ProbeResult, Reason};
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::ports::{Clock, Probe};

/// Time limits of one probe run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Longest any single probe may take.
    pub timeout: Duration,
    /// Longest the whole run may take; caps each probe's timeout too.
    pub deadline: Duration,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        ProbeLimits {
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(8),
        }
    }
}

/// Probes everything once. Never fails: a probe that errors or times out
/// yields a failing result, which is exactly what the health endpoint needs.
pub async fn run_probes(
    probes: &[Box<dyn Probe>],
    limits: ProbeLimits,
    clock: &dyn Clock,
    scrubber: &Scrubber,
) -> Vec<ProbeResult> {
    let started = Instant::now();
    let run_deadline = started + limits.deadline;
    let runs = probes.iter().map(|probe| async move {
        let checked_at = clock.now();
        let begin = Instant::now();
        let limit_at = (begin + limits.timeout).min(run_deadline);
        let observation = match tokio::time::timeout_at(limit_at, probe.observe()).await {
            Ok(observation) => observation,
            Err(_) => Observation::failed(
                Reason::Timeout,
                format!(
                    "no answer within {} ms",
                    limit_at.saturating_duration_since(begin).as_millis()
                ),
            ),
        };
        let latency_ms = begin.elapsed().as_secs_f64() * 1000.0;
        let mut result =
            ProbeResult::from_observation(probe.component(), observation, checked_at, latency_ms);
        result.detail = result.detail.map(|d| scrubber.scrub(&d));
        result
    });
    join_all(runs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use monitoring_core::domain::probe_result::{Component, Measurement, Status, Unit};
    use monitoring_core::memory::clock::ManualClock;
    use time::OffsetDateTime;

    struct Sleeper {
        component: Component,
        sleep: Duration,
        detail: &'static str,
    }

    impl Probe for Sleeper {
        fn component(&self) -> Component {
            self.component
        }
        fn observe(&self) -> BoxFuture<'_, Observation> {
            Box::pin(async move {
                tokio::time::sleep(self.sleep).await;
                Observation {
                    detail: Some(self.detail.into()),
                    ..Observation::measured(vec![Measurement::new("x", 1.0, Unit::Count)])
                }
            })
        }
    }

    fn sleeper(component: Component, secs: u64) -> Box<dyn Probe> {
        Box::new(Sleeper {
            component,
            sleep: Duration::from_secs(secs),
            detail: "password=hunter2",
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_probe_costs_only_its_timeout() {
        let probes = vec![
            sleeper(Component::Database, 3600),
            sleeper(Component::Redis, 1),
        ];
        let limits = ProbeLimits {
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(8),
        };
        let start = Instant::now();
        let results = run_probes(
            &probes,
            limits,
            &ManualClock::new(OffsetDateTime::UNIX_EPOCH),
            &Scrubber::default(),
        )
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(results[0].component, Component::Database);
        assert_eq!(results[0].status, Status::Fail);
        assert_eq!(results[0].reason, Some(Reason::Timeout));
        assert_eq!(results[1].status, Status::Pass);
        assert_eq!(results[1].measurements.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_run_concurrently_under_the_deadline() {
        let probes: Vec<_> = (0..5).map(|_| sleeper(Component::Oauth, 5)).collect();
        let limits = ProbeLimits {
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(3),
        };
        let start = Instant::now();
        let results = run_probes(
            &probes,
            limits,
            &ManualClock::new(OffsetDateTime::UNIX_EPOCH),
            &Scrubber::default(),
        )
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!(results.iter().all(|r| r.reason == Some(Reason::Timeout)));
        assert!(results.iter().all(|r| r.latency_ms >= 3000.0));
    }

    #[tokio::test(start_paused = true)]
    async fn details_are_scrubbed() {
        let probes = vec![sleeper(Component::Redis, 0)];
        let results = run_probes(
            &probes,
            ProbeLimits::default(),
            &ManualClock::new(OffsetDateTime::UNIX_EPOCH),
            &Scrubber::default(),
        )
        .await;
        assert_eq!(results[0].detail.as_deref(), Some("password=***"));
    }
}
