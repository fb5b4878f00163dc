//! From the aggregated series to OTLP metrics: gauges for `track_metric`, histograms
//! in seconds (unit `s`) for `track_timing`, monotonic sums for `track_event` counts
//! and for counters (and sums chosen by a view, which never go down), non-monotonic
//! sums for up-down counters, histograms in their declared unit; cumulative
//! temporality, each series from its own start time. A metric's unit and
//! description are those its call site declared, or `describe` gave.

use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::aggregate::{SeriesData, SeriesSnapshot};
use crate::fields::Kind;

/// The attribute the OpenTelemetry SDKs put on the series that takes every attribute
/// set beyond the cardinality limit.
pub(crate) const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

pub(crate) use crate::pipeline::clock::unix_nanos;

fn attributes(series: &SeriesSnapshot) -> Vec<KeyValue> {
    if series.is_overflow() {
        return vec![KeyValue {
            key: OVERFLOW_ATTRIBUTE.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..KeyValue::default()
        }];
    }
    series
        .labels()
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.clone())),
            }),
            ..KeyValue::default()
        })
        .collect()
}

fn number(series: &SeriesSnapshot, now: u64, value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(series),
        start_time_unix_nano: unix_nanos(series.start_time()),
        time_unix_nano: now,
        value: Some(value),
        ..NumberDataPoint::default()
    }
}

/// The crate's own health, as OTLP metrics (the same as the Prometheus endpoint's
/// `telemetry_*` series): records into overflow series and series held, from
/// `aggregator`; and, in an app's `try_init`, `telemetry.destination.records`, what
/// each destination wrote, dropped and lost, cumulative since `started`.
pub(crate) fn own_metrics(
    aggregator: &crate::aggregate::Aggregator,
    destinations: &[(&'static str, crate::pipeline::ExportStats)],
    started: SystemTime,
    now: SystemTime,
) -> Vec<Metric> {
    let (start, now) = (unix_nanos(started), unix_nanos(now));
    let point = |attributes: Vec<KeyValue>, value: u64| NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
        ..NumberDataPoint::default()
    };
    let counter = |name: &str, description: &str, data_points| Metric {
        name: name.to_owned(),
        description: description.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    };
    let text = |key: &str, value: &str| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    };
    let mut own = vec![
        counter(
            "telemetry.series.overflow.records",
            "records that went to an overflow series because their name had reached its limit of label sets",
            vec![point(Vec::new(), aggregator.overflowed())],
        ),
        Metric {
            name: "telemetry.series".to_owned(),
            description: "series held, overflow series included".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point(Vec::new(), aggregator.series_count() as u64)],
            })),
            ..Metric::default()
        },
    ];
    if !destinations.is_empty() {
        let mut points = Vec::with_capacity(3 * destinations.len());
        for (destination, stats) in destinations {
            for (outcome, n) in [
                ("written", stats.written()),
                ("dropped", stats.dropped()),
                ("failed", stats.failed()),
            ] {
                points.push(point(
                    vec![text("destination", destination), text("outcome", outcome)],
                    n,
                ));
            }
        }
        own.push(counter(
            "telemetry.destination.records",
            "records each destination of TELEMETRY_EXPORTER wrote (for otlp: the collector accepted), dropped and lost to errors",
            points,
        ));
        let per_destination = |value: fn(&crate::pipeline::ExportStats) -> u64| {
            destinations
                .iter()
                .map(|(destination, stats)| {
                    point(vec![text("destination", destination)], value(stats))
                })
                .collect()
        };
        own.push(Metric {
            name: "telemetry.destination.queued".to_owned(),
            description: "bytes of each destination's buffer still taken by records waiting for it"
                .to_owned(),
            unit: "By".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: per_destination(crate::pipeline::ExportStats::queued_bytes),
            })),
            ..Metric::default()
        });
        own.push(Metric {
            name: "telemetry.destination.spooled".to_owned(),
            description: "records kept on disk for a later delivery (the otlp spool)".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: per_destination(crate::pipeline::ExportStats::spooled),
            })),
            ..Metric::default()
        });
    }
    own
}

/// One metric per (kind, name), holding a data point per attribute set, then `own`;
/// `None` when there are no series yet.
pub(crate) fn metrics_request(
    resource: &Resource,
    scope: &InstrumentationScope,
    series: &[SeriesSnapshot],
    own: Vec<Metric>,
    now: SystemTime,
) -> Option<ExportMetricsServiceRequest> {
    let now = unix_nanos(now);
    let cumulative = AggregationTemporality::Cumulative as i32;
    let mut metrics: Vec<(Kind, Metric)> = Vec::new();
    for s in series {
        let index = match metrics
            .iter()
            .position(|(kind, m)| *kind == s.kind() && m.name == s.name())
        {
            Some(i) => i,
            None => {
                let data = match s.data() {
                    SeriesData::Counter(_) => metric::Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: cumulative,
                        is_monotonic: true,
                    }),
                    // A sum ignores negative values: it never goes down.
                    SeriesData::Sum(_) => metric::Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: cumulative,
                        is_monotonic: true,
                    }),
                    SeriesData::UpDownSum(_) => metric::Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: cumulative,
                        is_monotonic: false,
                    }),
                    SeriesData::Gauge(_) => metric::Data::Gauge(Gauge {
                        data_points: Vec::new(),
                    }),
                    SeriesData::Histogram { .. } => metric::Data::Histogram(Histogram {
                        data_points: Vec::new(),
                        aggregation_temporality: cumulative,
                    }),
                    // A kind of series this mapping does not know yet.
                    #[allow(unreachable_patterns)]
                    _ => continue,
                };
                let description = match (s.kind(), s.description(), s.data()) {
                    (_, Some(described), _) => described,
                    (Kind::Event, ..) => "count of track_event calls",
                    (Kind::Metric, _, SeriesData::Gauge(_)) if s.instrument().is_none() => {
                        "last value of track_metric"
                    }
                    (Kind::Metric, _, SeriesData::Gauge(_)) => "last value",
                    (Kind::Metric, _, SeriesData::Sum(_)) => "sum of the increments",
                    (Kind::Metric, _, SeriesData::UpDownSum(_)) => "running total of the changes",
                    (Kind::Metric, ..) => "distribution of the values",
                    (Kind::Timing, ..) => "track_timing durations",
                };
                metrics.push((
                    s.kind(),
                    Metric {
                        name: s.name().to_owned(),
                        description: description.to_owned(),
                        unit: s.unit().unwrap_or_default().to_owned(),
                        data: Some(data),
                        ..Metric::default()
                    },
                ));
                metrics.len() - 1
            }
        };
        let data = metrics[index].1.data.as_mut();
        match (data, s.data()) {
            (Some(metric::Data::Sum(sum)), SeriesData::Counter(n)) => sum.data_points.push(number(
                s,
                now,
                number_data_point::Value::AsInt(i64::try_from(*n).unwrap_or(i64::MAX)),
            )),
            (Some(metric::Data::Sum(sum)), SeriesData::Sum(v) | SeriesData::UpDownSum(v)) => sum
                .data_points
                .push(number(s, now, number_data_point::Value::AsDouble(*v))),
            (Some(metric::Data::Gauge(gauge)), SeriesData::Gauge(v)) => gauge
                .data_points
                .push(number(s, now, number_data_point::Value::AsDouble(*v))),
            (
                Some(metric::Data::Histogram(histogram)),
                SeriesData::Histogram {
                    bounds,
                    bucket_counts,
                    count,
                    sum,
                },
            ) => histogram.data_points.push(HistogramDataPoint {
                attributes: attributes(s),
                start_time_unix_nano: unix_nanos(s.start_time()),
                time_unix_nano: now,
                count: *count,
                sum: Some(*sum),
                bucket_counts: bucket_counts.clone(),
                explicit_bounds: bounds.clone(),
                ..HistogramDataPoint::default()
            }),
            // The same (kind, name) with another aggregation cannot happen: a name's
            // aggregation is fixed per kind.
            _ => {}
        }
    }
    if metrics.is_empty() {
        return None;
    }
    let metrics = metrics.into_iter().map(|(_, m)| m).chain(own).collect();
    Some(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope.clone()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregator;
    use crate::record::{Record, Tag};
    use crate::sink::Sink;

    #[test]
    fn gauges_histograms_in_seconds_and_event_counts() {
        let aggregator = Aggregator::new();
        let tags = [Tag::new("queue", "emails")];
        aggregator.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(3.0));
        aggregator.record(&Record::new(Kind::Metric, "queue.depth", &tags).with_value(42.0));
        let table = [Tag::new("table", "users")];
        aggregator.record(&Record::new(Kind::Timing, "db.query", &table).with_value(12.5));
        aggregator.record(&Record::new(Kind::Timing, "db.query", &table).with_value(250.0));
        aggregator.record(&Record::new(Kind::Event, "user.signup", &[]));
        aggregator.record(&Record::new(Kind::Event, "user.signup", &[]));

        let request = metrics_request(
            &Resource::default(),
            &InstrumentationScope::default(),
            &aggregator.snapshot(),
            Vec::new(),
            SystemTime::now(),
        )
        .unwrap();
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let by_name = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();

        let Some(metric::Data::Gauge(gauge)) = &by_name("queue.depth").data else {
            panic!("queue.depth is not a gauge")
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(42.0))
        );
        assert_eq!(gauge.data_points[0].attributes[0].key, "queue");

        let db = by_name("db.query");
        assert_eq!(db.unit, "s");
        let Some(metric::Data::Histogram(h)) = &db.data else {
            panic!("db.query is not a histogram")
        };
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &h.data_points[0];
        assert_eq!(point.count, 2);
        assert!((point.sum.unwrap() - 0.2625).abs() < 1e-9);
        assert_eq!(point.explicit_bounds, crate::aggregate::DEFAULT_BUCKETS);
        assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
        assert!(point.start_time_unix_nano <= point.time_unix_nano);

        let Some(metric::Data::Sum(sum)) = &by_name("user.signup").data else {
            panic!("user.signup is not a sum")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.data_points[0].value,
            Some(number_data_point::Value::AsInt(2))
        );
    }

    #[test]
    fn counters_up_down_counters_and_histograms_keep_their_kind_and_unit() {
        use crate::fields::Instrument;
        let aggregator = Aggregator::new();
        let metric = |name, value, instrument| {
            Record::new(Kind::Metric, name, &[])
                .with_value(value)
                .with_instrument(instrument)
                .with_unit("By")
        };
        for _ in 0..2 {
            aggregator.record(&metric("net.received", 1024.0, Instrument::Counter));
        }
        for delta in [1.0, 1.0, -1.0] {
            aggregator.record(&metric("open", delta, Instrument::UpDownCounter));
        }
        aggregator.record(&metric("payload", 512.0, Instrument::Histogram).with_description("d"));
        let request = metrics_request(
            &Resource::default(),
            &InstrumentationScope::default(),
            &aggregator.snapshot(),
            Vec::new(),
            SystemTime::now(),
        )
        .unwrap();
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let by_name = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();
        let sum = |name| match &by_name(name).data {
            Some(metric::Data::Sum(sum)) => sum.clone(),
            other => panic!("{name} is not a sum: {other:?}"),
        };
        let received = sum("net.received");
        assert!(received.is_monotonic);
        assert_eq!(
            received.data_points[0].value,
            Some(number_data_point::Value::AsDouble(2048.0))
        );
        let open = sum("open");
        assert!(!open.is_monotonic);
        assert_eq!(
            open.data_points[0].value,
            Some(number_data_point::Value::AsDouble(1.0))
        );
        let payload = by_name("payload");
        assert_eq!(
            (payload.unit.as_str(), payload.description.as_str()),
            ("By", "d")
        );
        assert!(matches!(payload.data, Some(metric::Data::Histogram(_))));
        assert_eq!(by_name("net.received").unit, "By");
    }

    #[test]
    fn nothing_to_send_without_series() {
        let request = metrics_request(
            &Resource::default(),
            &InstrumentationScope::default(),
            &[],
            Vec::new(),
            SystemTime::now(),
        );
        assert!(request.is_none());
    }
}
