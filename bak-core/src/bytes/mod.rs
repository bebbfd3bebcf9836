//! Layer 1, the bytes: record framing, every record type, payload geometry, the digest and
//! format detection, each written once. Imports nothing of the crate but [`crate::error`].
//! docs/FORMAT.md is the specification of everything here.

pub mod detect;
pub mod digest;
pub mod frame;
pub mod payload;
pub mod records;

pub use detect::{sniff, MediaKind};
pub use digest::{block_hash, Digest};
pub use frame::*;
pub use payload::*;
pub use records::*;
