//! The one worker: a thread per queued destination that takes what the hand-off
//! holds, has the destination encode it in batches and deliver them, and counts the
//! outcome of each.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::clock::{Calibration, Converter};
use super::handoff::{Batching, Captured, Pending, Read, Signals};
use super::{Msg, State};
use crate::report::report_write_error;

/// How often the worker checks that the kernel still keeps time with the counter.
const CLOCK_CHECK: Duration = Duration::from_secs(1);

/// What a queued destination adds to the pipeline: how a record is encoded into a
/// batch, and how a batch is delivered. Everything else (when to collect, how large a
/// batch grows, what to count, when to stop) is the worker's, by its [`Policy`](super::Policy).
pub(crate) trait Deliver: Send + 'static {
    /// Appends `record` to `body`. Its time is Unix nanoseconds (the worker has
    /// converted counter values already).
    fn encode(&mut self, record: &Captured<'_>, body: &mut Vec<u8>);

    /// Appends what the destination encoded on the emitting thread (see
    /// [`Queue::push`](super::Queue::push)) to `body`.
    fn encoded(&mut self, bytes: &[u8], body: &mut Vec<u8>) {
        body.extend_from_slice(bytes);
    }

    /// Delivers `body`, which holds whole records. On an error, the records that
    /// reached the destination whole before it count as written, the rest as failed;
    /// the first error is reported on stderr.
    fn deliver(&mut self, body: &[u8]) -> Result<(), Failure>;
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
    pending: Pending,
    calibration: Calibration,
    body: Vec<u8>,
    /// Flushes to answer once what was recorded before them is delivered.
    acks: Vec<Sender<()>>,
    stop: Option<Sender<()>>,
    next_clock_check: Instant,
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
        let body = Vec::with_capacity(state.policy.batch.bytes + 4096);
        Worker {
            state,
            msgs,
            signals,
            destination,
            pending: Pending::new(),
            calibration: Calibration::new(),
            body,
            acks: Vec::new(),
            stop: None,
            next_clock_check: Instant::now() + CLOCK_CHECK,
        }
    }

    /// Runs until shutdown.
    pub(super) fn run(mut self) {
        loop {
            let wake = self.wait(self.state.policy.batch.delay);
            match wake {
                Wake::Msg(msg) => self.take(msg),
                Wake::Filled => {
                    // One look at the lanes serves every chunk filled so far.
                    while self.signals.filled.try_recv().is_ok() {}
                    self.signals.stock_spares();
                }
                Wake::Tick => {}
                Wake::Closed => {
                    // The front is gone without a shutdown: deliver what is here.
                    self.stop
                        .get_or_insert_with(|| crossbeam_channel::bounded(1).0);
                }
            }
            self.check_clock();
            self.drain();
            // `drain` returned when a look at the lanes found nothing: every flush
            // asked so far is covered.
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
                return;
            }
        }
    }

    /// The next message, a filled chunk, or `Tick` after `delay`.
    fn wait(&self, delay: Duration) -> Wake {
        select! {
            recv(self.msgs) -> msg => match msg {
                Ok(msg) => Wake::Msg(msg),
                Err(_) => Wake::Closed,
            },
            recv(self.signals.filled) -> filled => match filled {
                Ok(()) => Wake::Filled,
                Err(_) => Wake::Closed,
            },
            default(delay) => Wake::Tick,
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(ack) => self.acks.push(ack),
            Msg::Shutdown(ack) => self.stop = Some(ack),
        }
    }

    /// Once a second: back to the wall clock if the kernel gave up the counter.
    fn check_clock(&mut self) {
        let now = Instant::now();
        if now >= self.next_clock_check {
            self.next_clock_check = now + CLOCK_CHECK;
            self.state.handoff.check_clock();
        }
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
            let taken = self.state.handoff.collect(&mut self.pending);
            self.state.note_fill();
            self.state
                .counters
                .in_flight
                .fetch_add(taken, Ordering::AcqRel);
            if self.pending.is_empty() {
                return;
            }
            while self.send_batch() {
                if self.pending.is_empty() || self.state.abandoned.load(Ordering::Acquire) {
                    break;
                }
                // Messages keep arriving during a long backlog.
                while let Ok(msg) = self.msgs.try_recv() {
                    self.take(msg);
                }
                self.signals.stock_spares();
                self.check_clock();
            }
            for ack in self.acks.drain(..covered) {
                let _ = ack.send(());
            }
        }
    }

    /// Encodes and delivers the oldest batch; false if nothing was pending.
    fn send_batch(&mut self) -> bool {
        self.body.clear();
        let converter: Converter = self.calibration.converter();
        let limit = self.state.policy.batch.bytes;
        let (destination, body) = (&mut self.destination, &mut self.body);
        let Some(taking) = self.pending.next_batch(&self.signals, usize::MAX, |entry| {
            match entry.read() {
                Some(Read::Record(mut record)) => {
                    if record.time_in_ticks {
                        record.time_unix_nano = converter.unix_nanos(record.time_unix_nano);
                        record.time_in_ticks = false;
                    }
                    destination.encode(&record, body);
                }
                Some(Read::Encoded(bytes)) => destination.encoded(bytes, body),
                None => {}
            }
            if body.len() >= limit {
                Batching::Full
            } else {
                Batching::More
            }
        }) else {
            return false;
        };
        let outcome = self.destination.deliver(&self.body);
        self.state.handoff.release(taking.bytes);
        self.settle(taking.records, outcome);
        true
    }

    /// Counts the outcome of a batch of `records`, unless shutdown gave up on them and
    /// counted them already.
    fn settle(&mut self, records: u64, outcome: Result<(), Failure>) {
        let counters = &self.state.counters;
        let records = counters
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(records))
            })
            .map_or(0, |left| left.min(records));
        self.state.made_room();
        match outcome {
            Ok(()) => {
                counters.written.fetch_add(records, Ordering::Release);
            }
            Err(failure) => {
                let delivered = failure.delivered.min(records);
                counters.written.fetch_add(delivered, Ordering::Release);
                counters
                    .failed
                    .fetch_add(records - delivered, Ordering::Release);
                if !counters.reported_failure.swap(true, Ordering::Relaxed) {
                    report_write_error(&failure.error);
                }
            }
        }
    }
}
