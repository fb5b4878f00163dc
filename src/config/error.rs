//! [`ConfigError`]: a variable the configuration refuses. A leaf: it imports nothing
//! of the crate, so every reader of the environment (and the exporters) can use it.

use std::fmt;

/// Characters of a value (or name) quoted in a message; a longer one is cut there and
/// its length given, so that a megabyte of garbage still makes a one-line message.
const SHOWN_CHARS: usize = 64;

/// A variable is invalid: the error names the variable, quotes the value as given
/// (never one that may hold a credential) and says what is accepted.
///
/// ```
/// let err = tracing_telemetry::Config::from_iter([("TELEMETRY_EXPORTER", "kafka")]).unwrap_err();
/// assert_eq!(err.variable(), "TELEMETRY_EXPORTER");
/// assert_eq!(
///     err.to_string(),
///     r#"invalid value "kafka" for TELEMETRY_EXPORTER (expected none, or a comma-separated list of stdout, stderr, file, prometheus and otlp, each at most once)"#
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(variable: impl Into<String>, message: String) -> Self {
        ConfigError {
            variable: variable.into(),
            message,
        }
    }

    pub(crate) fn invalid(variable: &str, value: &str, expected: &str) -> Self {
        Self::new(
            variable,
            format!("invalid value {} for {variable} ({expected})", Shown(value)),
        )
    }

    /// The variable at fault, such as `TELEMETRY_ENABLED`.
    ///
    /// ```
    /// let err = tracing_telemetry::Config::from_iter([("TELEMETRY_EXPORTR", "file")]).unwrap_err();
    /// assert_eq!(err.variable(), "TELEMETRY_EXPORTR");
    /// ```
    pub fn variable(&self) -> &str {
        &self.variable
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message, as `Display` writes it, so that a `main` returning this error prints one
/// readable line; `{:#?}` shows the fields.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("ConfigError")
                .field("variable", &self.variable)
                .field("message", &self.message)
                .finish()
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A value or name as a message quotes it: escaped (so the message stays one line),
/// and cut after [`SHOWN_CHARS`] characters, saying how long it was.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(
                f,
                "{:?}... ({} bytes, cut after {SHOWN_CHARS} characters)",
                &self.0[..cut],
                self.0.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_their_length_given() {
        assert_eq!(Shown("short").to_string(), "\"short\"");
        let long = "é".repeat(100);
        assert_eq!(
            Shown(&long).to_string(),
            format!(
                "\"{}\"... (200 bytes, cut after 64 characters)",
                "é".repeat(64)
            )
        );
    }
}
