//! The verifier's Server-Sent Events reader: any byte stream, cut anywhere,
//! gives the same events as in one piece, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_verifier::revocation::sse_events;

fuzz_target!(|data: &[u8]| {
    let whole = sse_events(&[data]);
    if data.len() > 1 {
        let cut = usize::from(data[0]) % data.len();
        let (a, b) = data.split_at(cut);
        // A CR at the end of the first piece followed by LF is one line end
        // either way; the reader must agree with itself.
        assert_eq!(sse_events(&[a, b]), whole, "chunking changed the events");
    }
});
