//! The quickstart example run as a separate process, the way a user runs it: its exit
//! code, what it prints, and every JSON line it writes, parsed.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use support::{example, json_lines, run, temp_dir};

fn quickstart() -> std::process::Command {
    example("quickstart")
}

/// The quickstart's library makes seven track calls.
const CALLS: usize = 7;

#[test]
fn unset_it_runs_says_telemetry_is_off_and_emits_nothing() {
    let (out, stdout, stderr) = run(&mut quickstart());
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("telemetry is off; turn it on with TELEMETRY_ENABLED=true"),
        "{stdout}"
    );
    assert!(stdout.contains("signing up a user"), "{stdout}");
    assert_eq!(stderr, "", "nothing but logs may appear while off");
    // Log lines only (the request span shows as `request{request_id="r-42"}` in them):
    // no JSON line.
    assert!(!stdout.lines().any(|l| l.starts_with('{')), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "no colour codes when not a terminal: {stdout:?}"
    );
}

#[test]
fn an_invalid_value_exits_non_zero_with_the_one_line_error() {
    let (out, stdout, stderr) = run(quickstart().env("TELEMETRY_ENABLED", "banana"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: invalid value \"banana\" for TELEMETRY_ENABLED (expected true, false, 1 or 0)\n"
    );
    assert_eq!(stdout, "");
}

#[test]
fn every_rejected_setting_gets_its_message_from_try_init() {
    let cases = [
        (
            "TELEMETRY_ENABLED",
            "yes",
            r#"invalid value "yes" for TELEMETRY_ENABLED (expected true, false, 1 or 0)"#,
        ),
        (
            "TELEMETRY_EXPORTER",
            "kafka",
            r#"invalid value "kafka" for TELEMETRY_EXPORTER (expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#,
        ),
        (
            "TELEMETRY_ENABLE",
            "true",
            r#"unknown variable "TELEMETRY_ENABLE" (did you mean TELEMETRY_ENABLED?)"#,
        ),
        (
            "TELEMETRY_EXPORTR",
            "file",
            r#"unknown variable "TELEMETRY_EXPORTR" (did you mean TELEMETRY_EXPORTER?)"#,
        ),
    ];
    for (name, value, message) in cases {
        let (out, _, stderr) = run(quickstart().env(name, value));
        assert_eq!(out.status.code(), Some(1), "{name}={value}");
        assert_eq!(stderr, format!("error: {message}\n"), "{name}={value}");
    }
}

#[test]
fn enabled_it_writes_one_json_line_per_call_to_stderr() {
    let (out, stdout, stderr) = run(quickstart().env("TELEMETRY_ENABLED", "TRUE"));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("telemetry is on"), "{stdout}");
    let records = json_lines(&stderr);
    assert_eq!(records.len(), CALLS, "{stderr}");
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "user.signup",
            "user.upgrade",
            "queue.depth",
            "queue.drain",
            "db.query",
            "cache.hit_ratio",
            "cache.warmup"
        ]
    );
    assert_eq!(records[1]["tags"]["seats"], 3);
    assert_eq!(records[1]["tags"]["trial"], false);
    assert_eq!(records[1]["module"], "quickstart::library");
}

#[test]
fn every_line_names_the_service_from_the_environment_or_the_default() {
    let (out, _, stderr) = run(quickstart().env("TELEMETRY_ENABLED", "true"));
    assert!(out.status.success(), "{stderr}");
    for record in json_lines(&stderr) {
        assert_eq!(record["service"], "unknown_service:quickstart");
    }
    let (out, _, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "true")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=shop,service.version=1.2.3",
        )
        .env("OTEL_SERVICE_NAME", "checkout"));
    assert!(out.status.success(), "{stderr}");
    let records = json_lines(&stderr);
    assert_eq!(records.len(), CALLS);
    for record in records {
        assert_eq!(record["service"], "checkout");
    }
}

#[test]
fn an_invalid_resource_attribute_list_stops_startup_with_its_message() {
    let (out, stdout, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "true")
        .env("OTEL_RESOURCE_ATTRIBUTES", "team=core,region"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: invalid value \"team=core,region\" for OTEL_RESOURCE_ATTRIBUTES (expected key=value pairs separated by commas, such as service.namespace=shop,deployment.environment=prod; \",\", \"=\" and \"%\" inside keys and values percent-encoded, the result UTF-8)\n"
    );
    assert_eq!(stdout, "");
}

#[test]
fn span_fields_put_the_request_id_on_every_record_made_in_the_request() {
    let (out, _, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_SPAN_FIELDS", "request_id"));
    assert!(out.status.success(), "{stderr}");
    let records = json_lines(&stderr);
    assert_eq!(records.len(), CALLS, "{stderr}");
    for record in &records {
        assert_eq!(record["tags"]["request_id"], "r-42", "{record}");
    }
    // The call's own tags are still there, first.
    assert_eq!(
        records[0]["tags"],
        serde_json::json!({"plan": "pro", "request_id": "r-42"})
    );

    // Unset, the span is not looked at.
    let (_, _, stderr) = run(quickstart().env("TELEMETRY_ENABLED", "true"));
    for record in json_lines(&stderr) {
        assert!(record["tags"].get("request_id").is_none(), "{record}");
    }
}

#[test]
fn the_timestamp_parses_with_the_layout_shippers_are_given() {
    // docs/OPERATIONS.md gives the OpenTelemetry collector's filelog receiver the Go
    // layout `2006-01-02T15:04:05.999999Z07:00`: date, `T`, time, a fraction of up to
    // six digits, then `Z` or an offset. Each timestamp must match it exactly (six
    // digits and `Z` here), and parse as strict RFC 3339 to the instant it was made.
    let before = std::time::SystemTime::now();
    let (out, _, stderr) = run(quickstart().env("TELEMETRY_ENABLED", "true"));
    let after = std::time::SystemTime::now();
    assert!(out.status.success(), "{stderr}");
    for line in stderr.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let timestamp = record["timestamp"].as_str().unwrap();
        let bytes = timestamp.as_bytes();
        let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
        assert_eq!(bytes.len(), shape.len(), "{timestamp}");
        for (got, want) in bytes.iter().zip(shape.bytes()) {
            match want {
                b'd' => assert!(got.is_ascii_digit(), "{timestamp}"),
                _ => assert_eq!(*got, want, "{timestamp}"),
            }
        }
        let at = humantime::parse_rfc3339(timestamp).unwrap_or_else(|e| panic!("{timestamp}: {e}"));
        // Microseconds: the instant is within the run, give or take the truncation.
        assert!(
            at + std::time::Duration::from_micros(1) >= before && at <= after,
            "{timestamp}"
        );
        // One object per line, and the keys a shipper maps stay where they are.
        assert!(line.starts_with("{\"timestamp\":\""), "{line}");
        assert!(line.ends_with('}'), "{line}");
    }
}

#[test]
fn with_the_stdout_exporter_stdout_is_pure_json_and_logs_move_to_stderr() {
    let (out, stdout, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "1")
        .env("TELEMETRY_EXPORTER", "stdout"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(json_lines(&stdout).len(), CALLS);
    assert!(stderr.contains("telemetry is on"), "{stderr}");
}

#[test]
fn with_the_stdout_exporter_configured_but_off_logs_are_already_on_stderr() {
    // So that turning telemetry on at run time never mixes log lines into the JSON.
    let (out, stdout, stderr) = run(quickstart().env("TELEMETRY_EXPORTER", "stdout"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "", "stdout is reserved for JSON lines");
    assert!(stderr.contains("telemetry is off"), "{stderr}");
    assert!(stderr.contains("signing up a user"), "{stderr}");
}

#[test]
fn with_the_file_exporter_every_call_is_a_line_in_the_file() {
    let dir = temp_dir("quickstart-file");
    let file = dir.join("telemetry.jsonl");

    for run_number in 1..=2 {
        let (out, _, stderr) = run(quickstart()
            .env("TELEMETRY_ENABLED", "TRUE")
            .env("TELEMETRY_EXPORTER", "file")
            .env("TELEMETRY_FILE", &file));
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stderr, "", "records go to the file only");
        let text = std::fs::read_to_string(&file).unwrap();
        // Appended, never truncated.
        assert_eq!(json_lines(&text).len(), CALLS * run_number);
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "telemetry files are readable by their owner only"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exporter_none_emits_nothing_even_when_enabled() {
    let (out, stdout, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "none"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "");
    // Log lines only (the request span shows as `request{request_id="r-42"}` in them):
    // no JSON line.
    assert!(!stdout.lines().any(|l| l.starts_with('{')), "{stdout}");
}

#[test]
fn a_bad_exporter_list_stops_startup_with_its_message() {
    for (value, message) in [
        (
            "none,stderr",
            r#"invalid value "none,stderr" for TELEMETRY_EXPORTER ("none" cannot be combined with other exporters; expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#,
        ),
        (
            "file,file",
            r#"invalid value "file,file" for TELEMETRY_EXPORTER ("file" is listed twice; expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#,
        ),
    ] {
        let (out, stdout, stderr) = run(quickstart()
            .env("TELEMETRY_ENABLED", "true")
            .env("TELEMETRY_EXPORTER", value));
        assert_eq!(out.status.code(), Some(1), "{value}");
        assert_eq!(stderr, format!("error: {message}\n"));
        assert_eq!(stdout, "");
    }
}

#[cfg(not(feature = "prometheus"))]
#[test]
fn an_exporter_left_out_of_the_build_names_the_feature_to_enable() {
    let (out, _, stderr) = run(quickstart()
        .env("TELEMETRY_ENABLED", "true")
        .env("TELEMETRY_EXPORTER", "stderr,prometheus"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: invalid value \"stderr,prometheus\" for TELEMETRY_EXPORTER (this app was built without the prometheus exporter; enable the \"prometheus\" feature of the tracing-telemetry crate)\n"
    );
}
