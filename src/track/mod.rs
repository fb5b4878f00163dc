//! The track calls libraries make: three functions, their macro twins and a timer;
//! the instruments a library declares at the call site ([`instrument`]) and their
//! one-time descriptions ([`describe`]).

pub(crate) mod describe;
pub(crate) mod instrument;

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::time::Instant;

use tracing::Level;

use crate::fields::{Instrument, Kind, TARGET};

/// Records that something happened, with string properties whose keys may be runtime
/// strings.
///
/// Emits a `tracing` event (target `telemetry`, level TRACE) with `telemetry.kind =
/// "event"` and `telemetry.name = name`. When telemetry is off this is one cached
/// check, like a disabled `tracing` callsite. For typed properties (integers,
/// booleans), use [`track_event!`](crate::track_event!).
///
/// ```
/// tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
/// tracing_telemetry::track_event("app.started", &[]);
/// let key = format!("flag.{}", "beta");
/// tracing_telemetry::track_event(&format!("feature.{}", "used"), &[(&key, "on")]);
/// ```
#[inline]
#[track_caller]
pub fn track_event(name: &str, properties: &[(&str, &str)]) {
    // The level check comes first, before any argument is set up for the event: while
    // telemetry is off, the call compiles to a disabled callsite's load-test-return.
    if tracing::level_enabled!(Level::TRACE) {
        event_at(name, properties, Location::caller());
    }
}

#[inline]
fn event_at(name: &str, properties: &[(&str, &str)], location: &'static Location<'static>) {
    DynCall::with(
        Kind::Event,
        name,
        None,
        properties,
        location,
        MetricMeta::NONE,
        |call| {
            tracing::event!(
                target: TARGET,
                Level::TRACE,
                telemetry.tags = call,
                telemetry.kind = "event",
                telemetry.name = name,
            )
        },
    );
}

/// Records a measured value, with string tags whose keys may be runtime strings.
///
/// Emits a `tracing` event with `telemetry.kind = "metric"`, `telemetry.name` and
/// `telemetry.value`. For typed tags, use [`track_metric!`](crate::track_metric!).
///
/// ```
/// tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
/// ```
#[inline]
#[track_caller]
pub fn track_metric(name: &str, value: f64, tags: &[(&str, &str)]) {
    if tracing::level_enabled!(Level::TRACE) {
        metric_at(name, value, tags, Location::caller());
    }
}

#[inline]
fn metric_at(name: &str, value: f64, tags: &[(&str, &str)], location: &'static Location<'static>) {
    DynCall::with(
        Kind::Metric,
        name,
        Some(value),
        tags,
        location,
        MetricMeta::NONE,
        |call| {
            tracing::event!(
                target: TARGET,
                Level::TRACE,
                telemetry.tags = call,
                telemetry.kind = "metric",
                telemetry.name = name,
                telemetry.value = value,
            )
        },
    );
}

/// Records how long an operation took, in milliseconds, with string tags.
///
/// Emits a `tracing` event with `telemetry.kind = "timing"`, `telemetry.name` and
/// `telemetry.duration_ms`. To time a scope, use [`timer`] or [`timed`].
///
/// ```
/// tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
/// ```
#[inline]
#[track_caller]
pub fn track_timing(operation: &str, duration_ms: f64, tags: &[(&str, &str)]) {
    if tracing::level_enabled!(Level::TRACE) {
        timing_at(operation, duration_ms, tags, Location::caller());
    }
}

#[inline]
fn timing_at(
    operation: &str,
    duration_ms: f64,
    tags: &[(&str, &str)],
    location: &'static Location<'static>,
) {
    DynCall::with(
        Kind::Timing,
        operation,
        Some(duration_ms),
        tags,
        location,
        MetricMeta::NONE,
        |call| {
            tracing::event!(
                target: TARGET,
                Level::TRACE,
                telemetry.tags = call,
                telemetry.kind = "timing",
                telemetry.name = operation,
                telemetry.duration_ms = duration_ms,
            )
        },
    );
}

/// Starts timing a scope: when the returned guard is dropped, the elapsed time is
/// recorded with [`track_timing`].
///
/// Tags may be given by reference (`&[("table", "users")]`) or, when they hold values
/// computed at run time, by value (`[("queue", queue)]`), so the guard keeps them.
/// When telemetry is off the clock is not read at all.
///
/// ```
/// fn load_user() {
///     let _timer = tracing_telemetry::timer("db.query", &[("table", "users")]);
///     // ... the query ...
/// } // recorded here
///
/// fn drain(queue: &str) {
///     let _timer = tracing_telemetry::timer("queue.drain", [("queue", queue)]);
/// }
/// # load_user();
/// # drain("emails");
/// ```
#[inline]
#[track_caller]
pub fn timer<'a, T>(operation: &'a str, tags: T) -> TimingGuard<'a, T>
where
    T: AsRef<[(&'a str, &'a str)]>,
{
    // The field name makes this hint look like a track call to `TelemetryFilter`.
    let start = tracing::enabled!(target: TARGET, Level::TRACE, telemetry.tags).then(Instant::now);
    TimingGuard {
        operation,
        tags,
        start,
        location: Location::caller(),
    }
}

/// Runs `f` and records how long it took with [`track_timing`]; returns what `f`
/// returns.
///
/// ```
/// let rows = tracing_telemetry::timed("db.query", &[("table", "users")], || vec![1, 2, 3]);
/// assert_eq!(rows.len(), 3);
/// ```
#[inline]
#[track_caller]
pub fn timed<R>(operation: &str, tags: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let _timer = timer(operation, tags);
    f()
}

/// Times a scope and records it when dropped; returned by [`timer`].
///
/// ```
/// let timer = tracing_telemetry::timer("cache.warm", &[]);
/// // ... work ...
/// drop(timer); // records telemetry.kind = "timing", telemetry.name = "cache.warm"
/// ```
#[must_use = "the timing is recorded when the guard is dropped; bind it with `let _timer = ...`"]
pub struct TimingGuard<'a, T: AsRef<[(&'a str, &'a str)]>> {
    operation: &'a str,
    tags: T,
    /// `None` when telemetry was off at the start: nothing to record, no clock read.
    start: Option<Instant>,
    location: &'static Location<'static>,
}

impl<'a, T: AsRef<[(&'a str, &'a str)]>> Drop for TimingGuard<'a, T> {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let elapsed_ms = start.elapsed().as_nanos() as f64 / 1e6;
            timing_at(
                self.operation,
                elapsed_ms,
                self.tags.as_ref(),
                self.location,
            );
        }
    }
}

impl<'a, T: AsRef<[(&'a str, &'a str)]>> fmt::Debug for TimingGuard<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimingGuard")
            .field("operation", &self.operation)
            .field("tags", &self.tags.as_ref())
            .field("started", &self.start.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything a function-form call has (kind, name, value, runtime-keyed tags, caller
/// location), carried in its `telemetry.tags` field.
///
/// `tracing` field names are `&'static str`, so tags with runtime keys cannot be
/// fields of their own. `tracing` can hand a visitor a `&(dyn Error + 'static)` that
/// the visitor may downcast, so this type holds the call's borrows with their
/// lifetimes erased (it must be `'static` to be downcast), and
/// [`TelemetryLayer`](crate::TelemetryLayer) downcasts it and builds the record from
/// it in place, while the call is still running: no copy, no allocation, and no need
/// for the other fields. Any other layer sees its `Display`, a `key="value"` list.
///
/// The erased borrows are bounded by [`DynCall::with`], the only way to make one: see
/// the SAFETY argument there.
#[cfg_attr(
    not(feature = "subscriber"),
    allow(
        dead_code,
        reason = "read by the layer, which comes with the subscriber feature"
    )
)]
pub(crate) struct DynCall {
    kind: Kind,
    name: *const str,
    value: Option<f64>,
    tags: *const [(&'static str, &'static str)],
    location: &'static Location<'static>,
    meta: MetricMeta,
}

/// What a metric's call site declares about it: its instrument, unit and
/// description. All `'static`: they are constants of the call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricMeta {
    pub(crate) instrument: Option<Instrument>,
    pub(crate) unit: Option<&'static str>,
    pub(crate) description: Option<&'static str>,
}

impl MetricMeta {
    /// Nothing declared: the three track calls.
    pub(crate) const NONE: MetricMeta = MetricMeta {
        instrument: None,
        unit: None,
        description: None,
    };
}

/// A function-form call as [`DynCall::get`] lends it: borrowed for as long as the
/// `&DynCall` it came from.
#[cfg_attr(
    not(feature = "subscriber"),
    allow(
        dead_code,
        reason = "read by the layer, which comes with the subscriber feature"
    )
)]
pub(crate) struct CallView<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: &'a str,
    /// The metric value or the timing's duration in milliseconds.
    pub(crate) value: Option<f64>,
    pub(crate) tags: &'a [(&'a str, &'a str)],
    pub(crate) location: &'static Location<'static>,
    pub(crate) meta: MetricMeta,
}

#[cfg_attr(
    not(feature = "subscriber"),
    allow(
        dead_code,
        reason = "read by the layer, which comes with the subscriber feature"
    )
)]
impl DynCall {
    /// Runs `emit` with the call, erased to what a `tracing` field can carry.
    ///
    /// SAFETY (of the erasure here, relied on by [`DynCall::get`]): the `DynCall` is a
    /// local of this function, and `emit` only receives a shared borrow of it whose
    /// lifetime it cannot name, so it cannot keep it after returning; `tracing` hands
    /// the same borrow to visitors only while `emit` dispatches the event. A `DynCall`
    /// is neither `Clone` nor `Copy` and its fields are private to this module, so no
    /// copy of the pointers can escape either. Every `&DynCall` that exists therefore
    /// ends before this function returns, while `name` and `tags` (borrowed for `'a`,
    /// which outlives this call) are still alive.
    #[inline]
    #[allow(
        clippy::unnecessary_cast,
        reason = "the cast erases the lifetimes, which clippy does not count as a change"
    )]
    pub(crate) fn with<'a, R>(
        kind: Kind,
        name: &'a str,
        value: Option<f64>,
        tags: &'a [(&'a str, &'a str)],
        location: &'static Location<'static>,
        meta: MetricMeta,
        emit: impl FnOnce(&(dyn Error + 'static)) -> R,
    ) -> R {
        let call = DynCall {
            kind,
            name,
            value,
            // Only the lifetimes change; `get` gives them back, bounded by `&self`.
            tags: tags as *const [(&str, &str)] as *const [(&'static str, &'static str)],
            location,
            meta,
        };
        emit(&call)
    }

    /// The call, borrowed for as long as `self` is.
    pub(crate) fn get(&self) -> CallView<'_> {
        // SAFETY: see `DynCall::with`: any `&self` ends while the borrowed name and
        // tags are still alive, and the returned view lives no longer than `&self`.
        let (name, tags) = unsafe { (&*self.name, &*self.tags) };
        CallView {
            kind: self.kind,
            name,
            value: self.value,
            tags,
            location: self.location,
            meta: self.meta,
        }
    }
}

impl fmt::Display for DynCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.get().tags.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{key}={value:?}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DynCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error for DynCall {}

/// The `telemetry.tags` value of a macro-form call: the mark that tells
/// [`TelemetryLayer`](crate::TelemetryLayer) (and `try_init`'s log filter) that this
/// event came from `track_event!`, `track_metric!` or `track_timing!`, and of which
/// kind. Only this crate can make one; a hand-written event with target `telemetry`
/// and `telemetry.kind`/`telemetry.name` fields lacks it and stays an ordinary event.
///
/// Not public API: reached only through the macros' expansion.
#[doc(hidden)]
pub struct MacroCall(Kind);

impl MacroCall {
    #[cfg_attr(
        not(feature = "subscriber"),
        allow(
            dead_code,
            reason = "read by the layer, which comes with the subscriber feature"
        )
    )]
    pub(crate) fn kind(&self) -> Kind {
        self.0
    }
}

/// The marks the macros put in `telemetry.tags`: constants, so a macro call sets up no
/// more than a pointer pair for them.
#[doc(hidden)]
pub const EVENT_CALL: &(dyn Error + 'static) = &MacroCall(Kind::Event);
#[doc(hidden)]
pub const METRIC_CALL: &(dyn Error + 'static) = &MacroCall(Kind::Metric);
#[doc(hidden)]
pub const TIMING_CALL: &(dyn Error + 'static) = &MacroCall(Kind::Timing);

impl fmt::Display for MacroCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Other layers show the macro's typed fields themselves; nothing to add.
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for MacroCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MacroCall").field(&self.0).finish()
    }
}

impl Error for MacroCall {}

/// Records that something happened, with typed properties.
///
/// `track_event!(name, key = value, ...)`: keys are identifiers (dotted paths allowed),
/// values keep their type (string, integer, float, bool). Any field syntax `tracing`
/// accepts works, including `?debug` and `%display` values. Like the function, it is a
/// TRACE event with target `telemetry` and costs a cached check when telemetry is off.
///
/// Keys starting with `telemetry.` are reserved: the macro writes its own
/// (`telemetry.tags`, a mark that only this crate makes, then `telemetry.kind` and
/// `telemetry.name`), and a reserved key given again is never a tag (see the
/// [fields guide](crate::guide::fields)).
///
/// ```
/// tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3, trial = false);
/// tracing_telemetry::track_event!("app.started");
/// ```
#[macro_export]
macro_rules! track_event {
    ($name:expr $(, $($fields:tt)*)?) => {
        $crate::__private::tracing::event!(
            target: $crate::TARGET,
            $crate::__private::tracing::Level::TRACE,
            telemetry.tags = $crate::__private::EVENT_CALL,
            telemetry.kind = "event",
            telemetry.name = $name,
            $($($fields)*)?
        )
    };
}

/// Records a measured value, with typed tags.
///
/// `track_metric!(name, value, key = value, ...)`: the value is converted to `f64` with
/// `as`, so integers work too.
///
/// ```
/// tracing_telemetry::track_metric!("queue.depth", 42.0, queue = "emails", shard = 3);
/// tracing_telemetry::track_metric!("pool.size", 8);
/// ```
#[macro_export]
macro_rules! track_metric {
    ($name:expr, $value:expr $(, $($fields:tt)*)?) => {
        $crate::__private::tracing::event!(
            target: $crate::TARGET,
            $crate::__private::tracing::Level::TRACE,
            telemetry.tags = $crate::__private::METRIC_CALL,
            telemetry.kind = "metric",
            telemetry.name = $name,
            telemetry.value = ($value) as f64,
            $($($fields)*)?
        )
    };
}

/// Records how long an operation took in milliseconds, with typed tags.
///
/// ```
/// tracing_telemetry::track_timing!("db.query", 12.5, table = "users", cached = false);
/// ```
#[macro_export]
macro_rules! track_timing {
    ($operation:expr, $duration_ms:expr $(, $($fields:tt)*)?) => {
        $crate::__private::tracing::event!(
            target: $crate::TARGET,
            $crate::__private::tracing::Level::TRACE,
            telemetry.tags = $crate::__private::TIMING_CALL,
            telemetry.kind = "timing",
            telemetry.name = $operation,
            telemetry.duration_ms = ($duration_ms) as f64,
            $($($fields)*)?
        )
    };
}
