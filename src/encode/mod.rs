//! Turning a record into bytes for a destination.

mod json;

pub(crate) use json::LineEncoder;
