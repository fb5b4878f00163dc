//! The exposition: a snapshot of the series, encoded by `prometheus-client`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::names::{family_name, help, sanitize};
use crate::aggregate::{Aggregator, SeriesData, SeriesSnapshot};
use crate::fields::Kind;
use crate::{ExportStats, TelemetryHandle};

/// The two text formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4: what a plain `GET` gets.
    Text,
    /// OpenMetrics 1.0 text: when the `Accept` header asks for it (Prometheus does).
    OpenMetrics,
}

impl Format {
    pub(crate) fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The crate's own numbers, served next to the app's series, and the resource that
/// names the service.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnNumbers {
    pub(crate) overflowed: u64,
    pub(crate) dropped: u64,
    pub(crate) series: u64,
    /// `target_info`'s labels: the resource attributes (`service.name` first), keys
    /// as given; sanitized when encoded.
    pub(crate) target_info: Arc<[(String, String)]>,
    /// Whether telemetry is on, when the endpoint serves an app's `try_init`
    /// (`telemetry_enabled`, served on and off).
    pub(crate) enabled: Option<bool>,
    /// What each destination of the app's `try_init` did: its name as
    /// `TELEMETRY_EXPORTER` spells it, and its counts.
    pub(crate) destinations: Vec<(&'static str, ExportStats)>,
}

pub(crate) use crate::pipeline::DestinationsFn;

/// The families of every destination's counts, what it holds in memory and on disk.
const DESTINATION_RECORDS: &str = "telemetry_destination_records";
const DESTINATION_QUEUED: &str = "telemetry_destination_queued";
const DESTINATION_SPOOLED: &str = "telemetry_destination_spooled_records";

/// What a scrape reads: the series, the resource, and which name clashes have been
/// reported already. Shared by the endpoint and [`PrometheusExporter`](super::PrometheusExporter).
pub(crate) struct Source {
    pub(crate) aggregator: Aggregator,
    /// `target_info`'s labels: the resource attributes (`service.name` first), keys
    /// as given; sanitized when encoded.
    pub(crate) target_info: Arc<[(String, String)]>,
    /// The names whose clash has been reported, so that each is reported once; at
    /// most [`MAX_REPORTED`] of them.
    reported: Mutex<HashSet<(Kind, String)>>,
    /// The switch of the app's telemetry, when the endpoint serves an app's
    /// `try_init`: read at each scrape for `telemetry_enabled`.
    enabled: Option<TelemetryHandle>,
    /// The counts of the app's destinations, read at each scrape.
    destinations: Option<DestinationsFn>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("aggregator", &self.aggregator)
            .field("target_info", &self.target_info)
            .field("enabled", &self.enabled)
            .field("destinations", &self.destinations.is_some())
            .finish_non_exhaustive()
    }
}

/// Clashing names reported one by one; beyond this many, they are only counted.
const MAX_REPORTED: usize = 100;

impl Source {
    pub(crate) fn new(aggregator: Aggregator, target_info: Arc<[(String, String)]>) -> Self {
        Source {
            aggregator,
            target_info,
            reported: Mutex::new(HashSet::new()),
            enabled: None,
            destinations: None,
        }
    }

    /// Serves `telemetry_destination_records_total` from what `destinations` reads.
    pub(crate) fn with_destinations(mut self, destinations: Option<DestinationsFn>) -> Self {
        self.destinations = destinations;
        self
    }

    /// Serves `telemetry_enabled` from `handle`.
    pub(crate) fn with_enabled(mut self, handle: Option<TelemetryHandle>) -> Self {
        self.enabled = handle;
        self
    }

    /// The exposition in `format`, now; reports the name clashes not reported yet.
    pub(crate) fn encode(&self, format: Format) -> String {
        let aggregator = &self.aggregator;
        let own = OwnNumbers {
            overflowed: aggregator.overflowed(),
            dropped: aggregator.dropped(),
            series: aggregator.series_count() as u64,
            target_info: Arc::clone(&self.target_info),
            enabled: self.enabled.as_ref().map(TelemetryHandle::is_enabled),
            destinations: self
                .destinations
                .as_ref()
                .map(|read| read())
                .unwrap_or_default(),
        };
        let (mut families, clashes) = Families::new(aggregator.snapshot(), own);
        self.report(&clashes);
        families.format = format;
        encode(families, format)
    }

    /// One line on standard error per name left out, the first time it is.
    fn report(&self, clashes: &[Clash]) {
        if clashes.is_empty() {
            return;
        }
        let mut fresh = Vec::new();
        {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            for clash in clashes {
                let key = (clash.kind, clash.name.clone());
                if reported.len() < MAX_REPORTED && !reported.contains(&key) {
                    reported.insert(key);
                    fresh.push(clash);
                }
            }
        }
        // With no lock held: standard error may block.
        for clash in fresh {
            crate::report::stderr_line(format_args!(
                "the Prometheus name {} of {} is taken by {}: its series are left out of the \
                 exposition (the aggregation, and the OTLP exporter, keep them), counted in \
                 {CLASHES} (reported once per name)",
                clash.exposed,
                Shown(clash.kind, &clash.name),
                clash.owner,
            ));
        }
    }
}

/// A track call and its name as given, for a message: `track_metric "a.b"`, the name
/// quoted and escaped, cut to 200 characters.
struct Shown<'a>(Kind, &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.0 {
            Kind::Event => "track_event",
            Kind::Metric => "track_metric",
            Kind::Timing => "track_timing",
        };
        let cut: String = self.1.chars().take(200).collect();
        write!(f, "{call} {cut:?}")
    }
}

/// A name left out of the exposition because its Prometheus name is taken.
#[derive(Debug)]
struct Clash {
    kind: Kind,
    name: String,
    /// The name in the exposition it would have taken.
    exposed: String,
    /// Who has it: `track_event "http.requests"`, or the crate's own series.
    owner: String,
}

/// The crate's own gauge of names left out.
const CLASHES: &str = "telemetry_prometheus_name_clashes";

/// Encodes the families in `format`. Never fails.
fn encode(families: Families, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(families));
    let mut out = String::new();
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing to a String cannot fail, and the collector returns no errors of its own.
    debug_assert!(result.is_ok());
    out
}

#[derive(Debug)]
struct Family {
    /// The name without its unit: the encoder adds `_<unit>`.
    name: String,
    unit: Option<Unit>,
    help: String,
    metric_type: MetricType,
    series: Vec<(Vec<(String, String)>, SeriesData)>,
}

/// Every name a family of `name` and `metric_type` takes in either text format: its
/// own, and those of its samples (`_total`, `_bucket`, `_sum`, `_count`) and of the
/// `_created` series OpenMetrics allows. A parser reads a sample named like one of
/// another family's as belonging to it.
fn names_taken(name: &str, metric_type: MetricType) -> Vec<String> {
    let suffixes: &[&str] = match metric_type {
        MetricType::Counter => &["", "_total", "_created"],
        MetricType::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
        _ => &[""],
    };
    suffixes.iter().map(|s| format!("{name}{s}")).collect()
}

/// Every family of one scrape, grouped by Prometheus name, and the format they are
/// written in (which decides how a description is escaped).
#[derive(Debug)]
struct Families {
    families: Vec<Family>,
    format: Format,
}

impl Families {
    /// The families, and the names left out because their Prometheus name is taken:
    /// by the crate's own series, or by a name seen first (the series are in the
    /// order they were created, so the first name keeps its place from one scrape to
    /// the next).
    fn new(series: Vec<SeriesSnapshot>, own: OwnNumbers) -> (Self, Vec<Clash>) {
        let mut own_families = vec![
            (
                "telemetry_series_overflow_records",
                "records that went to an overflow series because their name had reached its limit of label sets",
                MetricType::Counter,
                Vec::new(),
                SeriesData::Counter(own.overflowed),
            ),
            (
                "telemetry_records_dropped",
                "records the aggregation dropped (recording re-entered itself on one thread)",
                MetricType::Counter,
                Vec::new(),
                SeriesData::Counter(own.dropped),
            ),
            // The resource, as the OpenTelemetry-Prometheus compatibility specification
            // maps it: one `target_info` series whose labels are the resource attributes.
            (
                "target_info",
                "Target metadata",
                MetricType::Gauge,
                labels(&own.target_info),
                SeriesData::Gauge(1.0),
            ),
            (
                "telemetry_series",
                "series held, overflow series included",
                MetricType::Gauge,
                Vec::new(),
                SeriesData::Gauge(own.series as f64),
            ),
        ];
        if let Some(enabled) = own.enabled {
            own_families.push((
                "telemetry_enabled",
                "whether telemetry is on (1) or off (0); the endpoint serves either way",
                MetricType::Gauge,
                Vec::new(),
                SeriesData::Gauge(if enabled { 1.0 } else { 0.0 }),
            ));
        }
        // Every name in the exposition, and who has it.
        let mut taken: HashMap<String, String> = HashMap::new();
        for (name, _, metric_type, _, _) in &own_families {
            for n in names_taken(name, *metric_type) {
                taken.insert(n, format!("the crate's own series {name}"));
            }
        }
        for n in names_taken(CLASHES, MetricType::Gauge) {
            taken.insert(n, format!("the crate's own series {CLASHES}"));
        }
        for n in names_taken(DESTINATION_RECORDS, MetricType::Counter) {
            taken.insert(n, format!("the crate's own series {DESTINATION_RECORDS}"));
        }
        for (name, metric_type) in [
            ("telemetry_destination_queued_bytes", MetricType::Gauge),
            (DESTINATION_SPOOLED, MetricType::Gauge),
        ] {
            for n in names_taken(name, metric_type) {
                taken.insert(n, format!("the crate's own series {name}"));
            }
        }

        let mut families: Vec<Family> = Vec::new();
        // Per name as given: its family, or `None` when left out.
        let mut placed: HashMap<(Kind, String), Option<usize>> = HashMap::new();
        let mut clashes = Vec::new();
        for s in series {
            let key = (s.kind(), s.name().to_owned());
            let at = match placed.get(&key) {
                Some(at) => *at,
                None => {
                    let (name, unit) = family_name(&s);
                    let metric_type = match s.data() {
                        SeriesData::Counter(_) | SeriesData::Sum(_) => MetricType::Counter,
                        SeriesData::Gauge(_) | SeriesData::UpDownSum(_) => MetricType::Gauge,
                        SeriesData::Histogram { .. } => MetricType::Histogram,
                        // A kind of series this mapping does not know yet.
                        #[allow(unreachable_patterns)]
                        _ => MetricType::Unknown,
                    };
                    let full = match &unit {
                        Some(unit) => format!("{name}_{unit}"),
                        None => name.clone(),
                    };
                    let names = names_taken(&full, metric_type);
                    let at = match names.iter().find_map(|n| Some((n, taken.get(n)?))) {
                        Some((exposed, owner)) => {
                            clashes.push(Clash {
                                kind: s.kind(),
                                name: s.name().to_owned(),
                                exposed: exposed.clone(),
                                owner: owner.clone(),
                            });
                            None
                        }
                        None => {
                            let owner = Shown(s.kind(), s.name()).to_string();
                            for n in names {
                                taken.insert(n, owner.clone());
                            }
                            families.push(Family {
                                help: help(&s),
                                name,
                                unit: unit.map(Unit::Other),
                                metric_type,
                                series: Vec::new(),
                            });
                            Some(families.len() - 1)
                        }
                    };
                    placed.insert(key, at);
                    at
                }
            };
            if let Some(at) = at {
                families[at]
                    .series
                    .push((labels(s.labels()), s.data().clone()));
            }
        }
        for (name, help, metric_type, labels, data) in own_families {
            families.push(Family {
                name: name.into(),
                unit: None,
                help: help.into(),
                metric_type,
                series: vec![(labels, data)],
            });
        }
        if !own.destinations.is_empty() {
            let mut series = Vec::with_capacity(3 * own.destinations.len());
            for (destination, stats) in &own.destinations {
                for (outcome, n) in [
                    ("written", stats.written()),
                    ("dropped", stats.dropped()),
                    ("failed", stats.failed()),
                ] {
                    let labels = vec![
                        ("destination".to_owned(), (*destination).to_owned()),
                        ("outcome".to_owned(), outcome.to_owned()),
                    ];
                    series.push((labels, SeriesData::Counter(n)));
                }
            }
            families.push(Family {
                name: DESTINATION_RECORDS.into(),
                unit: None,
                help: "records each destination of TELEMETRY_EXPORTER wrote (for otlp: the collector accepted), dropped (its buffer was full, or it could not start) and lost to errors (write errors; for otlp: rejected or not delivered)".into(),
                metric_type: MetricType::Counter,
                series,
            });
            let per_destination = |value: fn(&ExportStats) -> u64| {
                own.destinations
                    .iter()
                    .map(|(destination, stats)| {
                        let labels = vec![("destination".to_owned(), (*destination).to_owned())];
                        (labels, SeriesData::Gauge(value(stats) as f64))
                    })
                    .collect()
            };
            families.push(Family {
                name: DESTINATION_QUEUED.into(),
                unit: Some(Unit::Bytes),
                help: "bytes of each destination's buffer still taken by records waiting for it (and room busy threads reserved ahead)".into(),
                metric_type: MetricType::Gauge,
                series: per_destination(ExportStats::queued_bytes),
            });
            families.push(Family {
                name: DESTINATION_SPOOLED.into(),
                unit: None,
                help: "records kept on disk for a later delivery (the otlp spool); 0 for the other destinations".into(),
                metric_type: MetricType::Gauge,
                series: per_destination(ExportStats::spooled),
            });
        }
        families.push(Family {
            name: CLASHES.into(),
            unit: None,
            help: "names left out of this exposition because their Prometheus name is taken by another name or by the crate's own series".into(),
            metric_type: MetricType::Gauge,
            series: vec![(Vec::new(), SeriesData::Gauge(clashes.len() as f64))],
        });
        (
            Families {
                families,
                format: Format::Text,
            },
            clashes,
        )
    }
}

/// Sanitized label keys; a key that sanitizes like an earlier one is dropped, and
/// `le` (which Prometheus reserves for histogram bucket bounds, and `promtool`
/// flags on any other series) becomes `le_`.
fn labels(given: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(given.len());
    for (key, value) in given {
        let mut key = sanitize(key);
        if key == "le" {
            key.push('_');
        }
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, value.clone()));
        }
    }
    out
}

/// A `# HELP` text as `format` needs it: the Prometheus text encoder escapes `\\`
/// and newlines itself; OpenMetrics' is written as given, so it is escaped here
/// (`\\`, `"` and newlines, as the OpenMetrics ABNF says). Other control
/// characters become spaces in both.
fn help_text(help: &str, format: Format) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| !c.is_control() && (format == Format::Text || (c != '\\' && c != '"'));
    if help.chars().all(plain) {
        return help.into();
    }
    let mut out = String::with_capacity(help.len() + 8);
    for c in help.chars() {
        match c {
            '\n' if format == Format::Text => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\\' | '"' if format == Format::OpenMetrics => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.into()
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in &self.families {
            let help = help_text(&family.help, self.format);
            let mut metric = encoder.encode_descriptor(
                &family.name,
                &help,
                family.unit.as_ref(),
                family.metric_type,
            )?;
            for (labels, data) in &family.series {
                let mut series = metric.encode_family(labels)?;
                match data {
                    SeriesData::Counter(n) => {
                        series.encode_counter::<NoLabelSet, u64, f64>(n, None)?
                    }
                    SeriesData::Sum(v) => series.encode_counter::<NoLabelSet, f64, f64>(v, None)?,
                    SeriesData::Gauge(v) | SeriesData::UpDownSum(v) => series.encode_gauge(v)?,
                    SeriesData::Histogram {
                        bounds,
                        bucket_counts,
                        count,
                        sum,
                    } => {
                        let buckets: Vec<(f64, u64)> = bounds
                            .iter()
                            .copied()
                            .chain(std::iter::once(f64::INFINITY))
                            .zip(bucket_counts.iter().copied())
                            .collect();
                        series.encode_histogram::<NoLabelSet>(*sum, *count, &buckets, None)?
                    }
                    // A kind of series this mapping does not know yet.
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
