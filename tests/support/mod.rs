//! Helpers for the integration tests: the local stack's coordinates (from
//! the environment `make test` exports), and throwaway servers a test owns —
//! a Redis it can stop, a TCP listener that never answers, OIDC and TLS
//! fixtures with chosen faults; SNS topics observed through SQS queues; the
//! alert rules of the tests about the engine's mechanics; the real
//! Prometheus and Alertmanager tools.

pub mod alert_rules;
pub mod bundle;
pub mod receiver;
pub mod servers;
pub mod sns;
pub mod stack;
pub mod tools;
