//! Every HTTP answer this crate gives for an error, in one place: the
//! feed's and status lists' ([`FeedError`]), the key documents'
//! ([`PublishError`]) and key administration's ([`KeyOpError`]). Each is a
//! JSON body `{"error", "message"}`; a `503` carries `Retry-After: 1`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::feed::FeedError;
use crate::publish::PublishError;
use crate::rotation::KeyOpError;

/// An error answer: status, code and message.
fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({ "error": code, "message": message })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

impl IntoResponse for FeedError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            FeedError::Store(e) => {
                tracing::error!(error = %e, "revocation feed: store unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            FeedError::NoKey => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            FeedError::TooManySubscribers => {
                tracing::warn!("revocation stream refused: max_subscribers are open");
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_subscribers")
            }
            FeedError::NoSuchList => (StatusCode::NOT_FOUND, "not_found"),
            FeedError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        answer(status, code, &self.to_string())
    }
}

impl IntoResponse for PublishError {
    fn into_response(self) -> Response {
        match &self {
            PublishError::Store(e) => {
                tracing::error!(error = %e, "cannot read keys for publication");
            }
            PublishError::Encode(e) => tracing::error!(error = %e, "cannot encode a key document"),
        }
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the key store is unavailable; retry later",
        )
    }
}

impl IntoResponse for KeyOpError {
    fn into_response(self) -> Response {
        match &self {
            KeyOpError::NotFound(kid) => answer(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no key has id {kid:?}"),
            ),
            KeyOpError::AlreadyRevoked(kid) => answer(
                StatusCode::CONFLICT,
                "already_revoked",
                &format!("key {kid:?} is already revoked"),
            ),
            other => {
                tracing::error!(error = %other, "key administration failed");
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the key store is unavailable; retry later",
                )
            }
        }
    }
}
