//! The hand-off between the threads that emit records and the one that writes them.
//!
//! Each emitting thread encodes its records into a batch of its own (a shard: no
//! other emitter touches it, so its lock is uncontended), and hands the batch over
//! whole when it reaches [`Limits::batch_bytes`]: one queue operation per ~64 KiB,
//! not one per record. The writer thread takes queued batches, and every
//! [`Limits::tick`] (or on a flush) collects the batches still being filled, so a
//! quiet thread's records are not held back for long.
//!
//! Nothing here waits on I/O: the writer never holds a lock while it writes. An
//! emitter waits only when the queue is full ([`Limits::queue_bytes`]), for at most
//! [`Limits::full_wait`], and not at all again until the writer has made room once
//! more. Every record ends up counted exactly once: written, dropped or failed.

use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use thread_local::ThreadLocal;

use super::ExportStats;
use crate::report::{report_write_error, stderr_line};

/// The sizes and waits of one hand-off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A thread's batch is handed over once it holds this many bytes.
    pub(crate) batch_bytes: usize,
    /// Bytes of batches waiting for the writer, at most (one batch larger than this
    /// is still taken when the queue is empty, so no record is too large to send).
    pub(crate) queue_bytes: usize,
    /// How long an emitter waits for room in a full queue before dropping.
    pub(crate) full_wait: Duration,
    /// How long flush and shutdown wait for a destination that makes no progress.
    pub(crate) stall: Duration,
    /// How long a record may wait in a batch that is not full yet.
    pub(crate) tick: Duration,
}

impl Limits {
    /// The defaults documented on [`ExporterSink`](crate::ExporterSink).
    pub(crate) const DEFAULT: Limits = Limits {
        batch_bytes: 64 * 1024,
        queue_bytes: crate::config::DEFAULT_BUFFER_BYTES,
        full_wait: Duration::from_millis(100),
        stall: Duration::from_secs(5),
        tick: Duration::from_millis(100),
    };
}

/// Encoded records on their way to the writer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) records: u64,
    /// Whether `bytes.len()` was counted against [`Limits::queue_bytes`].
    queued: bool,
}

/// What the writer is to do next, from [`Handoff::next_job`].
#[derive(Debug, Default)]
pub(crate) struct Job {
    /// In the order to write them; each thread's records stay in its order.
    pub(crate) batches: Vec<Batch>,
    /// The flush request to answer once `batches` are written.
    pub(crate) flush: Option<u64>,
    /// Stop after writing `batches`.
    pub(crate) shutdown: bool,
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    bytes: usize,
    /// Emptied buffers, for emitters to fill again: a busy thread never allocates.
    spare: Vec<Vec<u8>>,
    flush_asked: u64,
    flush_done: u64,
    shutdown: bool,
    waiting_for_room: usize,
    /// The writer is waiting for work: only then is it worth a wake-up (a system call).
    writer_waiting: bool,
    /// When the batches being filled are next collected: set when one first holds a
    /// record, kept while queued batches are written, cleared by the collection.
    tick_at: Option<Instant>,
}

/// Room past a batch's size for the record that fills it.
const BATCH_HEADROOM: usize = 4 * 1024;

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// The records of the batch being written, until the write's outcome counts them
    /// (or shutdown gives up on it and counts them as dropped: whoever takes them
    /// first).
    in_flight: AtomicU64,
    reported_drop: AtomicBool,
    reported_failure: AtomicBool,
}

/// The shared state of one destination's hand-off.
pub(crate) struct Handoff {
    /// Named in messages when the app has several destinations.
    label: Option<&'static str>,
    limits: Limits,
    shards: ThreadLocal<Mutex<Batch>>,
    queue: Mutex<Queue>,
    /// Wakes the writer: a batch, a flush or shutdown.
    work: Condvar,
    /// Wakes emitters waiting for room.
    room: Condvar,
    /// Wakes flush and shutdown when the writer has answered.
    answered: Condvar,
    /// Set once shutdown starts: from then on, records are dropped and counted.
    closed: AtomicBool,
    /// Set when an emitter waited for room in vain; cleared whenever the writer frees
    /// room. While set, emitters drop at once instead of waiting.
    overloaded: AtomicBool,
    /// Some thread's batch holds records the writer has not collected yet.
    pending: AtomicBool,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handoff {
    pub(crate) fn new(limits: Limits, label: Option<&'static str>) -> Self {
        Handoff {
            label,
            limits,
            shards: ThreadLocal::new(),
            queue: Mutex::default(),
            work: Condvar::new(),
            room: Condvar::new(),
            answered: Condvar::new(),
            closed: AtomicBool::new(false),
            overloaded: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> ExportStats {
        ExportStats::new(
            self.counters.written.load(Ordering::Relaxed),
            self.counters.dropped.load(Ordering::Relaxed),
            self.counters.failed.load(Ordering::Relaxed),
        )
    }

    // ------------------------------------------------------------------------------
    // The emitting side

    /// Adds one record, which `encode` appends to this thread's batch.
    pub(crate) fn record(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        let shard = self.shards.get_or(|| Mutex::new(Batch::default()));
        let mut batch = lock(shard);
        // Checked under the batch's lock: shutdown collects every batch after setting
        // `closed`, so a record added here is either collected or refused, never lost.
        if self.closed.load(Ordering::Acquire) {
            drop(batch);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if batch.bytes.len() >= self.limits.batch_bytes {
            // Still full from a hand-over that found no room.
            let (again, handed) = self.hand_over(shard, batch);
            batch = again;
            if !handed {
                drop(batch);
                self.drop_one();
                return;
            }
            // The hand-over may have waited without the lock, while shutdown collected
            // every batch: then a record added here would never be taken.
            if self.closed.load(Ordering::Acquire) {
                drop(batch);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let was_empty = batch.records == 0;
        encode(&mut batch.bytes);
        batch.records += 1;
        if batch.bytes.len() >= self.limits.batch_bytes {
            // If there is no room, the batch stays full, with this record in it; the
            // records it already holds are not the ones to lose.
            let _ = self.hand_over(shard, batch);
        } else if was_empty && !self.pending.swap(true, Ordering::AcqRel) {
            drop(batch);
            // The writer may be asleep with nothing to collect: now it has.
            self.wake_writer(&lock(&self.queue));
        }
    }

    /// Queues this thread's full batch: at once if there is room, else after waiting
    /// up to [`Limits::full_wait`], unless an earlier wait already failed and the
    /// writer has not made room since. Returns the batch's lock again, and whether the
    /// batch was handed over (then it is empty; else it is as it was).
    fn hand_over<'a>(
        &self,
        shard: &'a Mutex<Batch>,
        mut batch: MutexGuard<'a, Batch>,
    ) -> (MutexGuard<'a, Batch>, bool) {
        if self.try_push(&mut batch) {
            return (batch, true);
        }
        if self.overloaded.load(Ordering::Relaxed) {
            return (batch, false);
        }
        // Wait without holding the batch's lock, so that the writer can go on
        // collecting everyone's batches meanwhile.
        let full = mem::take(&mut *batch);
        drop(batch);
        match self.push_waiting(full) {
            Ok(spare) => {
                let mut batch = lock(shard);
                batch.bytes = spare;
                (batch, true)
            }
            Err(full) => {
                self.overloaded.store(true, Ordering::Relaxed);
                let mut batch = lock(shard);
                if self.closed.load(Ordering::Acquire) {
                    self.counters
                        .dropped
                        .fetch_add(full.records, Ordering::Relaxed);
                } else {
                    *batch = full;
                    // Collected by the writer's next tick, like any batch being filled.
                    if !self.pending.swap(true, Ordering::AcqRel) {
                        self.wake_writer(&lock(&self.queue));
                    }
                }
                (batch, false)
            }
        }
    }

    fn drop_one(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.counters.reported_drop.swap(true, Ordering::Relaxed) {
            stderr_line(format_args!(
                "the {}export buffer is full (the destination is not keeping up); dropping records and counting them",
                self.label_prefix()
            ));
        }
    }

    fn label_prefix(&self) -> String {
        self.label.map(|l| format!("{l} ")).unwrap_or_default()
    }

    fn has_room(&self, queue: &Queue, bytes: usize) -> bool {
        queue.bytes == 0 || queue.bytes + bytes <= self.limits.queue_bytes
    }

    /// Queues `batch` if there is room, leaving a spare buffer in its place.
    fn try_push(&self, batch: &mut Batch) -> bool {
        let mut queue = lock(&self.queue);
        if !self.has_room(&queue, batch.bytes.len()) {
            return false;
        }
        let spare = self.spare(&mut queue);
        let full = mem::replace(
            batch,
            Batch {
                bytes: spare,
                ..Batch::default()
            },
        );
        self.enqueue(&mut queue, full);
        true
    }

    /// Queues `batch`, waiting up to [`Limits::full_wait`] for room; returns a spare
    /// buffer to fill next.
    fn push_waiting(&self, batch: Batch) -> Result<Vec<u8>, Batch> {
        let deadline = Instant::now() + self.limits.full_wait;
        let mut queue = lock(&self.queue);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(batch);
            }
            if self.has_room(&queue, batch.bytes.len()) {
                self.enqueue(&mut queue, batch);
                return Ok(self.spare(&mut queue));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(batch);
            }
            queue.waiting_for_room += 1;
            queue = self
                .room
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            queue.waiting_for_room -= 1;
        }
    }

    /// A buffer to fill next: an emptied one, or a new one of a batch's size (growing
    /// one from nothing would copy it over and over on the emitting thread).
    fn spare(&self, queue: &mut Queue) -> Vec<u8> {
        queue
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.limits.batch_bytes + BATCH_HEADROOM))
    }

    fn enqueue(&self, queue: &mut Queue, mut batch: Batch) {
        batch.queued = true;
        queue.bytes += batch.bytes.len();
        queue.batches.push_back(batch);
        self.wake_writer(queue);
    }

    fn wake_writer(&self, queue: &Queue) {
        if queue.writer_waiting {
            self.work.notify_one();
        }
    }

    // ------------------------------------------------------------------------------
    // The writing side

    /// Waits until there is something to do: batches to write, the tick for batches
    /// still being filled, a flush or shutdown.
    pub(crate) fn next_job(&self) -> Job {
        let mut queue = lock(&self.queue);
        loop {
            let now = Instant::now();
            if queue.tick_at.is_none() && self.pending.load(Ordering::Acquire) {
                queue.tick_at = Some(now + self.limits.tick);
            }
            let asked = queue.flush_asked > queue.flush_done || queue.shutdown;
            // Kept across jobs: a busy thread's full batches must not hold back a quiet
            // thread's records past the tick.
            let ticked = queue.tick_at.is_some_and(|at| now >= at);
            if asked || ticked {
                let flush = (queue.flush_asked > queue.flush_done).then_some(queue.flush_asked);
                let shutdown = queue.shutdown;
                queue.tick_at = None;
                drop(queue);
                return self.collect(flush, shutdown);
            }
            if !queue.batches.is_empty() {
                return Job {
                    batches: queue.batches.drain(..).collect(),
                    flush: None,
                    shutdown: false,
                };
            }
            queue.writer_waiting = true;
            queue = match queue.tick_at {
                Some(at) => {
                    self.work
                        .wait_timeout(queue, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .work
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            queue.writer_waiting = false;
        }
    }

    /// Takes every thread's batch, then everything queued: a thread's full batch is
    /// queued before it starts the next one, so queued batches go first.
    fn collect(&self, flush: Option<u64>, shutdown: bool) -> Job {
        self.pending.store(false, Ordering::Release);
        let mut filling = Vec::new();
        for shard in self.shards.iter() {
            let mut batch = lock(shard);
            if batch.records > 0 {
                filling.push(mem::take(&mut *batch));
            }
        }
        let mut queue = lock(&self.queue);
        let mut batches: Vec<Batch> = queue.batches.drain(..).collect();
        batches.append(&mut filling);
        Job {
            batches,
            flush,
            shutdown,
        }
    }

    /// Marks a job's batches as being written, so that shutdown can account for them
    /// if the writer never comes back from a write.
    pub(crate) fn writing(&self, job: &Job) {
        let records = job.batches.iter().map(|b| b.records).sum();
        self.counters.in_flight.store(records, Ordering::Release);
    }

    /// Counts the outcome of writing `batch`, frees its room and keeps its buffer.
    pub(crate) fn written(&self, mut batch: Batch, outcome: Result<(), &std::io::Error>) {
        // This batch's records, unless shutdown gave up on the job and counted them.
        let records = self
            .counters
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(batch.records))
            })
            .map_or(0, |left| left.min(batch.records));
        let mut queue = lock(&self.queue);
        if batch.queued {
            // Shutdown may have given up on this batch and emptied the count already.
            queue.bytes = queue.bytes.saturating_sub(batch.bytes.len());
        }
        // Kept up to what the queue may hold: a buffer freed here would be allocated
        // and faulted in again on an emitting thread at the next burst.
        if queue.spare.len() < self.limits.queue_bytes / self.limits.batch_bytes.max(1)
            && batch.bytes.capacity() <= 2 * self.limits.batch_bytes
        {
            batch.bytes.clear();
            queue.spare.push(mem::take(&mut batch.bytes));
        }
        self.overloaded.store(false, Ordering::Relaxed);
        // About one batch's room: one waiting emitter (waking them all would send all
        // but one back to sleep, a storm of switches when threads outnumber cores).
        if queue.waiting_for_room > 0 {
            self.room.notify_one();
        }
        drop(queue);
        // Counted once the room is free: whoever sees the count sees the room.
        match outcome {
            Ok(()) => {
                self.counters.written.fetch_add(records, Ordering::Release);
            }
            Err(err) => {
                self.counters.failed.fetch_add(records, Ordering::Release);
                if !self.counters.reported_failure.swap(true, Ordering::Relaxed) {
                    report_write_error(err);
                }
            }
        }
    }

    /// Answers flush request `seq`.
    pub(crate) fn answer(&self, seq: u64) {
        let mut queue = lock(&self.queue);
        queue.flush_done = queue.flush_done.max(seq);
        self.answered.notify_all();
    }

    // ------------------------------------------------------------------------------
    // Flush and shutdown, from the app

    /// Asks the writer to write every record so far and waits for it, as long as it
    /// makes progress. Returns whether it answered.
    pub(crate) fn flush(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            // Shut down: everything was written or counted then, and no writer is left.
            return true;
        }
        let mut queue = lock(&self.queue);
        queue.flush_asked += 1;
        let seq = queue.flush_asked;
        self.wake_writer(&queue);
        self.wait_answer(queue, seq)
    }

    /// Stops taking records, writes everything taken and stops the writer. Waits as
    /// long as the writer makes progress; if it makes none for [`Limits::stall`],
    /// counts what it still holds as dropped and returns false.
    pub(crate) fn shutdown(&self) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let mut queue = lock(&self.queue);
        queue.shutdown = true;
        queue.flush_asked += 1;
        let seq = queue.flush_asked;
        self.wake_writer(&queue);
        self.room.notify_all();
        if self.wait_answer(queue, seq) {
            return true;
        }
        // The writer is stuck in a write. Whatever it has not taken will never be
        // written by it: count it now, and take it so that it cannot be counted twice.
        let mut abandoned = self.counters.in_flight.swap(0, Ordering::AcqRel);
        for shard in self.shards.iter() {
            abandoned += mem::take(&mut *lock(shard)).records;
        }
        let mut queue = lock(&self.queue);
        abandoned += queue.batches.drain(..).map(|b| b.records).sum::<u64>();
        queue.bytes = 0;
        drop(queue);
        self.counters
            .dropped
            .fetch_add(abandoned, Ordering::Relaxed);
        false
    }

    /// Shuts the hand-off without waiting for a writer: for a start that failed, so
    /// that a writer whose open completes later stops at once.
    pub(crate) fn abandon(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut queue = lock(&self.queue);
        queue.shutdown = true;
        self.wake_writer(&queue);
    }

    fn wait_answer(&self, mut queue: MutexGuard<'_, Queue>, seq: u64) -> bool {
        let mut seen = self.progress();
        loop {
            if queue.flush_done >= seq {
                return true;
            }
            let (next, timeout) = self
                .answered
                .wait_timeout(queue, self.limits.stall)
                .unwrap_or_else(PoisonError::into_inner);
            queue = next;
            if timeout.timed_out() && queue.flush_done < seq {
                let now = self.progress();
                if now == seen {
                    return false;
                }
                seen = now;
            }
        }
    }

    fn progress(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed) + self.counters.failed.load(Ordering::Relaxed)
    }

    /// The one-line summary for shutdown, when there is something to say.
    pub(crate) fn summary(&self, finished: bool) -> Option<String> {
        let stats = self.stats();
        if finished && stats.dropped() == 0 && stats.failed() == 0 {
            return None;
        }
        let mut line = format!(
            "export summary{}: {} written, {} dropped (buffer full), {} lost to write errors",
            self.label.map(|l| format!(" ({l})")).unwrap_or_default(),
            stats.written(),
            stats.dropped(),
            stats.failed()
        );
        if !finished {
            line.push_str(&format!(
                "; gave up waiting: the destination made no progress for {:?} (the records still queued are counted as dropped)",
                self.limits.stall
            ));
        }
        Some(line)
    }

    /// Counts `records` that could not be handed over at all (export never started).
    pub(crate) fn refuse(&self, records: u64) {
        self.counters.dropped.fetch_add(records, Ordering::Relaxed);
    }
}
