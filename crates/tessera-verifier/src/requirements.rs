//! Per-route requirements beyond a valid token: scopes (RFC 6750) and a
//! recent or strong enough login (RFC 9470 step-up).

use std::time::Duration;

use tessera_core::{AccessClaims, NumericDate};

/// What a route needs from an already verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    scopes: Vec<String>,
    max_age: Option<Duration>,
    acr_values: Vec<String>,
}

/// Why a valid token is not enough for this route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessDenied {
    /// A required scope was not granted (RFC 6750 `insufficient_scope`, 403).
    #[error("insufficient scope: requires {required}")]
    InsufficientScope {
        /// All scopes the route requires, space-separated.
        required: String,
    },
    /// The login is too old or too weak (RFC 9470, 401).
    #[error("a more recent or stronger authentication is required")]
    InsufficientUserAuthentication {
        /// The route's `max_age`, when that was the reason.
        max_age: Option<Duration>,
        /// Acceptable `acr` values, space-separated, when that was the reason.
        acr_values: Option<String>,
    },
}

impl Requirements {
    /// No requirement beyond a valid token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `scope` to have been granted (repeat for several).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Requires the subject to have authenticated within `max_age` (`auth_time`).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Accepts `acr` as a sufficient authentication context (repeat for several).
    pub fn acr(mut self, acr: impl Into<String>) -> Self {
        self.acr_values.push(acr.into());
        self
    }

    /// Whether `claims` meet every requirement at `now`.
    pub fn check(&self, claims: &AccessClaims, now: NumericDate) -> Result<(), AccessDenied> {
        if !self.scopes.iter().all(|s| claims.has_scope(s)) {
            return Err(AccessDenied::InsufficientScope {
                required: self.scopes.join(" "),
            });
        }
        if let Some(max_age) = self.max_age {
            let fresh = claims.auth_time.is_some_and(|at| at >= now.minus(max_age));
            if !fresh {
                return Err(AccessDenied::InsufficientUserAuthentication {
                    max_age: Some(max_age),
                    acr_values: None,
                });
            }
        }
        if !self.acr_values.is_empty() {
            let strong = claims
                .acr
                .as_deref()
                .is_some_and(|acr| self.acr_values.iter().any(|a| a == acr));
            if !strong {
                return Err(AccessDenied::InsufficientUserAuthentication {
                    max_age: None,
                    acr_values: Some(self.acr_values.join(" ")),
                });
            }
        }
        Ok(())
    }
}
