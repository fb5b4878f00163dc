//! `GET /metrics` for Prometheus: the aggregated series, scraped.
//!
//! [`PrometheusExporter`] is a [`Sink`]: every record is added to its series
//! ([`crate::aggregate`]), on the emitting thread, without blocking. A scrape copies
//! the series out and encodes them, in the Prometheus text format (0.0.4) or, when
//! the scraper's `Accept` asks for it (Prometheus does), in OpenMetrics text.
//!
//! | call | Prometheus series |
//! |---|---|
//! | `track_event("user.signup", &[("plan", "pro")])` | counter `user_signup_total{plan="pro"}` |
//! | `track_metric("queue.depth", 42.0, &[("queue", "emails")])` | gauge `queue_depth{queue="emails"}` |
//! | `track_timing("db.query", 12.5, &[("table", "users")])` | histogram `db_query_seconds` (`_bucket`, `_sum` = 0.0125, `_count`) |
//!
//! Names and label keys: every character outside `[a-zA-Z0-9_]` becomes `_`, runs of
//! `_` collapse, a leading digit gets a `_` prefix; counters end in `_total`, timings
//! in `_seconds`. Beside the app's series, the endpoint serves the crate's own:
//! `telemetry_series_overflow_records_total`, `telemetry_records_dropped_total` and
//! `telemetry_series`.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use tracing_telemetry::prometheus::PrometheusExporter;
//! use tracing_telemetry::TelemetryLayer;
//!
//! let exporter = PrometheusExporter::start("127.0.0.1:9464".parse()?)?;
//! tracing_subscriber::registry()
//!     .with(TelemetryLayer::new(exporter.clone()).with_telemetry_filter())
//!     .init();
//! tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
//! // curl http://127.0.0.1:9464/metrics  ->  queue_depth{queue="emails"} 42.0
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The endpoint
//!
//! Only `GET` (and `HEAD`) of `/metrics`: other paths get 404, other methods 405.
//! Eight threads answer requests. Writes to a connection time out after 5 seconds,
//! so a scraper that never reads holds one serving thread for a bounded time (about
//! 15-20 s measured, as `tiny_http` retries a failed write) while the others answer
//! other scrapes. A scrape takes the aggregator's registry lock only to copy its list
//! of series; emitting threads never wait for a scrape. `tiny_http` reads each
//! connection on a thread of its own, so a client that sends slowly, or sends a huge
//! request line, costs that connection's thread and what it buffers (the request line
//! is read into memory until it ends), never the serving threads; the default address
//! is loopback, so only local processes can. Should `tiny_http`'s accept loop stop
//! (it does at its first failed `accept`, such as running out of file descriptors),
//! it is restarted on the same socket and the restart reported once on standard
//! error; a request caught in the switch may go unanswered, and its scraper retries at
//! its next interval. Not covered: out of file descriptors, `tiny_http`'s accept
//! thread can also panic (on a failed `try_clone` of a connection it has just
//! accepted), which it does not report, and then the endpoint stays down until the
//! app restarts.
//!
//! # Why these crates
//!
//! - **Exposition: `prometheus-client`** (the Prometheus project's official Rust
//!   client). Its encoders write both text formats, with label-value escaping,
//!   `+Inf` buckets and float spelling as Go's client does; this module hands it a
//!   [`Collector`](prometheus_client::collector::Collector) over a snapshot, so its
//!   own metric types (and their locks) are not used on the hot path. Cost: 5 crates
//!   (`dtoa`, `parking_lot` and its two parts, a derive macro); builds on Rust 1.81.
//!   Considered: the `prometheus` crate (TiKV; text 0.0.4 only, no OpenMetrics, and
//!   protobuf by default) and `metrics-exporter-prometheus` (brings its own
//!   recorder, registry and, by default, hyper and tokio).
//! - **HTTP: `tiny_http`**, a small synchronous server: no async runtime in the app,
//!   4 small crates (`ascii`, `chunked_transfer`, `httpdate`, `log`), old MSRV.
//!   Considered: `hyper` or `axum` (need tokio), `astra` (hyper underneath), and
//!   `httparse` with a hand-written server (protocol code of our own).
//! - **Socket timeouts: `socket2`** (the Tokio project's), to set a write timeout on
//!   the listening socket, which accepted connections inherit on Linux (`tiny_http`
//!   exposes no timeouts of its own). One crate, MSRV 1.63.
//!
//! `tiny_http`'s shortcomings are worked around as described above: no timeouts (a
//! write timeout inherited from the listening socket), an accept loop that ends at its
//! first error (restarted). Two are not: a request line is read into memory until it
//! ends, and the accept thread can die unreported when the process is out of file
//! descriptors. If those matter more, `httparse` with a small accept loop of our own
//! is the fallback.

mod exposition;
mod names;
mod server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::aggregate::Aggregator;
use crate::error::Error;
use crate::record::Record;
use crate::resource::Resource;
use crate::sink::Sink;
use exposition::{Format, Source};
use server::{Counters, Server};

/// Aggregates records and serves them on `GET /metrics`; cheap to clone (clones share
/// the series and the server).
///
/// Hand it to a [`TelemetryLayer`](crate::TelemetryLayer) as its sink (see the
/// [module docs](self)). The server runs until [`shutdown`](Self::shutdown) or until
/// the last clone is dropped.
///
/// ```
/// use tracing_telemetry::prometheus::PrometheusExporter;
/// use tracing_telemetry::{Kind, Record, Sink, Tag};
///
/// let exporter = PrometheusExporter::start("127.0.0.1:0".parse()?)?;
/// let tags = [Tag::new("plan", "pro")];
/// exporter.record(&Record::new(Kind::Event, "user.signup", &tags));
/// assert!(exporter.encode_text().contains("user_signup_total{plan=\"pro\"} 1"));
/// exporter.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PrometheusExporter {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<Source>,
    server: Server,
    counters: Arc<Counters>,
}

impl PrometheusExporter {
    /// Serves `GET /metrics` on `addr` (port 0 picks a free port, see
    /// [`local_addr`](Self::local_addr)), aggregating with the pinned mapping.
    ///
    /// Fails when the address cannot be bound, naming it and the system's reason.
    ///
    /// ```
    /// use tracing_telemetry::prometheus::PrometheusExporter;
    ///
    /// let taken = PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// let err = PrometheusExporter::start(taken.local_addr()).unwrap_err();
    /// assert!(err.to_string().starts_with(&format!("cannot serve Prometheus metrics on {}: ", taken.local_addr())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(addr: SocketAddr) -> Result<Self, Error> {
        PrometheusExporter::start_with(addr, Aggregator::new())
    }

    /// Like [`start`](Self::start), with an aggregator of the app's choosing
    /// (per-name aggregations, another limit on label sets).
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    /// use tracing_telemetry::prometheus::PrometheusExporter;
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let aggregator = Aggregator::builder().histogram("payload.bytes", [1e3, 1e6]).build();
    /// let exporter = PrometheusExporter::start_with("127.0.0.1:0".parse()?, aggregator)?;
    /// exporter.record(&Record::new(Kind::Metric, "payload.bytes", &[]).with_value(500.0));
    /// assert!(exporter.encode_text().contains("# TYPE payload_bytes histogram"));
    /// # exporter.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_with(addr: SocketAddr, aggregator: Aggregator) -> Result<Self, Error> {
        PrometheusExporter::start_for(addr, aggregator, &Resource::default())
    }

    /// Like [`start_with`](Self::start_with), naming the service with `resource`: its
    /// attributes are the labels of the `target_info` series, as the
    /// OpenTelemetry-Prometheus compatibility specification maps a resource
    /// (`target_info{service_name="checkout",service_version="1.4.2"} 1`).
    /// [`start`](Self::start) and `start_with` name it `unknown_service:<executable>`.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    /// use tracing_telemetry::prometheus::PrometheusExporter;
    ///
    /// let resource = tracing_telemetry::Config::new().with_service_name("checkout").resource().clone();
    /// let exporter = PrometheusExporter::start_for("127.0.0.1:0".parse()?, Aggregator::new(), &resource)?;
    /// assert!(exporter.encode_text().contains(r#"target_info{service_name="checkout"} 1"#));
    /// # exporter.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_for(
        addr: SocketAddr,
        aggregator: Aggregator,
        resource: &Resource,
    ) -> Result<Self, Error> {
        let target_info: Arc<[(String, String)]> = resource
            .attributes()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let counters = Arc::new(Counters::default());
        let source = Arc::new(Source::new(aggregator, target_info));
        let server = Server::start(addr, Arc::clone(&source), Arc::clone(&counters))?;
        Ok(PrometheusExporter {
            inner: Arc::new(Inner {
                source,
                server,
                counters,
            }),
        })
    }

    /// The address being served, with the port the system chose for port 0.
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// assert_ne!(exporter.local_addr().port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.server.local_addr()
    }

    /// The aggregator behind the endpoint, for reading the series in code.
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// assert!(exporter.aggregator().snapshot().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn aggregator(&self) -> &Aggregator {
        &self.inner.source.aggregator
    }

    /// The exposition a plain `GET /metrics` gets now (Prometheus text format 0.0.4).
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// assert!(exporter.encode_text().contains("# TYPE telemetry_series gauge"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode_text(&self) -> String {
        self.encode(Format::Text)
    }

    /// The exposition in OpenMetrics text, as Prometheus asks for it.
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// assert!(exporter.encode_openmetrics().ends_with("# EOF\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode_openmetrics(&self) -> String {
        self.encode(Format::OpenMetrics)
    }

    fn encode(&self, format: Format) -> String {
        self.inner.source.encode(format)
    }

    /// Nothing to push: series are read when scraped. Here so that a pipeline can
    /// flush every destination alike.
    ///
    /// ```
    /// use tracing_telemetry::prometheus::PrometheusExporter;
    /// use tracing_telemetry::{Kind, Record, Sink};
    ///
    /// let exporter = PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// exporter.record(&Record::new(Kind::Event, "app.started", &[]));
    /// exporter.flush(); // returns at once; the series waits for the next scrape
    /// assert!(exporter.encode_text().contains("app_started_total 1"));
    /// # exporter.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {}

    /// Stops serving, waiting at most 2 seconds for the serving threads. Records are
    /// still aggregated afterwards (and readable through
    /// [`aggregator`](Self::aggregator)). Calling it again does nothing.
    ///
    /// The listening socket closes just after (`tiny_http` closes it on its accept
    /// thread).
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// exporter.shutdown();
    /// exporter.shutdown(); // does nothing
    /// assert_eq!(exporter.stats().scrapes(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.inner.server.shutdown();
    }

    /// What the endpoint has done so far.
    ///
    /// ```
    /// let exporter = tracing_telemetry::prometheus::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    /// assert_eq!(exporter.stats().scrapes(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> PrometheusStats {
        let c = &self.inner.counters;
        PrometheusStats {
            scrapes: c.scrapes.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            overflowed: self.inner.source.aggregator.overflowed(),
            dropped: self.inner.source.aggregator.dropped(),
        }
    }
}

impl Sink for PrometheusExporter {
    #[inline]
    fn record(&self, record: &Record<'_>) {
        self.inner.source.aggregator.record(record);
    }
}

impl fmt::Debug for PrometheusExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusExporter")
            .field("local_addr", &self.local_addr())
            .field("aggregator", &self.inner.source.aggregator)
            .finish_non_exhaustive()
    }
}

/// Counts from a [`PrometheusExporter`], from [`PrometheusExporter::stats`].
///
/// ```
/// let stats = tracing_telemetry::prometheus::PrometheusStats::default();
/// assert_eq!(stats.rejected(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrometheusStats {
    scrapes: u64,
    rejected: u64,
    failed: u64,
    overflowed: u64,
    dropped: u64,
}

impl PrometheusStats {
    /// `GET /metrics` requests answered with the exposition.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::prometheus::PrometheusStats::default().scrapes(), 0);
    /// ```
    pub fn scrapes(&self) -> u64 {
        self.scrapes
    }

    /// Requests answered 404 or 405.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::prometheus::PrometheusStats::default().rejected(), 0);
    /// ```
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Responses that could not be written (the client went away or stopped reading).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::prometheus::PrometheusStats::default().failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Records that went to an overflow series (see [`Aggregator::overflowed`]).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::prometheus::PrometheusStats::default().overflowed(), 0);
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Records the aggregation dropped (see [`Aggregator::dropped`]).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::prometheus::PrometheusStats::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
