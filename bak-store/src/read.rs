//! An object read as a bak device: positioned reads are ranged GETs; reading front to back
//! keeps several ranged GETs in flight ahead of the reader.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bak_core::device::{Caps, RandomRead, ReadDevice};
use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use tokio::task::JoinHandle;

use crate::runtime::{block_on, spawn};
use crate::store::{io_error, Store};

/// Bytes of the largest read-ahead GET (`BAK_STORE_READ_CHUNK` changes it, 1 to 256 MiB). A
/// reader's first GET is of 1 MiB and each next one twice the one before up to this: a short
/// read fetches little, a long one makes few requests (every request costs a round trip, and
/// some servers work per request in proportion to the object).
pub const READ_CHUNK: u64 = 16 << 20;
/// Read-ahead GETs in flight per reader (`BAK_STORE_READ_AHEAD` changes it, 1 to 64): a
/// reader holds at most this many chunks, 64 MiB with the defaults.
pub const READ_AHEAD: usize = 4;
/// The first read-ahead GET.
const READ_FIRST: u64 = 1 << 20;

fn env_or(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| range.contains(v))
        .unwrap_or(default)
}

/// The read-ahead in effect: (largest GET, GETs in flight).
fn read_ahead() -> (u64, usize) {
    static RA: std::sync::OnceLock<(u64, usize)> = std::sync::OnceLock::new();
    *RA.get_or_init(|| {
        (
            env_or("BAK_STORE_READ_CHUNK", READ_CHUNK >> 20, 1..=256) << 20,
            env_or("BAK_STORE_READ_AHEAD", READ_AHEAD as u64, 1..=64) as usize,
        )
    })
}

/// One object as it was when opened (objects do not change in place: a new upload replaces
/// them whole).
pub(crate) struct Object {
    pub store: Store,
    pub path: ObjPath,
    pub name: String,
    pub len: u64,
}

impl Object {
    pub(crate) fn get(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return Ok(Bytes::new());
        }
        block_on(self.store.os.get_range(&self.path, offset..end)).map_err(|e| io_error(&e))
    }
}

/// An object opened for reading.
pub struct ObjectReader {
    pub(crate) obj: Arc<Object>,
    pos: u64,
    /// The chunk being read and how far into it.
    cur: Bytes,
    /// GETs in flight, in order, each for `READ_CHUNK` bytes from the end of the one before.
    ahead: VecDeque<JoinHandle<io::Result<Bytes>>>,
    /// Where the next GET to start begins.
    next: u64,
    /// Bytes of the next GET to start.
    chunk: u64,
}

impl ObjectReader {
    pub(crate) fn new(obj: Arc<Object>) -> Self {
        ObjectReader {
            obj,
            pos: 0,
            cur: Bytes::new(),
            ahead: VecDeque::new(),
            next: 0,
            chunk: READ_FIRST,
        }
    }

    fn fill_ahead(&mut self) {
        let (most, in_flight) = read_ahead();
        while self.ahead.len() < in_flight && self.next < self.obj.len {
            let (obj, at) = (Arc::clone(&self.obj), self.next);
            let n = self.chunk.min(most).min(obj.len - at);
            self.chunk = (self.chunk * 2).min(most);
            self.ahead.push_back(spawn(async move {
                obj.store
                    .os
                    .get_range(&obj.path, at..at + n)
                    .await
                    .map_err(|e| io_error(&e))
            }));
            self.next += n;
        }
    }

    fn drop_ahead(&mut self) {
        for h in self.ahead.drain(..) {
            h.abort();
        }
        self.cur = Bytes::new();
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.drop_ahead();
    }
}

impl RandomRead for ObjectReader {
    fn len(&self) -> io::Result<u64> {
        Ok(self.obj.len)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let b = self.obj.get(offset, buf.len() as u64)?;
        buf[..b.len()].copy_from_slice(&b);
        Ok(b.len())
    }
}

impl ReadDevice for ObjectReader {
    fn name(&self) -> &str {
        &self.obj.name
    }
    fn caps(&self) -> Caps {
        Caps {
            random_read: true,
            ..Caps::default()
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.obj.len {
            return Ok(0);
        }
        if self.cur.is_empty() {
            self.fill_ahead();
            let Some(h) = self.ahead.pop_front() else {
                return Ok(0);
            };
            self.cur = block_on(h).map_err(|e| io::Error::other(e.to_string()))??;
            self.fill_ahead();
            if self.cur.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the object ended before its stated length (it changed while read)",
                ));
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        self.pos += n as u64;
        Ok(n)
    }
    fn random(&self) -> Option<&dyn RandomRead> {
        Some(self)
    }
    fn seek(&mut self, offset: u64) -> io::Result<()> {
        if offset != self.pos {
            self.drop_ahead();
            self.pos = offset;
            self.next = offset;
            self.chunk = READ_FIRST;
        }
        Ok(())
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
        Ok(self)
    }
    fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
        Ok(Box::new(ObjectReader::new(Arc::clone(&self.obj))))
    }
    fn volumes(&self) -> Option<Box<dyn bak_core::device::Volumes>> {
        Some(Box::new(crate::volumes::ObjectVolumes {
            store: self.obj.store.clone(),
            opts: crate::write::WriteOptions::default(),
        }))
    }
}
