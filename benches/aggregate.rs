//! What aggregating a record into an existing series costs, next to baselines in the
//! same group (see docs/PERFORMANCE.md).
//!
//! - `aggregate/*`: one thread, function form, one tag, a series that already exists.
//!   Baselines: the trivial field-visiting layer (the floor for any layer) and
//!   `tracing-telemetry` into `NoopSink` (the layer without a sink).
//! - `aggregate_threads/*`: 1 and 2 threads (and 4, 8, 16 where the machine has the
//!   cores) updating the *same* series at once;
//!   time per round (each thread makes one call per round), so flat means perfect
//!   scaling. Baselines: `NoopSink`, and a sink that adds to one shared atomic
//!   counter (what one shared cache line costs).
//!
//! `cargo bench --features aggregate --bench aggregate`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::Level;
use tracing_subscriber::prelude::*;

mod support;

use support::TrivialLayer;
use tracing_telemetry::aggregate::Aggregator;
use tracing_telemetry::{NoopSink, Record, Sink, TelemetryLayer};

fn on<S: Sink>(sink: S) -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::registry().with(TelemetryLayer::new(sink).with_telemetry_filter()),
    )
}

fn gauge() {
    tracing_telemetry::track_metric(
        black_box("queue.depth"),
        black_box(42.0),
        &[("queue", "emails")],
    );
}

fn histogram() {
    tracing_telemetry::track_timing(
        black_box("db.query"),
        black_box(12.5),
        &[("table", "users")],
    );
}

fn counter() {
    tracing_telemetry::track_event(black_box("user.signup"), &[("plan", "pro")]);
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let trivial = tracing::Dispatch::new(tracing_subscriber::registry().with(TrivialLayer));
    tracing::dispatcher::with_default(&trivial, || {
        group.bench_function("baseline_trivial_layer", |b| {
            b.iter(|| tracing::event!(target: "telemetry", Level::TRACE, telemetry.kind = "metric", telemetry.name = black_box("queue.depth"), telemetry.value = black_box(42.0), queue = "emails"))
        });
    });
    tracing::dispatcher::with_default(&on(NoopSink), || {
        group.bench_function("noop_sink_gauge", |b| b.iter(gauge));
        group.bench_function("noop_sink_histogram", |b| b.iter(histogram));
    });
    tracing::dispatcher::with_default(&on(Aggregator::new()), || {
        group.bench_function("existing_series_gauge", |b| b.iter(gauge));
        group.bench_function("existing_series_histogram", |b| b.iter(histogram));
        group.bench_function("existing_series_counter", |b| b.iter(counter));
    });
    group.finish();
}

/// Every thread adds to one shared atomic: the contention the store avoids.
struct OneSharedCounter(AtomicU64);

impl Sink for OneSharedCounter {
    fn record(&self, _record: &Record<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wall time for `threads` threads to make `iters` calls each, started together.
fn parallel(threads: usize, iters: u64, dispatch: &tracing::Dispatch, call: fn()) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    call(); // the first call from a thread meets the series
                    barrier.wait();
                    for _ in 0..iters {
                        call();
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

fn same_series_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate_threads");
    // Two threads on a shared two-core machine are noisy: measure longer.
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    let noop = on(NoopSink);
    let shared = on(OneSharedCounter(AtomicU64::new(0)));
    let aggregated = on(Aggregator::new());
    // 1 and 2 threads everywhere, and up to 16 where there are cores for them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for n in [1, 2, 4, 8, 16]
        .into_iter()
        .filter(|&n| n <= 2 || n <= cores)
    {
        group.bench_function(format!("noop_sink_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &noop, histogram))
        });
        group.bench_function(format!("one_shared_atomic_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &shared, histogram))
        });
        group.bench_function(format!("same_series_histogram_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &aggregated, histogram))
        });
        group.bench_function(format!("same_series_counter_{n}_threads"), |b| {
            b.iter_custom(|iters| parallel(n, iters, &aggregated, counter))
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, same_series_threads);
criterion_main!(benches);
