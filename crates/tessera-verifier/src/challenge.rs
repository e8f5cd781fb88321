//! How a refusal looks on the wire: the status and the `WWW-Authenticate`
//! challenge of RFC 6750 §3 and RFC 9470 §3. One place maps every reason.

use tessera_core::VerifyError;

use crate::requirements::AccessDenied;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
    #[error("no access token")]
    Missing,
    /// Unparseable `Authorization` header or several of them.
    #[error("malformed authorization header")]
    BadRequest,
    /// The token did not verify.
    #[error("{0}")]
    Invalid(#[from] VerifyError),
    /// A sender-constrained (DPoP) token presented as a bearer token (RFC 9449 §7.2).
    #[error("token is sender-constrained (DPoP) and cannot be used as a bearer token")]
    SenderConstrained,
    /// The DPoP proof sent with a token was refused (RFC 9449 §7.1
    /// `invalid_dpop_proof`).
    #[error("{0}")]
    InvalidDpopProof(VerifyError),
    /// The token is valid but not sufficient.
    #[error("{0}")]
    Denied(#[from] AccessDenied),
}

impl Rejection {
    /// The HTTP status: 400, 401 or 403.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest => 400,
            Rejection::Denied(AccessDenied::InsufficientScope { .. }) => 403,
            _ => 401,
        }
    }

    /// The RFC 6750 error code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Rejection::Missing => None,
            Rejection::BadRequest => Some("invalid_request"),
            Rejection::Invalid(_) | Rejection::SenderConstrained => Some("invalid_token"),
            Rejection::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Rejection::Denied(AccessDenied::InsufficientScope { .. }) => Some("insufficient_scope"),
            Rejection::Denied(AccessDenied::InsufficientUserAuthentication { .. }) => {
                Some("insufficient_user_authentication")
            }
        }
    }

    /// The refusal of a request that used the `DPoP` scheme: token errors
    /// are DPoP's too (RFC 9449 §7.1).
    pub fn from_dpop(error: VerifyError) -> Self {
        match error {
            VerifyError::Dpop(_) | VerifyError::DpopKeyMismatch | VerifyError::DpopReplay => {
                Rejection::InvalidDpopProof(error)
            }
            other => Rejection::Invalid(other),
        }
    }

    /// The `WWW-Authenticate` value of the `DPoP` scheme (RFC 9449 §7.1),
    /// naming the proof algorithms accepted.
    pub fn dpop_challenge(&self, realm: Option<&str>) -> String {
        self.challenge("DPoP", realm, true)
    }

    /// The `WWW-Authenticate` header value.
    pub fn www_authenticate(&self, realm: Option<&str>) -> String {
        self.challenge("Bearer", realm, false)
    }

    fn challenge(&self, scheme: &str, realm: Option<&str>, algs: bool) -> String {
        let mut out = String::from(scheme);
        let mut sep = " ";
        let mut param = |out: &mut String, name: &str, value: &str| {
            out.push_str(sep);
            out.push_str(name);
            out.push_str("=\"");
            push_quoted_safe(out, value);
            out.push('"');
            sep = ", ";
        };
        if let Some(realm) = realm {
            param(&mut out, "realm", realm);
        }
        if algs {
            param(&mut out, "algs", "EdDSA ES256");
        }
        if let Some(code) = self.error_code() {
            param(&mut out, "error", code);
            param(&mut out, "error_description", &self.to_string());
        }
        match self {
            Rejection::Denied(AccessDenied::InsufficientScope { required }) => {
                param(&mut out, "scope", required);
            }
            Rejection::Denied(AccessDenied::InsufficientUserAuthentication {
                max_age,
                acr_values,
            }) => {
                if let Some(max_age) = max_age {
                    param(&mut out, "max_age", &max_age.as_secs().to_string());
                }
                if let Some(acr_values) = acr_values {
                    param(&mut out, "acr_values", acr_values);
                }
            }
            _ => {}
        }
        out
    }
}

/// RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E inside quoted values: no
/// quote, no backslash, nothing outside printable ASCII.
fn push_quoted_safe(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| match c {
        '"' | '\\' => '\'',
        ' '..='~' => c,
        _ => '?',
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tessera_core::ClaimError;

    #[test]
    fn challenges_follow_rfc_6750_and_9470() {
        let cases: Vec<(Rejection, u16, &str)> = vec![
            (Rejection::Missing, 401, r#"Bearer realm="api""#),
            (
                Rejection::Invalid(VerifyError::Claims(ClaimError::WrongAudience)),
                401,
                r#"Bearer realm="api", error="invalid_token", error_description="claims rejected: audience does not match""#,
            ),
            (
                Rejection::Denied(AccessDenied::InsufficientScope {
                    required: "read write".into(),
                }),
                403,
                r#"Bearer realm="api", error="insufficient_scope", error_description="insufficient scope: requires read write", scope="read write""#,
            ),
            (
                Rejection::Denied(AccessDenied::InsufficientUserAuthentication {
                    max_age: Some(Duration::from_secs(300)),
                    acr_values: None,
                }),
                401,
                r#"Bearer realm="api", error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", max_age="300""#,
            ),
            (
                Rejection::Denied(AccessDenied::InsufficientUserAuthentication {
                    max_age: None,
                    acr_values: Some("gold platinum".into()),
                }),
                401,
                r#"Bearer realm="api", error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", acr_values="gold platinum""#,
            ),
            (
                Rejection::BadRequest,
                400,
                r#"Bearer realm="api", error="invalid_request", error_description="malformed authorization header""#,
            ),
        ];
        for (rejection, status, header) in cases {
            assert_eq!(rejection.status(), status, "{rejection:?}");
            assert_eq!(
                rejection.www_authenticate(Some("api")),
                header,
                "{rejection:?}"
            );
        }
    }

    #[test]
    fn dpop_refusals_challenge_with_the_dpop_scheme() {
        let proof = Rejection::from_dpop(VerifyError::DpopReplay);
        assert_eq!(proof.error_code(), Some("invalid_dpop_proof"));
        assert_eq!(
            proof.dpop_challenge(Some("api")),
            r#"DPoP realm="api", algs="EdDSA ES256", error="invalid_dpop_proof", error_description="the DPoP proof was used before""#
        );
        let token = Rejection::from_dpop(VerifyError::Claims(ClaimError::WrongAudience));
        assert_eq!(token.error_code(), Some("invalid_token"));
        assert_eq!(
            Rejection::Missing.dpop_challenge(None),
            r#"DPoP algs="EdDSA ES256""#
        );
    }

    #[test]
    fn attacker_text_cannot_break_the_header() {
        let kid = "a\"b\\c".to_owned();
        let header = Rejection::Invalid(VerifyError::UnknownKey { kid }).www_authenticate(None);
        assert!(!header.contains('\\'), "{header}");
        assert_eq!(header.matches('"').count(), 4, "{header}");
    }
}
