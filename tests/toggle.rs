//! The runtime switch under contention. Its own process: the subscriber is the global
//! one, so that every thread sees the same callsites and the same interest cache.

#![cfg(feature = "subscriber")]

use std::sync::{Arc, Barrier};
use std::thread;

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

/// The toggle example, with the `otlp` and `prometheus` exporters when this test run
/// has them. Every test
/// here builds it with the same features: a build with others would overwrite the
/// binary under a test that is running it.
#[cfg(unix)]
fn toggle_example() -> std::path::PathBuf {
    let mut features = Vec::new();
    if cfg!(feature = "otlp") {
        features.push("otlp");
    }
    if cfg!(feature = "prometheus") {
        features.push("prometheus");
    }
    support::build_example("toggle", &features)
}

/// Kills the child when dropped, so a failing test leaves no process behind.
#[cfg(unix)]
struct Killed(std::process::Child);

#[cfg(unix)]
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/toggle.rs`, the safe pattern for switching on a signal: a thread waits for
/// the signal and switches; the handler itself does nothing unsafe.
#[cfg(unix)]
#[test]
fn the_toggle_example_switches_on_sigusr1_and_off_on_sigusr2() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const TICKS: u64 = 50;
    let mut child = Killed(
        support::app(toggle_example())
            .args(["--ticks", &TICKS.to_string()])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let stderr = child.0.stderr.take().unwrap();
    let stderr = thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    // The app's logs (stdout) say when it ticks and switches; each step below waits for
    // what the app says, not for time to pass, so a loaded machine changes nothing.
    let mut logs = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let mut wait_for = |needle: &str| loop {
        let line = logs
            .next()
            .unwrap_or_else(|| panic!("the app ended before logging {needle:?}: {seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(needle) {
            return line;
        }
    };
    let signal = |name: &str| {
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success(), "kill {name}");
    };
    let tick = |line: &str| -> u64 {
        let at = line.find("tick=").expect("a tick line") + "tick=".len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a tick number")
    };
    assert!(wait_for("ticking").contains("SIGUSR1"));
    // Ticks 0 to 2 made while off; then on for three ticks at least; then off.
    wait_for("tick=2");
    signal("-USR1");
    wait_for("telemetry switched enabled=true");
    let on_at = tick(&wait_for(" tick="));
    wait_for(&format!("tick={}", on_at + 3));
    signal("-USR2");
    wait_for("telemetry switched enabled=false");
    let off_at = tick(&wait_for(" tick="));
    assert!(
        off_at < TICKS - 1,
        "the app ticked to the end before switching off"
    );
    wait_for(&format!("tick={}", TICKS - 1));
    let rest = seen;
    let status = child.0.wait().unwrap();
    assert!(status.success());
    let stderr = stderr.join().unwrap();
    let ticks: Vec<u64> = support::json_lines(&stderr)
        .iter()
        .map(|record| record["value"].as_f64().unwrap() as u64)
        .collect();
    // Off for the first ticks, on for three or more, off for the rest: the records are
    // one run of consecutive ticks, neither the first nor the last.
    assert!(ticks.len() >= 3, "{stderr}");
    assert!(ticks[0] > 2, "{ticks:?}");
    assert!(*ticks.last().unwrap() < TICKS - 1, "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    assert!(rest.contains("telemetry switched enabled=true"), "{rest}");
    assert!(rest.contains("telemetry switched enabled=false"), "{rest}");
}

/// The `OTEL_*` variables are shared with any OpenTelemetry SDK in the process: with
/// telemetry off, one that the `otlp` exporter refuses does not stop the app. Turned on
/// at run time, the exporter cannot start: it says why, once, and at the end how many
/// records it dropped.
#[cfg(all(unix, feature = "otlp"))]
#[test]
fn off_an_otel_variable_the_exporter_refuses_stops_nothing_and_is_said_when_turned_on() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let toggle = toggle_example();
    let refused = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
    ];
    for (var, value) in refused {
        const TICKS: u64 = 12;
        let mut child = Killed(
            support::app(&toggle)
                .args(["--ticks", &TICKS.to_string()])
                .env("TELEMETRY_EXPORTER", "otlp")
                .env(var, value)
                .env("RUST_LOG", "debug")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id().to_string();
        let stderr = child.0.stderr.take().unwrap();
        let stderr = thread::spawn(move || std::io::read_to_string(stderr).unwrap());
        let mut logs = BufReader::new(child.0.stdout.take().unwrap()).lines();
        // Whether the app logged `needle` before it ended.
        let mut logged = |needle: &str| logs.any(|line| line.unwrap().contains(needle));
        // Started: `try_init` accepted the configuration with telemetry off.
        let mut ok = logged("tick=1");
        if ok {
            let status = Command::new("kill").args(["-USR1", &pid]).status().unwrap();
            assert!(status.success());
            ok =
                logged("telemetry switched enabled=true") && logged(&format!("tick={}", TICKS - 1));
        }
        if !ok {
            drop(child);
            panic!(
                "{var}={value}: the app ended early: {}",
                stderr.join().unwrap()
            );
        }
        assert!(child.0.wait().unwrap().success(), "{var}={value}");
        let stderr = stderr.join().unwrap();
        let said: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("telemetry: cannot start the otlp exporter: "))
            .collect();
        assert_eq!(said.len(), 1, "{var}={value}: {stderr}");
        assert!(said[0].contains(&format!(" for {var}")), "{}", said[0]);
        if var == "OTEL_EXPORTER_OTLP_HEADERS" {
            // Headers carry credentials: never shown, even when refused.
            assert!(!stderr.contains(value), "{stderr}");
        } else {
            assert!(said[0].contains(&format!("{value:?}")), "{}", said[0]);
        }
        let summary = stderr
            .lines()
            .find(|line| line.starts_with("telemetry: otlp export summary: "))
            .unwrap_or_else(|| panic!("{var}={value}: no summary: {stderr}"));
        let dropped: u64 = summary["telemetry: otlp export summary: ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{summary}"));
        // At least the ticks after the switch, at most every tick.
        assert!((1..=TICKS).contains(&dropped), "{summary}");
        assert!(
            summary.ends_with(" records dropped (the exporter could not start)"),
            "{summary}"
        );
    }
}

/// `GET /metrics` from `addr`: the body, or `None` when nothing answers.
#[cfg(all(unix, feature = "prometheus"))]
fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: t\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    let rest = answer.strip_prefix("HTTP/1.1 200 OK\r\n")?;
    Some(
        rest.split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned(),
    )
}

/// With `TELEMETRY_EXPORTER=prometheus`, the endpoint is there from `try_init`, on or
/// off: off, it serves the crate's own series with `telemetry_enabled 0` (so the scrape
/// target is up and no alert fires because telemetry is merely off); turned on at run
/// time, the same endpoint says `telemetry_enabled 1` and serves the app's series.
#[cfg(all(unix, feature = "prometheus"))]
#[test]
fn the_prometheus_endpoint_serves_while_telemetry_is_off_and_says_so() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Killed(
        support::app(toggle_example())
            .args(["--ticks", "600"])
            .env("TELEMETRY_EXPORTER", "prometheus")
            .env("TELEMETRY_PROMETHEUS_ADDR", addr.to_string())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let stderr = child.0.stderr.take().unwrap();
    let stderr = thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut logs = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut logged = |needle: &str| logs.any(|line| line.unwrap().contains(needle));
    // Started (`try_init` returned), and ticking with telemetry off.
    assert!(logged("tick=2"), "the app ended early");
    let off = scrape(addr).expect("the endpoint answers while telemetry is off");
    assert!(off.contains("\ntelemetry_enabled 0"), "{off}");
    assert!(off.contains("\ntelemetry_series 0"), "{off}");
    assert!(!off.contains("toggle_tick"), "{off}");

    let status = Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    assert!(status.success());
    assert!(logged("telemetry switched enabled=true"));
    assert!(logged(" tick=") && logged(" tick="));
    let on = scrape(addr).expect("the same endpoint answers once telemetry is on");
    assert!(on.contains("\ntelemetry_enabled 1"), "{on}");
    assert!(on.contains("\ntoggle_tick "), "{on}");
    drop(child);
    let stderr = stderr.join().unwrap();
    assert!(!stderr.contains("cannot"), "{stderr}");
}
