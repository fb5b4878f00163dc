//! [`JsonLinesSink`]: JSON lines written synchronously to any [`Write`].

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::encode::LineEncoder;
use crate::fields::default_service_name;
use crate::record::Record;
use crate::report::report_write_error;
use crate::sink::Sink;

thread_local! {
    /// Each thread's line buffer for [`JsonLinesSink`], reused from record to record.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes each record as one JSON line to a [`Write`], in the calling thread.
///
/// Each line is encoded first and written with a single `write_all` under a lock, so
/// lines from different threads never interleave. A write error is reported once on
/// standard error, never panics, and the records it loses are counted
/// ([`JsonLinesSink::lost`]).
///
/// Every line carries `"service"`: the name given to [`with_service`](Self::with_service),
/// or else `unknown_service:<executable name>`, the OpenTelemetry default. (The
/// exporters that `try_init` builds take it from the [`Config`](crate::Config).)
///
/// This sink writes synchronously: give it a fast writer (memory, a `BufWriter`). The
/// exporters that `try_init` builds for stdout, stderr and files hand lines to a
/// background thread instead, so the app never waits on I/O.
///
/// ```
/// use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink, Tag};
///
/// let sink = JsonLinesSink::new(Vec::new());
/// let tags = [Tag::new("queue", "emails")];
/// sink.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(42.0));
///
/// let out = String::from_utf8(sink.into_inner()).unwrap();
/// let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
/// assert_eq!(json["value"], 42.0);
/// assert_eq!(json["tags"]["queue"], "emails");
/// ```
pub struct JsonLinesSink<W> {
    writer: Mutex<W>,
    encoder: LineEncoder,
    lost: AtomicU64,
    reported: AtomicBool,
}

impl<W: Write> JsonLinesSink<W> {
    /// A sink writing to `writer`.
    ///
    /// ```
    /// use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink};
    ///
    /// let sink = JsonLinesSink::new(Vec::new());
    /// sink.record(&Record::new(Kind::Event, "app.started", &[]));
    /// sink.record(&Record::new(Kind::Event, "app.stopped", &[]));
    /// assert_eq!(String::from_utf8(sink.into_inner())?.lines().count(), 2);
    /// # Ok::<(), std::string::FromUtf8Error>(())
    /// ```
    pub fn new(writer: W) -> Self {
        JsonLinesSink {
            writer: Mutex::new(writer),
            encoder: LineEncoder::new(&default_service_name()),
            lost: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }
    }

    /// Names the service on every line (`"service":"<name>"`), encoded once here.
    ///
    /// ```
    /// use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink};
    ///
    /// let sink = JsonLinesSink::new(Vec::new()).with_service("checkout");
    /// sink.record(&Record::new(Kind::Event, "order.placed", &[]));
    /// let out = String::from_utf8(sink.into_inner()).unwrap();
    /// let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    /// assert_eq!(json["service"], "checkout");
    /// ```
    #[must_use]
    pub fn with_service(mut self, name: &str) -> Self {
        self.encoder = LineEncoder::new(name);
        self
    }

    /// How many records were lost to write errors.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::JsonLinesSink::new(std::io::sink()).lost(), 0);
    /// ```
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The writer back.
    ///
    /// ```
    /// let sink = tracing_telemetry::JsonLinesSink::new(Vec::<u8>::new());
    /// assert!(sink.into_inner().is_empty());
    /// ```
    pub fn into_inner(self) -> W {
        self.writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn failed(&self, err: &io::Error, records: u64) {
        self.lost.fetch_add(records, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            report_write_error(err);
        }
    }
}

impl<W: Write + Send + 'static> Sink for JsonLinesSink<W> {
    fn record(&self, record: &Record<'_>) {
        let write = |line: &mut Vec<u8>| {
            line.clear();
            self.encoder.encode(record, line);
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(err) = writer.write_all(line) {
                drop(writer);
                self.failed(&err, 1);
            }
        };
        // The buffer is busy only if a writer records telemetry from inside `write`
        // (the layer already ignores that); then use a fresh one.
        let reused = LINE.with(|buf| buf.try_borrow_mut().map(|mut line| write(&mut line)));
        if reused.is_err() {
            write(&mut Vec::new());
        }
    }

    fn flush(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = writer.flush() {
            drop(writer);
            self.failed(&err, 0);
        }
    }
}

impl<W> fmt::Debug for JsonLinesSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("lost", &self.lost.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
