//! bak-core: the bak media format, and the library the bak tools are made of. The only crate
//! that knows the bytes of bak media; no printing, no process exits.
//!
//! The crate is layered, each layer using only those below it (docs/ARCHITECTURE.md):
//! [`error`] and the bytes of the format ([`bytes`]); [`device`]s; per-block codecs; a
//! format-free [`engine`]; [`media`] (families, media sets, the one parser of a set, the
//! append policy); operations ([`backup`], [`restore`], [`verify`], [`list`]); and typed
//! [`report`]s.
//!
//! Malformed media give an [`Error`], never a panic: every length read from the media is
//! checked by a CRC and bounded by the bytes that remain before anything is allocated.
//!
//! # Example: back up a reader onto two devices in memory, then restore it
//!
//! ```
//! use bak_core::device::{MemDevice, ReadDevice, WriteDevice};
//! use bak_core::{backup, open_devices, restore, BackupOptions, RestoreOptions, Stop};
//!
//! let (a, b) = (MemDevice::new("a"), MemDevice::new("b"));
//! let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
//! let devices: Vec<Box<dyn WriteDevice>> = vec![Box::new(a.handle()), Box::new(b.handle())];
//! let opts = BackupOptions { sync: false, ..Default::default() };
//! let stop = Stop::new();
//! let done = backup(&mut &data[..], "data", devices, &opts, &|_| {}, &stop)?;
//! assert_eq!(done.original_bytes, data.len() as u64);
//!
//! // Families may be given in any order; a stream (`MemDevice::stream`) reads like a pipe.
//! let readers: Vec<Box<dyn ReadDevice>> = vec![Box::new(b.stream()), Box::new(a.handle())];
//! let mut out = Vec::new();
//! restore(open_devices(readers)?, &RestoreOptions::default(), &mut out, "out", &|_| {}, &stop)?;
//! assert_eq!(out, data);
//! # Ok::<(), bak_core::Error>(())
//! ```
//!
//! # Example: verify and list
//!
//! ```
//! # use bak_core::device::{MemDevice, ReadDevice, WriteDevice};
//! # use bak_core::{backup, BackupOptions, Stop};
//! use bak_core::{list, open_devices, report::Verdict, verify, VerifyOptions};
//! # let a = MemDevice::new("a");
//! # let devices: Vec<Box<dyn WriteDevice>> = vec![Box::new(a.handle())];
//! # let opts = BackupOptions { sync: false, name: "nightly".into(), ..Default::default() };
//! # backup(&mut &b"hello"[..], "stdin", devices, &opts, &|_| {}, &Stop::new())?;
//! let open = || open_devices(vec![Box::new(a.handle()) as Box<dyn ReadDevice>]);
//! let reports = verify(open()?, &VerifyOptions::default(), &|_| {}, &Stop::new())?;
//! assert_eq!(reports[0].verdict, Verdict::Valid);
//! let cats = list::catalog_all(open()?)?;
//! let sets = list::set_infos(&cats);
//! assert_eq!(sets[0].backup_name.as_deref(), Some("nightly"));
//! # Ok::<(), bak_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod bytes;
pub(crate) mod codec;
pub(crate) mod dates;
pub mod device;
pub mod engine;
pub mod error;
pub mod limits;
pub mod media;
pub(crate) mod ops;
pub mod report;

pub use engine::Stop;
pub use error::{Error, Location, Refusal, Result};
pub use media::{open_devices, open_paths, open_paths_with, InitMode, Opened};
pub use ops::backup::{
    backup, current_host, current_user, now_us, open_backup_devices, open_backup_devices_with,
    BackupOptions, BackupSummary,
};
pub use ops::restore::{restore, RestoreOptions, RestoreSummary};
pub use ops::salvage::{salvage, DigestCheck, LostBlock, LostWhy, SalvageSummary};
pub use ops::verify::{verify, VerifyOptions};
pub use ops::ProgressSink;

/// Listing what bak media hold: LABELONLY and HEADERONLY facts.
pub mod list {
    pub use crate::ops::list::{
        catalog, catalog_all, label_info, set_infos, FamilyCatalog, SetSeen,
    };
}

/// Internals for the fuzz targets and the integration tests: not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::media::family::{read_label, scan_family, FamilyScan};
    pub use crate::media::reader::{RecordReader, StreamRecord};

    /// [`scan_family`] of a file.
    pub fn scan_file(f: &std::fs::File, path: &std::path::Path) -> crate::Result<FamilyScan> {
        let d = file_device(f, path)?;
        scan_family(&d, &path.display().to_string())
    }

    /// [`read_label`] of a file.
    pub fn read_label_file(
        f: &std::fs::File,
        path: &std::path::Path,
    ) -> crate::Result<Option<crate::bytes::MediaHeader>> {
        let d = file_device(f, path)?;
        read_label(&d, &path.display().to_string())
    }

    fn file_device(
        f: &std::fs::File,
        path: &std::path::Path,
    ) -> crate::Result<crate::device::FileDevice> {
        let name = path.display().to_string();
        let f = f
            .try_clone()
            .map_err(|e| crate::Error::io(&name, "open", e))?;
        Ok(crate::device::FileDevice::from_file(name, f))
    }
}

/// Encryption: what a new set is encrypted to ([`keys::Encryption`]), the keys a reader brings
/// ([`keys::Keys`]), the cipher, and fingerprints (docs/FORMAT.md, "Encryption").
pub mod keys {
    pub use crate::codec::keys::{recipient_fingerprint, show_fingerprint, Encryption, Keys};
    pub use crate::codec::seal::Cipher;
    pub use age::secrecy::SecretString;
}
