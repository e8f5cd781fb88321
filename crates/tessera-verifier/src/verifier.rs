//! The [`Verifier`]: one prepared [`Validation`], one key source.

use std::sync::Arc;

use tessera_core::time::{Clock, SystemClock};
use tessera_core::{
    AccessClaims, KeySet, NumericDate, TokenFormat, UntrustedToken, Validation, VerifyError,
};

#[cfg(feature = "remote")]
use crate::remote::{RemoteKeys, RemoteOptions};

/// A token whose signature, issuer, audience and validity window were checked.
///
/// Cloning is cheap (the claims are shared), which is what lets the
/// verified-token cache answer a repeat in well under a microsecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The verified claims.
    pub claims: Arc<AccessClaims>,
    /// JWT or PASETO.
    pub format: TokenFormat,
}

impl VerifiedToken {
    /// The claims as a JSON object (NumericDate times), built directly
    /// (no text in between).
    pub fn claims_json(&self) -> serde_json::Value {
        serde_json::to_value(tessera_core::claims::ClaimsJson {
            claims: &self.claims,
            times: tessera_core::claims::TimeEncoding::Numeric,
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

/// Where trusted keys come from.
enum KeySource {
    Static(KeySet),
    #[cfg(feature = "remote")]
    Remote(std::sync::Arc<RemoteKeys>),
}

/// Verifies Tessera access tokens offline.
///
/// `verify` is synchronous and touches no network: with remote keys, the
/// cache is refreshed in the background as the issuer's `Cache-Control`
/// says. [`Verifier::verify_with_refetch`] additionally fetches the key set
/// once when a token names a key not seen yet (single-flight, rate-limited).
pub struct Verifier {
    validation: Validation,
    keys: KeySource,
    clock: Arc<dyn Clock>,
    proofs: crate::dpop::ReplayCache,
    /// Tokens that verified before (none when disabled).
    cache: Option<crate::cache::TokenCache>,
    #[cfg(feature = "remote")]
    revocations: Option<std::sync::Arc<crate::revocation::Revocations>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.validation.issuer())
            .finish_non_exhaustive()
    }
}

/// Now, from the system clock (for callers of [`Verifier::verify_at`]).
pub fn system_now() -> NumericDate {
    SystemClock.date()
}

impl Verifier {
    /// A verifier trusting exactly `keys`.
    pub fn with_keys(validation: Validation, keys: KeySet) -> Self {
        Verifier {
            validation,
            keys: KeySource::Static(keys),
            clock: Arc::new(SystemClock),
            proofs: crate::dpop::ReplayCache::default(),
            cache: default_cache(),
            #[cfg(feature = "remote")]
            revocations: None,
        }
    }

    /// Keeps at most `capacity` verified tokens (0: no cache). The default
    /// is [`crate::cache::DEFAULT_CAPACITY`]: a repeated token is then
    /// answered from memory, with revocation, its key and the bearer/DPoP
    /// distinction still checked on every hit.
    #[must_use]
    pub fn with_token_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| crate::cache::TokenCache::new(capacity));
        self
    }

    /// The verified-token cache, when enabled.
    pub fn token_cache(&self) -> Option<&crate::cache::TokenCache> {
        self.cache.as_ref()
    }

    /// Reads "now" from `clock` instead of the system clock (tests drive time).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A verifier that discovers the issuer's key documents (RFC 8414 at
    /// `validation.issuer()`), fetches them now and keeps them fresh in the
    /// background. Needs a Tokio runtime.
    #[cfg(feature = "remote")]
    pub async fn from_issuer(
        validation: Validation,
        options: RemoteOptions,
    ) -> Result<Self, crate::remote::FetchError> {
        let remote = RemoteKeys::discover(validation.issuer(), options).await?;
        Ok(Verifier {
            validation,
            keys: KeySource::Remote(remote),
            clock: Arc::new(SystemClock),
            proofs: crate::dpop::ReplayCache::default(),
            cache: default_cache(),
            revocations: None,
        })
    }

    /// A verifier fetching keys from known document URLs, without discovery.
    #[cfg(feature = "remote")]
    pub async fn from_key_urls(
        validation: Validation,
        jwks_uri: &str,
        paserk_uri: Option<&str>,
        options: RemoteOptions,
    ) -> Result<Self, crate::remote::FetchError> {
        let remote =
            RemoteKeys::start(jwks_uri.to_owned(), paserk_uri.map(str::to_owned), options).await?;
        Ok(Verifier {
            validation,
            keys: KeySource::Remote(remote),
            clock: Arc::new(SystemClock),
            proofs: crate::dpop::ReplayCache::default(),
            cache: default_cache(),
            revocations: None,
        })
    }

    /// Also refuses revoked tokens, following the issuer's revocation event
    /// feed (its metadata's `revocation_events_endpoint`). Needs remote keys
    /// from discovery; fails if the feed cannot be read now.
    #[cfg(feature = "remote")]
    pub async fn with_revocation_feed(
        mut self,
        options: crate::revocation::RevocationOptions,
    ) -> Result<Self, crate::remote::FetchError> {
        let remote = self.remote_arc()?;
        let url = remote
            .endpoints()
            .revocation_events
            .ok_or_else(|| no_endpoint("revocation_events_endpoint"))?;
        self.revocations =
            Some(crate::revocation::Revocations::subscribe(&url, Some(&remote), options).await?);
        Ok(self)
    }

    /// Also refuses revoked tokens by their Token Status List entry (lists
    /// under the metadata's `status_list_uri_prefix`, signed by the issuer).
    #[cfg(feature = "remote")]
    pub fn with_status_lists(
        mut self,
        options: crate::revocation::RevocationOptions,
    ) -> Result<Self, crate::remote::FetchError> {
        let remote = self.remote_arc()?;
        let prefix = remote
            .endpoints()
            .status_list_prefix
            .ok_or_else(|| no_endpoint("status_list_uri_prefix"))?;
        self.revocations = Some(crate::revocation::Revocations::status_lists(
            &prefix, &remote, options,
        )?);
        Ok(self)
    }

    /// Also refuses revoked tokens as `revocations` says.
    #[cfg(feature = "remote")]
    pub fn with_revocations(
        mut self,
        revocations: std::sync::Arc<crate::revocation::Revocations>,
    ) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The revocation state, if revocation is checked.
    #[cfg(feature = "remote")]
    pub fn revocations(&self) -> Option<&crate::revocation::Revocations> {
        self.revocations.as_deref()
    }

    #[cfg(feature = "remote")]
    fn remote_arc(&self) -> Result<std::sync::Arc<RemoteKeys>, crate::remote::FetchError> {
        match &self.keys {
            KeySource::Remote(remote) => Ok(remote.clone()),
            KeySource::Static(_) => Err(crate::remote::FetchError::NotRemote),
        }
    }

    /// The validation policy.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// The remote key source, if keys are fetched.
    #[cfg(feature = "remote")]
    pub fn remote(&self) -> Option<&RemoteKeys> {
        match &self.keys {
            KeySource::Remote(remote) => Some(remote),
            KeySource::Static(_) => None,
        }
    }

    /// Now, as this verifier's clock reads it.
    pub fn now(&self) -> NumericDate {
        self.clock.date()
    }

    /// Verifies `token` now.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.verify_at(token, self.clock.date())
    }

    /// Verifies `token` at `now`, as a bearer token: a DPoP-bound token
    /// (`cnf.jkt`) is refused ([`VerifyError::DpopBound`]); it needs
    /// [`Verifier::verify_dpop`].
    pub fn verify_at(&self, token: &str, now: NumericDate) -> Result<VerifiedToken, VerifyError> {
        let verified = self.verify_any_at(token, now)?;
        if verified.claims.cnf.is_some() {
            return Err(VerifyError::DpopBound);
        }
        Ok(verified)
    }

    /// Verifies a DPoP-bound `token` presented with `proof` on a request of
    /// `method` to `url` (RFC 9449 §7): the token as [`Verifier::verify`]
    /// does, then the proof (`tessera_core::dpop::verify_proof`, with `ath`
    /// over this token), its key against the token's `cnf.jkt`, and its `jti`
    /// against the proofs seen before.
    pub fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<VerifiedToken, VerifyError> {
        let now = self.clock.date();
        let verified = self.verify_any_at(token, now)?;
        let Some(cnf) = &verified.claims.cnf else {
            return Err(VerifyError::NotDpopBound);
        };
        let checked = tessera_core::dpop::verify_proof(
            proof,
            &tessera_core::dpop::ProofCheck {
                method,
                url,
                now,
                max_age: crate::dpop::PROOF_MAX_AGE,
                leeway: crate::dpop::PROOF_LEEWAY,
                access_token: Some(token),
                nonce: None,
            },
        )?;
        // Thumbprints of public keys: nothing secret to compare in constant time.
        if checked.jkt != cnf.jkt {
            return Err(VerifyError::DpopKeyMismatch);
        }
        let expires = checked
            .iat
            .plus(crate::dpop::PROOF_MAX_AGE + crate::dpop::PROOF_LEEWAY);
        if !self
            .proofs
            .first_use(&checked.jkt, &checked.jti, now, expires)
        {
            return Err(VerifyError::DpopReplay);
        }
        Ok(verified)
    }

    /// Every check but the bearer/DPoP distinction: from the cache when
    /// these exact bytes verified before, else in full.
    fn verify_any_at(&self, token: &str, now: NumericDate) -> Result<VerifiedToken, VerifyError> {
        if let Some(answer) = self.cached_answer(token, now) {
            return answer;
        }
        let untrusted = UntrustedToken::parse(token, self.validation.max_token_len())?;
        let kid = untrusted.kid().to_owned();
        let verified = self.verify_untrusted(untrusted, now)?;
        if let Some(cache) = &self.cache {
            cache.insert(token, &kid, &verified, now);
        }
        Ok(verified)
    }

    /// The answer for a token whose bytes verified before: its key must
    /// still be trusted and it must not be revoked now. `None` when it is
    /// not cached (or its key is gone, when it is forgotten): verify it in
    /// full.
    fn cached_answer(
        &self,
        token: &str,
        now: NumericDate,
    ) -> Option<Result<VerifiedToken, VerifyError>> {
        let cache = self.cache.as_ref()?;
        let hit = cache.get(token, now)?;
        if !self.key_is_trusted(&hit.kid) {
            // Its key is gone from the issuer's set (or expired out of the
            // key cache): verify in full, which refuses it, and forget it.
            cache.remove(token);
            return None;
        }
        #[cfg(feature = "remote")]
        if let Some(revocations) = &self.revocations {
            let revoked = revocations
                .check_key(&hit.kid)
                .and_then(|()| revocations.check_claims(&hit.token.claims, now));
            if let Err(error) = revoked {
                return Some(Err(error));
            }
        }
        Some(Ok(hit.token))
    }

    /// Whether the key named `kid` is still one this verifier trusts (a
    /// lookup in the remote key cache: keys leave it when unpublished or
    /// past `max-age` + `stale_if_error`).
    fn key_is_trusted(&self, kid: &str) -> bool {
        match &self.keys {
            KeySource::Static(_) => true,
            #[cfg(feature = "remote")]
            KeySource::Remote(remote) => remote.get(kid).is_some(),
        }
    }

    /// The key `untrusted` names, if this verifier trusts it.
    fn key_for(&self, untrusted: &UntrustedToken<'_>) -> Result<KeyRef<'_>, VerifyError> {
        match &self.keys {
            KeySource::Static(set) => set
                .get(untrusted.kid())
                .map(KeyRef::Borrowed)
                .ok_or_else(|| unknown(untrusted)),
            #[cfg(feature = "remote")]
            KeySource::Remote(remote) => remote
                .get(untrusted.kid())
                .map(KeyRef::Shared)
                .ok_or_else(|| unknown(untrusted)),
        }
    }

    /// The full check of a parsed token: revoked key, signature, claims,
    /// revocation.
    fn verify_untrusted(
        &self,
        untrusted: UntrustedToken<'_>,
        now: NumericDate,
    ) -> Result<VerifiedToken, VerifyError> {
        let format = untrusted.format();
        #[cfg(feature = "remote")]
        if let Some(revocations) = &self.revocations {
            revocations.check_key(untrusted.kid())?;
        }
        let key = self.key_for(&untrusted)?;
        let claims = untrusted.verify(key.get(), &self.validation, now)?;
        self.finish(claims, format, now)
    }

    /// Revocation of verified claims, then the answer.
    fn finish(
        &self,
        claims: AccessClaims,
        format: TokenFormat,
        now: NumericDate,
    ) -> Result<VerifiedToken, VerifyError> {
        #[cfg(feature = "remote")]
        if let Some(revocations) = &self.revocations {
            revocations.check_claims(&claims, now)?;
        }
        #[cfg(not(feature = "remote"))]
        let _ = now;
        Ok(VerifiedToken {
            claims: Arc::new(claims),
            format,
        })
    }

    /// Verifies many bearer tokens at once (a gateway's burst of distinct
    /// tokens): as [`Verifier::verify`] would one by one, in order, but with
    /// the Ed25519 signatures of EdDSA JWTs checked in one batch
    /// (`tessera_core::token::verify_batch`; a failed batch falls back to
    /// single checks to find the culprits). Cached tokens are answered from
    /// the cache; tokens that verify enter it.
    pub fn verify_batch(&self, tokens: &[&str]) -> Vec<Result<VerifiedToken, VerifyError>> {
        let now = self.clock.date();
        let mut answers: Vec<Option<Result<VerifiedToken, VerifyError>>> =
            Vec::with_capacity(tokens.len());
        let mut pending = Vec::new();
        let mut keys = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            if let Some(answer) = self.cached_answer(token, now) {
                answers.push(Some(answer.and_then(|verified| {
                    if verified.claims.cnf.is_some() {
                        Err(VerifyError::DpopBound)
                    } else {
                        Ok(verified)
                    }
                })));
                continue;
            }
            let prepared = UntrustedToken::parse(token, self.validation.max_token_len()).and_then(
                |untrusted| {
                    #[cfg(feature = "remote")]
                    if let Some(revocations) = &self.revocations {
                        revocations.check_key(untrusted.kid())?;
                    }
                    let key = self.key_for(&untrusted)?;
                    Ok((untrusted, key))
                },
            );
            match prepared {
                Ok((untrusted, key)) => {
                    answers.push(None);
                    pending.push((i, untrusted));
                    keys.push(key);
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let kids: Vec<String> = pending.iter().map(|(_, u)| u.kid().to_owned()).collect();
        let formats: Vec<TokenFormat> = pending.iter().map(|(_, u)| u.format()).collect();
        let batch = pending
            .into_iter()
            .zip(keys.iter())
            .map(|((i, untrusted), key)| (i, (untrusted, key.get())))
            .collect::<Vec<_>>();
        let (indices, batch): (Vec<usize>, Vec<_>) = batch.into_iter().unzip();
        let results = tessera_core::token::verify_batch(batch, &self.validation, now);
        for (((i, result), kid), format) in indices.into_iter().zip(results).zip(kids).zip(formats)
        {
            let answer = result
                .and_then(|claims| self.finish(claims, format, now))
                .and_then(|verified| {
                    if let Some(cache) = &self.cache {
                        cache.insert(tokens[i], &kid, &verified, now);
                    }
                    if verified.claims.cnf.is_some() {
                        Err(VerifyError::DpopBound)
                    } else {
                        Ok(verified)
                    }
                });
            answers[i] = Some(answer);
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(VerifyError::BadSignature)))
            .collect()
    }

    /// Like [`Verifier::verify`], but a token naming an unknown key makes the
    /// verifier fetch the key documents once (shared by all concurrent callers,
    /// at most once per `unknown_kid_interval`) and try again.
    pub async fn verify_with_refetch(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        #[cfg(feature = "remote")]
        if let KeySource::Remote(remote) = &self.keys {
            let seen = remote.generation();
            let result = match self.verify(token) {
                Err(VerifyError::UnknownKey { .. })
                    if remote.refetch_for_unknown_kid(seen).await =>
                {
                    self.verify(token)
                }
                other => other,
            };
            // Status-list mode: a list not cached yet is fetched once, then
            // the token is judged again.
            if let (Err(VerifyError::RevocationStale { .. }), Some(revocations)) =
                (&result, &self.revocations)
                && let Ok(untrusted) = UntrustedToken::parse(token, self.validation.max_token_len())
                && let Some(key) = remote.get(untrusted.kid())
                && let Ok(claims) = untrusted.verify(&key, &self.validation, self.clock.date())
            {
                revocations.prepare(&claims).await;
                return self.verify(token);
            }
            return result;
        }
        self.verify(token)
    }
}

#[cfg(feature = "remote")]
fn no_endpoint(name: &'static str) -> crate::remote::FetchError {
    crate::remote::FetchError::NoEndpoint { name }
}

/// The default cache of a new verifier.
fn default_cache() -> Option<crate::cache::TokenCache> {
    Some(crate::cache::TokenCache::new(
        crate::cache::DEFAULT_CAPACITY,
    ))
}

/// A key from a static set (borrowed) or from the remote cache (shared).
enum KeyRef<'a> {
    Borrowed(&'a tessera_core::VerificationKey),
    #[cfg(feature = "remote")]
    Shared(Arc<tessera_core::VerificationKey>),
}

impl KeyRef<'_> {
    fn get(&self) -> &tessera_core::VerificationKey {
        match self {
            KeyRef::Borrowed(key) => key,
            #[cfg(feature = "remote")]
            KeyRef::Shared(key) => key,
        }
    }
}

fn unknown(untrusted: &UntrustedToken<'_>) -> VerifyError {
    VerifyError::UnknownKey {
        kid: untrusted.kid().to_owned(),
    }
}
