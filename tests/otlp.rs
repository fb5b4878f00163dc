//! The OTLP exporter against a real OTLP/HTTP receiver (oteltest's `HttpSink`, started
//! by `tests/support/otlp_receiver.py`), and against a small local HTTP stub for the
//! faults a receiver cannot produce (503 with Retry-After, 400, a collector that never
//! answers).
//!
//! The receiver needs Python with `oteltest` installed: `.ci/run` makes a virtual
//! environment at `target/oteltest-venv`; `OTLP_RECEIVER_PYTHON` names another
//! interpreter. Where it is missing, the receiver tests fail when `CI=true` and
//! otherwise print `SKIPPED: ...` and pass.

#[allow(dead_code, reason = "not every helper is used by each suite")]
mod otlp_receiver;

use otlp_receiver::{metrics, Receiver};
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use serde_json::Value;
use tracing_subscriber::prelude::*;
use tracing_telemetry::{OtlpConfig, OtlpExporter, TelemetryLayer};

// ---------------------------------------------------------------------------------
// The real receiver

/// The receiver, or `None` (after saying SKIPPED) where it cannot run.
fn receiver(port: u16) -> Option<Receiver> {
    otlp_receiver::start(port, "OTLP receiver tests")
}

impl Receiver {
    /// Waits (at most 10 s) until `count` log records have arrived; every logs request.
    fn logs(&self, count: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let logs: Vec<Value> = self
                .requests
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r["signal"] == "logs")
                .cloned()
                .collect();
            if log_records(&logs).len() >= count || started.elapsed() > Duration::from_secs(10) {
                return logs;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every log record of these requests, in order.
fn log_records(requests: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for request in requests {
        for rl in request["request"]["resourceLogs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                out.extend(sl["logRecords"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// The attribute `key` of a record or resource, as protobuf's JSON mapping gives it
/// (`{"stringValue": "pro"}`, `{"intValue": "3"}`, ...).
fn attribute<'a>(holder: &'a Value, key: &str) -> &'a Value {
    holder["attributes"]
        .as_array()
        .and_then(|attrs| attrs.iter().find(|kv| kv["key"] == key))
        .map_or(&Value::Null, |kv| &kv["value"])
}

fn record<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["eventName"] == name)
        .unwrap_or_else(|| panic!("no log record named {name} in {records:#?}"))
}

/// Builds `examples/otlp.rs` (it needs the `otlp` feature, which `support::example`
/// does not pass) and returns a command for it with no `TELEMETRY_*`, `OTEL_*` or
/// `RUST_LOG` inherited from the developer's shell.
fn otlp_example() -> Command {
    example_with_otlp("otlp")
}

/// Like [`otlp_example`], for any example, built with the `otlp` feature.
fn example_with_otlp(name: &str) -> Command {
    otlp_receiver::example(name)
}

fn run_example(receiver: &Receiver, env: &[(&str, &str)]) -> String {
    let mut cmd = otlp_example();
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the example failed: {stderr}");
    stderr
}

/// The quickstart, as an app installs it (`try_init`), with `TELEMETRY_EXPORTER` naming
/// stderr and otlp: every record is a JSON line on stderr, every event a log record at
/// the collector, and the metric a gauge pushed at shutdown.
#[test]
fn try_init_sends_to_the_collector_when_the_exporter_list_names_otlp() {
    let Some(receiver) = receiver(0) else { return };
    let out = example_with_otlp("quickstart")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stderr,otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SERVICE_NAME", "quickstart")
        .output()
        .expect("run the quickstart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json_names: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(json_names.len(), 7, "every record on stderr: {stderr}");
    let requests = || receiver.requests.lock().unwrap().clone();
    wait_until(
        "the events and the metrics",
        Duration::from_secs(10),
        || {
            let requests = requests();
            log_records(&requests).len() >= 2 && !metrics(&requests).is_empty()
        },
    );
    let requests = requests();
    let records = log_records(&requests);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["user.signup", "user.upgrade"],
        "the events, in order"
    );
    assert_eq!(
        attribute(record(&records, "user.upgrade"), "seats")["intValue"],
        "3"
    );
    let gauge = metrics(&requests)
        .into_iter()
        .find(|m| m["name"] == "queue.depth")
        .expect("the gauge was pushed at shutdown");
    assert_eq!(gauge["gauge"]["dataPoints"][0]["asDouble"], 42.0);
}

/// Protobuf's JSON mapping writes bytes in base64.
#[cfg(feature = "tracing-opentelemetry")]
fn base64_of_hex(hex: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An app tracing with tracing-opentelemetry: the log record of an event made inside
/// a span carries that span's trace id and span id; one made outside carries none.
#[cfg(feature = "tracing-opentelemetry")]
#[test]
fn log_records_carry_the_trace_and_span_of_the_span_around_the_call() {
    let Some(receiver) = receiver(0) else { return };
    let out = example_with_otlp("traced")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .output()
        .expect("run the traced example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<&str> = stdout
        .split_whitespace()
        .filter_map(|w| w.split_once('=').map(|(_, v)| v))
        .collect();
    let (trace_id, span_id) = (ids[0], ids[1]);
    assert_eq!((trace_id.len(), span_id.len()), (32, 16), "{stdout}");
    let requests = || receiver.requests.lock().unwrap().clone();
    wait_until("both events", Duration::from_secs(10), || {
        log_records(&requests()).len() >= 2
    });
    let records = log_records(&requests());
    let inside = record(&records, "checkout.completed");
    assert_eq!(inside["traceId"], base64_of_hex(trace_id), "{inside:#}");
    assert_eq!(inside["spanId"], base64_of_hex(span_id), "{inside:#}");
    let outside = record(&records, "app.started");
    assert!(
        outside.get("traceId").is_none(),
        "no ids outside a span: {outside:#}"
    );
}

#[cfg_attr(
    windows,
    ignore = "expects code.file.path \"examples/otlp.rs\"; on Windows file!() says examples\\otlp.rs"
)]
#[test]
fn every_event_arrives_as_a_log_record_with_typed_attributes() {
    let Some(receiver) = receiver(0) else { return };
    let started = unix_nanos_now();
    let stderr = run_example(
        &receiver,
        &[
            ("OTEL_SERVICE_NAME", "checkout"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s3cr3t%3D,x-team=core",
            ),
        ],
    );
    assert!(
        stderr.contains(
            "3 exported, 0 dropped, 0 rejected, 0 undelivered; 1 metric pushes, 0 failed"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cr3t"),
        "a header value was printed: {stderr}"
    );

    let logs = receiver.logs(3);
    let records = log_records(&logs);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["app.started", "user.signup", "user.upgrade"],
        "metrics and timings are not log records"
    );

    let signup = record(&records, "user.signup");
    assert_eq!(
        attribute(signup, "plan"),
        &serde_json::json!({"stringValue": "pro"})
    );
    assert_eq!(
        attribute(signup, "region"),
        &serde_json::json!({"stringValue": "eu-west-1"})
    );
    assert_eq!(
        signup["body"],
        serde_json::json!({"stringValue": "user.signup"})
    );
    assert_eq!(signup["severityNumber"], "SEVERITY_NUMBER_INFO");
    assert_eq!(
        attribute(signup, "code.file.path"),
        &serde_json::json!({"stringValue": "examples/otlp.rs"})
    );
    assert!(attribute(signup, "code.line.number")["intValue"].is_string());
    let time: u64 = signup["timeUnixNano"].as_str().unwrap().parse().unwrap();
    let observed: u64 = signup["observedTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ended = unix_nanos_now();
    assert!(
        started <= time && time <= observed && observed <= ended,
        "the call's time {time} and the observed time {observed} lie within the run, \
         {started}..{ended}"
    );
    // In the order the calls were made.
    let times: Vec<u64> = records
        .iter()
        .map(|r| r["timeUnixNano"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let upgrade = record(&records, "user.upgrade");
    assert_eq!(
        attribute(upgrade, "plan"),
        &serde_json::json!({"stringValue": "team"})
    );
    assert_eq!(
        attribute(upgrade, "seats"),
        &serde_json::json!({"intValue": "3"})
    );
    assert_eq!(
        attribute(upgrade, "trial"),
        &serde_json::json!({"boolValue": false})
    );
    assert_eq!(
        attribute(upgrade, "discount"),
        &serde_json::json!({"doubleValue": 0.15})
    );
    assert_eq!(
        attribute(upgrade, "code.namespace"),
        &serde_json::json!({"stringValue": "otlp"})
    );

    let resource_logs = &logs[0]["request"]["resourceLogs"][0];
    let resource = &resource_logs["resource"];
    assert_eq!(
        attribute(resource, "service.name"),
        &serde_json::json!({"stringValue": "checkout"})
    );
    assert_eq!(
        attribute(resource, "telemetry.sdk.name"),
        &serde_json::json!({"stringValue": "tracing-telemetry"})
    );
    assert_eq!(
        attribute(resource, "telemetry.sdk.language"),
        &serde_json::json!({"stringValue": "rust"})
    );
    assert_eq!(
        resource_logs["scopeLogs"][0]["scope"],
        serde_json::json!({"name": "tracing-telemetry", "version": env!("CARGO_PKG_VERSION")})
    );
    let headers = &logs[0]["headers"];
    assert_eq!(
        headers["api-key"], "s3cr3t=",
        "headers arrive percent-decoded"
    );
    assert_eq!(headers["x-team"], "core");
    assert_eq!(headers["content-type"], "application/x-protobuf");
}

/// Every metric of these requests, in order.
#[test]
fn gauges_histograms_and_event_counts_arrive_as_metrics() {
    let Some(receiver) = receiver(0) else { return };
    run_example(
        &receiver,
        &[
            ("OTEL_SERVICE_NAME", "checkout"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-metrics-key=m%2Fk"),
        ],
    );
    receiver.logs(3);
    wait_until("the metrics push", Duration::from_secs(10), || {
        receiver
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r["signal"] == "metrics")
    });
    let requests = receiver.requests.lock().unwrap().clone();
    let pushes: Vec<&Value> = requests
        .iter()
        .filter(|r| r["signal"] == "metrics")
        .collect();
    assert_eq!(pushes.len(), 1, "one push, at shutdown: {requests:#?}");
    assert_eq!(pushes[0]["headers"]["x-metrics-key"], "m/k");
    let resource = &pushes[0]["request"]["resourceMetrics"][0]["resource"];
    assert_eq!(
        attribute(resource, "service.name"),
        &serde_json::json!({"stringValue": "checkout"})
    );
    assert_eq!(
        pushes[0]["request"]["resourceMetrics"][0]["scopeMetrics"][0]["scope"]["name"],
        "tracing-telemetry"
    );

    let metrics = metrics(&requests);
    let metric = |name: &str| {
        metrics
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name} in {metrics:#?}"))
    };

    let gauge = &metric("queue.depth")["gauge"]["dataPoints"][0];
    assert_eq!(gauge["asDouble"], 42.0, "the last value");
    assert_eq!(
        attribute(gauge, "queue"),
        &serde_json::json!({"stringValue": "emails"})
    );

    let db = metric("db.query");
    assert_eq!(db["unit"], "s");
    let histogram = &db["histogram"];
    assert_eq!(
        histogram["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    let point = &histogram["dataPoints"][0];
    assert_eq!(point["count"], "2");
    assert!(
        (point["sum"].as_f64().unwrap() - 0.2625).abs() < 1e-9,
        "{point}"
    );
    assert_eq!(
        point["explicitBounds"],
        serde_json::json!([
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
        ])
    );
    let buckets: Vec<u64> = point["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    // 12.5 ms in (0.01, 0.025], 250 ms in (0.1, 0.25].
    assert_eq!(buckets, [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        attribute(point, "table"),
        &serde_json::json!({"stringValue": "users"})
    );

    let signups = &metric("user.signup")["sum"];
    assert_eq!(signups["isMonotonic"], true);
    assert_eq!(
        signups["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    assert_eq!(signups["dataPoints"][0]["asInt"], "1");
}

#[test]
fn metrics_are_pushed_every_interval_with_cumulative_values() {
    let Some(receiver) = receiver(0) else { return };
    let endpoint = receiver.endpoint();
    let config = OtlpConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ])
    .unwrap();
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 2);
    let pushes = || {
        let requests = receiver.requests.lock().unwrap().clone();
        requests
            .into_iter()
            .filter(|r| r["signal"] == "metrics")
            .collect::<Vec<_>>()
    };
    wait_until("two pushes", Duration::from_secs(10), || {
        pushes().len() >= 2
    });
    emit(&exporter, 1);
    exporter.shutdown();
    // Each `n` is its own series; the calls add up across them.
    let counts = || -> Vec<u64> {
        pushes()
            .iter()
            .map(|p| {
                let job = &metrics(std::slice::from_ref(p))[0];
                assert_eq!(job["name"], "job.done");
                job["sum"]["dataPoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["asInt"].as_str().unwrap().parse::<u64>().unwrap())
                    .sum()
            })
            .collect()
    };
    // The collector took the last push before shutdown returned; the receiver's
    // report of it may come a moment later.
    let counts = settled(Duration::from_secs(10), counts, |counts| {
        counts.last() == Some(&3)
    });
    assert_eq!(counts.first(), Some(&2), "{counts:?}");
    assert_eq!(counts.last(), Some(&3), "cumulative: {counts:?}");
}

#[test]
fn the_service_name_comes_from_resource_attributes_too() {
    let Some(receiver) = receiver(0) else { return };
    run_example(
        &receiver,
        &[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=billing,deployment.environment=prod%20eu",
        )],
    );
    let logs = receiver.logs(3);
    let resource = &logs[0]["request"]["resourceLogs"][0]["resource"];
    assert_eq!(
        attribute(resource, "service.name"),
        &serde_json::json!({"stringValue": "billing"})
    );
    assert_eq!(
        attribute(resource, "deployment.environment"),
        &serde_json::json!({"stringValue": "prod eu"})
    );
}

#[test]
fn a_collector_that_is_down_costs_the_app_one_report_per_problem_and_a_bounded_exit() {
    let mut cmd = otlp_example();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
        .args(["--burst", "200000"]);
    // The same run with nothing to export, on the same machine now: what the app's
    // own work takes, however loaded the machine is.
    let started = Instant::now();
    let quiet = otlp_example()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SDK_DISABLED", "true")
        .args(["--burst", "200000"])
        .output()
        .expect("run the example");
    let baseline = started.elapsed();
    assert!(quiet.status.success());
    let started = Instant::now();
    let out = cmd.output().expect("run the example");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The down collector costs the exit its 300 ms timeout, with margin; waiting for the
    // default timeout (10 s) instead, or retrying without end, would cost more.
    assert!(
        took < baseline + Duration::from_secs(5),
        "the app took {took:?} to exit ({baseline:?} with nothing to export)"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("telemetry: "))
        .collect();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("the otlp export queue is full (8388608 bytes"),
        1,
        "{stderr}"
    );
    assert_eq!(
        count(&format!(
            "cannot deliver to the otlp collector at {endpoint}/v1/logs"
        )),
        1,
        "{stderr}"
    );
    // The retries used up shutdown's time, so the last metric push is not even tried.
    assert!(
        count("cannot push metrics to the otlp collector") <= 1,
        "{stderr}"
    );
    let summary = lines
        .iter()
        .find(|l| l.contains("otlp export stopped: 0 records delivered, "))
        .unwrap_or_else(|| panic!("no shutdown summary in {stderr}"));
    // "... 0 records delivered, U not delivered within 300 ms of shutdown, D dropped ..."
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (undelivered, dropped) = (numbers[1], numbers[3]);
    assert!(dropped > 0 && undelivered > 0, "{summary}");
    assert_eq!(
        undelivered + dropped,
        200_003,
        "every event is accounted for: {summary}"
    );
}

/// An app's `try_init` pushes the crate's own health with its metrics, to the real
/// receiver: series held, and what each destination wrote, dropped and lost.
#[test]
fn the_metrics_push_carries_what_each_destination_did() {
    let Some(receiver) = otlp_receiver::start(0, "health over OTLP") else {
        return;
    };
    let out = example_with_otlp("quickstart")
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .output()
        .expect("run the quickstart");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the metrics push", Duration::from_secs(10), || {
        !metrics(&receiver.requests.lock().unwrap()).is_empty()
    });
    let metrics = metrics(&receiver.requests.lock().unwrap());
    let last = |name: &str| {
        metrics
            .iter()
            .rev()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {metrics:#?}"))
            .clone()
    };
    let records = last("telemetry.destination.records");
    assert_eq!(records["sum"]["isMonotonic"], true, "{records}");
    let point = |outcome: &str| {
        records["sum"]["dataPoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                let attr = |key: &str| {
                    p["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["key"] == key)
                        .map(|a| a["value"]["stringValue"].clone())
                };
                attr("destination") == Some("otlp".into())
                    && attr("outcome") == Some(outcome.into())
            })
            .unwrap_or_else(|| panic!("no otlp/{outcome} point in {records}"))
            .clone()
    };
    let as_int = |p: Value| {
        p["asInt"]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .or(p["asInt"].as_u64())
    };
    assert!(as_int(point("written")).is_some_and(|n| n > 0), "{records}");
    assert_eq!(as_int(point("dropped")), Some(0), "{records}");
    assert_eq!(as_int(point("failed")), Some(0), "{records}");
    let series = last("telemetry.series");
    assert!(
        series["gauge"]["dataPoints"][0]["asInt"] != Value::Null,
        "{series}"
    );
    // What the otlp destination still held at its last push.
    let queued = last("telemetry.destination.queued");
    assert_eq!(queued["unit"], "By", "{queued}");
    assert!(
        queued["gauge"]["dataPoints"]
            .as_array()
            .is_some_and(|points| !points.is_empty()),
        "{queued}"
    );
    assert!(metrics
        .iter()
        .any(|m| m["name"] == "telemetry.destination.spooled"));
}

/// The shutdown summary is written before the process exits, every time: an app
/// that uses `try_init` and returns from `main` at once, twenty runs in a row.
#[test]
fn the_shutdown_summary_reaches_stderr_in_every_run() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut missing = Vec::new();
    for run in 0..20 {
        let out = example_with_otlp("quickstart")
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", "otlp")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "100")
            .output()
            .expect("run the quickstart");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "run {run}: {stderr}");
        if !stderr.contains("telemetry: otlp export stopped: 0 records delivered, ") {
            missing.push((run, stderr));
        }
    }
    assert!(
        missing.is_empty(),
        "no summary in {} of 20 runs: {missing:?}",
        missing.len()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn emit(exporter: &Arc<OtlpExporter>, events: usize) {
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(Arc::clone(exporter)).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..events {
            tracing_telemetry::track_event!("job.done", n = i as i64);
        }
    });
}

/// What `read` gives once `done` holds of it, or after `limit` what it gives then (for
/// the test's own assertions to say what is wrong).
fn settled<T>(limit: Duration, mut read: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let started = Instant::now();
    loop {
        let value = read();
        if done(&value) || started.elapsed() >= limit {
            return value;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn records_queued_while_the_collector_is_down_arrive_once_it_is_up() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 3);
    // The first attempt (after the 1 s batch delay) finds nobody listening.
    wait_until("a retry", Duration::from_secs(10), || {
        exporter.stats().retries() >= 1
    });
    assert_eq!(exporter.stats().exported(), 0);

    let Some(receiver) = receiver(port) else {
        return;
    };
    exporter.shutdown();
    assert_eq!(exporter.stats().exported(), 3, "{:?}", exporter.stats());
    assert_eq!(log_records(&receiver.logs(3)).len(), 3);
}

// ---------------------------------------------------------------------------------
// A stub collector for the faults

/// One request the stub received.
struct Seen {
    at: Instant,
    headers: String,
    body: Vec<u8>,
}

/// How the stub answers the n-th request for log records (the last answer repeats);
/// metric pushes are always accepted, and recorded apart.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str, Vec<u8>),
    /// Reads the request and never answers.
    Hang,
    /// Accepts after this long.
    Slow(Duration),
}

struct Stub {
    port: u16,
    /// The requests for log records.
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The metric pushes.
    pushes: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    fn start(answers: Vec<Answer>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let (log, pushed) = (Arc::clone(&seen), Arc::clone(&pushes));
        // Lives until the test process ends; it only ever serves loopback.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, pushed) = (Arc::clone(&log), Arc::clone(&pushed));
                let answers = answers.clone();
                thread::spawn(move || serve(stream, &log, &pushed, &answers));
            }
        });
        Stub { port, seen, pushes }
    }

    fn config(&self) -> OtlpConfig {
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        OtlpConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).unwrap()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>, pushes: &Mutex<Vec<Seen>>, answers: &[Answer]) {
    let mut reader = BufReader::new(stream);
    while let Some((head, body)) = otlp_receiver::read_request(&mut reader) {
        if head.starts_with("POST /v1/metrics ") {
            // Metrics are pushed at shutdown too; the faults here are about log records.
            pushes.lock().unwrap().push(Seen {
                at: Instant::now(),
                headers: head.to_ascii_lowercase(),
                body,
            });
            let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            if reader.get_mut().write_all(ok.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let n = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                at: Instant::now(),
                headers: head.to_ascii_lowercase(),
                body,
            });
            log.len()
        };
        match &answers[(n - 1).min(answers.len() - 1)] {
            Answer::Hang => {
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Answer::Slow(delay) => {
                thread::sleep(*delay);
                let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if reader.get_mut().write_all(ok.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Status(code, extra, body) => {
                let response = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n{extra}\r\n",
                    body.len()
                );
                let stream = reader.get_mut();
                if stream.write_all(response.as_bytes()).is_err() || stream.write_all(body).is_err()
                {
                    return;
                }
            }
        }
    }
}

fn ok() -> Answer {
    Answer::Status(200, "", Vec::new())
}

#[test]
fn a_503_with_retry_after_is_retried_after_it() {
    let stub = Stub::start(vec![
        Answer::Status(503, "retry-after: 1\r\n", Vec::new()),
        ok(),
    ]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    let seen = stub.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one refusal, one retry");
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
    // Within shutdown's wait (the default timeout, 10 s), or there is no second request.
    assert!(gap < Duration::from_secs(10), "retried after {gap:?}");
    assert_eq!(seen[0].body, seen[1].body, "the same batch is sent again");
    let stats = exporter.stats();
    assert_eq!(
        (stats.exported(), stats.retries(), stats.rejected()),
        (3, 1, 0)
    );
}

#[test]
fn a_400_is_counted_as_rejected_and_not_retried() {
    let stub = Stub::start(vec![Answer::Status(400, "", b"bad payload".to_vec())]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    emit(&exporter, 3);
    exporter.flush();
    thread::sleep(Duration::from_millis(600)); // time enough for a retry that must not come
    assert_eq!(stub.count(), 1);
    let stats = exporter.stats();
    assert_eq!(
        (stats.exported(), stats.rejected(), stats.retries()),
        (0, 3, 0)
    );
    exporter.shutdown();
    assert_eq!(stub.count(), 1);
}

#[test]
fn partial_success_counts_the_rejected_records() {
    let answer = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "one record too large".into(),
        }),
    };
    let stub = Stub::start(vec![Answer::Status(200, "", answer.encode_to_vec())]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    let stats = exporter.stats();
    assert_eq!((stats.exported(), stats.rejected()), (2, 1));
}

/// A collector may explain a partial success at length (one line per refused
/// record); an answer of a few KiB is read whole, and its count taken.
#[test]
fn partial_success_with_a_long_message_counts_the_rejected_records() {
    let answer = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "record 2: attribute value too long; ".repeat(60),
        }),
    };
    assert!(answer.encoded_len() > 2048);
    let stub = Stub::start(vec![Answer::Status(200, "", answer.encode_to_vec())]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    let stats = exporter.stats();
    assert_eq!((stats.exported(), stats.rejected()), (2, 1));
}

#[test]
fn a_collector_that_never_answers_cannot_hold_up_shutdown_or_the_app() {
    let stub = Stub::start(vec![Answer::Hang]);
    let config = stub.config().with_timeout(Duration::from_millis(500));
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 3);
    exporter.flush(); // the request hangs; flush gives up after the timeout
    wait_until("the stub has the request", Duration::from_secs(5), || {
        stub.count() >= 1
    });

    // Emitting goes on meanwhile: the calls return while the request still hangs (a
    // blocked emitter fails the test after a minute, not a slow machine).
    let (done_tx, done) = std::sync::mpsc::channel();
    let emitter = Arc::clone(&exporter);
    thread::spawn(move || {
        emit(&emitter, 10_000);
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(60))
        .expect("10,000 events emitted while the collector hangs");

    let started = Instant::now();
    exporter.shutdown();
    let shutdown = started.elapsed();
    // The configured 500 ms, with margin for a loaded machine; not the default 10 s.
    assert!(
        shutdown < Duration::from_secs(5),
        "shutdown took {shutdown:?}"
    );
    let stats = exporter.stats();
    assert_eq!(stats.exported(), 0);
    assert_eq!(stats.undelivered() + stats.dropped(), 10_003, "{stats:?}");
}

#[test]
fn a_backlog_behind_a_slow_collector_cannot_hold_up_shutdown() {
    let stub = Stub::start(vec![Answer::Slow(Duration::from_millis(100))]);
    let config = stub.config().with_timeout(Duration::from_millis(500));
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 50_000);
    exporter.flush(); // starts on the backlog; gives up waiting after the timeout
    let started = Instant::now();
    exporter.shutdown();
    let shutdown = started.elapsed();
    // The configured 500 ms, with margin for a loaded machine; not the default 10 s,
    // nor the backlog's 50,000 records at 100 ms a request.
    assert!(
        shutdown < Duration::from_secs(5),
        "shutdown took {shutdown:?}"
    );
    let stats = exporter.stats();
    assert!(stats.exported() > 0 && stats.undelivered() > 0, "{stats:?}");
    assert_eq!(stats.exported() + stats.undelivered(), 50_000, "{stats:?}");
}

#[test]
fn metrics_are_pushed_on_time_while_the_export_thread_is_never_idle() {
    // Each request takes 20 ms: the export thread sends its backlog without pause
    // while a thread keeps filling chunks faster than that, well within the queue.
    let stub = Stub::start(vec![Answer::Slow(Duration::from_millis(20))]);
    let config = stub
        .config()
        .with_metric_interval(Duration::from_millis(200))
        .with_queue_bytes(64 << 20)
        .with_timeout(Duration::from_millis(500));
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
    let started = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        let mut i = 0_i64;
        while started.elapsed() < Duration::from_millis(1500) {
            for _ in 0..500 {
                tracing_telemetry::track_event!("job.done", n = i);
                i += 1;
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    let pushed = exporter.stats().metric_pushes();
    exporter.shutdown();
    assert!(
        stub.count() > 10 && exporter.stats().dropped() == 0,
        "the export thread was kept busy within the queue: {:?}",
        exporter.stats()
    );
    assert!(
        pushed >= 4,
        "{pushed} metric pushes in 1.5 s of a 200 ms interval, before shutdown"
    );
}

#[test]
fn a_full_queue_drops_and_counts_new_records() {
    let stub = Stub::start(vec![Answer::Hang]);
    let config = stub
        .config()
        .with_timeout(Duration::from_millis(300))
        .with_queue_bytes(16 * 1024);
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 2_000);
    let stats = exporter.stats();
    assert!(stats.dropped() > 1_000, "{stats:?}");
    exporter.shutdown();
    let stats = exporter.stats();
    assert_eq!(
        stats.dropped() + stats.undelivered() + stats.exported(),
        2_000,
        "{stats:?}"
    );
}

#[test]
fn gzip_bodies_decode_to_the_records() {
    let stub = Stub::start(vec![ok()]);
    let endpoint = format!("http://127.0.0.1:{}/custom/path", stub.port);
    let config = OtlpConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ])
    .unwrap();
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    let seen = stub.seen.lock().unwrap();
    assert!(
        seen[0].headers.starts_with("post /custom/path "),
        "{}",
        seen[0].headers
    );
    assert!(seen[0].headers.contains("content-encoding: gzip"));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(seen[0].body.as_slice())
        .read_to_end(&mut raw)
        .unwrap();
    let request = ExportLogsServiceRequest::decode(raw.as_slice()).unwrap();
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].event_name, "job.done");
}

/// With gzip configured, the metrics push is compressed as the log records are, and
/// decodes to the metrics. (The stub takes it: the real receiver drops gzip bodies.)
#[test]
fn gzip_applies_to_the_metrics_push_too() {
    let stub = Stub::start(vec![ok()]);
    let endpoint = format!("http://127.0.0.1:{}", stub.port);
    let config = OtlpConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ])
    .unwrap();
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    assert_eq!(
        exporter.stats().metric_pushes(),
        1,
        "{:?}",
        exporter.stats()
    );
    let pushes = stub.pushes.lock().unwrap();
    let push = pushes.last().expect("the push at shutdown");
    assert!(
        push.headers.starts_with("post /v1/metrics "),
        "{}",
        push.headers
    );
    assert!(
        push.headers.contains("content-encoding: gzip"),
        "{}",
        push.headers
    );
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(push.body.as_slice())
        .read_to_end(&mut raw)
        .expect("a gzip body");
    let request = ExportMetricsServiceRequest::decode(raw.as_slice()).expect("a metrics request");
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let job = metrics
        .iter()
        .find(|m| m.name == "job.done")
        .unwrap_or_else(|| panic!("no job.done in {metrics:#?}"));
    let Some(metric::Data::Sum(sum)) = &job.data else {
        panic!("not a sum: {job:#?}")
    };
    let calls: i64 = sum
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(n)) => n,
            _ => panic!("not an integer count: {p:?}"),
        })
        .sum();
    assert_eq!(calls, 3, "{job:#?}");
}

/// Without compression configured (the default), every request is plain protobuf and
/// names no content encoding.
#[test]
fn without_compression_requests_are_plain_protobuf() {
    let stub = Stub::start(vec![ok()]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    let seen = stub.seen.lock().unwrap();
    let pushes = stub.pushes.lock().unwrap();
    assert!(!seen.is_empty() && !pushes.is_empty());
    for request in seen.iter().chain(pushes.iter()) {
        assert!(
            !request.headers.contains("content-encoding"),
            "{}",
            request.headers
        );
    }
    let logs = ExportLogsServiceRequest::decode(seen[0].body.as_slice()).unwrap();
    assert_eq!(logs.resource_logs[0].scope_logs[0].log_records.len(), 3);
    let metrics = ExportMetricsServiceRequest::decode(pushes[0].body.as_slice()).unwrap();
    assert!(!metrics.resource_metrics.is_empty());
}

/// A refusal is reported with what the collector said, so that a person can act on
/// it: the status and the start of the answer's text.
#[test]
fn a_refusal_is_reported_with_the_collectors_message() {
    let stub = Stub::start(vec![Answer::Status(
        400,
        "",
        b"log record 2: body exceeds the limit\n".to_vec(),
    )]);
    let out = otlp_example()
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", stub.port),
        )
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rejected 3 records (HTTP 400: log record 2: body exceeds the limit)"),
        "{stderr}"
    );
}

#[test]
fn otel_sdk_disabled_sends_nothing() {
    let stub = Stub::start(vec![ok()]);
    let endpoint = format!("http://127.0.0.1:{}", stub.port);
    let config = OtlpConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SDK_DISABLED", "true"),
    ])
    .unwrap();
    let exporter = Arc::new(OtlpExporter::start(config).unwrap());
    emit(&exporter, 3);
    exporter.shutdown();
    assert_eq!(stub.count(), 0);
    assert_eq!(exporter.stats(), tracing_telemetry::OtlpStats::default());
}

/// `flush` returns only once every record made before it was delivered, even when it
/// is asked while the export thread is busy sending (the threads' buffers filled
/// meanwhile must be collected before it answers).
#[test]
fn flush_asked_while_sending_waits_for_every_record_made_before_it() {
    let stub = Stub::start(vec![Answer::Slow(Duration::from_millis(5))]);
    let exporter = Arc::new(OtlpExporter::start(stub.config()).unwrap());
    for round in 1..=3_u64 {
        emit(&exporter, 20_000);
        exporter.flush();
        let stats = exporter.stats();
        assert_eq!(
            stats.exported(),
            round * 20_000,
            "flush returned before every record was sent: {stats:?}"
        );
    }
    exporter.shutdown();
}

fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The series the quickstart's calls make, as pushed over OTLP: for each metric its
/// name and, for each data point, its attributes and value (or count), sorted.
/// A metric's kind and name, a data point's attributes, its value.
#[cfg(feature = "prometheus")]
type Series = (String, Vec<(String, String)>, String);

#[cfg(feature = "prometheus")]
fn pushed_series(receiver: &Receiver) -> Vec<Series> {
    let requests = receiver.requests.lock().unwrap().clone();
    let mut series = Vec::new();
    for metric in metrics(&requests) {
        let name = metric["name"].as_str().unwrap_or_default().to_owned();
        // The crate's own health (`telemetry.*`) is not the calls' series: it names the
        // destinations, which differ here by design.
        if name.starts_with("telemetry.") {
            continue;
        }
        for kind in ["gauge", "sum", "histogram"] {
            for point in metric[kind]["dataPoints"].as_array().into_iter().flatten() {
                let mut attributes: Vec<(String, String)> = point["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kv| (kv["key"].to_string(), kv["value"].to_string()))
                    .collect();
                attributes.sort();
                let value = ["asDouble", "asInt", "count"]
                    .iter()
                    .map(|v| point[v].to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                series.push((format!("{kind} {name}"), attributes, value));
            }
        }
    }
    series.sort();
    series
}

/// One aggregation, fed once, whatever the exporters: the quickstart's calls, made
/// inside a span that carries `request_id` with `TELEMETRY_SPAN_FIELDS=request_id`, give
/// the same series over OTLP with `otlp` alone as with `prometheus,otlp`, and the span
/// field is an attribute of none of them (span fields become labels only where the app
/// opts in; the log records carry it).
#[cfg(feature = "prometheus")]
#[test]
fn the_same_calls_push_the_same_series_with_or_without_prometheus() {
    let mut pushed = Vec::new();
    for exporters in ["otlp", "prometheus,otlp"] {
        let Some(receiver) = receiver(0) else { return };
        let mut quickstart = example_with_otlp("quickstart");
        if exporters.contains("prometheus") {
            quickstart.env("TELEMETRY_PROMETHEUS_ADDR", "127.0.0.1:0");
        }
        let out = quickstart
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", exporters)
            .env("TELEMETRY_SPAN_FIELDS", "request_id")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .output()
            .expect("run the quickstart");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{exporters}: {stderr}");
        wait_until("the metrics push", Duration::from_secs(30), || {
            !metrics(&receiver.requests.lock().unwrap()).is_empty()
        });
        let records = log_records(&receiver.logs(2));
        assert_eq!(
            attribute(record(&records, "user.signup"), "request_id"),
            &serde_json::json!({"stringValue": "r-42"}),
            "{exporters}: the log records carry the span field"
        );
        let series = pushed_series(&receiver);
        assert!(
            series.iter().any(|(name, ..)| name == "sum user.signup"),
            "{exporters}: {series:#?}"
        );
        for (name, attributes, _) in &series {
            assert!(
                attributes.iter().all(|(key, _)| key != "\"request_id\""),
                "{exporters}: {name} carries the span field: {attributes:?}"
            );
        }
        pushed.push(series);
    }
    assert_eq!(pushed[0], pushed[1], "otlp alone, then prometheus,otlp");
}

/// `prometheus,otlp`, telemetry off at start and the endpoint's address taken: the app
/// starts (off, the endpoint's failure is said, not fatal), and once telemetry is
/// turned on at run time the OTLP push still carries the app's series, although the
/// endpoint never came up: the one aggregation is fed whatever the endpoint does.
#[cfg(all(unix, feature = "prometheus"))]
#[test]
fn the_aggregation_is_fed_when_the_prometheus_endpoint_cannot_start() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let Some(receiver) = receiver(0) else { return };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = otlp_child(
        example_with_otlp("toggle")
            .args(["--ticks", "30"])
            .env("TELEMETRY_EXPORTER", "prometheus,otlp")
            .env(
                "TELEMETRY_PROMETHEUS_ADDR",
                taken.local_addr().unwrap().to_string(),
            )
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = child.0.id().to_string();
    let stderr = child.0.stderr.take().unwrap();
    let stderr = thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut logs = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut logged = |needle: &str| logs.any(|line| line.unwrap().contains(needle));
    assert!(logged("tick=1"), "the app ended early");
    let status = Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    assert!(status.success());
    assert!(logged("telemetry switched enabled=true") && logged("tick=29"));
    assert!(child.0.wait().unwrap().success());
    let stderr = stderr.join().unwrap();
    assert!(
        stderr.contains("cannot serve the Prometheus endpoint while telemetry is off"),
        "{stderr}"
    );
    wait_until("the metrics push", Duration::from_secs(30), || {
        !metrics(&receiver.requests.lock().unwrap()).is_empty()
    });
    let pushed = metrics(&receiver.requests.lock().unwrap());
    let tick = pushed
        .iter()
        .find(|m| m["name"] == "toggle.tick")
        .unwrap_or_else(|| panic!("no toggle.tick among {pushed:#?}\n{stderr}"));
    assert_eq!(tick["gauge"]["dataPoints"][0]["asDouble"], 29.0);
}

/// A child process, killed when dropped (even when the test fails).
#[cfg(all(unix, feature = "prometheus"))]
struct OtlpChild(std::process::Child);

#[cfg(all(unix, feature = "prometheus"))]
impl Drop for OtlpChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(all(unix, feature = "prometheus"))]
fn otlp_child(cmd: &mut Command) -> OtlpChild {
    OtlpChild(cmd.spawn().expect("start the example"))
}
