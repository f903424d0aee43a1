//! The pure core: no AWS types and no I/O beyond timers.

pub mod alerts;
pub mod health_report;
pub mod heartbeat;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod probe_result;
pub mod probe_runner;
pub mod response;
pub mod rules;
pub mod scrub;
pub mod silence;
pub mod timefmt;
