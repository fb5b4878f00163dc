//! What the OTLP exporter adds to the [pipeline](crate::pipeline): log records
//! encoded into an OTLP request and posted to the collector, the collector's answers
//! in the pipeline's terms, the messages that say them, and the metrics push as the
//! worker's tick. The spool, its durable stage, is in [`stage`](super::spool::stage).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::mapping::{self, RecordIds};
use super::metrics::{metrics_request, own_metrics};
use super::spool::stage::SpoolStage;
use super::stats::Shared;
use super::transport::{Outcome, Transport};
use crate::aggregate::Aggregator;
use crate::fields::Kind;
use crate::pipeline::handoff::Captured;
use crate::pipeline::{Deliver, Delivery, Durable, Notice};
use crate::record::{Record, Tag};
use crate::report::stderr_line;
use crate::sink::Sink;

pub(super) struct MetricsPush {
    pub(super) transport: Transport,
    pub(super) aggregator: Aggregator,
    /// Each destination's counts, pushed with the series (an app's `try_init`).
    pub(super) health: Option<crate::pipeline::DestinationsFn>,
    /// When the exporter started: the start of the crate's own cumulative sums.
    pub(super) started: SystemTime,
    pub(super) interval: Duration,
    pub(super) next: Instant,
}

/// The OTLP log records, as a destination of the pipeline.
pub(super) struct LogRecords {
    pub(super) shared: Arc<Shared>,
    /// Whether to count events into the aggregator (it is this exporter's own).
    pub(super) count_events: bool,
    pub(super) resource: Resource,
    pub(super) scope: InstrumentationScope,
    pub(super) logs: Transport,
    pub(super) metrics: MetricsPush,
    pub(super) ids: RecordIds,
    /// The batch being encoded, and when it was taken.
    pub(super) records: Vec<LogRecord>,
    pub(super) observed: u64,
    /// The spool to open when the worker starts, and its byte limit; then the
    /// directory it opened, for messages.
    pub(super) spool_config: Option<(PathBuf, u64)>,
    pub(super) spool_dir: Option<PathBuf>,
    pub(super) reported_rejected: bool,
    pub(super) reported_redirected: bool,
    pub(super) reported_metrics: bool,
}

impl Deliver for LogRecords {
    fn begin(&mut self, now_unix_nanos: u64) {
        // Read with the counter, so that no record's time is after it.
        self.observed = now_unix_nanos;
    }

    fn encode(&mut self, record: &Captured<'_>, _body: &mut Vec<u8>) {
        if record.kind != Kind::Event {
            return;
        }
        if self.count_events {
            let tags: Vec<Tag<'_>> = record.tags.iter().map(|&(k, v)| Tag::new(k, v)).collect();
            self.metrics
                .aggregator
                .record(&Record::new(Kind::Event, record.name, &tags));
        }
        self.records.push(mapping::log_record(
            record,
            self.observed,
            self.ids.next_id(),
        ));
    }

    fn seal(&mut self, body: &mut Vec<u8>) -> bool {
        let records = std::mem::take(&mut self.records);
        *body = self
            .logs
            .body(&mapping::logs_request(&self.resource, &self.scope, records));
        self.logs.gzip()
    }

    fn deliver(
        &mut self,
        body: &[u8],
        compressed: bool,
        _records: u64,
        limit: Option<Duration>,
    ) -> Delivery {
        let timeout = limit.map_or(self.logs.timeout(), |left| left.min(self.logs.timeout()));
        match self.logs.post_encoded(body, compressed, timeout) {
            Outcome::Accepted {
                rejected: 0,
                message: _,
            } => Delivery::Delivered,
            Outcome::Accepted { rejected, message } => Delivery::Partial {
                refused: rejected,
                reason: message,
            },
            Outcome::Retry {
                reason,
                retry_after,
            } => Delivery::Retry {
                reason,
                after: retry_after,
            },
            Outcome::Permanent { reason } => Delivery::Refused { reason },
            Outcome::Redirected { reason } => Delivery::Diverted { reason },
        }
    }

    fn notice(&mut self, notice: Notice<'_>) {
        let url = self.logs.url();
        match notice {
            Notice::Failing { reason } => match &self.spool_dir {
                Some(dir) => stderr_line(format_args!(
                    "cannot deliver to the otlp collector at {url}: {reason} (records are kept in the spool at {}, \
                     up to its limit, and are retried)",
                    dir.display()
                )),
                None => stderr_line(format_args!(
                    "cannot deliver to the otlp collector at {url}: {reason} (records stay queued, up to the \
                     queue's bound, and are retried)"
                )),
            },
            Notice::Reachable => stderr_line(format_args!(
                "the otlp collector at {url} is reachable again; queued records are being sent"
            )),
            Notice::Refused { records, reason } => {
                if !std::mem::replace(&mut self.reported_rejected, true) {
                    stderr_line(format_args!(
                        "the otlp collector at {url} rejected {records} records ({reason}); not retried, counted \
                         as rejected (further rejections are counted, not printed)"
                    ));
                }
            }
            Notice::Diverted { records, reason } => {
                if !std::mem::replace(&mut self.reported_redirected, true) {
                    stderr_line(format_args!(
                        "cannot deliver to the otlp collector at {url}: {reason}; {records} records not \
                         delivered, not retried (further ones are counted, not printed)"
                    ));
                }
            }
        }
    }

    fn due(&self) -> Option<Instant> {
        Some(self.metrics.next)
    }

    fn tick(&mut self, limit: Option<Duration>) {
        self.metrics.next = Instant::now() + self.metrics.interval;
        self.push_metrics(limit);
    }

    fn durable(&mut self) -> Option<Box<dyn Durable>> {
        let (dir, limit) = self.spool_config.take()?;
        let stage = SpoolStage::open(dir, limit, Arc::clone(&self.shared))?;
        self.spool_dir = Some(stage.dir().to_path_buf());
        Some(Box::new(stage))
    }
}

impl LogRecords {
    /// Pushes every series once; a failure is counted and reported once, not retried
    /// (the values are cumulative: the next push carries them).
    fn push_metrics(&mut self, limit: Option<Duration>) {
        let series = self.metrics.aggregator.snapshot();
        let now = SystemTime::now();
        let destinations = self
            .metrics
            .health
            .as_ref()
            .map(|read| read())
            .unwrap_or_default();
        let own = own_metrics(
            &self.metrics.aggregator,
            &destinations,
            self.metrics.started,
            now,
        );
        let Some(request) = metrics_request(&self.resource, &self.scope, &series, own, now) else {
            return;
        };
        let body = self.metrics.transport.body(&request);
        let timeout = limit.map_or(self.metrics.transport.timeout(), |left| {
            left.min(self.metrics.transport.timeout())
        });
        let problem = match self.metrics.transport.post(&body, timeout) {
            Outcome::Accepted { rejected: 0, .. } => None,
            Outcome::Accepted { rejected, message } => {
                Some(format!("{rejected} data points rejected: {message}"))
            }
            Outcome::Retry { reason, .. }
            | Outcome::Permanent { reason }
            | Outcome::Redirected { reason } => Some(reason),
        };
        match problem {
            None => {
                self.shared.metric_pushes.fetch_add(1, Ordering::Relaxed);
            }
            Some(reason) => {
                self.shared
                    .metric_push_failures
                    .fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.reported_metrics, true) {
                    stderr_line(format_args!(
                        "cannot push metrics to the otlp collector at {}: {reason} (the next push carries the \
                         cumulative values; further failures are counted, not printed)",
                        self.metrics.transport.url()
                    ));
                }
            }
        }
    }
}
