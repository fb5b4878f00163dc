//! In-process aggregation: records become series that exporters read.
//!
//! Every record is added to the series of its (kind, name, tag set), with the pinned
//! mapping (see the [fields guide](crate::guide::fields#aggregated-metrics)):
//!
//! | call | aggregation | series |
//! |---|---|---|
//! | `track_event` | count of calls | [`SeriesData::Counter`] |
//! | `track_metric` | last value | [`SeriesData::Gauge`] |
//! | `track_timing` | histogram in **seconds** over [`DEFAULT_BUCKETS`] | [`SeriesData::Histogram`] |
//! | `track_counter`, [`Counter`](crate::Counter) | sum of the increments | [`SeriesData::Sum`] |
//! | `track_up_down`, [`UpDownCounter`](crate::UpDownCounter) | sum of the signed changes | [`SeriesData::UpDownSum`] |
//! | [`Gauge`](crate::Gauge) | last value | [`SeriesData::Gauge`] |
//! | `track_histogram`, [`Histogram`](crate::Histogram) | histogram in the declared unit over [`DEFAULT_HISTOGRAM_BUCKETS`] (or [`DEFAULT_BUCKETS`] for `"s"`) | [`SeriesData::Histogram`] |
//!
//! An app can choose another [`Aggregation`] for a name in code. Tags and properties
//! become labels. Each name holds at most 2,000 label sets by default
//! ([`AggregatorBuilder::max_series_per_name`]); beyond it, values go to one series
//! labelled `otel_metric_overflow="true"`, counted by [`Aggregator::overflowed`] and
//! reported once on standard error, so a user id in a tag cannot grow memory without
//! bound.
//!
//! # Cost
//!
//! Updating a series that the calling thread has updated before allocates nothing,
//! takes no lock and writes no cache line that another thread writes: each thread
//! keeps its own cells per series, found by hashing the borrowed name and tags and
//! comparing them in place, and a [`snapshot`](Aggregator::snapshot) adds the cells
//! up. The first update of a series from a thread takes the registry's lock once.
//! Gauges are the exception: the last value is one word per series, written by
//! whichever thread sets it last. Each thread's cells stay until the aggregator is
//! dropped (a thread that exits leaves its counts behind, as it should). Records whose
//! label set went to an overflow series are not remembered per thread (that would grow
//! without bound): each copies its identity and takes the registry's lock, so a name
//! far beyond its limit records more slowly, one more reason to fix what overflows.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use tracing_telemetry::aggregate::{Aggregator, SeriesData};
//! use tracing_telemetry::TelemetryLayer;
//!
//! let aggregator = Aggregator::new();
//! let subscriber = tracing_subscriber::registry()
//!     .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter());
//! tracing::subscriber::with_default(subscriber, || {
//!     for _ in 0..3 {
//!         tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
//!     }
//! });
//! assert_eq!(aggregator.snapshot()[0].data(), &SeriesData::Counter(3));
//! ```

mod key;
mod snapshot;
mod store;
mod view;

pub use snapshot::{SeriesData, SeriesSnapshot};
pub use view::{Aggregation, DEFAULT_BUCKETS, DEFAULT_HISTOGRAM_BUCKETS};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::record::Record;
use crate::sink::Sink;
#[cfg(feature = "metrics")]
pub(crate) use store::SeriesHandle;
use store::Store;

/// The default limit on label sets per name.
///
/// ```
/// use tracing_telemetry::aggregate::{Aggregator, DEFAULT_MAX_SERIES_PER_NAME};
///
/// assert_eq!(Aggregator::new().max_series_per_name(), DEFAULT_MAX_SERIES_PER_NAME);
/// ```
pub const DEFAULT_MAX_SERIES_PER_NAME: usize = 2_000;

/// A [`Sink`] that aggregates records into series; cheap to clone (clones share the
/// series).
///
/// See the [module docs](self) for the mapping and the cost.
///
/// ```
/// use tracing_telemetry::aggregate::{Aggregator, SeriesData};
/// use tracing_telemetry::{Kind, Record, Sink};
///
/// let aggregator = Aggregator::new();
/// aggregator.record(&Record::new(Kind::Metric, "queue.depth", &[]).with_value(1.0));
/// aggregator.record(&Record::new(Kind::Metric, "queue.depth", &[]).with_value(7.0));
/// assert_eq!(aggregator.snapshot()[0].data(), &SeriesData::Gauge(7.0));
/// ```
#[derive(Clone)]
pub struct Aggregator {
    store: Arc<Store>,
}

impl Aggregator {
    /// An aggregator with the pinned mapping and the default limit.
    ///
    /// ```
    /// let aggregator = tracing_telemetry::aggregate::Aggregator::new();
    /// assert!(aggregator.snapshot().is_empty());
    /// ```
    pub fn new() -> Self {
        Aggregator::builder().build()
    }

    /// A builder, to choose aggregations per name or another limit.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    ///
    /// let aggregator = Aggregator::builder().sum("bytes.sent").max_series_per_name(100).build();
    /// assert_eq!(aggregator.max_series_per_name(), 100);
    /// ```
    pub fn builder() -> AggregatorBuilder {
        AggregatorBuilder::new()
    }

    /// Copies every series out: values, counts and bucket counts as they are now,
    /// cumulative since each series' start. Emitting threads never wait for it: it
    /// holds the registry's lock only to copy the list of series.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Event, "app.started", &[]));
    /// assert_eq!(aggregator.snapshot().len(), 1);
    /// ```
    pub fn snapshot(&self) -> Vec<SeriesSnapshot> {
        self.store.snapshot()
    }

    /// How many series exist, overflow series included.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::aggregate::Aggregator::new().series_count(), 0);
    /// ```
    pub fn series_count(&self) -> usize {
        self.store.series_count()
    }

    /// Records that went to an overflow series because their name had reached its
    /// limit of label sets.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::aggregate::Aggregator::new().overflowed(), 0);
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.store.overflowed()
    }

    /// Records dropped because recording re-entered itself on one thread (a sink
    /// that emits telemetry); normally zero.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::aggregate::Aggregator::new().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.store.dropped()
    }

    /// The limit on label sets per name.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::aggregate::Aggregator::new().max_series_per_name(), 2_000);
    /// ```
    pub fn max_series_per_name(&self) -> usize {
        self.store.max_series_per_name()
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new()
    }
}

impl fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregator")
            .field("max_series_per_name", &self.store.max_series_per_name())
            .field("overflowed", &self.store.overflowed())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "metrics")]
impl Aggregator {
    /// The series `record` updates, to update it without the record (see
    /// [`SeriesHandle`]).
    pub(crate) fn series_handle(&self, record: &Record<'_>) -> Option<SeriesHandle> {
        Store::series_handle(&self.store, record)
    }
}

/// Two aggregators are equal when they share their series (one is a clone of the
/// other), as a configuration holding one compares.
///
/// ```
/// use tracing_telemetry::aggregate::Aggregator;
///
/// let a = Aggregator::new();
/// assert_eq!(a, a.clone());
/// assert_ne!(a, Aggregator::new());
/// ```
impl PartialEq for Aggregator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for Aggregator {}

impl Sink for Aggregator {
    #[inline]
    fn record(&self, record: &Record<'_>) {
        self.store.record(record);
    }
}

/// Builds an [`Aggregator`]: per-name aggregations and the label-set limit.
///
/// | setting | default |
/// |---|---|
/// | aggregation | events: count; metrics: last value; timings: histogram over [`DEFAULT_BUCKETS`] seconds |
/// | [`max_series_per_name`](Self::max_series_per_name) | 2,000 |
///
/// ```
/// use tracing_telemetry::aggregate::{Aggregation, Aggregator, SeriesData};
/// use tracing_telemetry::{Kind, Record, Sink};
///
/// let aggregator = Aggregator::builder()
///     .histogram("queue.depth", [10.0, 100.0, 1000.0]) // a metric as a histogram
///     .view("db.query", Aggregation::histogram([0.001, 0.01, 0.1])) // finer timing buckets
///     .sum("bytes.sent")
///     .build();
/// aggregator.record(&Record::new(Kind::Metric, "queue.depth", &[]).with_value(42.0));
/// assert!(matches!(aggregator.snapshot()[0].data(), SeriesData::Histogram { count: 1, .. }));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until built"]
pub struct AggregatorBuilder {
    views: HashMap<Box<str>, Aggregation>,
    max_series_per_name: usize,
    span_labels: HashSet<Box<str>>,
}

impl AggregatorBuilder {
    /// The defaults in the table above.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::{AggregatorBuilder, DEFAULT_MAX_SERIES_PER_NAME};
    ///
    /// let aggregator = AggregatorBuilder::new().build();
    /// assert_eq!(aggregator.max_series_per_name(), DEFAULT_MAX_SERIES_PER_NAME);
    /// ```
    pub fn new() -> Self {
        AggregatorBuilder {
            views: HashMap::new(),
            max_series_per_name: DEFAULT_MAX_SERIES_PER_NAME,
            span_labels: HashSet::new(),
        }
    }

    /// Aggregates the metric or timing called `name` this way (events are always
    /// counted). A later choice for the same name replaces an earlier one.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::{Aggregation, Aggregator, SeriesData};
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let aggregator = Aggregator::builder().view("jobs.done", Aggregation::Sum).build();
    /// aggregator.record(&Record::new(Kind::Metric, "jobs.done", &[]).with_value(2.0));
    /// aggregator.record(&Record::new(Kind::Metric, "jobs.done", &[]).with_value(3.0));
    /// assert_eq!(aggregator.snapshot()[0].data(), &SeriesData::Sum(5.0));
    /// ```
    pub fn view(mut self, name: &str, aggregation: Aggregation) -> Self {
        self.views.insert(name.into(), aggregation);
        self
    }

    /// Shorthand for a [`view`](Self::view) with [`Aggregation::histogram`]: bounds in
    /// the metric's own unit, or in seconds for a timing.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::{Aggregator, SeriesData};
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let aggregator = Aggregator::builder().histogram("payload.bytes", [1e3, 1e6]).build();
    /// aggregator.record(&Record::new(Kind::Metric, "payload.bytes", &[]).with_value(500.0));
    /// assert_eq!(
    ///     aggregator.snapshot()[0].data(),
    ///     &SeriesData::Histogram { bounds: vec![1e3, 1e6], bucket_counts: vec![1, 0, 0], count: 1, sum: 500.0 }
    /// );
    /// ```
    pub fn histogram(self, name: &str, bounds: impl IntoIterator<Item = f64>) -> Self {
        self.view(name, Aggregation::histogram(bounds))
    }

    /// Shorthand for a [`view`](Self::view) with [`Aggregation::Sum`].
    ///
    /// ```
    /// use tracing_telemetry::aggregate::{Aggregator, SeriesData};
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let aggregator = Aggregator::builder().sum("bytes.sent").build();
    /// aggregator.record(&Record::new(Kind::Metric, "bytes.sent", &[]).with_value(100.0));
    /// aggregator.record(&Record::new(Kind::Metric, "bytes.sent", &[]).with_value(20.0));
    /// assert_eq!(aggregator.snapshot()[0].data(), &SeriesData::Sum(120.0));
    /// ```
    pub fn sum(self, name: &str) -> Self {
        self.view(name, Aggregation::Sum)
    }

    /// Makes the span fields a record carries (`TELEMETRY_SPAN_FIELDS`) labels of this
    /// name's series too, next to its tags (a tag given in the call wins over a span
    /// field with the same key). Without it, span fields are never labels: a request
    /// id would make a series per request. Each opted-in name still has its
    /// [limit](Self::max_series_per_name).
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    /// use tracing_telemetry::{Kind, Record, Sink, Tag};
    ///
    /// let aggregator = Aggregator::builder().span_labels("checkout.total").build();
    /// let span = [Tag::new("tenant", "acme")];
    /// aggregator.record(&Record::new(Kind::Metric, "checkout.total", &[]).with_span_tags(&span).with_value(9.5));
    /// aggregator.record(&Record::new(Kind::Metric, "queue.depth", &[]).with_span_tags(&span).with_value(3.0));
    /// let series = aggregator.snapshot();
    /// let labels = |name: &str| series.iter().find(|s| s.name() == name).unwrap().labels().to_vec();
    /// assert_eq!(labels("checkout.total"), [("tenant".to_owned(), "acme".to_owned())]);
    /// assert!(labels("queue.depth").is_empty(), "not opted in");
    /// ```
    pub fn span_labels(mut self, name: &str) -> Self {
        self.span_labels.insert(name.into());
        self
    }

    /// At most this many label sets per name (at least 1); values with further label
    /// sets go to the name's overflow series.
    ///
    /// ```
    /// let aggregator = tracing_telemetry::aggregate::Aggregator::builder().max_series_per_name(500).build();
    /// assert_eq!(aggregator.max_series_per_name(), 500);
    /// ```
    pub fn max_series_per_name(mut self, limit: usize) -> Self {
        self.max_series_per_name = limit.max(1);
        self
    }

    /// The aggregator.
    ///
    /// ```
    /// let aggregator = tracing_telemetry::aggregate::AggregatorBuilder::new().build();
    /// assert_eq!(aggregator.series_count(), 0);
    /// ```
    pub fn build(self) -> Aggregator {
        Aggregator {
            store: Arc::new(Store::new(
                self.views,
                self.max_series_per_name,
                self.span_labels,
            )),
        }
    }
}

impl Default for AggregatorBuilder {
    fn default() -> Self {
        AggregatorBuilder::new()
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;
    use crate::fields::Kind;

    #[test]
    fn a_series_handle_keeps_the_store_no_longer_than_the_aggregator() {
        let aggregator = Aggregator::new();
        aggregator.record(&Record::new(Kind::Metric, "m", &[]).with_value(1.0));
        let handle = aggregator
            .series_handle(&Record::new(Kind::Metric, "m", &[]))
            .expect("the series exists");
        let store = Arc::downgrade(&aggregator.store);
        drop(aggregator);
        assert!(store.upgrade().is_none(), "the store was dropped");
        // Without the store, the handle finds no cells: updates stay records.
        handle.learn_thread(&Record::new(Kind::Metric, "m", &[]));
        assert!(!handle.add(1.0), "no cells found without the store");
    }
}
