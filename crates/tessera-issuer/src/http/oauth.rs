//! `/oauth/token`, `/oauth/revoke`, `/oauth/introspect` (form-encoded, RFC 6749 errors).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroize;

use super::auth::{authenticate, basic, context, require_basic};
use super::errors::{OAuthError, no_store};
use super::schema::{Introspection, OAuthErrorBody, TokenFormDoc};
use crate::clients::{AuthenticatedClient, Credentials};
use crate::{Issuer, IssuerError};

/// The parameters Tessera reads; others are ignored (RFC 6749 §3.2).
#[derive(Deserialize, Default)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    token: Option<String>,
}

impl Drop for TokenForm {
    fn drop(&mut self) {
        if let Some(secret) = &mut self.client_secret {
            secret.zeroize();
        }
    }
}

/// Basic for confidential clients, `client_id` alone for public ones.
async fn client(
    issuer: &Issuer,
    headers: &HeaderMap,
    extensions: &Extensions,
    form: &TokenForm,
) -> Result<Arc<AuthenticatedClient>, IssuerError> {
    if form.client_secret.is_some() {
        return Err(IssuerError::InvalidRequest(
            "send client credentials with HTTP Basic, not in the body".into(),
        ));
    }
    let credentials = match (basic(headers)?, &form.client_id) {
        (Some(Credentials::Basic { id, secret }), Some(form_id)) if *form_id != id => {
            drop(secret);
            return Err(IssuerError::InvalidRequest(
                "client_id differs from the authenticated client".into(),
            ));
        }
        (Some(basic), _) => basic,
        (None, Some(id)) => Credentials::Public { id: id.clone() },
        (None, None) => return Err(IssuerError::InvalidClient),
    };
    authenticate(issuer, credentials, extensions).await
}

/// A `200` JSON answer that is never cached (RFC 6749 §5.1).
fn ok_json(body: impl serde::Serialize) -> Result<Response, OAuthError> {
    Ok(no_store((StatusCode::OK, Json(body)).into_response()))
}

/// The token endpoint (RFC 6749): `refresh_token` rotates a session's
/// refresh token and mints an access token; `client_credentials` mints one
/// for a confidential client. A `DPoP` header (RFC 9449) binds the tokens.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenFormDoc, content_type = "application/x-www-form-urlencoded"),
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449)")),
    responses(
        (status = 200, description = "Tokens", body = crate::sessions::TokenPair),
        (status = 400, description = "Bad request (`invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_dpop_proof`, `use_dpop_nonce`, ...)", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = OAuthErrorBody),
        (status = 503, description = "The store is unavailable; retry (`temporarily_unavailable`)", body = OAuthErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub(super) async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let mut response = match exchange(&issuer, &headers, &extensions, form).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    // RFC 9449 §8: a fresh nonce on every answer, so clients keep one.
    if let Some(nonce) = issuer.dpop_nonce()
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
    response
}

/// The `DPoP-Nonce` response header (RFC 9449 §8).
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The one `DPoP` header of a request, if any (RFC 9449 §4.3: more than one
/// is an invalid proof).
fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, IssuerError> {
    let mut values = headers.get_all("dpop").iter();
    let (Some(first), None) = (values.next(), values.next()) else {
        return if headers.contains_key("dpop") {
            Err(IssuerError::DpopProof(
                "exactly one DPoP header is allowed".into(),
            ))
        } else {
            Ok(None)
        };
    };
    first
        .to_str()
        .map(Some)
        .map_err(|_| IssuerError::DpopProof("the DPoP header is not a JWT".into()))
}

async fn exchange(
    issuer: &Issuer,
    headers: &HeaderMap,
    extensions: &Extensions,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form?;
    let proof = dpop_header(headers)?;
    let grant = form
        .grant_type
        .as_deref()
        .ok_or_else(|| IssuerError::InvalidRequest("grant_type is required".into()))?;
    let pair = match grant {
        "refresh_token" => {
            // Refusals before the exchange itself count as refresh outcomes too.
            let ready = async {
                let presented = form.refresh_token.as_deref().ok_or_else(|| {
                    IssuerError::InvalidRequest("refresh_token is required".into())
                })?;
                let client = client(issuer, headers, extensions, &form).await?;
                let proof = issuer.token_proof(proof).await?;
                Ok::<_, IssuerError>((presented, client, proof))
            }
            .await;
            let (presented, client, proof) = ready.inspect_err(|e| {
                crate::metrics::refresh(crate::metrics::Refresh::of_error(e));
            })?;
            issuer
                .refresh_with_proof(
                    &client,
                    presented,
                    form.scope.as_deref(),
                    proof.as_ref(),
                    &context(headers, extensions),
                )
                .await
        }
        "client_credentials" => {
            let client = client(issuer, headers, extensions, &form).await?;
            let proof = issuer.token_proof(proof).await?;
            issuer
                .client_credentials(
                    &client,
                    form.scope.as_deref(),
                    form.audience.as_deref(),
                    proof.as_ref(),
                )
                .await
        }
        _ => Err(IssuerError::UnsupportedGrantType),
    }?;
    ok_json(pair)
}

/// Token revocation (RFC 7009): a refresh token (or an access token with a
/// `sid`) of the calling client ends its session. Unknown tokens: 200 too.
#[utoipa::path(
    operation_id = "revoke_token",
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = TokenFormDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "Bad request (`invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_dpop_proof`, `use_dpop_nonce`, ...)", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = OAuthErrorBody),
        (status = 503, description = "The store is unavailable; retry (`temporarily_unavailable`)", body = OAuthErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub(super) async fn revoke(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form?;
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| IssuerError::InvalidRequest("token is required".into()))?;
    let client = client(&issuer, &headers, &extensions, &form).await?;
    issuer
        .revoke_token(&client, token, &context(&headers, &extensions))
        .await?;
    ok_json(serde_json::json!({}))
}

/// Token introspection (RFC 7662), for clients with the `introspect`
/// permission; `active: false` for tokens the caller may not see.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(content = TokenFormDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state and claims", body = Introspection),
        (status = 400, description = "Bad request (`invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_dpop_proof`, `use_dpop_nonce`, ...)", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = OAuthErrorBody),
        (status = 503, description = "The store is unavailable; retry (`temporarily_unavailable`)", body = OAuthErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn introspect(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form?;
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| IssuerError::InvalidRequest("token is required".into()))?;
    let caller = authenticate(&issuer, require_basic(&headers)?, &extensions).await?;
    ok_json(issuer.introspect(&caller, token).await?)
}
