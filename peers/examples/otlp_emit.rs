//! The emitting thread's side of entries 10 and 11, as a plain loop to run under a
//! profiler: the same event, through `tracing-telemetry`'s OTLP exporter (queue bound raised
//! so nothing is dropped) or through `opentelemetry-appender-tracing`'s bridge with the
//! SDK's batch log processor.
//!
//! ```text
//! cargo build --release --manifest-path peers/Cargo.toml --example otlp_emit
//! perf record -g -- peers/target/release/examples/otlp_emit telemetry 5000000
//! perf report --comm otlp_emit
//! ```
//!
//! The first argument is `telemetry` or `bridge` (or, for the floor under them,
//! `noop`: `tracing-telemetry` into `NoopSink`; `trivial`: a layer that only visits the
//! fields), the second the number of events
//! (default 5,000,000). It prints the loop's mean ns per event: use it with the
//! profile, not as a benchmark (criterion's figures are in `cargo bench`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry_peers::{otel_log_bridge, LoopbackCollector, TrivialLayer};
use tracing::{Dispatch, Level};
use tracing_subscriber::prelude::*;
use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "telemetry".to_owned());
    let events: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000_000);
    match which.as_str() {
        "telemetry" => {
            let collector = LoopbackCollector::start().expect("a loopback collector");
            let endpoint = collector.endpoint();
            let config =
                OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
                    .expect("a valid endpoint")
                    .with_queue_bytes(2 << 30)
                    .with_timeout(Duration::from_secs(1));
            let exporter = Arc::new(OtlpExporter::start(config).expect("start the exporter"));
            let dispatch = Dispatch::new(
                tracing_subscriber::registry()
                    .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter()),
            );
            let took = emit(&dispatch, events, |v| {
                tracing_telemetry::track_event!("queue.depth", value = v, queue = "emails");
            });
            exporter.shutdown();
            let stats = exporter.stats();
            println!(
                "telemetry OTLP exporter: {:.1} ns per event; {} exported, {} dropped, {} undelivered",
                took,
                stats.exported(),
                stats.dropped(),
                stats.undelivered()
            );
        }
        "bridge" => {
            let (dispatch, provider, exporter) = otel_log_bridge();
            let took = emit(&dispatch, events, |v| {
                tracing::event!(target: "telemetry", Level::INFO, name = "queue.depth", value = v, queue = "emails");
            });
            let _ = provider.shutdown();
            println!(
                "bridge + batch processor: {:.1} ns per event; {} exported",
                took,
                exporter.count()
            );
        }
        "noop" => {
            let dispatch = Dispatch::new(
                tracing_subscriber::registry()
                    .with(TelemetryLayer::new(tracing_telemetry::NoopSink).with_telemetry_filter()),
            );
            let took = emit(&dispatch, events, |v| {
                tracing_telemetry::track_event!("queue.depth", value = v, queue = "emails");
            });
            println!("telemetry into NoopSink: {took:.1} ns per event");
        }
        "trivial" => {
            let dispatch = Dispatch::new(tracing_subscriber::registry().with(TrivialLayer));
            let took = emit(&dispatch, events, |v| {
                tracing_telemetry::track_event!("queue.depth", value = v, queue = "emails");
            });
            println!("trivial field-visiting layer: {took:.1} ns per event");
        }
        other => {
            eprintln!("unknown subject {other:?}: expected telemetry, bridge, noop or trivial");
            std::process::exit(2);
        }
    }
}

/// Emits `events` events under `dispatch`; the mean ns per event.
fn emit(dispatch: &Dispatch, events: u64, f: impl Fn(f64)) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let started = Instant::now();
        for _ in 0..events {
            f(black_box(42.0));
        }
        started.elapsed().as_nanos() as f64 / events as f64
    })
}
