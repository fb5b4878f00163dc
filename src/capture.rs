//! `MemorySink::capture`: what a closure emits, in one call, for library authors' tests.

use std::sync::OnceLock;

use tracing::subscriber::NoSubscriber;
use tracing::Dispatch;
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
    /// on in the environment, and tests that run in parallel each see their own. Calls
    /// on threads that `f` spawns are not captured: give such a thread the subscriber
    /// yourself (a [`MemorySink`] in a subscriber, as shown on [`MemorySink`], made
    /// into a [`Dispatch`] that each thread enters with
    /// [`tracing::dispatcher::with_default`]). What `f` returns is dropped before the
    /// subscriber is, so a [`TimingGuard`](crate::TimingGuard) it returns is recorded.
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
    #[must_use = "the records are what the closure made: assert on them"]
    pub fn capture<R>(f: impl FnOnce() -> R) -> Vec<OwnedRecord> {
        keep_interest_shared();
        let sink = MemorySink::new();
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
        tracing::subscriber::with_default(subscriber, || {
            // A callsite first hit on another thread while no second dispatcher was
            // registered yet may have cached "never": ask again, now that this
            // subscriber is counted in.
            tracing::callsite::rebuild_interest_cache();
            drop(f());
        });
        sink.take()
    }
}

/// Keeps a second dispatcher registered for the rest of the process. While only one
/// is (a test binary with no global subscriber, and one capture running), `tracing`
/// decides a callsite's interest, once and for all threads, from the default
/// dispatcher of whichever thread reaches it first: a parallel test that calls the
/// same library code with no subscriber would make it "never" for the capture too.
/// With two, the interest is asked of every registered dispatcher, and the capture's
/// own counts.
fn keep_interest_shared() {
    static SECOND: OnceLock<Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| Dispatch::new(NoSubscriber::default()));
}
