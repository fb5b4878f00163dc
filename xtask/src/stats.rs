//! Medians over repeated runs, and comparison with a baseline.

use std::collections::{BTreeMap, BTreeSet};

use crate::baseline::Baseline;
use crate::junit::{Outcome, Record, Run, TestId};

/// The median of `values`: the middle value, or the mean of the two middle
/// values when there is an even number of them. `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// One test summarised over all runs in which it was timed.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSummary {
    pub id: TestId,
    /// Median of the test's durations, in seconds.
    pub median: f64,
    /// Number of runs in which the test was timed.
    pub runs: usize,
    /// Of those, runs in which it failed.
    pub failed: usize,
    /// Of those, runs in which it passed only on a retry.
    pub flaky: usize,
    /// Runs in which it was listed as skipped.
    pub skipped: usize,
}

/// All tests over all runs.
#[derive(Debug, Default)]
pub struct Summary {
    /// Number of reports summarised.
    pub reports: usize,
    /// Timed tests, slowest first (ties broken by binary, then name).
    pub tests: Vec<TestSummary>,
    /// Tests listed in some report but skipped in every one.
    pub never_timed: BTreeSet<TestId>,
}

pub fn summarise(runs: &[Run]) -> Summary {
    #[derive(Default)]
    struct Acc {
        times: Vec<f64>,
        failed: usize,
        flaky: usize,
        skipped: usize,
    }

    let mut by_test: BTreeMap<&TestId, Acc> = BTreeMap::new();
    for run in runs {
        for (id, record) in &run.tests {
            let acc = by_test.entry(id).or_default();
            match *record {
                Record::Skipped => acc.skipped += 1,
                Record::Timed { seconds, outcome } => {
                    acc.times.push(seconds);
                    match outcome {
                        Outcome::Passed => {}
                        Outcome::Flaky => acc.flaky += 1,
                        Outcome::Failed => acc.failed += 1,
                    }
                }
            }
        }
    }

    let mut summary = Summary {
        reports: runs.len(),
        ..Summary::default()
    };
    for (id, acc) in by_test {
        match median(&acc.times) {
            Some(median) => summary.tests.push(TestSummary {
                id: id.clone(),
                median,
                runs: acc.times.len(),
                failed: acc.failed,
                flaky: acc.flaky,
                skipped: acc.skipped,
            }),
            None => {
                summary.never_timed.insert(id.clone());
            }
        }
    }
    summary
        .tests
        .sort_by(|a, b| b.median.total_cmp(&a.median).then_with(|| a.id.cmp(&b.id)));
    summary
}

/// When a slower median counts as a regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// The median must exceed `ratio` times the baseline...
    pub ratio: f64,
    /// ...and exceed the baseline by more than `floor` seconds.
    pub floor: f64,
}

impl Thresholds {
    pub fn is_regression(self, baseline: f64, median: f64) -> bool {
        median > baseline * self.ratio && median - baseline > self.floor
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    pub id: TestId,
    pub baseline: f64,
    pub median: f64,
}

/// The result of comparing a summary with a baseline.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Largest increase first.
    pub regressions: Vec<Regression>,
    /// Timed now, absent from the baseline; slowest first.
    pub new: Vec<TestSummary>,
    /// In the baseline, absent from every report.
    pub removed: Vec<(TestId, f64)>,
    /// In the baseline, listed now but skipped in every report.
    pub not_run: Vec<(TestId, f64)>,
}

pub fn compare(summary: &Summary, baseline: &Baseline, thresholds: Thresholds) -> Comparison {
    let mut comparison = Comparison::default();
    let mut seen = BTreeSet::new();
    for test in &summary.tests {
        seen.insert(&test.id);
        match baseline.get(&test.id) {
            Some(base) if thresholds.is_regression(base, test.median) => {
                comparison.regressions.push(Regression {
                    id: test.id.clone(),
                    baseline: base,
                    median: test.median,
                });
            }
            Some(_) => {}
            None => comparison.new.push(test.clone()),
        }
    }
    for (id, seconds) in baseline.iter() {
        if seen.contains(&id) {
            continue;
        }
        if summary.never_timed.contains(&id) {
            comparison.not_run.push((id, seconds));
        } else {
            comparison.removed.push((id, seconds));
        }
    }
    comparison.regressions.sort_by(|a, b| {
        (b.median - b.baseline)
            .total_cmp(&(a.median - a.baseline))
            .then_with(|| a.id.cmp(&b.id))
    });
    comparison
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_count_is_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[0.5]), Some(0.5));
        // One outlier does not move the median.
        assert_eq!(median(&[0.1, 90.0, 0.2]), Some(0.2));
    }

    #[test]
    fn median_of_even_count_is_mean_of_middle_values() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, 2.0]), Some(1.5));
    }

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn regression_needs_both_ratio_and_floor() {
        let t = Thresholds {
            ratio: 1.5,
            floor: 0.05,
        };
        // 3x slower but only 20 ms: noise in a millisecond test.
        assert!(!t.is_regression(0.010, 0.030));
        // 1 s slower but only 1.1x: within the ratio.
        assert!(!t.is_regression(10.0, 11.0));
        // Both exceeded.
        assert!(t.is_regression(0.2, 0.6));
        assert!(t.is_regression(1.0, 1.6));
        // Faster is never a regression.
        assert!(!t.is_regression(1.0, 0.1));
    }

    #[test]
    fn regression_thresholds_are_strict() {
        let t = Thresholds {
            ratio: 2.0,
            floor: 0.5,
        };
        // Exactly at the ratio (and past the floor): not a regression.
        assert!(!t.is_regression(1.0, 2.0));
        assert!(t.is_regression(1.0, 2.001));
        // Exactly at the floor (and past the ratio): not a regression.
        assert!(!t.is_regression(0.25, 0.75));
        assert!(t.is_regression(0.25, 0.751));
    }

    #[test]
    fn zero_baseline_is_judged_by_the_floor() {
        let t = Thresholds {
            ratio: 1.5,
            floor: 0.05,
        };
        assert!(!t.is_regression(0.0, 0.04));
        assert!(t.is_regression(0.0, 0.06));
    }

    fn run(records: &[(&str, &str, Record)]) -> Run {
        Run {
            tests: records
                .iter()
                .map(|(bin, name, r)| (TestId::new(*bin, *name), *r))
                .collect(),
        }
    }

    fn timed(seconds: f64, outcome: Outcome) -> Record {
        Record::Timed { seconds, outcome }
    }

    #[test]
    fn summary_takes_median_per_binary_and_test() {
        use Outcome::*;
        let runs = [
            run(&[
                ("lib", "a", timed(1.0, Passed)),
                ("it", "a", timed(0.1, Passed)),
                ("lib", "b", timed(0.5, Failed)),
            ]),
            run(&[
                ("lib", "a", timed(3.0, Passed)),
                ("it", "a", timed(0.2, Flaky)),
                ("lib", "b", Record::Skipped),
            ]),
            run(&[
                ("lib", "a", timed(2.0, Passed)),
                ("it", "a", timed(0.3, Passed)),
                ("lib", "c", Record::Skipped),
            ]),
        ];
        let summary = summarise(&runs);
        assert_eq!(summary.reports, 3);
        let got: Vec<_> = summary
            .tests
            .iter()
            .map(|t| {
                (
                    t.id.to_string(),
                    t.median,
                    t.runs,
                    t.failed,
                    t.flaky,
                    t.skipped,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("lib a".to_owned(), 2.0, 3, 0, 0, 0),
                ("lib b".to_owned(), 0.5, 1, 1, 0, 1),
                ("it a".to_owned(), 0.2, 3, 0, 1, 0),
            ]
        );
        assert_eq!(
            summary.never_timed.into_iter().collect::<Vec<_>>(),
            [TestId::new("lib", "c")]
        );
    }

    #[test]
    fn equal_medians_are_ordered_by_binary_then_name() {
        let runs = [run(&[
            ("b", "x", timed(1.0, Outcome::Passed)),
            ("a", "y", timed(1.0, Outcome::Passed)),
            ("a", "x", timed(1.0, Outcome::Passed)),
        ])];
        let order: Vec<_> = summarise(&runs)
            .tests
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        assert_eq!(order, ["a x", "a y", "b x"]);
    }

    #[test]
    fn compare_finds_regressions_new_removed_and_not_run() {
        use Outcome::Passed;
        let runs = [run(&[
            ("lib", "slower", timed(0.9, Passed)),
            ("lib", "noisy", timed(0.012, Passed)),
            ("lib", "steady", timed(1.0, Passed)),
            ("lib", "much_slower", timed(5.0, Passed)),
            ("lib", "added", timed(0.3, Passed)),
            ("lib", "ignored", Record::Skipped),
        ])];
        let summary = summarise(&runs);
        let baseline: Baseline = [
            (TestId::new("lib", "slower"), 0.3),
            (TestId::new("lib", "noisy"), 0.004),
            (TestId::new("lib", "steady"), 0.95),
            (TestId::new("lib", "much_slower"), 1.0),
            (TestId::new("lib", "deleted"), 0.2),
            (TestId::new("lib", "ignored"), 2.0),
        ]
        .into_iter()
        .collect();
        let cmp = compare(
            &summary,
            &baseline,
            Thresholds {
                ratio: 1.5,
                floor: 0.05,
            },
        );
        let regressions: Vec<_> = cmp
            .regressions
            .iter()
            .map(|r| (r.id.name.as_str(), r.baseline, r.median))
            .collect();
        // Largest increase first; `noisy` (3x but 8 ms) is not listed.
        assert_eq!(
            regressions,
            [("much_slower", 1.0, 5.0), ("slower", 0.3, 0.9)]
        );
        let new: Vec<_> = cmp.new.iter().map(|t| t.id.name.as_str()).collect();
        assert_eq!(new, ["added"]);
        assert_eq!(cmp.removed, [(TestId::new("lib", "deleted"), 0.2)]);
        assert_eq!(cmp.not_run, [(TestId::new("lib", "ignored"), 2.0)]);
    }
}
