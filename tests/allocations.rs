//! Heap allocations per track call, counted by a global allocator: none while telemetry
//! is off, and none when it is on into the no-op sink with up to 8 tags, in both forms.
//! (A count, not a timing, so it is a test rather than a bench.)

#![cfg(feature = "subscriber")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing_telemetry::{NoopSink, Record, Sink, TelemetryFilter, TelemetryLayer};

struct Counting;

thread_local! {
    // `const` and no destructor: reading it never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One test at a time: `tracing` caches each callsite's interest globally, and a
/// callsite first hit on one thread while another thread creates a dispatcher can keep
/// the interest computed without that dispatcher (tracing-core registers the callsite,
/// then computes its interest from the dispatchers it saw, and the last write wins), so
/// a test's events could reach no layer. Every test here hits the same callsites.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Allocations made by this thread while running `f` 100 times, after one warm-up run
/// (registering a callsite allocates once, on its first use).
fn allocations(mut f: impl FnMut()) -> u64 {
    f();
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..100 {
        f();
    }
    ALLOCATIONS.with(Cell::get) - before
}

const TAGS8: [(&str, &str); 8] = [
    ("queue", "emails"),
    ("region", "eu-west-1"),
    ("shard", "7"),
    ("tier", "gold"),
    ("plan", "team"),
    ("source", "api"),
    ("retry", "false"),
    ("host", "worker-12"),
];

fn every_call() {
    tracing_telemetry::track_event("app.started", &[]);
    tracing_telemetry::track_event("user.signup", &TAGS8[..4]);
    tracing_telemetry::track_event("user.signup", &TAGS8);
    tracing_telemetry::track_metric("queue.depth", 42.0, &TAGS8);
    tracing_telemetry::track_timing("db.query", 12.5, &TAGS8);
    tracing_telemetry::track_event!("app.started");
    tracing_telemetry::track_event!(
        "user.upgrade",
        plan = "team",
        seats = 3,
        trial = false,
        ratio = 0.5
    );
    tracing_telemetry::track_metric!(
        "queue.depth",
        42.0,
        queue = "emails",
        region = "eu-west-1",
        shard = 7,
        tier = "gold",
        plan = "team",
        source = "api",
        retry = false,
        host = "worker-12"
    );
    tracing_telemetry::track_timing!(
        "db.query",
        12.5,
        table = "users",
        rows = 3_u64,
        cached = false,
        ratio = 0.25,
        region = "eu",
        shard = -7,
        tier = "gold",
        host = "worker-12"
    );
    let _timer = tracing_telemetry::timer("scope", &TAGS8);
}

#[test]
fn no_allocation_per_call_when_off_or_on_into_the_noop_sink() {
    let _exclusive = one_at_a_time();
    assert_eq!(allocations(every_call), 0, "off, no subscriber");

    let app_off = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(LevelFilter::INFO),
            )
            .with(TelemetryLayer::new(NoopSink).with_filter(TelemetryFilter::new(false))),
    );
    tracing::dispatcher::with_default(&app_off, || {
        assert_eq!(allocations(every_call), 0, "off, in an app's subscriber");
    });

    let on = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TelemetryLayer::new(NoopSink).with_telemetry_filter()),
    );
    tracing::dispatcher::with_default(&on, || {
        assert_eq!(allocations(every_call), 0, "on, into the no-op sink");
    });

    // The same, with a sink that only counts, to show the records really flowed.
    let arrived = Arc::new(AtomicUsize::new(0));
    let counted = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(CountingSink(Arc::clone(&arrived))).with_telemetry_filter()),
    );
    tracing::dispatcher::with_default(&counted, || {
        assert_eq!(allocations(every_call), 0, "on, into a counting sink");
    });
    assert_eq!(arrived.load(Ordering::Relaxed), 101 * CALLS);
}

#[test]
fn no_allocation_per_call_inside_spans_with_span_fields() {
    let _exclusive = one_at_a_time();
    // The spans are made once, outside the count: what each track call adds is the
    // walk out through them and the copy of their fields (shared, not cloned).
    let arrived = Arc::new(AtomicUsize::new(0));
    let sink = CountingSink(Arc::clone(&arrived));
    let layer = TelemetryLayer::new(sink).with_span_fields(["request_id", "tenant", "attempt"]);
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer.with_telemetry_filter()));
    tracing::dispatcher::with_default(&dispatch, || {
        let _request =
            tracing::info_span!("request", request_id = "r-42", tenant = "acme").entered();
        let _handler = tracing::debug_span!("handler").entered();
        let _query = tracing::trace_span!("query", attempt = 2).entered();
        assert_eq!(
            allocations(every_call),
            0,
            "three spans deep, three span fields"
        );
    });
    assert_eq!(arrived.load(Ordering::Relaxed), 101 * CALLS);
}

/// A sink that counts records and does nothing else.
struct CountingSink(Arc<AtomicUsize>);

impl Sink for CountingSink {
    fn record(&self, _record: &Record<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The track calls `every_call` makes.
const CALLS: usize = 10;

#[test]
fn the_counter_sees_allocations() {
    let _exclusive = one_at_a_time();
    // Guards the test above against a counter that never counts.
    let n = allocations(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(16))));
    assert_eq!(n, 100);
}

/// The aggregated path (what the `prometheus` exporter records into): once a thread
/// has met a series, updating it allocates nothing, in every form.
#[cfg(feature = "aggregate")]
#[test]
fn no_allocation_per_call_into_an_existing_series() {
    let _exclusive = one_at_a_time();
    use tracing_telemetry::aggregate::{Aggregator, SeriesData};

    let aggregator = Aggregator::new();
    let on = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter()),
    );
    tracing::dispatcher::with_default(&on, || {
        let gauge = || tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
        assert_eq!(allocations(gauge), 0, "gauge, function form, one tag");
        let histogram = || tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
        assert_eq!(
            allocations(histogram),
            0,
            "histogram, function form, one tag"
        );
        let counter = || tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
        assert_eq!(allocations(counter), 0, "counter, function form, one tag");
        assert_eq!(allocations(every_call), 0, "every form, up to 8 typed tags");
    });
    let counted = aggregator
        .snapshot()
        .into_iter()
        .find(|s| s.name() == "user.signup" && s.labels().len() == 1)
        .map(|s| s.data().clone());
    assert_eq!(counted, Some(SeriesData::Counter(101)));
}

#[cfg(feature = "aggregate")]
fn every_instrument() {
    const RECEIVED: tracing_telemetry::Counter =
        tracing_telemetry::Counter::new("net.received").with_unit("By");
    const OPEN: tracing_telemetry::UpDownCounter =
        tracing_telemetry::UpDownCounter::new("connections.open").with_description("open now");
    const PAYLOAD: tracing_telemetry::Histogram =
        tracing_telemetry::Histogram::new("request.payload").with_unit("By");
    tracing_telemetry::track_counter("jobs.done", 1, &TAGS8[..1]);
    tracing_telemetry::track_up_down("slots.used", 1, &TAGS8);
    tracing_telemetry::track_histogram("batch.items", 3.0, &TAGS8[..2]);
    RECEIVED.add(1024, &[("peer", "a")]);
    OPEN.add(-1, &[("pool", "db")]);
    PAYLOAD.record(512.0, &[]);
}

/// The instruments a library declares: nothing allocated off, and nothing per call
/// into an existing series on.
#[cfg(feature = "aggregate")]
#[test]
fn no_allocation_per_instrument_call_off_or_into_an_existing_series() {
    let _exclusive = one_at_a_time();
    use tracing_telemetry::aggregate::{Aggregator, SeriesData};

    assert_eq!(allocations(every_instrument), 0, "off, no subscriber");
    let app_off = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(LevelFilter::INFO),
            )
            .with(TelemetryLayer::new(NoopSink).with_filter(TelemetryFilter::new(false))),
    );
    tracing::dispatcher::with_default(&app_off, || {
        assert_eq!(
            allocations(every_instrument),
            0,
            "off, in an app's subscriber"
        );
    });

    let aggregator = Aggregator::new();
    let on = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter()),
    );
    tracing::dispatcher::with_default(&on, || {
        assert_eq!(allocations(every_instrument), 0, "on, existing series");
    });
    let received = aggregator
        .snapshot()
        .into_iter()
        .find(|s| s.name() == "net.received")
        .map(|s| s.data().clone());
    assert_eq!(received, Some(SeriesData::Sum(101.0 * 1024.0)));
}

/// The `metrics` facade through this crate's recorder: registering an existing
/// counter again and updating it allocate nothing, on or off.
#[cfg(all(feature = "aggregate", feature = "metrics"))]
#[test]
fn no_allocation_per_facade_update_of_an_existing_metric() {
    let _exclusive = one_at_a_time();
    use tracing_telemetry::aggregate::{Aggregator, SeriesData};

    let recorder = tracing_telemetry::TelemetryRecorder::new();
    let facade = || {
        metrics::counter!("requests", "route" => "/a").increment(1);
        metrics::gauge!("queue.size", "queue" => "emails").set(3.0);
        metrics::histogram!("response.size").record(300.0);
    };
    metrics::with_local_recorder(&recorder, || {
        let app_off = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(TelemetryLayer::new(NoopSink).with_filter(TelemetryFilter::new(false))),
        );
        tracing::dispatcher::with_default(&app_off, || {
            assert_eq!(allocations(facade), 0, "off");
        });
        drop(app_off);
        tracing::callsite::rebuild_interest_cache();

        let aggregator = Aggregator::new();
        let on = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter()),
        );
        tracing::dispatcher::with_default(&on, || {
            assert_eq!(allocations(facade), 0, "on, registered again at each call");
            let kept = metrics::counter!("requests", "route" => "/a");
            assert_eq!(allocations(|| kept.increment(1)), 0, "on, a kept handle");
        });
        let requests = aggregator
            .snapshot()
            .into_iter()
            .find(|s| s.name() == "requests")
            .map(|s| s.data().clone());
        assert_eq!(requests, Some(SeriesData::Sum(202.0)));

        // The subscriber `try_init` installs, with the Prometheus exporter: after its
        // first update, a kept handle updates its series without the event.
        #[cfg(feature = "prometheus")]
        {
            let aggregator = Aggregator::new();
            let config = tracing_telemetry::Config::new()
                .with_enabled(true)
                .with_destinations([tracing_telemetry::Destination::Prometheus(
                    ([127, 0, 0, 1], 0).into(),
                )])
                .with_aggregator(aggregator.clone());
            let (subscriber, guard) =
                tracing_telemetry::__private::app_subscriber(&config).unwrap();
            let app = tracing::Dispatch::new(subscriber);
            tracing::dispatcher::with_default(&app, || {
                let kept = metrics::counter!("requests", "route" => "/a");
                kept.increment(1);
                assert_eq!(
                    allocations(|| kept.increment(1)),
                    0,
                    "try_init's, a kept handle"
                );
                assert_eq!(
                    allocations(facade),
                    0,
                    "try_init's, registered again at each call"
                );
            });
            drop(guard);
            let requests = aggregator
                .snapshot()
                .into_iter()
                .find(|s| s.name() == "requests")
                .map(|s| s.data().clone());
            assert_eq!(requests, Some(SeriesData::Sum(1.0 + 101.0 + 101.0)));
        }
    });
}
