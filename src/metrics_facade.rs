//! The `metrics` facade (feature `metrics`): a [`metrics::Recorder`] that turns
//! `counter!`, `gauge!`, `histogram!` and `describe_*!` into this crate's instruments.
//!
//! Every update is the same `tracing` event a [`Counter`](crate::Counter),
//! [`Gauge`](crate::Gauge) or [`Histogram`](crate::Histogram) emits, so it goes
//! through the same switch (`TELEMETRY_ENABLED` and the runtime toggle), the same
//! aggregation with its cardinality limit, the same service name and the same
//! exporters (JSON lines, Prometheus, OTLP) as the track calls. No async runtime.
//!
//! | facade | instrument | Prometheus | OTLP |
//! |---|---|---|---|
//! | `counter!(..).increment(n)` | counter, `+n` | counter `<name>[_<unit>]_total` | monotonic sum |
//! | `counter!(..).absolute(n)` | counter, `+(n - the largest value given before)` when larger | the same | the same |
//! | `gauge!(..).set(v)`, `.increment(d)`, `.decrement(d)` | gauge, the value the handle holds | gauge `<name>[_<unit>]` | gauge |
//! | `histogram!(..).record(v)` | histogram | histogram `<name>[_<unit>]` | histogram |
//! | labels (`"route" => "/a"`) | tags | labels | attributes |
//! | `describe_*!(name, unit, description)` | [`describe`](crate::describe) | `# HELP`, `# UNIT`, the unit suffix | description, unit |
//!
//! # Off
//!
//! While telemetry is off, registering a metric returns the facade's no-op handle
//! after one check of the global level (the one a disabled `tracing` callsite makes),
//! so a `counter!(..).increment(1)` costs what it costs with no recorder installed.
//! The facade's macros register at every call, so a runtime toggle applies from the
//! next call. A handle an app keeps (`let c = counter!(..);`) is what it was when it
//! was registered: one registered while off stays a no-op (register it again after
//! turning telemetry on); one registered while on stops emitting while off.
//!
//! # Cost
//!
//! A registered metric's handle is kept (up to 10,000 of them; beyond, each
//! registration makes a fresh one), in a map shared by the threads and in each
//! thread's copy of the entries it uses, so registering an existing metric again
//! takes no lock, and neither that nor an update allocates. The update itself is a
//! track call, except where the track call would only update one series: then the
//! handle, once it has made the series, updates it directly (see `shortcut`), with
//! the same result.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use smallvec::SmallVec;
use thread_local::ThreadLocal;
use tracing::Level;

#[cfg(feature = "aggregate")]
mod shortcut;

use crate::fields::Instrument;
use crate::track::describe::describe_parts;
use crate::track::instrument::emit;
use crate::track::MetricMeta;

/// Handles kept per kind of metric; beyond, registrations are not remembered.
const MAX_HANDLES: usize = 10_000;

/// A [`metrics::Recorder`] that feeds this crate's instruments; `try_init` installs
/// one when the `metrics` feature is on and no recorder is installed yet.
///
/// `counter!` is a [`Counter`](crate::Counter) (`absolute` adds what exceeds the
/// largest value given before), `gauge!` a [`Gauge`](crate::Gauge) holding the
/// value its `set`, `increment` and `decrement` leave, `histogram!` a
/// [`Histogram`](crate::Histogram); labels are tags; `describe_*!` is
/// [`describe`](crate::describe). Each update is the same `tracing` event as the
/// instrument's, so it goes through the same switch, aggregation, cardinality limit,
/// service name and exporters, with no async runtime (where that event would only
/// update one series, in the subscriber `try_init` installs, a handle makes that
/// update directly once it has made the series). While telemetry is off,
/// registering returns the facade's no-op handle after one global level check. The
/// [fields guide](crate::guide::fields#the-metrics-facade) has the table.
///
/// An app that builds its own subscriber with [`layer`](crate::layer) installs it
/// itself, with [`metrics::set_global_recorder`]; a test may use it for one closure
/// with [`metrics::with_local_recorder`]:
///
/// ```
/// use tracing_telemetry::{MemorySink, TelemetryRecorder};
///
/// let recorder = TelemetryRecorder::new();
/// let records = MemorySink::capture(|| {
///     metrics::with_local_recorder(&recorder, || {
///         metrics::counter!("requests", "route" => "/a").increment(3);
///     })
/// });
/// assert_eq!(records[0].name(), "requests");
/// assert_eq!(records[0].value(), Some(3.0));
/// assert_eq!(records[0].tag("route").unwrap(), "/a");
/// ```
#[derive(Default)]
pub struct TelemetryRecorder {
    counters: Handles<CounterHandle>,
    gauges: Handles<GaugeHandle>,
    histograms: Handles<HistogramHandle>,
}

impl TelemetryRecorder {
    /// A recorder with no metric registered yet.
    ///
    /// ```
    /// let recorder = tracing_telemetry::TelemetryRecorder::new();
    /// # let _ = recorder;
    /// ```
    pub fn new() -> Self {
        TelemetryRecorder::default()
    }
}

impl fmt::Debug for TelemetryRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryRecorder")
            .field("counters", &self.counters.len())
            .field("gauges", &self.gauges.len())
            .field("histograms", &self.histograms.len())
            .finish_non_exhaustive()
    }
}

/// Installs a [`TelemetryRecorder`] as the global recorder unless one is installed.
pub(crate) fn install_if_none() {
    // An error means the app (or a library) installed a recorder first: it stays.
    let _ = metrics::set_global_recorder(TelemetryRecorder::new());
}

/// Whether a track call would be recorded at all: the global level check.
#[inline]
fn on() -> bool {
    tracing::level_enabled!(Level::TRACE)
}

impl Recorder for TelemetryRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe_parts(key.as_str(), unit.and_then(ucum), &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe_parts(key.as_str(), unit.and_then(ucum), &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe_parts(key.as_str(), unit.and_then(ucum), &description);
    }

    #[inline]
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        if !on() {
            return Counter::noop();
        }
        Counter::from_arc(self.counters.get(key, |key| CounterHandle {
            target: Target::new(key),
            largest: AtomicU64::new(0),
        }))
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        if !on() {
            return Gauge::noop();
        }
        Gauge::from_arc(self.gauges.get(key, |key| GaugeHandle {
            target: Target::new(key),
            value: AtomicU64::new(0.0_f64.to_bits()),
        }))
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        if !on() {
            return Histogram::noop();
        }
        Histogram::from_arc(self.histograms.get(key, |key| HistogramHandle {
            target: Target::new(key),
        }))
    }
}

/// The OpenTelemetry (UCUM) spelling of a facade unit; `None` for a plain count.
fn ucum(unit: Unit) -> Option<&'static str> {
    Some(match unit {
        Unit::Count => return None,
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "{count}/s",
    })
}

type HandleMap<H> = HashMap<Key, Arc<H>, BuildHasherDefault<KeyHash>>;

/// The registered handles of one kind, by key: one map shared by every thread, and in
/// front of it each thread's copy of the entries it has used, so that registering a
/// known metric again takes no lock (the facade's macros register at every call). A
/// key's hash is computed once by the facade and written as one `u64`, so the maps
/// hash nothing again.
struct Handles<H: Send + Sync> {
    map: RwLock<HandleMap<H>>,
    local: ThreadLocal<RefCell<HandleMap<H>>>,
}

impl<H: Send + Sync> Default for Handles<H> {
    fn default() -> Self {
        Handles {
            map: RwLock::default(),
            local: ThreadLocal::new(),
        }
    }
}

impl<H: Send + Sync> Handles<H> {
    #[inline]
    fn get(&self, key: &Key, make: impl FnOnce(Key) -> H) -> Arc<H> {
        let local = self.local.get_or(RefCell::default);
        if let Some(handle) = local
            .try_borrow()
            .ok()
            .and_then(|map| map.get(key).cloned())
        {
            return handle;
        }
        let handle = self.shared(key, make);
        if let Ok(mut local) = local.try_borrow_mut() {
            if local.len() < MAX_HANDLES {
                local.insert(key.clone(), Arc::clone(&handle));
            }
        }
        handle
    }

    /// The handle from the shared map, made and kept there if it is new.
    #[cold]
    fn shared(&self, key: &Key, make: impl FnOnce(Key) -> H) -> Arc<H> {
        let known = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        if let Some(handle) = known {
            return handle;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = map.get(key) {
            return Arc::clone(handle);
        }
        let handle = Arc::new(make(key.clone()));
        if map.len() < MAX_HANDLES {
            map.insert(key.clone(), Arc::clone(&handle));
        }
        handle
    }

    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Passes on the one `u64` that [`Key`]'s `Hash` writes.
#[derive(Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; any other input still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(5) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Emits one update of `key` as the instrument's track call.
#[inline]
fn update(instrument: Instrument, key: &Key, value: f64) {
    let tags: SmallVec<[(&str, &str); 8]> = key.labels().map(|l| (l.key(), l.value())).collect();
    let meta = MetricMeta {
        instrument: Some(instrument),
        unit: None,
        description: None,
    };
    emit(meta, key.name(), value, &tags, Location::caller());
}

/// What every handle has: its key, and its way to its series.
struct Target {
    key: Key,
    #[cfg(feature = "aggregate")]
    shortcut: shortcut::Shortcut,
}

impl Target {
    fn new(key: Key) -> Self {
        Target {
            key,
            #[cfg(feature = "aggregate")]
            shortcut: shortcut::Shortcut::default(),
        }
    }

    /// One update, while telemetry may be on: straight to the series where the track
    /// call would do only that, else the track call.
    #[inline]
    fn update(&self, instrument: Instrument, value: f64) {
        #[cfg(feature = "aggregate")]
        if self.shortcut.add(value) {
            return;
        }
        update(instrument, &self.key, value);
        #[cfg(feature = "aggregate")]
        self.shortcut.learn(&self.key);
    }
}

struct CounterHandle {
    target: Target,
    /// The largest value `absolute` was given.
    largest: AtomicU64,
}

impl metrics::CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        if on() {
            self.target.update(Instrument::Counter, value as f64);
        }
    }

    fn absolute(&self, value: u64) {
        let before = self.largest.fetch_max(value, Ordering::Relaxed);
        if value > before && on() {
            self.target
                .update(Instrument::Counter, (value - before) as f64);
        }
    }
}

struct GaugeHandle {
    target: Target,
    /// The gauge's value (f64 bits): increments and decrements apply to it.
    value: AtomicU64,
}

impl GaugeHandle {
    fn change(&self, f: impl Fn(f64) -> f64) {
        let mut new = 0.0;
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                new = f(f64::from_bits(bits));
                Some(new.to_bits())
            });
        if on() {
            self.target.update(Instrument::Gauge, new);
        }
    }
}

impl metrics::GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.change(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.change(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.change(|_| value);
    }
}

struct HistogramHandle {
    target: Target,
}

impl metrics::HistogramFn for HistogramHandle {
    #[inline]
    fn record(&self, value: f64) {
        if on() {
            self.target.update(Instrument::Histogram, value);
        }
    }
}
