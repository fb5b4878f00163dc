//! What the bench targets share.

use std::hint::black_box;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// A layer that visits every field of every event and keeps nothing: the floor for
/// any layer, the baseline of every "on" measurement.
pub struct TrivialLayer;

struct TrivialVisitor;

impl Visit for TrivialVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        black_box((field, value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        black_box((field, value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        black_box((field, value));
    }
}

impl<S: Subscriber> Layer<S> for TrivialLayer {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        event.record(&mut TrivialVisitor);
    }
}
