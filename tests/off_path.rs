//! The off path as an app has it: one global subscriber (what `try_init` builds, with
//! telemetry off). Its own process, so no other dispatcher shares the callsite cache.

#![cfg(feature = "subscriber")]

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};

static EVALUATED: AtomicUsize = AtomicUsize::new(0);

fn expensive() -> i64 {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    1
}

fn emit_everything() {
    tracing_telemetry::track_event!("e", cost = expensive());
    tracing_telemetry::track_metric!("m", expensive(), cost = expensive());
    tracing_telemetry::track_timing!("t", 1.0, cost = expensive());
    tracing_telemetry::track_event("f", &[]);
    let _timer = tracing_telemetry::timer("scope", &[]);
}

#[test]
fn off_is_decided_by_the_level_hint_and_costs_no_evaluation() {
    let sink = MemorySink::new();
    let filter = TelemetryFilter::new(false);
    let handle = filter.handle();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(LevelFilter::INFO),
        )
        .with(TelemetryLayer::new(sink.clone()).with_filter(filter))
        .init();

    // Off: the global max level stays at the app's INFO, so every track call stops at
    // the level check, before its fields are evaluated or a record is built.
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert!(!tracing::enabled!(target: tracing_telemetry::TARGET, Level::TRACE));
    emit_everything();
    assert_eq!(
        EVALUATED.load(Ordering::SeqCst),
        0,
        "fields were evaluated while off"
    );
    assert!(sink.is_empty());

    // On: the toggle rebuilds the cache; the same calls now arrive.
    handle.enable();
    assert_eq!(LevelFilter::current(), LevelFilter::TRACE);
    emit_everything();
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 4);
    assert_eq!(sink.names(), ["e", "m", "t", "f", "scope"]);

    // Off again: back to the level check.
    handle.disable();
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    emit_everything();
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 4);
    assert_eq!(sink.len(), 5);
}
