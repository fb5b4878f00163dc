//! The field conventions every track call follows (see the [fields guide](crate::guide::fields)).
//!
//! A track call is an event with target [`TARGET`] and a [`TAGS`] field; that is how a
//! layer of the app's own can tell one from its other events:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use tracing_subscriber::filter::filter_fn;
//! use tracing_subscriber::layer::{Context, Layer};
//! use tracing_subscriber::prelude::*;
//! use tracing_telemetry::fields;
//!
//! struct Count(Arc<AtomicUsize>);
//!
//! impl<S: tracing::Subscriber> Layer<S> for Count {
//!     fn on_event(&self, _event: &tracing::Event<'_>, _cx: Context<'_, S>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let track_calls = filter_fn(|meta| {
//!     meta.target() == fields::TARGET && meta.fields().field(fields::TAGS).is_some()
//! });
//! let seen = Arc::new(AtomicUsize::new(0));
//! let subscriber = tracing_subscriber::registry().with(Count(Arc::clone(&seen)).with_filter(track_calls));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
//!     tracing::trace!(target: "telemetry", "same target, but not a track call");
//!     tracing::info!("an app log");
//! });
//! assert_eq!(seen.load(Ordering::Relaxed), 1);
//! ```

use std::fmt;

/// The `tracing` target of every telemetry event.
///
/// ```
/// assert_eq!(tracing_telemetry::TARGET, "telemetry");
/// ```
pub const TARGET: &str = "telemetry";

/// Field holding the record's [`Kind`] as a string: `"event"`, `"metric"` or `"timing"`.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::KIND, "telemetry.kind");
/// ```
pub const KIND: &str = "telemetry.kind";

/// Field holding the event, metric or operation name.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::NAME, "telemetry.name");
/// ```
pub const NAME: &str = "telemetry.name";

/// Field holding a metric's value, an `f64`.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::VALUE, "telemetry.value");
/// ```
pub const VALUE: &str = "telemetry.value";

/// Field holding a timing's duration in milliseconds, an `f64`.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::DURATION_MS, "telemetry.duration_ms");
/// ```
pub const DURATION_MS: &str = "telemetry.duration_ms";

/// Field that marks a track call, and carries the function form's call (its tags have
/// runtime keys, which cannot be `tracing` field names).
///
/// Every track call has it, function or macro form; its value, made by this crate, is
/// what tells the layer that an event is telemetry. Other layers see the function
/// form's tags as a `key="value"` list, and the macro form's kind.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::TAGS, "telemetry.tags");
/// ```
pub const TAGS: &str = "telemetry.tags";

/// Field holding the instrument of a metric that declares one: `"counter"`,
/// `"up_down_counter"`, `"gauge"` or `"histogram"` (see [`Instrument`]). A plain
/// `track_metric` call has no such field: it is a gauge, as it always was.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::INSTRUMENT, "telemetry.instrument");
/// ```
pub const INSTRUMENT: &str = "telemetry.instrument";

/// Field holding the unit a metric's call site declares, in the OpenTelemetry
/// (UCUM) spelling: `"By"` for bytes, `"s"` for seconds, `"{item}"` for a count of
/// items. Absent when the call gives none.
///
/// ```
/// assert_eq!(tracing_telemetry::fields::UNIT, "telemetry.unit");
/// ```
pub const UNIT: &str = "telemetry.unit";

/// How a metric's values combine, as its call site declares it: the OpenTelemetry
/// instrument kinds, each with its Prometheus and OTLP form (the table is in the
/// [fields guide](crate::guide::fields)).
///
/// ```
/// use tracing_telemetry::Instrument;
///
/// assert_eq!(Instrument::UpDownCounter.as_str(), "up_down_counter");
/// assert_eq!("counter".parse::<Instrument>(), Ok(Instrument::Counter));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Instrument {
    /// A monotonic counter: each value is an increment, never negative. Prometheus
    /// counter (`_total`), OTLP monotonic sum.
    Counter,
    /// A counter that goes up and down: each value is a signed change. Prometheus
    /// gauge, OTLP non-monotonic sum.
    UpDownCounter,
    /// The last value set: what `track_metric` records. Prometheus gauge, OTLP gauge.
    Gauge,
    /// Values counted into buckets, in any unit. Prometheus histogram, OTLP
    /// histogram.
    Histogram,
}

impl Instrument {
    /// The value of the [`INSTRUMENT`] field for this instrument.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Instrument::Histogram.as_str(), "histogram");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Instrument::Counter => "counter",
            Instrument::UpDownCounter => "up_down_counter",
            Instrument::Gauge => "gauge",
            Instrument::Histogram => "histogram",
        }
    }
}

impl fmt::Display for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not one of `counter`, `up_down_counter`,
/// `gauge` or `histogram`.
///
/// ```
/// assert!("summary".parse::<tracing_telemetry::Instrument>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseInstrumentError(());

impl fmt::Display for ParseInstrumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected counter, up_down_counter, gauge or histogram")
    }
}

impl std::error::Error for ParseInstrumentError {}

impl std::str::FromStr for Instrument {
    type Err = ParseInstrumentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "counter" => Ok(Instrument::Counter),
            "up_down_counter" => Ok(Instrument::UpDownCounter),
            "gauge" => Ok(Instrument::Gauge),
            "histogram" => Ok(Instrument::Histogram),
            _ => Err(ParseInstrumentError(())),
        }
    }
}

/// What a record measures.
///
/// ```
/// use tracing_telemetry::Kind;
///
/// assert_eq!(Kind::Metric.as_str(), "metric");
/// assert_eq!("timing".parse::<Kind>(), Ok(Kind::Timing));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Something happened: `track_event`.
    Event,
    /// A measured value: `track_metric`.
    Metric,
    /// How long an operation took, in milliseconds: `track_timing`.
    Timing,
}

impl Kind {
    /// The value of the [`KIND`] field for this kind.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Kind::Event.as_str(), "event");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Metric => "metric",
            Kind::Timing => "timing",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not one of `event`, `metric` or `timing`.
///
/// ```
/// assert!("gauge".parse::<tracing_telemetry::Kind>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKindError(());

impl fmt::Display for ParseKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected event, metric or timing")
    }
}

impl std::error::Error for ParseKindError {}

impl std::str::FromStr for Kind {
    type Err = ParseKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "event" => Ok(Kind::Event),
            "metric" => Ok(Kind::Metric),
            "timing" => Ok(Kind::Timing),
            _ => Err(ParseKindError(())),
        }
    }
}

/// `unknown_service:` and the executable's name: the `service.name` of a process that
/// names none, as the OpenTelemetry resource semantic conventions define it.
#[cfg(feature = "subscriber")]
pub(crate) fn default_service_name() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    format!("unknown_service:{exe}")
}
