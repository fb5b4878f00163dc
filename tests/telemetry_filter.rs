//! The telemetry filter beside an app's own layers: off means no record even when
//! another layer wants every event, and an app's spans are left alone unless the
//! telemetry layer copies span fields.

#![cfg(feature = "subscriber")]

use tracing_subscriber::prelude::*;
use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};

/// An app's layer that wants every event and span, at every level (an app logging at
/// TRACE, or a layer that filters nothing).
struct EveryEvent;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EveryEvent {}

#[test]
fn off_records_nothing_while_another_layer_wants_every_event() {
    let sink = MemorySink::new();
    let filter = TelemetryFilter::new(false);
    let handle = filter.handle();
    let subscriber = tracing_subscriber::registry()
        .with(EveryEvent)
        .with(TelemetryLayer::new(sink.clone()).with_filter(filter));
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("while.off", &[]);
        tracing_telemetry::track_metric!("while.off", 1.0, queue = "emails");
        handle.enable();
        tracing_telemetry::track_event("while.on", &[]);
        handle.disable();
        tracing_telemetry::track_event("off.again", &[]);
    });
    assert_eq!(sink.names(), ["while.on"]);
    // What an app's own debug output shows of the switch.
    assert_eq!(format!("{handle:?}"), "TelemetryHandle { enabled: false }");
}

#[test]
fn an_apps_spans_are_not_enabled_for_telemetry_unless_it_copies_span_fields() {
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_filter(TelemetryFilter::new(true)));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", user = "u-1");
        assert!(
            span.is_disabled(),
            "the only layer does not read spans, so none is made"
        );
        let _entered = span.enter();
        tracing_telemetry::track_event("inside", &[]);
    });
    assert_eq!(sink.names(), ["inside"]);

    let reads_spans = tracing_subscriber::registry().with(
        TelemetryLayer::new(MemorySink::new())
            .with_filter(TelemetryFilter::new(true).with_spans(true)),
    );
    tracing::subscriber::with_default(reads_spans, || {
        assert!(!tracing::info_span!("request").is_disabled());
    });
}

/// Only the crate's own track calls are telemetry: an app's event that happens to name
/// a field `telemetry.tags` under its own target is not, so with the telemetry layer
/// alone it is not even evaluated.
#[test]
fn an_apps_event_with_a_field_named_like_the_tags_is_not_telemetry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static EVALUATED: AtomicUsize = AtomicUsize::new(0);
    fn expensive() -> &'static str {
        EVALUATED.fetch_add(1, Ordering::SeqCst);
        "x"
    }
    let sink = MemorySink::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(sink.clone()).with_filter(TelemetryFilter::new(true)));
    tracing::subscriber::with_default(subscriber, || {
        tracing::event!(target: "app", tracing::Level::INFO, telemetry.tags = expensive());
        tracing_telemetry::track_event("ours", &[]);
    });
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 0);
    assert_eq!(sink.names(), ["ours"]);
}
