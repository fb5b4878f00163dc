//! The exposition: a snapshot of the series, encoded by `prometheus-client`.

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::names::{family_name, help, sanitize};
use crate::aggregate::{SeriesData, SeriesSnapshot};

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
    pub(crate) target_info: std::sync::Arc<[(String, String)]>,
}

/// Encodes the series in `format`. Never fails: a series that cannot be encoded
/// (a name that clashes with another kind of series) is left out.
pub(crate) fn encode(series: Vec<SeriesSnapshot>, own: OwnNumbers, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families::new(series, own)));
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
    name: String,
    help: String,
    metric_type: MetricType,
    series: Vec<(Vec<(String, String)>, SeriesData)>,
}

/// Every family of one scrape, grouped by Prometheus name.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Families {
    fn new(series: Vec<SeriesSnapshot>, own: OwnNumbers) -> Self {
        let mut families: Vec<Family> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for s in series {
            let name = family_name(s.kind(), s.name(), s.data());
            let metric_type = match s.data() {
                SeriesData::Counter(_) | SeriesData::Sum(_) => MetricType::Counter,
                SeriesData::Gauge(_) => MetricType::Gauge,
                SeriesData::Histogram { .. } => MetricType::Histogram,
            };
            let at = *index.entry(name.clone()).or_insert_with(|| {
                families.push(Family {
                    name,
                    help: help(s.kind(), s.name(), s.data()),
                    metric_type,
                    series: Vec::new(),
                });
                families.len() - 1
            });
            let family = &mut families[at];
            // Two names that sanitize alike but aggregate differently (`a.b` a
            // gauge, `a_b` a histogram) cannot share a family: the first one wins.
            if family.metric_type != metric_type {
                continue;
            }
            family.series.push((labels(s.labels()), s.data().clone()));
        }
        families.push(Family {
            name: "telemetry_series_overflow_records".into(),
            help: "records that went to an overflow series because their name had reached its limit of label sets".into(),
            metric_type: MetricType::Counter,
            series: vec![(Vec::new(), SeriesData::Counter(own.overflowed))],
        });
        families.push(Family {
            name: "telemetry_records_dropped".into(),
            help: "records the aggregation dropped (recording re-entered itself on one thread)"
                .into(),
            metric_type: MetricType::Counter,
            series: vec![(Vec::new(), SeriesData::Counter(own.dropped))],
        });
        // The resource, as the OpenTelemetry-Prometheus compatibility specification
        // maps it: one `target_info` series whose labels are the resource attributes.
        families.push(Family {
            name: "target_info".into(),
            help: "Target metadata".into(),
            metric_type: MetricType::Gauge,
            series: vec![(labels(&own.target_info), SeriesData::Gauge(1.0))],
        });
        families.push(Family {
            name: "telemetry_series".into(),
            help: "series held, overflow series included".into(),
            metric_type: MetricType::Gauge,
            series: vec![(Vec::new(), SeriesData::Gauge(own.series as f64))],
        });
        Families(families)
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

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            let mut metric =
                encoder.encode_descriptor(&family.name, &family.help, None, family.metric_type)?;
            for (labels, data) in &family.series {
                let mut series = metric.encode_family(labels)?;
                match data {
                    SeriesData::Counter(n) => {
                        series.encode_counter::<NoLabelSet, u64, f64>(n, None)?
                    }
                    SeriesData::Sum(v) => series.encode_counter::<NoLabelSet, f64, f64>(v, None)?,
                    SeriesData::Gauge(v) => series.encode_gauge(v)?,
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
                }
            }
        }
        Ok(())
    }
}
