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
//! ([`Handoff::push_encoded`]): they go into chunks of their own, which hold nothing
//! else, with no length before each, and come back as [`Read::Encoded`], never read
//! as a record: a run of them at once, as they lie in the chunk, so that the worker
//! can write them out without copying them. The JSON-lines destination does so only
//! while its worker is behind (see `Queue::push`): then every emitting thread shares
//! the encoding, so that a burst from many threads is absorbed by every core instead
//! of waiting for one.

mod capture;
mod lanes;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

pub(crate) use capture::Captured;
use capture::{capture_into, captured_len};
pub(crate) use lanes::Pushed;
use lanes::{Lanes, Taken, CHUNK_BYTES, RECORD_OVERHEAD};

use super::clock::{Clock, Converter, Published};
use crate::record::{Record, Stamp};

/// Emptied chunks the worker keeps ready for the emitting threads: at least, while
/// they fill chunks; at most, once it has taken nothing for a second.
const SPARE_CHUNKS: usize = 8;

/// The emitting threads' side of one destination's queue.
pub(crate) struct Handoff {
    lanes: Lanes,
    /// Whether records are timed by the counter ([`Clock::Counter`]); cleared if the
    /// kernel stops keeping time with it (see [`Handoff::check_clock`]).
    counter: AtomicBool,
    /// The worker's last conversion of the counter, for [`now`](Self::now).
    published: Published,
}

/// The worker's side of the hand-off's signals: a busy thread filled a chunk (look
/// now, not at the next tick), and where emptied chunks go back to the threads.
pub(crate) struct Signals {
    pub(crate) filled: Receiver<()>,
    spare: Sender<Vec<u8>>,
    /// The pool's other end, to trim it.
    spares: Receiver<Vec<u8>>,
}

impl Handoff {
    /// A hand-off bounded at `capacity` bytes of captured records (each counts its
    /// bytes and a 4-byte prefix).
    pub(crate) fn new(capacity: usize) -> (Self, Signals) {
        Self::with_clock(capacity, Clock::detect())
    }

    pub(crate) fn with_clock(capacity: usize, clock: Clock) -> (Self, Signals) {
        let (filled, filled_rx) = unbounded();
        // Room for every chunk a full queue holds, and the ones kept ready: an emptied
        // chunk goes back into the pool, never to the allocator, while records flow.
        let (spare_tx, spare) = bounded(capacity / CHUNK_BYTES + 4 * SPARE_CHUNKS);
        let spares = spare.clone();
        let handoff = Handoff {
            lanes: Lanes::new(capacity, filled, spare),
            counter: AtomicBool::new(clock == Clock::Counter),
            published: Published::default(),
        };
        let signals = Signals {
            filled: filled_rx,
            spare: spare_tx,
            spares,
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

    /// Hands over `bytes`, one record that the destination encoded on the emitting
    /// thread and that ends itself (a JSON line): they come back as they are, after
    /// the thread's records before them and with those after them that were encoded
    /// too, as [`Read::Encoded`].
    pub(crate) fn push_encoded(&self, bytes: &[u8]) -> Pushed {
        self.lanes
            .push_line(bytes.len(), |out| out.copy_from_slice(bytes))
    }

    /// Like [`push_encoded`](Self::push_encoded), for a record that `write` encodes
    /// straight into the lane (the bytes it is given, returning their length used):
    /// no copy. `None` if it did not fit (`write` returned `None`): then nothing was
    /// handed over.
    pub(crate) fn push_encoded_in_place(
        &self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Option<Pushed> {
        self.lanes.push_line_in_place(write)
    }

    /// Whether `record` could fit in the bound when the queue is empty.
    pub(crate) fn could_fit(&self, record: &Record<'_>) -> bool {
        captured_len(record) + RECORD_OVERHEAD <= self.lanes.capacity()
    }

    /// Emptied chunks kept for the emitting threads: for a test.
    #[cfg(test)]
    pub(crate) fn spare_chunks(&self) -> usize {
        self.lanes.spare_chunks()
    }

    /// The bound, in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.lanes.capacity()
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

    /// The time now, for a record encoded on the emitting thread: the counter
    /// converted forward from the worker's last [`publish`](Self::publish), or the
    /// wall clock where the counter is not used or nothing recent was published.
    #[inline]
    pub(crate) fn now(&self) -> Stamp {
        if self.counter.load(Ordering::Relaxed) {
            if let Some(nanos) = self.published.unix_nanos(super::clock::ticks()) {
                return Stamp::from_unix_nanos(nanos);
            }
        }
        Stamp::now()
    }

    /// Makes `converter` the one [`now`](Self::now) converts forward from: for the
    /// worker, a few times a second.
    pub(crate) fn publish(&self, converter: &Converter) {
        self.published.publish(converter);
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
        while self.spare.len() < SPARE_CHUNKS {
            // Not zeros: a zeroed allocation may be served by the kernel's zero
            // pages, untouched, and the faults would land on the thread that writes.
            let buf = vec![0xA5_u8; CHUNK_BYTES];
            if self.spare.try_send(buf).is_err() {
                break;
            }
        }
    }

    /// Gives the chunks kept past [`SPARE_CHUNKS`] back to the allocator: for when
    /// the worker has taken nothing for a second, so that a burst's chunks are not
    /// held for good.
    pub(crate) fn trim_spares(&self) {
        while self.spares.len() > SPARE_CHUNKS && self.spares.try_recv().is_ok() {}
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

/// One captured record, or a run of records the destination encoded itself, as the
/// worker reads them. Only [`Pending`] makes one, from bytes it took from a
/// [`Handoff`]'s lanes.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    bytes: &'a [u8],
    /// From a chunk of encoded records ([`Handoff::push_encoded`]).
    encoded: bool,
}

/// What an [`Entry`] holds.
#[derive(Debug)]
pub(crate) enum Read<'a> {
    /// A captured record.
    Record(Captured<'a>),
    /// Records the destination encoded itself ([`Handoff::push_encoded`]), one or
    /// more, whole.
    Encoded(&'a [u8]),
}

impl<'a> Entry<'a> {
    /// What the entry holds; `None` only if the bytes were cut short (they never are).
    pub(crate) fn read(self) -> Option<Read<'a>> {
        if self.encoded {
            return Some(Read::Encoded(self.bytes));
        }
        // SAFETY: an `Entry` that is not `encoded` holds the bytes of one record that
        // `Handoff::push` wrote with `capture_into`, in this process, into a chunk
        // that holds nothing else (see the module docs).
        unsafe { capture::read(self.bytes) }.map(Read::Record)
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
        self.taken.iter().all(Taken::is_done)
    }

    /// Gives the oldest records, up to `max_records` or until `full` says the batch
    /// is full, to `each`, in order. A run of encoded records is given whole (it may
    /// pass `max_records`). The entries stay readable until the next call that
    /// changes `self`; [`recycle`](Self::recycle) then hands the emptied chunks back.
    /// `None` when nothing was pending.
    pub(crate) fn next_batch<'a>(
        &'a mut self,
        max_records: usize,
        mut each: impl FnMut(Entry<'a>) -> Batching,
    ) -> Option<Taking> {
        let mut taking = Taking {
            records: 0,
            bytes: 0,
        };
        'chunks: for taken in self.taken.iter_mut() {
            let Taken {
                buf,
                at,
                end,
                records,
                lines,
            } = taken;
            let buf: &'a [u8] = buf;
            if *lines {
                // Empty lines move no end: their count says they are there.
                if *at >= *end && *records == 0 {
                    continue;
                }
                if taking.records as usize >= max_records {
                    break 'chunks;
                }
                // A lane's chunk is never shorter than what it committed.
                let bytes = buf.get(*at..*end).unwrap_or_default();
                taking.records += *records;
                taking.bytes += *end - *at;
                (*at, *records) = (*end, 0);
                let entry = Entry {
                    bytes,
                    encoded: true,
                };
                if each(entry) == Batching::Full {
                    break 'chunks;
                }
                continue;
            }
            while *at < *end {
                if taking.records as usize >= max_records {
                    break 'chunks;
                }
                let Some(len) = buf
                    .get(*at..*at + RECORD_OVERHEAD)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| u32::from_le_bytes(b) as usize)
                    .filter(|len| *at + RECORD_OVERHEAD + len <= *end)
                else {
                    // A lane's chunk holds whole records only: never reached.
                    (*at, *records) = (*end, 0);
                    break;
                };
                let start = *at + RECORD_OVERHEAD;
                *at = start + len;
                *records = records.saturating_sub(1);
                taking.records += 1;
                taking.bytes += len + RECORD_OVERHEAD;
                let entry = Entry {
                    bytes: &buf[start..start + len],
                    encoded: false,
                };
                if each(entry) == Batching::Full {
                    break 'chunks;
                }
            }
        }
        (taking.records > 0).then_some(taking)
    }

    /// Drops every pending record; returns how many there were and their bytes
    /// (counted as they were published: nothing is read).
    pub(crate) fn abandon(&mut self) -> Taking {
        let (records, bytes) = count(self.taken.iter());
        self.taken.clear();
        Taking { records, bytes }
    }

    /// Drops the chunks read to their end; a chunk-sized one goes back to the threads
    /// through `signals`.
    pub(crate) fn recycle(&mut self, signals: &Signals) {
        while self.taken.front().is_some_and(Taken::is_done) {
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
