//! Record encoding: any kind, name, value and tags (any Unicode, any numbers, repeated
//! keys) written by `JsonLinesSink` are exactly one line of JSON that parses back to
//! what went in (docs/FIELDS.md, "JSON lines").
//!
//! cargo +nightly fuzz run encode

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink, Tag, TagValue};

#[derive(Arbitrary, Debug)]
enum AnyValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    name: String,
    value: f64,
    tags: Vec<(String, AnyValue)>,
}

/// How a float is written: a number, or null when not finite (the line's `nonfinite`
/// object then names its spelling).
fn float(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        Value::Null
    }
}

fn json(value: &AnyValue) -> Value {
    match value {
        AnyValue::Str(s) => Value::from(s.as_str()),
        AnyValue::I64(v) => Value::from(*v),
        AnyValue::U64(v) => Value::from(*v),
        AnyValue::F64(v) => float(*v),
        AnyValue::Bool(v) => Value::from(*v),
    }
}

fuzz_target!(|input: Input| {
    let kind = [Kind::Event, Kind::Metric, Kind::Timing][usize::from(input.kind) % 3];
    let tags: Vec<Tag<'_>> = input
        .tags
        .iter()
        .map(|(k, v)| {
            let value = match v {
                AnyValue::Str(s) => TagValue::Str(s),
                AnyValue::I64(v) => TagValue::I64(*v),
                AnyValue::U64(v) => TagValue::U64(*v),
                AnyValue::F64(v) => TagValue::F64(*v),
                AnyValue::Bool(v) => TagValue::Bool(*v),
            };
            Tag::new(k, value)
        })
        .collect();
    let sink = JsonLinesSink::new(Vec::new());
    sink.record(&Record::new(kind, &input.name, &tags).with_value(input.value));
    assert_eq!(sink.lost(), 0);
    let text = String::from_utf8(sink.into_inner()).expect("UTF-8");

    assert!(text.ends_with('\n'), "{text:?}");
    assert_eq!(text.matches('\n').count(), 1, "not one line: {text:?}");
    let line: Value = serde_json::from_str(&text).expect("valid JSON");

    assert_eq!(line["kind"], kind.as_str());
    assert_eq!(line["name"], input.name.as_str());
    match kind {
        Kind::Metric => assert_eq!(line["value"], float(input.value), "{text}"),
        Kind::Timing => {
            assert_eq!(line["duration_ms"], float(input.value), "{text}");
            assert_eq!(line["unit"], "ms");
        }
        _ => assert!(line.get("value").is_none() && line.get("duration_ms").is_none()),
    }

    // One entry per key: the last value given, in the order of each key's last use.
    let mut expected = serde_json::Map::new();
    for (i, (key, value)) in input.tags.iter().enumerate() {
        if input.tags[i + 1..].iter().all(|(later, _)| later != key) {
            expected.insert(key.clone(), json(value));
        }
    }
    let written = line["tags"].as_object().expect("tags is an object");
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{text}"
    );
    assert_eq!(written, &expected, "{text}");
});
