//! The guides that ship with the crate, readable here as on the repository: how to run
//! an app that uses it, and the fields and keys it writes (a public contract).

#[doc = include_str!("../docs/OPERATIONS.md")]
pub mod operations {}

#[doc = include_str!("../docs/FIELDS.md")]
pub mod fields {}
