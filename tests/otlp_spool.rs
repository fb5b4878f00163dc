//! The OTLP spool (`TELEMETRY_SPOOL_DIR`) end to end: an app that runs while the
//! collector is down, exits or is killed, and runs again once a real OTLP/HTTP
//! receiver (oteltest's `HttpSink`, started by `tests/support/otlp_receiver.py`) is up.
//!
//! The app is this test binary started again with `SPOOL_TEST_APP` set (see [`app`]),
//! so that it can be killed like any process. The receiver needs Python with
//! `oteltest`: `.ci/run` makes a virtual environment at `target/oteltest-venv`;
//! `OTLP_RECEIVER_PYTHON` names another interpreter. Where it is missing, these tests
//! fail when `CI=true` and otherwise print `SKIPPED: ...` and pass.

#[allow(dead_code, reason = "not every helper is used by each suite")]
mod otlp_receiver;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use otlp_receiver::Receiver;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing_subscriber::prelude::*;
use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};

const APP: &str = "SPOOL_TEST_APP";

// ---------------------------------------------------------------------------------
// The app

/// Not a test by itself: the app the tests below start as a child process. It reads
/// its exporter from the environment (`OTEL_*`, `TELEMETRY_SPOOL_DIR`), emits
/// `order.placed` with `n` from `SPOOL_TEST_FIRST` for `SPOOL_TEST_COUNT` events (the
/// one with `n` = `SPOOL_TEST_NOTE_AT` with a `note` of `SPOOL_TEST_NOTE`, in hex, if
/// set), then
/// with `SPOOL_TEST_APP=exit` shuts down and prints its counts on a `STATS` line; with
/// `hold` it prints `READY` once every event is in the spool and waits to be killed.
#[test]
fn app() {
    let Ok(mode) = std::env::var(APP) else { return };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (first, count) = (number("SPOOL_TEST_FIRST"), number("SPOOL_TEST_COUNT"));
    let config = OtlpConfig::from_env().expect("the test's OTEL_* variables");
    let exporter = Arc::new(OtlpExporter::start(config).expect("start the exporter"));
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
    // One record may carry a `note` attribute, its value given in hex (it may hold
    // NUL, which no environment variable can).
    let note = std::env::var("SPOOL_TEST_NOTE").ok().map(|hex| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("SPOOL_TEST_NOTE in hex"))
            .collect();
        String::from_utf8(bytes).expect("SPOOL_TEST_NOTE is UTF-8")
    });
    let note_at = number("SPOOL_TEST_NOTE_AT");
    tracing::subscriber::with_default(subscriber, || {
        for n in first..first + count {
            match &note {
                Some(note) if n == note_at => {
                    tracing_telemetry::track_event!("order.placed", n = n, note = note.as_str());
                }
                _ => tracing_telemetry::track_event!("order.placed", n = n),
            }
        }
    });
    if mode == "hold" {
        let started = Instant::now();
        while exporter.stats().spooled() < count && started.elapsed() < Duration::from_secs(20) {
            thread::sleep(Duration::from_millis(20));
        }
        println!("READY spooled={}", exporter.stats().spooled());
        let _ = std::io::stdout().flush();
        // Killed by the test long before; the bound only keeps a failed test from
        // leaving it behind for good.
        thread::sleep(Duration::from_secs(60));
        std::process::exit(3);
    }
    exporter.shutdown();
    let s = exporter.stats();
    println!(
        "STATS exported={} spooled={} pending={} undelivered={} dropped={} torn={} failures={} rejected={} peak_kb={}",
        s.exported(),
        s.spooled(),
        s.spool_pending(),
        s.undelivered(),
        s.spool_dropped(),
        s.spool_torn_bytes(),
        s.spool_failures(),
        s.rejected(),
        peak_memory_kb()
    );
}

/// The process's peak resident memory (`VmHWM`), in KiB; 0 where `/proc` has none.
fn peak_memory_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// A child process, killed when dropped (even when the test fails).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn app_command(mode: &str, endpoint: &str, dir: &Path, first: u64, count: u64) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args(["app", "--exact", "--nocapture", "--test-threads=1"]);
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("TELEMETRY_") || name.starts_with("OTEL_") || name == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd.env(APP, mode)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .env("TELEMETRY_SPOOL_DIR", dir)
        .env("SPOOL_TEST_FIRST", first.to_string())
        .env("SPOOL_TEST_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the app to its end: its counts from the `STATS` line, and its stderr.
fn run_app(endpoint: &str, dir: &Path, first: u64, count: u64) -> (HashMap<String, u64>, String) {
    let out = app_command("exit", endpoint, dir, first, count)
        .output()
        .expect("run the app");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the app failed: {stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("STATS ").map(|(_, stats)| stats))
        .unwrap_or_else(|| panic!("no STATS line: {stdout}\n{stderr}"));
    let stats = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(u64::MAX)))
        .collect();
    (stats, stderr)
}

/// Like [`run_app`], for a run that could hang: the app is killed, and the test fails
/// with what it printed, when it has not finished within `bound` (generous: a loaded
/// machine must not fail it, only a run that never ends).
fn run_app_within(mut cmd: Command, bound: Duration) -> (HashMap<String, u64>, String) {
    let mut app = Process(cmd.spawn().expect("start the app"));
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(app.0.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(app.0.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = app.0.try_wait().expect("wait for the app") {
            break Some(status);
        }
        if started.elapsed() > bound {
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    drop(app);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!("the app did not finish within {bound:?}:\n{stdout}\n{stderr}");
    };
    assert!(status.success(), "the app failed: {stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("STATS ").map(|(_, stats)| stats))
        .unwrap_or_else(|| panic!("no STATS line: {stdout}\n{stderr}"));
    let stats = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(u64::MAX)))
        .collect();
    (stats, stderr)
}

/// Long enough for a loaded machine; only a run that hangs takes longer.
const BOUND: Duration = Duration::from_secs(120);

/// [`run_app_within`] with the usual app and [`BOUND`].
fn run_bounded(
    endpoint: &str,
    dir: &Path,
    first: u64,
    count: u64,
) -> (HashMap<String, u64>, String) {
    let mut cmd = app_command("exit", endpoint, dir, first, count);
    // A request to a receiver on a loaded machine may take seconds: give each one, and
    // shutdown, time enough that what these tests count is never a timeout's doing.
    // (A collector that is down refuses the connection at once: no wait either way.)
    cmd.env("OTEL_EXPORTER_OTLP_TIMEOUT", "30000");
    run_app_within(cmd, BOUND)
}

/// An endpoint where nothing listens: a collector that is down.
fn down_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A fresh directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "telemetry-spool-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn spool(&self) -> PathBuf {
        self.0.join("spool")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------
// The real receiver (as in tests/otlp.rs)

/// The receiver, or `None` (after saying SKIPPED) where it cannot run.
fn receiver() -> Option<Receiver> {
    otlp_receiver::start(0, "OTLP spool receiver tests")
}

impl Receiver {
    /// `(n, telemetry.record_id)` of every `order.placed` record received so far, in
    /// the order received, once at least `count` are in (waiting at most 10 s).
    fn orders(&self, count: usize) -> Vec<(u64, String)> {
        let started = Instant::now();
        loop {
            let mut out = Vec::new();
            for request in self.requests.lock().unwrap().iter() {
                if request["signal"] != "logs" {
                    continue;
                }
                for rl in request["request"]["resourceLogs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                        for record in sl["logRecords"].as_array().into_iter().flatten() {
                            if record["eventName"] != "order.placed" {
                                continue;
                            }
                            let n = attribute(record, "n")["intValue"]
                                .as_str()
                                .and_then(|v| v.parse().ok())
                                .expect("an integer n");
                            let id = attribute(record, "telemetry.record_id")["stringValue"]
                                .as_str()
                                .expect("a record id")
                                .to_owned();
                            out.push((n, id));
                        }
                    }
                }
            }
            if out.len() >= count || started.elapsed() > Duration::from_secs(10) {
                return out;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn attribute<'a>(holder: &'a Value, key: &str) -> &'a Value {
    holder["attributes"]
        .as_array()
        .and_then(|attrs| attrs.iter().find(|kv| kv["key"] == key))
        .map_or(&Value::Null, |kv| &kv["value"])
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "seg"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------
// The tests

#[test]
fn events_of_a_run_during_an_outage_arrive_exactly_once_with_the_next_run() {
    let tmp = TempDir::new("outage");
    let dir = tmp.spool();

    // The collector is down for the whole first run.
    let (first, stderr) = run_app(&down_endpoint(), &dir, 0, 1200);
    assert_eq!(
        (
            first["exported"],
            first["spooled"],
            first["pending"],
            first["undelivered"]
        ),
        (0, 1200, 1200, 0),
        "{stderr}"
    );
    assert!(
        stderr.contains("records are kept in the spool at")
            && stderr.contains("1200 records kept in the spool"),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let files = segments(&dir);
        assert!(!files.is_empty());
        assert!(files.iter().all(|f| mode(f) == 0o600));
    }

    // The collector is up; the app runs again with a few events of its own.
    let Some(receiver) = receiver() else { return };
    let (second, stderr) = run_app(&receiver.endpoint(), &dir, 1200, 10);
    assert_eq!(
        (
            second["exported"],
            second["spooled"],
            second["pending"],
            second["torn"]
        ),
        (1210, 10, 0, 0),
        "{stderr}"
    );
    assert!(
        stderr.contains("holds 1200 records from an earlier run"),
        "{stderr}"
    );

    let orders = receiver.orders(1210);
    let ns: Vec<u64> = orders.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ns,
        (0..1210).collect::<Vec<_>>(),
        "every event exactly once, the earlier run's first"
    );
    let ids: BTreeSet<&str> = orders.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 1210, "one id per record");

    // A third run has nothing left to send.
    let (third, _) = run_app(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((third["exported"], third["pending"]), (0, 0));
    assert_eq!(receiver.orders(1211).len(), 1210, "nothing sent twice");
}

#[test]
fn after_a_kill_and_a_torn_tail_every_spooled_event_arrives_at_least_once() {
    let tmp = TempDir::new("kill");
    let dir = tmp.spool();

    let mut app = Process(
        app_command("hold", &down_endpoint(), &dir, 0, 700)
            .spawn()
            .expect("start the app"),
    );
    let stdout = app.0.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("READY").map(|(_, rest)| rest.to_owned()))
        .unwrap_or_default();
    assert_eq!(ready, " spooled=700");
    // SIGKILL: no shutdown, no flush.
    app.0.kill().expect("kill the app");
    let _ = app.0.wait();

    // Power lost in the middle of a write: garbage after the last whole entry.
    let last = segments(&dir).pop().expect("a segment");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .and_then(|mut f| f.write_all(&[0x5a; 37]))
        .expect("tear the last segment");

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_app(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!(
        (next["exported"], next["pending"], next["torn"]),
        (700, 0, 37),
        "{stderr}"
    );
    assert!(
        stderr.contains("had 37 bytes of torn or corrupt entries"),
        "{stderr}"
    );

    let orders = receiver.orders(700);
    assert!(
        orders.len() >= 700,
        "at least once: {} records",
        orders.len()
    );
    let mut by_id: HashMap<&str, u64> = HashMap::new();
    for (n, id) in &orders {
        assert_eq!(*by_id.entry(id).or_insert(*n), *n, "one id, one event");
    }
    let emitted: BTreeSet<u64> = by_id.values().copied().collect();
    assert_eq!(by_id.len(), 700, "deduplicated by id");
    assert_eq!(emitted, (0..700).collect(), "exactly the events emitted");
}

#[cfg_attr(
    not(unix),
    ignore = "the spool's lock is flock, Unix only: elsewhere two processes must not share a directory (docs/OPERATIONS.md)"
)]
#[test]
fn a_second_process_on_the_same_directory_keeps_its_records_in_memory() {
    let tmp = TempDir::new("shared");
    let dir = tmp.spool();
    let mut holder = Process(
        app_command("hold", &down_endpoint(), &dir, 0, 5)
            .spawn()
            .expect("start the app"),
    );
    let stdout = holder.0.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("READY"));
    assert!(ready.is_some(), "the first app did not start");

    let mut second = app_command("exit", &down_endpoint(), &dir, 100, 3);
    second.env("OTEL_EXPORTER_OTLP_TIMEOUT", "300");
    let out = second.output().expect("run the second app");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another process; this one keeps its records in memory only"),
        "{stderr}"
    );
    assert!(
        stdout.contains("STATS exported=0 spooled=0 pending=0 undelivered=3"),
        "{stdout}"
    );
    drop(holder);
    // The first app's spool is intact.
    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_app(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((next["exported"], next["torn"]), (5, 0), "{stderr}");
}

/// One entry of a segment, as the layout in `src/otlp/spool.rs` frames it: the 8-byte
/// segment header, then per entry `len: u32 LE | crc32: u32 LE | payload (len bytes)`,
/// the payload starting with `records: u32 LE | encoding: u8`.
struct Frame {
    segment: PathBuf,
    /// Where the frame starts in its segment.
    offset: usize,
    /// The whole frame, header included.
    len: usize,
    records: u64,
}

/// Every whole frame of the spool's segments, oldest first.
fn frames(dir: &Path) -> Vec<Frame> {
    let mut out = Vec::new();
    for segment in segments(dir) {
        let bytes = std::fs::read(&segment).expect("read a segment");
        assert_eq!(&bytes[..8], b"TLMSPL1\n", "{}", segment.display());
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let records = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            out.push(Frame {
                segment: segment.clone(),
                offset: at,
                len: 8 + len,
                records: records.into(),
            });
            at += 8 + len;
        }
        assert_eq!(at, bytes.len(), "whole frames in {}", segment.display());
    }
    out
}

/// The name of every log record received so far (waiting, at most 10 s, until there
/// are at least `count`).
fn record_names(receiver: &Receiver, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let mut names = Vec::new();
        for request in receiver.requests.lock().unwrap().iter() {
            for rl in request["request"]["resourceLogs"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                    for record in sl["logRecords"].as_array().into_iter().flatten() {
                        names.push(record["eventName"].as_str().unwrap_or("").to_owned());
                    }
                }
            }
        }
        if names.len() >= count || started.elapsed() > Duration::from_secs(10) {
            return names;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A byte of a spooled entry changed on disk, its length intact (bit rot, a bad
/// sector): the checksum catches it, so the entry is cut off, counted and reported as
/// a torn one, and never sent; the entries before it arrive.
#[test]
fn a_spooled_entry_changed_on_disk_is_never_sent_and_is_counted() {
    let tmp = TempDir::new("corrupt");
    let dir = tmp.spool();
    let (first, stderr) = run_app(&down_endpoint(), &dir, 0, 600);
    assert_eq!((first["spooled"], first["pending"]), (600, 600), "{stderr}");

    let frames = frames(&dir);
    assert!(frames.len() >= 2, "600 records make two requests at least");
    let last = frames.last().unwrap();
    // One letter of a record's name in the last entry: the request is still a valid
    // one, with another event name in it.
    let mut bytes = std::fs::read(&last.segment).unwrap();
    let entry = last.offset..last.offset + last.len;
    let at = bytes[entry.clone()]
        .windows(12)
        .rposition(|w| w == b"order.placed")
        .map(|i| entry.start + i)
        .expect("an event name in the entry's request");
    bytes[at] = b'O';
    std::fs::write(&last.segment, &bytes).unwrap();
    let kept = 600 - last.records;

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_app(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!(
        (
            next["exported"],
            next["pending"],
            next["rejected"],
            next["torn"]
        ),
        (kept, 0, 0, last.len as u64),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "had {} bytes of torn or corrupt entries",
            last.len
        )),
        "{stderr}"
    );
    let names = record_names(&receiver, kept as usize);
    assert_eq!(names.len() as u64, kept, "only the whole entries are sent");
    assert!(
        names.iter().all(|n| n == "order.placed"),
        "the changed entry reached the collector"
    );
    let ns: Vec<u64> = receiver
        .orders(kept as usize)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(ns, (0..kept).collect::<Vec<_>>());
}

/// An entry counts as spooled once it is on disk: each one written is synced
/// (`fdatasync`), so a power loss after it cannot take it back. Under strace, a run
/// that spools N entries syncs its segment files at least N times.
#[cfg(target_os = "linux")]
#[test]
fn every_spooled_entry_is_synced_to_disk() {
    let Some(strace) = support::strace("the spool's sync check") else {
        return;
    };
    let tmp = TempDir::new("sync");
    let dir = tmp.spool();
    std::fs::create_dir_all(&tmp.0).unwrap();
    let log = tmp.0.join("strace.log");
    let app = app_command("exit", &down_endpoint(), &dir, 0, 3000);
    let mut traced = Command::new(strace);
    traced
        .args(["-f", "-qq", "-y", "-e", "signal=none", "-e"])
        .arg("trace=fdatasync,fsync")
        .arg("-o")
        .arg(&log)
        .arg("--")
        .arg(app.get_program())
        .args(app.get_args());
    for (key, value) in app.get_envs() {
        match value {
            Some(value) => traced.env(key, value),
            None => traced.env_remove(key),
        };
    }
    let out = traced.output().expect("run strace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("STATS exported=0 spooled=3000 pending=3000 "),
        "{stdout}\n{stderr}"
    );
    let entries = frames(&dir).len();
    assert!(entries >= 6, "3000 records make six requests at least");
    let calls = std::fs::read_to_string(&log).unwrap();
    // "<pid> fdatasync(5</tmp/.../00000000000000000001.seg>) = 0"
    let segment_syncs = calls
        .lines()
        .filter(|l| l.contains("sync(") && l.contains(".seg>)"))
        .count();
    assert!(
        segment_syncs >= entries,
        "{entries} entries spooled, {segment_syncs} syncs of a segment:\n{calls}"
    );
}

// ---------------------------------------------------------------------------------
// A hostile or damaged directory

/// The `n` of every `order.placed` record received, sorted (waiting, at most 10 s,
/// until there are at least `count`).
fn received_ns(receiver: &Receiver, count: usize) -> Vec<u64> {
    let mut ns: Vec<u64> = receiver.orders(count).iter().map(|(n, _)| *n).collect();
    ns.sort_unstable();
    ns
}

/// Creates the spool directory as the app would (mode 0700), for a test that puts
/// files in it before the first run.
fn private_dir(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the spool directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// Four bytes changed in the middle of the second of ten entries (bit rot, a bad
/// sector, another program): that entry is skipped and counted, and every whole entry
/// after it is still delivered, in order; the message says what happened and how the
/// spool went on, and the damage is counted once.
#[test]
fn one_damaged_entry_loses_only_itself() {
    let tmp = TempDir::new("damage");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 5400);
    assert_eq!(first["pending"], 5400, "{stderr}");

    let frames = frames(&dir);
    assert!(frames.len() >= 10, "{} entries", frames.len());
    let damaged = &frames[1];
    let mut bytes = std::fs::read(&damaged.segment).unwrap();
    let middle = damaged.offset + damaged.len / 2;
    for byte in &mut bytes[middle..middle + 4] {
        *byte ^= 0xa5;
    }
    std::fs::write(&damaged.segment, &bytes).unwrap();
    let lost = frames[0].records..frames[0].records + damaged.records;
    let kept: Vec<u64> = (0..5400).filter(|n| !lost.contains(n)).collect();

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!(
        (next["exported"], next["pending"], next["torn"]),
        (kept.len() as u64, 0, damaged.len as u64),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "had {} bytes of torn or corrupt entries",
            damaged.len
        )) && stderr.contains("in 1 place")
            && stderr.contains("reading went on at the next whole entry")
            && stderr.contains(&format!("{} later entries were kept", frames.len() - 2))
            && stderr.contains("changed on disk"),
        "{stderr}"
    );
    assert_eq!(received_ns(&receiver, kept.len()), kept);

    // Counted once: the next run finds nothing left and nothing damaged.
    let (third, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((third["exported"], third["torn"]), (0, 0), "{stderr}");
    assert!(!stderr.contains("torn or corrupt"), "{stderr}");
}

/// The segments deleted by hand, the cursor kept (the docs say to delete both): the
/// cursor of the old segments is discarded with a message, and the next outage's
/// records are delivered by the run after it, not deleted unsent.
#[test]
fn a_cursor_left_without_its_segments_does_not_delete_the_next_outage() {
    let tmp = TempDir::new("cursor-left");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 200);
    assert_eq!(first["pending"], 200, "{stderr}");
    let Some(receiver) = receiver() else { return };
    let (second, stderr) = run_bounded(&receiver.endpoint(), &dir, 200, 10);
    assert_eq!(
        (second["exported"], second["pending"]),
        (210, 0),
        "{stderr}"
    );
    assert!(dir.join("cursor").exists());
    for segment in segments(&dir) {
        std::fs::remove_file(segment).unwrap();
    }

    let (outage, outage_stderr) = run_bounded(&down_endpoint(), &dir, 1000, 103);
    assert_eq!(outage["pending"], 103, "{outage_stderr}");
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((next["exported"], next["pending"]), (103, 0), "{stderr}");
    let expected: Vec<u64> = (0..210).chain(1000..1103).collect();
    assert_eq!(received_ns(&receiver, 313), expected);
    assert!(
        outage_stderr.contains("its cursor names segment")
            && outage_stderr.contains("which is gone; the cursor is discarded"),
        "the stale cursor is reported: {outage_stderr}"
    );
}

/// The same without touching a file: a run that sends everything an earlier run left
/// (and spools nothing itself), then an outage, then a run that delivers it.
#[test]
fn an_outage_after_a_drained_spool_is_delivered_by_the_next_run() {
    let tmp = TempDir::new("drained");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 50);
    assert_eq!(first["pending"], 50, "{stderr}");
    let Some(receiver) = receiver() else { return };
    let (drain, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((drain["exported"], drain["pending"]), (50, 0), "{stderr}");

    let (outage, stderr) = run_bounded(&down_endpoint(), &dir, 1000, 103);
    assert_eq!(outage["pending"], 103, "{stderr}");
    assert!(!stderr.contains("cursor"), "nothing to say: {stderr}");
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((next["exported"], next["pending"]), (103, 0), "{stderr}");
    let expected: Vec<u64> = (0..50).chain(1000..1103).collect();
    assert_eq!(received_ns(&receiver, 153), expected);
}

/// A symbolic link planted as the lock or the cursor: the file it points to is
/// neither truncated nor written, the link is left alone, the run says why it keeps
/// its records in memory, and what was spooled before stays for a later run.
#[cfg(unix)]
#[test]
fn a_link_planted_as_lock_or_cursor_is_not_followed() {
    let tmp = TempDir::new("links");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 5);
    assert_eq!(first["pending"], 5, "{stderr}");
    let Some(receiver) = receiver() else { return };

    for (name, first) in [("lock", 100), ("cursor", 200)] {
        let victim = tmp.0.join(format!("precious-{name}"));
        let precious = format!("the {name} link points here; nothing may change it\n").repeat(3);
        std::fs::write(&victim, &precious).unwrap();
        let planted = dir.join(name);
        std::fs::remove_file(&planted).unwrap();
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        let (run, stderr) = run_bounded(&receiver.endpoint(), &dir, first, 3);
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            precious,
            "the {name} link was followed: {stderr}"
        );
        assert!(
            std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the {name} link is left alone"
        );
        assert!(
            stderr.contains(&format!("{name} is a symbolic link"))
                && stderr.contains("records are kept in memory only"),
            "{stderr}"
        );
        assert_eq!((run["exported"], run["spooled"]), (3, 0), "{stderr}");
        std::fs::remove_file(&planted).unwrap();
    }

    let (last, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!(
        last["exported"], 5,
        "what was spooled is still there: {stderr}"
    );
    let expected: Vec<u64> = (0..5).chain(100..103).chain(200..203).collect();
    assert_eq!(received_ns(&receiver, 11), expected);
}

/// A spool directory that group or others may write to is refused, named with its
/// variable, its path and its mode, and left as it is; records stay in memory.
#[cfg(unix)]
#[test]
fn a_spool_directory_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("mode");
    let dir = tmp.spool();
    for mode in [0o777, 0o770, 0o702] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let (run, stderr) = run_bounded(&down_endpoint(), &dir, 0, 3);
        assert!(
            stderr.contains("TELEMETRY_SPOOL_DIR")
                && stderr.contains(&dir.display().to_string())
                && stderr.contains(&format!("mode {mode:04o}"))
                && stderr.contains("records are kept in memory only"),
            "{stderr}"
        );
        assert_eq!((run["spooled"], run["undelivered"]), (0, 3), "{stderr}");
        let mode_now = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode_now, mode, "the directory is left as it is");
        assert!(!dir.join("lock").exists(), "nothing is written in it");
    }
}

/// A FIFO named like a segment: the spool does not open it for reading (which would
/// wait for a writer forever), says so once, leaves it alone, and delivers the rest.
#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_segment_does_not_stall_delivery() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = TempDir::new("fifo");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 50);
    assert_eq!(first["pending"], 50, "{stderr}");
    let fifo = dir.join("00000000000000000002.seg");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 100, 10);
    assert_eq!((next["exported"], next["pending"]), (60, 0), "{stderr}");
    assert!(
        stderr.contains("00000000000000000002.seg is a FIFO") && stderr.contains("left alone"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("is a FIFO").count(),
        1,
        "said once: {stderr}"
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let expected: Vec<u64> = (0..50).chain(100..110).collect();
    assert_eq!(received_ns(&receiver, 60), expected);
}

/// A 400 MB (sparse) file and a link to `/dev/zero`, named like segments: neither is
/// read whole (the app's peak memory stays far below the file's size), both are
/// reported and left alone, and the spool's real entries are delivered.
#[cfg(target_os = "linux")]
#[test]
fn a_huge_or_endless_segment_is_not_read_whole() {
    const HUGE: u64 = 400 * 1024 * 1024;
    let tmp = TempDir::new("huge");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 20);
    assert_eq!(first["pending"], 20, "{stderr}");
    let huge = dir.join("00000000000000000002.seg");
    let mut file = std::fs::File::create(&huge).unwrap();
    file.write_all(b"TLMSPL1\n").unwrap();
    file.set_len(HUGE).unwrap();
    drop(file);
    let zero = dir.join("00000000000000000003.seg");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 100, 5);
    assert_eq!((next["exported"], next["pending"]), (25, 0), "{stderr}");
    assert!(
        next["peak_kb"] < 200 * 1024,
        "peak memory {} KiB: a segment was read whole\n{stderr}",
        next["peak_kb"]
    );
    assert!(
        stderr.contains("00000000000000000002.seg holds 419430400 bytes")
            && stderr.contains("00000000000000000003.seg is a symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&huge).unwrap().len(), HUGE, "left alone");
    assert!(std::fs::symlink_metadata(&zero)
        .unwrap()
        .file_type()
        .is_symlink());
    let expected: Vec<u64> = (0..20).chain(100..105).collect();
    assert_eq!(received_ns(&receiver, 25), expected);
}

/// Names at the end of the number range (or past it): no overflow, no panic; they
/// are reported and left alone, and the spool works.
#[test]
fn a_segment_named_at_the_end_of_the_number_range_does_not_panic() {
    let tmp = TempDir::new("range");
    let dir = tmp.spool();
    private_dir(&dir);
    let names = ["18446744073709551614.seg", "99999999999999999999.seg"];
    for name in names {
        std::fs::write(dir.join(name), b"TLMSPL1\n").unwrap();
    }
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 10);
    assert_eq!((first["spooled"], first["pending"]), (10, 10), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for name in names {
        assert!(
            stderr.contains(&format!("{name} is not a segment number this spool uses")),
            "{stderr}"
        );
        assert!(dir.join(name).exists(), "left alone");
    }

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((next["exported"], next["pending"]), (10, 0), "{stderr}");
    assert_eq!(received_ns(&receiver, 10), (0..10).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------
// The cost of the spool

/// A collector on loopback (keep-alive) that answers the n-th log request with
/// `answers[n]` (status, extra header lines; the last repeats) and every metrics push
/// with 200; it notes when each log request arrived.
fn scripted_collector(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Instant>>>) {
    use std::net::TcpStream;
    fn serve(stream: TcpStream, answers: &[(u16, &str)], seen: &Mutex<Vec<Instant>>) {
        let mut reader = BufReader::new(stream);
        while let Some((head, _body)) = otlp_receiver::read_request(&mut reader) {
            let (status, extra) = if head.starts_with("POST /v1/logs ") {
                let mut seen = seen.lock().unwrap();
                seen.push(Instant::now());
                answers[(seen.len() - 1).min(answers.len() - 1)]
            } else {
                (200, "")
            };
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}\r\n");
            if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let answers = Arc::new(answers);
    // Lives until the test process ends; it only ever serves loopback.
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (answers, log) = (Arc::clone(&answers), Arc::clone(&log));
            thread::spawn(move || serve(stream, &answers, &log));
        }
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

fn accepting_collector() -> String {
    scripted_collector(vec![(200, "")]).0
}

fn wait_for(
    what: &str,
    exporter: &OtlpExporter,
    done: impl Fn(&tracing_telemetry::OtlpStats) -> bool,
) {
    let started = Instant::now();
    while !done(&exporter.stats()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            exporter.stats()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn spooled_requests_follow_the_retry_rules() {
    let tmp = TempDir::new("retry");
    let (endpoint, seen) =
        scripted_collector(vec![(503, "retry-after: 1\r\n"), (400, ""), (200, "")]);
    let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .expect("config")
        .with_spool_dir(tmp.spool());
    let exporter = Arc::new(OtlpExporter::start(config).expect("start"));
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter()),
    );
    let emit = |count: u64| {
        tracing::dispatcher::with_default(&dispatch, || {
            for n in 0..count {
                tracing_telemetry::track_event!("order.placed", n = n);
            }
        })
    };
    emit(2);
    // 503 with Retry-After: 1, then 400: refused for good, counted, not retried.
    wait_for("the 400", &exporter, |s| s.rejected() == 2);
    emit(1);
    wait_for("the 200", &exporter, |s| s.exported() == 1);
    let stats = exporter.stats();
    assert_eq!(
        (stats.spooled(), stats.spool_pending(), stats.retries()),
        (3, 0, 1),
        "{stats:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "the 400 is not retried");
    assert!(
        seen[1] - seen[0] >= Duration::from_secs(1),
        "Retry-After is honoured: {:?}",
        seen[1] - seen[0]
    );
    exporter.shutdown();
}

/// A measurement, not a check: the wall time from the first of 200 batches of 512
/// events to the collector's acceptance of the last, with and without the spool
/// (each batch written and synced to disk before it is sent). docs/PERFORMANCE.md
/// quotes it.
#[test]
#[ignore = "a measurement: cargo test --release --features otlp --test otlp_spool -- --ignored --nocapture"]
fn cost_per_batch_with_and_without_the_spool() {
    const BATCHES: u64 = 200;
    let endpoint = accepting_collector();
    let tmp = TempDir::new("cost");
    let mut per_batch = [Duration::ZERO; 2];
    for round in 0..3 {
        for (i, spool) in [false, true].into_iter().enumerate() {
            let mut config =
                OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
                    .expect("config")
                    .with_queue_bytes(256 * 1024 * 1024)
                    .with_timeout(Duration::from_secs(60));
            if spool {
                config = config.with_spool_dir(tmp.spool());
            }
            let exporter = Arc::new(OtlpExporter::start(config).expect("start"));
            let subscriber = tracing_subscriber::registry()
                .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
            let started = Instant::now();
            tracing::subscriber::with_default(subscriber, || {
                for _ in 0..BATCHES * 512 {
                    tracing_telemetry::track_event!(
                        "order.placed",
                        plan = "pro",
                        region = "eu-west-1",
                        seats = 3
                    );
                }
            });
            // Polled rather than flushed: the count says when the last was accepted.
            while exporter.stats().exported() < BATCHES * 512
                && started.elapsed() < Duration::from_secs(120)
            {
                thread::sleep(Duration::from_micros(200));
            }
            let elapsed = started.elapsed();
            let stats = exporter.stats();
            assert_eq!(stats.exported(), BATCHES * 512, "{stats:?}");
            exporter.shutdown();
            if round > 0 {
                // The first round warms up the disk, the connection and the allocator.
                per_batch[i] += elapsed / (BATCHES as u32 * 2);
            }
        }
    }
    println!(
        "per batch of 512 events, emitted to accepted: {:?} without the spool, {:?} with it (x{:.2})",
        per_batch[0],
        per_batch[1],
        per_batch[1].as_secs_f64() / per_batch[0].as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------
// What the spool must never delete

/// A file named like a segment that the spool refuses to read (here one larger than
/// any segment it writes; a file its user may not read is refused the same way, but
/// these tests may run as root, which reads anything) is left alone however far the
/// cursor moves past it: three runs deliver and move the cursor to a later segment,
/// and the file is still there, as it was, after each, and is never counted as sent.
#[cfg(unix)]
#[test]
fn a_refused_segment_is_never_deleted() {
    const BIG: u64 = 100 * 1024 * 1024;
    let tmp = TempDir::new("refused-kept");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 20);
    assert_eq!(first["pending"], 20, "{stderr}");
    let big = dir.join("00000000000000000002.seg");
    let mut file = std::fs::File::create(&big).unwrap();
    file.write_all(b"TLMSPL1\n").unwrap();
    // Sparse: no disk is used for it.
    file.set_len(BIG).unwrap();
    drop(file);

    let Some(receiver) = receiver() else { return };
    let mut expected: Vec<u64> = (0..20).collect();
    for (round, first) in [100, 200, 300].into_iter().enumerate() {
        let (run, stderr) = run_bounded(&receiver.endpoint(), &dir, first, 5);
        let sent = if round == 0 { 25 } else { 5 };
        assert_eq!((run["exported"], run["pending"]), (sent, 0), "{stderr}");
        assert!(
            std::fs::symlink_metadata(&big).is_ok_and(|m| m.is_file() && m.len() == BIG),
            "run {} deleted or changed the refused segment: {stderr}",
            round + 1
        );
        assert!(
            stderr.contains("00000000000000000002.seg holds 104857600 bytes")
                && stderr.contains("left alone"),
            "run {}: {stderr}",
            round + 1
        );
        expected.extend(first..first + 5);
    }
    assert_eq!(received_ns(&receiver, expected.len()), expected);
}

/// An auth proxy in front of the collector (or a collector that moved) answering 302:
/// a spooled request is not lost to it. A run that gets only redirects keeps every
/// record on disk (not counted as undelivered), and the next run delivers them all.
#[test]
fn a_redirect_keeps_spooled_records_on_disk() {
    let tmp = TempDir::new("redirect-kept");
    let dir = tmp.spool();
    let (first, stderr) = run_bounded(&down_endpoint(), &dir, 0, 600);
    assert_eq!(first["pending"], 600, "{stderr}");
    let entries = frames(&dir).len();
    assert!(entries >= 2, "{entries} entries");

    let (proxy, seen) = scripted_collector(vec![(302, "location: http://127.0.0.1:9/login\r\n")]);
    let (redirected, stderr) = run_bounded(&proxy, &dir, 0, 0);
    assert_eq!(
        (
            redirected["exported"],
            redirected["pending"],
            redirected["undelivered"]
        ),
        (0, 600, 0),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 302 redirect"), "{stderr}");
    assert!(!seen.lock().unwrap().is_empty(), "the proxy was asked");
    assert_eq!(frames(&dir).len(), entries, "every entry is still on disk");

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!((next["exported"], next["pending"]), (600, 0), "{stderr}");
    assert_eq!(received_ns(&receiver, 600), (0..600).collect::<Vec<_>>());
}

/// A redirect while the app runs is retried like a transient failure, with backoff
/// (not the next request at once), and once the collector answers 200 every spooled
/// record is delivered; none is counted as undelivered.
#[test]
fn a_redirected_spooled_request_is_retried_with_backoff() {
    let tmp = TempDir::new("redirect-retry");
    let redirect = (302, "location: http://127.0.0.1:9/login\r\n");
    let (endpoint, seen) = scripted_collector(vec![redirect, redirect, redirect, (200, "")]);
    let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .expect("config")
        .with_spool_dir(tmp.spool());
    let exporter = Arc::new(OtlpExporter::start(config).expect("start"));
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter()),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for n in 0..3 {
            tracing_telemetry::track_event!("order.placed", n = n);
        }
    });
    wait_for("delivery after the redirects", &exporter, |s| {
        s.exported() == 3
    });
    let stats = exporter.stats();
    assert_eq!(
        (stats.undelivered(), stats.spool_pending(), stats.retries()),
        (0, 0, 3),
        "{stats:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "three redirects, then the 200");
    let gaps: Vec<Duration> = seen.windows(2).map(|pair| pair[1] - pair[0]).collect();
    println!("between the tries of a redirected spooled request: {gaps:?}");
    for gap in gaps {
        // The first backoff is drawn from 125..250 ms.
        assert!(
            gap >= Duration::from_millis(100),
            "retried without backoff: {gap:?}"
        );
    }
    exporter.shutdown();
}

/// A spool frame that checks out (`len | crc32 | records | encoding | body`, see
/// [`Frame`]) and is valid UTF-8, so that a record attribute can carry it: its body is
/// varied until the checksum's bytes are ASCII.
fn forged_frame(records: u32) -> Vec<u8> {
    for attempt in 0u32.. {
        let body = format!("forged request {attempt}");
        let mut payload = records.to_le_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(body.as_bytes());
        let len = (payload.len() as u32).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len);
        hasher.update(&payload);
        let crc = hasher.finalize().to_le_bytes();
        let mut frame = len.to_vec();
        frame.extend_from_slice(&crc);
        frame.extend_from_slice(&payload);
        if frame.is_ascii() {
            return frame;
        }
    }
    unreachable!("one in sixteen checksums is ASCII")
}

/// A record attribute whose value is a whole spool frame (anyone who can put text in
/// a record can do this; bodies are not compressed by default), in an entry that is
/// then damaged on disk: the forged frame is never taken for an entry (it would reach
/// the collector as a request of its own, and be rejected), and the entries after the
/// damaged one are delivered.
#[test]
fn a_frame_forged_in_a_record_is_not_sent_when_its_entry_is_damaged() {
    let tmp = TempDir::new("forged");
    let dir = tmp.spool();
    let forged = forged_frame(7);
    let note: String = forged.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = app_command("exit", &down_endpoint(), &dir, 0, 1200);
    cmd.env("OTEL_EXPORTER_OTLP_TIMEOUT", "30000")
        .env("SPOOL_TEST_NOTE", &note)
        .env("SPOOL_TEST_NOTE_AT", "600");
    let (first, stderr) = run_app_within(cmd, BOUND);
    assert_eq!(first["pending"], 1200, "{stderr}");

    let frames = frames(&dir);
    let holds = |f: &Frame| {
        let bytes = std::fs::read(&f.segment).unwrap();
        bytes[f.offset..f.offset + f.len]
            .windows(forged.len())
            .position(|w| w == forged.as_slice())
    };
    let carrier = frames
        .iter()
        .position(|f| holds(f).is_some())
        .expect("the forged frame is in an entry, as it was given");
    assert!(
        carrier + 1 < frames.len(),
        "entries after the carrier: {carrier} of {}",
        frames.len()
    );
    // One byte of the carrier's body before the forged frame; its length intact.
    let damaged = &frames[carrier];
    let mut bytes = std::fs::read(&damaged.segment).unwrap();
    bytes[damaged.offset + 8 + 5 + holds(damaged).unwrap() / 2] ^= 0x01;
    std::fs::write(&damaged.segment, &bytes).unwrap();
    let before: u64 = frames[..carrier].iter().map(|f| f.records).sum();
    let lost = before..before + damaged.records;
    let kept: Vec<u64> = (0..1200).filter(|n| !lost.contains(n)).collect();

    let Some(receiver) = receiver() else { return };
    let (next, stderr) = run_bounded(&receiver.endpoint(), &dir, 0, 0);
    assert_eq!(
        (
            next["exported"],
            next["rejected"],
            next["pending"],
            next["torn"]
        ),
        (kept.len() as u64, 0, 0, damaged.len as u64),
        "{stderr}"
    );
    assert_eq!(received_ns(&receiver, kept.len()), kept);
}
