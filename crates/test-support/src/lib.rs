//! The test kit of the workspace, for unit and integration tests alike
//! (a dev-dependency; never in a Lambda binary): the local stack's coordinates (from
//! the environment `make test` exports), and throwaway servers a test owns —
//! a Redis it can stop, a TCP listener that never answers, OIDC and TLS
//! fixtures with chosen faults; SNS topics observed through SQS queues; the
//! alert rules of the tests about the engine's mechanics; the real
//! Prometheus and Alertmanager tools.

pub mod alert_rules;
pub mod logs;
pub mod receiver;
pub mod servers;
pub mod sns;
pub mod stack;
pub mod tools;
