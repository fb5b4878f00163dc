//! The real OTLP receiver the OTLP suites share: PyPI's oteltest (its `HttpSink`),
//! started by `tests/support/otlp_receiver.py` on a loopback port.
//!
//! `.ci/run` installs it in a virtual environment at `target/oteltest-venv`;
//! `OTLP_RECEIVER_PYTHON` names another interpreter. Where it cannot run, a test
//! fails when `CI=true` and otherwise prints `SKIPPED: ...` and passes.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// oteltest's HttpSink on a loopback port; killed when dropped, even if the test fails.
pub struct Receiver {
    child: Child,
    pub port: u16,
    /// Every request received so far, as the script prints it: `{"signal", "headers",
    /// "request"}` with the request in protobuf's JSON mapping.
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// The base URL to give `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn python() -> PathBuf {
    match std::env::var_os("OTLP_RECEIVER_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/oteltest-venv/bin/python"),
    }
}

/// The receiver on `port` (0: a free one), or `None` (after saying SKIPPED for
/// `suite`) where it cannot run; under `CI=true` a missing receiver fails the test.
pub fn start(port: u16, suite: &str) -> Option<Receiver> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/otlp_receiver.py");
    launch(suite, |python| {
        python.arg(&script).arg(port.to_string());
    })
}

/// The receiver as the Python interpreter runs it with the arguments `args` gives
/// (the script, or a wrapper around it such as one serving TLS); it prints
/// `LISTENING <port>`, then one JSON line per request. `None` (after saying SKIPPED
/// for `suite`) where it cannot run; under `CI=true` a missing receiver fails the test.
pub fn launch(suite: &str, args: impl FnOnce(&mut Command)) -> Option<Receiver> {
    let python = python();
    let missing = |why: String| {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the OTLP receiver is required in CI: {why}");
        }
        println!("SKIPPED: {suite} ({why}; run .ci/run once to install it)");
    };
    let mut command = Command::new(&python);
    args(&mut command);
    let spawned = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            missing(format!("cannot run {}: {err}", python.display()));
            return None;
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&requests);
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.strip_prefix("LISTENING ") {
                let _ = port_tx.send(port.trim().parse::<u16>().ok());
            } else if let Ok(value) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(value);
            }
        }
    });
    let mut receiver = Receiver {
        child,
        port: 0,
        requests,
    };
    match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => {
            receiver.port = port;
            Some(receiver)
        }
        _ => {
            let _ = receiver.child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = receiver.child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let last = err.lines().last().unwrap_or("no output").to_owned();
            missing(format!(
                "{} could not start the receiver: {last}",
                python.display()
            ));
            None
        }
    }
}

/// `name`, an example, built with the `otlp` feature and whichever of `prometheus` and
/// `tracing-opentelemetry` this test run has (so that cargo reuses the library it just
/// built instead of building it again for another feature set); a command for it with
/// no `TELEMETRY_*`, `OTEL_*` or `RUST_LOG` inherited from the developer's shell.
pub fn example(name: &str) -> Command {
    static BUILD: Mutex<()> = Mutex::new(());
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    {
        let _one_build_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let mut features = vec!["otlp"];
        if cfg!(feature = "prometheus") {
            features.push("prometheus");
        }
        if cfg!(feature = "tracing-opentelemetry") {
            features.push("tracing-opentelemetry");
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name, "--features"])
            .arg(features.join(","))
            .args((!cfg!(debug_assertions)).then_some("--release"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(
            status.success(),
            "cargo build --features {} --example {name} failed",
            features.join(",")
        );
    }
    let mut cmd = Command::new(
        dir.join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
    );
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("TELEMETRY_") || name.starts_with("OTEL_") || name == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// One HTTP/1.1 request read from a stub collector's connection: its head (request
/// line and headers, as sent) and its body. `None` once the client closes or sends
/// something cut short. For the stubs that answer what the real receiver cannot
/// (a 503 with `Retry-After`, a hang).
pub fn read_request<R: BufRead>(reader: &mut R) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Every metric of every metrics request in `requests` (as the receiver recorded
/// them), in the order they arrived.
#[allow(dead_code, reason = "not every suite reads metrics")]
pub fn metrics(requests: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for request in requests.iter().filter(|r| r["signal"] == "metrics") {
        for rm in request["request"]["resourceMetrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                out.extend(sm["metrics"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}
