//! A regular file: every capability.

use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{volume_name, Caps, Mapping, RandomRead, ReadDevice, Volumes, WriteDevice};
use crate::error::{Error, Refusal, Result};

/// A regular file, read or written.
#[derive(Debug)]
pub struct FileDevice {
    name: String,
    path: PathBuf,
    file: File,
    writable: bool,
    /// False for a file handed in open ([`FileDevice::from_file`]): its name is no path to
    /// find other volumes beside.
    named: bool,
}

impl FileDevice {
    /// Open a file for reading.
    pub fn open(path: &Path) -> Result<FileDevice> {
        let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        Ok(FileDevice {
            name: path.display().to_string(),
            path: path.to_path_buf(),
            file,
            writable: false,
            named: true,
        })
    }

    /// Open (or create) a file for writing media, under an exclusive lock: one bak writer at a
    /// time, and no verify mapping it meanwhile. Nothing in it is changed yet.
    pub fn create(path: &Path) -> Result<FileDevice> {
        let name = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, "open", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::refused(
                    Refusal::Locked,
                    format!(
                        "{name}: in use by another bak process (locked); try again when it ends"
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, "lock", e)),
        }
        Ok(FileDevice {
            name,
            path: path.to_path_buf(),
            file,
            writable: true,
            named: true,
        })
    }

    /// A file already open for reading, named `name` in messages.
    pub fn from_file(name: impl Into<String>, file: File) -> FileDevice {
        let name = name.into();
        FileDevice {
            path: PathBuf::from(&name),
            name,
            file,
            writable: false,
            named: false,
        }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The volumes of a family on files: `NAME`, `NAME.v2`, `NAME.v3`, ... in one directory.
#[derive(Debug, Clone)]
pub struct FileVolumes {
    first: PathBuf,
}

impl FileVolumes {
    /// The volumes of the family whose first volume is the file `first`.
    pub fn new(first: &Path) -> Self {
        FileVolumes {
            first: first.to_path_buf(),
        }
    }

    fn path(&self, k: u16) -> PathBuf {
        PathBuf::from(volume_name(&self.first.to_string_lossy(), k))
    }
}

impl Volumes for FileVolumes {
    fn name(&self, k: u16) -> String {
        self.path(k).display().to_string()
    }
    fn open(&self, k: u16) -> Result<Option<Box<dyn ReadDevice>>> {
        let p = self.path(k);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(Box::new(FileDevice::open(&p)?))),
            Ok(_) => Err(Error::refused(
                Refusal::NotADevice,
                format!("{}: is not a regular file, so not a volume", p.display()),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&p, "stat", e)),
        }
    }
    fn create(&self, k: u16) -> Result<Box<dyn WriteDevice>> {
        Ok(Box::new(FileDevice::create(&self.path(k))?))
    }
    fn remove(&self, k: u16) -> Result<()> {
        let p = self.path(k);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&p, "remove", e)),
            _ => Ok(()),
        }
    }
}

impl RandomRead for FileDevice {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
}

struct LockedMap {
    map: memmap2::Mmap,
    _lock: File,
}

impl Mapping for LockedMap {
    fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl ReadDevice for FileDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps {
            random_read: true,
            map: true,
            ..Caps::default()
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.file, buf)
    }
    fn random(&self) -> Option<&dyn RandomRead> {
        Some(self)
    }
    fn seek(&mut self, offset: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset)).map(|_| ())
    }
    fn map(&self) -> Result<Option<Arc<dyn Mapping>>> {
        let name = &self.name;
        match self.file.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::refused(
                    Refusal::Locked,
                    format!("{name}: being written by another bak process (locked); try again when that ends"),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(name, "lock", e)),
        }
        if self
            .file
            .metadata()
            .map_err(|e| Error::io(name, "stat", e))?
            .len()
            == 0
        {
            return Ok(None);
        }
        // SAFETY: the mapping is read-only and private. bak writers are excluded by the shared
        // lock taken above; a file cut short by anything else while mapped is outside what the
        // tools promise (as for every tool that maps its input).
        let map =
            unsafe { memmap2::Mmap::map(&self.file) }.map_err(|e| Error::io(name, "map", e))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        // A duplicate descriptor shares the open file and so the lock taken on it.
        let lock = self
            .file
            .try_clone()
            .map_err(|e| Error::io(name, "open", e))?;
        Ok(Some(Arc::new(LockedMap { map, _lock: lock })))
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
        Ok(self)
    }
    fn volumes(&self) -> Option<Box<dyn Volumes>> {
        self.named
            .then(|| Box::new(FileVolumes::new(&self.path)) as Box<dyn Volumes>)
    }
    fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
        Ok(Box::new(FileDevice {
            name: self.name.clone(),
            path: self.path.clone(),
            file: self.file.try_clone()?,
            writable: self.writable,
            named: self.named,
        }))
    }
}

impl WriteDevice for FileDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps {
            random_read: true,
            overwrite: true,
            truncate: true,
            append: true,
            durable_sync: true,
            exclusive_lock: self.writable,
            map: true,
        }
    }
    fn existing(&self) -> Option<&dyn RandomRead> {
        Some(self)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        // Only cut what is there: truncating an empty new file makes ext4 flush it on close
        // (auto_da_alloc), which cost ~8 ms per device for nothing.
        if len == 0 && self.file.metadata().map(|m| m.len()).unwrap_or(1) == 0 {
            return Ok(());
        }
        self.file.set_len(len)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset)).map(|_| ())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn volumes(&self) -> Option<Box<dyn Volumes>> {
        self.named
            .then(|| Box::new(FileVolumes::new(&self.path)) as Box<dyn Volumes>)
    }
}
