//! Reading the structure of bak media: the label, the set map, the sets found from the end of a
//! file through the end-of-set back pointers, and a front-to-back record reader for pipes.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::format::*;

/// Read exactly `buf.len()` bytes at `offset`; a short file is `Truncated`.
pub(crate) fn read_at(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    at: &Location,
    what: &str,
) -> Result<()> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::Truncated {
            at: at.clone().at(offset),
            what: what.to_string(),
        }),
        Err(e) => Err(Error::io(&at.device, "read", e)),
    }
}

/// Read a whole record frame of a known type at `offset` of a file, checking both CRCs.
pub(crate) fn read_record_at(
    file: &File,
    offset: u64,
    file_len: u64,
    want: RecordType,
    at: &Location,
) -> Result<Vec<u8>> {
    let at = at.clone().at(offset);
    let mut prefix = [0u8; RECORD_PREFIX_LEN];
    read_at(file, &mut prefix, offset, &at, want.name())?;
    let mut fh = [0u8; FRAME_HEADER_LEN];
    fh.copy_from_slice(&prefix[..FRAME_HEADER_LEN]);
    let size = parse_frame_header(&fh).ok_or_else(|| {
        Error::mismatch(
            at.clone(),
            format!("no {} here", want.name()),
            "a bak record frame",
            hex(&fh),
        )
    })?;
    let mut rh = [0u8; RECORD_HEADER_LEN];
    rh.copy_from_slice(&prefix[FRAME_HEADER_LEN..]);
    let h = parse_record_header(&rh, size, want == RecordType::MediaHeader, &at)?;
    if h.kind != want {
        return Err(Error::mismatch(
            at,
            "unexpected record",
            want.name(),
            h.kind.name(),
        ));
    }
    let end = offset + RECORD_PREFIX_LEN as u64 + h.body_len as u64;
    if end > file_len {
        return Err(Error::Truncated {
            at,
            what: want.name().to_string(),
        });
    }
    let mut body = vec![0u8; h.body_len as usize];
    read_at(
        file,
        &mut body,
        offset + RECORD_PREFIX_LEN as u64,
        &at,
        want.name(),
    )?;
    check_body(&h, &body, &at)?;
    Ok(body)
}

/// Where each record of one complete set lies in one family, and what they say.
#[derive(Debug, Clone)]
pub struct SetOnFamily {
    /// The set header.
    pub header: SetHeader,
    /// The trailing config.
    pub trailing: TrailingConfig,
    /// The end-of-set record (offsets of every record of the set).
    pub eset: EndOfSet,
}

/// A set that was started but has no end-of-set record on this family.
#[derive(Debug, Clone)]
pub struct InterruptedSet {
    /// Its set header, when that much was written.
    pub header: Option<SetHeader>,
    /// Where it starts (the append point of the complete sets).
    pub offset: u64,
}

/// What one seekable family file holds, found without reading the data.
#[derive(Debug)]
pub struct FamilyScan {
    /// The path.
    pub path: PathBuf,
    /// The label.
    pub media: MediaHeader,
    /// The newest valid set map slot, if any.
    pub slot: Option<SetMapSlot>,
    /// Complete sets, in position order.
    pub sets: Vec<SetOnFamily>,
    /// Where the complete sets end: the append point.
    pub end_offset: u64,
    /// Bytes in the file.
    pub file_len: u64,
    /// The set after the complete ones, if one was started and not finished.
    pub interrupted: Option<InterruptedSet>,
    /// Why the walk back through the end-of-set chain stopped before set 1, if it did: the
    /// sets before `sets[0]` are damaged.
    pub broken: Option<Error>,
}

impl FamilyScan {
    /// The complete set at a position, if the scan found it.
    pub fn set(&self, position: u32) -> Option<&SetOnFamily> {
        self.sets.iter().find(|s| s.header.position == position)
    }
    /// Position of the set after the last complete one.
    pub fn next_position(&self) -> u32 {
        self.sets.last().map_or(1, |s| s.header.position + 1)
    }
}

/// Read the label of a family: the first 4096 bytes. `Ok(None)` when the file is not bak media
/// (so the caller can try other formats or call it foreign).
pub fn read_label(file: &File, path: &Path) -> Result<Option<MediaHeader>> {
    let at = Location::device(path.display().to_string()).at(0);
    let mut buf = vec![0u8; MEDIA_HEADER_SPAN as usize];
    let n = read_up_to(file, &mut buf, 0).map_err(|e| Error::io(path, "read", e))?;
    if n < 12 || crate::read::sniff(&buf[..n]) != Some(crate::model::MediaKind::Bak) {
        return Ok(None);
    }
    if n < buf.len() {
        return Err(Error::Truncated {
            at,
            what: "media header".into(),
        });
    }
    let (_, body) = parse_frame(&buf, RecordType::MediaHeader, &at)?;
    MediaHeader::parse_body(body, &at).map(Some)
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Read the two set map slots and keep the newest valid one of this media set.
pub fn read_set_map(file: &File, path: &Path, media_set_id: &Guid) -> Option<SetMapSlot> {
    let at = Location::device(path.display().to_string());
    let mut best: Option<SetMapSlot> = None;
    for off in [
        SET_MAP_OFFSET + FRAME_HEADER_LEN as u64,
        SET_MAP_OFFSET + SET_MAP_SLOT_B,
    ] {
        let mut buf = [0u8; RECORD_PREFIX_LEN + 48];
        if read_at(file, &mut buf, off, &at, "set map").is_err() {
            continue;
        }
        let slot = parse_frame(&buf, RecordType::SetMap, &at)
            .and_then(|(_, body)| SetMapSlot::parse_body(body, &at));
        if let Ok(s) = slot {
            if s.media_set_id == *media_set_id && best.is_none_or(|b| s.generation > b.generation) {
                best = Some(s);
            }
        }
    }
    best
}

/// Read the end-of-set record that should sit at `offset`, checking that it says so itself.
fn eset_at(
    file: &File,
    offset: u64,
    file_len: u64,
    media: &MediaHeader,
    at: &Location,
) -> Result<EndOfSet> {
    let body = read_record_at(file, offset, file_len, RecordType::EndOfSet, at)?;
    let at = at.clone().at(offset);
    let e = EndOfSet::parse_body(&body, &at)?;
    if e.self_offset != offset {
        return Err(Error::mismatch(
            at,
            "end-of-set record is not where it says",
            e.self_offset,
            offset,
        ));
    }
    if e.media_set_id != media.media_set_id || e.family_number != media.family_number {
        return Err(Error::corrupt(
            at,
            "end-of-set record belongs to another media family",
        ));
    }
    Ok(e)
}

/// Scan a seekable family file: label, set map, complete sets (from the end, through the back
/// pointers), and an interrupted set after them. Costs a few reads per set, none per block,
/// except when the tail is damaged and the set map is stale (media written to a pipe and later
/// cut short): then the sets after the set map's point are walked block header by block header.
pub fn scan_family(file: &File, path: &Path) -> Result<FamilyScan> {
    let dev = path.display().to_string();
    let file_len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    let media = read_label(file, path)?.ok_or_else(|| Error::NotMedia {
        device: dev.clone(),
        found: first_bytes(file),
    })?;
    let at = Location::device(dev.clone()).family(media.family_number as u32);
    if file_len < FIRST_SET_OFFSET {
        return Err(Error::Truncated {
            at: at.clone().at(file_len),
            what: "set map".into(),
        });
    }
    let slot = read_set_map(file, path, &media.media_set_id);

    // The last complete end-of-set: at the very end of the file when the last set is complete.
    let mut last: Option<EndOfSet> = None;
    if file_len >= FIRST_SET_OFFSET + ESET_FRAME_LEN as u64 {
        last = eset_at(
            file,
            file_len - ESET_FRAME_LEN as u64,
            file_len,
            &media,
            &at,
        )
        .ok();
    }
    if last.is_none() {
        // The tail is an interrupted set. The set map points at the end of the complete sets;
        // complete sets written after it (a crash between a set's end and the slot update) are
        // found by walking forward from there.
        let mut from = FIRST_SET_OFFSET;
        if let Some(s) =
            slot.filter(|s| s.end_offset <= file_len && s.end_offset >= FIRST_SET_OFFSET)
        {
            if s.last_eset_offset != 0 {
                if let Ok(e) = eset_at(file, s.last_eset_offset, file_len, &media, &at) {
                    last = Some(e);
                    from = s.end_offset;
                }
            }
        }
        if let Some(e) = walk_forward(file, file_len, from, &media, &at)? {
            last = Some(e);
        }
    }

    // Walk back through the chain. Damage in an earlier set's records ends the walk there: the
    // sets after it are still found (and restorable); the earlier ones are reported as lost.
    let mut sets = Vec::new();
    let mut cursor = last;
    let mut broken = None;
    while let Some(e) = cursor {
        let step = (|| -> Result<(SetOnFamily, Option<u64>)> {
            let sh = read_record_at(
                file,
                e.set_header_offset,
                file_len,
                RecordType::SetHeader,
                &at,
            )?;
            let header = SetHeader::parse_body(&sh, &at.clone().at(e.set_header_offset))?;
            let tc = read_record_at(
                file,
                e.trailing_offset,
                file_len,
                RecordType::TrailingConfig,
                &at,
            )?;
            let trailing = TrailingConfig::parse_body(&tc, &at.clone().at(e.trailing_offset))?;
            if header.set_id != e.set_id
                || trailing.set_id != e.set_id
                || header.position != e.position
            {
                return Err(Error::corrupt(
                    at.clone().at(e.self_offset),
                    "end-of-set record points at records of another backup set",
                ));
            }
            let prev = (e.prev_eset_offset != 0).then_some(e.prev_eset_offset);
            Ok((
                SetOnFamily {
                    header,
                    trailing,
                    eset: e,
                },
                prev,
            ))
        })();
        match step {
            Ok((s, prev)) => {
                sets.push(s);
                cursor = match prev {
                    None => None,
                    Some(p) => match eset_at(file, p, file_len, &media, &at) {
                        Ok(pe) if pe.position + 1 == e.position => Some(pe),
                        Ok(_) => {
                            broken = Some(Error::corrupt(
                                at.clone().at(p),
                                "end-of-set chain skips a position",
                            ));
                            None
                        }
                        Err(err) => {
                            broken = Some(err);
                            None
                        }
                    },
                };
            }
            Err(err) => {
                broken = Some(err);
                cursor = None;
            }
        }
        if sets.len() > u32::MAX as usize {
            break;
        }
    }
    sets.reverse();
    if broken.is_none() {
        if let Some(first) = sets.first() {
            if first.header.position != 1 {
                broken = Some(Error::mismatch(
                    at.clone().at(first.eset.set_header_offset),
                    "the first backup set in the end-of-set chain is not set 1",
                    1,
                    first.header.position,
                ));
            }
        }
    }
    let end_offset = sets.last().map_or(FIRST_SET_OFFSET, |s| {
        s.eset.self_offset + ESET_FRAME_LEN as u64
    });
    let interrupted = (file_len > end_offset).then(|| {
        let header = read_record_at(file, end_offset, file_len, RecordType::SetHeader, &at)
            .and_then(|b| SetHeader::parse_body(&b, &at))
            .ok();
        InterruptedSet {
            header,
            offset: end_offset,
        }
    });
    Ok(FamilyScan {
        path: path.to_path_buf(),
        media,
        slot,
        sets,
        end_offset,
        file_len,
        interrupted,
        broken,
    })
}

/// Walk sets forward from `from` by their records (block headers included) and return the last
/// end-of-set found. Stops quietly at the first thing that is not a well-formed record.
fn walk_forward(
    file: &File,
    file_len: u64,
    from: u64,
    media: &MediaHeader,
    at: &Location,
) -> Result<Option<EndOfSet>> {
    let mut pos = from;
    let mut last = None;
    let mut max_transfer = MAX_TRANSFER;
    loop {
        let mut prefix = [0u8; RECORD_PREFIX_LEN];
        if pos + RECORD_PREFIX_LEN as u64 > file_len
            || read_at(file, &mut prefix, pos, at, "record").is_err()
        {
            return Ok(last);
        }
        let mut fh = [0u8; FRAME_HEADER_LEN];
        fh.copy_from_slice(&prefix[..FRAME_HEADER_LEN]);
        let Some(size) = parse_frame_header(&fh) else {
            return Ok(last);
        };
        let mut rh = [0u8; RECORD_HEADER_LEN];
        rh.copy_from_slice(&prefix[FRAME_HEADER_LEN..]);
        let Ok(h) = parse_record_header(&rh, size, false, at) else {
            return Ok(last);
        };
        let next = pos + FRAME_HEADER_LEN as u64 + size as u64;
        if next > file_len {
            return Ok(last);
        }
        match h.kind {
            RecordType::EndOfSet => match eset_at(file, pos, file_len, media, at) {
                Ok(e) => {
                    last = Some(e);
                    pos = next;
                }
                Err(_) => return Ok(last),
            },
            RecordType::SetHeader => {
                match read_record_at(file, pos, file_len, RecordType::SetHeader, at)
                    .and_then(|b| SetHeader::parse_body(&b, at))
                {
                    Ok(s) => max_transfer = s.max_transfer,
                    Err(_) => return Ok(last),
                }
                pos = next;
            }
            RecordType::BlockHeader => {
                let Ok(b) = read_record_at(file, pos, file_len, RecordType::BlockHeader, at) else {
                    return Ok(last);
                };
                let Ok(bh) = BlockHeader::parse_body(&b, at) else {
                    return Ok(last);
                };
                if bh.check_lengths(max_transfer, at).is_err() {
                    return Ok(last);
                }
                pos = next + bh.stored_len as u64;
            }
            _ => pos = next,
        }
    }
}

/// The first bytes of a file in hex, for "not media" messages.
pub fn first_bytes(file: &File) -> String {
    let mut b = [0u8; 8];
    match read_up_to(file, &mut b, 0) {
        Ok(0) => "an empty file".into(),
        Ok(n) => format!("first bytes {}", hex(&b[..n])),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// One record read from a stream: its type, the offset of its frame, and its checked body.
#[derive(Debug)]
pub struct StreamRecord {
    /// Record type.
    pub kind: RecordType,
    /// Offset of the frame in the device.
    pub offset: u64,
    /// Checked body.
    pub body: Vec<u8>,
}

/// Reads records front to back from any `Read` (a pipe, a FIFO, or a file from an offset),
/// tracking the byte offset for messages. Every length is checked by its CRC before use.
pub struct RecordReader<R> {
    inner: R,
    /// Offset of the next byte.
    pub offset: u64,
    at: Location,
}

impl<R: Read> RecordReader<R> {
    /// A reader starting at `offset` of the device named in `at`.
    pub fn new(inner: R, offset: u64, at: Location) -> Self {
        RecordReader { inner, offset, at }
    }

    /// The location (device, family, set) used in messages.
    pub fn location(&self) -> Location {
        self.at.clone().at(self.offset)
    }

    /// Set the family / set named in messages.
    pub fn set_location(&mut self, at: Location) {
        self.at = at;
    }

    /// Fill `buf` completely; `Ok(false)` on a clean end of stream before the first byte.
    pub fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<bool> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => {
                    if done == 0 {
                        return Ok(false);
                    }
                    return Err(Error::Truncated {
                        at: self.at.clone().at(self.offset + done as u64),
                        what: what.to_string(),
                    });
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.at.device, "read", e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    /// Read exactly `buf.len()` bytes; the end of the stream is truncation.
    pub fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let start = self.offset;
        if !self.fill(buf, what)? && !buf.is_empty() {
            return Err(Error::Truncated {
                at: self.at.clone().at(start),
                what: what.to_string(),
            });
        }
        Ok(())
    }

    /// The next record; `Ok(None)` at a clean end of the stream.
    pub fn next_record(&mut self) -> Result<Option<StreamRecord>> {
        let offset = self.offset;
        let at = self.at.clone().at(offset);
        let mut fh = [0u8; FRAME_HEADER_LEN];
        if !self.fill(&mut fh, "record")? {
            return Ok(None);
        }
        let size = parse_frame_header(&fh).ok_or_else(|| {
            Error::mismatch(
                at.clone(),
                "expected a bak record frame",
                "skippable frame magic",
                hex(&fh),
            )
        })?;
        let mut rh = [0u8; RECORD_HEADER_LEN];
        self.read_exact(&mut rh, "record header")?;
        let h = parse_record_header(&rh, size, false, &at)?;
        // Large bodies (an MBC) are read in steps, growing the buffer only as bytes arrive, so
        // a lying length costs no more memory than the stream really holds.
        let mut body = Vec::with_capacity((h.body_len as usize).min(1 << 20));
        let mut left = h.body_len as usize;
        while left > 0 {
            let n = left.min(1 << 20);
            let start = body.len();
            body.resize(start + n, 0);
            self.read_exact(&mut body[start..], h.kind.name())?;
            left -= n;
        }
        check_body(&h, &body, &at)?;
        Ok(Some(StreamRecord {
            kind: h.kind,
            offset,
            body,
        }))
    }

    /// Skip `n` bytes (the payload of a block not wanted).
    pub fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        let mut left = n;
        let mut buf = vec![0u8; (64 << 10).min(n as usize)];
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..k], what)?;
            left -= k as u64;
        }
        Ok(())
    }

    /// The underlying reader, to take bytes from it directly (a memory map); report what was
    /// taken with [`RecordReader::advanced`] so offsets stay right.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// `n` bytes were taken from the underlying reader directly.
    pub fn advanced(&mut self, n: u64) {
        self.offset += n;
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}
