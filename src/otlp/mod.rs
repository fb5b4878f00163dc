//! Export to an OpenTelemetry collector over OTLP/HTTP (cargo feature `otlp`).
//!
//! Each `track_event` becomes an OTLP log record; metrics, timings and event counts
//! are aggregated and pushed as OTLP metrics. See [`OtlpExporter`] for delivery
//! (batching, retries, the bounded queue, shutdown) and [`OtlpConfig`] for the
//! standard `OTEL_*` variables it reads.
//!
//! # The pieces
//!
//! | file | role |
//! |---|---|
//! | `config.rs` | the `OTEL_*` variables, read as the OpenTelemetry specification defines them |
//! | `endpoint.rs` | each signal's URL, and the form of it messages show (no credentials, no query) |
//! | `tls.rs` | the certificate variables: a private CA, a client certificate and key |
//! | `capture.rs` | on the emitting thread: the borrowed record copied into flat bytes |
//! | `lanes.rs` | each emitting thread's lane of captured records, and the queue's byte bound |
//! | `clock.rs` | timing records by the processor's counter where the kernel does, and converting |
//! | `mapping.rs` | on the export thread: captured events to OTLP log records |
//! | `metrics.rs` | on the export thread: the aggregated series to OTLP metrics |
//! | `transport.rs` | one OTLP/HTTP request with `ureq` (redirects not followed), and what its answer means |
//! | `exporter.rs` | the hand-off, the bounded queue, the export thread, batching and retries |
//! | `spool.rs` | `TELEMETRY_SPOOL_DIR`: requests kept on disk until the collector accepts them |
//!
//! # Why these dependencies
//!
//! The wire format comes from the official generated types, `opentelemetry-proto`
//! (features `gen-tonic-messages`, `logs`, `metrics`: the `prost` messages only, no
//! tonic, no gRPC), encoded with `prost`. No protocol code is written by hand.
//!
//! The OpenTelemetry SDK (`opentelemetry_sdk`'s logger provider with its batch
//! processor, fed through `opentelemetry-appender-tracing`) was the alternative. It
//! was not chosen for what it costs on the emitting thread: the bridge builds an SDK
//! log record (owned attribute values) and hands it through a channel on every event,
//! and the SDK's HTTP exporter reaches a blocking client only through `reqwest`, which
//! brings tokio underneath. Here the emitting thread only copies the record's borrowed
//! strings into a lane it alone writes (no lock, one release store, no allocation
//! while the export thread keeps spare chunks ready);
//! the conversion to OTLP types, the protobuf encoding and compression happen on the
//! export thread. `peers/` measures both on the same event, in one run: 89.9 ns per
//! event through this exporter, 300.3 ns through the bridge and the SDK's batch
//! processor (whose exporter sent nothing: 3.34x; 3.34x-3.59x in four runs), 267.9 ns
//! through this crate's JSON-lines exporter (docs/PERFORMANCE.md).
//!
//! HTTP is `ureq` 3: blocking, small, keeps connections alive, TLS through `rustls`
//! (so `https` endpoints work without system OpenSSL; `rustls` is also a direct
//! dependency, at the version ureq brings, to check certificate files at start). Compression is `flate2`;
//! `percent-encoding` decodes `OTEL_RESOURCE_ATTRIBUTES` and header values. The spool
//! (`spool.rs`) frames its entries with `crc32fast` (already there for gzip) and
//! locks its directory with `flock` through `libc` (Unix only, already in the graph
//! through `ring` and `getrandom`).
//!
//! What the feature adds to an app's dependency graph (`cargo tree -e normal
//! --features otlp`, against the default build): `opentelemetry-proto`, `prost`,
//! `prost-derive` (+ `anyhow`, `itertools`, `either`), `bytes`; `opentelemetry` and
//! `opentelemetry_sdk` (+ `futures-channel`, `futures-core`, `futures-executor`,
//! `futures-macro`, `futures-sink`, `futures-task`, `futures-util`, `slab`,
//! `thiserror`), which `opentelemetry-proto`'s `logs` and `metrics` features pull in
//! for conversions this crate does not use: they start no thread and no runtime (the
//! `futures-*` crates are traits and a `block_on` function); `ureq`, `ureq-proto`,
//! `http`, `httparse`, `base64`, `utf8-zero`; `rustls`, `rustls-webpki`,
//! `rustls-pki-types`, `webpki-roots`, `ring` (+ `getrandom`, `libc`, `untrusted`),
//! `subtle`, `zeroize`; `flate2`, `miniz_oxide`, `crc32fast`, `adler2`,
//! `simd-adler32`; `percent-encoding`. No tokio and no async runtime: a plain `fn main`
//! works, and the exporter runs on its own thread. Every one of them declares a
//! `rust-version` of 1.75 or older, within the crate's 1.81.
//!
//! # Semantic conventions
//!
//! Log records carry the call site as `code.file.path`, `code.line.number` (the
//! current semantic conventions; `opentelemetry-appender-tracing` still writes the
//! older `code.filepath` and `code.lineno`) and, for the macro form, the module path
//! as `code.namespace`. The resource carries `service.name` and
//! `telemetry.sdk.name` = `tracing-telemetry`, `telemetry.sdk.language` = `rust`,
//! `telemetry.sdk.version`; the scope is `tracing-telemetry` with the crate's version.

mod destination;
mod exporter;
mod mapping;
mod metrics;
mod spool;
mod stats;
mod transport;

pub use crate::config::otlp::{OtlpCompression, OtlpConfig};
pub use exporter::OtlpExporter;
pub use stats::OtlpStats;
