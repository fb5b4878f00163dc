//! A copy of the aggregated series, for exporters: what a scrape or a push sends.

use std::sync::Arc;
use std::time::SystemTime;

use crate::fields::{Instrument, Kind};

/// The value of one series at the moment of the copy. All values are cumulative since
/// the series' [`start_time`](SeriesSnapshot::start_time).
///
/// ```
/// use tracing_telemetry::aggregate::SeriesData;
///
/// let data = SeriesData::Counter(3);
/// assert_eq!(data.type_name(), "counter");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SeriesData {
    /// The number of calls.
    Counter(u64),
    /// The running total of the values (timings in seconds): monotonic.
    Sum(f64),
    /// The running total of signed changes, which may go down: an up-down counter
    /// (a Prometheus gauge, an OTLP non-monotonic sum).
    UpDownSum(f64),
    /// The most recent value.
    Gauge(f64),
    /// The values counted into buckets.
    Histogram {
        /// Upper bounds (inclusive), ascending; the last bucket, `+Inf`, is implied.
        bounds: Vec<f64>,
        /// Counts per bucket, not cumulative: one more than `bounds`, the last for
        /// values above every bound.
        bucket_counts: Vec<u64>,
        /// The number of values: the sum of `bucket_counts`.
        count: u64,
        /// The sum of the values.
        sum: f64,
    },
}

impl SeriesData {
    /// The kind of series, as Prometheus names it: `"counter"` (counters and sums),
    /// `"gauge"` (gauges and up-down sums) or `"histogram"`.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::aggregate::SeriesData::Gauge(1.0).type_name(), "gauge");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            SeriesData::Counter(_) | SeriesData::Sum(_) => "counter",
            SeriesData::Gauge(_) | SeriesData::UpDownSum(_) => "gauge",
            SeriesData::Histogram { .. } => "histogram",
        }
    }
}

/// One series, copied out of an [`Aggregator`](super::Aggregator) by
/// [`snapshot`](super::Aggregator::snapshot).
///
/// ```
/// use tracing_telemetry::aggregate::{Aggregator, SeriesData};
/// use tracing_telemetry::{Kind, Record, Sink, Tag};
///
/// let aggregator = Aggregator::new();
/// let tags = [Tag::new("queue", "emails")];
/// aggregator.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(42.0));
///
/// let series = &aggregator.snapshot()[0];
/// assert_eq!(series.name(), "queue.depth");
/// assert_eq!(series.labels(), [("queue".to_string(), "emails".to_string())]);
/// assert_eq!(series.data(), &SeriesData::Gauge(42.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) overflow: bool,
    pub(crate) start_time: SystemTime,
    pub(crate) data: SeriesData,
    pub(crate) instrument: Option<Instrument>,
    /// The metric's unit, declared at the call site or described.
    pub(crate) unit: Option<&'static str>,
    pub(crate) description: Option<Arc<str>>,
}

impl SeriesSnapshot {
    /// The kind of track call that feeds the series.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Event, "app.started", &[]));
    /// assert_eq!(aggregator.snapshot()[0].kind(), Kind::Event);
    /// ```
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The name as given to the track call (`db.query`); exporters derive their own
    /// spelling from it.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Timing, "db.query", &[]).with_value(12.5));
    /// assert_eq!(aggregator.snapshot()[0].name(), "db.query");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels: tag keys as given and values as text, sorted by key. The overflow
    /// series has exactly one, `otel_metric_overflow="true"`.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink, Tag};
    /// let aggregator = Aggregator::new();
    /// let tags = [Tag::new("seats", 3_i64)];
    /// aggregator.record(&Record::new(Kind::Event, "user.upgrade", &tags));
    /// assert_eq!(aggregator.snapshot()[0].labels(), [("seats".to_string(), "3".to_string())]);
    /// ```
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// Whether this is the series that takes every label set beyond the limit.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Event, "app.started", &[]));
    /// assert!(!aggregator.snapshot()[0].is_overflow());
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.overflow
    }

    /// When the series was created: the start of its cumulative values.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Event, "app.started", &[]));
    /// assert!(aggregator.snapshot()[0].start_time() <= std::time::SystemTime::now());
    /// ```
    pub fn start_time(&self) -> SystemTime {
        self.start_time
    }

    /// The unit of the values: `Some("s")` for timings, whose milliseconds become
    /// seconds; for a metric, the unit its call site declared or
    /// [`describe`](crate::describe) gave; `None` otherwise.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Timing, "db.query", &[]).with_value(12.5));
    /// aggregator.record(&Record::new(Kind::Metric, "net.received", &[]).with_value(1.0).with_unit("By"));
    /// assert_eq!(aggregator.snapshot()[0].unit(), Some("s"));
    /// assert_eq!(aggregator.snapshot()[1].unit(), Some("By"));
    /// ```
    pub fn unit(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Timing => Some("s"),
            Kind::Metric => self.unit,
            Kind::Event => None,
        }
    }

    /// The instrument the metric's call site declared (see
    /// [`Record::instrument`](crate::Record::instrument)); `None` for `track_metric`,
    /// events and timings.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::{Aggregator, SeriesData}, Instrument, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// let record = Record::new(Kind::Metric, "jobs.done", &[]).with_value(2.0);
    /// aggregator.record(&record.with_instrument(Instrument::Counter));
    /// assert_eq!(aggregator.snapshot()[0].instrument(), Some(Instrument::Counter));
    /// assert_eq!(aggregator.snapshot()[0].data(), &SeriesData::Sum(2.0));
    /// ```
    pub fn instrument(&self) -> Option<Instrument> {
        self.instrument
    }

    /// What the metric measures: declared at its call site, else given to
    /// [`describe`](crate::describe); `None` when neither said.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::Aggregator, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// let record = Record::new(Kind::Metric, "pool.size", &[]).with_value(8.0);
    /// aggregator.record(&record.with_description("connections the pool holds"));
    /// assert_eq!(aggregator.snapshot()[0].description(), Some("connections the pool holds"));
    /// ```
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The value.
    ///
    /// ```
    /// # use tracing_telemetry::{aggregate::{Aggregator, SeriesData}, Kind, Record, Sink};
    /// let aggregator = Aggregator::new();
    /// aggregator.record(&Record::new(Kind::Timing, "db.query", &[]).with_value(12.5));
    /// let SeriesData::Histogram { count, sum, .. } = aggregator.snapshot()[0].data().clone() else { panic!() };
    /// assert_eq!((count, sum), (1, 0.0125));
    /// ```
    pub fn data(&self) -> &SeriesData {
        &self.data
    }
}
