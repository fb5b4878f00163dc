//! The panicking twin: `init()` instead of `try_init()?`. A start-up error panics at
//! the line below (not inside the crate), with the same one-line message.
//!
//! ```sh
//! TELEMETRY_ENABLED=banana cargo run --example minimal_init
//! # thread 'main' panicked at examples/minimal_init.rs:11:18:
//! # invalid value "banana" for TELEMETRY_ENABLED (expected true, false, 1 or 0)
//! ```

fn main() {
    let _guard = tracing_telemetry::init();
    tracing::info!("started");
}
