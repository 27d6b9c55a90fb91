//! Which HTTP status a service outcome is answered with. The service says whether a failure
//! is worth retrying ([`ServiceError::is_transient`]); the status is how an HTTP edge tells
//! the platform, and so belongs here rather than in the service.

use axum::http::StatusCode;
use rrstitch::service::ServiceError;

/// 5xx only where a retry can help (Eventarc, Pub/Sub push and Cloud Scheduler retry on 5xx),
/// 4xx for requests that will never succeed.
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::UnknownSession(_) => StatusCode::NOT_FOUND,
        ServiceError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        ServiceError::Busy { .. } | ServiceError::Superseded(_) | ServiceError::Erased(_) => {
            StatusCode::CONFLICT
        }
        e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
