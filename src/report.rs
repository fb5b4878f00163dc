//! The crate's own messages on standard error.

use std::fmt;
use std::io::{self, Write};

/// Writes `telemetry: <message>` as one line with a single write, so that another
/// thread's output (a panic message, say) cannot land in the middle of it. Never
/// panics: standard error itself may be the broken destination.
pub(crate) fn stderr_line(message: fmt::Arguments<'_>) {
    let line = format!("telemetry: {message}\n");
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Says, on standard error, that telemetry lines are being lost. Never panics:
/// standard error itself may be the broken destination.
pub(crate) fn report_write_error(err: &io::Error) {
    stderr_line(format_args!(
        "cannot write records: {err} (records are being dropped; further errors are counted, not printed)"
    ));
}
