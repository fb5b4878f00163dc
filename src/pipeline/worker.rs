//! The one worker: a thread per queued destination that takes what the hand-off
//! holds, has the destination encode it in batches and deliver them, tries again
//! what the destination could not take for now, and counts the outcome of each. A
//! destination with a [`Durable`] stage has every batch written there before its
//! first send ([`durable`]).

mod batch;
mod durable;

use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, Receiver, Sender};

pub(crate) use durable::Durable;
#[cfg(feature = "otlp")]
pub(crate) use durable::Stored;

use batch::Batch;

use super::clock::Calibration;
use super::handoff::{Captured, Pending, Signals};
use super::{Backoff, Msg, State};
use crate::report::report_write_error;

/// How often the worker checks that the kernel still keeps time with the counter.
const CLOCK_CHECK: Duration = Duration::from_secs(1);
/// How often the conversion of the counter is published for the emitting threads:
/// well within the second after which they no longer convert forward from it.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// What a queued destination adds to the pipeline: how a record is encoded into a
/// batch, and how a batch is delivered. Everything else (when to collect, how large a
/// batch grows, what to try again and when, what to count, when to stop) is the
/// worker's, by its [`Policy`](super::Policy).
pub(crate) trait Deliver: Send + 'static {
    /// Appends `record` to `body` (or keeps it, for [`seal`](Self::seal)). Its time
    /// is Unix nanoseconds (the worker has converted counter values already).
    fn encode(&mut self, record: &Captured<'_>, body: &mut Vec<u8>);

    /// Appends what the destination encoded on the emitting thread (see
    /// [`Queue::push`](super::Queue::push)) to `body`: for a destination that does
    /// not [take parts](Self::takes_parts), or has a [`Durable`] stage.
    fn encoded(&mut self, bytes: &[u8], body: &mut Vec<u8>) {
        body.extend_from_slice(bytes);
    }

    /// Whether batches may be given to [`deliver_parts`](Self::deliver_parts), so
    /// that what was encoded on the emitting threads is delivered from where they
    /// wrote it, not copied. Such a destination does not [seal](Self::seal) its
    /// batches.
    fn takes_parts(&self) -> bool {
        false
    }

    /// Delivers a batch given in parts, in order: runs of what [`encode`](Self::encode)
    /// wrote, and runs of what was encoded on the emitting threads; `records` whole
    /// records in all. By default, joined into one body for [`deliver`](Self::deliver).
    fn deliver_parts(
        &mut self,
        parts: &[IoSlice<'_>],
        records: u64,
        limit: Option<Duration>,
    ) -> Delivery {
        let mut body = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            body.extend_from_slice(part);
        }
        self.deliver(&body, false, records, limit)
    }

    /// Called before the first record of a batch, with the time it is taken.
    fn begin(&mut self, _now_unix_nanos: u64) {}

    /// Finishes the batch in `body` (a request around the records kept, compressed);
    /// returns whether the body is compressed.
    fn seal(&mut self, _body: &mut Vec<u8>) -> bool {
        false
    }

    /// Delivers `body`, which holds `records` whole records (`compressed` as
    /// [`seal`](Self::seal) said, possibly in an earlier run, for a body from the
    /// [`Durable`] stage), taking at most `limit` when shutdown's deadline is near.
    fn deliver(
        &mut self,
        body: &[u8],
        compressed: bool,
        records: u64,
        limit: Option<Duration>,
    ) -> Delivery;

    /// Says what the worker noticed, in the destination's words.
    fn notice(&mut self, _notice: Notice<'_>) {}

    /// When [`tick`](Self::tick) is next due, for a destination that pushes on a
    /// schedule.
    fn due(&self) -> Option<Instant> {
        None
    }

    /// The scheduled push; once more at shutdown, if time is left. Takes at most
    /// `limit` when shutdown's deadline is near.
    fn tick(&mut self, _limit: Option<Duration>) {}

    /// The durable stage, if the destination has one: called once, when the worker
    /// starts.
    fn durable(&mut self) -> Option<Box<dyn Durable>> {
        None
    }
}

/// What came of one delivery.
#[derive(Debug)]
#[cfg_attr(
    not(feature = "otlp"),
    allow(dead_code, reason = "the OTLP destination's outcomes")
)]
pub(crate) enum Delivery {
    /// The destination took every record.
    Delivered,
    /// It took the batch but refused `refused` of its records for good.
    Partial { refused: u64, reason: String },
    /// A write failed part way; not tried again.
    Failed(Failure),
    /// Refused for good: not tried again, counted as rejected.
    Refused { reason: String },
    /// Not now: tried again after the [`Backoff`], or after `after` if the
    /// destination said how long.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Turned away (a redirect, not followed): not tried again from memory; a
    /// [`Durable`] stage keeps it and tries again, as for [`Retry`](Self::Retry).
    Diverted { reason: String },
}

/// What the worker tells the destination, to be said in its words.
#[derive(Debug)]
#[cfg_attr(
    not(feature = "otlp"),
    allow(dead_code, reason = "the OTLP destination's notices")
)]
pub(crate) enum Notice<'a> {
    /// The first delivery of an outage that will be tried again.
    Failing { reason: &'a str },
    /// Delivered again after an outage.
    Reachable,
    /// Records refused for good.
    Refused { records: u64, reason: &'a str },
    /// Records turned away, not tried again.
    Diverted { records: u64, reason: &'a str },
}

/// A delivery that failed part way.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: io::Error,
    /// Records of the batch that reached the destination whole before the error.
    pub(crate) delivered: u64,
}

pub(super) struct Worker<D> {
    state: Arc<State>,
    msgs: Receiver<Msg>,
    signals: Signals,
    destination: D,
    durable: Option<Box<dyn Durable>>,
    pending: Pending,
    calibration: Calibration,
    body: Vec<u8>,
    /// Flushes to answer once what was recorded before them is delivered.
    acks: Vec<Sender<()>>,
    stop: Option<Sender<()>>,
    /// Set by a shutdown with a deadline: nothing is sent after it.
    deadline: Option<Instant>,
    next_collect: Instant,
    next_clock_check: Instant,
    /// When records were last taken from the lanes.
    last_taken: Instant,
    /// When the worker's conversion of the counter is next published for the
    /// emitting threads ([`Handoff::now`](super::handoff::Handoff::now)).
    next_publish: Instant,
    /// Whether the destination is failing now (said once per outage).
    failing: bool,
    /// When the durable stage's oldest batch is tried next, and how many tries failed.
    next_attempt: Instant,
    attempt: u32,
    jitter: u64,
}

enum Wake {
    Msg(Msg),
    Filled,
    Tick,
    Closed,
}

impl<D: Deliver> Worker<D> {
    pub(super) fn new(
        state: Arc<State>,
        msgs: Receiver<Msg>,
        signals: Signals,
        destination: D,
    ) -> Self {
        let body = Vec::with_capacity(state.policy.batch.bytes.min(1 << 20) + 4096);
        let now = Instant::now();
        Worker {
            next_collect: now + state.policy.batch.delay,
            state,
            msgs,
            signals,
            destination,
            durable: None,
            pending: Pending::new(),
            calibration: Calibration::new(),
            body,
            acks: Vec::new(),
            stop: None,
            deadline: None,
            next_clock_check: now + CLOCK_CHECK,
            last_taken: now,
            next_publish: now,
            failing: false,
            next_attempt: now,
            attempt: 0,
            jitter: seed(),
        }
    }

    /// Runs until shutdown.
    pub(super) fn run(mut self) {
        self.durable = self.destination.durable();
        loop {
            if self.stop.is_some() {
                return self.finish();
            }
            let mut due = self.next_collect;
            if let Some(tick) = self.destination.due() {
                due = due.min(tick);
            }
            if self.durable_waiting() {
                due = due.min(self.next_attempt);
            }
            let wake = self.wait_until(due);
            let mut filled = false;
            // On every wake, not only on a quiet tick: a busy queue always has a
            // filled chunk waiting, and must not hold back a scheduled push.
            self.periodic();
            match wake {
                Wake::Msg(msg) => self.take(msg),
                Wake::Filled => {
                    // One look at the lanes serves every chunk filled so far.
                    while self.signals.filled.try_recv().is_ok() {}
                    filled = true;
                }
                Wake::Tick => {
                    let now = Instant::now();
                    if now >= self.next_collect {
                        self.next_collect = now + self.state.policy.batch.delay;
                    } else if !self.durable_due(now) {
                        continue;
                    }
                }
                Wake::Closed => {
                    // The front is gone without a shutdown: deliver what is here.
                    self.stop
                        .get_or_insert_with(|| crossbeam_channel::bounded(1).0);
                }
            }
            if self.stop.is_some() {
                continue;
            }
            if self.durable.is_some() {
                self.drain_durably();
            } else {
                self.drain();
            }
            // After the chunks taken are back: new ones only for what is missing.
            if filled {
                self.signals.stock_spares();
            }
        }
    }

    /// The next message, a filled chunk, or `Tick` at `until`.
    fn wait_until(&self, until: Instant) -> Wake {
        let timeout = until.saturating_duration_since(Instant::now());
        select! {
            recv(self.msgs) -> msg => match msg {
                Ok(msg) => Wake::Msg(msg),
                Err(_) => Wake::Closed,
            },
            recv(self.signals.filled) -> filled => match filled {
                Ok(()) => Wake::Filled,
                Err(_) => Wake::Closed,
            },
            default(timeout) => Wake::Tick,
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(ack) => self.acks.push(ack),
            Msg::Shutdown(deadline, ack) => {
                self.deadline = deadline;
                self.stop = Some(ack);
            }
        }
    }

    /// Messages that arrived meanwhile: a long backlog must not hide a shutdown.
    fn take_waiting(&mut self) {
        while let Ok(msg) = self.msgs.try_recv() {
            self.take(msg);
        }
    }

    /// What is due by the clock whatever else is going on: the destination's tick,
    /// and once a second the check that the kernel still keeps time with the
    /// counter.
    fn periodic(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let now = Instant::now();
        if self.destination.due().is_some_and(|due| now >= due) {
            self.destination.tick(None);
        }
        if now >= self.next_clock_check {
            self.next_clock_check = now + CLOCK_CHECK;
            self.state.handoff.check_clock();
            // Quiet for a second: the chunks a burst left in the pool go back. (Not
            // "nothing queued": a busy thread's unused grant stays reserved.)
            if now.duration_since(self.last_taken) >= CLOCK_CHECK {
                self.signals.trim_spares();
            }
        }
        if now >= self.next_publish {
            self.next_publish = now + PUBLISH_EVERY;
            let converter = self.calibration.converter();
            self.state.handoff.publish(&converter);
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the deadline, if there is one.
    fn limit(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Takes what the lanes hold into `pending`; returns how many records.
    fn collect(&mut self) -> u64 {
        let taken = self.state.handoff.collect(&mut self.pending);
        if taken > 0 {
            self.last_taken = Instant::now();
        }
        self.state.note_fill();
        self.state
            .counters
            .in_flight
            .fetch_add(taken, Ordering::AcqRel);
        taken
    }

    /// Delivers everything the lanes hold, taking them again until they are empty.
    /// A flush is answered once what the lanes held when it was asked is delivered,
    /// so that a busy app's flush returns although records keep coming.
    fn drain(&mut self) {
        loop {
            if self.state.abandoned.load(Ordering::Acquire) {
                return;
            }
            // Flushes asked before this look at the lanes are covered by it.
            let covered = self.acks.len();
            self.collect();
            if self.pending.is_empty() {
                self.answer(self.acks.len());
                return;
            }
            while self.send_batch() {
                if self.pending.is_empty()
                    || self.stop.is_some()
                    || self.state.abandoned.load(Ordering::Acquire)
                {
                    break;
                }
                self.take_waiting();
                self.signals.stock_spares();
                self.periodic();
            }
            if self.stop.is_some() {
                return;
            }
            self.answer(covered);
        }
    }

    /// Answers the first `covered` flushes.
    fn answer(&mut self, covered: usize) {
        for ack in self.acks.drain(..covered.min(self.acks.len())) {
            let _ = ack.send(());
        }
    }

    /// Shutdown: everything already queued (until the deadline, if there is one);
    /// then what is left is given up, and counted.
    fn finish(&mut self) {
        if self.durable.is_some() {
            self.collect();
            self.store_pending();
            self.send_stored_before_deadline();
            // Records appended while shutdown began are stored too.
            self.collect();
            self.store_pending();
        }
        loop {
            if self.state.abandoned.load(Ordering::Acquire) {
                break;
            }
            self.collect();
            if self.pending.is_empty() || self.past_deadline() {
                break;
            }
            while !self.pending.is_empty() && !self.past_deadline() {
                if self.state.abandoned.load(Ordering::Acquire) {
                    break;
                }
                self.send_batch();
            }
        }
        // A record appended while shutdown began is given up too, and counted.
        if !self.state.abandoned.load(Ordering::Acquire) {
            self.collect();
        }
        let left = self.pending.abandon();
        self.state.handoff.release(left.bytes);
        let left = self.state.settle_in_flight(left.records);
        self.state.give_up(left);
        // The last values, so that a short-lived app's pushes arrive too.
        if self.destination.due().is_some() && !self.past_deadline() {
            let limit = self.limit();
            self.destination.tick(limit);
        }
        self.answer(self.acks.len());
        if let Some(ack) = self.stop.take() {
            let _ = ack.send(());
        }
    }

    /// Encodes and delivers the oldest batch, trying again what the destination
    /// could not take for now; false if nothing was pending.
    fn send_batch(&mut self) -> bool {
        let (records, bytes, outcome) = if self.destination.takes_parts() && self.durable.is_none()
        {
            let Some((taking, outcome)) = self.send_parts() else {
                return false;
            };
            (taking.records, taking.bytes, outcome)
        } else {
            let Some((records, bytes, compressed)) = self.encode_batch() else {
                return false;
            };
            (records, bytes, self.deliver_body(compressed, records))
        };
        self.state.handoff.release(bytes);
        let records = self.state.settle_in_flight(records);
        self.state.made_room();
        self.settle(records, outcome);
        true
    }

    /// Delivers `body` until an answer that is not "try again", or shutdown's
    /// deadline (`None`: the time ran out first).
    fn deliver(&mut self, batch: Batch<'_>, records: u64) -> Option<Delivery> {
        let mut attempt = 0u32;
        loop {
            let limit = self.limit();
            if limit.is_some_and(|left| left.is_zero()) {
                return None;
            }
            let outcome = match batch {
                Batch::Body { bytes, compressed } => {
                    self.destination.deliver(bytes, compressed, records, limit)
                }
                Batch::Parts(parts) => self.destination.deliver_parts(parts, records, limit),
            };
            let (Some(backoff), Delivery::Retry { reason, after }) =
                (self.state.policy.retry, &outcome)
            else {
                self.reachable(&outcome);
                return Some(outcome);
            };
            self.failing(reason);
            let wait = match after {
                Some(after) => (*after).min(backoff.after_max),
                None => self.backoff(backoff, attempt),
            };
            attempt = attempt.saturating_add(1);
            if self.deadline.is_some_and(|d| Instant::now() + wait >= d) {
                // No time for another try after this wait.
                return Some(outcome);
            }
            self.state.counters.retries.fetch_add(1, Ordering::Relaxed);
            self.wait(wait);
        }
    }

    /// Waits before a retry, taking messages meanwhile (records keep collecting in
    /// the lanes, within the bound). A shutdown cuts the wait short: one more try,
    /// with what time is left.
    fn wait(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match self.wait_until(until) {
                Wake::Msg(msg) => {
                    let was_stopping = self.stop.is_some();
                    self.take(msg);
                    if !was_stopping && self.stop.is_some() {
                        return;
                    }
                }
                Wake::Filled => {}
                Wake::Tick => return,
                Wake::Closed => {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    return;
                }
            }
        }
    }

    /// Counts the outcome of a batch of `records`.
    fn settle(&mut self, records: u64, outcome: Option<Delivery>) {
        let counters = &self.state.counters;
        match outcome {
            Some(Delivery::Delivered) => {
                counters.written.fetch_add(records, Ordering::Release);
            }
            Some(Delivery::Partial { refused, reason }) => {
                let refused = refused.min(records);
                counters
                    .written
                    .fetch_add(records - refused, Ordering::Release);
                if refused > 0 {
                    counters.rejected.fetch_add(refused, Ordering::Release);
                    self.destination.notice(Notice::Refused {
                        records: refused,
                        reason: &format!("partial success: {reason}"),
                    });
                }
            }
            Some(Delivery::Failed(failure)) => {
                let delivered = failure.delivered.min(records);
                counters.written.fetch_add(delivered, Ordering::Release);
                counters
                    .failed
                    .fetch_add(records - delivered, Ordering::Release);
                if !counters.reported_failure.swap(true, Ordering::Relaxed) {
                    report_write_error(&failure.error);
                }
            }
            Some(Delivery::Refused { reason }) => {
                counters.rejected.fetch_add(records, Ordering::Release);
                self.destination.notice(Notice::Refused {
                    records,
                    reason: &reason,
                });
            }
            Some(Delivery::Diverted { reason }) => {
                counters.diverted.fetch_add(records, Ordering::Relaxed);
                counters.undelivered.fetch_add(records, Ordering::Release);
                self.destination.notice(Notice::Diverted {
                    records,
                    reason: &reason,
                });
            }
            Some(Delivery::Retry { reason, .. }) if self.state.policy.retry.is_none() => {
                // A destination with nothing to try again with: a failure.
                counters.failed.fetch_add(records, Ordering::Release);
                if !counters.reported_failure.swap(true, Ordering::Relaxed) {
                    report_write_error(&io::Error::other(reason));
                }
            }
            // Shutdown's time ran out while trying again.
            Some(Delivery::Retry { .. }) | None => {
                counters.undelivered.fetch_add(records, Ordering::Release);
            }
        }
    }

    /// An answer that is not "try again": the outage, if there was one, is over.
    fn reachable(&mut self, outcome: &Delivery) {
        if self.failing && !matches!(outcome, Delivery::Failed(_)) {
            self.failing = false;
            self.destination.notice(Notice::Reachable);
        }
    }

    fn failing(&mut self, reason: &str) {
        if !self.failing {
            self.failing = true;
            self.destination.notice(Notice::Failing { reason });
        }
    }

    /// The backoff's wait before try `attempt + 1`: doubling from its start up to its
    /// maximum, each drawn at random from its upper half.
    fn backoff(&mut self, backoff: Backoff, attempt: u32) -> Duration {
        let full = backoff
            .start
            .saturating_mul(1u32 << attempt.min(16))
            .min(backoff.max);
        // xorshift64: enough to spread retries; not for anything secret.
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let half = full / 2;
        half + half.mul_f64((self.jitter % 1024) as f64 / 1024.0)
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) ^ u64::from(std::process::id()) << 32) | 1
}
