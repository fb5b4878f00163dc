//! What `try_init` puts in the app's own logs, seen from outside: it runs in a child
//! process (one global subscriber per process) with `RUST_LOG=trace`.
//!
//! Only the crate's track calls are telemetry: they reach the exporter and never the
//! logs, while an app's own event that merely uses the `telemetry` target is an
//! ordinary log line.

#![cfg(feature = "subscriber")]

use std::process::Command;

/// Set in the child, which then installs telemetry and emits.
const CHILD: &str = "APP_LOGS_CHILD";

#[test]
fn child_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _guard = tracing_telemetry::try_init().expect("try_init in the child");
    tracing::error!(target: "telemetry", "an app error under the telemetry target");
    tracing::trace!(target: "telemetry", detail = 7, "an app trace under the telemetry target");
    tracing_telemetry::track_event("tracked.fn", &[("secret", "s3cr3t-fn")]);
    tracing_telemetry::track_event!("tracked.macro", secret = "s3cr3t-macro");
}

#[test]
fn app_events_with_the_telemetry_target_stay_logs_and_track_calls_never_are() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TELEMETRY_") {
            cmd.env_remove(var);
        }
    }
    let out = cmd
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_LOG", "trace")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stderr")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // The app's logs (stdout).
    assert!(
        stdout.contains("an app error under the telemetry target"),
        "{stdout}"
    );
    assert!(
        stdout.contains("an app trace under the telemetry target"),
        "{stdout}"
    );
    assert!(!stdout.contains("tracked."), "{stdout}");
    assert!(!stdout.contains("s3cr3t"), "{stdout}");

    // The exporter (stderr): the two track calls and nothing else.
    let names: Vec<String> = stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names, ["tracked.fn", "tracked.macro"], "{stderr}");
}
