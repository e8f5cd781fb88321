//! JWS and PASETO parsing and verification: any input is refused (never a
//! panic, never a verified token), whatever key it is checked against.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_core::{
    Algorithm, NumericDate, SigningKey, UntrustedToken, Validation, VerificationKey,
};

fn keys() -> &'static [VerificationKey] {
    static KEYS: OnceLock<Vec<VerificationKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public]
            .into_iter()
            .filter_map(|alg| SigningKey::generate(alg).ok())
            .map(|k| k.verification_key().clone())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(validation) = Validation::new("https://issuer.test", ["api"]) else {
        return;
    };
    let now = NumericDate::from_unix(1_700_000_000);
    for key in keys() {
        // Parsing consumes nothing; verification consumes the parsed token.
        let Ok(untrusted) = UntrustedToken::parse(text, validation.max_token_len()) else {
            return;
        };
        let _ = untrusted.kid();
        assert!(
            untrusted.verify(key, &validation, now).is_err(),
            "random input verified"
        );
    }
});
