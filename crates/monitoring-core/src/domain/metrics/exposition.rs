//! Cumulative series rendered for a scraper: the Prometheus text format
//! 0.0.4 and OpenMetrics 1.0 text. Pure: series and metadata in, text out.
//!
//! Written by hand rather than with a client library, after checking the two
//! well-kept ones:
//! - `prometheus-client` (0.26) encodes OpenMetrics only, from metrics
//!   registered in its `Registry` (or a `Collector` building `Const*`
//!   values on each scrape); it has no 0.0.4 text encoder.
//! - `prometheus` (0.14) encodes 0.0.4 only (`TextEncoder`, from protobuf
//!   `MetricFamily` values built by hand), not OpenMetrics, and pulls in
//!   `protobuf`.
//!
//! Using both would mean two dependencies and two adapters from
//! [`StoredSeries`] for about 150 lines of fully specified output; the
//! writer below covers both formats from one grouping pass and is checked
//! by exact-output tests (and by `promtool check metrics` when present).
//!
//! Rules followed:
//! - families sorted by name, each once (`# HELP`, `# TYPE`, samples), series
//!   sorted by labels; a series whose kind differs from its family's is
//!   skipped (the rule validation makes that impossible);
//! - histograms as cumulative `_bucket{le=".."}` (last `+Inf`), `_sum`,
//!   `_count`;
//! - label values escape `\`, `"` and newline; HELP escapes `\` and newline
//!   (and `"` in OpenMetrics);
//! - OpenMetrics: a counter's family name has no `_total`, its sample has;
//!   `# UNIT` for families named `*_seconds` / `*_bytes`; `le` values are
//!   canonical floats (`1.0`); `# EOF` ends the text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::aggregate::DEFAULT_BUCKETS;
use super::series::{MetricKind, StoredSeries, StoredValue};
use crate::domain::rules::MetricInfo;

/// `Content-Type` of [`render_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of [`render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Prometheus,
    OpenMetrics,
}

/// The Prometheus text format 0.0.4. `metrics` gives HELP texts (and the
/// kind); a metric without an entry gets no HELP line and the kind of its
/// stored value. Empty input renders as an empty string.
pub fn render_prometheus(series: &[StoredSeries], metrics: &[MetricInfo]) -> String {
    render(series, metrics, Format::Prometheus)
}

/// OpenMetrics 1.0 text, ending with `# EOF`.
pub fn render_openmetrics(series: &[StoredSeries], metrics: &[MetricInfo]) -> String {
    render(series, metrics, Format::OpenMetrics)
}

fn render(series: &[StoredSeries], metrics: &[MetricInfo], format: Format) -> String {
    let mut families: BTreeMap<&str, Vec<&StoredSeries>> = BTreeMap::new();
    for s in series {
        families.entry(s.key.name()).or_default().push(s);
    }
    let mut out = String::new();
    for (name, mut members) in families {
        members.sort_by(|a, b| a.key.labels().cmp(b.key.labels()));
        let info = metrics.iter().find(|m| m.name == name);
        let kind = info.map_or_else(|| members[0].value.kind(), |m| m.kind);
        write_family(&mut out, name, kind, info, &members, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_family(
    out: &mut String,
    name: &str,
    kind: MetricKind,
    info: Option<&MetricInfo>,
    members: &[&StoredSeries],
    format: Format,
) {
    let family = match (format, kind) {
        (Format::OpenMetrics, MetricKind::Counter) => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    if let Some(help) = info.and_then(|m| m.help.as_deref()) {
        let _ = writeln!(out, "# HELP {family} {}", escape_help(help, format));
    }
    let _ = writeln!(out, "# TYPE {family} {}", kind.as_str());
    if format == Format::OpenMetrics
        && let Some(unit) = ["seconds", "bytes"]
            .into_iter()
            .find(|u| family.ends_with(&format!("_{u}")))
    {
        let _ = writeln!(out, "# UNIT {family} {unit}");
    }
    for s in members.iter().filter(|s| s.value.kind() == kind) {
        let labels = s.key.labels();
        match &s.value {
            StoredValue::Counter(v) => {
                let sample = match format {
                    Format::Prometheus => name.to_owned(),
                    Format::OpenMetrics => format!("{family}_total"),
                };
                sample_line(out, &sample, labels, None, *v);
            }
            StoredValue::Gauge(v) => sample_line(out, name, labels, None, *v),
            StoredValue::Histogram {
                buckets,
                count,
                sum,
            } => {
                let bucket_name = format!("{name}_bucket");
                let mut cumulative = 0u64;
                for (i, n) in buckets.iter().enumerate() {
                    cumulative += n;
                    let le = match DEFAULT_BUCKETS.get(i) {
                        Some(bound) => le_value(*bound, format),
                        None => "+Inf".to_owned(),
                    };
                    sample_line(out, &bucket_name, labels, Some(&le), cumulative as f64);
                }
                sample_line(out, &format!("{name}_sum"), labels, None, *sum);
                sample_line(out, &format!("{name}_count"), labels, None, *count as f64);
            }
        }
    }
}

fn sample_line(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    let extra = le.map(|v| ("le", v));
    let all = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra);
    let mut first = true;
    for (k, v) in all {
        out.push_str(if first { "{" } else { "," });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    out.push('\n');
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: shortest round-trip decimal, `+Inf`/`-Inf`/`NaN`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// A bucket bound: as a sample value in 0.0.4 (`1`), canonical float in
/// OpenMetrics (`1.0`).
fn le_value(bound: f64, format: Format) -> String {
    let text = number(bound);
    if format == Format::OpenMetrics && bound.is_finite() && !text.contains(['.', 'e']) {
        format!("{text}.0")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::series::{BUCKETS, SeriesKey};

    fn info(name: &str, kind: MetricKind, help: Option<&str>) -> MetricInfo {
        MetricInfo {
            name: name.into(),
            kind,
            help: help.map(Into::into),
            labels: vec![],
        }
    }

    fn series(name: &str, labels: &[(&str, &str)], value: StoredValue) -> StoredSeries {
        StoredSeries {
            key: SeriesKey::new(name, labels.iter().copied()),
            value,
        }
    }

    fn histogram() -> StoredSeries {
        let mut buckets = [0u64; BUCKETS];
        buckets[0] = 1; // <= 0.005
        buckets[9] = 2; // <= 1
        buckets[14] = 1; // +Inf
        series(
            "req_seconds",
            &[("route", "/a")],
            StoredValue::Histogram {
                buckets,
                count: 4,
                sum: 21.5,
            },
        )
    }

    #[test]
    fn empty_input() {
        assert_eq!(render_prometheus(&[], &[]), "");
        assert_eq!(render_openmetrics(&[], &[]), "# EOF\n");
    }

    #[test]
    fn counters_and_gauges_sorted_each_family_once() {
        let input = [
            series("up", &[], StoredValue::Gauge(1.0)),
            series("hits_total", &[("code", "500")], StoredValue::Counter(2.0)),
            series("hits_total", &[("code", "200")], StoredValue::Counter(7.0)),
        ];
        let meta = [info("hits_total", MetricKind::Counter, Some("Requests."))];
        assert_eq!(
            render_prometheus(&input, &meta),
            "# HELP hits_total Requests.\n\
             # TYPE hits_total counter\n\
             hits_total{code=\"200\"} 7\n\
             hits_total{code=\"500\"} 2\n\
             # TYPE up gauge\n\
             up 1\n"
        );
        assert_eq!(
            render_openmetrics(&input, &meta),
            "# HELP hits Requests.\n\
             # TYPE hits counter\n\
             hits_total{code=\"200\"} 7\n\
             hits_total{code=\"500\"} 2\n\
             # TYPE up gauge\n\
             up 1\n\
             # EOF\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let expected_buckets = [
            "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5",
            "5", "7.5", "10", "+Inf",
        ];
        let counts = [1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 4];
        let mut expected =
            String::from("# HELP req_seconds Latency.\n# TYPE req_seconds histogram\n");
        for (le, n) in expected_buckets.iter().zip(counts) {
            expected.push_str(&format!(
                "req_seconds_bucket{{route=\"/a\",le=\"{le}\"}} {n}\n"
            ));
        }
        expected
            .push_str("req_seconds_sum{route=\"/a\"} 21.5\nreq_seconds_count{route=\"/a\"} 4\n");
        let meta = [info("req_seconds", MetricKind::Histogram, Some("Latency."))];
        assert_eq!(render_prometheus(&[histogram()], &meta), expected);

        let om = render_openmetrics(&[histogram()], &meta);
        assert!(om.starts_with(
            "# HELP req_seconds Latency.\n# TYPE req_seconds histogram\n# UNIT req_seconds seconds\n\
             req_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n"
        ));
        assert!(om.contains("req_seconds_bucket{route=\"/a\",le=\"1.0\"} 3\n"));
        assert!(om.contains("req_seconds_bucket{route=\"/a\",le=\"10.0\"} 3\n"));
        assert!(om.ends_with(
            "req_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n\
             req_seconds_sum{route=\"/a\"} 21.5\nreq_seconds_count{route=\"/a\"} 4\n# EOF\n"
        ));
    }

    #[test]
    fn escaping() {
        let input = [series(
            "m_total",
            &[("q", "a\"b\\c\nd")],
            StoredValue::Counter(1.0),
        )];
        let meta = [info(
            "m_total",
            MetricKind::Counter,
            Some("say \"hi\"\\\nbye"),
        )];
        assert_eq!(
            render_prometheus(&input, &meta),
            "# HELP m_total say \"hi\"\\\\\\nbye\n# TYPE m_total counter\nm_total{q=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
        assert!(
            render_openmetrics(&input, &meta)
                .starts_with("# HELP m say \\\"hi\\\"\\\\\\nbye\n# TYPE m counter\n")
        );
    }

    #[test]
    fn special_values_and_kind_mismatch() {
        let input = [
            series("g", &[("a", "1")], StoredValue::Gauge(f64::NAN)),
            series("g", &[("a", "2")], StoredValue::Gauge(f64::NEG_INFINITY)),
            series("g", &[("a", "3")], StoredValue::Counter(1.0)),
            series("c", &[], StoredValue::Counter(1.5e-7)),
        ];
        let meta = [info("g", MetricKind::Gauge, None)];
        assert_eq!(
            render_prometheus(&input, &meta),
            "# TYPE c counter\nc 0.00000015\n# TYPE g gauge\ng{a=\"1\"} NaN\ng{a=\"2\"} -Inf\n"
        );
        // A counter named without `_total` gets it on its OpenMetrics sample.
        assert!(
            render_openmetrics(&input, &meta).starts_with("# TYPE c counter\nc_total 0.00000015\n")
        );
    }
}
