//! Instruction counts per track call, for `valgrind --tool=callgrind`: counts are
//! exact and repeatable on a noisy machine, where timings of a nanosecond are not.
//!
//! `benches/count-instructions.sh` runs every scenario twice (0 and N calls) under
//! callgrind and prints the difference per call. By hand:
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind target/release/deps/instructions-<hash> off_app/function 100000
//! ```
//!
//! Run by `cargo bench` with no scenario, it only lists them.

use std::hint::black_box;

use tracing::Level;
use tracing_subscriber::prelude::*;

mod support;

use support::TrivialLayer;
use tracing_telemetry::{Config, Guard, JsonLinesSink, NoopSink, TelemetryLayer};

const TAGS: [(&str, &str); 4] = [
    ("queue", "emails"),
    ("region", "eu"),
    ("shard", "7"),
    ("tier", "gold"),
];

fn disabled_callsite() {
    tracing::event!(target: "app", Level::TRACE, value = black_box(42.0))
}

fn function() {
    tracing_telemetry::track_metric("queue.depth", 42.0, &TAGS)
}

fn function_1_tag() {
    tracing_telemetry::track_metric("queue.depth", 42.0, &[("queue", "emails")])
}

fn timing_1_tag() {
    tracing_telemetry::track_timing("db.query", 12.5, &[("table", "users")])
}

fn event_1_tag() {
    tracing_telemetry::track_event("user.signup", &[("plan", "pro")])
}

/// A counter a library declares with its unit, incremented by N.
fn counter_1_tag() {
    const RECEIVED: tracing_telemetry::Counter =
        tracing_telemetry::Counter::new("net.received").with_unit("By");
    RECEIVED.add(1024, &[("peer", "a")])
}

fn macro_form() {
    tracing_telemetry::track_metric!(
        "queue.depth",
        42.0,
        queue = "emails",
        region = "eu",
        shard = 7,
        warm = true
    )
}

fn fmt_json_event() {
    tracing::event!(target: "telemetry", Level::INFO, name = "queue.depth", value = black_box(42.0), queue = "emails")
}

/// `subscriber/call`: what is installed, and what is called.
const SCENARIOS: &[&str] = &[
    "off_none/disabled_callsite",
    "off_none/function",
    "off_none/macro",
    "off_none/counter_1_tag",
    "off_app/disabled_callsite",
    "off_app/function",
    "off_app/macro",
    "off_app/counter_1_tag",
    "trivial/function",
    "trivial/macro",
    "noop/function",
    "noop/macro",
    "app_noop/function",
    "app_noop/macro",
    "noop/function_1_tag",
    "noop/timing_1_tag",
    "json/function_1_tag",
    "fmt_json/event",
    // The aggregated path (`--features aggregate`): gauge, histogram and counter
    // updates of a series that already exists.
    #[cfg(feature = "aggregate")]
    "aggregate/function_1_tag",
    #[cfg(feature = "aggregate")]
    "aggregate/timing_1_tag",
    #[cfg(feature = "aggregate")]
    "aggregate/event_1_tag",
    #[cfg(feature = "aggregate")]
    "aggregate/counter_1_tag",
    // The same through what `try_init` builds (`--features prometheus`).
    #[cfg(feature = "prometheus")]
    "app_prometheus/function_1_tag",
    #[cfg(feature = "prometheus")]
    "app_prometheus/timing_1_tag",
    #[cfg(feature = "prometheus")]
    "app_prometheus/event_1_tag",
];

/// What `try_init_with(config)` installs, as the global default; the guard keeps its
/// export running.
fn app(config: &Config) -> Guard {
    let (subscriber, guard) =
        tracing_telemetry::__private::app_subscriber(config).expect("the app's subscriber");
    tracing::subscriber::set_global_default(subscriber).expect("install");
    guard
}

fn install(subscriber: &str) -> Option<Guard> {
    match subscriber {
        "off_none" => {}
        // What `try_init` builds with telemetry off.
        "off_app" => return Some(app(&Config::new())),
        "trivial" => tracing_subscriber::registry().with(TrivialLayer).init(),
        "noop" => tracing_subscriber::registry()
            .with(TelemetryLayer::new(NoopSink).with_telemetry_filter())
            .init(),
        // What `try_init` builds with telemetry on and `TELEMETRY_EXPORTER=none`.
        "app_noop" => return Some(app(&Config::new().with_enabled(true).with_destinations([]))),
        "json" => tracing_subscriber::registry()
            .with(TelemetryLayer::new(JsonLinesSink::new(std::io::sink())).with_telemetry_filter())
            .init(),
        "fmt_json" => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::sink),
            )
            .init(),
        #[cfg(feature = "aggregate")]
        "aggregate" => tracing_subscriber::registry()
            .with(
                TelemetryLayer::new(tracing_telemetry::aggregate::Aggregator::new())
                    .with_telemetry_filter(),
            )
            .init(),
        // What `try_init` builds with `TELEMETRY_EXPORTER=prometheus` (on a free
        // loopback port).
        #[cfg(feature = "prometheus")]
        "app_prometheus" => {
            return Some(app(&Config::new().with_enabled(true).with_destinations([
                tracing_telemetry::Destination::Prometheus(([127, 0, 0, 1], 0).into()),
            ])))
        }
        other => panic!("unknown subscriber {other:?}"),
    }
    None
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(scenario), Some(calls)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        println!("usage: instructions SCENARIO CALLS, under valgrind --tool=callgrind; scenarios:");
        for s in SCENARIOS {
            println!("  {s}");
        }
        return;
    };
    let (subscriber, call) = scenario.split_once('/').expect("SUBSCRIBER/CALL");
    let _guard = install(subscriber);
    let f: fn() = match call {
        "disabled_callsite" => disabled_callsite,
        "function" => function,
        "function_1_tag" => function_1_tag,
        "timing_1_tag" => timing_1_tag,
        "event_1_tag" => event_1_tag,
        "counter_1_tag" => counter_1_tag,
        "macro" => macro_form,
        "event" => fmt_json_event,
        other => panic!("unknown call {other:?}"),
    };
    // Chosen once, called through a pointer: every scenario pays the same loop.
    let f = black_box(f);
    for _ in 0..calls {
        f();
    }
}
