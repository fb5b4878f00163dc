//! What a sink receives: a borrowed view of one track call ([`Record`]); the values
//! of its tags are in [`value`].

mod stamp;
mod value;

use std::cell::OnceCell;
use std::fmt;
use std::panic::Location;
use std::time::SystemTime;

use tracing_core::Metadata;

use crate::fields::{Instrument, Kind};
use crate::track::MetricMeta;
pub(crate) use stamp::Stamp;
pub use value::{OwnedTagValue, Tag, TagValue};

/// One track call, as a [`Sink`](crate::Sink) sees it.
///
/// Everything is borrowed from the call: building a record allocates nothing. The
/// timestamp is read from the clock the first time a sink asks for it, so a sink that
/// never looks (such as [`NoopSink`](crate::NoopSink)) never pays for a clock read.
///
/// ```
/// use tracing_telemetry::{Kind, Record, Tag};
///
/// let tags = [Tag::new("queue", "emails")];
/// let record = Record::new(Kind::Metric, "queue.depth", &tags).with_value(42.0);
/// assert_eq!(record.value(), Some(42.0));
/// assert_eq!(record.tag("queue").and_then(|v| v.as_str()), Some("emails"));
/// ```
pub struct Record<'a> {
    kind: Kind,
    name: &'a str,
    value: Option<f64>,
    tags: TagSource<'a>,
    span_tags: TagSource<'a>,
    trace: Option<([u8; 16], [u8; 8])>,
    module_path: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    /// Where `module_path`, `file` and `line` came from, when that lives for the whole
    /// program: a sink that keeps the record can keep this instead of copying them.
    callsite: Option<Callsite>,
    /// What a metric's call site declares: instrument, unit, description.
    meta: MetricMeta,
    timestamp: OnceCell<Stamp>,
}

/// The call site a track call's source location comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Callsite {
    /// The macro form's event.
    Event(&'static Metadata<'static>),
    /// The function form's caller.
    Caller(&'static Location<'static>),
}

impl<'a> Record<'a> {
    /// A record of this kind and name with these tags, no value and no source location.
    ///
    /// Sinks receive records from [`TelemetryLayer`](crate::TelemetryLayer); this
    /// constructor is for testing a sink on its own.
    ///
    /// ```
    /// let record = tracing_telemetry::Record::new(tracing_telemetry::Kind::Event, "app.started", &[]);
    /// assert_eq!(record.name(), "app.started");
    /// ```
    pub fn new(kind: Kind, name: &'a str, tags: &'a [Tag<'a>]) -> Self {
        Self::with_tag_source(kind, name, TagSource::Tags(tags))
    }

    /// A record whose tags stay in the form they arrived in, so that building it copies
    /// nothing.
    pub(crate) fn with_tag_source(kind: Kind, name: &'a str, tags: TagSource<'a>) -> Self {
        Record {
            kind,
            name,
            value: None,
            tags,
            span_tags: TagSource::Tags(&[]),
            trace: None,
            module_path: None,
            file: None,
            line: None,
            callsite: None,
            meta: MetricMeta::NONE,
            timestamp: OnceCell::new(),
        }
    }

    /// Declares the metric's instrument, as [`Counter`](crate::Counter) and the other
    /// instruments do; meaningful for [`Kind::Metric`] records only.
    ///
    /// ```
    /// use tracing_telemetry::{Instrument, Kind, Record};
    ///
    /// let record = Record::new(Kind::Metric, "jobs.done", &[]).with_value(3.0).with_instrument(Instrument::Counter);
    /// assert_eq!(record.instrument(), Some(Instrument::Counter));
    /// ```
    #[must_use]
    pub fn with_instrument(mut self, instrument: Instrument) -> Self {
        self.meta.instrument = Some(instrument);
        self
    }

    /// Declares the metric's unit (OpenTelemetry spelling: `"By"`, `"s"`); meaningful
    /// for [`Kind::Metric`] records only (a timing's unit is always `"ms"`).
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    ///
    /// let record = Record::new(Kind::Metric, "net.received", &[]).with_unit("By");
    /// assert_eq!(record.unit(), Some("By"));
    /// ```
    #[must_use]
    pub fn with_unit(mut self, unit: &'static str) -> Self {
        self.meta.unit = Some(unit);
        self
    }

    /// Declares the metric's description.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    ///
    /// let record = Record::new(Kind::Metric, "net.received", &[]).with_description("bytes read");
    /// assert_eq!(record.description(), Some("bytes read"));
    /// ```
    #[must_use]
    pub fn with_description(mut self, description: &'static str) -> Self {
        self.meta.description = Some(description);
        self
    }

    /// The declaration a call site made, carried over to a copy of the record.
    #[must_use]
    pub(crate) fn with_meta(mut self, meta: MetricMeta) -> Self {
        self.meta = meta;
        self
    }

    pub(crate) fn meta(&self) -> MetricMeta {
        self.meta
    }

    /// Sets the metric value, or the timing's duration in milliseconds.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    ///
    /// let record = Record::new(Kind::Timing, "db.query", &[]).with_value(12.5);
    /// assert_eq!(record.duration_ms(), Some(12.5));
    /// ```
    #[must_use]
    pub fn with_value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets where the call came from.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    ///
    /// let record = Record::new(Kind::Event, "e", &[]).with_source(Some("app::jobs"), Some("src/jobs.rs"), Some(7));
    /// assert_eq!(record.module_path(), Some("app::jobs"));
    /// ```
    #[must_use]
    pub fn with_source(
        mut self,
        module_path: Option<&'a str>,
        file: Option<&'a str>,
        line: Option<u32>,
    ) -> Self {
        self.module_path = module_path;
        self.file = file;
        self.line = line;
        self.callsite = None;
        self
    }

    /// A track call's record, built in place: every part at once.
    pub(crate) fn from_call(
        kind: Kind,
        name: &'a str,
        value: Option<f64>,
        tags: TagSource<'a>,
        span_tags: TagSource<'a>,
        trace: Option<([u8; 16], [u8; 8])>,
        callsite: Callsite,
    ) -> Self {
        let (module_path, file, line) = match callsite {
            Callsite::Event(meta) => (meta.module_path(), meta.file(), meta.line()),
            Callsite::Caller(location) => (None, Some(location.file()), Some(location.line())),
        };
        Record {
            kind,
            name,
            value,
            tags,
            span_tags,
            trace,
            module_path,
            file,
            line,
            callsite: Some(callsite),
            meta: MetricMeta::NONE,
            timestamp: OnceCell::new(),
        }
    }

    /// The timestamp if some sink has read it already, without reading the clock.
    pub(crate) fn timestamp_if_read(&self) -> Option<Stamp> {
        self.timestamp.get().copied()
    }

    /// The timestamp, read with `now` if no sink has read it yet (a cheaper clock than
    /// [`SystemTime::now`] where one is kept).
    pub(crate) fn timestamp_or(&self, now: impl FnOnce() -> Stamp) -> Stamp {
        *self.timestamp.get_or_init(now)
    }

    /// The timestamp as encoders write it (see [`timestamp`](Self::timestamp)).
    #[inline]
    pub(crate) fn stamp(&self) -> Stamp {
        *self.timestamp.get_or_init(Stamp::now)
    }

    /// Fixes the timestamp at `nanos` nanoseconds after the Unix epoch, as a queued
    /// record holds it.
    #[must_use]
    pub(crate) fn with_unix_nanos(self, nanos: u64) -> Self {
        // A fresh record's cell is empty, so this cannot fail.
        let _ = self.timestamp.set(Stamp::from_unix_nanos(nanos));
        self
    }

    /// The call site the location came from, for a track call's record.
    pub(crate) fn callsite(&self) -> Option<Callsite> {
        self.callsite
    }

    /// Fixes the timestamp instead of reading the clock.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tracing_telemetry::{Kind, Record};
    ///
    /// let at = UNIX_EPOCH + Duration::from_secs(1);
    /// assert_eq!(Record::new(Kind::Event, "e", &[]).with_timestamp(at).timestamp(), at);
    /// ```
    #[must_use]
    pub fn with_timestamp(self, timestamp: SystemTime) -> Self {
        // A fresh record's cell is empty, so this cannot fail.
        let _ = self.timestamp.set(Stamp::from(timestamp));
        self
    }

    /// Event, metric or timing.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Metric, "m", &[]).kind(), Kind::Metric);
    /// ```
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The event, metric or operation name, as given.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Event, "user.signup", &[]).name(), "user.signup");
    /// ```
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The metric's value; `None` for events and timings.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Timing, "t", &[]).with_value(1.0).value(), None);
    /// ```
    pub fn value(&self) -> Option<f64> {
        match self.kind {
            Kind::Metric => self.value,
            _ => None,
        }
    }

    /// The timing's duration in milliseconds; `None` for events and metrics.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Metric, "m", &[]).with_value(1.0).duration_ms(), None);
    /// ```
    pub fn duration_ms(&self) -> Option<f64> {
        match self.kind {
            Kind::Timing => self.value,
            _ => None,
        }
    }

    /// The unit of the number this record carries: `"ms"` for timings, the unit its
    /// call site declared for a metric (see [`Counter::with_unit`](crate::Counter::with_unit)),
    /// `None` otherwise.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Timing, "t", &[]).unit(), Some("ms"));
    /// assert_eq!(Record::new(Kind::Metric, "m", &[]).unit(), None);
    /// ```
    pub fn unit(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Timing => Some("ms"),
            Kind::Metric => self.meta.unit,
            Kind::Event => None,
        }
    }

    /// The instrument a metric's call site declared: [`Instrument::Counter`] for
    /// [`track_counter`](crate::track_counter), and so on; `None` for `track_metric`
    /// (a gauge, as it always was), events and timings.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Metric, "m", &[]).instrument(), None);
    /// ```
    pub fn instrument(&self) -> Option<Instrument> {
        match self.kind {
            Kind::Metric => self.meta.instrument,
            _ => None,
        }
    }

    /// The description a metric's call site declared, if any.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Metric, "m", &[]).description(), None);
    /// ```
    pub fn description(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Metric => self.meta.description,
            _ => None,
        }
    }

    /// The tags (metrics, timings) or properties (events), in the order given.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record, Tag};
    /// let tags = [Tag::new("a", 1_i64), Tag::new("b", "x")];
    /// let keys: Vec<_> = Record::new(Kind::Event, "e", &tags).tags().map(|t| t.key()).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn tags(&self) -> Tags<'a> {
        Tags {
            source: self.tags,
            next: 0,
        }
    }

    /// The function form's pairs, when that is where the tags are: lets a sink on a
    /// hot path compare them without going through [`Tag`].
    #[inline]
    #[cfg_attr(not(feature = "aggregate"), allow(dead_code))]
    pub(crate) fn pairs(&self) -> Option<&'a [(&'a str, &'a str)]> {
        match self.tags {
            TagSource::Pairs(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// The value of the first tag with this key.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record, Tag};
    /// let tags = [Tag::new("plan", "pro")];
    /// assert_eq!(Record::new(Kind::Event, "e", &tags).tag("plan").and_then(|v| v.as_str()), Some("pro"));
    /// ```
    pub fn tag(&self, key: &str) -> Option<TagValue<'a>> {
        self.tags().find(|t| t.key == key).map(|t| t.value)
    }

    /// The tags copied from the spans around the call (`TELEMETRY_SPAN_FIELDS`), one
    /// per field name, each from the nearest span that has it, in the order the names
    /// were configured. Kept apart from [`tags`](Self::tags): a destination decides
    /// how to merge them (JSON lines write both in `tags`, the call's tag winning on
    /// a clash).
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record, Tag};
    /// let span_tags = [Tag::new("request_id", "r-42")];
    /// let record = Record::new(Kind::Event, "e", &[]).with_span_tags(&span_tags);
    /// assert_eq!(record.span_tags().next().map(|t| t.key()), Some("request_id"));
    /// assert!(record.tags().next().is_none());
    /// ```
    pub fn span_tags(&self) -> Tags<'a> {
        Tags {
            source: self.span_tags,
            next: 0,
        }
    }

    /// Sets the tags copied from the enclosing spans.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record, Tag};
    /// let span_tags = [Tag::new("tenant", "acme")];
    /// let record = Record::new(Kind::Event, "e", &[]).with_span_tags(&span_tags);
    /// assert_eq!(record.span_tags().len(), 1);
    /// ```
    #[must_use]
    pub fn with_span_tags(mut self, span_tags: &'a [Tag<'a>]) -> Self {
        self.span_tags = TagSource::Tags(span_tags);
        self
    }

    /// Sets the W3C trace context of the span the call was made in: a 16-byte trace id
    /// and an 8-byte span id.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// let record = Record::new(Kind::Event, "e", &[]).with_trace([1; 16], [2; 8]);
    /// assert_eq!(record.trace_id(), Some([1; 16]));
    /// assert_eq!(record.span_id(), Some([2; 8]));
    /// ```
    #[must_use]
    pub fn with_trace(mut self, trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        self.trace = Some((trace_id, span_id));
        self
    }

    /// The trace id of the OpenTelemetry span the call was made in (with the
    /// `tracing-opentelemetry` feature and its layer in the subscriber); `None`
    /// outside any such span. JSON lines write it as 32 lowercase hex digits.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Event, "e", &[]).trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        self.trace.map(|(trace_id, _)| trace_id)
    }

    /// The span id of the OpenTelemetry span the call was made in; `None` outside
    /// any such span. JSON lines write it as 16 lowercase hex digits.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Event, "e", &[]).span_id(), None);
    /// ```
    pub fn span_id(&self) -> Option<[u8; 8]> {
        self.trace.map(|(_, span_id)| span_id)
    }

    /// The module the call was written in, for the macro form.
    ///
    /// A function cannot learn its caller's module, so records from the function form
    /// carry only [`file`](Self::file) and [`line`](Self::line).
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// assert_eq!(Record::new(Kind::Event, "e", &[]).module_path(), None);
    /// ```
    pub fn module_path(&self) -> Option<&'a str> {
        self.module_path
    }

    /// The source file of the call.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// let r = Record::new(Kind::Event, "e", &[]).with_source(None, Some("src/main.rs"), Some(3));
    /// assert_eq!(r.file(), Some("src/main.rs"));
    /// ```
    pub fn file(&self) -> Option<&'a str> {
        self.file
    }

    /// The source line of the call.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// let r = Record::new(Kind::Event, "e", &[]).with_source(None, Some("src/main.rs"), Some(3));
    /// assert_eq!(r.line(), Some(3));
    /// ```
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// When the call happened: the clock is read on the first call and kept, so every
    /// sink that asks sees the same instant. (A sink may skip the clock when no other
    /// sink has read it, and time the record by a cheaper means of its own.)
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// let r = Record::new(Kind::Event, "e", &[]);
    /// assert_eq!(r.timestamp(), r.timestamp());
    /// ```
    pub fn timestamp(&self) -> SystemTime {
        self.stamp().system_time()
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("value", &self.value)
            .field("tags", &self.tags())
            .field("span_tags", &self.span_tags())
            .field("trace", &self.trace)
            .field("module_path", &self.module_path)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// A macro-form field's value as the layer's visitor holds it: strings from the macro
/// form live only as long as `tracing`'s `record_str` call, so their bytes are copied
/// into the visitor's text buffer and referred to by position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldValue {
    /// `start..end` in the visitor's text.
    Text(usize, usize),
    Value(TagValue<'static>),
}

impl FieldValue {
    pub(crate) fn resolve(self, text: &str) -> TagValue<'_> {
        match self {
            FieldValue::Text(start, end) => TagValue::Str(text.get(start..end).unwrap_or_default()),
            FieldValue::Value(value) => value,
        }
    }
}

/// Where a record's tags live. Keeping them in the form they arrived in saves copying
/// them into one shape for every event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TagSource<'a> {
    /// Built by hand with [`Record::new`].
    Tags(&'a [Tag<'a>]),
    /// The function form's pairs, borrowed from the call.
    Pairs(&'a [(&'a str, &'a str)]),
    /// Typed pairs, as a queued record reads back on its worker.
    Typed(&'a [(&'a str, TagValue<'a>)]),
    /// The macro form's typed fields (or the span fields found for a record), with the
    /// text their strings point into.
    Fields {
        fields: &'a [(&'a str, FieldValue)],
        text: &'a str,
    },
}

impl<'a> TagSource<'a> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            TagSource::Tags(tags) => tags.len(),
            TagSource::Pairs(pairs) => pairs.len(),
            TagSource::Typed(pairs) => pairs.len(),
            TagSource::Fields { fields, .. } => fields.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<Tag<'a>> {
        match *self {
            TagSource::Tags(tags) => tags.get(i).copied(),
            TagSource::Pairs(pairs) => pairs.get(i).map(|&(key, value)| Tag::new(key, value)),
            TagSource::Typed(pairs) => pairs.get(i).map(|&(key, value)| Tag { key, value }),
            TagSource::Fields { fields, text } => fields.get(i).map(|&(key, value)| Tag {
                key,
                value: value.resolve(text),
            }),
        }
    }
}

/// The tags of a [`Record`], in the order given; from [`Record::tags`].
///
/// ```
/// use tracing_telemetry::{Kind, Record, Tag};
///
/// let tags = [Tag::new("queue", "emails"), Tag::new("shard", 3_i64)];
/// let record = Record::new(Kind::Metric, "queue.depth", &tags);
/// assert_eq!(record.tags().len(), 2);
/// assert_eq!(record.tags().map(|t| t.to_string()).collect::<Vec<_>>(), ["queue=emails", "shard=3"]);
/// ```
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    source: TagSource<'a>,
    next: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    #[inline]
    fn next(&mut self) -> Option<Tag<'a>> {
        let tag = self.source.get(self.next)?;
        self.next += 1;
        Some(tag)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.source.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Tags<'_> {}
