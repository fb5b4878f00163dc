//! The guides that ship with the crate, readable here as on the repository: how to run
//! an app that uses it, and the fields and keys it writes (a public contract).

// The operations guide's Rust blocks use the `otlp` and `prometheus` exporters: as
// doctests they are compiled in builds that have both.
#[cfg_attr(
    any(not(doctest), all(feature = "otlp", feature = "prometheus")),
    doc = include_str!("../docs/OPERATIONS.md")
)]
pub mod operations {}

#[doc = include_str!("../docs/FIELDS.md")]
pub mod fields {}
