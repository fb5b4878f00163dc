//! Opt-in product and ops telemetry on [`tracing`], free when off.
//!
//! Libraries emit freely; apps install the subscriber once; ops turn it on with an
//! environment variable. While telemetry is off, a track call costs what a disabled
//! `tracing` callsite costs: one cached check.
//!
//! # Libraries: track
//!
//! ```
//! telemetry::track_event("user.signup", &[("plan", "pro")]);
//! telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
//! telemetry::track_timing("db.query", 12.5, &[("table", "users")]); // milliseconds
//! telemetry::track_event!("user.upgrade", plan = "team", seats = 3, trial = false); // typed
//! ```
//!
//! Every call is a plain `tracing` event with target `telemetry`, level TRACE and the
//! fields `telemetry.kind`, `telemetry.name`, `telemetry.value` and
//! `telemetry.duration_ms` (see `docs/FIELDS.md`). TRACE keeps them out of an app's
//! logs at its usual levels.
//!
//! # Apps: install
//!
//! ```no_run
//! fn main() -> Result<(), telemetry::Error> {
//!     let _guard = telemetry::try_init()?; // reads TELEMETRY_*, installs logs + telemetry
//!     tracing::info!("started");
//!     Ok(())
//! } // the guard flushes every record here
//! ```
//!
//! An app with its own subscriber adds the layer instead:
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! let (telemetry, _guard) = telemetry::layer()?;
//! let subscriber = tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(telemetry);
//! # let _ = subscriber;
//! # Ok::<(), telemetry::Error>(())
//! ```
//!
//! # Ops: turn it on
//!
//! | variable | values | default |
//! |---|---|---|
//! | `TELEMETRY_ENABLED` | `true`/`false` in any letter case, `1`/`0`; surrounding whitespace ignored; empty = unset | `false` |
//! | `TELEMETRY_EXPORTER` | `none`, `stdout`, `stderr`, `file` | `stderr` |
//! | `TELEMETRY_FILE` | path of the JSON-lines file; required when the exporter is `file` | none |
//!
//! # Tests: assert your telemetry
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use telemetry::{MemorySink, TelemetryLayer};
//!
//! let sink = MemorySink::new();
//! let subscriber = tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
//! tracing::subscriber::with_default(subscriber, || telemetry::track_event("user.signup", &[("plan", "pro")]));
//! assert_eq!(sink.records()[0].tag("plan").unwrap(), "pro");
//! ```
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

#[cfg(feature = "aggregate")]
pub mod aggregate;
mod config;
mod error;
mod exporter;
pub mod fields;
mod init;
mod layer;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod record;
mod report;
mod sink;
mod track;

pub use config::{Config, ConfigError, Exporter};
pub use error::Error;
pub use exporter::{ExportStats, ExporterSink};
pub use fields::{Kind, TARGET};
pub use init::{init, layer, layer_with, try_init, try_init_with, Guard, TelemetryHandle};
pub use layer::{FilteredTelemetryLayer, TelemetryFilter, TelemetryLayer};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpCompression, OtlpConfig, OtlpExporter, OtlpStats};
pub use record::{OwnedTagValue, Record, Tag, TagValue, Tags};
pub use sink::{JsonLinesSink, MemorySink, NoopSink, OwnedRecord, Sink};
pub use track::{timed, timer, track_event, track_metric, track_timing, TimingGuard};

/// Not public API: what the macros expand to.
#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
