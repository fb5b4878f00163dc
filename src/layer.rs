//! `TelemetryLayer`: turns telemetry events, and only those, into records for a sink.

use std::cell::Cell;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{self, Context, Layer};

use crate::fields::{self, Kind, TARGET};
use crate::record::{FieldValue, Record, TagSource, TagValue};
use crate::report::stderr_line;
use crate::sink::Sink;
use crate::track::DynTags;

/// Macro-form fields held inline before the visitor's list moves to the heap.
const INLINE_TAGS: usize = 8;
/// Bytes of macro-form strings (name and values) held inline.
const INLINE_TEXT: usize = 128;

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
        let mut visitor = RecordVisitor::default();
        event.record(&mut visitor);
        visitor.finish(event.metadata(), |record| deliver(&self.sink, record));
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

/// The per-layer filter for [`TelemetryLayer`]: enables events with target
/// [`TARGET`](crate::TARGET) while it is on, and nothing at all while it is off.
///
/// On and off are decided when `tracing` registers a callsite, so an off filter costs
/// nothing per event: its level hint is `OFF` and its callsites' cached interest is
/// "never". [`TelemetryHandle`](crate::TelemetryHandle) flips it at run time and
/// rebuilds that cache.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};
///
/// let filter = TelemetryFilter::new(false);
/// let handle = filter.handle();
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_filter(filter));
/// tracing::subscriber::with_default(subscriber, || {
///     telemetry::track_event("ignored", &[]);
///     handle.enable();
///     telemetry::track_event("kept", &[]);
/// });
/// assert_eq!(sink.names(), ["kept"]);
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryFilter {
    on: Arc<AtomicBool>,
}

impl TelemetryFilter {
    /// A filter that starts on or off.
    ///
    /// ```
    /// let filter = telemetry::TelemetryFilter::new(true);
    /// assert!(filter.handle().is_enabled());
    /// ```
    pub fn new(enabled: bool) -> Self {
        TelemetryFilter {
            on: Arc::new(AtomicBool::new(enabled)),
        }
    }

    /// A handle that turns this filter on and off while the app runs.
    ///
    /// ```
    /// let handle = telemetry::TelemetryFilter::new(false).handle();
    /// assert!(!handle.is_enabled());
    /// ```
    pub fn handle(&self) -> crate::TelemetryHandle {
        crate::TelemetryHandle::new(Arc::clone(&self.on))
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        self.on.load(Ordering::Acquire) && !meta.is_span() && meta.target() == TARGET
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

/// Collects one event's fields without allocating (up to [`INLINE_TAGS`] macro-form
/// fields and [`INLINE_TEXT`] bytes of their strings).
#[derive(Default)]
struct RecordVisitor {
    kind: Option<Kind>,
    name: Option<FieldValue>,
    value: Option<f64>,
    /// The function form's payload; see [`RecordVisitor::finish`] for why a pointer.
    dyn_tags: Option<*const DynTags>,
    fields: SmallVec<[(&'static str, FieldValue); INLINE_TAGS]>,
    text: SmallVec<[u8; INLINE_TEXT]>,
}

impl RecordVisitor {
    #[inline(always)]
    fn push_text(&mut self, s: &str) -> FieldValue {
        let start = self.text.len();
        self.text.extend_from_slice(s.as_bytes());
        FieldValue::Text(start, self.text.len())
    }

    fn push_fmt(&mut self, args: fmt::Arguments<'_>) -> FieldValue {
        let start = self.text.len();
        // Writing into memory cannot fail; if a `Debug`/`Display` impl itself errors,
        // the text written so far is kept rather than losing the tag.
        let _ = TextWriter(&mut self.text).write_fmt(args);
        FieldValue::Text(start, self.text.len())
    }

    // Inlined into each `record_*`, so each value is written in place: passing it
    // through memory costs a store-forwarding stall per field (measured: a third of a
    // macro-form call).
    #[inline(always)]
    fn set(&mut self, field: &Field, value: FieldValue) {
        match field.name() {
            fields::NAME => self.name = Some(value),
            fields::KIND => {}
            name => self.fields.push((name, value)),
        }
    }

    /// Builds the record (borrowing this visitor's buffers) and passes it to `f`.
    /// Events without a valid `telemetry.kind` and a name are not telemetry: ignored.
    fn finish(&self, meta: &Metadata<'_>, f: impl FnOnce(&Record<'_>)) {
        let mut record =
            match self.dyn_tags {
                Some(dyn_tags) => {
                    // SAFETY: the pointer came from the `telemetry.tags` value of the event
                    // being visited; `finish` runs inside `on_event`, while that event (and
                    // the track call that owns the value) is still being dispatched.
                    let dyn_tags = unsafe { &*dyn_tags };
                    let (name, pairs, location) = dyn_tags.get();
                    Record::with_tag_source(dyn_tags.kind(), name, TagSource::Pairs(pairs))
                        .with_source(None, Some(location.file()), Some(location.line()))
                }
                None => {
                    let Some(kind) = self.kind else { return };
                    // Every byte was copied from a `&str` or written by `fmt::Write`, so
                    // this only fails if that invariant breaks; then the record is skipped,
                    // not torn.
                    let Ok(text) = std::str::from_utf8(&self.text) else {
                        return;
                    };
                    let Some(TagValue::Str(name)) = self.name.map(|n| n.resolve(text)) else {
                        return;
                    };
                    let tags = TagSource::Fields {
                        fields: &self.fields,
                        text,
                    };
                    Record::with_tag_source(kind, name, tags).with_source(
                        meta.module_path(),
                        meta.file(),
                        meta.line(),
                    )
                }
            };
        if let Some(value) = self.value {
            record = record.with_value(value);
        }
        f(&record);
    }
}

impl Visit for RecordVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            fields::VALUE | fields::DURATION_MS => self.value = Some(value),
            _ => self.set(field, FieldValue::Value(TagValue::F64(value))),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            // `track_metric!(name, 3)` converts with `as f64`, but a hand-written event
            // may pass an integer.
            fields::VALUE | fields::DURATION_MS => self.value = Some(value as f64),
            _ => self.set(field, FieldValue::Value(TagValue::I64(value))),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            fields::VALUE | fields::DURATION_MS => self.value = Some(value as f64),
            _ => self.set(field, FieldValue::Value(TagValue::U64(value))),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let slot = match i64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::I64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let slot = match u64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::U64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, FieldValue::Value(TagValue::Bool(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.dyn_tags.is_some() {
            // A function-form event's only string fields are its kind and name, which
            // arrived (uncopied) with its tags.
            return;
        }
        match field.name() {
            fields::KIND => self.kind = value.parse().ok(),
            _ => {
                let value = self.push_text(value);
                self.set(field, value);
            }
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if field.name() == fields::TAGS {
            if let Some(dyn_tags) = value.downcast_ref::<DynTags>() {
                self.dyn_tags = Some(dyn_tags);
                return;
            }
        }
        let slot = self.push_fmt(format_args!("{value}"));
        self.set(field, slot);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let slot = self.push_fmt(format_args!("{value:?}"));
        self.set(field, slot);
    }
}

struct TextWriter<'a>(&'a mut SmallVec<[u8; INLINE_TEXT]>);

impl fmt::Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
