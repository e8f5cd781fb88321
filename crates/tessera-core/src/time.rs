//! Time: the two units Tessera counts in, and the one clock.
//!
//! * [`NumericDate`]: whole seconds since the Unix epoch, as tokens carry
//!   them (RFC 7519 NumericDate).
//! * [`Timestamp`]: milliseconds since the Unix epoch, as the store keeps
//!   them.
//!
//! They convert only by name ([`Timestamp::to_numeric_date`],
//! [`NumericDate::to_timestamp`]), never by reaching into the number. Every
//! reading of the wall clock goes through a [`Clock`]; [`SystemClock`] is the
//! one place it is read (`clippy.toml` bans the direct calls elsewhere).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch (RFC 7519 NumericDate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NumericDate(i64);

impl NumericDate {
    /// The date `secs` seconds after the epoch.
    pub const fn from_unix(secs: i64) -> Self {
        NumericDate(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// A wall-clock time, rounded down to the second.
    pub fn from_system_time(at: SystemTime) -> Self {
        match at.duration_since(UNIX_EPOCH) {
            Ok(after) => NumericDate(whole_secs(after)),
            Err(before) => NumericDate(whole_secs(before.duration()).saturating_neg()),
        }
    }

    /// This date as a [`Timestamp`] (the start of its second).
    pub const fn to_timestamp(self) -> Timestamp {
        Timestamp(self.0.saturating_mul(1000))
    }

    /// This date moved later by `by`, saturating.
    pub fn plus(self, by: Duration) -> Self {
        NumericDate(self.0.saturating_add(whole_secs(by)))
    }

    /// This date moved earlier by `by`, saturating.
    pub fn minus(self, by: Duration) -> Self {
        NumericDate(self.0.saturating_sub(whole_secs(by)))
    }

    /// How long after `earlier` this date is; zero if it is not after.
    pub fn since(self, earlier: NumericDate) -> Duration {
        Duration::from_secs(
            self.0
                .saturating_sub(earlier.0)
                .try_into()
                .unwrap_or_default(),
        )
    }

    /// The date as RFC 3339 text (`None` outside years 1–9999).
    pub fn to_rfc3339(self) -> Option<String> {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()?
            .format(&Rfc3339)
            .ok()
    }

    /// An RFC 3339 date, rounded down to the second.
    pub fn from_rfc3339(text: &str) -> Option<Self> {
        Some(NumericDate(
            OffsetDateTime::parse(text, &Rfc3339).ok()?.unix_timestamp(),
        ))
    }
}

impl fmt::Display for NumericDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Milliseconds since the Unix epoch. Every time in the store is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// `self` plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(whole_millis(d)))
    }

    /// `self` minus `d`, saturating.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(whole_millis(d)))
    }

    /// How long after `earlier` this instant is; zero if it is not after.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(
            self.0
                .saturating_sub(earlier.0)
                .try_into()
                .unwrap_or_default(),
        )
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The second this instant falls in, as a token writes it.
    pub const fn to_numeric_date(self) -> NumericDate {
        NumericDate(self.unix_seconds())
    }

    /// RFC 3339 in UTC, to the second (`2026-12-03T18:09:24Z`), for people;
    /// Unix seconds outside the years 1–9999.
    pub fn to_rfc3339(self) -> String {
        self.to_numeric_date()
            .to_rfc3339()
            .unwrap_or_else(|| self.unix_seconds().to_string())
    }

    /// An instant as a person writes it: RFC 3339 (`2026-12-03T18:00:00Z`,
    /// any offset) or whole Unix seconds.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let seconds = match text.parse::<i64>() {
            Ok(seconds) => seconds,
            Err(_) => NumericDate::from_rfc3339(text)?.0,
        };
        seconds.checked_mul(1000).map(Timestamp)
    }
}

/// `d` in whole seconds, saturating at `i64::MAX`.
pub fn whole_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `d` in whole milliseconds, saturating at `i64::MAX`.
pub fn whole_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where time is read. Everything that needs "now" takes a clock (or a `now`
/// read from one), so tests drive time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Timestamp;

    /// Now, to the second.
    fn date(&self) -> NumericDate {
        self.now().to_numeric_date()
    }
}

/// The wall clock: the one place it is read.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(whole_millis(after)),
            Err(before) => Timestamp(whole_millis(before.duration()).saturating_neg()),
        }
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = whole_millis(by);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Sets the clock to `at` (it may go back, as a stepped wall clock can).
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_and_print_for_people() {
        let t = Timestamp::parse("2026-12-03T18:09:24Z").expect("rfc 3339");
        assert_eq!(t, Timestamp(1_796_321_364_000));
        assert_eq!(Timestamp::parse("1796321364"), Some(t));
        assert_eq!(Timestamp::parse("2026-12-03T19:09:24+01:00"), Some(t));
        assert_eq!(t.to_rfc3339(), "2026-12-03T18:09:24Z");
        assert_eq!(
            Timestamp(1_796_321_364_999).to_rfc3339(),
            "2026-12-03T18:09:24Z"
        );
        for bad in ["", "yesterday", "2026-12-03", "9223372036854775807", "1e9"] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn conversions_are_explicit_and_round_down() {
        assert_eq!(
            Timestamp(1_999).to_numeric_date(),
            NumericDate::from_unix(1)
        );
        assert_eq!(Timestamp(-1).to_numeric_date(), NumericDate::from_unix(-1));
        assert_eq!(NumericDate::from_unix(2).to_timestamp(), Timestamp(2_000));
        assert_eq!(
            NumericDate::from_unix(i64::MAX).to_timestamp(),
            Timestamp(i64::MAX)
        );
    }

    #[test]
    fn arithmetic_saturates_and_since_is_never_negative() {
        assert_eq!(
            Timestamp(i64::MAX - 1).plus(Duration::from_secs(1)),
            Timestamp(i64::MAX)
        );
        assert_eq!(
            Timestamp(5_000).since(Timestamp(2_000)),
            Duration::from_secs(3)
        );
        assert_eq!(Timestamp(2_000).since(Timestamp(5_000)), Duration::ZERO);
        assert_eq!(
            NumericDate::from_unix(10).since(NumericDate::from_unix(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            NumericDate::from_unix(4).since(NumericDate::from_unix(10)),
            Duration::ZERO
        );
        assert_eq!(whole_millis(Duration::MAX), i64::MAX);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), Timestamp(2_500));
        assert_eq!(clock.date(), NumericDate::from_unix(2));
        clock.set(Timestamp(0));
        assert_eq!(clock.now(), Timestamp(0));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.date() > NumericDate::from_unix(1_577_836_800));
    }
}
