//! Security and privacy (docs/OPERATIONS.md, "Security and privacy"), checked on real
//! processes: telemetry is off unless enabled (no output, no file, no thread);
//! nothing leaves the process except through the configured exporter (no network
//! syscall at all, no networking crate in the dependency tree); telemetry files are
//! readable by their owner only, whatever the umask; properties never reach the app's
//! own logs, at any `RUST_LOG` level.
//!
//! The syscall checks use `strace`; where it is not installed they print why they did
//! not run and pass (install it with `apt-get install strace`).

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod reliability;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::process::Command;
#[cfg(target_os = "linux")]
use std::process::Output;

use reliability::{child_role, rerun_self};
#[cfg(unix)]
use support::json_lines;
use support::{example, run, temp_dir};

// ---------------------------------------------------------------------------------
// Off unless enabled

#[test]
fn off_unless_enabled_no_output_and_no_file() {
    let dir = temp_dir("security-off");
    let file = dir.join("t.jsonl");
    for enabled in [None, Some(""), Some("false"), Some("0"), Some(" FALSE ")] {
        let mut cmd = example("quickstart");
        cmd.env("TELEMETRY_EXPORTER", "file")
            .env("TELEMETRY_FILE", &file);
        if let Some(value) = enabled {
            cmd.env("TELEMETRY_ENABLED", value);
        }
        let (out, stdout, stderr) = run(&mut cmd);
        assert!(out.status.success(), "{enabled:?}: {stderr}");
        assert!(
            !file.exists(),
            "TELEMETRY_ENABLED={enabled:?} created the file"
        );
        assert_eq!(stderr, "", "{enabled:?}");
        // Log lines only (the request span shows as `request{..}` in them): no JSON line.
        assert!(
            !stdout.lines().any(|l| l.starts_with('{')),
            "{enabled:?}: {stdout}"
        );
    }
    // An invalid value is an error, and turns nothing on either.
    for enabled in ["yes", "on", "true!"] {
        let (out, stdout, _) = run(example("quickstart")
            .env("TELEMETRY_ENABLED", enabled)
            .env("TELEMETRY_EXPORTER", "file")
            .env("TELEMETRY_FILE", &file));
        assert_eq!(out.status.code(), Some(1), "{enabled}");
        assert!(
            !file.exists(),
            "TELEMETRY_ENABLED={enabled} created the file"
        );
        assert_eq!(stdout, "");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------
// Nothing leaves the process but through the exporter

/// Runs `cmd` under `strace -f`, recording network syscalls and thread creation;
/// returns the run and the syscalls seen (one `name(...)` per line).
#[cfg(target_os = "linux")]
fn traced(strace: &str, cmd: &Command, log: &Path) -> (Output, Vec<String>) {
    let mut traced = Command::new(strace);
    traced
        .args(["-f", "-qq", "-e", "signal=none", "-e"])
        .arg("trace=%network,clone,clone3")
        .arg("-o")
        .arg(log)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => traced.env(key, value),
            None => traced.env_remove(key),
        };
    }
    let out = traced.output().expect("run strace");
    assert!(
        out.status.success(),
        "strace {:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    let syscalls = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| {
            // "<pid> name(args) = result"
            let call = l.split_once(' ').map_or(l, |(_, rest)| rest).trim_start();
            call.contains('(').then(|| call.to_owned())
        })
        .collect();
    (out, syscalls)
}

#[cfg(target_os = "linux")]
fn is_network(call: &str) -> bool {
    !call.starts_with("clone")
}

#[cfg(target_os = "linux")]
fn is_thread(call: &str) -> bool {
    call.starts_with("clone")
}

/// The child for the positive control: opens a socket, as a network exporter would.
#[cfg(target_os = "linux")]
fn network_control_child() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    drop(socket);
}

/// Both examples, with each exporter and with telemetry off: not one network syscall
/// (socket, connect, sendto, ...). With telemetry off, not even the export thread is
/// started; with it on, exactly one thread is. A positive control (this binary opening
/// a socket) shows that the tracing sees network syscalls when there are some.
#[cfg(target_os = "linux")]
#[test]
fn no_network_syscall_with_any_exporter_and_no_thread_while_off() {
    if child_role().as_deref() == Some("network-control") {
        return network_control_child();
    }
    let Some(strace) = support::strace("the syscall checks") else {
        return;
    };
    let dir = temp_dir("security-strace");
    let log = dir.join("strace.log");

    let control = rerun_self(
        "no_network_syscall_with_any_exporter_and_no_thread_while_off",
        "network-control",
    );
    let (_, calls) = traced(strace, &control, &log);
    assert!(
        calls.iter().any(|c| c.starts_with("socket(")),
        "the control's socket was not seen: {calls:?}"
    );

    let file = dir.join("t.jsonl");
    let exporters: [(&str, Option<&Path>); 4] = [
        ("stderr", None),
        ("stdout", None),
        ("none", None),
        ("file", Some(&file)),
    ];
    for (exporter, path) in exporters {
        for enabled in ["true", "false"] {
            let mut quickstart = example("quickstart");
            quickstart
                .env("TELEMETRY_ENABLED", enabled)
                .env("TELEMETRY_EXPORTER", exporter);
            if let Some(path) = path {
                quickstart.env("TELEMETRY_FILE", path);
            }
            let (out, calls) = traced(strace, &quickstart, &log);
            assert!(out.status.success(), "{exporter} {enabled}");
            let network: Vec<_> = calls.iter().filter(|c| is_network(c)).collect();
            assert!(
                network.is_empty(),
                "{exporter}, enabled={enabled}: {network:?}"
            );
            let threads = calls.iter().filter(|c| is_thread(c)).count();
            let expected = usize::from(enabled == "true" && exporter != "none");
            assert_eq!(
                threads, expected,
                "{exporter}, enabled={enabled}: threads started: {calls:?}"
            );
        }
        let mut load = example("load");
        load.args(["--threads", "2", "--records", "500"])
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", exporter);
        if let Some(path) = path {
            load.env("TELEMETRY_FILE", path);
        }
        let (out, calls) = traced(strace, &load, &log);
        assert!(out.status.success(), "load {exporter}");
        let network: Vec<_> = calls.iter().filter(|c| is_network(c)).collect();
        assert!(network.is_empty(), "load, {exporter}: {network:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Crates that open network connections. None may be among the crate's own (normal,
/// non-dev) dependencies: a user adding `tracing-telemetry` must not pull one in.
const NETWORKING: &[&str] = &[
    "async-std",
    "curl",
    "h2",
    "h3",
    "hyper",
    "isahc",
    "mio",
    "native-tls",
    "openssl",
    "opentelemetry-otlp",
    "quinn",
    "reqwest",
    "rustls",
    "socket2",
    "surf",
    "tokio",
    "tonic",
    "tungstenite",
    "ureq",
];

#[test]
fn no_networking_crate_among_the_dependencies() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree", "--quiet", "--edges", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"tracing") && crates.contains(&"serde_json"),
        "the tree lists the dependencies: {tree}"
    );
    let found: Vec<&&str> = crates.iter().filter(|c| NETWORKING.contains(c)).collect();
    assert!(found.is_empty(), "networking crates: {found:?}\n{tree}");
}

// ---------------------------------------------------------------------------------
// Private files

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The file is created 0600 even when the app runs with a umask that lets everyone
/// read and write (umask 000); a file the operator created beforehand keeps its mode,
/// as documented.
#[cfg(unix)]
#[test]
fn telemetry_files_are_created_owner_readable_only_whatever_the_umask() {
    let dir = temp_dir("security-mode");
    let file = dir.join("t.jsonl");
    let load = example("load");
    let (out, _, stderr) = run(Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(load.get_program())
        .args(["--threads", "1", "--records", "10"])
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &file));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        json_lines(&std::fs::read_to_string(&file).unwrap()).len(),
        10
    );
    assert_eq!(mode(&file), 0o600, "created under umask 000");

    let existing: PathBuf = dir.join("existing.jsonl");
    std::fs::write(&existing, "").unwrap();
    std::fs::set_permissions(
        &existing,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let (out, _, stderr) = run(example("load")
        .args(["--threads", "1", "--records", "10"])
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &existing));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(mode(&existing), 0o640, "an existing file keeps its mode");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------
// Properties stay out of the app's logs

const SECRETS: [&str; 4] = [
    "ada@example.com",
    "tok_4a7f1c",
    "4242-4242-4242-4242",
    "secret-scope-tag",
];

/// An app: `try_init`, logs at every level, and track calls whose properties must
/// reach the exporter only.
fn app_child() {
    let guard = tracing_telemetry::try_init().expect("try_init");
    tracing::info!("app log: started");
    tracing_telemetry::track_event("user.signup", &[("email", SECRETS[0])]);
    tracing_telemetry::track_event!("user.token", token = SECRETS[1]);
    tracing::debug!("app log: debug line");
    tracing_telemetry::track_metric("payment.amount", 12.0, &[("card", SECRETS[2])]);
    {
        let _timer = tracing_telemetry::timer("scope", [("tag", SECRETS[3])]);
        tracing::trace!("app log: trace line");
    }
    tracing::warn!("app log: warning");
    tracing::error!("app log: error");
    drop(guard);
}

/// With each exporter and `RUST_LOG` unset (INFO), `trace` and even `telemetry=trace`,
/// the app's log stream holds its own lines and none of the properties; the exporter's
/// stream (or file) holds all of them, and the third stream holds neither.
#[test]
fn properties_never_reach_the_apps_logs_at_any_level() {
    if child_role().as_deref() == Some("app") {
        return app_child();
    }
    let dir = temp_dir("security-logs");
    let file = dir.join("t.jsonl");
    for rust_log in [None, Some("trace"), Some("telemetry=trace,trace")] {
        for exporter in ["stderr", "stdout", "file"] {
            let _ = std::fs::remove_file(&file);
            let mut cmd = rerun_self("properties_never_reach_the_apps_logs_at_any_level", "app");
            cmd.env("TELEMETRY_ENABLED", "true")
                .env("TELEMETRY_EXPORTER", exporter);
            if exporter == "file" {
                cmd.env("TELEMETRY_FILE", &file);
            }
            if let Some(filter) = rust_log {
                cmd.env("RUST_LOG", filter);
            }
            let (out, stdout, stderr) = run(&mut cmd);
            let case = format!("RUST_LOG={rust_log:?}, exporter {exporter}");
            assert!(out.status.success(), "{case}: {stderr}");
            let (logs, records) = match exporter {
                "stdout" => (stderr, stdout),
                "stderr" => (stdout, stderr),
                _ => (
                    format!("{stdout}{stderr}"),
                    std::fs::read_to_string(&file).unwrap(),
                ),
            };
            assert!(logs.contains("app log: started"), "{case}: {logs}");
            assert!(logs.contains("app log: error"), "{case}: {logs}");
            if rust_log.is_some() {
                assert!(logs.contains("app log: trace line"), "{case}: {logs}");
            }
            for secret in SECRETS {
                assert!(
                    !logs.contains(secret),
                    "{case}: {secret} in the app's logs:\n{logs}"
                );
                assert!(records.contains(secret), "{case}: {secret} not exported");
            }
            for name in ["user.signup", "payment.amount"] {
                assert!(!logs.contains(name), "{case}: {name} in the logs");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
