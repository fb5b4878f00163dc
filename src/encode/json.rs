//! JSON lines: one record, one line, one object.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

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
/// Every string and number that comes from the caller is written byte for byte as
/// `serde_json` writes it (tested against it): serde_json itself escapes strings that
/// need escaping and writes floats other than whole numbers below 10^15; the rest
/// (plain strings, integers, whole floats) take shorter paths. The fixed ASCII keys
/// and punctuation, and the timestamp (digits and `-:.TZ`), are written directly.
/// Letting serde_json serialize the whole object as a map escapes every key and every
/// piece of the timestamp separately, which measured at 40% of the encoding's
/// instructions.
fn encode_line(record: &Record<'_>, service: &[u8], buf: &mut impl LineBuf) {
    buf.put(b"{\"timestamp\":\"");
    write_timestamp(buf, record.stamp().since_epoch());
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
///
/// Inlined: a tag passed by reference went through the stack as pieces of
/// different sizes, and reading it back stalled on store forwarding.
#[inline(always)]
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
    /// The second last written on this thread, and its text (`YYYY-MM-`, `DDTHH:MM`
    /// and `:SS` as little-endian words): records come many to a second, so most
    /// only write their microseconds.
    static SECOND: Cell<(u64, [u64; 3])> = const { Cell::new((u64::MAX, [0; 3])) };
}

/// Writes the instant `since_epoch` after the Unix epoch as RFC 3339 in UTC with
/// microseconds (`2026-11-26T23:00:22.335106Z`), and the closing quote.
///
/// A time after 9999 (a clock that is badly wrong, or one set by hand in a test) is
/// written as 9999's last microsecond, and one before 1970 comes as zero (see
/// [`Stamp::since_epoch`](crate::record::Stamp::since_epoch)): the line stays valid.
///
/// The text is kept and written as eight-byte words: kept as bytes, the cached
/// second was copied piecewise through the stack and stalled on store forwarding,
/// and computing the date for every line is a long chain of dependent steps.
fn write_timestamp(buf: &mut impl LineBuf, since_epoch: Duration) {
    let since_epoch = since_epoch.min(LATEST);
    let secs = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();
    let [date, day_time, seconds] = SECOND.with(|cache| {
        let (cached, words) = cache.get();
        if cached == secs {
            return words;
        }
        let words = second_words(secs);
        cache.set((secs, words));
        words
    });
    let byte = |b: u8, at: u32| u64::from(b) << at;
    // `:SS.ffff`
    let seconds =
        seconds | byte(b'.', 24) | pair(micros / 10_000) << 32 | pair(micros / 100 % 100) << 48;
    // `ffZ"`
    let end = pair(micros % 100) | byte(b'Z', 16) | byte(b'"', 24);
    buf.put(&date.to_le_bytes());
    buf.put(&day_time.to_le_bytes());
    buf.put(&seconds.to_le_bytes());
    buf.put(&end.to_le_bytes()[..4]);
}

/// `YYYY-MM-`, `DDTHH:MM` and `:SS` (the rest zero) of the second `secs` after the
/// epoch, no later than 9999's last.
fn second_words(secs: u64) -> [u64; 3] {
    // Fewer than 2^22 days by the clamp: a four-digit year.
    let days = (secs / 86_400) as u32;
    let second_of_day = (secs % 86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let byte = |b: u8, at: u32| u64::from(b) << at;
    let date = pair(year / 100)
        | pair(year % 100) << 16
        | byte(b'-', 32)
        | pair(month) << 40
        | byte(b'-', 56);
    let day_time = pair(day)
        | byte(b'T', 16)
        | pair(second_of_day / 3600) << 24
        | byte(b':', 40)
        | pair(second_of_day / 60 % 60) << 48;
    let seconds = byte(b':', 0) | pair(second_of_day % 60) << 8;
    [date, day_time, seconds]
}

/// The two ASCII digits of `n % 100`, the tens in the low byte.
#[inline]
fn pair(n: u32) -> u64 {
    let n = (n % 100) as u8;
    u64::from(b'0' + n / 10) | u64::from(b'0' + n % 10) << 8
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) `days` days after
/// 1970-01-01: Howard Hinnant's `civil_from_days`, for days on or after the epoch
/// (and fewer than 2^32 - 719,468).
fn civil_from_days(days: u32) -> (u32, u32, u32) {
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: March is 0, February 11.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u32::from(month <= 2);
    (year, month, day)
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
    if !needs_escape(s.as_bytes()) {
        buf.put_byte(b'"');
        buf.put(s.as_bytes());
        buf.put_byte(b'"');
    } else {
        json_escaped(buf, s);
    }
}

/// A string with something to escape: serde_json does it.
#[cold]
#[inline(never)]
fn json_escaped(buf: &mut impl LineBuf, s: &str) {
    json_value(buf, s);
}

/// Whether `bytes` hold a byte JSON escapes: `"`, `\\` or a control character below
/// 0x20. Eight bytes at a time, the last word overlapping the one before (four for
/// shorter strings): these strings (names, keys, values, paths) are on every line, and
/// a byte-by-byte test cost about eight instructions a byte.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    // Words are read from the string where it lies: one put together on the stack
    // from its bytes is read back before those stores land, a store-forwarding stall
    // that cost more than the test itself.
    let word = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0; 4];
        w.copy_from_slice(&bytes[at..at + 4]);
        // The upper half a byte that needs nothing.
        u64::from(u32::from_le_bytes(w)) | u64::from_le_bytes(*b"\0\0\0\0aaaa")
    };
    let len = bytes.len();
    match len {
        0 => false,
        1..=3 => {
            let (first, middle, last) = (bytes[0], bytes[len / 2], bytes[len - 1]);
            word_needs_escape(u64::from_le_bytes([
                first, middle, last, b'a', b'a', b'a', b'a', b'a',
            ]))
        }
        4..=8 => word_needs_escape(half(0)) || word_needs_escape(half(len - 4)),
        _ => {
            let mut at = 0;
            while at + 8 < len {
                if word_needs_escape(word(at)) {
                    return true;
                }
                at += 8;
            }
            word_needs_escape(word(len - 8))
        }
    }
}

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\\`. Each test
/// is the classic "has a byte less than n" (n <= 0x80): a borrow only ever starts at a
/// byte that matches, so the answer for the word as a whole is exact.
#[inline]
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
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
        let magnitude = v.abs();
        // A whole number below 10^15 (counts, sizes, depths: most metric values) is
        // its integer and `.0`, what serde_json writes for it, in about a third of
        // the time.
        if magnitude < 1e15 && (magnitude as u64) as f64 == magnitude {
            if v.is_sign_negative() {
                buf.put_byte(b'-');
            }
            json_int(buf, magnitude as u64);
            buf.put(b".0");
        } else {
            json_value(buf, &v);
        }
        true
    } else {
        buf.put(b"null");
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

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
    fn floats_are_written_as_serde_json_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            12.5,
            1e15,
            1e15 - 1.0,
            1e16,
            1e21,
            1e-7,
        ];
        values.extend([
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            2f64.powi(53),
        ]);
        // Whole numbers across the range written as integers, and their neighbours.
        for exponent in 0..=60 {
            let whole = 2f64.powi(exponent);
            for v in [whole, whole + 1.0, whole * 10.0, whole / 3.0] {
                // The floats either side, one unit in the last place away.
                let (above, below) = (
                    f64::from_bits(v.to_bits() + 1),
                    f64::from_bits(v.to_bits() - 1),
                );
                values.extend([v, -v, above, below, whole - 1.0]);
            }
        }
        for digits in 0..=16 {
            let power = 10f64.powi(digits);
            values.extend([power, power - 1.0, power + 1.0, -power, 9.0 * power]);
        }
        values.extend((0..100_000).map(|i| f64::from(i) * 7.0 - 3.0));
        for v in values {
            let mut buf = Vec::new();
            assert!(json_f64(&mut buf, v));
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&v).unwrap(),
                "{v:e}"
            );
        }
    }

    #[test]
    fn the_escape_test_agrees_with_the_byte_by_byte_one_for_every_byte_anywhere() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 1..=19 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    // Around the byte under test, bytes on either side of each edge.
                    for fill in [b'a', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
                        let mut bytes = vec![fill; len];
                        bytes[at] = byte;
                        assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
                    }
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    /// `at` as `write_timestamp` writes it, without the closing quote.
    fn timestamp(at: SystemTime) -> String {
        let mut buf = Vec::new();
        write_timestamp(&mut buf, crate::record::Stamp::from(at).since_epoch());
        assert_eq!(buf.pop(), Some(b'"'));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn timestamps_are_rfc_3339_as_humantime_writes_them_across_the_calendar() {
        let day = 86_400;
        // Each day from 1970 into 2430 (leap years, centuries, 2000 and 2400), at a
        // time of day and a fraction that move with it; then 9999's last days.
        let days = (0..168_000_u64).chain(2_932_500..2_932_897);
        for d in days {
            let secs = d * day + (d * 7_919) % day;
            let nanos = ((d * 104_729) % 1_000_000) as u32 * 1000 + 999;
            let at = UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(
                timestamp(at),
                humantime::format_rfc3339_micros(at).to_string(),
                "{secs}.{nanos:09}"
            );
        }
        for (secs, text) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (4_107_542_399, "2100-02-28T23:59:59.000000Z"),
            (4_107_542_400, "2100-03-01T00:00:00.000000Z"),
            (253_402_300_799, "9999-12-31T23:59:59.000000Z"),
        ] {
            assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(secs)), text);
        }
    }

    #[test]
    fn a_time_out_of_rfc_3339_s_range_is_written_as_the_nearest_bound() {
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(300_000_000_000)),
            "9999-12-31T23:59:59.999999Z"
        );
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

    /// splitmix64: random inputs, the same on every run, without a dependency.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn floats_of_random_bits_are_written_as_serde_json_writes_them() {
        let mut next = rng(3);
        for i in 0..200_000 {
            let bits = next();
            // Half of them with an exponent from 2^-8 to 2^60, where whole numbers
            // and the short path's edges are.
            let bits = if i % 2 == 0 {
                bits
            } else {
                (bits & !(0x7ff << 52)) | ((1015 + bits % 69) << 52)
            };
            let v = f64::from_bits(bits);
            let mut buf = Vec::new();
            if json_f64(&mut buf, v) {
                assert_eq!(buf, serde_json::to_vec(&v).unwrap(), "{bits:#x}");
            } else {
                assert!(!v.is_finite());
            }
        }
        // Every float near 10^15 (an eighth apart below it), and the same negated.
        let limit = 1e15f64.to_bits();
        for v in (limit - 20_000..=limit + 20_000)
            .map(f64::from_bits)
            .flat_map(|v| [v, -v])
        {
            let mut buf = Vec::new();
            assert!(json_f64(&mut buf, v));
            assert_eq!(buf, serde_json::to_vec(&v).unwrap(), "{v}");
        }
    }

    #[test]
    fn the_escape_test_agrees_with_the_byte_by_byte_one_for_random_strings() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let mut next = rng(1);
        let mut bytes = [0u8; 80];
        for _ in 0..200_000 {
            let (len, at) = ((next() % 64) as usize, (next() % 16) as usize);
            let sparse = next() % 2 == 0;
            for b in &mut bytes[at..at + len] {
                let r = next();
                // Sparse: mostly bytes that need nothing, so one special byte decides.
                *b = if sparse && r % 32 != 0 {
                    0x20 + (r >> 8) as u8 % 0xe0
                } else {
                    r as u8
                };
            }
            let s = &bytes[at..at + len];
            assert_eq!(needs_escape(s), naive(s), "{s:?}");
        }
    }

    #[test]
    fn timestamps_of_random_instants_in_any_order_are_as_humantime_writes_them() {
        const LAST: u64 = 253_402_300_799;
        let mut next = rng(5);
        let mut previous = Duration::ZERO;
        for _ in 0..200_000 {
            // Anywhere, or the previous second (the cache), or one either side of it.
            let secs = match next() % 3 {
                0 => next() % (LAST + 1),
                1 => previous.as_secs(),
                _ => (previous.as_secs() + 1)
                    .min(LAST)
                    .saturating_sub(next() % 3),
            };
            let at = Duration::new(secs, (next() % 1_000_000_000) as u32);
            previous = at;
            let mut buf = Vec::new();
            write_timestamp(&mut buf, at);
            assert_eq!(buf.pop(), Some(b'"'));
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                humantime::format_rfc3339_micros(UNIX_EPOCH + at).to_string(),
                "{at:?}"
            );
        }
    }

    #[test]
    fn the_earliest_and_latest_system_times_come_back_exactly() {
        let extreme = |later: bool| {
            let (mut at, mut step) = (UNIX_EPOCH, Duration::new(1 << 62, 0));
            while step > Duration::ZERO {
                while let Some(t) = if later {
                    at.checked_add(step)
                } else {
                    at.checked_sub(step)
                } {
                    at = t;
                }
                step /= 2;
            }
            at
        };
        for (at, text) in [
            (extreme(true), "9999-12-31T23:59:59.999999Z"),
            (extreme(false), "1970-01-01T00:00:00.000000Z"),
        ] {
            let record = Record::new(crate::Kind::Event, "e", &[]).with_timestamp(at);
            assert_eq!(record.timestamp(), at);
            let mut line = Vec::new();
            LineEncoder::new("s").encode(&record, &mut line);
            assert!(line.starts_with(format!("{{\"timestamp\":\"{text}\"").as_bytes()));
        }
    }
}
