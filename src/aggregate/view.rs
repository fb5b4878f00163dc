//! How a name aggregates: the pinned defaults, and the app's per-name choices.

use crate::fields::{Instrument, Kind};
use crate::track::MetricMeta;

/// The pinned default histogram boundaries, in seconds, for `track_timing`.
///
/// ```
/// assert_eq!(tracing_telemetry::aggregate::DEFAULT_BUCKETS.len(), 14);
/// assert_eq!(tracing_telemetry::aggregate::DEFAULT_BUCKETS[0], 0.005);
/// ```
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The default histogram boundaries of a [`Histogram`](crate::Histogram) or
/// [`track_histogram`](crate::track_histogram) in any unit but seconds: the
/// OpenTelemetry SDKs' defaults for explicit-bucket histograms.
///
/// ```
/// assert_eq!(tracing_telemetry::aggregate::DEFAULT_HISTOGRAM_BUCKETS.len(), 15);
/// assert_eq!(tracing_telemetry::aggregate::DEFAULT_HISTOGRAM_BUCKETS[14], 10_000.0);
/// ```
pub const DEFAULT_HISTOGRAM_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1_000.0, 2_500.0, 5_000.0,
    7_500.0, 10_000.0,
];

/// How the records of one name are combined into a series value.
///
/// Without a choice, `track_event` is [`Count`](Aggregation::Count), `track_metric`
/// [`LastValue`](Aggregation::LastValue) and `track_timing` a
/// [`Histogram`](Aggregation::Histogram) over [`DEFAULT_BUCKETS`] seconds; a metric
/// whose call site declares its [`Instrument`] is aggregated as that instrument
/// says: a counter as a [`Sum`](Aggregation::Sum), an up-down counter as a sum that
/// may go down, a gauge as the last value, a histogram over [`DEFAULT_BUCKETS`] when
/// its unit is `"s"`, else over [`DEFAULT_HISTOGRAM_BUCKETS`]. An app picks
/// another with [`AggregatorBuilder::view`](crate::aggregate::AggregatorBuilder::view),
/// like an OpenTelemetry view without the ceremony. Events are always counted: they
/// carry no value to sum or bucket.
///
/// ```
/// use tracing_telemetry::aggregate::Aggregation;
///
/// let latency = Aggregation::histogram([1.0, 10.0, 100.0]);
/// assert_eq!(latency, Aggregation::Histogram(vec![1.0, 10.0, 100.0]));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Aggregation {
    /// The number of calls: a counter.
    Count,
    /// The most recent value: a gauge.
    LastValue,
    /// The running total of the values (timings in seconds): a counter. Negative and
    /// non-finite values are ignored, because a counter never goes down.
    Sum,
    /// Values counted into buckets with these upper bounds (inclusive; timings in
    /// seconds), plus their count and sum: a histogram. Bounds are sorted and
    /// de-duplicated, and non-finite ones dropped (`+Inf` is always there).
    Histogram(Vec<f64>),
}

impl Aggregation {
    /// A histogram with these upper bounds, cleaned as [`Aggregation::Histogram`] says.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregation;
    ///
    /// assert_eq!(Aggregation::histogram([5.0, 1.0, 1.0, f64::NAN]), Aggregation::Histogram(vec![1.0, 5.0]));
    /// ```
    pub fn histogram(bounds: impl IntoIterator<Item = f64>) -> Self {
        Aggregation::Histogram(clean_bounds(bounds))
    }
}

pub(crate) fn clean_bounds(bounds: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut bounds: Vec<f64> = bounds.into_iter().filter(|b| b.is_finite()).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds
}

/// What a series does with each record: the aggregation resolved for one kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Count,
    LastValue,
    Sum,
    /// A running total of signed changes: an up-down counter.
    UpDownSum,
    Histogram(Box<[f64]>),
}

impl Op {
    /// The aggregation for a record of `kind`, declared as `meta` says (its unit
    /// given at the call site or described), whose name has the view `view`, if any.
    pub(crate) fn resolve(
        kind: Kind,
        meta: MetricMeta,
        unit: Option<&str>,
        view: Option<&Aggregation>,
    ) -> Op {
        match (kind, view) {
            (Kind::Event, _) => Op::Count,
            (_, Some(Aggregation::Count)) => Op::Count,
            (_, Some(Aggregation::LastValue)) => Op::LastValue,
            (_, Some(Aggregation::Sum)) => Op::Sum,
            (_, Some(Aggregation::Histogram(bounds))) => {
                Op::Histogram(clean_bounds(bounds.iter().copied()).into_boxed_slice())
            }
            (Kind::Metric, None) => match meta.instrument {
                Some(Instrument::Counter) => Op::Sum,
                Some(Instrument::UpDownCounter) => Op::UpDownSum,
                Some(Instrument::Histogram) if unit == Some("s") => {
                    Op::Histogram(DEFAULT_BUCKETS.into())
                }
                Some(Instrument::Histogram) => Op::Histogram(DEFAULT_HISTOGRAM_BUCKETS.into()),
                _ => Op::LastValue,
            },
            (Kind::Timing, None) => Op::Histogram(DEFAULT_BUCKETS.into()),
        }
    }
}
