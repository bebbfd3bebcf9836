//! One media family on a random-read device, found without reading the data: the label, the
//! set map, the complete sets through the end-of-set back pointers from the end of the device,
//! an interrupted set after them, and what lies past the end of the media (another media
//! concatenated onto them, or other bytes). Costs a few reads per set, none per block.

use super::parser::{PosRead, SetParser};
use super::reader::RecordReader;
use crate::bytes::*;
use crate::device::{read_full_at, RandomRead};
use crate::error::{Beyond, Error, Location, PastEnd, Result};

/// Read exactly `buf.len()` bytes at `offset`; a short file is `Truncated`.
pub(crate) fn read_at(
    dev: &dyn RandomRead,
    buf: &mut [u8],
    offset: u64,
    at: &Location,
    what: &str,
) -> Result<()> {
    match read_full_at(dev, buf, offset) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(_) => Err(Error::Truncated {
            at: at.clone().at(offset),
            what: what.to_string(),
        }),
        Err(e) => Err(Error::io(&at.device, "read", e)),
    }
}

/// Read a whole record frame of a known type at `offset` of a file, checking both CRCs.
pub(crate) fn read_record_at(
    file: &dyn RandomRead,
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

/// The leading config and key records of the set whose header is at `offset`: they follow
/// the set header directly.
pub(crate) fn read_leading(
    file: &dyn RandomRead,
    offset: u64,
    at: &Location,
) -> Result<(LeadingConfig, Vec<KeyRecord>)> {
    let file_len = file.len().map_err(|e| Error::io(&at.device, "stat", e))?;
    let sh = read_record_at(file, offset, file_len, RecordType::SetHeader, at)?;
    let mut off = offset + (RECORD_PREFIX_LEN + sh.len()) as u64;
    let lc = read_record_at(file, off, file_len, RecordType::LeadingConfig, at)?;
    let leading = LeadingConfig::parse_body(&lc, &at.clone().at(off))?;
    off += (RECORD_PREFIX_LEN + lc.len()) as u64;
    let mut keys = Vec::new();
    for _ in 0..leading.key_records {
        let kr = read_record_at(file, off, file_len, RecordType::KeyRecord, at)?;
        keys.push(KeyRecord::parse_body(&kr, &at.clone().at(off))?);
        off += (RECORD_PREFIX_LEN + kr.len()) as u64;
    }
    Ok((leading, keys))
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
}

/// What one family on a random-read device holds, found without reading the data.
#[derive(Debug)]
pub struct FamilyScan {
    /// The label.
    pub media: MediaHeader,
    /// The newest valid set map slot, if any.
    pub slot: Option<SetMapSlot>,
    /// Complete sets, in position order.
    pub sets: Vec<SetOnFamily>,
    /// Where the complete sets end: the append point.
    pub end_offset: u64,
    /// The set after the complete ones, if one was started and not finished.
    pub interrupted: Option<InterruptedSet>,
    /// Why the walk back through the end-of-set chain stopped before set 1, if it did: the
    /// sets before `sets[0]` are damaged.
    pub broken: Option<Error>,
    /// What follows the end of the media, when the device holds more than its media: another
    /// media concatenated onto them (as `cat >>` makes), or bytes that are not bak records.
    /// Measured to the end of the device.
    pub past_end: Option<PastEnd>,
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
pub fn read_label(file: &dyn RandomRead, name: &str) -> Result<Option<MediaHeader>> {
    let at = Location::device(name).at(0);
    let mut buf = vec![0u8; MEDIA_HEADER_SPAN as usize];
    let n = read_full_at(file, &mut buf, 0).map_err(|e| Error::io(name, "read", e))?;
    if n < 12 || sniff(&buf[..n]) != Some(MediaKind::Bak) {
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

/// Read the two set map slots and keep the newest valid one of this media set.
pub(crate) fn read_set_map(
    file: &dyn RandomRead,
    name: &str,
    media_set_id: &Guid,
) -> Option<SetMapSlot> {
    let at = Location::device(name);
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
    file: &dyn RandomRead,
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
pub fn scan_family(file: &dyn RandomRead, name: &str) -> Result<FamilyScan> {
    let dev = name.to_string();
    let file_len = file.len().map_err(|e| Error::io(name, "stat", e))?;
    let media = read_label(file, name)?.ok_or_else(|| Error::NotMedia {
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
    let slot = read_set_map(file, name, &media.media_set_id);
    // Another media concatenated onto these, complete, ends the file with its own end-of-set:
    // the media end where it begins, and nothing of these is read past there.
    let tail_media = media_after_tail(file, file_len, &media, &at);
    let media_end = tail_media.as_ref().map_or(file_len, |p| p.offset);

    // The last complete end-of-set: at the very end of the file when the last set is complete.
    let mut last: Option<EndOfSet> = None;
    let mut past_end = None;
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
        let (found, past) = walk_forward(file, media_end, from, &media, &at)?;
        if let Some(e) = found {
            last = Some(e);
        }
        past_end = past
            .map(|p| {
                let len = file_len.saturating_sub(p.offset);
                p.with_len(len)
            })
            .or(tail_media);
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
    // Bytes past the end of the media right after the complete sets are no interrupted set.
    let tail_is_set = past_end
        .as_ref()
        .is_none_or(|p: &PastEnd| p.offset > end_offset);
    let interrupted = (file_len > end_offset && tail_is_set).then(|| {
        let header = read_record_at(file, end_offset, file_len, RecordType::SetHeader, &at)
            .and_then(|b| SetHeader::parse_body(&b, &at))
            .ok();
        InterruptedSet { header }
    });
    // The set that the bytes past the end cut short, when there is one.
    if let (Some(p), Some(h)) = (
        past_end.as_mut(),
        interrupted.as_ref().and_then(|i| i.header.as_ref()),
    ) {
        p.at.position = Some(h.position);
    }
    Ok(FamilyScan {
        media,
        slot,
        sets,
        end_offset,
        interrupted,
        broken,
        past_end,
    })
}

/// Another bak media concatenated onto these, found from the end of the file: when the last
/// record is an end-of-set that is not this family's, its self offset (where it lies in its own
/// media) says where its media begin, and a whole label must be there.
fn media_after_tail(
    file: &dyn RandomRead,
    file_len: u64,
    media: &MediaHeader,
    at: &Location,
) -> Option<PastEnd> {
    let tail = file_len.checked_sub(ESET_FRAME_LEN as u64)?;
    let body = read_record_at(file, tail, file_len, RecordType::EndOfSet, at).ok()?;
    let e = EndOfSet::parse_body(&body, at).ok()?;
    if e.self_offset == tail && e.media_set_id == media.media_set_id {
        return None; // this family's own last set
    }
    let start = tail.checked_sub(e.self_offset)?;
    if start < FIRST_SET_OFFSET {
        return None;
    }
    let mut buf = vec![0u8; MEDIA_HEADER_SPAN as usize];
    read_at(file, &mut buf, start, at, "media header").ok()?;
    let (_, body) = parse_frame(&buf, RecordType::MediaHeader, at).ok()?;
    let other = MediaHeader::parse_body(body, at).ok()?;
    if other.media_set_id != e.media_set_id {
        return None;
    }
    Some(PastEnd {
        at: at.clone(),
        offset: start,
        len: Some(file_len - start),
        beyond: Beyond::Media {
            media_set_id: guid_string(&other.media_set_id),
            same_media_set: other.media_set_id == media.media_set_id,
            family_number: other.family_number,
            family_count: other.family_count,
        },
    })
}

/// Walk sets forward from `from` to `file_len` (where the media end) with the set parser and
/// return the last end-of-set of a set found whole, and what lies past the end of the media if
/// that is what ended the walk. Stops quietly at the first thing that is not a set. Payloads
/// are passed over without reading them.
fn walk_forward(
    file: &dyn RandomRead,
    file_len: u64,
    from: u64,
    media: &MediaHeader,
    at: &Location,
) -> Result<(Option<EndOfSet>, Option<PastEnd>)> {
    let mut r = RecordReader::new(
        PosRead {
            dev: file,
            pos: from,
            end: file_len,
        },
        from,
        at.clone(),
    );
    let mut last = None;
    loop {
        let mut p = SetParser::new(media, at.clone(), None, None);
        let end = p.skip_to_end(&mut r, |r, n| {
            let to = r.offset.checked_add(n).filter(|&t| t <= file_len);
            let Some(to) = to else {
                return Err(Error::Truncated {
                    at: r.location(),
                    what: "block payload".into(),
                });
            };
            r.get_mut().pos = to;
            r.advanced(n);
            Ok(())
        });
        match end {
            Ok(Some(e)) if p.problems.is_empty() => last = Some(e),
            Err(Error::PastEnd(past)) => return Ok((last, Some(*past))),
            _ => return Ok((last, None)),
        }
    }
}

/// The first bytes of a device in hex, for "not media" messages.
pub(crate) fn first_bytes(file: &dyn RandomRead) -> String {
    let mut b = [0u8; 8];
    match read_full_at(file, &mut b, 0) {
        Ok(0) => "an empty file".into(),
        Ok(n) => format!("first bytes {}", hex(&b[..n])),
        Err(e) => format!("unreadable ({})", crate::error::io_words(&e)),
    }
}
