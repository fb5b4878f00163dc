//! The export pipeline under the conditions that used to hurt the app: a stalled
//! reader, a FIFO nobody reads, the guard dropped while threads emit, a symbolic link
//! at the file's path, and an app that changes directory.
//!
//! Tests that need the global subscriber re-run this test binary as a child process
//! (`reliability::rerun_self`), so each installs its own.

#![cfg(all(unix, feature = "subscriber"))]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod reliability;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

use reliability::{child_role, drain, rerun_self};
use support::temp_dir;
use tracing_telemetry::Config;

/// How long a test waits for a child's result before calling the child blocked: far
/// more than any machine, however loaded, needs for the work, so that only a thread
/// that is really blocked fails a test, never a slow machine. (Nothing reads the
/// stalled destination until then: the stall lasts as long as the wait.)
const HANG: Duration = Duration::from_secs(300);

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {path:?}");
}

/// Waits for `path` to hold a line; its text. A child that has not written it within
/// [`HANG`] is blocked.
fn wait_for_result(path: &Path, what: &str) -> String {
    let within = HANG;
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no result within {within:?}: the emitting thread is blocked"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The child for the stalled-reader tests: emits enough records to fill any pipe
/// and the exporter's buffer many times over, then says so in the file named by
/// `RESULT` (its stdout and stderr may be the stalled pipe), with what the exporter
/// counted so far.
fn emitting_child() {
    let result = PathBuf::from(std::env::var_os("RESULT").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    for i in 0..200_000_u32 {
        tracing_telemetry::track_metric("stall.record", f64::from(i), &[("pad", &"x".repeat(64))]);
    }
    let stats = guard.stats();
    std::fs::write(
        &result,
        format!("emitted 200000 dropped {}\n", stats.dropped()),
    )
    .unwrap();
    drop(guard);
}

/// The records the child counted as dropped while the reader was stalled.
fn dropped_while_stalled(result: &str) -> u64 {
    result
        .trim()
        .strip_prefix("emitted 200000 dropped ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected result {result:?}"))
}

/// The default `stderr` exporter, and a stderr reader that stops reading: all the
/// track calls return while nothing reads (the pipe and the buffer filled long
/// before), the excess is dropped and counted, and the "buffer full" message is said
/// by a thread of its own, not by the emitting thread.
#[test]
fn a_stalled_stderr_reader_never_blocks_a_track_call() {
    if child_role().as_deref() == Some("emit") {
        return emitting_child();
    }
    let dir = temp_dir("pipeline-stalled-stderr");
    let result = dir.join("result");
    let mut child = Killed(
        rerun_self("a_stalled_stderr_reader_never_blocks_a_track_call", "emit")
            .env("TELEMETRY_ENABLED", "true")
            .env("RESULT", &result)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    // Nobody reads stderr until the child has finished emitting.
    let text = wait_for_result(&result, "stderr exporter, stalled reader");
    assert!(dropped_while_stalled(&text) > 0, "{text}");
    let stderr = drain(stderr);
    let status = child.0.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("telemetry: the export buffer is full"),
        "the drops were reported: {}",
        &stderr[stderr.len().saturating_sub(500)..]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `stdout` exporter with stderr on the same pipe (`2>&1`), and that pipe
/// stalled: the same holds.
#[test]
fn a_stalled_pipe_shared_by_stdout_and_stderr_never_blocks_a_track_call() {
    if child_role().as_deref() == Some("emit") {
        return emitting_child();
    }
    let dir = temp_dir("pipeline-stalled-both");
    let result = dir.join("result");
    // `2>&1`, as a shell would do it: one pipe for both.
    let child_cmd = rerun_self(
        "a_stalled_pipe_shared_by_stdout_and_stderr_never_blocks_a_track_call",
        "emit",
    );
    let mut shell = Command::new("sh");
    shell
        .args(["-c", "exec \"$0\" \"$@\" 2>&1"])
        .arg(child_cmd.get_program())
        .args(child_cmd.get_args());
    for (var, value) in child_cmd.get_envs() {
        match value {
            Some(value) => shell.env(var, value),
            None => shell.env_remove(var),
        };
    }
    let mut child = Killed(
        shell
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", "stdout")
            .env("RESULT", &result)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let reader = child.0.stdout.take().unwrap();
    let text = wait_for_result(&result, "stdout exporter, 2>&1, stalled pipe");
    assert!(dropped_while_stalled(&text) > 0, "{text}");
    let output = drain(reader);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{}", output.join().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `TELEMETRY_FILE` naming a FIFO that no process reads: `try_init` fails at once,
/// naming the path and what to do, instead of hanging in `open`.
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "Linux's ENXIO message; macOS says \"Device not configured\""
)]
#[test]
fn a_fifo_without_a_reader_fails_try_init_at_once() {
    let dir = temp_dir("pipeline-fifo-init");
    let fifo = dir.join("t.fifo");
    mkfifo(&fifo);
    let mut child = Killed(
        support::example("quickstart")
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", "file")
            .env("TELEMETRY_FILE", &fifo)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = drain(child.0.stderr.take().unwrap());
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "try_init hangs on a FIFO without a reader"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: cannot open TELEMETRY_FILE {fifo:?}: No such device or address (os error 6) \
             (it is a FIFO that no process is reading: start the reader first)\n"
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child for the test below: telemetry off at start, turned on at run time by
/// the handle, then track calls: the file is opened on the writer thread (opening a
/// FIFO nobody reads would block), so the calls return; the failure is reported and
/// the records counted.
fn fifo_enabled_at_run_time_child() {
    let result = PathBuf::from(std::env::var_os("RESULT").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    guard.handle().enable();
    for _ in 0..3 {
        tracing_telemetry::track_event("after.enable", &[]);
    }
    guard.flush();
    let stats = guard.stats();
    std::fs::write(
        &result,
        format!(
            "written {} dropped {} failed {}\n",
            stats.written(),
            stats.dropped(),
            stats.failed()
        ),
    )
    .unwrap();
    drop(guard);
}

#[cfg_attr(
    not(target_os = "linux"),
    ignore = "Linux's ENXIO message; macOS says \"Device not configured\""
)]
#[test]
fn a_fifo_without_a_reader_never_blocks_a_track_call_after_enabling_at_run_time() {
    if child_role().as_deref() == Some("fifo-enable") {
        return fifo_enabled_at_run_time_child();
    }
    let dir = temp_dir("pipeline-fifo-enable");
    let fifo = dir.join("t.fifo");
    mkfifo(&fifo);
    let result = dir.join("result");
    let mut child = Killed(
        rerun_self(
            "a_fifo_without_a_reader_never_blocks_a_track_call_after_enabling_at_run_time",
            "fifo-enable",
        )
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &fifo)
        .env("RESULT", &result)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let stderr = drain(child.0.stderr.take().unwrap());
    let text = wait_for_result(&result, "enabling with a FIFO");
    let status = child.0.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["written", "0", "dropped", "0", "failed", "3"],
        "{text}"
    );
    assert_eq!(
        stderr
            .matches("telemetry: cannot write records: No such device or address (os error 6)")
            .count(),
        1,
        "reported once: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Dropping the guard while four threads still emit: every record made is accounted
/// for, as written, dropped or failed, and exactly the written ones are in the file.
#[test]
fn dropping_the_guard_while_threads_emit_accounts_for_every_record() {
    let dir = temp_dir("pipeline-drop-guard");
    let path = dir.join("t.jsonl");
    let config = Config::new().with_enabled(true).with_file(&path);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let sink = Arc::clone(layer.inner().sink());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let made = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let emitters: Vec<_> = (0..4)
        .map(|t| {
            let (dispatch, made, stop) = (dispatch.clone(), Arc::clone(&made), Arc::clone(&stop));
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let thread = t.to_string();
                    let mut seq = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        tracing_telemetry::track_metric(
                            "drop.record",
                            seq as f64,
                            &[("thread", &thread), ("seq", &seq.to_string())],
                        );
                        made.fetch_add(1, Ordering::Relaxed);
                        seq += 1;
                    }
                })
            })
        })
        .collect();
    while made.load(Ordering::Relaxed) < 50_000 {
        thread::sleep(Duration::from_millis(5));
    }
    drop(guard);
    // Keep emitting after the guard is gone, then stop.
    thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for emitter in emitters {
        emitter.join().unwrap();
    }
    let made = made.load(Ordering::Relaxed);
    let stats = sink.stats();
    assert_eq!(
        stats.written() + stats.dropped() + stats.failed(),
        made,
        "made {made}: {stats:?}"
    );
    assert!(stats.written() > 0 && stats.dropped() > 0, "{stats:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count() as u64, stats.written());
    support::json_lines(&text);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A symbolic link at `TELEMETRY_FILE` is refused, not followed: the file it points
/// at is never written.
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "Linux's ELOOP number (os error 40; macOS: 62)"
)]
#[test]
fn a_symbolic_link_at_the_path_is_refused_not_followed() {
    let dir = temp_dir("pipeline-symlink");
    let target = dir.join("precious.txt");
    std::fs::write(&target, "keep me\n").unwrap();
    let link = dir.join("t.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = support::example("quickstart")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &link)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: cannot open TELEMETRY_FILE {link:?}: Too many levels of symbolic links (os error 40) \
             (it is a symbolic link, which telemetry does not follow: name the file itself)\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child for the test below: the file is replaced by a link to another file while
/// the app runs; the re-open refuses the link, the loss is counted, the other file is
/// untouched.
fn link_swapped_in_child() {
    let path = PathBuf::from(std::env::var_os("TELEMETRY_FILE").unwrap());
    let target = PathBuf::from(std::env::var_os("TARGET").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    tracing_telemetry::track_event("before", &[]);
    guard.flush();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    thread::sleep(Duration::from_millis(1_100));
    tracing_telemetry::track_event("after", &[]);
    guard.flush();
    let stats = guard.stats();
    println!(
        "stats: {} written, {} failed",
        stats.written(),
        stats.failed()
    );
}

#[test]
fn a_link_swapped_in_after_start_is_not_followed_on_reopen() {
    if child_role().as_deref() == Some("link-swap") {
        return link_swapped_in_child();
    }
    let dir = temp_dir("pipeline-link-swap");
    let target = dir.join("precious.txt");
    std::fs::write(&target, "keep me\n").unwrap();
    let out = rerun_self(
        "a_link_swapped_in_after_start_is_not_followed_on_reopen",
        "link-swap",
    )
    .env("TELEMETRY_ENABLED", "true")
    .env("TELEMETRY_EXPORTER", "file")
    .env("TELEMETRY_FILE", dir.join("t.jsonl"))
    .env("TARGET", &target)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stats: 1 written, 1 failed"), "{stdout}");
    assert!(
        stderr.contains("telemetry: cannot write records: Too many levels of symbolic links"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child for the test below: a relative `TELEMETRY_FILE`, and the app changes
/// directory after `try_init`, for longer than the re-open check.
fn chdir_child() {
    let elsewhere = PathBuf::from(std::env::var_os("ELSEWHERE").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    tracing_telemetry::track_event("before.chdir", &[]);
    std::env::set_current_dir(&elsewhere).unwrap();
    for i in 0..3 {
        thread::sleep(Duration::from_millis(600));
        tracing_telemetry::track_event("after.chdir", &[("i", &i.to_string())]);
    }
    drop(guard);
}

#[test]
fn a_relative_path_is_resolved_once_so_chdir_does_not_move_the_stream() {
    if child_role().as_deref() == Some("chdir") {
        return chdir_child();
    }
    let dir = temp_dir("pipeline-chdir");
    let start = dir.join("start");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&start).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut out = rerun_self(
        "a_relative_path_is_resolved_once_so_chdir_does_not_move_the_stream",
        "chdir",
    );
    let out = out
        .current_dir(&start)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", "t.jsonl")
        .env("ELSEWHERE", &elsewhere)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(start.join("t.jsonl")).unwrap();
    let names: Vec<String> = support::json_lines(&text)
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["before.chdir", "after.chdir", "after.chdir", "after.chdir"]
    );
    assert!(
        !elsewhere.join("t.jsonl").exists(),
        "nothing was written in the new working directory"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Peak resident memory of this process, from /proc/self/status.
#[cfg(target_os = "linux")]
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/self/status")
}

/// The child for the test below: 2,000 records of 64 KiB each (125 MiB in all) into
/// stdout, which nobody reads until the child reports its peak memory.
#[cfg(target_os = "linux")]
fn large_records_child() {
    let result = PathBuf::from(std::env::var_os("RESULT").unwrap());
    let before = peak_rss();
    let guard = tracing_telemetry::try_init().unwrap();
    let payload = "x".repeat(64 * 1024);
    for i in 0..2_000_u32 {
        tracing_telemetry::track_event(
            "large.record",
            &[("i", &i.to_string()), ("payload", &payload)],
        );
    }
    let stats = guard.stats();
    std::fs::write(
        &result,
        format!(
            "grew {} dropped {}\n",
            peak_rss().saturating_sub(before),
            stats.dropped()
        ),
    )
    .unwrap();
    drop(guard);
}

/// Memory is bounded in bytes, not in records: large records into a stalled reader
/// grow the process by about the 16 MiB buffer, not by what was emitted.
#[cfg(target_os = "linux")]
#[test]
fn large_records_into_a_stalled_reader_keep_memory_bounded_in_bytes() {
    if child_role().as_deref() == Some("large") {
        return large_records_child();
    }
    let dir = temp_dir("pipeline-large");
    let result = dir.join("result");
    let mut child = Killed(
        rerun_self(
            "large_records_into_a_stalled_reader_keep_memory_bounded_in_bytes",
            "large",
        )
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout")
        .env("RESULT", &result)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let text = wait_for_result(&result, "large records");
    let words: Vec<&str> = text.split_whitespace().collect();
    let grew: u64 = words[1].parse().unwrap();
    let dropped: u64 = words[3].parse().unwrap();
    assert!(dropped > 1_000, "most of the 125 MiB was dropped: {text}");
    assert!(
        grew < 64 * 1024 * 1024,
        "the process grew by {} MiB",
        grew / (1024 * 1024)
    );
    drop(drain(stdout));
    child.0.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Emits `records` records of about 1 KiB each into a FIFO that the test holds open
/// but does not read (a stalled destination); returns how many were dropped.
#[cfg(target_os = "linux")]
fn dropped_into_a_stalled_fifo(test: &str, config: Config, records: u32) -> u64 {
    let dir = temp_dir(test);
    let fifo = dir.join("t.fifo");
    mkfifo(&fifo);
    // Opening the read end first lets the exporter's non-blocking open succeed.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblocking()
        .open(&fifo)
        .unwrap();
    let (layer, guard) =
        tracing_telemetry::layer_with(&config.with_enabled(true).with_file(&fifo)).unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let pad = "x".repeat(1024);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..records {
            tracing_telemetry::track_event("fill", &[("i", &i.to_string()), ("pad", &pad)]);
        }
    });
    let stats = guard.stats();
    // Now read (a second, blocking reader: the writer is there, so it opens at once),
    // so that shutdown writes everything and the writer closes the FIFO.
    let drained = drain(std::fs::File::open(&fifo).unwrap());
    drop(reader);
    drop(guard);
    let text = drained.join().unwrap();
    assert_eq!(
        text.lines().count() as u64 + stats.dropped(),
        u64::from(records),
        "every record not dropped reached the reader"
    );
    let dropped = stats.dropped();
    std::fs::remove_dir_all(&dir).unwrap();
    dropped
}

#[cfg(target_os = "linux")]
trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

#[cfg(target_os = "linux")]
impl NonBlocking for std::fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc_o_nonblock())
    }
}

/// `O_NONBLOCK` on Linux (x86_64 and aarch64 alike).
#[cfg(target_os = "linux")]
fn libc_o_nonblock() -> i32 {
    0o4000
}

/// The buffer's size in bytes is the app's to choose: the same stalled destination
/// drops records with a 1 MiB buffer and none with the default 16 MiB.
#[cfg(target_os = "linux")]
#[test]
fn the_buffer_size_is_configurable_in_bytes() {
    let small = dropped_into_a_stalled_fifo(
        "pipeline-buffer-small",
        Config::new().with_buffer_bytes(1024 * 1024),
        4_000,
    );
    assert!(small > 0, "4 MiB into a 1 MiB buffer and a stalled FIFO");
    let default = dropped_into_a_stalled_fifo("pipeline-buffer-default", Config::new(), 4_000);
    assert_eq!(default, 0, "4 MiB fits in the default 16 MiB buffer");
}

/// The child for the test below: fills every destination, then drops the guard and
/// writes how long that took to `RESULT`.
#[cfg(all(target_os = "linux", feature = "otlp"))]
fn three_stalled_destinations_child() {
    let result = PathBuf::from(std::env::var_os("RESULT").unwrap());
    let guard = tracing_telemetry::try_init().unwrap();
    for i in 0..200_000_u32 {
        // Events, so that OTLP has log records to deliver (metrics are aggregated).
        tracing_telemetry::track_event(
            "stall.record",
            &[("i", &i.to_string()), ("pad", &"x".repeat(64))],
        );
    }
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    std::fs::write(&result, format!("shutdown took {}\n", took.as_millis())).unwrap();
}

/// Three destinations stalled at once: stdout (a pipe nobody reads), the file (a FIFO
/// nobody reads) and an OTLP collector that accepts connections and never answers.
/// Each gives up after 5 s (the JSON-lines writers after 5 s without progress, OTLP
/// after its timeout, set to 5 s): dropping the guard waits for them together, so it
/// takes about one of those bounds, never their sum.
#[cfg(all(target_os = "linux", feature = "otlp"))]
#[test]
fn dropping_the_guard_waits_for_stalled_destinations_together_not_one_after_another() {
    const ONE: u64 = 5_000;
    if child_role().as_deref() == Some("three") {
        return three_stalled_destinations_child();
    }
    let dir = temp_dir("pipeline-three-stalled");
    let fifo = dir.join("t.fifo");
    let result = dir.join("result");
    mkfifo(&fifo);
    let fifo_reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblocking()
        .open(&fifo)
        .unwrap();
    // The collector: accepts, reads nothing, answers nothing; holds every connection.
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = {
        let held = Arc::clone(&held);
        thread::spawn(move || {
            for conn in collector.incoming() {
                match conn {
                    Ok(conn) => held.lock().unwrap().push(conn),
                    Err(_) => break,
                }
            }
        })
    };
    let mut child = Killed(
        rerun_self(
            "dropping_the_guard_waits_for_stalled_destinations_together_not_one_after_another",
            "three",
        )
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout,file,otlp")
        .env("TELEMETRY_FILE", &fifo)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", ONE.to_string())
        .env("RESULT", &result)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let stderr = drain(child.0.stderr.take().unwrap());
    // Nobody reads stdout or the FIFO until the child has dropped its guard.
    let text = wait_for_result(&result, "three stalled destinations");
    let took: u64 = text
        .trim()
        .strip_prefix("shutdown took ")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("unexpected result {text:?}"));
    drop(fifo_reader);
    drop(drain(stdout));
    let status = child.0.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    // Every destination was stalled: each said so in its summary.
    for said in [
        "export summary (stdout): ",
        "export summary (file): ",
        "otlp export stopped: ",
    ] {
        assert!(stderr.contains(said), "no {said:?} in {stderr}");
    }
    // So the drop waited at least one bound, and less than the sum of the three.
    assert!(took >= ONE, "shutdown took {took} ms: {stderr}");
    assert!(
        took < 3 * ONE,
        "shutdown took {took} ms: the destinations were waited for one after another"
    );
    held.lock().unwrap().clear();
    // Unblock the accept loop so its thread ends.
    drop(std::net::TcpStream::connect(
        endpoint.trim_start_matches("http://"),
    ));
    drop(holder);
    std::fs::remove_dir_all(&dir).unwrap();
}
