//! Families that span volumes (docs/FORMAT.md, "Volumes"). A family is one run of bytes, as
//! on a single device; volume 1 holds its start, and every later volume is a label (the
//! family's, with its media sequence number and the offset where it goes on) followed by the
//! next bytes of the family. Readers see the volumes as one device ([`VolumeReader`]), so the
//! rest of the media layer (the scan from the end, positioning, the set parser) reads a
//! family of volumes as it reads a file, offsets in the family included. The writer
//! ([`VolumeWriter`]) moves to the next volume at a record boundary when the next record does
//! not fit, or in the middle of one only when that record alone is larger than a volume.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use crate::bytes::*;
use crate::device::{read_full_at, write_all, Caps, RandomRead, ReadDevice, Volumes, WriteDevice};
use crate::error::{Error, Location, Refusal, Result};

/// Bytes before a continuation volume's share of the family: its label.
const CONT_HEADER: u64 = MEDIA_HEADER_SPAN;

/// The smallest volume size taken: room for the labels, the set map and a block or two.
pub const MIN_VOLUME_SIZE: u64 = 1 << 20;

/// One volume of a family, opened for reading.
struct Vol {
    /// In a mutex, so the chain can be shared between threads as positioned reads are.
    dev: Mutex<Box<dyn ReadDevice>>,
    /// Where its bytes sit in the family.
    start: u64,
    /// Where they begin in the volume: 0 on volume 1, after the label on the others.
    skip: u64,
    /// How many there are.
    len: u64,
}

impl Vol {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The volumes of one family in order.
struct Chain {
    name: String,
    vols: Vec<Vol>,
    /// The last volume says another follows (which is then missing).
    continued: bool,
}

impl Chain {
    fn len(&self) -> u64 {
        self.vols.last().map_or(0, Vol::end)
    }

    /// The volume holding family offset `off` (the last one at or past the end).
    fn find(&self, off: u64) -> usize {
        self.vols
            .iter()
            .position(|v| off < v.end())
            .unwrap_or(self.vols.len().saturating_sub(1))
    }
}

fn random(dev: &dyn ReadDevice) -> io::Result<&dyn RandomRead> {
    dev.random().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "a volume must take positioned reads",
        )
    })
}

impl RandomRead for Chain {
    fn len(&self) -> io::Result<u64> {
        Ok(Chain::len(self))
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let i = self.find(offset);
        let Some(v) = self.vols.get(i).filter(|v| offset < v.end()) else {
            return Ok(0);
        };
        let n = (buf.len() as u64).min(v.end() - offset) as usize;
        let d = v.dev.lock().unwrap_or_else(|p| p.into_inner());
        random(d.as_ref())?.read_at(&mut buf[..n], v.skip + offset - v.start)
    }
}

/// Read the label of a volume; `Ok(None)` when its first bytes are not a bak label.
fn volume_label(dev: &dyn ReadDevice, name: &str) -> Result<Option<MediaHeader>> {
    let r = random(dev).map_err(|e| Error::io(name, "read", e))?;
    crate::media::family::read_label(r, name)
}

/// Check that `l` is volume `k` of the family of `first`, going on at `start`.
fn check_volume(
    l: &MediaHeader,
    first: &MediaHeader,
    k: u16,
    start: u64,
    name: &str,
) -> Result<()> {
    if l.media_set_id != first.media_set_id || l.family_id != first.family_id {
        return Err(Error::MediaSet {
            what: format!(
                "{name}: is not a volume of this family (family {} of media set {}, not family \
                 {} of {}); move it away, or give the devices it belongs with",
                l.family_number,
                guid_string(&l.media_set_id),
                first.family_number,
                guid_string(&first.media_set_id)
            ),
        });
    }
    if l.media_sequence != k {
        return Err(Error::MediaSet {
            what: format!(
                "{name}: holds volume {} of its family where volume {k} belongs",
                l.media_sequence
            ),
        });
    }
    if l.volume_start != start {
        return Err(Error::MediaSet {
            what: format!(
                "{name}: volume {k} goes on at offset {} of the family, but volume {} ends at \
                 {start}: a volume between them is missing or was cut short",
                l.volume_start,
                k - 1
            ),
        });
    }
    Ok(())
}

/// True when a volume ends with the label of the volume after it: the writer puts it there
/// when it moves on, so that a reader can name a next volume that is missing. Its bytes are
/// not the family's.
fn says_continued(
    dev: &dyn ReadDevice,
    k: u16,
    first: &MediaHeader,
    start: u64,
    skip: u64,
    raw: u64,
) -> bool {
    let Some(at) = raw.checked_sub(MEDIA_HEADER_SPAN).filter(|&a| a >= skip) else {
        return false;
    };
    let Ok(r) = random(dev) else { return false };
    let mut head = vec![0u8; MEDIA_HEADER_SPAN as usize];
    if read_full_at(r, &mut head, at).ok() != Some(head.len()) {
        return false;
    }
    parse_label(&head).is_some_and(|l| {
        l.media_sequence == k + 1
            && l.family_id == first.family_id
            && l.media_set_id == first.media_set_id
            && l.volume_start == start + (at - skip)
    })
}

/// Open a family's volumes in order, checking each one's label. A gap (volume k missing while
/// k + 1 is there) is an error naming the missing volume. A last volume that says another
/// follows, which is not there, ends the family where it ends (the set it cuts short reads as
/// interrupted), and the family's name says which volume is missing.
fn open_chain(
    first: Box<dyn ReadDevice>,
    label: &MediaHeader,
    vols: &dyn Volumes,
) -> Result<Chain> {
    let name = first.name().to_string();
    let mut chain = Chain {
        name: name.clone(),
        vols: Vec::new(),
        continued: false,
    };
    let mut next = Some(first);
    for k in 1..=u16::MAX {
        let vname = vols.name(k);
        let dev = match next.take() {
            Some(d) => d,
            None => match vols.open(k)? {
                Some(d) => d,
                None => {
                    if k < u16::MAX && vols.open(k + 1)?.is_some() {
                        return Err(Error::MediaSet {
                            what: format!(
                                "{name}: volume {k} of family {} is missing ({vname}), while \
                                 volume {} is there",
                                label.family_number,
                                k + 1
                            ),
                        });
                    }
                    if chain.continued {
                        chain.name = format!("{name} (volume {k}, {vname}, is missing)");
                    }
                    break;
                }
            },
        };
        let start = chain.len();
        let skip = if k == 1 {
            0
        } else {
            let Some(l) = volume_label(dev.as_ref(), &vname)? else {
                return Err(Error::MediaSet {
                    what: format!("{vname}: is not a volume of {name} (no bak label)"),
                });
            };
            check_volume(&l, label, k, start, &vname)?;
            CONT_HEADER
        };
        let raw = random(dev.as_ref())
            .and_then(|r| r.len())
            .map_err(|e| Error::io(&vname, "stat", e))?;
        chain.continued = says_continued(dev.as_ref(), k, label, start, skip, raw);
        let trailer = if chain.continued {
            MEDIA_HEADER_SPAN
        } else {
            0
        };
        chain.vols.push(Vol {
            dev: Mutex::new(dev),
            start,
            skip,
            len: raw.saturating_sub(skip + trailer),
        });
    }
    Ok(chain)
}

/// A family's first volume, with the volumes after it when there are any: the device itself
/// when it is alone (or cannot have volumes), else one device over all of them.
pub(crate) fn with_volumes(
    dev: Box<dyn ReadDevice>,
    label: &MediaHeader,
) -> Result<Box<dyn ReadDevice>> {
    if label.media_sequence > 1 {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "{}: is volume {} of family {} of its media set; give the family's first \
                 volume (the others are found from its name)",
                dev.name(),
                label.media_sequence,
                label.family_number
            ),
        ));
    }
    if dev.random().is_none() {
        return Ok(dev);
    }
    let Some(vols) = dev.volumes() else {
        return Ok(dev);
    };
    let chain = open_chain(dev, label, vols.as_ref())?;
    if chain.vols.len() == 1 && !chain.continued {
        let Some(v) = chain.vols.into_iter().next() else {
            unreachable!("a chain has its first volume")
        };
        return Ok(v.dev.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    Ok(Box::new(VolumeReader::new(Arc::new(chain))))
}

/// The volumes of a family read as one device, offsets being offsets in the family.
pub(crate) struct VolumeReader {
    chain: Arc<Chain>,
    pos: u64,
    /// The volume being read front to back, and its own cursor.
    cur: Mutex<Option<(usize, Box<dyn ReadDevice>)>>,
}

impl VolumeReader {
    fn new(chain: Arc<Chain>) -> Self {
        VolumeReader {
            chain,
            pos: 0,
            cur: Mutex::new(None),
        }
    }
}

impl RandomRead for VolumeReader {
    fn len(&self) -> io::Result<u64> {
        Ok(self.chain.len())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.chain.read_at(buf, offset)
    }
}

impl ReadDevice for VolumeReader {
    fn name(&self) -> &str {
        &self.chain.name
    }
    fn caps(&self) -> Caps {
        Caps {
            random_read: true,
            ..Caps::default()
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.chain.len() {
            return Ok(0);
        }
        let i = self.chain.find(self.pos);
        let v = &self.chain.vols[i];
        let cur = self.cur.get_mut().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_none_or(|c| c.0 != i) {
            // Each volume's own front-to-back reading (an object's read-ahead) does the work.
            let mut d = v
                .dev
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_clone()?;
            d.seek(v.skip + self.pos - v.start)?;
            *cur = Some((i, d));
        }
        let Some((_, d)) = cur.as_mut() else {
            return Ok(0);
        };
        let n = (buf.len() as u64).min(v.end() - self.pos) as usize;
        let got = d.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a volume ended before its length (it changed while read)",
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
    fn random(&self) -> Option<&dyn RandomRead> {
        Some(self)
    }
    fn seek(&mut self, offset: u64) -> io::Result<()> {
        if offset != self.pos {
            *self.cur.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
            self.pos = offset;
        }
        Ok(())
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
        Ok(self)
    }
    fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
        Ok(Box::new(VolumeReader::new(Arc::clone(&self.chain))))
    }
}

/// Where each volume that a writer found lies in the family.
#[derive(Debug, Clone, Copy)]
struct Span {
    k: u16,
    start: u64,
    end: u64,
}

/// The volume being written.
struct Current {
    k: u16,
    /// `None`: volume 1, the device the writer was given.
    dev: Option<Box<dyn WriteDevice>>,
    /// Bytes in it (its label included).
    len: u64,
}

/// A family written over volumes: the device given (volume 1) and the ones after it.
pub(crate) struct VolumeWriter {
    first: Box<dyn WriteDevice>,
    vols: Box<dyn Volumes>,
    /// The volumes as they were, read as one device (what an append inspects).
    existing: Option<VolumeReader>,
    /// The volumes there are now (removed ones dropped by `set_len`).
    spans: Mutex<Vec<Span>>,
    /// The most bytes a volume takes.
    limit: u64,
    sync: bool,
    /// The family's label: from volume 1 as written (its first 4096 bytes) or as found.
    label: Option<MediaHeader>,
    head: Vec<u8>,
    cur: Current,
    /// Where the next byte goes in the family.
    pos: u64,
}

/// Give a backup device its volumes: the device itself when it has none and needs none (a
/// file without `--volume-size`, a stream), else a writer that moves to the next volume when
/// one is full. On object storage (a device whose volumes have a size limit) the writer is
/// always used: a new set goes into new volume objects, and no object outgrows the store's
/// limit.
///
/// Volumes that do not make a whole chain (one missing in the middle) are damage that an
/// append refuses; `--init` and `--format` (`starting_over`) write over them, and remove them.
pub(crate) fn for_writing(
    dev: Box<dyn WriteDevice>,
    volume_size: Option<u64>,
    sync: bool,
    starting_over: bool,
) -> Result<Box<dyn WriteDevice>> {
    let name = dev.name().to_string();
    let Some(vols) = dev.volumes() else {
        if volume_size.is_some() {
            return Err(Error::refused(
                Refusal::Capability,
                format!("{name}: a stream has no volumes; --volume-size is for files and objects"),
            ));
        }
        return Ok(dev);
    };
    // What is there now: volume 1 (if it holds bak media) and the volumes after it.
    let mut spans = Vec::new();
    let mut existing = None;
    let first_len = dev
        .existing()
        .map(|r| r.len())
        .transpose()
        .map_err(|e| Error::io(&name, "stat", e))?
        .unwrap_or(0);
    if first_len > 0 {
        if let Some(r) = vols.open(1)? {
            if let Ok(Some(label)) = volume_label(r.as_ref(), &name) {
                let chain = match open_chain(r, &label, vols.as_ref()) {
                    Ok(c) => c,
                    Err(e) if starting_over && e.is_media_damage() => {
                        broken_chain(vols.as_ref(), &name, &mut spans)?
                    }
                    Err(e) => return Err(e),
                };
                let orphans = std::mem::take(&mut spans);
                for (i, v) in chain.vols.iter().enumerate() {
                    spans.push(Span {
                        k: i as u16 + 1,
                        start: v.start,
                        end: v.end(),
                    });
                }
                spans.extend(orphans);
                existing = Some(VolumeReader::new(Arc::new(chain)));
            }
        }
    }
    if volume_size.is_none() && vols.max_len().is_none() && spans.len() <= 1 {
        return Ok(dev);
    }
    let limit = match (volume_size, vols.max_len()) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => u64::MAX,
    };
    if limit < MIN_VOLUME_SIZE {
        return Err(Error::refused(
            Refusal::Usage,
            format!("{name}: volumes of {limit} bytes are too small (1 MiB at least)"),
        ));
    }
    Ok(Box::new(VolumeWriter {
        first: dev,
        vols,
        existing,
        spans: Mutex::new(spans),
        limit,
        sync,
        label: None,
        head: Vec::new(),
        cur: Current {
            k: 1,
            dev: None,
            len: 0,
        },
        pos: 0,
    }))
}

/// Volume 1 alone as what a starting-over backup finds, and every other volume there is as a
/// span past it, for `set_len` to remove.
fn broken_chain(vols: &dyn Volumes, name: &str, orphans: &mut Vec<Span>) -> Result<Chain> {
    let Some(first) = vols.open(1)? else {
        return Err(Error::io(name, "open", io::ErrorKind::NotFound.into()));
    };
    let len = random(first.as_ref())
        .and_then(|r| r.len())
        .map_err(|e| Error::io(name, "stat", e))?;
    let mut misses = 0;
    for k in 2..=u16::MAX {
        if vols.open(k)?.is_some() {
            misses = 0;
            orphans.push(Span {
                k,
                start: len,
                end: len,
            });
        } else {
            misses += 1;
            if misses == 2 {
                break;
            }
        }
    }
    Ok(Chain {
        name: name.to_string(),
        vols: vec![Vol {
            dev: Mutex::new(first),
            start: 0,
            skip: 0,
            len,
        }],
        continued: false,
    })
}

impl VolumeWriter {
    fn spans(&self) -> std::sync::MutexGuard<'_, Vec<Span>> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cur_dev(&mut self) -> &mut dyn WriteDevice {
        match self.cur.dev.as_mut() {
            Some(d) => d.as_mut(),
            None => self.first.as_mut(),
        }
    }

    fn cur_ref(&self) -> &dyn WriteDevice {
        match self.cur.dev.as_ref() {
            Some(d) => d.as_ref(),
            None => self.first.as_ref(),
        }
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("{what}: {e}"))
    }

    /// Close the current volume, ending with the next one's label (synced, its upload
    /// completed), and start the next.
    fn next_volume(&mut self) -> io::Result<()> {
        let k = self.cur.k.checked_add(1);
        if let (Some(k), Some(label)) = (k, self.label.as_ref()) {
            let mark = self.volume_label(label, k).encode();
            write_all(self.cur_dev(), &mut [IoSlice::new(&mark)])?;
        }
        self.cur_dev().flush()?;
        if self.sync && self.cur_ref().caps().durable_sync {
            self.cur_ref().sync()?;
        }
        self.cur_dev().finish()?;
        let k = self
            .cur
            .k
            .checked_add(1)
            .ok_or_else(|| self.io("volume", "a family has at most 65535 volumes"))?;
        self.start_volume(k)
    }

    /// Start volume `k` at the family's current offset: its label first (the family's, with
    /// its number and where it goes on, and no set map).
    fn start_volume(&mut self, k: u16) -> io::Result<()> {
        let Some(label) = self.label.clone() else {
            return Err(self.io(
                "volume",
                "the family's label is not known, so no volume can follow",
            ));
        };
        let vname = self.vols.name(k);
        let mut dev = self.vols.create(k).map_err(|e| self.io(&vname, e))?;
        if dev.caps().truncate {
            dev.set_len(0)?;
        }
        dev.begin(0)?;
        let head = self.volume_label(&label, k).encode();
        write_all(dev.as_mut(), &mut [IoSlice::new(&head)])?;
        self.cur = Current {
            k,
            dev: Some(dev),
            len: CONT_HEADER,
        };
        Ok(())
    }

    /// The label of volume `k`, going on at the family's current offset: the family's, with
    /// its number, and no set map.
    fn volume_label(&self, label: &MediaHeader, k: u16) -> MediaHeader {
        MediaHeader {
            media_sequence: k,
            volume_start: self.pos,
            flags: label.flags & !MEDIA_FLAG_SET_MAP,
            ..label.clone()
        }
    }

    /// Write `n` bytes of `bufs` (from its start) to the current volume.
    fn put(&mut self, bufs: &[IoSlice<'_>], n: usize) -> io::Result<()> {
        let mut left = n;
        let mut v: Vec<IoSlice<'_>> = Vec::with_capacity(bufs.len());
        for b in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(b.len());
            v.push(IoSlice::new(&b[..take]));
            left -= take;
        }
        if self.pos < MEDIA_HEADER_SPAN && self.cur.k == 1 {
            for s in &v {
                let want = (MEDIA_HEADER_SPAN as usize).saturating_sub(self.head.len());
                self.head.extend_from_slice(&s[..want.min(s.len())]);
            }
            if self.head.len() == MEDIA_HEADER_SPAN as usize {
                self.label = parse_label(&self.head);
            }
        }
        write_all(self.cur_dev(), &mut v)?;
        self.cur.len += n as u64;
        self.pos += n as u64;
        Ok(())
    }
}

fn parse_label(head: &[u8]) -> Option<MediaHeader> {
    let at = Location::device("volume 1");
    let (_, body) = parse_frame(head, RecordType::MediaHeader, &at).ok()?;
    MediaHeader::parse_body(body, &at).ok()
}

impl WriteDevice for VolumeWriter {
    fn name(&self) -> &str {
        self.first.name()
    }
    fn caps(&self) -> Caps {
        let c = self.first.caps();
        Caps {
            random_read: self.existing.is_some(),
            overwrite: c.overwrite,
            truncate: true,
            append: true,
            durable_sync: c.durable_sync,
            exclusive_lock: c.exclusive_lock,
            map: false,
        }
    }
    fn existing(&self) -> Option<&dyn RandomRead> {
        self.existing.as_ref().map(|r| r as &dyn RandomRead)
    }
    /// Cut the family to `len` bytes: the volumes wholly past it are removed, the last first
    /// (so the volumes left are always 1..k); the volume holding `len` is cut where its device
    /// can be, and otherwise (an object) rewritten from its start when writing begins.
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut spans = self.spans();
        while let Some(s) = spans.last().copied() {
            if s.k < 2 || s.start < len {
                break;
            }
            self.vols
                .remove(s.k)
                .map_err(|e| self.io(&self.vols.name(s.k), e))?;
            spans.pop();
        }
        // The volume holding the cut, or ending at it (a file is cut there too: a volume that
        // went on ends with the next one's label, which is not the family's).
        let holder = spans
            .iter()
            .copied()
            .find(|s| len > s.start && len <= s.end);
        if len == 0 || holder.is_some_and(|s| s.k == 1) {
            if self.first.caps().truncate {
                self.first.set_len(len)?;
            }
        } else if let Some(s) = holder {
            let d = self
                .vols
                .create(s.k)
                .map_err(|e| self.io(&self.vols.name(s.k), e))?;
            if d.caps().truncate {
                d.set_len(CONT_HEADER + len - s.start)?;
            }
        }
        // The spans keep their ends: a volume that cannot be cut (an object) still holds its
        // old bytes, and `begin` rewrites it from its start when the cut falls inside it.
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Only the set map slots are rewritten in place, and they are in volume 1.
        if offset + buf.len() as u64 > FIRST_SET_OFFSET {
            return Err(self.io("rewrite", "only the first volume is rewritten in place"));
        }
        self.first.write_at(buf, offset)
    }
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        self.pos = offset;
        self.head.clear();
        if offset == 0 {
            self.cur = Current {
                k: 1,
                dev: None,
                len: 0,
            };
            return self.first.begin(0);
        }
        if self.label.is_none() {
            let r = self
                .existing
                .as_ref()
                .ok_or_else(|| self.io("volume", "no media to append to"))?;
            let mut head = vec![0u8; MEDIA_HEADER_SPAN as usize];
            read_full_at(r, &mut head, 0)?;
            self.label = parse_label(&head);
        }
        let spans = self.spans().clone();
        let last = spans.last().copied().unwrap_or(Span {
            k: 1,
            start: 0,
            end: 0,
        });
        let s = spans
            .iter()
            .copied()
            .find(|s| offset >= s.start && offset < s.end)
            .unwrap_or(last);
        let skip = if s.k == 1 { 0 } else { CONT_HEADER };
        let phys = skip + offset - s.start;
        // A volume is written on in place where its device can be (a file with room); an
        // object cannot be appended to, so a new set on object storage begins a new volume.
        let in_place = if s.k == 1 {
            self.first.caps().truncate
        } else {
            self.vols.max_len().is_none()
        };
        if offset == s.end && (!in_place || phys >= self.limit) {
            self.cur.k = s.k;
            return self.start_volume(s.k + 1);
        }
        let dev = if s.k == 1 {
            None
        } else {
            let vname = self.vols.name(s.k);
            Some(self.vols.create(s.k).map_err(|e| self.io(&vname, e))?)
        };
        self.cur = Current {
            k: s.k,
            dev,
            len: phys,
        };
        // An object is rewritten with its first `phys` bytes copied; a file is written on.
        self.cur_dev().begin(phys)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut owned: Vec<IoSlice<'_>> = bufs.to_vec();
        let mut rest: &mut [IoSlice<'_>] = &mut owned;
        let mut done = 0;
        while done < total {
            let left = (total - done) as u64;
            // Room for the bytes, keeping room for the next volume's label at the end.
            let room = self.limit.saturating_sub(self.cur.len + MEDIA_HEADER_SPAN);
            let header = if self.cur.k == 1 { 0 } else { CONT_HEADER };
            if left > room
                && (room == 0
                    || (self.cur.len > header
                        && left <= self.limit - CONT_HEADER - MEDIA_HEADER_SPAN))
            {
                // The record fits a volume of its own (or nothing more fits here): cut at its
                // start, so each volume holds whole records.
                self.next_volume()?;
                continue;
            }
            let n = left.min(room) as usize;
            self.put(rest, n)?;
            IoSlice::advance_slices(&mut rest, n);
            done += n;
        }
        Ok(total)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.cur_dev().flush()
    }
    fn sync(&self) -> io::Result<()> {
        self.cur_ref().sync()?;
        if self.cur.dev.is_some() {
            self.first.sync()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.cur_dev().finish()
    }
    fn volumes(&self) -> Option<Box<dyn Volumes>> {
        self.first.volumes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{volume_name, MemDevice};
    use crate::ops::backup::{backup, BackupOptions};
    use crate::ops::restore::{restore, RestoreOptions};
    use crate::Stop;
    use std::collections::BTreeMap;

    /// Volumes in memory: volume 1 and the ones after it, by number.
    #[derive(Clone, Default)]
    struct MemVolumes(Arc<Mutex<BTreeMap<u16, MemDevice>>>);

    impl MemVolumes {
        fn get(&self, k: u16) -> Option<MemDevice> {
            self.0.lock().unwrap().get(&k).cloned()
        }
        fn dev(&self, k: u16) -> OnVolumes {
            let d = self
                .0
                .lock()
                .unwrap()
                .entry(k)
                .or_insert_with(|| MemDevice::new(volume_name("m", k)))
                .handle();
            OnVolumes(d, self.clone())
        }
    }

    impl Volumes for MemVolumes {
        fn name(&self, k: u16) -> String {
            volume_name("m", k)
        }
        fn open(&self, k: u16) -> Result<Option<Box<dyn ReadDevice>>> {
            Ok(self
                .get(k)
                .map(|d| Box::new(OnVolumes(d.handle(), self.clone())) as _))
        }
        fn create(&self, k: u16) -> Result<Box<dyn WriteDevice>> {
            Ok(Box::new(self.dev(k)))
        }
        fn remove(&self, k: u16) -> Result<()> {
            self.0.lock().unwrap().remove(&k);
            Ok(())
        }
    }

    /// A memory device that has volumes (as a file has).
    struct OnVolumes(MemDevice, MemVolumes);

    impl ReadDevice for OnVolumes {
        fn name(&self) -> &str {
            ReadDevice::name(&self.0)
        }
        fn caps(&self) -> Caps {
            ReadDevice::caps(&self.0)
        }
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            ReadDevice::read(&mut self.0, buf)
        }
        fn random(&self) -> Option<&dyn RandomRead> {
            ReadDevice::random(&self.0)
        }
        fn seek(&mut self, offset: u64) -> io::Result<()> {
            ReadDevice::seek(&mut self.0, offset)
        }
        fn into_random(
            self: Box<Self>,
        ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
            Ok(Box::new(self.0))
        }
        fn try_clone(&self) -> io::Result<Box<dyn ReadDevice>> {
            Ok(Box::new(OnVolumes(self.0.handle(), self.1.clone())))
        }
        fn volumes(&self) -> Option<Box<dyn Volumes>> {
            Some(Box::new(self.1.clone()))
        }
    }

    impl WriteDevice for OnVolumes {
        fn name(&self) -> &str {
            WriteDevice::name(&self.0)
        }
        fn caps(&self) -> Caps {
            WriteDevice::caps(&self.0)
        }
        fn existing(&self) -> Option<&dyn RandomRead> {
            WriteDevice::existing(&self.0)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            WriteDevice::set_len(&self.0, len)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            WriteDevice::write_at(&self.0, buf, offset)
        }
        fn begin(&mut self, offset: u64) -> io::Result<()> {
            WriteDevice::begin(&mut self.0, offset)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            WriteDevice::write_vectored(&mut self.0, bufs)
        }
        fn volumes(&self) -> Option<Box<dyn Volumes>> {
            Some(Box::new(self.1.clone()))
        }
    }

    fn write(v: &MemVolumes, input: &[u8], volume_size: Option<u64>) {
        let opts = BackupOptions {
            sync: false,
            max_transfer: 64 << 10,
            volume_size,
            ..Default::default()
        };
        let devs: Vec<Box<dyn WriteDevice>> = vec![Box::new(v.dev(1))];
        backup(&mut &input[..], "in", devs, &opts, &|_| {}, &Stop::new()).unwrap();
    }

    fn read(v: &MemVolumes, position: u32) -> Result<Vec<u8>> {
        let devs = crate::media::open_devices(vec![Box::new(OnVolumes(
            v.get(1).unwrap().handle(),
            v.clone(),
        ))])?;
        let mut out = Vec::new();
        let opts = RestoreOptions {
            position,
            ..Default::default()
        };
        restore(devs, &opts, &mut out, "out", &|_| {}, &Stop::new())?;
        Ok(out)
    }

    fn pattern(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8)
            .collect()
    }

    #[test]
    fn volumes_hold_whole_records_within_the_size_and_read_back_as_one_family() {
        let v = MemVolumes::default();
        let one = pattern(3 << 20, 1);
        write(&v, &one, Some(MIN_VOLUME_SIZE));
        let two = pattern(1_500_000, 2);
        write(&v, &two, Some(MIN_VOLUME_SIZE));
        let vols = v.0.lock().unwrap().clone();
        assert!(vols.len() >= 5, "{} volumes", vols.len());
        let mut end = 0u64;
        for (k, d) in &vols {
            let b = d.to_vec();
            assert!(
                b.len() as u64 <= MIN_VOLUME_SIZE,
                "volume {k}: {} bytes",
                b.len()
            );
            let l = parse_label(&b[..MEDIA_HEADER_SPAN as usize]).unwrap();
            assert_eq!(l.media_sequence, *k);
            if *k > 1 {
                assert_eq!(
                    l.volume_start,
                    end,
                    "volume {k} goes on where {} ends",
                    k - 1
                );
                assert_eq!(l.flags & MEDIA_FLAG_SET_MAP, 0);
            }
            // Every volume but the last ends with the next one's label.
            let skip = if *k == 1 { 0 } else { CONT_HEADER };
            let trailer = if vols.contains_key(&(k + 1)) {
                let t = parse_label(&b[b.len() - MEDIA_HEADER_SPAN as usize..]).unwrap();
                assert_eq!(t.media_sequence, k + 1);
                MEDIA_HEADER_SPAN
            } else {
                0
            };
            end += b.len() as u64 - skip - trailer;
        }
        assert_eq!(read(&v, 1).unwrap(), one);
        assert_eq!(read(&v, 2).unwrap(), two);
    }

    #[test]
    fn a_family_without_volume_size_stays_one_device() {
        let v = MemVolumes::default();
        write(&v, &pattern(2 << 20, 3), None);
        assert_eq!(v.0.lock().unwrap().len(), 1);
        assert_eq!(read(&v, 1).unwrap(), pattern(2 << 20, 3));
    }

    #[test]
    fn init_removes_the_volumes_after_the_first_and_a_gap_is_named() {
        let v = MemVolumes::default();
        write(&v, &pattern(3 << 20, 4), Some(MIN_VOLUME_SIZE));
        let n = v.0.lock().unwrap().len() as u16;
        assert!(n >= 3);
        v.0.lock().unwrap().remove(&2);
        let e = read(&v, 1).unwrap_err();
        assert!(
            e.to_string()
                .contains("volume 2 of family 1 is missing (m.v2)"),
            "{e}"
        );
        let opts = BackupOptions {
            sync: false,
            mode: crate::InitMode::Init,
            ..Default::default()
        };
        // A gap is damage an append refuses...
        let append = BackupOptions {
            sync: false,
            ..Default::default()
        };
        let devs: Vec<Box<dyn WriteDevice>> = vec![Box::new(v.dev(1))];
        let r = backup(
            &mut &b"more"[..],
            "in",
            devs,
            &append,
            &|_| {},
            &Stop::new(),
        );
        assert!(
            r.is_err_and(|e| e.is_media_damage()),
            "append over a broken chain"
        );
        assert_eq!(
            v.0.lock().unwrap().len() as u16,
            n - 1,
            "the refused append changed nothing"
        );
        // ...and INIT starts over, removing every other volume.
        let devs: Vec<Box<dyn WriteDevice>> = vec![Box::new(v.dev(1))];
        backup(&mut &b"again"[..], "in", devs, &opts, &|_| {}, &Stop::new()).unwrap();
        assert_eq!(v.0.lock().unwrap().len(), 1);
        assert_eq!(read(&v, 1).unwrap(), b"again");
    }
}
