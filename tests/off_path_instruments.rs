//! The off path of the instruments a library declares, as an app has it: one global
//! subscriber (what `try_init` builds, with telemetry off). Its own process, so no
//! other dispatcher shares the callsite cache.

#![cfg(feature = "subscriber")]

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use tracing_telemetry::{
    Counter, Gauge, Histogram, MemorySink, TelemetryFilter, TelemetryLayer, UpDownCounter,
};

const RECEIVED: Counter = Counter::new("net.received").with_unit("By");
const OPEN: UpDownCounter = UpDownCounter::new("connections.open");
const TEMPERATURE: Gauge = Gauge::new("disk.temperature").with_unit("Cel");
const PAYLOAD: Histogram = Histogram::new("request.payload").with_unit("By");

/// The `metrics` facade's calls, through this crate's recorder.
fn facade() {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("requests", "route" => "/a").increment(3);
        metrics::gauge!("queue.size").set(5.0);
        metrics::histogram!("response.size").record(300.0);
    }
}

fn emit_every_instrument() {
    tracing_telemetry::track_counter("c", 1, &[]);
    tracing_telemetry::track_up_down("u", -1, &[]);
    tracing_telemetry::track_histogram("h", 1.0, &[]);
    RECEIVED.add(1024, &[("peer", "a")]);
    OPEN.add(1, &[]);
    TEMPERATURE.set(41.5, &[]);
    PAYLOAD.record(512.0, &[]);
}

#[test]
fn off_the_instruments_stop_at_the_level_check_and_the_toggle_brings_them_back() {
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
    #[cfg(feature = "metrics")]
    metrics::set_global_recorder(tracing_telemetry::TelemetryRecorder::new()).unwrap();
    let facade_calls = if cfg!(feature = "metrics") { 3 } else { 0 };

    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert!(!tracing::enabled!(target: tracing_telemetry::TARGET, Level::TRACE));
    emit_every_instrument();
    facade();
    assert!(sink.is_empty());

    handle.enable();
    emit_every_instrument();
    assert_eq!(
        sink.names(),
        [
            "c",
            "u",
            "h",
            "net.received",
            "connections.open",
            "disk.temperature",
            "request.payload"
        ]
    );
    // The facade's macros register at each call: the toggle applies at once.
    facade();
    assert_eq!(sink.len(), 7 + facade_calls);

    handle.disable();
    emit_every_instrument();
    facade();
    assert_eq!(sink.len(), 7 + facade_calls);
}
