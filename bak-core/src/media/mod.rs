//! Layer 5, media: one family and one media set over devices. Opening and ordering the devices
//! of a media set, finding a family's sets from the end of a random-read device, the one
//! parser of a backup set that every reader consumes, positioning on set N, and the append
//! policy. Imports the bytes, devices and errors; nothing above.

pub(crate) mod append;
pub(crate) mod family;
pub(crate) mod mirror;
pub(crate) mod open;
pub(crate) mod parser;
pub(crate) mod position;
pub(crate) mod reader;
pub(crate) mod volumes;

pub use append::InitMode;
pub use open::{open_devices, open_paths, open_paths_with, Opened};
