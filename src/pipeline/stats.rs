//! The counts each destination keeps: [`ExportStats`], and [`DestinationStats`] to
//! name whose they are.

use crate::config::Exporter;

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
    queued_bytes: u64,
    spooled: u64,
}

impl ExportStats {
    pub(crate) fn new(written: u64, dropped: u64, failed: u64) -> Self {
        ExportStats {
            written,
            dropped,
            failed,
            queued_bytes: 0,
            spooled: 0,
        }
    }

    /// What is still held: bytes in the buffer, records in the spool.
    pub(crate) fn holding(mut self, queued_bytes: u64, spooled: u64) -> Self {
        self.queued_bytes = queued_bytes;
        self.spooled = spooled;
        self
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

    /// Bytes of the buffer still taken: records waiting for the destination, as the
    /// buffer's bound counts them (copied, or encoded while the writer is behind), and
    /// what busy threads reserved ahead (at most 4 KiB each). 0 once export has
    /// stopped.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::ExportStats::default().queued_bytes(), 0);
    /// ```
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Records kept on disk for a later delivery: the OTLP exporter's spool
    /// (`TELEMETRY_SPOOL_DIR`); 0 for the other destinations. Not yet written, and
    /// not lost: they count as written once the collector accepts them, possibly in a
    /// later run.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::ExportStats::default().spooled(), 0);
    /// ```
    pub fn spooled(&self) -> u64 {
        self.spooled
    }

    pub(crate) fn add(self, other: ExportStats) -> ExportStats {
        ExportStats::new(
            self.written + other.written,
            self.dropped + other.dropped,
            self.failed + other.failed,
        )
        .holding(
            self.queued_bytes + other.queued_bytes,
            self.spooled + other.spooled,
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
    pub(crate) fn new(exporter: Exporter, stats: ExportStats) -> Self {
        DestinationStats { exporter, stats }
    }

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

/// Reads each destination's counts, named as `TELEMETRY_EXPORTER` names them: what
/// the Prometheus endpoint serves and the OTLP exporter pushes as the crate's health.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
pub(crate) type DestinationsFn =
    std::sync::Arc<dyn Fn() -> Vec<(&'static str, ExportStats)> + Send + Sync>;
