//! What the emitting thread does for the OTLP exporter: copy the borrowed record into
//! a flat byte buffer that the thread owns (no allocation once the buffer has grown,
//! no per-tag strings), for the export thread to turn into OTLP types later.
//!
//! Layout, little-endian: kind `u8`, time `u64` (ns since the Unix epoch), line `u32`
//! (`u32::MAX` = none), a trace byte (1: the 16-byte trace id and 8-byte span id
//! follow; 0: none), then the strings name, module, file (each `u32` length, with
//! `u32::MAX` = none, then the bytes), the tag count `u32` and per tag: key (string),
//! a type byte and the value (string, or 8 bytes). The tags are the call's, then the
//! span fields whose key the call did not give. Only this module writes and reads it.

use std::time::UNIX_EPOCH;

use crate::fields::Kind;
use crate::record::{Record, Tag, TagValue};

const NONE: u32 = u32::MAX;
/// Longer strings are cut to this many bytes (a 4 GiB tag is not telemetry).
const MAX_STR: usize = NONE as usize - 1;

const STR: u8 = 0;
const I64: u8 = 1;
const U64: u8 = 2;
const F64: u8 = 3;
const BOOL: u8 = 4;

/// The bytes [`capture_into`] appends for `record`.
#[cfg(test)]
pub(crate) fn captured_len(record: &Record<'_>) -> usize {
    let str_len = |s: Option<&str>| 4 + s.map_or(0, |s| s.len().min(MAX_STR));
    let mut len = 1 + 8 + 4 + 1 + 4;
    if record.trace_id().is_some() {
        len += 16 + 8;
    }
    len += str_len(Some(record.name())) + str_len(record.module_path()) + str_len(record.file());
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
pub(crate) fn capture(record: &Record<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(captured_len(record));
    capture_into(&mut buf, record);
    buf
}

/// Appends `record` to `buf` ([`captured_len`] bytes).
pub(crate) fn capture_into(buf: &mut Vec<u8>, record: &Record<'_>) {
    let nanos = record
        .timestamp()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    buf.push(kind_byte(record.kind()));
    buf.extend_from_slice(&nanos.to_le_bytes());
    buf.extend_from_slice(&record.line().unwrap_or(NONE).to_le_bytes());
    match (record.trace_id(), record.span_id()) {
        (Some(trace_id), Some(span_id)) => {
            buf.push(1);
            buf.extend_from_slice(&trace_id);
            buf.extend_from_slice(&span_id);
        }
        _ => buf.push(0),
    }
    put_str(buf, Some(record.name()));
    put_str(buf, record.module_path());
    put_str(buf, record.file());
    let count = record.tags().len() + tags(record).skip(record.tags().len()).count();
    buf.extend_from_slice(&(count as u32).to_le_bytes());
    for tag in tags(record) {
        put_str(buf, Some(tag.key()));
        match tag.value() {
            TagValue::Str(s) => {
                buf.push(STR);
                put_str(buf, Some(s));
            }
            TagValue::I64(v) => {
                buf.push(I64);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            TagValue::U64(v) => {
                buf.push(U64);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            TagValue::F64(v) => {
                buf.push(F64);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            TagValue::Bool(v) => {
                buf.push(BOOL);
                buf.extend_from_slice(&u64::from(v).to_le_bytes());
            }
        }
    }
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

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Event => 0,
        Kind::Metric => 1,
        Kind::Timing => 2,
    }
}

fn put_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            let s = &s.as_bytes()[..s.len().min(MAX_STR)];
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s);
        }
        None => buf.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// A captured record, read back on the export thread.
#[derive(Debug)]
pub(crate) struct Captured<'a> {
    pub(crate) kind: Kind,
    pub(crate) time_unix_nano: u64,
    pub(crate) name: &'a str,
    pub(crate) module_path: Option<&'a str>,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// The trace id and span id of the span the call was made in.
    pub(crate) trace: Option<(&'a [u8], &'a [u8])>,
    pub(crate) tags: Vec<(&'a str, TagValue<'a>)>,
}

/// Reads a buffer written by [`capture`]; `None` if it is not one.
pub(crate) fn read(bytes: &[u8]) -> Option<Captured<'_>> {
    let mut r = Reader(bytes);
    let kind = match r.u8()? {
        0 => Kind::Event,
        1 => Kind::Metric,
        2 => Kind::Timing,
        _ => return None,
    };
    let time_unix_nano = r.u64()?;
    let line = Some(r.u32()?).filter(|&l| l != NONE);
    let trace = match r.u8()? {
        0 => None,
        1 => Some((r.take(16)?, r.take(8)?)),
        _ => return None,
    };
    let name = r.str()??;
    let module_path = r.str()?;
    let file = r.str()?;
    let count = r.u32()? as usize;
    let mut tags = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let key = r.str()??;
        let value = match r.u8()? {
            STR => TagValue::Str(r.str()??),
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
    fn str(&mut self) -> Option<Option<&'a str>> {
        let len = self.u32()?;
        if len == NONE {
            return Some(None);
        }
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes).ok().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Tag;
    use std::time::{Duration, UNIX_EPOCH};

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
        let c = read(&buf).unwrap();
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
        let c = read(&bare).unwrap();
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
            assert!(read(&buf[..end]).is_none(), "prefix of {end} bytes");
        }
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
        let back = read(&bytes).expect("reads back");
        assert_eq!(back.trace, Some((&[7_u8; 16][..], &[9_u8; 8][..])));
        assert_eq!(
            back.tags,
            [
                ("tenant", TagValue::Str("from-call")),
                ("request_id", TagValue::Str("r-42")),
            ]
        );
        let outside = Record::new(Kind::Event, "e", &[]);
        assert_eq!(read(&capture(&outside)).unwrap().trace, None);
    }
}
