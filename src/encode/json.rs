//! JSON lines: one record, one line, one object.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::record::{Record, Tag, TagValue};

/// The encoder of one JSON-lines destination: the service name is encoded once, when
/// the destination is built, and copied onto every line as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineEncoder {
    /// `,"service":"<name>"`, escaped.
    service: Box<[u8]>,
}

impl LineEncoder {
    pub(crate) fn new(service_name: &str) -> Self {
        let mut service = b",\"service\":".to_vec();
        json_str(&mut service, service_name);
        LineEncoder {
            service: service.into_boxed_slice(),
        }
    }

    /// Appends `record` to `buf` as one JSON line: see [`encode_line`].
    pub(crate) fn encode(&self, record: &Record<'_>, buf: &mut Vec<u8>) {
        encode_line(record, &self.service, buf);
    }

    /// Writes `record` as one JSON line at the start of `out`; returns its length,
    /// or `None` if it does not fit (what `out` then holds means nothing).
    pub(crate) fn encode_into(&self, record: &Record<'_>, out: &mut [u8]) -> Option<usize> {
        let mut room = Room {
            out,
            len: 0,
            overflowed: false,
        };
        encode_line(record, &self.service, &mut room);
        (!room.overflowed).then_some(room.len)
    }
}

/// Where a line is encoded: a growing buffer, or a fixed [`Room`].
trait LineBuf: Write {
    fn put(&mut self, bytes: &[u8]);
    fn put_byte(&mut self, byte: u8);
}

impl LineBuf for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// A fixed slice to encode into: what passes its end is dropped, and the slice is
/// then `overflowed`.
struct Room<'a> {
    out: &'a mut [u8],
    len: usize,
    overflowed: bool,
}

impl LineBuf for Room<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        match self.out.get_mut(self.len..self.len + bytes.len()) {
            Some(to) => {
                to.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflowed = true,
        }
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        match self.out.get_mut(self.len) {
            Some(to) => {
                *to = byte;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }
}

impl Write for Room<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.put(buf);
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.put(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `record` to `buf` as one JSON object and a newline; `service` is the
/// encoded `,"service":..` member.
///
/// Keys, in order: `timestamp` (RFC 3339, UTC, microseconds), `service`, `kind`, `name`, `value`
/// (metrics) or `duration_ms` (timings), `instrument` (metrics whose call site declares
/// one: `"counter"`, `"up_down_counter"`, `"gauge"`, `"histogram"`), `unit` (timings:
/// `"ms"`; metrics whose call site declares one), `tags` (the call's, then the span
/// fields it did not give itself), `trace_id` and `span_id` inside an OpenTelemetry
/// span, then `module`, `file` and `line` where known, and `nonfinite` when a number
/// was NaN or infinite.
/// `docs/FIELDS.md` is the reference.
///
/// Every string and number that comes from the caller is encoded by `serde_json`;
/// only the fixed ASCII keys and punctuation, and the timestamp (digits and `-:.TZ`),
/// are written directly. Letting serde_json serialize the whole object as a map
/// escapes every key and every piece of the timestamp separately, which measured at
/// 40% of the encoding's instructions.
fn encode_line(record: &Record<'_>, service: &[u8], buf: &mut impl LineBuf) {
    buf.put(b"{\"timestamp\":\"");
    write_timestamp(buf, record.timestamp());
    buf.put_byte(b'"');
    buf.put(service);
    buf.put(b",\"kind\":\"");
    buf.put(record.kind().as_str().as_bytes());
    buf.put(b"\",\"name\":");
    json_str(buf, record.name());
    // Non-finite numbers are written as null, and named with their spelling in
    // `nonfinite` at the end: every key keeps one JSON type, and nothing is lost.
    let mut nonfinite: Vec<(&'static str, Option<&str>, f64)> = Vec::new();
    if let Some(value) = record.value() {
        buf.put(b",\"value\":");
        if !json_f64(buf, value) {
            nonfinite.push(("value", None, value));
        }
    }
    if let Some(duration) = record.duration_ms() {
        buf.put(b",\"duration_ms\":");
        if !json_f64(buf, duration) {
            nonfinite.push(("duration_ms", None, duration));
        }
    }
    if let Some(instrument) = record.instrument() {
        buf.put(b",\"instrument\":\"");
        buf.put(instrument.as_str().as_bytes());
        buf.put_byte(b'"');
    }
    if let Some(unit) = record.unit() {
        buf.put(b",\"unit\":");
        json_str(buf, unit);
    }
    buf.put(b",\"tags\":{");
    let tags = record.tags();
    // A key given twice is written once, with the last value given (what most JSON
    // readers would keep anyway). Few tags: compare with the later ones; many: look up
    // each key's last position, so wide records stay linear.
    let last_positions: Option<HashMap<&str, usize>> = (tags.len() > WIDE_RECORD).then(|| {
        tags.clone()
            .enumerate()
            .map(|(i, t)| (t.key(), i))
            .collect()
    });
    let mut first = true;
    for (i, tag) in tags.clone().enumerate() {
        let repeated_later = match &last_positions {
            Some(last) => last.get(tag.key()) != Some(&i),
            None => tags
                .clone()
                .skip(i + 1)
                .any(|later| later.key() == tag.key()),
        };
        if !repeated_later {
            write_tag(buf, &mut first, tag, &mut nonfinite);
        }
    }
    // Span fields after the call's own tags; a key the call gave itself wins.
    for tag in record.span_tags() {
        if !tags.clone().any(|own| own.key() == tag.key()) {
            write_tag(buf, &mut first, tag, &mut nonfinite);
        }
    }
    buf.put_byte(b'}');
    if let (Some(trace_id), Some(span_id)) = (record.trace_id(), record.span_id()) {
        buf.put(b",\"trace_id\":\"");
        write_hex(buf, &trace_id);
        buf.put(b"\",\"span_id\":\"");
        write_hex(buf, &span_id);
        buf.put_byte(b'"');
    }
    if let Some(module) = record.module_path() {
        buf.put(b",\"module\":");
        json_str(buf, module);
    }
    if let Some(file) = record.file() {
        buf.put(b",\"file\":");
        json_str(buf, file);
    }
    if let Some(line) = record.line() {
        buf.put(b",\"line\":");
        json_int(buf, line);
    }
    if !nonfinite.is_empty() {
        write_nonfinite(buf, &nonfinite);
    }
    buf.put(b"}\n");
}

/// One `"key":value` member of `tags` (a comma before all but the first), the
/// value's JSON type kept; a non-finite float is `null` and noted.
fn write_tag<'a>(
    buf: &mut impl LineBuf,
    first: &mut bool,
    tag: Tag<'a>,
    nonfinite: &mut Vec<(&'static str, Option<&'a str>, f64)>,
) {
    if !std::mem::take(first) {
        buf.put_byte(b',');
    }
    let key = tag.key();
    json_str(buf, key);
    buf.put_byte(b':');
    match tag.value() {
        TagValue::Str(s) => json_str(buf, s),
        TagValue::I64(v) => json_int(buf, v),
        TagValue::U64(v) => json_int(buf, v),
        TagValue::F64(v) => {
            if !json_f64(buf, v) {
                nonfinite.push(("tags", Some(key), v));
            }
        }
        TagValue::Bool(v) => json_value(buf, &v),
    }
}

/// Lowercase hex, two digits a byte, as W3C Trace Context writes ids.
fn write_hex(buf: &mut impl LineBuf, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        buf.put_byte(DIGITS[usize::from(b >> 4)]);
        buf.put_byte(DIGITS[usize::from(b & 0xf)]);
    }
}

/// `,"nonfinite":{"/value":"NaN","/tags/ratio":"+Inf"}`: each non-finite number
/// written as null, by its JSON Pointer (RFC 6901), with the spelling Prometheus uses
/// (which `f64::from_str` parses back).
fn write_nonfinite(buf: &mut impl LineBuf, nonfinite: &[(&str, Option<&str>, f64)]) {
    buf.put(b",\"nonfinite\":{");
    let mut pointer = String::new();
    for (i, &(key, tag, v)) in nonfinite.iter().enumerate() {
        if i > 0 {
            buf.put_byte(b',');
        }
        pointer.clear();
        pointer.push('/');
        pointer.push_str(key);
        if let Some(tag) = tag {
            pointer.push('/');
            pointer.push_str(&tag.replace('~', "~0").replace('/', "~1"));
        }
        json_str(buf, &pointer);
        buf.put_byte(b':');
        let spelling = if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        json_str(buf, spelling);
    }
    buf.put_byte(b'}');
}

/// The latest instant RFC 3339 can write with a four-digit year.
const LATEST: Duration = Duration::new(253_402_300_799, 999_999_999);

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS` text:
    /// records come many to a second, so most only format their microseconds.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Writes `at` as RFC 3339 in UTC with microseconds (`2026-11-26T23:00:22.335106Z`).
///
/// A time before 1970 or after 9999 (a clock that is badly wrong, or one set by hand
/// in a test) is written as the nearest of those bounds: the line stays valid.
fn write_timestamp(buf: &mut impl LineBuf, at: SystemTime) {
    let since_epoch = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .min(LATEST);
    let secs = since_epoch.as_secs();
    let prefix = SECOND.with(|cache| {
        let (cached, prefix) = cache.get();
        if cached == secs {
            return prefix;
        }
        let mut text = [0; 20]; // `YYYY-MM-DDTHH:MM:SSZ`
        let second = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
        // In range, by the clamp above, so the 20 bytes are always written.
        let _ = write!(&mut text[..], "{second}");
        let mut prefix = [0; 19];
        prefix.copy_from_slice(&text[..19]);
        cache.set((secs, prefix));
        prefix
    });
    buf.put(&prefix);
    // Six zero-padded digits: the last six of the seven in `1_000_000 + micros`.
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(1_000_000 + since_epoch.subsec_micros());
    buf.put_byte(b'.');
    buf.put(&digits.as_bytes()[1..]);
    buf.put_byte(b'Z');
}

/// Past this many tags, repeated keys are found with a map instead of by comparison.
const WIDE_RECORD: usize = 16;

/// A JSON string, quoted and escaped by serde_json.
///
/// A string with nothing to escape (no `"`, `\\` or control character: what names,
/// keys and most values are) is copied between quotes as it is, which is what
/// serde_json writes for it; a tenth of the encoding went to serde_json's escaping
/// machinery for such strings.
fn json_str(buf: &mut impl LineBuf, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.put_byte(b'"');
        buf.put(s.as_bytes());
        buf.put_byte(b'"');
    } else {
        json_value(buf, s);
    }
}

/// An integer, as serde_json writes it.
fn json_int(buf: &mut impl LineBuf, v: impl itoa::Integer) {
    buf.put(itoa::Buffer::new().format(v).as_bytes());
}

/// Serializing a string, integer or bool into a Vec cannot fail.
fn json_value<T: serde::Serialize + ?Sized>(buf: &mut impl LineBuf, value: &T) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// A float as a JSON number; NaN and the infinities, which JSON numbers cannot hold,
/// as `null` (a number key stays a number, or absent, for typed stores). Returns
/// whether it was finite.
fn json_f64(buf: &mut impl LineBuf, v: f64) -> bool {
    if v.is_finite() {
        json_value(buf, &v);
        true
    } else {
        buf.put(b"null");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_are_written_as_serde_json_writes_them() {
        let strings = [
            "",
            "plain",
            " ",
            "\u{1f}",
            "a\"b",
            "a\\b",
            "tab\there",
            "\u{7f}",
            "é",
            "\u{2028}",
            "\u{1F600}",
            "\u{feff}",
            "line\nbreak",
            "/",
        ];
        for s in strings {
            let mut buf = Vec::new();
            json_str(&mut buf, s);
            assert_eq!(buf, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for v in [i64::MIN, -1, 0, 7, i64::MAX] {
            let mut buf = Vec::new();
            json_int(&mut buf, v);
            assert_eq!(buf, serde_json::to_vec(&v).unwrap());
        }
        for v in [0, 1, u64::MAX] {
            let mut buf = Vec::new();
            json_int(&mut buf, v);
            assert_eq!(buf, serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn a_line_encoded_in_place_is_the_line_encoded_into_a_buffer() {
        let tags = [
            crate::record::Tag::new("queue", "emails"),
            crate::record::Tag::new("n", 3_i64),
        ];
        let record = Record::new(crate::Kind::Metric, "queue.depth", &tags)
            .with_value(12.5)
            .with_timestamp(UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456));
        let encoder = LineEncoder::new("svc");
        let mut line = Vec::new();
        encoder.encode(&record, &mut line);
        let mut room = vec![0; 512];
        let len = encoder.encode_into(&record, &mut room).unwrap();
        assert_eq!(&room[..len], line.as_slice());
        // One byte short: it does not fit, and says so.
        assert_eq!(
            encoder.encode_into(&record, &mut room[..line.len() - 1]),
            None
        );
        assert_eq!(
            encoder.encode_into(&record, &mut room[..line.len()]),
            Some(line.len())
        );
    }
}
