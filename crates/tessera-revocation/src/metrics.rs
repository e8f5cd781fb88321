//! Key-lifecycle and revocation-feed counters, through the `metrics` facade
//! (a no-op unless the binary installs the Prometheus exporter).

use metrics::{Unit, counter, describe_counter};

/// `step`: `started` (a pending key was created, by the schedule or
/// `keys rotate`), `activated` (a pending key took over signing) or
/// `emergency` (the active key was revoked and a fresh one activated).
pub(crate) fn key_rotation(step: &'static str) {
    counter!("tessera_key_rotations_total", "step" => step).increment(1);
}

/// A revocation event read from the store and sent to this instance's
/// event streams.
pub(crate) fn revocation_event(kind: tessera_store::EventKind) {
    counter!("tessera_revocation_events_total", "kind" => kind.as_str()).increment(1);
}

/// Registers the help text of these counters (once, at start).
pub fn describe() {
    describe_counter!(
        "tessera_key_rotations_total",
        Unit::Count,
        "Signing-key rotation steps on this instance, by step (started, activated, emergency)."
    );
    describe_counter!(
        "tessera_revocation_events_total",
        Unit::Count,
        "Revocation events published on this instance's feed, by kind (session, subject, key)."
    );
}
