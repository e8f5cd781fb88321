//! Status-list decoding: the compressed `lst` and the whole Status List
//! Token never panic, and inflation stays within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::statuslist::{StatusList, verify_status_list};

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = StatusList::from_lst(text, MAX) {
        assert!(list.as_bytes().len() <= MAX, "inflated past the bound");
    }
    let _ = verify_status_list(
        text,
        "https://issuer.test/statuslists/0",
        1_700_000_000,
        MAX,
        |_| None,
    );
});
