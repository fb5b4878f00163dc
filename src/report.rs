//! The crate's own messages on standard error, written by a thread of their own.
//!
//! A message (a full buffer, a write error, the export summary) is often about a
//! destination that is stuck: standard error itself, or a pipe that standard error
//! shares with standard output. Writing it from the thread that noticed would make
//! that thread wait on the very destination that is stuck, and that thread may be
//! the app's. So messages are handed to a reporter thread and never waited for,
//! except by [`flush`] and [`stderr_line_by`], which wait a bounded time: they are
//! for shutdown, when the summary should reach standard error before the process
//! exits.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long shutdown waits for its summaries to reach standard error: a stuck
/// standard error must not hold the app's exit for long.
pub(crate) const REPORT_WAIT: Duration = Duration::from_secs(1);

/// Messages waiting for the reporter. Each kind of message is reported once, so a
/// handful is plenty; beyond it, messages are dropped rather than waited for (except
/// by the shutdown calls, which wait a bounded time for room).
const QUEUE: usize = 64;

enum Message {
    Line(String),
    /// Answer once every message before this one has been written.
    Flush(mpsc::SyncSender<()>),
}

/// A bounded queue of messages and the loop that writes them. A `Mutex` and two
/// `Condvar`s rather than a channel, because a sender must be able to wait for room
/// for a bounded time (std's `SyncSender` can only wait without a bound or not at all).
struct Reporter {
    queue: Mutex<VecDeque<Message>>,
    /// Signalled when a message is queued.
    filled: Condvar,
    /// Signalled when the reporter takes a message, making room.
    room: Condvar,
}

impl Reporter {
    const fn new() -> Self {
        Reporter {
            queue: Mutex::new(VecDeque::new()),
            filled: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Message>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message`; when the queue is full, waits for room until `deadline`, or
    /// not at all without one. Whether it was queued.
    fn push(&self, message: Message, deadline: Option<Instant>) -> bool {
        let mut queue = self.lock();
        while queue.len() >= QUEUE {
            let left = deadline.map_or(Duration::ZERO, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            queue = self
                .room
                .wait_timeout(queue, left)
                .map_or_else(|e| e.into_inner().0, |(queue, _)| queue);
        }
        queue.push_back(message);
        drop(queue);
        self.filled.notify_one();
        true
    }

    /// Waits until every message queued so far is written, or `deadline`: whether
    /// they were.
    fn flush_by(&self, deadline: Instant) -> bool {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.push(Message::Flush(ack_tx), Some(deadline))
            && ack_rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_ok()
    }

    /// Writes the messages to `out` as they come, for ever.
    fn run(&self, mut out: impl Write) {
        loop {
            let message = {
                let mut queue = self.lock();
                loop {
                    match queue.pop_front() {
                        Some(message) => break message,
                        None => {
                            queue = self
                                .filled
                                .wait(queue)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            };
            self.room.notify_all();
            match message {
                // Never panics: standard error itself may be the broken destination.
                Message::Line(line) => {
                    let _ = out.write_all(line.as_bytes());
                }
                Message::Flush(ack) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
            }
        }
    }
}

/// The reporter, its thread started on first use; `None` if the thread could not be
/// started (then messages are written by the caller, the only way left to say
/// anything at all).
fn reporter() -> Option<&'static Reporter> {
    static REPORTER: Reporter = Reporter::new();
    static STARTED: OnceLock<bool> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            thread::Builder::new()
                .name("telemetry-report".into())
                .spawn(|| REPORTER.run(io::stderr()))
                .is_ok()
        })
        .then_some(&REPORTER)
}

fn line(message: fmt::Arguments<'_>) -> String {
    format!("telemetry: {message}\n")
}

/// Says `telemetry: <message>` on standard error, as one line written with a single
/// write (so another thread's output cannot land in the middle of it), without
/// waiting for it to be written.
pub(crate) fn stderr_line(message: fmt::Arguments<'_>) {
    let line = line(message);
    match reporter() {
        // A full queue means the reporter is stuck on standard error; what it
        // already holds says enough.
        Some(reporter) => {
            reporter.push(Message::Line(line), None);
        }
        None => {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Like [`stderr_line`], for a line that must not be lost to a full queue (a summary
/// at shutdown): waits for room until `deadline` if the queue is full. Follow it with
/// [`flush_by`] for the line to be written before the process exits.
#[cfg_attr(
    not(feature = "otlp"),
    allow(dead_code, reason = "the otlp exporter's summary is its one user")
)]
pub(crate) fn stderr_line_by(message: fmt::Arguments<'_>, deadline: Instant) {
    let line = line(message);
    match reporter() {
        Some(reporter) => {
            reporter.push(Message::Line(line), Some(deadline));
        }
        None => {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Waits until every message said so far is written, or `deadline` has passed
/// (shared with the [`stderr_line_by`] calls before it): the summary at shutdown should
/// reach standard error before the process exits, but a stuck standard error must not
/// hold the app's exit for long.
pub(crate) fn flush_by(deadline: Instant) {
    if let Some(reporter) = reporter() {
        reporter.flush_by(deadline);
    }
}

/// Says, on standard error, that records are being lost to write errors.
pub(crate) fn report_write_error(err: &io::Error) {
    stderr_line(format_args!(
        "cannot write records: {err} (records are being dropped; further errors are counted, not printed)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Standard error as a test sees it: what was written, and a gate that holds every
    /// write until it is opened (a stuck terminal or pipe).
    #[derive(Clone, Default)]
    struct Stuck {
        written: Arc<Mutex<Vec<u8>>>,
        open: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Stuck {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.written.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reporter of its own, writing to `out` on a thread of its own (it lives until
    /// the test process ends, as the crate's does).
    fn start(out: Stuck) -> &'static Reporter {
        let reporter: &'static Reporter = Box::leak(Box::new(Reporter::new()));
        thread::spawn(move || reporter.run(out));
        reporter
    }

    fn say(text: &str) -> Message {
        Message::Line(format!("{text}\n"))
    }

    #[test]
    fn flush_returns_once_every_line_before_it_is_written() {
        let out = Stuck::default();
        out.open();
        let reporter = start(out.clone());
        for n in 0..10 {
            assert!(reporter.push(say(&format!("line {n}")), None));
        }
        assert!(reporter.flush_by(Instant::now() + Duration::from_secs(10)));
        let expected: String = (0..10).map(|n| format!("line {n}\n")).collect();
        assert_eq!(out.text(), expected);
    }

    /// A stuck standard error fills the queue: a plain line is dropped at once, a
    /// summary line and the flush after it wait for room, and get it once standard
    /// error moves again; with no room by their deadline they give up on time.
    #[test]
    fn the_summary_and_its_flush_wait_for_room_in_a_full_queue() {
        let out = Stuck::default();
        let reporter = start(out.clone());
        // The first is taken and held in `write`; the rest fill the queue.
        assert!(reporter.push(say("held"), None));
        let filled = Instant::now() + Duration::from_secs(10);
        while !reporter.lock().is_empty() {
            assert!(
                Instant::now() < filled,
                "the reporter never took the first line"
            );
            thread::yield_now();
        }
        for n in 0..QUEUE {
            assert!(reporter.push(say(&format!("early {n}")), None));
        }
        assert!(
            !reporter.push(say("dropped"), None),
            "a plain line never waits"
        );

        let started = Instant::now();
        let gave_up = !reporter.push(say("late"), Some(started + Duration::from_millis(200)));
        assert!(gave_up && started.elapsed() >= Duration::from_millis(200));
        assert!(
            !reporter.flush_by(Instant::now() + Duration::from_millis(100)),
            "a flush gives up at its deadline"
        );

        let opener = {
            let out = out.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                out.open();
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(reporter.push(say("summary"), Some(deadline)));
        assert!(reporter.flush_by(deadline));
        opener.join().unwrap();
        let text = out.text();
        assert!(text.ends_with("early 63\nsummary\n"), "{text}");
        assert!(
            !text.contains("dropped") && !text.contains("late"),
            "{text}"
        );
    }
}
