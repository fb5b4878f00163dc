//! Installing telemetry in an app: `try_init`, `init`, the guard and the runtime toggle.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::Arc;

use tracing_core::{LevelFilter, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, Exporter};
use crate::error::Error;
use crate::exporter::{ExportStats, ExporterSink};
use crate::fields::TARGET;
use crate::layer::{FilteredTelemetryLayer, TelemetryFilter, TelemetryHandle, TelemetryLayer};
use crate::sink::Sink;

/// Reads the `TELEMETRY_*` variables and installs the global subscriber: the app's
/// logs (fmt, `RUST_LOG` honoured, INFO by default) and the telemetry layer.
///
/// The app's logs go to stdout, or to stderr when telemetry is on with the `stdout`
/// exporter, so that stdout then carries nothing but JSON lines.
///
/// Keep the returned [`Guard`] for the life of the app: dropping it flushes every
/// buffered record. Fails, without installing anything, if a variable is invalid or
/// the telemetry file cannot be opened; fails if a global subscriber is already
/// installed. An invalid configuration never turns telemetry on.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = telemetry::try_init()?;
///     tracing::info!("app started");
///     telemetry::track_event("app.started", &[]);
///     Ok(())
/// }
/// ```
pub fn try_init() -> Result<Guard, Error> {
    try_init_with(&Config::from_env()?)
}

/// [`try_init`] with a configuration built in code instead of read from the
/// environment.
///
/// ```no_run
/// use telemetry::{Config, Exporter};
///
/// let _guard = telemetry::try_init_with(&Config::new().with_enabled(true).with_exporter(Exporter::Stdout))?;
/// # Ok::<(), telemetry::Error>(())
/// ```
pub fn try_init_with(config: &Config) -> Result<Guard, Error> {
    let (telemetry, guard) = layer_with(config)?;
    let app_logs = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy()
        // Records go to the exporter only, never into the app's own logs.
        .and(filter_fn(|meta| meta.target() != TARGET));
    // Telemetry owns stdout when it is the exporter: the app's logs move to stderr so
    // that stdout stays pure JSON lines.
    let logs_to_stderr = config.enabled() && config.exporter() == Exporter::Stdout;
    let (app_writer, ansi) = if logs_to_stderr {
        (BoxMakeWriter::new(io::stderr), io::stderr().is_terminal())
    } else {
        (BoxMakeWriter::new(io::stdout), io::stdout().is_terminal())
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(app_writer)
                .with_ansi(ansi)
                .with_filter(app_logs),
        )
        .with(telemetry)
        .try_init()
        .map_err(Error::already_installed)?;
    Ok(guard)
}

/// Like [`try_init`], but panics with the error's message.
///
/// ```no_run
/// let _guard = telemetry::init();
/// ```
pub fn init() -> Guard {
    try_init().unwrap_or_else(|err| panic!("{err}"))
}

/// Reads the `TELEMETRY_*` variables and builds the telemetry layer, for an app that
/// builds its own subscriber.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (telemetry, _guard) = telemetry::layer()?;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .with(telemetry);
/// tracing::subscriber::with_default(subscriber, || {
///     telemetry::track_event("app.started", &[]);
/// });
/// # Ok::<(), telemetry::Error>(())
/// ```
pub fn layer<S>() -> Result<(FilteredTelemetryLayer<Arc<ExporterSink>, S>, Guard), Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    layer_with(&Config::from_env()?)
}

/// [`layer`] with a configuration built in code.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use telemetry::{Config, Exporter};
///
/// let config = Config::new().with_enabled(true).with_exporter(Exporter::None);
/// let (telemetry, guard) = telemetry::layer_with(&config)?;
/// assert!(guard.handle().is_enabled());
/// let subscriber = tracing_subscriber::registry().with(telemetry);
/// # let _ = subscriber;
/// # Ok::<(), telemetry::Error>(())
/// ```
pub fn layer_with<S>(
    config: &Config,
) -> Result<(FilteredTelemetryLayer<Arc<ExporterSink>, S>, Guard), Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let sink = Arc::new(ExporterSink::from_config(config)?);
    let filter = TelemetryFilter::new(config.enabled());
    let guard = Guard {
        sink: Arc::clone(&sink),
        handle: filter.handle(),
    };
    Ok((TelemetryLayer::new(sink).with_filter(filter), guard))
}

/// Keeps telemetry export running; dropping it writes every queued record and stops
/// the export thread.
///
/// If records were dropped or lost, dropping the guard says so in one line on stderr.
///
/// ```no_run
/// let guard = telemetry::try_init()?;
/// telemetry::track_event("app.started", &[]);
/// drop(guard); // every record is written before this returns
/// # Ok::<(), telemetry::Error>(())
/// ```
#[must_use = "dropping the guard flushes telemetry and ends export; keep it for the life of the app"]
pub struct Guard {
    sink: Arc<ExporterSink>,
    handle: TelemetryHandle,
}

impl Guard {
    /// A handle that turns telemetry on and off while the app runs.
    ///
    /// ```
    /// let (_layer, guard) = telemetry::layer_with::<tracing_subscriber::Registry>(&telemetry::Config::new())?;
    /// assert!(!guard.handle().is_enabled());
    /// # Ok::<(), telemetry::Error>(())
    /// ```
    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// What the exporter did so far: records written, dropped (buffer full) and lost
    /// to write errors. Worth exporting as a health metric of its own.
    ///
    /// ```
    /// let (_layer, guard) = telemetry::layer_with::<tracing_subscriber::Registry>(&telemetry::Config::new())?;
    /// assert_eq!(guard.stats().dropped(), 0);
    /// # Ok::<(), telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> ExportStats {
        self.sink.stats()
    }

    /// Writes every record queued so far before returning (as long as the
    /// destination makes progress), without stopping export. Dropping the guard does
    /// this too.
    ///
    /// ```
    /// let (_layer, guard) = telemetry::layer_with::<tracing_subscriber::Registry>(&telemetry::Config::new())?;
    /// guard.flush();
    /// assert_eq!(guard.stats().written(), 0);
    /// # Ok::<(), telemetry::Error>(())
    /// ```
    pub fn flush(&self) {
        self.sink.flush();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.sink.shutdown();
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}
