//! Layer 6, operations: backup, restore, verify and list, each a function over devices (and a
//! reader or writer), built from the media layer, the codecs and the engine.

pub mod backup;
pub mod list;
pub mod restore;
pub mod verify;
