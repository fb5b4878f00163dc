//! Config parsing: any bytes as the values of `TELEMETRY_ENABLED`,
//! `TELEMETRY_EXPORTER` and `TELEMETRY_FILE`, among any other variables. Never a
//! panic; telemetry on only when every value is valid and `TELEMETRY_ENABLED` says so;
//! an error names its variable, and an invalid value gives a one-line message.
//!
//! cargo +nightly fuzz run config

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tracing_telemetry::{Config, Exporter};

const KNOWN: [&str; 3] = ["TELEMETRY_ENABLED", "TELEMETRY_EXPORTER", "TELEMETRY_FILE"];

#[derive(Arbitrary, Debug)]
struct Input {
    enabled: Option<Vec<u8>>,
    exporter: Option<Vec<u8>>,
    file: Option<Vec<u8>>,
    others: Vec<(Name, Vec<u8>)>,
    /// Where the known variables go among the others.
    at: u8,
}

/// The name of another variable.
#[derive(Arbitrary, Debug)]
enum Name {
    /// Any name.
    Any(Vec<u8>),
    /// Any name under `TELEMETRY_`.
    Under(Vec<u8>),
    /// A known name with one byte replaced, inserted or removed: a near miss, which
    /// random bytes would seldom hit.
    Near {
        known: u8,
        at: u8,
        byte: u8,
        edit: u8,
    },
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Any(name) => name.clone(),
            Name::Under(suffix) => [b"TELEMETRY_".as_slice(), suffix].concat(),
            Name::Near {
                known,
                at,
                byte,
                edit,
            } => {
                let mut name = KNOWN[usize::from(*known) % KNOWN.len()].as_bytes().to_vec();
                let at = usize::from(*at) % name.len();
                match edit % 3 {
                    0 => name[at] = *byte,
                    1 => name.insert(at, *byte),
                    _ => {
                        name.remove(at);
                    }
                }
                name
            }
        }
    }
}

/// docs/OPERATIONS.md: `true`/`false` in any letter case, `1`/`0`, ASCII whitespace
/// ignored, empty = unset.
fn documented_enabled(raw: &[u8]) -> Option<bool> {
    let v = std::str::from_utf8(raw).ok()?.trim_ascii();
    if v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false") {
        Some(false)
    } else if v == "1" || v.eq_ignore_ascii_case("true") {
        Some(true)
    } else {
        None
    }
}

/// One or more of `none`, `stdout`, `stderr`, `file`, `prometheus`, `otlp` in any
/// letter case, comma-separated, ASCII whitespace around each ignored; each at most
/// once; `none` only alone (no exporter); empty = unset (stderr). Exporters whose
/// cargo feature is off are refused.
fn documented_exporters(raw: &[u8]) -> Option<Vec<Exporter>> {
    let v = std::str::from_utf8(raw).ok()?.trim_ascii();
    if v.is_empty() {
        return Some(vec![Exporter::Stderr]);
    }
    let mut list = Vec::new();
    for entry in v.split(',').map(str::trim_ascii) {
        let exporter = match entry.to_ascii_lowercase().as_str() {
            "none" => Exporter::None,
            "stdout" => Exporter::Stdout,
            "stderr" => Exporter::Stderr,
            "file" => Exporter::File,
            "prometheus" => Exporter::Prometheus,
            "otlp" => Exporter::Otlp,
            _ => return None,
        };
        if list.contains(&exporter) || !exporter.is_built_in() {
            return None;
        }
        list.push(exporter);
    }
    if list.len() > 1 && list.contains(&Exporter::None) {
        return None;
    }
    list.retain(|e| *e != Exporter::None);
    Some(list)
}

fuzz_target!(|input: Input| {
    let mut vars: Vec<(OsString, OsString)> = input
        .others
        .iter()
        .map(|(name, value)| {
            (
                OsString::from_vec(name.bytes()),
                OsString::from_vec(value.clone()),
            )
        })
        .filter(|(name, _)| !KNOWN.iter().any(|k| name == k))
        .collect();
    let at = usize::from(input.at) % (vars.len() + 1);
    for (name, value) in KNOWN
        .iter()
        .zip([&input.enabled, &input.exporter, &input.file])
    {
        if let Some(value) = value {
            vars.insert(
                at,
                (OsString::from(name), OsString::from_vec(value.clone())),
            );
        }
    }

    let enabled = input
        .enabled
        .as_deref()
        .map_or(Some(false), documented_enabled);
    let exporters = input
        .exporter
        .as_deref()
        .map_or(Some(vec![Exporter::Stderr]), documented_exporters);

    match Config::from_iter(vars) {
        Ok(config) => {
            assert_eq!(Some(config.enabled()), enabled, "{input:?}");
            let got: Vec<Exporter> = config.exporters().collect();
            assert_eq!(Some(&got), exporters.as_ref(), "{input:?}");
            assert_eq!(
                got.contains(&Exporter::File),
                config.file().is_some(),
                "{input:?}"
            );
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!err.variable().is_empty(), "{input:?}");
            // Values and names are quoted escaped: always one clean line.
            assert!(!message.chars().any(char::is_control), "{message:?}");
            if KNOWN.contains(&err.variable()) {
                assert!(
                    message.contains(err.variable()),
                    "{message:?} does not name {}",
                    err.variable()
                );
            } else {
                assert!(message.starts_with("unknown variable \""), "{message:?}");
            }
        }
    }
});
