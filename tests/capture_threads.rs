//! `MemorySink::capture` while another thread, with no subscriber of its own, makes the
//! same call first: what a library's tests do when they run in parallel. Its own test
//! binary, so that the capture's subscriber is the only one `tracing` knows of, as in a
//! library's test binary that installs none.

#![cfg(feature = "subscriber")]

use tracing_telemetry::MemorySink;

/// One callsite, hit first by the other thread.
fn sign_up() {
    tracing_telemetry::track_event!("user.signup", plan = "pro");
}

#[test]
fn a_call_first_made_on_another_thread_does_not_hide_the_captured_ones() {
    let records = MemorySink::capture(|| {
        // Another test calling the library with no subscriber, on its own thread, at
        // the moment this one captures: its first call decides nothing for this one.
        std::thread::spawn(sign_up).join().unwrap();
        sign_up();
    });
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].tag("plan").unwrap(), "pro");
}
