//! The runtime switch under contention. Its own process: the subscriber is the global
//! one, so that every thread sees the same callsites and the same interest cache.

#![cfg(feature = "subscriber")]

use std::sync::{Arc, Barrier};
use std::thread;
#[cfg(unix)]
use std::time::Duration;

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use tracing_subscriber::prelude::*;

use tracing_telemetry::{MemorySink, TelemetryFilter, TelemetryLayer};

const ROUNDS: usize = 20_000;

#[test]
fn concurrent_switches_leave_the_flag_and_the_callsites_in_agreement() {
    let filter = TelemetryFilter::new(false);
    let handle = filter.handle();
    let sink = MemorySink::new();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(TelemetryLayer::new(sink.clone()).with_filter(filter)),
    )
    .expect("this test binary installs the only global subscriber");

    // Two threads switch at the same moment, in opposite directions, every round; the
    // main thread then checks that what `is_enabled` says is what the callsites do.
    let start = Arc::new(Barrier::new(3));
    let done = Arc::new(Barrier::new(3));
    let switchers: Vec<_> = [true, false]
        .into_iter()
        .map(|on| {
            let (handle, start, done) = (handle.clone(), Arc::clone(&start), Arc::clone(&done));
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    start.wait();
                    // Alternate which direction each thread takes, so both orders race.
                    if on == (round % 2 == 0) {
                        handle.enable();
                    } else {
                        handle.disable();
                    }
                    done.wait();
                }
            })
        })
        .collect();

    let mut disagreements = Vec::new();
    for round in 0..ROUNDS {
        start.wait();
        done.wait();
        sink.clear();
        tracing_telemetry::track_event("function.form", &[]);
        tracing_telemetry::track_event!("macro.form");
        let expected: &[&str] = if handle.is_enabled() {
            &["function.form", "macro.form"]
        } else {
            &[]
        };
        if sink.names() != expected {
            disagreements.push((round, handle.is_enabled(), sink.names()));
        }
    }
    for switcher in switchers {
        switcher.join().unwrap();
    }
    assert_eq!(
        disagreements,
        Vec::<(usize, bool, Vec<String>)>::new(),
        "rounds where is_enabled() disagreed with what was recorded"
    );
}

/// `examples/toggle.rs`, the safe pattern for switching on a signal: a thread waits for
/// the signal and switches; the handler itself does nothing unsafe.
#[cfg(unix)]
#[test]
fn the_toggle_example_switches_on_sigusr1_and_off_on_sigusr2() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = support::example("toggle")
        .args(["--ticks", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first log line says it is listening for the signals.
    let mut logs = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    logs.read_line(&mut first).unwrap();
    assert!(first.contains("ticking"), "{first}");
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    };
    thread::sleep(Duration::from_millis(450));
    signal("-USR1");
    thread::sleep(Duration::from_millis(650));
    signal("-USR2");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut logs, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let ticks: Vec<u64> = support::json_lines(&stderr)
        .iter()
        .map(|record| record["value"].as_f64().unwrap() as u64)
        .collect();
    // Off for the first ticks, on for about six, off for the rest: the records are one
    // run of consecutive ticks, neither the first nor the last.
    assert!(!ticks.is_empty(), "{stderr}");
    assert!(ticks[0] > 0, "{ticks:?}");
    assert!(*ticks.last().unwrap() < 19, "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    assert!(rest.contains("telemetry switched enabled=true"), "{rest}");
    assert!(rest.contains("telemetry switched enabled=false"), "{rest}");
}
