//! The exporters `TELEMETRY_EXPORTER` selects, one per destination, behind the one
//! sink that `try_init` installs: the fan-out, once per record, to the aggregation
//! (inline) and to each destination's queue ([`crate::pipeline`]); the destinations
//! themselves are in [`crate::destinations`] (JSON lines) and [`crate::otlp`].

use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(any(feature = "prometheus", feature = "otlp"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[cfg(any(feature = "prometheus", feature = "otlp"))]
use std::sync::OnceLock;
#[cfg(any(feature = "prometheus", feature = "otlp"))]
use std::sync::Weak;
use std::time::Instant;

use crate::config::{Config, Destination, Exporter};
use crate::encode::LineEncoder;
use crate::error::Error;
use crate::record::Record;
use crate::report;
#[cfg(any(feature = "prometheus", feature = "otlp"))]
use crate::report::stderr_line;
use crate::sink::Sink;

use crate::destinations::json_lines::{self, JsonLines, Output};
pub(crate) use crate::destinations::Export;
use crate::pipeline::Policy;
pub use crate::pipeline::{DestinationStats, ExportStats};

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

    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    fn metrics_only_aggregated(&self) -> bool {
        // Not started (or failed to): a record would start it, or be counted refused.
        matches!(self.started.get(), Some(Some(export)) if export.metrics_only_aggregated())
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

    #[cfg(feature = "metrics")]
    fn metrics_only_aggregated(&self) -> bool {
        true
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

    #[cfg(feature = "metrics")]
    fn metrics_only_aggregated(&self) -> bool {
        true
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
        .holding(self.queued_bytes(), stats.spool_pending())
    }

    #[cfg(feature = "metrics")]
    fn metrics_only_aggregated(&self) -> bool {
        crate::otlp::OtlpExporter::pushes_shared_aggregation(self)
    }
}

/// Each destination of a sink, as the Prometheus endpoint reads their counts at a
/// scrape (`telemetry_destination_records_total`). Weak: the endpoint is one of the
/// destinations, and must not keep the others, or itself, alive.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
#[derive(Clone, Default)]
struct Board(Arc<OnceLock<Vec<Posted>>>);

/// One destination on a [`Board`].
#[cfg(any(feature = "prometheus", feature = "otlp"))]
type Posted = (Exporter, Weak<dyn Export>);

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl Board {
    fn reader(&self) -> crate::pipeline::DestinationsFn {
        let board = self.clone();
        Arc::new(move || {
            board
                .0
                .get()
                .map(|each| {
                    each.iter()
                        .filter_map(|(exporter, d)| Some((exporter.as_str(), d.upgrade()?.stats())))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn fill(&self, sink: &ExporterSink) {
        let each = sink
            .exporters
            .iter()
            .zip(&sink.destinations)
            .filter_map(|(exporter, d)| Some(((*exporter)?, Arc::downgrade(d))))
            .collect();
        let _ = self.0.set(each);
    }
}

/// The sink behind [`try_init`](crate::try_init) and [`layer`](crate::layer): every
/// record to every destination `TELEMETRY_EXPORTER` names, each with its own buffer,
/// writer thread and stats, so a slow destination never starves the others.
///
/// For the JSON-lines destinations (stdout, stderr, a file):
///
/// * **The emitting thread never waits on I/O, and takes no lock.** It copies the
///   record, as it is, into a buffer of its own (no encoding, no shared write per
///   record); the destination's worker thread takes every thread's records every
///   0.1 s (at once when a busy thread has filled 256 KiB), encodes the lines and
///   writes them in batches of about 64 KiB, so a line reaches the destination at most
///   about 0.1 s after its call. The crate's own messages are written by a thread of
///   their own. The same hand-off carries OTLP log records (see `src/pipeline/`
///   in the source).
/// * **Memory is bounded in bytes**: at most 16 MiB of records wait for the worker
///   ([`Config::with_buffer_bytes`](crate::Config::with_buffer_bytes) changes it),
///   counted as copied (a record's fields, strings and a few bytes more), plus at
///   most one record per emitting thread that waited for room (below).
/// * **A full buffer** means the destination is not keeping up: the emitter waits up
///   to 100 ms for room, which absorbs bursts without loss; the record it waited with
///   is then kept. If no room came, the next records are dropped and counted, at once
///   (no more waiting) until the worker makes room again; so a destination that has
///   stopped costs the app one 100 ms wait, and one that is merely slow holds
///   emitters back rather than losing records. The first drop is reported once on
///   stderr; [`Guard::stats`](crate::Guard::stats) counts them.
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
    destinations: Vec<Arc<dyn Export>>,
    /// The exporter of each destination, in the same order; `None` for the
    /// aggregation that the Prometheus and OTLP exporters share.
    exporters: Vec<Option<Exporter>>,
    /// More than one destination writes each record's time: read it once for all.
    shared_time: bool,
    /// The aggregation among the destinations, if any.
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    aggregation: Option<crate::aggregate::Aggregator>,
    /// The switch of the layer in front.
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    switch: Option<crate::TelemetryHandle>,
    /// Whether the layer in front is the only one that sees track calls.
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    alone: bool,
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
            not(any(
                feature = "prometheus",
                all(feature = "metrics", feature = "aggregate")
            )),
            allow(
                unused_variables,
                reason = "the Prometheus endpoint and the facade use it"
            )
        )]
        switch: Option<&crate::TelemetryHandle>,
    ) -> Result<Self, Error> {
        let policy = Policy {
            queue_bytes: config.buffer_bytes(),
            ..json_lines::POLICY
        };
        let enabled = config.enabled();
        let several = config.destinations().len() > 1;
        // The service name is encoded once here, for every line of every destination.
        let encoder = LineEncoder::new(config.resource().service_name());
        #[cfg(feature = "aggregate")]
        let aggregator = config.aggregator().cloned().unwrap_or_default();
        // What the Prometheus endpoint reads each destination's counts from, filled
        // once every destination is built (the endpoint is one of them).
        #[cfg(any(feature = "prometheus", feature = "otlp"))]
        let board = Board::default();
        let mut sink = ExporterSink {
            destinations: Vec::with_capacity(config.destinations().len() + 1),
            exporters: Vec::with_capacity(config.destinations().len() + 1),
            shared_time: false,
            #[cfg(all(feature = "metrics", feature = "aggregate"))]
            aggregation: None,
            #[cfg(all(feature = "metrics", feature = "aggregate"))]
            switch: switch.cloned(),
            #[cfg(all(feature = "metrics", feature = "aggregate"))]
            alone: false,
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
            sink.destinations.push(Arc::new(aggregator.clone()));
            sink.exporters.push(None);
            #[cfg(feature = "metrics")]
            {
                sink.aggregation = Some(aggregator.clone());
            }
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
                    let read = board.reader();
                    let prometheus = Deferred::new("prometheus", false, move || {
                        crate::prometheus::PrometheusExporter::start_serving(
                            addr,
                            aggregator.clone(),
                            &resource,
                            switch.clone(),
                            Some(Arc::clone(&read)),
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
                    let health = board.reader();
                    sink.push(
                        exporter,
                        Deferred::new("otlp", true, move || {
                            if let Some(err) = &refused {
                                return Err(err.clone().into());
                            }
                            crate::otlp::OtlpExporter::start_in_app(
                                otlp.clone(),
                                shared.clone(),
                                Arc::clone(&health),
                            )
                        }),
                        enabled,
                    )?;
                    continue;
                } // No catch-all arm: a new destination fails to compile here until it
                  // is handled.
            };
            let label = several.then(|| output.name());
            sink.push(
                exporter,
                JsonLines::new(output, encoder.clone(), policy, label),
                enabled,
            )?;
        }
        sink.shared_time = sink.destinations.iter().filter(|d| d.writes_time()).count() > 1;
        #[cfg(any(feature = "prometheus", feature = "otlp"))]
        board.fill(&sink);
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
        self.destinations.push(Arc::new(export));
        self.exporters.push(Some(exporter));
        Ok(())
    }

    /// The aggregation, when a metric record's only effect here is one update of it:
    /// every destination is the aggregation or reads it (Prometheus, OTLP), and has
    /// started. What the `metrics` facade's kept handles then update without a record.
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    pub(crate) fn aggregation_only(&self) -> Option<&crate::aggregate::Aggregator> {
        let aggregator = self.aggregation.as_ref()?;
        self.destinations
            .iter()
            .all(|d| d.metrics_only_aggregated())
            .then_some(aggregator)
    }

    /// The switch of the layer in front (`None` for a sink built outside
    /// [`layer_with`](crate::layer_with)).
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    pub(crate) fn switch(&self) -> Option<&crate::TelemetryHandle> {
        self.switch.as_ref()
    }

    /// Marks the sink as behind the only layer of its subscriber that sees track calls
    /// (the subscriber `try_init` builds), so that what a record does here is all it
    /// does.
    pub(crate) fn seen_alone(self) -> Self {
        #[cfg(all(feature = "metrics", feature = "aggregate"))]
        return ExporterSink {
            alone: true,
            ..self
        };
        #[cfg(not(all(feature = "metrics", feature = "aggregate")))]
        self
    }

    /// Whether [`seen_alone`](Self::seen_alone).
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    pub(crate) fn is_alone(&self) -> bool {
        self.alone
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
                Some(DestinationStats::new((*exporter)?, destination.stats()))
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
            // alone may time the record by other means; see `pipeline::clock`).
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
    use std::time::{Duration, Instant};

    #[test]
    fn a_sink_that_never_received_a_record_starts_nothing() {
        let sink = ExporterSink::from_config(&Config::new().with_enabled(false), None).unwrap();
        assert_eq!(sink.destinations.len(), 1);
        let json = format!("{:?}", sink.destinations[0]);
        assert!(json.contains("Stderr"), "{json}");
        sink.shutdown();
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

    /// The endpoint serves each destination's counts, as `Guard::destination_stats`
    /// gives them, never added up.
    #[cfg(feature = "prometheus")]
    #[test]
    fn the_endpoint_serves_what_each_destination_wrote_dropped_and_lost() {
        use std::io::{Read, Write};

        let dir = std::env::temp_dir().join(format!("telemetry-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let config = Config::new().with_enabled(true).with_destinations([
            Destination::File(dir.join("t.jsonl")),
            Destination::Prometheus(addr),
        ]);
        let sink = ExporterSink::from_config(&config, None).unwrap();
        for _ in 0..3 {
            sink.record(&Record::new(Kind::Event, "user.signup", &[]));
        }
        sink.flush();
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        for line in [
            "telemetry_destination_records_total{destination=\"file\",outcome=\"written\"} 3",
            "telemetry_destination_records_total{destination=\"file\",outcome=\"dropped\"} 0",
            "telemetry_destination_records_total{destination=\"file\",outcome=\"failed\"} 0",
            "telemetry_destination_records_total{destination=\"prometheus\",outcome=\"dropped\"} 0",
            "telemetry_destination_queued_bytes{destination=\"file\"} 0",
            "telemetry_destination_spooled_records{destination=\"file\"} 0",
        ] {
            assert!(answer.contains(line), "{line} not in {answer}");
        }
        sink.shutdown();
        std::fs::remove_dir_all(&dir).unwrap();
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
