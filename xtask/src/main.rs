//! Developer tasks for the `tracing-telemetry` crate.
//!
//! Run through the cargo alias defined in `.cargo/config.toml`:
//!
//! ```text
//! cargo xtask slowest [--top N] [--baseline FILE] [--write-baseline FILE] JUNIT...
//! ```
//!
//! See DEVELOPMENT.md for how the reports are produced and used.

mod baseline;
mod junit;
mod report;
mod stats;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Developer tasks for the tracing-telemetry crate.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Slowest(SlowestArgs),
}

/// Summarise test durations from nextest JUnit reports.
///
/// Prints a markdown table of the slowest tests, slowest first, with each
/// test's median duration over the given reports (pass the reports of
/// repeated runs to get a meaningful median). Tests are identified by binary
/// (the <testsuite> name) and test name (the <testcase> name).
///
/// Each test's duration in a report is that of its final attempt. Skipped
/// tests have no duration and are left out. Failed tests are included and
/// marked in the Notes column, as are flaky ones (passed on a retry).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  cargo nextest run --profile ci && cp target/nextest/ci/junit.xml run1.xml\n  (twice more, to run2.xml and run3.xml)\n  cargo xtask slowest --baseline .config/test-durations-baseline.json run1.xml run2.xml run3.xml"
)]
struct SlowestArgs {
    /// Number of tests to list.
    #[arg(long, value_name = "N", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    top: u64,

    /// Compare with this baseline (as written by --write-baseline) and print
    /// a "## Regressions" section, plus new and removed tests.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// Write every timed test's median (binary -> test -> seconds) to FILE as
    /// JSON. May name the same file as --baseline, which is read first.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,

    /// With --baseline: a test regresses when its median is more than RATIO
    /// times its baseline and more than --floor seconds above it.
    #[arg(long, value_name = "RATIO", default_value_t = 1.5, value_parser = parse_ratio)]
    ratio: f64,

    /// With --baseline: a regression must also be more than SECONDS above its
    /// baseline (see --ratio), which keeps noise in millisecond-long tests out
    /// of the report.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.05, value_parser = parse_floor)]
    floor: f64,

    /// JUnit XML reports written by `cargo nextest run --profile ci`
    /// (target/nextest/ci/junit.xml), one per run.
    #[arg(value_name = "JUNIT", required = true)]
    junit: Vec<PathBuf>,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() && value >= 1.0 {
        Ok(value)
    } else {
        Err("must be a number of at least 1.0".to_owned())
    }
}

fn parse_floor(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err("must be a number of seconds, 0 or more".to_owned())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Slowest(args) => slowest(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn slowest(args: &SlowestArgs) -> anyhow::Result<()> {
    // Read everything before printing or writing anything, so that a bad
    // input file produces an error and no partial output.
    let runs = args
        .junit
        .iter()
        .map(|path| junit::read_run(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let baseline = args
        .baseline
        .as_deref()
        .map(|path| baseline::read(path).map(|b| (path, b)))
        .transpose()?;

    let summary = stats::summarise(&runs);
    let top = usize::try_from(args.top).unwrap_or(usize::MAX);

    let mut out = report::slowest_table(&summary, top);
    if let Some((path, baseline)) = &baseline {
        let thresholds = stats::Thresholds {
            ratio: args.ratio,
            floor: args.floor,
        };
        let comparison = stats::compare(&summary, baseline, thresholds);
        out.push('\n');
        out.push_str(&report::regressions(&comparison, path, thresholds));
    }

    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (e.g. `| head`) is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("cannot write the report to standard output")?,
    }

    if let Some(path) = &args.write_baseline {
        baseline::write(path, &summary)?;
        let failed = summary.tests.iter().filter(|t| t.failed > 0).count();
        if failed > 0 {
            let (tests, their) = if failed == 1 {
                ("test", "its duration")
            } else {
                ("tests", "their durations")
            };
            eprintln!(
                "note: {failed} {tests} failed in at least one run; baseline `{}` \
                 records {their} as measured",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn ratio_and_floor_validation() {
        assert_eq!(parse_ratio("1.5"), Ok(1.5));
        assert_eq!(parse_ratio("1"), Ok(1.0));
        assert!(parse_ratio("0.9").is_err());
        assert!(parse_ratio("inf").is_err());
        assert!(parse_ratio("NaN").is_err());
        assert!(parse_ratio("fast").is_err());
        assert_eq!(parse_floor("0"), Ok(0.0));
        assert_eq!(parse_floor("0.05"), Ok(0.05));
        assert!(parse_floor("-0.1").is_err());
        assert!(parse_floor("NaN").is_err());
    }
}
