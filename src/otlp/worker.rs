//! The OTLP export thread: it collects the hand-off, batches log records, sends and
//! retries them, and pushes the metrics; the spool's part is in [`spooling`].

mod spooling;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mapping::{self, RecordIds};
use super::metrics::{metrics_request, own_metrics};
use super::spool::Spool;
use super::stats::Shared;
use super::transport::{Outcome, Transport};
use crate::aggregate::Aggregator;
use crate::fields::Kind;
use crate::pipeline::clock::Calibration;
use crate::pipeline::handoff::{Batching, Pending, Signals};
use crate::record::{Record, Tag};
use crate::report::stderr_line;
use crate::sink::Sink;
use crossbeam_channel::{select, Receiver, Sender};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Records in one request at most (the specification's default batch size for logs).
const BATCH_RECORDS: usize = 512;
/// How long a record waits for others to share its request.
pub(super) const BATCH_DELAY: Duration = Duration::from_millis(1000);
/// Backoff between retries: starts here, doubles, is capped, and is jittered down to
/// half so that many apps do not retry in step.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured as given.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

pub(super) enum Msg {
    /// Send everything queued before this, then answer.
    Flush(Sender<()>),
    /// Send what can be sent before the deadline, give up the rest, answer, stop.
    Shutdown(Instant, Sender<()>),
}

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

pub(super) struct Worker {
    pub(super) rx: Receiver<Msg>,
    /// A thread filled a chunk of its lane; emptied chunks go back to the threads.
    pub(super) signals: Signals,
    pub(super) shared: Arc<Shared>,
    /// Whether to count events into the aggregator (it is this exporter's own).
    pub(super) count_events: bool,
    pub(super) resource: Resource,
    /// Turns the counter values of records timed by it into Unix time.
    pub(super) calibration: Calibration,
    pub(super) scope: InstrumentationScope,
    pub(super) logs: Transport,
    pub(super) metrics: MetricsPush,
    /// Records taken from the emitting threads' lanes, oldest first.
    pub(super) pending: Pending,
    /// When the threads' buffers are next collected and sent without being full.
    pub(super) next_collect: Instant,
    /// When the clock is next checked (see [`Handoff::check_clock`](crate::pipeline::handoff::Handoff::check_clock)).
    pub(super) next_clock_check: Instant,
    /// Set by shutdown: nothing is sent after it.
    pub(super) deadline: Option<Instant>,
    /// Flushes waiting for the queue to empty.
    pub(super) acks: Vec<Sender<()>>,
    pub(super) stop: Option<Sender<()>>,
    /// Whether the collector is failing now (reported once per episode).
    pub(super) failing: bool,
    pub(super) jitter: u64,
    pub(super) ids: RecordIds,
    /// The spool to open when the thread starts, and its byte limit.
    pub(super) spool_config: Option<(PathBuf, u64)>,
    /// Every batch goes through it when it is open (see `send_spooled`).
    pub(super) spool: Option<Spool>,
    /// When the oldest spooled request is tried next, and how many tries failed.
    pub(super) next_attempt: Instant,
    pub(super) attempt: u32,
}

enum Wake {
    Msg(Msg),
    /// A thread filled a chunk.
    Filled,
    Tick,
    Closed,
}

impl Worker {
    pub(super) fn run(mut self) {
        self.open_spool();
        loop {
            if self.stop.is_some() {
                self.finish();
                return;
            }
            let mut due = self.next_collect.min(self.metrics.next);
            if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                due = due.min(self.next_attempt);
            }
            let wake = self.wait_until(due);
            // On every wake, not only on a quiet tick: a busy queue always has a
            // filled chunk waiting, and must not hold back the metrics.
            self.periodic();
            match wake {
                Wake::Closed => {
                    self.finish();
                    return;
                }
                Wake::Msg(msg) => self.take(msg),
                Wake::Filled => {
                    // One look at the lanes serves every chunk filled so far.
                    while self.signals.filled.try_recv().is_ok() {}
                    self.signals.stock_spares();
                }
                Wake::Tick => {
                    let now = Instant::now();
                    if now >= self.next_collect {
                        self.next_collect = now + BATCH_DELAY;
                    } else if !self.spool_due(now) {
                        continue;
                    }
                }
            }
            if self.stop.is_some() {
                continue;
            }
            self.shared.handoff.collect(&mut self.pending);
            if self.spool.is_some() {
                self.spool_pending();
                self.send_spooled();
                self.answer_flushes();
                continue;
            }
            loop {
                while self.has_pending() && self.stop.is_none() {
                    self.send_batch();
                    self.periodic();
                    self.signals.stock_spares();
                    // A long backlog must not hide a shutdown and its deadline.
                    while let Ok(msg) = self.rx.try_recv() {
                        self.take(msg);
                    }
                }
                // A flush asked while sending covers what the threads added since the
                // buffers were last taken: take them again before answering it.
                if self.acks.is_empty() || self.stop.is_some() {
                    break;
                }
                self.shared.handoff.collect(&mut self.pending);
                if !self.has_pending() {
                    break;
                }
            }
            self.answer_flushes();
        }
    }

    /// What is due by the clock whatever else is going on: the metrics push, and the
    /// check that the kernel still keeps time with the counter.
    fn periodic(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let now = Instant::now();
        if now >= self.metrics.next {
            self.metrics.next = now + self.metrics.interval;
            self.push_metrics();
        }
        if now >= self.next_clock_check {
            self.next_clock_check = now + BATCH_DELAY;
            self.shared.handoff.check_clock();
        }
    }

    /// The next message, a full buffer, or `Tick` at `until`.
    fn wait_until(&self, until: Instant) -> Wake {
        let timeout = until.saturating_duration_since(Instant::now());
        select! {
            recv(self.rx) -> msg => match msg {
                Ok(msg) => Wake::Msg(msg),
                Err(_) => Wake::Closed,
            },
            recv(self.signals.filled) -> filled => match filled {
                Ok(()) => Wake::Filled,
                Err(_) => Wake::Closed,
            },
            default(timeout) => Wake::Tick,
        }
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(ack) => self.acks.push(ack),
            Msg::Shutdown(deadline, ack) => {
                self.deadline = Some(deadline);
                self.stop = Some(ack);
            }
        }
    }

    fn answer_flushes(&mut self) {
        if !self.has_pending() && self.spool.as_ref().map_or(true, Spool::is_empty) {
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
        }
    }

    /// Shutdown: everything already queued, until the deadline; then the rest is
    /// counted as undelivered.
    fn finish(&mut self) {
        self.shared.handoff.collect(&mut self.pending);
        if self.spool.is_some() {
            self.spool_pending();
            self.send_spooled_before_deadline();
            // Records appended while shutdown began are spooled too.
            self.shared.handoff.collect(&mut self.pending);
            self.spool_pending();
            self.sync_spool_counts();
        }
        while self.has_pending() && !self.past_deadline() {
            self.send_batch();
        }
        // A record appended while shutdown began is given up too, and counted.
        self.shared.handoff.collect(&mut self.pending);
        let left = self.abandon_pending();
        self.shared.undelivered.fetch_add(left, Ordering::Relaxed);
        // The last values, so that a short-lived app's metrics arrive too.
        if !self.past_deadline() {
            self.push_metrics();
        }
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
        if let Some(ack) = self.stop.take() {
            let _ = ack.send(());
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Drops every pending record; returns how many there were. Walks the length
    /// prefixes only, so that giving up a large queue at shutdown takes no time.
    fn abandon_pending(&mut self) -> u64 {
        let taking = self.pending.abandon();
        self.shared.handoff.release(taking.bytes);
        taking.records
    }

    /// Sends the oldest batch, retrying transient failures until it is delivered,
    /// refused, or shutdown's deadline passes.
    fn send_batch(&mut self) {
        let Some((count, bytes, body)) = self.encode_batch() else {
            return;
        };
        let outcome = self.deliver(&body);
        self.shared.handoff.release(bytes);
        self.settle(count, outcome);
    }

    /// The oldest pending records, up to a batch, as one request body: its log
    /// records, the queue bytes they held, the body.
    fn encode_batch(&mut self) -> Option<(u64, usize, Vec<u8>)> {
        let converter = self.calibration.converter();
        // Read with the counter, so that no record's time is after it.
        let observed = converter.now_unix_nanos();
        let mut records = Vec::with_capacity(BATCH_RECORDS);
        let (aggregator, ids) = (&self.metrics.aggregator, &mut self.ids);
        let count_events = self.count_events;
        let taking = self
            .pending
            .next_batch(&self.signals, BATCH_RECORDS, |entry| {
                if let Some(mut event) = entry.record().filter(|e| e.kind == Kind::Event) {
                    if event.time_in_ticks {
                        event.time_unix_nano = converter.unix_nanos(event.time_unix_nano);
                        event.time_in_ticks = false;
                    }
                    if count_events {
                        let tags: Vec<Tag<'_>> =
                            event.tags.iter().map(|&(k, v)| Tag::new(k, v)).collect();
                        aggregator.record(&Record::new(Kind::Event, event.name, &tags));
                    }
                    records.push(mapping::log_record(&event, observed, ids.next_id()));
                }
                Batching::More
            })?;
        let count = records.len() as u64;
        let body = self
            .logs
            .body(&mapping::logs_request(&self.resource, &self.scope, records));
        Some((count, taking.bytes, body))
    }

    /// Counts what came of a request of `count` records.
    fn settle(&mut self, count: u64, outcome: Option<Outcome>) {
        match outcome {
            Some(Outcome::Accepted { rejected, message }) => {
                let rejected = rejected.min(count);
                self.shared
                    .exported
                    .fetch_add(count - rejected, Ordering::Relaxed);
                if rejected > 0 {
                    self.reject(rejected, &format!("partial success: {message}"));
                }
            }
            Some(Outcome::Permanent { reason }) => self.reject(count, &reason),
            Some(Outcome::Redirected { reason }) => self.redirected(count, &reason),
            // Shutdown's time ran out while retrying.
            Some(Outcome::Retry { .. }) | None => {
                self.shared.undelivered.fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    /// Pushes every series once; a failure is counted and reported once, not retried
    /// (the values are cumulative: the next push carries them).
    fn push_metrics(&mut self) {
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
        let mut timeout = self.metrics.transport.timeout();
        if let Some(deadline) = self.deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
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
                if !self.shared.reported_metrics.swap(true, Ordering::Relaxed) {
                    stderr_line(format_args!(
                        "cannot push metrics to the otlp collector at {}: {reason} (the next push carries the \
                         cumulative values; further failures are counted, not printed)",
                        self.metrics.transport.url()
                    ));
                }
            }
        }
    }

    fn reject(&self, count: u64, reason: &str) {
        self.shared.rejected.fetch_add(count, Ordering::Relaxed);
        if !self.shared.reported_rejected.swap(true, Ordering::Relaxed) {
            stderr_line(format_args!(
                "the otlp collector at {} rejected {count} records ({reason}); not retried, counted as rejected \
                 (further rejections are counted, not printed)",
                self.logs.url()
            ));
        }
    }

    /// Counts records answered with a redirect as not delivered; says so once.
    fn redirected(&self, count: u64, reason: &str) {
        self.shared.undelivered.fetch_add(count, Ordering::Relaxed);
        self.shared.redirected.fetch_add(count, Ordering::Relaxed);
        if !self
            .shared
            .reported_redirected
            .swap(true, Ordering::Relaxed)
        {
            stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason}; {count} records not delivered, not retried \
                 (further ones are counted, not printed)",
                self.logs.url()
            ));
        }
    }

    /// Posts `body` until an answer that is not "retry", or shutdown's deadline.
    fn deliver(&mut self, body: &[u8]) -> Option<Outcome> {
        let mut attempt = 0u32;
        loop {
            let mut timeout = self.logs.timeout();
            if let Some(deadline) = self.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                timeout = timeout.min(left);
            }
            let outcome = self.logs.post(body, timeout);
            let Outcome::Retry {
                reason,
                retry_after,
            } = &outcome
            else {
                self.report_reachable();
                return Some(outcome);
            };
            self.report_failing(reason);
            let wait = match retry_after {
                Some(after) => (*after).min(RETRY_AFTER_MAX),
                None => self.backoff(attempt),
            };
            attempt = attempt.saturating_add(1);
            if self.deadline.is_some_and(|d| Instant::now() + wait >= d) {
                // No time for another try after this wait.
                return Some(outcome);
            }
            self.shared.retries.fetch_add(1, Ordering::Relaxed);
            self.wait(wait);
        }
    }

    /// Waits before a retry, answering messages meanwhile (records keep collecting in
    /// the threads' buffers, within the byte bound). A shutdown cuts the wait short:
    /// one more try, with what time is left.
    fn wait(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match self.wait_until(until) {
                Wake::Msg(msg) => {
                    let was_stopping = self.stop.is_some();
                    self.take(msg);
                    if !was_stopping && self.stop.is_some() {
                        return;
                    }
                }
                Wake::Filled => {}
                Wake::Tick => return,
                Wake::Closed => {
                    thread::sleep(until.saturating_duration_since(Instant::now()));
                    return;
                }
            }
        }
    }

    fn report_reachable(&mut self) {
        if self.failing {
            self.failing = false;
            stderr_line(format_args!(
                "the otlp collector at {} is reachable again; queued records are being sent",
                self.logs.url()
            ));
        }
    }

    fn report_failing(&mut self, reason: &str) {
        if self.failing {
            return;
        }
        self.failing = true;
        match &self.spool {
            Some(spool) => stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason} (records are kept in the spool at {}, up \
                 to its limit, and are retried)",
                self.logs.url(),
                spool.dir().display()
            )),
            None => stderr_line(format_args!(
                "cannot deliver to the otlp collector at {}: {reason} (records stay queued, up to the queue's \
                 bound, and are retried)",
                self.logs.url()
            )),
        }
    }
    /// 250 ms doubling to 5 s, each drawn at random from its upper half.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let full = BACKOFF_START
            .saturating_mul(1u32 << attempt.min(16))
            .min(BACKOFF_MAX);
        // xorshift64: enough to spread retries; not for anything secret.
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let half = full / 2;
        half + half.mul_f64((self.jitter % 1024) as f64 / 1024.0)
    }
}

pub(super) fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) ^ u64::from(std::process::id()) << 32) | 1
}
