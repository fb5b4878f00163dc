use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::record::{Record, TagValue, Tags};
use crate::sink::Sink;

/// Appends `record` to `buf` as one JSON object and a newline.
///
/// Keys, in order: `timestamp` (RFC 3339, UTC, microseconds), `kind`, `name`, `value`
/// (metrics) or `duration_ms` and `unit` (timings), `tags`, then `module`, `file` and
/// `line` where known. `docs/FIELDS.md` is the reference.
pub(crate) fn encode_line(record: &Record<'_>, buf: &mut Vec<u8>) {
    let start = buf.len();
    if serde_json::to_writer(&mut *buf, &JsonRecord(record)).is_err() {
        // Serializing into a Vec only fails if a Serialize impl fails, and ours do
        // not; never leave half a line behind.
        buf.truncate(start);
        return;
    }
    buf.push(b'\n');
}

struct JsonRecord<'r, 'a>(&'r Record<'a>);

impl Serialize for JsonRecord<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(
            "timestamp",
            &Rfc3339(humantime::format_rfc3339_micros(r.timestamp())),
        )?;
        map.serialize_entry("kind", r.kind().as_str())?;
        map.serialize_entry("name", r.name())?;
        if let Some(value) = r.value() {
            map.serialize_entry("value", &JsonNumber(value))?;
        }
        if let Some(duration) = r.duration_ms() {
            map.serialize_entry("duration_ms", &JsonNumber(duration))?;
        }
        if let Some(unit) = r.unit() {
            map.serialize_entry("unit", unit)?;
        }
        map.serialize_entry("tags", &JsonTags(r.tags()))?;
        if let Some(module) = r.module_path() {
            map.serialize_entry("module", module)?;
        }
        if let Some(file) = r.file() {
            map.serialize_entry("file", file)?;
        }
        if let Some(line) = r.line() {
            map.serialize_entry("line", &line)?;
        }
        map.end()
    }
}

struct Rfc3339(humantime::Rfc3339Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A float that stays valid JSON: NaN and the infinities, which JSON numbers cannot
/// hold, are written as the strings `"NaN"`, `"+Inf"` and `"-Inf"` (the spellings
/// Prometheus uses, and that `f64::from_str` parses back).
struct JsonNumber(f64);

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            serializer.serialize_f64(v)
        } else if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v > 0.0 {
            serializer.serialize_str("+Inf")
        } else {
            serializer.serialize_str("-Inf")
        }
    }
}

/// Tags as one JSON object, types kept. A key given twice is written once, with the
/// last value given (what most JSON readers would keep anyway).
struct JsonTags<'a>(Tags<'a>);

impl Serialize for JsonTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (i, tag) in self.0.clone().enumerate() {
            if self
                .0
                .clone()
                .skip(i + 1)
                .any(|later| later.key() == tag.key())
            {
                continue;
            }
            map.serialize_key(tag.key())?;
            match tag.value() {
                TagValue::Str(s) => map.serialize_value(s)?,
                TagValue::I64(v) => map.serialize_value(&v)?,
                TagValue::U64(v) => map.serialize_value(&v)?,
                TagValue::F64(v) => map.serialize_value(&JsonNumber(v))?,
                TagValue::Bool(v) => map.serialize_value(&v)?,
            }
        }
        map.end()
    }
}

/// Writes each record as one JSON line to a [`Write`], in the calling thread.
///
/// Each line is encoded first and written with a single `write_all` under a lock, so
/// lines from different threads never interleave. A write error is reported once on
/// standard error, never panics, and the records it loses are counted
/// ([`JsonLinesSink::lost`]).
///
/// This sink writes synchronously: give it a fast writer (memory, a `BufWriter`). The
/// exporters that `try_init` builds for stdout, stderr and files hand lines to a
/// background thread instead, so the app never waits on I/O.
///
/// ```
/// use telemetry::{JsonLinesSink, Kind, Record, Sink, Tag};
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
    lost: AtomicU64,
    reported: AtomicBool,
}

impl<W: Write> JsonLinesSink<W> {
    /// A sink writing to `writer`.
    ///
    /// ```
    /// let sink = telemetry::JsonLinesSink::new(std::io::sink());
    /// # let _ = sink;
    /// ```
    pub fn new(writer: W) -> Self {
        JsonLinesSink {
            writer: Mutex::new(writer),
            lost: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }
    }

    /// How many records were lost to write errors.
    ///
    /// ```
    /// assert_eq!(telemetry::JsonLinesSink::new(std::io::sink()).lost(), 0);
    /// ```
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The writer back.
    ///
    /// ```
    /// let sink = telemetry::JsonLinesSink::new(Vec::<u8>::new());
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

/// Says once, on standard error, that telemetry lines are being lost. Never panics:
/// standard error itself may be the broken destination.
pub(crate) fn report_write_error(err: &io::Error) {
    let _ = writeln!(
        io::stderr(),
        "telemetry: cannot write records: {err} (records are being dropped; further errors are counted, not printed)"
    );
}

impl<W: Write + Send + 'static> Sink for JsonLinesSink<W> {
    fn record(&self, record: &Record<'_>) {
        let mut line = Vec::with_capacity(256);
        encode_line(record, &mut line);
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = writer.write_all(&line) {
            drop(writer);
            self.failed(&err, 1);
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
