//! Markdown rendering of the summary and of the baseline comparison.

use std::fmt::Write as _;
use std::path::Path;

use crate::junit::TestId;
use crate::stats::{Comparison, Summary, TestSummary, Thresholds};

/// A markdown code span; test names and binary ids never contain backticks,
/// but a `|` would end a table cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

fn id_cells(id: &TestId) -> String {
    format!("{} | {}", code(&id.name), code(&id.binary))
}

fn notes(test: &TestSummary, reports: usize) -> String {
    let mut notes = Vec::new();
    if test.failed > 0 {
        notes.push(format!("failed {}/{reports}", test.failed));
    }
    if test.flaky > 0 {
        notes.push(format!("flaky {}/{reports}", test.flaky));
    }
    if test.skipped > 0 {
        notes.push(format!("skipped {}/{reports}", test.skipped));
    }
    notes.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The `## Slowest tests` section: at most `top` tests, slowest first.
pub fn slowest_table(summary: &Summary, top: usize) -> String {
    let mut out = String::from("## Slowest tests\n\n");
    let timed = summary.tests.len();
    let reports = plural(summary.reports, "JUnit report", "JUnit reports");
    if timed == 0 {
        let _ = writeln!(out, "No timed tests in {reports}.");
    } else {
        let which = if timed <= top {
            format!("All {}", plural(timed, "timed test", "timed tests"))
        } else {
            format!("The {top} slowest of {timed} timed tests")
        };
        let _ = writeln!(
            out,
            "{which}, by median duration over {reports} (final attempt of each run).\n"
        );
        out.push_str("| # | Test | Binary | Median (s) | Runs | Notes |\n");
        out.push_str("|--:|------|--------|-----------:|-----:|-------|\n");
        for (rank, test) in summary.tests.iter().take(top).enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {} | {} |",
                rank + 1,
                id_cells(&test.id),
                test.median,
                test.runs,
                notes(test, summary.reports),
            );
        }
    }
    if !summary.never_timed.is_empty() {
        let _ = writeln!(
            out,
            "\n{} skipped in every report and not listed.",
            plural(summary.never_timed.len(), "test was", "tests were")
        );
    }
    out
}

/// The `## Regressions` section, with new, removed and not-run tests.
pub fn regressions(cmp: &Comparison, baseline: &Path, t: Thresholds) -> String {
    let mut out = String::from("## Regressions\n\n");
    let _ = writeln!(
        out,
        "Compared with the baseline {}. A test regresses when its median is more \
         than {}x its baseline and more than {:.3} s above it.\n",
        code(&baseline.display().to_string()),
        t.ratio,
        t.floor,
    );
    if cmp.regressions.is_empty() {
        out.push_str("No regressions.\n");
    } else {
        out.push_str("| Test | Binary | Baseline (s) | Median (s) | Change |\n");
        out.push_str("|------|--------|-------------:|-----------:|-------:|\n");
        for r in &cmp.regressions {
            let ratio = if r.baseline > 0.0 {
                format!(" ({:.2}x)", r.median / r.baseline)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.3} | +{:.3} s{ratio} |",
                id_cells(&r.id),
                r.baseline,
                r.median,
                r.median - r.baseline,
            );
        }
    }

    out.push_str("\n### New tests\n\n");
    if cmp.new.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("Timed in these reports, not in the baseline:\n\n");
        out.push_str("| Test | Binary | Median (s) |\n");
        out.push_str("|------|--------|-----------:|\n");
        for test in &cmp.new {
            let _ = writeln!(out, "| {} | {:.3} |", id_cells(&test.id), test.median);
        }
    }

    out.push_str("\n### Removed tests\n\n");
    if cmp.removed.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("In the baseline, in none of these reports:\n\n");
        baseline_table(&mut out, &cmp.removed);
    }

    if !cmp.not_run.is_empty() {
        out.push_str("\n### Not run\n\n");
        out.push_str(
            "In the baseline, skipped in every report (e.g. `#[ignore]`d tests \
             in a run without `--run-ignored all`):\n\n",
        );
        baseline_table(&mut out, &cmp.not_run);
    }
    out
}

fn baseline_table(out: &mut String, tests: &[(TestId, f64)]) {
    out.push_str("| Test | Binary | Baseline (s) |\n");
    out.push_str("|------|--------|-------------:|\n");
    for (id, seconds) in tests {
        let _ = writeln!(out, "| {} | {seconds:.3} |", id_cells(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Regression;

    fn test(binary: &str, name: &str, median: f64) -> TestSummary {
        TestSummary {
            id: TestId::new(binary, name),
            median,
            runs: 3,
            failed: 0,
            flaky: 0,
            skipped: 0,
        }
    }

    fn rows(markdown: &str) -> Vec<&str> {
        markdown
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| # ") && !l.starts_with("| Test "))
            .collect()
    }

    #[test]
    fn table_lists_at_most_top_tests() {
        let summary = Summary {
            reports: 3,
            tests: (0..30)
                .map(|i| test("lib", &format!("t{i:02}"), 30.0 - f64::from(i)))
                .collect(),
            never_timed: Default::default(),
        };
        let out = slowest_table(&summary, 25);
        let rows = rows(&out);
        assert_eq!(rows.len(), 25);
        assert_eq!(rows[0], "| 1 | `t00` | `lib` | 30.000 | 3 |  |");
        assert_eq!(rows[24], "| 25 | `t24` | `lib` | 6.000 | 3 |  |");
        assert!(out.contains("The 25 slowest of 30 timed tests"), "{out}");
    }

    #[test]
    fn notes_mark_failed_flaky_and_skipped_runs() {
        let mut t = test("lib", "t", 0.5);
        t.runs = 2;
        t.failed = 1;
        t.flaky = 1;
        t.skipped = 1;
        let summary = Summary {
            reports: 3,
            tests: vec![t],
            never_timed: Default::default(),
        };
        assert_eq!(
            rows(&slowest_table(&summary, 25)),
            ["| 1 | `t` | `lib` | 0.500 | 2 | failed 1/3, flaky 1/3, skipped 1/3 |"]
        );
    }

    #[test]
    fn pipes_in_names_do_not_break_the_table() {
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn regression_rows_show_change_and_ratio() {
        let cmp = Comparison {
            regressions: vec![Regression {
                id: TestId::new("lib", "t"),
                baseline: 0.2,
                median: 0.5,
            }],
            ..Comparison::default()
        };
        let t = Thresholds {
            ratio: 1.5,
            floor: 0.05,
        };
        let out = regressions(&cmp, Path::new("base.json"), t);
        assert!(out.starts_with("## Regressions\n"), "{out}");
        assert!(
            out.contains("more than 1.5x its baseline and more than 0.050 s above it"),
            "{out}"
        );
        assert!(
            out.contains("| `t` | `lib` | 0.200 | 0.500 | +0.300 s (2.50x) |"),
            "{out}"
        );
        assert!(out.contains("### New tests\n\nNone.\n"), "{out}");
        assert!(out.contains("### Removed tests\n\nNone.\n"), "{out}");
        assert!(!out.contains("### Not run"), "{out}");
    }
}
