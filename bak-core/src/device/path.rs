//! Devices named the way the command-line tools name them: a path, or "-" for stdin/stdout.

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{FileDevice, ReadDevice, StreamReader, StreamWriter, WriteDevice};
use crate::error::{Error, Refusal, Result};

/// Open a device for reading: "-" is standard input; a regular file reads with positioned
/// reads and a memory map; anything else (FIFO, pipe, character device) is a stream.
pub fn open_read(path: &Path) -> Result<Box<dyn ReadDevice>> {
    if path.as_os_str() == "-" {
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("stdin", "open", e))?;
        enlarge_pipe(fd.as_fd(), 2 << 20);
        return Ok(Box::new(StreamReader::new(
            "stdin",
            Box::new(File::from(fd)),
        )));
    }
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "open", e))?;
    if meta.is_dir() {
        return Err(Error::refused(
            Refusal::NotADevice,
            format!("{name}: is a directory, not a backup device"),
        ));
    }
    if meta.file_type().is_file() {
        return Ok(Box::new(FileDevice::open(path)?));
    }
    let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    enlarge_pipe(f.as_fd(), 2 << 20);
    Ok(Box::new(StreamReader::new(name, Box::new(f))))
}

/// Open a device for writing media: "-" is standard output (refused on a terminal); a FIFO or
/// character device is opened when writing begins (a FIFO waits for its reader there); anything
/// else is a regular file, created if missing, locked, and not changed until the media layer
/// decides what to write.
pub fn open_write(path: &Path, pipe_size: usize) -> Result<Box<dyn WriteDevice>> {
    let name = path.display().to_string();
    if name == "-" {
        if std::io::stdout().is_terminal() {
            return Err(Error::refused(
                Refusal::Terminal,
                "refusing to write backup media to a terminal; redirect standard output",
            ));
        }
        let fd = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("stdout", "open", e))?;
        return Ok(Box::new(
            StreamWriter::open("stdout", File::from(fd)).with_pipe_size(pipe_size),
        ));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, "stat", e)),
    };
    if let Some(m) = &meta {
        let ft = m.file_type();
        if ft.is_dir() {
            return Err(Error::refused(
                Refusal::NotADevice,
                format!("{name}: is a directory, not a backup device"),
            ));
        }
        if ft.is_fifo() || ft.is_char_device() || ft.is_socket() {
            if ft.is_char_device() && is_tty(path) {
                return Err(Error::refused(
                    Refusal::Terminal,
                    format!("{name}: refusing to write backup media to a terminal"),
                ));
            }
            return Ok(Box::new(
                StreamWriter::path(path.to_path_buf()).with_pipe_size(pipe_size),
            ));
        }
    }
    Ok(Box::new(FileDevice::create(path)?))
}

/// True when `path` opens as a terminal (a character device may be one).
pub fn is_tty(path: &Path) -> bool {
    File::open(path).map(|f| f.is_terminal()).unwrap_or(false)
}

/// What a name is on the file system: its device and inode number. Two names with the same id
/// are one file (a symbolic link, a hard link, `/dev/stdin`, or the file a shell redirected),
/// which is how the tools refuse to write over what they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file `path` names (through links); `None` when there is none.
    pub fn of_path(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().map(|m| Self::of_meta(&m))
    }

    /// The file open on a descriptor (standard input or output, say).
    pub fn of_fd(fd: std::os::fd::BorrowedFd<'_>) -> Option<FileId> {
        let f = File::from(fd.try_clone_to_owned().ok()?);
        f.metadata().ok().map(|m| Self::of_meta(&m))
    }

    fn of_meta(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// Refuse a device given twice (by path, link or hard link), before anything is opened or
/// locked.
pub fn check_distinct(paths: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<((u64, u64), &Path)> = Vec::new();
    for p in paths {
        let id = if p.as_os_str() == "-" {
            Some((u64::MAX, u64::MAX))
        } else {
            // A path that does not exist yet is told apart by its absolute form.
            FileId::of_path(p).map(|f| (f.dev, f.ino)).or_else(|| {
                let a = std::path::absolute(p).ok()?;
                let h = xxhash_rust::xxh3::xxh3_64(a.as_os_str().as_encoded_bytes());
                Some((u64::MAX - 1, h))
            })
        };
        if let Some(id) = id {
            if let Some((_, other)) = seen.iter().find(|(x, _)| *x == id) {
                return Err(Error::refused(
                    Refusal::Usage,
                    format!(
                        "{} and {} are the same device, given twice",
                        p.display(),
                        other.display()
                    ),
                ));
            }
            seen.push((id, p));
        }
    }
    Ok(())
}

/// Grow the kernel buffer of a pipe or FIFO to `size` bytes (at most the system's
/// `pipe-max-size`), so that one block moves in one system call instead of sixteen 64 KiB ones.
/// Not a pipe, or not permitted: nothing happens.
pub fn enlarge_pipe(fd: std::os::fd::BorrowedFd<'_>, size: usize) {
    use std::os::fd::AsRawFd;
    if size == 0 {
        return;
    }
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1 << 20);
    let want = size.min(max).min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int argument and touches no memory of ours; on a descriptor
    // that is not a pipe it fails with EBADF/EINVAL, which is ignored.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, want);
    }
}
