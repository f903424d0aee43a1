//! Liveness marks the bundle keeps in the monitoring table, each a
//! `HEARTBEAT#<name>` item holding the time of the latest beat.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Heartbeat {
    /// The drift job's own log records (a scan started, completed or
    /// failed), refreshed by log-metrics; the drift probe's default
    /// freshness source.
    DriftScan,
    /// Every log batch ingested, refreshed by the alert engine ("newer
    /// wins"); the log-silence rule reads it.
    LogDelivery,
}

impl Heartbeat {
    /// Its name in the table key and in logs.
    pub const fn name(self) -> &'static str {
        match self {
            Heartbeat::DriftScan => "drift_scan",
            Heartbeat::LogDelivery => "log_delivery",
        }
    }
}

impl fmt::Display for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_keys() {
        // Renaming one would orphan the items existing stacks hold.
        assert_eq!(Heartbeat::DriftScan.name(), "drift_scan");
        assert_eq!(Heartbeat::LogDelivery.to_string(), "log_delivery");
    }
}
