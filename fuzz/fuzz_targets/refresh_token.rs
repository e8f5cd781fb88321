//! Refresh-token decoding: no input authenticates under a secret it was not
//! made with, and none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::{RefreshSecret, RefreshToken};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secret = RefreshSecret::from_bytes([7u8; 32]);
    assert!(
        RefreshToken::authenticate(text, &secret).is_err(),
        "random input authenticated"
    );
});
