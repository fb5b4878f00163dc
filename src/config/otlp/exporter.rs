//! [`OtlpConfig`]: the OTLP exporter's settings. The `OTEL_*` variables are read by
//! the module above (with the rules every variable follows); here what needs more
//! than their text is built from them: each signal's [`Endpoint`] and its certificate
//! files ([`TlsFiles`], read and checked now). The exporter (`crate::otlp`) reads
//! these settings; nothing here depends on the exporter, and nothing on `Config`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::endpoint::{Endpoint, Form};
use super::tls::TlsFiles;
use super::{read, EndpointVar, OtlpCompression, PathVar, Signal, SignalVars, ENDPOINT};
use crate::config::env::Env;
use crate::config::error::ConfigError;
use crate::config::resource::{resolve, Resource};

/// The default byte limit of a spool.
pub(crate) const DEFAULT_SPOOL_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest spool limit accepted.
pub(crate) const MIN_SPOOL_BYTES: u64 = 64 * 1024;

/// The specification's default collector address for OTLP/HTTP.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_millis(60_000);
/// Default bound on what the exporter holds before the collector takes it.
const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Where and how one signal is sent.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SignalConfig {
    /// The URL; `Debug` and every message show it without credentials or query.
    pub(crate) endpoint: Endpoint,
    /// Names and values; the values are credentials as often as not, so `Debug`
    /// shows only the names.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) compression: OtlpCompression,
    /// The CA and client certificate files; `Debug` shows their paths.
    pub(crate) tls: TlsFiles,
}

impl fmt::Debug for SignalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SignalConfig")
            .field("url", &self.endpoint)
            .field("header_names", &names)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The configuration of the OTLP exporter: the collector's address, headers, timeout,
/// compression, the metric interval and the resource that names the service.
///
/// Read it from the standard OpenTelemetry variables with [`OtlpConfig::from_env`] or
/// [`OtlpConfig::from_vars`]:
///
/// | variable | values | default |
/// |---|---|---|
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL (`http` or `https`); `v1/logs` and `v1/metrics` are appended to its path, before its query | `http://localhost:4318` |
/// | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `..._METRICS_ENDPOINT` | full URL for that signal, used as is | from the base |
/// | `OTEL_EXPORTER_OTLP_CERTIFICATE` (and per signal) | PEM file of the CA certificates that sign the collector's certificate; they replace the built-in (Mozilla) roots | built-in roots |
/// | `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `..._CLIENT_KEY` (and per signal) | PEM files of a client certificate (chain) and its unencrypted key, for mutual TLS; both or neither | none |
/// | `OTEL_EXPORTER_OTLP_HEADERS` (and `..._LOGS_HEADERS`, `..._METRICS_HEADERS`) | `key=value,key2=value2`, values percent-decoded; never printed | none |
/// | `OTEL_EXPORTER_OTLP_TIMEOUT` (and per signal) | milliseconds per request; `0` = no limit | `10000` |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL` (and per signal) | `http/protobuf` (`grpc` and `http/json` are refused) | `http/protobuf` |
/// | `OTEL_EXPORTER_OTLP_COMPRESSION` (and per signal) | `gzip`, `none` | `none` |
/// | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between metric pushes (positive) | `60000` |
/// | `OTEL_SERVICE_NAME` | the `service.name` resource attribute; wins over the one below | `unknown_service:<executable>` |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...`, percent-decoded | none |
/// | `OTEL_SDK_DISABLED` | `true`/`false` (any letter case): `true` makes the exporter send nothing | `false` |
///
/// Every variable follows the rules of all the crate's variables: surrounding
/// whitespace is trimmed, empty is unset, set twice or not UTF-8 is an error naming
/// it, and a relative path (certificates, keys, `TELEMETRY_SPOOL_DIR`) is made absolute
/// against the working directory when it is read. Per-signal variables win over the
/// general ones.
///
/// An endpoint may carry credentials (`https://user:password@host`, sent as HTTP Basic
/// authentication) and a query; messages and `Debug` show it with both replaced by
/// `***`. A `#fragment` is refused (it is never sent; a `#` in a password or token is
/// written `%23`). Redirects from the collector are not followed. The certificate
/// files are read and checked here: a missing or invalid file, or a key that does not
/// match its certificate, is an error that names the variable and the path.
///
/// ```
/// use tracing_telemetry::OtlpConfig;
///
/// let config = OtlpConfig::from_vars([
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base/"),
///     ("OTEL_SERVICE_NAME", "checkout"),
/// ])?;
/// assert_eq!(config.logs_endpoint(), "http://collector:4318/base/v1/logs");
/// assert_eq!(config.metrics_endpoint(), "http://collector:4318/base/v1/metrics");
/// assert_eq!(config.service_name(), "checkout");
///
/// let err = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
/// assert_eq!(err.variable(), "OTEL_EXPORTER_OTLP_PROTOCOL");
/// # Ok::<(), tracing_telemetry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    pub(crate) logs: SignalConfig,
    pub(crate) metrics: SignalConfig,
    pub(crate) metric_interval: Duration,
    /// `service.name` first, then the rest of `OTEL_RESOURCE_ATTRIBUTES` in order.
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) disabled: bool,
    pub(crate) queue_bytes: usize,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) spool_bytes: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl OtlpConfig {
    /// The defaults, as if no `OTEL_*` variable were set.
    ///
    /// | setting | default |
    /// |---|---|
    /// | logs endpoint | `http://localhost:4318/v1/logs` |
    /// | metrics endpoint | `http://localhost:4318/v1/metrics` |
    /// | headers | none |
    /// | timeout | 10 s per request |
    /// | compression | none |
    /// | metric interval | 60 s |
    /// | service name | `unknown_service:<executable name>` |
    /// | queue | 8 MiB of encoded records |
    /// | spool directory | none: memory only |
    /// | spool limit | 64 MiB |
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::new();
    /// assert_eq!(config.logs_endpoint(), "http://localhost:4318/v1/logs");
    /// assert_eq!(config.timeout(), std::time::Duration::from_secs(10));
    /// ```
    pub fn new() -> Self {
        let signal = |s: Signal| SignalConfig {
            endpoint: Endpoint::parse(ENDPOINT, DEFAULT_ENDPOINT, Form::Base(s.path()))
                .expect("the default endpoint is a valid URL"),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            compression: OtlpCompression::None,
            tls: TlsFiles::default(),
        };
        OtlpConfig {
            logs: signal(Signal::Logs),
            metrics: signal(Signal::Metrics),
            metric_interval: DEFAULT_METRIC_INTERVAL,
            resource: attributes(&Resource::default()),
            disabled: false,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            spool_dir: None,
            spool_bytes: DEFAULT_SPOOL_BYTES,
        }
    }

    /// Reads the `OTEL_*` variables of this process, and `TELEMETRY_SPOOL_DIR`.
    ///
    /// ```
    /// # for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] {
    /// #     std::env::remove_var(name);
    /// # }
    /// // With no OTEL_EXPORTER_OTLP_*ENDPOINT set, records go to a local collector.
    /// let config = tracing_telemetry::OtlpConfig::from_env()?;
    /// assert_eq!(config.logs_endpoint(), "http://localhost:4318/v1/logs");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars_os())
    }

    /// Reads the `OTEL_*` variables and `TELEMETRY_SPOOL_DIR` (the spool directory) from
    /// a list of `(name, value)` pairs; every other
    /// variable is ignored. An invalid value is an error naming the variable, the value
    /// as given (header values never) and what is accepted.
    ///
    /// ```
    /// let err = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid value "10s" for OTEL_EXPORTER_OTLP_TIMEOUT (expected a whole number of milliseconds, such as 10000; 0 means no limit)"#
    /// );
    /// ```
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let env = Env::read(vars);
        // The same reading as `Config`'s, so that every destination names the
        // service alike.
        let resource = resolve(&env);
        Ok(Self::from_snapshot(&env)?.with_resource(&resource?))
    }

    /// The exporter's variables in `env` (the resource is left at its default: the
    /// caller resolves it once, for every destination).
    pub(crate) fn from_snapshot(env: &Env) -> Result<Self, ConfigError> {
        let vars = read(env)?;
        let mut config = OtlpConfig::new();
        config.logs = signal_config(vars.logs, Signal::Logs)?;
        config.metrics = signal_config(vars.metrics, Signal::Metrics)?;
        if let Some(interval) = vars.metric_interval {
            config.metric_interval = interval;
        }
        config.disabled = vars.disabled;
        config.spool_dir = vars.spool_dir;
        Ok(config)
    }

    /// Where log records (one per `track_event`) are sent: the URL as requests use it,
    /// credentials and query included (print [`OtlpConfig`]'s `Debug` form instead,
    /// which hides them).
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://otlp.example.com/ingest")])?;
    /// assert_eq!(config.logs_endpoint(), "https://otlp.example.com/ingest");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn logs_endpoint(&self) -> &str {
        self.logs.endpoint.url()
    }

    /// Where metrics are sent: the URL as requests use it, credentials and query
    /// included.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318")])?;
    /// assert_eq!(config.metrics_endpoint(), "http://m:4318/");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn metrics_endpoint(&self) -> &str {
        self.metrics.endpoint.url()
    }

    /// The longest one request for log records may take.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")])?;
    /// assert_eq!(config.timeout(), std::time::Duration::from_millis(2500));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.logs.timeout
    }

    /// The names of the headers sent with log records (their values stay private).
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t,team=core")])?;
    /// assert_eq!(config.header_names().collect::<Vec<_>>(), ["api-key", "team"]);
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.logs.headers.iter().map(|(name, _)| name.as_str())
    }

    /// How request bodies for log records are compressed.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")])?;
    /// assert_eq!(config.compression(), tracing_telemetry::OtlpCompression::Gzip);
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn compression(&self) -> OtlpCompression {
        self.logs.compression
    }

    /// How often metrics are pushed.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().metric_interval(), std::time::Duration::from_secs(60));
    /// ```
    pub fn metric_interval(&self) -> Duration {
        self.metric_interval
    }

    /// The `service.name` resource attribute.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_RESOURCE_ATTRIBUTES", "service.name=billing,deployment.environment=prod")])?;
    /// assert_eq!(config.service_name(), "billing");
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn service_name(&self) -> &str {
        self.resource
            .first()
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Every resource attribute, `service.name` first.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("OTEL_RESOURCE_ATTRIBUTES", "team=core%20infra")])?;
    /// assert!(config.resource_attributes().any(|(k, v)| k == "team" && v == "core infra"));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn resource_attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.resource.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `OTEL_SDK_DISABLED=true` turned this exporter off: it then starts no
    /// thread and sends nothing (other destinations are unaffected).
    ///
    /// ```
    /// assert!(tracing_telemetry::OtlpConfig::from_vars([("OTEL_SDK_DISABLED", "TRUE")])?.disabled());
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// The bound, in bytes of encoded records, on what the exporter holds while the
    /// collector has not taken it; beyond it, new records are dropped and counted.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().queue_bytes(), 8 * 1024 * 1024);
    /// ```
    pub fn queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// Names the service with `resource`'s attributes (`service.name` first).
    pub(crate) fn with_resource(mut self, resource: &Resource) -> Self {
        self.resource = attributes(resource);
        self
    }

    /// Sets the service name, as `OTEL_SERVICE_NAME` does.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().with_service_name("checkout").service_name(), "checkout");
    /// ```
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.resource[0].1 = name.into();
        self
    }

    /// Sets the per-request timeout for every signal, as `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// does. It also bounds how long shutdown waits for the collector.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().with_timeout(Duration::from_secs(2)).timeout(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.logs.timeout = timeout;
        self.metrics.timeout = timeout;
        self
    }

    /// Sets the metric push interval, as `OTEL_METRIC_EXPORT_INTERVAL` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = tracing_telemetry::OtlpConfig::new().with_metric_interval(Duration::from_secs(10));
    /// assert_eq!(config.metric_interval(), Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn with_metric_interval(mut self, interval: Duration) -> Self {
        self.metric_interval = interval;
        self
    }

    /// The directory where log requests wait until the collector accepts them
    /// (`TELEMETRY_SPOOL_DIR`), or `None`: memory only. See
    /// [the spool](crate::guide::operations#the-spool-surviving-outages-and-restarts-telemetry_spool_dir)
    /// in the operations guide.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::from_vars([("TELEMETRY_SPOOL_DIR", "/var/spool/checkout")])?;
    /// assert_eq!(config.spool_dir(), Some(std::path::Path::new("/var/spool/checkout")));
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().spool_dir(), None);
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn spool_dir(&self) -> Option<&Path> {
        self.spool_dir.as_deref()
    }

    /// Keeps log requests on disk in `dir` until the collector accepts them, as
    /// `TELEMETRY_SPOOL_DIR` does: they survive an outage and a restart. The
    /// directory is created (mode 0700) by the export thread when it starts.
    ///
    /// ```
    /// let config = tracing_telemetry::OtlpConfig::new().with_spool_dir("/var/spool/checkout");
    /// assert!(config.spool_dir().is_some());
    /// ```
    #[must_use]
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The most bytes the spool holds; beyond it the oldest requests are dropped and
    /// counted ([`OtlpStats::spool_dropped`](crate::OtlpStats::spool_dropped)).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().spool_bytes(), 64 * 1024 * 1024);
    /// ```
    pub fn spool_bytes(&self) -> u64 {
        self.spool_bytes
    }

    /// Sets the spool's byte limit (at least 64 KiB).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().with_spool_bytes(1 << 30).spool_bytes(), 1 << 30);
    /// ```
    #[must_use]
    pub fn with_spool_bytes(mut self, bytes: u64) -> Self {
        self.spool_bytes = bytes.max(MIN_SPOOL_BYTES);
        self
    }

    /// Sets the queue bound in bytes of encoded records (at least 1 KiB).
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OtlpConfig::new().with_queue_bytes(65_536).queue_bytes(), 65_536);
    /// ```
    #[must_use]
    pub fn with_queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1024);
        self
    }
}

fn attributes(resource: &Resource) -> Vec<(String, String)> {
    resource
        .attributes()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One signal's settings from its variables: the endpoint's URL, the certificate files
/// read and checked.
fn signal_config(vars: SignalVars<'_>, signal: Signal) -> Result<SignalConfig, ConfigError> {
    let endpoint = match vars.endpoint {
        EndpointVar::Default => {
            Endpoint::parse(ENDPOINT, DEFAULT_ENDPOINT, Form::Base(signal.path()))?
        }
        EndpointVar::Base(text) => Endpoint::parse(ENDPOINT, text, Form::Base(signal.path()))?,
        EndpointVar::Signal(name, text) => Endpoint::parse(&name, text, Form::AsIs)?,
    };
    // The absolute path, as the rules of every path variable say; the files are read
    // now, so the value as given names the same file where the path is not UTF-8.
    fn named<'a>(var: &'a Option<PathVar<'_>>) -> Option<(&'a str, &'a str)> {
        var.as_ref()
            .map(|v| (v.variable.as_str(), v.path.to_str().unwrap_or(v.text)))
    }
    let tls = TlsFiles::load(
        named(&vars.certificate),
        named(&vars.client_certificate),
        named(&vars.client_key),
    )?;
    Ok(SignalConfig {
        endpoint,
        headers: vars.headers,
        timeout: vars.timeout.unwrap_or(DEFAULT_TIMEOUT),
        compression: vars.compression,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::otlp::NO_LIMIT;

    fn config(vars: &[(&str, &str)]) -> Result<OtlpConfig, ConfigError> {
        OtlpConfig::from_vars(vars.iter().copied())
    }

    #[test]
    fn endpoints_follow_the_specification_examples() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
        assert_eq!(c.logs.endpoint.url(), "http://collector:4318/v1/logs");
        assert_eq!(c.metrics.endpoint.url(), "http://collector:4318/v1/metrics");

        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector:4318/mycollector/",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "https://collector.example.com/v1/metrics/",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.logs.endpoint.url(),
            "http://collector:4318/mycollector/v1/logs"
        );
        assert_eq!(
            c.metrics.endpoint.url(),
            "https://collector.example.com/v1/metrics/"
        );

        let c = config(&[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://collector:4318")]).unwrap();
        assert_eq!(c.logs.endpoint.url(), "http://collector:4318/");
        assert_eq!(c.metrics.endpoint.url(), "http://localhost:4318/v1/metrics");
    }

    #[test]
    fn invalid_values_name_the_variable_and_what_is_accepted() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "localhost:4318",
                r#"invalid value "localhost:4318" for OTEL_EXPORTER_OTLP_ENDPOINT (expected an http or https URL such as http://localhost:4318)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "ftp://x",
                r#"invalid value "ftp://x" for OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (expected an http or https URL such as http://localhost:4318)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "-1",
                r#"invalid value "-1" for OTEL_EXPORTER_OTLP_TIMEOUT (expected a whole number of milliseconds, such as 10000; 0 means no limit)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
                "1.5",
                r#"invalid value "1.5" for OTEL_EXPORTER_OTLP_LOGS_TIMEOUT (expected a whole number of milliseconds, such as 10000; 0 means no limit)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "grpc",
                r#"invalid value "grpc" for OTEL_EXPORTER_OTLP_PROTOCOL (expected http/protobuf: this exporter speaks OTLP over HTTP with protobuf bodies, so point it at the collector's OTLP/HTTP port, usually 4318)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "thrift",
                r#"invalid value "thrift" for OTEL_EXPORTER_OTLP_PROTOCOL (expected http/protobuf)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_COMPRESSION",
                "zstd",
                r#"invalid value "zstd" for OTEL_EXPORTER_OTLP_COMPRESSION (expected gzip or none)"#,
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
                "br",
                r#"invalid value "br" for OTEL_EXPORTER_OTLP_METRICS_COMPRESSION (expected gzip or none)"#,
            ),
            (
                "OTEL_METRIC_EXPORT_INTERVAL",
                "0",
                r#"invalid value "0" for OTEL_METRIC_EXPORT_INTERVAL (expected a positive whole number of milliseconds, such as 60000)"#,
            ),
            (
                "OTEL_SDK_DISABLED",
                "yes",
                r#"invalid value "yes" for OTEL_SDK_DISABLED (expected true or false)"#,
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "team",
                r#"invalid value "team" for OTEL_RESOURCE_ATTRIBUTES (expected key=value pairs separated by commas, such as service.namespace=shop,deployment.environment=prod; ",", "=" and "%" inside keys and values percent-encoded, the result UTF-8)"#,
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "a=%ff",
                r#"invalid value "a=%ff" for OTEL_RESOURCE_ATTRIBUTES (expected key=value pairs separated by commas, such as service.namespace=shop,deployment.environment=prod; ",", "=" and "%" inside keys and values percent-encoded, the result UTF-8)"#,
            ),
        ];
        for (var, value, message) in cases {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable(), *var);
            assert_eq!(err.to_string(), *message);
        }
    }

    #[test]
    fn credentials_and_queries_in_endpoints_never_appear_in_debug() {
        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://user:s3cr3t@collector:4318/base?token=t0ken",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://key@m:4318?token=t0ken",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.logs_endpoint(),
            "https://user:s3cr3t@collector:4318/base/v1/logs?token=t0ken"
        );
        assert_eq!(c.metrics_endpoint(), "http://key@m:4318/?token=t0ken");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("t0ken") && !debug.contains("key@"),
            "{debug}"
        );
        assert!(
            debug.contains("https://***@collector:4318/base/v1/logs?***"),
            "{debug}"
        );
    }

    #[test]
    fn certificate_files_are_read_per_signal_and_checked_at_start() {
        let err = config(&[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
                "/nonexistent/logs-ca.pem",
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable(), "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE");
        assert!(err.to_string().starts_with(
            "cannot use \"/nonexistent/logs-ca.pem\" from OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: "
        ));
        let err =
            config(&[("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/c.pem")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE is set to \"/c.pem\" but \
             OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY is not (expected both, the client's certificate and its private \
             key, for a collector that asks for a client certificate, or neither)"
        );
    }

    #[test]
    fn header_values_never_appear_in_errors_or_debug() {
        let err =
            config(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t,oops-s3cr3t")]).unwrap_err();
        assert_eq!(err.variable(), "OTEL_EXPORTER_OTLP_HEADERS");
        assert_eq!(
            err.to_string(),
            "invalid value for OTEL_EXPORTER_OTLP_HEADERS: entry 2 has no \"=\" (expected key=value pairs separated by commas, \
             such as api-key=...,team=core; the value is not shown because it may hold a credential)"
        );
        let err = config(&[("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "a=s3cr3t%0A")]).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");

        let c = config(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Api-Key=s3cr3t%20x, team = core ",
        )])
        .unwrap();
        assert_eq!(
            c.logs.headers,
            [
                ("api-key".to_owned(), "s3cr3t x".to_owned()),
                ("team".to_owned(), "core".to_owned())
            ]
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn per_signal_options_win_over_the_general_ones() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "HTTP/PROTOBUF"),
        ])
        .unwrap();
        assert_eq!(c.logs.headers, [("a".to_owned(), "1".to_owned())]);
        assert_eq!(c.metrics.headers, [("b".to_owned(), "2".to_owned())]);
        assert_eq!(c.logs.timeout, Duration::from_millis(500));
        assert_eq!(c.metrics.timeout, NO_LIMIT);
        assert_eq!(c.logs.compression, OtlpCompression::None);
        assert_eq!(c.metrics.compression, OtlpCompression::Gzip);
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from%20attrs, team=a%2Cb%3Dc ,team=last",
        )])
        .unwrap();
        assert_eq!(c.service_name(), "from attrs");
        assert_eq!(
            c.resource,
            [
                ("service.name".to_owned(), "from attrs".to_owned()),
                ("team".to_owned(), "last".to_owned())
            ]
        );
        let c = config(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attrs,team=a%2Cb"),
            ("OTEL_SERVICE_NAME", "env"),
        ])
        .unwrap();
        assert_eq!(c.service_name(), "env");
        assert_eq!(c.resource[1], ("team".to_owned(), "a,b".to_owned()));
        assert!(config(&[])
            .unwrap()
            .service_name()
            .starts_with("unknown_service:"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", " "),
            ("OTEL_SDK_DISABLED", ""),
        ])
        .unwrap();
        assert_eq!(c, {
            let mut d = OtlpConfig::new();
            d.resource = c.resource.clone();
            d
        });
    }
}
