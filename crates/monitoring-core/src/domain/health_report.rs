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
    ///
    /// A component whose latest result is `not_configured` stays so whatever
    /// its age: "not configured" says nothing about health, so it cannot go
    /// stale, and the overall status leaves it out (unset means off). A
    /// missing result is different: the probe stores a result for every
    /// component at every run, `not_configured` ones included, so "no
    /// result" means the probe has not run, whatever the settings.
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
                    Some(result) if !result.status.is_configured() => ComponentHealth {
                        status: Status::NotConfigured,
                        reason: None,
                        latest: Some(result),
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
            .filter(|s| s.is_configured())
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

    /// The IETF health-check draft (`application/health+json`). The draft
    /// knows only pass, warn and fail, so a component that is not configured
    /// has no check (nothing was checked) and is named in `notes` instead.
    pub fn health_json_body(&self, visibility: Visibility) -> HealthJsonBody<'_> {
        let mut checks: BTreeMap<String, Vec<HealthJsonCheck<'_>>> = BTreeMap::new();
        let mut notes = Vec::new();
        for (component, health) in &self.components {
            if !health.status.is_configured() {
                notes.push(format!("{component}: {}", Status::NotConfigured.as_str()));
                continue;
            }
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
            notes,
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

/// One component in the guide's shape. A component that is not configured
/// reads `{"healthy": true, "status": "not_configured"}`: listed, so nobody
/// wonders where it went; `healthy`, because the guide's flag answers "is
/// anything wrong here?" and must agree with the overall `healthy`; and
/// `status` saying that nothing was checked.
#[derive(Debug, Serialize)]
pub struct GuideComponent<'a> {
    pub healthy: bool,
    /// `not_configured` in every view, the status of the stored result in
    /// detailed ones; absent otherwise (public answers carry flags and
    /// reason codes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<GuideDetails<'a>>,
}

impl<'a> GuideComponent<'a> {
    fn new(health: &'a ComponentHealth, visibility: Visibility) -> Self {
        let detailed = visibility == Visibility::Detailed && health.latest.is_some();
        GuideComponent {
            healthy: health.status.is_healthy(),
            status: (detailed || !health.status.is_configured()).then(|| health.status.as_str()),
            reason: health.reason.map(Reason::as_str),
            details: match visibility {
                Visibility::Public => None,
                Visibility::Detailed => health.latest.as_ref().map(|r| GuideDetails {
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
    /// `<component>: not_configured` for each component without settings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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

    /// What the probe stores for a component without settings.
    fn not_configured(component: Component, age_secs: i64) -> ProbeResult {
        ProbeResult::from_observation(
            component,
            Observation::not_configured("REDIS_URL is not set"),
            NOW - time::Duration::seconds(age_secs),
            0.1,
        )
    }

    /// Nothing set but the drift default: the four components without
    /// settings are `not_configured` and the system is healthy.
    fn only_drift_configured() -> Vec<ProbeResult> {
        Component::ALL
            .into_iter()
            .map(|c| match c {
                Component::DriftDetection => result(c, Status::Pass, 30),
                _ => not_configured(c, 30),
            })
            .collect()
    }

    #[test]
    fn not_configured_components_leave_the_system_healthy() {
        let report = HealthReport::assess(only_drift_configured(), NOW, STALE);
        assert_eq!(report.status, Status::Pass);
        assert!(report.is_healthy());
        for c in [
            Component::Database,
            Component::Redis,
            Component::Oauth,
            Component::Certificates,
        ] {
            assert_eq!(report.components[&c].status, Status::NotConfigured, "{c}");
            assert_eq!(report.components[&c].reason, None, "{c}");
        }
        let body = serde_json::to_value(report.guide_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "healthy");
        assert_eq!(
            body["components"]["redis"],
            serde_json::json!({"healthy": true, "status": "not_configured"})
        );
        assert_eq!(
            body["components"]["drift_detection"],
            serde_json::json!({"healthy": true})
        );
    }

    /// The overall status is pass/warn/fail only, even with nothing probed.
    #[test]
    fn overall_status_is_never_not_configured() {
        let results = Component::ALL
            .into_iter()
            .map(|c| not_configured(c, 30))
            .collect();
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(report.status, Status::Pass);
        let body = serde_json::to_value(report.health_json_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "pass");
    }

    #[test]
    fn not_configured_hides_no_failure() {
        let mut results = only_drift_configured();
        results[3] = result(Component::DriftDetection, Status::Fail, 10);
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(report.status, Status::Fail);
        assert!(!report.is_healthy());
    }

    /// "Not configured" says nothing about health, so its age does not
    /// matter; but a component with no result at all is still `no_data`.
    #[test]
    fn not_configured_never_goes_stale_but_missing_results_still_fail() {
        let mut results = only_drift_configured();
        results[1] = not_configured(Component::Redis, 86_400);
        let report = HealthReport::assess(results.clone(), NOW, STALE);
        assert_eq!(
            report.components[&Component::Redis].status,
            Status::NotConfigured
        );
        assert_eq!(report.status, Status::Pass);

        results.remove(1);
        let report = HealthReport::assess(results, NOW, STALE);
        assert_eq!(
            report.components[&Component::Redis].reason,
            Some(Reason::NoData)
        );
        assert_eq!(report.status, Status::Fail);
    }

    #[test]
    fn detailed_guide_body_shows_the_status_once() {
        let report = HealthReport::assess(only_drift_configured(), NOW, STALE);
        let body = serde_json::to_value(report.guide_body(Visibility::Detailed)).unwrap();
        let redis = &body["components"]["redis"];
        assert_eq!(redis["healthy"], true);
        assert_eq!(redis["status"], "not_configured");
        assert_eq!(redis["error"], "REDIS_URL is not set");
        assert_eq!(body["components"]["drift_detection"]["status"], "pass");
        // A parsed body keeps only the last of duplicate keys: count them
        // in the text.
        let guide = report.guide_body(Visibility::Detailed);
        let text = serde_json::to_string(&guide.components[&Component::Redis]).unwrap();
        assert_eq!(text.matches("\"status\"").count(), 1, "{text}");
    }

    #[test]
    fn health_json_names_not_configured_components_in_notes() {
        let report = HealthReport::assess(only_drift_configured(), NOW, STALE);
        let body = serde_json::to_value(report.health_json_body(Visibility::Public)).unwrap();
        assert_eq!(body["status"], "pass");
        assert_eq!(
            body["notes"],
            serde_json::json!([
                "database: not_configured",
                "redis: not_configured",
                "oauth: not_configured",
                "certificates: not_configured"
            ])
        );
        let checks: Vec<&str> = body["checks"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            checks.iter().all(|c| c.starts_with("drift_detection:")),
            "{checks:?}"
        );

        let all = HealthReport::assess(all_passing(), NOW, STALE);
        let body = serde_json::to_value(all.health_json_body(Visibility::Public)).unwrap();
        assert!(body.get("notes").is_none());
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
