//! The track calls: each kind, function and macro form, arrives with its fields and
//! typed tags; nothing arrives while telemetry is off.

#![cfg(feature = "subscriber")]

use tracing_subscriber::prelude::*;

use tracing_telemetry::{Kind, MemorySink, OwnedRecord, TelemetryFilter, TelemetryLayer};

/// Runs `f` under a scoped subscriber whose telemetry layer is on or off, and returns
/// what reached the sink.
fn capture_with(enabled: bool, f: impl FnOnce()) -> Vec<OwnedRecord> {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_filter(TelemetryFilter::new(enabled)));
    tracing::subscriber::with_default(subscriber, f);
    sink.take()
}

fn capture(f: impl FnOnce()) -> Vec<OwnedRecord> {
    capture_with(true, f)
}

#[test]
fn track_event_delivers_name_and_string_properties() {
    let records = capture(|| tracing_telemetry::track_event("user.signup", &[("plan", "pro")]));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.kind(), Kind::Event);
    assert_eq!(r.name(), "user.signup");
    assert_eq!(r.tags(), [("plan".to_owned(), "pro".into())]);
    assert_eq!(r.value(), None);
    assert_eq!(r.duration_ms(), None);
}

#[test]
fn track_event_without_properties() {
    let records = capture(|| tracing_telemetry::track_event("app.started", &[]));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name(), "app.started");
    assert!(records[0].tags().is_empty());
}

#[test]
fn track_metric_delivers_value_and_tags() {
    let records =
        capture(|| tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]));
    let r = &records[0];
    assert_eq!(r.kind(), Kind::Metric);
    assert_eq!(r.name(), "queue.depth");
    assert_eq!(r.value(), Some(42.0));
    assert_eq!(r.unit(), None);
    assert_eq!(r.tag("queue").unwrap(), "emails");
}

#[test]
fn track_timing_delivers_duration_in_ms() {
    let records =
        capture(|| tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]));
    let r = &records[0];
    assert_eq!(r.kind(), Kind::Timing);
    assert_eq!(r.name(), "db.query");
    assert_eq!(r.duration_ms(), Some(12.5));
    assert_eq!(r.value(), None);
    assert_eq!(r.unit(), Some("ms"));
    assert_eq!(r.tag("table").unwrap(), "users");
}

#[test]
fn runtime_names_keys_and_values_arrive_as_given() {
    let shard = 7;
    let records = capture(|| {
        let name = format!("shard.{shard}.rebalanced");
        let key = format!("shard_{shard}");
        let value = format!("node-{}", shard * 2);
        tracing_telemetry::track_event(&name, &[(&key, &value), ("", ""), ("ключ", "значение ✓")]);
    });
    let r = &records[0];
    assert_eq!(r.name(), "shard.7.rebalanced");
    assert_eq!(r.tag("shard_7").unwrap(), "node-14");
    assert_eq!(r.tag("").unwrap(), "");
    assert_eq!(r.tag("ключ").unwrap(), "значение ✓");
}

#[test]
fn the_macro_keeps_property_types() {
    let records = capture(|| {
        tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3, trial = false)
    });
    let r = &records[0];
    assert_eq!(r.kind(), Kind::Event);
    assert_eq!(r.name(), "user.upgrade");
    assert_eq!(r.tag("plan").unwrap(), "team");
    assert_eq!(r.tag("seats").unwrap(), 3_i64);
    assert_eq!(r.tag("trial").unwrap(), false);
    let keys: Vec<_> = r.tags().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["plan", "seats", "trial"]);
}

#[test]
fn macro_metric_and_timing_keep_tag_types() {
    let records = capture(|| {
        tracing_telemetry::track_metric!(
            "cache.hit_ratio",
            0.93,
            cache = "users",
            shard = 4_u64,
            warm = true
        );
        tracing_telemetry::track_metric!("pool.size", 8);
        tracing_telemetry::track_timing!("db.query", 12.5, table = "users", rows = -1, ratio = 0.5);
    });
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].value(), Some(0.93));
    assert_eq!(records[0].tag("shard").unwrap(), 4_u64);
    assert_eq!(records[0].tag("warm").unwrap(), true);
    assert_eq!(records[1].value(), Some(8.0));
    assert_eq!(records[2].duration_ms(), Some(12.5));
    assert_eq!(records[2].tag("rows").unwrap(), -1_i64);
    assert_eq!(records[2].tag("ratio").unwrap(), 0.5);
}

#[test]
fn macro_values_may_be_runtime_strings_debug_and_display() {
    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug")]
    struct Plan {
        seats: u8,
    }
    let records = capture(|| {
        let name = format!("tenant.{}", "created");
        let region = String::from("eu-west-1");
        tracing_telemetry::track_event!(&name, region = region.as_str(), plan = ?Plan { seats: 2 }, id = %42);
    });
    let r = &records[0];
    assert_eq!(r.name(), "tenant.created");
    assert_eq!(r.tag("region").unwrap(), "eu-west-1");
    assert_eq!(r.tag("plan").unwrap(), "Plan { seats: 2 }");
    assert_eq!(r.tag("id").unwrap(), "42");
}

#[test]
fn many_tags_all_arrive_in_order() {
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let pairs: Vec<(&str, &str)> = keys
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(String::as_str))
        .collect();
    let records = capture(|| tracing_telemetry::track_event("wide", &pairs));
    let got: Vec<(String, String)> = records[0]
        .tags()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let want: Vec<(String, String)> = keys.into_iter().zip(values).collect();
    assert_eq!(got, want);
}

#[test]
fn nothing_arrives_while_telemetry_is_off() {
    let records = capture_with(false, || {
        tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
        tracing_telemetry::track_metric("queue.depth", 42.0, &[]);
        tracing_telemetry::track_timing("db.query", 12.5, &[]);
        tracing_telemetry::track_event!("user.upgrade", plan = "team");
        let _timer = tracing_telemetry::timer("scope", &[]);
        let _by_value = tracing_telemetry::timer("scope", []);
    });
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn the_timer_records_the_scope_it_guards() {
    let records = capture(|| {
        let _timer = tracing_telemetry::timer("scope.work", &[("step", "1")]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    });
    let r = &records[0];
    assert_eq!(r.kind(), Kind::Timing);
    assert_eq!(r.name(), "scope.work");
    assert_eq!(r.tag("step").unwrap(), "1");
    let ms = r.duration_ms().unwrap();
    assert!(ms >= 20.0, "slept 20 ms, recorded {ms} ms");
}

#[test]
fn the_timer_keeps_runtime_tags_given_by_value() {
    let records = capture(|| {
        let queue = String::from("emails");
        let _timer = tracing_telemetry::timer("queue.drain", [("queue", queue.as_str())]);
    });
    assert_eq!(records[0].tag("queue").unwrap(), "emails");
}

#[test]
fn timed_returns_the_closure_result_and_records() {
    let mut result = 0;
    let records = capture(|| {
        result = tracing_telemetry::timed("compute", &[], || 6 * 7);
    });
    assert_eq!(result, 42);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name(), "compute");
    assert!(records[0].duration_ms().unwrap() >= 0.0);
}

mod billing {
    pub fn charge() {
        tracing_telemetry::track_event!("invoice.charged", cents = 1999);
        tracing_telemetry::track_metric("invoice.total", 19.99, &[("currency", "eur")]);
    }
}

#[test]
fn events_from_another_module_arrive_with_their_origin() {
    let records = capture(billing::charge);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].module_path(), Some("track::billing"));
    assert_eq!(records[0].file(), Some(file!()));
    // A function cannot learn its caller's module; the call's file and line stand in.
    assert_eq!(records[1].module_path(), None);
    assert_eq!(records[1].file(), Some(file!()));
    assert!(records[1].line().unwrap() > 0);
}

#[test]
fn events_from_other_threads_arrive() {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    let dispatch = tracing::Dispatch::new(subscriber);
    std::thread::scope(|s| {
        for t in 0..4 {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..100 {
                        tracing_telemetry::track_metric(
                            "worker.step",
                            f64::from(i),
                            &[("thread", &t.to_string())],
                        );
                    }
                });
            });
        }
    });
    assert_eq!(sink.len(), 400);
}
