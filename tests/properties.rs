//! Property-based tests: any value of the `TELEMETRY_*` variables gives the documented
//! result or the documented one-line error, never a panic, and never turns telemetry on
//! when anything is invalid; any name, tag key and tag value (any Unicode, control
//! characters, empty, long) goes through the JSON-lines sink and parses back to exactly
//! what went in.
//!
//! The oracles below are written from docs/OPERATIONS.md ("Variables") and
//! docs/FIELDS.md ("JSON lines"), not from the code.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "each test binary uses some of the shared helpers")]
mod reliability;
#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

#[cfg(unix)]
use std::ffi::OsString;
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use tracing_subscriber::prelude::*;

use reliability::{expected_json_tags, float_at, one_line, raw_entries, same_float};
use support::Shared;
use tracing_telemetry::{
    Config, Exporter, JsonLinesSink, Kind, MemorySink, OwnedTagValue, Record, Sink, Tag, TagValue,
    TelemetryLayer,
};

/// Modest case counts keep the whole file under a second or two in debug builds
/// (`PROPTEST_CASES=10000` runs a deeper search); no regression files are written into
/// the source tree (a failure prints its minimal input).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// Inputs

/// Characters chosen to hurt: JSON's specials, controls, separators, non-BMP, BOM.
const NASTY: &[char] = &[
    '"',
    '\\',
    '/',
    '\n',
    '\r',
    '\t',
    '\u{0}',
    '\u{1}',
    '\u{8}',
    '\u{c}',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    '\u{2028}',
    '\u{2029}',
    '\u{200b}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10ffff}',
    'é',
    '日',
    '🚀',
    '{',
    '}',
    ':',
    ',',
    '=',
    ' ',
];

/// Any text: any Unicode scalar value, biased towards the nasty ones; usually short,
/// now and then a few thousand characters (a short text repeated: generating and
/// shrinking thousands of characters one by one would make the suite slow); sometimes
/// empty.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(NASTY),
        2 => proptest::char::range('a', 'z'),
    ];
    let short = proptest::collection::vec(ch, 0..48).prop_map(String::from_iter);
    let long = (short.clone(), 100..400_usize).prop_map(|(s, n)| format!("{s}~").repeat(n));
    prop_oneof![12 => short, 1 => long]
}

/// Tag keys: any text, or one of a few short keys so that repeated keys are common.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => text(),
        1 => prop::sample::select(vec!["", "a", "b", "name", "tags", "value"]).prop_map(str::to_owned),
    ]
}

/// A word in random letter case between random padding: the accepted spellings, their
/// near misses, and padding that is and is not whitespace.
fn spelling(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let pad = prop::sample::select(vec![
        "", "", " ", "\t", "\n", "\r\n", " \u{a0}", "\u{2003}", "\u{feff}", "\u{0}", "\"", "'",
    ]);
    let word = (prop::sample::select(words), any::<u64>()).prop_map(|(word, case)| {
        word.chars()
            .enumerate()
            .map(|(i, c)| {
                if case >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect::<String>()
    });
    (pad.clone(), word, pad).prop_map(|(before, word, after)| format!("{before}{word}{after}"))
}

const ENABLED_WORDS: &[&str] = &[
    "true",
    "false",
    "1",
    "0",
    "",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "t",
    "f",
    "2",
    "-1",
    "01",
    "00",
    "1.0",
    "tru",
    "truee",
    "fals",
    "enabled",
    "null",
    "true false",
    "ｔrue",
];

const EXPORTER_WORDS: &[&str] = &[
    "none",
    "stdout",
    "stderr",
    "file",
    "",
    "kafka",
    "otlp",
    "std out",
    "files",
    "0",
    "stdout,file",
    "nothing",
    "-",
    "ſtdout",
];

fn enabled_value() -> impl Strategy<Value = String> {
    prop_oneof![3 => spelling(ENABLED_WORDS), 1 => text()]
}

fn exporter_value() -> impl Strategy<Value = String> {
    prop_oneof![3 => spelling(EXPORTER_WORDS), 1 => text()]
}

fn file_value() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => Just("  ".to_owned()),
        2 => Just("/var/log/app/telemetry.jsonl".to_owned()),
        2 => text(),
    ]
}

// ---------------------------------------------------------------------------------
// The documented behaviour (docs/OPERATIONS.md, "Variables")

/// How a message quotes a value: escaped, and cut after 64 characters saying how many
/// bytes it had.
fn shown(raw: &str) -> String {
    match raw.char_indices().nth(64) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!(
            "{:?}... ({} bytes, cut after 64 characters)",
            &raw[..cut],
            raw.len()
        ),
    }
}

/// `true`/`false` in any letter case, `1`/`0`; surrounding ASCII whitespace ignored
/// (other whitespace is part of the value); empty = unset (off). Anything else: the
/// documented message, the value quoted as given.
fn documented_enabled(raw: &str) -> Result<bool, String> {
    let v = raw.trim_ascii();
    if v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if v == "1" || v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else {
        Err(format!(
            "invalid value {} for TELEMETRY_ENABLED (expected true, false, 1 or 0)",
            shown(raw)
        ))
    }
}

const EXPORTER_EXPECTED: &str =
    "expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once";

/// One or more of `none`, `stdout`, `stderr`, `file`, `prometheus`, `otlp` in any
/// letter case, comma-separated, ASCII whitespace around each ignored; each at most
/// once; `none` only alone (an empty list); empty = unset (`stderr`).
fn documented_exporters(raw: &str) -> Result<Vec<Exporter>, String> {
    let v = raw.trim_ascii();
    if v.is_empty() {
        return Ok(vec![Exporter::Stderr]);
    }
    let wrong = |why: String| {
        format!(
            "invalid value {} for TELEMETRY_EXPORTER ({why}; {EXPORTER_EXPECTED})",
            shown(raw)
        )
    };
    let mut list = Vec::new();
    for entry in v.split(',').map(str::trim_ascii) {
        if entry.is_empty() {
            return Err(wrong("an entry is empty".to_owned()));
        }
        let Ok(exporter) = entry.parse::<Exporter>() else {
            return Err(if entry == v {
                format!(
                    "invalid value {} for TELEMETRY_EXPORTER ({EXPORTER_EXPECTED})",
                    shown(raw)
                )
            } else {
                wrong(format!("unknown exporter {}", shown(entry)))
            });
        };
        if list.contains(&exporter) {
            return Err(wrong(format!("\"{exporter}\" is listed twice")));
        }
        list.push(exporter);
    }
    if list.len() > 1 && list.contains(&Exporter::None) {
        return Err(wrong(
            "\"none\" cannot be combined with other exporters".to_owned(),
        ));
    }
    if let Some(missing) = list.iter().find(|e| !e.is_built_in()) {
        return Err(format!(
            "invalid value {} for TELEMETRY_EXPORTER (this app was built without the {missing} exporter; enable the \"{missing}\" feature of the tracing-telemetry crate)",
            shown(raw)
        ));
    }
    list.retain(|e| *e != Exporter::None);
    Ok(list)
}

/// A path: trimmed of ASCII whitespace, like every value; unset when that leaves
/// nothing; otherwise relative to the working directory.
fn documented_path(raw: &str) -> Option<String> {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return None;
    }
    let path = std::env::current_dir().unwrap().join(raw);
    Some(path.to_string_lossy().into_owned())
}

/// The whole configuration: `Ok((enabled, exporters, file))`, or every message that
/// the documentation allows for these values (when two values are invalid, either may
/// be reported).
fn documented_config(
    enabled: Option<&str>,
    exporter: Option<&str>,
    file: Option<&str>,
) -> Result<(bool, Vec<Exporter>, Option<String>), Vec<String>> {
    let enabled_result = enabled.map_or(Ok(false), documented_enabled);
    let exporters = exporter.map_or(Ok(vec![Exporter::Stderr]), documented_exporters);
    let path = file.and_then(documented_path);
    let exporter_shown = shown(exporter.unwrap_or("stderr"));
    match (enabled_result, exporters) {
        (Ok(enabled), Ok(exporters)) => {
            let has_file = exporters.contains(&Exporter::File);
            match (has_file, path) {
                (true, None) => Err(vec![format!(
                    "TELEMETRY_FILE is required when TELEMETRY_EXPORTER is {exporter_shown} (set it to the path of the JSON-lines file)"
                )]),
                (false, Some(path)) => Err(vec![format!(
                    "TELEMETRY_FILE is set to {} but TELEMETRY_EXPORTER is {exporter_shown} (set TELEMETRY_EXPORTER=file to write to the file, or unset TELEMETRY_FILE)",
                    shown(&path)
                )]),
                (_, path) => Ok((enabled, exporters, path)),
            }
        }
        (enabled, exporter) => Err(enabled.err().into_iter().chain(exporter.err()).collect()),
    }
}

fn one_line_without_controls(message: &str) -> bool {
    !message.is_empty() && !message.chars().any(char::is_control)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_telemetry_enabled_gives_the_documented_value_or_error(raw in enabled_value()) {
        let got = Config::from_iter([("TELEMETRY_ENABLED", raw.as_str())]);
        match (&got, documented_enabled(&raw)) {
            (Ok(config), Ok(on)) => {
                prop_assert_eq!(config.enabled(), on);
                prop_assert_eq!(config.exporters().collect::<Vec<_>>(), [Exporter::Stderr]);
            }
            (Err(err), Err(message)) => {
                prop_assert_eq!(err.to_string(), message);
                prop_assert_eq!(err.variable(), "TELEMETRY_ENABLED");
                prop_assert!(one_line_without_controls(&err.to_string()), "{}", err);
            }
            (got, expected) => prop_assert!(false, "{:?}: got {:?}, documented {:?}", raw, got, expected),
        }
    }

    #[test]
    fn any_telemetry_exporter_gives_the_documented_value_or_error(raw in exporter_value()) {
        let got = Config::from_iter([("TELEMETRY_EXPORTER", raw.as_str())]);
        match (&got, documented_exporters(&raw)) {
            // `file` without a file is an error of its own; covered below.
            (_, Ok(list)) if list.contains(&Exporter::File) => prop_assert!(got.is_err()),
            (Ok(config), Ok(list)) => {
                prop_assert_eq!(config.exporters().collect::<Vec<_>>(), list);
                prop_assert!(!config.enabled());
            }
            (Err(err), Err(message)) => {
                prop_assert_eq!(err.to_string(), message);
                prop_assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
                prop_assert!(one_line_without_controls(&err.to_string()), "{}", err);
            }
            (got, expected) => prop_assert!(false, "{:?}: got {:?}, documented {:?}", raw, got, expected),
        }
    }

    /// All three variables at once, in any order, among other variables: the documented
    /// configuration or one of the documented messages; telemetry is on only when every
    /// value is valid and `TELEMETRY_ENABLED` says so.
    #[test]
    fn any_combination_is_all_valid_or_an_error_and_never_half_on(
        enabled in proptest::option::of(enabled_value()),
        exporter in proptest::option::of(exporter_value()),
        file in proptest::option::of(file_value()),
        others in proptest::collection::vec((text(), text()), 0..4),
        seed in any::<u64>(),
    ) {
        let mut vars: Vec<(String, String)> = Vec::new();
        vars.extend(enabled.clone().map(|v| ("TELEMETRY_ENABLED".to_owned(), v)));
        vars.extend(exporter.clone().map(|v| ("TELEMETRY_EXPORTER".to_owned(), v)));
        vars.extend(file.clone().map(|v| ("TELEMETRY_FILE".to_owned(), v)));
        // Another tool's variables, and anything not under TELEMETRY_, are ignored.
        vars.push(("TELEMETRY_ENDPOINT".to_owned(), "http://collector:4317".to_owned()));
        vars.extend(others.into_iter().map(|(k, v)| (format!("APP_{k}"), v)));
        let n = vars.len();
        vars.rotate_left(seed as usize % n);

        let got = Config::from_iter(vars.clone());
        match (got, documented_config(enabled.as_deref(), exporter.as_deref(), file.as_deref())) {
            (Ok(config), Ok((on, exporters, file))) => {
                prop_assert_eq!(config.enabled(), on);
                prop_assert_eq!(config.exporters().collect::<Vec<_>>(), exporters);
                prop_assert_eq!(config.file(), file.as_deref().map(Path::new));
            }
            (Err(err), Err(messages)) => {
                prop_assert!(messages.contains(&err.to_string()), "{:?}: {} not in {:?}", vars, err, messages);
                prop_assert!(one_line_without_controls(&err.to_string()), "{}", err);
            }
            (Ok(config), Err(messages)) => prop_assert!(
                false,
                "{:?} was accepted ({:?}, enabled: {}) but is invalid: {:?}",
                vars, config, config.enabled(), messages
            ),
            (Err(err), Ok(_)) => prop_assert!(false, "{:?} was rejected: {}", vars, err),
        }
    }

    /// Any variable name under `TELEMETRY_`: ignored, or an "unknown variable" error
    /// naming it; never a panic, and never on without `TELEMETRY_ENABLED`.
    #[test]
    fn any_variable_name_is_ignored_or_refused_by_name(
        suffix in prop_oneof![text(), spelling(&["ENABLE", "ENABLD", "EXPORT", "FIEL", "FILES", "ENDPOINT"])],
        value in text(),
    ) {
        let name = format!("TELEMETRY_{suffix}");
        prop_assume!(![
            "TELEMETRY_ENABLED",
            "TELEMETRY_EXPORTER",
            "TELEMETRY_FILE",
            "TELEMETRY_PROMETHEUS_ADDR",
            "TELEMETRY_SPAN_FIELDS",
            "TELEMETRY_SPOOL_DIR",
        ].contains(&name.as_str()));
        match Config::from_iter([(name.as_str(), value.as_str()), ("TELEMETRY_EXPORTER", "stdout")]) {
            Ok(config) => {
                prop_assert!(!config.enabled());
                prop_assert_eq!(config.exporters().collect::<Vec<_>>(), [Exporter::Stdout]);
            }
            Err(err) => {
                prop_assert_eq!(err.variable(), name.as_str());
                let message = err.to_string();
                // The name quoted as given, control characters escaped (one clean line).
                prop_assert!(
                    message.starts_with(&format!("unknown variable {} (did you mean TELEMETRY_", shown(&name))),
                    "{}", message
                );
            }
        }
    }

    /// Values that are not UTF-8 (possible on Unix): refused with the documented
    /// message, the value shown with U+FFFD where a byte was invalid.
    #[cfg(unix)]
    #[test]
    fn any_bytes_as_telemetry_enabled_are_valid_utf8_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        use std::os::unix::ffi::OsStringExt;
        let value = OsString::from_vec(bytes.clone());
        let got = Config::from_iter([(OsString::from("TELEMETRY_ENABLED"), value)]);
        match String::from_utf8(bytes) {
            Ok(text) => prop_assert_eq!(
                got.map(|c| c.enabled()).map_err(|e| e.to_string()),
                documented_enabled(&text)
            ),
            Err(err) => {
                let lossy = String::from_utf8_lossy(err.as_bytes()).into_owned();
                prop_assert_eq!(
                    got.map_err(|e| e.to_string()),
                    Err(format!("invalid value {lossy:?} for TELEMETRY_ENABLED (not valid UTF-8; expected true, false, 1 or 0)"))
                );
            }
        }
    }
}

/// A name near a known one is echoed in the error as given. A name containing a line
/// break or an escape sequence (possible: only `=` and NUL cannot be in a name) then
/// makes the "one-line error" two lines, or sends the escape sequence to the terminal.
#[test]
fn errors_are_one_line_even_for_names_with_control_characters() {
    for name in [
        "TELEMETRY_ENABLE\n",
        "TELEMETRY_ENABL\u{1b}",
        "TELEMETRY_FIL\r",
    ] {
        let err = Config::from_iter([(name, "true")]).expect_err(name);
        let message = err.to_string();
        assert!(
            one_line_without_controls(&message),
            "the error for {name:?} is not one clean line: {message:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// JSON lines

/// A tag value of any type the encoder takes.
#[derive(Debug, Clone)]
enum AnyValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    prop_oneof![
        4 => text().prop_map(AnyValue::Str),
        1 => any::<i64>().prop_map(AnyValue::I64),
        1 => any::<u64>().prop_map(AnyValue::U64),
        1 => float().prop_map(AnyValue::F64),
        1 => any::<bool>().prop_map(AnyValue::Bool),
    ]
}

impl AnyValue {
    fn as_tag_value(&self) -> TagValue<'_> {
        match self {
            AnyValue::Str(s) => TagValue::Str(s),
            AnyValue::I64(v) => TagValue::I64(*v),
            AnyValue::U64(v) => TagValue::U64(*v),
            AnyValue::F64(v) => TagValue::F64(*v),
            AnyValue::Bool(v) => TagValue::Bool(*v),
        }
    }

    /// Whether `json` (the tag `key` of `line`) is this value as docs/FIELDS.md says
    /// it is written. Floats are checked on the raw text, exactly.
    fn written_as(&self, json: &Value, line: &str, key: &str) -> bool {
        match (self, json) {
            (AnyValue::Str(s), Value::String(j)) => s == j,
            (AnyValue::I64(v), j) => j.as_i64() == Some(*v),
            (AnyValue::U64(v), j) => j.as_u64() == Some(*v),
            (AnyValue::Bool(v), j) => j.as_bool() == Some(*v),
            (AnyValue::F64(v), Value::Null | Value::Number(_)) => {
                same_float(float_at(line, key, true), *v)
            }
            _ => false,
        }
    }
}

/// Any float, NaN and the infinities included (`any::<f64>()` never gives those).
fn float() -> impl Strategy<Value = f64> {
    proptest::num::f64::ANY
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(vec![Kind::Event, Kind::Metric, Kind::Timing])
}

proptest! {
    #![proptest_config(config())]

    /// A record built directly and written by `JsonLinesSink`: exactly one line, and
    /// every part of it parses back to what went in.
    #[test]
    fn any_record_is_one_json_line_that_parses_back_exactly(
        kind in kind(),
        service in text(),
        name in text(),
        value in float(),
        tags in proptest::collection::vec((key(), any_value()), 0..12),
    ) {
        let tag_list: Vec<Tag<'_>> = tags.iter().map(|(k, v)| Tag::new(k, v.as_tag_value())).collect();
        let record = Record::new(kind, &name, &tag_list).with_value(value);
        let sink = JsonLinesSink::new(Vec::new()).with_service(&service);
        sink.record(&record);
        prop_assert_eq!(sink.lost(), 0);
        let text = String::from_utf8(sink.into_inner()).expect("UTF-8");
        let (top, json_tags) = one_line(&text);
        let line = text.trim_end();

        let mut expected_keys: Vec<&str> = match kind {
            Kind::Event => vec!["timestamp", "service", "kind", "name", "tags"],
            Kind::Metric => vec!["timestamp", "service", "kind", "name", "value", "tags"],
            Kind::Timing => vec!["timestamp", "service", "kind", "name", "duration_ms", "unit", "tags"],
        };
        let nonfinite_tag = expected_json_tags(&tags)
            .iter()
            .any(|(_, v)| matches!(v, AnyValue::F64(f) if !f.is_finite()));
        if (kind != Kind::Event && !value.is_finite()) || nonfinite_tag {
            expected_keys.push("nonfinite");
        }
        prop_assert_eq!(top.keys(), expected_keys);
        prop_assert_eq!(top.get("service"), Some(Value::from(service.as_str())));
        prop_assert_eq!(top.get("kind"), Some(Value::from(kind.as_str())));
        prop_assert_eq!(top.get("name"), Some(Value::from(name.as_str())));
        match kind {
            Kind::Metric => prop_assert!(same_float(float_at(line, "value", false), value), "{} in {:.200}", value, line),
            Kind::Timing => {
                prop_assert!(same_float(float_at(line, "duration_ms", false), value), "{} in {:.200}", value, line);
                prop_assert_eq!(top.get("unit"), Some(Value::from("ms")));
            }
            Kind::Event => {}
        }

        let expected = expected_json_tags(&tags);
        prop_assert_eq!(
            json_tags.keys(),
            expected.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
        );
        let (_, raw_tags) = raw_entries(line);
        prop_assert_eq!(raw_tags.len(), expected.len());
        for (((key, want), (_, got)), (_, raw)) in expected.iter().zip(&json_tags.0).zip(&raw_tags) {
            prop_assert!(want.written_as(got, line, key), "tag {:?}: {:?} written as {}", key, want, raw);
        }
    }

    /// Across any records, every top-level key of the JSON lines keeps one JSON type;
    /// `null` appears only where the line's `nonfinite` object names the number that
    /// was not finite (typed stores read null as "no value" for any type).
    #[test]
    fn no_json_key_changes_type_between_records(
        records in proptest::collection::vec(
            (kind(), text(), float(), proptest::collection::vec((key(), any_value()), 0..6)),
            1..24,
        ),
    ) {
        let mut types: std::collections::BTreeMap<String, &'static str> = Default::default();
        for (kind, name, value, tags) in &records {
            let tag_list: Vec<Tag<'_>> = tags.iter().map(|(k, v)| Tag::new(k, v.as_tag_value())).collect();
            let sink = JsonLinesSink::new(Vec::new());
            sink.record(&Record::new(*kind, name, &tag_list).with_value(*value));
            let text = String::from_utf8(sink.into_inner()).expect("UTF-8");
            let json: Value = serde_json::from_str(&text).expect("one JSON line");
            let object = json.as_object().expect("an object");
            for (key, got) in object {
                let type_name = match got {
                    Value::Null => {
                        let pointer = format!("/{key}");
                        prop_assert!(json["nonfinite"][&pointer].is_string(), "null {} not named in {}", key, text);
                        continue;
                    }
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    Value::Array(_) => "array",
                    Value::Object(_) => "object",
                };
                let first = *types.entry(key.clone()).or_insert(type_name);
                prop_assert_eq!(first, type_name, "key {} in {}", key, text);
            }
            for (tag, got) in json["tags"].as_object().expect("tags") {
                if got.is_null() {
                    let pointer = format!("/tags/{}", tag.replace('~', "~0").replace('/', "~1"));
                    prop_assert!(json["nonfinite"][&pointer].is_string(), "null tag {} not named in {}", tag, text);
                }
            }
        }
    }

    /// Function-form calls through the layer, into `MemorySink` and `JsonLinesSink` at
    /// once: the memory sink keeps every pair as given (order and repeats), the JSON
    /// line holds the same text.
    #[test]
    fn any_function_form_call_arrives_exactly_in_memory_and_in_json(
        kind in kind(),
        name in text(),
        value in float(),
        tags in proptest::collection::vec((key(), text()), 0..12),
    ) {
        let memory = MemorySink::new();
        let out = Shared::default();
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(memory.clone()).with_telemetry_filter())
            .with(TelemetryLayer::new(JsonLinesSink::new(out.clone())).with_telemetry_filter());
        let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        tracing::subscriber::with_default(subscriber, || match kind {
            Kind::Event => tracing_telemetry::track_event(&name, &pairs),
            Kind::Metric => tracing_telemetry::track_metric(&name, value, &pairs),
            _ => tracing_telemetry::track_timing(&name, value, &pairs),
        });

        let records = memory.records();
        prop_assert_eq!(records.len(), 1);
        let record = &records[0];
        prop_assert_eq!(record.kind(), kind);
        prop_assert_eq!(record.name(), name.as_str());
        let kept: Vec<(String, OwnedTagValue)> =
            tags.iter().map(|(k, v)| (k.clone(), OwnedTagValue::Str(v.clone()))).collect();
        prop_assert_eq!(record.tags(), kept.as_slice());
        match kind {
            Kind::Metric => prop_assert!(same_float(record.value().unwrap(), value)),
            Kind::Timing => prop_assert!(same_float(record.duration_ms().unwrap(), value)),
            _ => prop_assert_eq!(record.value(), None),
        }

        let text = out.text();
        let (top, json_tags) = one_line(&text);
        prop_assert_eq!(top.get("name"), Some(Value::from(name.as_str())));
        prop_assert_eq!(top.get("file"), Some(Value::from(file!())));
        let expected: Vec<(String, Value)> = expected_json_tags(&tags)
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        prop_assert_eq!(json_tags.0, expected);
        if kind == Kind::Metric {
            prop_assert!(same_float(float_at(&text, "value", false), value));
        }
    }

    /// Macro-form calls with a runtime name and typed values of every kind, NaN and the
    /// infinities included: the types survive, in memory and in JSON.
    #[test]
    fn any_macro_form_call_keeps_its_values_and_types(
        name in text(),
        value in float(),
        s in text(),
        i in any::<i64>(),
        u in any::<u64>(),
        f in float(),
        b in any::<bool>(),
    ) {
        let memory = MemorySink::new();
        let out = Shared::default();
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(memory.clone()).with_telemetry_filter())
            .with(TelemetryLayer::new(JsonLinesSink::new(out.clone())).with_telemetry_filter());
        tracing::subscriber::with_default(subscriber, || {
            tracing_telemetry::track_metric!(name.as_str(), value, s = s.as_str(), i = i, u = u, f = f, b = b, d = %s);
        });

        let records = memory.records();
        prop_assert_eq!(records.len(), 1);
        let record = &records[0];
        prop_assert_eq!(record.name(), name.as_str());
        prop_assert!(same_float(record.value().unwrap(), value));
        prop_assert_eq!(record.tag("s").unwrap(), s.as_str());
        prop_assert_eq!(record.tag("i").unwrap(), i);
        prop_assert_eq!(record.tag("u").unwrap(), u);
        prop_assert!(same_float(record.tag("f").unwrap().as_f64().unwrap(), f));
        prop_assert_eq!(record.tag("b").unwrap(), b);
        prop_assert_eq!(record.tag("d").unwrap(), s.as_str());

        let text = out.text();
        let (top, json_tags) = one_line(&text);
        let line = text.trim_end();
        prop_assert_eq!(top.get("name"), Some(Value::from(name.as_str())));
        prop_assert!(same_float(float_at(line, "value", false), value));
        prop_assert_eq!(json_tags.keys(), ["s", "i", "u", "f", "b", "d"]);
        prop_assert_eq!(json_tags.get("s"), Some(Value::from(s.as_str())));
        prop_assert_eq!(json_tags.get("i"), Some(Value::from(i)));
        prop_assert_eq!(json_tags.get("u"), Some(Value::from(u)));
        prop_assert!(same_float(float_at(line, "f", true), f), "f = {} in {:.300}", f, line);
        prop_assert_eq!(json_tags.get("b"), Some(Value::from(b)));
        prop_assert_eq!(json_tags.get("d"), Some(Value::from(s.as_str())));
    }
}
