//! Trace ids from tracing-opentelemetry (feature `tracing-opentelemetry`): the trace id
//! and span id of the OpenTelemetry span a track call is made in.
//!
//! tracing-opentelemetry keeps its span data private; its public way in is
//! [`get_otel_context`](tracing_opentelemetry::get_otel_context), which needs the
//! `Dispatch` the span lives in. Asking `tracing` for the current dispatcher from
//! inside `on_event` gives the no-op one (calls into a dispatcher do not nest), so
//! the layer keeps a weak reference to its own dispatcher when it is registered.
//!
//! The context read is the span's own, once started: for a root span that is the
//! trace id the tracer generated (the builder's is still unset before that), and a
//! child carries its parent's trace id with its own span id.

use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use tracing_core::dispatcher::{Dispatch, WeakDispatch};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Reads the trace context of the span around each record.
#[derive(Debug, Default)]
pub(super) struct TraceIds {
    dispatch: OnceLock<WeakDispatch>,
}

impl TraceIds {
    /// Remembers the dispatcher the layer is part of (the first one, should a layer
    /// ever be registered twice).
    pub(super) fn register(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    /// The trace id and span id of the nearest span around `event` that
    /// tracing-opentelemetry tracks with a valid context; `None` outside any.
    pub(super) fn current<S>(
        &self,
        event: &Event<'_>,
        cx: &Context<'_, S>,
    ) -> Option<([u8; 16], [u8; 8])>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let scope = cx.event_scope(event)?;
        let dispatch = self.dispatch.get()?.upgrade()?;
        for span in scope {
            let id = span.id();
            // No extension of the span may be borrowed while tracing-opentelemetry
            // locks them.
            drop(span);
            let Some(otel) = tracing_opentelemetry::get_otel_context(&id, &dispatch) else {
                continue;
            };
            let otel_span = otel.span();
            let context = otel_span.span_context();
            if context.is_valid() {
                return Some((context.trace_id().to_bytes(), context.span_id().to_bytes()));
            }
        }
        None
    }
}
