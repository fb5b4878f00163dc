//! The exporters `TELEMETRY_EXPORTER` selects: JSON lines handed to a background
//! thread that writes them to stdout, stderr or a file.
//!
//! The emitting thread encodes the record and queues the line; it never waits on I/O
//! while the queue has room. The policy when it is full is documented on
//! [`ExporterSink`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError,
};

use crate::config::{self, Config};
use crate::error::Error;
use crate::record::Record;
use crate::report::{report_write_error, stderr_line};
use crate::sink::{encode_line, Sink};

/// Lines the queue holds before the full-buffer policy applies.
pub(crate) const BUFFER_LINES: usize = 16_384;
/// How long an emitter waits for room in a full queue before dropping its record.
const FULL_WAIT: Duration = Duration::from_millis(100);
/// How long shutdown waits for a destination that makes no progress at all.
const STALL: Duration = Duration::from_secs(5);
/// Bytes gathered before a write, so a busy exporter makes few large writes.
const BATCH_BYTES: usize = 64 * 1024;
/// How often the file exporter checks that its path still names the open file.
const REOPEN_CHECK: Duration = Duration::from_secs(1);

/// Counts of what an exporter did with the records it was given.
///
/// ```
/// let (_layer, guard) = telemetry::layer_with::<tracing_subscriber::Registry>(&telemetry::Config::new())?;
/// let stats = guard.stats();
/// assert_eq!((stats.written(), stats.dropped(), stats.failed()), (0, 0, 0));
/// # Ok::<(), telemetry::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    written: u64,
    dropped: u64,
    failed: u64,
}

impl ExportStats {
    /// Records written to the destination.
    ///
    /// ```
    /// assert_eq!(telemetry::ExportStats::default().written(), 0);
    /// ```
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records dropped because the buffer was full (or export had already stopped).
    ///
    /// ```
    /// assert_eq!(telemetry::ExportStats::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records lost to write errors (a full disk, a closed pipe).
    ///
    /// ```
    /// assert_eq!(telemetry::ExportStats::default().failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.failed
    }
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Set when an emitter timed out on a full queue; cleared when the worker has
    /// drained it to half. While set, emitters drop at once instead of waiting.
    overloaded: AtomicBool,
    reported_drop: AtomicBool,
    reported_failure: AtomicBool,
}

impl Counters {
    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.reported_drop.swap(true, Ordering::Relaxed) {
            stderr_line(format_args!(
                "the export buffer is full (the destination is not keeping up); dropping records and counting them"
            ));
        }
    }

    /// A record after shutdown (or after the exporter failed to start, which was
    /// reported then): counted, not reported again.
    fn drop_stopped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, lines: u64, err: &io::Error) {
        self.failed.fetch_add(lines, Ordering::Relaxed);
        if !self.reported_failure.swap(true, Ordering::Relaxed) {
            report_write_error(err);
        }
    }

    fn progress(&self) -> u64 {
        self.written.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// Where the worker writes.
pub(crate) enum Destination {
    None,
    Stdout,
    Stderr,
    File(PathBuf),
    #[cfg(test)]
    Writer(Mutex<Option<Box<dyn Write + Send>>>),
}

/// The sink behind [`try_init`](crate::try_init) and [`layer`](crate::layer): JSON
/// lines to stdout, stderr or a file, written by a background thread.
///
/// * **Never waits on I/O while there is room.** The emitting thread encodes the line
///   and queues it; a background thread writes queued lines in batches.
/// * **A full buffer** (16,384 lines): the emitter waits up to 100 ms for room, which
///   absorbs bursts without loss. If the destination still has not made room, the
///   record is dropped and counted, and further records are dropped at once (no more
///   waiting) until the queue has drained to half. A hung destination therefore costs
///   the app at most one 100 ms pause per episode, never a stall per call. The first
///   drop is reported once on stderr; [`Guard::stats`](crate::Guard::stats) counts them.
/// * **Write errors** (a full disk, a closed pipe) never panic: the first is reported
///   on stderr, the lines lost are counted, and the next successful write starts on a
///   new line, so a line torn by the failure never merges with the next.
/// * **Files** are created readable by their owner only (0600) and appended to. If the
///   file is rotated away or deleted, it is re-created within a second; while it
///   cannot be (its directory was removed), records are counted as lost.
/// * **Shutdown** (dropping the [`Guard`](crate::Guard)) writes everything queued. It
///   waits as long as the destination makes progress, and gives up after 5 s without
///   any, counting what was still queued as dropped. Later records are dropped and
///   counted. [`Guard::flush`](crate::Guard::flush) writes what is queued without
///   stopping.
/// * **Lazy start:** the thread starts, and the file opens, with the first record; so
///   an app where telemetry is off has neither.
pub struct ExporterSink {
    destination: Destination,
    capacity: usize,
    stall: Duration,
    running: OnceLock<Option<Running>>,
    counters: Arc<Counters>,
}

struct Running {
    tx: Sender<Msg>,
    /// The worker's queue, kept until shutdown to count what is abandoned if the
    /// worker hangs; released then, so that later records are refused and counted.
    rx: Mutex<Option<Receiver<Msg>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

enum Msg {
    Line(Vec<u8>),
    /// Write everything queued before this, then answer.
    Flush(Sender<()>),
    /// Like `Flush`, then stop.
    Shutdown(Sender<()>),
}

impl ExporterSink {
    pub(crate) fn new(destination: Destination, capacity: usize) -> Self {
        ExporterSink {
            destination,
            capacity,
            stall: STALL,
            running: OnceLock::new(),
            counters: Arc::default(),
        }
    }

    /// The JSON-lines exporter `config` asks for; started at once (so that a file that
    /// cannot be opened fails `try_init`) when telemetry is on.
    ///
    /// This sink writes to one JSON-lines destination; a list naming two of them
    /// (`stderr,file`) is refused here rather than silently writing to one. Other
    /// destinations (Prometheus, OTLP) are not JSON lines and are left to their own
    /// exporters.
    pub(crate) fn from_config(config: &Config) -> Result<Self, Error> {
        let mut json = config.destinations().iter().filter_map(|d| match d {
            config::Destination::Stdout => Some(Destination::Stdout),
            config::Destination::Stderr => Some(Destination::Stderr),
            config::Destination::File(path) => Some(Destination::File(path.clone())),
            #[allow(
                unreachable_patterns,
                reason = "reachable with the prometheus or otlp feature"
            )]
            _ => None,
        });
        let destination = json.next().unwrap_or(Destination::None);
        if json.next().is_some() {
            let names: Vec<&str> = config.exporters().map(|e| e.as_str()).collect();
            return Err(Error::unsupported(format!(
                "TELEMETRY_EXPORTER lists more than one JSON-lines destination ({}); this version writes JSON lines to one destination at a time",
                names.join(",")
            )));
        }
        let sink = ExporterSink::new(destination, BUFFER_LINES);
        if config.enabled() {
            let running = sink.start()?;
            let _ = sink.running.set(running);
        }
        Ok(sink)
    }

    /// What this exporter did so far.
    pub(crate) fn stats(&self) -> ExportStats {
        ExportStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    fn start(&self) -> Result<Option<Running>, Error> {
        let out = match &self.destination {
            Destination::None => return Ok(None),
            Destination::Stdout => Output::Stdout,
            Destination::Stderr => Output::Stderr,
            Destination::File(path) => Output::File(OpenFile::open(path)?),
            #[cfg(test)]
            Destination::Writer(writer) => {
                let writer = writer.lock().unwrap_or_else(PoisonError::into_inner).take();
                Output::Writer(writer.expect("a test writer starts once"))
            }
        };
        let (tx, rx) = bounded(self.capacity);
        let worker = Worker {
            out,
            rx: rx.clone(),
            counters: Arc::clone(&self.counters),
            half: self.capacity / 2,
            batch: Vec::with_capacity(BATCH_BYTES),
            lines: 0,
            resync: false,
        };
        let handle = thread::Builder::new()
            .name("telemetry-export".into())
            .spawn(move || worker.run())
            .map_err(Error::spawn)?;
        Ok(Some(Running {
            tx,
            rx: Mutex::new(Some(rx)),
            worker: Mutex::new(Some(handle)),
        }))
    }

    fn running(&self) -> Option<&Running> {
        self.running
            .get_or_init(|| match self.start() {
                Ok(running) => running,
                Err(err) => {
                    stderr_line(format_args!(
                        "cannot start exporting: {err} (records are dropped and counted)"
                    ));
                    Some(Running::stopped())
                }
            })
            .as_ref()
    }

    fn send(&self, running: &Running, line: Vec<u8>) {
        let counters = &self.counters;
        match running.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                if counters.overloaded.load(Ordering::Relaxed) {
                    counters.drop_one();
                    return;
                }
                match running.tx.send_timeout(msg, FULL_WAIT) {
                    Ok(()) => {}
                    Err(SendTimeoutError::Timeout(_)) => {
                        counters.overloaded.store(true, Ordering::Relaxed);
                        counters.drop_one();
                    }
                    Err(SendTimeoutError::Disconnected(_)) => counters.drop_stopped(),
                }
            }
            Err(TrySendError::Disconnected(_)) => counters.drop_stopped(),
        }
    }

    /// Sends `make(ack)` and waits for the answer while the worker makes progress.
    /// Returns whether it answered.
    fn request(&self, running: &Running, make: fn(Sender<()>) -> Msg) -> bool {
        let (ack_tx, ack_rx) = bounded(1);
        let mut msg = make(ack_tx);
        let mut seen = self.counters.progress();
        loop {
            match running.tx.send_timeout(msg, self.stall) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) => {
                    if !self.progressed(&mut seen) {
                        return false;
                    }
                    msg = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
        loop {
            match ack_rx.recv_timeout(self.stall) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) if self.progressed(&mut seen) => {}
                Err(_) => return false,
            }
        }
    }

    fn progressed(&self, seen: &mut u64) -> bool {
        let now = self.counters.progress();
        let moved = now != *seen;
        *seen = now;
        moved
    }

    /// Writes everything queued, stops the worker and says on stderr what was lost,
    /// if anything. Later records are dropped and counted.
    pub(crate) fn shutdown(&self) {
        let Some(Some(running)) = self.running.get() else {
            return;
        };
        let finished = self.request(running, Msg::Shutdown);
        if finished {
            let handle = running
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(handle) = handle {
                let _ = handle.join();
            }
        }
        let rx = running
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (false, Some(rx)) = (finished, rx) {
            // The worker is stuck writing: count what it will never take as dropped.
            let abandoned = rx
                .try_iter()
                .filter(|msg| matches!(msg, Msg::Line(_)))
                .count() as u64;
            self.counters
                .dropped
                .fetch_add(abandoned, Ordering::Relaxed);
        }
        let stats = self.stats();
        if !finished || stats.dropped > 0 || stats.failed > 0 {
            stderr_line(format_args!(
                "export summary: {} written, {} dropped (buffer full), {} lost to write errors{}",
                stats.written,
                stats.dropped,
                stats.failed,
                if finished {
                    String::new()
                } else {
                    format!(
                        "; gave up waiting: the destination made no progress for {:?} (the records still queued are counted as dropped)",
                        self.stall
                    )
                }
            ));
        }
    }
}

impl Running {
    /// A running state whose channel is closed: every record is dropped and counted.
    fn stopped() -> Running {
        // Nothing will ever receive: sends are refused and counted.
        let (tx, _) = bounded(0);
        Running {
            tx,
            rx: Mutex::new(None),
            worker: Mutex::new(None),
        }
    }
}

impl Sink for ExporterSink {
    fn record(&self, record: &Record<'_>) {
        if matches!(self.destination, Destination::None) {
            return;
        }
        let Some(running) = self.running() else {
            return;
        };
        let mut line = Vec::with_capacity(256);
        encode_line(record, &mut line);
        self.send(running, line);
    }

    fn flush(&self) {
        if let Some(Some(running)) = self.running.get() {
            self.request(running, Msg::Flush);
        }
    }
}

impl fmt::Debug for ExporterSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let destination = match &self.destination {
            Destination::None => "none",
            Destination::Stdout => "stdout",
            Destination::Stderr => "stderr",
            Destination::File(_) => "file",
            #[cfg(test)]
            Destination::Writer(_) => "writer",
        };
        f.debug_struct("ExporterSink")
            .field("destination", &destination)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

enum Output {
    Stdout,
    Stderr,
    File(OpenFile),
    #[cfg(test)]
    Writer(Box<dyn Write + Send>),
}

impl Output {
    fn write_batch(&mut self, batch: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(batch)?;
                out.flush()
            }
            Output::Stderr => io::stderr().lock().write_all(batch),
            Output::File(file) => file.writable()?.write_all(batch),
            #[cfg(test)]
            Output::Writer(w) => {
                w.write_all(batch)?;
                w.flush()
            }
        }
    }
}

/// The telemetry file, with what is needed to notice that it was rotated or deleted.
struct OpenFile {
    path: PathBuf,
    /// `None` while the path could not be re-created (its directory was removed, say).
    file: Option<File>,
    last_check: Instant,
}

impl OpenFile {
    fn open(path: &Path) -> Result<Self, Error> {
        let file = open_append(path).map_err(|err| Error::open(path.to_owned(), err))?;
        Ok(OpenFile {
            path: path.to_owned(),
            file: Some(file),
            last_check: Instant::now(),
        })
    }

    /// The file to write to. Log rotation moves the file away and deletion unlinks
    /// it; either way lines would go to a file nobody reads, so the path is
    /// re-created when it no longer names the open file (checked at most once a
    /// second). While it cannot be, writes fail, and so are counted as lost.
    fn writable(&mut self) -> io::Result<&mut File> {
        if self.last_check.elapsed() >= REOPEN_CHECK {
            self.last_check = Instant::now();
            let current = self
                .file
                .as_ref()
                .is_some_and(|file| same_file(file, &self.path));
            if !current {
                match open_append(&self.path) {
                    Ok(file) => self.file = Some(file),
                    Err(err) => {
                        self.file = None;
                        return Err(err);
                    }
                }
            }
        }
        self.file.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} was removed and cannot be re-created",
                    self.path.display()
                ),
            )
        })
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Opens for appending, creating the file readable by its owner only.
fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

struct Worker {
    out: Output,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
    half: usize,
    batch: Vec<u8>,
    lines: u64,
    /// A write failed, possibly midway through a line: start the next on a new line.
    resync: bool,
}

impl Worker {
    fn run(mut self) {
        while let Ok(msg) = self.rx.recv() {
            if !self.handle(msg) {
                return;
            }
            // Take whatever else is queued, then write it in one go.
            while let Ok(msg) = self.rx.try_recv() {
                if !self.handle(msg) {
                    return;
                }
                if self.batch.len() >= BATCH_BYTES {
                    self.write();
                }
            }
            self.write();
            if self.rx.len() <= self.half {
                self.counters.overloaded.store(false, Ordering::Relaxed);
            }
        }
        self.write();
    }

    /// Returns false on shutdown.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Line(line) => {
                self.batch.extend_from_slice(&line);
                self.lines += 1;
                true
            }
            Msg::Flush(ack) => {
                self.write();
                let _ = ack.send(());
                true
            }
            Msg::Shutdown(ack) => {
                self.write();
                let _ = ack.send(());
                false
            }
        }
    }

    fn write(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if self.resync {
            self.batch.insert(0, b'\n');
        }
        match self.out.write_batch(&self.batch) {
            Ok(()) => {
                self.resync = false;
                self.counters
                    .written
                    .fetch_add(self.lines, Ordering::Relaxed);
            }
            Err(err) => {
                self.resync = true;
                self.counters.fail(self.lines, &err);
            }
        }
        self.batch.clear();
        self.lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Kind;
    use std::sync::mpsc;

    /// A writer that tells when a write starts and blocks until released.
    struct Gate {
        entered: mpsc::Sender<()>,
        release: Arc<(Mutex<bool>, std::sync::Condvar)>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.entered.send(());
            let (open, cv) = &*self.release;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(writer: impl Write + Send + 'static, capacity: usize) -> ExporterSink {
        ExporterSink::new(
            Destination::Writer(Mutex::new(Some(Box::new(writer)))),
            capacity,
        )
    }

    fn emit(sink: &ExporterSink, name: &str) {
        sink.record(&Record::new(Kind::Event, name, &[]));
    }

    #[test]
    fn a_full_buffer_waits_once_then_drops_at_once_and_counts_every_drop() {
        let (entered_tx, entered) = mpsc::channel();
        let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = sink(
            Gate {
                entered: entered_tx,
                release: Arc::clone(&release),
                out: Arc::clone(&out),
            },
            4,
        );

        emit(&sink, "taken-by-the-worker");
        entered.recv().unwrap(); // the worker is now stuck writing it
        for i in 0..4 {
            emit(&sink, &format!("queued-{i}")); // fills the queue
        }
        assert_eq!(sink.stats().dropped(), 0);

        let first = Instant::now();
        emit(&sink, "waits-then-drops");
        assert!(
            first.elapsed() >= FULL_WAIT,
            "the first emitter waits for room"
        );
        let rest = Instant::now();
        emit(&sink, "dropped-at-once-1");
        emit(&sink, "dropped-at-once-2");
        assert!(
            rest.elapsed() < FULL_WAIT,
            "while overloaded, emitters do not wait"
        );
        assert_eq!(sink.stats().dropped(), 3);

        {
            let (open, cv) = &*release;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        sink.flush();
        emit(&sink, "after-recovery");
        sink.shutdown();

        let stats = sink.stats();
        assert_eq!(
            (stats.written(), stats.dropped(), stats.failed()),
            (6, 3, 0)
        );
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let names: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "taken-by-the-worker",
                "queued-0",
                "queued-1",
                "queued-2",
                "queued-3",
                "after-recovery"
            ]
        );
    }

    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_failures_are_counted_and_never_panic() {
        let sink = sink(Failing, 64);
        for i in 0..10 {
            emit(&sink, &format!("e{i}"));
        }
        sink.shutdown();
        let stats = sink.stats();
        assert_eq!(
            (stats.written(), stats.dropped(), stats.failed()),
            (0, 0, 10)
        );
        emit(&sink, "after-shutdown");
        assert_eq!(
            sink.stats().dropped(),
            1,
            "records after shutdown are counted"
        );
    }

    /// Fails the first write (after writing half of it), then works.
    struct FailsOnceMidLine {
        calls: usize,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for FailsOnceMidLine {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls == 1 {
                self.out
                    .lock()
                    .unwrap()
                    .extend_from_slice(&buf[..buf.len() / 2]);
                return Err(io::Error::other("no space left on device"));
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_torn_write_the_next_line_starts_clean() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = sink(
            FailsOnceMidLine {
                calls: 0,
                out: Arc::clone(&out),
            },
            64,
        );
        emit(&sink, "torn");
        sink.flush();
        emit(&sink, "whole");
        sink.shutdown();
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let last = text.lines().last().unwrap();
        let json: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(json["name"], "whole");
        assert_eq!((sink.stats().written(), sink.stats().failed()), (1, 1));
    }

    #[test]
    fn shutdown_gives_up_on_a_destination_that_makes_no_progress() {
        let (entered_tx, entered) = mpsc::channel();
        let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let mut sink = sink(
            Gate {
                entered: entered_tx,
                release: Arc::clone(&release),
                out: Arc::default(),
            },
            4,
        );
        sink.stall = Duration::from_millis(200);
        emit(&sink, "stuck");
        entered.recv().unwrap();
        emit(&sink, "queued");
        let started = Instant::now();
        sink.shutdown(); // must return although the writer never does
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(sink.stats().written(), 0);
        // Let the worker finish so the test leaves no thread blocked.
        let (open, cv) = &*release;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }

    #[test]
    fn a_sink_that_never_received_a_record_starts_nothing() {
        let sink = ExporterSink::from_config(&Config::new()).unwrap();
        assert!(
            sink.running.get().is_none(),
            "no thread while telemetry is off"
        );
        sink.shutdown();
    }
}
