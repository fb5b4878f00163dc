//! The rules every variable the crate reads follows, `TELEMETRY_*` and `OTEL_*` alike,
//! checked for each of them from one table, through `Config::from_iter` (the process
//! environment is never touched):
//!
//! * set twice is an error naming the variable;
//! * empty, or only whitespace, is unset;
//! * whitespace around the value is trimmed;
//! * a relative path is made absolute against the working directory;
//! * a value that is not UTF-8 is an error naming the variable.
//!
//! And what telemetry off means for them: no `OTEL_*` variable stops an app with
//! telemetry off, whatever its value.

#![cfg(feature = "subscriber")]

use std::path::{Path, PathBuf};

use tracing_telemetry::{Config, ConfigError};

/// What a variable needs around it to be read, and a value it accepts.
struct Var {
    name: &'static str,
    /// The other variables that make this one read and its valid value accepted (the
    /// exporter that uses it; telemetry on, so that an `OTEL_*` error is said).
    with: Vec<(&'static str, String)>,
    valid: String,
    /// A value it refuses: where `valid` is also the default, this shows it is read.
    invalid: Option<&'static str>,
    /// A path variable: a relative value is made absolute.
    path: bool,
    /// Its values may hold a credential, so messages never quote them.
    secret: bool,
}

fn var(name: &'static str, with: &[(&'static str, &str)], valid: &str) -> Var {
    Var {
        name,
        with: with.iter().map(|&(n, v)| (n, v.to_owned())).collect(),
        valid: valid.to_owned(),
        invalid: None,
        path: false,
        secret: false,
    }
}

impl Var {
    fn invalid(mut self, value: &'static str) -> Self {
        self.invalid = Some(value);
        self
    }

    fn path(mut self) -> Self {
        self.path = true;
        self
    }

    fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// `Config::from_iter` of the surrounding variables and, if given, this one.
    fn config(&self, values: &[&str]) -> Result<Config, ConfigError> {
        Config::from_iter(
            self.with
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .chain(values.iter().map(|v| (self.name, *v))),
        )
    }
}

const ON: (&str, &str) = ("TELEMETRY_ENABLED", "true");

/// Every variable the crate reads, with what makes it read.
fn every_variable(pki: &Pki) -> Vec<Var> {
    let mut vars = vec![
        var("TELEMETRY_ENABLED", &[], "true").invalid("yes"),
        var("TELEMETRY_EXPORTER", &[ON], "stdout").invalid("kafka"),
        var(
            "TELEMETRY_FILE",
            &[ON, ("TELEMETRY_EXPORTER", "file")],
            "/var/log/app/telemetry.jsonl",
        )
        .path(),
        var("TELEMETRY_SPAN_FIELDS", &[ON], "request_id").invalid("a,,b"),
        var("TELEMETRY_SPOOL_DIR", &[ON], "/var/spool/app").path(),
        var("OTEL_SERVICE_NAME", &[ON], "checkout"),
        var("OTEL_RESOURCE_ATTRIBUTES", &[ON], "team=core").invalid("team"),
    ];
    if cfg!(feature = "prometheus") {
        vars.push(
            var(
                "TELEMETRY_PROMETHEUS_ADDR",
                &[ON, ("TELEMETRY_EXPORTER", "prometheus")],
                "127.0.0.1:9100",
            )
            .invalid("9100"),
        );
    }
    if cfg!(feature = "otlp") {
        vars.extend(otlp_variables(pki));
    }
    vars
}

/// The OTLP exporter's variables, read when it is listed.
fn otlp_variables(pki: &Pki) -> Vec<Var> {
    let otlp = [ON, ("TELEMETRY_EXPORTER", "otlp")];
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let mut vars = vec![
        var("OTEL_METRIC_EXPORT_INTERVAL", &otlp, "1000").invalid("0"),
        var("OTEL_SDK_DISABLED", &otlp, "true").invalid("yes"),
        // The spool directory is read for the exporter too, with the same rules.
        var("TELEMETRY_SPOOL_DIR", &otlp, "/var/spool/app").path(),
        // Read for the resource of every destination, the otlp one included.
        var("OTEL_SERVICE_NAME", &otlp, "checkout"),
        var("OTEL_RESOURCE_ATTRIBUTES", &otlp, "team=core").invalid("team"),
    ];
    for signal in ["", "LOGS_", "METRICS_"] {
        let name = |option: &str| -> &'static str {
            Box::leak(format!("OTEL_EXPORTER_OTLP_{signal}{option}").into_boxed_str())
        };
        vars.extend([
            var(name("ENDPOINT"), &otlp, "http://user:s3cr3t@collector:4318")
                .invalid("collector:4318")
                .secret(),
            var(name("HEADERS"), &otlp, "api-key=s3cr3t")
                .invalid("api-key")
                .secret(),
            var(name("TIMEOUT"), &otlp, "500").invalid("soon"),
            var(name("PROTOCOL"), &otlp, "http/protobuf").invalid("grpc"),
            var(name("COMPRESSION"), &otlp, "gzip").invalid("zstd"),
            var(name("CERTIFICATE"), &otlp, cert)
                .invalid("/nonexistent/ca.pem")
                .path(),
            var(
                name("CLIENT_CERTIFICATE"),
                &[otlp[0], otlp[1], (name("CLIENT_KEY"), key)],
                cert,
            )
            .invalid("/nonexistent/client.pem")
            .path(),
            var(
                name("CLIENT_KEY"),
                &[otlp[0], otlp[1], (name("CLIENT_CERTIFICATE"), cert)],
                key,
            )
            .invalid("/nonexistent/client.key")
            .path(),
        ]);
    }
    vars
}

#[test]
fn every_variable_set_twice_is_an_error_naming_it() {
    let pki = Pki::make("set-twice");
    for var in every_variable(&pki) {
        let err = var.config(&[&var.valid, &var.valid]).expect_err(var.name);
        assert_eq!(err.variable(), var.name, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{} is set twice in the environment", var.name)),
            "{err}"
        );
        if var.secret {
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }
}

#[test]
fn every_variable_empty_is_unset() {
    let pki = Pki::make("empty");
    for var in every_variable(&pki) {
        let unset = var.config(&[]);
        for empty in ["", " ", "\t\n "] {
            assert_eq!(var.config(&[empty]), unset, "{}={empty:?}", var.name);
        }
    }
}

#[test]
fn every_variable_is_trimmed_and_read() {
    let pki = Pki::make("trimmed");
    for var in every_variable(&pki) {
        let valid = var
            .config(&[&var.valid])
            .unwrap_or_else(|e| panic!("{}={:?}: {e}", var.name, var.valid));
        let spaced = format!(" \t{}\r\n ", var.valid);
        assert_eq!(
            var.config(&[&spaced]),
            Ok(valid.clone()),
            "{}={spaced:?}",
            var.name
        );
        // The variable is read: its value changes the configuration, or a value it
        // refuses is an error naming it.
        match var.invalid {
            Some(invalid) => {
                let err = var.config(&[invalid]).expect_err(var.name);
                assert_eq!(err.variable(), var.name, "{err}");
            }
            None => assert_ne!(var.config(&[]), Ok(valid), "{}", var.name),
        }
    }
}

#[test]
fn every_path_variable_is_made_absolute_against_the_working_directory() {
    let pki = Pki::make("relative");
    let cwd = std::env::current_dir().unwrap();
    for var in every_variable(&pki).into_iter().filter(|v| v.path) {
        let relative = relative_to(&cwd, Path::new(&var.valid));
        assert!(relative.is_relative());
        let absolute = cwd.join(&relative);
        let given = var.config(&[relative.to_str().unwrap()]);
        assert_eq!(
            given,
            var.config(&[absolute.to_str().unwrap()]),
            "{}={relative:?}",
            var.name
        );
        assert!(given.is_ok(), "{}={relative:?}: {given:?}", var.name);
    }
}

#[cfg(unix)]
#[test]
fn every_variable_not_in_utf8_is_an_error_naming_it() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    let pki = Pki::make("utf8");
    for var in every_variable(&pki) {
        let vars = var
            .with
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .chain([(
                OsString::from(var.name),
                OsString::from_vec(b"t\xffe".to_vec()),
            )]);
        let err = Config::from_iter(vars).expect_err(var.name);
        assert_eq!(err.variable(), var.name, "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }
}

/// With telemetry off, no value of an `OTEL_*` variable stops the app: neither a
/// refused one, nor one set twice, nor one not in UTF-8. The configuration is read,
/// and the exporters `try_init` would start are built (the `otlp` one keeps the
/// error for the moment telemetry is turned on).
#[test]
fn with_telemetry_off_no_otel_variable_stops_the_app() {
    let pki = Pki::make("off");
    for var in every_variable(&pki)
        .into_iter()
        .filter(|v| v.name.starts_with("OTEL_"))
    {
        let off: Vec<(&str, String)> = var
            .with
            .iter()
            .filter(|&(n, _)| *n != ON.0)
            .cloned()
            .collect();
        let mut bad: Vec<Vec<String>> = vec![vec![var.valid.clone(), var.valid.clone()]];
        if let Some(invalid) = var.invalid {
            bad.push(vec![invalid.to_owned()]);
        }
        for values in bad {
            let vars = off
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .chain(values.iter().map(|v| (var.name, v.as_str())));
            let config = Config::from_iter(vars).unwrap_or_else(|e| {
                panic!("telemetry off, yet {}={values:?} fails: {e}", var.name)
            });
            assert!(!config.enabled());
            let started = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&config);
            assert!(
                started.is_ok(),
                "telemetry off, yet {}={values:?} stops the start: {:?}",
                var.name,
                started.err()
            );
        }
        #[cfg(unix)]
        {
            use std::ffi::OsString;
            use std::os::unix::ffi::OsStringExt;
            let vars = off
                .iter()
                .map(|(n, v)| (OsString::from(n), OsString::from(v)))
                .chain([(
                    OsString::from(var.name),
                    OsString::from_vec(b"t\xffe".to_vec()),
                )]);
            let config = Config::from_iter(vars).unwrap_or_else(|e| {
                panic!("telemetry off, yet {} not in UTF-8 fails: {e}", var.name)
            });
            assert!(config
                .resource()
                .service_name()
                .starts_with("unknown_service:"));
        }
    }
}

/// The `OTEL_*` exporter variables are read only where the `otlp` exporter is listed:
/// on, with other exporters, a value it would refuse is none of this app's business.
#[cfg(feature = "otlp")]
#[test]
fn otel_exporter_variables_are_read_only_for_the_otlp_exporter() {
    let config = Config::from_iter([
        ON,
        ("TELEMETRY_EXPORTER", "stderr"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:4318"),
    ]);
    assert!(config.is_ok(), "{config:?}");
}

/// With telemetry off, the crate's own variables are still checked: they are this
/// app's, and an invalid one never waits for telemetry to be turned on to be found.
#[test]
fn with_telemetry_off_the_telemetry_variables_are_still_checked() {
    let mut cases = vec![
        ("TELEMETRY_ENABLED", "yes"),
        ("TELEMETRY_EXPORTER", "kafka"),
        ("TELEMETRY_EXPORTR", "stdout"),
        ("TELEMETRY_FILE", "/tmp/t.jsonl"),
        ("TELEMETRY_SPAN_FIELDS", "a,,a"),
        ("TELEMETRY_PROMETHEUS_ADDR", "9464"),
    ];
    if !cfg!(feature = "otlp") {
        cases.push(("TELEMETRY_EXPORTER", "otlp"));
    }
    for (name, value) in cases {
        let err = Config::from_iter([(name, value)]).expect_err(name);
        assert_eq!(err.variable(), name, "{err}");
    }
    let err = Config::from_iter([("TELEMETRY_SPOOL_DIR", "a"), ("TELEMETRY_SPOOL_DIR", "b")])
        .unwrap_err();
    assert_eq!(err.variable(), "TELEMETRY_SPOOL_DIR");
}

/// `path` relative to `cwd` (both absolute), through `..` up to the root.
fn relative_to(cwd: &Path, path: &Path) -> PathBuf {
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.join(path.strip_prefix("/").unwrap_or(path))
}

/// A self-signed certificate and its key, PEM files made by `openssl` in a fresh
/// directory: a CA file for `..._CERTIFICATE`, and a client certificate and key.
struct Pki {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn make(test: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "telemetry-config-rules-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cfg!(feature = "otlp") {
            let out = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .args(["-days", "2", "-subj", "/CN=telemetry config rules"])
                .output()
                .expect("openssl, to make the certificate files the OTLP variables name");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Pki { cert, key }
    }
}

/// With telemetry off, the JSON-lines file is not opened: a directory that does not
/// exist is found when telemetry is turned on, not at start.
#[test]
fn with_telemetry_off_a_file_that_cannot_be_opened_does_not_stop_the_app() {
    let vars = [
        ("TELEMETRY_EXPORTER", "file"),
        ("TELEMETRY_FILE", "/nonexistent-dir/telemetry.jsonl"),
    ];
    let off = Config::from_iter(vars).unwrap();
    let started = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&off);
    assert!(started.is_ok(), "{:?}", started.err());
    let on = off.with_enabled(true);
    let err = tracing_telemetry::layer_with::<tracing_subscriber::Registry>(&on).unwrap_err();
    assert!(err.to_string().contains("TELEMETRY_FILE"), "{err}");
}
