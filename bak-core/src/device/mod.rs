//! Layer 2, devices: where media bytes come from and go to, behind two traits that say what
//! each device can do, so the media layer asks instead of assuming. Imports only
//! [`crate::error`].
//!
//! - [`ReadDevice`]: read front to back; positioned reads ([`RandomRead`]) and a memory map
//!   where the device has them.
//! - [`WriteDevice`]: write front to back; truncate, overwrite in place, durable sync and an
//!   exclusive lock where the device has them.
//!
//! Implementations: [`FileDevice`] (a regular file), [`StreamReader`] / [`StreamWriter`] (a
//! FIFO, pipe, character device or stdio), and [`MemDevice`] (in memory, for tests, fuzzing
//! and programs that keep media in memory). [`open_read`] and [`open_write`] pick one for a
//! path as the command-line tools name devices ("-" is stdin or stdout).
//!
//! The engine is synchronous: a device that must wait on a network (an object store) blocks
//! the calling thread on a runtime of its own.

mod file;
mod memory;
mod path;
mod spool;
mod stream;

pub use file::{FileDevice, FileVolumes};
pub use memory::MemDevice;
pub use path::{check_distinct, enlarge_pipe, is_tty, open_read, open_write, FileId};
pub use spool::spool;
pub use stream::{StreamReader, StreamWriter};

use std::io::{self, IoSlice};
use std::sync::Arc;

use crate::error::Result;

/// What a device can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Positioned reads at any offset ([`ReadDevice::random`], [`WriteDevice::existing`]).
    pub random_read: bool,
    /// Bytes already written can be rewritten in place ([`WriteDevice::write_at`]).
    pub overwrite: bool,
    /// The device can be cut to a length ([`WriteDevice::set_len`]).
    pub truncate: bool,
    /// Writing can start at the end of what the device holds (appending a backup set).
    pub append: bool,
    /// [`WriteDevice::sync`] makes written bytes durable.
    pub durable_sync: bool,
    /// The device is held under an exclusive lock while open for writing.
    pub exclusive_lock: bool,
    /// [`ReadDevice::map`] gives the bytes in place.
    pub map: bool,
}

/// Positioned reads of a device whose length is known.
pub trait RandomRead: Send + Sync {
    /// Bytes on the device now.
    fn len(&self) -> io::Result<u64>;
    /// True when the device holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Read up to `buf.len()` bytes at `offset`; fewer only at the end of the device.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// Read as many bytes as there are, up to `buf.len()`, at `offset`.
pub fn read_full_at(d: &dyn RandomRead, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match d.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A device's bytes in place, for as long as the mapping lives.
pub trait Mapping: Send + Sync {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

/// The name of volume `k` of a family whose first volume is `first`: `first` itself for
/// volume 1, `first.v2`, `first.v3`, ... after it (docs/FORMAT.md, "Volumes").
pub fn volume_name(first: &str, k: u16) -> String {
    if k <= 1 {
        first.to_string()
    } else {
        format!("{first}.v{k}")
    }
}

/// The volumes of one family, found from the name of its first volume ([`volume_name`]), on a
/// kind of device that has them (files, objects).
pub trait Volumes: Send + Sync {
    /// The name of volume `k` in messages.
    fn name(&self, k: u16) -> String;
    /// Volume `k` for reading; `Ok(None)` when there is none.
    fn open(&self, k: u16) -> Result<Option<Box<dyn ReadDevice>>>;
    /// Volume `k` (2 or later) for writing: created when missing, not changed until written.
    fn create(&self, k: u16) -> Result<Box<dyn WriteDevice>>;
    /// Remove volume `k` (2 or later); nothing when it is not there.
    fn remove(&self, k: u16) -> Result<()>;
    /// The most bytes one volume can hold on this kind of device, if it has a limit (an
    /// object's part count times its part size).
    fn max_len(&self) -> Option<u64> {
        None
    }
}

/// A device media are read from.
pub trait ReadDevice: Send {
    /// The name used in messages: the path as given, "stdin", a URL.
    fn name(&self) -> &str;
    /// What the device can do.
    fn caps(&self) -> Caps;
    /// Read from the cursor, front to back; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Positioned reads, where the device has them.
    fn random(&self) -> Option<&dyn RandomRead> {
        None
    }
    /// Move the cursor to `offset` (random-read devices only).
    fn seek(&mut self, _offset: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this device reads front to back only",
        ))
    }
    /// The whole device in place, where that is cheap; `Ok(None)` where it is not. A file is
    /// mapped under a shared lock, so no bak writer truncates it under the map.
    fn map(&self) -> Result<Option<Arc<dyn Mapping>>> {
        Ok(None)
    }
    /// The device as a positioned reader that can be shared between threads, where it is one;
    /// the device back otherwise.
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>>;
    /// A second, independent handle on the same bytes (random-read devices only).
    fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this device cannot be opened twice",
        ))
    }
    /// The other volumes of the family this device holds the first volume of, where the kind
    /// of device has volumes (files, objects); `None` for streams.
    fn volumes(&self) -> Option<Box<dyn Volumes>> {
        None
    }
}

/// A device media are written to.
pub trait WriteDevice: Send {
    /// The name used in messages.
    fn name(&self) -> &str;
    /// What the device can do.
    fn caps(&self) -> Caps;
    /// What the device holds before writing, for devices that can say (files, memory): the
    /// media layer reads existing media through it to append.
    fn existing(&self) -> Option<&dyn RandomRead> {
        None
    }
    /// Cut the device to `len` bytes (`truncate` devices only).
    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(unsupported("truncated"))
    }
    /// Rewrite bytes in place (`overwrite` devices only).
    fn write_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Err(unsupported("rewritten in place"))
    }
    /// Get ready to write front to back from `offset`: seek a file; open a FIFO, which waits
    /// for a reader. Streams take only offset 0.
    fn begin(&mut self, offset: u64) -> io::Result<()>;
    /// Write some of `bufs` at the cursor.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Push buffered bytes to the device.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Make what was written durable (`durable_sync` devices; a no-op elsewhere).
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    /// The last call of a write that went well: commit what was written where that is a step
    /// of its own (an object upload is completed here; until then nothing of it is visible,
    /// and a device dropped without it discards what it held). A no-op for files and streams.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The other volumes of the family written to this device, where the kind of device has
    /// volumes (files, objects); `None` for streams.
    fn volumes(&self) -> Option<Box<dyn Volumes>> {
        None
    }
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this device cannot be {what}"),
    )
}

/// Write all of several slices to any writer with `writev`, resuming after short writes.
pub fn write_all_vectored(
    w: &mut (impl io::Write + ?Sized),
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write all of `bufs` to a device at its cursor.
pub fn write_all(dev: &mut dyn WriteDevice, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    write_all_vectored(&mut DeviceWrite(dev), bufs)
}

/// `std::io::Write` over a [`WriteDevice`]'s cursor.
struct DeviceWrite<'a>(&'a mut dyn WriteDevice);

impl io::Write for DeviceWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A boxed device reads front to back as any `std::io::Read`.
impl io::Read for Box<dyn ReadDevice> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        ReadDevice::read(&mut **self, buf)
    }
}
