//! The way every queued destination takes its records: one hand-off, one worker, and
//! policies that are data.
//!
//! * [`handoff`]: the emitting thread captures the record into a lane of its own (no
//!   lock, no shared atomic per record, no encoding); the worker takes whole chunks.
//!   While the worker is behind, a destination that can (JSON lines) encodes the
//!   record on the emitting thread instead, straight into the lane.
//! * [`worker`]: one thread per destination: collects the lanes (every
//!   [`BatchPolicy::delay`], or at once when a busy thread fills a chunk), converts
//!   the time, has the destination encode a batch and deliver it, counts the outcome.
//!   What the emitting threads encoded is delivered from where they wrote it, not
//!   copied ([`Deliver::deliver_parts`]: one `writev` for JSON lines).
//! * [`Queue`]: the destination's front, where the sink pushes records, the app
//!   flushes and shuts down, and the counts live ([`Counts`], [`ExportStats`]).
//!
//! A destination says only how to encode one record into a batch and how to deliver a
//! batch ([`Deliver`]); what to do when the queue is full ([`WhenFull`]), how shutdown
//! ends ([`Ending`]) and how large and how late a batch is ([`BatchPolicy`]) are a
//! [`Policy`], chosen per destination.
//!
//! Two destinations use it: JSON lines (stdout, stderr, a file) and the OTLP log
//! records. What differs between them is data: JSON lines wait up to 100 ms for room,
//! end when the writer makes no progress for 5 s, and count a write error as failed;
//! OTLP drops at once when full, ends at a deadline, retries with backoff
//! ([`Backoff`]), and keeps its batches in a [`Durable`] stage (the spool) before
//! their first send, when one is configured. A destination that pushes on a schedule
//! (the OTLP metrics) has a tick ([`Deliver::tick`]).
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
//!   [`Deliver`]), and says what came of it ([`Delivery`]). Its batch processor's
//!   defaults (512 records, a deadline at shutdown) are what the OTLP exporter uses.
//!   Unlike the SDK, where each exporter retries on its own, retrying is the
//!   worker's: a destination only says "try again" (with the server's `Retry-After`,
//!   if any).
//! * Vector's buffer stages and `when_full` (`block` / `drop_newest`): the policy a
//!   destination declares rather than code paths per destination, and a disk buffer
//!   as a stage between the queue and the sink (here [`Durable`]: every batch is
//!   written to it before its first send, and sent from it oldest first).

pub(crate) mod clock;
pub(crate) mod handoff;
mod queue;
mod stats;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use handoff::Handoff;
#[cfg(test)]
pub(crate) use queue::ENCODED_HERE;
pub(crate) use queue::{EncodeHere, Queue};
#[cfg(any(feature = "prometheus", feature = "otlp"))]
pub(crate) use stats::DestinationsFn;
pub use stats::{DestinationStats, ExportStats};
pub(crate) use worker::{Deliver, Delivery, Failure};
#[cfg(feature = "otlp")]
pub(crate) use worker::{Durable, Notice, Stored};

/// What a full queue does to the emitting thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Waits up to this long for the worker to make room, then drops; and drops at
    /// once, without waiting, until the worker has made room again. A destination
    /// that has stopped costs the app one wait; one that is merely slow holds
    /// emitters back rather than losing records.
    Wait(Duration),
    /// Drops at once: the queue's bound is the only slack (a destination that is
    /// away for minutes, such as a collector, must not slow the app at all).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code, reason = "OTLP's policy"))]
    Drop,
}

/// How shutdown (and a flush) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Waits as long as the destination makes progress; gives up after this long
    /// without any, counting what is still queued as dropped.
    Stall(Duration),
    /// Delivers what it can within this long, then counts what is left as
    /// undelivered (a flush waits as long, and leaves what is left queued).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code, reason = "OTLP's policy"))]
    Deadline(Duration),
}

/// How large a batch grows, and how long a record waits for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPolicy {
    /// A batch is delivered once its encoded body holds this many bytes...
    pub(crate) bytes: usize,
    /// ... or this many records.
    pub(crate) records: usize,
    /// The worker collects the lanes this often (and at once when a busy thread
    /// fills a chunk).
    pub(crate) delay: Duration,
}

/// How a batch the destination could not take for now is tried again: after a wait
/// that starts at `start`, doubles up to `max`, and is drawn at random from its upper
/// half (so that many apps do not retry in step); or as long as the destination says
/// (`Retry-After`), up to `after_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) start: Duration,
    pub(crate) max: Duration,
    pub(crate) after_max: Duration,
}

/// A destination's queue policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Bytes of captured records waiting for the worker, at most.
    pub(crate) queue_bytes: usize,
    pub(crate) when_full: WhenFull,
    pub(crate) ending: Ending,
    pub(crate) batch: BatchPolicy,
    /// `None`: a failed delivery is final (counted as failed).
    pub(crate) retry: Option<Backoff>,
}

/// What a destination's queue counted, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    /// Records the destination took.
    pub(crate) written: u64,
    /// Records not queued: the queue was full, or shut.
    pub(crate) dropped: u64,
    /// Records lost to write errors.
    pub(crate) failed: u64,
    /// Records the destination refused for good.
    pub(crate) rejected: u64,
    /// Records given up at a shutdown's deadline, or turned away (`diverted`).
    pub(crate) undelivered: u64,
    /// Of `undelivered`, those the destination turned away (a redirect).
    pub(crate) diverted: u64,
    /// Deliveries tried again.
    pub(crate) retries: u64,
    /// Bytes of the queue's bound still taken; 0 once stopped.
    pub(crate) queued_bytes: u64,
}

/// The counts of one destination.
#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    undelivered: AtomicU64,
    diverted: AtomicU64,
    retries: AtomicU64,
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
    /// Deliver everything recorded (by the deadline, if there is one), answer, stop.
    Shutdown(Option<Instant>, Sender<()>),
}

/// What the front and the worker share.
struct State {
    handoff: Handoff,
    policy: Policy,
    /// Named in messages when the app has several destinations.
    label: Option<&'static str>,
    /// Said once, at the first record dropped on a full queue.
    full_notice: String,
    counters: Counters,
    /// Set once shutdown starts: from then on, records are dropped and counted.
    closed: AtomicBool,
    /// Set once shutdown gave up on a worker that did not finish: it takes nothing
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
    fn drop_one(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.counters.reported_drop.swap(true, Ordering::Relaxed) {
            crate::report::stderr_line(format_args!("{}", self.full_notice));
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

    /// Everything the destination settled so far, one way or another.
    fn progress(&self) -> u64 {
        let c = &self.counters;
        c.written.load(Ordering::Relaxed)
            + c.failed.load(Ordering::Relaxed)
            + c.rejected.load(Ordering::Relaxed)
            + c.undelivered.load(Ordering::Relaxed)
    }

    /// Counts `records` that shutdown gave up on: dropped when it waited for progress
    /// that did not come, undelivered when its deadline passed.
    fn give_up(&self, records: u64) {
        let counter = match self.policy.ending {
            Ending::Stall(_) => &self.counters.dropped,
            Ending::Deadline(_) => &self.counters.undelivered,
        };
        counter.fetch_add(records, Ordering::Relaxed);
    }

    /// Takes up to `records` from those in flight; returns how many were still there
    /// to count (shutdown may have given up on them and counted them already).
    fn settle_in_flight(&self, records: u64) -> u64 {
        self.counters
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(records))
            })
            .map_or(0, |left| left.min(records))
    }
}
