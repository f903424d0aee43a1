//! One probe per component of the health check, each an implementation of
//! [`monitoring_core::ports::Probe`].

pub mod certificates;
pub mod drift;
pub mod oidc;
pub mod postgres;
pub mod redis;
pub mod tls;
