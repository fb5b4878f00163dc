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
//! `telemetry_series_overflow_records_total`, `telemetry_records_dropped_total`,
//! `target_info`, `telemetry_series` and `telemetry_prometheus_name_clashes`. Names
//! that clash once sanitized are served once (see [below](#names-that-clash)).
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
//! Only `GET` (and `HEAD`) of `/metrics`, with any query: other paths get 404, other
//! methods 405. One request per connection: every response says `Connection: close`
//! (Prometheus opens a new connection at its next scrape, which costs it nothing
//! worth measuring at scrape intervals). What each client can cost is bounded:
//!
//! | what | bound | beyond it |
//! |---|---|---|
//! | connections open at once | 128, one thread and one descriptor each | a new connection closes the one that has waited longest for its request head (an idle or slow client; a scraper sends its request at once); with none such, it is answered 503 (`Retry-After: 1`) and closed, without a thread. Reported once on standard error |
//! | the request head (request line and headers) | 8 KiB, 64 headers | 431, connection closed |
//! | time to send the request head, from the connection's accept | 10 s | 408 (or closed, if nothing came): an idle connection lasts at most this |
//! | a malformed head (not HTTP/1.0 or 1.1) | | 400 |
//! | responses built and written at once | 8, each holding one exposition in memory | waits up to 10 s for one, then 503 |
//! | writing a response | 5 s per write, 20 s in all | the connection is closed (counted in [`PrometheusStats::failed`]) |
//! | after the response | up to 2 s and 1 MiB of what the client still sends is read and dropped | closed |
//!
//! So a client that pipelines requests and never reads gets one answer and loses its
//! connection; a client that never stops sending holds at most 8 KiB; a slow or idle
//! one, or one that takes its answer and never closes, holds a thread for at most the
//! time above, and gives its place up to a new connection when all 128 are taken. The
//! one shared resource a client can hold is a responder: eight clients that ask for
//! `/metrics` and then read nothing (with an exposition larger than the socket
//! buffers) hold all eight for up to 20 s each, and a scrape meanwhile waits up to
//! 10 s, then gets 503; once they stop, the next scrape is answered at once. That is
//! the price of bounding memory to eight expositions. A scrape takes the aggregator's registry lock only to copy
//! its list of series; emitting threads never wait for a scrape.
//!
//! A failed `accept` never stops the endpoint. Out of file descriptors (`EMFILE`,
//! `ENFILE`), or memory, the accept thread closes the connection that has waited
//! longest for its request head, if any (so descriptors held by idle clients are
//! given to the scraper waiting behind them), otherwise pauses (10 ms, doubling to at
//! most 1 s), and tries again: a scrape is answered during such abuse, and within
//! about a second of descriptors being free after any other. The first failure is
//! reported once on standard error (`the Prometheus endpoint stopped accepting
//! connections (Too many open files ...); it closes ...`), and so is the first
//! connection accepted after it. Connections the system accepted meanwhile wait in
//! its backlog and are served then.
//!
//! Bound to port 0, the endpoint says on standard error which port the system chose
//! (`the Prometheus endpoint serves http://127.0.0.1:41049/metrics ...`);
//! [`PrometheusExporter::local_addr`] gives it in code.
//!
//! The default address is loopback: only local processes can scrape or abuse it.
//!
//! # Names that clash
//!
//! Two names that sanitize alike (`cache.hit`, `cache_hit`), an event and a metric of
//! one name, a name that takes a name another family's samples use
//! (`http.requests.total` beside the event `http.requests`, whose samples are
//! `http_requests_total`; `db.query.seconds.count` beside the timing `db.query`), and
//! a name that takes one of the crate's own families (`telemetry.series`,
//! `target_info`): the name seen first keeps its family, the crate's own always do,
//! and every other name is left out of the exposition (the aggregation, and the OTLP
//! exporter, keep it). Each name left out is reported once on standard error, naming
//! both, and counted in the gauge `telemetry_prometheus_name_clashes`. So the
//! exposition never holds a family twice and always passes `promtool check metrics`.
//! Leaving a name out, rather than renaming it with a suffix, keeps every served
//! name one that the app chose; a suffix would make a series whose name moves when
//! another name appears first. The rule is in `docs/FIELDS.md`.
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
//! - **HTTP: a small server of our own on `std::net`, with `httparse`** (the request
//!   parser hyper uses: no dependencies, no allocation) for the request head.
//!   The endpoint answers one kind of request, so the server is one accept loop and
//!   one function per connection. It replaced `tiny_http` 0.12, which could not give
//!   the bounds above: its accept thread panics when a `try_clone` of a connection
//!   fails for want of descriptors (and the listener closes, for good), its accept
//!   loop ends at the first failed `accept`, it has no cap on connections (a thread
//!   and two descriptors each), no read timeout, reads a request line into memory
//!   until it ends (100 MB of it cost 225 MB), keeps idle connections open for good,
//!   and lets one pipelining client that never reads hold every serving thread.
//!   Considered: `hyper` or `axum` (need tokio; no async runtime here), `astra`
//!   (hyper underneath), `rouille` (`tiny_http` underneath).
//! - **`socket2`** (the Tokio project's), to shut the listening socket down so that
//!   an `accept` waiting on it returns at shutdown. One crate, MSRV 1.63.

mod exposition;
mod names;
mod server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::aggregate::Aggregator;
use crate::config::Resource;
use crate::error::Error;
use crate::record::Record;
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
        PrometheusExporter::start_serving(addr, aggregator, resource, None, None)
    }

    /// [`start_for`](Self::start_for), for an app's `try_init`: the endpoint serves
    /// `telemetry_enabled` from `enabled`, the app's switch, on and off, and
    /// `telemetry_destination_records_total` from `destinations`.
    pub(crate) fn start_serving(
        addr: SocketAddr,
        aggregator: Aggregator,
        resource: &Resource,
        enabled: Option<crate::TelemetryHandle>,
        destinations: Option<crate::pipeline::DestinationsFn>,
    ) -> Result<Self, Error> {
        let target_info: Arc<[(String, String)]> = resource
            .attributes()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let counters = Arc::new(Counters::default());
        let source = Arc::new(
            Source::new(aggregator, target_info)
                .with_enabled(enabled)
                .with_destinations(destinations),
        );
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

    /// Stops serving, waiting at most 2 seconds for the accept thread, which closes
    /// the listening socket. Connections already accepted finish their one request
    /// within the endpoint's deadlines (see the [module docs](self)). Records are
    /// still aggregated afterwards (and readable through
    /// [`aggregator`](Self::aggregator)). Calling it again does nothing.
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

    /// Requests and connections refused: answered 404, 405, 400, 408, 431 or 503.
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
