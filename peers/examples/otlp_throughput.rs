//! The OTLP exporter's own throughput: records per second its thread turns into OTLP
//! log records, encodes and posts (to a loopback collector that answers 200), with
//! the emitting thread idle.
//!
//! ```text
//! cargo run --release --manifest-path peers/Cargo.toml --example otlp_throughput [RECORDS]
//! ```
//!
//! It emits RECORDS events (default 1,000,000) as fast as it can into a queue large
//! enough for all of them, then shuts down, which returns once all are sent; the
//! export thread is busy throughout, so records / total time is its throughput. Once
//! without compression, once with gzip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry_peers::LoopbackCollector;
use tracing_subscriber::prelude::*;
use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};

fn main() {
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let collector = LoopbackCollector::start().expect("a loopback collector");
    for compression in ["none", "gzip"] {
        let endpoint = collector.endpoint();
        let config = OtlpConfig::from_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
        ])
        .expect("valid configuration")
        .with_queue_bytes(1 << 30)
        .with_timeout(Duration::from_secs(600));
        let exporter = Arc::new(OtlpExporter::start(config).expect("start the exporter"));
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter()),
        );
        let requests_before = collector.requests();
        let started = Instant::now();
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..records {
                tracing_telemetry::track_event!("queue.depth", value = i as f64, queue = "emails");
            }
        });
        let emitted = started.elapsed();
        let started = Instant::now();
        exporter.shutdown();
        let sent = started.elapsed();
        let stats = exporter.stats();
        assert_eq!(stats.exported(), records, "{stats:?}");
        // The export thread starts on the first full buffer and is busy until the
        // end: the whole span is its time.
        let total = emitted + sent;
        println!(
            "compression {compression}: {records} records queued in {emitted:.2?}, all sent after {total:.2?} \
             in {} requests: {:.0} records/s encoded and sent",
            collector.requests() - requests_before,
            records as f64 / total.as_secs_f64(),
        );
    }
}
