//! A sink can misbehave without taking the app down: a panic is contained, and a sink
//! that emits telemetry itself neither recurses nor deadlocks.

#![cfg(feature = "subscriber")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing_subscriber::prelude::*;

use tracing_telemetry::{MemorySink, Record, Sink, TelemetryLayer};

struct Panicking {
    calls: Arc<AtomicUsize>,
}

impl Sink for Panicking {
    fn record(&self, record: &Record<'_>) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if record.name() == "boom" {
            panic!("sink failure");
        }
    }
}

#[test]
fn a_panicking_sink_loses_that_record_and_the_app_goes_on() {
    let calls = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(
        TelemetryLayer::new(Panicking {
            calls: Arc::clone(&calls),
        })
        .with_telemetry_filter(),
    );
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("before", &[]);
        tracing_telemetry::track_event("boom", &[]);
        tracing_telemetry::track_event("boom", &[]);
        tracing_telemetry::track_event("after", &[]);
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "every record still reaches the sink"
    );
}

/// Counts the events of this test crate's own target that reach it.
struct CountAppLogs(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountAppLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sink_safety" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A sink that logs and tracks while recording, and holds its lock meanwhile.
struct Chatty {
    inner: MemorySink,
    lock: std::sync::Mutex<()>,
}

impl Sink for Chatty {
    fn record(&self, record: &Record<'_>) {
        let _held = self.lock.lock().unwrap();
        tracing::info!(name = record.name(), "recording");
        tracing_telemetry::track_event("from.inside.the.sink", &[]);
        tracing_telemetry::track_metric!("sink.depth", 1);
        self.inner.record(record);
    }
}

#[test]
fn a_sink_that_emits_telemetry_neither_recurses_nor_deadlocks() {
    let inner = MemorySink::new();
    let logged = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&logged);
    let subscriber = tracing_subscriber::registry()
        .with(CountAppLogs(counter))
        .with(
            TelemetryLayer::new(Chatty {
                inner: inner.clone(),
                lock: Default::default(),
            })
            .with_telemetry_filter(),
        );
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside the sink");
        tracing_telemetry::track_event("outer", &[]);
        tracing_telemetry::track_event("outer.2", &[]);
    });
    assert_eq!(
        inner.names(),
        ["outer", "outer.2"],
        "the sink's own telemetry is ignored"
    );
    // Log lines from outside the sink reach other layers. Lines a sink logs *while
    // recording* may not: tracing-subscriber's per-layer filter state is not
    // re-entrant (tokio-rs/tracing#2704), which the `Sink` docs warn about.
    assert!(logged.load(Ordering::SeqCst) >= 1);
}
