//! bak-core: the bak media format, its pipeline engine, and a reader of SQL Server's
//! Microsoft Tape Format. The only crate that knows the bytes; no printing, no process exits.
#![deny(missing_docs)]

pub mod error;
pub mod model;
pub mod mtf;
pub mod xpress;

pub use error::{Error, Location, Result};
