//! The Prometheus endpoint against clients that misbehave, as real processes: the
//! `service` example under a small file-descriptor limit, idle and pipelining
//! connections, a huge request line, port 0; and names that clash once sanitized,
//! scraped over HTTP from a child process and checked by `promtool`.
//!
//! Bounds here are generous (tens of seconds) so that a busy machine never fails a
//! test; the times measured are printed (`--nocapture`) for a reader to compare with
//! the endpoint's promises.
#![cfg(feature = "prometheus")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (the system picks it; it is free again once dropped).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A child process, killed when the test ends, pass or fail, with its standard error
/// collected as it comes (so that a full pipe never blocks it).
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn spawn(cmd: &mut Command) -> Process {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the service example");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Process { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A line of `/proc/<pid>/status` (Linux), such as `Threads` or `VmHWM`, as a number.
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status:\n{status}"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `service` example serving on `addr` for ten minutes; with `fds`, under that
/// limit on open file descriptors (`ulimit -n` in a shell that then runs it).
fn service(addr: &str, fds: Option<u32>) -> Process {
    let exe = support::build_example("service", &["prometheus"]);
    let mut cmd = match fds {
        Some(n) => {
            let mut cmd = support::app("sh");
            cmd.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(&exe);
            cmd
        }
        None => support::app(&exe),
    };
    cmd.args(["--addr", addr, "--seconds", "600"]);
    Process::spawn(&mut cmd)
}

/// The status of one `GET /metrics` (HTTP/1.0), or `None` when there is none within
/// `limit`.
fn scrape(addr: SocketAddr, limit: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream.set_write_timeout(Some(limit)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// How long until a scrape is answered 200, trying again at once after each failure
/// (each try gives up after 3 s, as a scraper with a short timeout would), or `None`
/// if none is within `limit`.
fn time_to_answer(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if scrape(addr, Duration::from_secs(3)) == Some(200) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Waits until the service answers a scrape.
fn ready(addr: SocketAddr, service: &Process) {
    assert!(
        time_to_answer(addr, Duration::from_secs(60)).is_some(),
        "the service never answered a scrape; its stderr:\n{}",
        service.stderr()
    );
}

/// Whether the server has not closed `stream` yet (what it sent is read and dropped).
fn still_open(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0_u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[cfg_attr(not(unix), ignore = "ulimit -n is a Unix shell's")]
#[test]
fn out_of_file_descriptors_the_endpoint_answers_again_once_they_are_free() {
    // 64 descriptors, 100 connections held for a second, then closed: five rounds.
    let addr = free_addr();
    let service = service(&addr.to_string(), Some(64));
    ready(addr, &service);
    let (mut figures, mut during_figures) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let held: Vec<TcpStream> = (0..100)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
            .collect();
        assert!(!held.is_empty(), "round {round}: no connection at all");
        std::thread::sleep(Duration::from_secs(1));
        // A scrape while they are held: it gets the descriptor of the oldest of them.
        let start = Instant::now();
        let during = scrape(addr, Duration::from_secs(20));
        assert_eq!(
            during,
            Some(200),
            "round {round}: a scrape while 100 connections are held; stderr:\n{}",
            service.stderr()
        );
        during_figures.push(start.elapsed().as_millis());
        drop(held);
        let answered = time_to_answer(addr, Duration::from_secs(60));
        let stderr = service.stderr();
        let answered = answered.unwrap_or_else(|| {
            panic!("round {round}: the endpoint never answered again once the connections were closed; stderr:\n{stderr}")
        });
        figures.push(answered.as_millis());
    }
    println!("answered during the abuse, ms: {during_figures:?}");
    println!("answered again after the abuse ended, ms: {figures:?}");
    let stderr = service.stderr();
    assert!(
        stderr.contains("Too many open files"),
        "the descriptors never ran out, or it was not reported:\n{stderr}"
    );
    assert!(
        !stderr.contains("restarted"),
        "nothing is restarted, so nothing may say so:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("Too many open files").count(),
        1,
        "reported once:\n{stderr}"
    );
}

#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc/<pid>/status")]
#[test]
fn idle_connections_are_capped_and_closed() {
    let addr = free_addr();
    let service = service(&addr.to_string(), None);
    ready(addr, &service);
    let threads_before = service.status("Threads");
    let mut idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let threads = service.status("Threads");
    println!("threads: {threads_before} before, {threads} with 600 idle connections");
    // A scrape meanwhile is answered: it takes the place of the oldest idle one.
    let during = scrape(addr, Duration::from_secs(20));
    println!("a scrape with 600 idle connections open: {during:?}");
    assert_eq!(during, Some(200), "a scrape with 600 idle connections open");
    assert!(
        threads < threads_before + 200,
        "{threads} threads for 600 idle connections ({threads_before} before)"
    );
    // Each idle connection is closed by the server, whatever the client does.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) && !idle.is_empty() {
        idle.retain_mut(still_open);
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "the last idle connection was closed after {:?}",
        start.elapsed()
    );
    assert!(
        idle.is_empty(),
        "{} idle connections still open after 2 minutes",
        idle.len()
    );
    let answered = time_to_answer(addr, Duration::from_secs(60)).expect("a scrape is answered");
    println!("a scrape was answered {answered:?} after");
}

#[test]
fn a_pipelining_client_that_never_reads_blocks_no_other_scrape() {
    use tracing_telemetry::prometheus::PrometheusExporter;
    use tracing_telemetry::{Kind, Record, Sink, Tag};
    // An exposition of about 400 KB, so that the answers to 60 requests are far more
    // than the socket buffers hold.
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    let long = "x".repeat(150);
    for i in 0..2_000 {
        let id = format!("{i}{long}");
        exporter.record(&Record::new(
            Kind::Event,
            "page.view",
            &[Tag::new("user", id.as_str())],
        ));
    }
    let mut pipeliner = TcpStream::connect(addr).unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(60);
    pipeliner.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Nine scrapes while it holds its connection, never reading: every one answered.
    let answered = (0..9)
        .filter(|_| scrape(addr, Duration::from_secs(20)) == Some(200))
        .count();
    assert_eq!(answered, 9, "scrapes answered while a client pipelined");
    // And its connection does not stay open for good.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) && still_open(&mut pipeliner) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        !still_open(&mut pipeliner),
        "the pipelining connection is still open after 2 minutes"
    );
    drop(pipeliner);
    let after = time_to_answer(addr, Duration::from_secs(60)).expect("answered after");
    println!("answered {after:?} after the pipelining client went away");
    exporter.shutdown();
}

#[test]
fn malformed_requests_get_400_and_every_answer_closes_its_connection() {
    use tracing_telemetry::prometheus::PrometheusExporter;
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = exporter.local_addr();
    let answer = |request: &[u8]| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request).unwrap();
        // Never closed by the client: the answer ends because the server closes.
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .expect("the server closes the connection after its answer");
        String::from_utf8_lossy(&response).into_owned()
    };
    for request in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /metrics HTTP/2.0\r\n\r\n",
    ] {
        let response = answer(request);
        assert!(response.starts_with("HTTP/1.1 400 "), "{response:.200}");
    }
    let response = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response:.200}");
    assert!(
        response.contains("\r\nConnection: close\r\n"),
        "{response:.300}"
    );
    let response = answer(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        response.starts_with("HTTP/1.1 200 ") && response.ends_with("\r\n\r\n"),
        "a head, no body: {response:.300}"
    );
    exporter.shutdown();
}

#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc/<pid>/status")]
#[test]
fn a_huge_request_line_is_refused_without_being_buffered() {
    let addr = free_addr();
    let service = service(&addr.to_string(), None);
    ready(addr, &service);
    // A request head past the limit is answered 431.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = b"GET /".to_vec();
    head.extend(std::iter::repeat(b'a').take(16 << 10));
    stream.write_all(&head).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 431 "),
        "a 16 KiB request line: {response:.200}"
    );
    // 100 MB of request line costs the server far less than 100 MB.
    let peak_before = service.status("VmHWM");
    let sender = std::thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return 0;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(20)));
        let chunk = vec![b'a'; 1 << 20];
        let _ = stream.write_all(b"GET /");
        let mut sent = 0;
        while sent < 100 && stream.write_all(&chunk).is_ok() {
            sent += 1;
        }
        let _ = stream.shutdown(Shutdown::Write);
        sent
    });
    let sent = sender.join().unwrap();
    let peak = service.status("VmHWM");
    println!("peak resident memory {peak_before} kB before, {peak} kB after {sent} MiB sent");
    assert!(
        peak < peak_before + 32 * 1024,
        "{sent} MiB of request line raised the peak from {peak_before} kB to {peak} kB"
    );
    assert!(time_to_answer(addr, Duration::from_secs(60)).is_some());
}

#[test]
fn port_zero_reports_the_port_the_system_chose() {
    let service = service("127.0.0.1:0", None);
    let start = Instant::now();
    let addr = loop {
        let stderr = service.stderr();
        if let Some(at) = stderr.find("http://127.0.0.1:") {
            let rest = &stderr[at + "http://".len()..];
            let end = rest.find('/').unwrap_or(rest.len());
            break rest[..end].parse::<SocketAddr>().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no address on stderr:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(addr.port(), 0);
    assert!(time_to_answer(addr, Duration::from_secs(60)).is_some());
}

/// One `GET /metrics` with `accept`; the body of a 200.
fn get_metrics(addr: SocketAddr, accept: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response.get(8..13) == Some(" 200 "),
        "{response:.300}"
    );
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

const CLASH_CHILD: &str = "PROMETHEUS_ABUSE_CLASH_CHILD";

/// The app of the next test, run in a child process so that what it says on standard
/// error can be read: names that clash once sanitized, with each other and with the
/// crate's own series. It serves until its standard input closes.
#[test]
fn clashing_names_app() {
    use tracing_telemetry::prometheus::PrometheusExporter;
    use tracing_telemetry::{Kind, Record, Sink, Tag};
    if std::env::var_os(CLASH_CHILD).is_none() {
        return;
    }
    let exporter = PrometheusExporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let tags = [Tag::new("route", "/")];
    exporter.record(&Record::new(Kind::Event, "http.requests", &tags));
    exporter.record(&Record::new(Kind::Metric, "http.requests.total", &tags).with_value(7.0));
    for name in ["cache.hit", "cache_hit", "cache-hit", "cache..hit"] {
        exporter.record(&Record::new(Kind::Metric, name, &[]).with_value(1.0));
    }
    exporter.record(&Record::new(Kind::Metric, "telemetry.series", &[]).with_value(123.0));
    exporter.record(&Record::new(Kind::Metric, "target_info", &[]).with_value(123.0));
    exporter.record(&Record::new(Kind::Timing, "db.query", &tags).with_value(12.5));
    exporter.record(&Record::new(Kind::Metric, "db.query.seconds.count", &[]).with_value(3.0));
    exporter.record(&Record::new(Kind::Event, "queue.depth", &[]));
    exporter.record(&Record::new(Kind::Metric, "queue.depth", &[]).with_value(4.0));
    println!("ADDR={}", exporter.local_addr());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    exporter.shutdown();
}

#[cfg_attr(
    windows,
    ignore = "needs promtool on PATH (looked up without .exe); the Windows CI job has none"
)]
#[test]
fn names_that_clash_once_sanitized_are_served_once_and_reported_once() {
    let test = "names_that_clash_once_sanitized_are_served_once_and_reported_once";
    let Some(promtool) = support::promtool(test) else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "clashing_names_app",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLASH_CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the app");
    let stdin = child.stdin.take().unwrap();
    let mut process = Process {
        stderr: Arc::new(Mutex::new(String::new())),
        child,
    };
    let pipe = process.child.stderr.take().unwrap();
    let collected = Arc::clone(&process.stderr);
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(pipe).read_to_string(&mut text);
        collected.lock().unwrap().push_str(&text);
    });
    let mut stdout = BufReader::new(process.child.stdout.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the app ended before serving"
        );
        // The harness may have written `test clashing_names_app ... ` on the same line.
        if let Some((_, addr)) = line.trim().split_once("ADDR=") {
            break addr.parse().unwrap();
        }
    };

    // Two scrapes, one in each format: the clashes are reported once all the same.
    let text = get_metrics(addr, "text/plain");
    let openmetrics = get_metrics(addr, "application/openmetrics-text;version=1.0.0");
    drop(stdin);
    let _ = process.child.wait();
    stderr_reader.join().unwrap();
    let stderr = process.stderr();
    println!("the app's standard error:\n{stderr}");

    support::check_with_promtool(&promtool, &text);
    for (format, body) in [("text", &text), ("OpenMetrics", &openmetrics)] {
        let family_lines = |name: &str| {
            body.lines()
                .filter(|l| l.starts_with(&format!("# TYPE {name} ")))
                .count()
        };
        for family in ["cache_hit", "telemetry_series", "target_info"] {
            assert_eq!(
                family_lines(family),
                1,
                "{format}: # TYPE {family}:\n{body}"
            );
        }
        let samples = |prefix: &str| body.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(samples("cache_hit "), 1, "{format}:\n{body}");
        assert_eq!(samples("http_requests_total{"), 1, "{format}:\n{body}");
        assert_eq!(samples("target_info{"), 1, "{format}:\n{body}");
        assert_eq!(samples("db_query_seconds_count{"), 1, "{format}:\n{body}");
        assert_eq!(samples("db_query_seconds_count "), 0, "{format}:\n{body}");
        // An event and a metric of one name: the counter is served, not the gauge.
        assert_eq!(samples("queue_depth_total "), 1, "{format}:\n{body}");
        assert_eq!(samples("queue_depth "), 0, "{format}:\n{body}");
        // The crate's own numbers, not the app's 123.
        let series = body
            .lines()
            .find_map(|l| l.strip_prefix("telemetry_series "))
            .unwrap_or_else(|| panic!("{format}: no telemetry_series:\n{body}"));
        assert_ne!(
            series, "123.0",
            "{format}: the app's value in the crate's series"
        );
        assert!(
            body.contains("target_info{service_name="),
            "{format}: the crate's target_info:\n{body}"
        );
        assert!(
            body.contains("\ntelemetry_prometheus_name_clashes 8"),
            "{format}: eight names left out, counted:\n{body}"
        );
    }

    // Each name left out is reported once, naming both originals.
    for (left_out, owner) in [
        (
            r#"track_metric "http.requests.total""#,
            r#"track_event "http.requests""#,
        ),
        (r#"track_metric "cache_hit""#, r#"track_metric "cache.hit""#),
        (r#"track_metric "cache-hit""#, r#"track_metric "cache.hit""#),
        (
            r#"track_metric "cache..hit""#,
            r#"track_metric "cache.hit""#,
        ),
        (r#"track_metric "telemetry.series""#, "the crate's own"),
        (r#"track_metric "target_info""#, "the crate's own"),
        (
            r#"track_metric "db.query.seconds.count""#,
            r#"track_timing "db.query""#,
        ),
        (
            r#"track_metric "queue.depth""#,
            r#"track_event "queue.depth""#,
        ),
    ] {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(left_out)).collect();
        assert_eq!(lines.len(), 1, "{left_out} reported once:\n{stderr}");
        assert!(
            lines[0].contains(owner),
            "{left_out} names {owner}:\n{stderr}"
        );
    }
}

/// Clients that take their answer and never close, opened as fast as a client can
/// (each answered connection lingers up to 2 s after its answer): they never fill every
/// place, since an answered connection gives its place up to a newcomer like an idle
/// one. A scrape made meanwhile is answered.
#[test]
fn answered_connections_left_open_give_their_place_to_a_scrape() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let addr = free_addr();
    let service = service(&addr.to_string(), None);
    ready(addr, &service);
    let stop = Arc::new(AtomicBool::new(false));
    let abusers: Vec<_> = (0..4)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut held = std::collections::VecDeque::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    else {
                        continue;
                    };
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    // A small answer (404), read up to its end; the connection is kept.
                    if conn
                        .write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
                        .is_ok()
                    {
                        let mut answer = [0_u8; 512];
                        let _ = conn.read(&mut answer);
                    }
                    held.push_back(conn);
                    if held.len() > 200 {
                        held.pop_front();
                    }
                }
            })
        })
        .collect();
    // Let the abuse fill the places, then scrape while it goes on.
    std::thread::sleep(Duration::from_secs(3));
    let answers: Vec<Option<u16>> = (0..5)
        .map(|_| scrape(addr, Duration::from_secs(20)))
        .collect();
    stop.store(true, Ordering::Relaxed);
    for abuser in abusers {
        abuser.join().unwrap();
    }
    println!("scrapes during the abuse: {answers:?}");
    assert!(
        answers.iter().filter(|a| **a == Some(200)).count() >= 4,
        "scrapes during the abuse: {answers:?}; stderr:\n{}",
        service.stderr()
    );
}
