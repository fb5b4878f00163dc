//! The `TELEMETRY_*` variables: whether telemetry is on, the exporters and what
//! they need, the span fields and the spool directory; and the near misses of their
//! names. Every value is read through the snapshot's rules ([`Env`]).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use super::env::{Env, TELEMETRY_PREFIX};
use super::error::{ConfigError, Shown};

const ENABLED: &str = "TELEMETRY_ENABLED";
const EXPORTER: &str = "TELEMETRY_EXPORTER";
const FILE: &str = "TELEMETRY_FILE";
const PROMETHEUS_ADDR: &str = "TELEMETRY_PROMETHEUS_ADDR";
const SPAN_FIELDS: &str = "TELEMETRY_SPAN_FIELDS";
pub(crate) const SPOOL_DIR: &str = "TELEMETRY_SPOOL_DIR";
const KNOWN: [&str; 6] = [
    ENABLED,
    EXPORTER,
    FILE,
    PROMETHEUS_ADDR,
    SPAN_FIELDS,
    SPOOL_DIR,
];
const ENABLED_EXPECTED: &str = "expected true, false, 1 or 0";
const EXPORTER_EXPECTED: &str =
    "expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once";
const ADDR_EXPECTED: &str =
    "expected host:port with an IP address or localhost as the host, such as 127.0.0.1:9464 or 0.0.0.0:9464";
const SPAN_FIELDS_EXPECTED: &str =
    "expected a comma-separated list of span field names, each at most once";

/// The name of an exporter, as `TELEMETRY_EXPORTER` spells it.
///
/// A name says *which* exporter; a [`Destination`](crate::Destination) is a configured one, carrying what
/// it needs (the file's path, the address to serve on). Every name parses, whatever
/// cargo features the app was built with: [`Config::from_iter`](crate::Config::from_iter) is what refuses an
/// exporter that is not built in, naming the feature.
///
/// ```
/// use tracing_telemetry::Exporter;
///
/// assert_eq!("file".parse::<Exporter>(), Ok(Exporter::File));
/// assert_eq!(" OTLP ".parse::<Exporter>(), Ok(Exporter::Otlp));
/// assert_eq!(Exporter::default(), Exporter::Stderr);
/// assert!("kafka".parse::<Exporter>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Exporter {
    /// Records are built and discarded (useful to measure the cost of the calls). Only
    /// ever alone in `TELEMETRY_EXPORTER`; a [`Config`](crate::Config) with no destination.
    None,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines on standard error (the default).
    #[default]
    Stderr,
    /// JSON lines appended to the file named by `TELEMETRY_FILE`.
    File,
    /// Aggregated series served for Prometheus to scrape (cargo feature `prometheus`).
    Prometheus,
    /// Log records and metrics pushed to an OpenTelemetry collector (cargo feature
    /// `otlp`).
    Otlp,
}

impl Exporter {
    const ALL: [Exporter; 6] = [
        Exporter::None,
        Exporter::Stdout,
        Exporter::Stderr,
        Exporter::File,
        Exporter::Prometheus,
        Exporter::Otlp,
    ];

    /// The spelling `TELEMETRY_EXPORTER` uses for this exporter.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Exporter::Stdout.as_str(), "stdout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Exporter::None => "none",
            Exporter::Stdout => "stdout",
            Exporter::Stderr => "stderr",
            Exporter::File => "file",
            Exporter::Prometheus => "prometheus",
            Exporter::Otlp => "otlp",
        }
    }

    /// The cargo feature of this crate that builds this exporter in, if it needs one.
    ///
    /// ```
    /// use tracing_telemetry::Exporter;
    /// assert_eq!(Exporter::Prometheus.feature(), Some("prometheus"));
    /// assert_eq!(Exporter::File.feature(), None);
    /// ```
    pub const fn feature(self) -> Option<&'static str> {
        match self {
            Exporter::Prometheus => Some("prometheus"),
            Exporter::Otlp => Some("otlp"),
            _ => None,
        }
    }

    /// Whether this build of the crate has this exporter (its cargo feature is on).
    ///
    /// ```
    /// assert!(tracing_telemetry::Exporter::Stderr.is_built_in());
    /// assert_eq!(tracing_telemetry::Exporter::Otlp.is_built_in(), cfg!(feature = "otlp"));
    /// ```
    pub const fn is_built_in(self) -> bool {
        !matches!(
            (self, cfg!(feature = "prometheus"), cfg!(feature = "otlp")),
            (Exporter::Prometheus, false, _) | (Exporter::Otlp, _, false)
        )
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| name.eq_ignore_ascii_case(e.as_str()))
    }
}

impl fmt::Display for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Exporter {
    type Err = ConfigError;

    /// Accepts one exporter name in any letter case, surrounding ASCII whitespace
    /// ignored. (`TELEMETRY_EXPORTER`, a list, is parsed by [`Config::from_iter`](crate::Config::from_iter).)
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Exporter::from_name(s.trim_ascii())
            .ok_or_else(|| ConfigError::invalid(EXPORTER, s, EXPORTER_EXPECTED))
    }
}

/// What the `TELEMETRY_*` variables say, each value checked, and checked against the
/// others (a file or an address for an exporter that is not listed).
#[derive(Debug)]
pub(crate) struct Telemetry {
    pub(crate) enabled: bool,
    /// In the order listed; empty for `none`.
    pub(crate) exporters: Vec<Exporter>,
    pub(crate) file: Option<PathBuf>,
    #[cfg_attr(
        not(feature = "prometheus"),
        allow(
            dead_code,
            reason = "checked against the exporters even where the prometheus exporter is not built in"
        )
    )]
    pub(crate) prometheus_addr: Option<SocketAddr>,
    pub(crate) span_fields: Vec<String>,
    pub(crate) spool_dir: Option<PathBuf>,
    /// `TELEMETRY_EXPORTER` as given, or the default, for messages.
    exporter_shown: String,
}

/// The variables as `envy` reads them: each known name at most once and in UTF-8,
/// empty ones left out (the snapshot's rules), values as given so that messages quote
/// them so; parsed in [`read`], where each value's error can name its own variable.
#[derive(Deserialize)]
struct RawConfig {
    enabled: Option<String>,
    exporter: Option<String>,
    prometheus_addr: Option<String>,
    span_fields: Option<String>,
}

/// Reads the `TELEMETRY_*` variables of `env`.
///
/// A name that is a near miss of a known one, letter case included, is an error that
/// suggests the known name; other `TELEMETRY_*` names are left to whatever tool owns
/// them.
pub(crate) fn read(env: &Env) -> Result<Telemetry, ConfigError> {
    for (name, suffix) in env.telemetry_names() {
        if KNOWN.contains(&name) {
            continue;
        }
        if let Some(suggestion) = near_miss(suffix) {
            return Err(ConfigError::new(
                name,
                format!(
                    "unknown variable {} (did you mean {suggestion}?)",
                    Shown(name)
                ),
            ));
        }
    }
    let mut known = Vec::with_capacity(KNOWN.len());
    for (name, expected) in [
        (ENABLED, ENABLED_EXPECTED),
        (EXPORTER, EXPORTER_EXPECTED),
        (PROMETHEUS_ADDR, ADDR_EXPECTED),
        (SPAN_FIELDS, SPAN_FIELDS_EXPECTED),
    ] {
        if let Some(value) = env.get(name, expected)? {
            // As given: the parsers quote it so in their messages.
            known.push((name.to_owned(), value.given.to_owned()));
        }
    }
    // Every value is a string here, and each name appears once, so `envy` cannot
    // fail; it maps the names onto the fields.
    let raw: RawConfig = envy::prefixed(TELEMETRY_PREFIX)
        .from_iter(known)
        .map_err(|err| ConfigError::new(TELEMETRY_PREFIX, err.to_string()))?;
    let enabled = raw.enabled.as_deref().map_or(Ok(false), parse_enabled)?;
    let exporters = match raw.exporter.as_deref() {
        Some(value) => parse_exporters(value)?,
        None => vec![Exporter::Stderr],
    };
    // How a cross-check names TELEMETRY_EXPORTER's value: as given (an empty value
    // too), or the default.
    let exporter_shown = Shown(env.given(EXPORTER).unwrap_or("stderr")).to_string();
    let file = env.path(FILE)?;
    let prometheus_addr = raw.prometheus_addr.as_deref().map(parse_addr).transpose()?;
    let span_fields = raw
        .span_fields
        .as_deref()
        .map_or(Ok(Vec::new()), parse_span_fields)?;
    let spool_dir = env.path(SPOOL_DIR)?;

    let listed = |e| exporters.contains(&e);
    if let (Some(path), false) = (&file, listed(Exporter::File)) {
        return Err(ConfigError::new(
            FILE,
            format!(
                "{FILE} is set to {} but {EXPORTER} is {exporter_shown} (set {EXPORTER}=file to write to the file, or unset {FILE})",
                Shown(&path.to_string_lossy())
            ),
        ));
    }
    if let (Some(addr), false) = (prometheus_addr, listed(Exporter::Prometheus)) {
        return Err(ConfigError::new(
            PROMETHEUS_ADDR,
            format!(
                "{PROMETHEUS_ADDR} is set to \"{addr}\" but {EXPORTER} is {exporter_shown} (add prometheus to {EXPORTER} to serve /metrics, or unset {PROMETHEUS_ADDR})"
            ),
        ));
    }
    Ok(Telemetry {
        enabled,
        exporters,
        file,
        prometheus_addr,
        span_fields,
        spool_dir,
        exporter_shown,
    })
}

impl Telemetry {
    /// The JSON-lines file, or the error for a `file` exporter without one.
    pub(crate) fn required_file(&self) -> Result<PathBuf, ConfigError> {
        self.file.clone().ok_or_else(|| {
            ConfigError::new(
                FILE,
                format!(
                    "{FILE} is required when {EXPORTER} is {} (set it to the path of the JSON-lines file)",
                    self.exporter_shown
                ),
            )
        })
    }
}

/// `envy` parses a `bool` with `str::parse`, which rejects `TRUE`, `1` and the empty
/// string that `TELEMETRY_ENABLED` accepts.
fn parse_enabled(raw: &str) -> Result<bool, ConfigError> {
    let value = raw.trim_ascii();
    if value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if value == "1" || value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else {
        Err(ConfigError::invalid(ENABLED, raw, ENABLED_EXPECTED))
    }
}

/// The exporters `TELEMETRY_EXPORTER` lists, in order; `none` gives an empty list.
fn parse_exporters(raw: &str) -> Result<Vec<Exporter>, ConfigError> {
    let value = raw.trim_ascii();
    if value.is_empty() {
        return Ok(vec![Exporter::Stderr]);
    }
    let wrong = |why: String| {
        ConfigError::new(
            EXPORTER,
            format!(
                "invalid value {} for {EXPORTER} ({why}; {EXPORTER_EXPECTED})",
                Shown(raw)
            ),
        )
    };
    let mut exporters = Vec::new();
    for entry in value.split(',').map(str::trim_ascii) {
        if entry.is_empty() {
            return Err(wrong("an entry is empty".to_owned()));
        }
        let Some(exporter) = Exporter::from_name(entry) else {
            // A single unknown name is the whole value: no need to quote it twice.
            return Err(if entry == value {
                ConfigError::invalid(EXPORTER, raw, EXPORTER_EXPECTED)
            } else {
                wrong(format!("unknown exporter {}", Shown(entry)))
            });
        };
        if exporters.contains(&exporter) {
            return Err(wrong(format!("\"{exporter}\" is listed twice")));
        }
        exporters.push(exporter);
    }
    if exporters.len() > 1 && exporters.contains(&Exporter::None) {
        return Err(wrong(
            "\"none\" cannot be combined with other exporters".to_owned(),
        ));
    }
    if let Some(missing) = exporters.iter().find(|e| !e.is_built_in()) {
        let feature = missing.feature().unwrap_or_default();
        return Err(ConfigError::new(
            EXPORTER,
            format!(
                "invalid value {} for {EXPORTER} (this app was built without the {missing} exporter; enable the \"{feature}\" feature of the tracing-telemetry crate)",
                Shown(raw)
            ),
        ));
    }
    exporters.retain(|e| *e != Exporter::None);
    Ok(exporters)
}

/// `host:port`, with an IP address or `localhost` as the host: no name is looked up
/// while the configuration is read.
fn parse_addr(raw: &str) -> Result<SocketAddr, ConfigError> {
    let value = raw.trim_ascii();
    let parsed = match value.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port
            .parse()
            .ok()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        _ => value.parse().ok(),
    };
    parsed.ok_or_else(|| ConfigError::invalid(PROMETHEUS_ADDR, raw, ADDR_EXPECTED))
}

fn parse_span_fields(raw: &str) -> Result<Vec<String>, ConfigError> {
    let value = raw.trim_ascii();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields: Vec<String> = Vec::new();
    for entry in value.split(',').map(str::trim_ascii) {
        let why = if entry.is_empty() {
            "an entry is empty".to_owned()
        } else if fields.iter().any(|f| f == entry) {
            format!("{} is listed twice", Shown(entry))
        } else {
            fields.push(entry.to_owned());
            continue;
        };
        return Err(ConfigError::new(
            SPAN_FIELDS,
            format!(
                "invalid value {} for {SPAN_FIELDS} ({why}; {SPAN_FIELDS_EXPECTED})",
                Shown(raw)
            ),
        ));
    }
    Ok(fields)
}

/// The known variable that `suffix` (the part after `TELEMETRY_`) is a near miss of.
///
/// Short names allow one edit and longer ones two, so that another tool's
/// `TELEMETRY_FILTER` is not mistaken for `TELEMETRY_FILE`; letter case is ignored.
fn near_miss(suffix: &str) -> Option<&'static str> {
    let suffix = suffix.to_ascii_uppercase();
    KNOWN.into_iter().find(|known| {
        let known_suffix = &known[TELEMETRY_PREFIX.len()..];
        let allowed = if known_suffix.len() <= 4 { 1 } else { 2 };
        strsim::damerau_levenshtein(&suffix, known_suffix) <= allowed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_accepts_typos_and_spares_other_tools() {
        assert_eq!(near_miss("ENABLE"), Some(ENABLED));
        assert_eq!(near_miss("EXPROTER"), Some(EXPORTER));
        assert_eq!(near_miss("FIEL"), Some(FILE));
        assert_eq!(near_miss("enabled"), Some(ENABLED));
        assert_eq!(near_miss("PROMETHEUS_ADR"), Some(PROMETHEUS_ADDR));
        assert_eq!(near_miss("SPAN_FIELD"), Some(SPAN_FIELDS));
        assert_eq!(near_miss("SPOOLDIR"), Some(SPOOL_DIR));
        assert_eq!(near_miss("FILTER"), None);
        assert_eq!(near_miss("ENDPOINT"), None);
        assert_eq!(near_miss("SERVICE_NAME"), None);
    }
}
