//! The spool's part of the export thread: every batch written to disk before its
//! first send, spooled requests sent oldest first, retried with backoff.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Worker, RETRY_AFTER_MAX};
use crate::otlp::spool::{OpenError, Spool};
use crate::otlp::transport::Outcome;
use crate::report::stderr_line;

impl Worker {
    /// Opens the spool if one is configured; without it (another process holds the
    /// directory, or it cannot be created) records stay in memory, as without a spool.
    pub(super) fn open_spool(&mut self) {
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

    pub(super) fn spool_due(&self, now: Instant) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty()) && now >= self.next_attempt
    }

    /// Writes every pending record to the spool, one entry per batch, and frees their
    /// room in the queue. A batch the spool cannot take (disk full, an I/O error) is
    /// sent from memory, as without a spool.
    pub(super) fn spool_pending(&mut self) {
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
    pub(super) fn send_spooled(&mut self) {
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
    pub(super) fn send_spooled_before_deadline(&mut self) {
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
    pub(super) fn say_spool_notices(&mut self) {
        if let Some(spool) = self.spool.as_mut() {
            for notice in spool.take_notices() {
                stderr_line(format_args!("{notice}"));
            }
        }
    }

    /// The oldest spooled request was answered for good (accepted, or refused with a
    /// status that is not retried; never a redirect): count it, forget it.
    pub(super) fn accept_spooled(&mut self, records: u32, outcome: Outcome) {
        if let Some(spool) = self.spool.as_mut() {
            spool.pop_front();
        }
        self.settle(u64::from(records), Some(outcome));
    }

    pub(super) fn sync_spool_counts(&self) {
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
}
