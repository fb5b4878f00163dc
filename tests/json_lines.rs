//! The JSON-lines encoding: any input gives exactly one valid JSON line that parses back
//! to what went in, with the documented keys and types.

#![cfg(feature = "subscriber")]

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tracing_subscriber::prelude::*;

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use support::Shared;
use tracing_telemetry::{JsonLinesSink, Kind, Record, Sink, Tag, TelemetryLayer};

fn encode(record: &Record<'_>) -> String {
    let sink = JsonLinesSink::new(Vec::new()).with_service("checkout");
    sink.record(record);
    String::from_utf8(sink.into_inner()).unwrap()
}

fn parse_one(text: &str) -> Value {
    assert!(text.ends_with('\n'), "a record ends its line: {text:?}");
    assert_eq!(
        text.matches('\n').count(),
        1,
        "a record is exactly one line: {text:?}"
    );
    serde_json::from_str(text.trim_end_matches('\n')).unwrap()
}

#[test]
fn keys_and_types_are_as_documented() {
    let tags = [
        Tag::new("queue", "emails"),
        Tag::new("shard", 3_i64),
        Tag::new("big", u64::MAX),
        Tag::new("ratio", 0.25),
        Tag::new("warm", true),
    ];
    let at = UNIX_EPOCH + Duration::from_micros(1_764_198_022_335_106);
    let record = Record::new(Kind::Metric, "queue.depth", &tags)
        .with_value(42.0)
        .with_source(Some("app::jobs"), Some("src/jobs.rs"), Some(12))
        .with_timestamp(at);
    let line = encode(&record);
    assert_eq!(
        line,
        "{\"timestamp\":\"2025-11-26T23:00:22.335106Z\",\"service\":\"checkout\",\"kind\":\"metric\",\"name\":\"queue.depth\",\"value\":42.0,\
         \"tags\":{\"queue\":\"emails\",\"shard\":3,\"big\":18446744073709551615,\"ratio\":0.25,\"warm\":true},\
         \"module\":\"app::jobs\",\"file\":\"src/jobs.rs\",\"line\":12}\n"
    );
}

#[test]
fn span_tags_follow_the_call_s_tags_and_trace_ids_follow_the_tags() {
    let tags = [Tag::new("tenant", "from-the-call"), Tag::new("plan", "pro")];
    let span_tags = [
        Tag::new("request_id", "r-42"),
        Tag::new("tenant", "from-a-span"),
        Tag::new("attempt", 2_i64),
        Tag::new("load", f64::NAN),
    ];
    let at = UNIX_EPOCH + Duration::from_micros(1_764_198_022_335_106);
    let record = Record::new(Kind::Event, "order.placed", &tags)
        .with_span_tags(&span_tags)
        .with_trace(
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        )
        .with_source(None, Some("src/orders.rs"), Some(9))
        .with_timestamp(at);
    assert_eq!(
        encode(&record),
        "{\"timestamp\":\"2025-11-26T23:00:22.335106Z\",\"service\":\"checkout\",\"kind\":\"event\",\"name\":\"order.placed\",\
         \"tags\":{\"tenant\":\"from-the-call\",\"plan\":\"pro\",\"request_id\":\"r-42\",\"attempt\":2,\"load\":null},\
         \"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\",\
         \"file\":\"src/orders.rs\",\"line\":9,\"nonfinite\":{\"/tags/load\":\"NaN\"}}\n"
    );
    let bare = parse_one(&encode(&Record::new(Kind::Event, "e", &[])));
    assert!(bare.get("trace_id").is_none() && bare.get("span_id").is_none());
}

#[test]
fn timings_carry_duration_and_unit_events_neither() {
    let timing = parse_one(&encode(
        &Record::new(Kind::Timing, "db.query", &[]).with_value(12.5),
    ));
    assert_eq!(timing["duration_ms"], 12.5);
    assert_eq!(timing["unit"], "ms");
    assert!(timing.get("value").is_none());

    let event = parse_one(&encode(&Record::new(Kind::Event, "app.started", &[])));
    assert_eq!(event["kind"], "event");
    assert_eq!(event["tags"], json!({}));
    for key in ["value", "duration_ms", "unit", "module", "file", "line"] {
        assert!(event.get(key).is_none(), "{key} on a bare event");
    }
}

#[test]
fn hostile_strings_round_trip_exactly() {
    let nasty = [
        "",
        "\"quoted\"",
        "back\\slash",
        "new\nline",
        "carriage\rreturn",
        "tab\tchar",
        "nul\u{0}byte",
        "bell\u{7}and\u{1b}[31mescape",
        "\u{2028}line separator\u{2029}",
        "non-ascii: é ü 日本語 🚀",
        "{\"looks\":\"like json\"}",
        "</script>",
    ];
    for s in nasty {
        let tags = [Tag::new(s, s)];
        let line = parse_one(&encode(&Record::new(Kind::Event, s, &tags)));
        assert_eq!(line["name"], s);
        assert_eq!(line["tags"][s], s, "tag {s:?}");
    }
}

#[test]
fn tag_keys_that_collide_with_fixed_keys_stay_in_tags() {
    let tags = [
        Tag::new("name", "tag-name"),
        Tag::new("kind", "tag-kind"),
        Tag::new("timestamp", 1_i64),
        Tag::new("tags", "nested?"),
    ];
    let line = parse_one(&encode(&Record::new(Kind::Event, "real.name", &tags)));
    assert_eq!(line["name"], "real.name");
    assert_eq!(line["kind"], "event");
    assert!(line["timestamp"].is_string());
    assert_eq!(
        line["tags"],
        json!({"name": "tag-name", "kind": "tag-kind", "timestamp": 1, "tags": "nested?"})
    );
}

#[test]
fn a_key_given_twice_is_written_once_with_the_last_value() {
    let tags = [
        Tag::new("plan", "free"),
        Tag::new("seats", 1_i64),
        Tag::new("plan", "pro"),
    ];
    let text = encode(&Record::new(Kind::Event, "e", &tags));
    assert_eq!(text.matches("\"plan\"").count(), 1, "{text}");
    assert_eq!(parse_one(&text)["tags"], json!({"seats": 1, "plan": "pro"}));
}

#[test]
fn nan_and_infinities_become_null_and_are_named_in_nonfinite() {
    for (value, written) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        let tags = [Tag::new("x", value), Tag::new("a/b~c", value)];
        let metric = parse_one(&encode(
            &Record::new(Kind::Metric, "m", &tags).with_value(value),
        ));
        // Every key keeps its JSON type: a number key holds a number or null.
        assert_eq!(metric["value"], Value::Null);
        assert_eq!(metric["tags"], json!({"x": null, "a/b~c": null}));
        assert_eq!(
            metric["nonfinite"],
            json!({"/value": written, "/tags/x": written, "/tags/a~1b~0c": written})
        );
        let timing = parse_one(&encode(
            &Record::new(Kind::Timing, "t", &[]).with_value(value),
        ));
        assert_eq!(timing["duration_ms"], Value::Null);
        assert_eq!(timing["nonfinite"], json!({"/duration_ms": written}));
        // The spelling parses back to the same float.
        let back: f64 = written.parse().unwrap();
        assert!(back.is_nan() == value.is_nan() && (value.is_nan() || back == value));
    }
    let finite = parse_one(&encode(
        &Record::new(Kind::Metric, "m", &[]).with_value(1.5),
    ));
    assert_eq!(
        finite.get("nonfinite"),
        None,
        "only when something was not finite"
    );
    assert_eq!(
        parse_one(&encode(
            &Record::new(Kind::Metric, "m", &[]).with_value(-0.0)
        ))["value"],
        -0.0
    );
    assert_eq!(
        parse_one(&encode(
            &Record::new(Kind::Metric, "m", &[]).with_value(f64::MAX)
        ))["value"],
        f64::MAX
    );
}

#[test]
fn timestamps_keep_microseconds_and_clamp_impossible_clocks() {
    let at = |secs: u64, micros: u32| UNIX_EPOCH + Duration::new(secs, micros * 1000);
    let stamp = |t| {
        parse_one(&encode(
            &Record::new(Kind::Event, "e", &[]).with_timestamp(t),
        ))["timestamp"]
            .clone()
    };
    assert_eq!(stamp(at(0, 0)), "1970-01-01T00:00:00.000000Z");
    assert_eq!(stamp(at(1_764_198_022, 7)), "2025-11-26T23:00:22.000007Z");
    // The same second again (served from the per-thread cache), then the next one.
    assert_eq!(
        stamp(at(1_764_198_022, 999_999)),
        "2025-11-26T23:00:22.999999Z"
    );
    assert_eq!(stamp(at(1_764_198_023, 0)), "2025-11-26T23:00:23.000000Z");
    assert_eq!(stamp(at(951_782_400, 0)), "2000-02-29T00:00:00.000000Z");
    // Before 1970 and after 9999: the nearest bound, never a panic or a broken line.
    assert_eq!(
        stamp(UNIX_EPOCH - Duration::from_secs(86_400)),
        "1970-01-01T00:00:00.000000Z"
    );
    assert_eq!(stamp(at(300_000_000_000, 0)), "9999-12-31T23:59:59.999999Z");
}

#[test]
fn through_the_layer_macro_tags_keep_their_json_types() {
    let out = Shared::default();
    let sink = JsonLinesSink::new(out.clone());
    let subscriber =
        tracing_subscriber::registry().with(TelemetryLayer::new(sink).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event!(
            "user.upgrade",
            plan = "team",
            seats = 3,
            trial = false,
            ratio = 0.5
        );
        tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
    });
    let text = out.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["tags"],
        json!({"plan": "team", "seats": 3, "trial": false, "ratio": 0.5})
    );
    assert_eq!(lines[0]["module"], "json_lines");
    assert_eq!(lines[1]["value"], 42.0);
    assert_eq!(lines[1]["tags"], json!({"queue": "emails"}));
    assert!(
        lines[1].get("module").is_none(),
        "the function form has no module"
    );
    assert_eq!(lines[1]["file"], file!());
}
