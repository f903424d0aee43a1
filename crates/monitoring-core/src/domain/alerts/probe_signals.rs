//! Component-probe results as alert inputs: one `component_probe`
//! observation per component and probe (a hit when the probe failed, so
//! `consecutive` rules can count M failures among the last N probes), plus
//! warnings for expiring certificates and saturated resources. A component
//! that is not configured yields nothing at all: unset means off, so it
//! never pages, and it costs no alert-window writes.

use super::window::{AlertInput, InputKeys};
use crate::domain::probe_result::{Component, ProbeResult, Status};

pub const COMPONENT_PROBE: &str = "component_probe";
pub const CERTIFICATE_EXPIRING: &str = "certificate_expiring";
pub const RESOURCE_UTILIZATION: &str = "resource_utilization";
pub const CONNECTION_POOL: &str = "connection_pool";
/// Every signal name this module produces.
pub const SIGNALS: [&str; 4] = [
    COMPONENT_PROBE,
    CERTIFICATE_EXPIRING,
    RESOURCE_UTILIZATION,
    CONNECTION_POOL,
];
/// Utilization (percent) from which a pool or a memory counts as saturated.
pub const SATURATION_PERCENT: f64 = 90.0;

/// One alert input derived from a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSignal {
    pub signal: &'static str,
    pub key_name: &'static str,
    pub key: String,
    /// `probe:<signal>:<key>:<checked_at ms>`: a re-run of the same probe
    /// result is a duplicate.
    pub event_id: String,
    pub timestamp_ms: i64,
    /// Public facts only (component, status, reason code, value): never
    /// the probe's private error detail.
    pub sample: String,
    pub hit: bool,
}

impl ProbeSignal {
    pub fn as_input(&self) -> AlertInput<'_> {
        AlertInput {
            signal: self.signal,
            keys: InputKeys::One(self.key_name, &self.key),
            distinct: 0,
            event_id: &self.event_id,
            timestamp_ms: self.timestamp_ms,
            sample: &self.sample,
            hit: self.hit,
        }
    }
}

/// The alert inputs of one probe run. `previous` are the results of the
/// run before (the store's latest before saving `current`), needed for
/// counters such as Redis evicted keys; empty when unknown.
pub fn probe_signals(previous: &[ProbeResult], current: &[ProbeResult]) -> Vec<ProbeSignal> {
    let mut out = Vec::new();
    // Not even a non-hit observation: there is nothing to count. An
    // incident left from before the settings were removed resolves after
    // its quiet period like any other.
    for result in current.iter().filter(|r| r.status.is_configured()) {
        let at = super::incident::time_to_ms(result.checked_at);
        let component = result.component.as_str();
        let mut push =
            |signal: &'static str, key_name: &'static str, key: &str, sample: String, hit: bool| {
                out.push(ProbeSignal {
                    signal,
                    key_name,
                    key: key.to_owned(),
                    event_id: format!("probe:{signal}:{key}:{at}"),
                    timestamp_ms: at,
                    sample,
                    hit,
                });
            };
        let reason = result.reason.map_or("none", |r| r.as_str());
        push(
            COMPONENT_PROBE,
            "component",
            component,
            format!(
                "{component} probe {} (reason: {reason})",
                result.status.as_str()
            ),
            result.status == Status::Fail,
        );
        let measurement = |name: &str| result.measurements.iter().find(|m| m.name == name);
        match result.component {
            Component::Certificates if result.status == Status::Warn => {
                let expiring: Vec<_> = result
                    .measurements
                    .iter()
                    .filter(|m| m.name == "daysRemaining" && m.status == Status::Warn)
                    .collect();
                if expiring.is_empty() {
                    push(
                        CERTIFICATE_EXPIRING,
                        "endpoint",
                        component,
                        format!("certificates probe warn (reason: {reason})"),
                        true,
                    );
                }
                for m in expiring {
                    let endpoint = m.target.as_deref().unwrap_or(component);
                    push(
                        CERTIFICATE_EXPIRING,
                        "endpoint",
                        endpoint,
                        format!("certificate of {endpoint} expires in {:.1} days", m.value),
                        true,
                    );
                }
            }
            Component::Redis => {
                if let Some(m) =
                    measurement("memoryUtilization").filter(|m| m.value >= SATURATION_PERCENT)
                {
                    push(
                        RESOURCE_UTILIZATION,
                        "resource",
                        "redis_memory",
                        format!("redis memory at {:.1}% of maxmemory", m.value),
                        true,
                    );
                }
                let evicted_before = previous
                    .iter()
                    .filter(|p| p.component == Component::Redis && p.checked_at < result.checked_at)
                    .flat_map(|p| p.measurements.iter())
                    .find(|m| m.name == "evictedKeys")
                    .map(|m| m.value);
                if let (Some(now), Some(before)) = (measurement("evictedKeys"), evicted_before) {
                    // A counter reset (restart) is not an eviction.
                    if now.value > before {
                        push(
                            RESOURCE_UTILIZATION,
                            "resource",
                            "redis_evictions",
                            format!(
                                "redis evicted {} keys since the previous probe",
                                now.value - before
                            ),
                            true,
                        );
                    }
                }
                if let Some(m) =
                    measurement("clientUtilization").filter(|m| m.value >= SATURATION_PERCENT)
                {
                    push(
                        CONNECTION_POOL,
                        "pool",
                        "redis_clients",
                        format!("redis clients at {:.1}% of maxclients", m.value),
                        true,
                    );
                }
            }
            Component::Database => {
                if let Some(m) =
                    measurement("connectionUtilization").filter(|m| m.value >= SATURATION_PERCENT)
                {
                    push(
                        CONNECTION_POOL,
                        "pool",
                        "database_connections",
                        format!("database connections at {:.1}% of max_connections", m.value),
                        true,
                    );
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::probe_result::{Measurement, Reason, Unit};

    fn result(
        component: Component,
        status: Status,
        at_s: i64,
        ms: Vec<Measurement>,
    ) -> ProbeResult {
        ProbeResult {
            component,
            status,
            reason: (status != Status::Pass).then_some(Reason::Unreachable),
            checked_at: OffsetDateTime::from_unix_timestamp(at_s).unwrap(),
            latency_ms: 1.0,
            measurements: ms,
            detail: Some("secret host name".into()),
        }
    }

    #[test]
    fn every_probe_is_an_observation_and_failures_are_hits() {
        let s = probe_signals(
            &[],
            &[
                result(Component::Oauth, Status::Fail, 60, vec![]),
                result(Component::Database, Status::Pass, 60, vec![]),
            ],
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].signal, s[0].key.as_str(), s[0].hit),
            (COMPONENT_PROBE, "oauth", true)
        );
        assert_eq!(s[0].event_id, "probe:component_probe:oauth:60000");
        assert!(!s[0].sample.contains("secret"));
        assert!(!s[1].hit);
    }

    #[test]
    fn expiring_certificates_and_saturation_become_hits() {
        let cert = Measurement::new("daysRemaining", 10.0, Unit::Days)
            .with_target("auth.example:443")
            .with_status(Status::Warn);
        let redis_before = result(
            Component::Redis,
            Status::Pass,
            0,
            vec![Measurement::new("evictedKeys", 5.0, Unit::Count)],
        );
        let redis_now = result(
            Component::Redis,
            Status::Warn,
            60,
            vec![
                Measurement::new("evictedKeys", 9.0, Unit::Count),
                Measurement::new("clientUtilization", 95.0, Unit::Percent),
                Measurement::new("memoryUtilization", 91.0, Unit::Percent),
            ],
        );
        let db = result(
            Component::Database,
            Status::Warn,
            60,
            vec![Measurement::new(
                "connectionUtilization",
                90.0,
                Unit::Percent,
            )],
        );
        let s = probe_signals(
            &[redis_before],
            &[
                result(Component::Certificates, Status::Warn, 60, vec![cert]),
                redis_now,
                db,
            ],
        );
        let keys: Vec<(&str, &str)> = s
            .iter()
            .filter(|s| s.signal != COMPONENT_PROBE)
            .map(|s| (s.signal, s.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (CERTIFICATE_EXPIRING, "auth.example:443"),
                (RESOURCE_UTILIZATION, "redis_memory"),
                (RESOURCE_UTILIZATION, "redis_evictions"),
                (CONNECTION_POOL, "redis_clients"),
                (CONNECTION_POOL, "database_connections"),
            ]
        );
    }

    /// Unset means off: a component that is not configured raises no
    /// `component_probe` observation, hit or not, so it can never page.
    #[test]
    fn not_configured_components_yield_no_signal() {
        let mut unset = result(Component::Redis, Status::NotConfigured, 60, vec![]);
        unset.reason = None;
        let s = probe_signals(
            &[],
            &[
                unset,
                result(Component::Oauth, Status::NotConfigured, 60, vec![]),
                result(Component::Database, Status::Pass, 60, vec![]),
            ],
        );
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].key, "database");
    }

    #[test]
    fn eviction_counter_reset_is_not_an_eviction() {
        let before = result(
            Component::Redis,
            Status::Pass,
            0,
            vec![Measurement::new("evictedKeys", 50.0, Unit::Count)],
        );
        let now = result(
            Component::Redis,
            Status::Pass,
            60,
            vec![Measurement::new("evictedKeys", 0.0, Unit::Count)],
        );
        assert_eq!(probe_signals(&[before], &[now]).len(), 1);
    }
}
