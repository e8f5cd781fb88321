//! Every issuer error's HTTP face, in one place: RFC 6749 §5.2 bodies for
//! `/oauth/*`, `{"error","message"}` for `/v1/*`. Store trouble is a 503 the
//! client may retry; nothing a client sends can produce a 500.

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_store::StoreError;

use crate::error::IssuerError;

/// An error from an `/oauth/*` endpoint.
#[derive(Debug)]
pub enum OAuthError {
    /// The request was refused or failed.
    Issuer(IssuerError),
    /// The form could not be read: status as the extractor judged it.
    Unreadable {
        /// 400, 413 or 415.
        status: StatusCode,
        /// What is wrong.
        detail: String,
    },
}

/// An error from a `/v1/*` endpoint.
#[derive(Debug)]
pub enum ApiError {
    /// The operation was refused or failed.
    Issuer(IssuerError),
    /// The body or query could not be read.
    Unreadable {
        /// As the extractor judged it (400, 413, 415...).
        status: StatusCode,
        /// `body` or `query`.
        part: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl From<IssuerError> for OAuthError {
    fn from(e: IssuerError) -> Self {
        OAuthError::Issuer(e)
    }
}

impl From<FormRejection> for OAuthError {
    fn from(rejection: FormRejection) -> Self {
        OAuthError::Unreadable {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<IssuerError> for ApiError {
    fn from(e: IssuerError) -> Self {
        ApiError::Issuer(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            part: "body",
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            part: "query",
            detail: rejection.body_text(),
        }
    }
}

fn store_status(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        StoreError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        StoreError::Unavailable(_) | StoreError::Busy(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

/// Marks a response as never cacheable (it carries tokens or secrets).
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let error = match self {
            OAuthError::Issuer(error) => error,
            OAuthError::Unreadable { status, detail } => return form_rejection(status, detail),
        };
        let (status, code, description): (StatusCode, &str, String) = match &error {
            IssuerError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".into(),
            ),
            IssuerError::NotAllowed(what) => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                format!("this client may not use {what}"),
            ),
            IssuerError::InvalidGrant(reason) => {
                tracing::info!(reason, "invalid_grant");
                // One description for every reason: no oracle for attackers.
                (
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is invalid, expired or revoked".into(),
                )
            }
            IssuerError::InvalidRequest(message) => {
                (StatusCode::BAD_REQUEST, "invalid_request", message.clone())
            }
            IssuerError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "supported: refresh_token, client_credentials".into(),
            ),
            IssuerError::SessionNotFound => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the refresh token is invalid, expired or revoked".into(),
            ),
            IssuerError::InvalidScope(message) => {
                (StatusCode::BAD_REQUEST, "invalid_scope", message.clone())
            }
            IssuerError::InvalidTarget(message) => {
                (StatusCode::BAD_REQUEST, "invalid_target", message.clone())
            }
            IssuerError::DpopProof(message) => {
                tracing::info!(reason = %message, "invalid_dpop_proof");
                (
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    message.clone(),
                )
            }
            IssuerError::UseDpopNonce => {
                (StatusCode::BAD_REQUEST, "use_dpop_nonce", error.to_string())
            }
            IssuerError::ClientNotFound | IssuerError::ClientEnabled => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                error.to_string(),
            ),
            IssuerError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                error.to_string(),
            ),
            IssuerError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                error.to_string(),
            ),
            IssuerError::SessionLimit => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                error.to_string(),
            ),
            IssuerError::NoSigningKey(_) | IssuerError::Key(_) => {
                tracing::error!(error = %error, "cannot sign");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "signing is not available".into(),
                )
            }
            IssuerError::Store(e) => {
                let (status, code) = store_status(e);
                tracing::error!(error = %e, "store error");
                let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "temporarily_unavailable"
                } else {
                    code
                };
                (
                    status,
                    code,
                    "the token service is temporarily unavailable".into(),
                )
            }
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": code, "error_description": description })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="tessera", charset="UTF-8""#),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let IssuerError::RateLimited {
            retry_after_secs, ..
        } = &error
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        no_store(response)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Issuer(error) => error,
            ApiError::Unreadable {
                status,
                part,
                detail,
            } => return api_rejection(status, part, detail),
        };
        let (status, code) = match &error {
            IssuerError::InvalidClient => (StatusCode::UNAUTHORIZED, "unauthorized"),
            IssuerError::NotAllowed(_) => (StatusCode::FORBIDDEN, "forbidden"),
            IssuerError::InvalidGrant(_)
            | IssuerError::InvalidRequest(_)
            | IssuerError::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "invalid_request"),
            IssuerError::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found"),
            IssuerError::InvalidScope(_) => (StatusCode::BAD_REQUEST, "invalid_scope"),
            IssuerError::InvalidTarget(_) => (StatusCode::BAD_REQUEST, "invalid_target"),
            IssuerError::DpopProof(_) => (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            IssuerError::UseDpopNonce => (StatusCode::BAD_REQUEST, "use_dpop_nonce"),
            IssuerError::ClientNotFound => (StatusCode::NOT_FOUND, "client_not_found"),
            IssuerError::ClientEnabled => (StatusCode::CONFLICT, "client_enabled"),
            IssuerError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            IssuerError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            IssuerError::SessionLimit => (StatusCode::CONFLICT, "session_limit_reached"),
            IssuerError::NoSigningKey(_) | IssuerError::Key(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "signing_unavailable")
            }
            IssuerError::Store(e) => store_status(e),
        };
        let message = match &error {
            IssuerError::Store(e) => {
                tracing::error!(error = %e, "store error");
                "the token service is temporarily unavailable".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": code, "message": message })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="tessera", charset="UTF-8""#),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let IssuerError::RateLimited {
            retry_after_secs, ..
        } = &error
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        no_store(response)
    }
}

/// A `/v1` body or query that could not be read.
fn api_rejection(status: StatusCode, what: &str, detail: String) -> Response {
    let code = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_request",
    };
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    // 422 from serde data errors is still "invalid_request"; keep it a plain 400.
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    no_store(
        (
            status,
            Json(serde_json::json!({ "error": code, "message": format!("{what}: {detail}") })),
        )
            .into_response(),
    )
}

/// An unreadable form in the RFC 6749 error shape.
fn form_rejection(status: StatusCode, detail: String) -> Response {
    let status = if status.is_client_error() && status != StatusCode::UNPROCESSABLE_ENTITY {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    no_store(
        (
            status,
            Json(serde_json::json!({ "error": "invalid_request", "error_description": detail })),
        )
            .into_response(),
    )
}
