//! [`Resource`]: which service sends the records, resolved once at start from
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (as the OpenTelemetry
//! specification defines them) and from code.

use std::fmt;

use super::env::Env;
use super::error::ConfigError;
use crate::fields::default_service_name;

const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
const RESOURCE_ATTRIBUTES_VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// The resource attribute that names the service.
const SERVICE_NAME: &str = "service.name";
/// The resource attribute that gives the service's version.
const SERVICE_VERSION: &str = "service.version";
const SERVICE_NAME_EXPECTED: &str = "expected the name of the service, such as checkout";
const RESOURCE_ATTRIBUTES_EXPECTED: &str =
    "expected key=value pairs separated by commas, such as service.namespace=shop,deployment.environment=prod; \
     \",\", \"=\" and \"%\" inside keys and values percent-encoded, the result UTF-8";

/// The service that sends the records: `service.name`, `service.version` and any other
/// resource attributes, as OpenTelemetry calls them.
///
/// Resolved once, when the [`Config`](crate::Config) is built, and never per record:
/// every JSON line carries the name as `"service"`; the `prometheus` and `otlp`
/// exporters take the whole resource.
///
/// Where each attribute comes from, first match wins:
///
/// | attribute | from |
/// |---|---|
/// | `service.name` | code ([`Config::with_service_name`](crate::Config::with_service_name)); `OTEL_SERVICE_NAME`; `service.name` in `OTEL_RESOURCE_ATTRIBUTES`; `unknown_service:<executable name>` |
/// | `service.version` and others | code ([`Config::with_service_version`](crate::Config::with_service_version), [`Config::with_resource_attribute`](crate::Config::with_resource_attribute)); `OTEL_RESOURCE_ATTRIBUTES` |
///
/// `OTEL_RESOURCE_ATTRIBUTES` is `key=value` pairs separated by commas, keys and values
/// percent-decoded (`team=core%20infra`); a key given twice keeps its last value. Both
/// variables follow the rules of every variable the crate reads: surrounding
/// whitespace is trimmed, empty is unset, set twice or not UTF-8 is an error naming it.
///
/// ```
/// use tracing_telemetry::Config;
///
/// let config = Config::from_iter([
///     ("OTEL_SERVICE_NAME", "checkout"),
///     ("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.4.2,deployment.environment=prod"),
/// ])?;
/// let resource = config.resource();
/// assert_eq!(resource.service_name(), "checkout");
/// assert_eq!(resource.service_version(), Some("1.4.2"));
/// assert_eq!(resource.get("deployment.environment"), Some("prod"));
/// # Ok::<(), tracing_telemetry::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Resource {
    /// `service.name` first, then the others in the order given; each key once.
    attributes: Vec<(String, String)>,
}

impl Default for Resource {
    /// Only `service.name`, `unknown_service:<executable name>`.
    fn default() -> Self {
        Resource {
            attributes: vec![(SERVICE_NAME.to_owned(), default_service_name())],
        }
    }
}

impl Resource {
    /// The resource of this process's environment (`OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`); [`Config::from_env`](crate::Config::from_env)
    /// reads it too.
    ///
    /// ```
    /// # std::env::remove_var("OTEL_SERVICE_NAME");
    /// # std::env::remove_var("OTEL_RESOURCE_ATTRIBUTES");
    /// let resource = tracing_telemetry::Resource::from_env()?;
    /// assert!(resource.service_name().starts_with("unknown_service:"));
    /// # Ok::<(), tracing_telemetry::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        resolve(&Env::from_process())
    }

    /// The service name: never empty unless set so in code or the environment.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_service_name("billing");
    /// assert_eq!(config.resource().service_name(), "billing");
    /// ```
    pub fn service_name(&self) -> &str {
        self.get(SERVICE_NAME).unwrap_or_default()
    }

    /// The service version, if one was given.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_service_version("2.0.1");
    /// assert_eq!(config.resource().service_version(), Some("2.0.1"));
    /// ```
    pub fn service_version(&self) -> Option<&str> {
        self.get(SERVICE_VERSION)
    }

    /// The value of one attribute.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new().with_resource_attribute("team", "core");
    /// assert_eq!(config.resource().get("team"), Some("core"));
    /// assert_eq!(config.resource().get("region"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every attribute, `service.name` first, then the others in the order given.
    ///
    /// ```
    /// let config = tracing_telemetry::Config::new()
    ///     .with_service_name("billing")
    ///     .with_resource_attribute("team", "core");
    /// let attributes: Vec<_> = config.resource().attributes().collect();
    /// assert_eq!(attributes, [("service.name", "billing"), ("team", "core")]);
    /// ```
    pub fn attributes(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets one attribute, replacing the value the key had (`service.name` stays first).
    pub(crate) fn set(&mut self, key: String, value: String) {
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.attributes.push((key, value)),
        }
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.attributes()).finish()
    }
}

/// The resource `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` describe.
pub(crate) fn resolve(env: &Env) -> Result<Resource, ConfigError> {
    let mut attributes = match env.get(RESOURCE_ATTRIBUTES_VAR, RESOURCE_ATTRIBUTES_EXPECTED)? {
        Some(value) => parse_resource_attributes(value.text, value.given)?,
        None => Vec::new(),
    };
    let service_name = env.get(SERVICE_NAME_VAR, SERVICE_NAME_EXPECTED)?;
    let from_attributes = attributes
        .iter()
        .position(|(k, _)| k == SERVICE_NAME)
        .map(|i| attributes.remove(i).1);
    let service_name = match service_name {
        Some(name) => name.text.to_owned(),
        None => from_attributes.unwrap_or_else(default_service_name),
    };
    attributes.insert(0, (SERVICE_NAME.to_owned(), service_name));
    Ok(Resource { attributes })
}

/// `text`, the trimmed value; `given`, the value as given, to quote.
fn parse_resource_attributes(
    text: &str,
    given: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut attributes: Vec<(String, String)> = Vec::new();
    for entry in text.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let parsed = entry.split_once('=').and_then(|(key, value)| {
            let key = decode(key.trim())?;
            let value = decode(value.trim())?;
            (!key.is_empty()).then_some((key, value))
        });
        let Some((key, value)) = parsed else {
            return Err(ConfigError::invalid(
                RESOURCE_ATTRIBUTES_VAR,
                given,
                RESOURCE_ATTRIBUTES_EXPECTED,
            ));
        };
        // A key given twice: the last one wins.
        attributes.retain(|(k, _)| *k != key);
        attributes.push((key, value));
    }
    Ok(attributes)
}

/// Percent-decodes `raw`; `None` if the result is not UTF-8 or a `%` is not followed by
/// two hex digits.
pub(crate) fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Result<Resource, ConfigError> {
        super::resolve(&Env::read(vars.iter().copied()))
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let r = resolve(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from%20attrs, team=a%2Cb%3Dc ,team=last",
        )])
        .unwrap();
        assert_eq!(r.service_name(), "from attrs");
        assert_eq!(
            r.attributes().collect::<Vec<_>>(),
            [("service.name", "from attrs"), ("team", "last")]
        );
        let r = resolve(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attrs,team=a%2Cb"),
            ("OTEL_SERVICE_NAME", "env"),
        ])
        .unwrap();
        assert_eq!(r.service_name(), "env");
        assert_eq!(r.get("team"), Some("a,b"));
        assert!(resolve(&[])
            .unwrap()
            .service_name()
            .starts_with("unknown_service:"));
        assert!(resolve(&[("OTEL_SERVICE_NAME", " ")])
            .unwrap()
            .service_name()
            .starts_with("unknown_service:"));
    }

    #[test]
    fn invalid_attributes_name_the_variable_the_value_and_what_is_accepted() {
        for raw in ["team", "a=%ff", "=x", "a=%2"] {
            let err = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", raw)]).unwrap_err();
            assert_eq!(err.variable(), "OTEL_RESOURCE_ATTRIBUTES");
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid value {raw:?} for OTEL_RESOURCE_ATTRIBUTES (expected key=value pairs separated by commas, \
                     such as service.namespace=shop,deployment.environment=prod; \",\", \"=\" and \"%\" inside keys \
                     and values percent-encoded, the result UTF-8)"
                )
            );
        }
    }
}
