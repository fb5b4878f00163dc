//! Reading and validating the `TELEMETRY_*` environment variables.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

const PREFIX: &str = "TELEMETRY_";
const ENABLED: &str = "TELEMETRY_ENABLED";
const EXPORTER: &str = "TELEMETRY_EXPORTER";
const FILE: &str = "TELEMETRY_FILE";
const KNOWN: [&str; 3] = [ENABLED, EXPORTER, FILE];
const ENABLED_EXPECTED: &str = "expected true, false, 1 or 0";
const EXPORTER_EXPECTED: &str = "expected none, stdout, stderr or file";

/// Where records go when telemetry is on: the value of `TELEMETRY_EXPORTER`.
///
/// ```
/// use telemetry::Exporter;
///
/// assert_eq!("file".parse::<Exporter>(), Ok(Exporter::File));
/// assert_eq!(Exporter::default(), Exporter::Stderr);
/// assert!("kafka".parse::<Exporter>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Exporter {
    /// Records are built and discarded (useful to measure the cost of the calls).
    None,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines on standard error (the default).
    #[default]
    Stderr,
    /// JSON lines appended to the file named by `TELEMETRY_FILE`.
    File,
}

impl Exporter {
    /// The spelling `TELEMETRY_EXPORTER` uses for this exporter.
    ///
    /// ```
    /// assert_eq!(telemetry::Exporter::Stdout.as_str(), "stdout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Exporter::None => "none",
            Exporter::Stdout => "stdout",
            Exporter::Stderr => "stderr",
            Exporter::File => "file",
        }
    }
}

impl fmt::Display for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Exporter {
    type Err = ConfigError;

    /// Accepts `none`, `stdout`, `stderr` and `file` in any letter case, surrounding
    /// whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Exporter::None),
            "stdout" => Ok(Exporter::Stdout),
            "stderr" => Ok(Exporter::Stderr),
            "file" => Ok(Exporter::File),
            _ => Err(ConfigError::invalid(EXPORTER, s, EXPORTER_EXPECTED)),
        }
    }
}

/// The validated configuration: whether telemetry is on and where records go.
///
/// Read it from the process environment with [`Config::from_env`], or from any list of
/// pairs with [`Config::from_iter`] (tests never need to touch the real environment).
///
/// | variable | values | default |
/// |---|---|---|
/// | `TELEMETRY_ENABLED` | `true`/`false` in any letter case, `1`/`0`; surrounding whitespace ignored; empty = unset | `false` |
/// | `TELEMETRY_EXPORTER` | `none`, `stdout`, `stderr`, `file` (any letter case) | `stderr` |
/// | `TELEMETRY_FILE` | path of the JSON-lines file; required when the exporter is `file` | none |
///
/// ```
/// use telemetry::{Config, Exporter};
///
/// let config = Config::from_iter([("TELEMETRY_ENABLED", "TRUE"), ("TELEMETRY_EXPORTER", "stdout")])?;
/// assert!(config.enabled());
/// assert_eq!(config.exporter(), Exporter::Stdout);
///
/// let err = Config::from_iter([("TELEMETRY_ENABLED", "banana")]).unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid value "banana" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#);
/// # Ok::<(), telemetry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    enabled: bool,
    exporter: Exporter,
    file: Option<PathBuf>,
}

/// The variables as `envy` reads them; checked for consistency in [`Config::from_iter`].
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default, deserialize_with = "deserialize_enabled")]
    enabled: bool,
    #[serde(default, deserialize_with = "deserialize_exporter")]
    exporter: Option<Exporter>,
    #[serde(default, deserialize_with = "deserialize_file")]
    file: Option<PathBuf>,
}

fn deserialize_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let raw = String::deserialize(d)?;
    parse_enabled(&raw).map_err(serde::de::Error::custom)
}

fn deserialize_exporter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Exporter>, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(serde::de::Error::custom)
}

fn deserialize_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let raw = String::deserialize(d)?;
    let path = raw.trim();
    Ok((!path.is_empty()).then(|| PathBuf::from(path)))
}

/// `envy` parses a `bool` with `str::parse`, which rejects `TRUE`, `1` and the empty
/// string that `TELEMETRY_ENABLED` accepts.
fn parse_enabled(raw: &str) -> Result<bool, ConfigError> {
    let value = raw.trim();
    if value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if value == "1" || value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else {
        Err(ConfigError::invalid(ENABLED, raw, ENABLED_EXPECTED))
    }
}

impl Config {
    /// The defaults: telemetry off, exporter `stderr`, no file.
    ///
    /// | setting | default |
    /// |---|---|
    /// | enabled | `false` |
    /// | exporter | [`Exporter::Stderr`] |
    /// | file | none |
    ///
    /// ```
    /// let config = telemetry::Config::new();
    /// assert!(!config.enabled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and validates the `TELEMETRY_*` variables of this process.
    ///
    /// ```
    /// // With no TELEMETRY_* variables set, telemetry is off.
    /// # std::env::remove_var("TELEMETRY_ENABLED");
    /// let config = telemetry::Config::from_env()?;
    /// assert!(!config.enabled());
    /// # Ok::<(), telemetry::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_iter(std::env::vars_os())
    }

    /// Reads and validates the `TELEMETRY_*` variables from a list of `(name, value)`
    /// pairs; every other variable is ignored.
    ///
    /// A name that is a near miss of a known one (`TELEMETRY_ENABLE`) is an error that
    /// suggests the known name; other `TELEMETRY_*` names are left to whatever tool
    /// owns them.
    ///
    /// ```
    /// let err = telemetry::Config::from_iter([("TELEMETRY_ENABLE", "true")]).unwrap_err();
    /// assert_eq!(err.to_string(), "unknown variable TELEMETRY_ENABLE (did you mean TELEMETRY_ENABLED?)");
    /// ```
    #[allow(
        clippy::should_implement_trait,
        reason = "fallible, so it cannot be FromIterator"
    )]
    pub fn from_iter<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut known = Vec::with_capacity(KNOWN.len());
        for (name, value) in vars {
            let Ok(name) = name.into().into_string() else {
                continue; // not UTF-8, so not one of ours
            };
            let Some(suffix) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if !KNOWN.contains(&name.as_str()) {
                if let Some(suggestion) = near_miss(suffix) {
                    // Escaped, so that a name with control characters still gives
                    // one clean line; ordinary names print as they are.
                    let shown = name.escape_debug();
                    return Err(ConfigError::new(
                        name.clone(),
                        format!("unknown variable {shown} (did you mean {suggestion}?)"),
                    ));
                }
                continue;
            }
            let value = value.into().into_string().map_err(|raw| {
                let expected = match name.as_str() {
                    ENABLED => ENABLED_EXPECTED,
                    EXPORTER => EXPORTER_EXPECTED,
                    _ => "expected a path in UTF-8",
                };
                ConfigError::invalid(
                    &name,
                    &raw.to_string_lossy(),
                    &format!("not valid UTF-8; {expected}"),
                )
            })?;
            known.push((name, value));
        }

        let raw: RawConfig = envy::prefixed(PREFIX)
            .from_iter(known)
            .map_err(ConfigError::from_envy)?;
        let exporter = raw.exporter.unwrap_or_default();
        match (exporter, &raw.file) {
            (Exporter::File, None) => Err(ConfigError::new(
                FILE,
                format!(
                    "{FILE} is required when {EXPORTER} is \"file\" (set it to the path of the JSON-lines file)"
                ),
            )),
            (other, Some(path)) if other != Exporter::File => Err(ConfigError::new(
                FILE,
                format!(
                    "{FILE} is set to {path:?} but {EXPORTER} is \"{other}\" (set {EXPORTER}=file to write to the file, or unset {FILE})"
                ),
            )),
            _ => Ok(Config {
                enabled: raw.enabled,
                exporter,
                file: raw.file,
            }),
        }
    }

    /// Whether telemetry is on.
    ///
    /// ```
    /// assert!(telemetry::Config::from_iter([("TELEMETRY_ENABLED", "1")])?.enabled());
    /// # Ok::<(), telemetry::ConfigError>(())
    /// ```
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Where records go when telemetry is on.
    ///
    /// ```
    /// assert_eq!(telemetry::Config::new().exporter(), telemetry::Exporter::Stderr);
    /// ```
    pub fn exporter(&self) -> Exporter {
        self.exporter
    }

    /// The JSON-lines file, when the exporter is [`Exporter::File`].
    ///
    /// ```
    /// let config = telemetry::Config::from_iter([
    ///     ("TELEMETRY_EXPORTER", "file"),
    ///     ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    /// ])?;
    /// assert_eq!(config.file(), Some(std::path::Path::new("/var/log/app/telemetry.jsonl")));
    /// # Ok::<(), telemetry::ConfigError>(())
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Turns telemetry on or off.
    ///
    /// ```
    /// assert!(telemetry::Config::new().with_enabled(true).enabled());
    /// ```
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sends records to standard output, standard error or nowhere. For a file, use
    /// [`with_file`](Self::with_file).
    ///
    /// ```
    /// use telemetry::{Config, Exporter};
    /// assert_eq!(Config::new().with_exporter(Exporter::Stdout).exporter(), Exporter::Stdout);
    /// ```
    #[must_use]
    pub fn with_exporter(mut self, exporter: Exporter) -> Self {
        self.exporter = exporter;
        if exporter != Exporter::File {
            self.file = None;
        }
        self
    }

    /// Appends records to this JSON-lines file (and selects [`Exporter::File`]).
    ///
    /// ```
    /// use telemetry::{Config, Exporter};
    /// let config = Config::new().with_file("telemetry.jsonl");
    /// assert_eq!(config.exporter(), Exporter::File);
    /// ```
    #[must_use]
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.exporter = Exporter::File;
        self.file = Some(path.into());
        self
    }
}

/// The known variable that `suffix` (the part after `TELEMETRY_`) is a near miss of.
///
/// Short names allow one edit and longer ones two, so that another tool's
/// `TELEMETRY_FILTER` is not mistaken for `TELEMETRY_FILE`.
fn near_miss(suffix: &str) -> Option<&'static str> {
    let suffix = suffix.to_ascii_uppercase();
    KNOWN.into_iter().find(|known| {
        let known_suffix = &known[PREFIX.len()..];
        let allowed = if known_suffix.len() <= 4 { 1 } else { 2 };
        strsim::damerau_levenshtein(&suffix, known_suffix) <= allowed
    })
}

/// A `TELEMETRY_*` variable is invalid: it names the variable, quotes the value as
/// given and says what is accepted.
///
/// ```
/// let err = telemetry::Config::from_iter([("TELEMETRY_EXPORTER", "kafka")]).unwrap_err();
/// assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
/// assert_eq!(err.to_string(), r#"invalid value "kafka" for TELEMETRY_EXPORTER (expected none, stdout, stderr or file)"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(variable: impl Into<String>, message: String) -> Self {
        ConfigError {
            variable: variable.into(),
            message,
        }
    }

    pub(crate) fn invalid(variable: &str, value: &str, expected: &str) -> Self {
        Self::new(
            variable,
            format!("invalid value {value:?} for {variable} ({expected})"),
        )
    }

    /// Our deserializers only ever fail with a [`ConfigError`]'s message, so the
    /// variable is recovered from the message rather than threaded through `envy`.
    fn from_envy(err: envy::Error) -> Self {
        let message = err.to_string();
        let variable = KNOWN
            .into_iter()
            .find(|v| message.contains(v))
            .unwrap_or(PREFIX);
        Self::new(variable, message)
    }

    /// The variable at fault, such as `TELEMETRY_ENABLED`.
    ///
    /// ```
    /// let err = telemetry::Config::from_iter([("TELEMETRY_EXPORTR", "file")]).unwrap_err();
    /// assert_eq!(err.variable(), "TELEMETRY_EXPORTR");
    /// ```
    pub fn variable(&self) -> &str {
        &self.variable
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_accepts_typos_and_spares_other_tools() {
        assert_eq!(near_miss("ENABLE"), Some(ENABLED));
        assert_eq!(near_miss("EXPROTER"), Some(EXPORTER));
        assert_eq!(near_miss("FIEL"), Some(FILE));
        assert_eq!(near_miss("enabled"), Some(ENABLED));
        assert_eq!(near_miss("FILTER"), None);
        assert_eq!(near_miss("ENDPOINT"), None);
        assert_eq!(near_miss("SERVICE_NAME"), None);
    }
}
