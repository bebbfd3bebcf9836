//! The bytes of one device as an MTF stream: the file itself, or for a compressed backup
//! (`MSSQLBAK`) the MTF stream decoded chunk by chunk on demand.
//!
//! Reads are positioned (`pread`), so opening a device reads only what the metadata walk
//! needs; a compressed device is mapped chunk by chunk from the 28-byte chunk headers, without
//! decoding any payload until asked.

use std::sync::{Arc, Mutex};

use super::dblk::{Dblk, Tape, DBLK_LEN};
use super::le::{u16_at, u32_at, u8_at};
use super::unsupported;
use bak_core::bytes::MediaKind;
use bak_core::device::{read_full_at, spool, RandomRead, ReadDevice};
use bak_core::engine::{guarded, Ordered, Placement, Pool, Queue, Stop};
use bak_core::error::{Error, Location, Result};

/// The two u32 after the magic in every compressed fixture; anything else is a version this
/// reader has not seen.
const MSSQLBAK_VERSION: (u32, u32) = (2, 3);
/// Where the first chunk starts (observed in all four compressed fixtures: the header area
/// before it is 480 bytes).
pub(crate) const FIRST_CHUNK: u64 = 0x1e0;
/// Chunk header size.
pub(crate) const CHUNK_HEADER: u64 = 28;
/// Offset in a chunk header of the check value of its payload ([`super::csum::chunk_check`]).
const CHECK_AT: usize = 24;
/// Size of the records that end a run of chunks (0x24 and 0x2c).
const END_RECORD: u64 = 24;
/// Marker byte of a compressed chunk.
const MARK_CHUNK: u8 = 0x21;
/// Marker byte of the record that ends a run of chunks (followed by padding).
const MARK_END: u8 = 0x24;
/// Marker byte of the chunk index record that ends the data of a set.
const MARK_INDEX: u8 = 0x2c;
/// Container sector: raw blocks and chunk runs start on this boundary, and the padding unit
/// when the TAPE block cannot be had.
const SECTOR: u64 = 512;
/// Size of the chunk index header, and of its copy at the end of the index's padding.
const INDEX_HEADER: u64 = 16;
/// Largest read buffer for plain copies.
const COPY_BUF: usize = 1 << 20;

/// Receiver of [`Media::stream_range`]: the MTF offset of a piece, and its bytes or, for a
/// chunk that does not decode, its length and the error.
pub(crate) type Sink<'a> =
    dyn FnMut(u64, std::result::Result<&[u8], (u64, Error)>) -> Result<()> + 'a;

/// Hands one decoded piece (or its error) on, in order; see [`Media::stream_range`].
type Emit<'a> = dyn FnMut(&Seg, Result<()>, &[u8]) -> Result<()> + 'a;

/// One piece of the MTF stream of a compressed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seg {
    /// Offset of the piece in the decompressed MTF stream.
    pub mtf_off: u64,
    /// Decompressed length.
    pub ulen: u32,
    /// Offset in the file: of the chunk header, or of the raw block.
    pub file_off: u64,
    /// Payload length for a chunk; `None` for a raw (uncompressed) block such as SFMB.
    pub clen: Option<u32>,
    /// Chunk index, counted from 0 in file order (raw blocks included).
    pub index: u64,
}

/// Something wrong in the compressed container, found while mapping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerDamage {
    pub file_off: u64,
    pub chunk: Option<u64>,
    pub what: String,
    pub truncated: bool,
}

/// The map of a compressed device.
#[derive(Debug, Default)]
pub(crate) struct ChunkMap {
    pub segs: Vec<Seg>,
    pub mtf_len: u64,
    pub damage: Vec<ContainerDamage>,
}

/// The padding after a record that ends a run of chunks, as the rule and the record give it.
struct Padding<'a> {
    /// First padding byte: after the 24-byte record, or after the chunk index's entries.
    start: u64,
    /// Where the rule says the padding ends: a boundary of the padding unit.
    end: u64,
    /// Where the record says it ends.
    stated: u64,
    /// After a chunk index: its 16-byte header, which the last 16 bytes of the padding repeat.
    tail: Option<&'a [u8]>,
}

/// One device's bytes.
pub(crate) struct Media {
    file: Box<dyn RandomRead>,
    name: String,
    file_len: u64,
    pub kind: MediaKind,
    pub map: Option<ChunkMap>,
    /// The last decoded chunk: metadata reads come in runs inside one chunk.
    cache: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

/// What the SQL Server reader recognises: bak-core's format detection, MTF kinds only.
pub(crate) fn sniff(head: &[u8]) -> Option<MediaKind> {
    bak_core::bytes::sniff(head).filter(|k| *k != MediaKind::Bak)
}

/// The data a foreign payload begins with, in words.
fn codec_data(c: unsupported::Codec) -> &'static str {
    match c {
        unsupported::Codec::Zstd => "a Zstandard frame (magic 28 b5 2f fd)",
        unsupported::Codec::QatDeflate => "a gzip member (1f 8b 08), as QATzip writes",
        unsupported::Codec::Mtf(_) => "MTF software compressed data",
    }
}

fn hex_head(b: &[u8]) -> String {
    if b.is_empty() {
        return "an empty file".into();
    }
    let h: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!("bytes {}", h.join(" "))
}

impl Media {
    /// Open a device and recognise it; map the chunks of a compressed one. A device without
    /// positioned reads (a pipe) is first copied to an anonymous temporary file.
    pub fn open(dev: Box<dyn ReadDevice>) -> Result<Media> {
        let device = dev.name().to_string();
        let file = spool(dev)?;
        let file_len = file.len().map_err(|e| Error::io(&device, "stat", e))?;
        let mut head = [0u8; 16];
        let n =
            read_full_at(file.as_ref(), &mut head, 0).map_err(|e| Error::io(&device, "read", e))?;
        let head = &head[..n];
        let kind = sniff(head).ok_or_else(|| Error::NotMedia {
            device: device.clone(),
            found: hex_head(head),
        })?;
        let mut m = Media {
            file,
            name: device.clone(),
            file_len,
            kind,
            map: None,
            cache: Mutex::new(None),
        };
        if kind == MediaKind::MtfCompressed {
            let v = (u32_at(head, 8).unwrap_or(0), u32_at(head, 12).unwrap_or(0));
            if v != MSSQLBAK_VERSION {
                return Err(Error::UnsupportedVersion {
                    at: Location::device(device).at(8),
                    found: format!("MSSQLBAK {}.{}", v.0, v.1),
                    supported: "MSSQLBAK 2.3".into(),
                });
            }
            m.map = Some(m.map_chunks()?);
        }
        Ok(m)
    }

    /// The device name for messages.
    pub fn device(&self) -> String {
        self.name.clone()
    }

    /// Length of the MTF stream (decompressed for a compressed device).
    pub fn len(&self) -> u64 {
        match &self.map {
            Some(m) => m.mtf_len,
            None => self.file_len,
        }
    }

    /// Read raw file bytes at `off`; returns how many were read (short only at end of file).
    pub fn read_file_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        read_full_at(self.file.as_ref(), buf, off).map_err(|e| Error::io(&self.name, "read", e))
    }

    /// Map the chunks of a compressed container. Damage is recorded, not fatal: the map then
    /// resumes at the next raw SFMB block found on a sector boundary.
    fn map_chunks(&self) -> Result<ChunkMap> {
        let mut map = ChunkMap::default();
        let mut pos = FIRST_CHUNK;
        let mut index = 0u64;
        let unit = self.padding_unit()?;
        let mut hdr = [0u8; DBLK_LEN];
        while pos < self.file_len {
            let n = self.read_file_at(pos, &mut hdr)?;
            let h = &hdr[..n];
            if h.starts_with(b"SFMB") {
                match raw_block_size(h) {
                    Some(size) if pos.checked_add(size).is_some_and(|e| e <= self.file_len) => {
                        map.segs.push(Seg {
                            mtf_off: map.mtf_len,
                            ulen: size as u32,
                            file_off: pos,
                            clen: None,
                            index,
                        });
                        map.mtf_len += size;
                        index += 1;
                        pos += size;
                        continue;
                    }
                    _ => {
                        map.damage.push(ContainerDamage {
                            file_off: pos,
                            chunk: Some(index),
                            what: "raw SFMB block in the container is damaged or cut short".into(),
                            truncated: false,
                        });
                        pos = self.resync(pos.saturating_add(SECTOR))?;
                        continue;
                    }
                }
            }
            match u8_at(h, 0) {
                Some(MARK_CHUNK) => {
                    let ulen = u64::from(u8_at(h, 1).unwrap_or(0)) * 512;
                    let clen = u64::from(u16_at(h, 2).unwrap_or(0));
                    let end = pos
                        .checked_add(CHUNK_HEADER)
                        .and_then(|p| p.checked_add(clen));
                    if n < CHUNK_HEADER as usize || ulen == 0 || clen == 0 {
                        map.damage.push(ContainerDamage {
                            file_off: pos,
                            chunk: Some(index),
                            what: format!("chunk header damaged (uncompressed {ulen} bytes, payload {clen} bytes)"),
                            truncated: n < CHUNK_HEADER as usize,
                        });
                        pos = self.resync(pos.saturating_add(1))?;
                        continue;
                    }
                    match end {
                        Some(e) if e <= self.file_len => {
                            map.segs.push(Seg {
                                mtf_off: map.mtf_len,
                                ulen: ulen as u32,
                                file_off: pos,
                                clen: Some(clen as u32),
                                index,
                            });
                            map.mtf_len += ulen;
                            index += 1;
                            pos = e;
                        }
                        _ => {
                            map.damage.push(ContainerDamage {
                                file_off: pos,
                                chunk: Some(index),
                                what: format!(
                                    "chunk payload of {clen} bytes runs past the end of the file"
                                ),
                                truncated: true,
                            });
                            break;
                        }
                    }
                }
                Some(MARK_END) => {
                    // A 24-byte record whose u16 at 2 counts the zero bytes after it, which run
                    // to the next boundary of the padding unit.
                    if n < END_RECORD as usize {
                        map.damage.push(ContainerDamage {
                            file_off: pos,
                            chunk: Some(index),
                            what: "media end inside the record that ends a run of chunks".into(),
                            truncated: true,
                        });
                        break;
                    }
                    let start = pos + END_RECORD;
                    let pad = Padding {
                        start,
                        end: start.div_ceil(unit) * unit,
                        stated: start + u64::from(u16_at(h, 2).unwrap_or(0)),
                        tail: None,
                    };
                    if !self.padding_ok(&pad, unit, pos, index, &mut map)? {
                        break;
                    }
                    pos = pad.end;
                }
                Some(MARK_INDEX) => {
                    // A 24-byte record, a 16-byte index header (u16 1, u16 1, u32 entry count,
                    // u32 bytes from the header to the end of the padding, u32 check value),
                    // 16-byte entries (u64 decompressed offset, u64 file offset of a chunk),
                    // then zeros to the first boundary of the padding unit that leaves room for
                    // the copy of the index header that ends the padding.
                    let at = pos + END_RECORD;
                    let mut ih = [0u8; INDEX_HEADER as usize];
                    let k = self.read_file_at(at, &mut ih)?;
                    let ih = &ih[..k];
                    let count = u64::from(u32_at(ih, 4).unwrap_or(0));
                    let end = count
                        .checked_mul(16)
                        .and_then(|x| x.checked_add(at + INDEX_HEADER))
                        .filter(|&e| e <= self.file_len);
                    match end {
                        Some(e) if ih.len() == INDEX_HEADER as usize => {
                            if let Some(what) = self.index_damage(at, count)? {
                                map.damage.push(ContainerDamage {
                                    file_off: pos,
                                    chunk: Some(index),
                                    what,
                                    truncated: false,
                                });
                            }
                            let pad = Padding {
                                start: e,
                                end: (e + INDEX_HEADER).div_ceil(unit) * unit,
                                stated: at + u64::from(u32_at(ih, 8).unwrap_or(0)),
                                tail: Some(ih),
                            };
                            if !self.padding_ok(&pad, unit, pos, index, &mut map)? {
                                break;
                            }
                            pos = pad.end;
                        }
                        _ => {
                            map.damage.push(ContainerDamage {
                                file_off: pos,
                                chunk: Some(index),
                                what: format!("chunk index record claims {count} entries, past the end of the file"),
                                truncated: false,
                            });
                            pos = self.resync(pos.saturating_add(1))?;
                        }
                    }
                }
                _ => {
                    // A chunk of another algorithm, with a header of the same shape or none:
                    // its data start right here or after a 28-byte header.
                    let payload = h.get(CHUNK_HEADER as usize..).unwrap_or(&[]);
                    let foreign = unsupported::foreign_payload(h)
                        .map(|c| (c, "its data"))
                        .or_else(|| {
                            unsupported::foreign_payload(payload)
                                .map(|c| (c, "the data after a 28-byte chunk header"))
                        });
                    if let Some((codec, what)) = foreign {
                        let what = format!(
                            "at file offset {pos} (chunk {index}), where an MS_XPRESS chunk \
                             (marker 0x21) belongs, {} begins {what}",
                            codec_data(codec)
                        );
                        return Err(unsupported::foreign_chunk(&self.name, codec, &what));
                    }
                    map.damage.push(ContainerDamage {
                        file_off: pos,
                        chunk: Some(index),
                        what: format!(
                            "unrecognised bytes in the compressed container ({})",
                            hex_head(h)
                        ),
                        truncated: false,
                    });
                    pos = self.resync(pos.saturating_add(1))?;
                }
            }
        }
        Ok(map)
    }

    /// Check a chunk index whose 16-byte header is at `at` and whose `count` entries (known to
    /// lie inside the file) follow: the u32 at 12 of the header is the check value of the
    /// entries ([`super::csum::chunk_check`]). The entries are read in pieces, so a large count
    /// costs no memory.
    fn index_damage(&self, at: u64, count: u64) -> Result<Option<String>> {
        let mut head = [0u8; 16];
        if self.read_file_at(at, &mut head)? < head.len() {
            return Ok(Some("chunk index cut short".into()));
        }
        let stored = u32_at(&head, 12).unwrap_or(0);
        let mut c = 0u32;
        let mut buf = vec![0u8; 64 * 1024];
        let mut off = at + 16;
        let end = off + count * 16;
        while off < end {
            let want = usize::try_from(end - off)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = self.read_file_at(off, &mut buf[..want])?;
            if n < want {
                return Ok(Some("chunk index cut short".into()));
            }
            c = super::csum::chunk_check_from(c, &buf[..n]);
            off += n as u64;
        }
        Ok((c != stored).then(|| {
            format!("chunk index of {count} entries does not match its check value (expected {stored:#010x}, found {c:#010x})")
        }))
    }

    /// The unit the padding after a run of chunks goes to: the soft filemark block size that
    /// the TAPE block states (TAPE +64, in 512-byte units), read from the first chunk, which
    /// decodes to the TAPE block (512 bytes in cmp2019_full_checksum, 4096 in
    /// cmp2019_datatable_peterezz). The container header does not state it. When the first
    /// chunk cannot be had the media do not open (no TAPE block), and 512 is as good as any.
    fn padding_unit(&self) -> Result<u64> {
        let mut h = [0u8; CHUNK_HEADER as usize];
        let n = self.read_file_at(FIRST_CHUNK, &mut h)?;
        let clen = u32::from(u16_at(&h, 2).unwrap_or(0));
        if n < h.len() || h[0] != MARK_CHUNK || h[1] == 0 || clen == 0 {
            return Ok(SECTOR);
        }
        let seg = Seg {
            mtf_off: 0,
            ulen: u32::from(h[1]) * 512,
            file_off: FIRST_CHUNK,
            clen: Some(clen),
            index: 0,
        };
        let tape = match self.decode(&seg) {
            Ok(t) => t,
            Err(Error::Io { path, op, source }) => return Err(Error::Io { path, op, source }),
            Err(_) => return Ok(SECTOR),
        };
        let size = Dblk::parse(&tape)
            .ok()
            .filter(|d| d.kind == *b"TAPE")
            .and_then(|d| Tape::parse(&tape, &d))
            .map(|t| t.soft_filemark_size())
            .filter(|s| (SECTOR..=65536).contains(s) && s % SECTOR == 0);
        Ok(size.unwrap_or(SECTOR))
    }

    /// Check the padding after the record at `record` (piece `index`), recording what is
    /// wrong; `false` when the file ends inside it (the map goes no further).
    fn padding_ok(
        &self,
        pad: &Padding<'_>,
        unit: u64,
        record: u64,
        index: u64,
        map: &mut ChunkMap,
    ) -> Result<bool> {
        let Some((what, truncated)) = self.padding_damage(pad, unit)? else {
            return Ok(true);
        };
        map.damage.push(ContainerDamage {
            file_off: record,
            chunk: Some(index),
            what,
            truncated,
        });
        Ok(!truncated)
    }

    /// What is wrong with the padding after a record that ends a run of chunks, and whether
    /// it is the file ending early. Only what the format explains is accepted: the padding
    /// ends at the boundary of the unit the rule gives (`pad.end`), the record states that same
    /// end, every byte is zero except the index header's copy in the last 16 (after an index).
    fn padding_damage(&self, pad: &Padding<'_>, unit: u64) -> Result<Option<(String, bool)>> {
        let after = match pad.tail {
            Some(_) => "chunk index",
            None => "record that ends a run of chunks",
        };
        if pad.stated != pad.end {
            return Ok(Some((
                format!(
                    "the {after} says its padding ends at {}, but the next {unit}-byte boundary is {}",
                    pad.stated, pad.end
                ),
                false,
            )));
        }
        if pad.end > self.file_len {
            return Ok(Some((
                format!(
                    "media end inside the padding after the {after} (it runs to {})",
                    pad.end
                ),
                true,
            )));
        }
        let zeros_end = pad.end - pad.tail.map_or(0, |t| t.len() as u64);
        let mut buf = vec![0u8; usize::try_from(unit).unwrap_or(usize::MAX).min(1 << 16)];
        let mut at = pad.start;
        while at < zeros_end {
            let want = usize::try_from(zeros_end - at)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = self.read_file_at(at, &mut buf[..want])?;
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return Ok(Some((
                    format!(
                        "non-zero byte {:#04x} at {} in the padding after the {after}",
                        buf[i],
                        at + i as u64
                    ),
                    false,
                )));
            }
            if n < want {
                break;
            }
            at += n as u64;
        }
        if let Some(tail) = pad.tail {
            let mut copy = vec![0u8; tail.len()];
            let n = self.read_file_at(zeros_end, &mut copy)?;
            if copy[..n] != *tail {
                return Ok(Some((
                    format!(
                        "the padding after the chunk index does not end with a copy of the index header (at {zeros_end})"
                    ),
                    false,
                )));
            }
        }
        Ok(None)
    }

    /// The next sector boundary at or after `from` where a raw SFMB block starts (the one
    /// place a run of chunks is known to begin after), or the end of the file.
    fn resync(&self, from: u64) -> Result<u64> {
        let mut p = from.div_ceil(SECTOR) * SECTOR;
        let mut hdr = [0u8; DBLK_LEN];
        while p < self.file_len {
            let n = self.read_file_at(p, &mut hdr)?;
            if hdr[..n].starts_with(b"SFMB") && Dblk::parse(&hdr[..n]).is_ok() {
                return Ok(p);
            }
            p += SECTOR;
        }
        Ok(self.file_len)
    }

    /// Decode chunk `i` of the map (cached).
    fn chunk(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((ci, data)) = c.as_ref() {
                if *ci == i {
                    return Ok(Arc::clone(data));
                }
            }
        }
        let seg = self
            .map
            .as_ref()
            .and_then(|m| m.segs.get(i))
            .ok_or_else(|| {
                Error::corrupt(
                    Location::device(self.device()),
                    "internal: chunk index out of range",
                )
            })?;
        let data = Arc::new(self.decode(seg)?);
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((i, Arc::clone(&data)));
        }
        Ok(data)
    }

    /// Decode one piece (or read a raw block) into a fresh buffer.
    pub fn decode(&self, seg: &Seg) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decode_into(seg, &mut out, &mut Vec::new())?;
        Ok(out)
    }

    /// Decode one piece (or read a raw block) into `out` (resized to the piece's length),
    /// reading the compressed chunk through `scratch`; both are reused from call to call.
    pub fn decode_into(&self, seg: &Seg, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<()> {
        let loc = || {
            Location::device(self.device())
                .block(seg.index)
                .at(seg.file_off)
        };
        out.resize(seg.ulen as usize, 0);
        match seg.clen {
            None => {
                let n = self.read_file_at(seg.file_off, out)?;
                if n < out.len() {
                    return Err(Error::Truncated {
                        at: loc(),
                        what: "a raw block of the container".into(),
                    });
                }
            }
            Some(clen) => {
                scratch.resize(CHUNK_HEADER as usize + clen as usize, 0);
                let n = self.read_file_at(seg.file_off, scratch)?;
                if n < scratch.len() {
                    return Err(Error::Truncated {
                        at: loc(),
                        what: "the payload of a compressed chunk".into(),
                    });
                }
                let (header, payload) = scratch.split_at(CHUNK_HEADER as usize);
                // A payload that is not Xpress but another algorithm's data is not damage;
                // asked only once the Xpress checks fail, so a good chunk is never taken for
                // one.
                let foreign = || {
                    unsupported::foreign_payload(payload).map(|codec| {
                        unsupported::foreign_chunk(
                            &self.name,
                            codec,
                            &format!(
                                "the payload of the chunk at file offset {} (chunk {}) is {}, \
                                 not MS_XPRESS",
                                seg.file_off,
                                seg.index,
                                codec_data(codec)
                            ),
                        )
                    })
                };
                let stored = u32_at(header, CHECK_AT).unwrap_or(0);
                let computed = super::csum::chunk_check(payload);
                if stored != computed {
                    return Err(foreign().unwrap_or_else(|| Error::Corrupt {
                        at: loc(),
                        what: "compressed chunk's payload does not match its check value".into(),
                        expected: Some(format!("{stored:#010x}")),
                        found: Some(format!("{computed:#010x}")),
                    }));
                }
                if let Err(e) = crate::xpress::decompress_into(payload, out) {
                    return Err(foreign().unwrap_or_else(|| Error::Corrupt {
                        at: loc(),
                        what: format!("compressed chunk does not decode ({e})"),
                        expected: Some(format!("{} decoded bytes", seg.ulen)),
                        found: None,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Read MTF bytes at `off` into `buf`; returns the count read (short only at the end).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let Some(map) = &self.map else {
            return self.read_file_at(off, buf);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            if at >= map.mtf_len {
                break;
            }
            let i = map
                .segs
                .partition_point(|s| s.mtf_off + u64::from(s.ulen) <= at);
            let Some(seg) = map.segs.get(i) else { break };
            let data = self.chunk(i)?;
            let from = usize::try_from(at - seg.mtf_off).unwrap_or(usize::MAX);
            let Some(src) = data.get(from..) else { break };
            let n = src.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&src[..n]);
            done += n;
        }
        Ok(done)
    }

    /// Read exactly `len` MTF bytes at `off`, or `None` if the stream ends first.
    pub fn read_vec(&self, off: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let avail = self.len().saturating_sub(off);
        if (len as u64) > avail {
            return Ok(None);
        }
        let mut v = vec![0u8; len];
        let n = self.read_at(off, &mut v)?;
        Ok((n == len).then_some(v))
    }

    /// Feed the MTF bytes `off..off+len` in order to `sink`, decoding chunks in parallel with
    /// bounded memory. A chunk that fails to decode is passed to `sink` as `Err` (with its
    /// MTF range) so a verifier can go on; `sink` returning `Err` stops the walk.
    pub fn stream_range(&self, off: u64, len: u64, sink: &mut Sink<'_>) -> Result<()> {
        let end = off.saturating_add(len).min(self.len());
        if off >= end {
            return Ok(());
        }
        let Some(map) = &self.map else {
            let mut buf = vec![0u8; COPY_BUF.min(usize::try_from(end - off).unwrap_or(COPY_BUF))];
            let mut at = off;
            while at < end {
                let want = usize::try_from(end - at)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = self.read_file_at(at, &mut buf[..want])?;
                if n == 0 {
                    break;
                }
                sink(at, Ok(&buf[..n]))?;
                at += n as u64;
            }
            return Ok(());
        };
        let first = map
            .segs
            .partition_point(|s| s.mtf_off + u64::from(s.ulen) <= off);
        let last = map.segs.partition_point(|s| s.mtf_off < end);
        let segs = map.segs.get(first..last).unwrap_or(&[]);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 64);
        let piece = |seg: &Seg| {
            let s_start = seg.mtf_off.max(off);
            let s_end = (seg.mtf_off + u64::from(seg.ulen)).min(end);
            let lo = usize::try_from(s_start - seg.mtf_off).unwrap_or(0);
            let hi = usize::try_from(s_end - seg.mtf_off).unwrap_or(0);
            (s_start, s_end, lo, hi)
        };
        let mut emit = |seg: &Seg, r: Result<()>, data: &[u8]| {
            let (s_start, s_end, lo, hi) = piece(seg);
            match r {
                Ok(()) => sink(s_start, Ok(data.get(lo..hi).unwrap_or(&[]))),
                Err(e) => sink(s_start, Err((s_end - s_start, e))),
            }
        };
        let sequential = |emit: &mut Emit<'_>| {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            for seg in segs {
                let r = self.decode_into(seg, &mut out, &mut scratch);
                emit(seg, r, &out)?;
            }
            Ok(())
        };
        // Threads pay off from a few chunks on (a chunk decodes in about 60 us; starting a
        // thread costs a good part of that).
        let decoders = threads.min(segs.len() / 2);
        if decoders <= 1 {
            return sequential(&mut emit);
        }
        // A feeder hands chunk numbers with a buffer to the decoders; finished chunks go out in
        // order from this thread. At most 4 buffers per decoder exist (255 * 512 bytes each at
        // worst: 510 KiB per core), so memory is bounded whatever the backup's size.
        let stop = Stop::new();
        let pool = Pool::new(decoders * 4, 0, &stop);
        let jobs: Queue<(usize, Vec<u8>)> = Queue::new(decoders * 4, &stop);
        let done: Ordered<(Result<()>, Vec<u8>)> = Ordered::new(Placement::FirstFree, &stop);
        done.finish(segs.len() as u64);
        /// Raises the stop on every way out of the scope, a panic included, so that no thread
        /// is left waiting for a buffer or a job that will never come.
        struct RaiseOnDrop<'a>(&'a Stop);
        impl Drop for RaiseOnDrop<'_> {
            fn drop(&mut self) {
                self.0.raise();
            }
        }
        let parallel = std::thread::scope(|sc| {
            let _stop = RaiseOnDrop(&stop);
            let tx = jobs.sender();
            let pool = &pool;
            let fed = std::thread::Builder::new().spawn_scoped(sc, move || {
                for i in 0..segs.len() {
                    let Some(buf) = pool.get() else { break };
                    if !tx.push((i, buf)) {
                        break;
                    }
                }
            });
            if fed.is_err() {
                return None;
            }
            let mut started = 0;
            for _ in 0..decoders {
                let spawned = std::thread::Builder::new().spawn_scoped(sc, || {
                    let mut scratch = Vec::new();
                    while let Some((i, mut buf)) = jobs.pop() {
                        let r = guarded("chunk decoder", || {
                            self.decode_into(&segs[i], &mut buf, &mut scratch)
                        });
                        done.put(i as u64, (r, buf));
                    }
                });
                // Out of threads (a process limit): go on with the decoders there are.
                if spawned.is_err() {
                    break;
                }
                started += 1;
            }
            if started == 0 {
                return None;
            }
            let mut result = Ok(());
            while let Some((i, (r, buf))) = done.take(0) {
                result = emit(&segs[i as usize], r, &buf);
                pool.put(buf);
                if result.is_err() {
                    break;
                }
            }
            Some(result)
        });
        match parallel {
            Some(r) => r,
            // No thread could be started: decode here, one chunk after another.
            None => sequential(&mut emit),
        }
    }

    /// The container piece holding MTF offset `off` (compressed devices only).
    pub fn seg_at(&self, off: u64) -> Option<&Seg> {
        let map = self.map.as_ref()?;
        let i = map
            .segs
            .partition_point(|s| s.mtf_off + u64::from(s.ulen) <= off);
        map.segs.get(i)
    }

    /// File offset that corresponds to MTF offset `off`: itself for a plain device, the
    /// holding chunk's header for a compressed one.
    pub fn file_offset_of(&self, off: u64) -> u64 {
        match self.seg_at(off) {
            Some(s) if s.clen.is_none() => s.file_off + (off - s.mtf_off),
            Some(s) => s.file_off,
            None if self.map.is_some() => self.file_len,
            None => off,
        }
    }
}

/// Size of a raw block (its DBLK's first-stream offset, which for an SFMB is the block size),
/// when the header checks out.
fn raw_block_size(h: &[u8]) -> Option<u64> {
    let d = Dblk::parse(h).ok()?;
    let size = u64::from(d.first_stream);
    (512..=65536)
        .contains(&size)
        .then_some(size)
        .filter(|s| s % 512 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_takes_mtf_and_leaves_bak_media() {
        assert_eq!(sniff(b"TAPE\0\0"), Some(MediaKind::Mtf));
        let mut bak = vec![0u8; 16];
        bak[..4].copy_from_slice(&0x184D_2A5Bu32.to_le_bytes());
        bak[8..12].copy_from_slice(b"BKMH");
        assert_eq!(bak_core::bytes::sniff(&bak), Some(MediaKind::Bak));
        assert_eq!(sniff(&bak), None);
    }
}
