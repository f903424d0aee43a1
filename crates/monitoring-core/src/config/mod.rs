//! The vocabulary of configuration the ports and adapters speak: the error
//! that names the variable at fault ([`ConfigError`]), the environment as a
//! map ([`Env`]), and secret values and where they come from ([`Secret`],
//! [`SecretSource`]). Each function's typed configuration is
//! `monitoring-config`'s.

pub mod env;
pub mod secret;

pub use env::{ConfigError, Env};
pub use secret::{Secret, SecretSource};
