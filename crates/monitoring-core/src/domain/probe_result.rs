//! The outcome of one probe of one component: the single type that the probe
//! writes, the store keeps, the health endpoint renders and CloudWatch receives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The components of the monitoring guide's health check, plus TLS certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Database,
    Redis,
    Oauth,
    DriftDetection,
    Certificates,
}

impl Component {
    /// Every component, in the order the health endpoint lists them.
    pub const ALL: [Component; 5] = [
        Component::Database,
        Component::Redis,
        Component::Oauth,
        Component::DriftDetection,
        Component::Certificates,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Database => "database",
            Component::Redis => "redis",
            Component::Oauth => "oauth",
            Component::DriftDetection => "drift_detection",
            Component::Certificates => "certificates",
        }
    }

    /// `componentType` of the IETF health-check draft.
    pub fn component_type(self) -> &'static str {
        match self {
            Component::Database | Component::Redis => "datastore",
            Component::Oauth | Component::Certificates => "system",
            Component::DriftDetection => "component",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown component `{0}`")]
pub struct UnknownComponent(pub String);

impl FromStr for Component {
    type Err = UnknownComponent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownComponent(s.to_owned()))
    }
}

/// Health status, ordered from best to worst so `max` gives the overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The component has no settings in this deployment (no `DATABASE_URL`,
    /// no `REDIS_URL`, no `OIDC_ISSUER`, no `CERT_ENDPOINTS`), so nothing was
    /// probed. Unset means off: it is not a failure, never pages, never
    /// inhibits, and the overall status leaves it out. It sorts first so
    /// that any probed status outranks it.
    NotConfigured,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotConfigured => "not_configured",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Warn is still healthy: the component works, someone should look soon.
    /// A component that is not configured is not unhealthy either: switching
    /// a check off must not turn the system red.
    pub fn is_healthy(self) -> bool {
        self != Status::Fail
    }

    /// Whether the component was probed at all; `false` only for
    /// [`Status::NotConfigured`], which says nothing about its health.
    pub fn is_configured(self) -> bool {
        self != Status::NotConfigured
    }
}

/// Why a component is not passing. These short codes are the only failure
/// information the public health body carries: a fixed vocabulary cannot
/// leak host names, SQL or connection strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The probe did not answer within its timeout.
    Timeout,
    /// Connection refused, DNS failure, TLS failure or similar.
    Unreachable,
    /// The dependency rejected the configured credentials.
    AuthenticationFailed,
    /// Connected, but a query or command failed.
    QueryFailed,
    /// An answer that is not what the protocol promises (bad JSON, HTTP error).
    UnexpectedResponse,
    /// The OIDC discovery document names another issuer than configured.
    IssuerMismatch,
    /// The OIDC provider publishes no signing key.
    NoSigningKeys,
    /// A measured value crossed its warning or failure threshold.
    ThresholdExceeded,
    /// The last drift scan is older than the allowed age.
    ScanOverdue,
    /// No drift scan was ever recorded.
    NoScanRecorded,
    /// A certificate expires within the warning or failure threshold.
    CertificateExpiring,
    /// A certificate does not verify (expired, untrusted, wrong name).
    CertificateInvalid,
    /// Written by earlier versions beside `fail` for a component without
    /// settings; no probe produces it any more ([`Status::NotConfigured`]
    /// replaced it). Kept so results stored before that still decode.
    NotConfigured,
    /// The latest stored result is older than its staleness limit.
    Stale,
    /// No probe result has been stored for the component yet.
    NoData,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Unreachable => "unreachable",
            Reason::AuthenticationFailed => "authentication_failed",
            Reason::QueryFailed => "query_failed",
            Reason::UnexpectedResponse => "unexpected_response",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::NoSigningKeys => "no_signing_keys",
            Reason::ThresholdExceeded => "threshold_exceeded",
            Reason::ScanOverdue => "scan_overdue",
            Reason::NoScanRecorded => "no_scan_recorded",
            Reason::CertificateExpiring => "certificate_expiring",
            Reason::CertificateInvalid => "certificate_invalid",
            Reason::NotConfigured => "not_configured",
            Reason::Stale => "stale",
            Reason::NoData => "no_data",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Units of the IETF health-check draft's `observedUnit`, plus the ones
/// CloudWatch needs to know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Milliseconds,
    Seconds,
    Days,
    Percent,
    Bytes,
    Count,
}

impl Unit {
    /// `observedUnit` as the draft spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
            Unit::Days => "d",
            Unit::Percent => "percent",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
        }
    }
}

/// One observed value of a probe, e.g. the database's connection utilization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// camelCase measurement name, the part after the colon in `database:responseTime`.
    pub name: String,
    /// What the value is about when a component has several (a table, an endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub value: f64,
    pub unit: Unit,
    pub status: Status,
}

impl Measurement {
    pub fn new(name: &str, value: f64, unit: Unit) -> Self {
        Measurement {
            name: name.to_owned(),
            target: None,
            value,
            unit,
            status: Status::Pass,
        }
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Status from "higher is worse" thresholds.
    pub fn rated_above(mut self, warn_at: f64, fail_at: f64) -> Self {
        self.status = if self.value >= fail_at {
            Status::Fail
        } else if self.value >= warn_at {
            Status::Warn
        } else {
            Status::Pass
        };
        self
    }
}

/// What a probe observed, before the runner stamps time, latency and component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    pub measurements: Vec<Measurement>,
    /// Private error text; scrubbed before it is stored.
    pub detail: Option<String>,
}

impl Observation {
    /// A failed probe with a public reason and private detail.
    pub fn failed(reason: Reason, detail: impl Into<String>) -> Self {
        Observation {
            status: Some(Status::Fail),
            reason: Some(reason),
            measurements: Vec::new(),
            detail: Some(detail.into()),
        }
    }

    /// A probe with nothing to probe: its settings are empty. `detail` names
    /// the setting, for the detailed health view.
    pub fn not_configured(detail: impl Into<String>) -> Self {
        Observation {
            status: Some(Status::NotConfigured),
            reason: None,
            measurements: Vec::new(),
            detail: Some(detail.into()),
        }
    }

    /// A probe that ran; its status is the worst of its measurements unless
    /// set explicitly.
    pub fn measured(measurements: Vec<Measurement>) -> Self {
        Observation {
            measurements,
            ..Observation::default()
        }
    }

    pub fn with_reason(
        mut self,
        status: Status,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Self {
        self.status = Some(status);
        self.reason = Some(reason);
        self.detail = Some(detail.into());
        self
    }

    /// The effective status: explicit status and every measurement, worst wins.
    pub fn overall_status(&self) -> Status {
        self.measurements
            .iter()
            .map(|m| m.status)
            .chain(self.status)
            .max()
            .unwrap_or(Status::Pass)
    }
}

/// One probe of one component at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub component: Component,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// Wall time the probe took, including a timeout.
    pub latency_ms: f64,
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// Scrubbed error text, shown only to authenticated callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ProbeResult {
    pub fn from_observation(
        component: Component,
        observation: Observation,
        checked_at: OffsetDateTime,
        latency_ms: f64,
    ) -> Self {
        let status = observation.overall_status();
        let reason = observation.reason.or(match status {
            Status::NotConfigured | Status::Pass => None,
            Status::Warn | Status::Fail => Some(Reason::ThresholdExceeded),
        });
        ProbeResult {
            component,
            status,
            reason,
            checked_at,
            latency_ms,
            measurements: observation.measurements,
            detail: observation.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_round_trip() {
        for c in Component::ALL {
            assert_eq!(c.as_str().parse::<Component>(), Ok(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert!("postgres".parse::<Component>().is_err());
    }

    #[test]
    fn worst_measurement_decides_status() {
        let obs = Observation::measured(vec![
            Measurement::new("a", 1.0, Unit::Count),
            Measurement::new("b", 85.0, Unit::Percent).rated_above(80.0, 95.0),
        ]);
        assert_eq!(obs.overall_status(), Status::Warn);
        let r = ProbeResult::from_observation(
            Component::Database,
            obs,
            OffsetDateTime::UNIX_EPOCH,
            3.0,
        );
        assert_eq!(r.status, Status::Warn);
        assert_eq!(r.reason, Some(Reason::ThresholdExceeded));
    }

    #[test]
    fn explicit_failure_beats_passing_measurements() {
        let obs = Observation::measured(vec![Measurement::new("a", 1.0, Unit::Count)]).with_reason(
            Status::Fail,
            Reason::IssuerMismatch,
            "x",
        );
        assert_eq!(obs.overall_status(), Status::Fail);
    }

    #[test]
    fn thresholds_are_inclusive() {
        let m = |v| {
            Measurement::new("m", v, Unit::Percent)
                .rated_above(80.0, 95.0)
                .status
        };
        assert_eq!(m(79.9), Status::Pass);
        assert_eq!(m(80.0), Status::Warn);
        assert_eq!(m(95.0), Status::Fail);
    }

    #[test]
    fn not_configured_is_its_own_status_without_a_reason() {
        let r = ProbeResult::from_observation(
            Component::Redis,
            Observation::not_configured("REDIS_URL is not set"),
            OffsetDateTime::UNIX_EPOCH,
            0.0,
        );
        assert_eq!(r.status, Status::NotConfigured);
        assert_eq!(r.reason, None);
        assert!(r.status.is_healthy());
        assert!(!r.status.is_configured());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "not_configured");
        assert_eq!(
            serde_json::from_value::<ProbeResult>(v).unwrap().status,
            Status::NotConfigured
        );
        // Any probed status outranks it.
        assert!(Status::NotConfigured < Status::Pass);
    }

    /// Results stored by earlier versions (`fail` with reason
    /// `not_configured`) still decode.
    #[test]
    fn legacy_not_configured_failures_decode() {
        let stored = serde_json::json!({
            "component": "oauth", "status": "fail", "reason": "not_configured",
            "checked_at": "2026-11-30T12:00:00Z", "latency_ms": 0.1
        });
        let r: ProbeResult = serde_json::from_value(stored).unwrap();
        assert_eq!(r.reason, Some(Reason::NotConfigured));
    }

    #[test]
    fn result_serializes_without_empty_optionals() {
        let r = ProbeResult::from_observation(
            Component::Redis,
            Observation::default(),
            OffsetDateTime::UNIX_EPOCH,
            1.5,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["checked_at"], "1970-01-01T00:00:00Z");
        assert!(v.get("reason").is_none());
        assert!(v.get("detail").is_none());
        let back: ProbeResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
