//! The error `try_init` returns.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Why telemetry could not be set up: an invalid `TELEMETRY_*` variable, a telemetry
/// file that cannot be opened, an export thread that cannot start, or a global
/// subscriber that is already installed.
///
/// The message is one line naming the variable or path, the value as given and what
/// to do about it.
///
/// ```
/// let config = telemetry::Config::from_iter([("TELEMETRY_ENABLED", "yes")]);
/// let err = telemetry::Error::from(config.unwrap_err());
/// assert_eq!(err.to_string(), r#"invalid value "yes" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#);
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Config(ConfigError),
    Open { path: PathBuf, source: io::Error },
    Spawn(io::Error),
    Bind { addr: SocketAddr, source: io::Error },
    AlreadyInstalled(tracing_subscriber::util::TryInitError),
}

impl Error {
    pub(crate) fn open(path: PathBuf, source: io::Error) -> Self {
        Error {
            kind: ErrorKind::Open { path, source },
        }
    }

    pub(crate) fn spawn(source: io::Error) -> Self {
        Error {
            kind: ErrorKind::Spawn(source),
        }
    }

    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn bind(addr: SocketAddr, source: io::Error) -> Self {
        Error {
            kind: ErrorKind::Bind { addr, source },
        }
    }

    pub(crate) fn already_installed(source: tracing_subscriber::util::TryInitError) -> Self {
        Error {
            kind: ErrorKind::AlreadyInstalled(source),
        }
    }

    /// The configuration problem, when that is what went wrong.
    ///
    /// ```
    /// let err = telemetry::Error::from(telemetry::Config::from_iter([("TELEMETRY_EXPORTER", "x")]).unwrap_err());
    /// assert_eq!(err.config_error().map(|e| e.variable()), Some("TELEMETRY_EXPORTER"));
    /// ```
    pub fn config_error(&self) -> Option<&ConfigError> {
        match &self.kind {
            ErrorKind::Config(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error {
            kind: ErrorKind::Config(err),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Config(err) => fmt::Display::fmt(err, f),
            ErrorKind::Open { path, source } => write!(
                f,
                "cannot open TELEMETRY_FILE {path:?}: {source} (check that the directory exists and is writable)"
            ),
            ErrorKind::Spawn(source) => {
                write!(f, "cannot start the telemetry export thread: {source}")
            }
            ErrorKind::Bind { addr, source } => write!(
                f,
                "cannot serve Prometheus metrics on {addr}: {source} \
                 (set TELEMETRY_PROMETHEUS_ADDR to a free host:port)"
            ),
            ErrorKind::AlreadyInstalled(_) => f.write_str(
                "a global tracing subscriber is already installed (telemetry::try_init can run once per process; \
                 to keep your own subscriber, add the layer from telemetry::layer() to it)",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            // The message is the configuration error's own.
            ErrorKind::Config(_) => None,
            ErrorKind::Open { source, .. }
            | ErrorKind::Spawn(source)
            | ErrorKind::Bind { source, .. } => Some(source),
            ErrorKind::AlreadyInstalled(source) => Some(source),
        }
    }
}
