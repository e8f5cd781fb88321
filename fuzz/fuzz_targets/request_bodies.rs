//! The `/v1` JSON bodies and the token endpoint's form: strict parsers that
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_issuer::clients::ClientChanges;
use tessera_issuer::{ElevateRequest, OpenRequest};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<OpenRequest>(data);
    let _ = serde_json::from_slice::<ElevateRequest>(data);
    let _ = serde_json::from_slice::<ClientChanges>(data);
    let _ = tessera_issuer::http::parse_token_form(data);
});
