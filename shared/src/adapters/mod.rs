//! Implementations of the ports against real services.

pub mod aws;
pub mod cloudwatch_metrics;
pub mod dynamodb_series;
pub mod dynamodb_store;
pub mod memory_series;
pub mod memory_store;
pub mod rules_loader;
pub mod secrets;
