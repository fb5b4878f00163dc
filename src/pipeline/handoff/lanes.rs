//! The emitting threads' side of the hand-off: one lane per thread, written without
//! a lock or a read-modify-write per record.
//!
//! A lane is a chain of chunks. Only the thread that owns the lane writes to it: it
//! appends a record (a `u32` length, then the bytes) past what it has committed, then
//! publishes the new end, with the number of records up to it, in one release store
//! (so that the export thread counts what it takes without reading it). A chunk holds
//! either such records or lines (bytes a destination encoded on the emitting thread,
//! each ending its own record, with no length before it), so that a run of lines can
//! be written out as it lies in the chunk; a thread that switches from one to the
//! other starts a new chunk. The export thread reads up to the
//! committed end, and only there, so the two never touch the same bytes. When a record
//! does not fit, the owner links a new chunk after the full one and never touches the
//! full one again: from then on it belongs to the export thread, which takes its bytes
//! without copying.
//!
//! The queue's bound is kept in bytes ([`Lanes::push`]), reserved by the owner before
//! it writes and given back by the export thread as records are sent or given up. A
//! busy thread (one writing chunk-sized chunks) reserves in grants of 1/4096 of the
//! bound, at most [`GRANT_MAX`] bytes: one atomic add per grant, not per record. Any
//! other thread reserves exactly what each record needs, so threads that emit now and
//! then hold nothing reserved while they are quiet; a busy thread that falls quiet
//! keeps at most one grant's remainder.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};
use thread_local::ThreadLocal;

/// What the bound counts for a record beyond its bytes: its length prefix.
pub(super) const RECORD_OVERHEAD: usize = 4;
/// A busy thread's chunks are this large; they are recycled through the spare pool.
pub(super) const CHUNK_BYTES: usize = 256 * 1024;
/// A thread's first chunk: a thread that emits now and then never holds much memory.
const FIRST_CHUNK: usize = 4 * 1024;
/// The most a busy owner reserves of the bound at once.
const GRANT_MAX: usize = 4 * 1024;
/// The least room a line is written into in place ([`Lanes::push_line_in_place`]):
/// a chunk of lines with less left is followed by a new one.
const LINE_ROOM: usize = 1024;

/// Bytes taken from the lanes, for the export thread to send: `buf[at..end]` holds
/// whole records, `records` of them, each with its length before it, or with `lines`
/// whole lines and nothing else. Only the hand-off builds one (its fields are its
/// own), from bytes its lanes were given.
pub(super) struct Taken {
    pub(super) buf: Vec<u8>,
    pub(super) at: usize,
    pub(super) end: usize,
    pub(super) records: u64,
    pub(super) lines: bool,
}

impl Taken {
    /// Whether every record in it was given out (empty lines move no end: their
    /// count says whether they were).
    pub(super) fn is_done(&self) -> bool {
        self.at >= self.end && (!self.lines || self.records == 0)
    }
}

/// A chunk's committed end and the records below it, in one word: the end in the low
/// 40 bits, the records above. A chunk is at most [`CHUNK_BYTES`] (64 Ki records of
/// nothing but a length prefix), or sized to the one record larger than that it
/// holds (up to 4 GiB); recycled chunks are exactly chunk-sized (see `next_chunk`).
/// Lines have no prefix, so a chunk also ends at [`CHUNK_RECORDS`].
const END_BITS: u32 = 40;

/// The most records a chunk holds: its count must fit beside its end (see [`pack`]).
/// Only a chunk of empty lines would come near.
const CHUNK_RECORDS: u64 = (1 << (64 - END_BITS)) - 1;

fn pack(end: usize, records: u64) -> u64 {
    debug_assert!((end as u64) < 1 << END_BITS && records < 1 << (64 - END_BITS));
    (records << END_BITS) | end as u64
}

fn unpack(committed: u64) -> (usize, u64) {
    (
        (committed & ((1 << END_BITS) - 1)) as usize,
        committed >> END_BITS,
    )
}

/// One chunk of a lane. Its memory is initialized (`buf.len() == buf.capacity()`),
/// so that the owner can write into it through a slice.
struct Chunk {
    /// Never resized while in a lane: `data` points into it.
    buf: Vec<u8>,
    data: *mut u8,
    /// Bytes of whole records the owner has written, and how many records, packed
    /// ([`pack`]); published with release.
    committed: AtomicU64,
    /// The chunk after this one, set by the owner after its last commit here.
    next: AtomicPtr<Chunk>,
    /// Holds lines (see the module docs), not length-prefixed records.
    lines: bool,
}

impl Chunk {
    fn new(mut buf: Vec<u8>, lines: bool) -> *mut Chunk {
        let data = buf.as_mut_ptr();
        Box::into_raw(Box::new(Chunk {
            buf,
            data,
            committed: AtomicU64::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
            lines,
        }))
    }
}

/// The owner's side of a lane: touched only by the thread the lane belongs to.
struct Writer {
    /// The chunk being written; null until the first record.
    tail: *mut Chunk,
    /// Where the next record goes in `tail`.
    end: usize,
    /// Records written in `tail`.
    records: u64,
    /// Bytes of the bound reserved and not yet used by a record.
    credit: usize,
}

impl Writer {
    /// Whether a record of `cost` bytes (a line if `lines`) needs a new chunk: there
    /// is none yet, the one being written holds the other kind, has less room, or
    /// holds as many records as its count can say.
    #[inline(always)]
    fn needs_chunk(&self, cost: usize, lines: bool) -> bool {
        // SAFETY: `tail` is null or this lane's chunk being written.
        unsafe { self.tail.as_ref() }.map_or(true, |c| {
            c.lines != lines || c.buf.len() - self.end < cost || self.records >= CHUNK_RECORDS
        })
    }

    /// Publishes the record of `cost` bytes just written at `end` of `chunk` (the
    /// chunk being written), with the records up to it, in one release store.
    #[inline(always)]
    fn commit(&mut self, chunk: &Chunk, cost: usize) {
        self.credit -= cost;
        self.end += cost;
        self.records += 1;
        chunk
            .committed
            .store(pack(self.end, self.records), Ordering::Release);
    }
}

/// The export thread's side of a lane.
struct Reader {
    /// The oldest chunk not yet taken whole; null until the first chunk is seen.
    head: *mut Chunk,
    /// What was taken of `head` so far: bytes, and records.
    at: usize,
    records: u64,
}

struct Lane {
    writer: UnsafeCell<Writer>,
    /// Set while the owner is inside [`Lanes::push`]: a second, re-entrant push (from
    /// code that `write` might call) is refused instead of aliasing `writer`.
    /// An atomic rather than a `Cell` only so that it is never reached through a
    /// `&mut` (Miri's stacked borrows reject `Cell::replace` under a live `&Cell`);
    /// plain loads and stores, by the owner alone.
    busy: AtomicBool,
    /// The lane's first chunk, for the reader to start from.
    first: AtomicPtr<Chunk>,
    reader: Mutex<Reader>,
}

// SAFETY: `writer` and `busy` are only ever used by the thread that owns the lane (`Lanes::push`
// reaches it through `ThreadLocal::get_or`, which hands each thread its own lane, and
// a lane passes to another thread only after its owner has exited); the reader's
// state is behind a mutex; a chunk's bytes below `committed` are only read, above it
// only written by the owner, and a chunk with `next` set belongs to the reader. The
// raw pointers are to chunks that the lane owns.
unsafe impl Send for Lane {}
// SAFETY: as above.
unsafe impl Sync for Lane {}

impl Lane {
    fn new() -> Self {
        Lane {
            writer: UnsafeCell::new(Writer {
                tail: ptr::null_mut(),
                end: 0,
                records: 0,
                credit: 0,
            }),
            busy: AtomicBool::new(false),
            first: AtomicPtr::new(ptr::null_mut()),
            reader: Mutex::new(Reader {
                head: ptr::null_mut(),
                at: 0,
                records: 0,
            }),
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let reader = self
            .reader
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let mut chunk = if reader.head.is_null() {
            *self.first.get_mut()
        } else {
            reader.head
        };
        while !chunk.is_null() {
            // SAFETY: nobody else holds the lane (`&mut self`); every chunk in the
            // chain came from `Chunk::new` and is freed once, here.
            let boxed = unsafe { Box::from_raw(chunk) };
            chunk = boxed.next.load(Ordering::Acquire);
        }
    }
}

/// The records in `t`, and the bytes of the bound they hold (each record's bytes and
/// its length prefix: all of `at..end`).
pub(super) fn count(t: &Taken) -> (u64, usize) {
    (t.records, t.end - t.at)
}

/// Whether [`Lanes::push`] queued the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The bound would be passed: nothing was written.
    Full,
    /// The thread was already inside a push (re-entered from the record's own
    /// code): nothing was written.
    Busy,
}

/// Clears a lane's `busy` flag when dropped.
struct Unbusy<'a>(&'a AtomicBool);

impl Drop for Unbusy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Every emitting thread's lane, and the queue's byte bound.
pub(super) struct Lanes {
    lanes: ThreadLocal<Lane>,
    /// Bytes reserved by the owners (used or not) and not yet given back.
    reserved: AtomicUsize,
    capacity: usize,
    grant: usize,
    /// A chunk was filled: the export thread should look now, not at its next tick.
    filled: Sender<()>,
    /// Emptied chunks, already touched, for a busy owner's next chunk.
    spare: Receiver<Vec<u8>>,
}

impl Lanes {
    pub(super) fn new(capacity: usize, filled: Sender<()>, spare: Receiver<Vec<u8>>) -> Self {
        Lanes {
            lanes: ThreadLocal::new(),
            reserved: AtomicUsize::new(0),
            capacity,
            grant: (capacity / 4096).min(GRANT_MAX),
            filled,
            spare,
        }
    }

    /// Appends one record of exactly `len` bytes, written by `write` (which is given
    /// exactly that many bytes), to the calling thread's lane.
    pub(super) fn push(&self, len: usize, write: impl FnOnce(&mut [u8])) -> Pushed {
        self.push_within(len, write, true, false)
    }

    /// Like [`push`](Self::push), but past the bound if need be: for the one record
    /// an emitter waited for room for in vain (see `WhenFull::Wait`), so that the
    /// bound is passed by at most one record per waiting thread.
    pub(super) fn push_past_bound(&self, len: usize, write: impl FnOnce(&mut [u8])) -> Pushed {
        self.push_within(len, write, false, false)
    }

    /// Appends one record that is a line of exactly `len` bytes (see the module
    /// docs), written by `write`, to the calling thread's lane. It counts `len` bytes
    /// against the bound: a line has no length before it.
    pub(super) fn push_line(&self, len: usize, write: impl FnOnce(&mut [u8])) -> Pushed {
        self.push_within(len, write, true, true)
    }

    /// Appends one line that `write` writes in place, into the room left in the
    /// calling thread's chunk of lines (at least [`LINE_ROOM`] bytes), and whose
    /// length it returns. `None` if it returns `None` (the line did not fit): nothing
    /// was queued, and the caller pushes it with [`push_line`](Self::push_line).
    pub(super) fn push_line_in_place(
        &self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Option<Pushed> {
        self.with_writer(Some(Pushed::Busy), |lane, w| {
            if w.needs_chunk(LINE_ROOM, true) {
                self.next_chunk(lane, w, LINE_ROOM, true);
            }
            // SAFETY: `tail` is a live chunk of lines; bytes past `committed` (==
            // `end`) are this thread's alone, and initialized. Nothing is published
            // until `commit`, so what `write` leaves there if it fails is never read.
            let chunk = unsafe { &*w.tail };
            let room = chunk.buf.len() - w.end;
            let out = unsafe { std::slice::from_raw_parts_mut(chunk.data.add(w.end), room) };
            let len = write(out).filter(|&len| len <= room)?;
            if w.credit < len && !self.reserve(w, len, chunk.buf.len() >= CHUNK_BYTES) {
                return Some(Pushed::Full);
            }
            w.commit(chunk, len);
            Some(Pushed::Queued)
        })
    }

    fn push_within(
        &self,
        len: usize,
        write: impl FnOnce(&mut [u8]),
        bounded: bool,
        line: bool,
    ) -> Pushed {
        let Ok(length) = u32::try_from(len) else {
            return Pushed::Full;
        };
        self.with_writer(Pushed::Busy, |lane, w| {
            let prefix = if line { 0 } else { RECORD_OVERHEAD };
            let cost = len + prefix;
            if w.credit < cost {
                // SAFETY: `tail` is null or this lane's chunk being written.
                let busy = unsafe { w.tail.as_ref() }.is_some_and(|c| c.buf.len() >= CHUNK_BYTES);
                if !bounded {
                    let want = cost - w.credit;
                    self.reserved.fetch_add(want, Ordering::Relaxed);
                    w.credit += want;
                } else if !self.reserve(w, cost, busy) {
                    return Pushed::Full;
                }
            }
            if w.needs_chunk(cost, line) {
                self.next_chunk(lane, w, cost, line);
            }
            // SAFETY: `tail` is a live chunk with `cost` bytes of room past `end`;
            // bytes past `committed` (== `end`) are this thread's alone, and
            // initialized.
            let chunk = unsafe { &*w.tail };
            let out = unsafe { std::slice::from_raw_parts_mut(chunk.data.add(w.end), cost) };
            let (head, body) = out.split_at_mut(prefix);
            head.copy_from_slice(&length.to_le_bytes()[..prefix]);
            write(body);
            // Only now: if `write` panicked, the room stays this thread's for its next
            // record.
            w.commit(chunk, cost);
            Pushed::Queued
        })
    }

    /// Runs `push` with the calling thread's lane and its writer; `busy` if the
    /// thread is already inside a push (re-entered from the record's own code).
    #[inline(always)]
    fn with_writer<T>(&self, busy: T, push: impl FnOnce(&Lane, &mut Writer) -> T) -> T {
        let lane = self.lanes.get_or(Lane::new);
        if lane.busy.load(Ordering::Relaxed) {
            return busy;
        }
        lane.busy.store(true, Ordering::Relaxed);
        // Cleared however this returns, a panic in `push` included.
        let _busy = Unbusy(&lane.busy);
        // SAFETY: this thread owns `lane` (see `impl Sync for Lane`), and `busy` was
        // clear: no other `&mut` to the writer exists until this push returns.
        let w = unsafe { &mut *lane.writer.get() };
        push(lane, w)
    }

    /// Reserves at least `cost` bytes of the bound for `w` (a grant if it is `busy`);
    /// false if they would pass the bound.
    #[cold]
    fn reserve(&self, w: &mut Writer, cost: usize, busy: bool) -> bool {
        let cost = cost - w.credit;
        let grant = if busy { self.grant.max(cost) } else { cost };
        for want in [grant, cost] {
            let before = self.reserved.fetch_add(want, Ordering::Relaxed);
            if before + want <= self.capacity {
                w.credit += want;
                return true;
            }
            self.reserved.fetch_sub(want, Ordering::Relaxed);
        }
        false
    }

    /// Moves `w` to a new chunk (of lines if `lines`) with at least `cost` bytes of
    /// room, and hands the one before (if any) to the export thread.
    #[cold]
    fn next_chunk(&self, lane: &Lane, w: &mut Writer, cost: usize, lines: bool) {
        // SAFETY: as in `push`.
        let old = unsafe { w.tail.as_ref() };
        let size = match old {
            // Switching between records and lines, not full: as large as the last.
            Some(old) if old.lines != lines && old.buf.len() - w.end >= cost => {
                old.buf.len().min(CHUNK_BYTES)
            }
            // A thread that filled a chunk is busy: the next one is chunk-sized.
            Some(old) => (old.buf.len() * 4).min(CHUNK_BYTES),
            None => FIRST_CHUNK,
        }
        .max(cost);
        // A spare only for a chunk-sized chunk: a quiet thread keeps a small one.
        // Exactly chunk-sized: a larger one would hold more records over its life than
        // its count can say (see `pack`).
        let spare = if size == CHUNK_BYTES {
            self.spare
                .try_recv()
                .ok()
                .filter(|buf| buf.len() == CHUNK_BYTES)
        } else {
            None
        };
        let buf = spare.unwrap_or_else(|| vec![0; size]);
        let new = Chunk::new(buf, lines);
        match old {
            Some(old) => {
                // Read before `next` is set: from then on the chunk is the reader's,
                // which may free it at once.
                let was_full_size = old.buf.len() >= CHUNK_BYTES;
                old.next.store(new, Ordering::Release);
                // The export thread is told at once when a busy thread filled a
                // chunk-sized chunk, so that its records are sent as they fill chunks,
                // not a tick later; a quiet thread's records wait for the tick.
                if was_full_size {
                    let _ = self.filled.send(());
                }
            }
            None => lane.first.store(new, Ordering::Release),
        }
        w.tail = new;
        w.end = 0;
        w.records = 0;
    }

    /// Takes every record committed so far, lane by lane, oldest first within each.
    /// Full chunks are taken whole; of a chunk still being written, what is committed
    /// is copied.
    pub(super) fn collect(&self, into: &mut VecDeque<Taken>) {
        for lane in self.lanes.iter() {
            let mut r = lane.reader.lock().unwrap_or_else(PoisonError::into_inner);
            if r.head.is_null() {
                r.head = lane.first.load(Ordering::Acquire);
                if r.head.is_null() {
                    continue;
                }
            }
            loop {
                // SAFETY: `head` is a live chunk of this lane, freed only here or when
                // the lane drops.
                let chunk = unsafe { &*r.head };
                // `next` first: once it is set, `committed` is final.
                let next = chunk.next.load(Ordering::Acquire);
                let (end, records) = unpack(chunk.committed.load(Ordering::Acquire));
                if next.is_null() {
                    if end > r.at || records > r.records {
                        // SAFETY: bytes below `committed` are written and no longer
                        // touched by the owner.
                        let bytes =
                            unsafe { std::slice::from_raw_parts(chunk.data.add(r.at), end - r.at) };
                        into.push_back(Taken {
                            buf: bytes.to_vec(),
                            at: 0,
                            end: end - r.at,
                            records: records - r.records,
                            lines: chunk.lines,
                        });
                        r.at = end;
                        r.records = records;
                    }
                    break;
                }
                // SAFETY: the owner has moved on: this chunk is the reader's alone.
                let chunk = unsafe { Box::from_raw(r.head) };
                // Even with nothing left to take (all of it was copied while it was
                // written), so that its memory goes back to the threads too.
                into.push_back(Taken {
                    lines: chunk.lines,
                    buf: chunk.buf,
                    at: r.at.min(end),
                    end,
                    records: records - r.records,
                });
                r.head = next;
                r.at = 0;
                r.records = 0;
            }
        }
    }

    /// Bytes of the bound in use (reserved by the threads, or held by records not yet
    /// given back).
    pub(super) fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Emptied chunks in the pool: for a test.
    #[cfg(test)]
    pub(super) fn spare_chunks(&self) -> usize {
        self.spare.len()
    }

    /// The bound, in bytes.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Gives back the bound's bytes of records sent or given up.
    pub(super) fn release(&self, bytes: usize) {
        self.reserved.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, unbounded};
    use std::sync::Arc;

    /// Under Miri, which runs them some thousand times slower, fewer records and
    /// threads where the count does not matter.
    // Enough, under Miri too, to fill the 4, 16, 64 and 256 KiB chunks (about 150 bytes
    // a record).
    const MANY: u32 = if cfg!(miri) { 2_400 } else { 20_000 };
    const PER_THREAD: u32 = if cfg!(miri) { 200 } else { 50_000 };
    const THREADS: usize = if cfg!(miri) { 12 } else { 300 };

    fn records(taken: &VecDeque<Taken>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for t in taken {
            assert!(!t.lines, "records only");
            let (mut at, before) = (t.at, out.len());
            while at < t.end {
                let len = u32::from_le_bytes(t.buf[at..at + 4].try_into().unwrap()) as usize;
                out.push(t.buf[at + 4..at + 4 + len].to_vec());
                at += 4 + len;
            }
            assert_eq!(at, t.end, "whole records only");
            assert_eq!(
                count(t),
                ((out.len() - before) as u64, t.end - t.at),
                "the records counted as they were published, and their bytes"
            );
        }
        out
    }

    /// Records and lines (`true`), in order; lines are split at their newlines.
    fn entries(taken: &VecDeque<Taken>) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        for t in taken {
            if !t.lines {
                let one = VecDeque::from([Taken {
                    buf: t.buf.clone(),
                    at: t.at,
                    end: t.end,
                    records: t.records,
                    lines: false,
                }]);
                out.extend(records(&one).into_iter().map(|r| (false, r)));
                continue;
            }
            let lines: Vec<Vec<u8>> = t.buf[t.at..t.end]
                .split_inclusive(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(
                count(t),
                (lines.len() as u64, t.end - t.at),
                "the lines counted as they were published, and their bytes"
            );
            out.extend(lines.into_iter().map(|l| (true, l)));
        }
        out
    }

    /// Pushes `line` written in place, as the emitting thread's encoder writes it.
    fn in_place(lanes: &Lanes, line: &[u8]) -> Option<Pushed> {
        lanes.push_line_in_place(|out| {
            out[..line.len()].copy_from_slice(line);
            Some(line.len())
        })
    }

    #[test]
    fn lines_and_records_of_a_thread_come_back_in_its_order_in_chunks_of_their_own() {
        let (lanes, _filled, _spare) = lanes(1 << 30);
        let mut taken = VecDeque::new();
        let mut expected = Vec::new();
        for i in 0..MANY {
            let bytes = vec![b'a' + (i % 26) as u8; (i % 40) as usize];
            // Runs of each kind, of 1 to 5.
            if (i / 5 + i % 3) % 2 == 0 {
                assert_eq!(
                    lanes.push(bytes.len(), |out| out.copy_from_slice(&bytes)),
                    Pushed::Queued
                );
                expected.push((false, bytes));
            } else {
                let mut line = bytes;
                line.push(b'\n');
                let pushed = if i % 2 == 0 {
                    lanes.push_line(line.len(), |out| out.copy_from_slice(&line))
                } else {
                    in_place(&lanes, &line).expect("a short line fits in place")
                };
                assert_eq!(pushed, Pushed::Queued);
                expected.push((true, line));
            }
            if i % (MANY / 3 + 1) == 0 {
                lanes.collect(&mut taken);
            }
        }
        lanes.collect(&mut taken);
        assert_eq!(entries(&taken), expected);
    }

    #[test]
    fn a_line_holds_its_bytes_alone_of_the_bound() {
        let (lanes, _filled, _spare) = lanes(1000);
        let mut queued = 0;
        while lanes.push_line(100, |out| out.fill(b'x')) == Pushed::Queued {
            queued += 1;
        }
        assert_eq!(queued, 10, "100 bytes a line, no length before it");
        lanes.release(100);
        assert_eq!(in_place(&lanes, &[b'y'; 100]), Some(Pushed::Queued));
        assert_eq!(in_place(&lanes, &[b'z'; 100]), Some(Pushed::Full));
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        let bytes: usize = taken.iter().map(|t| t.end - t.at).sum();
        assert_eq!(bytes, 1100, "the refused line was never published");
    }

    #[test]
    fn a_line_that_does_not_fit_in_place_queues_nothing() {
        let (lanes, _filled, _spare) = lanes(1 << 20);
        assert_eq!(lanes.push_line_in_place(|_| None), None);
        // A length past the room given is a bug of the writer: not published.
        assert_eq!(lanes.push_line_in_place(|out| Some(out.len() + 1)), None);
        assert_eq!(in_place(&lanes, b"a\n"), Some(Pushed::Queued));
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        assert_eq!(entries(&taken), vec![(true, b"a\n".to_vec())]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "16 million records")]
    fn a_chunk_of_empty_lines_ends_before_its_count_would_wrap() {
        let (lanes, _filled, _spare) = lanes(1 << 20);
        for _ in 0..CHUNK_RECORDS + 2 {
            assert_eq!(lanes.push_line(0, |_| {}), Pushed::Queued);
        }
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        let records: u64 = taken.iter().map(|t| count(t).0).sum();
        assert_eq!(records, CHUNK_RECORDS + 2);
        assert!(taken.len() >= 2, "a second chunk");
        assert!(taken.iter().all(|t| !t.is_done()), "none given out yet");
    }

    fn lanes(capacity: usize) -> (Lanes, Receiver<()>, Sender<Vec<u8>>) {
        let (filled, filled_rx) = unbounded();
        let (spare_tx, spare) = bounded(4);
        (Lanes::new(capacity, filled, spare), filled_rx, spare_tx)
    }

    #[test]
    fn only_a_filled_chunk_sized_chunk_wakes_the_export_thread() {
        let (lanes, filled, _spare) = lanes(1 << 30);
        // 100 bytes a record: 40 fill the 4 KiB chunk, 163 the 16 KiB one, 655 the
        // 64 KiB one, 2,621 the 256 KiB one.
        let push = |n: usize| {
            for _ in 0..n {
                assert_eq!(lanes.push(96, |out| out.fill(1)), Pushed::Queued);
            }
        };
        push(40 + 163 + 655 + 1);
        assert_eq!(filled.len(), 0, "a quiet thread's small chunks wake nobody");
        push(2_620);
        assert_eq!(filled.len(), 0, "the 256 KiB chunk is full, not yet left");
        push(1);
        assert_eq!(filled.len(), 1, "leaving the full 256 KiB chunk does");
    }

    #[test]
    fn a_spare_larger_than_a_chunk_is_not_used_as_one() {
        let (lanes, filled, spare) = lanes(1 << 30);
        // A large record's own chunk, handed back as if it were chunk-sized.
        spare.send(vec![0; CHUNK_BYTES * 2]).unwrap();
        // As above: the 256 KiB chunk is full after 2,620 records of 100 bytes, and
        // the next record leaves it (a 512 KiB one would still have room).
        for _ in 0..40 + 163 + 655 + 1 + 2_620 {
            assert_eq!(lanes.push(96, |out| out.fill(1)), Pushed::Queued);
        }
        assert_eq!(filled.len(), 0);
        assert_eq!(lanes.push(96, |out| out.fill(1)), Pushed::Queued);
        assert_eq!(filled.len(), 1, "the chunk was chunk-sized");
    }

    #[test]
    fn records_come_back_in_order_across_chunks_and_collections() {
        let (lanes, filled, _spare) = lanes(1 << 30);
        let mut taken = VecDeque::new();
        let mut expected = Vec::new();
        for i in 0..MANY {
            let len = (i % 300) as usize;
            // A fill rather than a pattern: cheap under Miri, and no two neighbours alike.
            let bytes = vec![i as u8; len];
            assert_eq!(
                lanes.push(len, |out| out.copy_from_slice(&bytes)),
                Pushed::Queued
            );
            expected.push(bytes);
            if i % (MANY / 3 + 1) == 0 {
                lanes.collect(&mut taken);
            }
        }
        lanes.collect(&mut taken);
        assert_eq!(records(&taken), expected);
        assert!(filled.try_iter().count() > 0, "filling a chunk says so");
    }

    #[test]
    fn a_record_larger_than_a_chunk_fits_in_one_of_its_own() {
        let (lanes, _filled, _spare) = lanes(1 << 30);
        let big = vec![7_u8; CHUNK_BYTES * 2];
        lanes.push(3, |out| out.copy_from_slice(b"abc"));
        lanes.push(big.len(), |out| out.copy_from_slice(&big));
        lanes.push(1, |out| out.copy_from_slice(b"z"));
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        assert_eq!(records(&taken), vec![b"abc".to_vec(), big, b"z".to_vec()]);
    }

    #[test]
    fn the_bound_refuses_what_would_pass_it_and_release_makes_room() {
        let (lanes, _filled, _spare) = lanes(1000);
        let mut queued = 0;
        while lanes.push(96, |out| out.fill(1)) == Pushed::Queued {
            queued += 1;
        }
        // 100 bytes a record (with its prefix) in a 1000-byte bound.
        assert_eq!(queued, 10);
        lanes.release(100);
        assert_eq!(lanes.push(96, |out| out.fill(2)), Pushed::Queued);
        assert_eq!(lanes.push(96, |out| out.fill(3)), Pushed::Full);
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        assert_eq!(records(&taken).len(), 11);
    }

    #[test]
    fn every_thread_s_records_arrive_once_and_in_its_order_while_collected() {
        let (lanes, _filled, _spare) = lanes(1 << 30);
        let lanes = Arc::new(lanes);
        let writers: Vec<_> = (0..4_u8)
            .map(|t| {
                let lanes = Arc::clone(&lanes);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let mut rec = [t; 5];
                        rec[1..].copy_from_slice(&i.to_le_bytes());
                        lanes.push(5, |out| out.copy_from_slice(&rec));
                    }
                })
            })
            .collect();
        let mut taken = VecDeque::new();
        while writers.iter().any(|w| !w.is_finished()) {
            lanes.collect(&mut taken);
        }
        for w in writers {
            w.join().unwrap();
        }
        lanes.collect(&mut taken);
        let mut next = [0_u32; 4];
        for rec in records(&taken) {
            let i = u32::from_le_bytes(rec[1..].try_into().unwrap());
            assert_eq!(i, next[rec[0] as usize], "thread {}", rec[0]);
            next[rec[0] as usize] += 1;
        }
        assert_eq!(next, [PER_THREAD; 4]);
    }

    #[test]
    fn threads_that_emit_once_hold_nothing_of_the_bound_while_quiet() {
        // 256,000 bytes: a busy thread's grant would be 62.
        let (lanes, _filled, _spare) = lanes(256 * 1000);
        let lanes = Arc::new(lanes);
        let pushed = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let done = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (lanes, pushed, done) =
                    (Arc::clone(&lanes), Arc::clone(&pushed), Arc::clone(&done));
                std::thread::spawn(move || {
                    let r = lanes.push(10, |out| out.fill(1));
                    pushed.wait();
                    done.wait();
                    r
                })
            })
            .collect();
        pushed.wait();
        // The export thread takes and sends everything: the queue is empty.
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        let n = records(&taken).len();
        lanes.release(n * (10 + RECORD_OVERHEAD));
        let big = lanes.push(250_000, |out| out.fill(2));
        done.wait();
        let queued = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&r| r == Pushed::Queued)
            .count();
        assert_eq!(
            (queued, big),
            (THREADS, Pushed::Queued),
            "a record of 14 bytes from each thread, then one of nearly the whole bound, into an empty queue"
        );
    }

    #[test]
    fn a_busy_thread_that_falls_quiet_keeps_at_most_one_grant() {
        let capacity = 1 << 20;
        let (lanes, _filled, _spare) = lanes(capacity);
        let mut taken = VecDeque::new();
        // Busy: past its first chunks, into chunk-sized ones.
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..2_000 {
                    lanes.push(96, |out| out.fill(1));
                }
            });
        });
        lanes.collect(&mut taken);
        lanes.release(records(&taken).len() * 100);
        let left = capacity - capacity / 4096;
        assert_eq!(
            lanes.push(left - RECORD_OVERHEAD, |out| out.fill(2)),
            Pushed::Queued
        );
    }

    #[test]
    fn a_push_from_inside_a_push_is_refused_and_the_first_one_lands() {
        let (lanes, _filled, _spare) = lanes(1 << 20);
        let mut inner = None;
        let outer = lanes.push(3, |out| {
            inner = Some(lanes.push(1, |out| out[0] = 9));
            out.copy_from_slice(b"abc");
        });
        assert_eq!((outer, inner), (Pushed::Queued, Some(Pushed::Busy)));
        assert_eq!(lanes.push(1, |out| out[0] = b'z'), Pushed::Queued);
        let mut taken = VecDeque::new();
        lanes.collect(&mut taken);
        assert_eq!(records(&taken), vec![b"abc".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn a_panic_while_writing_gives_its_room_back() {
        let (lanes, _filled, _spare) = lanes(1000);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lanes.push(96, |_| panic!("a bug while writing"))
        }));
        assert!(r.is_err());
        let mut queued = 0;
        while lanes.push(96, |out| out.fill(1)) == Pushed::Queued {
            queued += 1;
        }
        assert_eq!(queued, 10, "nothing was queued by the panic, so ten fit");
    }

    #[test]
    fn a_thread_that_emits_once_does_not_take_a_chunk_sized_spare() {
        let (lanes, _filled, spare_tx) = lanes(1 << 30);
        spare_tx.send(vec![0xA5; CHUNK_BYTES]).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| lanes.push(1, |out| out[0] = 1));
        });
        assert_eq!(
            spare_tx.len(),
            1,
            "a 256 KiB spare went to a thread that wrote 5 bytes"
        );
    }
}
