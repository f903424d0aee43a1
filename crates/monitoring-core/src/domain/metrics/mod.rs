//! Metrics derived from logs: series identity, per-batch aggregation with a
//! cardinality guard, and rendering as CloudWatch Embedded Metric Format.

pub mod aggregate;
pub mod cloudwatch;
pub mod emf;
pub mod exposition;
pub mod series;
