//! Turns the latest stored probe results into the health endpoint's answer:
//! staleness, overall status, and the two body formats (the guide's shape and
//! the IETF `application/health+json` draft), each public or detailed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::probe_result::{Component, Measurement, ProbeResult, Reason, Status};
use super::timefmt::rfc3339_millis;

/// How much a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Health flags and short reason codes only.
    Public,
    /// Everything stored: latencies, observed values, scrubbed error text.
    Detailed,
}

/// The health of one component as the endpoint reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentHealth {
    pub status: Status,
    pub reason: Option<Reason>,
    /// The stored result behind the verdict, when there is one.
    pub latest: Option<ProbeResult>,
}

/// The health of the whole system at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    pub status: Status,
    pub timestamp: OffsetDateTime,
    pub components: BTreeMap<Component, ComponentHealth>,
}

impl HealthReport {
    /// Judges every component from its latest result. A component without a
    /// result, or whose result is older than `stale_after`, fails: a probe that
    /// stopped running must not keep reporting the last good answer.
    pub fn assess(latest: Vec<ProbeResult>, now: OffsetDateTime, stale_after: Duration) -> Self {
        let mut by_component: BTreeMap<Component, ProbeResult> = BTreeMap::new();
        for result in latest {
            match by_component.get(&result.component) {
                Some(existing) if existing.checked_at >= result.checked_at => {}
                _ => {
                    by_component.insert(result.component, result);
                }
            }
        }
        let components: BTreeMap<Component, ComponentHealth> = Component::ALL
            .into_iter()
            .map(|component| {
                let health = match by_component.remove(&component) {
                    None => ComponentHealth {
                        status: Status::Fail,
                        reason: Some(Reason::NoData),
                        latest: None,
                    },
                    Some(result) if is_stale(&result, now, stale_after) => ComponentHealth {
                        status: Status::Fail,
                        reason: Some(Reason::Stale),
                        latest: Some(result),
                    },
                    Some(result) => ComponentHealth {
                        status: result.status,
                        reason: result.reason,
                        latest: Some(result),
                    },
                };
                (component, health)
            })
            .collect();
        let status = components
            .values()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass);
        HealthReport {
            status,
            timestamp: now,
            components,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.status.is_healthy()
    }

    /// The guide's shape: `{"status": "healthy"|"unhealthy", "components": {...}, "timestamp": ...}`.
    pub fn guide_body(&self, visibility: Visibility) -> GuideBody<'_> {
        GuideBody {
            status: if self.is_healthy() {
                "healthy"
            } else {
                "unhealthy"
            },
            components: self
                .components
                .iter()
                .map(|(c, h)| (*c, GuideComponent::new(h, visibility)))
                .collect(),
            timestamp: rfc3339_millis(self.timestamp),
        }
    }

    /// The IETF health-check draft (`application/health+json`).
    pub fn health_json_body(&self, visibility: Visibility) -> HealthJsonBody<'_> {
        let mut checks: BTreeMap<String, Vec<HealthJsonCheck<'_>>> = BTreeMap::new();
        for (component, health) in &self.components {
            let time = health.latest.as_ref().map(|r| rfc3339_millis(r.checked_at));
            let response_time = HealthJsonCheck {
                component_type: component.component_type(),
                status: health.status.as_str(),
                time: time.clone(),
                output: health.reason.map(Reason::as_str),
                observed: match (visibility, &health.latest) {
                    (Visibility::Detailed, Some(r)) => Some(Observed {
                        component_id: None,
                        observed_value: r.latency_ms,
                        observed_unit: "ms",
                    }),
                    _ => None,
                },
                detail: match visibility {
                    Visibility::Detailed => {
                        health.latest.as_ref().and_then(|r| r.detail.as_deref())
                    }
                    Visibility::Public => None,
                },
            };
            checks
                .entry(format!("{component}:responseTime"))
                .or_default()
                .push(response_time);
            let measurements = health.latest.iter().flat_map(|r| r.measurements.iter());
            for m in measurements {
                checks
                    .entry(format!("{component}:{}", m.name))
                    .or_default()
                    .push(HealthJsonCheck::measurement(
                        *component,
                        m,
                        time.clone(),
                        visibility,
                    ));
            }
        }
        HealthJsonBody {
            status: self.status.as_str(),
            description: "BlindspotX authentication system",
            checks,
        }
    }
}

fn is_stale(result: &ProbeResult, now: OffsetDateTime, stale_after: Duration) -> bool {
    let age = now - result.checked_at;
    age > stale_after
}

#[derive(Debug, Serialize)]
pub struct GuideBody<'a> {
    pub status: &'static str,
    pub components: BTreeMap<Component, GuideComponent<'a>>,
    pub timestamp: String,
}

#[derive(Debug, Serialize)]
pub struct GuideComponent<'a> {
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<GuideDetails<'a>>,
}

impl<'a> GuideComponent<'a> {
    fn new(health: &'a ComponentHealth, visibility: Visibility) -> Self {
        GuideComponent {
            healthy: health.status.is_healthy(),
            reason: health.reason.map(Reason::as_str),
            details: match visibility {
                Visibility::Public => None,
                Visibility::Detailed => health.latest.as_ref().map(|r| GuideDetails {
                    status: health.status.as_str(),
                    checked_at: rfc3339_millis(r.checked_at),
                    latency_ms: r.latency_ms,
                    measurements: &r.measurements,
                    error: r.detail.as_deref(),
                }),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GuideDetails<'a> {
    pub status: &'static str,
    pub checked_at: String,
    pub latency_ms: f64,
    pub measurements: &'a [Measurement],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct HealthJsonBody<'a> {
    pub status: &'static str,
    pub description: &'static str,
    pub checks: BTreeMap<String, Vec<HealthJsonCheck<'a>>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthJsonCheck<'a> {
    pub component_type: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed<'a>>,
    /// Scrubbed error text, detailed view only (an extension of the draft).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

impl<'a> HealthJsonCheck<'a> {
    fn measurement(
        component: Component,
        m: &'a Measurement,
        time: Option<String>,
        visibility: Visibility,
    ) -> Self {
        HealthJsonCheck {
            component_type: component.component_type(),
            status: m.status.as_str(),
            time,
            output: None,
            observed: match visibility {
                Visibility::Public => None,
                Visibility::Detailed => Some(Observed {
                    component_id: m.target.as_deref(),
                    observed_value: m.value,
                    observed_unit: m.unit.as_str(),
                }),
            },
            detail: None,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_id: Option<&'a str>,
    pub observed_value: f64,
    pub observed_unit: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::probe_result::{Observation, Unit};
    use serde_json::Value;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00:00 UTC);
    const STALE: Duration = Duration::from_secs(180);

    fn result(component: Component, status: Status, age_secs: i64) -> ProbeResult {
        let obs = match status {
            Status::Pass => Observation::measured(vec![
                Measurement::new("connections", 3.0, Unit::Count).with_target("host-internal"),
            ]),
            _ => Observation::default().with_reason(
                status,
                Reason::Timeout,
                "connect to db.internal:5432 timed out",
            ),
        };
        ProbeResult::from_observation(
            component,
            obs,
            NOW - time::Duration::seconds(age_secs),
            12.5,
        )
    }

    fn all_passing() -> Vec<ProbeResult> {
        Component::ALL
            .into_iter()
            .map(|c| result(c, Status::Pass, 30))
            .collect()
    }

    #[test]
    fn all_fresh_and_passing_is_healthy() {
        let report = HealthReport::assess(all_passing(), NOW, STALE);
        assert_eq!(report.status, Status::Pass);
        let body = serde_json::to_value(report.guide_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["timestamp"], "2026-11-30T12:00:00.000Z");
        for c in Component::ALL {
            assert_eq!(
                body["components"][c.as_str()],
                serde_json::json!({"healthy": true})
            );
        }
    }

    #[test]
    fn one_failure_makes_the_system_unhealthy() {
        let mut results = all_passing();
        results[1] = result(Component::Redis, Status::Fail, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        assert!(!report.is_healthy());
        let body = serde_json::to_value(report.guide_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(
            body["components"]["redis"],
            serde_json::json!({"healthy": false, "reason": "timeout"})
        );
    }

    #[test]
    fn warnings_stay_healthy() {
        let mut results = all_passing();
        results[4] = result(Component::Certificates, Status::Warn, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(report.status, Status::Warn);
        assert!(report.is_healthy());
        let body = serde_json::to_value(report.guide_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["components"]["certificates"]["healthy"], true);
        assert_eq!(body["components"]["certificates"]["reason"], "timeout");
    }

    #[test]
    fn stale_and_missing_results_fail() {
        let mut results = all_passing();
        results[0] = result(Component::Database, Status::Pass, 181);
        results.remove(3);
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(
            report.components[&Component::Database].reason,
            Some(Reason::Stale)
        );
        assert_eq!(
            report.components[&Component::DriftDetection].reason,
            Some(Reason::NoData)
        );
        assert_eq!(report.status, Status::Fail);
    }

    #[test]
    fn exactly_at_the_limit_is_not_stale() {
        let results = vec![result(Component::Database, Status::Pass, 180)];
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(report.components[&Component::Database].status, Status::Pass);
    }

    #[test]
    fn newest_result_wins_when_several_are_given() {
        let results = vec![
            result(Component::Redis, Status::Fail, 10),
            result(Component::Redis, Status::Pass, 100),
        ];
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(report.components[&Component::Redis].status, Status::Fail);
    }

    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn public_bodies_hold_no_details() {
        let mut results = all_passing();
        results[0] = result(Component::Database, Status::Fail, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        for body in [
            serde_json::to_value(report.guide_body(Visibility::Public)).unwrap(),
            serde_json::to_value(report.health_json_body(Visibility::Public)).unwrap(),
        ] {
            let s = text(&body);
            assert!(!s.contains("db.internal"), "{s}");
            assert!(!s.contains("host-internal"), "{s}");
            assert!(!s.contains("observedValue"), "{s}");
            assert!(!s.contains("latency"), "{s}");
        }
    }

    #[test]
    fn detailed_bodies_hold_measurements_and_errors() {
        let mut results = all_passing();
        results[0] = result(Component::Database, Status::Fail, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        let guide = serde_json::to_value(report.guide_body(Visibility::Detailed)).unwrap();
        assert_eq!(
            guide["components"]["database"]["error"],
            "connect to db.internal:5432 timed out"
        );
        assert_eq!(guide["components"]["redis"]["latency_ms"], 12.5);
        assert_eq!(
            guide["components"]["redis"]["measurements"][0]["target"],
            "host-internal"
        );
    }

    #[test]
    fn health_json_follows_the_draft() {
        let mut results = all_passing();
        results[0] = result(Component::Database, Status::Fail, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        let body = serde_json::to_value(report.health_json_body(Visibility::Detailed)).unwrap();
        assert_eq!(body["status"], "fail");
        let db = &body["checks"]["database:responseTime"][0];
        assert_eq!(db["componentType"], "datastore");
        assert_eq!(db["status"], "fail");
        assert_eq!(db["output"], "timeout");
        assert_eq!(db["observedValue"], 12.5);
        assert_eq!(db["observedUnit"], "ms");
        assert_eq!(db["time"], "2026-11-30T11:59:50.000Z");
        let conns = &body["checks"]["redis:connections"][0];
        assert_eq!(conns["observedValue"], 3.0);
        assert_eq!(conns["componentId"], "host-internal");
        assert_eq!(conns["status"], "pass");

        let public = serde_json::to_value(report.health_json_body(Visibility::Public)).unwrap();
        assert_eq!(public["checks"]["redis:connections"][0]["status"], "pass");
        assert!(
            public["checks"]["redis:connections"][0]
                .get("componentId")
                .is_none()
        );
    }

    #[test]
    fn health_json_status_is_warn_for_warnings() {
        let mut results = all_passing();
        results[4] = result(Component::Certificates, Status::Warn, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        let body = serde_json::to_value(report.health_json_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "warn");
    }
}
