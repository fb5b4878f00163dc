//! Records that carry the trace they were made in: an app that traces with
//! `tracing-opentelemetry` and exports telemetry over OTLP. Each log record the
//! collector receives has the trace id and span id of the span around the call.
//!
//! ```text
//! TELEMETRY_ENABLED=true TELEMETRY_EXPORTER=otlp \
//!     cargo run --features otlp,tracing-opentelemetry --example traced
//! ```
//!
//! It prints the span's ids on stdout (`trace_id=... span_id=...`), so they can be
//! compared with what the collector received.

use std::process::ExitCode;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    // The app's tracing: spans get OpenTelemetry ids (no span exporter is needed here).
    let provider = SdkTracerProvider::builder().build();
    let (telemetry, guard) = match tracing_telemetry::layer() {
        Ok(layer) => layer,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("traced")))
        .with(telemetry)
        .init();

    tracing_telemetry::track_event("app.started", &[]); // outside any span: no ids
    let request = tracing::info_span!("checkout");
    {
        let _in = request.enter();
        tracing_telemetry::track_event("checkout.completed", &[("plan", "pro")]);
    }
    let cx = request.context().span().span_context().clone();
    println!(
        "trace_id={} span_id={}",
        hex(&cx.trace_id().to_bytes()),
        hex(&cx.span_id().to_bytes())
    );
    drop(guard); // sends what is queued
    ExitCode::SUCCESS
}
