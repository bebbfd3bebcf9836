//! bak-core: the bak media format, its pipeline engine, and a reader of SQL Server's
//! Microsoft Tape Format. The only crate that knows the bytes; no printing, no process exits.
//!
//! Malformed media give an [`Error`], never a panic: every length read from the media is checked
//! by a CRC and bounded by the bytes that remain before anything is allocated.
#![deny(missing_docs)]

pub mod catalog;
pub mod dates;
pub mod error;
pub mod format;
pub mod media;
pub mod model;
pub mod mtf;
pub mod pipeline;
pub mod read;
pub mod verify;
pub mod write;
pub mod xpress;

pub use error::{Error, Location, Result};
