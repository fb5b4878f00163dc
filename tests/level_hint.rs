//! What `tracing`'s global maximum level is once the app's subscriber is installed,
//! read by a child process (the global subscriber can be installed once per process).
//!
//! Off, the maximum level is the app's own log level, so that every disabled callsite
//! (track calls are TRACE) stops at `tracing`'s level check; on, it is TRACE, which the
//! track calls need. The same holds after `try_init`, `try_init_with`, and the
//! README's recipe with `layer()`, and after the runtime toggle.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod reliability;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use reliability::{child_role, rerun_self};
use tracing::level_filters::LevelFilter;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_telemetry::{Config, Destination, TelemetryHandle};

/// Prints `level=<LevelFilter::current()>`, then the same after turning telemetry on
/// and off again with `handle`.
fn report(handle: &TelemetryHandle) {
    println!("level={}", LevelFilter::current());
    handle.enable();
    println!("level={}", LevelFilter::current());
    handle.disable();
    println!("level={}", LevelFilter::current());
}

/// The child's `level=` lines.
fn levels(cmd: &mut Command) -> Vec<String> {
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        // libtest's own "test ... " may start the child's first line.
        .filter_map(|l| l.split_once("level=").map(|(_, level)| level.to_owned()))
        .collect()
}

#[test]
fn try_init_keeps_the_apps_level_while_off() {
    if child_role().as_deref() == Some("try_init") {
        let guard = tracing_telemetry::try_init().expect("try_init");
        return report(&guard.handle());
    }
    let test = "try_init_keeps_the_apps_level_while_off";
    // Off (the default), with `RUST_LOG` unset, a level, and directives.
    for (rust_log, off) in [
        (None, "info"),
        (Some("warn"), "warn"),
        (Some("debug"), "debug"),
        (Some("my_app=debug,warn"), "debug"),
        (Some("off"), "off"),
    ] {
        for exporter in ["stderr", "stdout", "none"] {
            let mut cmd = rerun_self(test, "try_init");
            cmd.env("TELEMETRY_EXPORTER", exporter);
            if let Some(rust_log) = rust_log {
                cmd.env("RUST_LOG", rust_log);
            }
            assert_eq!(
                levels(&mut cmd),
                [off, "trace", off],
                "RUST_LOG={rust_log:?}, TELEMETRY_EXPORTER={exporter}: off, on, off again"
            );
        }
    }
    // On from the start: TRACE, which the track calls need.
    let mut cmd = rerun_self(test, "try_init");
    cmd.env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "none")
        .env("RUST_LOG", "warn");
    assert_eq!(levels(&mut cmd), ["trace", "trace", "warn"]);
}

#[test]
fn try_init_with_keeps_the_apps_level_while_off() {
    if child_role().as_deref() == Some("try_init_with") {
        let config = Config::new().with_destinations([Destination::Stderr]);
        let guard = tracing_telemetry::try_init_with(&config).expect("try_init_with");
        return report(&guard.handle());
    }
    let mut cmd = rerun_self(
        "try_init_with_keeps_the_apps_level_while_off",
        "try_init_with",
    );
    assert_eq!(levels(&mut cmd), ["info", "trace", "info"]);
    cmd.env("RUST_LOG", "warn");
    assert_eq!(levels(&mut cmd), ["warn", "trace", "warn"]);
}

#[test]
fn the_readme_layer_recipe_keeps_the_apps_level_while_off() {
    if child_role().as_deref() == Some("layer") {
        let (telemetry, guard) = tracing_telemetry::layer().expect("layer");
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
            .with(telemetry)
            .init();
        return report(&guard.handle());
    }
    let mut cmd = rerun_self(
        "the_readme_layer_recipe_keeps_the_apps_level_while_off",
        "layer",
    );
    assert_eq!(levels(&mut cmd), ["info", "trace", "info"]);
}

/// Counts how often `tracing` asks it about an event; says "never" for every callsite
/// at registration, and gives no level hint (so calls get past the level check).
struct CountingFilter(&'static AtomicUsize);

impl<S> Filter<S> for CountingFilter {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn callsite_enabled(&self, _meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::never()
    }
}

/// With telemetry off, a track call's interest is cached as "never", so an app whose
/// filters give no level hint pays for no filter at all per call: no filter (the
/// telemetry filter or another layer's) is consulted.
#[test]
fn off_track_calls_consult_no_filter_even_without_a_level_hint() {
    if child_role().as_deref() == Some("no_hint") {
        static CONSULTED: AtomicUsize = AtomicUsize::new(0);
        let (telemetry, guard) = tracing_telemetry::layer().expect("layer");
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(CountingFilter(&CONSULTED)),
            )
            .with(telemetry)
            .init();
        println!("level={}", LevelFilter::current());
        for n in 0..1_000 {
            tracing_telemetry::track_event!("job.done", n = n);
            tracing_telemetry::track_metric("queue.depth", 1.0, &[]);
        }
        println!("consulted={}", CONSULTED.load(Ordering::Relaxed));
        drop(guard);
        return;
    }
    let out = rerun_self(
        "off_track_calls_consult_no_filter_even_without_a_level_hint",
        "no_hint",
    )
    .output()
    .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // No hint from the counting filter: the calls get past the level check...
    assert!(stdout.contains("level=trace"), "{stdout}");
    // ...and stop at the cached interest.
    assert!(stdout.contains("consulted=0"), "{stdout}");
}
