//! Probe results as CloudWatch metrics (PutMetricData).
//!
//! Per result: `ComponentUp` (1 healthy, 0 not), `ProbeLatency` (ms), and one
//! metric per measurement (`ResponseTime`, `ConnectionUtilization`, ...), all
//! with a `Component` dimension and, where the measurement has a target (a
//! table, an endpoint), a `Target` dimension. A component that is not
//! configured publishes nothing: its graphs show no data rather than an
//! "up" that nothing measured or a "down" that would trip an alarm.

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::aws::describe_sdk_error;
use crate::domain::probe_result::{ProbeResult, Unit};
use crate::ports::{MetricSink, MetricsError};

/// PutMetricData accepts 1000 data per request; stay well under the 1 MB body.
const MAX_DATA_PER_REQUEST: usize = 500;

#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
    namespace: String,
}

impl CloudWatchMetrics {
    pub fn new(sdk: &SdkConfig, namespace: impl Into<String>) -> Self {
        CloudWatchMetrics {
            client: Client::new(sdk),
            namespace: namespace.into(),
        }
    }
}

/// `responseTime` → `ResponseTime`.
fn metric_name(measurement: &str) -> String {
    let mut chars = measurement.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn unit(unit: Unit) -> StandardUnit {
    match unit {
        Unit::Milliseconds => StandardUnit::Milliseconds,
        Unit::Seconds => StandardUnit::Seconds,
        Unit::Percent => StandardUnit::Percent,
        Unit::Bytes => StandardUnit::Bytes,
        Unit::Count => StandardUnit::Count,
        // CloudWatch has no day unit; the metric name says it.
        Unit::Days => StandardUnit::None,
    }
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

/// The data one probe result becomes (none when it is not configured).
pub fn metric_data(result: &ProbeResult) -> Vec<MetricDatum> {
    if !result.status.is_configured() {
        return Vec::new();
    }
    let at = DateTime::from_secs(result.checked_at.unix_timestamp());
    let component = dimension("Component", result.component.as_str());
    let datum = |name: String, value: f64, unit: StandardUnit, target: Option<&str>| {
        let mut dims = vec![component.clone()];
        if let Some(t) = target {
            dims.push(dimension("Target", t));
        }
        MetricDatum::builder()
            .metric_name(name)
            .value(value)
            .unit(unit)
            .timestamp(at)
            .set_dimensions(Some(dims))
            .build()
    };
    let up = if result.status.is_healthy() { 1.0 } else { 0.0 };
    let mut data = vec![
        datum("ComponentUp".into(), up, StandardUnit::Count, None),
        datum(
            "ProbeLatency".into(),
            result.latency_ms,
            StandardUnit::Milliseconds,
            None,
        ),
    ];
    data.extend(
        result
            .measurements
            .iter()
            .filter(|m| m.value.is_finite())
            .map(|m| {
                datum(
                    metric_name(&m.name),
                    m.value,
                    unit(m.unit),
                    m.target.as_deref(),
                )
            }),
    );
    data
}

impl MetricSink for CloudWatchMetrics {
    async fn publish(&self, results: &[ProbeResult]) -> Result<(), MetricsError> {
        let data: Vec<MetricDatum> = results.iter().flat_map(metric_data).collect();
        for chunk in data.chunks(MAX_DATA_PER_REQUEST) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| MetricsError::Unavailable(describe_sdk_error(&e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::probe_result::{Component, Measurement, Observation, Reason, Status};
    use time::OffsetDateTime;

    #[test]
    fn names_are_pascal_case() {
        assert_eq!(metric_name("responseTime"), "ResponseTime");
        assert_eq!(metric_name(""), "");
    }

    #[test]
    fn a_result_becomes_up_latency_and_measurements() {
        let obs = Observation::measured(vec![
            Measurement::new("daysRemaining", 9.5, Unit::Days).with_target("auth.example.com:443"),
            Measurement::new("bogus", f64::NAN, Unit::Count),
        ])
        .with_reason(Status::Fail, Reason::CertificateExpiring, "x");
        let r = ProbeResult::from_observation(
            Component::Certificates,
            obs,
            OffsetDateTime::UNIX_EPOCH,
            4.0,
        );
        let data = metric_data(&r);
        let names: Vec<_> = data.iter().map(|d| d.metric_name().unwrap_or("")).collect();
        assert_eq!(names, ["ComponentUp", "ProbeLatency", "DaysRemaining"]);
        assert_eq!(data[0].value(), Some(0.0));
        let dims: Vec<_> = data[2]
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or(""), d.value().unwrap_or("")))
            .collect();
        assert_eq!(
            dims,
            [
                ("Component", "certificates"),
                ("Target", "auth.example.com:443")
            ]
        );
    }

    #[test]
    fn a_component_that_is_not_configured_publishes_nothing() {
        let r = ProbeResult::from_observation(
            Component::Redis,
            Observation::not_configured("REDIS_URL is not set"),
            OffsetDateTime::UNIX_EPOCH,
            0.1,
        );
        assert!(metric_data(&r).is_empty());
    }
}
