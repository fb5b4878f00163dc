//! What each queued destination adds to the [pipeline](crate::pipeline): how a record
//! is encoded and how a batch is delivered.
//!
//! * [`json_lines`]: JSON lines to standard output, standard error or a file.
//! * [`file`]: the telemetry file (0600, append, no symbolic links, re-created after
//!   rotation).
//!
//! The OTLP log records are in [`crate::otlp`].

mod file;
pub(crate) mod json_lines;

use std::fmt;

use crate::error::Error;
use crate::pipeline::ExportStats;
use crate::record::Record;

/// One destination's exporter, as the sink `try_init` installs
/// ([`ExporterSink`](crate::ExporterSink)) drives it.
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
    /// Whether a metric record reaches it only through the sink's aggregation (it
    /// is that aggregation, or reads it, and has started), so that an update of an
    /// existing series may skip the record (see `metrics_facade::shortcut`).
    #[cfg(all(feature = "metrics", feature = "aggregate"))]
    fn metrics_only_aggregated(&self) -> bool {
        false
    }
}
