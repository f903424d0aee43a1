//! The log pipeline's pure core: decode a CloudWatch Logs subscription
//! payload, parse its events into records (JSON or Python text), redact
//! them, and match them with CloudWatch Logs filter patterns.

pub mod access;
pub mod decode;
pub mod filter_pattern;
pub mod json;
pub mod parse;
pub mod record;
pub mod redact;
pub mod timestamp;
