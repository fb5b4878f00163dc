//! A load generator: emits many records from several threads through the exporter
//! that the `TELEMETRY_*` variables select, then prints what the exporter did.
//!
//! ```text
//! TELEMETRY_ENABLED=true TELEMETRY_EXPORTER=file TELEMETRY_FILE=/tmp/t.jsonl \
//!     cargo run --release --example load -- --threads 8 --records 100000
//! ```
//!
//! Each record is a metric named `load.record` with tags `thread` and `seq`, so a
//! reader can check that every record arrived exactly once. `--per-destination` also
//! prints each destination's counts (`destination file: 2000 written, ...`) once
//! everything queued is written.

use std::io::Write;
use std::process::ExitCode;
use std::thread;

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("{name} needs a number"))?;
            value.parse().map_err(|_| {
                format!("invalid value {value:?} for {name} (expected a whole number)")
            })
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (threads, records) = match (arg(&args, "--threads", 4), arg(&args, "--records", 10_000)) {
        (Ok(t), Ok(r)) => (t, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let guard = match tracing_telemetry::try_init() {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let thread = t.to_string();
                for seq in 0..records {
                    tracing_telemetry::track_metric(
                        "load.record",
                        seq as f64,
                        &[("thread", &thread), ("seq", &seq.to_string())],
                    );
                }
            });
        }
    });

    let stats = guard.stats();
    // With `--per-destination`: each destination's counts once what is queued is
    // written, never added up.
    let each = if args.iter().any(|a| a == "--per-destination") {
        guard.flush();
        guard.destination_stats()
    } else {
        Vec::new()
    };
    drop(guard); // writes everything still queued
                 // Stdout may be the telemetry stream, or a closed pipe: report on stderr, and never
                 // panic over it.
    let _ = writeln!(
        std::io::stderr(),
        "emitted {} records from {threads} threads; before shutdown: {} written, {} dropped, {} failed",
        threads * records,
        stats.written(),
        stats.dropped(),
        stats.failed()
    );
    for destination in each {
        let stats = destination.stats();
        let _ = writeln!(
            std::io::stderr(),
            "destination {}: {} written, {} dropped, {} failed",
            destination.exporter().as_str(),
            stats.written(),
            stats.dropped(),
            stats.failed()
        );
    }
    ExitCode::SUCCESS
}
