//! What a track call costs, next to its baseline in the same group.
//!
//! Groups (see docs/PERFORMANCE.md):
//! - `off_no_subscriber/*`: telemetry off, nothing installed. Baseline: a disabled
//!   plain `tracing` callsite.
//! - `off_app/*`: telemetry off in an app whose subscriber is what `try_init` builds
//!   (fmt at INFO plus the telemetry layer, switched off). Same baseline.
//! - `on_noop/*`, `on_memory/*`, `on_json_sink/*`, `on_json_file/*`, `on_exporter_file/*`:
//!   telemetry on into each sink. Baseline: a registry with a trivial field-visiting
//!   layer, the floor for any layer (`baseline_trivial_layer`, one plain event). In
//!   `on_noop`, `floor_<call>` is that floor for each call's own event.
//! - `threads/*`: throughput of one and two threads emitting at once.
//! - `span_fields/*`: a call made 1 and 3 spans deep, with `TELEMETRY_SPAN_FIELDS`
//!   unset (`off_*`, the baseline) and set to two fields that the outermost span has
//!   (`on_*`: the walk goes all the way out), into the no-op sink.
//!
//! `cargo bench --bench track`; `cargo bench --bench track -- off_app` for one group.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, BufWriter};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use tracing::Level;
use tracing_subscriber::prelude::*;

mod support;

use support::TrivialLayer;
use tracing_telemetry::{Config, JsonLinesSink, MemorySink, NoopSink, Sink, TelemetryLayer};

const TAGS4: [(&str, &str); 4] = [
    ("queue", "emails"),
    ("region", "eu"),
    ("shard", "7"),
    ("tier", "gold"),
];

/// The six track calls measured in every group, plus the plain `tracing` baseline
/// (`baseline_event`: the same event shape, emitted directly).
fn track_calls(group: &mut BenchmarkGroup<'_, WallTime>) {
    track_calls_named(group, "");
}

/// `track_calls` with every id prefixed, so a group can hold the same calls twice.
fn track_calls_named(group: &mut BenchmarkGroup<'_, WallTime>, prefix: &str) {
    let id = |name: &str| format!("{prefix}{name}");
    group.bench_function(id("baseline_tracing_event"), |b| {
        b.iter(|| {
            tracing::event!(target: "telemetry", Level::TRACE, telemetry.kind = "metric", telemetry.name = black_box("queue.depth"), telemetry.value = black_box(42.0), queue = "emails")
        })
    });
    group.bench_function(id("event_function_0_tags"), |b| {
        b.iter(|| tracing_telemetry::track_event("app.started", &[]))
    });
    group.bench_function(id("event_function_4_tags"), |b| {
        b.iter(|| tracing_telemetry::track_event("user.signup", &TAGS4))
    });
    group.bench_function(id("event_macro_0_tags"), |b| {
        b.iter(|| tracing_telemetry::track_event!(black_box("app.started")))
    });
    group.bench_function(id("event_macro_4_tags"), |b| {
        b.iter(|| {
            tracing_telemetry::track_event!(
                black_box("user.upgrade"),
                plan = "team",
                seats = black_box(3),
                trial = false,
                ratio = 0.5
            )
        })
    });
    group.bench_function(id("metric_function_4_tags"), |b| {
        b.iter(|| tracing_telemetry::track_metric("queue.depth", 42.0, &TAGS4))
    });
    group.bench_function(id("metric_macro_4_tags"), |b| {
        b.iter(|| {
            tracing_telemetry::track_metric!(
                black_box("queue.depth"),
                black_box(42.0),
                queue = "emails",
                region = "eu",
                shard = 7,
                warm = true
            )
        })
    });
    group.bench_function(id("timing_function_4_tags"), |b| {
        b.iter(|| tracing_telemetry::track_timing("db.query", 12.5, &TAGS4))
    });
    group.bench_function(id("timing_macro_4_tags"), |b| {
        b.iter(|| {
            tracing_telemetry::track_timing!(
                black_box("db.query"),
                black_box(12.5),
                table = "users",
                rows = 3,
                cached = false,
                region = "eu"
            )
        })
    });
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    group
}

fn off_no_subscriber(c: &mut Criterion) {
    let mut group = configure(c, "off_no_subscriber");
    group.bench_function("baseline_disabled_tracing", |b| {
        b.iter(|| tracing::event!(target: "app", Level::TRACE, value = black_box(42.0)))
    });
    track_calls(&mut group);
    group.finish();
}

fn off_app(c: &mut Criterion) {
    // What `try_init` builds with telemetry off, from the crate's own builder.
    let (subscriber, _guard) =
        tracing_telemetry::__private::app_subscriber(&Config::new()).expect("the app's subscriber");
    let _default = tracing::subscriber::set_default(subscriber);
    let mut group = configure(c, "off_app");
    group.bench_function("baseline_disabled_tracing", |b| {
        b.iter(|| tracing::event!(target: "app", Level::TRACE, value = black_box(42.0)))
    });
    track_calls(&mut group);
    group.finish();
}

fn on_group(c: &mut Criterion, name: &str, sink: impl Sink) {
    {
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(TrivialLayer));
        let mut group = configure(c, name);
        group.bench_function("baseline_trivial_layer", |b| {
            b.iter(|| {
                tracing::event!(target: "telemetry", Level::TRACE, telemetry.kind = "metric", telemetry.name = black_box("queue.depth"), telemetry.value = black_box(42.0), queue = "emails")
            })
        });
        group.finish();
    }
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(TelemetryLayer::new(sink).with_telemetry_filter()),
    );
    let mut group = configure(c, name);
    track_calls(&mut group);
    group.finish();
}

fn on_noop(c: &mut Criterion) {
    // The floor for each call: the same event, visited by a layer that keeps nothing.
    {
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(TrivialLayer));
        let mut group = configure(c, "on_noop");
        track_calls_named(&mut group, "floor_");
        group.finish();
    }
    on_group(c, "on_noop", NoopSink);
}

/// Clears the sink every 10,000 records a thread makes, so memory stays small however
/// long criterion runs (with millions of records held, page faults dominate and two
/// threads contend in the kernel, not in the sink). The count is per thread: asking the
/// sink its length would lock every thread's shard on every record.
struct BoundedMemory(MemorySink);

thread_local! {
    static RECORDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Sink for BoundedMemory {
    fn record(&self, record: &tracing_telemetry::Record<'_>) {
        if RECORDED.with(|n| n.replace(n.get() + 1)) >= 10_000 {
            RECORDED.with(|n| n.set(0));
            self.0.clear();
        }
        self.0.record(record);
    }
}

fn on_memory(c: &mut Criterion) {
    on_group(c, "on_memory", BoundedMemory(MemorySink::new()));
}

fn on_json_sink(c: &mut Criterion) {
    on_group(c, "on_json_sink", JsonLinesSink::new(io::sink()));
}

fn on_json_file(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("telemetry-bench-{}.jsonl", std::process::id()));
    let file = File::create(&path).expect("bench file");
    on_group(c, "on_json_file", JsonLinesSink::new(BufWriter::new(file)));
    let _ = std::fs::remove_file(&path);
}

fn on_exporter_file(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!(
        "telemetry-bench-exporter-{}.jsonl",
        std::process::id()
    ));
    let config = Config::new().with_enabled(true).with_file(&path);
    let (layer, guard) = tracing_telemetry::layer_with(&config).expect("exporter");
    {
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let mut group = configure(c, "on_exporter_file");
        group.bench_function("metric_function_4_tags", |b| {
            b.iter(|| {
                tracing_telemetry::track_metric(black_box("queue.depth"), black_box(42.0), &TAGS4)
            })
        });
        group.finish();
    }
    let stats = guard.stats();
    drop(guard);
    eprintln!(
        "on_exporter_file: {} written, {} dropped",
        stats.written(),
        stats.dropped()
    );
    let _ = std::fs::remove_file(&path);
}

/// Each of `threads` threads makes `iters` calls at once; reports the time per call
/// per thread, so equal times mean perfect scaling.
fn parallel(threads: usize, iters: u64, dispatch: &tracing::Dispatch) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    barrier.wait();
                    for _ in 0..iters {
                        tracing_telemetry::track_metric(
                            black_box("queue.depth"),
                            black_box(42.0),
                            &TAGS4,
                        );
                    }
                })
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("bench thread");
    }
    start.elapsed()
}

fn threads(c: &mut Criterion) {
    let mut group = configure(c, "threads");
    // Two threads on a shared two-core machine are noisy: measure longer.
    group.measurement_time(Duration::from_secs(3));
    // The baseline: how the same calls scale when a trivial layer takes them, which
    // shows what this machine's two cores allow.
    let trivial = tracing::Dispatch::new(tracing_subscriber::registry().with(TrivialLayer));
    let noop = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TelemetryLayer::new(NoopSink).with_telemetry_filter()),
    );
    let memory_sink = MemorySink::new();
    let memory = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(memory_sink.clone()).with_telemetry_filter()),
    );
    for n in [1, 2] {
        group.bench_function(format!("baseline_trivial_layer_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &trivial))
        });
        group.bench_function(format!("noop_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &noop))
        });
        // Each sample's records are cleared after its time is taken: freeing them is
        // not part of recording them.
        group.bench_function(format!("memory_{n}_threads"), |b| {
            b.iter_custom(|iters| {
                let elapsed = parallel(n, iters, &memory);
                memory_sink.clear();
                elapsed
            })
        });
    }
    group.finish();
}

/// One track call, function and macro form, made inside `depth` nested spans whose
/// outermost has `request_id` and `tenant`.
fn in_spans(group: &mut BenchmarkGroup<'_, WallTime>, prefix: &str, depth: usize) {
    let outer = tracing::info_span!("request", request_id = "r-42", tenant = "acme");
    let middle = tracing::debug_span!(parent: &outer, "handler");
    let inner = tracing::trace_span!(parent: &middle, "query");
    let spans = [outer, middle, inner];
    let _entered: Vec<_> = spans[..depth].iter().map(|s| s.enter()).collect();
    group.bench_function(format!("{prefix}_{depth}_span_function_4_tags"), |b| {
        b.iter(|| tracing_telemetry::track_event("user.signup", &TAGS4))
    });
    group.bench_function(format!("{prefix}_{depth}_span_macro_4_tags"), |b| {
        b.iter(|| {
            tracing_telemetry::track_metric!(
                black_box("queue.depth"),
                black_box(42.0),
                queue = "emails",
                region = "eu",
                shard = 7,
                tier = "gold"
            )
        })
    });
}

fn span_fields(c: &mut Criterion) {
    for (prefix, fields) in [("off", &[][..]), ("on", &["request_id", "tenant"][..])] {
        let layer = TelemetryLayer::new(NoopSink).with_span_fields(fields.iter().copied());
        let _default = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(layer.with_telemetry_filter()),
        );
        let mut group = configure(c, "span_fields");
        for depth in [1, 3] {
            in_spans(&mut group, prefix, depth);
        }
        group.finish();
    }
}

criterion_group!(
    benches,
    span_fields,
    off_no_subscriber,
    off_app,
    on_noop,
    on_memory,
    on_json_sink,
    on_json_file,
    on_exporter_file,
    threads
);
criterion_main!(benches);
