//! The JSON-lines destination through the production queue and worker: the full
//! policy, write errors, shutdown and the tick.

use super::*;
use crate::fields::Kind;
use crate::record::Tag;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

/// What opens a [`Gate`]: see [`release`].
type Opener = Arc<(Mutex<bool>, Condvar)>;

/// A writer that tells when a write starts and blocks until released.
struct Gate {
    entered: mpsc::Sender<()>,
    release: Opener,
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

impl Gate {
    /// A closed gate, with what tells that a write started, what opens it, and
    /// what it let through.
    fn closed() -> (Gate, mpsc::Receiver<()>, Opener, Arc<Mutex<Vec<u8>>>) {
        let (entered_tx, entered) = mpsc::channel();
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            entered: entered_tx,
            release: Arc::clone(&release),
            out: Arc::clone(&out),
        };
        (gate, entered, release, out)
    }
}

fn release(gate: &(Mutex<bool>, Condvar)) {
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
}

/// The production queue and worker, writing JSON lines to `writer`.
fn export(writer: impl Write + Send + 'static, limits: Policy) -> Arc<Queue> {
    let queue = Arc::new(Queue::new(limits, None));
    let opened = queue
        .start("test-export", move || {
            Ok(Lines::new(LineEncoder::new("test"), writer))
        })
        .unwrap();
    opened.recv().unwrap().unwrap();
    queue
}

/// Every record its own batch: the queue's room is counted in records of `line`
/// queued bytes.
fn per_record(lines: usize, line: usize) -> Policy {
    Policy {
        batch: BatchPolicy {
            bytes: 1,
            ..POLICY.batch
        },
        queue_bytes: lines * line,
        ..POLICY
    }
}

/// The bytes of the queue's bound that the record `emit` makes takes.
fn line_len(name: &str) -> usize {
    crate::pipeline::handoff::queued_len(&Record::new(Kind::Event, name, &[]))
}

fn emit(handoff: &Queue, name: &str) {
    handoff.push(&Record::new(Kind::Event, name, &[]));
}

fn full_wait(policy: &Policy) -> Duration {
    match policy.when_full {
        WhenFull::Wait(wait) => wait,
        WhenFull::Drop => Duration::ZERO,
    }
}

fn counts(handoff: &Queue) -> (u64, u64, u64) {
    let stats = handoff.stats();
    (stats.written(), stats.dropped(), stats.failed())
}

fn names(out: &Mutex<Vec<u8>>) -> Vec<String> {
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_full_buffer_waits_once_then_drops_at_once_until_the_writer_makes_room() {
    let (writer, entered, gate, out) = Gate::closed();
    // Room for the batch being written and four more.
    let line = line_len("queued-0");
    let limits = Policy {
        queue_bytes: line_len("taken-by-the-worker") + 4 * line,
        ..per_record(0, line)
    };
    let handoff = export(writer, limits);

    emit(&handoff, "taken-by-the-worker");
    entered.recv().unwrap(); // the worker is now stuck writing it
    for i in 0..4 {
        emit(&handoff, &format!("queued-{i}")); // fills the queue
    }
    assert_eq!(counts(&handoff), (0, 0, 0));

    let first = Instant::now();
    emit(&handoff, "waits-then-stays");
    assert!(
        first.elapsed() >= full_wait(&limits),
        "the first emitter waits for room"
    );
    let rest = Instant::now();
    emit(&handoff, "dropped-at-once-1");
    emit(&handoff, "dropped-at-once-2");
    assert!(
        rest.elapsed() < full_wait(&limits),
        "while overloaded, emitters do not wait"
    );
    assert_eq!(
        counts(&handoff),
        (0, 2, 0),
        "the record that waited stays in its thread's batch; the next ones are dropped"
    );

    release(&gate);
    assert!(handoff.flush());
    emit(&handoff, "after-recovery");
    assert!(handoff.shutdown());

    assert_eq!(counts(&handoff), (7, 2, 0));
    assert_eq!(
        names(&out),
        [
            "taken-by-the-worker",
            "queued-0",
            "queued-1",
            "queued-2",
            "queued-3",
            "waits-then-stays",
            "after-recovery"
        ]
    );
}

#[test]
fn shedding_ends_as_soon_as_the_writer_makes_room() {
    let (writer, entered, gate, out) = Gate::closed();
    let line = line_len("a-0");
    let handoff = export(writer, per_record(2, line));
    emit(&handoff, "a-0");
    entered.recv().unwrap();
    emit(&handoff, "a-1");
    emit(&handoff, "a-2"); // waits in vain, stays in the batch
    emit(&handoff, "a-3"); // dropped at once
    assert_eq!(counts(&handoff), (0, 1, 0));
    release(&gate);
    // One write frees room: the next record is taken again, without waiting for
    // the queue to drain.
    while handoff.stats().written() == 0 {
        std::thread::yield_now();
    }
    emit(&handoff, "b-0");
    assert!(handoff.shutdown());
    assert_eq!(counts(&handoff), (4, 1, 0));
    assert_eq!(names(&out), ["a-0", "a-1", "a-2", "b-0"]);
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
    let handoff = export(Failing, POLICY);
    for i in 0..10 {
        emit(&handoff, &format!("e{i}"));
    }
    assert!(handoff.shutdown());
    assert_eq!(counts(&handoff), (0, 0, 10));
    emit(&handoff, "after-shutdown");
    assert_eq!(
        handoff.stats().dropped(),
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
    let handoff = export(
        FailsOnceMidLine {
            calls: 0,
            out: Arc::clone(&out),
        },
        POLICY,
    );
    emit(&handoff, "torn");
    assert!(handoff.flush());
    emit(&handoff, "whole");
    assert!(handoff.shutdown());
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let last = text.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(json["name"], "whole");
    assert_eq!(counts(&handoff), (1, 0, 1));
}

#[test]
fn shutdown_gives_up_on_a_destination_that_makes_no_progress() {
    let (writer, entered, gate, _out) = Gate::closed();
    let limits = Policy {
        ending: Ending::Stall(Duration::from_millis(200)),
        ..per_record(4, line_len("queued"))
    };
    let handoff = export(writer, limits);
    emit(&handoff, "stuck");
    entered.recv().unwrap();
    emit(&handoff, "queued");
    let started = Instant::now();
    assert!(
        !handoff.shutdown(),
        "must return although the writer never does"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        counts(&handoff),
        (0, 2, 0),
        "the record being written and the one queued are counted as dropped"
    );
    // The write that was given up on completes later: it is not counted twice.
    release(&gate);
    emit(&handoff, "after");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(counts(&handoff), (0, 3, 0));
}

#[test]
fn a_quiet_thread_s_records_are_written_within_the_tick() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let writer = SharedWriter(Arc::clone(&out));
    let handoff = export(writer, POLICY);
    emit(&handoff, "alone");
    let deadline = Instant::now() + Duration::from_secs(10);
    while names(&out).is_empty() {
        assert!(Instant::now() < deadline, "never written without a flush");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(names(&out), ["alone"]);
    assert!(handoff.shutdown());
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A flush wakes the writer itself: with a tick that never comes in the test's
/// life, the flush is answered and the record is written when it returns, and so is
/// a flush with nothing queued (the writer is then asleep with no tick at all).
#[test]
fn flush_wakes_an_idle_writer_instead_of_waiting_for_the_tick() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let handoff = export(
        SharedWriter(Arc::clone(&out)),
        Policy {
            batch: BatchPolicy {
                delay: Duration::from_secs(24 * 3600),
                ..POLICY.batch
            },
            // A flush that is never answered returns false after this long without
            // progress; ample for a busy machine to schedule the writer.
            ending: Ending::Stall(Duration::from_secs(30)),
            ..POLICY
        },
    );
    emit(&handoff, "one");
    assert!(
        handoff.flush(),
        "a flush with a record queued went unanswered"
    );
    assert_eq!(names(&out), ["one"]);
    assert!(
        handoff.flush(),
        "a flush with nothing queued went unanswered"
    );
    assert_eq!(counts(&handoff), (1, 0, 0));
    assert!(handoff.shutdown());
}

#[test]
fn records_from_threads_that_keep_emitting_while_shutting_down_are_all_counted() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let handoff = export(
        SharedWriter(Arc::clone(&out)),
        Policy {
            batch: BatchPolicy {
                bytes: 4096,
                ..POLICY.batch
            },
            ..POLICY
        },
    );
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let emitters: Vec<_> = (0..4)
        .map(|t| {
            let handoff = Arc::clone(&handoff);
            let made = Arc::clone(&made);
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    emit(&handoff, &format!("t{t}-{i}"));
                    made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    while made.load(std::sync::atomic::Ordering::Relaxed) < 10_000 {
        std::thread::yield_now();
    }
    assert!(handoff.shutdown());
    for e in emitters {
        e.join().unwrap();
    }
    let (written, dropped, failed) = counts(&handoff);
    assert_eq!(written + dropped + failed, 80_000);
    assert!(dropped > 0, "records after shutdown began are dropped");
    assert_eq!(
        names(&out).len() as u64,
        written,
        "written means on the writer"
    );
}

#[test]
fn a_writer_stuck_on_a_job_of_several_batches_has_every_one_accounted_for() {
    let (writer, entered, gate, _out) = Gate::closed();
    let limits = Policy {
        ending: Ending::Stall(Duration::from_millis(200)),
        ..POLICY
    };
    let handoff = Arc::new(Queue::new(limits, None));
    let opened = handoff
        .start("test-export", move || {
            Ok(Lines::new(LineEncoder::new("test"), writer))
        })
        .unwrap();
    opened.recv().unwrap().unwrap();
    // Two threads, one record each: two batches, collected into one job by the
    // tick; the writer blocks on the first.
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let (handoff, barrier) = (Arc::clone(&handoff), Arc::clone(&barrier));
            std::thread::spawn(move || {
                emit(&handoff, name);
                barrier.wait();
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    entered.recv().unwrap();
    assert!(!handoff.shutdown());
    barrier.wait();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(counts(&handoff), (0, 2, 0), "both records counted once");
    // The write given up on completes: counted nowhere else, and the writer does
    // not trip over the emptied queue.
    release(&gate);
    handoff
        .take_worker()
        .expect("the worker is still there: shutdown gave up on it")
        .join()
        .expect("the writer thread ends without panicking");
    assert_eq!(counts(&handoff), (0, 2, 0));
}

#[test]
fn a_quiet_thread_s_record_is_written_within_the_tick_while_another_is_busy() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let handoff = export(SharedWriter(Arc::clone(&out)), POLICY);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (handoff, stop) = (Arc::clone(&handoff), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                emit(&handoff, "busy");
                i += 1;
                if i % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let quiet = {
        let handoff = Arc::clone(&handoff);
        std::thread::spawn(move || emit(&handoff, "quiet"))
    };
    quiet.join().unwrap();
    let started = Instant::now();
    while !names(&out).iter().any(|n| n == "quiet") && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    assert!(
        waited < Duration::from_secs(1),
        "the quiet record waited {waited:?} behind a busy thread's batches"
    );
    assert!(handoff.shutdown());
}

/// A writer that takes its time over every batch.
struct Slow(Arc<Mutex<Vec<u8>>>);

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(2));
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// While the worker is behind, the emitting threads encode their lines themselves:
/// the lines they encoded and the records the worker encodes arrive together, whole,
/// exactly once and in each thread's order.
#[test]
fn lines_encoded_on_the_emitting_threads_while_the_worker_is_behind_arrive_whole_and_in_order() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(
        Queue::new(
            Policy {
                queue_bytes: 64 * 1024,
                // Never drop here: the point is the encoding, not the bound.
                when_full: WhenFull::Wait(Duration::from_secs(60)),
                batch: BatchPolicy {
                    bytes: 4096,
                    ..POLICY.batch
                },
                ..POLICY
            },
            None,
        )
        .with_encode_here(LineEncoder::new("test")),
    );
    let opened = queue
        .start("test-export", {
            let out = Arc::clone(&out);
            move || Ok(Lines::new(LineEncoder::new("test"), Slow(out)))
        })
        .unwrap();
    opened.recv().unwrap().unwrap();
    let before = crate::pipeline::ENCODED_HERE.load(std::sync::atomic::Ordering::Relaxed);
    let started = std::time::SystemTime::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    emit(&queue, &format!("t{t}-{i}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let ended = std::time::SystemTime::now();
    assert!(queue.shutdown());
    // Each line's time is when it was emitted, whichever clock the thread read (the
    // lines are timed to the microsecond).
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let slack = Duration::from_millis(1);
    for line in text.lines() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = humantime::parse_rfc3339(json["timestamp"].as_str().unwrap()).unwrap();
        assert!(
            at + slack >= started && at <= ended + slack,
            "{line} is timed outside its emission, {started:?} to {ended:?}"
        );
    }
    assert_eq!(counts(&queue), (8_000, 0, 0));
    let mut next = [0_usize; 4];
    for name in names(&out) {
        let (t, i) = name[1..].split_once('-').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "thread {t}'s lines in order, each once");
        next[t] += 1;
    }
    assert_eq!(next, [2_000; 4]);
    let here = crate::pipeline::ENCODED_HERE.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(here > 0, "no line was encoded on an emitting thread");
}

/// A flush returns once what was queued when it was asked is written, although
/// another thread keeps emitting all the while.
#[test]
fn a_flush_returns_while_another_thread_keeps_emitting() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let queue = export(SharedWriter(Arc::clone(&out)), POLICY);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                emit(&queue, "busy");
            }
        })
    };
    emit(&queue, "before-the-flush");
    let (done_tx, done) = mpsc::channel();
    {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            let answered = queue.flush();
            let _ = done_tx.send(answered);
        });
    }
    // A liveness bound, not a timing: with the worker never out of records, a flush
    // that waited for an empty queue would never return.
    let answered = done.recv_timeout(Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    assert_eq!(answered, Ok(true), "the flush never returned");
    assert!(names(&out).iter().any(|n| n == "before-the-flush"));
    assert!(queue.shutdown());
}

/// A record larger than the whole bound goes past the bound on its own: it does not
/// count as an overload, so the next record is not dropped for it (it waits for room
/// as any other, then is kept).
#[test]
fn a_record_larger_than_the_bound_goes_past_it_and_drops_nothing_else() {
    let (writer, entered, gate, out) = Gate::closed();
    let queue = export(
        writer,
        Policy {
            queue_bytes: 4096,
            ..POLICY
        },
    );
    let huge = "x".repeat(10_000);
    let tags = [Tag::new("blob", huge.as_str())];
    queue.push(&Record::new(Kind::Event, "huge", &tags));
    emit(&queue, "next");
    assert_eq!(counts(&queue), (0, 0, 0), "nothing dropped");
    release(&gate);
    drop(entered);
    assert!(queue.shutdown());
    assert_eq!(counts(&queue), (2, 0, 0));
    assert_eq!(names(&out), ["huge", "next"]);
}

/// What is still queued shows in the counts while the writer is stuck, and is gone
/// once it is written.
#[test]
fn the_counts_show_what_is_still_queued() {
    let (writer, entered, gate, _out) = Gate::closed();
    let queue = export(writer, POLICY);
    emit(&queue, "stuck");
    entered.recv().unwrap();
    emit(&queue, "waiting-1");
    emit(&queue, "waiting-2");
    // A thread that emits now and then reserves exactly what each record takes.
    let held = queue.stats().queued_bytes();
    assert_eq!(
        held,
        (line_len("stuck") + 2 * line_len("waiting-1")) as u64,
        "the record being written and the two waiting"
    );
    release(&gate);
    assert!(queue.flush());
    assert_eq!(queue.stats().queued_bytes(), 0);
    assert!(queue.shutdown());
    assert_eq!(counts(&queue), (3, 0, 0));
}

/// Takes at most `step` bytes a call, and fails once `fail_after` bytes are in.
struct Trickle {
    step: usize,
    fail_after: usize,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = self.out.lock().unwrap();
        if out.len() >= self.fail_after {
            return Err(io::Error::other("no space left on device"));
        }
        let n = buf.len().min(self.step).min(self.fail_after - out.len());
        out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_batch_in_parts_is_written_whole_and_in_order_through_short_writes() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut lines = Lines::new(
        LineEncoder::new("test"),
        Trickle {
            step: 3,
            fail_after: usize::MAX,
            out: Arc::clone(&out),
        },
    );
    let parts = [
        IoSlice::new(b"{\"a\":1}\n{\"b\":2}\n"),
        IoSlice::new(b""),
        IoSlice::new(b"{\"c\":3}\n"),
    ];
    assert!(matches!(
        lines.deliver_parts(&parts, 3, None),
        Delivery::Delivered
    ));
    assert_eq!(
        out.lock().unwrap().as_slice(),
        b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
    );
}

#[test]
fn a_batch_in_parts_torn_midway_counts_the_lines_written_whole_and_resyncs() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut lines = Lines::new(
        LineEncoder::new("test"),
        Trickle {
            step: 5,
            // The first line (8 bytes) and half of the second.
            fail_after: 12,
            out: Arc::clone(&out),
        },
    );
    let parts = [
        IoSlice::new(b"{\"a\":1}\n"),
        IoSlice::new(b"{\"b\":2}\n{\"c\":3}\n"),
    ];
    match lines.deliver_parts(&parts, 3, None) {
        Delivery::Failed(failure) => assert_eq!(failure.delivered, 1),
        other => panic!("a torn batch: {other:?}"),
    }
    // The destination works again: the next batch starts on a new line.
    lines.writer.fail_after = usize::MAX;
    assert!(matches!(
        lines.deliver_parts(&[IoSlice::new(b"{\"d\":4}\n")], 1, None),
        Delivery::Delivered
    ));
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert_eq!(text, "{\"a\":1}\n{\"b\"\n{\"d\":4}\n");
}

#[test]
fn a_batch_in_parts_reaches_a_real_file_whole() {
    let dir = std::env::temp_dir().join(format!("telemetry-parts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("parts.jsonl");
    let mut lines = Lines::new(
        LineEncoder::new("test"),
        Writer::File(AppendFile::open(&path).unwrap()),
    );
    // More parts than one `writev` takes (1,024 on Linux).
    let bodies: Vec<String> = (0..3000).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let parts: Vec<IoSlice<'_>> = bodies.iter().map(|b| IoSlice::new(b.as_bytes())).collect();
    assert!(matches!(
        lines.deliver_parts(&parts, 3000, None),
        Delivery::Delivered
    ));
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(written, bodies.concat());
}

/// After a burst that held many chunks at once, the pool of emptied chunks is
/// trimmed back once the queue has been quiet for a second: a burst's memory is not
/// held for good.
#[test]
fn the_chunks_a_burst_left_are_given_back_once_quiet() {
    let (writer, entered, gate, _out) = Gate::closed();
    let handoff = export(writer, POLICY);
    emit(&handoff, "first");
    entered.recv().unwrap(); // the worker is now stuck writing it
                             // About 8 MiB while the writer is stuck: some 30 chunks of 256 KiB queued at once.
    let tag = "x".repeat(200);
    let tags = [Tag::new("pad", tag.as_str())];
    for _ in 0..32_000 {
        handoff.push(&Record::new(Kind::Event, "burst", &tags));
    }
    release(&gate);
    assert!(handoff.flush());
    assert_eq!(counts(&handoff), (32_001, 0, 0));
    let after_burst = handoff.spare_chunks();
    assert!(
        after_burst > 16,
        "the burst's chunks went back to the pool: {after_burst}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while handoff.spare_chunks() > 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        handoff.spare_chunks() <= 8,
        "{} chunks still kept, 10 s after the burst",
        handoff.spare_chunks()
    );
    assert!(handoff.shutdown());
}
