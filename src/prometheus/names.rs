//! Prometheus spellings of names and label keys (pinned in `docs/FIELDS.md`).

use crate::aggregate::SeriesData;
use crate::fields::Kind;

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

/// The family name the encoder is given: the sanitized name, with `_seconds` for
/// timings that keep their unit. The encoder adds `_total` to counters itself
/// (`user.signup` -> `user_signup_total`).
pub(crate) fn family_name(kind: Kind, name: &str, data: &SeriesData) -> String {
    let mut family = sanitize(name);
    let in_seconds = kind == Kind::Timing && !matches!(data, SeriesData::Counter(_));
    if in_seconds && !family.ends_with("_seconds") {
        if !family.ends_with('_') {
            family.push('_');
        }
        family.push_str("seconds");
    }
    family
}

/// The `# HELP` text: what the series counts, with the name as given, cut to
/// printable ASCII without `\` or `"` (so it needs no escaping in either format).
pub(crate) fn help(kind: Kind, name: &str, data: &SeriesData) -> String {
    let what = match (kind, data) {
        (Kind::Event, _) | (_, SeriesData::Counter(_)) => "calls of",
        (_, SeriesData::Gauge(_)) => "last value of",
        (_, SeriesData::Sum(_)) => "sum of",
        (_, SeriesData::Histogram { .. }) => "distribution of",
    };
    let call = match kind {
        Kind::Event => "track_event",
        Kind::Metric => "track_metric",
        Kind::Timing => "track_timing",
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
    let unit = if kind == Kind::Timing {
        ", in seconds"
    } else {
        ""
    };
    format!("{what} {call} {shown}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_examples() {
        assert_eq!(sanitize("queue.depth"), "queue_depth");
        assert_eq!(sanitize("db.query"), "db_query");
        assert_eq!(sanitize("9lives..x__y-é"), "_9lives_x_y_");
        assert_eq!(sanitize(""), "_");
        let h = SeriesData::Histogram {
            bounds: vec![],
            bucket_counts: vec![0],
            count: 0,
            sum: 0.0,
        };
        assert_eq!(
            family_name(Kind::Timing, "db.query", &h),
            "db_query_seconds"
        );
        assert_eq!(
            family_name(Kind::Event, "user.signup", &SeriesData::Counter(1)),
            "user_signup"
        );
    }
}
