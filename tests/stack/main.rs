//! The integration tests that need the local stack (moto, Postgres, Redis,
//! the OIDC fixture, Prometheus and Alertmanager): one binary, one module
//! per capability. `make test` starts the stack and exports its
//! coordinates (test_support::stack).

mod bundle;

mod alert_engine;
mod alert_evaluator;
mod alertmanager;
mod aws_adapters;
mod chaos;
mod compromise_response;
mod health_end_to_end;
mod hostile_logs;
mod incidents_sns;
mod log_metrics_end_to_end;
mod notifier;
mod ops_cli;
mod probes;
mod prometheus;
mod redrive;
mod responder;
mod series_store;
mod silences;
mod sns_publisher;
