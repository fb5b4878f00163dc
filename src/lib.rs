//! Opt-in product and ops telemetry on [`tracing`], free when off.
//!
//! Libraries emit freely; apps install the subscriber once; ops turn it on with an
//! environment variable. While telemetry is off, a track call costs what a disabled
//! `tracing` callsite costs: one cached check.
//!
//! # Libraries: track
//!
//! ```
//! tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
//! tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
//! tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]); // milliseconds
//! tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3, trial = false); // typed
//! ```
//!
//! A library that counts by N, keeps a total that goes up and down, or records sizes
//! declares the instrument where it emits, with a unit and a description if it likes;
//! the app configures nothing:
//!
//! ```
//! use tracing_telemetry::Counter;
//!
//! const RECEIVED: Counter = Counter::new("net.received").with_unit("By").with_description("bytes read");
//! RECEIVED.add(1024, &[("peer", "a")]); // Prometheus: net_received_bytes_total
//! tracing_telemetry::track_up_down("connections.open", 1, &[]);
//! tracing_telemetry::track_histogram("batch.items", 37.0, &[]);
//! ```
//!
//! Every call is a plain `tracing` event with target `telemetry`, level TRACE and the
//! fields `telemetry.tags`, `telemetry.kind`, `telemetry.name`, `telemetry.value` and
//! `telemetry.duration_ms` (see the [fields guide](guide::fields)). TRACE keeps them
//! out of an app's logs at its usual levels.
//!
//! A library depends on the crate without its default features, and so builds only
//! `tracing` and `tracing-core`; its tests add the default `subscriber` feature for
//! the in-memory sink, `MemorySink`:
//!
//! ```toml
//! [dependencies]
//! tracing-telemetry = { version = "1", default-features = false }
//!
//! [dev-dependencies]
//! tracing-telemetry = "1"
//! ```
//!
//! A library may write `use tracing_telemetry as telemetry;` for shorter calls.
//!
//! # Cargo features
//!
//! | feature | what it brings |
//! |---|---|
//! | `subscriber` (default) | the app side: `try_init`, `Config`, the layer, the sinks, the JSON-lines exporters |
//! | `aggregate` | the `aggregate` module: in-process aggregation into series, what the network exporters serve and push (implies `subscriber`) |
//! | `prometheus` | the `prometheus` exporter (implies `aggregate`) |
//! | `otlp` | the `otlp` exporter (implies `aggregate`) |
//! | `metrics` | `try_init` installs a `metrics::Recorder`, `TelemetryRecorder` (when none is installed): `counter!`, `gauge!`, `histogram!` and `describe_*!` feed the same instruments, switch and exporters as the track calls (implies `subscriber`) |
//! | `tracing-opentelemetry` | records made inside a span of an app that uses `tracing-opentelemetry` carry its trace id and span id (`Record::trace_id`, `Record::span_id`); the layer then sees every span (implies `subscriber`) |
//!
//! # What is here, by audience
//!
//! * **Libraries:** [`track_event()`], [`track_metric()`], [`track_timing()`], their macro
//!   twins, [`timer`] and [`timed`] with [`TimingGuard`]; the instruments
//!   [`track_counter()`], [`track_up_down()`], [`track_histogram()`], [`Counter`],
//!   [`UpDownCounter`], [`Gauge`], [`Histogram`] and [`describe()`]; the conventions in
//!   [`fields`], [`Kind`], [`Instrument`] and [`TARGET`]. Nothing else is needed to emit, and nothing
//!   else is built without the `subscriber` feature.
//! * **Apps:** `try_init` and `init`, or `layer` to add to their own
//!   subscriber; `Config` with its `Destination`s and `Exporter` names, and the
//!   `Resource` that names the service;
//!   `Guard`, `TelemetryHandle` (the runtime switch) and `ExportStats`;
//!   `Error` and `ConfigError`.
//! * **Sink authors and tests:** the `Sink` trait and the `Record` it receives
//!   (`Tag`, `TagValue`, `Tags`); `TelemetryLayer` behind its
//!   `TelemetryFilter`; the sinks shipped: `MemorySink` (a test helper: its
//!   `capture` returns the `OwnedRecord`s a closure made), `JsonLinesSink`, `NoopSink`
//!   and `ExporterSink`.
//! * **Everyone:** the [operations guide](guide::operations) and the
//!   [fields guide](guide::fields).
#![cfg_attr(
    feature = "subscriber",
    doc = r#"
# Apps: install

```no_run
fn main() -> Result<(), tracing_telemetry::Error> {
    let _guard = tracing_telemetry::try_init()?; // reads TELEMETRY_*, installs logs + telemetry
    tracing::info!("started");
    Ok(())
} // the guard flushes every record here
```

An app with its own subscriber adds the layer instead:

```
use tracing_subscriber::prelude::*;

let (telemetry, _guard) = tracing_telemetry::layer()?;
let subscriber = tracing_subscriber::registry()
    .with(tracing_subscriber::fmt::layer())
    .with(telemetry);
# let _ = subscriber;
# Ok::<(), tracing_telemetry::Error>(())
```

# Ops: turn it on

| variable | values | default |
|---|---|---|
| `TELEMETRY_ENABLED` | `true`/`false` in any letter case, `1`/`0`; surrounding ASCII whitespace ignored; empty = unset | `false` |
| `TELEMETRY_EXPORTER` | one or more of `none`, `stdout`, `stderr`, `file`, `prometheus`, `otlp`, comma-separated; each at most once; `none` only alone | `stderr` |
| `TELEMETRY_FILE` | path of the JSON-lines file; required when the exporters include `file` | none |
| `TELEMETRY_PROMETHEUS_ADDR` | `host:port` serving `GET /metrics` when the exporters include `prometheus` | `127.0.0.1:9464` |
| `TELEMETRY_SPAN_FIELDS` | comma-separated span field names copied onto each record as tags, from the nearest enclosing span | none |
| `TELEMETRY_SPOOL_DIR` | directory where the `otlp` exporter keeps what the collector has not yet accepted | none |
| `OTEL_SERVICE_NAME` | the service name on every record (`"service"` in JSON lines) | `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable>` |
| `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...`, percent-decoded: `service.version` and other resource attributes | none |

# Tests: assert your telemetry

`MemorySink::capture` runs a closure and returns the records it made; tag values
compare with plain literals:

```
use tracing_telemetry::MemorySink;

mod my_library {
    pub fn sign_up(plan: &str) {
        tracing_telemetry::track_event!("user.signup", plan = plan, seats = 3, trial = false);
    }
}

let records = MemorySink::capture(|| my_library::sign_up("pro"));
assert_eq!(records[0].name(), "user.signup");
assert_eq!(records[0].tag("plan").unwrap(), "pro");
assert_eq!(records[0].tag("seats").unwrap(), 3);
assert_eq!(records[0].tag("trial").unwrap(), false);
```

# Guides

The [operations guide](guide::operations) (variables, exporters, shipping, costs,
security, troubleshooting) and the [fields guide](guide::fields) (the event fields and
JSON keys, a public contract) are part of these pages.
"#
)]
// docs.rs builds with `--cfg docsrs` (Cargo.toml): every item behind a cargo feature
// then says which on its page.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

#[cfg(feature = "aggregate")]
pub mod aggregate;
#[cfg(feature = "subscriber")]
mod capture;
#[cfg(feature = "subscriber")]
mod config;
#[cfg(feature = "subscriber")]
mod destinations;
#[cfg(feature = "subscriber")]
mod encode;
#[cfg(feature = "subscriber")]
mod error;
#[cfg(feature = "subscriber")]
mod export;
pub mod fields;
pub mod guide;
#[cfg(feature = "subscriber")]
mod install;
#[cfg(feature = "subscriber")]
mod layer;
#[cfg(feature = "metrics")]
mod metrics_facade;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "subscriber")]
mod pipeline;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "subscriber")]
mod record;
#[cfg(feature = "subscriber")]
mod report;
#[cfg(feature = "subscriber")]
mod sink;
mod track;

// For libraries: the track calls and the conventions they follow. This is all there
// is without the `subscriber` feature.
pub use fields::{Instrument, Kind, TARGET};
#[cfg(feature = "metrics")]
pub use metrics_facade::TelemetryRecorder;
pub use track::describe::describe;
pub use track::instrument::{
    track_counter, track_histogram, track_up_down, Counter, Gauge, Histogram, UpDownCounter,
};
pub use track::{timed, timer, track_event, track_metric, track_timing, TimingGuard};

// For apps: configuration, installation, the guard and the runtime switch.
#[cfg(feature = "subscriber")]
pub use config::{
    Config, ConfigError, Destination, Exporter, Resource, DEFAULT_BUFFER_BYTES,
    DEFAULT_PROMETHEUS_ADDR,
};
#[cfg(feature = "subscriber")]
pub use error::Error;
#[cfg(feature = "subscriber")]
pub use export::{DestinationStats, ExportStats, ExporterSink};
#[cfg(feature = "subscriber")]
pub use install::{init, layer, layer_with, try_init, try_init_with, Guard};
#[cfg(feature = "subscriber")]
pub use layer::{FilteredTelemetryLayer, TelemetryFilter, TelemetryHandle, TelemetryLayer};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpCompression, OtlpConfig, OtlpExporter, OtlpStats};

// For sink authors and tests: what a sink receives, and the sinks the crate ships.
#[cfg(feature = "subscriber")]
pub use record::{OwnedTagValue, Record, Tag, TagValue, Tags};
#[cfg(feature = "subscriber")]
pub use sink::{JsonLinesSink, MemorySink, NoopSink, OwnedRecord, Sink};

/// Not public API: what the macros expand to, and the subscriber `try_init` installs
/// (for the benchmarks).
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "subscriber")]
    pub use crate::install::app_subscriber;
    pub use crate::track::{MacroCall, EVENT_CALL, METRIC_CALL, TIMING_CALL};
    pub use tracing;
}

// The README's Rust snippets, compiled as doctests (the Prometheus one needs its feature).
#[cfg(all(doctest, feature = "prometheus"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
