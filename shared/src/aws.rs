//! What the AWS adapters (S3 storage, DynamoDB index) share: one SDK configuration with
//! bounded retries and timeouts, and one classification of SDK failures.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// The SDK's default chain (credentials, region, `AWS_ENDPOINT_URL`), with at most three
/// attempts (exponential backoff with jitter) and timeouts, so a dead endpoint fails within
/// seconds and the platform's own retry takes over.
pub(crate) async fn sdk_config() -> aws_config::SdkConfig {
    configured(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// An explicit emulator endpoint with test credentials: what tests use, so that parallel
/// tests against different emulators never race on process-wide environment variables.
pub(crate) async fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "emulator");
    configured(aws_config::defaults(BehaviorVersion::latest()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await
}

fn configured(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        )
}

/// What an SDK failure means to rrstitch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    NoSuchBucket,
    NotFound,
    /// A conditional write lost (412, or DynamoDB's ConditionalCheckFailed).
    Precondition,
    /// No answer, a timeout, throttling or a 5xx: worth retrying.
    Transient,
    Permanent,
}

pub(crate) fn failure<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Failure {
    let SdkError::ServiceError(service) = err else {
        return Failure::Transient;
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code().unwrap_or_default();
    match (status, code) {
        (_, "NoSuchBucket") => Failure::NoSuchBucket,
        (404, _) | (_, "NoSuchKey" | "NotFound" | "NoSuchUpload") => Failure::NotFound,
        (412, _) | (_, "PreconditionFailed" | "ConditionalCheckFailedException") => {
            Failure::Precondition
        }
        // A concurrent conditional write on the same key: the other writer won.
        (409, _) | (_, "ConditionalRequestConflict" | "TransactionConflictException") => {
            Failure::Precondition
        }
        (429, _) | (500..=599, _) => Failure::Transient,
        (
            _,
            "SlowDown"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded",
        ) => Failure::Transient,
        _ => Failure::Permanent,
    }
}
