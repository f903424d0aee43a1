//! Shared AWS SDK configuration, from the environment only: what Lambda
//! gives a function.
//!
//! Lambda hands every function its region (`AWS_REGION`) and its role's
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) as variables. `aws_config::load` would also look
//! for profile files, SSO, web identity, ECS and IMDS, none of which a
//! function has; reading only the variables keeps those clients (and their
//! STS client) out of every binary, about 0.5 MB each, and out of the
//! start. `AWS_ENDPOINT_URL` points every client at the local stack.

use std::time::Duration;

use aws_config::BehaviorVersion;
/// Re-exported so the functions name the SDK configuration without a
/// dependency of their own on aws-config.
pub use aws_config::SdkConfig;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::identity::IdentityCache;
use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::SharedCredentialsProvider;

/// `AWS_MAX_ATTEMPTS` when unset: the SDK's standard mode.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The SDK's own default, kept explicit.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_from(|name| std::env::var(name).ok()).await
}

/// [`load_sdk_config`] with the variables from `var` (credentials and region
/// still come from the process environment, as the SDK's providers read it).
async fn sdk_config_from(var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let region = EnvironmentVariableRegionProvider::new().region().await;
    let max_attempts = var("AWS_MAX_ATTEMPTS")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        );
    if let Some(url) = var("AWS_ENDPOINT_URL").filter(|u| !u.trim().is_empty()) {
        builder = builder.endpoint_url(url.trim());
    }
    builder.build()
}

/// A short description of an SDK error: the service's code and message where
/// there is one, never the raw request. Every `aws-sdk-*` crate re-exports
/// the same `SdkError`, so this serves them all.
pub fn describe_sdk_error<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("ServiceError"),
                e.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "request timed out".to_owned(),
        SdkError::DispatchFailure(d) => {
            if d.is_io() {
                "connection failed".to_owned()
            } else if d.is_timeout() {
                "connection timed out".to_owned()
            } else {
                "request could not be sent".to_owned()
            }
        }
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_owned(),
        _ => "unknown SDK error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[tokio::test]
    async fn endpoint_and_attempts_come_from_the_environment() {
        let sdk = sdk_config_from(vars(&[
            ("AWS_ENDPOINT_URL", " http://127.0.0.1:5000 "),
            ("AWS_MAX_ATTEMPTS", "5"),
        ]))
        .await;
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(sdk.retry_config().map(RetryConfig::max_attempts), Some(5));
        assert!(sdk.credentials_provider().is_some());
        assert_eq!(
            sdk.timeout_config()
                .and_then(TimeoutConfig::connect_timeout),
            Some(CONNECT_TIMEOUT)
        );
    }

    #[tokio::test]
    async fn defaults_without_variables() {
        let sdk = sdk_config_from(vars(&[("AWS_MAX_ATTEMPTS", "zero")])).await;
        assert_eq!(sdk.endpoint_url(), None, "AWS's own endpoints");
        assert_eq!(
            sdk.retry_config().map(RetryConfig::max_attempts),
            Some(DEFAULT_MAX_ATTEMPTS)
        );
    }
}
