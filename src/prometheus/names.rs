//! Prometheus spellings of names and label keys (pinned in `docs/FIELDS.md`).

use crate::aggregate::{SeriesData, SeriesSnapshot};
use crate::fields::{Instrument, Kind};

/// Every character outside `[a-zA-Z0-9_]` becomes `_`, runs of `_` collapse, and a
/// leading digit gets a `_` prefix: `queue.depth` -> `queue_depth`.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The family name the encoder is given, and the unit it adds to it (`_seconds`,
/// `_bytes`; `# UNIT` in OpenMetrics). The encoder adds `_total` to counters itself
/// (`user.signup` -> `user_signup_total`).
///
/// Timings are in seconds; a metric has the unit its call site declared or
/// [`describe`](crate::describe) gave, spelled as the OpenTelemetry-Prometheus
/// compatibility rules say ([`prometheus_unit`]). A name that already ends with its
/// unit does not get it twice, and a counter instrument's name that already ends
/// with `_total` does not either.
pub(crate) fn family_name(s: &SeriesSnapshot) -> (String, Option<String>) {
    let mut family = sanitize(s.name());
    let unit = match (s.kind(), s.data()) {
        (Kind::Event, _) | (Kind::Timing, SeriesData::Counter(_)) => None,
        (Kind::Timing, _) => Some("seconds".to_owned()),
        (Kind::Metric, _) => s.unit().and_then(prometheus_unit),
    };
    if s.instrument() == Some(Instrument::Counter) {
        strip_suffix(&mut family, "_total");
    }
    let Some(unit) = unit else {
        return (family, None);
    };
    let trim = |family: &mut String| {
        while family.len() > 1 && family.ends_with('_') {
            family.pop();
        }
    };
    trim(&mut family);
    strip_suffix(&mut family, &format!("_{unit}"));
    trim(&mut family);
    if family == unit || family == "_" {
        // Nothing is left to carry the unit as a suffix: the name stays as it is.
        return (family, None);
    }
    (family, Some(unit))
}

fn strip_suffix(name: &mut String, suffix: &str) {
    if name.len() > suffix.len() && name.ends_with(suffix) {
        name.truncate(name.len() - suffix.len());
    }
}

/// The Prometheus spelling of an OpenTelemetry (UCUM) unit, as the
/// OpenTelemetry-Prometheus compatibility specification maps the common ones:
/// `By` -> `bytes`, `s` -> `seconds`, `ms` -> `milliseconds`, `By/s` ->
/// `bytes_per_second`, `%` -> `percent`. Annotations in braces (`{request}`) and the
/// unit `1` name no unit; other units are sanitized as given (`bytes` stays `bytes`).
pub(crate) fn prometheus_unit(unit: &str) -> Option<String> {
    fn one(unit: &str) -> Option<String> {
        let word = match unit {
            "d" => "days",
            "h" => "hours",
            "min" => "minutes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "GiBy" => "gibibytes",
            "TiBy" => "tebibytes",
            "KBy" => "kilobytes",
            "MBy" => "megabytes",
            "GBy" => "gigabytes",
            "TBy" => "terabytes",
            "bit" => "bits",
            "m" => "meters",
            "V" => "volts",
            "A" => "amperes",
            "J" => "joules",
            "W" => "watts",
            "g" => "grams",
            "Cel" => "celsius",
            "Hz" => "hertz",
            "%" => "percent",
            "1" => return None,
            other => {
                // `{request}` and `req{annotation}` name no unit but the text outside
                // braces.
                let plain: String = other.split('{').next().unwrap_or_default().into();
                let plain = plain.trim();
                if plain.is_empty() {
                    return None;
                }
                return Some(sanitize(plain).trim_matches('_').to_lowercase())
                    .filter(|u| !u.is_empty());
            }
        };
        Some(word.to_owned())
    }
    let unit = unit.trim();
    match unit.split_once('/') {
        Some((per, time)) => {
            let time = match time {
                "s" => "second",
                "m" => "minute",
                "h" => "hour",
                "d" => "day",
                other => return one(per).map(|p| format!("{p}_per_{}", sanitize(other))),
            };
            match one(per) {
                Some(per) => Some(format!("{per}_per_{time}")),
                None => Some(format!("per_{time}")),
            }
        }
        None => one(unit),
    }
}

/// The `# HELP` text: the description declared or described, else what the series
/// counts, with the name as given, cut to printable ASCII without `\` or `"` (so
/// the generated text needs no escaping in either format).
pub(crate) fn help(s: &SeriesSnapshot) -> String {
    if let Some(description) = s.description() {
        return description.to_owned();
    }
    let (kind, name, data) = (s.kind(), s.name(), s.data());
    let what = match (kind, data) {
        (Kind::Event, _) | (_, SeriesData::Counter(_)) => "calls of",
        (_, SeriesData::Gauge(_)) => "last value of",
        (_, SeriesData::Sum(_)) => "sum of",
        (_, SeriesData::UpDownSum(_)) => "running total of",
        (_, SeriesData::Histogram { .. }) => "distribution of",
        // A kind of series this mapping does not know yet.
        #[allow(unreachable_patterns)]
        _ => "value of",
    };
    let call = match (kind, s.instrument()) {
        (Kind::Event, _) => "track_event",
        (Kind::Timing, _) => "track_timing",
        (Kind::Metric, Some(Instrument::Counter)) => "counter",
        (Kind::Metric, Some(Instrument::UpDownCounter)) => "up-down counter",
        (Kind::Metric, Some(Instrument::Gauge)) => "gauge",
        (Kind::Metric, Some(Instrument::Histogram)) => "histogram",
        (Kind::Metric, _) => "track_metric",
    };
    let shown: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() && c != '\\' && c != '"' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let unit = match (kind, s.unit()) {
        (Kind::Timing, _) => ", in seconds".to_owned(),
        (_, Some(unit)) => match prometheus_unit(unit) {
            Some(unit) => format!(", in {unit}"),
            None => String::new(),
        },
        _ => String::new(),
    };
    format!("{what} {call} {shown}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregator;
    use crate::record::Record;
    use crate::sink::Sink;

    #[test]
    fn pinned_examples() {
        assert_eq!(sanitize("queue.depth"), "queue_depth");
        assert_eq!(sanitize("db.query"), "db_query");
        assert_eq!(sanitize("9lives..x__y-é"), "_9lives_x_y_");
        assert_eq!(sanitize(""), "_");
        let aggregator = Aggregator::new();
        aggregator.record(&Record::new(Kind::Timing, "db.query", &[]).with_value(1.0));
        aggregator.record(&Record::new(Kind::Timing, "db.query_seconds.", &[]).with_value(1.0));
        aggregator.record(&Record::new(Kind::Event, "user.signup", &[]));
        let names: Vec<_> = aggregator.snapshot().iter().map(family_name).collect();
        assert_eq!(
            names,
            [
                ("db_query".to_owned(), Some("seconds".to_owned())),
                ("db_query".to_owned(), Some("seconds".to_owned())),
                ("user_signup".to_owned(), None),
            ]
        );
    }

    #[test]
    fn units_are_added_once_and_counters_end_in_total_once() {
        let names = |instrument, name: &'static str, unit: Option<&'static str>| {
            let aggregator = Aggregator::new();
            let mut record = Record::new(Kind::Metric, name, &[])
                .with_value(1.0)
                .with_instrument(instrument);
            if let Some(unit) = unit {
                record = record.with_unit(unit);
            }
            aggregator.record(&record);
            family_name(&aggregator.snapshot()[0])
        };
        let some = |s: &str| Some(s.to_owned());
        use Instrument::*;
        assert_eq!(
            names(Counter, "net.received", Some("By")),
            ("net_received".into(), some("bytes"))
        );
        assert_eq!(
            names(Counter, "received.bytes", Some("By")),
            ("received".into(), some("bytes"))
        );
        assert_eq!(
            names(Counter, "received.bytes.total", Some("By")),
            ("received".into(), some("bytes"))
        );
        assert_eq!(
            names(Counter, "requests.total", None),
            ("requests".into(), None)
        );
        assert_eq!(
            names(Counter, "requests", Some("{request}")),
            ("requests".into(), None)
        );
        assert_eq!(
            names(Histogram, "payload", Some("KiBy")),
            ("payload".into(), some("kibibytes"))
        );
        assert_eq!(names(Gauge, "bytes", Some("By")), ("bytes".into(), None));
        assert_eq!(
            names(UpDownCounter, "rate", Some("By/s")),
            ("rate".into(), some("bytes_per_second"))
        );
        assert_eq!(names(Gauge, "load", Some("1")), ("load".into(), None));
        assert_eq!(
            names(Gauge, "temp", Some("Cel")),
            ("temp".into(), some("celsius"))
        );
    }
}
