//! `TelemetryLayer`: turns the crate's track calls, and only those, into records for a
//! sink, delivered so that no sink can take the app down with it.
//!
//! Which callsites are track calls is decided by the per-layer filter
//! ([`filter`]); reading one event's fields into a record is the [`visitor`]'s job.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_core::{Event, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Layer};

use crate::record::Record;
use crate::report::stderr_line;
use crate::sink::Sink;

mod filter;
mod visitor;

pub(crate) use filter::is_track_call;
pub use filter::{TelemetryFilter, TelemetryHandle};
use visitor::RecordVisitor;

/// [`TelemetryLayer`] behind its [`TelemetryFilter`], as it goes into a registry.
///
/// The filter is a per-layer filter, so the layer composes with other layers (fmt,
/// `EnvFilter`) without changing what they see, and `tracing` caches its decision per
/// callsite.
pub type FilteredTelemetryLayer<K, S> = Filtered<TelemetryLayer<K>, TelemetryFilter, S>;

/// A [`Layer`] that turns telemetry events into [`Record`]s and hands them to a [`Sink`].
///
/// Put it behind a [`TelemetryFilter`] (as [`TelemetryLayer::with_telemetry_filter`]
/// does) so that it sees telemetry events and nothing else, and so that turning
/// telemetry off disables the callsites themselves.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use telemetry::{MemorySink, TelemetryLayer};
///
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
///
/// tracing::subscriber::with_default(subscriber, || {
///     telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
/// });
/// assert_eq!(sink.records()[0].value(), Some(42.0));
/// ```
#[derive(Debug)]
pub struct TelemetryLayer<K> {
    sink: K,
}

impl<K: Sink> TelemetryLayer<K> {
    /// A layer that hands every telemetry record to `sink`.
    ///
    /// ```
    /// let layer = telemetry::TelemetryLayer::new(telemetry::NoopSink);
    /// # let _ = layer;
    /// ```
    pub fn new(sink: K) -> Self {
        TelemetryLayer { sink }
    }

    /// The sink records go to.
    ///
    /// ```
    /// let layer = telemetry::TelemetryLayer::new(telemetry::MemorySink::new());
    /// assert!(layer.sink().records().is_empty());
    /// ```
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// Puts this layer behind a [`TelemetryFilter`] that is on.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(telemetry::TelemetryLayer::new(telemetry::NoopSink).with_telemetry_filter());
    /// # let _ = subscriber;
    /// ```
    pub fn with_telemetry_filter<S>(self) -> FilteredTelemetryLayer<K, S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        self.with_filter(TelemetryFilter::new(true))
    }
}

impl<S, K> Layer<S> for TelemetryLayer<K>
where
    S: Subscriber,
    K: Sink,
{
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let mut visitor = RecordVisitor::new(|record: &Record<'_>| deliver(&self.sink, record));
        event.record(&mut visitor);
        visitor.finish(event.metadata());
    }
}

thread_local! {
    /// Set while this thread is inside a sink.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

static SINK_PANIC_REPORTED: AtomicBool = AtomicBool::new(false);

/// Hands `record` to `sink`, so that no sink can take the app down with it:
///
/// * telemetry that a sink emits while recording is ignored, rather than recursing
///   without end (or deadlocking on the sink's own lock); its other events reach the
///   other layers as usual;
/// * a sink that panics loses that record, and the panic stops here. The first one is
///   reported on stderr (the panic hook reports each as usual).
fn deliver<K: Sink>(sink: &K, record: &Record<'_>) {
    if IN_SINK.with(|busy| busy.replace(true)) {
        return;
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| sink.record(record)));
    IN_SINK.with(|busy| busy.set(false));
    if outcome.is_err() && !SINK_PANIC_REPORTED.swap(true, Ordering::Relaxed) {
        stderr_line(format_args!(
            "a sink panicked while recording {:?}; that record is lost and the app goes on (later panics are not reported here)",
            record.name()
        ));
    }
}
