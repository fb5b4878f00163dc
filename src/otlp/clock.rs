//! When a captured record happened, read as cheaply as the machine allows.
//!
//! Reading the wall clock (`SystemTime::now` and the conversion to Unix nanoseconds)
//! costs about 30 ns, a fifth of what the emitting thread spends on an OTLP record.
//! Where the processor's time-stamp counter is one the kernel itself keeps time with
//! (x86-64 Linux, an invariant TSC, clock source `tsc`), the emitting thread reads
//! the counter instead (about 9 ns), and the export thread turns counter values into
//! Unix time against the wall clock it reads as it converts ([`Converter`]). Elsewhere
//! the wall clock is read as usual.
//!
//! The conversion measures the counter's rate between the exporter's start and the
//! moment of conversion, and counts back from that moment: a record's time is off by
//! its age times the rate's error, which is microseconds at most for records a few
//! seconds old, and nothing at all for the wall clock's own steps (they are seen as
//! they happen).

use std::time::{SystemTime, UNIX_EPOCH};

/// How the emitting threads time their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The wall clock.
    System,
    /// The time-stamp counter, converted on the export thread.
    Counter,
}

impl Clock {
    /// The counter where it keeps time as well as the kernel's clock does, else the
    /// wall clock.
    pub(crate) fn detect() -> Self {
        if counter::usable() {
            Clock::Counter
        } else {
            Clock::System
        }
    }
}

/// Unix nanoseconds of `time` (0 before the epoch, saturating far after it).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    })
}

/// The counter now.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    counter::read()
}

/// A counter value and the wall clock read together.
#[derive(Debug, Clone, Copy)]
struct Pair {
    ticks: u64,
    nanos: u64,
}

impl Pair {
    fn now() -> Self {
        // The wall clock between two counter reads: its value belongs to their middle.
        let before = counter::read();
        let nanos = unix_nanos(SystemTime::now());
        let after = counter::read();
        Pair {
            ticks: before / 2 + after / 2 + (before % 2 + after % 2) / 2,
            nanos,
        }
    }
}

/// Where counter values are measured from: taken when the exporter starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calibration {
    start: Pair,
}

impl Calibration {
    pub(crate) fn new() -> Self {
        Calibration { start: Pair::now() }
    }

    /// Converts counter values read up to now.
    pub(crate) fn converter(&self) -> Converter {
        let now = Pair::now();
        let ticks = now.ticks.saturating_sub(self.start.ticks);
        let nanos = now.nanos.saturating_sub(self.start.nanos);
        Converter {
            now,
            nanos_per_tick: if ticks == 0 {
                0.0
            } else {
                nanos as f64 / ticks as f64
            },
        }
    }
}

/// Turns counter values into Unix nanoseconds, counting back from one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Converter {
    now: Pair,
    nanos_per_tick: f64,
}

impl Converter {
    pub(crate) fn unix_nanos(&self, ticks: u64) -> u64 {
        // Signed: a record read on another core may be a few ticks "after" now.
        let back = (i128::from(self.now.ticks) - i128::from(ticks)) as f64 * self.nanos_per_tick;
        (i128::from(self.now.nanos) - back as i128).clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod counter {
    #[allow(
        unused_unsafe,
        reason = "`__cpuid` and `_rdtsc` are safe functions in newer Rust"
    )]
    pub(super) fn usable() -> bool {
        use std::arch::x86_64::__cpuid;
        // SAFETY: `cpuid` exists on every x86-64 processor. Leaf 0x8000_0007, EDX bit
        // 8: the counter runs at one rate in every power state.
        let invariant = unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        };
        // The kernel keeps time with the counter only if it found it synchronized
        // across processors and steady.
        invariant
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|source| source.trim() == "tsc")
    }

    #[inline(always)]
    #[allow(unused_unsafe, reason = "`_rdtsc` is a safe function in newer Rust")]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` exists on every x86-64 processor.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod counter {
    pub(super) fn usable() -> bool {
        false
    }

    #[inline(always)]
    pub(super) fn read() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counter_values_convert_to_the_wall_clock_within_a_millisecond() {
        if Clock::detect() != Clock::Counter {
            eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
            return;
        }
        let calibration = Calibration::new();
        std::thread::sleep(Duration::from_millis(20));
        let mut samples = Vec::new();
        for _ in 0..5 {
            let wall = unix_nanos(SystemTime::now());
            samples.push((ticks(), wall));
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20));
        let converter = calibration.converter();
        for (ticks, wall) in samples {
            let converted = converter.unix_nanos(ticks);
            let off = converted.abs_diff(wall);
            assert!(
                off < 1_000_000,
                "{converted} vs the wall clock's {wall}: {off} ns apart"
            );
        }
        // Later values stay later.
        let (a, b) = (ticks(), ticks());
        assert!(converter.unix_nanos(a) <= converter.unix_nanos(b));
    }

    #[test]
    fn unix_nanos_saturates_and_clamps() {
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::from_nanos(1_500)), 1_500);
    }
}
