//! Builds the sink that `TELEMETRY_EXPORTER` asks for.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Exporter};
use crate::error::Error;
use crate::sink::{JsonLinesSink, NoopSink, Sink};

pub(crate) fn build(config: &Config) -> Result<Arc<dyn Sink>, Error> {
    if !config.enabled() {
        return Ok(Arc::new(NoopSink));
    }
    Ok(match (config.exporter(), config.file()) {
        (Exporter::None, _) => Arc::new(NoopSink),
        (Exporter::Stdout, _) => Arc::new(JsonLinesSink::new(io::stdout())),
        (Exporter::File, Some(path)) => Arc::new(JsonLinesSink::new(BufWriter::new(open(path)?))),
        // `Config` guarantees a file for the file exporter; stderr is the default.
        _ => Arc::new(JsonLinesSink::new(io::stderr())),
    })
}

/// Opens the telemetry file for appending, creating it readable by its owner only.
fn open(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|err| Error::open(path.to_owned(), err))
}
