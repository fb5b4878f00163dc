//! Descriptions given once, by name: [`describe`], and the `metrics` facade's
//! `describe_*!`.
//!
//! Kept for the whole process, whether telemetry is on or off and whichever
//! subscriber is installed: a library describes its metrics once (often before the
//! app has called `try_init`), and the exporters read the descriptions when they
//! write a series, not on the emitting path.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// At most this many names are described; further names are ignored, so a
/// description keyed by a runtime string cannot grow memory without bound.
const MAX_DESCRIBED: usize = 10_000;

/// What [`describe`] says about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    not(feature = "aggregate"),
    allow(dead_code, reason = "read by the aggregation's exporters")
)]
pub(crate) struct Described {
    pub(crate) unit: Option<&'static str>,
    pub(crate) description: Option<Arc<str>>,
}

fn table() -> &'static RwLock<HashMap<Box<str>, Described>> {
    static TABLE: OnceLock<RwLock<HashMap<Box<str>, Described>>> = OnceLock::new();
    TABLE.get_or_init(RwLock::default)
}

/// Describes the metric `name` once: its unit (the OpenTelemetry spelling, `"By"`,
/// `"s"`, `"{item}"`) and what it measures.
///
/// For names that the call sites give no unit or description (the function forms,
/// [`track_counter`](crate::track_counter) and the rest, or `track_metric`): the
/// exporters use what is described here, Prometheus in its `# HELP` and `# UNIT`
/// lines and in the name's unit suffix, OTLP in the metric's description and unit.
/// What a call site declares itself wins. A later description of the same name
/// replaces an earlier one; an empty `description` leaves it out. Works whether
/// telemetry is on or off, before or after `try_init`, and costs a lock and an
/// allocation: call it once, not per value.
///
/// ```
/// tracing_telemetry::describe("bytes.sent", Some("By"), "bytes written to peers");
/// tracing_telemetry::track_counter("bytes.sent", 512, &[("peer", "a")]);
/// ```
pub fn describe(name: &str, unit: Option<&'static str>, description: &str) {
    let described = Described {
        unit: unit.filter(|u| !u.is_empty()),
        description: (!description.is_empty()).then(|| Arc::from(description)),
    };
    let mut table = table().write().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = table.get_mut(name) {
        *known = described;
    } else if table.len() < MAX_DESCRIBED {
        table.insert(name.into(), described);
    }
}

/// Describes `name` as the `metrics` facade's `describe_*!` do: a unit, when given,
/// replaces the one described before; when not, that one is kept.
#[cfg(feature = "metrics")]
pub(crate) fn describe_parts(name: &str, unit: Option<&'static str>, description: &str) {
    let unit = unit.or_else(|| described(name).and_then(|d| d.unit));
    describe(name, unit, description);
}

/// What was described for `name`, if anything.
#[cfg_attr(
    not(feature = "aggregate"),
    allow(dead_code, reason = "read by the aggregation's exporters")
)]
pub(crate) fn described(name: &str) -> Option<Described> {
    table()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned()
}
