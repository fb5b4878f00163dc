//! Limits, with the behaviour docs/FIELDS.md ("Limits") documents: nothing is
//! truncated, dropped or rejected. Very long names and values, hundreds of tags, NaN and
//! the infinities, integers wider than 64 bits and empty names all arrive as given,
//! through the layer into `MemorySink` and `JsonLinesSink`, and through the file
//! exporter.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod reliability;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use serde_json::Value;
use tracing_subscriber::prelude::*;

use reliability::{float_at, one_line, parse_line};
use support::Shared;
use tracing_telemetry::{
    Config, JsonLinesSink, Kind, MemorySink, OwnedRecord, OwnedTagValue, TelemetryLayer,
};

/// At least 1 MiB of text that needs escaping and is not ASCII.
fn mebibyte() -> String {
    let unit = "é日🚀\"\\\n\u{0}\u{1b}x";
    let text = unit.repeat((1 << 20) / unit.len() + 1);
    assert!(text.len() >= 1 << 20);
    text
}

/// Runs `f` with the layer sending records to a memory sink and a JSON-lines sink;
/// returns what each received.
fn capture(f: impl FnOnce()) -> (Vec<OwnedRecord>, String) {
    let memory = MemorySink::new();
    let out = Shared::default();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(memory.clone()).with_telemetry_filter())
        .with(TelemetryLayer::new(JsonLinesSink::new(out.clone())).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, f);
    (memory.records(), out.text())
}

/// Runs `f` with the file exporter, as `try_init` builds it; returns the file's text.
fn through_the_file_exporter(test: &str, f: impl FnOnce()) -> String {
    let dir = support::temp_dir(test);
    let path = dir.join("t.jsonl");
    let (layer, guard) =
        tracing_telemetry::layer_with(&Config::new().with_enabled(true).with_file(&path)).unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    let stats = guard.stats();
    drop(guard);
    assert_eq!((stats.dropped(), stats.failed()), (0, 0));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    text
}

#[test]
fn a_one_mebibyte_name_key_and_value_are_kept_whole() {
    let big = mebibyte();
    let (records, json) = capture(|| {
        tracing_telemetry::track_event(&big, &[(&big, &big), ("small", "s")]);
        tracing_telemetry::track_event!("limits.macro", value = big.as_str(), shown = %big, after = 1);
    });

    assert_eq!(records.len(), 2);
    assert_eq!(records[0].name(), big, "the name is not truncated");
    assert_eq!(
        records[0].tags(),
        [
            (big.clone(), OwnedTagValue::Str(big.clone())),
            ("small".to_owned(), OwnedTagValue::from("s")),
        ]
    );
    assert_eq!(records[1].tag("value").unwrap(), big.as_str());
    assert_eq!(records[1].tag("shown").unwrap(), big.as_str());
    assert_eq!(records[1].tag("after").unwrap(), 1_i64);

    let lines: Vec<&str> = json.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 2, "one line per record, however long");
    let (top, tags) = one_line(lines[0]);
    assert_eq!(top.get("name"), Some(Value::from(big.as_str())));
    assert_eq!(
        tags.0,
        [
            (big.clone(), Value::from(big.as_str())),
            ("small".to_owned(), Value::from("s"))
        ]
    );
    let (_, tags) = one_line(lines[1]);
    assert_eq!(tags.get("value"), Some(Value::from(big.as_str())));
    assert_eq!(tags.get("shown"), Some(Value::from(big.as_str())));
}

#[test]
fn five_hundred_tags_are_all_kept_in_order() {
    let pairs: Vec<(String, String)> = (0..500)
        .map(|i| (format!("key.{i}"), format!("value {i}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (records, json) =
        capture(|| tracing_telemetry::track_metric("limits.tags", 1.0, &borrowed));

    let kept: Vec<(String, OwnedTagValue)> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), OwnedTagValue::from(v.as_str())))
        .collect();
    assert_eq!(records[0].tags(), kept.as_slice());
    let (_, tags) = one_line(&json);
    let written: Vec<(String, Value)> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    assert_eq!(tags.0, written);
}

#[test]
fn forty_typed_macro_fields_and_long_strings_are_all_kept() {
    // More than the 8 fields and 128 bytes of text the layer holds without allocating.
    let long = "long text ".repeat(40);
    let (records, json) = capture(|| {
        tracing_telemetry::track_event!(
            "limits.fields",
            f0 = 0_i64,
            f1 = 1_i64,
            f2 = 2_i64,
            f3 = 3_i64,
            f4 = 4_i64,
            f5 = 5_i64,
            f6 = 6_i64,
            f7 = 7_i64,
            f8 = 8_i64,
            f9 = 9_i64,
            f10 = 10_i64,
            f11 = 11_i64,
            f12 = 12_i64,
            f13 = 13_i64,
            f14 = 14_i64,
            f15 = 15_i64,
            f16 = 16_i64,
            f17 = 17_i64,
            f18 = 18_i64,
            f19 = 19_i64,
            f20 = 20_i64,
            f21 = 21_i64,
            f22 = 22_i64,
            f23 = 23_i64,
            f24 = 24_i64,
            f25 = 25_i64,
            f26 = 26_i64,
            f27 = 27_i64,
            f28 = 28_i64,
            f29 = 29_i64,
            f30 = 30_i64,
            f31 = 31_i64,
            f32 = 32_i64,
            f33 = 33_i64,
            f34 = 34_i64,
            f35 = 35_i64,
            f36 = 36_i64,
            f37 = 37_i64,
            f38 = 38_i64,
            f39 = 39_i64,
            a = long.as_str(),
            b = %long,
        )
    });
    let record = &records[0];
    assert_eq!(record.tags().len(), 42);
    for i in 0..40 {
        assert_eq!(record.tag(&format!("f{i}")).unwrap(), i as i64);
    }
    assert_eq!(record.tag("a").unwrap(), long.as_str());
    assert_eq!(record.tag("b").unwrap(), long.as_str());
    let (_, tags) = one_line(&json);
    assert_eq!(tags.0.len(), 42);
    assert_eq!(tags.get("f39"), Some(Value::from(39)));
    assert_eq!(tags.get("b"), Some(Value::from(long.as_str())));
}

#[test]
fn nan_and_infinities_are_kept_in_memory_and_written_as_strings() {
    let (records, json) = capture(|| {
        tracing_telemetry::track_metric("m.nan", f64::NAN, &[]);
        tracing_telemetry::track_timing("t.inf", f64::INFINITY, &[]);
        tracing_telemetry::track_metric!(
            "m.neg",
            f64::NEG_INFINITY,
            nan = f64::NAN,
            inf = f64::INFINITY,
            neg = f64::NEG_INFINITY
        );
    });
    assert!(records[0].value().unwrap().is_nan());
    assert_eq!(records[1].duration_ms(), Some(f64::INFINITY));
    assert_eq!(records[2].value(), Some(f64::NEG_INFINITY));
    assert!(records[2].tag("nan").unwrap().as_f64().unwrap().is_nan());
    assert_eq!(records[2].tag("inf").unwrap(), f64::INFINITY);
    assert_eq!(records[2].tag("neg").unwrap(), f64::NEG_INFINITY);

    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["value"], Value::Null);
    assert_eq!(lines[0]["nonfinite"], serde_json::json!({"/value": "NaN"}));
    assert_eq!(lines[1]["duration_ms"], Value::Null);
    assert_eq!(
        lines[1]["nonfinite"],
        serde_json::json!({"/duration_ms": "+Inf"})
    );
    assert_eq!(lines[2]["value"], Value::Null);
    assert_eq!(
        lines[2]["tags"],
        serde_json::json!({"nan": null, "inf": null, "neg": null})
    );
    assert_eq!(
        lines[2]["nonfinite"],
        serde_json::json!({"/value": "-Inf", "/tags/nan": "NaN", "/tags/inf": "+Inf", "/tags/neg": "-Inf"})
    );
}

#[test]
fn integers_wider_than_64_bits_become_decimal_strings() {
    let (records, json) = capture(|| {
        tracing_telemetry::track_event!(
            "limits.wide",
            max = i128::MAX,
            min = i128::MIN,
            umax = u128::MAX,
            fits = -5_i128,
            fits_u = 7_u128,
        )
    });
    let record = &records[0];
    assert_eq!(
        record.tag("max").unwrap(),
        "170141183460469231731687303715884105727"
    );
    assert_eq!(
        record.tag("min").unwrap(),
        "-170141183460469231731687303715884105728"
    );
    assert_eq!(
        record.tag("umax").unwrap(),
        "340282366920938463463374607431768211455"
    );
    assert_eq!(record.tag("fits").unwrap(), -5_i64);
    assert_eq!(record.tag("fits_u").unwrap(), 7_u64);
    let (_, tags) = one_line(&json);
    assert_eq!(
        tags.get("max"),
        Some(Value::from("170141183460469231731687303715884105727"))
    );
    assert_eq!(tags.get("fits"), Some(Value::from(-5)));
}

#[test]
fn empty_names_keys_and_values_are_kept() {
    let (records, json) = capture(|| {
        tracing_telemetry::track_event("", &[("", "")]);
        tracing_telemetry::track_event!("", empty = "");
    });
    assert_eq!(records.len(), 2, "an empty name is still a record");
    assert_eq!(records[0].name(), "");
    assert_eq!(
        records[0].tags(),
        [(String::new(), OwnedTagValue::from(""))]
    );
    assert_eq!(records[1].tag("empty").unwrap(), "");
    let first = json.lines().next().unwrap();
    assert_eq!(parse_line(first).0.get("name"), Some(Value::from("")));
}

/// The exporters add no limit of their own: a 1 MiB record with 500 tags is one whole
/// line in the file (larger than the exporter's 64 KiB write batches), and NaN is
/// written as a string there too.
#[test]
fn the_file_exporter_writes_huge_records_whole() {
    let big = mebibyte();
    let pairs: Vec<(String, String)> = (0..500)
        .map(|i| (format!("k{i}"), format!("{i}")))
        .collect();
    let mut borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    borrowed.push(("big", &big));
    let text = through_the_file_exporter("limits-file", || {
        tracing_telemetry::track_metric(&big, f64::NAN, &borrowed);
        tracing_telemetry::track_event("small.after", &[]);
    });
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 2);
    let (top, tags) = one_line(lines[0]);
    assert_eq!(top.get("name"), Some(Value::from(big.as_str())));
    assert!(float_at(lines[0], "value", false).is_nan());
    assert_eq!(tags.0.len(), 501);
    assert_eq!(tags.get("k499"), Some(Value::from("499")));
    assert_eq!(tags.get("big"), Some(Value::from(big.as_str())));
    assert_eq!(
        one_line(lines[1]).0.get("name"),
        Some(Value::from("small.after"))
    );
}

#[test]
fn a_record_built_by_hand_keeps_its_kind_with_huge_input() {
    let big = mebibyte();
    let tags = [tracing_telemetry::Tag::new(&big, f64::NAN)];
    let sink = JsonLinesSink::new(Vec::new());
    tracing_telemetry::Sink::record(
        &sink,
        &tracing_telemetry::Record::new(Kind::Timing, &big, &tags).with_value(f64::INFINITY),
    );
    let text = String::from_utf8(sink.into_inner()).unwrap();
    let (top, tags) = one_line(&text);
    assert_eq!(top.get("duration_ms"), Some(Value::Null));
    assert_eq!(tags.0, [(big.clone(), Value::Null)]);
    assert_eq!(float_at(&text, "duration_ms", false), f64::INFINITY);
    assert!(float_at(&text, &big, true).is_nan());
}
