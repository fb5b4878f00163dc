//! The crate's own messages on standard error, written by a thread of their own.
//!
//! A message (a full buffer, a write error, the export summary) is often about a
//! destination that is stuck: standard error itself, or a pipe that standard error
//! shares with standard output. Writing it from the thread that noticed would make
//! that thread wait on the very destination that is stuck, and that thread may be
//! the app's. So messages are handed to a reporter thread and never waited for,
//! except by [`flush`], which waits a bounded time.

use std::fmt;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

/// Messages waiting for the reporter. Each kind of message is reported once, so a
/// handful is plenty; beyond it, messages are dropped rather than waited for.
const QUEUE: usize = 64;

enum Message {
    Line(String),
    /// Answer once every message before this one has been written.
    Flush(SyncSender<()>),
}

/// The reporter's queue; `None` if its thread could not be started (then messages
/// are written by the caller, the only way left to say anything at all).
fn reporter() -> Option<&'static SyncSender<Message>> {
    static REPORTER: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    REPORTER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            thread::Builder::new()
                .name("telemetry-report".into())
                .spawn(move || run(rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

fn run(rx: Receiver<Message>) {
    for message in rx {
        match message {
            // Never panics: standard error itself may be the broken destination.
            Message::Line(line) => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
            Message::Flush(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

/// Says `telemetry: <message>` on standard error, as one line written with a single
/// write (so another thread's output cannot land in the middle of it), without
/// waiting for it to be written.
pub(crate) fn stderr_line(message: fmt::Arguments<'_>) {
    let line = format!("telemetry: {message}\n");
    match reporter() {
        // A full queue means the reporter is stuck on standard error; what it
        // already holds says enough.
        Some(tx) => {
            let _ = tx.try_send(Message::Line(line));
        }
        None => {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Waits until every message said so far is written, or `limit` has passed: the
/// summary at shutdown should reach standard error before the process exits, but a
/// stuck standard error must not hold the app's exit for long.
pub(crate) fn flush(limit: Duration) {
    let Some(tx) = reporter() else { return };
    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
    if tx.try_send(Message::Flush(ack_tx)).is_ok() {
        let _ = ack_rx.recv_timeout(limit);
    }
}

/// Says, on standard error, that records are being lost to write errors.
pub(crate) fn report_write_error(err: &io::Error) {
    stderr_line(format_args!(
        "cannot write records: {err} (records are being dropped; further errors are counted, not printed)"
    ));
}
