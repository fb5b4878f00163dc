//! The exporters ops select: every line a process writes is parsed; N records in from
//! many threads is N whole lines out; failing destinations never crash the app.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::collections::HashSet;
#[cfg(unix)]
use std::io::Read;
#[cfg(unix)]
use std::process::Stdio;

use support::{example, json_lines, run, temp_dir};
use tracing_subscriber::prelude::*;
use tracing_telemetry::Config;

fn load(threads: u64, records: u64) -> std::process::Command {
    let mut cmd = example("load");
    cmd.args([
        "--threads",
        &threads.to_string(),
        "--records",
        &records.to_string(),
    ]);
    cmd
}

/// Every (thread, seq) pair exactly once, every line a whole record.
fn assert_exactly_once(lines: &[serde_json::Value], threads: u64, records: u64) {
    assert_eq!(lines.len() as u64, threads * records);
    let mut seen = HashSet::new();
    for line in lines {
        assert_eq!(line["kind"], "metric");
        assert_eq!(line["name"], "load.record");
        let key = (
            line["tags"]["thread"].as_str().unwrap().to_owned(),
            line["tags"]["seq"].as_str().unwrap().to_owned(),
        );
        assert!(seen.insert(key.clone()), "{key:?} arrived twice");
    }
}

#[test]
fn many_threads_into_the_file_exporter_give_exactly_one_whole_line_each() {
    let dir = temp_dir("exporter-threads");
    let file = dir.join("t.jsonl");
    let (out, _, stderr) = run(load(8, 5_000)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &file));
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("telemetry:"),
        "nothing dropped or lost: {stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'));
    assert_exactly_once(&json_lines(&text), 8, 5_000);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn many_threads_into_stdout_and_stderr() {
    for exporter in ["stdout", "stderr"] {
        let (out, stdout, stderr) = run(load(4, 2_000)
            .env("TELEMETRY_ENABLED", "1")
            .env("TELEMETRY_EXPORTER", exporter));
        assert!(out.status.success(), "{stderr}");
        let (records, other) = if exporter == "stdout" {
            (stdout, stderr)
        } else {
            (stderr, stdout)
        };
        // The load example's own summary line is the only other thing on stderr.
        let records: String = records
            .lines()
            .filter(|l| !l.starts_with("emitted "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_exactly_once(&json_lines(&records), 4, 2_000);
        assert!(
            !other.contains("\"load.record\""),
            "{exporter}: records leaked elsewhere"
        );
    }
}

#[cfg_attr(
    not(unix),
    ignore = "a Unix path and the Unix error (Windows: os error 3, \"The system cannot find the path specified.\")"
)]
#[test]
fn a_file_that_cannot_be_opened_fails_startup_naming_the_path_and_reason() {
    let (out, stdout, stderr) = run(example("quickstart")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", "/nonexistent-dir/t.jsonl"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: cannot open TELEMETRY_FILE \"/nonexistent-dir/t.jsonl\": No such file or directory (os error 2) (check that the directory exists and is writable)\n"
    );
    assert_eq!(stdout, "");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_once_and_counted_not_a_crash() {
    let (out, _, stderr) = run(load(2, 1_000)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", "/dev/full"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("telemetry: cannot write records: No space left on device")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("telemetry: export summary: 0 written, 0 dropped (buffer full), 2000 lost to write errors"),
        "{stderr}"
    );
}

/// A disk that fills in the middle of a batch (here the file-size limit, which fails
/// a write part way as a full disk does): the lines that reached the file whole count
/// as written, the rest as lost, and the summary says exactly that.
#[cfg(target_os = "linux")]
#[test]
fn a_disk_that_fills_mid_batch_counts_as_written_exactly_the_whole_lines_in_the_file() {
    let dir = temp_dir("fills-mid-batch");
    let path = dir.join("t.jsonl");
    let load = load(2, 1_000);
    // 64 KiB, then every write fails (EFBIG, with SIGXFSZ ignored so it is not fatal).
    let mut limited = std::process::Command::new("bash");
    limited
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"")
        .arg(load.get_program())
        .args(load.get_args())
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &path);
    let (out, _, stderr) = run(&mut limited);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read(&path).unwrap();
    assert_eq!(text.len(), 64 * 1024, "the limit was reached mid-batch");
    let whole = text
        .split(|&b| b == b'\n')
        .filter(|line| serde_json::from_slice::<serde_json::Value>(line).is_ok())
        .count();
    assert!(whole > 0 && whole < 2_000, "{whole} whole lines");
    assert!(
        stderr.contains(&format!(
            "telemetry: export summary: {whole} written, 0 dropped (buffer full), {} lost to write errors",
            2_000 - whole
        )),
        "{whole} whole lines in the file; {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_reader_that_closes_the_pipe_is_reported_once_not_a_crash() {
    let mut child = load(2, 20_000)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then hang up, like `| head -1`.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("telemetry: cannot write records: Broken pipe")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("lost to write errors"), "{stderr}");
}

#[test]
fn the_runtime_toggle_starts_the_exporter_when_first_needed() {
    let dir = temp_dir("exporter-toggle");
    let file = dir.join("t.jsonl");
    let config = Config::new().with_enabled(false).with_file(&file);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let handle = guard.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("while.off", &[]);
        assert!(!file.exists(), "nothing is created while telemetry is off");
        handle.enable();
        tracing_telemetry::track_event("while.on", &[("n", "1")]);
        handle.disable();
        tracing_telemetry::track_event("off.again", &[]);
    });
    drop(guard);
    let names: Vec<_> = json_lines(&std::fs::read_to_string(&file).unwrap())
        .into_iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["while.on"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rotated_file_is_recreated_and_nothing_is_lost() {
    let dir = temp_dir("exporter-rotate");
    let file = dir.join("t.jsonl");
    let rotated = dir.join("t.jsonl.1");
    let config = Config::new().with_enabled(true).with_file(&file);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("before", &[]);
        // Written before the rotation, however slow the machine.
        guard.flush();
        std::fs::rename(&file, &rotated).unwrap();
        // The exporter checks the path at most once a second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        tracing_telemetry::track_event("after", &[]);
    });
    drop(guard);
    let names = |path: &std::path::Path| -> Vec<String> {
        json_lines(&std::fs::read_to_string(path).unwrap())
            .into_iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&rotated), ["before"]);
    assert_eq!(names(&file), ["after"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exporter_none_starts_nothing_and_writes_nothing() {
    let config = Config::new().with_enabled(true).with_destinations([]);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || tracing_telemetry::track_event("e", &[]));
    assert_eq!(guard.stats().written(), 0);
    assert_eq!(guard.stats().dropped(), 0);
}

/// `TELEMETRY_EXPORTER=stderr,file`: both destinations get every record, each a
/// whole line.
#[test]
fn a_list_of_two_exporters_gives_every_record_to_both() {
    let dir = temp_dir("exporter-list");
    let file = dir.join("t.jsonl");
    let (out, stdout, stderr) = run(load(4, 2_000)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stderr, file")
        .env("TELEMETRY_FILE", &file));
    assert!(out.status.success(), "{stderr}");
    let on_stderr: String = stderr
        .lines()
        .filter(|l| !l.starts_with("emitted "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_exactly_once(&json_lines(&on_stderr), 4, 2_000);
    let in_file = std::fs::read_to_string(&file).unwrap();
    assert_exactly_once(&json_lines(&in_file), 4, 2_000);
    assert!(!stdout.contains("load.record"), "nothing on stdout");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A destination that fails does not hold back the other: `/dev/full` loses every
/// record and says so, by name, while stdout gets them all.
#[cfg(target_os = "linux")]
#[test]
fn a_failing_destination_does_not_starve_the_other() {
    let (out, stdout, stderr) = run(load(2, 1_000)
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stdout,file")
        .env("TELEMETRY_FILE", "/dev/full"));
    assert!(out.status.success(), "{stderr}");
    assert_exactly_once(&json_lines(&stdout), 2, 1_000);
    assert!(
        stderr.contains(
            "telemetry: export summary (file): 0 written, 0 dropped (buffer full), 2000 lost to write errors"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("export summary (stdout)"), "{stderr}");
}
