//! The smallest app, as the README shows it: `try_init` at the top of a `main` that
//! returns the crate's error.
//!
//! ```sh
//! cargo run --example minimal                                  # telemetry off: logs "started"
//! TELEMETRY_EXPORTER=prom cargo run --example minimal          # prints one line and exits 1:
//! # Error: invalid value "prom" for TELEMETRY_EXPORTER (expected none, or a comma-separated list of ...)
//! ```

fn main() -> Result<(), tracing_telemetry::Error> {
    let _guard = tracing_telemetry::try_init()?; // validates TELEMETRY_*, installs logs + telemetry
    tracing::info!("started"); // the app's logs: fmt, RUST_LOG honoured, INFO default
    Ok(())
} // dropping the guard flushes every record
