//! JSON lines to standard output, standard error or a file: what this destination
//! adds to the [pipeline](crate::pipeline) is the line encoding and the writer.

use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use super::file::AppendFile;
use super::Export;
use crate::encode::LineEncoder;
use crate::error::Error;
use crate::pipeline::handoff::Captured;
use crate::pipeline::{
    BatchPolicy, Deliver, Delivery, EncodeHere, Ending, ExportStats, Failure, Policy, Queue,
    WhenFull,
};
use crate::record::{Record, TagSource};
use crate::report::stderr_line;

/// How long `try_init` waits for the telemetry file to open (a hung network file
/// system must not hang the app's start).
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// The JSON-lines policies, documented on [`ExporterSink`](crate::ExporterSink).
pub(crate) const POLICY: Policy = Policy {
    queue_bytes: crate::config::DEFAULT_BUFFER_BYTES,
    when_full: WhenFull::Wait(Duration::from_millis(100)),
    ending: Ending::Stall(Duration::from_secs(5)),
    batch: BatchPolicy {
        bytes: 64 * 1024,
        records: usize::MAX,
        delay: Duration::from_millis(100),
    },
    // A write error is final: the writer said why.
    retry: None,
};

/// Where a JSON-lines exporter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    Stdout,
    Stderr,
    /// An absolute path, resolved once.
    File(PathBuf),
}

impl Output {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
            Output::File(_) => "file",
        }
    }
}

/// JSON lines to one [`Output`], through a [`Queue`] and its worker.
pub(crate) struct JsonLines {
    output: Output,
    encoder: LineEncoder,
    queue: Queue,
    /// Set when export starts: eagerly by `try_init` when telemetry is on, or by the
    /// first record after it is turned on at run time. False if the worker could not
    /// start (then records are dropped and counted).
    started: OnceLock<bool>,
}

impl JsonLines {
    pub(crate) fn new(
        output: Output,
        encoder: LineEncoder,
        policy: Policy,
        label: Option<&'static str>,
    ) -> Self {
        JsonLines {
            output,
            queue: Queue::new(policy, label).with_encode_here(encoder.clone()),
            encoder,
            started: OnceLock::new(),
        }
    }

    /// Starts the worker now and waits (up to [`OPEN_WAIT`]) for it to open the
    /// destination, so that a file that cannot be opened fails `try_init`.
    fn start_now(&self) -> Result<(), Error> {
        let outcome = match &self.output {
            Output::File(path) => {
                let (path, encoder) = (path.clone(), self.encoder.clone());
                self.queue.start("telemetry-export", move || {
                    AppendFile::open(&path).map(|file| Lines::new(encoder, Writer::File(file)))
                })
            }
            _ => self.spawn_deferred(),
        };
        let opened = outcome.map_err(Error::spawn)?;
        let outcome = match opened.recv_timeout(OPEN_WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("opening did not finish within {OPEN_WAIT:?}"),
            )),
        };
        match outcome {
            Ok(()) => {
                let _ = self.started.set(true);
                Ok(())
            }
            Err(err) => {
                // A worker whose open returns after this (a slow file system) finds
                // the queue shut and stops once it has nothing left.
                let _ = self.started.set(false);
                self.queue.abandon();
                let path = match &self.output {
                    Output::File(path) => path.clone(),
                    _ => PathBuf::from(self.output.name()),
                };
                Err(Error::open(path, err))
            }
        }
    }

    /// Starts the worker without waiting for anything: the file, if any, is opened on
    /// that thread, and an error opening it is a write error (reported once, records
    /// counted as failed, retried every second).
    fn spawn_deferred(&self) -> io::Result<std::sync::mpsc::Receiver<io::Result<()>>> {
        let (output, encoder) = (self.output.clone(), self.encoder.clone());
        self.queue.start("telemetry-export", move || {
            let writer = match output {
                Output::Stdout => Writer::Stdout,
                Output::Stderr => Writer::Stderr,
                Output::File(path) => Writer::File(AppendFile::deferred(&path)),
            };
            Ok(Lines::new(encoder, writer))
        })
    }

    fn started(&self) -> bool {
        *self.started.get_or_init(|| match self.spawn_deferred() {
            Ok(_) => true,
            Err(err) => {
                stderr_line(format_args!(
                    "cannot start exporting to {}: {err} (records are dropped and counted)",
                    self.output.name()
                ));
                false
            }
        })
    }
}

impl Export for JsonLines {
    fn start(&self) -> Result<(), Error> {
        self.start_now()
    }

    fn record(&self, record: &Record<'_>) {
        if self.started() {
            self.queue.push(record);
        } else {
            self.queue.refuse(1);
        }
    }

    fn flush(&self) {
        if self.started.get() == Some(&true) {
            self.queue.flush();
        }
    }

    fn shutdown(&self) -> Option<String> {
        // Sealed here if it never started, so that no record after the guard is gone
        // starts a worker that nothing would stop.
        let _ = self.started.get_or_init(|| false);
        let finished = self.queue.shutdown();
        self.queue.summary(finished)
    }

    fn stats(&self) -> ExportStats {
        self.queue.stats()
    }
}

impl EncodeHere for LineEncoder {
    fn encode(&self, record: &Record<'_>, buf: &mut Vec<u8>) {
        LineEncoder::encode(self, record, buf);
    }

    fn encode_into(&self, record: &Record<'_>, out: &mut [u8]) -> Option<usize> {
        LineEncoder::encode_into(self, record, out)
    }
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("output", &self.output)
            .field("stats", &self.queue.stats())
            .finish_non_exhaustive()
    }
}

/// The worker's side: encodes lines, writes batches.
struct Lines<W> {
    encoder: LineEncoder,
    writer: W,
    /// A write failed, possibly midway through a line.
    resync: bool,
}

impl<W: WriteLines> Lines<W> {
    fn new(encoder: LineEncoder, writer: W) -> Self {
        Lines {
            encoder,
            writer,
            resync: false,
        }
    }
}

impl<W: WriteLines> Deliver for Lines<W> {
    fn encode(&mut self, captured: &Captured<'_>, body: &mut Vec<u8>) {
        let mut record = Record::with_tag_source(
            captured.kind,
            captured.name,
            TagSource::Typed(&captured.tags),
        )
        .with_source(captured.module_path, captured.file, captured.line)
        .with_unix_nanos(captured.time_unix_nano)
        .with_meta(captured.meta);
        if let Some(value) = captured.value {
            record = record.with_value(value);
        }
        if let Some((trace_id, span_id)) = captured.trace {
            if let (Ok(trace_id), Ok(span_id)) = (trace_id.try_into(), span_id.try_into()) {
                record = record.with_trace(trace_id, span_id);
            }
        }
        self.encoder.encode(&record, body);
    }

    fn deliver(
        &mut self,
        body: &[u8],
        _compressed: bool,
        records: u64,
        limit: Option<Duration>,
    ) -> Delivery {
        self.deliver_parts(&[IoSlice::new(body)], records, limit)
    }

    /// Lines encoded on the emitting threads are written from where they lie.
    fn takes_parts(&self) -> bool {
        true
    }

    /// The whole batch at once (one lock of stdout or stderr; one `writev` while the
    /// destination takes it all). A failed write may have written part of a line:
    /// the lines written whole before it count as written, and the next successful
    /// write starts on a new line, so a torn line is never merged with the next one.
    fn deliver_parts(
        &mut self,
        parts: &[IoSlice<'_>],
        _records: u64,
        _limit: Option<Duration>,
    ) -> Delivery {
        if parts.iter().all(|part| part.is_empty()) {
            return Delivery::Delivered;
        }
        if self.resync {
            if let (_, Err(error)) = self.writer.write_lines(&[IoSlice::new(b"\n")]) {
                return Delivery::Failed(Failure {
                    error,
                    delivered: 0,
                });
            }
        }
        let (written, outcome) = self.writer.write_lines(parts);
        self.resync = outcome.is_err();
        match outcome {
            Ok(()) => Delivery::Delivered,
            Err(error) => Delivery::Failed(Failure {
                error,
                delivered: lines_in(parts, written),
            }),
        }
    }
}

/// The newlines in the first `bytes` bytes of `parts`.
fn lines_in(parts: &[IoSlice<'_>], mut bytes: usize) -> u64 {
    let mut lines = 0;
    for part in parts {
        let here = &part[..part.len().min(bytes)];
        lines += here.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes -= here.len();
    }
    lines
}

enum Writer {
    Stdout,
    Stderr,
    File(AppendFile),
}

/// Where the worker writes lines: any [`Write`], or an [`Output`]'s own writer.
trait WriteLines: Send + 'static {
    /// Writes `parts`, in order, and flushes; returns how many bytes were written,
    /// and the error that stopped it, if any.
    fn write_lines(&mut self, parts: &[IoSlice<'_>]) -> (usize, io::Result<()>);
}

impl<W: Write + Send + 'static> WriteLines for W {
    fn write_lines(&mut self, parts: &[IoSlice<'_>]) -> (usize, io::Result<()>) {
        write_counting(self, parts)
    }
}

impl WriteLines for Writer {
    /// Holding stdout's or stderr's lock for the whole batch, so that the app's own
    /// prints never land inside a line.
    fn write_lines(&mut self, parts: &[IoSlice<'_>]) -> (usize, io::Result<()>) {
        match self {
            Writer::Stdout => write_counting(&mut io::stdout().lock(), parts),
            Writer::Stderr => write_counting(&mut io::stderr().lock(), parts),
            Writer::File(w) => write_counting(w, parts),
        }
    }
}

/// `write_all` of every part, in order, and `flush`, counting the bytes written.
fn write_counting(w: &mut impl Write, parts: &[IoSlice<'_>]) -> (usize, io::Result<()>) {
    let mut left: Vec<IoSlice<'_>> = parts.to_vec();
    let mut left = &mut left[..];
    IoSlice::advance_slices(&mut left, 0);
    let mut done = 0;
    while !left.is_empty() {
        match w.write_vectored(left) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                done += n;
                IoSlice::advance_slices(&mut left, n);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (done, Err(err)),
        }
    }
    (done, w.flush())
}

#[cfg(test)]
pub(crate) mod tests;
