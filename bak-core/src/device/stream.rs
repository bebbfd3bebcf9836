//! Streams: FIFOs, pipes, character devices, stdin and stdout. Front to back only.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::path::PathBuf;

use super::{Caps, ReadDevice, WriteDevice};

/// A stream read front to back.
pub struct StreamReader {
    name: String,
    inner: Box<dyn Read + Send>,
}

impl StreamReader {
    /// A stream over any reader, named `name` in messages.
    pub fn new(name: impl Into<String>, inner: Box<dyn Read + Send>) -> Self {
        StreamReader {
            name: name.into(),
            inner,
        }
    }
}

impl ReadDevice for StreamReader {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps::default()
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn crate::device::RandomRead>, Box<dyn ReadDevice>> {
        Err(self)
    }
}

enum Target {
    /// Opened when writing begins (opening a FIFO waits for a reader).
    Path(PathBuf),
    /// Already open (stdout).
    Open(File),
}

/// A stream written front to back.
pub struct StreamWriter {
    name: String,
    target: Option<Target>,
    out: Option<Box<dyn Write + Send>>,
    pipe_size: usize,
}

impl StreamWriter {
    /// A FIFO or character device, opened by [`WriteDevice::begin`].
    pub fn path(path: PathBuf) -> Self {
        StreamWriter {
            name: path.display().to_string(),
            target: Some(Target::Path(path)),
            out: None,
            pipe_size: 2 << 20,
        }
    }

    /// An already open file descriptor (stdout), named `name`.
    pub fn open(name: impl Into<String>, file: File) -> Self {
        StreamWriter {
            name: name.into(),
            target: Some(Target::Open(file)),
            out: None,
            pipe_size: 2 << 20,
        }
    }

    /// Any writer (tests, a pipe to another program).
    pub fn writer(name: impl Into<String>, w: Box<dyn Write + Send>) -> Self {
        StreamWriter {
            name: name.into(),
            target: None,
            out: Some(w),
            pipe_size: 0,
        }
    }

    /// Grow the kernel pipe buffer to this many bytes when writing begins.
    pub fn with_pipe_size(mut self, bytes: usize) -> Self {
        self.pipe_size = bytes;
        self
    }
}

impl WriteDevice for StreamWriter {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps::default()
    }
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        if offset != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a stream is written from its start",
            ));
        }
        let f = match self.target.take() {
            None => return Ok(()),
            Some(Target::Open(f)) => f,
            Some(Target::Path(p)) => std::fs::OpenOptions::new().write(true).open(p)?,
        };
        {
            use std::os::fd::AsFd;
            super::enlarge_pipe(f.as_fd(), self.pipe_size);
        }
        self.out = Some(Box::new(f));
        Ok(())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.out {
            Some(w) => w.write_vectored(bufs),
            None => Err(io::Error::other("stream written before it was opened")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}
