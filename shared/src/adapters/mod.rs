//! Implementations of the ports against real services.

pub mod alert_engine;
pub mod aws;
pub mod blocklist_revoker;
pub mod chaos;
pub mod dynamodb_alerts;
pub mod dynamodb_pages;
pub mod dynamodb_response;
pub mod dynamodb_series;
pub mod dynamodb_silences;
pub mod dynamodb_store;
pub mod emf_metrics;
pub mod http_revoker;
pub mod key_layout;
pub mod memory_alerts;
pub mod memory_series;
pub mod memory_silences;
pub mod memory_store;
pub mod rules_loader;
pub mod secrets;
pub mod sns_publisher;
pub mod webhook_http;
