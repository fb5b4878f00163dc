//! `TELEMETRY_*` validation: every accepted spelling, and the exact message for what is
//! rejected. Uses `Config::from_iter`, so no test touches the process environment.

use std::path::Path;

use telemetry::{Config, Exporter};

fn enabled(value: &str) -> Result<bool, String> {
    Config::from_iter([("TELEMETRY_ENABLED", value)])
        .map(|c| c.enabled())
        .map_err(|e| e.to_string())
}

#[test]
fn unset_means_off_with_the_stderr_exporter() {
    let config = Config::from_iter(Vec::<(String, String)>::new()).unwrap();
    assert!(!config.enabled());
    assert_eq!(config.exporter(), Exporter::Stderr);
    assert_eq!(config.file(), None);
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
    for (value, exporter) in [
        ("none", Exporter::None),
        ("stdout", Exporter::Stdout),
        ("stderr", Exporter::Stderr),
        ("STDOUT", Exporter::Stdout),
        (" Stderr ", Exporter::Stderr),
        ("", Exporter::Stderr),
    ] {
        let config = Config::from_iter([("TELEMETRY_EXPORTER", value)]).unwrap();
        assert_eq!(config.exporter(), exporter, "TELEMETRY_EXPORTER={value:?}");
    }
}

#[test]
fn unknown_exporters_are_rejected() {
    for value in ["kafka", "otlp", "std out", "stdout,file", "files", "0"] {
        let err = Config::from_iter([("TELEMETRY_EXPORTER", value)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid value {value:?} for TELEMETRY_EXPORTER (expected none, stdout, stderr or file)")
        );
        assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
    }
}

#[test]
fn the_file_exporter_needs_a_file() {
    let config = Config::from_iter([
        ("TELEMETRY_EXPORTER", "file"),
        ("TELEMETRY_FILE", "/var/log/app/telemetry.jsonl"),
    ])
    .unwrap();
    assert_eq!(config.exporter(), Exporter::File);
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
    ] {
        let err = Config::from_iter([(typo, "true")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown variable {typo} (did you mean {known}?)")
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
        "unknown variable TELEMETRY_ENABLE (did you mean TELEMETRY_ENABLED?)"
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
