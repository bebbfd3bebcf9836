//! An object written as a bak device: one multipart upload, its parts cut from the bytes as
//! they come, several in flight. Nothing is visible until the upload is completed by
//! [`WriteDevice::finish`]; an upload that is not finished (an error, a signal, a panic) is
//! aborted when the device is dropped, so no object ever looks like a complete set.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bak_core::device::{Caps, RandomRead, WriteDevice};
use bytes::{Bytes, BytesMut};
use object_store::multipart::PartId;
use object_store::{MultipartId, ObjectStoreExt, PutPayload};
use tokio::task::JoinHandle;

use crate::read::{Object, ObjectReader};
use crate::runtime::{block_on, spawn};
use crate::store::{io_error, Store};
use crate::url::Scheme;

/// Default bytes per part.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// Default parts uploading at once per device.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;
/// The smallest part S3 takes (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The largest part size taken here (S3's limit is 5 GiB; memory is the real bound).
pub const MAX_PART_SIZE: usize = 1 << 30;

/// How objects are uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Bytes per part (5 MiB to 1 GiB).
    pub part_size: usize,
    /// Parts uploading at once (1 to 64). Memory per device: (this + 1) x `part_size`.
    pub parts_in_flight: usize,
    /// Parts one object may have; `None`: the store's limit ([`part_limit`]). A family moves
    /// to its next volume before an object would need more.
    pub max_parts: Option<usize>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            part_size: DEFAULT_PART_SIZE,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            max_parts: None,
        }
    }
}

impl WriteOptions {
    /// Refuse sizes a store would refuse, or that would not bound memory.
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(format!(
                "part size {} is not 5 MiB to 1 GiB (S3 takes no smaller part)",
                self.part_size
            ));
        }
        if self.max_parts == Some(0) {
            return Err("at least 1 part per object".into());
        }
        if !(1..=64).contains(&self.parts_in_flight) {
            return Err(format!(
                "{} parts in flight: use 1 to 64",
                self.parts_in_flight
            ));
        }
        Ok(())
    }

    /// Parts one object may have on a store.
    pub fn max_parts(&self, scheme: Scheme) -> usize {
        self.max_parts
            .unwrap_or(part_limit(scheme))
            .min(part_limit(scheme))
    }

    /// The most memory one device's upload holds: the parts in flight and the one filling.
    pub fn memory(&self) -> u64 {
        (self.parts_in_flight as u64 + 1) * self.part_size as u64
    }
}

/// Parts one upload may have: S3 and GCS take 10,000, Azure Blob 50,000 blocks.
pub fn part_limit(scheme: Scheme) -> usize {
    match scheme {
        Scheme::Azure => 50_000,
        Scheme::S3 | Scheme::Gcs => 10_000,
    }
}

/// Every upload this process has started and not yet completed or aborted, so that a tool
/// ended by a signal where no stop reaches can still abort them ([`abort_unfinished`]).
struct Open {
    key: u64,
    mp: Arc<dyn object_store::multipart::MultipartStore>,
    path: object_store::path::Path,
    id: MultipartId,
}

static OPEN: Mutex<Vec<Open>> = Mutex::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn open_uploads() -> std::sync::MutexGuard<'static, Vec<Open>> {
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

fn forget(key: u64) {
    open_uploads().retain(|o| o.key != key);
}

/// Abort every upload of this process that is not complete (a tool that must exit now, on a
/// signal). Bounded: at most 10 s whatever the endpoint does. Returns how many there were.
pub fn abort_unfinished() -> usize {
    let all = std::mem::take(&mut *open_uploads());
    let n = all.len();
    if n > 0 {
        let _ = block_on(async move {
            let aborts = all.iter().map(|o| o.mp.abort_multipart(&o.path, &o.id));
            tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(aborts)).await
        });
    }
    n
}

/// An object opened for writing.
pub struct ObjectWriter {
    store: Store,
    name: String,
    opts: WriteOptions,
    /// The object as it was when opened, if there was one: what the media layer inspects, and
    /// where a prefix kept by an append is copied from.
    existing: Option<ObjectReader>,
    buf: BytesMut,
    upload: Option<MultipartId>,
    inflight: VecDeque<JoinHandle<io::Result<PartId>>>,
    parts: Vec<PartId>,
    /// Bytes written so far, the copied prefix included.
    written: u64,
    finished: bool,
    /// This writer's entry among the open uploads.
    key: u64,
}

impl ObjectWriter {
    pub(crate) fn new(
        store: Store,
        name: String,
        opts: WriteOptions,
        existing: Option<Arc<Object>>,
    ) -> Self {
        ObjectWriter {
            store,
            name,
            opts,
            existing: existing.map(ObjectReader::new),
            buf: BytesMut::new(),
            upload: None,
            inflight: VecDeque::new(),
            parts: Vec::new(),
            written: 0,
            finished: false,
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Bytes written so far (those before `begin`'s offset included).
    pub fn written(&self) -> u64 {
        self.written
    }

    fn push(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        self.written += b.len() as u64;
        while self.buf.len() >= self.opts.part_size {
            let part = self.buf.split_to(self.opts.part_size).freeze();
            self.send(part)?;
        }
        Ok(())
    }

    /// Queue one part, waiting while `parts_in_flight` are already uploading.
    fn send(&mut self, part: Bytes) -> io::Result<()> {
        let limit = self.opts.max_parts(self.store.url.scheme);
        let idx = self.parts.len() + self.inflight.len();
        if idx >= limit {
            return Err(io::Error::other(format!(
                "the object reached the limit of {limit} parts of {} MiB",
                self.opts.part_size >> 20
            )));
        }
        let id = match &self.upload {
            Some(id) => id.clone(),
            None => {
                let path = self.store.path();
                let id =
                    block_on(self.store.mp.create_multipart(&path)).map_err(|e| io_error(&e))?;
                self.upload = Some(id.clone());
                open_uploads().push(Open {
                    key: self.key,
                    mp: Arc::clone(&self.store.mp),
                    path,
                    id: id.clone(),
                });
                id
            }
        };
        while self.inflight.len() >= self.opts.parts_in_flight {
            self.reap_one()?;
        }
        let (mp, path) = (Arc::clone(&self.store.mp), self.store.path());
        self.inflight.push_back(spawn(async move {
            mp.put_part(&path, &id, idx, PutPayload::from(part))
                .await
                .map_err(|e| io_error(&e))
        }));
        Ok(())
    }

    fn reap_one(&mut self) -> io::Result<()> {
        if let Some(h) = self.inflight.pop_front() {
            let id = block_on(h).map_err(|e| io::Error::other(e.to_string()))??;
            self.parts.push(id);
        }
        Ok(())
    }

    fn copy_prefix(&mut self, offset: u64) -> io::Result<()> {
        let Some(old) = self.existing.as_ref().map(|r| Arc::clone(&r.obj)) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an object is written from its start",
            ));
        };
        if old.len < offset {
            return Err(io::Error::other(format!(
                "the object holds {} bytes, fewer than the {offset} to keep",
                old.len
            )));
        }
        let chunk = self.opts.part_size as u64;
        let mut at = 0;
        while at < offset {
            let n = chunk.min(offset - at);
            let b = old.get(at, n)?;
            if b.len() as u64 != n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the object changed while its start was copied",
                ));
            }
            self.push(&b)?;
            at += n;
        }
        Ok(())
    }

    fn abort(&mut self) {
        for h in self.inflight.drain(..) {
            h.abort();
        }
        if let Some(id) = self.upload.take() {
            forget(self.key);
            let (mp, path) = (Arc::clone(&self.store.mp), self.store.path());
            // Bounded: a dead endpoint must not keep a failing tool from exiting.
            let _ = block_on(async move {
                tokio::time::timeout(Duration::from_secs(10), mp.abort_multipart(&path, &id)).await
            });
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.abort();
        }
    }
}

impl WriteDevice for ObjectWriter {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps {
            random_read: self.existing.is_some(),
            append: true,
            ..Caps::default()
        }
    }
    fn existing(&self) -> Option<&dyn RandomRead> {
        self.existing.as_ref().map(|r| r as &dyn RandomRead)
    }
    fn volumes(&self) -> Option<Box<dyn bak_core::device::Volumes>> {
        Some(Box::new(crate::volumes::ObjectVolumes {
            store: self.store.clone(),
            opts: self.opts,
        }))
    }
    /// An object is never changed in place: writing from `offset` uploads a new object whose
    /// first `offset` bytes are copied from the old one, which stays whole until the new one
    /// is complete.
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        self.abort();
        self.buf.clear();
        self.parts.clear();
        self.written = 0;
        self.finished = false;
        if offset > 0 {
            self.copy_prefix(offset)?;
        }
        Ok(())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            self.push(b)?;
            n += b.len();
        }
        Ok(n)
    }
    fn finish(&mut self) -> io::Result<()> {
        let rest = self.buf.split().freeze();
        let path = self.store.path();
        match self.upload.clone() {
            // Smaller than one part: one PUT, atomic as a completed upload.
            None => {
                block_on(self.store.os.put(&path, PutPayload::from(rest)))
                    .map_err(|e| io_error(&e))?;
            }
            Some(id) => {
                if !rest.is_empty() {
                    self.send(rest)?;
                }
                while !self.inflight.is_empty() {
                    self.reap_one()?;
                }
                let parts = std::mem::take(&mut self.parts);
                block_on(self.store.complete.complete_multipart(&path, &id, parts))
                    .map_err(|e| io_error(&e))?;
                self.upload = None;
                forget(self.key);
            }
        }
        self.finished = true;
        Ok(())
    }
}
