//! What the OTLP exporter counts: [`OtlpStats`] for the app, and the counters its
//! export thread keeps beyond the queue's (the pipeline's [`Counts`](crate::pipeline::Counts)).

use std::sync::atomic::AtomicU64;

/// Counts of what an [`OtlpExporter`](crate::OtlpExporter) did with the records it was given.
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
    pub(super) exported: u64,
    pub(super) dropped: u64,
    pub(super) rejected: u64,
    pub(super) undelivered: u64,
    pub(super) retries: u64,
    pub(super) metric_pushes: u64,
    pub(super) metric_push_failures: u64,
    pub(super) spooled: u64,
    pub(super) spool_pending: u64,
    pub(super) spool_dropped: u64,
    pub(super) spool_torn_bytes: u64,
    pub(super) spool_failures: u64,
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
    /// ([`OtlpConfig::spool_bytes`](crate::OtlpConfig::spool_bytes)).
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

/// What the export thread counts beyond the queue's counts: the metrics pushes and
/// the spool.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) metric_pushes: AtomicU64,
    pub(crate) metric_push_failures: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) spool_pending: AtomicU64,
    pub(crate) spool_dropped: AtomicU64,
    pub(crate) spool_torn_bytes: AtomicU64,
    pub(crate) spool_failures: AtomicU64,
}
