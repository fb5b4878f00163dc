//! Peer comparison: one metric event (one name, one f64 value, one tag) through
//! `tracing` with telemetry off and on, next to the `metrics` crate,
//! `tracing-opentelemetry`'s `MetricsLayer` and `tracing-subscriber`'s JSON formatter;
//! and one event as an OpenTelemetry log record: `tracing-telemetry`'s OTLP exporter next to
//! `opentelemetry-appender-tracing`'s bridge with the SDK's batch log processor.
//!
//! `cargo bench --manifest-path peers/Cargo.toml` runs every entry with criterion, then
//! prints a markdown table read from criterion's `estimates.json` files. See README.md
//! for what each entry is and how to read the table.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use std::sync::Arc;

use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use tracing::subscriber::NoSubscriber;
use tracing::{Dispatch, Level};
use tracing_opentelemetry::MetricsLayer;
use tracing_subscriber::prelude::*;

use telemetry_peers::{
    otel_log_bridge, read_median, table, Entry, LoopbackCollector, NoopExporter, NothingInstalled,
    Route, SharedBuf, TrivialLayer,
};
use tracing_telemetry::{
    Config, Destination, JsonLinesSink, MemorySink, NoopSink, OtlpConfig, OtlpExporter,
    TelemetryFilter, TelemetryLayer,
};

/// The criterion group every entry is measured in.
const GROUP: &str = "peers";

/// The rows of the table, in the order they are measured.
const ENTRIES: &[Entry] = &[
    Entry {
        key: "1a",
        id: "1a_off_tracing_nothing_installed",
        label: "off: disabled `tracing` callsite, no subscriber (max level OFF)",
        baseline: None,
        pair: None,
    },
    Entry {
        key: "1b",
        id: "1b_off_tracing_filter_off",
        label: "off: disabled `tracing` callsite, registry + telemetry filter off",
        baseline: None,
        pair: None,
    },
    Entry {
        key: "1c",
        id: "1c_off_tracing_nosubscriber",
        label: "off: disabled `tracing` callsite, scoped `NoSubscriber` (no level hint: max level TRACE)",
        baseline: None,
        pair: None,
    },
    Entry {
        key: "1d",
        id: "1d_off_tracing_app_subscriber",
        label: "off: disabled `tracing` callsite (DEBUG), the subscriber `try_init` builds, telemetry off",
        baseline: None,
        pair: None,
    },
    Entry {
        key: "2a",
        id: "2a_off_telemetry_nothing_installed",
        label: "off: `tracing_telemetry::track_metric`, no subscriber (max level OFF)",
        baseline: Some("1a"),
        pair: None,
    },
    Entry {
        key: "2b",
        id: "2b_off_telemetry_filter_off",
        label: "off: `tracing_telemetry::track_metric`, registry + telemetry filter off",
        baseline: Some("1b"),
        pair: None,
    },
    Entry {
        key: "2c",
        id: "2c_off_telemetry_nosubscriber",
        label: "off: `tracing_telemetry::track_metric`, scoped `NoSubscriber` (max level TRACE)",
        baseline: Some("1c"),
        pair: None,
    },
    Entry {
        key: "2d",
        id: "2d_off_telemetry_app_subscriber",
        label: "off: `tracing_telemetry::track_metric`, the subscriber `try_init` builds, telemetry off",
        baseline: Some("1d"),
        pair: None,
    },
    Entry {
        key: "3",
        id: "3_off_metrics_no_recorder",
        label: "off: `metrics::histogram!(..).record(..)`, no recorder",
        baseline: Some("1a"),
        pair: Some("2a"),
    },
    Entry {
        key: "4",
        id: "4_floor_trivial_layer",
        label: "floor: registry + trivial field-visiting layer, plain `tracing` event",
        baseline: None,
        pair: None,
    },
    Entry {
        key: "4b",
        id: "4b_floor_trivial_layer_track_metric",
        label: "floor: registry + trivial layer, the `track_metric` event",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "5",
        id: "5_on_telemetry_noop",
        label: "on: `tracing-telemetry` into `NoopSink`",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "5b",
        id: "5b_on_telemetry_app_exporter_none",
        label: "on: `track_metric`, the subscriber `try_init` builds with `TELEMETRY_EXPORTER=none`",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "5c",
        id: "5c_on_telemetry_route_exporter_none",
        label: "on: `track_metric`, a routing layer (prototype, no per-layer filter) sending it to the same exporter as 5b",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "6",
        id: "6_on_otel_metrics_layer",
        label: "on: `tracing-opentelemetry` `MetricsLayer` + SDK meter provider",
        baseline: Some("4"),
        pair: Some("5"),
    },
    Entry {
        key: "9",
        id: "9_on_telemetry_aggregated_histogram",
        label: "on: `tracing-telemetry` aggregated, existing series, `track_metric` as a histogram (the SDK's default bounds)",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "9b",
        id: "9b_on_telemetry_aggregated_gauge",
        label: "on: `tracing-telemetry` aggregated, existing series, `track_metric` as a gauge (the default mapping)",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "9c",
        id: "9c_on_telemetry_app_prometheus_gauge",
        label: "on: `track_metric`, the subscriber `try_init` builds with `TELEMETRY_EXPORTER=prometheus` (existing series, a gauge: the default mapping)",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "9d",
        id: "9d_on_telemetry_app_prometheus_histogram",
        label: "on: `track_metric`, the subscriber `try_init` builds with the Prometheus exporter, `queue.depth` as a histogram (the SDK's default bounds)",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "9e",
        id: "9e_on_telemetry_route_prometheus_histogram",
        label: "on: `track_metric`, a routing layer (prototype) sending it to the same exporter as 9d",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "6b",
        id: "6b_on_otel_metrics_layer_again",
        label: "on: `MetricsLayer` again, next to the aggregated entries",
        baseline: Some("4"),
        pair: Some("9d"),
    },
    Entry {
        key: "3b",
        id: "3b_on_metrics_prometheus_recorder",
        label: "on: `metrics::histogram!(..).record(..)` into `metrics-exporter-prometheus`'s recorder (histogram, the same bounds)",
        baseline: Some("4"),
        pair: Some("9"),
    },
    Entry {
        key: "7",
        id: "7_on_fmt_json_io_sink",
        label: "on: `fmt::layer().json()` to `io::sink()`",
        baseline: Some("4"),
        pair: Some("8"),
    },
    Entry {
        key: "8",
        id: "8_on_telemetry_json_io_sink",
        label: "on: `tracing-telemetry` `JsonLinesSink` to `io::sink()`",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "10",
        id: "10_on_telemetry_otlp_exporter",
        label: "on: `tracing-telemetry` OTLP exporter, `track_event!` (queued; its thread posts to a loopback collector)",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "11",
        id: "11_on_otel_log_bridge_batch",
        label: "on: `opentelemetry-appender-tracing` bridge + SDK batch log processor (exporter sends nothing)",
        baseline: Some("4"),
        pair: Some("10"),
    },
    Entry {
        key: "12",
        id: "12_on_telemetry_json_exporter_dev_null",
        label: "on: `tracing-telemetry` JSON-lines exporter to `/dev/null`, `track_event!` (queued; its thread writes)",
        baseline: Some("4"),
        pair: Some("10"),
    },
    Entry {
        key: "13a",
        id: "13a_off_metrics_counter_no_recorder",
        label: "off: `metrics::counter!(\"requests\", \"route\" => \"/a\").increment(1)`, no recorder",
        baseline: Some("1a"),
        pair: None,
    },
    Entry {
        key: "13b",
        id: "13b_off_metrics_counter_telemetry_recorder",
        label: "off: the same `counter!`, `tracing-telemetry`'s recorder, the subscriber `try_init` builds, telemetry off",
        baseline: Some("13a"),
        pair: None,
    },
    Entry {
        key: "14",
        id: "14_on_metrics_counter_prometheus_recorder",
        label: "on: the same `counter!` (an existing counter) into `metrics-exporter-prometheus`'s recorder (`build_recorder`, no listener)",
        baseline: Some("4"),
        pair: Some("14b"),
    },
    Entry {
        key: "14b",
        id: "14b_on_metrics_counter_telemetry_recorder",
        label: "on: the same `counter!` into `tracing-telemetry`'s recorder, the subscriber `try_init` builds with the Prometheus exporter",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "15",
        id: "15_on_metrics_counter_handle_prometheus_recorder",
        label: "on: `increment(1)` of a `metrics::Counter` handle kept by the caller, `metrics-exporter-prometheus`'s recorder",
        baseline: Some("4"),
        pair: Some("15b"),
    },
    Entry {
        key: "15b",
        id: "15b_on_metrics_counter_handle_telemetry_recorder",
        label: "on: `increment(1)` of a kept handle, `tracing-telemetry`'s recorder and `try_init`'s subscriber with the Prometheus exporter",
        baseline: Some("4"),
        pair: None,
    },
    Entry {
        key: "15c",
        id: "15c_on_metrics_counter_handle_telemetry_try_init",
        label: "on: the same kept handle, `try_init`'s subscriber with the Prometheus exporter as the global default, no scoped dispatcher (measured last: it stays installed)",
        baseline: Some("4"),
        pair: Some("15"),
    },
];

// The event, in each form. Each is one callsite (a function, not repeated macro
// invocations), so the pre-flight checks exercise exactly the callsite that is timed.

/// The same content as a `telemetry` event with typed properties: what the OTLP
/// exporter turns into a log record (name, `value` as a double, `queue` as a string).
#[inline]
fn telemetry_event(value: f64) {
    tracing_telemetry::track_event!("queue.depth", value = value, queue = "emails");
}

/// The plain `tracing` event: name, f64 value, one tag. INFO, the level an app's
/// `fmt` output keeps by default (`fmt()` filters at INFO).
#[inline]
fn plain_event(value: f64) {
    tracing::event!(target: "telemetry", Level::INFO, name = "queue.depth", value = value, queue = "emails");
}

/// A callsite the app's log level disables: DEBUG, below `try_init`'s default INFO.
#[inline]
fn debug_event(value: f64) {
    tracing::event!(target: "app", Level::DEBUG, name = "queue.depth", value = value, queue = "emails");
}

/// The same event for `MetricsLayer`: the metric name is in the field name.
/// (`event!` with an explicit level: `info!(target: .., histogram.x = ..)` is a macro
/// parsing ambiguity.)
#[inline]
fn otel_event(value: f64) {
    tracing::event!(target: "telemetry", Level::INFO, histogram.queue_depth = value, queue = "emails");
}

/// The `tracing-telemetry` call.
#[inline]
fn telemetry_metric(value: f64) {
    tracing_telemetry::track_metric("queue.depth", value, &[("queue", "emails")]);
}

/// The `metrics` crate's call.
#[inline]
fn metrics_histogram(value: f64) {
    metrics::histogram!("queue.depth", "queue" => "emails").record(value);
}

/// The `metrics` crate's counter: registered at each call, as the macro does, into a
/// counter that exists already.
#[inline]
fn metrics_counter(_value: f64) {
    metrics::counter!("requests", "route" => "/a").increment(1);
}

/// The OpenTelemetry SDK's default histogram bounds, so that entries 6, 9 and 3b
/// fill the same buckets.
const SDK_BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// `tracing-telemetry` into an aggregator (what the Prometheus exporter records into).
fn telemetry_aggregated(aggregator: &tracing_telemetry::aggregate::Aggregator) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter()),
    )
}

/// What `try_init_with(config)` installs (the crate's own function, not a copy), and
/// the guard that keeps its export running.
fn app_subscriber(config: &Config) -> (Dispatch, tracing_telemetry::Guard) {
    let (subscriber, guard) =
        tracing_telemetry::__private::app_subscriber(config).expect("the app's subscriber");
    (Dispatch::new(subscriber), guard)
}

/// `try_init`'s subscriber with telemetry off (`TELEMETRY_ENABLED` unset).
fn app_off() -> (Dispatch, tracing_telemetry::Guard) {
    app_subscriber(&Config::new())
}

/// `try_init`'s subscriber with `TELEMETRY_ENABLED=true TELEMETRY_EXPORTER=none`.
fn app_exporter_none() -> (Dispatch, tracing_telemetry::Guard) {
    app_subscriber(&Config::new().with_enabled(true).with_destinations([]))
}

/// `try_init`'s subscriber with the Prometheus exporter on a free loopback port,
/// aggregating with `aggregator`.
fn app_prometheus(
    aggregator: &tracing_telemetry::aggregate::Aggregator,
) -> (Dispatch, tracing_telemetry::Guard) {
    app_subscriber(
        &Config::new()
            .with_enabled(true)
            .with_destinations([Destination::Prometheus(([127, 0, 0, 1], 0).into())])
            .with_aggregator(aggregator.clone()),
    )
}

/// The prototype routing layer (`Route`) in place of `try_init`'s two filtered layers:
/// fmt at INFO for the app's logs, and a telemetry layer, unfiltered, into the exporter
/// that `config` builds (the same sink as `app_subscriber(config)`).
fn routed(config: &Config) -> (Dispatch, tracing_telemetry::Guard) {
    let (filtered, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(config)
        .expect("the exporter");
    let sink = Arc::clone(filtered.inner().sink());
    let route = Route {
        logs: tracing_subscriber::fmt::layer(),
        telemetry: TelemetryLayer::new(sink),
    };
    (
        Dispatch::new(tracing_subscriber::registry().with(route)),
        guard,
    )
}

/// A process with no subscriber: nothing enabled, max level OFF.
fn nothing_installed() -> Dispatch {
    Dispatch::new(NothingInstalled)
}

/// `tracing`'s `NoSubscriber`: nothing enabled, but no max-level hint (read as TRACE).
fn no_subscriber() -> Dispatch {
    Dispatch::new(NoSubscriber::new())
}

fn telemetry_filter_off() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(NoopSink).with_filter(TelemetryFilter::new(false))),
    )
}

fn trivial_layer() -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(TrivialLayer))
}

fn telemetry_noop() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry().with(TelemetryLayer::new(NoopSink).with_telemetry_filter()),
    )
}

/// An SDK meter provider that never exports during the run (the interval is an hour;
/// the exporter sends nothing anywhere) and the layer on top of it.
fn otel_metrics_layer() -> (Dispatch, SdkMeterProvider, NoopExporter) {
    let exporter = NoopExporter::new("queue_depth");
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(MetricsLayer::new(provider.clone())));
    (dispatch, provider, exporter)
}

fn fmt_json<W>(writer: W) -> Dispatch
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer)),
    )
}

fn telemetry_json<W: std::io::Write + Send + 'static>(writer: W) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(JsonLinesSink::new(writer)).with_telemetry_filter()),
    )
}

/// `tracing-telemetry`'s OTLP exporter posting to `collector`. The queue bound is raised to
/// 2 GiB so that the timed loop measures records being queued, not dropped (the
/// figures printed after the run say whether any were).
fn telemetry_otlp(collector: &LoopbackCollector) -> (Dispatch, Arc<OtlpExporter>) {
    let endpoint = collector.endpoint();
    let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .expect("a valid endpoint")
        .with_queue_bytes(2 << 30);
    let exporter = Arc::new(OtlpExporter::start(config).expect("start the OTLP exporter"));
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter()),
    );
    (dispatch, exporter)
}

/// `tracing-telemetry`'s JSON-lines exporter (the queue and writer thread behind `try_init`)
/// appending to `/dev/null`. The loop emits faster than one thread encodes lines, so
/// the queue grows; its bound is raised (as the OTLP exporter's is above) far enough
/// that the timed loop measures what the emitting thread pays while the writer keeps
/// up (it only copies the record), neither a wait for room nor the encoding the
/// emitting threads take on while the writer is behind (1/32 of the bound queued,
/// here 2 GiB: more than the loop emits; what it holds is what it uses).
fn telemetry_json_exporter() -> (Dispatch, tracing_telemetry::Guard) {
    let config = Config::new()
        .with_enabled(true)
        .with_file("/dev/null")
        .with_buffer_bytes(64 << 30);
    let (layer, guard) = tracing_telemetry::layer_with(&config).expect("the JSON-lines exporter");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

/// Checks, before anything is timed, that every "on" entry does its work (a layer that
/// silently ignored the event would look fast) and that the "off" ones record nothing.
fn preflight() {
    // Every key and id once, and every pair and baseline naming an entry: criterion
    // refuses a repeated id only after everything before it has been measured.
    for (i, e) in ENTRIES.iter().enumerate() {
        assert!(
            ENTRIES[..i].iter().all(|o| o.key != e.key && o.id != e.id),
            "entry {:?} ({}) appears twice in ENTRIES",
            e.key,
            e.id
        );
        for other in e.baseline.iter().chain(e.pair.iter()) {
            assert!(
                ENTRIES.iter().any(|o| o.key == *other),
                "entry {:?} refers to {other:?}, which is not an entry",
                e.key
            );
        }
    }

    // First, while no other dispatcher is alive to raise the maximum level:
    // `try_init`'s subscriber: off, the app's level is the maximum, so the track call
    // and the DEBUG event stop at the level check; on, the record is aggregated.
    let (dispatch, guard) = app_off();
    tracing::dispatcher::with_default(&dispatch, || {
        assert_eq!(
            tracing::level_filters::LevelFilter::current(),
            tracing::level_filters::LevelFilter::INFO,
            "the level hint of try_init's subscriber, telemetry off"
        );
        assert!(!tracing::enabled!(target: tracing_telemetry::TARGET, Level::TRACE));
        assert!(!tracing::enabled!(target: "app", Level::DEBUG));
    });
    drop((dispatch, guard));
    tracing::callsite::rebuild_interest_cache();
    let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    let (dispatch, guard) = app_prometheus(&aggregator);
    tracing::dispatcher::with_default(&dispatch, || telemetry_metric(42.0));
    assert_eq!(
        aggregator.snapshot().len(),
        1,
        "try_init's subscriber aggregated"
    );
    drop((dispatch, guard));
    tracing::callsite::rebuild_interest_cache();
    let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    let (dispatch, guard) = routed(
        &Config::new()
            .with_enabled(true)
            .with_destinations([Destination::Prometheus(([127, 0, 0, 1], 0).into())])
            .with_aggregator(aggregator.clone()),
    );
    tracing::dispatcher::with_default(&dispatch, || telemetry_metric(42.0));
    assert_eq!(
        aggregator.snapshot().len(),
        1,
        "the routing prototype aggregated"
    );
    drop((dispatch, guard));
    tracing::callsite::rebuild_interest_cache();

    let buf = SharedBuf::default();
    let writer = buf.clone();
    tracing::dispatcher::with_default(&fmt_json(move || writer.clone()), || plain_event(42.0));
    let out = buf.contents();
    assert!(
        out.lines().count() == 1 && out.contains("\"queue.depth\"") && out.contains("\"emails\""),
        "fmt().json() wrote {out:?}"
    );

    let buf = SharedBuf::default();
    tracing::dispatcher::with_default(&telemetry_json(buf.clone()), || telemetry_metric(42.0));
    let out = buf.contents();
    assert!(
        out.lines().count() == 1
            && out.contains("\"name\":\"queue.depth\"")
            && out.contains("\"queue\":\"emails\""),
        "telemetry JSON wrote {out:?}"
    );

    let on = MemorySink::new();
    let off = MemorySink::new();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(on.clone()).with_telemetry_filter())
            .with(TelemetryLayer::new(off.clone()).with_filter(TelemetryFilter::new(false))),
    );
    tracing::dispatcher::with_default(&dispatch, || telemetry_metric(42.0));
    assert_eq!((on.len(), off.len()), (1, 0), "telemetry filter on/off");

    let collector = LoopbackCollector::start().expect("a loopback collector");
    let (dispatch, exporter) = telemetry_otlp(&collector);
    tracing::dispatcher::with_default(&dispatch, || telemetry_event(42.0));
    exporter.shutdown();
    assert_eq!(
        exporter.stats().exported(),
        1,
        "the OTLP exporter delivered"
    );
    assert!(collector.requests() >= 1, "the collector was posted to");

    let (dispatch, provider, exporter) = otel_log_bridge();
    tracing::dispatcher::with_default(&dispatch, || plain_event(42.0));
    provider.force_flush().expect("flush the logger provider");
    assert_eq!(exporter.count(), 1, "the SDK exported the log record");
    provider.shutdown().expect("shut the logger provider down");
}

/// Measures `f` with `dispatch` as the scoped default, then drops the dispatcher and
/// rebuilds `tracing`'s interest cache, so no entry sees the previous one's cached
/// interest or max level. Returns whether it ran: a filter on the command line may
/// leave an entry out, and then the checks after it have nothing to check.
fn measure(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    dispatch: Dispatch,
    f: impl Fn(f64),
) -> bool {
    let mut ran = false;
    {
        let _default = tracing::dispatcher::set_default(&dispatch);
        group.bench_function(id, |b| {
            ran = true;
            b.iter(|| f(black_box(42.0)))
        });
    }
    drop(dispatch);
    tracing::callsite::rebuild_interest_cache();
    ran
}

fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    let id = |key: &str| {
        ENTRIES
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.id)
            .expect("entry")
    };

    measure(&mut group, id("1a"), nothing_installed(), plain_event);
    measure(&mut group, id("1b"), telemetry_filter_off(), plain_event);
    measure(&mut group, id("1c"), no_subscriber(), plain_event);
    measure(&mut group, id("2a"), nothing_installed(), telemetry_metric);
    measure(
        &mut group,
        id("2b"),
        telemetry_filter_off(),
        telemetry_metric,
    );
    measure(&mut group, id("2c"), no_subscriber(), telemetry_metric);
    let (dispatch, guard) = app_off();
    measure(&mut group, id("1d"), dispatch, debug_event);
    drop(guard);
    let (dispatch, guard) = app_off();
    measure(&mut group, id("2d"), dispatch, telemetry_metric);
    drop(guard);
    measure(&mut group, id("3"), nothing_installed(), metrics_histogram);
    measure(&mut group, id("4"), trivial_layer(), plain_event);
    measure(&mut group, id("4b"), trivial_layer(), telemetry_metric);
    measure(&mut group, id("5"), telemetry_noop(), telemetry_metric);
    let (dispatch, guard) = app_exporter_none();
    measure(&mut group, id("5b"), dispatch, telemetry_metric);
    drop(guard);
    let (dispatch, guard) = routed(&Config::new().with_enabled(true).with_destinations([]));
    measure(&mut group, id("5c"), dispatch, telemetry_metric);
    drop(guard);

    let (dispatch, provider, exporter) = otel_metrics_layer();
    measure(&mut group, id("6"), dispatch, otel_event);
    provider.force_flush().expect("flush the meter provider");
    let recorded = exporter.histogram_count();
    provider.shutdown().expect("shut the meter provider down");
    eprintln!("MetricsLayer: the SDK histogram holds {recorded} values");

    let histogram = tracing_telemetry::aggregate::Aggregator::builder()
        .histogram("queue.depth", SDK_BOUNDS)
        .build();
    measure(
        &mut group,
        id("9"),
        telemetry_aggregated(&histogram),
        telemetry_metric,
    );
    let gauge = tracing_telemetry::aggregate::Aggregator::new();
    measure(
        &mut group,
        id("9b"),
        telemetry_aggregated(&gauge),
        telemetry_metric,
    );
    let (dispatch, guard) = app_prometheus(&tracing_telemetry::aggregate::Aggregator::new());
    measure(&mut group, id("9c"), dispatch, telemetry_metric);
    drop(guard);
    let app_histogram = tracing_telemetry::aggregate::Aggregator::builder()
        .histogram("queue.depth", SDK_BOUNDS)
        .build();
    let (dispatch, guard) = app_prometheus(&app_histogram);
    measure(&mut group, id("9d"), dispatch, telemetry_metric);
    drop(guard);
    let routed_histogram = tracing_telemetry::aggregate::Aggregator::builder()
        .histogram("queue.depth", SDK_BOUNDS)
        .build();
    let (dispatch, guard) = routed(
        &Config::new()
            .with_enabled(true)
            .with_destinations([Destination::Prometheus(([127, 0, 0, 1], 0).into())])
            .with_aggregator(routed_histogram.clone()),
    );
    measure(&mut group, id("9e"), dispatch, telemetry_metric);
    drop(guard);
    let (dispatch, provider, _exporter) = otel_metrics_layer();
    measure(&mut group, id("6b"), dispatch, otel_event);
    let _ = provider.shutdown();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&SDK_BOUNDS)
        .expect("bounds")
        .build_recorder();
    let ran = metrics::with_local_recorder(&recorder, || {
        measure(&mut group, id("3b"), nothing_installed(), metrics_histogram)
    });
    let rendered = recorder.handle().render();
    assert!(
        !ran || rendered.contains("queue_depth_count{queue=\"emails\"}"),
        "the metrics recorder holds no histogram: {rendered}"
    );
    let counted = |snapshot: Vec<tracing_telemetry::aggregate::SeriesSnapshot>| match snapshot
        .first()
        .map(|s| s.data().clone())
    {
        Some(tracing_telemetry::aggregate::SeriesData::Histogram { count, .. }) => count,
        _ => 0,
    };
    eprintln!(
        "telemetry aggregated: the histogram holds {} values",
        counted(histogram.snapshot())
    );

    // The `metrics` facade's counter: no recorder, then this crate's recorder with
    // telemetry off, then the same existing counter on, into each recorder.
    measure(&mut group, id("13a"), nothing_installed(), metrics_counter);
    let telemetry_recorder = tracing_telemetry::TelemetryRecorder::new();
    let (dispatch, guard) = app_off();
    metrics::with_local_recorder(&telemetry_recorder, || {
        measure(&mut group, id("13b"), dispatch, metrics_counter)
    });
    drop(guard);
    let prometheus_recorder =
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let ran = metrics::with_local_recorder(&prometheus_recorder, || {
        metrics_counter(0.0);
        measure(&mut group, id("14"), nothing_installed(), metrics_counter)
    });
    let rendered = prometheus_recorder.handle().render();
    assert!(
        !ran || rendered.contains("requests{route=\"/a\"}"),
        "the metrics recorder holds no counter: {rendered}"
    );
    let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    let (dispatch, guard) = app_prometheus(&aggregator);
    let ran = metrics::with_local_recorder(&telemetry_recorder, || {
        tracing::dispatcher::with_default(&dispatch, || metrics_counter(0.0));
        measure(&mut group, id("14b"), dispatch, metrics_counter)
    });
    drop(guard);
    assert!(
        !ran || counter_total(&aggregator) > 1.0,
        "the telemetry recorder fed no counter"
    );
    let handle = metrics::with_local_recorder(
        &prometheus_recorder,
        || metrics::counter!("requests", "route" => "/a"),
    );
    measure(&mut group, id("15"), nothing_installed(), |_| {
        handle.increment(1)
    });
    let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    let (dispatch, guard) = app_prometheus(&aggregator);
    // Registered while on (the dispatcher exists, so the global level is TRACE).
    let handle = metrics::with_local_recorder(
        &telemetry_recorder,
        || metrics::counter!("requests", "route" => "/a"),
    );
    // Once before timing, as for 14b: under `-- --test` the entry runs one iteration,
    // and the check below wants more than one increment.
    tracing::dispatcher::with_default(&dispatch, || handle.increment(1));
    let ran = measure(&mut group, id("15b"), dispatch, |_| handle.increment(1));
    drop(guard);
    assert!(
        !ran || counter_total(&aggregator) > 1.0,
        "the kept handle fed no counter"
    );

    measure(&mut group, id("7"), fmt_json(std::io::sink), plain_event);
    measure(
        &mut group,
        id("8"),
        telemetry_json(std::io::sink()),
        telemetry_metric,
    );

    let collector = LoopbackCollector::start().expect("a loopback collector");
    let (dispatch, exporter) = telemetry_otlp(&collector);
    measure(&mut group, id("10"), dispatch, telemetry_event);
    let started = std::time::Instant::now();
    exporter.shutdown();
    let stats = exporter.stats();
    eprintln!(
        "OTLP exporter: {} records exported in {} requests, {} dropped, {} undelivered; \
         shutdown sent the rest in {:?}",
        stats.exported(),
        collector.requests(),
        stats.dropped(),
        stats.undelivered(),
        started.elapsed()
    );

    let (dispatch, provider, exporter) = otel_log_bridge();
    measure(&mut group, id("11"), dispatch, plain_event);
    provider.force_flush().expect("flush the logger provider");
    eprintln!(
        "SDK batch log processor: {} records exported (the rest were dropped by its queue)",
        exporter.count()
    );
    provider.shutdown().expect("shut the logger provider down");

    let (dispatch, guard) = telemetry_json_exporter();
    measure(&mut group, id("12"), dispatch, telemetry_event);
    drop(guard);

    // Last, since it stays: the subscriber `try_init` builds as the global default,
    // as `try_init` installs it (which refuses here: the scoped dispatchers above
    // count as set), so that no scoped dispatcher is in the way.
    let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    let (dispatch, guard) = app_prometheus(&aggregator);
    tracing::dispatcher::set_global_default(dispatch).expect("the global default");
    let handle = metrics::with_local_recorder(
        &telemetry_recorder,
        || metrics::counter!("requests", "route" => "/a"),
    );
    handle.increment(1);
    let mut ran = false;
    group.bench_function(id("15c"), |b| {
        ran = true;
        b.iter(|| handle.increment(black_box(1)))
    });
    drop(guard);
    assert!(
        !ran || counter_total(&aggregator) > 1.0,
        "the global app's kept handle fed no counter"
    );
    group.finish();
}

/// The total of the facade's `requests` counter in `aggregator`.
fn counter_total(aggregator: &tracing_telemetry::aggregate::Aggregator) -> f64 {
    aggregator
        .snapshot()
        .iter()
        .filter(|s| s.name() == "requests")
        .map(|s| match s.data() {
            tracing_telemetry::aggregate::SeriesData::Sum(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// Where criterion writes its reports: `$CRITERION_HOME`, else `peers/target/criterion`.
/// Set explicitly so that this binary reads back exactly what criterion wrote.
fn output_directory() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion"))
}

fn main() {
    let started = SystemTime::now();
    let dir = output_directory();
    preflight();

    // Command-line flags (`--warm-up-time`, `--measurement-time`, a filter, ...) override
    // these defaults.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .without_plots()
        .output_directory(&dir)
        .configure_from_args();
    run(&mut c);
    c.final_summary();

    let medians: Vec<_> = ENTRIES
        .iter()
        .map(|e| (*e, read_median(&dir, GROUP, e.id, started)))
        .collect();
    if medians.iter().all(|(_, m)| m.is_none()) {
        println!("\nNo estimates were written by this run (test or list mode?): no table.");
        return;
    }
    println!("\n{}", table(&medians));
}
