//! The service on every record: from `OTEL_SERVICE_NAME`, from `OTEL_RESOURCE_ATTRIBUTES`,
//! the OpenTelemetry default, or code; and on every JSON line.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use tracing_telemetry::{Config, Destination};

#[test]
fn the_service_name_comes_from_otel_service_name_first() {
    let config = Config::from_iter([
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"),
        ("OTEL_SERVICE_NAME", "checkout"),
    ])
    .unwrap();
    assert_eq!(config.resource().service_name(), "checkout");
}

#[test]
fn then_from_the_resource_attributes_percent_decoded() {
    let config = Config::from_iter([(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=check%20out,service.version=1.4.2, deployment.environment=prod ,team=a%2Cb",
    )])
    .unwrap();
    let resource = config.resource();
    assert_eq!(resource.service_name(), "check out");
    assert_eq!(resource.service_version(), Some("1.4.2"));
    assert_eq!(
        resource.attributes().collect::<Vec<_>>(),
        [
            ("service.name", "check out"),
            ("service.version", "1.4.2"),
            ("deployment.environment", "prod"),
            ("team", "a,b"),
        ]
    );
}

#[test]
fn else_unknown_service_and_the_executable_name() {
    let exe = std::env::current_exe().unwrap();
    let stem = exe.file_stem().unwrap().to_str().unwrap();
    for config in [
        Config::new(),
        Config::from_iter([("OTEL_SERVICE_NAME", ""), ("OTEL_RESOURCE_ATTRIBUTES", " ")]).unwrap(),
    ] {
        assert_eq!(
            config.resource().service_name(),
            format!("unknown_service:{stem}")
        );
        assert_eq!(config.resource().service_version(), None);
    }
}

#[test]
fn code_wins_over_the_environment() {
    let config = Config::from_iter([
        ("OTEL_SERVICE_NAME", "from-env"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.version=1,team=env"),
    ])
    .unwrap()
    .with_service_name("checkout")
    .with_service_version("2.0.0")
    .with_resource_attribute("team", "code");
    let resource = config.resource();
    assert_eq!(resource.service_name(), "checkout");
    assert_eq!(resource.service_version(), Some("2.0.0"));
    assert_eq!(resource.get("team"), Some("code"));
}

#[test]
fn an_invalid_resource_attribute_list_names_the_variable_the_value_and_the_form() {
    // With telemetry on: off, the variable is another SDK's business (see
    // tests/config_validation.rs).
    let on = ("TELEMETRY_ENABLED", "true");
    let err = Config::from_iter([on, ("OTEL_RESOURCE_ATTRIBUTES", "team")]).unwrap_err();
    assert_eq!(err.variable(), "OTEL_RESOURCE_ATTRIBUTES");
    assert_eq!(
        err.to_string(),
        r#"invalid value "team" for OTEL_RESOURCE_ATTRIBUTES (expected key=value pairs separated by commas, such as service.namespace=shop,deployment.environment=prod; ",", "=" and "%" inside keys and values percent-encoded, the result UTF-8)"#
    );
    let err = Config::from_iter([on, ("OTEL_RESOURCE_ATTRIBUTES", "a=%ff")]).unwrap_err();
    assert!(err
        .to_string()
        .starts_with(r#"invalid value "a=%ff" for OTEL_RESOURCE_ATTRIBUTES"#));
}

#[test]
fn otel_variables_are_never_taken_for_telemetry_typos() {
    let config = Config::from_iter([
        ("OTEL_SERVICE_NAM", "x"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not checked here"),
        ("OTEL_SERVICE_NAME", "checkout"),
    ])
    .unwrap();
    assert_eq!(config.resource().service_name(), "checkout");
}

#[test]
fn every_json_line_of_every_destination_carries_the_service() {
    let dir = support::temp_dir("service");
    let path = dir.join("telemetry.jsonl");
    let config = Config::from_iter([("OTEL_SERVICE_NAME", "checkout \"eu\"")])
        .unwrap()
        .with_enabled(true)
        .with_destinations([Destination::file(&path)]);
    let (layer, guard) = tracing_telemetry::layer_with(&config).unwrap();
    let subscriber =
        tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing_telemetry::track_event("a", &[]);
        tracing_telemetry::track_metric!("b", 1.0, queue = "emails");
    });
    drop(guard);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(json["service"], "checkout \"eu\"");
        // Second, after the timestamp: where FIELDS.md puts it.
        let after_timestamp = &line[line.find("Z\",").unwrap() + 3..];
        assert!(
            after_timestamp.starts_with(r#""service":"checkout \"eu\"","kind":"#),
            "{line}"
        );
    }
}
