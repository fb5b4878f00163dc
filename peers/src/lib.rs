//! Helpers for the peer comparison benchmark (`benches/peers.rs`): the trivial layer
//! (the floor for any layer), an in-memory writer and a no-op OpenTelemetry exporter
//! for the pre-flight checks, and the table printed from criterion's estimates.
//!
//! Run everything with `cargo bench --manifest-path peers/Cargo.toml` (see README.md).

use std::fmt::{self, Write as _};
use std::hint::black_box;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// What a process with no subscriber installed has: nothing is enabled, and the
/// global max level is OFF, so a disabled callsite stops at its level check.
///
/// `tracing`'s own `NoSubscriber` gives no max-level hint, which `tracing` reads as
/// "may enable TRACE": set as a scoped default it raises the max level to TRACE, and
/// callsites then go on to their (cached, "never") interest check. The benchmark
/// measures both.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingInstalled;

impl Subscriber for NothingInstalled {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::never()
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(0xDEAD)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A layer that visits every field of every event and keeps nothing: the floor for
/// any layer that reads an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrivialLayer;

struct TrivialVisitor;

impl Visit for TrivialVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        black_box((field, value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        black_box((field, value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        black_box((field, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        black_box((field, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        black_box((field, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        black_box((field, value));
    }
}

impl<S: Subscriber> Layer<S> for TrivialLayer {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        event.record(&mut TrivialVisitor);
    }
}

/// A cloneable in-memory writer, for checking what a layer wrote (pre-flight only;
/// the measured entries write to `std::io::sink()`).
#[derive(Debug, Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// Everything written so far, as text.
    pub fn contents(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl io::Write for SharedBuf {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An OpenTelemetry exporter that sends nothing anywhere. It remembers, from the last
/// export, how many values the histogram `name` held, so the benchmark can check that
/// `MetricsLayer` really recorded the events it was timed on.
#[derive(Debug, Clone)]
pub struct NoopExporter {
    histogram: &'static str,
    count: Arc<AtomicU64>,
}

impl NoopExporter {
    /// An exporter watching the histogram `histogram`.
    pub fn new(histogram: &'static str) -> Self {
        NoopExporter {
            histogram,
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The histogram's value count (summed over its attribute sets) in the last export.
    pub fn histogram_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl PushMetricExporter for NoopExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let mut count = 0;
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() != self.histogram {
                    continue;
                }
                if let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() {
                    count += histogram.data_points().map(|p| p.count()).sum::<u64>();
                }
            }
        }
        self.count.store(count, Ordering::Relaxed);
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// One row of the table: a criterion benchmark id in the group, and what to compare
/// it with.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Short label in the table's first column ("1a", "5", ...).
    pub key: &'static str,
    /// The criterion benchmark id (also its directory name).
    pub id: &'static str,
    /// What it measures.
    pub label: &'static str,
    /// The key of the baseline this entry is divided by, if any.
    pub baseline: Option<&'static str>,
    /// The key of the `tracing-telemetry` entry this peer is divided by, if any.
    pub pair: Option<&'static str>,
}

/// Criterion's estimate of the median time per iteration, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Median {
    /// The point estimate.
    pub ns: f64,
    /// The lower bound of its confidence interval (95% by default).
    pub lower: f64,
    /// The upper bound.
    pub upper: f64,
}

/// Reads `<dir>/<group>/<id>/new/estimates.json`, if criterion wrote it at or after
/// `since` (older files are from an earlier run, e.g. one with a filter).
pub fn read_median(dir: &Path, group: &str, id: &str, since: SystemTime) -> Option<Median> {
    let path = dir.join(group).join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let median = &json["median"];
    Some(Median {
        ns: median["point_estimate"].as_f64()?,
        lower: median["confidence_interval"]["lower_bound"].as_f64()?,
        upper: median["confidence_interval"]["upper_bound"].as_f64()?,
    })
}

fn ns(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 1000.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn ratio(
    entry: &Entry,
    other: Option<&'static str>,
    medians: &[(Entry, Option<Median>)],
) -> String {
    let Some(other) = other else {
        return String::new();
    };
    let this = medians.iter().find(|(e, _)| e.key == entry.key);
    let that = medians.iter().find(|(e, _)| e.key == other);
    match (this, that) {
        (Some((_, Some(a))), Some((_, Some(b)))) if b.ns > 0.0 => {
            format!("{:.2}× ({other})", a.ns / b.ns)
        }
        _ => format!("n/a ({other})"),
    }
}

/// The markdown table: entry, median ns per call with its confidence interval, the
/// ratio to the entry's baseline and the ratio of a peer to its `tracing-telemetry` pair.
pub fn table(medians: &[(Entry, Option<Median>)]) -> String {
    let mut out = String::new();
    out.push_str(
        "| # | entry | median ns/call | 95% CI of median (ns) | vs baseline | peer vs telemetry |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|\n");
    for (entry, median) in medians {
        let (value, ci) = match median {
            Some(m) => (ns(m.ns), format!("{} – {}", ns(m.lower), ns(m.upper))),
            None => ("not run".to_owned(), String::new()),
        };
        let baseline = match entry.baseline {
            None => "baseline".to_owned(),
            other => ratio(entry, other, medians),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            entry.key,
            entry.label,
            value,
            ci,
            baseline,
            ratio(entry, entry.pair, medians),
        );
    }
    out
}

/// A log exporter that sends nothing anywhere and counts the records it is given: the
/// SDK's batch log processor exports into it.
#[derive(Debug, Clone, Default)]
pub struct CountingLogExporter {
    count: Arc<AtomicU64>,
}

impl CountingLogExporter {
    /// Records exported so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl opentelemetry_sdk::logs::LogExporter for CountingLogExporter {
    async fn export(&self, batch: opentelemetry_sdk::logs::LogBatch<'_>) -> OTelSdkResult {
        self.count
            .fetch_add(batch.iter().count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// An OTLP/HTTP collector stand-in on a loopback port: reads each request and answers
/// `200 OK`, so that `tracing-telemetry`'s OTLP exporter does its whole job (encode, post,
/// read the answer) while the emitting thread is timed. Serves until the process ends.
#[derive(Debug)]
pub struct LoopbackCollector {
    port: u16,
    requests: Arc<AtomicU64>,
}

impl LoopbackCollector {
    /// Starts it on a free 127.0.0.1 port.
    pub fn start() -> io::Result<Self> {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        counter.fetch_add(1, Ordering::Relaxed);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if reader.get_mut().write_all(ok).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(LoopbackCollector { port, requests })
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// `opentelemetry-appender-tracing`'s bridge from `tracing` events to SDK log records,
/// with the SDK's batch log processor (its own thread) exporting into an exporter that
/// counts and sends nothing: entry 11, and `examples/otlp_emit.rs`.
pub fn otel_log_bridge() -> (
    tracing::Dispatch,
    opentelemetry_sdk::logs::SdkLoggerProvider,
    CountingLogExporter,
) {
    use tracing_subscriber::prelude::*;
    let exporter = CountingLogExporter::default();
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_batch_exporter(exporter.clone())
        .build();
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider),
        ));
    (dispatch, provider, exporter)
}

/// A prototype of the alternative to per-layer filters, measured beside what
/// `try_init` builds: one layer that routes each event by its callsite, track calls to
/// `telemetry` and the rest to `logs` at INFO and above. Every callsite's interest is
/// "always" or "never", never "sometimes", so no filter is asked per event.
///
/// Only what the benchmark needs: the level is fixed at INFO (no `RUST_LOG`), and every
/// span goes to both layers.
pub struct Route<L, T> {
    /// The app's logs.
    pub logs: L,
    /// The telemetry layer, with no filter of its own.
    pub telemetry: T,
}

/// The crate's test for a track call: an event with target `telemetry` and a
/// `telemetry.tags` field.
fn is_track(meta: &Metadata<'_>) -> bool {
    !meta.is_span()
        && meta.target() == tracing_telemetry::TARGET
        && meta
            .fields()
            .field(tracing_telemetry::fields::TAGS)
            .is_some()
}

impl<S, L, T> Layer<S> for Route<L, T>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
    T: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.logs.on_register_dispatch(subscriber);
        self.telemetry.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.logs.on_layer(subscriber);
        self.telemetry.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_track(meta) || *meta.level() <= tracing::Level::INFO {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _cx: Context<'_, S>) -> bool {
        is_track(meta) || *meta.level() <= tracing::Level::INFO
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        if is_track(event.metadata()) {
            self.telemetry.on_event(event, cx);
        } else {
            self.logs.on_event(event, cx);
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        self.logs.on_new_span(attrs, id, cx.clone());
        self.telemetry.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        self.logs.on_record(id, values, cx.clone());
        self.telemetry.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
        self.logs.on_enter(id, cx.clone());
        self.telemetry.on_enter(id, cx);
    }

    fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
        self.logs.on_exit(id, cx.clone());
        self.telemetry.on_exit(id, cx);
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        self.logs.on_close(id.clone(), cx.clone());
        self.telemetry.on_close(id, cx);
    }
}
