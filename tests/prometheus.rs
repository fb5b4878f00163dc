//! The Prometheus endpoint as Prometheus and other clients see it: a real Prometheus
//! scraping `examples/service.rs`, the exposition checked by `promtool`, status codes,
//! a bind failure, and clients that misbehave.
//!
//! The real-Prometheus test needs Debian's `prometheus` package (Prometheus 2.42 and
//! `promtool`). Without it the test fails when `CI=true`, and otherwise says SKIPPED
//! and why.

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;
use tracing_telemetry::aggregate::{Aggregation, Aggregator};
use tracing_telemetry::prometheus::PrometheusExporter;
use tracing_telemetry::{Kind, Record, Sink, Tag, TelemetryLayer};

/// A child process that is killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds `examples/service.rs` (it needs the `prometheus` feature, which the shared
/// helper does not pass) and returns a command for it with no `TELEMETRY_*` or
/// `RUST_LOG` inherited from the developer's shell.
fn service_example() -> Command {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            "service",
            "--features",
            "prometheus",
        ])
        .args((!cfg!(debug_assertions)).then_some("--release"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --example service");
    assert!(status.success(), "cargo build --example service failed");
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let mut cmd = Command::new(
        dir.join("examples")
            .join(format!("service{}", std::env::consts::EXE_SUFFIX)),
    );
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TELEMETRY_") || var == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// A free port on 127.0.0.1 (the system picks it; it is free again once dropped).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The path of `name` on `PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// `prometheus` and `promtool`, or: in CI a failure, elsewhere `None` after saying
/// SKIPPED.
fn prometheus_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (on_path("prometheus"), on_path("promtool")) {
        (Some(server), Some(tool)) => Some((server, tool)),
        _ => {
            let why = "prometheus or promtool is not on PATH (install Debian's prometheus package: apt-get install prometheus)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why}; CI=true requires it");
            }
            println!("SKIPPED: {test}: {why}");
            None
        }
    }
}

/// One HTTP/1.0 request; the status code and body. Test-side plumbing only.
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:.200}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

/// The status of a `GET`, or `None` when there is no answer within 3 s.
fn try_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL query that returns one sample, or `None` while it has none.
fn query(prometheus: SocketAddr, promql: &str) -> Option<f64> {
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    );
    assert_eq!(status, 200, "{promql}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
    let result = json["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

/// The endpoint's send timeout (`src/prometheus/server.rs`): how long a stalled
/// client can hold a serving thread.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until `f` returns true, up to `limit`; false if it never did.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

#[cfg_attr(
    windows,
    ignore = "needs prometheus and promtool on PATH (looked up without .exe); the Windows CI job has none"
)]
#[test]
fn a_real_prometheus_scrapes_what_the_service_emitted() {
    let test = "a_real_prometheus_scrapes_what_the_service_emitted";
    let Some((prometheus_bin, promtool)) = prometheus_tools(test) else {
        return;
    };
    let dir = support::temp_dir("prometheus");
    let service_addr = free_addr();
    let prometheus_addr = free_addr();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: service\n    static_configs:\n      - targets: ['{service_addr}']\n"
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
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let log = dir.join("prometheus.log");
    assert!(
        eventually(Duration::from_secs(30), || TcpStream::connect(
            prometheus_addr
        )
        .is_ok()
            && get(prometheus_addr, "/-/ready").0 == 200),
        "Prometheus did not become ready; its log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // The service starts once Prometheus scrapes, so that its samples cover the
    // whole emission (a rate needs two).
    let mut service = Killed(
        service_example()
            .args([
                "--addr",
                &service_addr.to_string(),
                "--seconds",
                "6",
                "--idle-seconds",
                "120",
            ])
            .env("OTEL_SERVICE_NAME", "scraped-service")
            .env("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.4.2")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the service example"),
    );

    // The service says what it emitted when it stops emitting (and keeps serving), as
    // a JSON line among its logs on stdout.
    let mut line = String::new();
    let mut stdout = BufReader::new(service.0.stdout.take().unwrap());
    while !line.starts_with('{') {
        line.clear();
        let read = stdout
            .read_line(&mut line)
            .expect("read the service's summary");
        assert!(read > 0, "the service ended without its summary");
    }
    let emitted: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let pro = emitted["signups_pro"].as_f64().unwrap();
    let timings = emitted["timings"].as_f64().unwrap();
    let timing_sum = emitted["timing_sum_seconds"].as_f64().unwrap();
    let depth = emitted["queue_depth"].as_f64().unwrap();
    assert!(
        pro > 10.0 && timings > 30.0,
        "the service emitted too little: {line}"
    );

    // Prometheus sees the final values once it has scraped after the last call.
    let queries = [
        (r#"user_signup_total{plan="pro"}"#, pro),
        (r#"queue_depth{queue="emails"}"#, depth),
        (r#"db_query_seconds_count{table="users"}"#, timings),
        (r#"db_query_seconds_sum{table="users"}"#, timing_sum),
    ];
    let mut seen = Vec::new();
    let all_equal = eventually(Duration::from_secs(30), || {
        seen = queries
            .iter()
            .map(|(q, _)| query(prometheus_addr, q))
            .collect();
        seen.iter().zip(&queries).all(|(got, (_, want))| {
            got.is_some_and(|got| (got - want).abs() <= 1e-9 * want.abs().max(1.0))
        })
    });
    assert!(
        all_equal,
        "Prometheus never saw what the service emitted:\n{}",
        queries
            .iter()
            .zip(&seen)
            .map(|((q, want), got)| format!("  {q}: want {want}, Prometheus has {got:?}\n"))
            .collect::<String>()
    );
    assert_eq!(query(prometheus_addr, r#"up{job="service"}"#), Some(1.0));
    // The resource names the service: one target_info series, its attributes as labels.
    assert_eq!(
        query(
            prometheus_addr,
            r#"target_info{service_name="scraped-service",service_version="1.4.2"}"#
        ),
        Some(1.0)
    );

    // Nine in ten queries take 12.5 ms: the median is in the (0.01, 0.025] bucket.
    let median_query = r#"histogram_quantile(0.5, sum by (le) (rate(db_query_seconds_bucket{table="users"}[1m])))"#;
    let mut median = None;
    eventually(Duration::from_secs(10), || {
        median = query(prometheus_addr, median_query).filter(|m| !m.is_nan());
        median.is_some()
    });
    let median = median.expect("a median over the last minute");
    assert!(
        median > 0.01 && median <= 0.025,
        "median {median} s is not in (0.01, 0.025]"
    );

    // promtool lints the exposition a plain GET gets.
    let (status, exposition) = get(service_addr, "/metrics");
    assert_eq!(status, 200);
    support::check_with_promtool(&promtool, &exposition);

    // The dashboard that ships in configs/ shows this service: every query of every
    // panel returns data.
    every_dashboard_query_returns_data(prometheus_addr, "service");
}

/// Asks `prometheus` every query of `configs/grafana-dashboard.json`, with its
/// variables resolved as Grafana resolves them (`label_values(selector, label)`, by
/// the series API; `$job` is `job`; `$__rate_interval` one minute), a repeated panel
/// once for each value of its variable: each query must return data, and each
/// variable at least one value.
fn every_dashboard_query_returns_data(prometheus: SocketAddr, job: &str) {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/grafana-dashboard.json"),
        )
        .expect("read configs/grafana-dashboard.json"),
    )
    .expect("the dashboard is JSON");
    let mut values: Vec<(String, Vec<String>)> =
        vec![("__rate_interval".into(), vec!["1m".into()])];
    let substitute = |text: &str, values: &[(String, Vec<String>)], pick: &[(String, String)]| {
        let mut text = text.to_owned();
        let mut names: Vec<(&str, &str)> = values
            .iter()
            .map(|(name, v)| {
                let chosen = pick
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str());
                (name.as_str(), chosen.unwrap_or(v[0].as_str()))
            })
            .collect();
        // Longest first, so that `$job` never eats the start of a longer name.
        names.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for (name, value) in names {
            text = text.replace(&format!("${{{name}}}"), value);
            text = text.replace(&format!("${name}"), value);
        }
        text
    };
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let name = var["name"].as_str().unwrap().to_owned();
        if var["type"] != "query" {
            continue;
        }
        let asked = substitute(var["query"].as_str().unwrap(), &values, &[]);
        let found = if name == "job" {
            // The job the test's Prometheus scrapes; the variable must offer it.
            let offered = label_values(prometheus, &asked);
            assert!(
                offered.iter().any(|j| j == job),
                "$job offers {offered:?}, not {job}"
            );
            vec![job.to_owned()]
        } else {
            label_values(prometheus, &asked)
        };
        assert!(!found.is_empty(), "variable ${name} ({asked}) has no value");
        values.push((name, found));
    }
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        let repeats: Vec<Vec<(String, String)>> = match panel["repeat"].as_str() {
            Some(var) => values
                .iter()
                .find(|(name, _)| name == var)
                .unwrap_or_else(|| panic!("panel repeats over an unknown variable {var}"))
                .1
                .iter()
                .map(|value| vec![(var.to_owned(), value.clone())])
                .collect(),
            None => vec![Vec::new()],
        };
        for pick in &repeats {
            for target in targets {
                let expr = substitute(target["expr"].as_str().unwrap(), &values, pick);
                assert!(!expr.contains('$'), "a variable left in {expr}");
                let mut results = 0;
                eventually(Duration::from_secs(10), || {
                    results = query_results(prometheus, &expr);
                    results > 0
                });
                assert!(
                    results > 0,
                    "panel {:?}: {expr} returns no data",
                    panel["title"]
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 10, "only {asked} queries asked");
}

/// The values of `label` among the series `label_values(selector, label)` names.
fn label_values(prometheus: SocketAddr, asked: &str) -> Vec<String> {
    let inner = asked
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values query: {asked}"));
    let (selector, label) = inner
        .rsplit_once(", ")
        .expect("label_values(selector, label)");
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/series?match%5B%5D={}", percent_encode(selector)),
    );
    assert_eq!(status, 200, "{selector}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
    let mut found: Vec<String> = json["data"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|series| series[label].as_str().map(str::to_owned))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// How many series a PromQL query returns now.
fn query_results(prometheus: SocketAddr, promql: &str) -> usize {
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    );
    assert_eq!(status, 200, "{promql}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
    json["data"]["result"].as_array().map_or(0, Vec::len)
}

#[cfg_attr(
    windows,
    ignore = "needs prometheus and promtool on PATH (looked up without .exe); the Windows CI job has none"
)]
#[test]
fn promtool_accepts_every_kind_of_series_and_odd_names() {
    let Some((_, promtool)) =
        prometheus_tools("promtool_accepts_every_kind_of_series_and_odd_names")
    else {
        return;
    };
    let aggregator = Aggregator::builder()
        .sum("bytes.sent")
        .histogram("payload.size", [10.0, 100.0])
        .build();
    let exporter =
        PrometheusExporter::start_with("127.0.0.1:0".parse().unwrap(), aggregator).unwrap();
    let odd = [
        Tag::new("9 lives", "a \"quoted\"\nvalue\\"),
        Tag::new("le", 1_i64),
    ];
    for (kind, name) in [
        (Kind::Event, "user.signup"),
        (Kind::Metric, "queue.depth"),
        (Kind::Timing, "db.query"),
        (Kind::Metric, "bytes.sent"),
        (Kind::Metric, "payload.size"),
        (Kind::Event, "2fa.enabled"),
        (Kind::Metric, "héllo wörld"),
    ] {
        exporter.record(&Record::new(kind, name, &odd).with_value(12.5));
    }
    let text = exporter.encode_text();
    for expected in [
        "user_signup_total{",
        "queue_depth{",
        "db_query_seconds_bucket{",
        "bytes_sent_total{",
        "payload_size_bucket{",
        "_2fa_enabled_total{",
        "h_llo_w_rld{",
        "_9_lives=\"a \\\"quoted\\\"\\nvalue\\\\\"",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    support::check_with_promtool(&promtool, &text);
    exporter.shutdown();
}

#[test]
fn only_get_of_metrics_is_served() {
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    exporter.record(
        &Record::new(Kind::Metric, "queue.depth", &[Tag::new("queue", "emails")]).with_value(42.0),
    );

    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE queue_depth gauge\nqueue_depth{queue=\"emails\"} 42"),
        "{body}"
    );
    assert_eq!(get(addr, "/").0, 404);
    assert_eq!(get(addr, "/metrics/x").0, 404);
    assert_eq!(
        http(addr, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").0,
        405
    );
    assert_eq!(http(addr, "DELETE /metrics HTTP/1.0\r\n\r\n").0, 405);
    assert_eq!(get(addr, "/metrics?name=x").0, 200);

    let (status, body) = http(
        addr,
        "GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {body}"
    );
    let stats = exporter.stats();
    assert_eq!((stats.scrapes(), stats.rejected()), (3, 4));
    exporter.shutdown();
}

#[cfg_attr(
    not(unix),
    ignore = "the Unix error text (Windows: os error 10048, \"Only one usage of each socket address ...\")"
)]
#[test]
fn an_address_in_use_fails_with_the_address_and_the_reason() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = PrometheusExporter::start(addr).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("Address already in use"), "{message}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn shutdown_stops_serving_in_bounded_time() {
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    assert_eq!(get(addr, "/metrics").0, 200);
    // Bounded: it returns (a hang fails the test after a minute, not a slow machine)...
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        exporter.shutdown();
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(60))
        .expect("shutdown returned");
    // ...and the endpoint is gone once it has.
    assert!(eventually(Duration::from_secs(30), || TcpStream::connect(
        addr
    )
    .is_err()));
}

#[test]
fn clients_that_never_read_or_never_stop_sending_cost_one_connection_each() {
    // An exposition larger than the socket buffers, so that a client that never
    // reads really blocks the write of its response.
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    let long = "x".repeat(8_000);
    for i in 0..2_000 {
        let id = format!("{i}{long}");
        exporter.record(&Record::new(
            Kind::Event,
            "page.view",
            &[Tag::new("user", id.as_str())],
        ));
    }

    // What the same scrape takes with no abuse, the slowest of three.
    let quiet_scrape = (0..3)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(get(addr, "/metrics").0, 200);
            start.elapsed()
        })
        .max()
        .unwrap();

    // Scrapers that ask and never read: each holds one of the serving threads until
    // its write times out.
    let never_read: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // A client sending a 100 MB request line.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let Ok(mut stream) = TcpStream::connect(addr) else {
                return 0;
            };
            let _ = stream.set_write_timeout(Some(Duration::from_secs(20)));
            let chunk = vec![b'a'; 1 << 20];
            let _ = stream.write_all(b"GET /");
            let mut sent = 0;
            while sent < 100 && !stop.load(Ordering::Relaxed) {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                sent += 1;
            }
            let _ = stream.shutdown(Shutdown::Write);
            sent
        })
    };
    // An emitting thread, which must never wait for any of this.
    let emitted = Arc::new(AtomicU64::new(0));
    let emitter = {
        let (exporter, emitted, stop) = (exporter.clone(), Arc::clone(&emitted), Arc::clone(&stop));
        std::thread::spawn(move || {
            let tags = [Tag::new("queue", "emails")];
            while !stop.load(Ordering::Relaxed) {
                exporter.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(1.0));
                emitted.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Other scrapes are answered while both misbehave, none of them waiting for a
    // stalled client's I/O timeout: each takes less than what the same scrape took
    // before the abuse (measured first, on the same machine) plus that timeout.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let before = emitted.load(Ordering::Relaxed);
        let start = Instant::now();
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("page_view_total"));
        assert!(
            start.elapsed() < quiet_scrape + IO_TIMEOUT,
            "a scrape took {:?} (one without abuse took {quiet_scrape:?})",
            start.elapsed()
        );
        assert!(
            emitted.load(Ordering::Relaxed) > before,
            "the emitter stalled during a scrape"
        );
    }
    stop.store(true, Ordering::Relaxed);
    emitter.join().unwrap();
    let sent = sender.join().unwrap();
    assert!(sent > 0, "the 100 MB sender got nowhere");
    drop(never_read);
    exporter.shutdown();
}

#[test]
fn ten_thousand_user_ids_are_served_as_the_limit_plus_one_overflow_series() {
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    for i in 0..10_000 {
        let id = format!("user-{i}");
        exporter.record(&Record::new(
            Kind::Event,
            "page.view",
            &[Tag::new("user", id.as_str())],
        ));
    }
    let (status, body) = get(exporter.local_addr(), "/metrics");
    assert_eq!(status, 200);
    let series: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("page_view_total{"))
        .collect();
    assert_eq!(series.len(), 2_001);
    assert!(
        series.contains(&"page_view_total{otel_metric_overflow=\"true\"} 8000"),
        "no overflow series counting 8,000 calls"
    );
    assert!(
        body.contains("\ntelemetry_series_overflow_records_total 8000\n"),
        "{body:.300}"
    );
    assert_eq!(exporter.stats().overflowed(), 8_000);
    exporter.shutdown();
}

/// A name an app counts with [`Aggregation::Count`] is scraped as the number of calls,
/// whatever value each call carries (a metric of 5.0, a timing of 12.5 ms).
#[test]
fn a_count_view_is_scraped_as_the_number_of_calls_not_their_values() {
    let aggregator = Aggregator::builder()
        .view("cache.hits", Aggregation::Count)
        .view("db.query", Aggregation::Count)
        .build();
    let exporter = Arc::new(
        PrometheusExporter::start_with("127.0.0.1:0".parse().unwrap(), aggregator).unwrap(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(TelemetryLayer::new(Arc::clone(&exporter)).with_telemetry_filter());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..2 {
            tracing_telemetry::track_metric("cache.hits", 5.0, &[]);
            tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")]);
        }
    });
    let (status, body) = get(exporter.local_addr(), "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("\ncache_hits_total 2\n"), "{body}");
    assert!(
        body.contains("\ndb_query_total{table=\"users\"} 2\n"),
        "{body}"
    );
    exporter.shutdown();
}

#[test]
fn the_endpoint_keeps_serving_after_a_quiet_spell_longer_than_its_timeouts() {
    // Scrape intervals are often 15 s or more: a socket timeout that reached the
    // listening socket would stop the server between two scrapes.
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    assert_eq!(get(addr, "/metrics").0, 200);
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(get(addr, "/metrics").0, 200);
    exporter.shutdown();
}

/// Out of file descriptors, the accept thread pauses and tries again, and says so once
/// (tests/prometheus_abuse.rs repeats this, and checks that nothing claims a restart).
#[test]
fn running_out_of_file_descriptors_stops_the_endpoint_only_while_it_lasts() {
    // The service runs with 64 file descriptors and is sent 100 connections that say
    // nothing: `accept` fails while they are open.
    let test = "running_out_of_file_descriptors_stops_the_endpoint_only_while_it_lasts";
    let Some(prlimit) = on_path("prlimit") else {
        println!("SKIPPED: {test}: prlimit (util-linux) is not on PATH");
        return;
    };
    let addr = free_addr();
    let service = service_example();
    let mut cmd = Command::new(prlimit);
    cmd.arg("--nofile=64:64")
        .arg(service.get_program())
        .args(["--addr", &addr.to_string(), "--seconds", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TELEMETRY_") || var == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    let mut service = Killed(cmd.spawn().expect("start the service under prlimit"));
    // Read its standard error as it comes, so that a full pipe never blocks it.
    let stderr = service.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    assert!(eventually(Duration::from_secs(10), || TcpStream::connect(
        addr
    )
    .is_ok()));
    assert_eq!(get(addr, "/metrics").0, 200);

    let held: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(!held.is_empty());
    std::thread::sleep(Duration::from_secs(1));
    drop(held);
    // A request made while descriptors are short may go unanswered, as a scraper's
    // would once: each try gives up after 3 s.
    let back = eventually(Duration::from_secs(30), || {
        try_get(addr, "/metrics") == Some(200)
    });
    let _ = service.0.kill();
    let _ = service.0.wait();
    let stderr = stderr.join().unwrap_or_default();
    let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert!(
        back,
        "the endpoint did not come back once the connections were closed; stderr ends:\n{tail}"
    );
    assert!(
        stderr
            .contains("the Prometheus endpoint stopped accepting connections (Too many open files"),
        "no report of the failed accept on stderr:\n{stderr}"
    );
}

/// Through the configuration, as `try_init` reads it: an address that cannot be bound
/// stops the start with the address and the system's reason, and turns nothing on.
#[cfg_attr(
    not(unix),
    ignore = "the Unix error text (Windows: os error 10048, \"Only one usage of each socket address ...\")"
)]
#[test]
fn telemetry_prometheus_addr_in_use_fails_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = tracing_telemetry::Config::from_iter([
        ("TELEMETRY_ENABLED", "true"),
        ("TELEMETRY_EXPORTER", "stderr,prometheus"),
        ("TELEMETRY_PROMETHEUS_ADDR", addr.as_str()),
    ])
    .unwrap();
    let err = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot serve Prometheus metrics on {addr}: ")),
        "{message}"
    );
    assert!(message.contains("Address already in use"), "{message}");
}
