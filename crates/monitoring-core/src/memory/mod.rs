//! In-memory implementations of the ports: pure (a mutex and a map, no
//! I/O), for the core's own tests, the functions' and integration tests,
//! the replay tool and the benches.

pub mod alerts;
pub mod clock;
pub mod series;
pub mod silences;
pub mod store;
