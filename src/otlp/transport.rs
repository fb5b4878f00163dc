//! One OTLP/HTTP request and what its answer means, with `ureq` (blocking, no async
//! runtime; connections are kept alive between requests).

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;

use super::config::{OtlpCompression, Signal, SignalConfig};

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
            .user_agent(concat!("telemetry-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Transport {
            client,
            config,
            signal,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.config.url
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
        let mut request = self
            .client
            .post(&self.config.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", "application/x-protobuf");
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(err) => return outcome_of_error(err),
        };
        let status = response.status().as_u16();
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
                    message,
                }
            }
            429 | 502 | 503 | 504 => Outcome::Retry {
                reason: format!("HTTP {status}"),
                retry_after,
            },
            _ => Outcome::Permanent {
                reason: format!("HTTP {status}{}", summary(&body)),
            },
        }
    }
}

/// Connection problems and timeouts are transient; a URL or TLS setup that cannot
/// work is not.
fn outcome_of_error(err: ureq::Error) -> Outcome {
    let reason = err.to_string();
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

/// `Retry-After` in seconds. (The HTTP-date form is rare from collectors; it falls
/// back to the exporter's own backoff.)
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A short, printable part of an error response: the `google.rpc.Status` message a
/// collector sends, or the start of a text body.
fn summary(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let text = text.trim();
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
