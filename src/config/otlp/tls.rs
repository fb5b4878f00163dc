//! The certificate variables: `OTEL_EXPORTER_OTLP_CERTIFICATE` (the CA that signs
//! the collector's certificate) and, for mutual TLS,
//! `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` with `OTEL_EXPORTER_OTLP_CLIENT_KEY`; each
//! also per signal (`OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`, ...).
//!
//! The files are read and checked when the configuration is read, so that a wrong
//! path, a file that holds no certificate, a certificate that does not parse or a key
//! that does not match its certificate stops the app at start, with the variable and
//! the path, rather than showing up later as records that never arrive.
//!
//! Choices:
//!
//! * **The CA file replaces the built-in roots** for that signal (Mozilla's, compiled
//!   in through `webpki-roots`; the system store and `SSL_CERT_FILE` are not read).
//!   The specification calls it "the trusted certificate to use when verifying a
//!   server's TLS credentials", and the Go, Java and Python SDKs use it that way: a
//!   collector behind a company CA is verified against that CA alone. A file may hold
//!   several certificates; to trust public roots too, append them to it (for example
//!   `/etc/ssl/certs/ca-certificates.crt`).
//! * **Client certificate and key** are supported (ureq 3 with rustls takes a chain
//!   and a key): both or neither. The key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC),
//!   unencrypted. Its contents are never printed, and `Debug` shows paths only.
//! * Files are read once, at start; a renewed certificate takes a restart.
//! * **Only regular files** (links to them are fine: mounted secrets are links). The
//!   file is opened without blocking (`O_NONBLOCK` on Unix, which changes nothing for
//!   a regular file) and checked with `fstat` before a byte is read: opening a FIFO
//!   to read would otherwise wait for a writer for ever, and a device could be read
//!   without end, at start, telemetry on or off.
//! * `rustls` (already in the build under `ureq`) checks each certificate and the
//!   key, with the same code that later uses them.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts};

use crate::config::error::ConfigError;

/// Certificate files are small (the whole Mozilla bundle is about 220 KiB); a larger
/// one is most likely not what the variable meant to name.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One signal's TLS settings.
#[derive(Clone, Default)]
pub(crate) struct TlsFiles {
    /// The CA certificates that replace the built-in roots, and the file they came from.
    roots: Option<(PathBuf, Arc<Vec<Certificate<'static>>>)>,
    /// The client's certificate chain and key, and the files they came from.
    client: Option<(PathBuf, PathBuf, ClientCert)>,
}

/// Paths only: a key's contents never appear.
impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("certificate", &self.roots.as_ref().map(|(path, _)| path))
            .field(
                "client_certificate",
                &self.client.as_ref().map(|(path, _, _)| path),
            )
            .field("client_key", &self.client.as_ref().map(|(_, path, _)| path))
            .finish()
    }
}

/// The same files: two configurations read from the same variables are equal.
impl PartialEq for TlsFiles {
    fn eq(&self, other: &Self) -> bool {
        let roots = |t: &Self| t.roots.as_ref().map(|(path, _)| path.clone());
        let client = |t: &Self| t.client.as_ref().map(|(c, k, _)| (c.clone(), k.clone()));
        roots(self) == roots(other) && client(self) == client(other)
    }
}

impl Eq for TlsFiles {}

/// A variable's name and value (a path).
pub(crate) type Var<'a> = (&'a str, &'a str);

impl TlsFiles {
    /// Reads the files the variables name. `certificate` is the CA file;
    /// `client_certificate` and `client_key` go together.
    pub(crate) fn load(
        certificate: Option<Var<'_>>,
        client_certificate: Option<Var<'_>>,
        client_key: Option<Var<'_>>,
    ) -> Result<Self, ConfigError> {
        let roots = match certificate {
            Some((variable, raw)) => {
                let path = PathBuf::from(raw.trim());
                let certs = certificates(
                    variable,
                    &path,
                    "the CA certificates that sign the collector's certificate",
                )?;
                check_roots(variable, &path, &certs)?;
                Some((path, Arc::new(certs)))
            }
            None => None,
        };
        let client = match (client_certificate, client_key) {
            (None, None) => None,
            (Some((variable, raw)), None) | (None, Some((variable, raw))) => {
                let other = if variable.ends_with("_KEY") {
                    variable.replace("_CLIENT_KEY", "_CLIENT_CERTIFICATE")
                } else {
                    variable.replace("_CLIENT_CERTIFICATE", "_CLIENT_KEY")
                };
                return Err(ConfigError::new(
                    variable,
                    format!(
                        "{variable} is set to \"{}\" but {other} is not (expected both, the client's certificate and \
                         its private key, for a collector that asks for a client certificate, or neither)",
                        raw.trim()
                    ),
                ));
            }
            (Some((cert_var, cert_raw)), Some((key_var, key_raw))) => {
                let cert_path = PathBuf::from(cert_raw.trim());
                let key_path = PathBuf::from(key_raw.trim());
                let chain = certificates(
                    cert_var,
                    &cert_path,
                    "the client's certificate, then any intermediate CA certificates",
                )?;
                let (key, key_der) = private_key(key_var, &key_path)?;
                check_client(cert_var, &cert_path, key_var, &key_path, &chain, key_der)?;
                let cert = ClientCert::new_with_certs(&chain, key);
                Some((cert_path, key_path, cert))
            }
        };
        Ok(TlsFiles { roots, client })
    }

    /// The settings for ureq: the roots (the built-in ones unless a CA file is named)
    /// and the client certificate, if any.
    pub(crate) fn config(&self) -> ureq::tls::TlsConfig {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some((_, certs)) = &self.roots {
            tls = tls.root_certs(RootCerts::Specific(Arc::clone(certs)));
        }
        if let Some((_, _, cert)) = &self.client {
            tls = tls.client_cert(Some(cert.clone()));
        }
        tls.build()
    }
}

/// The file's contents: a regular file, at most [`MAX_FILE_BYTES`].
fn read(variable: &str, path: &Path, expected: &str) -> Result<Vec<u8>, ConfigError> {
    let fail = |problem: String| {
        ConfigError::new(
            variable,
            format!(
                "cannot use \"{}\" from {variable}: {problem} (expected a PEM file of {expected})",
                path.display()
            ),
        )
    };
    let file = open(path).map_err(|err| fail(err.to_string()))?;
    let meta = file.metadata().map_err(|err| fail(err.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| fail(err.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// Opens `path` to read without waiting: a FIFO with no writer does not block (see
/// the module docs); [`read`] then refuses what is not a regular file.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    options.open(path)
}

/// Every certificate in a PEM file (other sections are skipped); at least one.
fn certificates(
    variable: &str,
    path: &Path,
    expected: &str,
) -> Result<Vec<Certificate<'static>>, ConfigError> {
    let bytes = read(variable, path, expected)?;
    let fail = |problem: &str| {
        ConfigError::new(
            variable,
            format!(
                "cannot use \"{}\" from {variable}: {problem} (expected a PEM file of {expected})",
                path.display()
            ),
        )
    };
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(_) => return Err(fail("it is not valid PEM")),
        }
    }
    if certs.is_empty() {
        return Err(fail(
            "it holds no certificate (no -----BEGIN CERTIFICATE----- section)",
        ));
    }
    Ok(certs)
}

/// The first private key in a PEM file, for ureq and for rustls's check.
fn private_key(
    variable: &str,
    path: &Path,
) -> Result<(PrivateKey<'static>, PrivateKeyDer<'static>), ConfigError> {
    const EXPECTED: &str = "the private key of the client's certificate, unencrypted";
    let bytes = read(variable, path, EXPECTED)?;
    let fail = |problem: &str| {
        ConfigError::new(
            variable,
            format!(
                "cannot use \"{}\" from {variable}: {problem} (expected a PEM file of {EXPECTED})",
                path.display()
            ),
        )
    };
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::PrivateKey(key)) => {
                let der = PrivateKeyDer::from_pem_slice(&bytes)
                    .map_err(|_| fail("it is not valid PEM"))?;
                return Ok((key, der));
            }
            Ok(_) => {}
            Err(_) => return Err(fail("it is not valid PEM")),
        }
    }
    Err(fail(
        "it holds no private key (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY section)",
    ))
}

/// Each certificate parses as a trust anchor.
fn check_roots(
    variable: &str,
    path: &Path,
    certs: &[Certificate<'static>],
) -> Result<(), ConfigError> {
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        let der = CertificateDer::from(cert.der().to_vec());
        if let Err(err) = store.add(der) {
            return Err(ConfigError::new(
                variable,
                format!(
                    "cannot use \"{}\" from {variable}: certificate {} in it is not a valid X.509 certificate ({err}) \
                     (expected a PEM file of the CA certificates that sign the collector's certificate)",
                    path.display(),
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The key loads, and matches the first certificate of the chain.
fn check_client(
    cert_var: &str,
    cert_path: &Path,
    key_var: &str,
    key_path: &Path,
    chain: &[Certificate<'static>],
    key_der: PrivateKeyDer<'static>,
) -> Result<(), ConfigError> {
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let provider = rustls::crypto::ring::default_provider();
    let key = provider.key_provider.load_private_key(key_der).map_err(|err| {
        ConfigError::new(
            key_var,
            format!(
                "cannot use \"{}\" from {key_var}: the private key cannot be used ({err}) (expected a PEM file of \
                 the private key of the client's certificate, unencrypted)",
                key_path.display()
            ),
        )
    })?;
    let certified = rustls::sign::CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(ConfigError::new(
            key_var,
            format!(
                "the private key in \"{}\" from {key_var} does not belong to the certificate in \"{}\" from \
                 {cert_var} (expected the key the client's certificate was issued for)",
                key_path.display(),
                cert_path.display()
            ),
        )),
        Err(err) => Err(ConfigError::new(
            cert_var,
            format!(
                "cannot use \"{}\" from {cert_var}: its first certificate cannot be read ({err}) (expected a PEM \
                 file of the client's certificate, then any intermediate CA certificates)",
                cert_path.display()
            ),
        )),
    }
}
