//! Implementations of the core's ports against real services: DynamoDB
//! stores, the SNS publisher, Secrets Manager and SSM, the webhook and
//! revocation HTTP clients, the rule file loader, the chaos (fault
//! injection) wrappers, the component probes (Postgres, Redis, OIDC, TLS,
//! certificates, drift) and the runner that times them out, retries' timer
//! and deadline, and the tracing subscriber.
//!
//! Depends on `monitoring-core` and the I/O crates (tokio, the AWS SDK,
//! reqwest, rustls, tokio-postgres, redis); never on `monitoring-config`:
//! an adapter takes its settings as its own types or the core's, and the
//! configuration crate builds them from the environment.

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
pub mod probe_runner;
pub mod probes;
pub mod retry;
pub mod rules_loader;
pub mod secrets;
pub mod sns_publisher;
pub mod telemetry;
pub mod webhook_http;
