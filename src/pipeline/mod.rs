//! The way every queued destination takes its records: one hand-off, one worker, and
//! policies that are data.
//!
//! * [`handoff`]: the emitting thread captures the record into a lane of its own (no
//!   lock, no shared atomic per record, no encoding); the worker takes whole chunks.
//! * [`worker`]: one thread per destination: collects the lanes (every
//!   [`BatchPolicy::delay`], or at once when a busy thread fills a chunk), converts
//!   the time, has the destination encode a batch and deliver it, counts the outcome.
//! * [`Queue`]: the destination's front, where the sink pushes records, the app
//!   flushes and shuts down, and the counts live ([`ExportStats`]).
//!
//! A destination says only how to encode one record into a batch and how to deliver a
//! batch ([`Deliver`]); what to do when the queue is full ([`WhenFull`]), how shutdown
//! ends ([`Ending`]) and how large and how late a batch is ([`BatchPolicy`]) are a
//! [`Policy`], chosen per destination.
//!
//! Where it stands: the JSON-lines destinations use all of it. The OTLP exporter's log
//! records go through the same [`handoff`], but its export thread
//! (`src/otlp/worker.rs`) is still a loop of its own, with its retry, its spool and
//! its metrics push; moving it onto [`worker`] (the spool as a durable stage, a
//! deadline as its [`Ending`], a drop-at-once [`WhenFull`]) is the next step.
//!
//! What was taken from elsewhere:
//!
//! * tracing-appender's `non_blocking` / `worker`: the split between the handle the
//!   app writes through (here [`Queue`]) and the worker thread that owns the writer,
//!   and its choice between lossy and blocking when full (here [`WhenFull`], with a
//!   bounded wait instead of an unbounded one: the app is never held for long).
//! * The OpenTelemetry SDK's processor / exporter split: the batching, the queue
//!   bound, the schedule and the shutdown deadline belong to the processor (here the
//!   worker and its [`Policy`]); the exporter only encodes and sends a batch (here
//!   [`Deliver`]). Its batch processor's defaults (512 records, a deadline at
//!   shutdown) are what the OTLP exporter uses.
//! * Vector's buffer stages and `when_full` (`block` / `drop_newest`): the policy a
//!   destination declares rather than code paths per destination.

pub(crate) mod clock;
pub(crate) mod handoff;
mod stats;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::record::Record;
use crate::report::stderr_line;
use handoff::{Handoff, Pending, Pushed, Signals};
#[cfg(any(feature = "prometheus", feature = "otlp"))]
pub(crate) use stats::DestinationsFn;
pub use stats::{DestinationStats, ExportStats};
pub(crate) use worker::{Deliver, Failure};

/// What a full queue does to the emitting thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Waits up to this long for the worker to make room, then drops; and drops at
    /// once, without waiting, until the worker has made room again. A destination
    /// that has stopped costs the app one wait; one that is merely slow holds
    /// emitters back rather than losing records.
    Wait(Duration),
}

/// How shutdown ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Waits as long as the destination makes progress; gives up after this long
    /// without any, counting what is still queued as dropped.
    Stall(Duration),
}

/// How large a batch grows, and how long a record waits for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPolicy {
    /// A batch is delivered once its encoded body holds this many bytes.
    pub(crate) bytes: usize,
    /// The worker collects the lanes this often (and at once when a busy thread
    /// fills a chunk).
    pub(crate) delay: Duration,
}

/// A destination's queue policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Bytes of captured records waiting for the worker, at most.
    pub(crate) queue_bytes: usize,
    pub(crate) when_full: WhenFull,
    pub(crate) ending: Ending,
    pub(crate) batch: BatchPolicy,
}

/// The counts of one destination.
#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Records the worker took and has not settled yet (or shutdown gave up on:
    /// whoever takes them first counts them).
    in_flight: AtomicU64,
    reported_drop: AtomicBool,
    reported_failure: AtomicBool,
}

/// What the app asks of the worker.
enum Msg {
    /// Deliver everything recorded before this, then answer.
    Flush(Sender<()>),
    /// Deliver everything recorded, answer, stop.
    Shutdown(Sender<()>),
}

/// What the front and the worker share.
struct State {
    handoff: Handoff,
    policy: Policy,
    /// Named in messages when the app has several destinations.
    label: Option<&'static str>,
    counters: Counters,
    /// Set once shutdown starts: from then on, records are dropped and counted.
    closed: AtomicBool,
    /// Set once shutdown gave up on a worker that made no progress: it takes nothing
    /// more from the lanes.
    abandoned: AtomicBool,
    /// Set when an emitter waited for room in vain; cleared whenever the worker frees
    /// room. While set, emitters drop at once instead of waiting.
    overloaded: AtomicBool,
    /// Set by the worker while more than 1/32 of the bound is queued, cleared below
    /// 1/128: then the emitting threads encode what they can themselves (see
    /// [`Queue::push`]). Low marks, so that a burst from many threads is encoded by
    /// all of them early on, rather than by the one worker until the queue is full.
    behind: AtomicBool,
    /// Emitters waiting for room, and what they wait on.
    waiters: AtomicUsize,
    room: (Mutex<()>, Condvar),
}

impl State {
    fn prefix(&self) -> String {
        self.label.map(|l| format!("{l} ")).unwrap_or_default()
    }

    fn drop_one(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.counters.reported_drop.swap(true, Ordering::Relaxed) {
            stderr_line(format_args!(
                "the {}export buffer is full (the destination is not keeping up); dropping records and counting them",
                self.prefix()
            ));
        }
    }

    /// Room was made: emitters may wait again, and those waiting try again.
    fn made_room(&self) {
        self.overloaded.store(false, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _room = self.room.0.lock().unwrap_or_else(PoisonError::into_inner);
            self.room.1.notify_all();
        }
    }

    /// Notes how full the queue is, for [`Queue::push`] (a store only when it
    /// changes, so that the emitting threads' copy of the flag stays cached).
    fn note_fill(&self) {
        let fill = self.handoff.fill();
        let behind = self.behind.load(Ordering::Relaxed);
        // `fill` is in parts per 1024.
        if !behind && fill > 32 {
            self.behind.store(true, Ordering::Relaxed);
        } else if behind && fill < 8 {
            self.behind.store(false, Ordering::Relaxed);
        }
    }

    fn progress(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed) + self.counters.failed.load(Ordering::Relaxed)
    }
}

/// Encodes a record as the destination's worker would, on the emitting thread.
pub(crate) type EncodeHere = Box<dyn Fn(&Record<'_>, &mut Vec<u8>) + Send + Sync>;

/// One queued destination's front: where records go in, and flush, shutdown and the
/// counts come from. Its worker is started by [`Queue::start`].
pub(crate) struct Queue {
    state: Arc<State>,
    /// How to encode a record on the emitting thread while the worker is behind.
    encode_here: Option<EncodeHere>,
    msgs: Sender<Msg>,
    /// Taken by the worker when it starts.
    parts: Mutex<Option<(Receiver<Msg>, Signals)>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Queue {
    pub(crate) fn new(policy: Policy, label: Option<&'static str>) -> Self {
        let (handoff, signals) = Handoff::new(policy.queue_bytes);
        let (msgs, msgs_rx) = crossbeam_channel::unbounded();
        Queue {
            state: Arc::new(State {
                handoff,
                policy,
                label,
                counters: Counters::default(),
                closed: AtomicBool::new(false),
                abandoned: AtomicBool::new(false),
                overloaded: AtomicBool::new(false),
                behind: AtomicBool::new(false),
                waiters: AtomicUsize::new(0),
                room: (Mutex::new(()), Condvar::new()),
            }),
            encode_here: None,
            msgs,
            parts: Mutex::new(Some((msgs_rx, signals))),
            worker: Mutex::new(None),
        }
    }

    /// Lets emitting threads encode records themselves with `encode` while the worker
    /// is behind (more than 1/32 of the bound queued, until it is back under 1/128):
    /// a burst is then encoded by every emitting thread at once, instead of
    /// queueing for the one worker. Otherwise they only capture the record, the
    /// least an emitting thread can do.
    pub(crate) fn with_encode_here(mut self, encode: EncodeHere) -> Self {
        self.encode_here = Some(encode);
        self
    }

    /// Starts the worker thread, named `name`: it opens its destination with `open`,
    /// says through the returned channel whether that worked, and then delivers what
    /// the queue holds until shutdown.
    pub(crate) fn start<D: Deliver>(
        &self,
        name: &str,
        open: impl FnOnce() -> std::io::Result<D> + Send + 'static,
    ) -> std::io::Result<std::sync::mpsc::Receiver<std::io::Result<()>>> {
        let Some((msgs, signals)) = self
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(std::io::Error::other("the worker was started already"));
        };
        let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
        let state = Arc::clone(&self.state);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || match open() {
                Ok(destination) => {
                    let _ = opened_tx.send(Ok(()));
                    worker::Worker::new(state, msgs, signals, destination).run();
                }
                Err(err) => {
                    let _ = opened_tx.send(Err(err));
                }
            })?;
        *self.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        Ok(opened)
    }

    /// Hands `record` to the worker, or counts it as dropped (the queue is full, or
    /// shut).
    #[inline]
    pub(crate) fn push(&self, record: &Record<'_>) {
        let state = &*self.state;
        if state.closed.load(Ordering::Acquire) {
            state.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let pushed = match &self.encode_here {
            Some(encode) if state.behind.load(Ordering::Relaxed) => {
                let pushed = encode_here(encode, &state.handoff, record);
                // Half full and filling: give the worker the processor for a moment
                // (with more threads than cores it gets a thread's share only), so
                // that it writes before the queue is full and records are dropped.
                if state.handoff.fill() > 512 {
                    std::thread::yield_now();
                }
                pushed
            }
            _ => state.handoff.push(record),
        };
        match pushed {
            Pushed::Queued => {}
            Pushed::Busy => state.drop_one(),
            Pushed::Full => self.full(record),
        }
    }

    #[cold]
    fn full(&self, record: &Record<'_>) {
        let state = &*self.state;
        if !state.handoff.could_fit(record) {
            // Larger than the whole bound: no wait makes room for it, and it must not
            // make the other threads drop. It goes past the bound on its own.
            if state.handoff.push_past_bound(record) != Pushed::Queued {
                state.drop_one();
            }
            return;
        }
        let WhenFull::Wait(wait) = state.policy.when_full;
        if state.overloaded.load(Ordering::Relaxed) {
            return state.drop_one();
        }
        let deadline = Instant::now() + wait;
        let mut room = state.room.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiters.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let pushed = loop {
            match state.handoff.push(record) {
                Pushed::Full => {}
                other => break other,
            }
            if state.closed.load(Ordering::Acquire) {
                break Pushed::Full;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Waited in vain: this record is kept, past the bound (the records
                // queued before it are not the ones to lose); the next ones are
                // dropped at once until the worker makes room.
                state.overloaded.store(true, Ordering::Relaxed);
                break state.handoff.push_past_bound(record);
            }
            // In short steps: a wake-up raced past is a short delay, never a lost one.
            room = state
                .room
                .1
                .wait_timeout(room, left.min(Duration::from_millis(10)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        state.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(room);
        if pushed != Pushed::Queued {
            state.drop_one();
        }
    }

    /// Counts `records` that could not be handed over at all (export never started).
    pub(crate) fn refuse(&self, records: u64) {
        self.state
            .counters
            .dropped
            .fetch_add(records, Ordering::Relaxed);
    }

    /// Asks the worker to deliver every record so far and waits for it, as long as it
    /// makes progress. Returns whether it answered.
    pub(crate) fn flush(&self) -> bool {
        if self.state.closed.load(Ordering::Acquire) || !self.started() {
            return true;
        }
        let (ack, answered) = crossbeam_channel::bounded(1);
        if self.msgs.send(Msg::Flush(ack)).is_err() {
            return true;
        }
        self.wait(&answered)
    }

    /// Stops taking records, delivers everything taken and stops the worker. Waits as
    /// long as the worker makes progress; if it makes none for the policy's stall,
    /// counts what it still holds as dropped and returns false.
    pub(crate) fn shutdown(&self) -> bool {
        let state = &*self.state;
        if state.closed.swap(true, Ordering::SeqCst) {
            return !state.abandoned.load(Ordering::Acquire);
        }
        state.made_room();
        let finished = if self.started() {
            let (ack, answered) = crossbeam_channel::bounded(1);
            self.msgs.send(Msg::Shutdown(ack)).is_err() || self.wait(&answered)
        } else {
            true
        };
        if finished {
            let handle = self
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(handle) = handle {
                let _ = handle.join();
            }
            // Nothing, unless the worker died (a bug) with records it had taken.
            let held = state.counters.in_flight.swap(0, Ordering::AcqRel);
            state.counters.dropped.fetch_add(held, Ordering::Relaxed);
        } else {
            // The worker is stuck delivering. Whatever it holds will never be
            // delivered by it: count it now, and take it so that it cannot be counted
            // twice.
            state.abandoned.store(true, Ordering::Release);
            let held = state.counters.in_flight.swap(0, Ordering::AcqRel);
            state.counters.dropped.fetch_add(held, Ordering::Relaxed);
        }
        self.count_late();
        finished
    }

    /// Shuts the queue without waiting for the worker: for a start that failed, so
    /// that a worker whose open completes later stops at once.
    pub(crate) fn abandon(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        let (ack, _) = crossbeam_channel::bounded(1);
        let _ = self.msgs.send(Msg::Shutdown(ack));
    }

    /// Counts as dropped the records a thread added after the worker's last look (it
    /// had checked `closed` just before shutdown set it), so that none is left
    /// uncounted in its lane.
    fn count_late(&self) {
        let state = &*self.state;
        let mut late = Pending::new();
        let records = state.handoff.collect(&mut late);
        if records > 0 {
            let taking = late.abandon();
            state.handoff.release(taking.bytes);
            state.counters.dropped.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// The worker thread, for a test to join.
    #[cfg(test)]
    pub(crate) fn take_worker(&self) -> Option<JoinHandle<()>> {
        self.worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn started(&self) -> bool {
        self.worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Waits for `answered` as long as the worker makes progress.
    fn wait(&self, answered: &Receiver<()>) -> bool {
        let Ending::Stall(stall) = self.state.policy.ending;
        let mut seen = self.state.progress();
        loop {
            match answered.recv_timeout(stall) {
                Ok(()) => return true,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let now = self.state.progress();
                    if now == seen {
                        return false;
                    }
                    seen = now;
                }
            }
        }
    }

    /// What the destination did so far. Once shut down, a record a thread added
    /// after the worker's last look is counted (as dropped) before this answers.
    pub(crate) fn stats(&self) -> ExportStats {
        let state = &*self.state;
        if state.closed.load(Ordering::Acquire)
            && (state.abandoned.load(Ordering::Acquire) || !self.started())
        {
            self.count_late();
        }
        let c = &self.state.counters;
        // Once stopped, what is left reserved is busy threads' unused room, no record.
        let stopped = state.closed.load(Ordering::Acquire) && !self.started();
        let queued = if stopped {
            0
        } else {
            state.handoff.queued_bytes() as u64
        };
        ExportStats::new(
            c.written.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        )
        .holding(queued, 0)
    }

    /// The one-line summary for shutdown, when there is something to say.
    pub(crate) fn summary(&self, finished: bool) -> Option<String> {
        let stats = self.stats();
        if finished && stats.dropped() == 0 && stats.failed() == 0 {
            return None;
        }
        let mut line = format!(
            "export summary{}: {} written, {} dropped (buffer full), {} lost to write errors",
            self.state
                .label
                .map(|l| format!(" ({l})"))
                .unwrap_or_default(),
            stats.written(),
            stats.dropped(),
            stats.failed()
        );
        if !finished {
            let Ending::Stall(stall) = self.state.policy.ending;
            line.push_str(&format!(
                "; gave up waiting: the destination made no progress for {stall:?} (the records still queued are counted as dropped)"
            ));
        }
        Some(line)
    }
}

/// Records encoded on their emitting thread, for the tests.
#[cfg(test)]
pub(crate) static ENCODED_HERE: AtomicU64 = AtomicU64::new(0);

/// Encodes `record` with `encode` into this thread's scratch buffer and hands the
/// bytes over; captures it instead if the buffer is in use (a re-entrant call).
fn encode_here(encode: &EncodeHere, handoff: &Handoff, record: &Record<'_>) -> Pushed {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH
        .try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                encode(record, &mut buf);
                #[cfg(test)]
                ENCODED_HERE.fetch_add(1, Ordering::Relaxed);
                handoff.push_encoded(&buf)
            }
            Err(_) => handoff.push(record),
        })
        .unwrap_or_else(|_| handoff.push(record))
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("policy", &self.state.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
