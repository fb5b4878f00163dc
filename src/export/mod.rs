//! The exporters `TELEMETRY_EXPORTER` selects, one per destination, behind the one
//! sink that `try_init` installs.
//!
//! JSON lines take three stages, one file each, as tracing-appender splits its
//! non-blocking writer:
//!
//! * [`handoff`]: emitting threads encode into batches of their own and hand them
//!   over whole; the writer thread takes them. Stats, flush and shutdown live here.
//! * [`worker`]: the writer thread's loop, generic over any [`Write`].
//! * [`file`]: the telemetry file (0600, append, no symbolic links, re-opened after
//!   rotation).
//!
//! The line itself comes from [`crate::encode`].

mod file;
mod handoff;
mod worker;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
#[cfg(any(feature = "prometheus", feature = "otlp"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::{Config, Destination, Exporter};
use crate::encode::LineEncoder;
use crate::error::Error;
use crate::record::Record;
use crate::report::{self, stderr_line};
use crate::sink::Sink;

pub(crate) use file::open_hint;
use file::AppendFile;
use handoff::{Handoff, Limits};
use worker::Worker;

/// How long `try_init` waits for the telemetry file to open (a hung network file
/// system must not hang the app's start).
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// Counts of what an exporter did with the records it was given.
///
/// For any run, the records made while telemetry was on equal
/// `written + dropped + failed` once export has stopped.
///
/// ```
/// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
/// let stats = guard.stats();
/// assert_eq!((stats.written(), stats.dropped(), stats.failed()), (0, 0, 0));
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    written: u64,
    dropped: u64,
    failed: u64,
}

impl ExportStats {
    pub(crate) fn new(written: u64, dropped: u64, failed: u64) -> Self {
        ExportStats {
            written,
            dropped,
            failed,
        }
    }

    /// Records written to the destination.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::ExportStats::default().written(), 0);
    /// ```
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records dropped because the buffer was full, or because export had stopped.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::ExportStats::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records lost to write errors (a full disk, a closed pipe).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::ExportStats::default().failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.failed
    }

    fn add(self, other: ExportStats) -> ExportStats {
        ExportStats::new(
            self.written + other.written,
            self.dropped + other.dropped,
            self.failed + other.failed,
        )
    }
}

/// What one destination did: which exporter it is, and its [`ExportStats`]. From
/// [`Guard::destination_stats`](crate::Guard::destination_stats).
///
/// ```
/// let config = tracing_telemetry::Config::new();
/// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config)?;
/// let stderr = guard.destination_stats()[0];
/// assert_eq!(stderr.exporter(), tracing_telemetry::Exporter::Stderr);
/// assert_eq!(stderr.stats().dropped(), 0);
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationStats {
    exporter: Exporter,
    stats: ExportStats,
}

impl DestinationStats {
    /// The destination's exporter, as `TELEMETRY_EXPORTER` names it.
    ///
    /// ```
    /// # let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
    /// assert_eq!(guard.destination_stats()[0].exporter().as_str(), "stderr");
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn exporter(&self) -> Exporter {
        self.exporter
    }

    /// Its counts: written (for OTLP, accepted by the collector), dropped, failed. The
    /// Prometheus endpoint writes nothing per record (its series are read on scrape),
    /// so it counts only the records it dropped because it could not start.
    ///
    /// ```
    /// # let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
    /// assert_eq!(guard.destination_stats()[0].stats().written(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> ExportStats {
        self.stats
    }
}

/// One destination's exporter, as [`ExporterSink`] drives it.
pub(crate) trait Export: Send + Sync + fmt::Debug + 'static {
    /// Starts export now (at `try_init`, when telemetry is on), so that a destination
    /// that cannot be opened or bound fails the start. Otherwise it starts with the
    /// first record.
    fn start(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Takes one record, on the emitting thread: never waits on the destination
    /// (beyond the bounded wait for room that the exporter documents).
    fn record(&self, record: &Record<'_>);
    /// Delivers everything recorded so far, waiting while the destination makes
    /// progress.
    fn flush(&self);
    /// Flushes and stops, bounded; returns the summary line to print, if any.
    fn shutdown(&self) -> Option<String>;
    /// What it did so far.
    fn stats(&self) -> ExportStats;
    /// Whether it writes each record's time (aggregations do not).
    fn writes_time(&self) -> bool {
        true
    }
}

/// Where a JSON-lines exporter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    Stdout,
    Stderr,
    /// An absolute path, resolved once.
    File(PathBuf),
}

impl Output {
    fn name(&self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
            Output::File(_) => "file",
        }
    }
}

/// The writer behind an [`Output`].
enum OutputWriter {
    Stdout(worker::Stdout),
    Stderr(worker::Stderr),
    File(AppendFile),
}

impl Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutputWriter::Stdout(w) => w.write(buf),
            OutputWriter::Stderr(w) => w.write(buf),
            OutputWriter::File(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            OutputWriter::Stdout(w) => w.write_all(buf),
            OutputWriter::Stderr(w) => w.write_all(buf),
            OutputWriter::File(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutputWriter::Stdout(w) => w.flush(),
            OutputWriter::Stderr(w) => w.flush(),
            OutputWriter::File(w) => w.flush(),
        }
    }
}

/// JSON lines to one [`Output`], through a [`Handoff`] and a writer thread.
pub(crate) struct JsonLines {
    output: Output,
    encoder: LineEncoder,
    handoff: Arc<Handoff>,
    /// Set when export starts: eagerly by `try_init` when telemetry is on, or by the
    /// first record after it is turned on at run time. `None` if the writer thread
    /// could not start (then records are dropped and counted).
    worker: OnceLock<Option<Mutex<Option<JoinHandle<()>>>>>,
}

impl JsonLines {
    pub(crate) fn new(
        output: Output,
        encoder: LineEncoder,
        limits: Limits,
        label: Option<&'static str>,
    ) -> Self {
        JsonLines {
            output,
            encoder,
            handoff: Arc::new(Handoff::new(limits, label)),
            worker: OnceLock::new(),
        }
    }

    /// Starts the writer thread now and waits (up to [`OPEN_WAIT`]) for it to open
    /// the destination, so that a file that cannot be opened fails `try_init`.
    fn start_now(&self) -> Result<(), Error> {
        let opened = match &self.output {
            Output::File(path) => {
                let path = path.clone();
                self.spawn(move || AppendFile::open(&path).map(OutputWriter::File))
            }
            _ => self.spawn_deferred(),
        };
        let (handle, opened) = opened.map_err(Error::spawn)?;
        let outcome = match opened.recv_timeout(OPEN_WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("opening did not finish within {OPEN_WAIT:?}"),
            )),
        };
        match outcome {
            Ok(()) => {
                let _ = self.worker.set(Some(Mutex::new(Some(handle))));
                Ok(())
            }
            Err(err) => {
                // A writer whose open returns after this (a slow file system) finds the
                // hand-off shut and stops at once.
                self.handoff.abandon();
                let path = match &self.output {
                    Output::File(path) => path.clone(),
                    _ => PathBuf::from(self.output.name()),
                };
                Err(Error::open(path, err))
            }
        }
    }

    /// Starts the writer thread without waiting for anything: the file, if any, is
    /// opened on that thread, and an error opening it is a write error (reported
    /// once, records counted as failed, retried every second).
    fn spawn_deferred(&self) -> io::Result<(JoinHandle<()>, mpsc::Receiver<io::Result<()>>)> {
        let output = self.output.clone();
        self.spawn(move || {
            Ok(match output {
                Output::Stdout => OutputWriter::Stdout(worker::Stdout),
                Output::Stderr => OutputWriter::Stderr(worker::Stderr),
                Output::File(path) => OutputWriter::File(AppendFile::deferred(&path)),
            })
        })
    }

    fn spawn<W: Write + 'static>(
        &self,
        open: impl FnOnce() -> io::Result<W> + Send + 'static,
    ) -> io::Result<(JoinHandle<()>, mpsc::Receiver<io::Result<()>>)> {
        spawn_worker(Arc::clone(&self.handoff), open)
    }

    fn started(&self) -> bool {
        self.worker
            .get_or_init(|| match self.spawn_deferred() {
                Ok((handle, _)) => Some(Mutex::new(Some(handle))),
                Err(err) => {
                    stderr_line(format_args!(
                        "cannot start exporting to {}: {err} (records are dropped and counted)",
                        self.output.name()
                    ));
                    None
                }
            })
            .is_some()
    }
}

/// Starts a writer thread that opens its writer with `open`, says whether that
/// worked, and then writes what `handoff` gives it until shutdown.
fn spawn_worker<W: Write + 'static>(
    handoff: Arc<Handoff>,
    open: impl FnOnce() -> io::Result<W> + Send + 'static,
) -> io::Result<(JoinHandle<()>, mpsc::Receiver<io::Result<()>>)> {
    let (opened_tx, opened) = mpsc::sync_channel(1);
    let handle = thread::Builder::new()
        .name("telemetry-export".into())
        .spawn(move || match open() {
            Ok(writer) => {
                let _ = opened_tx.send(Ok(()));
                Worker::new(writer, handoff).run();
            }
            Err(err) => {
                let _ = opened_tx.send(Err(err));
            }
        })?;
    Ok((handle, opened))
}

impl Export for JsonLines {
    fn start(&self) -> Result<(), Error> {
        self.start_now()
    }

    fn record(&self, record: &Record<'_>) {
        if self.started() {
            self.handoff.record(|buf| self.encoder.encode(record, buf));
        } else {
            self.handoff.refuse(1);
        }
    }

    fn flush(&self) {
        if let Some(Some(_)) = self.worker.get() {
            self.handoff.flush();
        }
    }

    fn shutdown(&self) -> Option<String> {
        // Sealed here if it never started (waiting for a start under way), so that no
        // record after the guard is gone starts a writer that nothing would stop.
        let Some(worker) = self.worker.get_or_init(|| None) else {
            return self.handoff.summary(true);
        };
        let finished = self.handoff.shutdown();
        if finished {
            let handle = worker.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(handle) = handle {
                let _ = handle.join();
            }
        }
        self.handoff.summary(finished)
    }

    fn stats(&self) -> ExportStats {
        self.handoff.stats()
    }
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("output", &self.output)
            .field("stats", &self.handoff.stats())
            .finish_non_exhaustive()
    }
}

/// An exporter that starts when telemetry does: at `try_init` when it is on, else
/// with the first record after it is turned on (on the emitting thread: starting
/// spawns threads and binds a socket, it never waits on a peer). If it cannot start
/// then, that is said once on stderr and its records are dropped and counted.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
struct Deferred<E> {
    name: &'static str,
    /// Whether `E` writes each record's time (see [`Export::writes_time`]).
    writes_time: bool,
    start: Box<dyn Fn() -> Result<E, Error> + Send + Sync>,
    started: OnceLock<Option<E>>,
    refused: AtomicU64,
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl<E: Export> Deferred<E> {
    fn new(
        name: &'static str,
        writes_time: bool,
        start: impl Fn() -> Result<E, Error> + Send + Sync + 'static,
    ) -> Self {
        Deferred {
            name,
            writes_time,
            start: Box::new(start),
            started: OnceLock::new(),
            refused: AtomicU64::new(0),
        }
    }

    fn running(&self) -> Option<&E> {
        self.started
            .get_or_init(|| match (self.start)() {
                Ok(export) => Some(export),
                Err(err) => {
                    stderr_line(format_args!(
                        "cannot start the {} exporter: {err} (its records are dropped and counted)",
                        self.name
                    ));
                    None
                }
            })
            .as_ref()
    }
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl<E: Export> Export for Deferred<E> {
    fn start(&self) -> Result<(), Error> {
        let export = (self.start)()?;
        let _ = self.started.set(Some(export));
        Ok(())
    }

    fn writes_time(&self) -> bool {
        self.writes_time
    }

    fn record(&self, record: &Record<'_>) {
        match self.running() {
            Some(export) => export.record(record),
            None => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {
        if let Some(Some(export)) = self.started.get() {
            export.flush();
        }
    }

    fn shutdown(&self) -> Option<String> {
        // Sealed if it never started, as for JSON lines: a later record starts nothing.
        // What it refused because it could not start was said once, when it happened;
        // the count comes at the end, like every other loss.
        match self.started.get_or_init(|| None) {
            Some(export) => export.shutdown(),
            None => match self.refused.load(Ordering::Relaxed) {
                0 => None,
                refused => Some(format!(
                    "{} export summary: {refused} records dropped (the exporter could not start)",
                    self.name
                )),
            },
        }
    }

    fn stats(&self) -> ExportStats {
        let refused = ExportStats::new(0, self.refused.load(Ordering::Relaxed), 0);
        match self.started.get() {
            Some(Some(export)) => export.stats().add(refused),
            _ => refused,
        }
    }
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl<E> fmt::Debug for Deferred<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred")
            .field("name", &self.name)
            .field("started", &matches!(self.started.get(), Some(Some(_))))
            .finish_non_exhaustive()
    }
}

/// The one aggregation that the Prometheus endpoint serves and the OTLP exporter
/// pushes, fed here, once per record, whatever the exporters.
#[cfg(feature = "aggregate")]
impl Export for crate::aggregate::Aggregator {
    fn record(&self, record: &Record<'_>) {
        Sink::record(self, record);
    }

    fn writes_time(&self) -> bool {
        false
    }

    fn flush(&self) {}

    fn shutdown(&self) -> Option<String> {
        None
    }

    fn stats(&self) -> ExportStats {
        ExportStats::new(0, self.dropped(), 0)
    }
}

/// The Prometheus endpoint of an app's `try_init`: it serves the aggregation that
/// [`ExporterSink`] feeds (as a destination of its own), so a record is nothing to it,
/// and whether the endpoint is up or not, the series are fed the same. What the
/// aggregation dropped is counted there.
#[cfg(feature = "prometheus")]
#[derive(Debug)]
struct Endpoint(crate::prometheus::PrometheusExporter);

#[cfg(feature = "prometheus")]
impl Export for Endpoint {
    fn record(&self, _: &Record<'_>) {}

    fn writes_time(&self) -> bool {
        false
    }

    fn flush(&self) {}

    fn shutdown(&self) -> Option<String> {
        self.0.shutdown();
        None
    }

    fn stats(&self) -> ExportStats {
        ExportStats::default()
    }
}

/// Events are log records sent to the collector: written when it accepted them,
/// failed when it rejected them or they could not be delivered. The exporter prints
/// its own summary at shutdown.
#[cfg(feature = "otlp")]
impl Export for crate::otlp::OtlpExporter {
    fn record(&self, record: &Record<'_>) {
        Sink::record(self, record);
    }

    fn flush(&self) {
        crate::otlp::OtlpExporter::flush(self);
    }

    fn shutdown(&self) -> Option<String> {
        crate::otlp::OtlpExporter::shutdown(self);
        None
    }

    fn stats(&self) -> ExportStats {
        let stats = crate::otlp::OtlpExporter::stats(self);
        ExportStats::new(
            stats.exported(),
            stats.dropped(),
            stats.rejected() + stats.undelivered(),
        )
    }
}

/// The sink behind [`try_init`](crate::try_init) and [`layer`](crate::layer): every
/// record to every destination `TELEMETRY_EXPORTER` names, each with its own buffer,
/// writer thread and stats, so a slow destination never starves the others.
///
/// For the JSON-lines destinations (stdout, stderr, a file):
///
/// * **The emitting thread never waits on I/O.** It encodes the record into a batch
///   of its own (64 KiB) and hands the batch to the destination's writer thread when
///   full; the writer also collects batches that are not full within 0.1 s, so a line
///   reaches the destination at most about 0.1 s after its call. No lock that the
///   writer holds while writing is ever taken by an emitting thread, and the crate's
///   own messages are written by a thread of their own.
/// * **Memory is bounded in bytes**: at most 16 MiB of batches wait for the writer
///   ([`Config::with_buffer_bytes`](crate::Config::with_buffer_bytes) changes it),
///   plus the batch each emitting thread is filling (64 KiB and one record).
/// * **A full buffer** means the destination is not keeping up: the emitter waits up
///   to 100 ms for room, which absorbs bursts without loss. If no room comes, records
///   are dropped and counted, at once (no more waiting) until the writer makes room
///   again; so a destination that has stopped costs the app one 100 ms wait, and one
///   that is merely slow holds emitters back rather than losing records. The first
///   drop is reported once on stderr; [`Guard::stats`](crate::Guard::stats) counts
///   them.
/// * **Write errors** (a full disk, a closed pipe) never panic: the first is reported
///   on stderr, the records lost are counted, and the next successful write starts on
///   a new line, so a line torn by the failure never merges with the next.
/// * **Files** are created readable by their owner only (0600) and appended to; a
///   symbolic link at the path is refused, not followed; a FIFO is opened without
///   blocking (one that no process reads fails `try_init`); `try_init` waits at most
///   5 s for the file to open. If the file is rotated away or deleted, it is
///   re-created within a second; while it cannot be, records are counted as lost.
/// * **Shutdown** (dropping the [`Guard`](crate::Guard)) writes everything recorded.
///   It waits as long as the destination makes progress, and gives up after 5 s
///   without any, counting what was still queued as dropped. Records made on other
///   threads meanwhile, or later, are dropped and counted: records made while
///   telemetry was on = written + dropped + failed. A one-line summary says so when
///   anything was dropped or lost.
/// * **Nothing starts while telemetry is off**: no thread, no file. Turned on at run
///   time, export starts with the first record, on a thread of its own (the file is
///   opened there, never on the emitting thread).
///
/// ```
/// use std::sync::Arc;
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::{Config, Destination};
///
/// let path = std::env::temp_dir().join(format!("telemetry-doc-{}.jsonl", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let config = Config::new().with_enabled(true).with_destinations([Destination::file(&path)]);
/// let (layer, guard) = tracing_telemetry::layer_with(&config)?;
/// let sink = Arc::clone(layer.inner().sink()); // the ExporterSink
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
/// });
/// drop(guard); // writes everything recorded, then stops export
/// assert_eq!(sink.stats().written(), 1);
/// assert!(std::fs::read_to_string(&path)?.contains(r#""name":"user.signup""#));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ExporterSink {
    destinations: Vec<Box<dyn Export>>,
    /// The exporter of each destination, in the same order; `None` for the
    /// aggregation that the Prometheus and OTLP exporters share.
    exporters: Vec<Option<Exporter>>,
    /// More than one destination writes each record's time: read it once for all.
    shared_time: bool,
}

impl ExporterSink {
    /// The exporters `config` asks for; started at once (so that a file that cannot be
    /// opened fails `try_init`) when telemetry is on.
    ///
    /// `switch` is the app's on/off switch, for the exporters that report it (the
    /// Prometheus endpoint's `telemetry_enabled`).
    pub(crate) fn from_config(
        config: &Config,
        #[cfg_attr(
            not(feature = "prometheus"),
            allow(unused_variables, reason = "only the Prometheus endpoint reports it")
        )]
        switch: Option<&crate::TelemetryHandle>,
    ) -> Result<Self, Error> {
        let limits = Limits {
            queue_bytes: config.buffer_bytes(),
            ..Limits::DEFAULT
        };
        let enabled = config.enabled();
        let several = config.destinations().len() > 1;
        // The service name is encoded once here, for every line of every destination.
        let encoder = LineEncoder::new(config.resource().service_name());
        #[cfg(feature = "aggregate")]
        let aggregator = config.aggregator().cloned().unwrap_or_default();
        let mut sink = ExporterSink {
            destinations: Vec::with_capacity(config.destinations().len() + 1),
            exporters: Vec::with_capacity(config.destinations().len() + 1),
            shared_time: false,
        };
        // One aggregation, fed once, here, whatever the exporters: the Prometheus
        // endpoint serves it, the OTLP exporter pushes it. So `otlp`, `prometheus` and
        // `prometheus,otlp` give the same series from the same calls (span fields are
        // labels only where the app opts in), whether or not the endpoint could start.
        #[cfg(feature = "aggregate")]
        if config.destinations().iter().any(|d| {
            matches!(
                d.exporter(),
                crate::config::Exporter::Prometheus | crate::config::Exporter::Otlp
            )
        }) {
            sink.destinations.push(Box::new(aggregator.clone()));
            sink.exporters.push(None);
        }
        for destination in config.destinations() {
            let exporter = destination.exporter();
            let output = match destination {
                Destination::Stdout => Output::Stdout,
                Destination::Stderr => Output::Stderr,
                // Made absolute when the configuration was built; again here for a
                // `Destination::File` built by hand.
                Destination::File(path) => Output::File(absolute(path)),
                #[cfg(feature = "prometheus")]
                Destination::Prometheus(addr) => {
                    let (addr, aggregator) = (*addr, aggregator.clone());
                    let resource = config.resource().clone();
                    let switch = switch.cloned();
                    let prometheus = Deferred::new("prometheus", false, move || {
                        crate::prometheus::PrometheusExporter::start_serving(
                            addr,
                            aggregator.clone(),
                            &resource,
                            switch.clone(),
                        )
                        .map(Endpoint)
                    });
                    // Bound at `try_init` whether telemetry is on or off: off, it serves
                    // the crate's own series (`telemetry_enabled 0`), so that the
                    // scrape target is up and turning telemetry on changes no target.
                    // Off, an address that cannot be bound does not stop the app: it is
                    // said, and tried again when telemetry is turned on.
                    if !enabled {
                        if let Err(err) = prometheus.start() {
                            stderr_line(format_args!(
                                "cannot serve the Prometheus endpoint while telemetry is off: {err} \
                                 (the app goes on; it is tried again if telemetry is turned on)"
                            ));
                        }
                    }
                    sink.push(exporter, prometheus, enabled)?;
                    continue;
                }
                #[cfg(feature = "otlp")]
                Destination::Otlp(otlp) => {
                    // The resource `Config` resolved (code-set names win over OTEL_*),
                    // and its spool directory.
                    let mut otlp = otlp.clone().with_resource(config.resource());
                    if let Some(dir) = config.spool_dir() {
                        otlp = otlp.with_spool_dir(dir);
                    }
                    // It pushes the one aggregation, fed above.
                    let shared = aggregator.clone();
                    let refused = config.otlp_error().cloned();
                    sink.push(
                        exporter,
                        Deferred::new("otlp", true, move || {
                            if let Some(err) = &refused {
                                return Err(err.clone().into());
                            }
                            crate::otlp::OtlpExporter::start_with_aggregator(
                                otlp.clone(),
                                shared.clone(),
                            )
                        }),
                        enabled,
                    )?;
                    continue;
                }
                #[allow(
                    unreachable_patterns,
                    reason = "reachable when a feature adds a destination this build lacks"
                )]
                _ => continue,
            };
            let label = several.then(|| output.name());
            sink.push(
                exporter,
                JsonLines::new(output, encoder.clone(), limits, label),
                enabled,
            )?;
        }
        sink.shared_time = sink.destinations.iter().filter(|d| d.writes_time()).count() > 1;
        Ok(sink)
    }

    /// Adds `export`, started now when telemetry is on. If it cannot start, the ones
    /// already started are stopped: a failed start leaves nothing running.
    fn push(
        &mut self,
        exporter: Exporter,
        export: impl Export,
        enabled: bool,
    ) -> Result<(), Error> {
        if enabled {
            if let Err(err) = export.start() {
                for started in &self.destinations {
                    let _ = started.shutdown();
                }
                return Err(err);
            }
        }
        self.destinations.push(Box::new(export));
        self.exporters.push(Some(exporter));
        Ok(())
    }

    /// What each destination did so far, in the order `TELEMETRY_EXPORTER` names them:
    /// never added up across destinations, so that a record written to two of them
    /// counts once in each. Also readable after the [`Guard`](crate::Guard) is gone.
    ///
    /// ```
    /// use tracing_telemetry::{Config, Destination, Exporter};
    ///
    /// let config = Config::new().with_destinations([Destination::Stdout, Destination::Stderr]);
    /// let (layer, _guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config)?;
    /// let each = layer.inner().sink().destination_stats();
    /// assert_eq!(each.iter().map(|d| d.exporter()).collect::<Vec<_>>(), [Exporter::Stdout, Exporter::Stderr]);
    /// assert_eq!(each[0].stats().written(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn destination_stats(&self) -> Vec<DestinationStats> {
        self.exporters
            .iter()
            .zip(&self.destinations)
            .filter_map(|(exporter, destination)| {
                Some(DestinationStats {
                    exporter: (*exporter)?,
                    stats: destination.stats(),
                })
            })
            .collect()
    }

    /// What the exporters did so far, added up over the destinations. Also readable
    /// after the [`Guard`](crate::Guard) is gone, to account for records made later.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_enabled(true).with_destinations([]);
    /// let (layer, _guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config)?;
    /// assert_eq!(layer.inner().sink().stats().written(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> ExportStats {
        self.destinations
            .iter()
            .fold(ExportStats::default(), |sum, d| sum.add(d.stats()))
    }

    /// Writes everything recorded, stops every exporter and says on stderr what was
    /// lost, if anything. Later records are dropped and counted.
    pub(crate) fn shutdown(&self) {
        // Every destination is stopped at once, each on a thread of its own, so that
        // the wait is bounded by the slowest destination's bound, not by their sum.
        // A thread that cannot be spawned stops its destination here instead.
        let summaries: Vec<Option<String>> = match &self.destinations[..] {
            [] => Vec::new(),
            [one] => vec![one.shutdown()],
            several => std::thread::scope(|scope| {
                let stopping: Vec<_> = several
                    .iter()
                    .map(|destination| {
                        std::thread::Builder::new()
                            .name("telemetry-shutdown".into())
                            .spawn_scoped(scope, || destination.shutdown())
                            .map_err(|_| destination)
                    })
                    .collect();
                stopping
                    .into_iter()
                    .map(|stopping| match stopping {
                        Ok(thread) => thread.join().unwrap_or(None),
                        Err(destination) => destination.shutdown(),
                    })
                    .collect()
            }),
        };
        // One wait for every summary: each waits for room in the reporter's queue (a
        // summary is never dropped for earlier messages), all by the same deadline.
        let mut report_by = None;
        for summary in summaries.into_iter().flatten() {
            let by = *report_by.get_or_insert_with(|| Instant::now() + report::REPORT_WAIT);
            report::stderr_line_by(format_args!("{summary}"), by);
        }
        if let Some(by) = report_by {
            report::flush_by(by);
        }
    }
}

/// `path` made absolute against the current directory now, so that a later `chdir`
/// in the app cannot move the stream.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl Sink for ExporterSink {
    fn record(&self, record: &Record<'_>) {
        if self.shared_time {
            // Read once here, so that every destination writes the same instant (one
            // alone may time the record by other means; see `otlp::clock`).
            let _ = record.timestamp();
        }
        for destination in &self.destinations {
            destination.record(record);
        }
    }

    fn flush(&self) {
        for destination in &self.destinations {
            destination.flush();
        }
    }
}

impl fmt::Debug for ExporterSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExporterSink")
            .field("destinations", &self.destinations)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Kind;
    use std::sync::{mpsc, Condvar};
    use std::time::Instant;

    /// A writer that tells when a write starts and blocks until released.
    struct Gate {
        entered: mpsc::Sender<()>,
        release: Arc<(Mutex<bool>, Condvar)>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.entered.send(());
            let (open, cv) = &*self.release;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn release(gate: &(Mutex<bool>, Condvar)) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    /// The production hand-off and writer thread, writing to `writer`.
    fn export(writer: impl Write + Send + 'static, limits: Limits) -> Arc<Handoff> {
        let handoff = Arc::new(Handoff::new(limits, None));
        let (_worker, opened) = spawn_worker(Arc::clone(&handoff), move || Ok(writer)).unwrap();
        opened.recv().unwrap().unwrap();
        handoff
    }

    /// Every record its own batch: the queue's room is counted in lines of `line`.
    fn per_record(lines: usize, line: usize) -> Limits {
        Limits {
            batch_bytes: 1,
            queue_bytes: lines * line,
            ..Limits::DEFAULT
        }
    }

    fn line_len(name: &str) -> usize {
        let mut line = Vec::new();
        LineEncoder::new("test").encode(&Record::new(Kind::Event, name, &[]), &mut line);
        line.len()
    }

    fn emit(handoff: &Handoff, name: &str) {
        handoff.record(|buf| {
            LineEncoder::new("test").encode(&Record::new(Kind::Event, name, &[]), buf)
        });
    }

    fn counts(handoff: &Handoff) -> (u64, u64, u64) {
        let stats = handoff.stats();
        (stats.written(), stats.dropped(), stats.failed())
    }

    fn names(out: &Mutex<Vec<u8>>) -> Vec<String> {
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_full_buffer_waits_once_then_drops_at_once_until_the_writer_makes_room() {
        let (entered_tx, entered) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        // Room for the batch being written and four more.
        let line = line_len("queued-0");
        let limits = Limits {
            queue_bytes: line_len("taken-by-the-worker") + 4 * line,
            ..per_record(0, line)
        };
        let handoff = export(
            Gate {
                entered: entered_tx,
                release: Arc::clone(&gate),
                out: Arc::clone(&out),
            },
            limits,
        );

        emit(&handoff, "taken-by-the-worker");
        entered.recv().unwrap(); // the worker is now stuck writing it
        for i in 0..4 {
            emit(&handoff, &format!("queued-{i}")); // fills the queue
        }
        assert_eq!(counts(&handoff), (0, 0, 0));

        let first = Instant::now();
        emit(&handoff, "waits-then-stays");
        assert!(
            first.elapsed() >= limits.full_wait,
            "the first emitter waits for room"
        );
        let rest = Instant::now();
        emit(&handoff, "dropped-at-once-1");
        emit(&handoff, "dropped-at-once-2");
        assert!(
            rest.elapsed() < limits.full_wait,
            "while overloaded, emitters do not wait"
        );
        assert_eq!(
            counts(&handoff),
            (0, 2, 0),
            "the record that waited stays in its thread's batch; the next ones are dropped"
        );

        release(&gate);
        assert!(handoff.flush());
        emit(&handoff, "after-recovery");
        assert!(handoff.shutdown());

        assert_eq!(counts(&handoff), (7, 2, 0));
        assert_eq!(
            names(&out),
            [
                "taken-by-the-worker",
                "queued-0",
                "queued-1",
                "queued-2",
                "queued-3",
                "waits-then-stays",
                "after-recovery"
            ]
        );
    }

    #[test]
    fn shedding_ends_as_soon_as_the_writer_makes_room() {
        let (entered_tx, entered) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let line = line_len("a-0");
        let handoff = export(
            Gate {
                entered: entered_tx,
                release: Arc::clone(&gate),
                out: Arc::clone(&out),
            },
            per_record(2, line),
        );
        emit(&handoff, "a-0");
        entered.recv().unwrap();
        emit(&handoff, "a-1");
        emit(&handoff, "a-2"); // waits in vain, stays in the batch
        emit(&handoff, "a-3"); // dropped at once
        assert_eq!(counts(&handoff), (0, 1, 0));
        release(&gate);
        // One write frees room: the next record is taken again, without waiting for
        // the queue to drain.
        while handoff.stats().written() == 0 {
            std::thread::yield_now();
        }
        emit(&handoff, "b-0");
        assert!(handoff.shutdown());
        assert_eq!(counts(&handoff), (4, 1, 0));
        assert_eq!(names(&out), ["a-0", "a-1", "a-2", "b-0"]);
    }

    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_failures_are_counted_and_never_panic() {
        let handoff = export(Failing, Limits::DEFAULT);
        for i in 0..10 {
            emit(&handoff, &format!("e{i}"));
        }
        assert!(handoff.shutdown());
        assert_eq!(counts(&handoff), (0, 0, 10));
        emit(&handoff, "after-shutdown");
        assert_eq!(
            handoff.stats().dropped(),
            1,
            "records after shutdown are counted"
        );
    }

    /// Fails the first write (after writing half of it), then works.
    struct FailsOnceMidLine {
        calls: usize,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for FailsOnceMidLine {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls == 1 {
                self.out
                    .lock()
                    .unwrap()
                    .extend_from_slice(&buf[..buf.len() / 2]);
                return Err(io::Error::other("no space left on device"));
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_torn_write_the_next_line_starts_clean() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let handoff = export(
            FailsOnceMidLine {
                calls: 0,
                out: Arc::clone(&out),
            },
            Limits::DEFAULT,
        );
        emit(&handoff, "torn");
        assert!(handoff.flush());
        emit(&handoff, "whole");
        assert!(handoff.shutdown());
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let last = text.lines().last().unwrap();
        let json: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(json["name"], "whole");
        assert_eq!(counts(&handoff), (1, 0, 1));
    }

    #[test]
    fn shutdown_gives_up_on_a_destination_that_makes_no_progress() {
        let (entered_tx, entered) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let limits = Limits {
            stall: Duration::from_millis(200),
            ..per_record(4, line_len("queued"))
        };
        let handoff = export(
            Gate {
                entered: entered_tx,
                release: Arc::clone(&gate),
                out: Arc::default(),
            },
            limits,
        );
        emit(&handoff, "stuck");
        entered.recv().unwrap();
        emit(&handoff, "queued");
        let started = Instant::now();
        assert!(
            !handoff.shutdown(),
            "must return although the writer never does"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            counts(&handoff),
            (0, 2, 0),
            "the record being written and the one queued are counted as dropped"
        );
        // The write that was given up on completes later: it is not counted twice.
        release(&gate);
        emit(&handoff, "after");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(counts(&handoff), (0, 3, 0));
    }

    #[test]
    fn a_quiet_thread_s_records_are_written_within_the_tick() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedWriter(Arc::clone(&out));
        let handoff = export(writer, Limits::DEFAULT);
        emit(&handoff, "alone");
        let deadline = Instant::now() + Duration::from_secs(10);
        while names(&out).is_empty() {
            assert!(Instant::now() < deadline, "never written without a flush");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(names(&out), ["alone"]);
        assert!(handoff.shutdown());
    }

    struct SharedWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A flush wakes the writer itself: with a tick that never comes in the test's
    /// life, the flush is answered and the record is written when it returns, and so is
    /// a flush with nothing queued (the writer is then asleep with no tick at all).
    #[test]
    fn flush_wakes_an_idle_writer_instead_of_waiting_for_the_tick() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let handoff = export(
            SharedWriter(Arc::clone(&out)),
            Limits {
                tick: Duration::from_secs(24 * 3600),
                // A flush that is never answered returns false after this long without
                // progress; ample for a busy machine to schedule the writer.
                stall: Duration::from_secs(30),
                ..Limits::DEFAULT
            },
        );
        emit(&handoff, "one");
        assert!(
            handoff.flush(),
            "a flush with a record queued went unanswered"
        );
        assert_eq!(names(&out), ["one"]);
        assert!(
            handoff.flush(),
            "a flush with nothing queued went unanswered"
        );
        assert_eq!(counts(&handoff), (1, 0, 0));
        assert!(handoff.shutdown());
    }

    #[test]
    fn records_from_threads_that_keep_emitting_while_shutting_down_are_all_counted() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let handoff = export(
            SharedWriter(Arc::clone(&out)),
            Limits {
                batch_bytes: 4096,
                ..Limits::DEFAULT
            },
        );
        let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let emitters: Vec<_> = (0..4)
            .map(|t| {
                let handoff = Arc::clone(&handoff);
                let made = Arc::clone(&made);
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        emit(&handoff, &format!("t{t}-{i}"));
                        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        while made.load(std::sync::atomic::Ordering::Relaxed) < 10_000 {
            std::thread::yield_now();
        }
        assert!(handoff.shutdown());
        for e in emitters {
            e.join().unwrap();
        }
        let (written, dropped, failed) = counts(&handoff);
        assert_eq!(written + dropped + failed, 80_000);
        assert!(dropped > 0, "records after shutdown began are dropped");
        assert_eq!(
            names(&out).len() as u64,
            written,
            "written means on the writer"
        );
    }

    #[test]
    fn a_sink_that_never_received_a_record_starts_nothing() {
        let sink = ExporterSink::from_config(&Config::new().with_enabled(false), None).unwrap();
        assert_eq!(sink.destinations.len(), 1);
        let json = format!("{:?}", sink.destinations[0]);
        assert!(json.contains("Stderr"), "{json}");
        sink.shutdown();
    }
    #[test]
    fn a_writer_stuck_on_a_job_of_several_batches_has_every_one_accounted_for() {
        let (entered_tx, entered) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let limits = Limits {
            stall: Duration::from_millis(200),
            ..Limits::DEFAULT
        };
        let handoff = Arc::new(Handoff::new(limits, None));
        let writer = Gate {
            entered: entered_tx,
            release: Arc::clone(&gate),
            out: Arc::default(),
        };
        let (worker, opened) = spawn_worker(Arc::clone(&handoff), move || Ok(writer)).unwrap();
        opened.recv().unwrap().unwrap();
        // Two threads, one record each: two batches, collected into one job by the
        // tick; the writer blocks on the first.
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let threads: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (handoff, barrier) = (Arc::clone(&handoff), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    emit(&handoff, name);
                    barrier.wait();
                    barrier.wait();
                })
            })
            .collect();
        barrier.wait();
        entered.recv().unwrap();
        assert!(!handoff.shutdown());
        barrier.wait();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counts(&handoff), (0, 2, 0), "both records counted once");
        // The write given up on completes: counted nowhere else, and the writer does
        // not trip over the emptied queue.
        release(&gate);
        worker
            .join()
            .expect("the writer thread ends without panicking");
        assert_eq!(counts(&handoff), (0, 2, 0));
    }

    #[test]
    fn a_quiet_thread_s_record_is_written_within_the_tick_while_another_is_busy() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let handoff = export(SharedWriter(Arc::clone(&out)), Limits::DEFAULT);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy = {
            let (handoff, stop) = (Arc::clone(&handoff), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0_u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    emit(&handoff, "busy");
                    i += 1;
                    if i % 200 == 0 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let quiet = {
            let handoff = Arc::clone(&handoff);
            std::thread::spawn(move || emit(&handoff, "quiet"))
        };
        quiet.join().unwrap();
        let started = Instant::now();
        while !names(&out).iter().any(|n| n == "quiet")
            && started.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let waited = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        busy.join().unwrap();
        assert!(
            waited < Duration::from_secs(1),
            "the quiet record waited {waited:?} behind a busy thread's batches"
        );
        assert!(handoff.shutdown());
    }

    #[test]
    fn after_shutdown_a_record_starts_nothing_and_is_counted() {
        let dir = std::env::temp_dir().join(format!("telemetry-late-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let config = Config::new()
            .with_enabled(false)
            .with_destinations([Destination::File(path.clone())]);
        let sink = ExporterSink::from_config(&config, None).unwrap();
        sink.shutdown();
        // Telemetry turned on at run time after the guard was dropped.
        sink.record(&Record::new(Kind::Event, "late", &[]));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!path.exists(), "no file after shutdown");
        assert_eq!(sink.stats(), ExportStats::new(0, 1, 0));
        let started = Instant::now();
        sink.flush();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "flush after shutdown returns"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "prometheus")]
    #[test]
    fn after_shutdown_a_record_binds_no_endpoint() {
        // The address is taken, so the endpoint, bound at once even with telemetry
        // off, could not start: it is left to start with the first record.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = Config::new()
            .with_enabled(false)
            .with_destinations([Destination::Prometheus(taken.local_addr().unwrap())]);
        let sink = ExporterSink::from_config(&config, None).unwrap();
        sink.shutdown();
        sink.record(&Record::new(Kind::Event, "late", &[]));
        // The endpoint comes after the aggregation it serves.
        let shown = format!("{:?}", sink.destinations.last().unwrap());
        assert!(shown.contains("started: false"), "{shown}");
        assert_eq!(sink.stats().dropped(), 1);
    }

    /// With telemetry off, the endpoint is bound at once and serves the crate's own
    /// series, `telemetry_enabled` among them, following the switch.
    #[cfg(feature = "prometheus")]
    #[test]
    fn off_the_endpoint_is_bound_and_says_whether_telemetry_is_on() {
        use std::io::{Read, Write};

        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let filter = crate::TelemetryFilter::new(false);
        let handle = filter.handle();
        let config = Config::new()
            .with_enabled(false)
            .with_destinations([Destination::Prometheus(addr)]);
        let sink = ExporterSink::from_config(&config, Some(&handle)).unwrap();
        let scrape = || {
            let mut conn = std::net::TcpStream::connect(addr).expect("the endpoint is bound");
            conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).unwrap();
            answer
        };
        let answer = scrape();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\ntelemetry_enabled 0"), "{answer}");
        handle.enable();
        assert!(scrape().contains("\ntelemetry_enabled 1"));
        sink.shutdown();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "closed at shutdown"
        );
    }

    /// Whether records through `destinations` have their time read once, before any
    /// destination sees them (built with telemetry off).
    fn time_read_up_front(destinations: Vec<Destination>) -> bool {
        let sink = ExporterSink::from_config(
            &Config::new()
                .with_enabled(false)
                .with_destinations(destinations),
            None,
        )
        .unwrap();
        sink.shared_time
    }

    #[test]
    fn two_destinations_that_write_the_time_share_one_reading_of_the_clock() {
        let path = std::env::temp_dir().join("telemetry-shared-time.jsonl");
        assert!(time_read_up_front(vec![
            Destination::Stderr,
            Destination::File(path)
        ]));
        assert!(!time_read_up_front(vec![Destination::Stderr]));
    }

    #[cfg(all(feature = "prometheus", feature = "otlp"))]
    #[test]
    fn an_aggregation_beside_otlp_does_not_make_it_read_the_wall_clock() {
        let prometheus = Destination::Prometheus("127.0.0.1:0".parse().unwrap());
        let otlp = Destination::Otlp(crate::otlp::OtlpConfig::new());
        assert!(!time_read_up_front(vec![prometheus, otlp.clone()]));
        let aggregated = Config::new()
            .with_enabled(false)
            .with_destinations([otlp.clone()])
            .with_aggregator(crate::aggregate::Aggregator::new());
        assert!(
            !ExporterSink::from_config(&aggregated, None)
                .unwrap()
                .shared_time
        );
        assert!(time_read_up_front(vec![Destination::Stderr, otlp]));
    }
}
