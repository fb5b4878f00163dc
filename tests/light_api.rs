//! The library side on its own: what builds without the `subscriber` feature (this file
//! runs with and without it). The track calls are plain `tracing` events that follow
//! the field conventions, whoever collects them.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// One event's target and field names.
type Seen = (String, Vec<&'static str>);

/// Every event's target and field names, as any layer sees them.
#[derive(Clone, Default)]
struct FieldNames(Arc<Mutex<Vec<Seen>>>);

impl<S: Subscriber> Layer<S> for FieldNames {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        struct Names(Vec<&'static str>);
        impl Visit for Names {
            fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
                self.0.push(field.name());
            }
        }
        let mut names = Names(Vec::new());
        event.record(&mut names);
        let target = event.metadata().target().to_owned();
        self.0.lock().unwrap().push((target, names.0));
    }
}

#[test]
fn track_calls_are_tracing_events_with_the_pinned_fields() {
    let seen = FieldNames::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("user.signup", &[("plan", "pro")]);
        tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")]);
        tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
        tracing_telemetry::track_event!("user.upgrade", plan = "team", seats = 3);
        let rows = tracing_telemetry::timed("db.load", &[], || 3);
        assert_eq!(rows, 3);
    });
    let seen = seen.0.lock().unwrap();
    let expected: [&[&str]; 5] = [
        &["telemetry.tags", "telemetry.kind", "telemetry.name"],
        &[
            "telemetry.tags",
            "telemetry.kind",
            "telemetry.name",
            "telemetry.value",
        ],
        &[
            "telemetry.tags",
            "telemetry.kind",
            "telemetry.name",
            "telemetry.duration_ms",
        ],
        &[
            "telemetry.tags",
            "telemetry.kind",
            "telemetry.name",
            "plan",
            "seats",
        ],
        &[
            "telemetry.tags",
            "telemetry.kind",
            "telemetry.name",
            "telemetry.duration_ms",
        ],
    ];
    assert_eq!(seen.len(), expected.len());
    for ((target, names), expected) in seen.iter().zip(expected) {
        assert_eq!(target, tracing_telemetry::TARGET);
        assert_eq!(names, expected);
    }
    assert_eq!(tracing_telemetry::fields::VALUE, "telemetry.value");
    assert_eq!(tracing_telemetry::Kind::Timing.as_str(), "timing");
}
