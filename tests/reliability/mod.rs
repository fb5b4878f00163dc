//! Helpers shared by the reliability tests (properties, load, faults, limits, security):
//! reading JSON lines exactly as written, and re-running this test binary as a child
//! process that installs the global subscriber.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::process::Command;
use std::thread::JoinHandle;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object's entries in the order written, repeated keys included (a
/// `serde_json::Value` would sort them and keep one of each).
#[derive(Debug, Default, PartialEq)]
pub struct Entries(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// Checks that `text` is exactly one line (one `\n`, at the end) and returns the line's
/// top-level entries and its `tags` entries, both in the order written.
pub fn one_line(text: &str) -> (Entries, Entries) {
    assert!(
        text.ends_with('\n'),
        "a record ends its line: {:.200?}",
        text
    );
    assert_eq!(
        text.matches('\n').count(),
        1,
        "a record is exactly one line: {:.200?}",
        text
    );
    parse_line(text.trim_end_matches('\n'))
}

/// Parses one JSON line into its top-level entries and its `tags` entries, both in the
/// order written (the top-level `tags` entry itself holds `null`).
pub fn parse_line(line: &str) -> (Entries, Entries) {
    let Line(top, tags) = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {:.300?}", line));
    (
        top,
        tags.unwrap_or_else(|| panic!("no tags object: {:.300?}", line)),
    )
}

/// A whole line: its entries, and its `tags` object read in order too.
struct Line(Entries, Option<Entries>);

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Line;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
                let mut entries = Vec::new();
                let mut tags = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "tags" && tags.is_none() {
                        tags = Some(map.next_value::<Entries>()?);
                        entries.push((key, Value::Null));
                    } else {
                        let value = map.next_value::<Value>()?;
                        entries.push((key, value));
                    }
                }
                Ok(Line(Entries(entries), tags))
            }
        }
        d.deserialize_map(Top)
    }
}

impl Entries {
    /// A copy of the value of the first entry with this key (owned, so that
    /// `prop_assert_eq!(entries.get(k), Some(Value::from(..)))` compiles on the MSRV).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// What the JSON `tags` object must hold for tags given in this order: one entry per
/// key, with the last value given, in the order of each key's last occurrence.
pub fn expected_json_tags<V: Clone>(tags: &[(String, V)]) -> Vec<(String, V)> {
    let mut last = HashMap::new();
    for (i, (k, _)) in tags.iter().enumerate() {
        last.insert(k.as_str(), i);
    }
    tags.iter()
        .enumerate()
        .filter(|(i, (k, _))| last[k.as_str()] == *i)
        .map(|(_, kv)| kv.clone())
        .collect()
}

/// A JSON object's entries: decoded keys, and the raw text of each value.
pub type RawEntries<'l> = Vec<(String, &'l str)>;

/// The raw text of each value in a line's top-level object and in its `tags` object,
/// keys decoded, in the order written. serde_json's default float parsing may be off
/// by a unit or two in the last place, so exact float checks parse these tokens with
/// `f64::from_str` instead (see [`float_of`]). The line must be valid JSON.
pub fn raw_entries(line: &str) -> (RawEntries<'_>, RawEntries<'_>) {
    let top = raw_object(line.trim_end());
    let tags = top
        .iter()
        .find(|(k, _)| k == "tags")
        .map(|(_, v)| raw_object(v))
        .unwrap_or_default();
    (top, tags)
}

/// The raw value of the first entry named `key` in the line's top-level object, or in
/// its `tags` object when `in_tags`.
pub fn raw_value<'l>(line: &'l str, key: &str, in_tags: bool) -> &'l str {
    let (top, tags) = raw_entries(line);
    let entries = if in_tags { tags } else { top };
    entries
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key:?} in {:.300?}", line))
}

/// The float written at `key` (in the line's `tags` object when `in_tags`): a JSON
/// number, parsed exactly from its text, or, for `null`, the spelling (`"NaN"`,
/// `"+Inf"`, `"-Inf"`) that the line's `nonfinite` object gives for that key.
pub fn float_at(line: &str, key: &str, in_tags: bool) -> f64 {
    let raw = raw_value(line, key, in_tags);
    if raw != "null" {
        return raw
            .parse()
            .unwrap_or_else(|e| panic!("{raw:?} is not a number ({e})"));
    }
    let pointer = if in_tags {
        format!("/tags/{}", key.replace('~', "~0").replace('/', "~1"))
    } else {
        format!("/{key}")
    };
    let json: Value = serde_json::from_str(line).expect("a JSON line");
    match json["nonfinite"][&pointer].as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        other => panic!("null at {pointer} but nonfinite says {other:?}: {line:.300}"),
    }
}

/// The entries of the JSON object `text` (which must be valid): decoded keys, raw
/// values.
fn raw_object(text: &str) -> RawEntries<'_> {
    let bytes = text.as_bytes();
    assert_eq!(bytes.first(), Some(&b'{'), "not an object: {:.100?}", text);
    let mut entries = Vec::new();
    let mut i = skip_ws(bytes, 1);
    while bytes[i] != b'}' {
        let key_end = value_end(bytes, i);
        let key: String = serde_json::from_str(&text[i..key_end]).expect("a key");
        i = skip_ws(bytes, key_end);
        assert_eq!(bytes[i], b':');
        let start = skip_ws(bytes, i + 1);
        let end = value_end(bytes, start);
        entries.push((key, &text[start..end]));
        i = skip_ws(bytes, end);
        if bytes[i] == b',' {
            i = skip_ws(bytes, i + 1);
        }
    }
    entries
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Where the JSON value starting at `i` ends.
fn value_end(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b'"' => {
            let mut j = i + 1;
            while bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        }
        b'{' | b'[' => {
            let mut depth = 0;
            let mut j = i;
            loop {
                match bytes[j] {
                    b'"' => {
                        j = value_end(bytes, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while !matches!(bytes[j], b',' | b'}' | b']') && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        }
    }
}

/// Whether two floats are the same value (NaN equals NaN; 0.0 and -0.0 differ).
pub fn same_float(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// The environment variable that tells a re-run test binary which child to play.
const CHILD: &str = "RELIABILITY_CHILD";

/// The child this process plays, when a test re-ran its own binary.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// This test binary, set to run only `test` as the child `role`: a process of its own,
/// so it may install the global subscriber. No `TELEMETRY_*` or `RUST_LOG` is
/// inherited from the developer's shell.
pub fn rerun_self(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, role);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TELEMETRY_") || var == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Reads a child's pipe to the end on a thread of its own, so a child that fills one
/// pipe while the test waits on the other never deadlocks the test.
pub fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
