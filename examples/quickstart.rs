//! The main job: an app installs telemetry at startup and calls a library that emits
//! events, metrics and timings.
//!
//! ```text
//! cargo run --example quickstart                                  # telemetry off
//! TELEMETRY_ENABLED=true cargo run --example quickstart           # JSON lines on stderr
//! TELEMETRY_ENABLED=true TELEMETRY_EXPORTER=stdout cargo run --example quickstart
//! TELEMETRY_ENABLED=true TELEMETRY_SPAN_FIELDS=request_id cargo run --example quickstart
//! TELEMETRY_ENABLED=true OTEL_SERVICE_NAME=checkout cargo run --example quickstart
//! TELEMETRY_ENABLED=banana cargo run --example quickstart         # exits with the error
//! ```

use std::process::ExitCode;

use tracing::{info, info_span};

/// A library: it emits telemetry freely and never configures anything.
mod library {
    use tracing::{debug, info};

    pub fn sign_up(plan: &str) {
        info!(plan, "signing up a user");
        tracing_telemetry::track_event("user.signup", &[("plan", plan)]);
    }

    pub fn upgrade(seats: u32) {
        info!(seats, "upgrading the account");
        tracing_telemetry::track_event!(
            "user.upgrade",
            plan = "team",
            seats = seats,
            trial = false
        );
    }

    pub fn drain_queue(queue: &str) -> usize {
        let depth = 42;
        tracing_telemetry::track_metric("queue.depth", depth as f64, &[("queue", queue)]);
        let _timer = tracing_telemetry::timer("queue.drain", [("queue", queue)]);
        debug!(queue, depth, "draining");
        depth
    }

    pub fn load_user(id: u64) -> String {
        tracing_telemetry::timed("db.query", &[("table", "users")], || format!("user-{id}"))
    }

    pub fn report_cache(hits: u64, lookups: u64) {
        tracing_telemetry::track_metric!(
            "cache.hit_ratio",
            hits as f64 / lookups as f64,
            cache = "users",
            lookups = lookups
        );
        tracing_telemetry::track_timing("cache.warmup", 3.25, &[("cache", "users")]);
    }
}

fn main() -> ExitCode {
    let guard = match tracing_telemetry::try_init() {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    if guard.handle().is_enabled() {
        info!("telemetry is on: records go to the exporter named by TELEMETRY_EXPORTER (default stderr)");
    } else {
        info!("telemetry is off; turn it on with TELEMETRY_ENABLED=true (see docs/OPERATIONS.md)");
    }

    // The app handles one request: with TELEMETRY_SPAN_FIELDS=request_id, every record
    // made inside this span carries its request_id as a tag.
    let request = info_span!("request", request_id = "r-42");
    let (drained, user) = request.in_scope(|| {
        library::sign_up("pro");
        library::upgrade(3);
        let drained = library::drain_queue("emails");
        let user = library::load_user(7);
        library::report_cache(93, 100);
        (drained, user)
    });
    info!(drained, %user, "done");

    // Dropping the guard flushes every buffered record before the process exits.
    drop(guard);
    ExitCode::SUCCESS
}
