//! What a sink receives: a borrowed view of one track call.

use std::cell::OnceCell;
use std::fmt;
use std::panic::Location;
use std::time::SystemTime;

use tracing_core::Metadata;

use crate::fields::{Instrument, Kind};
use crate::track::MetricMeta;

/// The value of a tag or property, typed as it was given.
///
/// The function form (`track_event(name, &[("plan", "pro")])`) gives strings; the macro
/// form keeps integers, floats and booleans as such (`seats = 3` is [`TagValue::I64`]).
///
/// ```
/// use tracing_telemetry::TagValue;
///
/// assert_eq!(TagValue::from(3_i64).as_i64(), Some(3));
/// assert_eq!(TagValue::from("pro").as_str(), Some("pro"));
/// assert_eq!(TagValue::from(true).to_string(), "true");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TagValue<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer too large for `i64`, or given as unsigned.
    U64(u64),
    /// A floating-point number (possibly NaN or infinite).
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl<'a> TagValue<'a> {
    /// The string, if this is a [`TagValue::Str`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::Str("emails").as_str(), Some("emails"));
    /// ```
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            TagValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits in an `i64`.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::U64(7).as_i64(), Some(7));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            TagValue::I64(v) => Some(v),
            TagValue::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative integer.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::I64(-1).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            TagValue::U64(v) => Some(v),
            TagValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The float, if this is a [`TagValue::F64`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::F64(0.5).as_f64(), Some(0.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            TagValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean, if this is a [`TagValue::Bool`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::Bool(false).as_bool(), Some(false));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            TagValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// An owned copy, for keeping past the sink call.
    ///
    /// ```
    /// use tracing_telemetry::{OwnedTagValue, TagValue};
    ///
    /// assert_eq!(TagValue::Str("a").into_owned(), OwnedTagValue::Str("a".to_owned()));
    /// ```
    pub fn into_owned(self) -> OwnedTagValue {
        match self {
            TagValue::Str(s) => OwnedTagValue::Str(s.to_owned()),
            TagValue::I64(v) => OwnedTagValue::I64(v),
            TagValue::U64(v) => OwnedTagValue::U64(v),
            TagValue::F64(v) => OwnedTagValue::F64(v),
            TagValue::Bool(v) => OwnedTagValue::Bool(v),
        }
    }
}

impl fmt::Display for TagValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Str(s) => f.write_str(s),
            TagValue::I64(v) => fmt::Display::fmt(v, f),
            TagValue::U64(v) => fmt::Display::fmt(v, f),
            TagValue::F64(v) => fmt::Display::fmt(v, f),
            TagValue::Bool(v) => fmt::Display::fmt(v, f),
        }
    }
}

impl<'a> From<&'a str> for TagValue<'a> {
    fn from(v: &'a str) -> Self {
        TagValue::Str(v)
    }
}

impl From<i64> for TagValue<'_> {
    fn from(v: i64) -> Self {
        TagValue::I64(v)
    }
}

impl From<u64> for TagValue<'_> {
    fn from(v: u64) -> Self {
        TagValue::U64(v)
    }
}

impl From<f64> for TagValue<'_> {
    fn from(v: f64) -> Self {
        TagValue::F64(v)
    }
}

impl From<bool> for TagValue<'_> {
    fn from(v: bool) -> Self {
        TagValue::Bool(v)
    }
}

/// An owned [`TagValue`], as kept by [`MemorySink`](crate::MemorySink).
///
/// Both compare with plain values, the tag on the left: integers of any type by value,
/// whether the tag holds the number as [`I64`](Self::I64) or [`U64`](Self::U64);
/// `f32` and `f64` with [`F64`](Self::F64) (an `f32` is widened exactly, so a tag
/// recorded as `0.1` is `0.1` but not `0.1_f32`; NaN equals nothing); `bool`; `&str`,
/// `str` and `String`. Nothing converts between kinds: `3` is not `3.0` nor `"3"`. An
/// integer beyond 64 bits travels as its decimal string, so compare it with that.
/// Two tag values compare by kind too: `I64(3)` is not `U64(3)`.
///
/// ```
/// use tracing_telemetry::OwnedTagValue;
///
/// let v = OwnedTagValue::from("emails");
/// assert_eq!(v.as_str(), Some("emails"));
/// assert_eq!(v, "emails");
/// assert_eq!(OwnedTagValue::from(3_i64), 3_i64);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedTagValue {
    /// A string.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A floating-point number.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl OwnedTagValue {
    /// Borrows this value as a [`TagValue`].
    ///
    /// ```
    /// use tracing_telemetry::{OwnedTagValue, TagValue};
    ///
    /// assert_eq!(OwnedTagValue::Bool(true).as_tag_value(), TagValue::Bool(true));
    /// ```
    pub fn as_tag_value(&self) -> TagValue<'_> {
        match self {
            OwnedTagValue::Str(s) => TagValue::Str(s),
            OwnedTagValue::I64(v) => TagValue::I64(*v),
            OwnedTagValue::U64(v) => TagValue::U64(*v),
            OwnedTagValue::F64(v) => TagValue::F64(*v),
            OwnedTagValue::Bool(v) => TagValue::Bool(*v),
        }
    }

    /// The string, if this is a string.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::I64(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        self.as_tag_value().as_str()
    }

    /// The integer, if this is an integer that fits in an `i64`.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::I64(3).as_i64(), Some(3));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        self.as_tag_value().as_i64()
    }

    /// The integer, if this is a non-negative integer.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::U64(3).as_u64(), Some(3));
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        self.as_tag_value().as_u64()
    }

    /// The float, if this is a float.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::F64(2.5).as_f64(), Some(2.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        self.as_tag_value().as_f64()
    }

    /// The boolean, if this is a boolean.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        self.as_tag_value().as_bool()
    }
}

impl fmt::Display for OwnedTagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_tag_value(), f)
    }
}

impl From<&str> for OwnedTagValue {
    fn from(v: &str) -> Self {
        OwnedTagValue::Str(v.to_owned())
    }
}

impl From<String> for OwnedTagValue {
    fn from(v: String) -> Self {
        OwnedTagValue::Str(v)
    }
}

impl From<i64> for OwnedTagValue {
    fn from(v: i64) -> Self {
        OwnedTagValue::I64(v)
    }
}

impl From<u64> for OwnedTagValue {
    fn from(v: u64) -> Self {
        OwnedTagValue::U64(v)
    }
}

impl From<f64> for OwnedTagValue {
    fn from(v: f64) -> Self {
        OwnedTagValue::F64(v)
    }
}

impl From<bool> for OwnedTagValue {
    fn from(v: bool) -> Self {
        OwnedTagValue::Bool(v)
    }
}

impl TagValue<'_> {
    /// Whether this is an integer (signed or unsigned, however it was recorded) equal
    /// to `other`; `None` is a number no tag can hold.
    fn eq_int(self, other: Option<i128>) -> bool {
        match (self, other) {
            (TagValue::I64(v), Some(other)) => i128::from(v) == other,
            (TagValue::U64(v), Some(other)) => i128::from(v) == other,
            _ => false,
        }
    }
}

/// Compares tag values with plain values, so that tests read
/// `assert_eq!(record.tag("seats").unwrap(), 3)` (the rules are on `OwnedTagValue`).
macro_rules! eq_plain {
    ($($target:ty),* $(,)?) => {$(
        eq_plain!(@each $target; i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize
            => |v, other| v.eq_int(i128::try_from(*other).ok()));
        eq_plain!(@each $target; f32 f64 => |v, other| v.as_f64() == Some(f64::from(*other)));
        eq_plain!(@each $target; bool => |v, other| v.as_bool() == Some(*other));
        eq_plain!(@each $target; str => |v, other| v.as_str() == Some(other));
        eq_plain!(@each $target; String => |v, other| v.as_str() == Some(other.as_str()));
    )*};
    (@each $target:ty; $($plain:ty)* => |$v:ident, $other:ident| $eq:expr) => {$(
        impl PartialEq<$plain> for $target {
            fn eq(&self, $other: &$plain) -> bool {
                let $v = self.as_tag_value();
                $eq
            }
        }
    )*};
}

eq_plain!(TagValue<'_>, OwnedTagValue, &OwnedTagValue);
// `&OwnedTagValue == &str` comes from the standard library's `&A == &B` and the `str`
// comparison above.
eq_plain!(@each TagValue<'_>; &str => |v, other| v.as_str() == Some(*other));
eq_plain!(@each OwnedTagValue; &str => |v, other| v.as_str() == Some(*other));

impl<'a> TagValue<'a> {
    /// Itself: what the plain comparisons call on every kind of tag value.
    fn as_tag_value(&self) -> TagValue<'a> {
        *self
    }
}

/// One tag or property: a key as given and its typed value.
///
/// ```
/// use tracing_telemetry::{Tag, TagValue};
///
/// let tag = Tag::new("queue", "emails");
/// assert_eq!(tag.key(), "queue");
/// assert_eq!(tag.value(), TagValue::Str("emails"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tag<'a> {
    key: &'a str,
    value: TagValue<'a>,
}

impl<'a> Tag<'a> {
    /// A tag with this key and value.
    ///
    /// ```
    /// let tag = tracing_telemetry::Tag::new("seats", 3_i64);
    /// assert_eq!(tag.value().as_i64(), Some(3));
    /// ```
    pub fn new(key: &'a str, value: impl Into<TagValue<'a>>) -> Self {
        Tag {
            key,
            value: value.into(),
        }
    }

    /// The key, exactly as given.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Tag::new("plan", "pro").key(), "plan");
    /// ```
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The typed value.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Tag::new("trial", false).value().as_bool(), Some(false));
    /// ```
    pub fn value(&self) -> TagValue<'a> {
        self.value
    }
}

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
    timestamp: OnceCell<SystemTime>,
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

    /// Sets where the call came from, from a call site that lives for the whole program.
    #[cfg(test)]
    pub(crate) fn with_callsite(mut self, callsite: Callsite) -> Self {
        (self.module_path, self.file, self.line) = match callsite {
            Callsite::Event(meta) => (meta.module_path(), meta.file(), meta.line()),
            Callsite::Caller(location) => (None, Some(location.file()), Some(location.line())),
        };
        self.callsite = Some(callsite);
        self
    }

    /// The timestamp if some sink has read it already, without reading the clock.
    pub(crate) fn timestamp_if_read(&self) -> Option<SystemTime> {
        self.timestamp.get().copied()
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
        let _ = self.timestamp.set(timestamp);
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
    /// sink that asks sees the same instant. (The OTLP exporter does not ask when no
    /// other sink has: it may time the record by the processor's counter instead,
    /// which is cheaper. `try_init`'s destinations read the clock once up front when
    /// more than one of them writes the time.)
    ///
    /// ```
    /// use tracing_telemetry::{Kind, Record};
    /// let r = Record::new(Kind::Event, "e", &[]);
    /// assert_eq!(r.timestamp(), r.timestamp());
    /// ```
    pub fn timestamp(&self) -> SystemTime {
        *self.timestamp.get_or_init(SystemTime::now)
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

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}
