//! Running the examples as separate processes, as a user would, and capturing what a
//! writer is given.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// Builds `example` for this test run (a filtered `cargo test --test x` does not build
/// examples; quick when it is up to date) and returns a command for it with no
/// `TELEMETRY_*`, `OTEL_*` or `RUST_LOG` inherited from the developer's shell.
pub fn example(name: &str) -> Command {
    app(build_example(name, &[]))
}

/// Builds `example` with the default features plus `features`, and returns the path
/// of the binary cargo wrote (the next build of that example, with other features,
/// overwrites it).
pub fn build_example(name: &str, features: &[&str]) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let _one_build_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .args((!features.is_empty()).then(|| format!("--features={}", features.join(","))))
        .args((!cfg!(debug_assertions)).then_some("--release"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --example");
    assert!(status.success(), "cargo build --example {name} failed");
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A command for the program at `path` with no `TELEMETRY_*`, `OTEL_*` or `RUST_LOG`
/// inherited from the developer's shell.
pub fn app(path: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(path);
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("TELEMETRY_") || name.starts_with("OTEL_") || var == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Runs it to the end; stdout and stderr as text.
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run the example");
    let stdout = String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8");
    let stderr = String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8");
    (out, stdout, stderr)
}

/// Parses every line as JSON, failing on the first that is not.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
        })
        .collect()
}

/// A fresh directory for this test's files.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telemetry-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// An in-memory writer whose clones share one buffer: for `JsonLinesSink`, and (as a
/// `MakeWriter`) for fmt layers whose log output a test compares.
#[derive(Clone, Default)]
pub struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Shared {
    /// Everything written so far, as text (JSON lines and logs are UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("the writer got UTF-8")
    }
}

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Shared {
    type Writer = Shared;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `strace`, if this machine has it. Under `CI=true` its absence fails the test;
/// elsewhere it says, past the test harness's capture, that `what` did not run.
pub fn strace(what: &str) -> Option<&'static str> {
    let found = Command::new("strace").arg("-V").output().is_ok();
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "strace is not installed, and CI=true requires {what} to run (apt-get install strace)"
        );
    }
    if !found {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: strace is not installed, so {what} did not run (apt-get install strace)"
        );
    }
    found.then_some("strace")
}

/// `prometheus`'s `promtool`, or: in CI a failure, elsewhere `None` after saying
/// SKIPPED.
pub fn promtool(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file());
    if found.is_none() {
        let why = "promtool is not on PATH (install Debian's prometheus package: apt-get install prometheus)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: {why}; CI=true requires it");
        }
        println!("SKIPPED: {test}: {why}");
    }
    found
}

/// Runs `promtool check metrics` on `exposition`; fails the test, with promtool's
/// words, when it does not pass.
pub fn check_with_promtool(promtool: &Path, exposition: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
