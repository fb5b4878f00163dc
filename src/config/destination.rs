//! [`Destination`]: one configured place records go.

#[cfg(feature = "prometheus")]
use std::net::SocketAddr;
use std::path::PathBuf;

use super::env::absolute;
use super::telemetry::Exporter;

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
    /// (read from the `OTEL_*` variables by [`Config::from_env`](crate::Config::from_env)).
    #[cfg(feature = "otlp")]
    Otlp(crate::config::otlp::OtlpConfig),
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
