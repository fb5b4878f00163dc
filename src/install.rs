//! Installing telemetry in an app: `try_init`, `init`, the guard and the runtime toggle.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::Arc;

use tracing_core::span;
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Metadata};
use tracing_core::{LevelFilter, Subscriber};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, Destination};
use crate::error::Error;
use crate::export::{DestinationStats, ExportStats, ExporterSink};
use crate::layer::{
    is_track_call, FilteredTelemetryLayer, TelemetryFilter, TelemetryHandle, TelemetryLayer,
};
use crate::sink::Sink;

/// Reads the `TELEMETRY_*` variables and installs the global subscriber: the app's
/// logs (fmt, `RUST_LOG` honoured, INFO by default) and the telemetry layer.
///
/// The app's logs go to stdout, or to stderr whenever the `stdout` exporter is
/// configured (on or off), so that stdout carries nothing but JSON lines even after
/// telemetry is turned on at run time.
///
/// Keep the returned [`Guard`] for the life of the app: dropping it flushes every
/// buffered record. Fails, without installing or creating anything, if a variable is
/// invalid, the telemetry file cannot be opened, a global subscriber is already
/// installed, or telemetry is enabled in a build whose `tracing` removes TRACE events
/// at compile time (see [`layer_with`]). An invalid configuration never turns
/// telemetry on.
///
/// With the cargo feature `metrics`, it also installs a `TelemetryRecorder` as the
/// `metrics` crate's global recorder, unless one is installed already, so that
/// `metrics::counter!`, `gauge!`, `histogram!` and `describe_*!` feed the same
/// instruments, under the same switch and exporters.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = tracing_telemetry::try_init()?;
///     tracing::info!("app started");
///     tracing_telemetry::track_event("app.started", &[]);
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
/// use tracing_telemetry::{Config, Destination};
///
/// let config = Config::new().with_enabled(true).with_destinations([Destination::Stdout]);
/// let _guard = tracing_telemetry::try_init_with(&config)?;
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
pub fn try_init_with(config: &Config) -> Result<Guard, Error> {
    // Checked before anything is built, so that a refused install leaves nothing
    // behind: no export thread, no telemetry file.
    if tracing::dispatcher::has_been_set() {
        return Err(already_installed());
    }
    let (subscriber, guard) = app_subscriber(config)?;
    subscriber.try_init().map_err(Error::already_installed)?;
    // The `metrics` facade feeds the same instruments, when no recorder is there yet.
    #[cfg(feature = "metrics")]
    crate::metrics_facade::install_if_none();
    Ok(guard)
}

/// The subscriber [`try_init_with`] installs, not installed: for the benchmarks, which
/// measure exactly what an app gets, with each configuration in turn as a scoped
/// default.
#[doc(hidden)]
pub fn app_subscriber(
    config: &Config,
) -> Result<(impl Subscriber + Send + Sync + 'static, Guard), Error> {
    // Alone: in this subscriber, track calls reach the telemetry layer and nothing else.
    let (telemetry, guard) = telemetry_layer(config, true)?;
    let app_logs = AppLogs(
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .from_env_lossy(),
    );
    // Telemetry owns stdout whenever the stdout exporter is configured, on or off: the
    // app's logs go to stderr, so that turning telemetry on at run time never mixes
    // JSON lines with log lines.
    let logs_to_stderr = config.destinations().contains(&Destination::Stdout);
    let (app_writer, ansi) = if logs_to_stderr {
        (BoxMakeWriter::new(io::stderr), io::stderr().is_terminal())
    } else {
        (BoxMakeWriter::new(io::stdout), io::stdout().is_terminal())
    };
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(app_writer)
                .with_ansi(ansi)
                .with_filter(app_logs),
        )
        .with(telemetry);
    Ok((subscriber, guard))
}

/// The filter of the app's own logs: `RUST_LOG`'s directives, less the track calls,
/// which go to the exporter only (other events with the `telemetry` target are the
/// app's and stay).
///
/// Unlike `EnvFilter::and(filter_fn(..))`, it keeps the `EnvFilter`'s level hint: a
/// `filter_fn` gives none, and without one `tracing` lets every callsite, at every
/// level, past its level check. With it, while telemetry is off the global maximum
/// level is the app's own, and a disabled callsite (the track calls are TRACE) stops
/// at that check.
struct AppLogs(EnvFilter);

impl<S> Filter<S> for AppLogs
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        !is_track_call(meta) && Filter::<S>::enabled(&self.0, meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_track_call(meta) {
            Interest::never()
        } else {
            Filter::<S>::callsite_enabled(&self.0, meta)
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        Filter::<S>::event_enabled(&self.0, event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::<S>::max_level_hint(&self.0)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_new_span(&self.0, attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        Filter::<S>::on_record(&self.0, id, values, cx);
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_enter(&self.0, id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_exit(&self.0, id, cx);
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_close(&self.0, id, cx);
    }
}

/// The error for a process that already has a global subscriber, with `tracing`'s own
/// error as its source. Asking `tracing` to install a subscriber that does nothing is
/// how to get that error: it fails, and changes nothing, because one is installed.
fn already_installed() -> Error {
    match tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()) {
        Err(source) => Error::already_installed(source),
        // Unreachable once `has_been_set`; had it been, the no-op subscriber is now the
        // global one and the app's own install is what was refused.
        Ok(()) => Error::already_installed("a global tracing subscriber was set"),
    }
}

/// Refuses to turn telemetry on in a build whose `tracing` removes TRACE events at
/// compile time (`max_level_*` or `release_max_level_*` features): every track call
/// would be compiled out while `is_enabled()` said true.
pub(crate) fn check_static_max_level(config: &Config, max: LevelFilter) -> Result<(), Error> {
    if config.enabled() && max < LevelFilter::TRACE {
        return Err(Error::static_max_level(max));
    }
    Ok(())
}

/// Like [`try_init`], but panics with the error's message. The panic points at the
/// line that called `init`, not into this crate.
///
/// ```no_run
/// let _guard = tracing_telemetry::init();
/// tracing_telemetry::track_event("app.started", &[]);
/// ```
#[track_caller]
pub fn init() -> Guard {
    match try_init() {
        Ok(guard) => guard,
        Err(err) => panic!("{err}"),
    }
}

/// Reads the `TELEMETRY_*` variables and builds the telemetry layer, for an app that
/// builds its own subscriber.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (telemetry, _guard) = tracing_telemetry::layer()?;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .with(telemetry);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing_telemetry::track_event("app.started", &[]);
/// });
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
pub fn layer<S>() -> Result<(FilteredTelemetryLayer<Arc<ExporterSink>, S>, Guard), Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    layer_with(&Config::from_env()?)
}

/// [`layer`] with a configuration built in code.
///
/// With telemetry enabled, this (and so [`try_init`]) is an error in a build where
/// `tracing`'s compile-time maximum level
/// ([`STATIC_MAX_LEVEL`](tracing::level_filters::STATIC_MAX_LEVEL), lowered by a
/// `max_level_*` or `release_max_level_*` feature anywhere in the app's dependencies)
/// is below TRACE: every track call would be compiled out, and telemetry would be
/// silently empty while [`TelemetryHandle::is_enabled`] said true. With telemetry off
/// such a build starts as usual.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_telemetry::Config;
///
/// let config = Config::new().with_enabled(true).with_destinations([]);
/// let (telemetry, guard) = tracing_telemetry::layer_with(&config)?;
/// assert!(guard.handle().is_enabled());
/// let subscriber = tracing_subscriber::registry().with(telemetry);
/// # let _ = subscriber;
/// # Ok::<(), tracing_telemetry::Error>(())
/// ```
pub fn layer_with<S>(
    config: &Config,
) -> Result<(FilteredTelemetryLayer<Arc<ExporterSink>, S>, Guard), Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    telemetry_layer(config, false)
}

/// [`layer_with`]; `alone` when it goes into a subscriber where track calls reach no
/// other layer (see [`ExporterSink::seen_alone`]).
fn telemetry_layer<S>(
    config: &Config,
    alone: bool,
) -> Result<(FilteredTelemetryLayer<Arc<ExporterSink>, S>, Guard), Error>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    check_static_max_level(config, tracing::level_filters::STATIC_MAX_LEVEL)?;
    let filter = TelemetryFilter::new(config.enabled());
    let mut sink = ExporterSink::from_config(config, Some(&filter.handle()))?;
    if alone {
        sink = sink.seen_alone();
    }
    let sink = Arc::new(sink);
    let guard = Guard {
        sink: Arc::clone(&sink),
        handle: filter.handle(),
    };
    let layer = TelemetryLayer::new(sink).with_span_fields(config.span_fields());
    Ok((layer.behind(filter), guard))
}

/// Keeps telemetry export running; dropping it writes every queued record and stops
/// the export thread.
///
/// If records were dropped or lost, dropping the guard says so in one line on stderr.
///
/// ```no_run
/// let guard = tracing_telemetry::try_init()?;
/// tracing_telemetry::track_event("app.started", &[]);
/// drop(guard); // every record is written before this returns
/// # Ok::<(), tracing_telemetry::Error>(())
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
    /// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
    /// assert!(!guard.handle().is_enabled());
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// What the exporters did so far: records written, dropped (buffer full) and lost
    /// to write errors, added up over the destinations (a record written to two
    /// counts twice); [`destination_stats`](Self::destination_stats) gives each
    /// destination's. Worth exporting as a health metric of its own.
    ///
    /// ```
    /// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
    /// assert_eq!(guard.stats().dropped(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn stats(&self) -> ExportStats {
        self.sink.stats()
    }

    /// What each destination did so far, in the order `TELEMETRY_EXPORTER` names them,
    /// never added up: with `file,stdout`, a record written to both counts once in
    /// each. For OTLP, written is what the collector accepted; failed, what it
    /// rejected or could not be delivered.
    ///
    /// ```
    /// use tracing_telemetry::{Config, Destination, Exporter};
    ///
    /// let config = Config::new().with_destinations([Destination::Stdout, Destination::Stderr]);
    /// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config)?;
    /// for destination in guard.destination_stats() {
    ///     println!("{}: {} written", destination.exporter().as_str(), destination.stats().written());
    /// }
    /// # Ok::<(), tracing_telemetry::Error>(())
    /// ```
    pub fn destination_stats(&self) -> Vec<DestinationStats> {
        self.sink.destination_stats()
    }

    /// Writes every record queued so far before returning (as long as the
    /// destination makes progress), without stopping export. Dropping the guard does
    /// this too.
    ///
    /// ```
    /// let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&tracing_telemetry::Config::new())?;
    /// guard.flush();
    /// assert_eq!(guard.stats().written(), 0);
    /// # Ok::<(), tracing_telemetry::Error>(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_without_trace_events_refuses_to_turn_telemetry_on() {
        let on = Config::new().with_enabled(true);
        let err = check_static_max_level(&on, LevelFilter::INFO).unwrap_err();
        assert_eq!(
            err.to_string(),
            "telemetry is enabled but this build removes TRACE events at compile time \
             (tracing's STATIC_MAX_LEVEL is info, set by a max_level_* or release_max_level_* feature \
             of the tracing crate somewhere in the app's dependencies), so no record would ever be made; \
             remove that feature, or set TELEMETRY_ENABLED=false"
        );
        assert!(check_static_max_level(&on, LevelFilter::OFF).is_err());
        assert!(check_static_max_level(&on, LevelFilter::TRACE).is_ok());
        // Off, nothing is lost: the app starts.
        assert!(check_static_max_level(&Config::new(), LevelFilter::INFO).is_ok());
    }
}
