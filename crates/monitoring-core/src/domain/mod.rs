//! The pure core: no AWS types and no I/O (time comes in as arguments or
//! through the ports).

pub mod alerts;
pub mod health_report;
pub mod heartbeat;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod probe_result;
pub mod rules;
pub mod scrub;
pub mod security_response;
pub mod silence;
pub mod timefmt;
