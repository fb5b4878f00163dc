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
//! The conversion measures the counter's rate against the monotonic clock, from the
//! exporter's start to the moment of conversion, and counts a record's age back from
//! the wall clock read at that moment: a record's time is off by its age times the
//! rate's error (microseconds at most for records a few seconds old), and a step of
//! the wall clock (a first NTP sync, a VM resumed) moves records converted after it by
//! the step, as it moves the wall clock, without changing the rate.
//!
//! A record that an emitting thread encodes itself (see `Queue::push`) needs its time
//! as text at once: the thread reads the counter and converts it forward from the
//! export thread's last conversion ([`Published`], renewed a few times a second), or
//! reads the wall clock where that conversion is more than a second old.
//!
//! The counter is used only where the kernel keeps time with it, checked again every
//! second by the export thread: if the kernel gives it up (a watchdog finding it
//! unstable), the emitting threads go back to the wall clock. Nor is it used where
//! reading it would fault (`prctl(PR_SET_TSC)` at start).

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::record::Stamp;

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
    Stamp::from(time).unix_nanos()
}

/// The counter now.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    counter::read()
}

/// A counter value, and the monotonic and wall clocks read with it.
#[derive(Debug, Clone, Copy)]
struct Pair {
    ticks: u64,
    /// Nanoseconds of `Instant` since the calibration's base.
    mono: u64,
    /// Unix nanoseconds.
    real: u64,
}

impl Pair {
    /// The clocks read between two counter reads, whose middle they belong to; of three
    /// tries, the one read fastest (a thread preempted in between reads a wide gap).
    fn now(base: Instant) -> Self {
        let mut best: Option<(u64, Pair)> = None;
        for _ in 0..3 {
            let before = counter::read();
            let mono = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let real = unix_nanos(SystemTime::now());
            let after = counter::read();
            let gap = after.wrapping_sub(before);
            let pair = Pair {
                ticks: before / 2 + after / 2 + (before % 2 + after % 2) / 2,
                mono,
                real,
            };
            if best.map_or(true, |(g, _)| gap < g) {
                best = Some((gap, pair));
            }
        }
        best.map_or(
            Pair {
                ticks: counter::read(),
                mono: 0,
                real: unix_nanos(SystemTime::now()),
            },
            |(_, pair)| pair,
        )
    }
}

/// The counter's rate, measured against the monotonic clock: steps of the wall clock
/// (a first NTP sync, a VM resumed) do not change it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calibration {
    base: Instant,
    start: Pair,
    /// The last rate measured, for when the counter cannot be measured now.
    nanos_per_tick: f64,
}

impl Calibration {
    pub(crate) fn new() -> Self {
        let base = Instant::now();
        Calibration {
            base,
            start: Pair::now(base),
            nanos_per_tick: 0.0,
        }
    }

    /// Converts counter values read up to now.
    pub(crate) fn converter(&mut self) -> Converter {
        let now = Pair::now(self.base);
        match now.ticks.checked_sub(self.start.ticks) {
            Some(ticks) if ticks > 0 => {
                self.nanos_per_tick =
                    now.mono.saturating_sub(self.start.mono) as f64 / ticks as f64;
            }
            // The counter went back (reset across a suspend): measure from here on.
            _ => self.start = now,
        }
        Converter {
            now,
            nanos_per_tick: self.nanos_per_tick,
            measured_over: now.mono.saturating_sub(self.start.mono),
        }
    }
}

/// Turns counter values into Unix nanoseconds: a record's age, in counter ticks at the
/// measured rate, back from the wall clock's reading now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Converter {
    now: Pair,
    nanos_per_tick: f64,
    /// Nanoseconds over which the rate was measured.
    measured_over: u64,
}

impl Converter {
    /// The wall clock when this converter was made: no converted time is later.
    #[cfg_attr(
        not(feature = "otlp"),
        allow(dead_code, reason = "the OTLP exporter's observed time")
    )]
    pub(crate) fn now_unix_nanos(&self) -> u64 {
        self.now.real
    }

    pub(crate) fn unix_nanos(&self, ticks: u64) -> u64 {
        // A record read on another core may be a few ticks "after" now: age 0.
        let age = self.now.ticks.saturating_sub(ticks) as f64 * self.nanos_per_tick;
        self.now.real.saturating_sub(age as u64)
    }
}

/// A conversion made longer ago than this is not used forward: the wall clock is read.
const PUBLISHED_AGE_MAX: Duration = Duration::from_secs(1);
/// How long the rate is measured before it is used forward: the clocks' reads are
/// some tens of nanoseconds apart at worst, about a millionth of this, so a second
/// forward is off by about a microsecond at most.
pub(crate) const SETTLED: Duration = Duration::from_millis(50);

/// The export thread's last [`Converter`], for emitting threads to convert the counter
/// forward from: a sequence lock (one writer, the export thread; a reader that finds
/// a write under way reads the wall clock instead of waiting).
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Odd while a write is under way; 0 until the first.
    seq: AtomicU64,
    ticks: AtomicU64,
    real: AtomicU64,
    /// `f64` bits.
    nanos_per_tick: AtomicU64,
}

impl Published {
    /// Makes `converter` the one to convert forward from, once its rate was measured
    /// over [`SETTLED`] at least. For one thread at a time.
    pub(crate) fn publish(&self, converter: &Converter) {
        if converter.measured_over < SETTLED.as_nanos() as u64 {
            return;
        }
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.ticks.store(converter.now.ticks, Ordering::Relaxed);
        self.real.store(converter.now.real, Ordering::Relaxed);
        self.nanos_per_tick
            .store(converter.nanos_per_tick.to_bits(), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Unix nanoseconds of the counter value `ticks`, read around the last
    /// [`publish`](Self::publish); `None` if nothing usable was published (none yet,
    /// a write under way) or `ticks` is more than [`PUBLISHED_AGE_MAX`] from it
    /// either way (long after it; or before it, as a counter reset across a suspend
    /// leaves it until the next conversion).
    pub(crate) fn unix_nanos(&self, ticks: u64) -> Option<u64> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq == 0 || seq % 2 == 1 {
            return None;
        }
        let (base, real, rate) = (
            self.ticks.load(Ordering::Relaxed),
            self.real.load(Ordering::Relaxed),
            f64::from_bits(self.nanos_per_tick.load(Ordering::Relaxed)),
        );
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != seq || rate <= 0.0 {
            return None;
        }
        // A value read just before the conversion was published (on another core, or
        // by a thread the publish overtook) is converted back from it.
        let max = PUBLISHED_AGE_MAX.as_nanos() as f64;
        if ticks >= base {
            let after = (ticks - base) as f64 * rate;
            (after <= max).then(|| real.saturating_add(after as u64))
        } else {
            let before = (base - ticks) as f64 * rate;
            (before <= max).then(|| real.saturating_sub(before as u64))
        }
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
            && readable()
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|source| source.trim() == "tsc")
    }

    /// Whether `rdtsc` may be run: a sandbox can make it fault (`PR_SET_TSC`).
    fn readable() -> bool {
        let mut state: libc::c_int = 0;
        // SAFETY: PR_GET_TSC writes one int through the pointer, which is valid.
        let rc = unsafe { libc::prctl(libc::PR_GET_TSC, &mut state as *mut libc::c_int) };
        rc == 0 && state == libc::PR_TSC_ENABLE
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
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn counter_values_convert_to_the_wall_clock_within_a_millisecond() {
        if Clock::detect() != Clock::Counter {
            eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
            return;
        }
        let mut calibration = Calibration::new();
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
    fn counter_values_convert_forward_from_the_published_converter() {
        if Clock::detect() != Clock::Counter {
            eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
            return;
        }
        let published = Published::default();
        assert_eq!(published.unix_nanos(ticks()), None, "nothing published yet");
        let mut calibration = Calibration::new();
        published.publish(&calibration.converter());
        assert_eq!(
            published.unix_nanos(ticks()),
            None,
            "the rate is not settled"
        );
        std::thread::sleep(SETTLED);
        published.publish(&calibration.converter());
        let mut last = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(20));
            let wall = unix_nanos(SystemTime::now());
            let converted = published
                .unix_nanos(ticks())
                .expect("a conversion published a moment ago is used");
            let off = converted.abs_diff(wall);
            assert!(
                off < 1_000_000,
                "{converted} vs the wall clock's {wall}: {off} ns apart"
            );
            assert!(converted >= last, "later values stay later");
            last = converted;
        }
        // More than a second after the conversion: not used.
        let rate = f64::from_bits(published.nanos_per_tick.load(Ordering::Relaxed));
        let later = published.ticks.load(Ordering::Relaxed) + (1.5e9 / rate) as u64;
        assert_eq!(published.unix_nanos(later), None);
    }

    /// A conversion published once its rate is settled; `None` (skipped) where the
    /// counter is not used.
    fn published_once_settled() -> Option<(Published, Converter)> {
        if Clock::detect() != Clock::Counter {
            eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
            return None;
        }
        let published = Published::default();
        let mut calibration = Calibration::new();
        std::thread::sleep(SETTLED);
        let converter = calibration.converter();
        published.publish(&converter);
        Some((published, converter))
    }

    #[test]
    fn a_counter_value_before_the_conversion_converts_back_and_not_far_back() {
        let Some((published, converter)) = published_once_settled() else {
            return;
        };
        let ticks_per_ms = (1e6 / converter.nanos_per_tick) as u64;
        let base = converter.now.ticks;
        // A millisecond before: a millisecond before the published wall clock.
        let back = published.unix_nanos(base - ticks_per_ms).unwrap();
        let off = (converter.now.real - back).abs_diff(1_000_000);
        assert!(off < 1_000, "a millisecond back came out {off} ns off");
        // Ten seconds before (a counter reset across a suspend): not converted.
        assert_eq!(published.unix_nanos(base - 10_000 * ticks_per_ms), None);
    }

    #[test]
    fn a_write_under_way_is_not_read() {
        let Some((published, converter)) = published_once_settled() else {
            return;
        };
        // As a reader sees it midway through the next publish.
        published.seq.fetch_add(1, Ordering::Relaxed);
        assert_eq!(published.unix_nanos(converter.now.ticks), None);
        published.seq.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            published.unix_nanos(converter.now.ticks),
            Some(converter.now.real)
        );
    }

    #[test]
    fn unix_nanos_saturates_and_clamps() {
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::from_nanos(1_500)), 1_500);
    }

    /// How far off a record 100 ms old comes out when the wall clock stepped by `step`
    /// ns between the exporter's start and the conversion (NTP's first sync, a VM
    /// resumed): made by moving the start's wall-clock reading the other way.
    fn off_after_step(step: i64) -> u64 {
        let mut calibration = Calibration::new();
        calibration.start.real = (calibration.start.real as i64 - step) as u64;
        std::thread::sleep(Duration::from_millis(20));
        let (t, wall) = (ticks(), unix_nanos(SystemTime::now()));
        std::thread::sleep(Duration::from_millis(100));
        calibration.converter().unix_nanos(t).abs_diff(wall)
    }

    #[test]
    fn a_step_of_the_wall_clock_does_not_change_the_rate() {
        if Clock::detect() != Clock::Counter {
            eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
            return;
        }
        for step in [60_000_000_000, -60_000_000_000] {
            let off = off_after_step(step);
            assert!(
                off < 1_000_000,
                "a step of {step} ns: a record 100 ms old is {off} ns off"
            );
        }
    }

    #[test]
    fn no_converted_time_is_after_the_converter_s_wall_clock() {
        let mut calibration = Calibration::new();
        let t = ticks();
        let converter = calibration.converter();
        assert!(converter.unix_nanos(t) <= converter.now_unix_nanos());
        // A counter value from "after" now (another core) is now, not later.
        assert_eq!(converter.unix_nanos(u64::MAX), converter.now_unix_nanos());
    }
}
