//! Instruments a library declares at the call site (counters by N, up-down counters,
//! gauges and histograms with units and descriptions), as the Prometheus endpoint
//! serves them in both text formats, checked by `promtool`, and as JSON lines.

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use tracing_subscriber::prelude::*;
use tracing_telemetry::aggregate::{Aggregator, SeriesData};
use tracing_telemetry::prometheus::PrometheusExporter;
use tracing_telemetry::{
    Counter, Gauge, Histogram, Instrument, JsonLinesSink, MemorySink, TelemetryLayer, UpDownCounter,
};

/// What a library declares: constants, no app configuration.
mod library {
    use tracing_telemetry::{Counter, Histogram, UpDownCounter};

    pub const RECEIVED: Counter = Counter::new("net.received")
        .with_unit("By")
        .with_description("bytes read from peers");
    pub const OPEN: UpDownCounter =
        UpDownCounter::new("connections.open").with_description("connections open now");
    pub const PAYLOAD: Histogram = Histogram::new("request.payload")
        .with_unit("By")
        .with_description("size of request bodies");

    pub fn serve() {
        RECEIVED.add(1024, &[("peer", "a")]);
        RECEIVED.add(1024, &[("peer", "a")]);
        OPEN.add(1, &[]);
        OPEN.add(1, &[]);
        OPEN.add(-1, &[]);
        PAYLOAD.record(300.0, &[]);
        PAYLOAD.record(4_000.0, &[]);
    }
}

/// Runs `f` with a subscriber that feeds `exporter`.
fn with_exporter(exporter: &std::sync::Arc<PrometheusExporter>, f: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(std::sync::Arc::clone(exporter)).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, f);
}

/// `GET /metrics` with this `Accept` header; the body.
fn scrape(addr: SocketAddr, accept: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(stream, "GET /metrics HTTP/1.0\r\n{accept}\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_owned()
}

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

#[test]
fn a_counter_by_n_an_up_down_counter_and_a_histogram_in_bytes_are_served_with_units() {
    let exporter =
        std::sync::Arc::new(PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap());
    with_exporter(&exporter, library::serve);
    let addr = exporter.local_addr();

    let open_metrics = scrape(addr, Some(OPENMETRICS));
    for line in [
        "# HELP net_received_bytes bytes read from peers\n",
        "# TYPE net_received_bytes counter\n",
        "# UNIT net_received_bytes bytes\n",
        "net_received_bytes_total{peer=\"a\"} 2048.0\n",
        "# HELP connections_open connections open now\n",
        "# TYPE connections_open gauge\n",
        "connections_open 1.0\n",
        "# TYPE request_payload_bytes histogram\n",
        "# UNIT request_payload_bytes bytes\n",
        "request_payload_bytes_bucket{le=\"500.0\"} 1\n",
        "request_payload_bytes_bucket{le=\"5000.0\"} 2\n",
        "request_payload_bytes_sum 4300.0\n",
    ] {
        assert!(
            open_metrics.contains(line),
            "{line:?} missing from:\n{open_metrics}"
        );
    }
    assert!(
        !open_metrics.contains("# UNIT connections_open"),
        "no unit declared"
    );

    let text = scrape(addr, None);
    for line in [
        "# HELP net_received_bytes_total bytes read from peers\n",
        "net_received_bytes_total{peer=\"a\"} 2048.0\n",
        "connections_open 1.0\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("# UNIT"),
        "the Prometheus text format has no UNIT lines"
    );
    if let Some(promtool) = support::promtool("instruments") {
        support::check_with_promtool(&promtool, &text);
    }
    exporter.shutdown();
}

#[test]
fn timings_have_a_unit_line_and_keep_their_pinned_names() {
    let exporter =
        std::sync::Arc::new(PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap());
    with_exporter(&exporter, || {
        tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
        tracing_telemetry::track_metric("queue.depth", 3.0, &[]);
        tracing_telemetry::track_event("user.signup", &[]);
    });
    let open_metrics = exporter.encode_openmetrics();
    for line in [
        "# HELP db_query_seconds distribution of track_timing db.query, in seconds\n",
        "# TYPE db_query_seconds histogram\n# UNIT db_query_seconds seconds\n",
        "db_query_seconds_sum{table=\"users\"} 0.0125\n",
        "# HELP queue_depth last value of track_metric queue.depth\n# TYPE queue_depth gauge\nqueue_depth 3.0\n",
        "# HELP user_signup calls of track_event user.signup\n# TYPE user_signup counter\nuser_signup_total 1\n",
    ] {
        assert!(open_metrics.contains(line), "{line:?} missing from:\n{open_metrics}");
    }
    exporter.shutdown();
}

#[test]
fn describe_gives_a_function_form_counter_its_unit_and_help() {
    tracing_telemetry::describe(
        "upload.sent",
        Some("By"),
        "bytes uploaded, \"quoted\" and \\ back-slashed\nover two lines",
    );
    let exporter =
        std::sync::Arc::new(PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap());
    with_exporter(&exporter, || {
        tracing_telemetry::track_counter("upload.sent", 100, &[]);
        tracing_telemetry::track_counter("upload.sent", 28, &[]);
        tracing_telemetry::track_up_down("workers.busy", 3, &[]);
        tracing_telemetry::track_histogram("batch.items", 7.0, &[]);
    });
    let open_metrics = exporter.encode_openmetrics();
    for line in [
        "# HELP upload_sent_bytes bytes uploaded, \\\"quoted\\\" and \\\\ back-slashed\\nover two lines\n",
        "# UNIT upload_sent_bytes bytes\n",
        "upload_sent_bytes_total 128.0\n",
        "# HELP workers_busy running total of up-down counter workers.busy\n",
        "workers_busy 3.0\n",
        "# HELP batch_items distribution of histogram batch.items\n",
        "batch_items_bucket{le=\"10.0\"} 1\n",
    ] {
        assert!(open_metrics.contains(line), "{line:?} missing from:\n{open_metrics}");
    }
    let text = exporter.encode_text();
    assert!(
        text.contains("# HELP upload_sent_bytes_total bytes uploaded, \"quoted\" and \\\\ back-slashed\\nover two lines\n"),
        "{text}"
    );
    if let Some(promtool) = support::promtool("instruments") {
        support::check_with_promtool(&promtool, &text);
    }
    exporter.shutdown();
}

#[test]
fn an_up_down_counter_goes_down_where_a_counter_ignores_what_cannot_be() {
    let aggregator = Aggregator::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        for delta in [1, 1, -1, -5] {
            tracing_telemetry::track_up_down("slots.used", delta, &[]);
        }
        tracing_telemetry::track_counter("jobs.done", 2, &[]);
        tracing_telemetry::track_counter("jobs.done", 0, &[]);
        Gauge::new("pool.size")
            .with_unit("{connection}")
            .set(8.0, &[]);
        Gauge::new("pool.size")
            .with_unit("{connection}")
            .set(6.0, &[]);
    });
    let series = aggregator.snapshot();
    let data = |name: &str| series.iter().find(|s| s.name() == name).unwrap();
    assert_eq!(data("slots.used").data(), &SeriesData::UpDownSum(-4.0));
    assert_eq!(data("jobs.done").data(), &SeriesData::Sum(2.0));
    assert_eq!(data("pool.size").data(), &SeriesData::Gauge(6.0));
    assert_eq!(data("pool.size").unit(), Some("{connection}"));
    assert_eq!(data("pool.size").instrument(), Some(Instrument::Gauge));
}

#[test]
fn records_carry_the_instrument_unit_and_description() {
    let records = MemorySink::capture(library::serve);
    assert_eq!(records.len(), 7);
    let received = &records[0];
    assert_eq!(received.name(), "net.received");
    assert_eq!(received.value(), Some(1024.0));
    assert_eq!(received.instrument(), Some(Instrument::Counter));
    assert_eq!(received.unit(), Some("By"));
    assert_eq!(received.description(), Some("bytes read from peers"));
    assert_eq!(records[4].value(), Some(-1.0));
    assert_eq!(records[4].instrument(), Some(Instrument::UpDownCounter));
    assert_eq!(records[4].unit(), None);

    // A plain track_metric is unchanged: a gauge with no instrument and no unit.
    let records = MemorySink::capture(|| tracing_telemetry::track_metric("queue.depth", 1.0, &[]));
    assert_eq!((records[0].instrument(), records[0].unit()), (None, None));
}

#[test]
fn json_lines_name_the_instrument_and_unit_and_leave_other_records_as_they_were() {
    let out = support::Shared::default();
    let sink = JsonLinesSink::new(out.clone());
    let subscriber =
        tracing_subscriber::registry().with(TelemetryLayer::new(sink).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        library::RECEIVED.add(1024, &[("peer", "a")]);
        Histogram::new("batch.items").record(3.0, &[]);
        tracing_telemetry::track_metric("queue.depth", 42.0, &[]);
        tracing_telemetry::track_timing("db.query", 1.5, &[]);
    });
    let lines = support::json_lines(&out.text());
    assert_eq!(lines.len(), 4, "{}", out.text());
    assert_eq!(lines[0]["kind"], "metric");
    assert_eq!(lines[0]["value"], 1024.0);
    assert_eq!(lines[0]["instrument"], "counter");
    assert_eq!(lines[0]["unit"], "By");
    assert_eq!(lines[0]["tags"]["peer"], "a");
    assert!(
        lines[0].get("description").is_none(),
        "descriptions stay out of the lines"
    );
    assert_eq!(lines[1]["instrument"], "histogram");
    assert!(lines[1].get("unit").is_none());
    for plain in &lines[2..] {
        assert!(plain.get("instrument").is_none(), "{plain}");
    }
    assert!(lines[2].get("unit").is_none());
    assert_eq!(lines[3]["unit"], "ms");
}

#[test]
fn the_instrument_constants_say_what_they_declare() {
    const C: Counter = Counter::new("a").with_unit("s").with_description("d");
    assert_eq!(
        (C.name(), C.unit(), C.description()),
        ("a", Some("s"), Some("d"))
    );
    const U: UpDownCounter = UpDownCounter::new("b");
    assert_eq!((U.unit(), U.description()), (None, None));
}
