//! The public surface pinned in the design, written exactly as an app writes it. This
//! file is its own process, so it may install the global subscriber.

#![cfg(feature = "subscriber")]

use std::error::Error;
use std::panic;

fn app() -> Result<tracing_telemetry::Guard, Box<dyn Error>> {
    let _guard = tracing_telemetry::try_init()?; // Result<Guard, Error>; Error: std::error::Error
    tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
    tracing_telemetry::track_event("app.started", &[]);
    tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
    tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]); // duration in ms
    tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3, trial = false); // typed fields
    let name = format!("tenant.{}", 7);
    let key = format!("k{}", 1);
    tracing_telemetry::track_event(&name, &[(&key, &format!("v{}", 2))]);
    Ok(_guard)
}

fn second_app() -> tracing_telemetry::Guard {
    let _guard = tracing_telemetry::init(); // same, panics with the error's message
    _guard
}

#[test]
fn the_pinned_calls_run_and_a_second_install_is_refused_by_name() {
    let guard = app().expect("the first install succeeds");

    let err = tracing_telemetry::try_init().expect_err("a second install must fail");
    let message = err.to_string();
    assert!(
        message.starts_with("a global tracing subscriber is already installed"),
        "{message}"
    );
    assert!(
        err.source().is_some(),
        "the underlying error is kept as the source"
    );

    let panic = panic::catch_unwind(second_app).expect_err("init panics when try_init fails");
    let panic_message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(
        panic_message, message,
        "init panics with the error's message"
    );

    // The first subscriber keeps working.
    assert!(tracing::dispatcher::has_been_set());
    tracing_telemetry::track_event("still.working", &[]);
    drop(guard);
}
