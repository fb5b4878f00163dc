//! One OTLP/HTTP request and what its answer means, with `ureq` (blocking, no async
//! runtime; connections are kept alive between requests).
//!
//! **Redirects are not followed.** A client that follows one re-sends (or, for 301,
//! 302 and 303, turns into a GET without the body) to wherever the collector points,
//! with the configured headers (`OTEL_EXPORTER_OTLP_HEADERS`: API keys, as often as
//! not); and the answer from there was counted as the collector's. The OTLP
//! specification names no redirect a collector sends, and following one only to the
//! same origin would keep a rule few operators expect. So a 3xx is an answer like any
//! other: the request is not sent anywhere else, not retried (the same URL gives the
//! same redirect), and its records are counted as not delivered, with a message that
//! names the status and the origin the collector pointed at, so that the endpoint can
//! be corrected.
//!
//! Messages name the collector by [`Endpoint::shown`](crate::config::otlp::Endpoint::shown):
//! credentials and query stay out of them. Every text that comes from outside (a
//! partial-success `error_message`, an error body, ureq's description of a network or
//! TLS error) goes through [`Endpoint::clean`](crate::config::otlp::Endpoint::clean) before
//! it is part of an outcome: one line without control characters (a collector cannot
//! forge log lines or send terminal escapes), at most 200 characters (a 64 KiB answer
//! is not printed), and without the URL's secrets.

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;

use crate::config::otlp::{location_origin, Endpoint, OtlpCompression, Signal, SignalConfig};

/// The most of a response body that is read (the specification's default maximum
/// response size is 4 MiB; a summary needs far less).
const RESPONSE_LIMIT: u64 = 64 * 1024;

/// What came of one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// 2xx. `rejected` counts the records (or data points) a partial-success answer
    /// says it refused.
    Accepted { rejected: u64, message: String },
    /// Worth retrying: a connection problem, a timeout, or 429/502/503/504.
    /// `retry_after` is the server's `Retry-After`, when it gave one in seconds.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not worth retrying (400 and every other status, or a request that cannot be
    /// made): the records are counted as rejected.
    Permanent { reason: String },
    /// A redirect (3xx), not followed and not retried: the records are counted as not
    /// delivered. `reason` names the status and where it points.
    Redirected { reason: String },
}

/// Sends request bodies to one signal's endpoint.
pub(crate) struct Transport {
    client: ureq::Agent,
    config: SignalConfig,
    signal: Signal,
}

impl Transport {
    pub(crate) fn new(config: SignalConfig, signal: Signal) -> Self {
        let client = ureq::Agent::config_builder()
            // Statuses are answers to interpret, not errors.
            .http_status_as_error(false)
            // A redirect is an answer too (see the module docs).
            .max_redirects(0)
            .tls_config(config.tls.config())
            .user_agent(concat!("telemetry-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Transport {
            client,
            config,
            signal,
        }
    }

    /// The collector's URL as messages show it: without credentials or query.
    pub(crate) fn url(&self) -> &str {
        self.config.endpoint.shown()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Encodes `message` as the request body, compressed as configured.
    pub(crate) fn body(&self, message: &impl Message) -> Vec<u8> {
        let raw = message.encode_to_vec();
        match self.config.compression {
            OtlpCompression::None => raw,
            OtlpCompression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::fast(),
                );
                // Writing to a Vec cannot fail.
                let _ = gz.write_all(&raw);
                gz.finish().unwrap_or(raw)
            }
        }
    }

    /// Whether [`body`](Self::body) compresses with gzip.
    pub(crate) fn gzip(&self) -> bool {
        self.config.compression == OtlpCompression::Gzip
    }

    /// Posts one body, waiting at most `timeout` for the whole exchange.
    pub(crate) fn post(&self, body: &[u8], timeout: Duration) -> Outcome {
        self.post_encoded(body, self.gzip(), timeout)
    }

    /// Posts one body that is gzip-compressed or not as `gzip` says (a spooled
    /// request keeps the encoding it was written with).
    pub(crate) fn post_encoded(&self, body: &[u8], gzip: bool, timeout: Duration) -> Outcome {
        match self.exchange(body, gzip, timeout) {
            Outcome::Accepted { rejected, message } => Outcome::Accepted {
                rejected,
                message: self.config.endpoint.scrub(&message),
            },
            Outcome::Retry {
                reason,
                retry_after,
            } => Outcome::Retry {
                reason: self.config.endpoint.scrub(&reason),
                retry_after,
            },
            Outcome::Permanent { reason } => Outcome::Permanent {
                reason: self.config.endpoint.scrub(&reason),
            },
            Outcome::Redirected { reason } => Outcome::Redirected {
                reason: self.config.endpoint.scrub(&reason),
            },
        }
    }

    /// One request and its answer; the texts in the outcome may hold the URL's
    /// secrets still (see [`post_encoded`](Self::post_encoded)).
    fn exchange(&self, body: &[u8], gzip: bool, timeout: Duration) -> Outcome {
        let mut request = self
            .client
            .post(self.config.endpoint.request_url())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", "application/x-protobuf");
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        // An `authorization` header from OTEL_EXPORTER_OTLP_HEADERS wins over the
        // URL's user information, as it does in ureq and curl.
        if let Some(credentials) = self.config.endpoint.basic_auth() {
            if !self
                .config
                .headers
                .iter()
                .any(|(name, _)| name == "authorization")
            {
                request = request.header("authorization", credentials);
            }
        }
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(err) => return outcome_of_error(&self.config.endpoint, err),
        };
        let status = response.status().as_u16();
        if (300..=399).contains(&status) {
            let target = response
                .headers()
                .get("location")
                .map(|v| location_origin(&String::from_utf8_lossy(v.as_bytes())))
                .unwrap_or_else(|| "nowhere (no Location header)".to_owned());
            return Outcome::Redirected {
                reason: format!(
                    "HTTP {status} redirect to {target}, not followed (a redirect would take the records and \
                     the configured headers elsewhere; set the endpoint to the collector's address)"
                ),
            };
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response
            .body_mut()
            .with_config()
            .limit(RESPONSE_LIMIT)
            .read_to_vec()
            .unwrap_or_default();
        match status {
            200..=299 => {
                let partial = match self.signal {
                    Signal::Logs => ExportLogsServiceResponse::decode(body.as_slice())
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map(|p| (p.rejected_log_records, p.error_message)),
                    Signal::Metrics => ExportMetricsServiceResponse::decode(body.as_slice())
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map(|p| (p.rejected_data_points, p.error_message)),
                };
                let (rejected, message) = partial.unwrap_or_default();
                Outcome::Accepted {
                    rejected: u64::try_from(rejected).unwrap_or(0),
                    message: self.config.endpoint.clean(&message),
                }
            }
            429 | 502 | 503 | 504 => Outcome::Retry {
                reason: format!("HTTP {status}"),
                retry_after,
            },
            _ => Outcome::Permanent {
                reason: format!("HTTP {status}{}", summary(&self.config.endpoint, &body)),
            },
        }
    }
}

/// Connection problems and timeouts are transient; a URL or TLS setup that cannot
/// work is not. ureq's text is cleaned (it may quote what the server sent); the hint
/// after it is ours.
fn outcome_of_error(endpoint: &Endpoint, err: ureq::Error) -> Outcome {
    let reason = format!(
        "{}{}",
        endpoint.clean(&err.to_string()),
        certificate_hint(&err)
    );
    match err {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => Outcome::Retry {
            reason,
            retry_after: None,
        },
        _ => Outcome::Permanent { reason },
    }
}

/// For a collector certificate the client does not trust, which variable fixes it.
/// (Still retried: the collector may be given a trusted certificate meanwhile.)
fn certificate_hint(err: &ureq::Error) -> &'static str {
    let ureq::Error::Io(io) = err else { return "" };
    match io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => {
            "; if a private CA signs the collector's certificate, name its PEM file in \
             OTEL_EXPORTER_OTLP_CERTIFICATE"
        }
        _ => "",
    }
}

/// `Retry-After` in seconds. (The HTTP-date form is rare from collectors; it falls
/// back to the exporter's own backoff.)
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A short, printable part of an error response: the `google.rpc.Status` message a
/// collector sends, or the start of a text body, cleaned.
fn summary(endpoint: &Endpoint, body: &[u8]) -> String {
    let text = endpoint.clean(&String::from_utf8_lossy(body));
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
