//! The one hand-off between the threads that emit records and a destination's worker.
//!
//! The emitting thread copies the borrowed record into a flat run of bytes
//! ([`capture`]) in a lane of its own ([`lanes`]): no lock, no allocation once the
//! thread has its chunks, no shared atomic per record (the byte bound is reserved in
//! grants), one release store to publish it. Encoding (a JSON line, an OTLP log
//! record) happens on the worker, per batch.
//!
//! The captured bytes may hold the address of a call site's `'static` metadata, read
//! back as a reference. That is sound only for bytes [`capture`] wrote in this
//! process, so the types keep it so: only [`Handoff::push`] writes into the lanes,
//! and it writes nothing but a captured record; the bytes come back only as an
//! [`Entry`], which only [`Pending`] builds, from what it took from the lanes. A push
//! made from inside another push on the same thread is refused
//! ([`Pushed::Busy`]), so a lane's writer is never aliased.
//!
//! A destination may also hand over records it encoded on the emitting thread
//! ([`Handoff::push_encoded`]): they are marked as such by their first byte, which no
//! captured record has, and come back as [`Read::Encoded`], never read as a record.
//! The JSON-lines destination does so only while its worker is behind (see
//! `Queue::push`): then every emitting thread shares the encoding, so that a burst
//! from many threads is absorbed by every core instead of waiting for one.

mod capture;
mod lanes;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

pub(crate) use capture::Captured;
use capture::{capture_into, captured_len};
pub(crate) use lanes::Pushed;
use lanes::{Lanes, Taken, CHUNK_BYTES, RECORD_OVERHEAD};

use super::clock::Clock;
use crate::record::Record;

/// Emptied chunks kept ready for the emitting threads.
const SPARE_CHUNKS: usize = 16;
/// The first byte of an entry that holds bytes a destination encoded itself; a
/// captured record's first byte is its kind, 0 to 2.
const ENCODED: u8 = 0xFF;

/// The emitting threads' side of one destination's queue.
pub(crate) struct Handoff {
    lanes: Lanes,
    /// Whether records are timed by the counter ([`Clock::Counter`]); cleared if the
    /// kernel stops keeping time with it (see [`Handoff::check_clock`]).
    counter: AtomicBool,
}

/// The worker's side of the hand-off's signals: a busy thread filled a chunk (look
/// now, not at the next tick), and where emptied chunks go back to the threads.
pub(crate) struct Signals {
    pub(crate) filled: Receiver<()>,
    spare: Sender<Vec<u8>>,
}

impl Handoff {
    /// A hand-off bounded at `capacity` bytes of captured records (each counts its
    /// bytes and a 4-byte prefix).
    pub(crate) fn new(capacity: usize) -> (Self, Signals) {
        Self::with_clock(capacity, Clock::detect())
    }

    pub(crate) fn with_clock(capacity: usize, clock: Clock) -> (Self, Signals) {
        let (filled, filled_rx) = unbounded();
        let (spare_tx, spare) = bounded(SPARE_CHUNKS);
        let handoff = Handoff {
            lanes: Lanes::new(capacity, filled, spare),
            counter: AtomicBool::new(clock == Clock::Counter),
        };
        let signals = Signals {
            filled: filled_rx,
            spare: spare_tx,
        };
        (handoff, signals)
    }

    /// Captures `record` into the calling thread's lane.
    #[inline]
    pub(crate) fn push(&self, record: &Record<'_>) -> Pushed {
        let clock = self.clock();
        self.lanes
            .push(captured_len(record), |out| capture_into(out, record, clock))
    }

    /// Hands over `bytes` that the destination encoded on the emitting thread: they
    /// come back whole as [`Read::Encoded`].
    pub(crate) fn push_encoded(&self, bytes: &[u8]) -> Pushed {
        self.lanes.push(1 + bytes.len(), |out| {
            out[0] = ENCODED;
            out[1..].copy_from_slice(bytes);
        })
    }

    /// Whether `record` could fit in the bound when the queue is empty.
    pub(crate) fn could_fit(&self, record: &Record<'_>) -> bool {
        captured_len(record) + RECORD_OVERHEAD <= self.lanes.capacity()
    }

    /// Bytes of the bound in use or reserved.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lanes.reserved()
    }

    /// The share of the bound in use, in parts per 1024.
    pub(crate) fn fill(&self) -> usize {
        self.lanes.reserved().saturating_mul(1024) / self.lanes.capacity().max(1)
    }

    /// Like [`push`](Self::push), past the queue's bound if need be (see
    /// [`Lanes::push_past_bound`](lanes::Lanes::push_past_bound)).
    pub(crate) fn push_past_bound(&self, record: &Record<'_>) -> Pushed {
        let clock = self.clock();
        self.lanes
            .push_past_bound(captured_len(record), |out| capture_into(out, record, clock))
    }

    fn clock(&self) -> Clock {
        if self.counter.load(Ordering::Relaxed) {
            Clock::Counter
        } else {
            Clock::System
        }
    }

    /// Takes every record committed so far into `pending`; returns how many.
    pub(crate) fn collect(&self, pending: &mut Pending) -> u64 {
        let before = pending.taken.len();
        self.lanes.collect(&mut pending.taken);
        let (records, _) = count(pending.taken.range(before..));
        records
    }

    /// Gives back the bound's bytes of records delivered or given up.
    pub(crate) fn release(&self, bytes: usize) {
        self.lanes.release(bytes);
    }

    /// Goes back to the wall clock if the kernel no longer keeps time with the
    /// counter: for the worker, about once a second.
    pub(crate) fn check_clock(&self) {
        if self.counter.load(Ordering::Relaxed) && Clock::detect() != Clock::Counter {
            self.counter.store(false, Ordering::Relaxed);
        }
    }
}

impl Signals {
    /// Keeps emptied, already-touched chunks ready while threads are filling them
    /// quickly, so that the page faults of fresh memory land on the worker, not on an
    /// emitting thread.
    pub(crate) fn stock_spares(&self) {
        while self.spare.len() < SPARE_CHUNKS / 2 {
            // Not zeros: a zeroed allocation may be served by the kernel's zero
            // pages, untouched, and the faults would land on the thread that writes.
            let buf = vec![0xA5_u8; CHUNK_BYTES];
            if self.spare.try_send(buf).is_err() {
                break;
            }
        }
    }
}

/// The bytes of the queue's bound that `record` takes.
#[cfg(test)]
pub(crate) fn queued_len(record: &Record<'_>) -> usize {
    captured_len(record) + RECORD_OVERHEAD
}

/// The records in `taken`, and the bytes of the bound they hold.
fn count<'a>(taken: impl IntoIterator<Item = &'a Taken>) -> (u64, usize) {
    let (mut records, mut bytes) = (0, 0);
    for t in taken {
        let (r, b) = lanes::count(t);
        records += r;
        bytes += b;
    }
    (records, bytes)
}

/// One captured record, as the worker reads it. Only [`Pending`] makes one, from
/// bytes it took from a [`Handoff`]'s lanes.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a>(&'a [u8]);

/// What an [`Entry`] holds.
#[derive(Debug)]
pub(crate) enum Read<'a> {
    /// A captured record.
    Record(Captured<'a>),
    /// Bytes the destination encoded itself ([`Handoff::push_encoded`]).
    Encoded(&'a [u8]),
}

impl<'a> Entry<'a> {
    /// What the entry holds; `None` only if the bytes were cut short (they never are).
    pub(crate) fn read(self) -> Option<Read<'a>> {
        match self.0.split_first() {
            Some((&ENCODED, bytes)) => Some(Read::Encoded(bytes)),
            // SAFETY: an `Entry` holds the bytes of one record that `Handoff::push`
            // wrote with `capture_into`, in this process (see the module docs), unless
            // it starts with `ENCODED`, which no captured record does.
            _ => unsafe { capture::read(self.0) }.map(Read::Record),
        }
    }

    /// The captured record; `None` for encoded bytes.
    #[cfg(test)]
    pub(crate) fn record(self) -> Option<Captured<'a>> {
        match self.read()? {
            Read::Record(record) => Some(record),
            Read::Encoded(_) => None,
        }
    }
}

/// Records taken from the lanes and not yet given to a batch, oldest first.
pub(crate) struct Pending {
    taken: VecDeque<Taken>,
}

/// What [`Pending::next_batch`] gave out: how many records, and the bytes of the
/// bound they held (to [`Handoff::release`] once delivered or given up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taking {
    pub(crate) records: u64,
    pub(crate) bytes: usize,
}

impl Pending {
    pub(crate) fn new() -> Self {
        Pending {
            taken: VecDeque::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.taken.iter().all(|t| t.at >= t.end)
    }

    /// Gives the oldest records, up to `max_records` or until `full` says the batch
    /// is full, to `each`, in order. Emptied chunks go back to the threads through
    /// `signals`. `None` when nothing was pending.
    pub(crate) fn next_batch(
        &mut self,
        signals: &Signals,
        max_records: usize,
        mut each: impl FnMut(Entry<'_>) -> Batching,
    ) -> Option<Taking> {
        let mut taking = Taking {
            records: 0,
            bytes: 0,
        };
        'chunks: for taken in self.taken.iter_mut() {
            while taken.at < taken.end {
                if taking.records as usize >= max_records {
                    break 'chunks;
                }
                let Some(len) = taken
                    .buf
                    .get(taken.at..taken.at + RECORD_OVERHEAD)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| u32::from_le_bytes(b) as usize)
                    .filter(|len| taken.at + RECORD_OVERHEAD + len <= taken.end)
                else {
                    // A lane's chunk holds whole records only: never reached.
                    taken.at = taken.end;
                    taken.records = 0;
                    break;
                };
                let start = taken.at + RECORD_OVERHEAD;
                taken.at = start + len;
                taken.records = taken.records.saturating_sub(1);
                taking.records += 1;
                taking.bytes += len + RECORD_OVERHEAD;
                if each(Entry(&taken.buf[start..start + len])) == Batching::Full {
                    break 'chunks;
                }
            }
        }
        self.recycle(signals);
        (taking.records > 0).then_some(taking)
    }

    /// Drops every pending record; returns how many there were and their bytes
    /// (counted as they were published: nothing is read).
    pub(crate) fn abandon(&mut self) -> Taking {
        let (records, bytes) = count(self.taken.iter());
        self.taken.clear();
        Taking { records, bytes }
    }

    /// Drops the chunks read to their end; a chunk-sized one goes back to the threads.
    fn recycle(&mut self, signals: &Signals) {
        while self.taken.front().is_some_and(|t| t.at >= t.end) {
            if let Some(taken) = self.taken.pop_front() {
                // Exactly chunk-sized only: a large record's chunk of its own (or the
                // copy of a partial take) would pass for one, and hold more records
                // over its life than a chunk's count can say (see `lanes::pack`).
                if taken.buf.len() == CHUNK_BYTES {
                    let _ = signals.spare.try_send(taken.buf);
                }
            }
        }
    }
}

/// Whether a batch has room for more after the record just given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batching {
    More,
    Full,
}

#[cfg(test)]
mod tests;
