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
//! | `capture.rs` | on the emitting thread: the borrowed record copied into one flat buffer |
//! | `mapping.rs` | on the export thread: captured events to OTLP log records |
//! | `metrics.rs` | on the export thread: the aggregated series to OTLP metrics |
//! | `transport.rs` | one OTLP/HTTP request with `ureq`, and what its answer means |
//! | `exporter.rs` | the hand-off, the bounded queue, the export thread, batching and retries |
//!
//! # Why these dependencies
//!
//! The wire format comes from the official generated types, `opentelemetry-proto`
//! (features `gen-tonic-messages`, `logs`, `metrics`: the `prost` messages only, no
//! tonic, no gRPC), encoded with `prost`. No protocol code is written by hand.
//!
//! The OpenTelemetry SDK (`opentelemetry_sdk`'s logger provider with its batch
//! processor, fed through `opentelemetry-appender-tracing`) was the alternative. It
//! was not chosen because of what it costs on the emitting thread: it builds an
//! SDK `LogRecord` (owned attribute values, an `Arc`'d resource and scope lookup)
//! and hands it through a channel on every event, and its exporter is async (a
//! blocking HTTP client is only reached through its `reqwest-blocking-client`, which
//! brings an async runtime underneath). Here the emitting thread only copies the
//! record's borrowed strings into one buffer (one allocation per event); the
//! conversion to OTLP types, the protobuf encoding and compression happen on the
//! export thread. `peers/` measures both on the same event (docs/PERFORMANCE.md).
//!
//! HTTP is `ureq` 3: blocking, small, keeps connections alive, TLS through `rustls`
//! (so `https` endpoints work without system OpenSSL). Compression is `flate2`;
//! `percent-encoding` decodes `OTEL_RESOURCE_ATTRIBUTES` and header values.
//!
//! What the feature adds to an app's dependency graph (`cargo tree -e normal
//! --features otlp`, against the default build): `opentelemetry-proto`, `prost`
//! (+ `prost-derive`, `bytes`), `opentelemetry` and `opentelemetry_sdk` (pulled in
//! by `opentelemetry-proto`'s `logs`/`metrics` features for its own conversions; this
//! crate does not use them, and they start no thread or runtime: the only
//! async-related crates are `futures-core`/`futures-util`/`futures-executor`/
//! `futures-channel`, which are traits and a `block_on` helper, not a runtime),
//! `ureq` (+ `ureq-proto`, `http`, `httparse`, `base64`, `utf8-zero`, `log`),
//! `rustls` (+ `ring`, `rustls-webpki`, `rustls-pki-types`, `webpki-roots`,
//! `untrusted`, `subtle`, `zeroize`), `flate2` (+ `miniz_oxide`, `crc32fast`,
//! `adler2`) and `percent-encoding`. No tokio, no async runtime: a plain `fn main`
//! works, and the exporter runs on its own thread.

mod capture;
mod config;
mod exporter;
mod mapping;
mod metrics;
mod transport;

pub use config::{OtlpCompression, OtlpConfig};
pub use exporter::{OtlpExporter, OtlpStats};
