//! A library author's test helper: `MemorySink::capture` and tag values compared with
//! plain literals, as the README shows them.

#![cfg(feature = "subscriber")]

use tracing_telemetry::{Kind, MemorySink, OwnedTagValue, TagValue};

fn sign_up(plan: &str) {
    tracing_telemetry::track_event("user.signup", &[("plan", plan)]);
    tracing_telemetry::track_event!(
        "user.upgrade",
        plan = plan,
        seats = 3,
        big = 3_u64,
        ratio = 0.5,
        trial = false
    );
    tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
    tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
}

#[test]
fn capture_returns_what_the_closure_emitted_in_order() {
    let records = MemorySink::capture(|| sign_up("pro"));
    let names: Vec<&str> = records.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        ["user.signup", "user.upgrade", "queue.depth", "db.query"]
    );
    let kinds: Vec<Kind> = records.iter().map(|r| r.kind()).collect();
    assert_eq!(
        kinds,
        [Kind::Event, Kind::Event, Kind::Metric, Kind::Timing]
    );
    assert_eq!(records[2].value(), Some(42.0));
    assert_eq!(records[3].duration_ms(), Some(12.5));
}

#[test]
fn capture_starts_empty_and_keeps_nothing_after_it_returns() {
    assert!(MemorySink::capture(|| ()).is_empty());
    assert_eq!(MemorySink::capture(|| sign_up("a")).len(), 4);
    // A call outside any capture goes nowhere, and the next capture starts afresh.
    sign_up("outside");
    let records = MemorySink::capture(|| sign_up("b"));
    assert_eq!(records.len(), 4);
    assert_eq!(records[0].tag("plan").unwrap(), "b");
}

#[test]
fn capture_sees_nothing_but_track_calls() {
    let records = MemorySink::capture(|| {
        tracing::info!(target: "telemetry", "an app's own log line with the telemetry target");
        tracing::warn!("an ordinary log line");
        tracing_telemetry::track_event("only.this", &[]);
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name(), "only.this");
}

#[test]
fn capture_gives_back_the_closures_effects() {
    let mut rows = 0;
    let records = MemorySink::capture(|| {
        rows = tracing_telemetry::timed("db.load", &[], || 7);
    });
    assert_eq!(rows, 7);
    assert_eq!(records[0].name(), "db.load");
    assert_eq!(records[0].kind(), Kind::Timing);
}

#[test]
fn integer_tags_compare_with_literals_of_every_integer_type() {
    let records = MemorySink::capture(|| sign_up("pro"));
    let seats = records[1].tag("seats").unwrap();
    assert_eq!(seats, 3);
    assert_eq!(seats, 3_i8);
    assert_eq!(seats, 3_i16);
    assert_eq!(seats, 3_i32);
    assert_eq!(seats, 3_i64);
    assert_eq!(seats, 3_i128);
    assert_eq!(seats, 3_isize);
    assert_eq!(seats, 3_u8);
    assert_eq!(seats, 3_u16);
    assert_eq!(seats, 3_u32);
    assert_eq!(seats, 3_u64);
    assert_eq!(seats, 3_u128);
    assert_eq!(seats, 3_usize);
    assert_ne!(seats, 4);
    assert_ne!(seats, -3);
    // Given as an unsigned integer, compared the same way.
    let big = records[1].tag("big").unwrap();
    assert_eq!(big, 3);
    assert_eq!(big, 3_i64);
    assert_eq!(big, 3_u8);
    // No conversion between kinds.
    assert_ne!(seats, 3.0);
    assert_ne!(seats, "3");
    assert_ne!(seats, true);
}

#[test]
fn float_bool_and_string_tags_compare_with_their_literals() {
    let records = MemorySink::capture(|| sign_up("pro"));
    let upgrade = &records[1];
    assert_eq!(upgrade.tag("ratio").unwrap(), 0.5);
    assert_eq!(upgrade.tag("ratio").unwrap(), 0.5_f32);
    assert_ne!(upgrade.tag("ratio").unwrap(), 0.25);
    assert_eq!(upgrade.tag("trial").unwrap(), false);
    assert_ne!(upgrade.tag("trial").unwrap(), true);
    assert_eq!(upgrade.tag("plan").unwrap(), "pro");
    assert_eq!(upgrade.tag("plan").unwrap(), String::from("pro"));
    assert_eq!(*upgrade.tag("plan").unwrap(), *"pro");
    assert_ne!(upgrade.tag("plan").unwrap(), "team");
    assert_eq!(records[2].tag("queue").unwrap(), "emails");
}

#[test]
fn borrowed_and_owned_tag_values_compare_alike() {
    assert_eq!(TagValue::I64(3), 3_u8);
    assert_eq!(TagValue::U64(u64::MAX), u64::MAX);
    assert_ne!(TagValue::U64(u64::MAX), -1);
    assert_eq!(TagValue::I64(-1), -1_i8);
    assert_ne!(TagValue::I64(-1), u128::MAX);
    assert_eq!(TagValue::Str("a"), "a");
    assert_eq!(TagValue::F64(1.5), 1.5);
    assert_eq!(TagValue::Bool(true), true);
    assert_eq!(OwnedTagValue::U64(7), 7_i32);
    assert_eq!(OwnedTagValue::from("x"), "x");
    assert_eq!(&OwnedTagValue::from("x"), "x");
}

#[test]
fn what_the_closure_returns_is_dropped_while_captured() {
    // A timer handed back by the closure records when dropped: inside the capture.
    let records = MemorySink::capture(|| tracing_telemetry::timer("cache.warm", &[]));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].name(), "cache.warm");
    assert_eq!(records[0].kind(), Kind::Timing);
}
