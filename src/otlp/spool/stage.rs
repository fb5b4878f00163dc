//! The spool as the pipeline's durable stage: opened when the export thread starts,
//! every batch appended before its first send, and its counts and problems said in
//! the OTLP exporter's words.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{OpenError, Spool};
use crate::otlp::stats::Shared;
use crate::pipeline::{Durable, Stored};
use crate::report::stderr_line;

pub(crate) struct SpoolStage {
    spool: Spool,
    shared: Arc<Shared>,
    reported_failure: bool,
}

impl SpoolStage {
    /// Opens the spool in `dir`; without it (another process holds the directory, or
    /// it cannot be created) records stay in memory, as without a spool, and this
    /// says why.
    pub(crate) fn open(dir: PathBuf, limit: u64, shared: Arc<Shared>) -> Option<Self> {
        match Spool::open(&dir, limit) {
            Ok(spool) => {
                let left = spool.records();
                if left > 0 {
                    stderr_line(format_args!(
                        "the otlp spool at {} holds {left} records from an earlier run; they are sent first",
                        dir.display()
                    ));
                }
                let mut stage = SpoolStage {
                    spool,
                    shared,
                    reported_failure: false,
                };
                // Damage skipped, files refused, a stale cursor: each said once.
                stage.say_notices();
                stage.sync_counts();
                Some(stage)
            }
            Err(OpenError::Busy) => {
                stderr_line(format_args!(
                    "the otlp spool directory {} is in use by another process; this one keeps its records in \
                     memory only",
                    dir.display()
                ));
                None
            }
            Err(OpenError::Refused(why)) => {
                stderr_line(format_args!(
                    "cannot use {} as the otlp spool directory (TELEMETRY_SPOOL_DIR): {why}; records are kept \
                     in memory only",
                    dir.display()
                ));
                None
            }
            Err(OpenError::Io(err)) => {
                stderr_line(format_args!(
                    "cannot use {} as the otlp spool directory: {err}; records are kept in memory only",
                    dir.display()
                ));
                None
            }
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.spool.dir()
    }

    /// What the spool found worth saying since it was opened (a read error), each once.
    fn say_notices(&mut self) {
        for notice in self.spool.take_notices() {
            stderr_line(format_args!("{notice}"));
        }
    }

    fn sync_counts(&self) {
        let (spool, shared) = (&self.spool, &self.shared);
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
}

impl Durable for SpoolStage {
    fn append(&mut self, records: u64, compressed: bool, body: &[u8]) -> io::Result<()> {
        let written =
            self.spool
                .append(u32::try_from(records).unwrap_or(u32::MAX), compressed, body);
        match &written {
            Ok(()) => {
                self.shared.spooled.fetch_add(records, Ordering::Relaxed);
            }
            Err(err) => {
                self.shared.spool_failures.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.reported_failure, true) {
                    stderr_line(format_args!(
                        "cannot write to the otlp spool at {}: {err} (this batch is sent from memory; further \
                         failures are counted, not printed)",
                        self.spool.dir().display()
                    ));
                }
            }
        }
        self.sync_counts();
        written
    }

    fn front(&mut self) -> io::Result<Option<Stored>> {
        let front = self.spool.front();
        if front.is_err() {
            self.say_notices();
        }
        self.sync_counts();
        Ok(front?.map(|batch| Stored {
            records: u64::from(batch.records),
            compressed: batch.gzip,
            body: batch.body,
        }))
    }

    fn pop_front(&mut self) {
        self.spool.pop_front();
        self.sync_counts();
    }

    fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }
}
