//! The error `try_init` returns.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::error::ConfigError;

/// Why telemetry could not be set up: an invalid `TELEMETRY_*` variable, a telemetry
/// file that cannot be opened, an export thread that cannot start, a global
/// subscriber that is already installed, or telemetry enabled in a build whose
/// `tracing` removes TRACE events at compile time.
///
/// The message is one line naming the variable or path, the value as given and what
/// to do about it. `Debug` prints the same line, so an app whose `main` returns
/// `Result<(), tracing_telemetry::Error>` stops with `Error: ` and that line (`{:#?}`
/// shows the structure instead).
///
/// ```
/// let config = tracing_telemetry::Config::from_iter([("TELEMETRY_ENABLED", "yes")]);
/// let err = tracing_telemetry::Error::from(config.unwrap_err());
/// assert_eq!(err.to_string(), r#"invalid value "yes" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#);
/// ```
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Config(ConfigError),
    Open { path: PathBuf, source: io::Error },
    Spawn(io::Error),
    AlreadyInstalled(Box<dyn std::error::Error + Send + Sync + 'static>),
    StaticMaxLevel(tracing_core::LevelFilter),
    Bind { addr: SocketAddr, source: io::Error },
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

    pub(crate) fn already_installed(
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            kind: ErrorKind::AlreadyInstalled(source.into()),
        }
    }

    pub(crate) fn static_max_level(level: tracing_core::LevelFilter) -> Self {
        Error {
            kind: ErrorKind::StaticMaxLevel(level),
        }
    }

    /// The configuration problem, when that is what went wrong.
    ///
    /// ```
    /// let err = tracing_telemetry::Error::from(tracing_telemetry::Config::from_iter([("TELEMETRY_EXPORTER", "x")]).unwrap_err());
    /// assert_eq!(err.config_error().map(|e| e.variable()), Some("TELEMETRY_EXPORTER"));
    /// ```
    pub fn config_error(&self) -> Option<&ConfigError> {
        match &self.kind {
            ErrorKind::Config(err) => Some(err),
            _ => None,
        }
    }
}

/// The message, as `Display` writes it: what `fn main() -> Result<(), Error>` prints.
/// The alternate form (`{:#?}`) is the structure, for debugging the crate itself.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("Error").field("kind", &self.kind).finish()
        } else {
            fmt::Display::fmt(self, f)
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
                "cannot open TELEMETRY_FILE {path:?}: {source} ({})",
                open_hint(source)
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
                "a global tracing subscriber is already installed (tracing_telemetry::try_init can run once per process; \
                 to keep your own subscriber, add the layer from tracing_telemetry::layer() to it)",
            ),
            ErrorKind::StaticMaxLevel(level) => write!(
                f,
                "telemetry is enabled but this build removes TRACE events at compile time \
                 (tracing's STATIC_MAX_LEVEL is {level}, set by a max_level_* or release_max_level_* feature \
                 of the tracing crate somewhere in the app's dependencies), so no record would ever be made; \
                 remove that feature, or set TELEMETRY_ENABLED=false"
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
            ErrorKind::AlreadyInstalled(source) => Some(&**source),
            ErrorKind::StaticMaxLevel(_) => None,
        }
    }
}

/// What to suggest when `TELEMETRY_FILE` cannot be opened.
fn open_hint(err: &io::Error) -> &'static str {
    #[cfg(unix)]
    match err.raw_os_error() {
        Some(libc::ELOOP) => {
            return "it is a symbolic link, which telemetry does not follow: name the file itself";
        }
        Some(libc::ENXIO) => {
            return "it is a FIFO that no process is reading: start the reader first";
        }
        _ => {}
    }
    let _ = err;
    "check that the directory exists and is writable"
}
