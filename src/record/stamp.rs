//! A record's time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A record's time, kept as the time since the Unix epoch: what every encoder writes.
///
/// Asking a [`SystemTime`] for that is a call whose result comes back through memory;
/// read straight back, it stalled a JSON line's encoding for a tenth of its time. A
/// time read from a counter or from a queued record is a count of nanoseconds already,
/// and becomes a `Stamp` without any arithmetic on `SystemTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The distance from the epoch, either way.
    distance: Duration,
    /// Whether the time is before the epoch (a clock set far back, or a test's).
    before_epoch: bool,
}

impl Stamp {
    /// The wall clock now.
    pub(crate) fn now() -> Self {
        Stamp::from(SystemTime::now())
    }

    /// `nanos` nanoseconds after the epoch.
    #[inline]
    pub(crate) fn from_unix_nanos(nanos: u64) -> Self {
        Stamp {
            distance: Duration::from_nanos(nanos),
            before_epoch: false,
        }
    }

    /// The time as a `SystemTime`, exactly as it was given.
    pub(crate) fn system_time(self) -> SystemTime {
        if self.before_epoch {
            UNIX_EPOCH - self.distance
        } else {
            UNIX_EPOCH + self.distance
        }
    }

    /// The time since the epoch; zero for a time before it.
    #[inline]
    pub(crate) fn since_epoch(self) -> Duration {
        if self.before_epoch {
            Duration::ZERO
        } else {
            self.distance
        }
    }

    /// Nanoseconds since the epoch: zero for a time before it, `u64::MAX` for one
    /// past 2554.
    #[inline]
    pub(crate) fn unix_nanos(self) -> u64 {
        let since = self.since_epoch();
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }
}

impl From<SystemTime> for Stamp {
    fn from(at: SystemTime) -> Self {
        match at.duration_since(UNIX_EPOCH) {
            Ok(distance) => Stamp {
                distance,
                before_epoch: false,
            },
            Err(before) => Stamp {
                distance: before.duration(),
                before_epoch: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_comes_back_exactly_as_given_either_side_of_the_epoch() {
        for at in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(86_400, 1),
            SystemTime::now(),
        ] {
            assert_eq!(Stamp::from(at).system_time(), at);
        }
    }

    #[test]
    fn nanoseconds_since_the_epoch_are_zero_before_it_and_saturate_far_after() {
        let at = UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
        assert_eq!(Stamp::from(at).unix_nanos(), 1_764_000_000_123_456_789);
        assert_eq!(
            Stamp::from_unix_nanos(1_764_000_000_123_456_789),
            Stamp::from(at)
        );
        let before = Stamp::from(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(
            (before.unix_nanos(), before.since_epoch()),
            (0, Duration::ZERO)
        );
        let far = Stamp::from(UNIX_EPOCH + Duration::from_secs(20_000_000_000));
        assert_eq!(far.unix_nanos(), u64::MAX);
    }
}
