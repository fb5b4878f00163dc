//! `MemorySink::capture`: what a closure emits, in one call, for library authors' tests.

use tracing_subscriber::layer::SubscriberExt;

use crate::layer::TelemetryLayer;
use crate::sink::{MemorySink, OwnedRecord};

impl MemorySink {
    /// Runs `f` with a subscriber that keeps this crate's track calls, and returns the
    /// records they made, in order: a library's test in one line, with no subscriber
    /// to build.
    ///
    /// The subscriber is the thread's default while `f` runs (as
    /// [`tracing::subscriber::with_default`] sets it), so it sees the calls made on
    /// this thread, whatever the global subscriber is and whether or not telemetry is
    /// on in the environment; calls on threads that `f` spawns are not captured. For
    /// those, install a [`MemorySink`] in a subscriber of your own, as shown on
    /// [`MemorySink`]. What `f` returns is dropped.
    ///
    /// ```
    /// use tracing_telemetry::{Kind, MemorySink};
    ///
    /// fn sign_up(plan: &str, seats: u32) {
    ///     tracing_telemetry::track_event!("user.signup", plan = plan, seats = seats, trial = false);
    ///     tracing_telemetry::track_metric("seats.total", 12.5, &[]);
    /// }
    ///
    /// let records = MemorySink::capture(|| sign_up("pro", 3));
    /// assert_eq!(records.len(), 2);
    /// assert_eq!(records[0].kind(), Kind::Event);
    /// assert_eq!(records[0].tag("plan").unwrap(), "pro");
    /// assert_eq!(records[0].tag("seats").unwrap(), 3);
    /// assert_eq!(records[0].tag("trial").unwrap(), false);
    /// assert_eq!(records[1].value(), Some(12.5));
    /// ```
    pub fn capture<R>(f: impl FnOnce() -> R) -> Vec<OwnedRecord> {
        let sink = MemorySink::new();
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
        drop(tracing::subscriber::with_default(subscriber, || {
            // A callsite first hit on another thread just before this subscriber
            // existed (another test calling the same library code with no subscriber)
            // may have cached "never" after this subscriber was counted in; asking
            // again makes the calls in `f` reach it.
            tracing::callsite::rebuild_interest_cache();
            f()
        }));
        sink.take()
    }
}
