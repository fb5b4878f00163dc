//! [`TelemetryFilter`], the per-layer filter that decides which callsites are
//! telemetry, and the [`TelemetryHandle`] it hands out to switch it at run time.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing_core::subscriber::Interest;
use tracing_core::{LevelFilter, Metadata};
use tracing_subscriber::layer::{self, Context};

use crate::fields::{TAGS, TARGET};

/// Whether a callsite is one of the crate's track calls: an event (or the `timer`'s
/// `enabled!` hint) with target `telemetry` that has a `telemetry.tags` field, whose
/// value the layer then checks. Decided from static metadata, so `tracing` caches it
/// per callsite.
pub(crate) fn is_track_call(meta: &Metadata<'_>) -> bool {
    !meta.is_span() && meta.target() == TARGET && meta.fields().field(TAGS).is_some()
}

/// The per-layer filter for [`TelemetryLayer`](crate::TelemetryLayer): enables the
/// crate's own track calls while it is on, and nothing at all while it is off.
///
/// A track call is an event with target [`TARGET`](crate::TARGET) and a
/// [`telemetry.tags`](crate::fields::TAGS) field; other events with that target (an
/// app's `tracing::error!(target: "telemetry", ..)`) are not telemetry, and stay the
/// app's logs.
///
/// On and off are decided when `tracing` registers a callsite, so an off filter costs
/// nothing per event: its level hint is `OFF` and its callsites' cached interest is
/// "never". [`TelemetryHandle`](crate::TelemetryHandle) flips it at run time and
/// rebuilds that cache.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};
///
/// let filter = TelemetryFilter::new(false);
/// let handle = filter.handle();
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_filter(filter));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing_telemetry::track_event("ignored", &[]);
///     handle.enable();
///     tracing_telemetry::track_event("kept", &[]);
/// });
/// assert_eq!(sink.names(), ["kept"]);
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryFilter {
    on: Arc<AtomicBool>,
    /// Whether spans are enabled too, for a layer that reads them.
    spans: bool,
}

impl TelemetryFilter {
    /// A filter that starts on or off.
    ///
    /// ```
    /// let filter = tracing_telemetry::TelemetryFilter::new(true);
    /// assert!(filter.handle().is_enabled());
    /// ```
    pub fn new(enabled: bool) -> Self {
        TelemetryFilter {
            on: Arc::new(AtomicBool::new(enabled)),
            spans: false,
        }
    }

    /// Enables spans too (while on), so that the layer behind this filter sees the
    /// spans around each track call: needed for span fields
    /// ([`TelemetryLayer::with_span_fields`](crate::TelemetryLayer::with_span_fields))
    /// and trace ids (feature `tracing-opentelemetry`).
    /// [`TelemetryLayer::with_telemetry_filter`](crate::TelemetryLayer::with_telemetry_filter)
    /// sets it when the layer needs it. Off (the default), no span reaches the layer,
    /// and a track call never looks at the registry.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};
    ///
    /// let sink = MemorySink::new();
    /// let layer = TelemetryLayer::new(sink.clone()).with_span_fields(["request_id"]);
    /// let filter = TelemetryFilter::new(true).with_spans(true);
    /// let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _request = tracing::info_span!("request", request_id = "r-42").entered();
    ///     tracing_telemetry::track_event("order.placed", &[]);
    /// });
    /// assert_eq!(sink.records()[0].span_tag("request_id").unwrap(), "r-42");
    /// ```
    #[must_use]
    pub fn with_spans(mut self, spans: bool) -> Self {
        self.spans = spans;
        self
    }

    /// A handle that turns this filter on and off while the app runs.
    ///
    /// ```
    /// let handle = tracing_telemetry::TelemetryFilter::new(false).handle();
    /// assert!(!handle.is_enabled());
    /// ```
    pub fn handle(&self) -> TelemetryHandle {
        TelemetryHandle::new(Arc::clone(&self.on))
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        self.on.load(Ordering::Acquire) && (is_track_call(meta) || (self.spans && meta.is_span()))
    }
}

impl<S> layer::Filter<S> for TelemetryFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if self.on.load(Ordering::Acquire) {
            Some(LevelFilter::TRACE)
        } else {
            Some(LevelFilter::OFF)
        }
    }
}

/// Turns telemetry on and off while the app runs, from an admin endpoint or a thread
/// that waits for signals.
///
/// A switch rebuilds `tracing`'s callsite interest cache, so while off the track calls
/// stay a cached check that no event gets past (the filter's own flag is read only
/// for callsites whose interest is "sometimes"). Switches are serialized
/// process-wide, so concurrent `enable` and `disable` calls leave the flag and the
/// callsites in agreement.
///
/// **Not from a signal handler:** rebuilding the cache takes locks and allocates, which
/// is not async-signal-safe. Let a thread wait for the signal and switch from there
/// (`examples/toggle.rs` does it with `signal-hook`'s iterator).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};
///
/// let filter = TelemetryFilter::new(true);
/// let handle = filter.handle();
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_filter(filter));
/// tracing::subscriber::with_default(subscriber, || {
///     handle.disable();
///     tracing_telemetry::track_event("while.off", &[]);
///     handle.enable();
///     tracing_telemetry::track_event("while.on", &[]);
/// });
/// assert_eq!(sink.names(), ["while.on"]);
/// ```
#[derive(Clone)]
pub struct TelemetryHandle {
    on: Arc<AtomicBool>,
}

impl TelemetryHandle {
    fn new(on: Arc<AtomicBool>) -> Self {
        TelemetryHandle { on }
    }

    /// Turns telemetry on.
    ///
    /// ```
    /// let handle = tracing_telemetry::TelemetryFilter::new(false).handle();
    /// handle.enable();
    /// assert!(handle.is_enabled());
    /// ```
    pub fn enable(&self) {
        self.set(true);
    }

    /// Turns telemetry off.
    ///
    /// ```
    /// let handle = tracing_telemetry::TelemetryFilter::new(true).handle();
    /// handle.disable();
    /// assert!(!handle.is_enabled());
    /// ```
    pub fn disable(&self) {
        self.set(false);
    }

    /// Whether telemetry is on.
    ///
    /// ```
    /// assert!(tracing_telemetry::TelemetryFilter::new(true).handle().is_enabled());
    /// ```
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    fn set(&self, on: bool) {
        // One switch at a time, process-wide: the store and the rebuild of `tracing`'s
        // interest cache happen together, so the last rebuild always sees the last
        // store. (Without this, two threads switching at once could leave the flag
        // on while the callsites stayed cached as off, or the reverse.)
        let _one_switch = SWITCH.lock().unwrap_or_else(PoisonError::into_inner);
        if self.on.swap(on, Ordering::AcqRel) != on {
            tracing_core::callsite::rebuild_interest_cache();
        }
    }
}

/// Serializes every [`TelemetryHandle`] switch with its interest-cache rebuild.
static SWITCH: Mutex<()> = Mutex::new(());

impl fmt::Debug for TelemetryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryHandle")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}
