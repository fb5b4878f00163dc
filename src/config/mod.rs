//! The configuration: one pass over the environment, a parser per concern.
//!
//! | file | role |
//! |---|---|
//! | `error.rs` | [`ConfigError`], a leaf |
//! | `env.rs` | the environment read once into a snapshot, and the rules every variable follows (set twice, empty, whitespace, relative paths, UTF-8) |
//! | `telemetry.rs` | the `TELEMETRY_*` variables, [`Exporter`] |
//! | `destination.rs` | [`Destination`], a configured exporter |
//! | `resource.rs` | [`Resource`], resolved once from `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` |
//! | `otlp.rs` | the OTLP exporter's `OTEL_*` variables (cargo feature `otlp`) |
//!
//! This module depends on no exporter's runtime; the exporters depend on its types.
//! The one type it names from an exporter is `OtlpConfig` (the payload of
//! `Destination::Otlp`), which stays beside the OTLP exporter because it is built of
//! that exporter's endpoint and certificate types; it reads its variables through
//! `otlp.rs` and never names [`Config`].

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

mod destination;
pub(crate) mod env;
pub(crate) mod error;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod resource;
mod telemetry;

pub use destination::Destination;
use env::{absolute, Env};
pub use error::ConfigError;
pub use resource::Resource;
pub use telemetry::Exporter;

/// The address the `prometheus` exporter serves `GET /metrics` on when
/// `TELEMETRY_PROMETHEUS_ADDR` is not set: `127.0.0.1:9464`.
///
/// ```
/// assert_eq!(tracing_telemetry::DEFAULT_PROMETHEUS_ADDR.to_string(), "127.0.0.1:9464");
/// ```
pub const DEFAULT_PROMETHEUS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

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
    /// pairs, taken once; every other variable is ignored.
    ///
    /// Every variable the crate reads, `TELEMETRY_*` and `OTEL_*` alike, follows the
    /// same rules: surrounding ASCII whitespace is trimmed; empty (or only whitespace)
    /// is unset; a name given twice is an error naming it (and quoting both values,
    /// unless they may hold a credential); a value that is not UTF-8 is an error naming
    /// the variable; a relative path (`TELEMETRY_FILE`, `TELEMETRY_SPOOL_DIR`, the OTLP
    /// certificate and key files) is made absolute against the working directory here,
    /// once.
    ///
    /// A name that is a near miss of a known one, letter case included
    /// (`TELEMETRY_ENABLE`, `telemetry_enabled`), is an error that suggests the known
    /// name; other `TELEMETRY_*` names are left to whatever tool owns them.
    ///
    /// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read too, whatever the
    /// exporters, into the [`Resource`] that names the service on every record. Other
    /// `OTEL_*` names are never judged here, nor taken for near misses of
    /// `TELEMETRY_*` ones, except by the `otlp` exporter when it is listed. With
    /// telemetry off, no `OTEL_*` variable is an error: they may belong to another
    /// OpenTelemetry SDK in the process. An invalid resource then leaves the default
    /// one, and a variable the `otlp` exporter refuses is said when telemetry is
    /// turned on (the exporter cannot start; its records are dropped and counted). The
    /// `TELEMETRY_*` variables are checked on and off.
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
        Self::from_snapshot(&Env::read(vars))
    }

    /// The configuration `env` describes: each parser reads its own variables.
    fn from_snapshot(env: &Env) -> Result<Self, ConfigError> {
        let telemetry = telemetry::read(env)?;
        let enabled = telemetry.enabled;
        // The OTEL_* variables are shared with any OpenTelemetry SDK in the process:
        // with telemetry off, one that is invalid is not ours to stop the app for
        // (the default resource stands in); on, it is an error like ours.
        let resource = match resource::resolve(env) {
            Ok(resource) => resource,
            Err(err) if enabled => return Err(err),
            Err(_) => Resource::default(),
        };
        let mut destinations = Vec::with_capacity(telemetry.exporters.len());
        #[cfg(feature = "otlp")]
        let mut otlp_error = None;
        for exporter in &telemetry.exporters {
            destinations.push(match exporter {
                Exporter::Stdout => Destination::Stdout,
                Exporter::Stderr => Destination::Stderr,
                Exporter::File => Destination::File(telemetry.required_file()?),
                #[cfg(feature = "prometheus")]
                Exporter::Prometheus => Destination::Prometheus(
                    telemetry.prometheus_addr.unwrap_or(DEFAULT_PROMETHEUS_ADDR),
                ),
                // With telemetry off, a variable the exporter refuses does not stop the
                // app: the exporter keeps the error, and gives it if telemetry is
                // turned on (it then cannot start: its records are dropped and
                // counted, and the message says why).
                #[cfg(feature = "otlp")]
                Exporter::Otlp => {
                    let otlp = match otlp::OtlpConfig::from_snapshot(env) {
                        Ok(otlp) => otlp,
                        Err(err) if enabled => return Err(err),
                        Err(err) => {
                            otlp_error = Some(err);
                            otlp::OtlpConfig::new()
                        }
                    };
                    // The resource is resolved once, above, for every destination.
                    Destination::Otlp(otlp.with_resource(&resource))
                }
                // `none` was taken out, and exporters not built in were refused.
                _ => continue,
            });
        }
        Ok(Config {
            enabled,
            destinations,
            span_fields: telemetry.span_fields,
            spool_dir: telemetry.spool_dir,
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
