//! One place that turns engine errors into HTTP answers: a status and a JSON body saying what was wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::SqlErr;

use crate::error::{Error, StorageFailure};
use crate::wire::ErrorBody;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An answer with this status and message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, body: ErrorBody { detail: detail.into(), error_class: None, error_message: None } }
    }

    /// 400: the request is malformed or its data invalid.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 403: understood, not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// A certificate error, with Morango's error class as Python Morango answers it.
    pub fn certificate(status: StatusCode, class: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            status,
            body: ErrorBody {
                detail: format!("{class}: {message}"),
                error_class: Some(class.to_owned()),
                error_message: Some(message),
            },
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        if let Some(failure) = error.storage_failure() {
            tracing::error!(%error, "morango API request failed: {}", failure.describe());
            let status = match failure {
                StorageFailure::Full => StatusCode::INSUFFICIENT_STORAGE,
                StorageFailure::ReadOnly | StorageFailure::Unavailable | StorageFailure::Conflict => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            return ApiError::new(status, format!("{} ({error}); try again later", failure.describe()));
        }
        if let Error::Certificate(error) = &error
            && !error.is_internal()
        {
            return ApiError::certificate(StatusCode::BAD_REQUEST, error.error_class(), error.to_string());
        }
        let status = match &error {
            Error::Invalid(_) | Error::Fsic(_) => StatusCode::BAD_REQUEST,
            Error::Certificate(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Session(_) => StatusCode::CONFLICT,
            Error::Capacity(_) => StatusCode::INSUFFICIENT_STORAGE,
            // Two requests raced to create the same row: the loser is told, the server is fine.
            Error::Db { source, .. } if matches!(source.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return ApiError::new(StatusCode::CONFLICT, "a concurrent request created the same object; try again");
            }
            Error::Db { .. } | Error::Schema(_) | Error::Hook(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Peer { .. } | Error::Remote { .. } | Error::Transport { .. } => StatusCode::BAD_GATEWAY,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "morango API request failed");
            return ApiError::new(status, "internal error");
        }
        match error {
            // Morango's own wording, without the engine's "forbidden: " prefix (clients match on these texts).
            Error::Forbidden(message)
            | Error::NotFound(message)
            | Error::Session(message)
            | Error::Capacity(message) => ApiError::new(status, message),
            other => ApiError::new(status, other.to_string()),
        }
    }
}

impl From<crate::certificate::CertificateError> for ApiError {
    fn from(error: crate::certificate::CertificateError) -> Self {
        ApiError::from(Error::from(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
