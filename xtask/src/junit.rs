//! Reading nextest JUnit reports into per-test durations.
//!
//! nextest writes one `<testsuite>` per test binary, named by the binary id
//! (`tracing-telemetry` for the library's unit tests, `tracing-telemetry::track` for
//! `tests/track.rs`), and one `<testcase>` per test, named by the test's path
//! within its binary. The pair identifies a test.
//!
//! Attempts: with retries, nextest records every attempt. For a test that
//! failed, `<testcase time>` is the first attempt and later attempts are
//! `<rerunFailure>`/`<rerunError>` elements; for a flaky test (passed on a
//! retry), `<testcase time>` is the final, passing attempt and the failed ones
//! are `<flakyFailure>`/`<flakyError>` elements. The duration used here is
//! that of the final attempt: the one that started last, by timestamp.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use quick_junit::{Report, TestCase, TestCaseStatus, TestRerun};

/// A test's identity: the test binary and the test's name within it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestId {
    pub binary: String,
    pub name: String,
}

impl TestId {
    pub fn new(binary: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            binary: binary.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TestId {
    /// nextest's own notation: `binary test::path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.binary, self.name)
    }
}

/// How a timed test ended in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed on its first attempt.
    Passed,
    /// Passed on a retry (nextest's FLAKY).
    Flaky,
    /// Did not pass (failed, timed out, crashed), or was flaky under
    /// `flaky-result = "fail"`.
    Failed,
}

/// One test's result in one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record {
    /// The test ran; `seconds` is its final attempt's duration.
    Timed { seconds: f64, outcome: Outcome },
    /// The test did not run (e.g. `#[ignore]`), so it has no duration.
    Skipped,
}

/// One JUnit report: every test it lists.
#[derive(Debug)]
pub struct Run {
    pub tests: BTreeMap<TestId, Record>,
}

/// Reads and parses the JUnit report at `path`.
pub fn read_run(path: &Path) -> anyhow::Result<Run> {
    let xml = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read JUnit report `{}`", path.display()))?;
    parse_run(path, &xml)
}

/// Parses a JUnit report; `path` is only used to name the file in errors.
pub fn parse_run(path: &Path, xml: &str) -> anyhow::Result<Run> {
    let shown = path.display();
    if xml.trim().is_empty() {
        bail!(
            "JUnit report `{shown}` is empty (expected the junit.xml written by \
             `cargo nextest run --profile ci`)"
        );
    }
    let report = Report::deserialize_from_str(xml)
        .with_context(|| format!("JUnit report `{shown}` is not valid JUnit XML"))?;

    let mut tests = BTreeMap::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let id = TestId::new(suite.name.as_str(), case.name.as_str());
            let record =
                record(case).with_context(|| format!("JUnit report `{shown}`, test `{id}`"))?;
            if tests.insert(id.clone(), record).is_some() {
                bail!("JUnit report `{shown}` lists test `{id}` more than once");
            }
        }
    }
    Ok(Run { tests })
}

fn record(case: &TestCase) -> anyhow::Result<Record> {
    let (reruns, outcome) = match &case.status {
        TestCaseStatus::Skipped { .. } => return Ok(Record::Skipped),
        TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
            (&flaky_runs[..], Outcome::Passed)
        }
        TestCaseStatus::Success { flaky_runs } => (&flaky_runs[..], Outcome::Flaky),
        TestCaseStatus::NonSuccess { reruns, .. } => (&reruns.runs[..], Outcome::Failed),
    };

    let Some(time) = final_attempt(case, reruns) else {
        bail!("the test ran, but its final attempt has no `time` attribute");
    };
    Ok(Record::Timed {
        seconds: time.as_secs_f64(),
        outcome,
    })
}

/// The duration of the attempt that started last. If any attempt lacks a
/// timestamp the order cannot be told, and the `<testcase>` itself is used.
fn final_attempt(case: &TestCase, reruns: &[TestRerun]) -> Option<Duration> {
    let attempts = std::iter::once((case.timestamp, case.time))
        .chain(reruns.iter().map(|rerun| (rerun.timestamp, rerun.time)));
    let mut last = (case.timestamp, case.time);
    for (start, time) in attempts {
        match (start, last.0) {
            (Some(a), Some(b)) if a > b => last = (start, time),
            (Some(_), Some(_)) => {}
            _ => return case.time,
        }
    }
    last.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> anyhow::Result<Run> {
        parse_run(Path::new("report.xml"), xml)
    }

    fn get(run: &Run, binary: &str, name: &str) -> Record {
        match run.tests.get(&TestId::new(binary, name)) {
            Some(record) => *record,
            None => panic!("`{binary} {name}` is not in the report"),
        }
    }

    fn timed(seconds: f64, outcome: Outcome) -> Record {
        Record::Timed { seconds, outcome }
    }

    /// run1.xml is a real `cargo nextest run --profile ci` report (see
    /// tests/fixtures/README.md); the figures below are the ones it records.
    #[test]
    fn reads_a_real_nextest_report() {
        let run = parse(include_str!("../tests/fixtures/run1.xml")).expect("valid report");
        assert_eq!(run.tests.len(), 13);
        assert_eq!(
            get(&run, "fixture", "tests::regresses"),
            timed(0.205, Outcome::Passed)
        );
        // Ignored tests are listed with <skipped> (junit.report-skipped).
        assert_eq!(get(&run, "fixture", "tests::ignored_slow"), Record::Skipped);
        // Failed on all three attempts: the first took 0.055 s (recorded on
        // <testcase>), the final one 0.155 s (the last <rerunFailure>).
        assert_eq!(
            get(&run, "fixture", "tests::always_fails"),
            timed(0.155, Outcome::Failed)
        );
        // Failed once (0.025 s, <flakyFailure>), then passed in 0.045 s.
        assert_eq!(
            get(&run, "fixture", "tests::flaky_passes_on_retry"),
            timed(0.045, Outcome::Flaky)
        );
        // Killed by the slow-timeout.
        assert_eq!(
            get(&run, "fixture", "tests::times_out"),
            timed(2.003, Outcome::Failed)
        );
        // The same test name in two binaries is two tests.
        assert_eq!(
            get(&run, "fixture", "tests::passes_quickly"),
            timed(0.007, Outcome::Passed)
        );
        assert_eq!(
            get(&run, "fixture::integration", "passes_quickly"),
            timed(0.035, Outcome::Passed)
        );
    }

    /// With `flaky-result = "fail"`, nextest records a flaky test as a
    /// <failure> whose <testcase> time is the final, passing attempt.
    #[test]
    fn flaky_test_reported_as_failure_uses_final_attempt() {
        let run = parse(include_str!("../tests/fixtures/flaky-fail.xml")).expect("valid report");
        assert_eq!(
            get(&run, "fixture", "tests::flaky_passes_on_retry"),
            timed(0.045, Outcome::Failed)
        );
    }

    #[test]
    fn report_without_tests_is_valid() {
        let run = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <testsuites name="nextest-run" tests="0" failures="0" errors="0" time="0.000">
            </testsuites>"#,
        )
        .expect("valid report");
        assert!(run.tests.is_empty());
    }

    #[test]
    fn errors_count_as_failures() {
        let run = parse(
            r#"<testsuites name="r" tests="1" failures="0" errors="1">
              <testsuite name="bin" tests="1" failures="0" errors="1">
                <testcase name="crashes" time="0.250"><error type="SIGSEGV"/></testcase>
              </testsuite>
            </testsuites>"#,
        )
        .expect("valid report");
        assert_eq!(get(&run, "bin", "crashes"), timed(0.25, Outcome::Failed));
    }

    #[test]
    fn reruns_without_timestamps_fall_back_to_the_testcase_time() {
        let run = parse(
            r#"<testsuites name="r" tests="1" failures="1" errors="0">
              <testsuite name="bin" tests="1" failures="1" errors="0">
                <testcase name="t" time="1.000">
                  <failure/>
                  <rerunFailure time="2.000"/>
                </testcase>
              </testsuite>
            </testsuites>"#,
        )
        .expect("valid report");
        assert_eq!(get(&run, "bin", "t"), timed(1.0, Outcome::Failed));
    }

    #[test]
    fn duplicate_test_is_an_error() {
        let err = parse(
            r#"<testsuites name="r" tests="2" failures="0" errors="0">
              <testsuite name="bin" tests="2" failures="0" errors="0">
                <testcase name="t" time="0.1"/>
                <testcase name="t" time="0.2"/>
              </testsuite>
            </testsuites>"#,
        )
        .expect_err("duplicates are rejected");
        assert_eq!(
            format!("{err:#}"),
            "JUnit report `report.xml` lists test `bin t` more than once"
        );
    }

    #[test]
    fn missing_time_is_an_error_naming_file_and_test() {
        let err = parse(
            r#"<testsuites name="r" tests="1" failures="0" errors="0">
              <testsuite name="bin" tests="1" failures="0" errors="0">
                <testcase name="t"/>
              </testsuite>
            </testsuites>"#,
        )
        .expect_err("a test that ran must have a time");
        assert_eq!(
            format!("{err:#}"),
            "JUnit report `report.xml`, test `bin t`: the test ran, but its final \
             attempt has no `time` attribute"
        );
    }

    #[test]
    fn skipped_test_needs_no_time() {
        let run = parse(
            r#"<testsuites name="r" tests="1" failures="0" errors="0">
              <testsuite name="bin" tests="1" failures="0" errors="0">
                <testcase name="t"><skipped/></testcase>
              </testsuite>
            </testsuites>"#,
        )
        .expect("valid report");
        assert_eq!(get(&run, "bin", "t"), Record::Skipped);
    }

    #[test]
    fn empty_and_malformed_input_are_errors() {
        let err = parse("  \n").expect_err("empty");
        assert!(format!("{err:#}").starts_with("JUnit report `report.xml` is empty"));
        let err = parse("<testsuites><testsuite name=").expect_err("truncated");
        assert!(
            format!("{err:#}").starts_with("JUnit report `report.xml` is not valid JUnit XML: "),
            "{err:#}"
        );
        let err = parse("{\"not\": \"xml\"}").expect_err("not XML");
        assert!(
            format!("{err:#}").starts_with("JUnit report `report.xml` is not valid JUnit XML: "),
            "{err:#}"
        );
    }
}
