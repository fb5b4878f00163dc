//! A long-running service: it keeps emitting events, metrics and timings while
//! Prometheus scrapes the aggregated series from `GET /metrics`.
//!
//! ```text
//! cargo run --features prometheus --example service                       # until killed
//! cargo run --features prometheus --example service -- --seconds 10 --addr 127.0.0.1:9464
//! curl -s http://127.0.0.1:9464/metrics
//! ```
//!
//! It installs telemetry as any app does, with `tracing_telemetry::try_init_with` and the
//! configuration the environment gives (`TELEMETRY_*`, `OTEL_SERVICE_NAME`, ...); the
//! `prometheus` exporter is switched on here so that the example works without them.
//!
//! Options: `--addr HOST:PORT` (else `TELEMETRY_PROMETHEUS_ADDR`, else
//! `127.0.0.1:9464`); `--seconds N` to emit for N seconds (else until killed);
//! `--idle-seconds N` to keep serving, without emitting, for N seconds after that.
//! When it stops emitting it prints one JSON line on stdout with what it emitted,
//! which `tests/prometheus.rs` compares with what Prometheus scraped.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tracing_telemetry::{Config, Destination};

/// The service's work: libraries emit telemetry and configure nothing.
mod work {
    /// A database query; returns how long it took, in milliseconds.
    pub fn query(table: &str, i: u64) -> f64 {
        // Most queries are quick, every tenth is slower: medians land in (10, 25] ms.
        let ms = if i % 10 == 9 { 80.0 } else { 12.5 };
        tracing_telemetry::track_timing("db.query", ms, &[("table", table)]);
        ms
    }

    pub fn sign_up(plan: &str) {
        tracing_telemetry::track_event("user.signup", &[("plan", plan)]);
    }

    pub fn drain(queue: &str, depth: u64) {
        tracing_telemetry::track_metric("queue.depth", depth as f64, &[("queue", queue)]);
    }
}

struct Options {
    addr: SocketAddr,
    seconds: Option<u64>,
    idle_seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut addr = std::env::var("TELEMETRY_PROMETHEUS_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:9464".into());
    let mut seconds = None;
    let mut idle_seconds = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?,
            "--seconds" => seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?),
            "--idle-seconds" => {
                idle_seconds = value()?
                    .parse()
                    .map_err(|e| format!("--idle-seconds: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --addr, --seconds or --idle-seconds)"
                ))
            }
        }
    }
    let addr = addr
        .trim()
        .parse()
        .map_err(|e| format!("invalid address {addr:?}: {e} (expected host:port)"))?;
    Ok(Options {
        addr,
        seconds,
        idle_seconds,
    })
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::FAILURE;
        }
    };
    // What ops configured, with the Prometheus endpoint on at the chosen address.
    let config = match Config::from_env() {
        Ok(config) => config
            .with_enabled(true)
            .with_destinations([Destination::Prometheus(options.addr)]),
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::FAILURE;
        }
    };
    let guard = match tracing_telemetry::try_init_with(&config) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %options.addr, "serving metrics at /metrics");

    let started = Instant::now();
    let until = options.seconds.map(|s| started + Duration::from_secs(s));
    let (mut pro, mut free, mut timings, mut timing_ms, mut depth) =
        (0_u64, 0_u64, 0_u64, 0.0_f64, 0_u64);
    let mut i = 0_u64;
    while until.map_or(true, |until| Instant::now() < until) {
        if i % 3 == 0 {
            work::sign_up("pro");
            pro += 1;
        } else {
            work::sign_up("free");
            free += 1;
        }
        timing_ms += work::query("users", i);
        timings += 1;
        depth = i % 50;
        work::drain("emails", depth);
        i += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        r#"{{"signups_pro":{pro},"signups_free":{free},"timings":{timings},"timing_sum_seconds":{},"queue_depth":{depth}}}"#,
        timing_ms / 1000.0
    );
    tracing::info!(pro, free, timings, "stopped emitting");
    std::thread::sleep(Duration::from_secs(options.idle_seconds));
    drop(guard); // stops serving
    ExitCode::SUCCESS
}
