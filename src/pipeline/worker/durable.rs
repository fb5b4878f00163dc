//! The durable stage: with one, every batch is written to it before its first send,
//! and batches are sent from it oldest first (an earlier run's before this run's),
//! tried again with backoff while the destination cannot take them. During an
//! outage new batches wait there, not in memory.

use std::io;
use std::time::Instant;

use super::{Deliver, Delivery, Worker};

/// A batch as the [`Durable`] stage gives it back.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) records: u64,
    pub(crate) compressed: bool,
    pub(crate) body: Vec<u8>,
}

/// Where batches are kept, durably, until the destination answers them for good (the
/// OTLP spool). It says its own problems (a write or read error, a full stage) and
/// keeps its own counts.
pub(crate) trait Durable: Send {
    /// Keeps a batch. An error: it could not, and the batch is sent from memory.
    fn append(&mut self, records: u64, compressed: bool, body: &[u8]) -> io::Result<()>;
    /// The oldest batch kept. An error: it could not be read now; tried again later.
    fn front(&mut self) -> io::Result<Option<Stored>>;
    /// Forgets the oldest batch: the destination answered it for good.
    fn pop_front(&mut self);
    fn is_empty(&self) -> bool;
}

impl<D: Deliver> Worker<D> {
    pub(super) fn durable_waiting(&self) -> bool {
        self.durable.as_ref().is_some_and(|d| !d.is_empty())
    }

    pub(super) fn durable_due(&self, now: Instant) -> bool {
        self.durable_waiting() && now >= self.next_attempt
    }

    /// Takes the lanes into the durable stage, sends what is due from it, and
    /// answers the flushes once both are empty.
    pub(super) fn drain_durably(&mut self) {
        self.collect();
        self.store_pending();
        self.send_stored();
        if self.pending.is_empty() && !self.durable_waiting() {
            self.answer(self.acks.len());
        }
    }

    /// Writes every pending record to the durable stage, one entry per batch, and
    /// frees their room in the queue. A batch the stage cannot take (a full disk, an
    /// I/O error) is sent from memory, as without one.
    pub(super) fn store_pending(&mut self) {
        while let Some((records, bytes, compressed)) = self.encode_batch() {
            let stored = match self.durable.as_mut() {
                Some(durable) => durable.append(records, compressed, &self.body),
                None => Err(io::Error::other("no durable stage")),
            };
            self.state.handoff.release(bytes);
            self.state.made_room();
            match stored {
                // The stage's now: counted once the destination answers them.
                Ok(()) => {
                    self.state.settle_in_flight(records);
                }
                Err(_) => {
                    let outcome = self.deliver_body(compressed, records);
                    let records = self.state.settle_in_flight(records);
                    self.settle(records, outcome);
                }
            }
        }
    }

    /// Sends stored batches, oldest first, while the destination takes them. A
    /// transient failure schedules the next try (backoff, or as long as the
    /// destination said) and returns, so that new records keep going to the stage
    /// meanwhile. So does a redirect: for a stored batch it is not an answer for good
    /// (an auth proxy or a moved collector would otherwise drain the stage into the
    /// void), and the batch stays. So does an error reading the stage itself.
    pub(super) fn send_stored(&mut self) {
        while self.stop.is_none() && Instant::now() >= self.next_attempt {
            let Some(backoff) = self.state.policy.retry else {
                return;
            };
            let stored = match self.durable.as_mut().map(|d| d.front()) {
                Some(Ok(Some(stored))) => stored,
                Some(Err(_)) => {
                    let wait = self.backoff(backoff, self.attempt);
                    self.attempt = self.attempt.saturating_add(1);
                    self.next_attempt = Instant::now() + wait;
                    return;
                }
                Some(Ok(None)) | None => return,
            };
            let outcome =
                self.destination
                    .deliver(&stored.body, stored.compressed, stored.records, None);
            let retry = match &outcome {
                Delivery::Retry { reason, after } => Some((reason, *after)),
                Delivery::Diverted { reason } => Some((reason, None)),
                _ => None,
            };
            if let Some((reason, after)) = retry {
                self.failing(reason);
                let wait = match after {
                    Some(after) => after.min(backoff.after_max),
                    None => self.backoff(backoff, self.attempt),
                };
                self.attempt = self.attempt.saturating_add(1);
                self.state
                    .counters
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.next_attempt = Instant::now() + wait;
                return;
            }
            self.reachable(&outcome);
            self.attempt = 0;
            self.forget_front(stored.records, outcome);
            self.take_waiting();
        }
    }

    /// Shutdown: one more try for each stored batch, in order, until the deadline or
    /// the first transient failure; what is left stays for the next run.
    pub(super) fn send_stored_before_deadline(&mut self) {
        while let Some(limit) = self.limit() {
            if limit.is_zero() {
                return;
            }
            let stored = match self.durable.as_mut().map(|d| d.front()) {
                Some(Ok(Some(stored))) => stored,
                Some(Err(_)) | Some(Ok(None)) | None => return,
            };
            let outcome = self.destination.deliver(
                &stored.body,
                stored.compressed,
                stored.records,
                Some(limit),
            );
            // A redirect, as a transient failure: the batch stays for the next run.
            if let Delivery::Retry { reason, .. } | Delivery::Diverted { reason } = &outcome {
                self.failing(reason);
                return;
            }
            self.reachable(&outcome);
            self.forget_front(stored.records, outcome);
        }
    }

    /// The oldest stored batch was answered for good (delivered, or refused; never
    /// a redirect): count it, forget it.
    fn forget_front(&mut self, records: u64, outcome: Delivery) {
        if let Some(durable) = self.durable.as_mut() {
            durable.pop_front();
        }
        self.settle(records, Some(outcome));
    }
}
