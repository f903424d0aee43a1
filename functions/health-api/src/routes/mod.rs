//! The handlers, one module per resource. Each takes the [`Access`] the
//! auth layer resolved (see `auth`) and answers errors as [`ApiError`].
//!
//! [`Access`]: crate::auth::Access
//! [`ApiError`]: crate::error::ApiError

pub mod alertmanager_v2;
pub mod health;
pub mod metrics;
pub mod silences;
