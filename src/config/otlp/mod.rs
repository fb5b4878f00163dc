//! The OTLP exporter's `OTEL_*` variables, read as the OpenTelemetry specification
//! defines them (`specification/protocol/exporter.md` and
//! `specification/configuration/sdk-environment-variables.md`), under the rules every
//! variable of the crate follows ([`Env`]).
//!
//! This file says what the variables mean: which of a general and a per-signal
//! variable applies, and the values that need no more than the text (timeouts,
//! protocol, compression, headers, the metric interval, `OTEL_SDK_DISABLED`). What
//! needs more than the text (the endpoint's URL, the certificate files, read and
//! checked with `rustls`) is done by [`OtlpConfig`](crate::OtlpConfig) (`exporter.rs`),
//! from what this file hands it, with the parsers of the [`Endpoint`] and of the
//! certificate files (`tls.rs`) beside it. The exporter (`crate::otlp`) only reads what these build.
//!
//! One deliberate difference from the specification: where it says an invalid value
//! SHOULD be ignored with a warning, this crate refuses it with a [`ConfigError`], as it
//! does for its own `TELEMETRY_*` variables, so that a mistyped endpoint or timeout is
//! found at start rather than by the records that never arrive. With telemetry off,
//! [`Config`](crate::Config) keeps that error for the moment telemetry is turned on.

mod endpoint;
mod exporter;
mod tls;

pub(crate) use endpoint::{location_origin, Endpoint};
pub use exporter::OtlpConfig;
#[cfg(test)]
pub(crate) use exporter::DEFAULT_SPOOL_BYTES;
pub(crate) use exporter::{SignalConfig, MIN_SPOOL_BYTES};

use std::path::PathBuf;
use std::time::Duration;

use super::env::{Env, Value};
use super::error::ConfigError;
use super::resource::decode;
use super::telemetry::SPOOL_DIR;

pub(crate) const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
const CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
const CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
const CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
const METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

const ENDPOINT_EXPECTED: &str = "expected an http or https URL such as http://localhost:4318";
const HEADERS_EXPECTED: &str =
    "expected key=value pairs separated by commas, such as api-key=...,team=core";
const TIMEOUT_EXPECTED: &str =
    "expected a whole number of milliseconds, such as 10000; 0 means no limit";
const PROTOCOL_EXPECTED: &str = "expected http/protobuf";
const COMPRESSION_EXPECTED: &str = "expected gzip or none";
const INTERVAL_EXPECTED: &str = "expected a positive whole number of milliseconds, such as 60000";
const SDK_DISABLED_EXPECTED: &str = "expected true or false";
const PATH_EXPECTED: &str = "expected a path in UTF-8";

/// What the specification lets "no limit" become: the largest 32-bit millisecond count.
pub(crate) const NO_LIMIT: Duration = Duration::from_millis(i32::MAX as u64);

/// The signals this exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Logs,
    Metrics,
}

impl Signal {
    fn env_part(self) -> &'static str {
        match self {
            Signal::Logs => "LOGS",
            Signal::Metrics => "METRICS",
        }
    }

    /// The path appended to `OTEL_EXPORTER_OTLP_ENDPOINT` for this signal.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Signal::Logs => "v1/logs",
            Signal::Metrics => "v1/metrics",
        }
    }
}

/// How request bodies are compressed: `OTEL_EXPORTER_OTLP_COMPRESSION`.
///
/// ```
/// use tracing_telemetry::OtlpCompression;
///
/// assert_eq!("GZIP".parse::<OtlpCompression>(), Ok(OtlpCompression::Gzip));
/// assert_eq!(OtlpCompression::default(), OtlpCompression::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpCompression {
    /// Bodies are sent as they are (the default).
    #[default]
    None,
    /// Bodies are gzip-compressed (`Content-Encoding: gzip`).
    Gzip,
}

impl std::str::FromStr for OtlpCompression {
    type Err = ConfigError;

    /// Accepts `gzip` and `none`, in any letter case, surrounding ASCII whitespace
    /// ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_ascii().to_ascii_lowercase().as_str() {
            "none" => Ok(OtlpCompression::None),
            "gzip" => Ok(OtlpCompression::Gzip),
            _ => Err(ConfigError::invalid(COMPRESSION, s, COMPRESSION_EXPECTED)),
        }
    }
}

/// The variables of the OTLP exporter, each value checked as far as its text goes.
#[derive(Debug)]
pub(crate) struct OtlpVars<'e> {
    pub(crate) logs: SignalVars<'e>,
    pub(crate) metrics: SignalVars<'e>,
    /// `OTEL_METRIC_EXPORT_INTERVAL`, if set.
    pub(crate) metric_interval: Option<Duration>,
    /// `OTEL_SDK_DISABLED=true`.
    pub(crate) disabled: bool,
    /// `TELEMETRY_SPOOL_DIR`, absolute.
    pub(crate) spool_dir: Option<PathBuf>,
}

/// One signal's variables: its own where set, else the general ones.
#[derive(Debug)]
pub(crate) struct SignalVars<'e> {
    pub(crate) endpoint: EndpointVar<'e>,
    pub(crate) headers: Vec<(String, String)>,
    /// `None`: the default.
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: OtlpCompression,
    pub(crate) certificate: Option<PathVar<'e>>,
    pub(crate) client_certificate: Option<PathVar<'e>>,
    pub(crate) client_key: Option<PathVar<'e>>,
}

/// Which endpoint variable applies to a signal.
#[derive(Debug)]
pub(crate) enum EndpointVar<'e> {
    /// None is set: the specification's default, `http://localhost:4318`, as a base.
    Default,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL, the signal's path is appended.
    Base(&'e str),
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` (its name, its value): used as is.
    Signal(String, &'e str),
}

/// A path variable: its name, its value as given (trimmed), and the path made absolute.
#[derive(Debug)]
pub(crate) struct PathVar<'e> {
    pub(crate) variable: String,
    pub(crate) text: &'e str,
    pub(crate) path: PathBuf,
}

/// Reads the exporter's variables from `env`, and `TELEMETRY_SPOOL_DIR`.
pub(crate) fn read(env: &Env) -> Result<OtlpVars<'_>, ConfigError> {
    let logs = signal_vars(env, Signal::Logs)?;
    let metrics = signal_vars(env, Signal::Metrics)?;
    let metric_interval = match env.get(METRIC_EXPORT_INTERVAL, INTERVAL_EXPECTED)? {
        Some(value) => match parse_millis(value.text) {
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => {
                return Err(ConfigError::invalid(
                    METRIC_EXPORT_INTERVAL,
                    value.given,
                    INTERVAL_EXPECTED,
                ))
            }
        },
        None => None,
    };
    let disabled = match env.get(SDK_DISABLED, SDK_DISABLED_EXPECTED)? {
        Some(value) => match value.text.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ConfigError::invalid(
                    SDK_DISABLED,
                    value.given,
                    SDK_DISABLED_EXPECTED,
                ))
            }
        },
        None => false,
    };
    let spool_dir = env.path(SPOOL_DIR)?;
    Ok(OtlpVars {
        logs,
        metrics,
        metric_interval,
        disabled,
        spool_dir,
    })
}

/// The name of `OTEL_EXPORTER_OTLP_<SIGNAL>_<OPTION>` given the general one.
fn per_signal(general: &str, signal: Signal) -> String {
    let option = general.trim_start_matches("OTEL_EXPORTER_OTLP_");
    format!("OTEL_EXPORTER_OTLP_{}_{option}", signal.env_part())
}

/// The signal's own variable if set, else the general one (its name and value). Both
/// are read, so that either one set twice or not UTF-8 is said.
fn pick<'e>(
    env: &'e Env,
    general: &str,
    signal: Signal,
    expected: &str,
) -> Result<Option<(String, Value<'e>)>, ConfigError> {
    let specific = per_signal(general, signal);
    let own = env.get(&specific, expected)?;
    let shared = env.get(general, expected)?;
    Ok(match (own, shared) {
        (Some(value), _) => Some((specific, value)),
        (None, Some(value)) => Some((general.to_owned(), value)),
        (None, None) => None,
    })
}

/// A certificate or key variable of `signal`, its path made absolute.
fn pick_path<'e>(
    env: &'e Env,
    general: &str,
    signal: Signal,
) -> Result<Option<PathVar<'e>>, ConfigError> {
    let Some((variable, value)) = pick(env, general, signal, PATH_EXPECTED)? else {
        return Ok(None);
    };
    let Some(path) = env.path(&variable)? else {
        return Ok(None);
    };
    Ok(Some(PathVar {
        variable,
        text: value.text,
        path,
    }))
}

fn signal_vars(env: &Env, signal: Signal) -> Result<SignalVars<'_>, ConfigError> {
    let pick = |general: &str, expected: &str| pick(env, general, signal, expected);
    let endpoint = match pick(ENDPOINT, ENDPOINT_EXPECTED)? {
        Some((name, value)) if name == ENDPOINT => EndpointVar::Base(value.text),
        Some((name, value)) => EndpointVar::Signal(name, value.text),
        None => EndpointVar::Default,
    };
    let headers = match pick(HEADERS, HEADERS_EXPECTED)? {
        Some((name, value)) => parse_headers(&name, value.text)?,
        None => Vec::new(),
    };
    let timeout = match pick(TIMEOUT, TIMEOUT_EXPECTED)? {
        Some((name, value)) => Some(match parse_millis(value.text) {
            Some(0) => NO_LIMIT,
            Some(ms) => Duration::from_millis(ms),
            None => return Err(ConfigError::invalid(&name, value.given, TIMEOUT_EXPECTED)),
        }),
        None => None,
    };
    if let Some((name, value)) = pick(PROTOCOL, PROTOCOL_EXPECTED)? {
        match value.text.to_ascii_lowercase().as_str() {
            "http/protobuf" => {}
            "grpc" | "http/json" => {
                return Err(ConfigError::invalid(
                    &name,
                    value.given,
                    "expected http/protobuf: this exporter speaks OTLP over HTTP with protobuf bodies, \
                     so point it at the collector's OTLP/HTTP port, usually 4318",
                ))
            }
            _ => return Err(ConfigError::invalid(&name, value.given, PROTOCOL_EXPECTED)),
        }
    }
    let compression = match pick(COMPRESSION, COMPRESSION_EXPECTED)? {
        Some((name, value)) => value
            .text
            .parse()
            .map_err(|_| ConfigError::invalid(&name, value.given, COMPRESSION_EXPECTED))?,
        None => OtlpCompression::None,
    };
    Ok(SignalVars {
        endpoint,
        headers,
        timeout,
        compression,
        certificate: pick_path(env, CERTIFICATE, signal)?,
        client_certificate: pick_path(env, CLIENT_CERTIFICATE, signal)?,
        client_key: pick_path(env, CLIENT_KEY, signal)?,
    })
}

/// A whole, non-negative number of milliseconds.
fn parse_millis(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `key=value,key2=value2` (the W3C Baggage form without properties); values are
/// percent-decoded. The value is never quoted in the error: it may hold a credential.
fn parse_headers(variable: &str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let problem = match entry.split_once('=') {
            None => "has no \"=\"",
            Some((key, value)) => {
                let key = key.trim();
                let value = decode(value.trim());
                match value {
                    _ if key.is_empty() => "has an empty name",
                    // The checks of the HTTP library the exporter sends with.
                    _ if ureq::http::HeaderName::from_bytes(key.as_bytes()).is_err() => {
                        "has a name that is not a valid HTTP header name"
                    }
                    Some(value) if ureq::http::HeaderValue::from_str(&value).is_ok() => {
                        headers.push((key.to_ascii_lowercase(), value));
                        continue;
                    }
                    _ => "has a value that is not a valid HTTP header value once percent-decoded",
                }
            }
        };
        return Err(ConfigError::new(
            variable,
            format!(
                "invalid value for {variable}: entry {} {problem} ({HEADERS_EXPECTED}; \
                 the value is not shown because it may hold a credential)",
                i + 1
            ),
        ));
    }
    Ok(headers)
}
