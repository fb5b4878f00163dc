//! A queued destination's front: where the sink pushes records, and where the app
//! flushes, shuts down and reads the counts.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::handoff::{Handoff, Pending, Pushed, Signals};
use super::worker::{self, Deliver};
use super::{Counters, Counts, Ending, ExportStats, Msg, Policy, State, WhenFull};
use crate::record::Record;

/// How long shutdown waits past its deadline for the worker's answer: a request
/// already under way when the deadline passed ends by its own timeout.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// How a destination encodes a record on the emitting thread, as its worker would
/// (see [`Queue::with_encode_here`]): one record that ends itself (a JSON line).
pub(crate) trait EncodeHere: Send + Sync + 'static {
    /// Appends `record` to `buf`.
    fn encode(&self, record: &Record<'_>, buf: &mut Vec<u8>);

    /// Writes `record` at the start of `out`; returns its length, or `None` if it
    /// does not fit.
    fn encode_into(&self, record: &Record<'_>, out: &mut [u8]) -> Option<usize>;
}

/// One queued destination's front: where records go in, and flush, shutdown and the
/// counts come from. Its worker is started by [`Queue::start`].
pub(crate) struct Queue {
    state: Arc<State>,
    /// How to encode a record on the emitting thread while the worker is behind.
    encode_here: Option<Box<dyn EncodeHere>>,
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
                full_notice: format!(
                    "the {}export buffer is full (the destination is not keeping up); dropping records and counting them",
                    label.map(|l| format!("{l} ")).unwrap_or_default()
                ),
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

    /// What is said, once, when the first record is dropped on a full queue.
    #[cfg(feature = "otlp")]
    pub(crate) fn with_full_notice(mut self, notice: String) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.full_notice = notice;
        }
        self
    }

    /// Lets emitting threads encode records themselves with `encode` while the worker
    /// is behind (more than 1/32 of the bound queued, until it is back under 1/128):
    /// a burst is then encoded by every emitting thread at once, instead of
    /// queueing for the one worker. Otherwise they only capture the record, the
    /// least an emitting thread can do.
    pub(crate) fn with_encode_here(mut self, encode: impl EncodeHere) -> Self {
        self.encode_here = Some(Box::new(encode));
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
        let here = match &self.encode_here {
            Some(encode) if state.behind.load(Ordering::Relaxed) => Some(&**encode),
            _ => None,
        };
        let (pushed, len) = self.push_as(here, record);
        if here.is_some() && state.handoff.fill() > 896 {
            // Nearly full and filling: give the worker the processor for a moment
            // (with many more threads than cores it gets a thread's share only), so
            // that it writes before the queue is full and records are dropped. Not
            // sooner: each yield costs a system call, and with a few threads the
            // worker keeps up from here (measured: at 2 threads on 2 cores, yielding
            // from half full took a tenth of the emitting threads' time; at 32 and 64
            // threads, not yielding at all dropped records).
            std::thread::yield_now();
        }
        match pushed {
            Pushed::Queued => {}
            Pushed::Busy => state.drop_one(),
            // A line larger than the whole bound never fits: the record is captured
            // instead (its capture may fit).
            Pushed::Full => self.full(here.filter(|_| len <= state.handoff.capacity()), record),
        }
    }

    /// Encodes `record` here with `here`, or captures it; returns what came of it,
    /// and the encoded line's length (0 if captured).
    #[inline]
    fn push_as(&self, here: Option<&dyn EncodeHere>, record: &Record<'_>) -> (Pushed, usize) {
        match here {
            Some(encode) => encode_here(encode, &self.state.handoff, record),
            None => (self.state.handoff.push(record), 0),
        }
    }

    /// Waits for room as the policy says, trying again as the first try did
    /// (encoded here or captured: a thread that switches starts a new chunk).
    #[cold]
    fn full(&self, here: Option<&dyn EncodeHere>, record: &Record<'_>) {
        let state = &*self.state;
        if !state.handoff.could_fit(record) {
            // Larger than the whole bound: no wait makes room for it, and it must not
            // make the other threads drop. It goes past the bound on its own.
            if state.handoff.push_past_bound(record) != Pushed::Queued {
                state.drop_one();
            }
            return;
        }
        let wait = match state.policy.when_full {
            WhenFull::Wait(wait) if !state.overloaded.load(Ordering::Relaxed) => wait,
            WhenFull::Wait(_) | WhenFull::Drop => return state.drop_one(),
        };
        let deadline = Instant::now() + wait;
        let mut room = state.room.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiters.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let pushed = loop {
            match self.push_as(here, record).0 {
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
        match self.state.policy.ending {
            Ending::Stall(_) => self.wait(&answered),
            Ending::Deadline(limit) => answered.recv_timeout(limit).is_ok(),
        }
    }

    /// Stops taking records, delivers everything taken and stops the worker. Waits as
    /// long as the worker makes progress, or until the policy's deadline; if it makes
    /// none for the policy's stall, or the deadline passes, counts what it still holds
    /// as given up (see [`Ending`]) and returns false.
    pub(crate) fn shutdown(&self) -> bool {
        let state = &*self.state;
        if state.closed.swap(true, Ordering::SeqCst) {
            return !state.abandoned.load(Ordering::Acquire);
        }
        state.made_room();
        let finished = if self.started() {
            let (ack, answered) = crossbeam_channel::bounded(1);
            match state.policy.ending {
                Ending::Stall(_) => {
                    self.msgs.send(Msg::Shutdown(None, ack)).is_err() || self.wait(&answered)
                }
                Ending::Deadline(limit) => {
                    let deadline = Instant::now() + limit;
                    self.msgs.send(Msg::Shutdown(Some(deadline), ack)).is_err()
                        || answered.recv_timeout(limit + DEADLINE_MARGIN).is_ok()
                }
            }
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
            state.give_up(held);
        } else {
            // The worker is stuck delivering. Whatever it holds will never be
            // delivered by it: count it now, and take it so that it cannot be counted
            // twice.
            state.abandoned.store(true, Ordering::Release);
            let held = state.counters.in_flight.swap(0, Ordering::AcqRel);
            state.give_up(held);
        }
        self.count_late();
        finished
    }

    /// Shuts the queue without waiting for the worker: for a start that failed, so
    /// that a worker whose open completes later stops at once.
    pub(crate) fn abandon(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        let (ack, _) = crossbeam_channel::bounded(1);
        let _ = self.msgs.send(Msg::Shutdown(Some(Instant::now()), ack));
    }

    /// Counts as given up the records a thread added after the worker's last look (it
    /// had checked `closed` just before shutdown set it), so that none is left
    /// uncounted in its lane.
    fn count_late(&self) {
        let state = &*self.state;
        let mut late = Pending::new();
        let records = state.handoff.collect(&mut late);
        if records > 0 {
            let taking = late.abandon();
            state.handoff.release(taking.bytes);
            state.give_up(records);
        }
    }

    /// Appends `record` as a thread that found the queue open just before shutdown
    /// closed it, and appends after the worker's last look: for a test.
    #[cfg(all(test, feature = "otlp"))]
    pub(crate) fn push_after_last_look(&self, record: &Record<'_>) -> bool {
        self.state.handoff.push(record) == Pushed::Queued
    }

    /// Emptied chunks kept for the emitting threads: for a test.
    #[cfg(test)]
    pub(crate) fn spare_chunks(&self) -> usize {
        self.state.handoff.spare_chunks()
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
        let (Ending::Stall(stall) | Ending::Deadline(stall)) = self.state.policy.ending;
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
    /// after the worker's last look is counted (as given up) before this answers.
    pub(crate) fn counts(&self) -> Counts {
        let state = &*self.state;
        if state.closed.load(Ordering::Acquire)
            && (state.abandoned.load(Ordering::Acquire) || !self.started())
        {
            self.count_late();
        }
        let c = &self.state.counters;
        // Once stopped, what is left reserved is busy threads' unused room, no record.
        let stopped = state.closed.load(Ordering::Acquire) && !self.started();
        let queued_bytes = if stopped {
            0
        } else {
            state.handoff.queued_bytes() as u64
        };
        Counts {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
            diverted: c.diverted.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            queued_bytes,
        }
    }

    /// [`counts`](Self::counts) as the app sees them: whatever was not written,
    /// dropped or still queued, failed.
    pub(crate) fn stats(&self) -> ExportStats {
        let c = self.counts();
        ExportStats::new(c.written, c.dropped, c.failed + c.rejected + c.undelivered)
            .holding(c.queued_bytes, 0)
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
            line.push_str(&match self.state.policy.ending {
                Ending::Stall(stall) => format!(
                    "; gave up waiting: the destination made no progress for {stall:?} (the records still queued are counted as dropped)"
                ),
                Ending::Deadline(limit) => format!(
                    "; gave up waiting: the destination did not finish within {limit:?} (the records still queued are counted as not delivered)"
                ),
            });
        }
        Some(line)
    }
}

/// Records encoded on their emitting thread, for the tests.
#[cfg(test)]
pub(crate) static ENCODED_HERE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Encodes `record` with `encode` straight into this thread's lane, or, if it does
/// not fit in the room there, into this thread's scratch buffer, and hands the bytes
/// over; captures it instead if the buffer is in use (a re-entrant call).
/// Returns what came of it, and the encoded line's length (0 if it was captured).
fn encode_here(encode: &dyn EncodeHere, handoff: &Handoff, record: &Record<'_>) -> (Pushed, usize) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // Timed by the counter where the worker's conversion allows: the wall clock's read
    // is a tenth of the encoding.
    record.timestamp_or(|| handoff.now());
    let mut len = 0;
    let in_place = handoff.push_encoded_in_place(|out| {
        let written = encode.encode_into(record, out);
        len = written.unwrap_or(0);
        written
    });
    let (pushed, len) = match in_place {
        Some(pushed) => (pushed, len),
        None => SCRATCH
            .try_with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut buf) => {
                    buf.clear();
                    encode.encode(record, &mut buf);
                    (handoff.push_encoded(&buf), buf.len())
                }
                Err(_) => (handoff.push(record), 0),
            })
            .unwrap_or_else(|_| (handoff.push(record), 0)),
    };
    #[cfg(test)]
    if pushed == Pushed::Queued && len > 0 {
        ENCODED_HERE.fetch_add(1, Ordering::Relaxed);
    }
    (pushed, len)
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("policy", &self.state.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::LineEncoder;
    use crate::pipeline::BatchPolicy;
    use crate::record::Tag;

    /// A record whose line is larger than the whole bound, although its capture is
    /// not (control characters take 6 bytes each in JSON), while the emitting threads
    /// encode: it is captured at once, not retried encoded until the wait runs out.
    #[test]
    fn a_record_whose_line_cannot_fit_the_bound_is_captured_instead() {
        let queue = Queue::new(
            Policy {
                queue_bytes: 8 * 1024,
                when_full: WhenFull::Wait(Duration::from_millis(300)),
                ending: Ending::Stall(Duration::from_secs(1)),
                batch: BatchPolicy {
                    bytes: 4096,
                    records: usize::MAX,
                    delay: Duration::from_millis(100),
                },
                retry: None,
            },
            None,
        )
        .with_encode_here(LineEncoder::new("svc"));
        // As the worker leaves it while it is behind (no worker here to clear it).
        queue.state.behind.store(true, Ordering::Relaxed);
        let text = "\u{1}".repeat(3000);
        let tags = [Tag::new("blob", text.as_str())];
        let record = Record::new(crate::Kind::Event, "big", &tags);
        assert!(queue.state.handoff.could_fit(&record));
        queue.push(&record);
        assert_eq!(queue.state.counters.dropped.load(Ordering::Relaxed), 0);
        assert!(
            !queue.state.overloaded.load(Ordering::Relaxed),
            "the record waited out the whole wait for room it could never have"
        );
        assert!(queue.state.handoff.queued_bytes() > 3000, "it is queued");
    }
}
