//! The writer thread's loop, generic over where the bytes go.

use std::io::{self, Write};
use std::sync::Arc;

use super::handoff::{Batch, Handoff};

/// Writes what the hand-off gives it to `W`, one batch per `write_all`, and counts
/// each batch's records as written or failed.
///
/// A failed write may have written part of a line; the next successful write then
/// starts on a new line, so a torn line is never merged with the next one.
pub(crate) struct Worker<W> {
    writer: W,
    handoff: Arc<Handoff>,
    /// A write failed, possibly midway through a line.
    resync: bool,
}

impl<W: Write> Worker<W> {
    pub(crate) fn new(writer: W, handoff: Arc<Handoff>) -> Self {
        Worker {
            writer,
            handoff,
            resync: false,
        }
    }

    /// Runs until shutdown.
    pub(crate) fn run(mut self) {
        loop {
            let job = self.handoff.next_job();
            self.handoff.writing(&job);
            for batch in job.batches {
                self.write(batch);
            }
            if let Some(seq) = job.flush {
                self.handoff.answer(seq);
            }
            if job.shutdown {
                return;
            }
        }
    }

    fn write(&mut self, batch: Batch) {
        if batch.bytes.is_empty() {
            return;
        }
        let mut outcome = Ok(());
        if self.resync {
            outcome = self.writer.write_all(b"\n");
        }
        if outcome.is_ok() {
            outcome = self
                .writer
                .write_all(&batch.bytes)
                .and_then(|()| self.writer.flush());
        }
        self.resync = outcome.is_err();
        self.handoff.written(batch, outcome.as_ref().map(|_| ()));
    }
}

/// Standard output as a destination: one lock for a whole batch, so that the app's
/// own prints never land inside a line.
#[derive(Debug)]
pub(crate) struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(buf)?;
        out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

/// Standard error as a destination, like [`Stdout`].
#[derive(Debug)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::stderr().lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
