//! Media in memory: for tests, fuzzing, and programs that keep media in memory. A handle is
//! cheap to clone and every clone sees the same bytes, so a test writes media to one and reads
//! them back from another; [`MemDevice::stream`] makes a handle that behaves like a pipe (no
//! positioned reads, no truncation), to exercise the streaming paths.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Caps, Mapping, RandomRead, ReadDevice, WriteDevice};
use crate::error::Result;

/// Bytes in memory behind a device.
#[derive(Clone, Default)]
pub struct MemDevice {
    name: String,
    bytes: Arc<Mutex<Vec<u8>>>,
    pos: u64,
    streaming: bool,
}

impl std::fmt::Debug for MemDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemDevice")
            .field("name", &self.name)
            .field("len", &self.lock().len())
            .field("streaming", &self.streaming)
            .finish()
    }
}

struct Snapshot(Vec<u8>);

impl Mapping for Snapshot {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl MemDevice {
    /// An empty device named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemDevice {
            name: name.into(),
            ..Default::default()
        }
    }

    /// A device holding `bytes`.
    pub fn with_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        let d = MemDevice::new(name);
        *d.lock() = bytes;
        d
    }

    /// Another handle on the same bytes that reads and writes like a pipe: front to back only.
    pub fn stream(&self) -> Self {
        MemDevice {
            name: self.name.clone(),
            bytes: Arc::clone(&self.bytes),
            pos: 0,
            streaming: true,
        }
    }

    /// Another handle on the same bytes with every file capability.
    pub fn handle(&self) -> Self {
        MemDevice {
            name: self.name.clone(),
            bytes: Arc::clone(&self.bytes),
            pos: 0,
            streaming: false,
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Change the bytes in place (to damage media in a test).
    pub fn edit(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RandomRead for MemDevice {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().len() as u64)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let b = self.lock();
        let start = (offset.min(b.len() as u64)) as usize;
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        Ok(n)
    }
}

impl MemDevice {
    /// A handle has every capability but a durable sync and a lock; a stream none.
    fn mem_caps(&self) -> Caps {
        if self.streaming {
            return Caps::default();
        }
        Caps {
            random_read: true,
            overwrite: true,
            truncate: true,
            append: true,
            map: true,
            ..Caps::default()
        }
    }
}

impl ReadDevice for MemDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        self.mem_caps()
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = RandomRead::read_at(self, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn random(&self) -> Option<&dyn RandomRead> {
        (!self.streaming).then_some(self as &dyn RandomRead)
    }
    fn seek(&mut self, offset: u64) -> io::Result<()> {
        if self.streaming {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this device reads front to back only",
            ));
        }
        self.pos = offset;
        Ok(())
    }
    fn map(&self) -> Result<Option<Arc<dyn Mapping>>> {
        if self.streaming {
            return Ok(None);
        }
        Ok(Some(Arc::new(Snapshot(self.to_vec()))))
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
        if self.streaming {
            return Err(self);
        }
        Ok(self)
    }
    fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
        if self.streaming {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this device cannot be opened twice",
            ));
        }
        Ok(Box::new(self.handle()))
    }
}

impl WriteDevice for MemDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        self.mem_caps()
    }
    fn existing(&self) -> Option<&dyn RandomRead> {
        (!self.streaming).then_some(self as &dyn RandomRead)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.lock().resize(len as usize, 0);
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut b = self.lock();
        let end = offset as usize + buf.len();
        if b.len() < end {
            b.resize(end, 0);
        }
        b[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        if self.streaming {
            if offset != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a stream is written from its start",
                ));
            }
            self.lock().clear();
        }
        self.pos = offset;
        Ok(())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            WriteDevice::write_at(self, b, self.pos + n as u64)?;
            n += b.len();
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_bytes_and_streams_cannot_seek() {
        let mut w = MemDevice::new("m");
        w.begin(0).unwrap();
        super::super::write_all(
            &mut w,
            &mut [IoSlice::new(b"hello "), IoSlice::new(b"world")],
        )
        .unwrap();
        let mut r = w.stream();
        assert!(ReadDevice::random(&r).is_none());
        assert!(ReadDevice::seek(&mut r, 3).is_err());
        let mut buf = [0u8; 32];
        let n = ReadDevice::read(&mut r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello world");
        let h = w.handle();
        let mut b3 = [0u8; 5];
        assert_eq!(RandomRead::read_at(&h, &mut b3, 6).unwrap(), 5);
        assert_eq!(&b3, b"world");
        WriteDevice::set_len(&h, 5).unwrap();
        assert_eq!(w.to_vec(), b"hello");
    }
}
