//! Shared AWS SDK configuration: region, credentials and endpoint overrides
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) from the environment.

use aws_config::{BehaviorVersion, SdkConfig};

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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
