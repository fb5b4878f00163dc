//! `TelemetryLayer` in a subscriber: it takes telemetry events and only those, composes
//! with fmt and `EnvFilter`, and leaves the app's own logs exactly as they were.

#![cfg(feature = "subscriber")]

use tracing::{debug, error, info, warn};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;
use tracing_test::traced_test;

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use support::Shared;
use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};

/// What an app does: logs at every level, and (if `track`) makes every kind of track call.
fn app_work(track: bool) {
    info!(user = "ada", "signing up");
    if track {
        tracing_telemetry::track_event("user.signup", &[("email", "ada@example.com")]);
        tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3);
    }
    debug!("checking the queue");
    if track {
        tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
        tracing_telemetry::track_timing!("db.query", 12.5, table = "users");
        let _timer = tracing_telemetry::timer("scope", &[]);
    }
    warn!(depth = 42, "queue is deep");
    error!("done, with one error");
}

/// Runs `app_work` under fmt at INFO (as `try_init` builds it) plus, if `telemetry` is
/// given, the telemetry layer on or off; returns fmt's output.
fn app_logs(track: bool, telemetry: Option<bool>) -> (String, usize) {
    let logs = Shared::default();
    let sink = MemorySink::new();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(logs.clone())
        .without_time()
        .with_ansi(false)
        .with_filter(LevelFilter::INFO);
    let layer =
        telemetry.map(|on| TelemetryLayer::new(sink.clone()).with_filter(TelemetryFilter::new(on)));
    let subscriber = tracing_subscriber::registry().with(fmt).with(layer);
    tracing::subscriber::with_default(subscriber, || app_work(track));
    (logs.text(), sink.len())
}

#[test]
fn track_calls_do_not_change_the_apps_logs_on_or_off() {
    let (baseline, _) = app_logs(false, None);
    assert_eq!(baseline.lines().count(), 3, "{baseline}");

    let (without_layer, _) = app_logs(true, None);
    let (telemetry_off, off_records) = app_logs(true, Some(false));
    let (telemetry_on, on_records) = app_logs(true, Some(true));

    assert_eq!(without_layer, baseline);
    assert_eq!(telemetry_off, baseline);
    assert_eq!(telemetry_on, baseline);
    assert_eq!(off_records, 0);
    assert_eq!(on_records, 5);
}

#[test]
fn properties_never_reach_logs_at_info_and_above() {
    let (logs, records) = app_logs(true, Some(true));
    assert_eq!(records, 5);
    assert!(!logs.contains("ada@example.com"), "{logs}");
    assert!(!logs.contains("user.signup"), "{logs}");
}

#[test]
fn only_telemetry_events_become_records() {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        info!("an app log line");
        tracing::event!(target: "telemetry_extra", tracing::Level::TRACE, telemetry.kind = "event", telemetry.name = "wrong.target");
        tracing::event!(target: "telemetry", tracing::Level::INFO, "no telemetry fields");
        tracing::event!(target: "telemetry", tracing::Level::TRACE, telemetry.kind = "gauge", telemetry.name = "bad.kind");
        let _span = tracing::info_span!(target: "telemetry", "a span").entered();
        tracing_telemetry::track_event("the.one", &[]);
    });
    assert_eq!(sink.names(), ["the.one"]);
}

#[test]
fn composes_with_fmt_and_env_filter() {
    let logs = Shared::default();
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(logs.clone())
                .without_time()
                .with_ansi(false)
                .with_filter(EnvFilter::new("warn,layer=debug")),
        )
        .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        debug!("kept by the env filter");
        tracing::trace!("dropped by the env filter");
        tracing_telemetry::track_metric("m", 1.0, &[]);
    });
    assert_eq!(sink.names(), ["m"]);
    let logs = logs.text();
    assert!(logs.contains("kept by the env filter"), "{logs}");
    assert!(!logs.contains("dropped by the env filter"), "{logs}");
    assert_eq!(logs.lines().count(), 1, "{logs}");
}

#[test]
fn the_runtime_toggle_switches_both_ways() {
    let sink = MemorySink::new();
    let filter = TelemetryFilter::new(false);
    let handle = filter.handle();
    let subscriber =
        tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_filter(filter));
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("off.1", &[]);
        handle.enable();
        tracing_telemetry::track_event("on.1", &[]);
        tracing_telemetry::track_event!("on.2");
        handle.disable();
        tracing_telemetry::track_event("off.2", &[]);
        tracing_telemetry::track_event!("off.3");
        handle.enable();
        tracing_telemetry::track_metric("on.3", 1.0, &[]);
    });
    assert_eq!(sink.names(), ["on.1", "on.2", "on.3"]);
}

#[traced_test]
#[test]
fn a_test_capturing_its_logs_sees_only_its_own_lines() {
    info!("payment accepted");
    tracing_telemetry::track_event("payment.accepted", &[("card", "4242")]);
    tracing_telemetry::track_metric!("payment.amount", 12.0, currency = "eur");
    info!("receipt sent");

    assert!(logs_contain("payment accepted"));
    assert!(logs_contain("receipt sent"));
    assert!(!logs_contain("4242"));
    assert!(!logs_contain("payment.amount"));
    logs_assert(|lines| match lines.len() {
        2 => Ok(()),
        n => Err(format!("expected the 2 app lines, got {n}: {lines:?}")),
    });
}

#[test]
fn hand_written_events_with_the_telemetry_fields_are_not_records() {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        // Everything a track call's fields say, written by hand: not a track call.
        tracing::event!(
            target: "telemetry",
            tracing::Level::TRACE,
            telemetry.kind = "event",
            telemetry.name = "spoofed",
            password = "hunter2"
        );
        tracing::event!(
            target: "telemetry",
            tracing::Level::TRACE,
            telemetry.tags = "plan=pro",
            telemetry.kind = "metric",
            telemetry.name = "spoofed.with.tags",
            telemetry.value = 1.0
        );
        let fake: &(dyn std::error::Error + 'static) = &std::fmt::Error;
        tracing::event!(
            target: "telemetry",
            tracing::Level::TRACE,
            telemetry.tags = fake,
            telemetry.kind = "event",
            telemetry.name = "spoofed.with.an.error"
        );
        tracing_telemetry::track_event("real", &[]);
        tracing_telemetry::track_event!("real.macro");
    });
    assert_eq!(sink.names(), ["real", "real.macro"]);
}

#[test]
fn reserved_fields_given_to_a_macro_are_never_tags() {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_metric!("m", 2.0, telemetry.value = "text", queue = "emails");
        tracing_telemetry::track_metric!("m2", 3.0, telemetry.value = 9.0);
        tracing_telemetry::track_event!("e", telemetry.value = 1.5, telemetry.kind = "metric");
        tracing_telemetry::track_timing!(
            "t",
            4.0,
            telemetry.name = "other",
            telemetry.extra = true
        );
    });
    let records = sink.records();
    assert_eq!(sink.names(), ["m", "m2", "e", "t"]);
    // The macro's own value wins; the reserved field is dropped, not made a tag.
    assert_eq!(records[0].value(), Some(2.0));
    assert_eq!(records[0].tags().len(), 1);
    assert_eq!(records[0].tag("queue").unwrap(), "emails");
    assert_eq!(records[1].value(), Some(3.0));
    assert!(records[1].tags().is_empty());
    // An event has no value, and its kind comes from the macro, not from a field.
    assert_eq!(records[2].kind(), tracing_telemetry::Kind::Event);
    assert_eq!(records[2].value(), None);
    assert!(records[2].tags().is_empty());
    assert_eq!(records[3].duration_ms(), Some(4.0));
    assert!(records[3].tags().is_empty());
}
