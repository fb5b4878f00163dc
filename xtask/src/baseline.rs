//! The baseline file: each test's median duration from a reference run.
//!
//! Format: a JSON object mapping each test binary to an object mapping each
//! test name to its median duration in seconds, both sorted by name:
//!
//! ```json
//! {
//!   "tracing-telemetry": { "config::tests::near_miss_accepts_typos_and_spares_other_tools": 0.004 },
//!   "tracing-telemetry::track": { "the_timer_records_the_scope_it_guards": 0.024 }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::junit::TestId;
use crate::stats::Summary;

type Json = BTreeMap<String, BTreeMap<String, f64>>;

/// Baseline durations in seconds, by test.
#[derive(Debug, Default, PartialEq)]
pub struct Baseline(BTreeMap<TestId, f64>);

impl Baseline {
    pub fn get(&self, id: &TestId) -> Option<f64> {
        self.0.get(id).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (TestId, f64)> + '_ {
        self.0.iter().map(|(id, seconds)| (id.clone(), *seconds))
    }

    pub fn from_summary(summary: &Summary) -> Self {
        summary
            .tests
            .iter()
            // JUnit times have millisecond precision; don't pretend otherwise.
            .map(|t| (t.id.clone(), (t.median * 1000.0).round() / 1000.0))
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut json = Json::new();
        for (id, seconds) in &self.0 {
            json.entry(id.binary.clone())
                .or_default()
                .insert(id.name.clone(), *seconds);
        }
        let mut text = serde_json::to_string_pretty(&json)?;
        text.push('\n');
        Ok(text)
    }

    /// Parses baseline JSON; `path` is only used to name the file in errors.
    pub fn from_json(path: &Path, text: &str) -> anyhow::Result<Self> {
        let shown = path.display();
        let json: Json = serde_json::from_str(text).with_context(|| {
            format!("baseline `{shown}` is not valid (expected JSON of the form {{\"binary\": {{\"test\": seconds}}}})")
        })?;
        let mut baseline = BTreeMap::new();
        for (binary, tests) in json {
            for (name, seconds) in tests {
                if !(seconds.is_finite() && seconds >= 0.0) {
                    bail!("baseline `{shown}`: test `{binary} {name}` has invalid duration {seconds} (expected seconds, 0 or more)");
                }
                baseline.insert(TestId::new(binary.clone(), name), seconds);
            }
        }
        Ok(Self(baseline))
    }
}

impl FromIterator<(TestId, f64)> for Baseline {
    fn from_iter<I: IntoIterator<Item = (TestId, f64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

pub fn read(path: &Path) -> anyhow::Result<Baseline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read baseline `{}`", path.display()))?;
    Baseline::from_json(path, &text)
}

pub fn write(path: &Path, summary: &Summary) -> anyhow::Result<()> {
    let json = Baseline::from_summary(summary)
        .to_json()
        .context("cannot serialise the baseline")?;
    std::fs::write(path, json)
        .with_context(|| format!("cannot write baseline `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_is_nested_by_binary() {
        let baseline: Baseline = [
            (TestId::new("telemetry", "b::slow"), 1.25),
            (TestId::new("telemetry", "a::fast"), 0.004),
            (TestId::new("telemetry::config", "a::fast"), 0.5),
        ]
        .into_iter()
        .collect();
        let json = baseline.to_json().expect("serialises");
        assert_eq!(
            json,
            "{\n  \"telemetry\": {\n    \"a::fast\": 0.004,\n    \"b::slow\": 1.25\n  },\n  \
             \"telemetry::config\": {\n    \"a::fast\": 0.5\n  }\n}\n"
        );
        assert_eq!(
            Baseline::from_json(Path::new("b.json"), &json).ok(),
            Some(baseline)
        );
    }

    #[test]
    fn malformed_json_names_the_file() {
        let err = Baseline::from_json(Path::new("base.json"), "{\"telemetry\": [1, 2]}")
            .expect_err("an array is not a map of tests");
        let msg = format!("{err:#}");
        assert!(msg.contains("baseline `base.json` is not valid"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn negative_duration_is_rejected() {
        let err = Baseline::from_json(Path::new("base.json"), r#"{"lib": {"t": -1.0}}"#)
            .expect_err("negative durations are invalid");
        let msg = format!("{err:#}");
        assert!(msg.contains("`lib t` has invalid duration -1"), "{msg}");
    }
}
