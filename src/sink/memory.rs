use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use crate::fields::{Instrument, Kind};
use crate::record::{OwnedTagValue, Record};
use crate::sink::Sink;

use thread_local::ThreadLocal;

/// An owned copy of a [`Record`], as kept by [`MemorySink`].
///
/// ```
/// use tracing_telemetry::{Kind, MemorySink, Record, Sink, Tag};
///
/// let sink = MemorySink::new();
/// let tags = [Tag::new("queue", "emails")];
/// sink.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(3.0));
/// let record = &sink.records()[0];
/// assert_eq!(record.kind(), Kind::Metric);
/// assert_eq!(record.tag("queue").unwrap(), "emails");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRecord {
    kind: Kind,
    name: String,
    value: Option<f64>,
    duration_ms: Option<f64>,
    unit: Option<&'static str>,
    instrument: Option<Instrument>,
    description: Option<&'static str>,
    tags: Vec<(String, OwnedTagValue)>,
    span_tags: Vec<(String, OwnedTagValue)>,
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    timestamp: SystemTime,
}

impl OwnedRecord {
    /// Copies a borrowed record.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let owned = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]));
    /// assert_eq!(owned.name(), "e");
    /// ```
    pub fn from_record(record: &Record<'_>) -> Self {
        OwnedRecord {
            kind: record.kind(),
            name: record.name().to_owned(),
            value: record.value(),
            duration_ms: record.duration_ms(),
            unit: record.unit(),
            instrument: record.instrument(),
            description: record.description(),
            tags: record
                .tags()
                .map(|t| (t.key().to_owned(), t.value().into_owned()))
                .collect(),
            span_tags: record
                .span_tags()
                .map(|t| (t.key().to_owned(), t.value().into_owned()))
                .collect(),
            trace_id: record.trace_id(),
            span_id: record.span_id(),
            module_path: record.module_path().map(str::to_owned),
            file: record.file().map(str::to_owned),
            line: record.line(),
            timestamp: record.timestamp(),
        }
    }

    /// Event, metric or timing.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// assert_eq!(OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[])).kind(), Kind::Event);
    /// ```
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The event, metric or operation name.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// assert_eq!(OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[])).name(), "e");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The metric's value; `None` for events and timings.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Metric, "m", &[]).with_value(2.0));
    /// assert_eq!(r.value(), Some(2.0));
    /// ```
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The timing's duration in milliseconds; `None` for events and metrics.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Timing, "t", &[]).with_value(2.0));
    /// assert_eq!(r.duration_ms(), Some(2.0));
    /// ```
    pub fn duration_ms(&self) -> Option<f64> {
        self.duration_ms
    }

    /// The instrument a metric's call site declared ([`Record::instrument`]).
    ///
    /// ```
    /// use tracing_telemetry::{Instrument, MemorySink};
    ///
    /// let records = MemorySink::capture(|| tracing_telemetry::track_counter("jobs.done", 2, &[]));
    /// assert_eq!(records[0].instrument(), Some(Instrument::Counter));
    /// assert_eq!(records[0].value(), Some(2.0));
    /// ```
    pub fn instrument(&self) -> Option<Instrument> {
        self.instrument
    }

    /// The description a metric's call site declared ([`Record::description`]).
    ///
    /// ```
    /// use tracing_telemetry::{Counter, MemorySink};
    ///
    /// const JOBS: Counter = Counter::new("jobs.done").with_description("jobs finished");
    /// let records = MemorySink::capture(|| JOBS.add(1, &[]));
    /// assert_eq!(records[0].description(), Some("jobs finished"));
    /// ```
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// `"ms"` for timings, a metric's declared unit, `None` otherwise.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// assert_eq!(OwnedRecord::from_record(&Record::new(Kind::Timing, "t", &[])).unit(), Some("ms"));
    /// ```
    pub fn unit(&self) -> Option<&'static str> {
        self.unit
    }

    /// The tags or properties, in the order given.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record, Tag};
    /// let tags = [Tag::new("k", "v")];
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &tags));
    /// assert_eq!(r.tags()[0].0, "k");
    /// ```
    pub fn tags(&self) -> &[(String, OwnedTagValue)] {
        &self.tags
    }

    /// The value of the first tag with this key.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record, Tag};
    /// let tags = [Tag::new("seats", 3_i64)];
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &tags));
    /// assert_eq!(r.tag("seats").and_then(|v| v.as_i64()), Some(3));
    /// ```
    pub fn tag(&self, key: &str) -> Option<&OwnedTagValue> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The tags copied from the enclosing spans (`TELEMETRY_SPAN_FIELDS`), apart from
    /// the call's own [`tags`](Self::tags).
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record, Tag};
    /// let span_tags = [Tag::new("request_id", "r-42")];
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]).with_span_tags(&span_tags));
    /// assert_eq!(r.span_tags()[0].0, "request_id");
    /// ```
    pub fn span_tags(&self) -> &[(String, OwnedTagValue)] {
        &self.span_tags
    }

    /// The value of the span tag with this key.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record, Tag};
    /// let span_tags = [Tag::new("tenant", "acme")];
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]).with_span_tags(&span_tags));
    /// assert_eq!(r.span_tag("tenant").unwrap(), "acme");
    /// assert!(r.tag("tenant").is_none());
    /// ```
    pub fn span_tag(&self, key: &str) -> Option<&OwnedTagValue> {
        self.span_tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The trace id of the OpenTelemetry span the call was made in, if any.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]).with_trace([7; 16], [8; 8]));
    /// assert_eq!(r.trace_id(), Some([7; 16]));
    /// ```
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        self.trace_id
    }

    /// The span id of the OpenTelemetry span the call was made in, if any.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]).with_trace([7; 16], [8; 8]));
    /// assert_eq!(r.span_id(), Some([8; 8]));
    /// ```
    pub fn span_id(&self) -> Option<[u8; 8]> {
        self.span_id
    }

    /// The module the call was written in (macro form only).
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = Record::new(Kind::Event, "e", &[]).with_source(Some("app"), None, None);
    /// assert_eq!(OwnedRecord::from_record(&r).module_path(), Some("app"));
    /// ```
    pub fn module_path(&self) -> Option<&str> {
        self.module_path.as_deref()
    }

    /// The source file of the call.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = Record::new(Kind::Event, "e", &[]).with_source(None, Some("src/main.rs"), Some(1));
    /// assert_eq!(OwnedRecord::from_record(&r).file(), Some("src/main.rs"));
    /// ```
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The source line of the call.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = Record::new(Kind::Event, "e", &[]).with_source(None, Some("src/main.rs"), Some(1));
    /// assert_eq!(OwnedRecord::from_record(&r).line(), Some(1));
    /// ```
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// When the call happened.
    ///
    /// ```
    /// # use tracing_telemetry::{Kind, OwnedRecord, Record};
    /// let r = OwnedRecord::from_record(&Record::new(Kind::Event, "e", &[]));
    /// assert!(r.timestamp() <= std::time::SystemTime::now());
    /// ```
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }
}

/// A sink that keeps every record in memory, for tests.
///
/// Library authors use it to assert their own telemetry: install it in a scoped
/// subscriber, run the code, look at what arrived. Clones share the same records.
/// Each thread appends to its own shard, so threads recording at once do not contend
/// for one lock; [`records`](Self::records) merges them in arrival order.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{MemorySink, TelemetryLayer};
///
/// let sink = MemorySink::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3);
/// });
///
/// let records = sink.records();
/// assert_eq!(records.len(), 1);
/// assert_eq!(records[0].tag("plan").unwrap(), "team");
/// assert_eq!(records[0].tag("seats").unwrap(), 3_i64);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    inner: Arc<Shards>,
}

#[derive(Debug, Default)]
struct Shards {
    /// Each thread's records, with the monotonic instant each arrived at: merging by
    /// instant gives arrival order without a counter that every thread would write.
    by_thread: ThreadLocal<Mutex<Vec<(Instant, OwnedRecord)>>>,
}

impl MemorySink {
    /// An empty sink.
    ///
    /// ```
    /// assert!(tracing_telemetry::MemorySink::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record so far, in arrival order.
    ///
    /// ```
    /// assert!(tracing_telemetry::MemorySink::new().records().is_empty());
    /// ```
    pub fn records(&self) -> Vec<OwnedRecord> {
        self.collect(|shard| shard.clone())
    }

    /// Removes and returns every record so far, in arrival order.
    ///
    /// ```
    /// let sink = tracing_telemetry::MemorySink::new();
    /// assert!(sink.take().is_empty());
    /// ```
    pub fn take(&self) -> Vec<OwnedRecord> {
        self.collect(std::mem::take)
    }

    /// The names of the records so far, in arrival order.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, MemorySink, Record, Sink};
    /// let sink = MemorySink::new();
    /// sink.record(&Record::new(Kind::Event, "a", &[]));
    /// assert_eq!(sink.names(), ["a"]);
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.name).collect()
    }

    /// How many records arrived.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::MemorySink::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner
            .by_thread
            .iter()
            .map(|shard| lock(shard).len())
            .sum()
    }

    /// Whether no record arrived.
    ///
    /// ```
    /// assert!(tracing_telemetry::MemorySink::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every record so far.
    ///
    /// ```
    /// let sink = tracing_telemetry::MemorySink::new();
    /// sink.clear();
    /// assert!(sink.is_empty());
    /// ```
    pub fn clear(&self) {
        for shard in self.inner.by_thread.iter() {
            lock(shard).clear();
        }
    }

    fn collect(
        &self,
        mut from_shard: impl FnMut(&mut Vec<(Instant, OwnedRecord)>) -> Vec<(Instant, OwnedRecord)>,
    ) -> Vec<OwnedRecord> {
        let mut all: Vec<(Instant, OwnedRecord)> = self
            .inner
            .by_thread
            .iter()
            .flat_map(|shard| from_shard(&mut lock(shard)))
            .collect();
        // Stable: a thread's records, already in order, keep it even at equal instants.
        all.sort_by_key(|(at, _)| *at);
        all.into_iter().map(|(_, record)| record).collect()
    }
}

/// A panic while holding a shard's lock leaves a valid Vec: keep using it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink for MemorySink {
    fn record(&self, record: &Record<'_>) {
        let owned = OwnedRecord::from_record(record);
        let arrived = Instant::now();
        lock(self.inner.by_thread.get_or_default()).push((arrived, owned));
    }
}
