//! Reading and validating the `TELEMETRY_*` environment variables.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::resource::{Resource, ResourceVars, RESOURCE_ATTRIBUTES_VAR, SERVICE_NAME_VAR};

const PREFIX: &str = "TELEMETRY_";
const ENABLED: &str = "TELEMETRY_ENABLED";
const EXPORTER: &str = "TELEMETRY_EXPORTER";
const FILE: &str = "TELEMETRY_FILE";
const PROMETHEUS_ADDR: &str = "TELEMETRY_PROMETHEUS_ADDR";
const SPAN_FIELDS: &str = "TELEMETRY_SPAN_FIELDS";
const SPOOL_DIR: &str = "TELEMETRY_SPOOL_DIR";
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
/// Characters of a value (or name) quoted in a message; a longer one is cut there and
/// its length given, so that a megabyte of garbage still makes a one-line message.
const SHOWN_CHARS: usize = 64;

/// The address the `prometheus` exporter serves `GET /metrics` on when
/// `TELEMETRY_PROMETHEUS_ADDR` is not set: `127.0.0.1:9464`.
///
/// ```
/// assert_eq!(tracing_telemetry::DEFAULT_PROMETHEUS_ADDR.to_string(), "127.0.0.1:9464");
/// ```
pub const DEFAULT_PROMETHEUS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// The name of an exporter, as `TELEMETRY_EXPORTER` spells it.
///
/// A name says *which* exporter; a [`Destination`] is a configured one, carrying what
/// it needs (the file's path, the address to serve on). Every name parses, whatever
/// cargo features the app was built with: [`Config::from_iter`] is what refuses an
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
    /// ever alone in `TELEMETRY_EXPORTER`; a [`Config`] with no destination.
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
    /// ignored. (`TELEMETRY_EXPORTER`, a list, is parsed by [`Config::from_iter`].)
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Exporter::from_name(s.trim_ascii())
            .ok_or_else(|| ConfigError::invalid(EXPORTER, s, EXPORTER_EXPECTED))
    }
}

/// One place records go, with what it needs: the configured form of an [`Exporter`].
///
/// A file destination cannot be built without its path, nor a Prometheus one without
/// its address. The `Prometheus` and `Otlp` variants exist only with their cargo
/// features.
///
/// ```
/// use tracing_telemetry::{Destination, Exporter};
///
/// let file = Destination::file("/var/log/app/telemetry.jsonl");
/// assert_eq!(file.exporter(), Exporter::File);
/// assert_eq!(Destination::Stderr.exporter(), Exporter::Stderr);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "made once at start-up; boxing the OTLP settings would only change the public variant"
)]
pub enum Destination {
    /// JSON lines on standard output. [`try_init`](crate::try_init) then sends the
    /// app's own logs to stderr.
    Stdout,
    /// JSON lines on standard error.
    Stderr,
    /// JSON lines appended to this file. [`Destination::file`] makes a relative path
    /// absolute at once, so a later change of directory changes nothing.
    File(PathBuf),
    /// Aggregated series served on `GET /metrics` at this address.
    #[cfg(feature = "prometheus")]
    Prometheus(SocketAddr),
    /// Records pushed to an OpenTelemetry collector, as this configuration says
    /// (read from the `OTEL_*` variables by [`Config::from_env`]).
    #[cfg(feature = "otlp")]
    Otlp(crate::otlp::OtlpConfig),
}

impl Destination {
    /// A file destination; a relative `path` is taken relative to the working
    /// directory now (if that cannot be read, the path is kept as given).
    ///
    /// ```
    /// use tracing_telemetry::Destination;
    ///
    /// let Destination::File(path) = Destination::file("telemetry.jsonl") else { unreachable!() };
    /// assert_eq!(path, std::env::current_dir()?.join("telemetry.jsonl"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Destination::File(absolute(&path).unwrap_or(path))
    }

    /// Which exporter this is.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Destination::Stdout.exporter(), tracing_telemetry::Exporter::Stdout);
    /// ```
    pub fn exporter(&self) -> Exporter {
        match self {
            Destination::Stdout => Exporter::Stdout,
            Destination::Stderr => Exporter::Stderr,
            Destination::File(_) => Exporter::File,
            #[cfg(feature = "prometheus")]
            Destination::Prometheus(_) => Exporter::Prometheus,
            #[cfg(feature = "otlp")]
            Destination::Otlp(_) => Exporter::Otlp,
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
/// | `TELEMETRY_ENABLED` | `true`/`false` in any letter case, `1`/`0`; surrounding ASCII whitespace ignored; empty = unset | `false` |
/// | `TELEMETRY_EXPORTER` | one or more of `none`, `stdout`, `stderr`, `file`, `prometheus`, `otlp`, comma-separated; each at most once; `none` only alone | `stderr` |
/// | `TELEMETRY_FILE` | path of the JSON-lines file; required when the exporters include `file` | none |
/// | `TELEMETRY_PROMETHEUS_ADDR` | `host:port` serving `GET /metrics` when the exporters include `prometheus` | `127.0.0.1:9464` |
/// | `TELEMETRY_SPAN_FIELDS` | comma-separated span field names copied onto each record as tags, from the nearest enclosing span | none |
/// | `TELEMETRY_SPOOL_DIR` | directory where the `otlp` exporter keeps what the collector has not yet accepted | none |
/// | `OTEL_SERVICE_NAME` | the service name on every record (`"service"` in JSON lines) | `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable>` |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...`, percent-decoded: `service.version` and other resource attributes | none |
///
/// ```
/// use tracing_telemetry::{Config, Destination};
///
/// let config = Config::from_iter([("TELEMETRY_ENABLED", "TRUE"), ("TELEMETRY_EXPORTER", "stdout, stderr")])?;
/// assert!(config.enabled());
/// assert_eq!(config.destinations(), [Destination::Stdout, Destination::Stderr]);
///
/// let err = Config::from_iter([("TELEMETRY_ENABLED", "banana")]).unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid value "banana" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#);
/// # Ok::<(), tracing_telemetry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    enabled: bool,
    destinations: Vec<Destination>,
    span_fields: Vec<String>,
    spool_dir: Option<PathBuf>,
    buffer_bytes: usize,
    #[cfg(feature = "aggregate")]
    aggregator: Option<crate::aggregate::Aggregator>,
    resource: Resource,
    /// Why the `otlp` exporter cannot start, when an `OTEL_*` variable it reads was
    /// refused while telemetry was off (see [`Config::from_iter`]).
    #[cfg(feature = "otlp")]
    otlp_error: Option<ConfigError>,
}

/// Bytes of encoded records each JSON-lines destination holds for its writer, by
/// default.
///
/// ```
/// use tracing_telemetry::{Config, DEFAULT_BUFFER_BYTES};
///
/// assert_eq!(Config::new().buffer_bytes(), DEFAULT_BUFFER_BYTES);
/// ```
pub const DEFAULT_BUFFER_BYTES: usize = 16 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: false,
            destinations: vec![Destination::Stderr],
            span_fields: Vec::new(),
            spool_dir: None,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            #[cfg(feature = "aggregate")]
            aggregator: None,
            resource: Resource::default(),
            #[cfg(feature = "otlp")]
            otlp_error: None,
        }
    }
}

/// The variables as `envy` reads them (each known name at most once, checked before);
/// parsed and checked for consistency in [`Config::from_iter`], where each value's
/// error can name its own variable.
#[derive(Deserialize)]
struct RawConfig {
    enabled: Option<String>,
    exporter: Option<String>,
    file: Option<String>,
    prometheus_addr: Option<String>,
    span_fields: Option<String>,
    spool_dir: Option<String>,
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

/// A path variable: unset when empty or only ASCII whitespace, otherwise exactly as
/// given (spaces included), made absolute against the working directory now.
fn parse_path(variable: &str, raw: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = raw.filter(|raw| !raw.trim_ascii().is_empty()) else {
        return Ok(None);
    };
    absolute(Path::new(&raw)).map(Some).map_err(|err| {
        ConfigError::new(
            variable,
            format!(
                "cannot resolve {variable}={} against the working directory: {err} (give an absolute path)",
                Shown(&raw)
            ),
        )
    })
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        // Not `std::path::absolute`, which also drops `.` components: the path stays
        // as given, with the working directory in front.
        Ok(std::env::current_dir()?.join(path))
    }
}

impl Config {
    /// The defaults: telemetry off, records to standard error.
    ///
    /// | setting | default |
    /// |---|---|
    /// | enabled | `false` |
    /// | destinations | [`Destination::Stderr`] |
    /// | span fields | none |
    /// | spool directory | none |
    /// | buffer per JSON-lines destination | 16 MiB ([`DEFAULT_BUFFER_BYTES`]) |
    /// | service name | `unknown_service:<executable name>` (see [`Resource`]) |
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new();
    /// assert!(!config.enabled());
    /// assert_eq!(config.destinations(), [tracing_telemetry::Destination::Stderr]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and validates the `TELEMETRY_*` variables of this process.
    ///
    /// ```
    /// // With no TELEMETRY_* variables set, telemetry is off.
    /// # std::env::remove_var("TELEMETRY_ENABLED");
    /// let config = tracing_telemetry::Config::from_env()?;
    /// assert!(!config.enabled());
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_iter(std::env::vars_os())
    }

    /// Reads and validates the `TELEMETRY_*` variables from a list of `(name, value)`
    /// pairs; every other variable is ignored.
    ///
    /// A name that is a near miss of a known one, letter case included
    /// (`TELEMETRY_ENABLE`, `telemetry_enabled`), is an error that suggests the known
    /// name; other `TELEMETRY_*` names are left to whatever tool owns them. A known
    /// name given twice is an error quoting both values. Relative paths are made
    /// absolute against the working directory here, once.
    ///
    /// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read too, whatever the
    /// exporters, into the [`Resource`] that names the service on every record; as the
    /// OpenTelemetry specification says, an empty value is unset and the last of a
    /// name given twice wins. Other `OTEL_*` names are never judged here, nor taken
    /// for near misses of `TELEMETRY_*` ones, except by the `otlp` exporter when it is
    /// listed. With telemetry off, no `OTEL_*` variable is an error: they may belong
    /// to another OpenTelemetry SDK in the process. An invalid resource then leaves the
    /// default one, and a variable the `otlp` exporter refuses is said when telemetry
    /// is turned on (the exporter cannot start; its records are dropped and counted).
    ///
    /// ```
    /// let err = tracing_telemetry::Config::from_iter([("TELEMETRY_ENABLE", "true")]).unwrap_err();
    /// assert_eq!(err.to_string(), r#"unknown variable "TELEMETRY_ENABLE" (did you mean TELEMETRY_ENABLED?)"#);
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
        let mut known: HashMap<String, String> = HashMap::with_capacity(KNOWN.len());
        // The standard OpenTelemetry variables, for the `otlp` exporter to read as the
        // specification defines them.
        #[cfg(feature = "otlp")]
        let mut otel: Vec<(OsString, OsString)> = Vec::new();
        let mut resource = ResourceVars::default();
        for (name, value) in vars {
            let (name, value): (OsString, OsString) = (name.into(), value.into());
            #[cfg(feature = "otlp")]
            if name.to_str().is_some_and(|n| n.starts_with("OTEL_")) {
                otel.push((name.clone(), value.clone()));
            }
            let Ok(name) = name.into_string() else {
                continue; // not UTF-8, so not one of ours
            };
            if name == SERVICE_NAME_VAR || name == RESOURCE_ATTRIBUTES_VAR {
                resource.take(name, value)?;
                continue;
            }
            let Some(suffix) = strip_prefix_ignore_case(&name) else {
                continue;
            };
            if !KNOWN.contains(&name.as_str()) {
                if let Some(suggestion) = near_miss(suffix) {
                    return Err(ConfigError::new(
                        name.clone(),
                        format!(
                            "unknown variable {} (did you mean {suggestion}?)",
                            Shown(&name)
                        ),
                    ));
                }
                continue;
            }
            let value = value.into_string().map_err(|raw| {
                let expected = match name.as_str() {
                    ENABLED => ENABLED_EXPECTED,
                    EXPORTER => EXPORTER_EXPECTED,
                    PROMETHEUS_ADDR => ADDR_EXPECTED,
                    SPAN_FIELDS => SPAN_FIELDS_EXPECTED,
                    _ => "expected a path in UTF-8",
                };
                ConfigError::invalid(
                    &name,
                    &raw.to_string_lossy(),
                    &format!("not valid UTF-8; {expected}"),
                )
            })?;
            if let Some(first) = known.get(&name) {
                return Err(ConfigError::new(
                    name.clone(),
                    format!(
                        "{name} is set twice in the environment, to {} and to {} (set it once)",
                        Shown(first),
                        Shown(&value)
                    ),
                ));
            }
            known.insert(name, value);
        }

        // Every value is a string here, and each name appears once, so `envy` cannot
        // fail; it maps the names onto the fields.
        let raw: RawConfig = envy::prefixed(PREFIX)
            .from_iter(known)
            .map_err(|err| ConfigError::new(PREFIX, err.to_string()))?;
        let enabled = raw.enabled.as_deref().map_or(Ok(false), parse_enabled)?;
        let exporters = match raw.exporter.as_deref() {
            Some(value) => parse_exporters(value)?,
            None => vec![Exporter::Stderr],
        };
        // How a cross-check names TELEMETRY_EXPORTER's value: as given, or the default.
        let exporter_shown = Shown(raw.exporter.as_deref().unwrap_or("stderr"));
        let file = parse_path(FILE, raw.file)?;
        let addr = match raw.prometheus_addr.as_deref().map(str::trim_ascii) {
            Some(value) if !value.is_empty() => Some(parse_addr(value)?),
            _ => None,
        };
        let span_fields = raw
            .span_fields
            .as_deref()
            .map_or(Ok(Vec::new()), parse_span_fields)?;
        let spool_dir = parse_path(SPOOL_DIR, raw.spool_dir)?;

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
        if let (Some(addr), false) = (addr, listed(Exporter::Prometheus)) {
            return Err(ConfigError::new(
                PROMETHEUS_ADDR,
                format!(
                    "{PROMETHEUS_ADDR} is set to \"{addr}\" but {EXPORTER} is {exporter_shown} (add prometheus to {EXPORTER} to serve /metrics, or unset {PROMETHEUS_ADDR})"
                ),
            ));
        }
        let mut destinations = Vec::with_capacity(exporters.len());
        #[cfg(feature = "otlp")]
        let mut otlp_error = None;
        for exporter in exporters {
            destinations.push(match exporter {
                Exporter::Stdout => Destination::Stdout,
                Exporter::Stderr => Destination::Stderr,
                Exporter::File => match &file {
                    Some(path) => Destination::File(path.clone()),
                    None => {
                        return Err(ConfigError::new(
                            FILE,
                            format!(
                                "{FILE} is required when {EXPORTER} is {exporter_shown} (set it to the path of the JSON-lines file)"
                            ),
                        ))
                    }
                },
                #[cfg(feature = "prometheus")]
                Exporter::Prometheus => {
                    Destination::Prometheus(addr.unwrap_or(DEFAULT_PROMETHEUS_ADDR))
                }
                // The OTEL_* variables are shared with any OpenTelemetry SDK in the
                // process: with telemetry off, one the exporter refuses does not stop
                // the app. The exporter keeps the error, and gives it if telemetry is
                // turned on (it then cannot start: its records are dropped and
                // counted, and the message says why).
                #[cfg(feature = "otlp")]
                Exporter::Otlp => {
                    // The resource is resolved once, below, for every destination.
                    let otel = otel.iter().filter(|(name, _)| {
                        name != SERVICE_NAME_VAR && name != RESOURCE_ATTRIBUTES_VAR
                    });
                    match crate::otlp::OtlpConfig::from_vars(otel.cloned()) {
                        Ok(otlp) => Destination::Otlp(otlp),
                        Err(err) if enabled => return Err(err),
                        Err(err) => {
                            otlp_error = Some(err);
                            Destination::Otlp(crate::otlp::OtlpConfig::new())
                        }
                    }
                }
                // `none` was removed and exporters not built in were refused above.
                _ => continue,
            });
        }
        // The OTEL_* variables are shared with any OpenTelemetry SDK in the process:
        // with telemetry off, one that is invalid is not ours to stop the app for
        // (the default resource stands in); on, it is an error like ours.
        let resource = if enabled {
            resource.resolve()?
        } else {
            resource.resolve().unwrap_or_default()
        };
        #[cfg(feature = "otlp")]
        for destination in &mut destinations {
            if let Destination::Otlp(otlp) = destination {
                *otlp = otlp.clone().with_resource(&resource);
            }
        }
        Ok(Config {
            enabled,
            destinations,
            span_fields,
            spool_dir,
            resource,
            #[cfg(feature = "otlp")]
            otlp_error,
            ..Config::default()
        })
    }

    /// Whether telemetry is on.
    ///
    /// ```
    /// assert!(tracing_telemetry::Config::from_iter([("TELEMETRY_ENABLED", "1")])?.enabled());
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Where records go when telemetry is on, in the order listed; empty for `none`.
    /// Each [`Exporter`] appears at most once.
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use tracing_telemetry::{Config, Destination};
    ///
    /// let config = Config::from_iter([
    ///     ("TELEMETRY_EXPORTER", "stderr,file"),
    ///     ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    /// ])?;
    /// assert_eq!(
    ///     config.destinations(),
    ///     [Destination::Stderr, Destination::File(PathBuf::from("/var/log/app/telemetry.jsonl"))]
    /// );
    /// assert!(Config::from_iter([("TELEMETRY_EXPORTER", "none")])?.destinations().is_empty());
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// The exporters of [`destinations`](Self::destinations), in order.
    ///
    /// ```
    /// use tracing_telemetry::{Config, Exporter};
    ///
    /// let config = Config::from_iter([("TELEMETRY_EXPORTER", "stdout")])?;
    /// assert_eq!(config.exporters().collect::<Vec<_>>(), [Exporter::Stdout]);
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn exporters(&self) -> impl Iterator<Item = Exporter> + '_ {
        self.destinations.iter().map(Destination::exporter)
    }

    /// The JSON-lines file, when the destinations include one.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([
    ///     ("TELEMETRY_EXPORTER", "file"),
    ///     ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    /// ])?;
    /// assert_eq!(config.file(), Some(std::path::Path::new("/var/log/app/telemetry.jsonl")));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.destinations.iter().find_map(|d| match d {
            Destination::File(path) => Some(path.as_path()),
            _ => None,
        })
    }

    /// The span field names (`TELEMETRY_SPAN_FIELDS`) to copy onto each record as
    /// tags ([`Record::span_tags`](crate::Record::span_tags)), each from the nearest
    /// enclosing span that has it. Empty (the default), spans are not looked at.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([("TELEMETRY_SPAN_FIELDS", "request_id, tenant")])?;
    /// assert_eq!(config.span_fields(), ["request_id", "tenant"]);
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn span_fields(&self) -> &[String] {
        &self.span_fields
    }

    /// The directory (`TELEMETRY_SPOOL_DIR`) where the `otlp` exporter keeps what the
    /// collector has not yet accepted, made absolute (see
    /// [the spool](crate::guide::operations#the-spool-surviving-outages-and-restarts-telemetry_spool_dir)
    /// in the operations guide). Without the `otlp` exporter it is not used.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([("TELEMETRY_SPOOL_DIR", "/var/spool/app")])?;
    /// assert_eq!(config.spool_dir(), Some(std::path::Path::new("/var/spool/app")));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn spool_dir(&self) -> Option<&Path> {
        self.spool_dir.as_deref()
    }

    /// Why the `otlp` exporter cannot start: an `OTEL_*` variable it reads was refused
    /// while telemetry was off. It is said if telemetry is turned on.
    #[cfg(feature = "otlp")]
    pub(crate) fn otlp_error(&self) -> Option<&ConfigError> {
        self.otlp_error.as_ref()
    }

    /// Bytes of encoded records each JSON-lines destination holds while its writer
    /// catches up; beyond it, the full-buffer policy of
    /// [`ExporterSink`](crate::ExporterSink) applies.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Config::new().buffer_bytes(), tracing_telemetry::DEFAULT_BUFFER_BYTES);
    /// ```
    pub fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// The aggregation the `prometheus` and `otlp` exporters use, when the app chose
    /// one with [`with_aggregator`](Self::with_aggregator).
    ///
    /// ```
    /// assert!(tracing_telemetry::Config::new().aggregator().is_none());
    /// ```
    #[cfg(feature = "aggregate")]
    pub fn aggregator(&self) -> Option<&crate::aggregate::Aggregator> {
        self.aggregator.as_ref()
    }

    /// Aggregates with `aggregator` (per-name aggregations, another limit on label
    /// sets) instead of the pinned defaults: the `prometheus` endpoint serves it and the
    /// `otlp` exporter pushes it. Keep a clone to read the series in code.
    ///
    /// ```
    /// use tracing_telemetry::aggregate::Aggregator;
    ///
    /// let aggregator = Aggregator::builder().histogram("payload.bytes", [1e3, 1e6]).build();
    /// let config = tracing_telemetry::Config::new().with_aggregator(aggregator.clone());
    /// assert!(config.aggregator().is_some());
    /// ```
    #[cfg(feature = "aggregate")]
    #[must_use]
    pub fn with_aggregator(mut self, aggregator: crate::aggregate::Aggregator) -> Self {
        self.aggregator = Some(aggregator);
        self
    }

    /// Sets the bytes each JSON-lines destination may hold for its writer (at least
    /// one 64 KiB batch is always taken). More absorbs longer stalls of the
    /// destination without dropping; less bounds memory tighter.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_buffer_bytes(64 * 1024 * 1024);
    /// assert_eq!(config.buffer_bytes(), 64 * 1024 * 1024);
    /// ```
    #[must_use]
    pub fn with_buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = bytes;
        self
    }

    /// Turns telemetry on or off.
    ///
    /// ```
    /// assert!(tracing_telemetry::Config::new().with_enabled(true).enabled());
    /// ```
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sends records to these destinations, and only these; an empty list is the
    /// `none` exporter. A destination whose [`Exporter`] came earlier in the list
    /// replaces that one, so each exporter appears at most once.
    ///
    /// ```
    /// use tracing_telemetry::{Config, Destination};
    ///
    /// let config = Config::new().with_destinations([Destination::Stderr, Destination::file("/tmp/t.jsonl")]);
    /// assert_eq!(config.destinations().len(), 2);
    /// assert!(Config::new().with_destinations([]).destinations().is_empty());
    /// ```
    #[must_use]
    pub fn with_destinations(
        mut self,
        destinations: impl IntoIterator<Item = Destination>,
    ) -> Self {
        self.destinations.clear();
        // The otlp destination the environment gave, and why it could not start, are
        // gone with it.
        #[cfg(feature = "otlp")]
        {
            self.otlp_error = None;
        }
        for destination in destinations {
            self = self.with_destination(destination);
        }
        self
    }

    /// Adds a destination, or replaces the one with the same [`Exporter`].
    ///
    /// ```
    /// use tracing_telemetry::{Config, Destination};
    ///
    /// let config = Config::new().with_destination(Destination::Stdout);
    /// assert_eq!(config.destinations(), [Destination::Stderr, Destination::Stdout]);
    /// ```
    #[must_use]
    pub fn with_destination(mut self, destination: Destination) -> Self {
        match self
            .destinations
            .iter_mut()
            .find(|d| d.exporter() == destination.exporter())
        {
            Some(same) => *same = destination,
            None => self.destinations.push(destination),
        }
        self
    }

    /// Appends records to this JSON-lines file, and sends them nowhere else: the same
    /// as `with_destinations([Destination::file(path)])`.
    ///
    /// ```
    /// use tracing_telemetry::{Config, Exporter};
    /// let config = Config::new().with_file("telemetry.jsonl");
    /// assert_eq!(config.exporters().collect::<Vec<_>>(), [Exporter::File]);
    /// ```
    #[must_use]
    pub fn with_file(self, path: impl Into<PathBuf>) -> Self {
        self.with_destinations([Destination::file(path)])
    }

    /// Sets the span field names to copy onto each record as tags.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_span_fields(["request_id"]);
    /// assert_eq!(config.span_fields(), ["request_id"]);
    /// ```
    #[must_use]
    pub fn with_span_fields<S: Into<String>>(
        mut self,
        fields: impl IntoIterator<Item = S>,
    ) -> Self {
        self.span_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The service these records come from, resolved once: `service.name`,
    /// `service.version` and the other resource attributes (see [`Resource`] for where
    /// each comes from). The exporters use it as it is; nothing is looked up per
    /// record.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([("OTEL_SERVICE_NAME", "checkout")])?;
    /// assert_eq!(config.resource().service_name(), "checkout");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Sets `service.name`. Code wins over the environment: called on
    /// [`Config::from_env`]'s result, it replaces `OTEL_SERVICE_NAME` and the
    /// `service.name` of `OTEL_RESOURCE_ATTRIBUTES`.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([("OTEL_SERVICE_NAME", "from-env")])?
    ///     .with_service_name("checkout");
    /// assert_eq!(config.resource().service_name(), "checkout");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_service_name(self, name: impl Into<String>) -> Self {
        self.with_resource_attribute("service.name", name)
    }

    /// Sets `service.version`, over the one in `OTEL_RESOURCE_ATTRIBUTES`.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_service_version(env!("CARGO_PKG_VERSION"));
    /// assert_eq!(config.resource().service_version(), Some(env!("CARGO_PKG_VERSION")));
    /// ```
    #[must_use]
    pub fn with_service_version(self, version: impl Into<String>) -> Self {
        self.with_resource_attribute("service.version", version)
    }

    /// Sets one resource attribute (`deployment.environment`, `service.namespace`, ...),
    /// over the one with that key in `OTEL_RESOURCE_ATTRIBUTES`. The key
    /// `service.name` sets the service name.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::from_iter([("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")])?
    ///     .with_resource_attribute("deployment.environment", "prod");
    /// assert_eq!(config.resource().get("deployment.environment"), Some("prod"));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.resource.set(key.into(), value.into());
        self
    }

    /// Sets the `otlp` exporter's spool directory (made absolute now).
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_spool_dir("/var/spool/app");
    /// assert_eq!(config.spool_dir(), Some(std::path::Path::new("/var/spool/app")));
    /// ```
    #[must_use]
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.spool_dir = Some(absolute(&dir).unwrap_or(dir));
        self
    }
}

/// The part of `name` after `TELEMETRY_`, that prefix matched in any letter case.
fn strip_prefix_ignore_case(name: &str) -> Option<&str> {
    let head = name.as_bytes().get(..PREFIX.len())?;
    // The prefix is ASCII, so a match ends on a character boundary.
    head.eq_ignore_ascii_case(PREFIX.as_bytes())
        .then(|| &name[PREFIX.len()..])
}

/// The known variable that `suffix` (the part after `TELEMETRY_`) is a near miss of.
///
/// Short names allow one edit and longer ones two, so that another tool's
/// `TELEMETRY_FILTER` is not mistaken for `TELEMETRY_FILE`; letter case is ignored.
fn near_miss(suffix: &str) -> Option<&'static str> {
    let suffix = suffix.to_ascii_uppercase();
    KNOWN.into_iter().find(|known| {
        let known_suffix = &known[PREFIX.len()..];
        let allowed = if known_suffix.len() <= 4 { 1 } else { 2 };
        strsim::damerau_levenshtein(&suffix, known_suffix) <= allowed
    })
}

/// A value or name as a message quotes it: escaped (so the message stays one line),
/// and cut after [`SHOWN_CHARS`] characters, saying how long it was.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(
                f,
                "{:?}... ({} bytes, cut after {SHOWN_CHARS} characters)",
                &self.0[..cut],
                self.0.len()
            ),
        }
    }
}

/// A `TELEMETRY_*` variable is invalid: it names the variable, quotes the value as
/// given and says what is accepted.
///
/// ```
/// let err = tracing_telemetry::Config::from_iter([("TELEMETRY_EXPORTER", "kafka")]).unwrap_err();
/// assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
/// assert_eq!(
///     err.to_string(),
///     r#"invalid value "kafka" for TELEMETRY_EXPORTER (expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
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
            format!("invalid value {} for {variable} ({expected})", Shown(value)),
        )
    }

    /// The variable at fault, such as `TELEMETRY_ENABLED`.
    ///
    /// ```
    /// let err = tracing_telemetry::Config::from_iter([("TELEMETRY_EXPORTR", "file")]).unwrap_err();
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

/// The message, as `Display` writes it, so that a `main` returning this error prints one
/// readable line; `{:#?}` shows the fields.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("ConfigError")
                .field("variable", &self.variable)
                .field("message", &self.message)
                .finish()
        } else {
            f.write_str(&self.message)
        }
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
        assert_eq!(near_miss("PROMETHEUS_ADR"), Some(PROMETHEUS_ADDR));
        assert_eq!(near_miss("SPAN_FIELD"), Some(SPAN_FIELDS));
        assert_eq!(near_miss("SPOOLDIR"), Some(SPOOL_DIR));
        assert_eq!(near_miss("FILTER"), None);
        assert_eq!(near_miss("ENDPOINT"), None);
        assert_eq!(near_miss("SERVICE_NAME"), None);
    }

    #[test]
    fn long_values_are_cut_and_their_length_given() {
        assert_eq!(Shown("short").to_string(), "\"short\"");
        let long = "é".repeat(100);
        assert_eq!(
            Shown(&long).to_string(),
            format!(
                "\"{}\"... (200 bytes, cut after 64 characters)",
                "é".repeat(64)
            )
        );
    }
}
