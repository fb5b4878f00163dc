//! `TelemetryLayer`: turns the crate's track calls, and only those, into records for a
//! sink, delivered so that no sink can take the app down with it.
//!
//! Which callsites are track calls is decided by the per-layer filter
//! ([`filter`]); reading one event's fields into a record is the [`visitor`]'s job.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_core::{span, Event, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::record::{Record, TagSource};
use crate::report::stderr_line;
use crate::sink::Sink;

mod filter;
mod span_fields;
#[cfg(feature = "tracing-opentelemetry")]
mod trace;
mod visitor;

use span_fields::{Found, SpanFields};

pub(crate) use filter::is_track_call;
pub use filter::{TelemetryFilter, TelemetryHandle};
use visitor::RecordVisitor;

/// [`TelemetryLayer`] behind its [`TelemetryFilter`], as it goes into a registry.
///
/// The filter is a per-layer filter, so the layer composes with other layers (fmt,
/// `EnvFilter`) without changing what they see, and `tracing` caches its decision per
/// callsite.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::Registry;
/// use tracing_telemetry::{FilteredTelemetryLayer, MemorySink, TelemetryLayer};
///
/// // The type to name in a function that builds the layer, or a struct that holds it.
/// fn telemetry(sink: MemorySink) -> FilteredTelemetryLayer<MemorySink, Registry> {
///     TelemetryLayer::new(sink).with_telemetry_filter()
/// }
///
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry().with(telemetry(sink.clone()));
/// tracing::subscriber::with_default(subscriber, || tracing_telemetry::track_event("app.started", &[]));
/// assert_eq!(sink.names(), ["app.started"]);
/// ```
pub type FilteredTelemetryLayer<K, S> = Filtered<TelemetryLayer<K>, TelemetryFilter, S>;

/// A [`Layer`] that turns telemetry events into [`Record`]s and hands them to a [`Sink`].
///
/// Put it behind a [`TelemetryFilter`] (as [`TelemetryLayer::with_telemetry_filter`]
/// does) so that it sees telemetry events and nothing else, and so that turning
/// telemetry off disables the callsites themselves.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{MemorySink, TelemetryLayer};
///
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
///
/// tracing::subscriber::with_default(subscriber, || {
///     tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
/// });
/// assert_eq!(sink.records()[0].value(), Some(42.0));
/// ```
#[derive(Debug)]
pub struct TelemetryLayer<K> {
    sink: K,
    /// `None` unless span fields are chosen: then spans are never looked at for them.
    span_fields: Option<SpanFields>,
    #[cfg(feature = "tracing-opentelemetry")]
    trace: trace::TraceIds,
}

impl<K: Sink> TelemetryLayer<K> {
    /// A layer that hands every telemetry record to `sink`.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracing_telemetry::{MemorySink, TelemetryLayer};
    ///
    /// let sink = MemorySink::new();
    /// let layer = TelemetryLayer::new(sink.clone());
    /// let subscriber = tracing_subscriber::registry().with(layer.with_telemetry_filter());
    /// tracing::subscriber::with_default(subscriber, || tracing_telemetry::track_event("app.started", &[]));
    /// assert_eq!(sink.names(), ["app.started"]);
    /// ```
    pub fn new(sink: K) -> Self {
        TelemetryLayer {
            sink,
            span_fields: None,
            #[cfg(feature = "tracing-opentelemetry")]
            trace: trace::TraceIds::default(),
        }
    }

    /// Copies these fields of the spans around each track call onto its record, as
    /// [`Record::span_tags`]: each from the nearest span that has it. (`try_init`
    /// passes `TELEMETRY_SPAN_FIELDS`.) An empty list, the default, costs nothing: no
    /// span is looked at.
    ///
    /// The layer must see the spans: [`with_telemetry_filter`](Self::with_telemetry_filter)
    /// sees to it; a [`TelemetryFilter`] built by hand needs
    /// [`with_spans(true)`](TelemetryFilter::with_spans).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracing_telemetry::{MemorySink, TelemetryLayer};
    ///
    /// let sink = MemorySink::new();
    /// let layer = TelemetryLayer::new(sink.clone()).with_span_fields(["request_id"]);
    /// let subscriber = tracing_subscriber::registry().with(layer.with_telemetry_filter());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _request = tracing::info_span!("request", request_id = "r-42").entered();
    ///     tracing_telemetry::track_event("order.placed", &[]);
    /// });
    /// assert_eq!(sink.records()[0].span_tag("request_id").unwrap(), "r-42");
    /// ```
    #[must_use]
    pub fn with_span_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.span_fields = SpanFields::new(&names);
        self
    }

    /// Whether this layer reads the spans around its events, so its filter must let
    /// spans through: with span fields, or with the `tracing-opentelemetry` feature.
    fn reads_spans(&self) -> bool {
        self.span_fields.is_some() || cfg!(feature = "tracing-opentelemetry")
    }

    /// The sink records go to.
    ///
    /// ```
    /// let layer = tracing_telemetry::TelemetryLayer::new(tracing_telemetry::MemorySink::new());
    /// assert!(layer.sink().records().is_empty());
    /// ```
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// Puts this layer behind a [`TelemetryFilter`] that is on.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracing_telemetry::{MemorySink, TelemetryLayer};
    ///
    /// let sink = MemorySink::new();
    /// let subscriber = tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info!("an app log");
    ///     tracing_telemetry::track_event("app.started", &[]);
    /// });
    /// assert_eq!(sink.names(), ["app.started"]); // the log never reached the layer
    /// ```
    pub fn with_telemetry_filter<S>(self) -> FilteredTelemetryLayer<K, S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let spans = self.reads_spans();
        self.with_filter(TelemetryFilter::new(true).with_spans(spans))
    }

    /// Puts this layer behind `filter`, letting spans through it when the layer reads
    /// them (span fields, trace ids).
    pub(crate) fn behind<S>(self, filter: TelemetryFilter) -> FilteredTelemetryLayer<K, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let spans = self.reads_spans();
        self.with_filter(filter.with_spans(spans))
    }
}

impl<S, K> Layer<S> for TelemetryLayer<K>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    K: Sink,
{
    #[cfg(feature = "tracing-opentelemetry")]
    fn on_register_dispatch(&self, dispatch: &tracing_core::Dispatch) {
        self.trace.register(dispatch);
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if let Some(fields) = &self.span_fields {
            fields.on_new_span(attrs, id, &cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let Some(fields) = &self.span_fields {
            fields.on_record(id, values, &cx);
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        // Without span fields, the registry is not touched here at all.
        let mut found = Found::default();
        let span_tags = match &self.span_fields {
            Some(fields) => {
                fields.collect(event, &cx, &mut found);
                found.tags()
            }
            None => TagSource::Tags(&[]),
        };
        #[cfg(feature = "tracing-opentelemetry")]
        let trace = self.trace.current(event, &cx);
        #[cfg(not(feature = "tracing-opentelemetry"))]
        let trace = None;
        let mut visitor = RecordVisitor::new(span_tags, trace, |record: &Record<'_>| {
            deliver(&self.sink, record)
        });
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
