//! Runs the built `xtask` binary on JUnit reports from real nextest runs
//! (see tests/fixtures/README.md for how they were produced and what they
//! contain) and checks what it prints and its exit status.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `xtask slowest ARGS...`.
fn slowest<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("slowest")
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

/// Table rows (not the header) of the first table after `heading`.
fn table_rows<'a>(markdown: &'a str, heading: &str) -> Vec<&'a str> {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{markdown}"));
    markdown[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Checks a failure: exit status 1, nothing on stdout, an error on stderr
/// containing `expected`, and no panic.
fn assert_error(output: &Output, expected: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{err}");
    assert_eq!(stdout(output), "", "no partial report on error");
    assert!(err.starts_with("error: "), "stderr:\n{err}");
    assert!(
        err.contains(expected),
        "expected {expected:?} in stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "stderr:\n{err}");
}

fn three_runs() -> Vec<PathBuf> {
    ["run1.xml", "run2.xml", "run3.xml"]
        .into_iter()
        .map(fixture)
        .collect()
}

#[test]
fn table_of_three_runs_uses_medians_slowest_first() {
    let output = slowest(&three_runs());
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("## Slowest tests\n"), "{out}");
    assert!(
        out.contains("All 13 timed tests, by median duration over 3 JUnit reports"),
        "{out}"
    );
    assert_eq!(
        table_rows(&out, "## Slowest tests"),
        [
            "| 1 | `tests::marked_slow` | `fixture` | 5.505 | 3 |  |",
            // Killed by the slow-timeout in every run.
            "| 2 | `tests::times_out` | `fixture` | 2.003 | 3 | failed 3/3 |",
            // #[ignore]d: skipped in runs 1 and 2, run in run 3.
            "| 3 | `tests::ignored_slow` | `fixture` | 1.505 | 1 | skipped 2/3 |",
            // 0.107, 0.507 and 0.306 s in the three runs.
            "| 4 | `tests::varies_between_runs` | `fixture` | 0.306 | 3 |  |",
            "| 5 | `tests::regresses` | `fixture` | 0.205 | 3 |  |",
            // Final attempts took 0.155, 0.157, 0.156 s (first ones ~0.055 s).
            "| 6 | `tests::always_fails` | `fixture` | 0.156 | 3 | failed 3/3 |",
            "| 7 | `tests::removed_in_v2` | `fixture` | 0.127 | 3 |  |",
            // Final, passing attempts (the failed first ones took ~0.025 s).
            "| 8 | `tests::flaky_passes_on_retry` | `fixture` | 0.045 | 3 | flaky 3/3 |",
            "| 9 | `passes_quickly` | `fixture::integration` | 0.035 | 3 |  |",
            "| 10 | `tests::tiny_noise` | `fixture` | 0.011 | 3 |  |",
            "| 11 | `tests::passes_quickly` | `fixture` | 0.007 | 3 |  |",
            // Equal medians: ordered by binary, then name.
            "| 12 | `tests::should_panic_passes` | `fixture` | 0.005 | 3 |  |",
            "| 13 | `nested_module_free_test` | `fixture::integration` | 0.005 | 3 |  |",
        ]
    );
    assert!(
        !out.contains("## Regressions"),
        "no baseline, no comparison"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn top_limits_the_table() {
    let mut args = vec![PathBuf::from("--top"), PathBuf::from("3")];
    args.extend(three_runs());
    let output = slowest(&args);
    assert_success(&output);
    let out = stdout(&output);
    let rows = table_rows(&out, "## Slowest tests");
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows[2].starts_with("| 3 | `tests::ignored_slow` |"),
        "{out}"
    );
    assert!(out.contains("The 3 slowest of 13 timed tests"), "{out}");
}

#[test]
fn default_top_is_documented_as_25() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["slowest", "--help"])
        .output()
        .expect("runs");
    assert_success(&output);
    let help = stdout(&output);
    assert!(help.contains("[default: 25]"), "{help}");
    assert!(help.contains("[default: 1.5]"), "{help}");
    assert!(help.contains("[default: 0.05]"), "{help}");
}

#[test]
fn skipped_tests_are_not_timed() {
    let output = slowest(&[fixture("run1.xml")]);
    assert_success(&output);
    let out = stdout(&output);
    assert!(!out.contains("ignored_slow"), "{out}");
    assert!(
        out.contains("1 test was skipped in every report and not listed."),
        "{out}"
    );
    assert_eq!(table_rows(&out, "## Slowest tests").len(), 12, "{out}");
}

#[test]
fn report_without_timed_tests() {
    // From a run whose filter matched no test: only the #[ignore]d test is
    // listed, as skipped.
    let output = slowest(&[fixture("no-tests.xml")]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "## Slowest tests\n\nNo timed tests in 1 JUnit report.\n\n\
         1 test was skipped in every report and not listed.\n"
    );
}

#[test]
fn baseline_round_trip_flags_regressions_new_and_removed_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.json");

    let mut args = vec![PathBuf::from("--write-baseline"), baseline.clone()];
    args.extend(three_runs());
    assert_success(&slowest(&args));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).expect("baseline written"))
            .expect("baseline is JSON");
    assert_eq!(json["fixture"]["tests::always_fails"], 0.156);
    assert_eq!(json["fixture"]["tests::ignored_slow"], 1.505);
    assert_eq!(json["fixture::integration"]["passes_quickly"], 0.035);
    assert_eq!(json["fixture"].as_object().map(|o| o.len()), Some(11));
    assert_eq!(
        json["fixture::integration"].as_object().map(|o| o.len()),
        Some(2)
    );

    // after.xml: `regresses` went from 0.2 to 0.6 s, `tiny_noise` from ~0.011
    // to 0.037 s (3x, but under the 0.05 s floor), `added_in_v2` is new,
    // `removed_in_v2` is gone and `ignored_slow` was skipped.
    let output = slowest(&[
        PathBuf::from("--baseline"),
        baseline.clone(),
        fixture("after.xml"),
    ]);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("\n## Regressions\n"), "{out}");
    assert_eq!(
        table_rows(&out, "## Regressions"),
        ["| `tests::regresses` | `fixture` | 0.205 | 0.605 | +0.400 s (2.95x) |"]
    );
    assert_eq!(
        table_rows(&out, "### New tests"),
        ["| `tests::added_in_v2` | `fixture` | 0.154 |"]
    );
    assert_eq!(
        table_rows(&out, "### Removed tests"),
        ["| `tests::removed_in_v2` | `fixture` | 0.127 |"]
    );
    assert_eq!(
        table_rows(&out, "### Not run"),
        ["| `tests::ignored_slow` | `fixture` | 1.505 |"]
    );
}

#[test]
fn ratio_and_floor_flags_change_what_is_flagged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.json");
    let mut args = vec![PathBuf::from("--write-baseline"), baseline.clone()];
    args.extend(three_runs());
    assert_success(&slowest(&args));

    let compare = |extra: &[&str]| {
        let mut args: Vec<PathBuf> = extra.iter().map(PathBuf::from).collect();
        args.extend([
            PathBuf::from("--baseline"),
            baseline.clone(),
            fixture("after.xml"),
        ]);
        let output = slowest(&args);
        assert_success(&output);
        stdout(&output)
    };
    let flagged = |out: &str| {
        table_rows(out, "## Regressions")
            .iter()
            .map(|row| row.split(" | ").next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };

    // A lower floor also flags the millisecond test (0.011 -> 0.037 s).
    let out = compare(&["--floor", "0.01"]);
    assert_eq!(
        flagged(&out),
        ["| `tests::regresses`", "| `tests::tiny_noise`"]
    );
    assert!(out.contains("more than 1.5x its baseline and more than 0.010 s above it"));

    // `regresses` grew 2.95x: not past a 3x ratio.
    let out = compare(&["--ratio", "3"]);
    assert!(out.contains("more than 3x its baseline"), "{out}");
    assert!(out.contains("No regressions.\n"), "{out}");
}

#[test]
fn same_file_can_be_compared_and_rewritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.json");
    let mut args = vec![PathBuf::from("--write-baseline"), baseline.clone()];
    args.extend(three_runs());
    assert_success(&slowest(&args));

    let both = [
        PathBuf::from("--baseline"),
        baseline.clone(),
        PathBuf::from("--write-baseline"),
        baseline.clone(),
        fixture("after.xml"),
    ];
    let output = slowest(&both);
    assert_success(&output);
    // Compared with the old baseline...
    assert!(stdout(&output).contains("| `tests::regresses` | `fixture` | 0.205 | 0.605 |"));
    // ...then replaced by the new figures.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).expect("rewritten"))
            .expect("JSON");
    assert_eq!(json["fixture"]["tests::regresses"], 0.605);
    assert!(json["fixture"].get("tests::removed_in_v2").is_none());
}

#[test]
fn writing_a_baseline_with_failed_tests_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.json");
    let output = slowest(&[
        PathBuf::from("--write-baseline"),
        baseline.clone(),
        fixture("run1.xml"),
    ]);
    assert_success(&output);
    let err = stderr(&output);
    assert!(err.starts_with("note: "), "{err}");
    assert!(err.contains("2 tests failed in at least one run"), "{err}");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let output = slowest(&[fixture("run1.xml"), fixture("does-not-exist.xml")]);
    assert_error(&output, "cannot read JUnit report `");
    assert!(stderr(&output).contains("does-not-exist.xml`: No such file or directory"));
}

#[test]
fn empty_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.xml");
    std::fs::write(&empty, "").expect("write");
    let output = slowest(&[fixture("run1.xml"), empty.clone()]);
    assert_error(
        &output,
        &format!("error: JUnit report `{}` is empty", empty.display()),
    );
}

#[test]
fn malformed_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truncated = dir.path().join("truncated.xml");
    let xml = std::fs::read_to_string(fixture("run1.xml")).expect("fixture");
    std::fs::write(&truncated, &xml[..xml.len() / 2]).expect("write");
    let output = slowest(&[&truncated]);
    assert_error(
        &output,
        &format!(
            "error: JUnit report `{}` is not valid JUnit XML: ",
            truncated.display()
        ),
    );

    let not_junit = dir.path().join("not-junit.xml");
    std::fs::write(&not_junit, "<html><body>502 Bad Gateway</body></html>").expect("write");
    let output = slowest(&[&not_junit]);
    assert_error(
        &output,
        &format!(
            "error: JUnit report `{}` is not valid JUnit XML: ",
            not_junit.display()
        ),
    );
}

#[test]
fn bad_baseline_is_an_error_naming_it() {
    let output = slowest(&[
        PathBuf::from("--baseline"),
        fixture("no-such-baseline.json"),
        fixture("run1.xml"),
    ]);
    assert_error(&output, "cannot read baseline `");

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("baseline.json");
    std::fs::write(&bad, "{\"fixture\": {\"tests::regresses\": \"fast\"}}").expect("write");
    let output = slowest(&[
        PathBuf::from("--baseline"),
        bad.clone(),
        fixture("run1.xml"),
    ]);
    assert_error(
        &output,
        &format!("error: baseline `{}` is not valid", bad.display()),
    );
}

#[test]
fn unwritable_baseline_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("no-such-dir").join("baseline.json");
    let output = slowest(&[
        PathBuf::from("--write-baseline"),
        target.clone(),
        fixture("run1.xml"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "error: cannot write baseline `{}`",
            target.display()
        )),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let no_files: [&str; 0] = [];
    let output = slowest(&no_files);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<JUNIT>"));

    let output = slowest(&["--top", "0", "x.xml"]);
    assert_eq!(output.status.code(), Some(2));
    let output = slowest(&["--ratio", "0.5", "x.xml"]);
    assert_eq!(output.status.code(), Some(2));
    let output = slowest(&["--floor", "-1", "x.xml"]);
    assert_eq!(output.status.code(), Some(2));
}
