//! Instruments a library declares at the call site (counters by N, up-down counters,
//! gauges and histograms with units and descriptions), as the Prometheus endpoint
//! serves them in both text formats, checked by `promtool`, and as JSON lines; and,
//! with the `metrics` feature, `examples/instruments.rs` (a library's instruments and
//! the `metrics` facade) as a real Prometheus scrapes it and as the real OTLP
//! receiver gets it.

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

#[cfg(all(feature = "metrics", feature = "otlp"))]
#[allow(dead_code, reason = "not every shared helper is used here")]
mod otlp_receiver;

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

#[cfg(feature = "metrics")]
#[test]
fn the_facade_counts_by_n_keeps_the_largest_absolute_and_the_gauge_value() {
    let recorder = tracing_telemetry::TelemetryRecorder::new();
    let aggregator = Aggregator::new();
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(aggregator.clone()).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("facade.sent", metrics::Unit::Bytes, "bytes sent");
            metrics::counter!("facade.sent", "peer" => "a").increment(100);
            metrics::counter!("facade.sent", "peer" => "a").increment(28);
            let polled = metrics::counter!("facade.polled");
            for value in [10, 25, 20, 30] {
                polled.absolute(value);
            }
            let gauge = metrics::gauge!("facade.level");
            gauge.set(5.0);
            gauge.increment(2.5);
            gauge.decrement(1.0);
            metrics::describe_histogram!("facade.wait", metrics::Unit::Seconds, "time queued");
            metrics::histogram!("facade.wait").record(0.02);
        })
    });
    let series = aggregator.snapshot();
    let get = |name: &str| series.iter().find(|s| s.name() == name).unwrap();
    assert_eq!(get("facade.sent").data(), &SeriesData::Sum(128.0));
    assert_eq!(get("facade.sent").unit(), Some("By"));
    assert_eq!(get("facade.sent").description(), Some("bytes sent"));
    assert_eq!(
        get("facade.sent").labels(),
        [("peer".to_owned(), "a".to_owned())]
    );
    assert_eq!(
        get("facade.polled").data(),
        &SeriesData::Sum(30.0),
        "the largest absolute value"
    );
    assert_eq!(get("facade.level").data(), &SeriesData::Gauge(6.5));
    let SeriesData::Histogram { bounds, count, .. } = get("facade.wait").data() else {
        panic!("not a histogram")
    };
    assert_eq!(
        (bounds.as_slice(), *count),
        (&tracing_telemetry::aggregate::DEFAULT_BUCKETS[..], 1),
        "seconds bounds"
    );
}

/// The same through the `file` exporter of an app: the queued record keeps its
/// declaration on its way to the writer thread, which encodes the line.
#[cfg(feature = "metrics")]
#[test]
fn the_file_exporter_writes_the_instrument_and_unit_of_each_line() {
    let dir = support::temp_dir("instruments-file");
    let path = dir.join("t.jsonl");
    let out = instruments_example()
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "file")
        .env("TELEMETRY_FILE", &path)
        .output()
        .expect("run the instruments example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = support::json_lines(&std::fs::read_to_string(&path).unwrap());
    let received: Vec<_> = lines
        .iter()
        .filter(|l| l["name"] == "net.received")
        .collect();
    assert_eq!(received.len(), 2, "{lines:?}");
    for line in received {
        assert_eq!(
            (&line["instrument"], &line["unit"], &line["value"]),
            (&"counter".into(), &"By".into(), &1024.0.into()),
            "{line}"
        );
    }
    let open: Vec<_> = lines
        .iter()
        .filter(|l| l["name"] == "connections.open")
        .collect();
    assert_eq!(open.len(), 3, "{lines:?}");
    assert!(open
        .iter()
        .all(|l| l["instrument"] == "up_down_counter" && l.get("unit").is_none()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `examples/instruments.rs`, built with this test run's features (so that cargo
/// reuses the library it built), as a command with nothing inherited from the
/// developer's `TELEMETRY_*`, `OTEL_*` or `RUST_LOG`.
#[cfg(feature = "metrics")]
fn instruments_example() -> std::process::Command {
    let mut features = vec!["metrics", "prometheus"];
    if cfg!(feature = "otlp") {
        features.push("otlp");
    }
    if cfg!(feature = "tracing-opentelemetry") {
        features.push("tracing-opentelemetry");
    }
    support::app(support::build_example("instruments", &features))
}

/// Kills the child when the test ends, pass or fail.
#[cfg(feature = "metrics")]
struct Killed(std::process::Child);

#[cfg(feature = "metrics")]
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "metrics")]
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `GET path` of the Prometheus API; the JSON it answers.
#[cfg(feature = "metrics")]
fn prometheus_api(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

#[cfg(feature = "metrics")]
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The one value a PromQL query returns, or `None` while it returns none.
#[cfg(feature = "metrics")]
fn query(addr: SocketAddr, promql: &str) -> Option<f64> {
    let json = prometheus_api(
        addr,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    )?;
    let result = json["data"]["result"].as_array()?;
    (result.len() == 1).then_some(())?;
    result[0]["value"][1].as_str()?.parse().ok()
}

#[cfg(feature = "metrics")]
fn eventually(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    f()
}

/// Waits for the example's `emitted` line on stdout.
#[cfg(feature = "metrics")]
fn wait_emitted(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the example ended before it emitted")
            .unwrap();
        if line == "emitted" {
            return;
        }
    }
}

#[cfg(feature = "metrics")]
#[cfg_attr(
    windows,
    ignore = "needs prometheus and promtool on PATH; the Windows CI job has none"
)]
#[test]
fn a_real_prometheus_reads_the_library_instruments_and_the_metrics_facade_with_units() {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let test = "a_real_prometheus_reads_the_library_instruments_and_the_metrics_facade_with_units";
    let Some(promtool) = support::promtool(test) else {
        return;
    };
    let prometheus_bin = promtool.with_file_name("prometheus");
    let dir = support::temp_dir("instruments-prometheus");
    let (app_addr, prometheus_addr) = (free_addr(), free_addr());
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{app_addr}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let mut app = Killed(
        instruments_example()
            .args(["--idle-seconds", "120"])
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", "prometheus")
            .env("TELEMETRY_PROMETHEUS_ADDR", app_addr.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example"),
    );
    wait_emitted(&mut app.0);

    let queries = [
        // A library's counter, by 1024 twice, with its unit in the name.
        (r#"net_received_bytes_total{peer="a"}"#, 2048.0),
        // +1 +1 -1.
        ("connections_open", 1.0),
        ("request_payload_bytes_count", 2.0),
        ("request_payload_bytes_sum", 4300.0),
        // The `metrics` facade.
        (r#"requests_total{route="/a"}"#, 3.0),
        // A kept handle: its first update makes the series, the others go straight.
        ("retries_total", 10.0),
        ("queue_size", 6.0),
        ("response_size_bytes_count", 1.0),
    ];
    let mut seen = Vec::new();
    let all = eventually(Duration::from_secs(30), || {
        seen = queries
            .iter()
            .map(|(q, _)| query(prometheus_addr, q))
            .collect();
        seen.iter()
            .zip(&queries)
            .all(|(got, (_, want))| *got == Some(*want))
    });
    assert!(all, "Prometheus has {seen:?} for {queries:?}");

    // The metadata Prometheus keeps from the OpenMetrics exposition: type, help, unit.
    let metadata = prometheus_api(prometheus_addr, "/api/v1/metadata").expect("metadata");
    let meta = |name: &str| metadata["data"][name][0].clone();
    assert_eq!(meta("net_received_bytes")["type"], "counter", "{metadata}");
    assert_eq!(meta("net_received_bytes")["unit"], "bytes");
    assert_eq!(meta("net_received_bytes")["help"], "bytes read from peers");
    assert_eq!(meta("request_payload_bytes")["unit"], "bytes");
    assert_eq!(meta("response_size_bytes")["unit"], "bytes");
    assert_eq!(
        meta("response_size_bytes")["help"],
        "size of response bodies"
    );
    assert_eq!(meta("requests")["help"], "requests served");
    assert_eq!(meta("connections_open")["type"], "gauge");

    // promtool lints what a plain GET gets.
    support::check_with_promtool(&promtool, &scrape(app_addr, None));
}

#[cfg(all(feature = "metrics", feature = "otlp"))]
#[test]
fn the_real_otlp_receiver_gets_monotonic_and_non_monotonic_sums_and_histograms_with_units() {
    use std::time::Duration;

    let Some(receiver) = otlp_receiver::start(0, "instruments over OTLP") else {
        return;
    };
    let out = instruments_example()
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SERVICE_NAME", "instrumented")
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = || otlp_receiver::metrics(&receiver.requests.lock().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || !metrics().is_empty()),
        "no metrics push arrived"
    );
    let metrics = metrics();
    let metric = |name: &str| {
        metrics
            .iter()
            .rev()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name} in {metrics:#?}"))
            .clone()
    };

    let received = metric("net.received");
    assert_eq!(received["unit"], "By");
    assert_eq!(received["description"], "bytes read from peers");
    assert_eq!(received["sum"]["isMonotonic"], true);
    assert_eq!(
        received["sum"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    assert_eq!(received["sum"]["dataPoints"][0]["asDouble"], 2048.0);

    let open = metric("connections.open");
    assert!(
        open["sum"]["isMonotonic"].is_null() || open["sum"]["isMonotonic"] == false,
        "{open}"
    );
    assert_eq!(open["sum"]["dataPoints"][0]["asDouble"], 1.0);

    let payload = metric("request.payload");
    assert_eq!(payload["unit"], "By");
    assert_eq!(payload["histogram"]["dataPoints"][0]["count"], "2");
    assert_eq!(payload["histogram"]["dataPoints"][0]["sum"], 4300.0);

    let requests = metric("requests");
    assert_eq!(requests["sum"]["isMonotonic"], true);
    assert_eq!(requests["sum"]["dataPoints"][0]["asDouble"], 3.0);
    assert_eq!(
        requests["sum"]["dataPoints"][0]["attributes"][0],
        serde_json::json!({"key": "route", "value": {"stringValue": "/a"}})
    );
    let response = metric("response.size");
    assert_eq!(response["unit"], "By");
    assert_eq!(response["description"], "size of response bodies");
    assert_eq!(response["histogram"]["dataPoints"][0]["count"], "1");
    assert_eq!(
        metric("queue.size")["gauge"]["dataPoints"][0]["asDouble"],
        6.0
    );
    let retries = metric("retries");
    assert_eq!(retries["sum"]["isMonotonic"], true);
    assert_eq!(retries["sum"]["dataPoints"][0]["asDouble"], 10.0);
}
