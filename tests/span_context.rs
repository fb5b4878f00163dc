//! What a record learns from the spans around it: span fields as tags
//! (`TELEMETRY_SPAN_FIELDS`) and, with the `tracing-opentelemetry` feature, the trace
//! id and span id. Each test installs a scoped subscriber.

#![cfg(feature = "subscriber")]

use std::sync::{Arc, Mutex};

use tracing_subscriber::prelude::*;

use tracing_telemetry::{JsonLinesSink, MemorySink, OwnedRecord, TelemetryLayer};

fn with_span_fields(fields: &[&str], body: impl FnOnce()) -> Vec<OwnedRecord> {
    let sink = MemorySink::new();
    let layer = TelemetryLayer::new(sink.clone()).with_span_fields(fields.iter().copied());
    let subscriber = tracing_subscriber::registry().with(layer.with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, body);
    sink.records()
}

#[test]
fn a_span_field_becomes_a_span_tag_of_every_record_inside_the_span() {
    let records = with_span_fields(&["request_id", "tenant"], || {
        let _request =
            tracing::info_span!("request", request_id = "r-42", tenant = 7, other = "x").entered();
        tracing_telemetry::track_event("order.placed", &[("plan", "pro")]);
        tracing_telemetry::track_metric!("cart.items", 3.0, shop = "eu");
    });
    assert_eq!(records.len(), 2);
    for record in &records {
        let span_tags: Vec<_> = record
            .span_tags()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        assert_eq!(
            span_tags,
            [
                ("request_id", "r-42".to_owned()),
                ("tenant", "7".to_owned())
            ]
        );
        assert_eq!(
            record.span_tag("tenant").unwrap(),
            7_i64,
            "the type is kept"
        );
        assert!(record.span_tag("other").is_none(), "only the chosen fields");
        assert!(
            record.tag("request_id").is_none(),
            "kept apart from the call's tags"
        );
    }
}

#[test]
fn the_nearest_span_wins_and_outer_spans_fill_in_the_rest() {
    let records = with_span_fields(&["request_id", "tenant"], || {
        let _outer =
            tracing::info_span!("request", request_id = "outer", tenant = "acme").entered();
        let _middle = tracing::debug_span!("handler").entered();
        let _inner = tracing::trace_span!("query", request_id = "inner").entered();
        tracing_telemetry::track_event("db.read", &[]);
    });
    assert_eq!(records[0].span_tag("request_id").unwrap(), "inner");
    assert_eq!(records[0].span_tag("tenant").unwrap(), "acme");
}

#[test]
fn a_field_recorded_later_is_seen_and_display_values_are_text() {
    let records = with_span_fields(&["request_id", "user"], || {
        let span =
            tracing::info_span!("request", request_id = tracing::field::Empty, user = %"ann");
        let _entered = span.enter();
        tracing_telemetry::track_event("before", &[]);
        span.record("request_id", "r-7");
        tracing_telemetry::track_event("after", &[]);
    });
    assert!(records[0].span_tag("request_id").is_none());
    assert_eq!(records[0].span_tag("user").unwrap(), "ann");
    assert_eq!(records[1].span_tag("request_id").unwrap(), "r-7");
}

#[test]
fn outside_any_span_there_are_no_span_tags() {
    let records = with_span_fields(&["request_id"], || {
        {
            let _request = tracing::info_span!("request", request_id = "r-1").entered();
        }
        tracing_telemetry::track_event("after.the.request", &[]);
    });
    assert!(records[0].span_tags().is_empty());
}

#[test]
fn without_span_fields_nothing_is_copied() {
    let records = with_span_fields(&[], || {
        let _request = tracing::info_span!("request", request_id = "r-1").entered();
        tracing_telemetry::track_event("e", &[]);
    });
    assert!(records[0].span_tags().is_empty());
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_lines_write_span_fields_in_tags_and_the_call_s_tag_wins() {
    let out = Shared::default();
    let layer = TelemetryLayer::new(JsonLinesSink::new(out.clone()).with_service("checkout"))
        .with_span_fields(["request_id", "tenant"]);
    let subscriber = tracing_subscriber::registry().with(layer.with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        let _request =
            tracing::info_span!("request", request_id = "r-42", tenant = "acme").entered();
        tracing_telemetry::track_event("order.placed", &[("tenant", "from-the-call")]);
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        line["tags"],
        serde_json::json!({"tenant": "from-the-call", "request_id": "r-42"})
    );
    assert!(
        text.contains(r#""tags":{"tenant":"from-the-call","request_id":"r-42"}"#),
        "the call's tags first, then the span fields: {text}"
    );
    assert!(
        line.get("trace_id").is_none(),
        "no OpenTelemetry layer, no trace id"
    );
    assert!(line.get("span_id").is_none());
}

#[cfg(feature = "tracing-opentelemetry")]
mod trace_ids {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn records_inside_otel_spans_carry_the_span_s_trace_and_span_id() {
        let provider = SdkTracerProvider::builder().build();
        let sink = MemorySink::new();
        let out = Shared::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter())
            .with(TelemetryLayer::new(JsonLinesSink::new(out.clone())).with_telemetry_filter());
        let mut expected = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            tracing_telemetry::track_event("outside", &[]);
            let root = tracing::info_span!("request");
            let _root = root.enter();
            tracing_telemetry::track_event("in.root", &[]);
            let root_cx = root.context().span().span_context().clone();
            expected.push((root_cx.trace_id().to_bytes(), root_cx.span_id().to_bytes()));
            let child = tracing::debug_span!("query");
            let _child = child.enter();
            tracing_telemetry::track_metric!("rows", 3.0);
            let child_cx = child.context().span().span_context().clone();
            expected.push((
                child_cx.trace_id().to_bytes(),
                child_cx.span_id().to_bytes(),
            ));
        });
        let records = sink.records();
        assert_eq!(records.len(), 3);
        assert_eq!((records[0].trace_id(), records[0].span_id()), (None, None));
        for (record, (trace_id, span_id)) in records[1..].iter().zip(&expected) {
            assert_eq!(record.trace_id(), Some(*trace_id), "{}", record.name());
            assert_eq!(record.span_id(), Some(*span_id), "{}", record.name());
        }
        assert_eq!(
            expected[0].0, expected[1].0,
            "a child shares its root's trace"
        );
        assert_ne!(expected[0].1, expected[1].1, "with a span id of its own");
        assert_ne!(
            expected[0].0, [0; 16],
            "a root span's trace id is the generated one"
        );

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines[0].get("trace_id").is_none(),
            "none outside a span: {text}"
        );
        assert!(lines[0].get("span_id").is_none());
        for (line, (trace_id, span_id)) in lines[1..].iter().zip(&expected) {
            assert_eq!(line["trace_id"], hex(trace_id));
            assert_eq!(line["span_id"], hex(span_id));
        }
    }

    #[test]
    fn without_the_otel_layer_spans_give_no_trace_ids() {
        let sink = MemorySink::new();
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
        tracing::subscriber::with_default(subscriber, || {
            let _request = tracing::info_span!("request").entered();
            tracing_telemetry::track_event("e", &[]);
        });
        assert_eq!(sink.records()[0].trace_id(), None);
        assert_eq!(sink.records()[0].span_id(), None);
    }
}

/// Span fields become Prometheus labels only for the names the app opts in: a request
/// id must not make a series per request by default.
#[cfg(feature = "aggregate")]
#[test]
fn span_fields_are_series_labels_only_for_opted_in_names() {
    use tracing_telemetry::aggregate::Aggregator;

    let aggregator = Aggregator::builder().span_labels("checkout.total").build();
    let layer = TelemetryLayer::new(aggregator.clone()).with_span_fields(["tenant", "request_id"]);
    let subscriber = tracing_subscriber::registry().with(layer.with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        for request in ["r-1", "r-2"] {
            let span = tracing::info_span!("request", tenant = "acme", request_id = request);
            let _in = span.enter();
            tracing_telemetry::track_metric("checkout.total", 9.5, &[("tenant", "from-call")]);
            tracing_telemetry::track_metric("queue.depth", 3.0, &[("queue", "emails")]);
        }
    });
    let series = aggregator.snapshot();
    let mut labels: Vec<(String, Vec<(String, String)>)> = series
        .iter()
        .map(|s| (s.name().to_owned(), s.labels().to_vec()))
        .collect();
    labels.sort();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        labels,
        [
            (
                "checkout.total".to_owned(),
                vec![pair("request_id", "r-1"), pair("tenant", "from-call")]
            ),
            (
                "checkout.total".to_owned(),
                vec![pair("request_id", "r-2"), pair("tenant", "from-call")]
            ),
            ("queue.depth".to_owned(), vec![pair("queue", "emails")]),
        ],
        "opted in: the span's fields are labels, the call's tag wins; not opted in: tags only"
    );
}
