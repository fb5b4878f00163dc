//! The OTLP exporter: the hand-off on the emitting thread, and the export thread that
//! batches, sends and retries.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::config::{OtlpConfig, Signal};
use super::mapping::{self, RecordIds};
use super::metrics::metrics_request;
use super::spool::{OpenError, Spool};
use super::transport::{Outcome, Transport};
use crate::aggregate::Aggregator;
use crate::error::Error;
use crate::fields::Kind;
use crate::pipeline::clock::Calibration;
use crate::pipeline::handoff::{Batching, Handoff, Pending, Pushed, Signals};
use crate::record::{Record, Tag};
use crate::report::{self, stderr_line, stderr_line_by};
use crate::sink::Sink;
use crossbeam_channel::{select, unbounded, Receiver, Sender};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Records in one request at most (the specification's default batch size for logs).
const BATCH_RECORDS: usize = 512;
/// How long a record waits for others to share its request.
const BATCH_DELAY: Duration = Duration::from_millis(1000);
/// Backoff between retries: starts here, doubles, is capped, and is jittered down to
/// half so that many apps do not retry in step.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured as given.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// Counts of what an [`OtlpExporter`] did with the records it was given.
///
/// ```
/// let exporter = tracing_telemetry::OtlpExporter::start(tracing_telemetry::OtlpConfig::new())?;
/// let stats = exporter.stats();
/// assert_eq!((stats.exported(), stats.dropped(), stats.rejected(), stats.undelivered()), (0, 0, 0, 0));
/// # exporter.shutdown();
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtlpStats {
    exported: u64,
    dropped: u64,
    rejected: u64,
    undelivered: u64,
    retries: u64,
    metric_pushes: u64,
    metric_push_failures: u64,
    spooled: u64,
    spool_pending: u64,
    spool_dropped: u64,
    spool_torn_bytes: u64,
    spool_failures: u64,
}

impl OtlpStats {
    /// Records the collector accepted.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().exported(), 0);
    /// ```
    pub fn exported(&self) -> u64 {
        self.exported
    }

    /// Records dropped on the emitting thread because the queue was full (or the
    /// exporter had already shut down).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records the collector refused: a permanent error such as HTTP 400 (not
    /// retried), or the rejected count of a partial-success answer.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().rejected(), 0);
    /// ```
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Records not delivered: still unsent when shutdown's time ran out (the
    /// collector was down or too slow), or answered with a redirect, which is not
    /// followed (without a spool: a spooled request answered with a redirect stays on
    /// disk and is retried).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().undelivered(), 0);
    /// ```
    pub fn undelivered(&self) -> u64 {
        self.undelivered
    }

    /// Requests sent again after a transient failure.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().retries(), 0);
    /// ```
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Metric pushes the collector accepted (one per interval with any series, and
    /// one at shutdown).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().metric_pushes(), 0);
    /// ```
    pub fn metric_pushes(&self) -> u64 {
        self.metric_pushes
    }

    /// Metric pushes that failed. Nothing is lost for good: values are cumulative, so
    /// the next push that succeeds carries everything.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().metric_push_failures(), 0);
    /// ```
    pub fn metric_push_failures(&self) -> u64 {
        self.metric_push_failures
    }

    /// Records written to the spool (`TELEMETRY_SPOOL_DIR`) by this exporter, synced
    /// to disk. Zero without a spool.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().spooled(), 0);
    /// ```
    pub fn spooled(&self) -> u64 {
        self.spooled
    }

    /// Records in the spool that the collector has not accepted yet, this run's and
    /// those an earlier run left. After shutdown: what the next run will send.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().spool_pending(), 0);
    /// ```
    pub fn spool_pending(&self) -> u64 {
        self.spool_pending
    }

    /// Records dropped from the spool, oldest first, to stay within its byte limit
    /// ([`OtlpConfig::spool_bytes`]).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().spool_dropped(), 0);
    /// ```
    pub fn spool_dropped(&self) -> u64 {
        self.spool_dropped
    }

    /// Bytes of torn or corrupt spool entries skipped (a process killed while writing,
    /// a truncated or damaged file). They are never sent; the whole entries after them
    /// still are.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().spool_torn_bytes(), 0);
    /// ```
    pub fn spool_torn_bytes(&self) -> u64 {
        self.spool_torn_bytes
    }

    /// Requests that could not be written to the spool (disk full, I/O error); they
    /// were sent from memory instead, as without a spool.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpStats::default().spool_failures(), 0);
    /// ```
    pub fn spool_failures(&self) -> u64 {
        self.spool_failures
    }
}

struct Shared {
    /// Each emitting thread's captured records, and the queue's bound.
    handoff: Handoff,
    exported: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    undelivered: AtomicU64,
    /// Of `undelivered`, the records answered with a redirect (not followed).
    redirected: AtomicU64,
    retries: AtomicU64,
    metric_pushes: AtomicU64,
    metric_push_failures: AtomicU64,
    spooled: AtomicU64,
    spool_pending: AtomicU64,
    spool_dropped: AtomicU64,
    spool_torn_bytes: AtomicU64,
    spool_failures: AtomicU64,
    stopped: AtomicBool,
    reported_full: AtomicBool,
    reported_rejected: AtomicBool,
    reported_redirected: AtomicBool,
    reported_metrics: AtomicBool,
    reported_spool: AtomicBool,
}

impl Shared {
    fn new(handoff: Handoff) -> Self {
        Shared {
            handoff,
            exported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            redirected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            metric_pushes: AtomicU64::new(0),
            metric_push_failures: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            spool_pending: AtomicU64::new(0),
            spool_dropped: AtomicU64::new(0),
            spool_torn_bytes: AtomicU64::new(0),
            spool_failures: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            reported_full: AtomicBool::new(false),
            reported_rejected: AtomicBool::new(false),
            reported_redirected: AtomicBool::new(false),
            reported_metrics: AtomicBool::new(false),
            reported_spool: AtomicBool::new(false),
        }
    }
}

enum Msg {
    /// Send everything queued before this, then answer.
    Flush(Sender<()>),
    /// Send what can be sent before the deadline, give up the rest, answer, stop.
    Shutdown(Instant, Sender<()>),
}

/// Exports telemetry to an OpenTelemetry collector over OTLP/HTTP: each `track_event`
/// becomes a log record.
///
/// * **The emitting thread** copies the record into a lane of its own: no lock, no
///   allocation past a thread's first small chunks while the export thread keeps
///   spare chunks ready, no encoding to protobuf, no I/O, one release store to
///   publish it. An unreachable or slow collector never blocks or slows it.
/// * **A bounded queue**, in bytes ([`OtlpConfig::queue_bytes`], 8 MiB by default):
///   when full, new records are dropped and counted ([`OtlpStats::dropped`]); the
///   first drop is reported once on stderr. A busy thread reserves room ahead in
///   grants of 1/4096 of the bound (at most 4 KiB), so the queue may count as full
///   while such threads hold a grant's remainder each; other threads reserve exactly
///   what each record needs.
/// * **The export thread** (`telemetry-otlp`) collects the lanes every second (at
///   once when a busy thread fills a 256 KiB chunk), sends up to 512 records per
///   request, encoded with the official OTLP types, compressed if asked.
/// * **Retries**: connection errors, timeouts and HTTP 429/502/503/504 are retried with
///   exponential backoff (250 ms doubling to 5 s, jittered), waiting instead as long as
///   a `Retry-After` header says (up to 5 minutes); records keep queueing meanwhile.
///   HTTP 400 and every other status are permanent: the batch is counted as
///   [`rejected`](OtlpStats::rejected), reported once, and not retried; so are the
///   records a partial-success answer rejects.
/// * **Redirects** (3xx) are not followed: the records and the configured headers go
///   to the configured endpoint only. The batch is counted as
///   [`undelivered`](OtlpStats::undelivered), reported once (with the status and the
///   origin the collector pointed at), and not retried. With a spool, a redirected
///   request stays on disk and is retried with backoff like a transient failure (an
///   auth proxy answering 302 for a while must not drain the spool).
/// * **The spool** ([`OtlpConfig::with_spool_dir`], `TELEMETRY_SPOOL_DIR`): every
///   batch is written to disk and synced before its first send, and forgotten once
///   the collector accepts or refuses it; spooled requests go out oldest first (an
///   earlier run's before this run's), and during an outage new batches wait on disk,
///   not in memory. At least once for every record written to the spool; each log
///   record carries a unique `telemetry.record_id` so that copies can be dropped.
///   Without a spool, everything below about memory applies as written.
/// * **Shutdown** ([`shutdown`](Self::shutdown), or dropping the exporter) sends what
///   is queued, waiting at most the configured timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`,
///   10 s), then counts what it could not deliver as
///   [`undelivered`](OtlpStats::undelivered) and says so on stderr.
/// * **Metrics**: records are also aggregated ([`Aggregator`], the pinned mapping:
///   `track_metric` a gauge, `track_timing` a histogram in seconds with unit `s`,
///   `track_event` a monotonic count; events are counted on the export thread as it
///   takes them, so an event dropped on a full queue is in neither) and pushed every
///   `OTEL_METRIC_EXPORT_INTERVAL` (60 s) and once more at shutdown, with cumulative
///   temporality. A failed push is counted and not retried: the next one carries the
///   cumulative values.
///
/// ```no_run
/// use std::sync::Arc;
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};
///
/// let exporter = Arc::new(OtlpExporter::start(OtlpConfig::from_env()?)?);
/// let subscriber = tracing_subscriber::registry()
///     .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
/// });
/// exporter.shutdown(); // delivers what is queued, waiting at most the timeout
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OtlpExporter {
    /// `None` when `OTEL_SDK_DISABLED=true`.
    running: Option<Running>,
    /// The series this exporter pushes, when it feeds them itself (see
    /// [`start_with_aggregator`](Self::start_with_aggregator)).
    own_aggregator: Option<Aggregator>,
    shared: Arc<Shared>,
    capacity: usize,
    timeout: Duration,
    spool_dir: Option<PathBuf>,
}

struct Running {
    tx: Sender<Msg>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("running", &self.running.is_some())
            .field("capacity", &self.capacity)
            .field("spool_dir", &self.spool_dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Starts the export thread. Nothing is sent until a record arrives; a collector
    /// that is not there yet is not an error (records wait for it in the queue).
    ///
    /// With `OTEL_SDK_DISABLED=true` ([`OtlpConfig::disabled`]) no thread starts and
    /// every record is ignored.
    ///
    /// ```
    /// let exporter = tracing_telemetry::OtlpExporter::start(tracing_telemetry::OtlpConfig::new())?;
    /// exporter.shutdown();
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn start(config: OtlpConfig) -> Result<Self, Error> {
        let aggregator = Aggregator::new();
        let mut exporter = Self::start_inner(config, aggregator.clone(), true)?;
        if exporter.running.is_some() {
            exporter.own_aggregator = Some(aggregator);
        }
        Ok(exporter)
    }

    /// Like [`start`](Self::start), but pushes the series of an [`Aggregator`] that is
    /// fed elsewhere (for instance one that a Prometheus endpoint serves too): this
    /// exporter then records events as log records only and leaves the aggregation
    /// to whoever feeds the aggregator, so nothing is counted twice.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    /// use tracing_telemetry::{OtlpConfig, OtlpExporter};
    ///
    /// let aggregator = Aggregator::new();
    /// let exporter = OtlpExporter::start_with_aggregator(OtlpConfig::new(), aggregator.clone())?;
    /// // A fan-out sink gives every record to both `aggregator` and `exporter`.
    /// # exporter.shutdown();
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn start_with_aggregator(
        config: OtlpConfig,
        aggregator: Aggregator,
    ) -> Result<Self, Error> {
        Self::start_inner(config, aggregator, false)
    }

    fn start_inner(
        config: OtlpConfig,
        aggregator: Aggregator,
        count_events: bool,
    ) -> Result<Self, Error> {
        let capacity = config.queue_bytes;
        let (handoff, signals) = Handoff::new(capacity);
        let shared = Arc::new(Shared::new(handoff));
        let timeout = config.logs.timeout;
        let spool_dir = config.spool_dir.clone();
        if config.disabled {
            return Ok(OtlpExporter {
                running: None,
                own_aggregator: None,
                shared,
                capacity,
                timeout,
                spool_dir: None,
            });
        }
        let (tx, rx) = unbounded();
        let worker = Worker {
            rx,
            signals,
            count_events,
            shared: Arc::clone(&shared),
            resource: mapping::resource(&config),
            calibration: Calibration::new(),
            scope: mapping::scope(),
            logs: Transport::new(config.logs.clone(), Signal::Logs),
            metrics: MetricsPush {
                transport: Transport::new(config.metrics.clone(), Signal::Metrics),
                aggregator,
                interval: config.metric_interval,
                next: Instant::now() + config.metric_interval,
            },
            pending: Pending::new(),
            next_collect: Instant::now() + BATCH_DELAY,
            next_clock_check: Instant::now() + BATCH_DELAY,
            deadline: None,
            acks: Vec::new(),
            stop: None,
            failing: false,
            jitter: seed(),
            ids: RecordIds::new(),
            spool_config: config
                .spool_dir
                .clone()
                .map(|dir| (dir, config.spool_bytes)),
            spool: None,
            next_attempt: Instant::now(),
            attempt: 0,
        };
        let handle = thread::Builder::new()
            .name("telemetry-otlp".into())
            .spawn(move || worker.run())
            .map_err(Error::spawn)?;
        Ok(OtlpExporter {
            running: Some(Running {
                tx,
                worker: Mutex::new(Some(handle)),
            }),
            own_aggregator: None,
            shared,
            capacity,
            timeout,
            spool_dir,
        })
    }

    /// What this exporter did so far.
    ///
    /// ```
    /// let exporter = tracing_telemetry::OtlpExporter::start(tracing_telemetry::OtlpConfig::new())?;
    /// assert_eq!(exporter.stats().exported(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> OtlpStats {
        let s = &self.shared;
        OtlpStats {
            exported: s.exported.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            undelivered: s.undelivered.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            metric_pushes: s.metric_pushes.load(Ordering::Relaxed),
            metric_push_failures: s.metric_push_failures.load(Ordering::Relaxed),
            spooled: s.spooled.load(Ordering::Relaxed),
            spool_pending: s.spool_pending.load(Ordering::Relaxed),
            spool_dropped: s.spool_dropped.load(Ordering::Relaxed),
            spool_torn_bytes: s.spool_torn_bytes.load(Ordering::Relaxed),
            spool_failures: s.spool_failures.load(Ordering::Relaxed),
        }
    }

    /// Sends everything queued so far, waiting for it at most the configured timeout.
    /// Records that could not be sent in that time stay queued.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, OtlpConfig, OtlpExporter, Record, Sink};
    /// # use std::io::{BufRead, BufReader, Read, Write};
    /// # // A collector on a free local port that accepts every request.
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let endpoint = format!("http://{}", listener.local_addr()?);
    /// # std::thread::spawn(move || {
    /// #     for stream in listener.incoming().flatten() {
    /// #         std::thread::spawn(move || {
    /// #             let (mut reader, mut length, mut line) = (BufReader::new(stream), 0, String::new());
    /// #             while reader.read_line(&mut line).unwrap_or(0) > 0 {
    /// #                 match line.split_once(':') {
    /// #                     Some((name, value)) if name.eq_ignore_ascii_case("content-length") => length = value.trim().parse().unwrap(),
    /// #                     _ if line == "\r\n" => {
    /// #                         let mut body = vec![0; std::mem::take(&mut length)];
    /// #                         let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    /// #                         if reader.read_exact(&mut body).is_err() || reader.get_mut().write_all(ok).is_err() {
    /// #                             break;
    /// #                         }
    /// #                     }
    /// #                     _ => {}
    /// #                 }
    /// #                 line.clear();
    /// #             }
    /// #         });
    /// #     }
    /// # });
    ///
    /// let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])?;
    /// let exporter = OtlpExporter::start(config)?;
    /// exporter.record(&Record::new(Kind::Event, "user.signup", &[]));
    /// exporter.flush(); // returns once the collector has taken the record
    /// assert_eq!(exporter.stats().exported(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {
        let Some(running) = &self.running else { return };
        let (ack, done) = crossbeam_channel::bounded(1);
        if running.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(self.timeout);
        }
    }

    /// Sends what is queued, waiting at most the configured timeout, then stops the
    /// export thread and reports on stderr what could not be delivered, written before
    /// it returns (it waits at most a second more for a stuck stderr). Later records
    /// are dropped and counted. Calling it again does nothing.
    ///
    /// ```
    /// let exporter = tracing_telemetry::OtlpExporter::start(tracing_telemetry::OtlpConfig::new())?;
    /// exporter.shutdown();
    /// assert_eq!(exporter.stats().undelivered(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn shutdown(&self) {
        let Some(running) = &self.running else { return };
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = Instant::now() + self.timeout;
        let (ack, done) = crossbeam_channel::bounded(1);
        if running.tx.send(Msg::Shutdown(deadline, ack)).is_ok() {
            // The worker answers by the deadline; the margin covers a request that
            // was already under way with its own timeout.
            let _ = done.recv_timeout(self.timeout + Duration::from_millis(500));
        }
        let handle = running
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.is_finished() {
                let _ = handle.join();
                // Only once the export thread is gone: while it runs, what is in the
                // lanes is still its to send, or to spool.
                self.count_late_records();
            }
        }
        let stats = self.stats();
        // The summary waits (bounded) for room among the messages before it, and is
        // written before this returns: the app may exit right after.
        let report_by = Instant::now() + report::REPORT_WAIT;
        let mut said = false;
        if stats.undelivered > 0 || stats.dropped > 0 || stats.rejected > 0 {
            let redirected = self.shared.redirected.load(Ordering::Relaxed);
            stderr_line_by(
                format_args!(
                    "otlp export stopped: {} records delivered, {} not delivered within {} ms of shutdown, \
                     {} dropped (queue full), {} rejected by the collector{}",
                    stats.exported,
                    stats.undelivered,
                    self.timeout.as_millis(),
                    stats.dropped,
                    stats.rejected,
                    if redirected > 0 {
                        format!(
                            " (of the not delivered, {redirected} were answered with a redirect, which is not \
                             followed)"
                        )
                    } else {
                        String::new()
                    }
                ),
                report_by,
            );
            said = true;
        }
        if let (Some(dir), true) = (&self.spool_dir, stats.spool_pending > 0) {
            stderr_line_by(
                format_args!(
                    "otlp export stopped: {} records kept in the spool at {} for the next run",
                    stats.spool_pending,
                    dir.display()
                ),
                report_by,
            );
            said = true;
        }
        if said {
            report::flush_by(report_by);
        }
    }
}

impl OtlpExporter {
    /// Counts as undelivered the records a thread appended after the export thread's
    /// last look (it had checked `stopped` just before shutdown set it), so that they
    /// are not left uncounted in its lane.
    fn count_late_records(&self) {
        let mut late = Pending::new();
        let records = self.shared.handoff.collect(&mut late);
        if records > 0 {
            self.shared.handoff.release(late.abandon().bytes);
            self.shared
                .undelivered
                .fetch_add(records, Ordering::Relaxed);
        }
    }
}

impl Sink for OtlpExporter {
    fn record(&self, record: &Record<'_>) {
        if self.running.is_none() {
            return;
        }
        if record.kind() != Kind::Event {
            // Metrics and timings are aggregated here; events are counted on the
            // export thread, off the emitting thread's path.
            if let Some(aggregator) = &self.own_aggregator {
                aggregator.record(record);
            }
            return;
        }
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Relaxed) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if shared.handoff.push(record) != Pushed::Queued {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            if !shared.reported_full.swap(true, Ordering::Relaxed) {
                stderr_line(format_args!(
                    "the otlp export queue is full ({} bytes; the collector is unreachable or not keeping up): \
                     dropping records and counting them",
                    self.capacity
                ));
            }
        }
    }

    fn flush(&self) {
        OtlpExporter::flush(self)
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct MetricsPush {
    transport: Transport,
    aggregator: Aggregator,
    interval: Duration,
    next: Instant,
}

struct Worker {
    rx: Receiver<Msg>,
    /// A thread filled a chunk of its lane; emptied chunks go back to the threads.
    signals: Signals,
    shared: Arc<Shared>,
    /// Whether to count events into the aggregator (it is this exporter's own).
    count_events: bool,
    resource: Resource,
    /// Turns the counter values of records timed by it into Unix time.
    calibration: Calibration,
    scope: InstrumentationScope,
    logs: Transport,
    metrics: MetricsPush,
    /// Records taken from the emitting threads' lanes, oldest first.
    pending: Pending,
    /// When the threads' buffers are next collected and sent without being full.
    next_collect: Instant,
    /// When the clock is next checked (see [`Handoff::check_clock`]).
    next_clock_check: Instant,
    /// Set by shutdown: nothing is sent after it.
    deadline: Option<Instant>,
    /// Flushes waiting for the queue to empty.
    acks: Vec<Sender<()>>,
    stop: Option<Sender<()>>,
    /// Whether the collector is failing now (reported once per episode).
    failing: bool,
    jitter: u64,
    ids: RecordIds,
    /// The spool to open when the thread starts, and its byte limit.
    spool_config: Option<(PathBuf, u64)>,
    /// Every batch goes through it when it is open (see `send_spooled`).
    spool: Option<Spool>,
    /// When the oldest spooled request is tried next, and how many tries failed.
    next_attempt: Instant,
    attempt: u32,
}

enum Wake {
    Msg(Msg),
    /// A thread filled a chunk.
    Filled,
    Tick,
    Closed,
}

impl Worker {
    fn run(mut self) {
        self.open_spool();
        loop {
            if self.stop.is_some() {
                self.finish();
                return;
            }
            let mut due = self.next_collect.min(self.metrics.next);
            if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                due = due.min(self.next_attempt);
            }
            let wake = self.wait_until(due);
            // On every wake, not only on a quiet tick: a busy queue always has a
            // filled chunk waiting, and must not hold back the metrics.
            self.periodic();
            match wake {
                Wake::Closed => {
                    self.finish();
                    return;
                }
                Wake::Msg(msg) => self.take(msg),
                Wake::Filled => {
                    // One look at the lanes serves every chunk filled so far.
                    while self.signals.filled.try_recv().is_ok() {}
                    self.signals.stock_spares();
                }
                Wake::Tick => {
                    let now = Instant::now();
                    if now >= self.next_collect {
                        self.next_collect = now + BATCH_DELAY;
                    } else if !self.spool_due(now) {
                        continue;
                    }
                }
            }
            if self.stop.is_some() {
                continue;
            }
            self.shared.handoff.collect(&mut self.pending);
            if self.spool.is_some() {
                self.spool_pending();
                self.send_spooled();
                self.answer_flushes();
                continue;
            }
            loop {
                while self.has_pending() && self.stop.is_none() {
                    self.send_batch();
                    self.periodic();
                    self.signals.stock_spares();
                    // A long backlog must not hide a shutdown and its deadline.
                    while let Ok(msg) = self.rx.try_recv() {
                        self.take(msg);
                    }
                }
                // A flush asked while sending covers what the threads added since the
                // buffers were last taken: take them again before answering it.
                if self.acks.is_empty() || self.stop.is_some() {
                    break;
                }
                self.shared.handoff.collect(&mut self.pending);
                if !self.has_pending() {
                    break;
                }
            }
            self.answer_flushes();
        }
    }

    /// What is due by the clock whatever else is going on: the metrics push, and the
    /// check that the kernel still keeps time with the counter.
    fn periodic(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let now = Instant::now();
        if now >= self.metrics.next {
            self.metrics.next = now + self.metrics.interval;
            self.push_metrics();
        }
        if now >= self.next_clock_check {
            self.next_clock_check = now + BATCH_DELAY;
            self.shared.handoff.check_clock();
        }
    }

    /// The next message, a full buffer, or `Tick` at `until`.
    fn wait_until(&self, until: Instant) -> Wake {
        let timeout = until.saturating_duration_since(Instant::now());
        select! {
            recv(self.rx) -> msg => match msg {
                Ok(msg) => Wake::Msg(msg),
                Err(_) => Wake::Closed,
            },
            recv(self.signals.filled) -> filled => match filled {
                Ok(()) => Wake::Filled,
                Err(_) => Wake::Closed,
            },
            default(timeout) => Wake::Tick,
        }
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(ack) => self.acks.push(ack),
            Msg::Shutdown(deadline, ack) => {
                self.deadline = Some(deadline);
                self.stop = Some(ack);
            }
        }
    }

    fn answer_flushes(&mut self) {
        if !self.has_pending() && self.spool.as_ref().map_or(true, Spool::is_empty) {
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
        }
    }

    /// Shutdown: everything already queued, until the deadline; then the rest is
    /// counted as undelivered.
    fn finish(&mut self) {
        self.shared.handoff.collect(&mut self.pending);
        if self.spool.is_some() {
            self.spool_pending();
            self.send_spooled_before_deadline();
            // Records appended while shutdown began are spooled too.
            self.shared.handoff.collect(&mut self.pending);
            self.spool_pending();
            self.sync_spool_counts();
        }
        while self.has_pending() && !self.past_deadline() {
            self.send_batch();
        }
        // A record appended while shutdown began is given up too, and counted.
        self.shared.handoff.collect(&mut self.pending);
        let left = self.abandon_pending();
        self.shared.undelivered.fetch_add(left, Ordering::Relaxed);
        // The last values, so that a short-lived app's metrics arrive too.
        if !self.past_deadline() {
            self.push_metrics();
        }
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
        if let Some(ack) = self.stop.take() {
            let _ = ack.send(());
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Drops every pending record; returns how many there were. Walks the length
    /// prefixes only, so that giving up a large queue at shutdown takes no time.
    fn abandon_pending(&mut self) -> u64 {
        let taking = self.pending.abandon();
        self.shared.handoff.release(taking.bytes);
        taking.records
    }

    /// Sends the oldest batch, retrying transient failures until it is delivered,
    /// refused, or shutdown's deadline passes.
    fn send_batch(&mut self) {
        let Some((count, bytes, body)) = self.encode_batch() else {
            return;
        };
        let outcome = self.deliver(&body);
        self.shared.handoff.release(bytes);
        self.settle(count, outcome);
    }

    /// The oldest pending records, up to a batch, as one request body: its log
    /// records, the queue bytes they held, the body.
    fn encode_batch(&mut self) -> Option<(u64, usize, Vec<u8>)> {
        let converter = self.calibration.converter();
        // Read with the counter, so that no record's time is after it.
        let observed = converter.now_unix_nanos();
        let mut records = Vec::with_capacity(BATCH_RECORDS);
        let (aggregator, ids) = (&self.metrics.aggregator, &mut self.ids);
        let count_events = self.count_events;
        let taking = self
            .pending
            .next_batch(&self.signals, BATCH_RECORDS, |entry| {
                if let Some(mut event) = entry.read().filter(|e| e.kind == Kind::Event) {
                    if event.time_in_ticks {
                        event.time_unix_nano = converter.unix_nanos(event.time_unix_nano);
                        event.time_in_ticks = false;
                    }
                    if count_events {
                        let tags: Vec<Tag<'_>> =
                            event.tags.iter().map(|&(k, v)| Tag::new(k, v)).collect();
                        aggregator.record(&Record::new(Kind::Event, event.name, &tags));
                    }
                    records.push(mapping::log_record(&event, observed, ids.next_id()));
                }
                Batching::More
            })?;
        let count = records.len() as u64;
        let body = self
            .logs
            .body(&mapping::logs_request(&self.resource, &self.scope, records));
        Some((count, taking.bytes, body))
    }

    /// Counts what came of a request of `count` records.
    fn settle(&mut self, count: u64, outcome: Option<Outcome>) {
        match outcome {
            Some(Outcome::Accepted { rejected, message }) => {
                let rejected = rejected.min(count);
                self.shared
                    .exported
                    .fetch_add(count - rejected, Ordering::Relaxed);
                if rejected > 0 {
                    self.reject(rejected, &format!("partial success: {message}"));
                }
            }
            Some(Outcome::Permanent { reason }) => self.reject(count, &reason),
            Some(Outcome::Redirected { reason }) => self.redirected(count, &reason),
            // Shutdown's time ran out while retrying.
            Some(Outcome::Retry { .. }) | None => {
                self.shared.undelivered.fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    /// Pushes every series once; a failure is counted and reported once, not retried
    /// (the values are cumulative: the next push carries them).
    fn push_metrics(&mut self) {
        let series = self.metrics.aggregator.snapshot();
        let Some(request) =
            metrics_request(&self.resource, &self.scope, &series, SystemTime::now())
        else {
            return;
        };
        let body = self.metrics.transport.body(&request);
        let mut timeout = self.metrics.transport.timeout();
        if let Some(deadline) = self.deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        let problem = match self.metrics.transport.post(&body, timeout) {
            Outcome::Accepted { rejected: 0, .. } => None,
            Outcome::Accepted { rejected, message } => {
                Some(format!("{rejected} data points rejected: {message}"))
            }
            Outcome::Retry { reason, .. }
            | Outcome::Permanent { reason }
            | Outcome::Redirected { reason } => Some(reason),
        };
        match problem {
            None => {
                self.shared.metric_pushes.fetch_add(1, Ordering::Relaxed);
            }
            Some(reason) => {
                self.shared
                    .metric_push_failures
                    .fetch_add(1, Ordering::Relaxed);
                if !self.shared.reported_metrics.swap(true, Ordering::Relaxed) {
                    stderr_line(format_args!(
                        "cannot push metrics to the otlp collector at {}: {reason} (the next push carries the \
                         cumulative values; further failures are counted, not printed)",
                        self.metrics.transport.url()
                    ));
                }
            }
        }
    }

    fn reject(&self, count: u64, reason: &str) {
        self.shared.rejected.fetch_add(count, Ordering::Relaxed);
        if !self.shared.reported_rejected.swap(true, Ordering::Relaxed) {
            stderr_line(format_args!(
                "the otlp collector at {} rejected {count} records ({reason}); not retried, counted as rejected \
                 (further rejections are counted, not printed)",
                self.logs.url()
            ));
        }
    }

    /// Counts records answered with a redirect as not delivered; says so once.
    fn redirected(&self, count: u64, reason: &str) {
        self.shared.undelivered.fetch_add(count, Ordering::Relaxed);
        self.shared.redirected.fetch_add(count, Ordering::Relaxed);
        if !self
            .shared
            .reported_redirected
            .swap(true, Ordering::Relaxed)
        {
            stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason}; {count} records not delivered, not retried \
                 (further ones are counted, not printed)",
                self.logs.url()
            ));
        }
    }

    /// Posts `body` until an answer that is not "retry", or shutdown's deadline.
    fn deliver(&mut self, body: &[u8]) -> Option<Outcome> {
        let mut attempt = 0u32;
        loop {
            let mut timeout = self.logs.timeout();
            if let Some(deadline) = self.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                timeout = timeout.min(left);
            }
            let outcome = self.logs.post(body, timeout);
            let Outcome::Retry {
                reason,
                retry_after,
            } = &outcome
            else {
                self.report_reachable();
                return Some(outcome);
            };
            self.report_failing(reason);
            let wait = match retry_after {
                Some(after) => (*after).min(RETRY_AFTER_MAX),
                None => self.backoff(attempt),
            };
            attempt = attempt.saturating_add(1);
            if self.deadline.is_some_and(|d| Instant::now() + wait >= d) {
                // No time for another try after this wait.
                return Some(outcome);
            }
            self.shared.retries.fetch_add(1, Ordering::Relaxed);
            self.wait(wait);
        }
    }

    /// Waits before a retry, answering messages meanwhile (records keep collecting in
    /// the threads' buffers, within the byte bound). A shutdown cuts the wait short:
    /// one more try, with what time is left.
    fn wait(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match self.wait_until(until) {
                Wake::Msg(msg) => {
                    let was_stopping = self.stop.is_some();
                    self.take(msg);
                    if !was_stopping && self.stop.is_some() {
                        return;
                    }
                }
                Wake::Filled => {}
                Wake::Tick => return,
                Wake::Closed => {
                    thread::sleep(until.saturating_duration_since(Instant::now()));
                    return;
                }
            }
        }
    }

    fn report_reachable(&mut self) {
        if self.failing {
            self.failing = false;
            stderr_line(format_args!(
                "the otlp collector at {} is reachable again; queued records are being sent",
                self.logs.url()
            ));
        }
    }

    fn report_failing(&mut self, reason: &str) {
        if self.failing {
            return;
        }
        self.failing = true;
        match &self.spool {
            Some(spool) => stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason} (records are kept in the spool at {}, up \
                 to its limit, and are retried)",
                self.logs.url(),
                spool.dir().display()
            )),
            None => stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason} (records stay queued, up to the queue's \
                 bound, and are retried)",
                self.logs.url()
            )),
        }
    }

    /// Opens the spool if one is configured; without it (another process holds the
    /// directory, or it cannot be created) records stay in memory, as without a spool.
    fn open_spool(&mut self) {
        let Some((dir, limit)) = self.spool_config.take() else {
            return;
        };
        match Spool::open(&dir, limit) {
            Ok(mut spool) => {
                let left = spool.records();
                if left > 0 {
                    stderr_line(format_args!(
                        "the otlp spool at {} holds {left} records from an earlier run; they are sent first",
                        dir.display()
                    ));
                }
                // Damage skipped, files refused, a stale cursor: each said once.
                for notice in spool.take_notices() {
                    stderr_line(format_args!("{notice}"));
                }
                self.spool = Some(spool);
                self.sync_spool_counts();
            }
            Err(OpenError::Busy) => stderr_line(format_args!(
                "the otlp spool directory {} is in use by another process; this one keeps its records in \
                 memory only",
                dir.display()
            )),
            Err(OpenError::Refused(why)) => stderr_line(format_args!(
                "cannot use {} as the otlp spool directory (TELEMETRY_SPOOL_DIR): {why}; records are kept in \
                 memory only",
                dir.display()
            )),
            Err(OpenError::Io(err)) => stderr_line(format_args!(
                "cannot use {} as the otlp spool directory: {err}; records are kept in memory only",
                dir.display()
            )),
        }
    }

    fn spool_due(&self, now: Instant) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty()) && now >= self.next_attempt
    }

    /// Writes every pending record to the spool, one entry per batch, and frees their
    /// room in the queue. A batch the spool cannot take (disk full, an I/O error) is
    /// sent from memory, as without a spool.
    fn spool_pending(&mut self) {
        while let Some((count, bytes, body)) = self.encode_batch() {
            if count == 0 {
                self.shared.handoff.release(bytes);
                continue;
            }
            let gzip = self.logs.gzip();
            let written = match self.spool.as_mut() {
                Some(spool) => spool.append(u32::try_from(count).unwrap_or(u32::MAX), gzip, &body),
                None => Ok(()),
            };
            self.shared.handoff.release(bytes);
            match written {
                Ok(()) => {
                    self.shared.spooled.fetch_add(count, Ordering::Relaxed);
                }
                Err(err) => {
                    self.shared.spool_failures.fetch_add(1, Ordering::Relaxed);
                    if !self.shared.reported_spool.swap(true, Ordering::Relaxed) {
                        stderr_line(format_args!(
                            "cannot write to the otlp spool at {}: {err} (this batch is sent from memory; \
                             further failures are counted, not printed)",
                            self.spool.as_ref().map_or(String::new(), |s| s.dir().display().to_string())
                        ));
                    }
                    let outcome = self.deliver(&body);
                    self.settle(count, outcome);
                }
            }
        }
        self.sync_spool_counts();
    }

    /// Sends spooled requests, oldest first, while the collector takes them. A
    /// transient failure schedules the next try (backoff, or `Retry-After`) and
    /// returns, so that new records keep going to the spool meanwhile. So does a
    /// redirect: for a spooled request it is not an answer for good (an auth proxy
    /// or a moved collector would otherwise drain the spool into the void), and the
    /// request stays on disk. So does an error reading the spool itself.
    fn send_spooled(&mut self) {
        while self.stop.is_none() && Instant::now() >= self.next_attempt {
            let batch = match self.spool.as_mut().map(Spool::front) {
                Some(Ok(Some(batch))) => batch,
                Some(Err(_)) => {
                    self.say_spool_notices();
                    let wait = self.backoff(self.attempt);
                    self.attempt = self.attempt.saturating_add(1);
                    self.next_attempt = Instant::now() + wait;
                    break;
                }
                Some(Ok(None)) | None => break,
            };
            let outcome = self
                .logs
                .post_encoded(&batch.body, batch.gzip, self.logs.timeout());
            let retry = match &outcome {
                Outcome::Retry {
                    reason,
                    retry_after,
                } => Some((reason, *retry_after)),
                Outcome::Redirected { reason } => Some((reason, None)),
                Outcome::Accepted { .. } | Outcome::Permanent { .. } => None,
            };
            if let Some((reason, retry_after)) = retry {
                self.report_failing(reason);
                let wait = match retry_after {
                    Some(after) => after.min(RETRY_AFTER_MAX),
                    None => self.backoff(self.attempt),
                };
                self.attempt = self.attempt.saturating_add(1);
                self.shared.retries.fetch_add(1, Ordering::Relaxed);
                self.next_attempt = Instant::now() + wait;
                break;
            }
            self.report_reachable();
            self.attempt = 0;
            self.accept_spooled(batch.records, outcome);
            // A long backlog must not hide a shutdown and its deadline.
            while let Ok(msg) = self.rx.try_recv() {
                self.take(msg);
            }
        }
        self.sync_spool_counts();
    }

    /// Shutdown: one more try for each spooled request, in order, until the deadline
    /// or the first transient failure; what is left stays for the next run.
    fn send_spooled_before_deadline(&mut self) {
        while let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let batch = match self.spool.as_mut().map(Spool::front) {
                Some(Ok(Some(batch))) => batch,
                Some(Err(_)) => {
                    self.say_spool_notices();
                    break;
                }
                Some(Ok(None)) | None => break,
            };
            let outcome =
                self.logs
                    .post_encoded(&batch.body, batch.gzip, self.logs.timeout().min(left));
            // A redirect, as a transient failure: the request stays for the next run.
            if let Outcome::Retry { reason, .. } | Outcome::Redirected { reason } = &outcome {
                self.report_failing(reason);
                break;
            }
            self.report_reachable();
            self.accept_spooled(batch.records, outcome);
        }
        self.sync_spool_counts();
    }

    /// What the spool found worth saying since it was opened (a read error), each once.
    fn say_spool_notices(&mut self) {
        if let Some(spool) = self.spool.as_mut() {
            for notice in spool.take_notices() {
                stderr_line(format_args!("{notice}"));
            }
        }
    }

    /// The oldest spooled request was answered for good (accepted, or refused with a
    /// status that is not retried; never a redirect): count it, forget it.
    fn accept_spooled(&mut self, records: u32, outcome: Outcome) {
        if let Some(spool) = self.spool.as_mut() {
            spool.pop_front();
        }
        self.settle(u64::from(records), Some(outcome));
    }

    fn sync_spool_counts(&self) {
        let Some(spool) = &self.spool else { return };
        let shared = &self.shared;
        shared
            .spool_pending
            .store(spool.records(), Ordering::Relaxed);
        shared
            .spool_torn_bytes
            .store(spool.torn_bytes, Ordering::Relaxed);
        let before = shared
            .spool_dropped
            .swap(spool.dropped_records, Ordering::Relaxed);
        if before == 0 && spool.dropped_records > 0 {
            stderr_line(format_args!(
                "the otlp spool at {} is full: dropping the oldest records and counting them (raise its limit, \
                 or check why the collector does not accept them)",
                spool.dir().display()
            ));
        }
    }

    /// 250 ms doubling to 5 s, each drawn at random from its upper half.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let full = BACKOFF_START
            .saturating_mul(1u32 << attempt.min(16))
            .min(BACKOFF_MAX);
        // xorshift64: enough to spread retries; not for anything secret.
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let half = full / 2;
        half + half.mul_f64((self.jitter % 1024) as f64 / 1024.0)
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) ^ u64::from(std::process::id()) << 32) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Tag;

    #[test]
    fn a_record_appended_after_the_export_thread_s_last_look_is_counted_at_shutdown() {
        // Nothing listens there: whatever is queued is undelivered.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
            .unwrap()
            .with_timeout(Duration::from_millis(100));
        let exporter = OtlpExporter::start(config).unwrap();
        let tags = [Tag::new("plan", "pro")];
        let record = Record::new(Kind::Event, "user.signup", &tags);
        exporter.record(&record);
        exporter.shutdown();
        assert_eq!(exporter.stats().undelivered(), 1);
        // A thread that found `stopped` unset just before shutdown set it, and appends
        // after the export thread has stopped looking.
        let pushed = exporter.shared.handoff.push(&record);
        assert_eq!(pushed, Pushed::Queued);
        exporter.count_late_records();
        let stats = exporter.stats();
        assert_eq!(
            (stats.exported(), stats.dropped(), stats.undelivered()),
            (0, 0, 2),
            "{stats:?}"
        );
        // Counted once.
        exporter.count_late_records();
        assert_eq!(exporter.stats().undelivered(), 2);
    }
}
