//! From captured records to the official OTLP types: one log record per
//! `track_event`, in one resource (the service) and one scope (`tracing-telemetry`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::config::otlp::OtlpConfig;
use crate::pipeline::handoff::Captured;
use crate::record::TagValue;

/// Source location, as the OpenTelemetry semantic conventions name it.
pub(crate) const CODE_FILE_PATH: &str = "code.file.path";
pub(crate) const CODE_LINE_NUMBER: &str = "code.line.number";
/// The Rust module path of the macro form's call site.
pub(crate) const CODE_NAMESPACE: &str = "code.namespace";

pub(crate) const SCOPE_NAME: &str = env!("CARGO_PKG_NAME");

/// The attribute that names each log record uniquely, so that a backend can drop the
/// copies an at-least-once delivery may send.
pub(crate) const RECORD_ID: &str = "telemetry.record_id";

/// Unique record ids: 32 lowercase hex digits, a random 64-bit prefix drawn once per
/// exporter followed by a 64-bit counter. Two exporters share a prefix with odds of
/// about 2^-64 per pair; the counter never repeats within one.
#[derive(Debug)]
pub(crate) struct RecordIds {
    prefix: u64,
    next: u64,
}

impl RecordIds {
    pub(crate) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std's RandomState is keyed from the operating system's randomness once per
        // process (and varied per instance): enough to keep processes apart without a
        // random-number crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(now);
        hasher.write_u32(std::process::id());
        RecordIds {
            prefix: hasher.finish(),
            next: 0,
        }
    }

    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("{:016x}{:016x}", self.prefix, self.next);
        self.next = self.next.wrapping_add(1);
        id
    }
}

fn string(s: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.to_owned())),
    }
}

fn key_value(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..KeyValue::default()
    }
}

/// A tag's value, typed: strings, integers, floats and booleans as such. An unsigned
/// integer beyond `i64::MAX` (OTLP integers are signed) travels as its decimal string,
/// so that no digit is lost.
fn any_value(value: TagValue<'_>) -> AnyValue {
    let value = match value {
        TagValue::Str(s) => Value::StringValue(s.to_owned()),
        TagValue::I64(v) => Value::IntValue(v),
        TagValue::U64(v) => match i64::try_from(v) {
            Ok(v) => Value::IntValue(v),
            Err(_) => Value::StringValue(v.to_string()),
        },
        TagValue::F64(v) => Value::DoubleValue(v),
        TagValue::Bool(v) => Value::BoolValue(v),
    };
    AnyValue { value: Some(value) }
}

/// The resource every request carries: `service.name`, the other configured
/// attributes, and the `telemetry.sdk.*` attributes naming this crate.
pub(crate) fn resource(config: &OtlpConfig) -> Resource {
    let mut attributes: Vec<KeyValue> = config
        .resource_attributes()
        .map(|(k, v)| key_value(k, string(v)))
        .collect();
    for (key, value) in [
        ("telemetry.sdk.name", SCOPE_NAME),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ] {
        if !attributes.iter().any(|kv| kv.key == key) {
            attributes.push(key_value(key, string(value)));
        }
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

/// The instrumentation scope: this crate and its version.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
}

/// One event as a log record: the event name as `event_name` and as the body (so that
/// backends which do not show `event_name` yet still show it), the call's time, the
/// time the exporter took it (`observed`), severity INFO, the properties as typed
/// attributes, the call site as `code.*` attributes and `record_id` as
/// `telemetry.record_id`.
pub(crate) fn log_record(
    event: &Captured<'_>,
    observed_unix_nano: u64,
    record_id: String,
) -> LogRecord {
    let mut attributes = Vec::with_capacity(event.tags.len() + 4);
    attributes.extend(event.tags.iter().map(|&(k, v)| key_value(k, any_value(v))));
    if let Some(file) = event.file {
        attributes.push(key_value(CODE_FILE_PATH, string(file)));
    }
    if let Some(line) = event.line {
        attributes.push(key_value(
            CODE_LINE_NUMBER,
            AnyValue {
                value: Some(Value::IntValue(i64::from(line))),
            },
        ));
    }
    if let Some(module) = event.module_path {
        attributes.push(key_value(CODE_NAMESPACE, string(module)));
    }
    attributes.push(key_value(
        RECORD_ID,
        AnyValue {
            value: Some(Value::StringValue(record_id)),
        },
    ));
    LogRecord {
        time_unix_nano: event.time_unix_nano,
        observed_time_unix_nano: observed_unix_nano,
        severity_number: SeverityNumber::Info as i32,
        severity_text: "INFO".to_owned(),
        body: Some(string(event.name)),
        attributes,
        event_name: event.name.to_owned(),
        // The span the call was made in (W3C ids, as tracing-opentelemetry gave them).
        trace_id: event
            .trace
            .map_or_else(Vec::new, |(trace, _)| trace.to_vec()),
        span_id: event.trace.map_or_else(Vec::new, |(_, span)| span.to_vec()),
        ..LogRecord::default()
    }
}

/// One request holding these log records.
pub(crate) fn logs_request(
    resource: &Resource,
    scope: &InstrumentationScope,
    log_records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope.clone()),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Kind;

    #[test]
    fn properties_keep_their_types_and_the_call_site_is_code_attributes() {
        let event = Captured {
            kind: Kind::Event,
            time_unix_nano: 7,
            time_in_ticks: false,
            value: None,
            meta: crate::track::MetricMeta::NONE,
            name: "user.signup",
            module_path: Some("app"),
            file: Some("src/main.rs"),
            line: Some(3),
            trace: Some((&[0xab; 16], &[0xcd; 8])),
            tags: vec![
                ("plan", TagValue::Str("pro")),
                ("seats", TagValue::I64(3)),
                ("huge", TagValue::U64(u64::MAX)),
                ("ratio", TagValue::F64(0.5)),
                ("trial", TagValue::Bool(false)),
            ],
        };
        let record = log_record(&event, 9, "00ff".to_owned());
        assert_eq!(
            (record.time_unix_nano, record.observed_time_unix_nano),
            (7, 9)
        );
        assert_eq!(
            (record.trace_id, record.span_id),
            (vec![0xab; 16], vec![0xcd; 8]),
            "the span's ids, in the log record's own fields"
        );
        assert_eq!(record.event_name, "user.signup");
        let values: Vec<(&str, Option<&Value>)> = record
            .attributes
            .iter()
            .map(|kv| {
                (
                    kv.key.as_str(),
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                )
            })
            .collect();
        assert_eq!(
            values,
            [
                ("plan", Some(&Value::StringValue("pro".into()))),
                ("seats", Some(&Value::IntValue(3))),
                ("huge", Some(&Value::StringValue(u64::MAX.to_string()))),
                ("ratio", Some(&Value::DoubleValue(0.5))),
                ("trial", Some(&Value::BoolValue(false))),
                (
                    CODE_FILE_PATH,
                    Some(&Value::StringValue("src/main.rs".into()))
                ),
                (CODE_LINE_NUMBER, Some(&Value::IntValue(3))),
                (CODE_NAMESPACE, Some(&Value::StringValue("app".into()))),
                (RECORD_ID, Some(&Value::StringValue("00ff".into()))),
            ]
        );
    }

    #[test]
    fn record_ids_are_32_hex_digits_and_never_repeat() {
        let (mut a, mut b) = (RecordIds::new(), RecordIds::new());
        let ids: std::collections::HashSet<String> =
            (0..1000).flat_map(|_| [a.next_id(), b.next_id()]).collect();
        assert_eq!(ids.len(), 2000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32
                    && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        );
    }

    #[test]
    fn the_resource_names_the_service_and_the_sdk() {
        let config = OtlpConfig::new().with_service_name("checkout");
        let keys: Vec<String> = resource(&config)
            .attributes
            .iter()
            .map(|kv| kv.key.clone())
            .collect();
        assert_eq!(
            keys,
            [
                "service.name",
                "telemetry.sdk.name",
                "telemetry.sdk.language",
                "telemetry.sdk.version"
            ]
        );
        assert_eq!(scope().name, "tracing-telemetry");
        assert_eq!(scope().version, env!("CARGO_PKG_VERSION"));
    }
}
