//! Export throughput: records per second from 1 to N threads into a local file, for
//! the file exporter as `try_init` installs it, next to two baselines in the same run:
//!
//! - `reference`: what a few lines of hand-rolled code reach. Each thread formats the
//!   same JSON line (timestamp, kind, name, value, tag, file, line) into its own
//!   64 KiB buffer and appends the buffer to one shared file under a mutex.
//! - `appender`: what users would otherwise pick: `tracing_subscriber::fmt().json()`
//!   writing through `tracing_appender::non_blocking` in its lossless mode.
//!
//! Each measurement runs in a fresh process (this binary re-runs itself), so that no
//! global subscriber or page cache state carries over; each is repeated and the
//! median kept. The file exporter's line count is checked, and any drop is printed.
//!
//! ```text
//! cargo bench --bench pipeline                              # 1, 2, 4, 8 threads
//! PIPELINE_THREADS=1,2,8,16 PIPELINE_RECORDS=4000000 cargo bench --bench pipeline
//! ```

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const MODES: [&str; 3] = ["reference", "telemetry", "appender"];
const REPEAT: usize = 3;

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("a list of whole numbers"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let mode = &args[at + 1];
        let threads: u64 = args[at + 2].parse().unwrap();
        let per_thread: u64 = args[at + 3].parse().unwrap();
        let path = PathBuf::from(&args[at + 4]);
        let rate = child(mode, threads, per_thread, &path);
        println!("rate {rate}");
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and the like: nothing to list
    }

    let threads = env_list("PIPELINE_THREADS", "1,2,4,8");
    let total = env_list("PIPELINE_RECORDS", "2000000")[0];
    let dir = std::env::temp_dir().join(format!("telemetry-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "records per run: {total}, median of {REPEAT} runs; {} cores",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>7} {:>14} {:>14} {:>14} {:>12} {:>12}",
        "threads", "reference/s", "telemetry/s", "appender/s", "tel/ref", "tel/appender"
    );
    for &n in &threads {
        let per_thread = total / n;
        let mut medians = Vec::new();
        for mode in MODES {
            let mut rates: Vec<f64> = (0..REPEAT)
                .map(|run| {
                    let path = dir.join(format!("{mode}-{n}-{run}.jsonl"));
                    let out = Command::new(&args[0])
                        .args(["--child", mode, &n.to_string(), &per_thread.to_string()])
                        .arg(&path)
                        .env("TELEMETRY_ENABLED", "true")
                        .env("TELEMETRY_EXPORTER", "file")
                        .env("TELEMETRY_FILE", &path)
                        .output()
                        .expect("run the bench child");
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success(),
                        "{mode}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let _ = std::fs::remove_file(&path);
                    stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("rate "))
                        .and_then(|r| r.parse().ok())
                        .expect("the child prints its rate")
                })
                .collect();
            rates.sort_by(f64::total_cmp);
            medians.push(rates[REPEAT / 2]);
        }
        println!(
            "{n:>7} {:>14.0} {:>14.0} {:>14.0} {:>11.2}x {:>11.2}x",
            medians[0],
            medians[1],
            medians[2],
            medians[1] / medians[0],
            medians[1] / medians[2]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `threads` threads of `per_thread` records each; returns records per second,
/// from the first record until every record is in the file.
fn child(mode: &str, threads: u64, per_thread: u64, path: &Path) -> f64 {
    match mode {
        "telemetry" => {
            let guard = tracing_telemetry::try_init().expect("install telemetry");
            let elapsed = run(
                threads,
                per_thread,
                |i| {
                    tracing_telemetry::track_metric("queue.depth", i as f64, &[("queue", "emails")])
                },
                || guard.flush(),
            );
            let stats = guard.stats();
            drop(guard);
            let lines = count_lines(path);
            assert_eq!(
                (stats.dropped(), stats.failed(), lines),
                (0, 0, threads * per_thread),
                "every record written while the disk keeps up"
            );
            (threads * per_thread) as f64 / elapsed.as_secs_f64()
        }
        "appender" => {
            let file = append(path);
            let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            tracing_subscriber::fmt().json().with_writer(writer).init();
            let worker = Mutex::new(Some(worker));
            let elapsed = run(
                threads,
                per_thread,
                |i| tracing::info!(name = "queue.depth", value = i as f64, queue = "emails"),
                || drop(worker.lock().unwrap().take()),
            );
            let lines = count_lines(path);
            assert_eq!(
                lines,
                threads * per_thread,
                "lossless mode writes every line"
            );
            (threads * per_thread) as f64 / elapsed.as_secs_f64()
        }
        "reference" => {
            let file = Mutex::new(append(path));
            // The same line as the exporter's, service included.
            let service = tracing_telemetry::Config::from_env()
                .expect("the bench's configuration")
                .resource()
                .service_name()
                .to_owned();
            let elapsed = reference(threads, per_thread, &file, &service);
            assert_eq!(count_lines(path), threads * per_thread);
            (threads * per_thread) as f64 / elapsed.as_secs_f64()
        }
        other => panic!("unknown mode {other}"),
    }
    .max(0.0)
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn count_lines(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Each thread calls `emit(i)` for its records; then `finish` runs once all are
/// done (the flush that puts them in the file). Returns the time from the start until
/// `finish` returned.
fn run(
    threads: u64,
    per_thread: u64,
    emit: impl Fn(u64) + Sync,
    finish: impl FnOnce(),
) -> Duration {
    let start = Barrier::new(threads as usize + 1);
    let began = thread::scope(|s| {
        for _ in 0..threads {
            let (emit, start) = (&emit, &start);
            s.spawn(move || {
                start.wait();
                for i in 0..per_thread {
                    emit(i);
                }
            });
        }
        start.wait();
        Instant::now()
    });
    finish();
    began.elapsed()
}

/// The hand-rolled reference: a buffer per thread, one shared file under a mutex.
fn reference(threads: u64, per_thread: u64, file: &Mutex<File>, service: &str) -> Duration {
    const BUFFER: usize = 64 * 1024;
    let start = Barrier::new(threads as usize + 1);
    thread::scope(|s| {
        for _ in 0..threads {
            let start = &start;
            s.spawn(move || {
                let mut buf = Vec::with_capacity(BUFFER);
                start.wait();
                for i in 0..per_thread {
                    let _ = writeln!(
                        buf,
                        r#"{{"timestamp":"{}","service":"{service}","kind":"metric","name":"queue.depth","value":{:?},"tags":{{"queue":"emails"}},"file":"{}","line":{}}}"#,
                        humantime::format_rfc3339_micros(SystemTime::now()),
                        black_box(i as f64),
                        file!(),
                        line!()
                    );
                    if buf.len() > BUFFER - 512 {
                        file.lock().unwrap().write_all(&buf).unwrap();
                        buf.clear();
                    }
                }
                file.lock().unwrap().write_all(&buf).unwrap();
            });
        }
        start.wait();
        let began = Instant::now();
        (began, ())
    })
    .0
    .elapsed()
}
