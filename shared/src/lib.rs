//! The library every BlindspotX monitoring function uses: the pure domain
//! core (`domain`), its ports, the adapters that implement them against AWS
//! and the BlindspotX dependencies, and typed configuration.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod ports;
pub mod probes;
pub mod retry;
pub mod telemetry;
