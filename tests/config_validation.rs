//! `TELEMETRY_*` validation: every accepted spelling, and the exact message for what is
//! rejected. Uses `Config::from_iter`, so no test touches the process environment.

#![cfg(feature = "subscriber")]

use std::path::{Path, PathBuf};

use tracing_telemetry::{Config, Destination, Exporter};

fn enabled(value: &str) -> Result<bool, String> {
    Config::from_iter([("TELEMETRY_ENABLED", value)])
        .map(|c| c.enabled())
        .map_err(|e| e.to_string())
}

#[test]
fn unset_means_off_with_the_stderr_exporter() {
    let config = Config::from_iter(Vec::<(String, String)>::new()).unwrap();
    assert!(!config.enabled());
    assert_eq!(config.destinations(), [Destination::Stderr]);
    assert_eq!(config.file(), None);
    assert!(config.span_fields().is_empty());
    assert_eq!(config.spool_dir(), None);
}

#[test]
fn every_spelling_of_true_turns_telemetry_on() {
    for value in [
        "true", "TRUE", "True", "tRuE", "1", " true", "true ", "\ttrue\n", "  1  ",
    ] {
        assert_eq!(enabled(value), Ok(true), "TELEMETRY_ENABLED={value:?}");
    }
}

#[test]
fn every_spelling_of_false_and_empty_leaves_it_off() {
    for value in [
        "false", "FALSE", "False", "fAlSe", "0", " false ", "\n0\t", "", " ", "\t\n",
    ] {
        assert_eq!(enabled(value), Ok(false), "TELEMETRY_ENABLED={value:?}");
    }
}

#[test]
fn rejected_values_name_the_variable_the_value_and_what_is_accepted() {
    let cases = [
        (
            "yes",
            r#"invalid value "yes" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "no",
            r#"invalid value "no" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "2",
            r#"invalid value "2" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "tru",
            r#"invalid value "tru" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "banana",
            r#"invalid value "banana" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "true false",
            r#"invalid value "true false" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "on",
            r#"invalid value "on" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "off",
            r#"invalid value "off" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "enabled",
            r#"invalid value "enabled" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "-1",
            r#"invalid value "-1" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "01",
            r#"invalid value "01" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "1.0",
            r#"invalid value "1.0" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "t",
            r#"invalid value "t" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "\"true\"",
            r#"invalid value "\"true\"" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            " yes\n",
            r#"invalid value " yes\n" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "trué",
            r#"invalid value "trué" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
    ];
    for (value, message) in cases {
        assert_eq!(
            enabled(value),
            Err(message.to_owned()),
            "TELEMETRY_ENABLED={value:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_value_that_is_not_utf8_is_rejected_not_a_panic() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    let value = OsString::from_vec(vec![b't', 0xff, b'e']);
    let err = Config::from_iter([(OsString::from("TELEMETRY_ENABLED"), value)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"t\u{FFFD}e\" for TELEMETRY_ENABLED (not valid UTF-8; expected true, false, 1 or 0)"
    );
    assert_eq!(err.variable(), "TELEMETRY_ENABLED");
}

#[test]
fn exporters_are_accepted_in_any_case() {
    for (value, destinations) in [
        ("none", vec![]),
        ("stdout", vec![Destination::Stdout]),
        ("stderr", vec![Destination::Stderr]),
        ("STDOUT", vec![Destination::Stdout]),
        (" Stderr ", vec![Destination::Stderr]),
        ("", vec![Destination::Stderr]),
        (" NONE\t", vec![]),
    ] {
        let config = Config::from_iter([("TELEMETRY_EXPORTER", value)]).unwrap();
        assert_eq!(
            config.destinations(),
            destinations,
            "TELEMETRY_EXPORTER={value:?}"
        );
    }
}

#[test]
fn unknown_exporters_are_rejected() {
    for value in ["kafka", "std out", "files", "0", " stdout;stderr "] {
        let err = Config::from_iter([("TELEMETRY_EXPORTER", value)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid value {value:?} for TELEMETRY_EXPORTER (expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)")
        );
        assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
    }
}

#[cfg_attr(
    not(unix),
    ignore = "a Unix absolute path: on Windows it has no drive and is made absolute against the working directory's"
)]
#[test]
fn the_file_exporter_needs_a_file() {
    let config = Config::from_iter([
        ("TELEMETRY_EXPORTER", "file"),
        ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    ])
    .unwrap();
    assert_eq!(config.exporters().collect::<Vec<_>>(), [Exporter::File]);
    assert_eq!(
        config.file(),
        Some(Path::new("/var/log/app/telemetry.jsonl"))
    );

    for file in [None, Some(""), Some("  ")] {
        let mut vars = vec![("TELEMETRY_EXPORTER", "file")];
        vars.extend(file.map(|f| ("TELEMETRY_FILE", f)));
        let err = Config::from_iter(vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"TELEMETRY_FILE is required when TELEMETRY_EXPORTER is "file" (set it to the path of the JSON-lines file)"#
        );
    }
}

#[cfg_attr(
    not(unix),
    ignore = "a Unix absolute path: on Windows it has no drive and is made absolute against the working directory's"
)]
#[test]
fn a_file_without_the_file_exporter_is_an_error_not_a_silent_redirect() {
    let err = Config::from_iter([("TELEMETRY_FILE", "/tmp/t.jsonl")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"TELEMETRY_FILE is set to "/tmp/t.jsonl" but TELEMETRY_EXPORTER is "stderr" (set TELEMETRY_EXPORTER=file to write to the file, or unset TELEMETRY_FILE)"#
    );
    let err = Config::from_iter([
        ("TELEMETRY_EXPORTER", "stdout"),
        ("TELEMETRY_FILE", "t.jsonl"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"TELEMETRY_EXPORTER is "stdout""#),
        "{err}"
    );
}

#[test]
fn near_misses_of_known_names_are_errors_with_a_suggestion() {
    for (typo, known) in [
        ("TELEMETRY_ENABLE", "TELEMETRY_ENABLED"),
        ("TELEMETRY_ENABLD", "TELEMETRY_ENABLED"),
        ("TELEMETRY_ENALBED", "TELEMETRY_ENABLED"),
        ("TELEMETRY_enabled", "TELEMETRY_ENABLED"),
        ("TELEMETRY_EXPORTR", "TELEMETRY_EXPORTER"),
        ("TELEMETRY_EXPORT", "TELEMETRY_EXPORTER"),
        ("TELEMETRY_EXPORTERS", "TELEMETRY_EXPORTER"),
        ("TELEMETRY_FIEL", "TELEMETRY_FILE"),
        ("TELEMETRY_FILES", "TELEMETRY_FILE"),
        ("TELEMETRY_PROMETHEUS_ADR", "TELEMETRY_PROMETHEUS_ADDR"),
        ("TELEMETRY_SPAN_FIELD", "TELEMETRY_SPAN_FIELDS"),
        ("TELEMETRY_SPOOLDIR", "TELEMETRY_SPOOL_DIR"),
    ] {
        let err = Config::from_iter([(typo, "true")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown variable \"{typo}\" (did you mean {known}?)")
        );
        assert_eq!(err.variable(), typo);
    }
}

#[test]
fn a_typo_is_reported_even_next_to_the_correct_name() {
    let err = Config::from_iter([("TELEMETRY_ENABLED", "true"), ("TELEMETRY_ENABLE", "false")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown variable "TELEMETRY_ENABLE" (did you mean TELEMETRY_ENABLED?)"#
    );
}

#[test]
fn other_tools_telemetry_variables_are_left_alone() {
    let config = Config::from_iter([
        ("TELEMETRY_ENDPOINT", "http://collector:4317"),
        ("TELEMETRY_SERVICE_NAME", "billing"),
        ("TELEMETRY_FILTER", "info"),
        ("TELEMETRY_", "x"),
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
        ("OTEL_SERVICE_NAME", "billing"),
        ("OTEL_RESOURCE_ATTRIBUTES", "telemetry.enabled=true"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert!(!config.enabled());
}

#[test]
fn an_invalid_configuration_never_turns_telemetry_on() {
    // Even with ENABLED valid and true, any other problem fails the whole config.
    for vars in [
        vec![
            ("TELEMETRY_ENABLED", "true"),
            ("TELEMETRY_EXPORTER", "kafka"),
        ],
        vec![
            ("TELEMETRY_ENABLED", "true"),
            ("TELEMETRY_EXPORTER", "file"),
        ],
        vec![
            ("TELEMETRY_ENABLED", "true"),
            ("TELEMETRY_EXPORTR", "stdout"),
        ],
        vec![("TELEMETRY_ENABLED", "yes")],
    ] {
        assert!(Config::from_iter(vars.clone()).is_err(), "{vars:?}");
    }
}

fn exporter_error(value: &str) -> String {
    Config::from_iter([("TELEMETRY_EXPORTER", value)])
        .unwrap_err()
        .to_string()
}

#[cfg_attr(
    not(unix),
    ignore = "a Unix absolute path: on Windows it has no drive and is made absolute against the working directory's"
)]
#[test]
fn several_exporters_are_a_comma_separated_list() {
    let config = Config::from_iter([
        ("TELEMETRY_EXPORTER", " stderr , FILE,stdout "),
        ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    ])
    .unwrap();
    assert_eq!(
        config.destinations(),
        [
            Destination::Stderr,
            Destination::File(PathBuf::from("/var/log/app/telemetry.jsonl")),
            Destination::Stdout,
        ]
    );
}

#[test]
fn a_list_with_a_repeat_an_unknown_or_an_empty_entry_or_none_among_others_is_refused() {
    let expected = "expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once";
    for (value, why) in [
        (
            "none,stderr",
            r#""none" cannot be combined with other exporters"#,
        ),
        (
            "stderr, NONE",
            r#""none" cannot be combined with other exporters"#,
        ),
        ("file,file", r#""file" is listed twice"#),
        ("stderr,Stderr", r#""stderr" is listed twice"#),
        ("stderr,kafka", r#"unknown exporter "kafka""#),
        ("stderr,", "an entry is empty"),
        ("stderr,,stdout", "an entry is empty"),
    ] {
        assert_eq!(
            exporter_error(value),
            format!("invalid value {value:?} for TELEMETRY_EXPORTER ({why}; {expected})")
        );
    }
    assert_eq!(
        exporter_error("none,stderr"),
        r#"invalid value "none,stderr" for TELEMETRY_EXPORTER ("none" cannot be combined with other exporters; expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#
    );
    assert_eq!(
        exporter_error("file,file"),
        r#"invalid value "file,file" for TELEMETRY_EXPORTER ("file" is listed twice; expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#
    );
}

#[cfg(not(feature = "prometheus"))]
#[test]
fn an_exporter_not_built_in_names_the_feature_to_enable() {
    assert_eq!(
        exporter_error("stderr,prometheus"),
        r#"invalid value "stderr,prometheus" for TELEMETRY_EXPORTER (this app was built without the prometheus exporter; enable the "prometheus" feature of the tracing-telemetry crate)"#
    );
}

#[cfg(not(feature = "otlp"))]
#[test]
fn the_otlp_exporter_without_its_feature_names_the_feature() {
    assert_eq!(
        exporter_error("otlp"),
        r#"invalid value "otlp" for TELEMETRY_EXPORTER (this app was built without the otlp exporter; enable the "otlp" feature of the tracing-telemetry crate)"#
    );
}

#[cfg(feature = "prometheus")]
#[test]
fn the_prometheus_address_defaults_to_localhost_9464() {
    use std::net::SocketAddr;
    let config = Config::from_iter([("TELEMETRY_EXPORTER", "prometheus")]).unwrap();
    assert_eq!(
        config.destinations(),
        [Destination::Prometheus(
            tracing_telemetry::DEFAULT_PROMETHEUS_ADDR
        )]
    );
    for (value, addr) in [
        ("0.0.0.0:9100", "0.0.0.0:9100"),
        (" [::1]:9464 ", "[::1]:9464"),
        ("localhost:8080", "127.0.0.1:8080"),
    ] {
        let config = Config::from_iter([
            ("TELEMETRY_EXPORTER", "stderr,prometheus"),
            ("TELEMETRY_PROMETHEUS_ADDR", value),
        ])
        .unwrap();
        let addr: SocketAddr = addr.parse().unwrap();
        assert_eq!(
            config.destinations(),
            [Destination::Stderr, Destination::Prometheus(addr)]
        );
    }
    for value in [
        "9464",
        "example.com:9464",
        "127.0.0.1",
        "127.0.0.1:port",
        "localhost:",
    ] {
        let err = Config::from_iter([
            ("TELEMETRY_EXPORTER", "prometheus"),
            ("TELEMETRY_PROMETHEUS_ADDR", value),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid value {value:?} for TELEMETRY_PROMETHEUS_ADDR (expected host:port with an IP address or localhost as the host, such as 127.0.0.1:9464 or 0.0.0.0:9464)")
        );
    }
}

#[test]
fn a_prometheus_address_without_the_prometheus_exporter_is_an_error() {
    let err = Config::from_iter([("TELEMETRY_PROMETHEUS_ADDR", "0.0.0.0:9464")]).unwrap_err();
    assert_eq!(err.variable(), "TELEMETRY_PROMETHEUS_ADDR");
    assert_eq!(
        err.to_string(),
        r#"TELEMETRY_PROMETHEUS_ADDR is set to "0.0.0.0:9464" but TELEMETRY_EXPORTER is "stderr" (add prometheus to TELEMETRY_EXPORTER to serve /metrics, or unset TELEMETRY_PROMETHEUS_ADDR)"#
    );
}

#[cfg_attr(
    not(unix),
    ignore = "a Unix absolute path: on Windows it has no drive and is made absolute against the working directory's"
)]
#[test]
fn span_fields_are_a_list_and_the_spool_dir_a_path() {
    let config = Config::from_iter([
        ("TELEMETRY_SPAN_FIELDS", " request_id, tenant ,user.id"),
        ("TELEMETRY_SPOOL_DIR", "/var/spool/app"),
    ])
    .unwrap();
    assert_eq!(config.span_fields(), ["request_id", "tenant", "user.id"]);
    assert_eq!(config.spool_dir(), Some(Path::new("/var/spool/app")));

    for (value, why) in [
        ("a,,b", "an entry is empty"),
        ("a,b,a", r#""a" is listed twice"#),
    ] {
        let err = Config::from_iter([("TELEMETRY_SPAN_FIELDS", value)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid value {value:?} for TELEMETRY_SPAN_FIELDS ({why}; expected a comma-separated list of span field names, each at most once)")
        );
    }
}

#[test]
fn a_relative_file_is_made_absolute_once_and_trimmed_like_every_value() {
    let cwd = std::env::current_dir().unwrap();
    let config = Config::from_iter([
        ("TELEMETRY_EXPORTER", "file"),
        ("TELEMETRY_FILE", "logs/telemetry.jsonl "),
    ])
    .unwrap();
    // Surrounding whitespace is trimmed, as from every variable (it used to be kept
    // here, and here only).
    assert_eq!(
        config.file(),
        Some(cwd.join("logs/telemetry.jsonl").as_path())
    );
    assert!(config.file().unwrap().is_absolute());

    let config = Config::from_iter([("TELEMETRY_SPOOL_DIR", "spool")]).unwrap();
    assert_eq!(config.spool_dir(), Some(cwd.join("spool").as_path()));
}

#[test]
fn a_variable_set_twice_names_it_and_both_values() {
    let err = Config::from_iter([
        ("TELEMETRY_ENABLED", "true"),
        ("TELEMETRY_ENABLED", "false"),
    ])
    .unwrap_err();
    assert_eq!(err.variable(), "TELEMETRY_ENABLED");
    assert_eq!(
        err.to_string(),
        r#"TELEMETRY_ENABLED is set twice in the environment, to "true" and to "false" (set it once)"#
    );
}

#[test]
fn names_are_quoted_so_stray_spaces_show_and_letter_case_misses_are_caught() {
    for (name, known) in [
        ("TELEMETRY_ENABLED ", "TELEMETRY_ENABLED"),
        ("telemetry_enabled", "TELEMETRY_ENABLED"),
        ("Telemetry_Enabled", "TELEMETRY_ENABLED"),
        ("telemetry_exporter", "TELEMETRY_EXPORTER"),
        ("Telemetry_File", "TELEMETRY_FILE"),
    ] {
        let err = Config::from_iter([(name, "true")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown variable {name:?} (did you mean {known}?)")
        );
    }
    assert_eq!(
        Config::from_iter([("TELEMETRY_ENABLED ", "true")])
            .unwrap_err()
            .to_string(),
        r#"unknown variable "TELEMETRY_ENABLED " (did you mean TELEMETRY_ENABLED?)"#
    );
    // Another tool's variable in lower case is still left alone.
    assert!(Config::from_iter([("telemetry_filter", "info")]).is_ok());
}

#[test]
fn only_ascii_whitespace_is_ignored_around_values() {
    for value in ["\u{a0}true", "true\u{3000}", "\u{85}1", "false\u{2003}"] {
        assert_eq!(
            enabled(value),
            Err(format!(
                "invalid value {value:?} for TELEMETRY_ENABLED (expected true, false, 1 or 0)"
            )),
        );
    }
    assert!(Config::from_iter([("TELEMETRY_EXPORTER", "\u{a0}stderr")]).is_err());
    assert_eq!(enabled("\x0c\r\n true \t"), Ok(true));
}

#[test]
fn long_values_are_cut_in_messages_saying_how_long_they_were() {
    let value = "x".repeat(1 << 20);
    let message = enabled(&value).unwrap_err();
    assert_eq!(
        message,
        format!(
            "invalid value \"{}\"... (1048576 bytes, cut after 64 characters) for TELEMETRY_ENABLED (expected true, false, 1 or 0)",
            "x".repeat(64)
        )
    );
}

/// The `OTEL_*` variables are shared with any OpenTelemetry SDK in the process: with
/// telemetry off, an invalid `OTEL_RESOURCE_ATTRIBUTES` does not stop the app (the
/// default resource stands in); on, it is an error naming the variable.
#[test]
fn an_invalid_resource_variable_stops_only_an_app_with_telemetry_on() {
    for raw in ["deployment.environment=prod,team", "note=100%"] {
        let off = tracing_telemetry::Config::from_iter([("OTEL_RESOURCE_ATTRIBUTES", raw)])
            .unwrap_or_else(|e| panic!("telemetry off, yet {raw:?} fails: {e}"));
        assert!(off
            .resource()
            .service_name()
            .starts_with("unknown_service:"));
        let on = tracing_telemetry::Config::from_iter([
            ("TELEMETRY_ENABLED", "true"),
            ("OTEL_RESOURCE_ATTRIBUTES", raw),
        ])
        .unwrap_err();
        assert_eq!(on.variable(), "OTEL_RESOURCE_ATTRIBUTES");
        assert!(on.to_string().contains(&format!("{raw:?}")), "{on}");
    }
}

/// With the `otlp` exporter listed and telemetry off, no `OTEL_*` variable stops the
/// app: the resource falls back to the default, and a variable the exporter refuses is
/// kept for the moment telemetry is turned on (`tests/toggle.rs` shows that message).
/// On, each is an error naming the variable.
#[cfg(feature = "otlp")]
#[test]
fn with_the_otlp_exporter_an_invalid_otel_variable_stops_only_an_app_with_telemetry_on() {
    for (var, value) in [
        ("OTEL_RESOURCE_ATTRIBUTES", "team"),
        ("OTEL_SERVICE_NAME", "checkout"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "-1"),
    ] {
        let vars = [("TELEMETRY_EXPORTER", "otlp"), (var, value)];
        let off = tracing_telemetry::Config::from_iter(vars)
            .unwrap_or_else(|e| panic!("telemetry off, yet {var}={value} fails: {e}"));
        assert_eq!(off.destinations().len(), 1);
        let on = tracing_telemetry::Config::from_iter(
            vars.into_iter().chain([("TELEMETRY_ENABLED", "true")]),
        );
        if var == "OTEL_SERVICE_NAME" {
            // Valid: it names the service, on and off.
            assert_eq!(off.resource().service_name(), value);
            assert_eq!(on.unwrap().resource().service_name(), value);
            match &off.destinations()[0] {
                Destination::Otlp(otlp) => assert_eq!(otlp.service_name(), value),
                other => panic!("{other:?}"),
            }
            continue;
        }
        let on = on.unwrap_err();
        assert_eq!(on.variable(), var, "{on}");
        assert!(on.to_string().contains(&format!("{value:?}")), "{on}");
    }
}

/// The `otlp` destination that the environment refused (telemetry off), replaced in
/// code by one built there: the one built in code starts.
#[cfg(feature = "otlp")]
#[test]
fn destinations_set_in_code_drop_the_refused_otlp_one_of_the_environment() {
    let config = tracing_telemetry::Config::from_iter([
        ("TELEMETRY_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .unwrap()
    .with_enabled(true);
    let err = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config).unwrap_err();
    assert!(
        err.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
        "{err}"
    );
    let config =
        config.with_destinations([Destination::Otlp(tracing_telemetry::OtlpConfig::new())]);
    let (_layer, guard) = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config)
        .expect("the otlp destination built in code starts");
    drop(guard);
}
