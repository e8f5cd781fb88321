//! Time is a parameter: the issuer asks a [`Clock`], so tests drive time.
//! The clock itself lives in `tessera_core::time`, shared by every crate.

pub use tessera_core::time::{Clock, ManualClock, SystemClock};
