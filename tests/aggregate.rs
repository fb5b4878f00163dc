//! In-process aggregation, as an exporter reads it: the pinned mapping, per-name
//! choices, the limit on label sets, and many threads on one series.

use tracing_subscriber::prelude::*;

use tracing_telemetry::aggregate::{
    Aggregation, Aggregator, SeriesData, SeriesSnapshot, DEFAULT_BUCKETS,
};
use tracing_telemetry::TelemetryLayer;

/// Runs `f` with `aggregator` behind the telemetry layer, as an app's subscriber would.
fn with_aggregator(aggregator: &Aggregator, f: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, f);
}

fn find<'a>(
    series: &'a [SeriesSnapshot],
    name: &str,
    labels: &[(&str, &str)],
) -> &'a SeriesSnapshot {
    series
        .iter()
        .find(|s| {
            s.name() == name
                && s.labels().len() == labels.len()
                && s.labels()
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (ek, ev))| k == ek && v == ev)
        })
        .unwrap_or_else(|| panic!("no series {name} {labels:?} in {series:#?}"))
}

#[test]
fn events_count_metrics_keep_the_last_value_timings_fill_a_histogram_in_seconds() {
    let aggregator = Aggregator::new();
    with_aggregator(&aggregator, || {
        for _ in 0..3 {
            tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
        }
        tracing_telemetry::track_event("user.signup", &[("plan", "free")]);
        tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
        tracing_telemetry::track_metric("queue.depth", 7.0, &[("queue", "emails")]);
        tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
        tracing_telemetry::track_timing("db.query", 300.0, &[("table", "users")]);
        tracing_telemetry::track_timing("db.query", 60_000.0, &[("table", "users")]);
    });
    let series = aggregator.snapshot();
    assert_eq!(series.len(), 4, "{series:#?}");
    assert_eq!(
        find(&series, "user.signup", &[("plan", "pro")]).data(),
        &SeriesData::Counter(3)
    );
    assert_eq!(
        find(&series, "user.signup", &[("plan", "free")]).data(),
        &SeriesData::Counter(1)
    );
    assert_eq!(
        find(&series, "queue.depth", &[("queue", "emails")]).data(),
        &SeriesData::Gauge(7.0)
    );
    let timing = find(&series, "db.query", &[("table", "users")]);
    assert_eq!(timing.unit(), Some("s"));
    let SeriesData::Histogram {
        bounds,
        bucket_counts,
        count,
        sum,
    } = timing.data()
    else {
        panic!("not a histogram: {timing:?}")
    };
    assert_eq!(bounds, &DEFAULT_BUCKETS);
    assert_eq!(*count, 3);
    assert!((sum - 60.3125).abs() < 1e-9, "{sum}");
    // 0.0125 s <= 0.025, 0.3 s <= 0.5, 60 s above every bound.
    let mut expected = vec![0; 15];
    expected[2] = 1;
    expected[7] = 1;
    expected[14] = 1;
    assert_eq!(bucket_counts, &expected);
}

#[test]
fn a_value_on_a_bound_counts_in_that_bucket() {
    let aggregator = Aggregator::new();
    with_aggregator(&aggregator, || {
        tracing_telemetry::track_timing("db.query", 5.0, &[])
    });
    let SeriesData::Histogram { bucket_counts, .. } = aggregator.snapshot()[0].data().clone()
    else {
        panic!()
    };
    assert_eq!(bucket_counts[0], 1, "0.005 s is in the le=\"0.005\" bucket");
}

#[test]
fn tag_order_and_typed_values_name_one_series() {
    let aggregator = Aggregator::new();
    with_aggregator(&aggregator, || {
        tracing_telemetry::track_event("job.done", &[("a", "1"), ("b", "x")]);
        tracing_telemetry::track_event("job.done", &[("b", "x"), ("a", "1")]);
        tracing_telemetry::track_event!("job.done", a = 1, b = "x");
    });
    let series = aggregator.snapshot();
    assert_eq!(series.len(), 1, "{series:#?}");
    assert_eq!(
        series[0].labels(),
        [("a".into(), "1".into()), ("b".into(), "x".into())]
    );
    assert_eq!(series[0].data(), &SeriesData::Counter(3));
}

#[test]
fn an_app_chooses_another_aggregation_per_name() {
    let aggregator = Aggregator::builder()
        .histogram("payload.bytes", [100.0, 1000.0])
        .sum("bytes.sent")
        .view("db.query", Aggregation::Sum)
        .view("cache.hits", Aggregation::Count)
        .build();
    with_aggregator(&aggregator, || {
        tracing_telemetry::track_metric("payload.bytes", 50.0, &[]);
        tracing_telemetry::track_metric("payload.bytes", 5000.0, &[]);
        tracing_telemetry::track_metric("bytes.sent", 10.0, &[]);
        tracing_telemetry::track_metric("bytes.sent", 5.0, &[]);
        tracing_telemetry::track_metric("bytes.sent", -1.0, &[]); // a counter never goes down
        tracing_telemetry::track_timing("db.query", 250.0, &[]);
        tracing_telemetry::track_timing("db.query", 250.0, &[]);
        tracing_telemetry::track_metric("cache.hits", 1.0, &[]);
        tracing_telemetry::track_metric("cache.hits", 1.0, &[]);
    });
    let series = aggregator.snapshot();
    assert_eq!(
        find(&series, "payload.bytes", &[]).data(),
        &SeriesData::Histogram {
            bounds: vec![100.0, 1000.0],
            bucket_counts: vec![1, 0, 1],
            count: 2,
            sum: 5050.0
        }
    );
    assert_eq!(
        find(&series, "bytes.sent", &[]).data(),
        &SeriesData::Sum(15.0)
    );
    assert_eq!(find(&series, "db.query", &[]).data(), &SeriesData::Sum(0.5));
    assert_eq!(
        find(&series, "cache.hits", &[]).data(),
        &SeriesData::Counter(2)
    );
}

#[test]
fn ten_thousand_user_ids_leave_the_limit_plus_one_overflow_series() {
    let aggregator = Aggregator::new();
    with_aggregator(&aggregator, || {
        for i in 0..10_000 {
            tracing_telemetry::track_event("page.view", &[("user", &format!("user-{i}"))]);
        }
    });
    let series = aggregator.snapshot();
    assert_eq!(series.len(), 2_001);
    let overflow: Vec<_> = series.iter().filter(|s| s.is_overflow()).collect();
    assert_eq!(overflow.len(), 1);
    assert_eq!(
        overflow[0].labels(),
        [("otel_metric_overflow".into(), "true".into())]
    );
    assert_eq!(overflow[0].data(), &SeriesData::Counter(8_000));
    assert_eq!(aggregator.overflowed(), 8_000);
    // Nothing is lost: every call is counted in some series.
    let total: u64 = series
        .iter()
        .map(|s| match s.data() {
            SeriesData::Counter(n) => *n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 10_000);
    // A label set that already had a series keeps it.
    with_aggregator(&aggregator, || {
        tracing_telemetry::track_event("page.view", &[("user", "user-0")])
    });
    let series = aggregator.snapshot();
    assert_eq!(
        find(&series, "page.view", &[("user", "user-0")]).data(),
        &SeriesData::Counter(2)
    );
}

#[test]
fn the_limit_is_per_name_and_configurable() {
    let aggregator = Aggregator::builder().max_series_per_name(10).build();
    with_aggregator(&aggregator, || {
        for i in 0..50 {
            tracing_telemetry::track_metric("a", i as f64, &[("id", &i.to_string())]);
            tracing_telemetry::track_metric("b", i as f64, &[("id", &i.to_string())]);
        }
    });
    assert_eq!(aggregator.series_count(), 22);
    assert_eq!(aggregator.overflowed(), 80);
}

#[test]
fn threads_updating_one_series_lose_nothing() {
    let aggregator = Aggregator::new();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                with_aggregator(&aggregator, || {
                    for _ in 0..10_000 {
                        tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
                        tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
                    }
                })
            });
        }
        // Scrapes meanwhile see counts that only grow.
        let mut last = 0;
        for _ in 0..50 {
            for s in aggregator.snapshot() {
                if let SeriesData::Counter(n) = s.data() {
                    assert!(*n >= last);
                    last = *n;
                }
            }
        }
    });
    let series = aggregator.snapshot();
    assert_eq!(
        find(&series, "user.signup", &[("plan", "pro")]).data(),
        &SeriesData::Counter(40_000)
    );
    let SeriesData::Histogram { count, sum, .. } =
        find(&series, "db.query", &[("table", "users")]).data()
    else {
        panic!()
    };
    assert_eq!(*count, 40_000);
    assert!((sum - 500.0).abs() < 1e-6, "{sum}");
}

#[test]
fn odd_values_never_panic() {
    let aggregator = Aggregator::new();
    with_aggregator(&aggregator, || {
        tracing_telemetry::track_timing("t", f64::NAN, &[]);
        tracing_telemetry::track_timing("t", f64::INFINITY, &[]);
        tracing_telemetry::track_timing("t", -1.0, &[]);
        tracing_telemetry::track_metric("m", f64::NAN, &[("", "")]);
        tracing_telemetry::track_metric!("m", 1.0, big = f64::MAX, small = f64::MIN_POSITIVE);
        tracing_telemetry::track_event("", &[]);
    });
    assert_eq!(aggregator.series_count(), 4);
}
