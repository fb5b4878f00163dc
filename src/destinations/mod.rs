//! What each queued destination adds to the [pipeline](crate::pipeline): how a record
//! is encoded and how a batch is delivered.
//!
//! * [`json_lines`]: JSON lines to standard output, standard error or a file.
//! * [`file`]: the telemetry file (0600, append, no symbolic links, re-created after
//!   rotation).
//!
//! The OTLP log records are in [`crate::otlp`].

mod file;
pub(crate) mod json_lines;
