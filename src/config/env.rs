//! The environment, read once into a snapshot, and the rules every variable the crate
//! reads follows, `TELEMETRY_*` and `OTEL_*` alike:
//!
//! * **set twice** (as a list given to `from_iter`, or a doctored `environ`, can
//!   have it) is an error naming the variable (quoting both values, unless the
//!   variable may hold a credential);
//! * **not UTF-8** is an error naming the variable;
//! * **surrounding ASCII whitespace** is trimmed, and **empty** (or only whitespace)
//!   is unset;
//! * a **relative path** is made absolute against the working directory when it is
//!   read, so that a later change of directory changes nothing.
//!
//! Each parser (`telemetry.rs`, `resource.rs`, `otlp.rs`) asks the snapshot for its
//! variables by name: a variable is judged only when a parser reads it, so that with
//! telemetry off the caller can decide that an `OTEL_*` variable (shared with any
//! OpenTelemetry SDK in the process) is not its to refuse.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Shown};

/// The prefix of this crate's own variables; a near miss is looked for in any letter case.
pub(crate) const TELEMETRY_PREFIX: &str = "TELEMETRY_";
/// The prefix of the OpenTelemetry variables (case-sensitive, as the specification
/// spells them).
const OTEL_PREFIX: &str = "OTEL_";
/// What a path variable accepts, for the message about a value that is not UTF-8.
const PATH_EXPECTED: &str = "expected a path in UTF-8";

/// The variables this crate reads or judges (`TELEMETRY_*` in any letter case,
/// `OTEL_*`), as given, in order; every other variable was left out when it was taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: Vec<(String, OsString)>,
}

impl Env {
    /// Takes the variables of `vars` that this crate reads or judges. A name that is not
    /// UTF-8 is none of them.
    pub(crate) fn read<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let name = name.into().into_string().ok()?;
                let ours = name.starts_with(OTEL_PREFIX) || strip_telemetry_prefix(&name).is_some();
                ours.then(|| (name, value.into()))
            })
            .collect();
        Env { vars }
    }

    /// The variables of this process.
    pub(crate) fn from_process() -> Self {
        Self::read(std::env::vars_os())
    }

    /// Every name that starts with `TELEMETRY_` in any letter case, as given, with the
    /// part after the prefix.
    pub(crate) fn telemetry_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .filter_map(|(name, _)| Some((name.as_str(), strip_telemetry_prefix(name)?)))
    }

    /// The value of `name` (`None` when unset or empty once trimmed), or why it cannot
    /// be read: set twice, or not UTF-8. `expected` says what the variable accepts, for
    /// that message.
    pub(crate) fn get(&self, name: &str, expected: &str) -> Result<Option<Value<'_>>, ConfigError> {
        let mut values = self.vars.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if let Some(again) = values.next() {
            return Err(set_twice(name, value, again));
        }
        let value = value.to_str().ok_or_else(|| {
            let expected = format!("not valid UTF-8; {expected}");
            if may_hold_credential(name) {
                ConfigError::new(name, format!("invalid value for {name} ({expected})"))
            } else {
                ConfigError::invalid(name, &value.to_string_lossy(), &expected)
            }
        })?;
        let text = value.trim_ascii();
        Ok((!text.is_empty()).then_some(Value { text, given: value }))
    }

    /// The value of `name` exactly as given, when it is set once and UTF-8 (even if
    /// empty): for a message that quotes what the user wrote.
    pub(crate) fn given(&self, name: &str) -> Option<&str> {
        let mut values = self.vars.iter().filter(|(n, _)| n == name);
        match (values.next(), values.next()) {
            (Some((_, value)), None) => value.to_str(),
            _ => None,
        }
    }

    /// A path variable: its value read as [`get`](Self::get) reads it, made absolute
    /// against the working directory now.
    pub(crate) fn path(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(value) = self.get(name, PATH_EXPECTED)? else {
            return Ok(None);
        };
        absolute(Path::new(value.text)).map(Some).map_err(|err| {
            ConfigError::new(
                name,
                format!(
                    "cannot resolve {name}={} against the working directory: {err} (give an absolute path)",
                    Shown(value.given)
                ),
            )
        })
    }
}

/// A variable's value: trimmed, for parsing, and as given, for messages that quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value<'e> {
    /// Without surrounding ASCII whitespace; never empty.
    pub(crate) text: &'e str,
    /// As given, to quote.
    pub(crate) given: &'e str,
}

/// `path` with the working directory in front, if it is relative.
pub(crate) fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        // Not `std::path::absolute`, which also drops `.` components: the path stays
        // as given, with the working directory in front.
        Ok(std::env::current_dir()?.join(path))
    }
}

/// The part of `name` after `TELEMETRY_`, that prefix matched in any letter case.
fn strip_telemetry_prefix(name: &str) -> Option<&str> {
    let head = name.as_bytes().get(..TELEMETRY_PREFIX.len())?;
    // The prefix is ASCII, so a match ends on a character boundary.
    head.eq_ignore_ascii_case(TELEMETRY_PREFIX.as_bytes())
        .then(|| &name[TELEMETRY_PREFIX.len()..])
}

/// Whether a value of `name` may carry a secret, and so is never quoted: the OTLP
/// headers (API keys) and endpoints (user information, tokens in the query).
fn may_hold_credential(name: &str) -> bool {
    name.starts_with("OTEL_EXPORTER_OTLP_")
        && (name.ends_with("HEADERS") || name.ends_with("ENDPOINT"))
}

fn set_twice(name: &str, first: &OsString, second: &OsString) -> ConfigError {
    let message = if may_hold_credential(name) {
        format!(
            "{name} is set twice in the environment (set it once; the values are not shown because they may hold a credential)"
        )
    } else {
        format!(
            "{name} is set twice in the environment, to {} and to {} (set it once)",
            Shown(&first.to_string_lossy()),
            Shown(&second.to_string_lossy())
        )
    };
    ConfigError::new(name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_variables_are_kept() {
        let env = Env::read([
            ("PATH", "/usr/bin"),
            ("telemetry_enabled", "1"),
            ("OTEL_SERVICE_NAME", "a"),
            ("otel_service_name", "b"),
        ]);
        let names: Vec<_> = env.vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["telemetry_enabled", "OTEL_SERVICE_NAME"]);
        assert_eq!(
            env.telemetry_names().collect::<Vec<_>>(),
            [("telemetry_enabled", "enabled")]
        );
    }

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let env = Env::read([("OTEL_A", " \tx y\n"), ("OTEL_B", " \r\n"), ("OTEL_C", "")]);
        let value = env.get("OTEL_A", "").unwrap().unwrap();
        assert_eq!((value.text, value.given), ("x y", " \tx y\n"));
        assert_eq!(env.get("OTEL_B", ""), Ok(None));
        assert_eq!(env.get("OTEL_C", ""), Ok(None));
        assert_eq!(env.get("OTEL_D", ""), Ok(None));
    }

    #[test]
    fn credentials_are_never_quoted() {
        let env = Env::read([
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=0th3r"),
        ]);
        let err = env.get("OTEL_EXPORTER_OTLP_HEADERS", "").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(!err.to_string().contains("0th3r"), "{err}");
    }
}
