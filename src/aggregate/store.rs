//! The series store: one series per (kind, name, label set), updated on the emitting
//! thread without a shared lock or a shared cache line.
//!
//! Each thread keeps its own map from a record's identity to the series it names and
//! to that thread's own cells of the series. A known series is updated through those
//! cells with plain atomic loads and stores (the thread is their only writer), so
//! threads updating the same series never write the same cache line. A scrape adds
//! up every thread's cells. The registry behind a mutex is touched only the first
//! time a thread meets a series, and by a scrape just long enough to copy the list
//! of series.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use smallvec::SmallVec;
use thread_local::ThreadLocal;

use super::key::{hash_record, BuildIdentity, OwnedKey};
use super::snapshot::{SeriesData, SeriesSnapshot};
use super::view::{Aggregation, Op};
use crate::fields::{Instrument, Kind};
use crate::record::{Record, Tag};
use crate::report::stderr_line;
use crate::track::describe::described;
use crate::track::MetricMeta;

/// The label that marks the one series per name that takes every label set beyond
/// the limit.
const OVERFLOW_LABEL: (&str, &str) = ("otel_metric_overflow", "true");

/// A value on a cache line of its own, so that two threads' cells never share one.
#[repr(align(128))]
#[derive(Debug)]
struct Padded<T>(T);

/// One thread's share of a series (or the shared share, for threads without one).
#[derive(Debug)]
struct Cells {
    count: AtomicU64,
    /// f64 bits.
    sum: AtomicU64,
    /// One per bound, plus the `+Inf` bucket; none unless a histogram.
    buckets: Buckets,
}

/// Bucket counters in whole, aligned cache lines of their own, so that no other
/// thread's data can share a line with them.
#[derive(Debug)]
struct Buckets {
    lines: Box<[Line]>,
    len: usize,
}

const PER_LINE: usize = 16;

#[repr(align(128))]
#[derive(Debug)]
struct Line([AtomicU64; PER_LINE]);

impl Buckets {
    fn new(len: usize) -> Self {
        let lines = (0..len.div_ceil(PER_LINE))
            .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        Buckets { lines, len }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&AtomicU64> {
        if i < self.len {
            self.lines
                .get(i / PER_LINE)
                .map(|line| &line.0[i % PER_LINE])
        } else {
            None
        }
    }

    fn iter(&self) -> impl Iterator<Item = &AtomicU64> {
        self.lines
            .iter()
            .flat_map(|line| line.0.iter())
            .take(self.len)
    }
}

impl Cells {
    fn new(op: &Op) -> Self {
        let buckets = match op {
            Op::Histogram(bounds) => Buckets::new(bounds.len() + 1),
            _ => Buckets::new(0),
        };
        Cells {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0.0_f64.to_bits()),
            buckets,
        }
    }

    /// Adds `value` with read-modify-write atomics: for cells any thread may update.
    #[inline]
    fn add_shared(&self, op: &Op, value: f64) {
        let add = |cell: &AtomicU64| {
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        };
        match op {
            Op::Count => {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
            Op::Sum | Op::UpDownSum => add(&self.sum),
            Op::Histogram(bounds) => {
                if let Some(bucket) = self.buckets.get(bucket_index(bounds, value)) {
                    bucket.fetch_add(1, Ordering::Relaxed);
                    add(&self.sum);
                }
            }
            Op::LastValue => {}
        }
    }
}

/// The bucket of `value`: the first whose upper bound is at least `value`, else the
/// `+Inf` bucket. A linear scan: bounds are few and most values land in the first
/// buckets, where it stops early, predictably.
#[inline]
fn bucket_index(bounds: &[f64], value: f64) -> usize {
    bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len())
}

/// One series: its identity, its aggregation, and every thread's cells.
#[derive(Debug)]
pub(crate) struct Series {
    key: OwnedKey,
    overflow: bool,
    op: Op,
    start: SystemTime,
    /// What the call site that made the series declared.
    instrument: Option<Instrument>,
    unit: Option<&'static str>,
    description: Option<&'static str>,
    /// The last value (f64 bits), for [`Op::LastValue`].
    last: Padded<AtomicU64>,
    /// The shared cells first, then one per thread that has met the series.
    cells: Mutex<Vec<Arc<Padded<Cells>>>>,
}

impl Series {
    fn new(key: OwnedKey, overflow: bool, op: Op, meta: MetricMeta) -> Self {
        let shared = Arc::new(Padded(Cells::new(&op)));
        Series {
            key,
            overflow,
            start: SystemTime::now(),
            instrument: meta.instrument,
            unit: meta.unit,
            description: meta.description,
            last: Padded(AtomicU64::new(0.0_f64.to_bits())),
            cells: Mutex::new(vec![shared]),
            op,
        }
    }

    fn cells(&self) -> MutexGuard<'_, Vec<Arc<Padded<Cells>>>> {
        self.cells.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `value` is one this series takes (so that it is counted, not dropped).
    #[inline]
    fn accepts(&self, value: f64) -> bool {
        match self.op {
            Op::Count | Op::LastValue => true,
            Op::Sum => value.is_finite() && value >= 0.0,
            Op::UpDownSum => value.is_finite(),
            Op::Histogram(_) => !value.is_nan(),
        }
    }

    fn add_shared(&self, value: f64) {
        if let Op::LastValue = self.op {
            self.last.0.store(value.to_bits(), Ordering::Relaxed);
        } else if let Some(shared) = self.cells().first() {
            shared.0.add_shared(&self.op, value);
        }
    }

    /// Every thread's sum added up.
    fn total(&self) -> f64 {
        self.cells()
            .iter()
            .map(|c| f64::from_bits(c.0.sum.load(Ordering::Relaxed)))
            .sum()
    }

    /// A copy of the series' current value: every thread's cells added up.
    fn snapshot(&self) -> SeriesSnapshot {
        let data = match &self.op {
            Op::LastValue => SeriesData::Gauge(f64::from_bits(self.last.0.load(Ordering::Relaxed))),
            Op::Count => SeriesData::Counter(
                self.cells()
                    .iter()
                    .map(|c| c.0.count.load(Ordering::Relaxed))
                    .fold(0, u64::wrapping_add),
            ),
            Op::Sum => SeriesData::Sum(self.total()),
            Op::UpDownSum => SeriesData::UpDownSum(self.total()),
            Op::Histogram(bounds) => {
                let mut bucket_counts = vec![0_u64; bounds.len() + 1];
                let mut sum = 0.0;
                for cells in self.cells().iter() {
                    for (total, cell) in bucket_counts.iter_mut().zip(cells.0.buckets.iter()) {
                        *total = total.wrapping_add(cell.load(Ordering::Relaxed));
                    }
                    sum += f64::from_bits(cells.0.sum.load(Ordering::Relaxed));
                }
                SeriesData::Histogram {
                    count: bucket_counts.iter().fold(0, |a, b| a.wrapping_add(*b)),
                    sum,
                    bounds: bounds.to_vec(),
                    bucket_counts,
                }
            }
        };
        let described = (self.key.kind == Kind::Metric)
            .then(|| described(&self.key.name))
            .flatten();
        let (described_unit, described_text) = match described {
            Some(d) => (d.unit, d.description),
            None => (None, None),
        };
        SeriesSnapshot {
            instrument: self.instrument,
            unit: self.unit.or(described_unit),
            description: self.description.map(Arc::from).or(described_text),
            kind: self.key.kind,
            name: self.key.name.to_string(),
            labels: self
                .key
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overflow: self.overflow,
            start_time: self.start,
            data,
        }
    }
}

/// One series, for updates that skip the lookup by name and labels: the `metrics`
/// facade's kept handles. Each thread updates its own cells of the series, the same
/// ones its records update (found once per thread, after a first record), with plain
/// loads and stores, as [`Store::record`] does for a known series.
#[cfg(feature = "metrics")]
pub(crate) struct SeriesHandle {
    /// Weak: a handle outlives its subscriber, and must not keep the store alive.
    store: std::sync::Weak<Store>,
    series: Arc<Series>,
    /// Each thread's cells of the series, once found.
    cells: ThreadLocal<Arc<Padded<Cells>>>,
}

#[cfg(feature = "metrics")]
impl SeriesHandle {
    /// Adds `value` through this thread's cells; `false` if this thread's are not
    /// known yet (the update is then a record, and [`learn_thread`](Self::learn_thread)
    /// finds them).
    #[inline]
    pub(crate) fn add(&self, value: f64) -> bool {
        match self.cells.get() {
            Some(cells) => {
                add_to(&self.series, &cells.0, value);
                true
            }
            None => false,
        }
    }

    /// After a record of the series on this thread: finds this thread's cells of it.
    #[cold]
    pub(crate) fn learn_thread(&self, record: &Record<'_>) {
        if self.cells.get().is_some() {
            return;
        }
        let Some(store) = self.store.upgrade() else {
            return;
        };
        if let Some(cells) = store.local_cells(&self.series, record) {
            let _ = self.cells.get_or(|| cells);
        }
    }
}

/// A thread's way to one series: the identity as that thread gave it, and its cells.
#[derive(Debug)]
struct LocalEntry {
    key: OwnedKey,
    series: Arc<Series>,
    cells: Arc<Padded<Cells>>,
}

impl LocalEntry {
    /// One match on the aggregation: what a known series costs per record.
    #[inline]
    fn add(&self, value: f64) {
        add_to(&self.series, &self.cells.0, value);
    }
}

/// Adds `value` to `series` through `cells`, which only the calling thread updates.
#[inline]
fn add_to(series: &Series, cells: &Cells, value: f64) {
    match &series.op {
        Op::LastValue => series.last.0.store(value.to_bits(), Ordering::Relaxed),
        Op::Count => bump(&cells.count),
        Op::Sum => {
            if value.is_finite() && value >= 0.0 {
                add(&cells.sum, value);
            }
        }
        Op::UpDownSum => {
            if value.is_finite() {
                add(&cells.sum, value);
            }
        }
        Op::Histogram(bounds) => {
            // NaN is in no bucket: `get` finds none past the last.
            let i = if value.is_nan() {
                usize::MAX
            } else {
                bucket_index(bounds, value)
            };
            if let Some(bucket) = cells.buckets.get(i) {
                bump(bucket);
                add(&cells.sum, value);
            }
        }
    }
}

/// Adds one with a plain load and store: only for cells whose one writer is the
/// calling thread.
#[inline]
fn bump(cell: &AtomicU64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Adds `v` to an f64 cell with a plain load and store (one writer, as [`bump`]).
#[inline]
fn add(cell: &AtomicU64, v: f64) {
    let sum = f64::from_bits(cell.load(Ordering::Relaxed)) + v;
    cell.store(sum.to_bits(), Ordering::Relaxed);
}

/// Slots in a thread's cache of recently used series.
const SLOTS: usize = 64;

/// A thread's series: every entry it has met, found by hash; and in front of that a
/// small direct-mapped cache indexed by where the record's name and first tag value
/// live in memory. That address is only a hint (a runtime string may be reused for
/// other text): a cached entry is used only when it compares equal, in place. For
/// a call site with literal strings, a hit skips hashing altogether.
#[derive(Debug, Default)]
struct LocalMap {
    entries: Vec<LocalEntry>,
    by_hash: HashMap<u64, SmallVec<[u32; 1]>, BuildIdentity>,
    /// Index + 1 into `entries`; 0 is empty.
    slots: Slots,
}

#[derive(Debug)]
struct Slots([u32; SLOTS]);

impl Default for Slots {
    fn default() -> Self {
        Slots([0; SLOTS])
    }
}

#[inline]
fn slot_of(record: &Record<'_>) -> usize {
    let name = record.name().as_ptr() as usize;
    let value = match record.pairs() {
        Some([(_, value), ..]) => value.as_ptr() as usize,
        _ => 0,
    };
    ((name >> 3) ^ (value >> 2) ^ (value >> 9)) % SLOTS
}

#[derive(Debug, Default)]
struct Registry {
    by_key: HashMap<OwnedKey, Arc<Series>>,
    per_name: HashMap<(Kind, Box<str>), NameState>,
    all: Vec<Arc<Series>>,
}

#[derive(Debug, Default)]
struct NameState {
    series: usize,
    overflow: Option<Arc<Series>>,
}

/// The store behind [`Aggregator`](super::Aggregator).
#[derive(Debug)]
pub(crate) struct Store {
    seed: u64,
    views: HashMap<Box<str>, Aggregation>,
    max_series_per_name: usize,
    /// Names whose series take the record's span fields as labels too.
    span_labels: HashSet<Box<str>>,
    registry: Mutex<Registry>,
    locals: ThreadLocal<RefCell<LocalMap>>,
    overflowed: AtomicU64,
    dropped: AtomicU64,
    overflow_reported: AtomicBool,
}

impl Store {
    pub(crate) fn new(
        views: HashMap<Box<str>, Aggregation>,
        max_series_per_name: usize,
        span_labels: HashSet<Box<str>>,
    ) -> Self {
        Store {
            seed: random_seed(),
            views,
            max_series_per_name,
            span_labels,
            registry: Mutex::default(),
            locals: ThreadLocal::new(),
            overflowed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            overflow_reported: AtomicBool::new(false),
        }
    }

    pub(crate) fn max_series_per_name(&self) -> usize {
        self.max_series_per_name
    }

    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    pub(crate) fn record(&self, record: &Record<'_>) {
        if !self.span_labels.is_empty()
            && record.span_tags().len() > 0
            && self.span_labels.contains(record.name())
        {
            return self.record_with_span_labels(record);
        }
        let kind = record.kind();
        let value = match kind {
            Kind::Event => 1.0,
            Kind::Metric => match record.value() {
                Some(v) => v,
                None => return,
            },
            Kind::Timing => match record.duration_ms() {
                Some(ms) => ms / 1000.0,
                None => return,
            },
        };
        let local = self.locals.get_or(RefCell::default);
        // Busy only if recording re-entered itself on this thread: drop, never wait.
        let Ok(mut local) = local.try_borrow_mut() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let slot = slot_of(record);
        if let Some(entry) = local.slots.0[slot]
            .checked_sub(1)
            .and_then(|i| local.entries.get(i as usize))
        {
            if entry.key.matches(record) {
                entry.add(value);
                return;
            }
        }
        let hash = hash_record(self.seed, record);
        if let Some(indices) = local.by_hash.get(&hash) {
            for &i in indices {
                if let Some(entry) = local.entries.get(i as usize) {
                    if entry.key.matches(record) {
                        entry.add(value);
                        local.slots.0[slot] = i + 1;
                        return;
                    }
                }
            }
        }
        self.record_new(&mut local, hash, slot, record, value);
    }

    /// A record of a name that takes span fields as labels: the same record with the
    /// span fields among its tags (the call's tag wins on a clash), recorded as any
    /// other. Up to eight tags in all, nothing is allocated.
    fn record_with_span_labels(&self, record: &Record<'_>) {
        let mut tags: SmallVec<[Tag<'_>; 8]> = record.tags().collect();
        tags.extend(
            record
                .span_tags()
                .filter(|span| record.tag(span.key()).is_none()),
        );
        let mut labelled =
            Record::new(record.kind(), record.name(), &tags).with_meta(record.meta());
        if let Some(value) = record.value().or(record.duration_ms()) {
            labelled = labelled.with_value(value);
        }
        self.record(&labelled);
    }

    /// The first time this thread meets this identity: find or make the series, or
    /// send the value to the name's overflow series.
    #[cold]
    fn record_new(
        &self,
        local: &mut LocalMap,
        hash: u64,
        slot: usize,
        record: &Record<'_>,
        value: f64,
    ) {
        let key = OwnedKey::copy(record.kind(), record.name(), record.tags());
        let canonical = key.canonical();
        let series = {
            let mut registry = self.registry();
            if let Some(series) = registry.by_key.get(&canonical) {
                Arc::clone(series)
            } else {
                let name_key = (canonical.kind, canonical.name.clone());
                let under_limit = registry
                    .per_name
                    .get(&name_key)
                    .map_or(true, |state| state.series < self.max_series_per_name);
                let meta = record.meta();
                let unit = match (canonical.kind, meta.unit) {
                    (Kind::Metric, None) => described(&canonical.name).and_then(|d| d.unit),
                    (_, unit) => unit,
                };
                let op = Op::resolve(canonical.kind, meta, unit, self.views.get(&*canonical.name));
                if under_limit {
                    let series = Arc::new(Series::new(canonical.clone(), false, op, meta));
                    registry.by_key.insert(canonical, Arc::clone(&series));
                    registry.all.push(Arc::clone(&series));
                    registry.per_name.entry(name_key).or_default().series += 1;
                    series
                } else {
                    let state = registry.per_name.entry(name_key).or_default();
                    let (series, new) = match &state.overflow {
                        Some(series) => (Arc::clone(series), false),
                        None => {
                            let key = OwnedKey {
                                kind: canonical.kind,
                                name: canonical.name.clone(),
                                labels: Box::new([(
                                    OVERFLOW_LABEL.0.into(),
                                    OVERFLOW_LABEL.1.into(),
                                )]),
                            };
                            let series = Arc::new(Series::new(key, true, op, meta));
                            state.overflow = Some(Arc::clone(&series));
                            registry.all.push(Arc::clone(&series));
                            (series, true)
                        }
                    };
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                    if series.accepts(value) {
                        series.add_shared(value);
                    }
                    drop(registry);
                    if new && !self.overflow_reported.swap(true, Ordering::Relaxed) {
                        stderr_line(format_args!(
                            "{} {:?} reached {} label sets; further label sets go to one series labelled {}=\"{}\" \
                             (reported once; every such record is counted in telemetry_series_overflow_records_total)",
                            record.kind(),
                            record.name(),
                            self.max_series_per_name,
                            OVERFLOW_LABEL.0,
                            OVERFLOW_LABEL.1,
                        ));
                    }
                    // Overflowing identities are not remembered per thread: that
                    // would grow without bound, which the limit exists to prevent.
                    return;
                }
            }
        };
        let cells = Arc::new(Padded(Cells::new(&series.op)));
        series.cells().push(Arc::clone(&cells));
        let entry = LocalEntry { key, series, cells };
        entry.add(value);
        let Ok(i) = u32::try_from(local.entries.len()) else {
            return;
        };
        local.entries.push(entry);
        local.by_hash.entry(hash).or_default().push(i);
        local.slots.0[slot] = i + 1;
    }

    /// The series `record` updates, if it is one of its own (not the overflow series
    /// of its name) and takes no span fields as labels; `None` otherwise, and before
    /// a first record has made it.
    #[cfg(feature = "metrics")]
    pub(crate) fn series_handle(self: &Arc<Self>, record: &Record<'_>) -> Option<SeriesHandle> {
        if self.span_labels.contains(record.name()) {
            return None;
        }
        let key = OwnedKey::copy(record.kind(), record.name(), record.tags()).canonical();
        let series = Arc::clone(self.registry().by_key.get(&key)?);
        Some(SeriesHandle {
            store: Arc::downgrade(self),
            series,
            cells: ThreadLocal::new(),
        })
    }

    /// This thread's cells of `series`, which `record` names, if a record of it has
    /// been made on this thread.
    #[cfg(feature = "metrics")]
    fn local_cells(&self, series: &Arc<Series>, record: &Record<'_>) -> Option<Arc<Padded<Cells>>> {
        let local = self.locals.get()?.try_borrow().ok()?;
        let hash = hash_record(self.seed, record);
        local
            .by_hash
            .get(&hash)?
            .iter()
            .filter_map(|&i| local.entries.get(i as usize))
            .find(|entry| entry.key.matches(record) && Arc::ptr_eq(&entry.series, series))
            .map(|entry| Arc::clone(&entry.cells))
    }

    /// Copies every series out. Holds the registry's lock only to copy the list.
    pub(crate) fn snapshot(&self) -> Vec<SeriesSnapshot> {
        let all: Vec<Arc<Series>> = self.registry().all.clone();
        all.iter().map(|series| series.snapshot()).collect()
    }

    pub(crate) fn series_count(&self) -> usize {
        self.registry().all.len()
    }
}

/// A per-process random seed, from the standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}
