//! What the emitting thread does for every queued destination: copy the borrowed
//! record into a flat run of bytes in the thread's lane (no allocation, no per-tag
//! strings), for the destination's worker to encode later (a JSON line, an OTLP log
//! record).
//!
//! Layout, little-endian: kind `u8`, source `u8`, flags `u8` (1: a trace follows; 2:
//! the time is a counter value, see [`clock`](crate::pipeline::clock); 4: a value
//! follows; 8: a metric's declaration follows), time `u64` (ns since the Unix epoch,
//! or the counter); the value `f64` with flag 4; with flag 8 the instrument `u8` (0:
//! none) and the unit and the description, each a `'static` string kept as its
//! address `u64` and length `u64` (`u64::MAX` = none); then the source: for a call site that lives for the
//! whole program (source 1: the macro form's `&'static Metadata`; 2: the function
//! form's `&'static Location`) its address as a `u64`, else (source 0) the line `u32`
//! (`u32::MAX` = none) and the strings module and file; with a trace the 16-byte trace
//! id and 8-byte span id; the name; the tag count `u32` and per tag: key (string), a
//! type byte and the value (string, or 8 bytes). A string is a `u32` length
//! (`u32::MAX` = none) and the bytes. The tags are the call's, then the span fields
//! whose key the call did not give. Only this module writes and reads it, and only
//! within one process: the addresses mean nothing anywhere else.

use std::panic::Location;

use tracing_core::Metadata;

use crate::fields::{Instrument, Kind};
use crate::pipeline::clock::{self, Clock};
use crate::record::{Callsite, Record, Tag, TagValue};
use crate::track::MetricMeta;

const NONE: u32 = u32::MAX;
/// Longer strings are cut to this many bytes (a 4 GiB tag is not telemetry).
const MAX_STR: usize = NONE as usize - 1;

const STR: u8 = 0;
const I64: u8 = 1;
const U64: u8 = 2;
const F64: u8 = 3;
const BOOL: u8 = 4;

const SOURCE_STRINGS: u8 = 0;
const SOURCE_EVENT: u8 = 1;
const SOURCE_CALLER: u8 = 2;

const FLAG_TRACE: u8 = 1;
const FLAG_TICKS: u8 = 2;
const FLAG_VALUE: u8 = 4;
const FLAG_META: u8 = 8;

/// The bytes [`capture_into`] writes for `record`.
pub(super) fn captured_len(record: &Record<'_>) -> usize {
    let str_len = |s: Option<&str>| 4 + s.map_or(0, |s| cut(s).len());
    let mut len = 3 + 8;
    if number(record).is_some() {
        len += 8;
    }
    if has_meta(record.meta()) {
        len += 1 + 2 * (8 + 8);
    }
    len += match record.callsite() {
        Some(_) => 8,
        None => 4 + str_len(record.module_path()) + str_len(record.file()),
    };
    if record.trace_id().is_some() && record.span_id().is_some() {
        len += 16 + 8;
    }
    len += str_len(Some(record.name())) + 4;
    for tag in tags(record) {
        len += str_len(Some(tag.key())) + 1;
        len += match tag.value() {
            TagValue::Str(s) => str_len(Some(s)),
            _ => 8,
        };
    }
    len
}

/// Copies `record` into one buffer of exactly the size it needs.
#[cfg(test)]
pub(super) fn capture(record: &Record<'_>) -> Vec<u8> {
    let mut buf = vec![0; captured_len(record)];
    capture_into(&mut buf, record, Clock::System);
    buf
}

/// Writes `record` into `out`, which is exactly [`captured_len`] bytes long. With
/// [`Clock::Counter`], a record whose timestamp no sink has read yet is timed by the
/// counter.
pub(super) fn capture_into(out: &mut [u8], record: &Record<'_>, clock: Clock) {
    let (time, ticks) = match (record.timestamp_if_read(), clock) {
        (None, Clock::Counter) => (clock::ticks(), true),
        // The time a sink read, or the wall clock's now.
        _ => (record.stamp().unix_nanos(), false),
    };
    let mut w = Out { out, at: 0 };
    let trace = record.trace_id().zip(record.span_id());
    let source = match record.callsite() {
        Some(Callsite::Event(_)) => SOURCE_EVENT,
        Some(Callsite::Caller(_)) => SOURCE_CALLER,
        None => SOURCE_STRINGS,
    };
    let value = number(record);
    let meta = record.meta();
    let flags = if trace.is_some() { FLAG_TRACE } else { 0 }
        | if ticks { FLAG_TICKS } else { 0 }
        | if value.is_some() { FLAG_VALUE } else { 0 }
        | if has_meta(meta) { FLAG_META } else { 0 };
    w.put(&[kind_byte(record.kind()), source, flags]);
    w.put(&time.to_le_bytes());
    if let Some(value) = value {
        w.put(&value.to_le_bytes());
    }
    if has_meta(meta) {
        w.put(&[meta.instrument.map_or(0, instrument_byte)]);
        w.static_str(meta.unit);
        w.static_str(meta.description);
    }
    match record.callsite() {
        Some(Callsite::Event(meta)) => {
            w.put(&(meta as *const Metadata<'static> as usize as u64).to_le_bytes())
        }
        Some(Callsite::Caller(location)) => {
            w.put(&(location as *const Location<'static> as usize as u64).to_le_bytes())
        }
        None => {
            w.put(&record.line().unwrap_or(NONE).to_le_bytes());
            w.str(record.module_path());
            w.str(record.file());
        }
    }
    if let Some((trace_id, span_id)) = trace {
        w.put(&trace_id);
        w.put(&span_id);
    }
    w.str(Some(record.name()));
    let count = record.tags().len() + tags(record).skip(record.tags().len()).count();
    w.put(&(count as u32).to_le_bytes());
    for tag in tags(record) {
        w.str(Some(tag.key()));
        match tag.value() {
            TagValue::Str(s) => {
                w.put(&[STR]);
                w.str(Some(s));
            }
            TagValue::I64(v) => {
                w.put(&[I64]);
                w.put(&v.to_le_bytes());
            }
            TagValue::U64(v) => {
                w.put(&[U64]);
                w.put(&v.to_le_bytes());
            }
            TagValue::F64(v) => {
                w.put(&[F64]);
                w.put(&v.to_le_bytes());
            }
            TagValue::Bool(v) => {
                w.put(&[BOOL]);
                w.put(&u64::from(v).to_le_bytes());
            }
        }
    }
    debug_assert_eq!(w.at, w.out.len(), "captured_len and capture_into disagree");
}

/// A cursor over the bytes a record is written into.
struct Out<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Out<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        self.out[self.at..end].copy_from_slice(bytes);
        self.at = end;
    }

    /// A `'static` string as its address and length: it outlives any record.
    #[inline(always)]
    fn static_str(&mut self, s: Option<&'static str>) {
        match s {
            // The whole length: the string is not copied, and cutting it could cut
            // a character in two.
            Some(s) => {
                self.put(&(s.as_ptr() as usize as u64).to_le_bytes());
                self.put(&(s.len() as u64).to_le_bytes());
            }
            None => {
                self.put(&0_u64.to_le_bytes());
                self.put(&u64::MAX.to_le_bytes());
            }
        }
    }

    #[inline(always)]
    fn str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                let s = cut(s).as_bytes();
                self.put(&(s.len() as u32).to_le_bytes());
                self.put(s);
            }
            None => self.put(&NONE.to_le_bytes()),
        }
    }
}

/// `s`, or as much of it as fits in [`MAX_STR`] bytes, whole characters only: read
/// back, the bytes are always a whole string.
#[inline(always)]
fn cut(s: &str) -> &str {
    cut_at(s, MAX_STR)
}

#[inline(always)]
fn cut_at(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The call's tags, then the span fields whose key the call did not give (the call's
/// tag wins, as in JSON lines).
fn tags<'r>(record: &'r Record<'_>) -> impl Iterator<Item = Tag<'r>> + 'r {
    record.tags().chain(
        record
            .span_tags()
            .filter(move |span| record.tag(span.key()).is_none()),
    )
}

fn has_meta(meta: MetricMeta) -> bool {
    meta.instrument.is_some() || meta.unit.is_some() || meta.description.is_some()
}

fn instrument_byte(instrument: Instrument) -> u8 {
    match instrument {
        Instrument::Counter => 1,
        Instrument::UpDownCounter => 2,
        Instrument::Gauge => 3,
        Instrument::Histogram => 4,
    }
}

/// The number a record carries: a metric's value or a timing's duration.
fn number(record: &Record<'_>) -> Option<f64> {
    record.value().or(record.duration_ms())
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Event => 0,
        Kind::Metric => 1,
        Kind::Timing => 2,
    }
}

/// A captured record, read back on the export thread.
#[derive(Debug)]
pub(crate) struct Captured<'a> {
    pub(crate) kind: Kind,
    /// Unix nanoseconds, or with `time_in_ticks` a counter value to convert.
    pub(crate) time_unix_nano: u64,
    pub(crate) time_in_ticks: bool,
    /// A metric's value or a timing's duration in milliseconds.
    pub(crate) value: Option<f64>,
    /// What a metric's call site declared.
    pub(crate) meta: MetricMeta,
    pub(crate) name: &'a str,
    pub(crate) module_path: Option<&'a str>,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// The trace id and span id of the span the call was made in.
    pub(crate) trace: Option<(&'a [u8], &'a [u8])>,
    pub(crate) tags: Vec<(&'a str, TagValue<'a>)>,
}

/// Reads bytes written by [`capture_into`]; `None` if they are cut short.
///
/// # Safety
///
/// `bytes` must be (a prefix of) what [`capture_into`] wrote in this process: a
/// record's source may be the address of a call site, which is read back as one.
/// Outside this module, only [`Entry::read`](super::Entry::read) calls it, for bytes
/// that only the hand-off's lanes can hold.
pub(super) unsafe fn read(bytes: &[u8]) -> Option<Captured<'_>> {
    let mut r = Reader(bytes);
    let kind = match r.u8()? {
        0 => Kind::Event,
        1 => Kind::Metric,
        2 => Kind::Timing,
        _ => return None,
    };
    let source = r.u8()?;
    let flags = r.u8()?;
    if flags & !(FLAG_TRACE | FLAG_TICKS | FLAG_VALUE | FLAG_META) != 0 {
        return None;
    }
    let has_trace = flags & FLAG_TRACE != 0;
    let time_unix_nano = r.u64()?;
    let value = if flags & FLAG_VALUE != 0 {
        Some(f64::from_bits(r.u64()?))
    } else {
        None
    };
    let meta = if flags & FLAG_META != 0 {
        let instrument = match r.u8()? {
            0 => None,
            1 => Some(Instrument::Counter),
            2 => Some(Instrument::UpDownCounter),
            3 => Some(Instrument::Gauge),
            4 => Some(Instrument::Histogram),
            _ => return None,
        };
        // SAFETY: the caller promises that these bytes came from `capture_into` in
        // this process, which wrote the address and length of `'static` strings here.
        let (unit, description) = unsafe { (r.static_str()?, r.static_str()?) };
        MetricMeta {
            instrument,
            unit,
            description,
        }
    } else {
        MetricMeta::NONE
    };
    let (module_path, file, line) = match source {
        SOURCE_EVENT => {
            let address = r.u64()? as usize;
            // SAFETY: the caller promises that these bytes came from `capture_into` in
            // this process, which wrote the address of a `&'static Metadata` here.
            let meta = unsafe { &*(address as *const Metadata<'static>) };
            (meta.module_path(), meta.file(), meta.line())
        }
        SOURCE_CALLER => {
            let address = r.u64()? as usize;
            // SAFETY: as above, the address of a `&'static Location`.
            let location = unsafe { &*(address as *const Location<'static>) };
            (None, Some(location.file()), Some(location.line()))
        }
        SOURCE_STRINGS => {
            let line = Some(r.u32()?).filter(|&l| l != NONE);
            // SAFETY: the caller promises that these bytes came from `capture_into`
            // in this process, which wrote strings here with `Out::str`; so below.
            unsafe { (r.str()?, r.str()?, line) }
        }
        _ => return None,
    };
    let trace = if has_trace {
        Some((r.take(16)?, r.take(8)?))
    } else {
        None
    };
    // SAFETY: as above.
    let name = unsafe { r.str()?? };
    let count = r.u32()? as usize;
    let mut tags = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        // SAFETY: as above.
        let key = unsafe { r.str()?? };
        let value = match r.u8()? {
            // SAFETY: as above.
            STR => TagValue::Str(unsafe { r.str()?? }),
            I64 => TagValue::I64(r.u64()? as i64),
            U64 => TagValue::U64(r.u64()?),
            F64 => TagValue::F64(f64::from_bits(r.u64()?)),
            BOOL => TagValue::Bool(r.u64()? != 0),
            _ => return None,
        };
        tags.push((key, value));
    }
    Some(Captured {
        kind,
        time_unix_nano,
        time_in_ticks: flags & FLAG_TICKS != 0,
        value,
        meta,
        name,
        module_path,
        file,
        line,
        trace,
        tags,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    /// `Some(None)` for an absent string, `None` for a malformed buffer.
    /// A `'static` string written by [`Out::static_str`].
    ///
    /// # Safety
    ///
    /// The bytes must be what `Out::static_str` wrote, in this process.
    unsafe fn static_str(&mut self) -> Option<Option<&'static str>> {
        let address = self.u64()? as usize;
        let len = self.u64()?;
        if len == u64::MAX {
            return Some(None);
        }
        // SAFETY: the address and length of a `&'static str`, as the caller promises.
        let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, len as usize) };
        Some(Some(unsafe { std::str::from_utf8_unchecked(bytes) }))
    }

    /// A string written by [`Out::str`].
    ///
    /// # Safety
    ///
    /// The bytes must be what `Out::str` wrote, in this process: a whole string.
    unsafe fn str(&mut self) -> Option<Option<&'a str>> {
        let len = self.u32()?;
        if len == NONE {
            return Some(None);
        }
        let bytes = self.take(len as usize)?;
        // SAFETY: the bytes of a `&str` cut at a character boundary (`cut`), as the
        // caller promises; validating them again was a tenth of the worker's time.
        Some(Some(unsafe { std::str::from_utf8_unchecked(bytes) }))
    }
}

/// Reads back what [`capture`] wrote.
#[cfg(test)]
fn read_back(bytes: &[u8]) -> Option<Captured<'_>> {
    // SAFETY: every caller passes bytes from `capture` (or a prefix of them).
    unsafe { read(bytes) }
}

/// A track call's record from `callsite`, as the layer builds it, for the tests.
#[cfg(test)]
pub(super) fn call<'a>(
    kind: Kind,
    name: &'a str,
    tags: &'a [Tag<'a>],
    callsite: Callsite,
) -> Record<'a> {
    use crate::record::TagSource;
    let (tags, span_tags) = (TagSource::Tags(tags), TagSource::Tags(&[]));
    Record::from_call(kind, name, None, tags, span_tags, None, callsite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Tag;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_call_site_travels_as_its_address_and_reads_back_whole() {
        let caller = Location::caller();
        let record = call(Kind::Event, "e", &[], Callsite::Caller(caller));
        let bytes = capture(&record);
        assert_eq!(bytes.len(), captured_len(&record));
        let c = read_back(&bytes).unwrap();
        assert_eq!(
            (c.module_path, c.file, c.line),
            (None, Some(file!()), Some(caller.line()))
        );

        let callsite = tracing::callsite! {
            name: "track",
            kind: tracing::metadata::Kind::EVENT,
            fields: telemetry.name
        };
        let meta = tracing_core::Callsite::metadata(callsite);
        let tags = [Tag::new("plan", "pro")];
        let record = call(Kind::Event, "e", &tags, Callsite::Event(meta));
        let bytes = capture(&record);
        // The address instead of the module path and file name.
        let strings = Record::new(Kind::Event, "e", &tags).with_source(
            meta.module_path(),
            meta.file(),
            meta.line(),
        );
        assert!(bytes.len() < captured_len(&strings));
        let c = read_back(&bytes).unwrap();
        assert_eq!(
            (c.module_path, c.file, c.line, c.tags),
            (
                Some(module_path!()),
                Some(file!()),
                meta.line(),
                vec![("plan", TagValue::Str("pro"))]
            )
        );
    }

    #[cfg_attr(
        windows,
        ignore = "Windows keeps SystemTime in 100 ns steps: the test's nanoseconds cannot be held"
    )]
    #[test]
    fn round_trips_every_field_and_type() {
        let tags = [
            Tag::new("plan", "pro"),
            Tag::new("seats", -3_i64),
            Tag::new("big", u64::MAX),
            Tag::new("ratio", 0.25),
            Tag::new("trial", true),
            Tag::new("", ""),
        ];
        let record = Record::new(Kind::Event, "user.signup", &tags)
            .with_source(Some("app::jobs"), Some("src/jobs.rs"), Some(42))
            .with_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789));
        let buf = capture(&record);
        let c = read_back(&buf).unwrap();
        assert_eq!(c.kind, Kind::Event);
        assert_eq!(c.time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(
            (c.name, c.module_path, c.file, c.line),
            (
                "user.signup",
                Some("app::jobs"),
                Some("src/jobs.rs"),
                Some(42)
            )
        );
        assert_eq!(
            c.tags,
            [
                ("plan", TagValue::Str("pro")),
                ("seats", TagValue::I64(-3)),
                ("big", TagValue::U64(u64::MAX)),
                ("ratio", TagValue::F64(0.25)),
                ("trial", TagValue::Bool(true)),
                ("", TagValue::Str("")),
            ]
        );
        let bare = capture(&Record::new(Kind::Timing, "t", &[]));
        let c = read_back(&bare).unwrap();
        assert_eq!(
            (c.kind, c.module_path, c.file, c.line),
            (Kind::Timing, None, None, None)
        );
    }

    #[test]
    fn a_truncated_buffer_reads_as_none_never_panics() {
        let tags = [Tag::new("plan", "pro"), Tag::new("n", 1_i64)];
        let buf =
            capture(&Record::new(Kind::Event, "e", &tags).with_source(None, Some("f"), Some(1)));
        for end in 0..buf.len() {
            assert!(read_back(&buf[..end]).is_none(), "prefix of {end} bytes");
        }
    }

    #[test]
    fn a_string_too_long_is_cut_between_characters() {
        // "é" is two bytes: a cut after one would not be a string.
        assert_eq!(cut_at("héllo", 2), "h");
        assert_eq!(cut_at("héllo", 3), "hé");
        assert_eq!(cut_at("héllo", 64), "héllo");
    }
}

#[cfg(test)]
mod context_tests {
    use super::*;
    use crate::record::Tag;

    #[test]
    fn trace_ids_and_span_fields_travel_and_the_call_s_tag_wins() {
        let tags = [Tag::new("tenant", "from-call")];
        let span_tags = [
            Tag::new("tenant", "from-span"),
            Tag::new("request_id", "r-42"),
        ];
        let record = Record::new(Kind::Event, "user.signup", &tags)
            .with_span_tags(&span_tags)
            .with_trace([7; 16], [9; 8]);
        let bytes = capture(&record);
        assert_eq!(bytes.len(), captured_len(&record));
        let back = read_back(&bytes).expect("reads back");
        assert_eq!(back.trace, Some((&[7_u8; 16][..], &[9_u8; 8][..])));
        assert_eq!(
            back.tags,
            [
                ("tenant", TagValue::Str("from-call")),
                ("request_id", TagValue::Str("r-42")),
            ]
        );
        let outside = Record::new(Kind::Event, "e", &[]);
        assert_eq!(read_back(&capture(&outside)).unwrap().trace, None);
    }
}
