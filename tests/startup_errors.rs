//! What an app prints when `try_init` refuses to start, run as separate processes the
//! way a user runs them: the README's `fn main() -> Result<(), Error>` (the
//! `minimal` example) and its panicking twin `init()` (`minimal_init`).

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::sync::{Mutex, MutexGuard};

use support::{example, run};

/// The tests here build the same examples with different features: one at a time, so
/// that none runs a binary another has just rebuilt.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static EXCLUSIVE: Mutex<()> = Mutex::new(());
    EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
}

const EXPORTER_EXPECTED: &str = "expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once";

#[test]
fn a_main_returning_the_error_prints_one_readable_line() {
    let _exclusive = one_at_a_time();
    let cases = [
        (
            "TELEMETRY_EXPORTER",
            "prom",
            format!(r#"invalid value "prom" for TELEMETRY_EXPORTER ({EXPORTER_EXPECTED})"#),
        ),
        (
            "TELEMETRY_ENABLED",
            "banana",
            r#"invalid value "banana" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#
                .to_owned(),
        ),
        (
            "TELEMETRY_ENABLE",
            "true",
            r#"unknown variable "TELEMETRY_ENABLE" (did you mean TELEMETRY_ENABLED?)"#.to_owned(),
        ),
    ];
    for (variable, value, message) in cases {
        let (out, stdout, stderr) = run(example("minimal").env(variable, value));
        assert_eq!(out.status.code(), Some(1), "{variable}={value}: {stderr}");
        assert_eq!(stderr, format!("Error: {message}\n"), "{variable}={value}");
        assert_eq!(stdout, "", "{variable}={value}");
    }
}

#[test]
fn a_valid_configuration_starts_and_logs() {
    let _exclusive = one_at_a_time();
    let (out, stdout, stderr) = run(&mut example("minimal"));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("started"), "{stdout}");
}

#[test]
fn init_panics_at_the_callers_line_with_the_same_message() {
    let _exclusive = one_at_a_time();
    let source = include_str!("../examples/minimal_init.rs");
    let line = source
        .lines()
        .position(|l| l.contains("tracing_telemetry::init()"))
        .expect("the example calls init()")
        + 1;
    let (out, stdout, stderr) = run(example("minimal_init")
        .env("TELEMETRY_ENABLED", "banana")
        .env("RUST_BACKTRACE", "0"));
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    // `file!()` as the compiler spells it: `examples\minimal_init.rs` on Windows.
    let file = std::path::Path::new("examples").join("minimal_init.rs");
    let location = format!("{}:{line}:", file.display());
    assert!(
        stderr.contains(&format!("panicked at {location}")),
        "the panic must point at the caller's line ({location}): {stderr}"
    );
    assert!(
        stderr.contains(
            "\ninvalid value \"banana\" for TELEMETRY_ENABLED (expected true, false, 1 or 0)\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("src/install.rs"), "{stderr}");
    assert_eq!(stdout, "");
}

/// A port already in use: the error names the address, the system's reason and the
/// variable to change, on one line.
#[cfg(feature = "prometheus")]
#[test]
fn a_port_in_use_prints_the_address_and_the_variable_to_change() {
    let _exclusive = one_at_a_time();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = taken.local_addr().unwrap().to_string();
    let mut minimal = minimal_with_prometheus();
    let (out, stdout, stderr) = run(minimal
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "prometheus")
        .env("TELEMETRY_PROMETHEUS_ADDR", &addr));
    drop(taken);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("one line: {stderr:?}"));
    assert!(!line.contains('\n'), "one line: {stderr:?}");
    assert!(
        line.starts_with(&format!(
            "Error: cannot serve Prometheus metrics on {addr}: "
        )),
        "{line}"
    );
    assert!(
        line.ends_with("(set TELEMETRY_PROMETHEUS_ADDR to a free host:port)"),
        "{line}"
    );
    assert!(
        !line.contains("Error {") && !line.contains("Os {"),
        "{line}"
    );
    assert_eq!(stdout, "");
}

/// With telemetry off, nothing about the `otlp` exporter's settings stops the app:
/// the `OTEL_*` variables are shared with any OpenTelemetry SDK in the process. The
/// README's `main` starts, logs and exits 0 with a refused protocol, timeout,
/// endpoint and resource, a certificate file that does not exist, and a variable set
/// twice; turned on, the same environment is an error naming a variable.
#[cfg(feature = "otlp")]
#[test]
fn with_telemetry_off_no_otlp_setting_stops_the_app() {
    let _exclusive = one_at_a_time();
    let bad = [
        ("TELEMETRY_EXPORTER", "stderr,otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "-1"),
        ("OTEL_SDK_DISABLED", "maybe"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team",
        ),
    ];
    let mut off = minimal_built_with("otlp");
    let (out, stdout, stderr) = run(off.envs(bad));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("started"), "{stdout}");
    assert_eq!(stderr, "", "nothing is said while telemetry is off");

    let mut on = minimal_built_with("otlp");
    let (out, _, stderr) = run(on.envs(bad).env("TELEMETRY_ENABLED", "true"));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("Error: invalid value "), "{stderr}");
    assert!(stderr.contains(" for OTEL_"), "{stderr}");
}

/// `examples/minimal.rs` built with the `prometheus` feature, see [`minimal_built_with`].
#[cfg(feature = "prometheus")]
fn minimal_with_prometheus() -> std::process::Command {
    minimal_built_with("prometheus")
}

/// `examples/minimal.rs` built with `feature` (and the others this test was built
/// with, so that cargo reuses the library it just built), copied where no other build
/// of the example overwrites it, with no `TELEMETRY_*`, `OTEL_*` or `RUST_LOG`
/// inherited from the developer's shell.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
fn minimal_built_with(feature: &str) -> std::process::Command {
    let mut features = vec![feature];
    for (on, other) in [
        (cfg!(feature = "prometheus"), "prometheus"),
        (cfg!(feature = "otlp"), "otlp"),
        (
            cfg!(feature = "tracing-opentelemetry"),
            "tracing-opentelemetry",
        ),
    ] {
        if on && other != feature {
            features.push(other);
        }
    }
    let built = support::build_example("minimal", &features);
    let copy = built.with_file_name(format!(
        "startup-errors-minimal-{}{}",
        features.join("-"),
        std::env::consts::EXE_SUFFIX
    ));
    std::fs::copy(&built, &copy).expect("copy the example");
    support::app(copy)
}
