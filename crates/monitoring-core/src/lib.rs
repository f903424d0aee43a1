//! The core of BlindspotX monitoring: the domain (probe results and the
//! health report, the log pipeline's parsing, redaction, rules and metrics,
//! alert windows, incidents and the alert engine, silences, the security
//! response to a compromise) and the ports it is written against, with pure
//! in-memory implementations of those ports.
//!
//! No I/O: its `[dependencies]` hold no async runtime, no AWS SDK, no HTTP
//! or TLS client and no database client (`tests/files/layering.rs` checks). Time
//! and retries' sleeps come in through ports ([`ports::Clock`],
//! [`ports::RetryTimer`]). It depends on no other crate of the workspace;
//! `monitoring-adapters` implements its ports, `monitoring-config` reads
//! its settings from the environment.

pub mod config;
pub mod domain;
pub mod memory;
pub mod ports;
pub mod retry;
