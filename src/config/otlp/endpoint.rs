//! The collector's address: the URL each signal is sent to, built as the
//! specification says, and the form of it that messages show.
//!
//! Why a type of its own: the URL may carry credentials. `http://user:secret@host:4318`
//! is sent as HTTP Basic authentication (percent-decoded first, as curl does, so that
//! a password with `@` or `:` can be written `%40`, `%3A`; an `authorization` header in
//! `OTEL_EXPORTER_OTLP_HEADERS` wins), and some collectors take a token in the query
//! (`?api-key=...`). Every message that names the collector (a delivery failure, a
//! failed metrics push, a refusal, an invalid value) shows [`Endpoint::shown`], where
//! the user information and the query are replaced by `***`, and
//! [`Endpoint::clean`] takes them (and control characters) out of any text a library
//! or the collector wrote, cut to 200 characters.
//!
//! A `/` in the user information is refused at start. The authority of a URL ends at
//! its first `/`, so in `https://AbC/dEf==@collector:4318` the host is `AbC` and the
//! rest is the path: the URL does not mean what it was written to mean, requests
//! would go to the wrong host, and the credentials would be printed as the path in
//! every message. Any `@` in the path is taken for that mistake (the error says to
//! write `/` in credentials as `%2F`, and an `@` that belongs to the path as `%40`):
//! refusing is clearer than guessing which `@` was meant, and collector paths hold no
//! `@`.
//!
//! Taking secrets out of text: the whole user information (`user:password`) and the
//! whole query are the secrets. One of at least [`BARE_SECRET_MIN`] characters is
//! replaced wherever it appears (a collector may echo a token on its own); a shorter
//! one only where it stands as user information (followed by `@`) or as a query
//! (after `?`), so that `http://a@host` does not turn every `a` of a message into
//! `***`. An empty one is no secret at all.
//!
//! Query and fragment (`specification/protocol/exporter.md`, "Endpoint URLs for
//! OTLP/HTTP"): an implementation MUST honour scheme, host, port and path, and MAY
//! ignore the rest. Here the query is kept: with `OTEL_EXPORTER_OTLP_ENDPOINT` the
//! signal's path (`v1/logs`) is appended to the URL's path and the query follows it
//! (`http://c:4318/base?token=abc` sends logs to `http://c:4318/base/v1/logs?token=abc`);
//! a per-signal URL is used as given. A fragment is refused: it is never sent in an
//! HTTP request, so a `#` in the value is almost always a character of a password or
//! token that needed percent-encoding (`%23`), and cutting it off silently would give
//! authentication failures that are hard to explain.

use std::fmt;

use crate::config::error::ConfigError;

/// What replaces a secret in printed text.
const HIDDEN: &str = "***";

/// The shortest secret taken out of text wherever it appears; a shorter one is taken
/// out only where it stands as user information or query (see the module docs).
const BARE_SECRET_MIN: usize = 6;

/// The most characters of a text from outside (a collector's message, a library's
/// error) that a message shows.
const OUTSIDE_TEXT_MAX: usize = 200;

/// A part of the URL that messages never show.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    /// The user information, as given: in text, followed by `@`.
    UserInfo(String),
    /// The query without its `?`, as given: in text, after `?`.
    Query(String),
}

/// One signal's URL, and how to print it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The configured URL, with the signal's path where it is built from the general
    /// variable.
    url: String,
    /// `url` without its user information: what requests go to.
    request_url: String,
    /// The user information as an `Authorization` header value (`Basic ...`), its
    /// percent-encoding decoded.
    basic_auth: Option<String>,
    /// `url` with the user information and the query replaced by `***`.
    shown: String,
    /// The user information and the query as given (when not empty), to take out of
    /// other text.
    secrets: Vec<Secret>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// How the signal's URL comes from the variable's value.
#[derive(Clone, Copy)]
pub(crate) enum Form<'a> {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL; this path is appended to its path.
    Base(&'a str),
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`: used as given (an empty path is `/`).
    AsIs,
}

impl Endpoint {
    /// Reads `raw`, the value of `variable`.
    pub(crate) fn parse(variable: &str, raw: &str, form: Form<'_>) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        let invalid = |expected: &str| {
            ConfigError::new(
                variable,
                format!(
                    "invalid value \"{}\" for {variable} ({expected})",
                    redact_raw(raw)
                ),
            )
        };
        const EXPECTED: &str = "expected an http or https URL such as http://localhost:4318";
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            _ => return Err(invalid(EXPECTED)),
        };
        if raw.contains('#') {
            return Err(invalid(
                "expected a URL without a #fragment, which is never sent to the collector; \
                 write a # that belongs to the path, the query or a password as %23",
            ));
        }
        let uri: ureq::http::Uri = raw.parse().map_err(|_| invalid(EXPECTED))?;
        if uri.host().map_or(true, str::is_empty) {
            return Err(invalid(EXPECTED));
        }
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_len);
        let (path, query) = after.split_at(after.find('?').unwrap_or(after.len()));
        if path.contains('@') {
            return Err(invalid(
                "expected no @ in the path: the host ends at the first /, so a / in a user \
                 name, password or token puts the credentials in the path; write each / in \
                 them as %2F (and an @ that belongs to the path as %40)",
            ));
        }
        let path = match form {
            Form::Base(signal_path) => {
                let sep = if path.ends_with('/') { "" } else { "/" };
                format!("{path}{sep}{signal_path}")
            }
            Form::AsIs if path.is_empty() => "/".to_owned(),
            Form::AsIs => path.to_owned(),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        // The http crate takes any characters after the host's ":" (`host:port`).
        let after_host = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':') {
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return Err(invalid(EXPECTED));
            }
        }
        let mut secrets = Vec::new();
        let basic_auth = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let mut credentials: Vec<u8> = percent_encoding::percent_decode_str(user).collect();
            credentials.push(b':');
            credentials.extend(percent_encoding::percent_decode_str(password));
            format!("Basic {}", base64(&credentials))
        });
        let mut shown = format!("{scheme}://");
        if let Some(userinfo) = userinfo {
            shown.push_str(HIDDEN);
            shown.push('@');
            if !userinfo.is_empty() {
                secrets.push(Secret::UserInfo(userinfo.to_owned()));
            }
        }
        shown.push_str(host);
        shown.push_str(&path);
        // `query` starts with its "?", when there is one.
        if query.len() > 1 {
            shown.push('?');
            shown.push_str(HIDDEN);
            secrets.push(Secret::Query(query[1..].to_owned()));
        }
        // The longest first, so that a secret inside another is not left half shown.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.text().len()));
        Ok(Endpoint {
            url: format!("{scheme}://{authority}{path}{query}"),
            request_url: format!("{scheme}://{host}{path}{query}"),
            basic_auth,
            shown,
            secrets,
        })
    }

    /// The URL as configured (credentials included). Never print it: see
    /// [`shown`](Self::shown).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL requests go to: [`url`](Self::url) without the user information, which
    /// goes in [`basic_auth`](Self::basic_auth).
    pub(crate) fn request_url(&self) -> &str {
        &self.request_url
    }

    /// The URL's user information as the value of an `Authorization` header: HTTP
    /// Basic authentication, with the percent-encoding decoded (`p%40ss` is `p@ss`), as
    /// curl and browsers send it.
    pub(crate) fn basic_auth(&self) -> Option<&str> {
        self.basic_auth.as_deref()
    }

    /// The URL with its user information and query replaced by `***`: what messages
    /// show.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// `text` with the URL's user information and query replaced by `***` (for an
    /// error a library wrote, or an answer from the collector): the URL itself becomes
    /// [`shown`](Self::shown), a secret of at least [`BARE_SECRET_MIN`] characters is
    /// replaced wherever it appears, a shorter one where it stands as user information
    /// (`a@`) or query (`?a`).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.url, &self.shown);
        for secret in &self.secrets {
            text = match secret {
                _ if secret.text().chars().count() >= BARE_SECRET_MIN => {
                    text.replace(secret.text(), HIDDEN)
                }
                Secret::UserInfo(userinfo) => {
                    text.replace(&format!("{userinfo}@"), &format!("{HIDDEN}@"))
                }
                Secret::Query(query) => text.replace(&format!("?{query}"), &format!("?{HIDDEN}")),
            };
        }
        text
    }

    /// A text from outside (a collector's message, a library's error) as a message may
    /// show it: control characters (newlines, escapes) removed, the URL's secrets
    /// taken out ([`scrub`](Self::scrub)), then cut to [`OUTSIDE_TEXT_MAX`] characters
    /// (`...` marks a cut), and trimmed.
    pub(crate) fn clean(&self, text: &str) -> String {
        // Control characters first, so that a secret split by one is still found.
        let printable: String = text.chars().filter(|c| !c.is_control()).collect();
        let scrubbed = self.scrub(&printable);
        let scrubbed = scrubbed.trim();
        let mut shown: String = scrubbed.chars().take(OUTSIDE_TEXT_MAX).collect();
        if shown.len() < scrubbed.len() {
            shown.push_str("...");
        }
        shown
    }
}

impl Secret {
    fn text(&self) -> &str {
        match self {
            Secret::UserInfo(text) | Secret::Query(text) => text,
        }
    }
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A value that may not even parse as a URL, as an error may show it: everything from
/// the scheme to the last `@` (user information, whatever characters it holds) and
/// everything after the first `?` (the query) replaced by `***`. Where the value has
/// an `@` in its path instead, more is hidden than needed; never less.
pub(crate) fn redact_raw(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(at) => raw.split_at(at + 3),
        None => ("", raw),
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("{HIDDEN}{}", &rest[at..]),
        None => rest.to_owned(),
    };
    match rest.find('?') {
        Some(at) => format!("{scheme}{}?{HIDDEN}", &rest[..at]),
        None => format!("{scheme}{rest}"),
    }
}

/// Where a redirect points, as a message may show it: the scheme, host and port of
/// an absolute `Location` (no user information, path or query), or "the same
/// collector" for a relative one. The header comes from the collector: only printable
/// ASCII is kept, and at most 200 characters.
pub(crate) fn location_origin(location: &str) -> String {
    let location: String = location
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(200)
        .collect();
    let Some((scheme, rest)) = location.split_once("://") else {
        return "the same collector".to_owned();
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(raw: &str) -> Endpoint {
        Endpoint::parse("OTEL_EXPORTER_OTLP_ENDPOINT", raw, Form::Base("v1/logs")).unwrap()
    }

    fn as_is(raw: &str) -> Endpoint {
        Endpoint::parse("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", raw, Form::AsIs).unwrap()
    }

    #[test]
    fn the_signal_path_goes_before_the_query() {
        let cases = [
            ("http://c:4318", "http://c:4318/v1/logs"),
            ("http://c:4318/", "http://c:4318/v1/logs"),
            ("http://c:4318/base", "http://c:4318/base/v1/logs"),
            ("http://c:4318?token=abc", "http://c:4318/v1/logs?token=abc"),
            (
                "http://c:4318/?token=abc",
                "http://c:4318/v1/logs?token=abc",
            ),
            ("https://c/base/?a=1&b=2", "https://c/base/v1/logs?a=1&b=2"),
            ("http://c:4318/base?", "http://c:4318/base/v1/logs?"),
        ];
        for (raw, url) in cases {
            assert_eq!(base(raw).url(), url, "{raw}");
        }
        assert_eq!(as_is("http://c:4318").url(), "http://c:4318/");
        assert_eq!(as_is("http://c:4318?x=1").url(), "http://c:4318/?x=1");
        assert_eq!(as_is("http://c/ingest?x=1").url(), "http://c/ingest?x=1");
    }

    #[test]
    fn credentials_and_queries_are_shown_hidden() {
        let e = base("http://user:s3cret@c:4318/base?token=t0ken");
        assert_eq!(
            e.url(),
            "http://user:s3cret@c:4318/base/v1/logs?token=t0ken"
        );
        assert_eq!(e.shown(), "http://***@c:4318/base/v1/logs?***");
        assert_eq!(format!("{e:?}"), e.shown());
        assert_eq!(
            e.scrub("bad uri: http://user:s3cret@c:4318/base/v1/logs?token=t0ken; user:s3cret, token=t0ken"),
            "bad uri: http://***@c:4318/base/v1/logs?***; ***, ***"
        );
        let e = as_is("https://apikey@c/ingest");
        assert_eq!(e.shown(), "https://***@c/ingest");
        assert_eq!(as_is("http://c:4318").shown(), "http://c:4318/");
    }

    #[test]
    fn invalid_values_are_shown_without_their_secrets() {
        let err = |raw: &str| {
            Endpoint::parse("OTEL_EXPORTER_OTLP_ENDPOINT", raw, Form::Base("v1/logs"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("http://user:s3cret@:4318"),
            r#"invalid value "http://***@:4318" for OTEL_EXPORTER_OTLP_ENDPOINT (expected an http or https URL such as http://localhost:4318)"#
        );
        assert_eq!(
            err("http://user:s3/cr#et@c:4318/x?token=t0ken"),
            r#"invalid value "http://***@c:4318/x?***" for OTEL_EXPORTER_OTLP_ENDPOINT (expected a URL without a #fragment, which is never sent to the collector; write a # that belongs to the path, the query or a password as %23)"#
        );
        assert_eq!(
            err("http://c:4318/ x?token=t0ken"),
            r#"invalid value "http://c:4318/ x?***" for OTEL_EXPORTER_OTLP_ENDPOINT (expected an http or https URL such as http://localhost:4318)"#
        );
        assert!(err("ftp://user:s3cret@c").contains(r#""ftp://***@c""#));
        assert!(err("localhost:4318").contains(r#""localhost:4318""#));
        assert!(err("http://c:port").contains(r#""http://c:port""#));
        assert!(err("http://c:65536").contains(r#""http://c:65536""#));
        assert_eq!(base("http://[::1]:4318").url(), "http://[::1]:4318/v1/logs");
    }

    #[test]
    fn a_slash_in_the_credentials_is_refused_without_showing_them() {
        for raw in [
            "https://AbC/dEf==@collector:4318",
            "http://user:2024/pass@collector:4318/base?token=t0ken",
            "http://c:4318/path@x",
        ] {
            let err = Endpoint::parse("OTEL_EXPORTER_OTLP_ENDPOINT", raw, Form::Base("v1/logs"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("%2F"), "{err}");
            for secret in ["dEf", "AbC", "/pass", "2024", "t0ken"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
        // An @ in the query is the query's.
        assert_eq!(
            base("http://c:4318?owner=me@example.com").shown(),
            "http://c:4318/v1/logs?***"
        );
        // Percent-encoded, a / is part of the credentials.
        let e = base("https://AbC%2FdEf==@collector:4318");
        assert_eq!(e.shown(), "https://***@collector:4318/v1/logs");
        assert_eq!(e.request_url(), "https://collector:4318/v1/logs");
    }

    #[test]
    fn empty_and_short_secrets_leave_text_alone() {
        let text = "bad payload: a field is x (http://a@c/v1/logs?x)";
        let e = base("http://@c");
        assert_eq!(e.shown(), "http://***@c/v1/logs");
        assert_eq!(e.scrub(text), text);
        let e = base("http://a@c?x");
        assert_eq!(
            e.scrub(text),
            "bad payload: a field is x (http://***@c/v1/logs?***)"
        );
        assert_eq!(e.scrub("http://a@c/v1/logs?x"), "http://***@c/v1/logs?***");
        assert_eq!(base("http://c?").scrub(text), text);
        // From six characters on, a secret is taken out wherever it is.
        let e = base("http://abcdef@c?k=12");
        assert_eq!(e.scrub("key abcdef, k=12"), "key ***, k=12");
        assert_eq!(e.scrub("?k=12"), "?***");
    }

    #[test]
    fn outside_text_is_cleaned_scrubbed_and_cut() {
        let e = base("http://user:s3cret@c:4318");
        assert_eq!(
            e.clean("first\nsecond \u{1b}[31mred\u{1b}[0m\r\n"),
            "firstsecond [31mred[0m"
        );
        assert_eq!(e.clean("user:s3c\nret is wrong"), "*** is wrong");
        let long = e.clean(&"x".repeat(10_000));
        assert_eq!(long, format!("{}...", "x".repeat(200)));
        let cut = e.clean(&format!("{}user:s3cret", "x".repeat(195)));
        assert_eq!(cut, format!("{}***", "x".repeat(195)));
    }

    #[test]
    fn user_information_becomes_basic_authentication_decoded() {
        let e = base("http://admin:s3cret%40pw%3A@c:4318/base?x=1");
        assert_eq!(e.request_url(), "http://c:4318/base/v1/logs?x=1");
        // "admin:s3cret@pw:"
        assert_eq!(e.basic_auth(), Some("Basic YWRtaW46czNjcmV0QHB3Og=="));
        assert_eq!(base("http://key@c").basic_auth(), Some("Basic a2V5Og=="));
        assert_eq!(base("http://c").basic_auth(), None);
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn a_redirect_target_is_shown_as_its_origin() {
        assert_eq!(
            location_origin("http://u:s3cret@other:9/v1/logs?token=t0ken"),
            "http://other:9"
        );
        assert_eq!(location_origin("/elsewhere"), "the same collector");
        assert_eq!(location_origin("https://x\r\n.evil"), "https://x.evil");
    }
}
