//! A clock whose time moves only when told: the one test clock of the
//! workspace (unit and integration tests, the functions' tests).

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::ports::Clock;

#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.lock() = at;
    }

    pub fn advance(&self, by: Duration) {
        *self.lock() += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        // A panic while holding the lock leaves a valid time behind.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-11-30 08:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-11-30 08:00 UTC));
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2026-11-30 08:05 UTC));
        clock.set(datetime!(2026-12-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-12-01 00:00 UTC));
    }
}
