//! Faults: destinations that fail or hang, sinks that panic or emit telemetry, and a
//! second `try_init`. None of them may panic the app, block it for ever, or lose
//! records without saying so. (A full disk and a reader that hangs up are in
//! tests/exporter.rs; a rotated file too.)
//!
//! Tests that need the global subscriber re-run this test binary as a child process
//! (`reliability::rerun_self`), so each installs its own.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod reliability;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

#[cfg(unix)]
use std::fs::File;
#[cfg(unix)]
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
#[cfg(unix)]
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(unix)]
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(unix)]
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

use reliability::{child_role, drain, rerun_self};
#[cfg(unix)]
use support::example;
use support::{json_lines, temp_dir};
#[cfg(unix)]
use tracing_telemetry::Config;
use tracing_telemetry::{MemorySink, Record, Sink, TelemetryLayer};

/// Generous: these bound waits that should take milliseconds, so that a hang fails the
/// test instead of stalling the suite.
const HANG: Duration = Duration::from_secs(60);

/// Waits for `child` to exit by itself; kills it and fails if it takes longer than
/// [`HANG`].
fn wait_or_kill(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after {HANG:?}, the app is blocked");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on a thread of its own; fails if it does not return within [`HANG`].
#[cfg(unix)]
fn returns_in_time(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = done_tx.send(());
    });
    done.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not return within {HANG:?}"));
}

fn names(text: &str) -> Vec<String> {
    json_lines(text)
        .into_iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `path` holds `lines` lines (written by the export thread).
#[cfg(unix)]
fn wait_for_lines(path: &Path, lines: usize) {
    let deadline = Instant::now() + HANG;
    while std::fs::read_to_string(path).map_or(0, |t| t.lines().count()) < lines {
        assert!(
            Instant::now() < deadline,
            "{path:?} never got {lines} lines"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------
// Destinations that fail

/// `rm` of the telemetry file while the app writes to it: the exporter re-creates the
/// path within a second (0600 again), records after that land in the new file, and no
/// record is torn, duplicated or lost: those written in the second before the check
/// are in the old, unlinked file (read here through a descriptor opened before the
/// deletion, as a shipper that had the file open would).
#[cfg(unix)]
#[test]
fn a_file_deleted_while_open_is_recreated_and_no_call_blocks() {
    use std::os::unix::fs::PermissionsExt;

    let dir = temp_dir("faults-unlink");
    let path = dir.join("t.jsonl");
    let config = Config::new().with_enabled(true).with_file(&path);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut old = None;
    tracing::dispatcher::with_default(&dispatch, || {
        tracing_telemetry::track_event("before.delete", &[]);
        wait_for_lines(&path, 1);
        old = Some(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let started = Instant::now();
        tracing_telemetry::track_event("just.after.delete", &[("n", "1")]);
        // The exporter checks the path at most once a second.
        thread::sleep(Duration::from_millis(1_200));
        tracing_telemetry::track_event("after.delete", &[("n", "2")]);
        tracing_telemetry::track_metric("after.delete.metric", 3.0, &[]);
        assert!(
            started.elapsed() < HANG,
            "track calls returned while the file was gone"
        );
    });
    let stats = guard.stats();
    returns_in_time("dropping the guard", move || drop(guard));
    assert_eq!((stats.dropped(), stats.failed()), (0, 0));

    let new = std::fs::read_to_string(&path).expect("the path was re-created");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the re-created file is private too");
    let mut old_text = String::new();
    old.unwrap().read_to_string(&mut old_text).unwrap();

    let new_names = names(&new);
    assert!(
        new_names.ends_with(&["after.delete".to_owned(), "after.delete.metric".to_owned()]),
        "records after the check go to the new file: {new_names:?}"
    );
    let mut all = names(&old_text);
    assert_eq!(all[0], "before.delete");
    all.extend(new_names);
    all.sort();
    assert_eq!(
        all,
        [
            "after.delete",
            "after.delete.metric",
            "before.delete",
            "just.after.delete"
        ],
        "each record exactly once, old file then new"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child for the test below: the file's directory is removed while the app runs,
/// so the path cannot be re-created.
#[cfg(unix)]
fn directory_removed_child() {
    let path = std::path::PathBuf::from(std::env::var_os("TELEMETRY_FILE").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    tracing_telemetry::track_event("before", &[]);
    wait_for_lines(&path, 1);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    for i in 0..3 {
        thread::sleep(Duration::from_millis(1_100));
        tracing_telemetry::track_event("after", &[("i", &i.to_string())]);
    }
    guard.flush();
    let stats = guard.stats();
    drop(guard);
    println!(
        "stats: {} written, {} dropped, {} failed",
        stats.written(),
        stats.dropped(),
        stats.failed()
    );
}

/// Records written after the file's directory is gone reach no file anyone can read.
/// As for any write error, the loss must be reported once and counted, so that the
/// exit summary says so.
#[cfg(unix)]
#[test]
fn a_file_whose_directory_is_removed_reports_the_loss_once_and_counts_it() {
    if child_role().as_deref() == Some("directory-removed") {
        return directory_removed_child();
    }
    let dir = temp_dir("faults-rmdir");
    let path = dir.join("t.jsonl");
    let out = rerun_self(
        "a_file_whose_directory_is_removed_reports_the_loss_once_and_counts_it",
        "directory-removed",
    )
    .env("TELEMETRY_ENABLED", "true")
    .env("TELEMETRY_EXPORTER", "file")
    .env("TELEMETRY_FILE", &path)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("telemetry: cannot write records").count(),
        1,
        "reported once, then counted: {stderr}"
    );
    assert!(
        stdout.contains("stats: 1 written, 0 dropped, 3 failed"),
        "the 3 records after the directory went are lost, and counted: {stdout}"
    );
    assert!(
        stderr.contains(
            "telemetry: export summary: 1 written, 0 dropped (buffer full), 3 lost to write errors"
        ),
        "{stderr}"
    );
}

/// A destination that accepts nothing and never fails (a pipe nobody reads, a hung
/// network mount): the app still finishes. Emitters wait once (100 ms) and then drop;
/// shutdown gives up after 5 s without progress and says so.
#[cfg(unix)]
#[test]
fn a_destination_that_hangs_never_blocks_the_app_for_ever() {
    let mut child = example("load")
        .args(["--threads", "2", "--records", "250000"]) // past the 16 MiB buffer (about 83 bytes a record queued)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout")
        .stdout(Stdio::piped()) // never read until the app has exited
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, "the app writing to a hung pipe");
    let stderr = stderr.join().unwrap();
    drop(stdout);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("telemetry: the export buffer is full"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "; gave up waiting: the destination made no progress for 5s (the records still queued are counted as dropped)"
        ),
        "{stderr}"
    );
}

/// The stderr exporter with stderr closed: every write fails, and so does the report
/// of the failure (it goes to stderr too). The app neither panics nor hangs.
#[cfg(unix)]
#[test]
fn the_stderr_exporter_into_a_closed_stderr_is_not_a_crash() {
    let mut child = example("load")
        .args(["--threads", "2", "--records", "2000"])
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stderr")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader hangs up before the first record
    let stdout = drain(child.stdout.take().unwrap());
    let status = wait_or_kill(&mut child, "the app with a closed stderr");
    assert!(status.success(), "exit: {status:?}");
    assert_eq!(stdout.join().unwrap(), "", "nothing leaks onto stdout");
}

/// The stdout exporter into a full device: reported once on stderr, every record
/// counted as lost, exit status 0.
#[cfg(target_os = "linux")]
#[test]
fn the_stdout_exporter_into_a_full_device_counts_every_loss() {
    let out = example("load")
        .args(["--threads", "2", "--records", "1000"])
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout")
        .stdout(File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("telemetry: cannot write records: No space left on device")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "telemetry: export summary: 0 written, 0 dropped (buffer full), 2000 lost to write errors"
        ),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------
// Sinks that misbehave, in an app with a global subscriber

/// Panics on records named "boom"; on the others it logs, emits telemetry of its own
/// and holds its lock meanwhile, as a careless sink might.
struct Misbehaving {
    lock: Mutex<Vec<String>>,
}

impl Sink for Misbehaving {
    fn record(&self, record: &Record<'_>) {
        let mut seen = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if record.name() == "boom" {
            panic!("this sink fails on {}", record.name());
        }
        tracing::warn!(name = record.name(), "the sink logs while recording");
        tracing_telemetry::track_event("from.inside.the.sink", &[]);
        tracing_telemetry::track_metric!("sink.depth", 1, inside = true);
        seen.push(record.name().to_owned());
    }
}

const EMITTERS: usize = 4;
const PER_EMITTER: usize = 50;

fn misbehaving_sinks_child() {
    // Count the panics instead of printing them: the default hook writes to stderr
    // without its lock, so its lines could interleave with the crate's report.
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let bad = Arc::new(Misbehaving {
        lock: Mutex::new(Vec::new()),
    });
    let memory = MemorySink::new();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .with(TelemetryLayer::new(Arc::clone(&bad)).with_telemetry_filter())
        .with(TelemetryLayer::new(memory.clone()).with_telemetry_filter())
        .init();
    thread::scope(|s| {
        for t in 0..EMITTERS {
            s.spawn(move || {
                for i in 0..PER_EMITTER {
                    let name = if i % 10 == 0 { "boom" } else { "fine" };
                    tracing_telemetry::track_event(name, &[("t", &t.to_string())]);
                }
            });
        }
    });
    tracing::info!("the app goes on");
    let inside = memory
        .names()
        .iter()
        .filter(|n| n.as_str() != "boom" && n.as_str() != "fine")
        .count();
    println!(
        "bad sink kept {}, memory sink got {}, sink-made records delivered {}, panics {}",
        bad.lock.lock().unwrap_or_else(|e| e.into_inner()).len(),
        memory.len(),
        inside,
        PANICS.load(Ordering::SeqCst)
    );
}

/// A sink that panics, and logs and tracks while it records (holding its own lock),
/// in an app whose subscriber is global, from several threads: the process is not
/// taken down, nothing deadlocks or recurses, the other sinks receive every record,
/// and the first panic is reported once.
#[test]
fn a_panicking_and_re_entrant_sink_does_not_take_the_app_down() {
    if child_role().as_deref() == Some("misbehaving-sinks") {
        return misbehaving_sinks_child();
    }
    let mut child = rerun_self(
        "a_panicking_and_re_entrant_sink_does_not_take_the_app_down",
        "misbehaving-sinks",
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, "the app with a misbehaving sink");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.success(), "{status:?}\n{stdout}\n{stderr}");

    let total = EMITTERS * PER_EMITTER;
    let booms = EMITTERS * PER_EMITTER / 10;
    assert!(
        stdout.contains(&format!(
            "bad sink kept {}, memory sink got {total}, sink-made records delivered 0, panics {booms}",
            total - booms
        )),
        "{stdout}"
    );
    assert!(stdout.contains("the app goes on"), "{stdout}");
    assert_eq!(
        stderr
            .matches("telemetry: a sink panicked while recording \"boom\"; that record is lost and the app goes on")
            .count(),
        1,
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------
// try_init twice

const ALREADY: &str = "a global tracing subscriber is already installed (tracing_telemetry::try_init can run once per process; to keep your own subscriber, add the layer from tracing_telemetry::layer() to it)";

fn init_twice_child() {
    let guard = tracing_telemetry::try_init().expect("the first try_init succeeds");
    tracing_telemetry::track_event("before.second.init", &[]);

    let err = tracing_telemetry::try_init().expect_err("a second try_init fails");
    println!("second try_init: {err}");
    let panic = panic::catch_unwind(AssertUnwindSafe(tracing_telemetry::init))
        .expect_err("init panics when try_init fails");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    println!("init panicked with: {message}");

    // The first subscriber keeps working: its log layer and its exporter.
    tracing::info!("the app logs after the second init");
    tracing_telemetry::track_event("after.second.init", &[("n", "1")]);
    tracing_telemetry::track_metric!("after.second.init.typed", 2.0, ok = true);
    println!("stats: {:?}", guard.stats());
    drop(guard);
}

/// `try_init` a second time returns the error naming the problem and what to do,
/// `init` panics with the same message, and the first subscriber (installed with the
/// file exporter) keeps logging and exporting: the records after the failed calls
/// arrive in its file.
#[test]
fn a_second_try_init_is_refused_by_name_and_the_first_keeps_working() {
    if child_role().as_deref() == Some("init-twice") {
        return init_twice_child();
    }
    let dir = temp_dir("faults-init-twice");
    let file = dir.join("t.jsonl");
    let mut child = rerun_self(
        "a_second_try_init_is_refused_by_name_and_the_first_keeps_working",
        "init-twice",
    )
    .env("TELEMETRY_ENABLED", "true")
    .env("TELEMETRY_EXPORTER", "file")
    .env("TELEMETRY_FILE", &file)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, "the app calling try_init twice");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.success(), "{stdout}\n{stderr}");

    assert!(
        stdout.contains(&format!("second try_init: {ALREADY}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("init panicked with: {ALREADY}\n")),
        "{stdout}"
    );
    assert!(
        stderr.contains(ALREADY),
        "the panic is reported as usual: {stderr}"
    );
    assert!(
        stdout.contains("the app logs after the second init"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        names(&text),
        [
            "before.second.init",
            "after.second.init",
            "after.second.init.typed"
        ]
    );
    assert!(
        !stderr.contains("telemetry: export summary"),
        "nothing was lost: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
