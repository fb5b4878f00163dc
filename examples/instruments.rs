//! A library's instruments and the `metrics` facade in one app: counters by N,
//! an up-down counter, histograms in bytes, with units and descriptions, reaching
//! whatever exporters the environment names.
//!
//! ```text
//! TELEMETRY_ENABLED=true TELEMETRY_EXPORTER=prometheus \
//!   cargo run --features metrics,prometheus --example instruments -- --idle-seconds 60
//! curl -s -H 'Accept: application/openmetrics-text' http://127.0.0.1:9464/metrics
//! ```
//!
//! It installs telemetry with `try_init`, as any app does; with the `metrics` feature
//! that also installs the recorder behind `metrics::counter!` and its siblings.
//! `--idle-seconds N` keeps it (and its endpoint) running N seconds after it has
//! emitted; it prints one line, `emitted`, on stdout when it has.

use std::process::ExitCode;
use std::time::Duration;

/// A library: it declares its instruments and configures nothing.
mod net {
    use tracing_telemetry::{Counter, Histogram, UpDownCounter};

    const RECEIVED: Counter = Counter::new("net.received")
        .with_unit("By")
        .with_description("bytes read from peers");
    const OPEN: UpDownCounter =
        UpDownCounter::new("connections.open").with_description("connections open now");
    const PAYLOAD: Histogram = Histogram::new("request.payload")
        .with_unit("By")
        .with_description("size of request bodies");

    pub fn serve() {
        OPEN.add(1, &[]);
        OPEN.add(1, &[]);
        RECEIVED.add(1024, &[("peer", "a")]);
        RECEIVED.add(1024, &[("peer", "a")]);
        PAYLOAD.record(300.0, &[]);
        PAYLOAD.record(4_000.0, &[]);
        OPEN.add(-1, &[]);
    }
}

/// A library that already uses the `metrics` facade.
mod http {
    pub fn describe() {
        metrics::describe_counter!("requests", "requests served");
        metrics::describe_histogram!(
            "response.size",
            metrics::Unit::Bytes,
            "size of response bodies"
        );
    }

    pub fn handle() {
        metrics::counter!("requests", "route" => "/a").increment(3);
        // A handle kept for a hot path.
        let retries = metrics::counter!("retries");
        for _ in 0..5 {
            retries.increment(2);
        }
        metrics::histogram!("response.size").record(300.0);
        let queue = metrics::gauge!("queue.size");
        queue.set(5.0);
        queue.increment(2.0);
        queue.decrement(1.0);
    }
}

fn main() -> ExitCode {
    let mut idle_seconds = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<u64>())) {
            ("--idle-seconds", Some(Ok(n))) => idle_seconds = n,
            _ => {
                eprintln!("instruments: expected --idle-seconds N, got {arg:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let guard = match tracing_telemetry::try_init() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("instruments: {e}");
            return ExitCode::FAILURE;
        }
    };
    http::describe();
    net::serve();
    http::handle();
    println!("emitted");
    std::thread::sleep(Duration::from_secs(idle_seconds));
    drop(guard); // pushes the metrics once more (OTLP) and stops serving
    ExitCode::SUCCESS
}
