//! Errors as the API returns them: a status and the JSON body
//! `{"error": {"code": "...", "message": "..."}}`, the same for every route.

use axum::extract::multipart::MultipartError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use visage_gallery::GalleryError;
use visage_image::ImageError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`unauthorized`, `busy`, `bad_image`, ...).
    pub code: &'static str,
    /// One line for a person.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413: the body is over the size limit.
    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over the limit of {limit_bytes} bytes"),
        )
    }

    /// 422: well-formed, but the photos cannot be used (no face, several faces).
    pub fn unusable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unusable_image", message)
    }

    /// 429: the inference queue is full.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "the service is at capacity (inference queue full); retry shortly",
        )
    }

    /// 500: something failed on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<GalleryError> for ApiError {
    fn from(e: GalleryError) -> Self {
        let status = match &e {
            GalleryError::UnknownPerson(_) => StatusCode::NOT_FOUND,
            GalleryError::PersonExists(_) => StatusCode::CONFLICT,
            GalleryError::InvalidName(_) | GalleryError::InvalidThreshold(_) => {
                StatusCode::BAD_REQUEST
            }
            GalleryError::Postgres { .. } | GalleryError::Sqlite { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::SERVICE_UNAVAILABLE => "gallery_unavailable",
            _ => "internal",
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "image_too_large",
                e.to_string(),
            ),
            _ => Self::new(StatusCode::BAD_REQUEST, "bad_image", e.to_string()),
        }
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is too large: {}", e.body_text()),
            )
        } else {
            Self::bad_request(format!("malformed multipart body: {}", e.body_text()))
        }
    }
}
