use crate::record::Record;
use crate::sink::Sink;

/// A sink that discards every record: the cost of the layer itself, and the sink for
/// `TELEMETRY_EXPORTER=none`.
///
/// ```
/// use tracing_telemetry::{Kind, NoopSink, Record, Sink};
///
/// NoopSink.record(&Record::new(Kind::Event, "dropped", &[]));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl Sink for NoopSink {
    #[inline]
    fn record(&self, _record: &Record<'_>) {}
}
