//! The OTLP exporter's front: where the app starts it, records go in, and flush,
//! shutdown and the counts come from. It is a [`Queue`] of the pipeline with the
//! OTLP policy; what it adds is in [`destination`](super::destination), the counts
//! in [`stats`](super::stats).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::destination::{LogRecords, MetricsPush};
use super::mapping::{self, RecordIds};
use super::stats::{OtlpStats, Shared};
use super::transport::Transport;
use crate::aggregate::Aggregator;
use crate::config::otlp::{OtlpConfig, Signal};
use crate::error::Error;
use crate::fields::Kind;
use crate::pipeline::{Backoff, BatchPolicy, Ending, Policy, Queue, WhenFull};
use crate::record::Record;
use crate::report::{self, stderr_line_by};
use crate::sink::Sink;

/// Records in one request at most (the specification's default batch size for logs).
const BATCH_RECORDS: usize = 512;
/// How long a record waits for others to share its request.
const BATCH_DELAY: Duration = Duration::from_millis(1000);
/// Backoff between retries: starts here, doubles, is capped, and is jittered down to
/// half so that many apps do not retry in step; a `Retry-After` is honoured up to
/// its maximum.
const BACKOFF: Backoff = Backoff {
    start: Duration::from_millis(250),
    max: Duration::from_secs(5),
    after_max: Duration::from_secs(300),
};

/// The OTLP exporter's queue policies: drop at once when full (a collector away for
/// minutes must not slow the app), a deadline at shutdown, batches of up to 512
/// records a second, retries with backoff.
fn policy(config: &OtlpConfig) -> Policy {
    Policy {
        queue_bytes: config.queue_bytes,
        when_full: WhenFull::Drop,
        ending: Ending::Deadline(config.logs.timeout),
        batch: BatchPolicy {
            bytes: usize::MAX,
            records: BATCH_RECORDS,
            delay: BATCH_DELAY,
        },
        retry: Some(BACKOFF),
    }
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
    queue: Queue,
    /// False when `OTEL_SDK_DISABLED=true`: no thread, every record ignored.
    running: bool,
    /// Set by the first shutdown, which prints the summary.
    stopped: AtomicBool,
    /// The series this exporter pushes, when it feeds them itself (see
    /// [`start_with_aggregator`](Self::start_with_aggregator)).
    own_aggregator: Option<Aggregator>,
    shared: Arc<Shared>,
    capacity: usize,
    timeout: Duration,
    spool_dir: Option<PathBuf>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("running", &self.running)
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
        let mut exporter = Self::start_inner(config, aggregator.clone(), true, None)?;
        if exporter.running {
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
        Self::start_inner(config, aggregator, false, None)
    }

    /// [`start_with_aggregator`](Self::start_with_aggregator), for an app's
    /// `try_init`: each metrics push also carries what every destination did
    /// (`telemetry.destination.records`), read from `health`.
    pub(crate) fn start_in_app(
        config: OtlpConfig,
        aggregator: Aggregator,
        health: crate::pipeline::DestinationsFn,
    ) -> Result<Self, Error> {
        Self::start_inner(config, aggregator, false, Some(health))
    }

    fn start_inner(
        config: OtlpConfig,
        aggregator: Aggregator,
        count_events: bool,
        health: Option<crate::pipeline::DestinationsFn>,
    ) -> Result<Self, Error> {
        let capacity = config.queue_bytes;
        let queue = Queue::new(policy(&config), None).with_full_notice(format!(
            "the otlp export queue is full ({capacity} bytes; the collector is unreachable or not keeping up): \
             dropping records and counting them"
        ));
        let shared = Arc::new(Shared::default());
        let timeout = config.logs.timeout;
        let spool_dir = config.spool_dir.clone();
        let mut exporter = OtlpExporter {
            queue,
            running: false,
            stopped: AtomicBool::new(false),
            own_aggregator: None,
            shared: Arc::clone(&shared),
            capacity,
            timeout,
            spool_dir: None,
        };
        if config.disabled {
            return Ok(exporter);
        }
        let destination = LogRecords {
            shared,
            count_events,
            resource: mapping::resource(&config),
            scope: mapping::scope(),
            logs: Transport::new(config.logs.clone(), Signal::Logs),
            metrics: MetricsPush {
                transport: Transport::new(config.metrics.clone(), Signal::Metrics),
                aggregator,
                health,
                started: SystemTime::now(),
                interval: config.metric_interval,
                next: Instant::now() + config.metric_interval,
            },
            ids: RecordIds::new(),
            records: Vec::with_capacity(BATCH_RECORDS),
            observed: 0,
            spool_config: config
                .spool_dir
                .clone()
                .map(|dir| (dir, config.spool_bytes)),
            spool_dir: None,
            reported_rejected: false,
            reported_redirected: false,
            reported_metrics: false,
        };
        exporter
            .queue
            .start("telemetry-otlp", move || Ok(destination))
            .map_err(Error::spawn)?;
        exporter.running = true;
        exporter.spool_dir = spool_dir;
        Ok(exporter)
    }

    /// What this exporter did so far.
    ///
    /// ```
    /// let exporter = tracing_telemetry::OtlpExporter::start(tracing_telemetry::OtlpConfig::new())?;
    /// assert_eq!(exporter.stats().exported(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> OtlpStats {
        let (c, s) = (self.queue.counts(), &self.shared);
        OtlpStats {
            exported: c.written,
            dropped: c.dropped,
            rejected: c.rejected,
            undelivered: c.undelivered,
            retries: c.retries,
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
        if self.running {
            self.queue.flush();
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
        if !self.running || self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.queue.shutdown();
        let stats = self.stats();
        // The summary waits (bounded) for room among the messages before it, and is
        // written before this returns: the app may exit right after.
        let report_by = Instant::now() + report::REPORT_WAIT;
        let mut said = false;
        if stats.undelivered > 0 || stats.dropped > 0 || stats.rejected > 0 {
            let redirected = self.queue.counts().diverted;
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
    /// Bytes of the queue's bound still taken; 0 once shut down (what is left
    /// reserved then is busy threads' unused room, no record).
    pub(crate) fn queued_bytes(&self) -> u64 {
        self.queue.counts().queued_bytes
    }

    /// Whether its metric records only update the aggregation it was given, which it
    /// pushes (not one of its own): then they have no effect here at all.
    #[cfg(feature = "metrics")]
    pub(crate) fn pushes_shared_aggregation(&self) -> bool {
        self.own_aggregator.is_none()
    }
}

impl Sink for OtlpExporter {
    fn record(&self, record: &Record<'_>) {
        if !self.running {
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
        self.queue.push(record);
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
        // A thread that found the queue open just before shutdown closed it, and
        // appends after the export thread has stopped looking.
        assert!(exporter.queue.push_after_last_look(&record));
        let stats = exporter.stats();
        assert_eq!(
            (stats.exported(), stats.dropped(), stats.undelivered()),
            (0, 0, 2),
            "{stats:?}"
        );
        // Counted once.
        assert_eq!(exporter.stats().undelivered(), 2);
    }
}
