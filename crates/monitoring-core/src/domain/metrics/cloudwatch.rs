//! The dimension policy: which log metrics reach CloudWatch, and with which
//! dimensions. Prometheus (`/metrics`, the series store) keeps every label;
//! CloudWatch bills every metric name × dimension-value combination as a
//! custom metric ($0.30 a month each, docs/cost-model.md), so it gets only
//! what its dashboards and alarms read.
//!
//! The one rule with a cost: `api_request_duration_seconds` goes to
//! CloudWatch by `endpoint` and `status_class` (`2xx`, `4xx`, `5xx`, ...)
//! instead of `endpoint`, `method` and every `status_code`; its sample count
//! is the request count the performance dashboard shows, so
//! `http_requests_total` (the same requests, counted) stays in Prometheus.
//! Routes are bounded before either sees them: the rules template them
//! (`/api/users/:id`) and the cardinality guard caps label sets per metric.
//!
//! Every other metric, a custom rule's included, goes with all its labels,
//! as before the policy: a metric nobody listed here is never dropped
//! silently.

use super::series::SeriesKey;

/// Where a label's dimension value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The label itself, under its own name.
    Label(&'static str),
    /// `<digit>xx` from an HTTP status code label, under the name `name`;
    /// anything that is not a three-digit code is `other`.
    StatusClass {
        name: &'static str,
        from: &'static str,
    },
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Label(name) | Dimension::StatusClass { name, .. } => name,
        }
    }
}

/// What CloudWatch gets of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Every label becomes a dimension.
    AllLabels,
    /// These dimensions only; series that differ in the other labels are
    /// merged (counters and gauges summed, histogram values pooled).
    Dimensions(&'static [Dimension]),
    /// Not sent to CloudWatch at all (Prometheus only).
    PrometheusOnly,
}

/// The policy, by metric name. Metrics not named here: [`Export::AllLabels`].
pub const POLICY: &[(&str, Export)] = &[
    (
        "api_request_duration_seconds",
        Export::Dimensions(&[
            Dimension::Label("endpoint"),
            Dimension::StatusClass {
                name: "status_class",
                from: "status_code",
            },
        ]),
    ),
    ("http_requests_total", Export::PrometheusOnly),
];

/// What CloudWatch gets of `metric`.
pub fn export(metric: &str) -> Export {
    POLICY
        .iter()
        .find(|(name, _)| *name == metric)
        .map_or(Export::AllLabels, |(_, export)| *export)
}

/// `503` → `5xx`; anything but a three-digit code → `other`.
pub fn status_class(code: &str) -> String {
    match code.as_bytes() {
        [first @ b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'] => format!("{}xx", char::from(*first)),
        _ => "other".to_owned(),
    }
}

/// The CloudWatch series a stored series is counted under, or `None` when
/// the metric does not go to CloudWatch. A label the series lacks is left
/// out of the dimensions (the series store never writes such a series for
/// the default rules; a custom rule may).
pub fn cloudwatch_key(key: &SeriesKey) -> Option<SeriesKey> {
    let dimensions = match export(key.name()) {
        Export::AllLabels => return Some(key.clone()),
        Export::PrometheusOnly => return None,
        Export::Dimensions(dimensions) => dimensions,
    };
    let label = |name: &str| {
        key.labels()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let labels = dimensions.iter().filter_map(|d| match d {
        Dimension::Label(name) => label(name).map(|v| (*name, v.to_owned())),
        Dimension::StatusClass { name, from } => label(from).map(|v| (*name, status_class(v))),
    });
    Some(SeriesKey::new(key.name(), labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class("200"), "2xx");
        assert_eq!(status_class("503"), "5xx");
        assert_eq!(status_class("404"), "4xx");
        for odd in ["", "99", "600", "2000", "abc", "__overflow__"] {
            assert_eq!(status_class(odd), "other", "{odd:?}");
        }
    }

    #[test]
    fn api_latency_goes_by_endpoint_and_status_class() {
        let key = SeriesKey::new(
            "api_request_duration_seconds",
            [
                ("endpoint", "/api/users/:id"),
                ("method", "GET"),
                ("status_code", "503"),
            ],
        );
        let cw = cloudwatch_key(&key).unwrap();
        assert_eq!(cw.name(), "api_request_duration_seconds");
        assert_eq!(
            cw.labels(),
            [
                ("endpoint".to_owned(), "/api/users/:id".to_owned()),
                ("status_class".to_owned(), "5xx".to_owned())
            ]
        );
    }

    #[test]
    fn request_counts_stay_in_prometheus_and_the_rest_keeps_its_labels() {
        let http = SeriesKey::new("http_requests_total", [("status_code", "200")]);
        assert_eq!(cloudwatch_key(&http), None);
        let auth = SeriesKey::new(
            "auth_requests_total",
            [("endpoint", "/api/auth/login"), ("status", "failure")],
        );
        assert_eq!(cloudwatch_key(&auth), Some(auth.clone()));
        let custom = SeriesKey::new("my_custom_total", [("anything", "x")]);
        assert_eq!(cloudwatch_key(&custom), Some(custom.clone()));
    }
}
