//! Sends an app's telemetry to an OpenTelemetry collector over OTLP/HTTP, with the
//! exporter built in code next to the app's own subscriber.
//!
//! ```text
//! # a collector (or `otelsink` from PyPI's oteltest) listening on localhost:4318
//! cargo run --features otlp --example otlp
//! OTEL_SERVICE_NAME=checkout OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 \
//!     cargo run --features otlp --example otlp
//! ```
//!
//! Events become log records; the metric, timing and event counts are pushed as OTLP
//! metrics at exit. Prints what was delivered on stderr when it ends. `--burst N`
//! emits N more events (`job.done`) before exiting, as fast as it can.

use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::prelude::*;
use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let burst: u64 = match (args.next().as_deref(), args.next()) {
        (None, _) => 0,
        (Some("--burst"), Some(n)) if n.parse::<u64>().is_ok() => n.parse().unwrap_or(0),
        _ => {
            eprintln!("usage: otlp [--burst N]");
            return ExitCode::FAILURE;
        }
    };
    let config = match OtlpConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("otlp example: {err}");
            return ExitCode::FAILURE;
        }
    };
    let exporter = match OtlpExporter::start(config) {
        Ok(exporter) => Arc::new(exporter),
        Err(err) => {
            eprintln!("otlp example: {err}");
            return ExitCode::FAILURE;
        }
    };
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
    if let Err(err) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("otlp example: {err}");
        return ExitCode::FAILURE;
    }

    tracing::info!("started");
    tracing_telemetry::track_event("app.started", &[]);
    tracing_telemetry::track_event("user.signup", &[("plan", "pro"), ("region", "eu-west-1")]);
    tracing_telemetry::track_event!(
        "user.upgrade",
        plan = "team",
        seats = 3,
        trial = false,
        discount = 0.15
    );
    tracing_telemetry::track_metric("queue.depth", 3.0, &[("queue", "emails")]);
    tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
    tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
    tracing_telemetry::track_timing("db.query", 250.0, &[("table", "users")]);
    for n in 0..burst {
        tracing_telemetry::track_event!("job.done", n = n);
    }

    // Delivers what is queued and pushes the metrics once more, waiting at most
    // OTEL_EXPORTER_OTLP_TIMEOUT.
    exporter.shutdown();
    let stats = exporter.stats();
    eprintln!(
        "otlp example: {} exported, {} dropped, {} rejected, {} undelivered; {} metric pushes, {} failed",
        stats.exported(),
        stats.dropped(),
        stats.rejected(),
        stats.undelivered(),
        stats.metric_pushes(),
        stats.metric_push_failures()
    );
    ExitCode::SUCCESS
}
