//! Instruments a library declares at the call site: a counter incremented by N, an
//! up-down counter, a gauge and a histogram in any unit, with an optional unit and
//! description, and no configuration by the app.
//!
//! Two forms, side by side with the three track calls:
//!
//! * functions, for a name known only at run time or when no unit is needed:
//!   [`track_counter`], [`track_up_down`], [`track_histogram`] (a gauge is
//!   [`track_metric`](crate::track_metric()));
//! * constants, when the call site declares a unit or a description:
//!   [`Counter`], [`UpDownCounter`], [`Gauge`] and [`Histogram`], built in a `const`
//!   and used where the value is known.
//!
//! Each call is one `tracing` event, target `telemetry`, level TRACE, with the pinned
//! fields of a metric (`telemetry.kind = "metric"`, `telemetry.name`,
//! `telemetry.value`) and two more: `telemetry.instrument` and, when declared,
//! `telemetry.unit`. Off, it costs what a disabled callsite costs: the level check
//! comes first, before any argument is set up.

use std::panic::Location;

use tracing::Level;

use super::{DynCall, MetricMeta};
use crate::fields::{Instrument, Kind, TARGET};

/// Emits one instrument call: the same event for every instrument, its kind a field.
#[inline]
pub(crate) fn emit(
    meta: MetricMeta,
    name: &str,
    value: f64,
    tags: &[(&str, &str)],
    location: &'static Location<'static>,
) {
    DynCall::with(
        Kind::Metric,
        name,
        Some(value),
        tags,
        location,
        meta,
        |call| {
            tracing::event!(
                target: TARGET,
                Level::TRACE,
                telemetry.tags = call,
                telemetry.kind = "metric",
                telemetry.name = name,
                telemetry.value = value,
                telemetry.instrument = meta.instrument.map(Instrument::as_str),
                telemetry.unit = meta.unit,
            )
        },
    );
}

const fn meta(instrument: Instrument, declared: &Declared) -> MetricMeta {
    MetricMeta {
        instrument: Some(instrument),
        unit: declared.unit,
        description: declared.description,
    }
}

/// Adds `n` to the monotonic counter `name`, with string tags.
///
/// Aggregated as a sum of the increments: the Prometheus counter `name_total`, the
/// OTLP monotonic sum `name`. For a unit or a description, declare a [`Counter`] or
/// call [`describe`](crate::describe) once.
///
/// ```
/// tracing_telemetry::track_counter("jobs.done", 1, &[("queue", "emails")]);
/// tracing_telemetry::track_counter("bytes.received", 1024, &[]);
/// ```
#[inline]
#[track_caller]
pub fn track_counter(name: &str, n: u64, tags: &[(&str, &str)]) {
    if tracing::level_enabled!(Level::TRACE) {
        emit(
            meta(Instrument::Counter, &Declared::NONE),
            name,
            n as f64,
            tags,
            Location::caller(),
        );
    }
}

/// Adds `delta` (negative to subtract) to the up-down counter `name`, with string
/// tags.
///
/// Aggregated as a running total that may go down: the Prometheus gauge `name`, the
/// OTLP non-monotonic sum `name`.
///
/// ```
/// tracing_telemetry::track_up_down("connections.open", 1, &[("pool", "db")]);
/// tracing_telemetry::track_up_down("connections.open", -1, &[("pool", "db")]);
/// ```
#[inline]
#[track_caller]
pub fn track_up_down(name: &str, delta: i64, tags: &[(&str, &str)]) {
    if tracing::level_enabled!(Level::TRACE) {
        emit(
            meta(Instrument::UpDownCounter, &Declared::NONE),
            name,
            delta as f64,
            tags,
            Location::caller(),
        );
    }
}

/// Records one value of the histogram `name` (a size, a count of items: any unit),
/// with string tags.
///
/// Aggregated into buckets over [`DEFAULT_HISTOGRAM_BUCKETS`](crate::aggregate::DEFAULT_HISTOGRAM_BUCKETS)
/// (the OpenTelemetry defaults) unless the app chooses others: the Prometheus
/// histogram `name`, the OTLP histogram `name`. Durations have
/// [`track_timing`](crate::track_timing()).
///
/// ```
/// tracing_telemetry::track_histogram("batch.items", 37.0, &[("queue", "emails")]);
/// ```
#[inline]
#[track_caller]
pub fn track_histogram(name: &str, value: f64, tags: &[(&str, &str)]) {
    if tracing::level_enabled!(Level::TRACE) {
        emit(
            meta(Instrument::Histogram, &Declared::NONE),
            name,
            value,
            tags,
            Location::caller(),
        );
    }
}

/// What every instrument constant holds: its name, and the unit and description its
/// call site declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Declared {
    name: &'static str,
    unit: Option<&'static str>,
    description: Option<&'static str>,
}

impl Declared {
    const NONE: Declared = Declared {
        name: "",
        unit: None,
        description: None,
    };

    const fn new(name: &'static str) -> Self {
        Declared {
            name,
            unit: None,
            description: None,
        }
    }
}

macro_rules! instrument {
    (
        $(#[$doc:meta])*
        $ty:ident, $instrument:expr, $example:literal
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty(Declared);

        impl $ty {
            /// The instrument called `name`, with no unit and no description yet.
            ///
            #[doc = $example]
            #[must_use]
            pub const fn new(name: &'static str) -> Self {
                $ty(Declared::new(name))
            }

            /// Declares the unit, in the OpenTelemetry (UCUM) spelling: `"By"` (bytes),
            /// `"s"` (seconds), `"ms"`, `"{item}"`... OTLP carries it as given;
            /// Prometheus adds it to the name once (`_bytes`, `_seconds`) and, in
            /// OpenMetrics, writes a `# UNIT` line (the [fields guide](crate::guide::fields)
            /// has the table).
            ///
            #[doc = $example]
            #[must_use]
            pub const fn with_unit(mut self, unit: &'static str) -> Self {
                self.0.unit = Some(unit);
                self
            }

            /// Declares the description: Prometheus' `# HELP` text, OTLP's metric
            /// description.
            ///
            #[doc = $example]
            #[must_use]
            pub const fn with_description(mut self, description: &'static str) -> Self {
                self.0.description = Some(description);
                self
            }

            /// The name.
            ///
            #[doc = $example]
            pub const fn name(&self) -> &'static str {
                self.0.name
            }

            /// The declared unit, if any.
            ///
            #[doc = $example]
            pub const fn unit(&self) -> Option<&'static str> {
                self.0.unit
            }

            /// The declared description, if any.
            ///
            #[doc = $example]
            pub const fn description(&self) -> Option<&'static str> {
                self.0.description
            }

            #[inline]
            fn emit(&self, value: f64, tags: &[(&str, &str)], location: &'static Location<'static>) {
                emit(meta($instrument, &self.0), self.0.name, value, tags, location);
            }
        }
    };
}

instrument!(
    /// A monotonic counter declared at the call site: [`add`](Counter::add) increments
    /// it by N.
    ///
    /// Prometheus counter `name[_unit]_total`, OTLP monotonic sum with the unit.
    /// Negative or non-finite increments cannot happen (`u64`).
    Counter,
    Instrument::Counter,
    r#"```
use tracing_telemetry::Counter;

const RECEIVED: Counter = Counter::new("net.received")
    .with_unit("By")
    .with_description("bytes read from peers");

RECEIVED.add(1024, &[("peer", "a")]);
assert_eq!((RECEIVED.name(), RECEIVED.unit()), ("net.received", Some("By")));
assert_eq!(RECEIVED.description(), Some("bytes read from peers"));
```"#
);

impl Counter {
    /// Adds `n`, with string tags. Off, a disabled callsite's cost.
    ///
    /// ```
    /// const JOBS: tracing_telemetry::Counter = tracing_telemetry::Counter::new("jobs.done");
    /// JOBS.add(3, &[("queue", "emails")]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn add(&self, n: u64, tags: &[(&str, &str)]) {
        if tracing::level_enabled!(Level::TRACE) {
            self.emit(n as f64, tags, Location::caller());
        }
    }
}

instrument!(
    /// A counter that goes up and down, declared at the call site:
    /// [`add`](UpDownCounter::add) a signed change.
    ///
    /// Prometheus gauge `name[_unit]`, OTLP non-monotonic sum with the unit.
    UpDownCounter,
    Instrument::UpDownCounter,
    r#"```
use tracing_telemetry::UpDownCounter;

const OPEN: UpDownCounter = UpDownCounter::new("connections.open")
    .with_unit("{connection}")
    .with_description("connections open now");

OPEN.add(1, &[("pool", "db")]);
OPEN.add(-1, &[("pool", "db")]);
assert_eq!(OPEN.unit(), Some("{connection}"));
```"#
);

impl UpDownCounter {
    /// Adds `delta` (negative to subtract), with string tags.
    ///
    /// ```
    /// const QUEUED: tracing_telemetry::UpDownCounter = tracing_telemetry::UpDownCounter::new("jobs.queued");
    /// QUEUED.add(5, &[]);
    /// QUEUED.add(-2, &[]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn add(&self, delta: i64, tags: &[(&str, &str)]) {
        if tracing::level_enabled!(Level::TRACE) {
            self.emit(delta as f64, tags, Location::caller());
        }
    }
}

instrument!(
    /// A gauge declared at the call site: [`set`](Gauge::set) its current value.
    ///
    /// What `track_metric` records, with a unit and a description: Prometheus gauge
    /// `name[_unit]`, OTLP gauge with the unit.
    Gauge,
    Instrument::Gauge,
    r#"```
use tracing_telemetry::Gauge;

const TEMPERATURE: Gauge = Gauge::new("disk.temperature")
    .with_unit("Cel")
    .with_description("temperature of the disk");

TEMPERATURE.set(41.5, &[("disk", "sda")]);
assert_eq!(TEMPERATURE.unit(), Some("Cel"));
```"#
);

impl Gauge {
    /// Sets the current value, with string tags.
    ///
    /// ```
    /// const DEPTH: tracing_telemetry::Gauge = tracing_telemetry::Gauge::new("queue.depth");
    /// DEPTH.set(42.0, &[("queue", "emails")]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn set(&self, value: f64, tags: &[(&str, &str)]) {
        if tracing::level_enabled!(Level::TRACE) {
            self.emit(value, tags, Location::caller());
        }
    }
}

instrument!(
    /// A histogram in any unit, declared at the call site: [`record`](Histogram::record)
    /// one value.
    ///
    /// Prometheus histogram `name[_unit]` (`_bucket`, `_sum`, `_count`), OTLP
    /// histogram with the unit. Buckets: [`DEFAULT_BUCKETS`](crate::aggregate::DEFAULT_BUCKETS)
    /// when the unit is `"s"`, else
    /// [`DEFAULT_HISTOGRAM_BUCKETS`](crate::aggregate::DEFAULT_HISTOGRAM_BUCKETS),
    /// unless the app chooses others.
    Histogram,
    Instrument::Histogram,
    r#"```
use tracing_telemetry::Histogram;

const PAYLOAD: Histogram = Histogram::new("request.payload")
    .with_unit("By")
    .with_description("size of request bodies");

PAYLOAD.record(512.0, &[("route", "/upload")]);
assert_eq!(PAYLOAD.name(), "request.payload");
```"#
);

impl Histogram {
    /// Records one value, with string tags.
    ///
    /// ```
    /// const ITEMS: tracing_telemetry::Histogram = tracing_telemetry::Histogram::new("batch.items");
    /// ITEMS.record(37.0, &[]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn record(&self, value: f64, tags: &[(&str, &str)]) {
        if tracing::level_enabled!(Level::TRACE) {
            self.emit(value, tags, Location::caller());
        }
    }
}
