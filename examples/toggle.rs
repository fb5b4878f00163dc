//! Turning telemetry on and off while the app runs, with signals: `SIGUSR1` turns it
//! on, `SIGUSR2` off. The app ticks every 100 ms and records a metric per tick.
//!
//! ```text
//! cargo run --example toggle -- --ticks 600 &    # telemetry off: no JSON lines
//! kill -USR1 %1                                   # on: a line per tick on stderr
//! kill -USR2 %1                                   # off again
//! ```
//!
//! A switch rebuilds `tracing`'s callsite interest cache, which takes locks and
//! allocates: that is not async-signal-safe, so it must never run inside a signal
//! handler. `signal-hook`'s iterator installs a handler that only records the signal
//! (which is safe) and wakes a thread; that thread, an ordinary one, makes the switch.

use std::process::ExitCode;
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
fn main() -> ExitCode {
    use signal_hook::consts::{SIGUSR1, SIGUSR2};
    use signal_hook::iterator::Signals;

    let ticks = match std::env::args().skip_while(|a| a != "--ticks").nth(1) {
        None => 100,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("error: invalid value {n:?} for --ticks (expected a whole number)");
                return ExitCode::FAILURE;
            }
        },
    };
    let guard = match tracing_telemetry::try_init() {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGUSR1, SIGUSR2]) {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("error: cannot listen for SIGUSR1 and SIGUSR2: {err}");
            return ExitCode::FAILURE;
        }
    };

    // The switching thread: it waits for signals and switches outside any handler.
    let handle = guard.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            match signal {
                SIGUSR1 => handle.enable(),
                SIGUSR2 => handle.disable(),
                _ => continue,
            }
            tracing::info!(enabled = handle.is_enabled(), "telemetry switched");
        }
    });
    tracing::info!(
        pid = std::process::id(),
        "ticking; SIGUSR1 turns telemetry on, SIGUSR2 off"
    );

    for tick in 0..ticks {
        tracing_telemetry::track_metric("toggle.tick", tick as f64, &[]);
        // The app's own log of the tick (shown with `RUST_LOG=debug`).
        tracing::debug!(tick, "tick");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(guard);
    ExitCode::SUCCESS
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!("this example uses Unix signals");
    ExitCode::FAILURE
}
