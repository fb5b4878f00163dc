//! Where records go: the [`Sink`] trait and the sinks the crate ships.

mod json;
mod memory;
mod noop;

pub use json::JsonLinesSink;
pub use memory::{MemorySink, OwnedRecord};
pub use noop::NoopSink;

use std::sync::Arc;

use crate::record::Record;

/// Receives every telemetry record from [`TelemetryLayer`](crate::TelemetryLayer).
///
/// # For implementors
///
/// `record` runs on the thread that made the track call, inside that call: keep it
/// short, never block on I/O, and never panic. (A panic is caught and costs only that
/// record, and telemetry a sink emits while recording is ignored rather than recursing;
/// but avoid `tracing` events in `record` altogether: with per-layer filters,
/// `tracing-subscriber` may not deliver events dispatched from inside another layer's
/// callback to the other layers, tokio-rs/tracing#2704.) The [`Record`] is borrowed from the
/// call; copy what you keep. [`Record::timestamp`] reads the clock on first use, so a
/// sink that needs no time pays none. `flush` is called when the app's
/// [`Guard`](crate::Guard) is dropped and must not return before everything recorded
/// so far has reached its destination.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tracing_telemetry::{Record, Sink};
///
/// /// Counts records by kind.
/// #[derive(Default)]
/// struct CountingSink(AtomicU64);
///
/// impl Sink for CountingSink {
///     fn record(&self, _record: &Record<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let sink = CountingSink::default();
/// sink.record(&Record::new(tracing_telemetry::Kind::Event, "app.started", &[]));
/// assert_eq!(sink.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Takes one record.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, MemorySink, Record, Sink, Tag};
    ///
    /// let sink = MemorySink::new();
    /// let tags = [Tag::new("plan", "pro")];
    /// sink.record(&Record::new(Kind::Event, "user.signup", &tags));
    /// assert_eq!(sink.records()[0].tag("plan").unwrap(), "pro");
    /// ```
    fn record(&self, record: &Record<'_>);

    /// Pushes buffered records to their destination. The default does nothing.
    ///
    /// ```
    /// use std::io::BufWriter;
    /// use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink};
    ///
    /// let sink = JsonLinesSink::new(BufWriter::new(Vec::new()));
    /// sink.record(&Record::new(Kind::Event, "app.started", &[]));
    /// sink.flush(); // the line leaves the BufWriter
    /// let out = String::from_utf8(sink.into_inner().get_ref().clone())?;
    /// assert!(out.contains(r#""name":"app.started""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn flush(&self) {}
}

impl<T: Sink + ?Sized> Sink for Box<T> {
    #[inline]
    fn record(&self, record: &Record<'_>) {
        (**self).record(record)
    }

    fn flush(&self) {
        (**self).flush()
    }
}

impl<T: Sink + ?Sized> Sink for Arc<T> {
    #[inline]
    fn record(&self, record: &Record<'_>) {
        (**self).record(record)
    }

    fn flush(&self) {
        (**self).flush()
    }
}

impl<T: Sink + ?Sized> Sink for &'static T {
    #[inline]
    fn record(&self, record: &Record<'_>) {
        (**self).record(record)
    }

    fn flush(&self) {
        (**self).flush()
    }
}
