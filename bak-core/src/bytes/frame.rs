//! Record framing: the zstd skippable frame and the 24-byte record header every record starts
//! with, checked before any length in it is trusted; the little-endian field writer and reader
//! every record codec uses. docs/FORMAT.md, "Framing".

use crate::error::{Error, Location, Result};

/// Magic of the zstd skippable frames that carry bak records (nibble 0xB of the range).
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5B;
/// Magic of a zstd data frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Size of the skippable frame header (magic, size).
pub const FRAME_HEADER_LEN: usize = 8;
/// Size of the record header that starts every record.
pub const RECORD_HEADER_LEN: usize = 24;
/// Frame header plus record header: the bytes before a record's body.
pub const RECORD_PREFIX_LEN: usize = FRAME_HEADER_LEN + RECORD_HEADER_LEN;

/// The format major version this build writes and reads.
pub const FORMAT_MAJOR: u8 = 1;
/// The format minor version this build writes (readers accept any minor of their major).
pub const FORMAT_MINOR: u8 = 2;

/// Largest record body this build accepts (block index of 2^22 blocks of 40 bytes, plus room).
/// Bodies are also bounded by the bytes that remain on the device.
pub const MAX_BODY_LEN: u32 = 256 << 20;

/// The media header frame occupies exactly this many bytes at offset 0.
pub const MEDIA_HEADER_SPAN: u64 = 4096;
/// The set map frame starts here and occupies [`SET_MAP_SPAN`] bytes.
pub const SET_MAP_OFFSET: u64 = 4096;
/// Bytes of the set map frame.
pub const SET_MAP_SPAN: u64 = 4096;
/// Offset of set map slot B relative to the set map frame (slot A is at +8).
pub const SET_MAP_SLOT_B: u64 = 2048;
/// Where the first backup set starts.
pub const FIRST_SET_OFFSET: u64 = SET_MAP_OFFSET + SET_MAP_SPAN;

/// Record types: a four-byte ASCII tag at the start of each record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Media header (the label), first in every family file.
    MediaHeader,
    /// One slot of the set map (append anchor).
    SetMap,
    /// Backup set header.
    SetHeader,
    /// Leading configuration: what a restore needs.
    LeadingConfig,
    /// Header of one data block; a zstd data frame follows.
    BlockHeader,
    /// Trailing configuration: totals and the digest.
    TrailingConfig,
    /// Media based catalog: this family's block index for the set.
    Mbc,
    /// End of set: back pointers.
    EndOfSet,
    /// Key record of an encrypted set: its data key, wrapped (format 1.1).
    KeyRecord,
}

impl RecordType {
    /// The tag on the media.
    pub fn tag(self) -> [u8; 4] {
        *match self {
            RecordType::MediaHeader => b"BKMH",
            RecordType::SetMap => b"BKSM",
            RecordType::SetHeader => b"BKSH",
            RecordType::LeadingConfig => b"BKLC",
            RecordType::BlockHeader => b"BKBH",
            RecordType::TrailingConfig => b"BKTC",
            RecordType::Mbc => b"BKMC",
            RecordType::EndOfSet => b"BKES",
            RecordType::KeyRecord => b"BKKR",
        }
    }

    /// The type for a tag, if known.
    pub fn from_tag(tag: [u8; 4]) -> Option<Self> {
        Some(match &tag {
            b"BKMH" => RecordType::MediaHeader,
            b"BKSM" => RecordType::SetMap,
            b"BKSH" => RecordType::SetHeader,
            b"BKLC" => RecordType::LeadingConfig,
            b"BKBH" => RecordType::BlockHeader,
            b"BKTC" => RecordType::TrailingConfig,
            b"BKMC" => RecordType::Mbc,
            b"BKES" => RecordType::EndOfSet,
            b"BKKR" => RecordType::KeyRecord,
            _ => return None,
        })
    }

    /// The name people read in messages.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::MediaHeader => "media header",
            RecordType::SetMap => "set map",
            RecordType::SetHeader => "backup set header",
            RecordType::LeadingConfig => "leading config",
            RecordType::BlockHeader => "block header",
            RecordType::TrailingConfig => "trailing config",
            RecordType::Mbc => "MBC",
            RecordType::EndOfSet => "end-of-set record",
            RecordType::KeyRecord => "key record",
        }
    }
}

/// The parsed, checked 24-byte record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Record type.
    pub kind: RecordType,
    /// Major version of the format that wrote the record.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Body length in bytes.
    pub body_len: u32,
    /// CRC32 of the body.
    pub body_crc: u32,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Parse the 8-byte skippable frame header; `None` when it is not a bak skippable frame.
pub fn parse_frame_header(b: &[u8; FRAME_HEADER_LEN]) -> Option<u32> {
    (le_u32(b, 0) == SKIPPABLE_MAGIC).then(|| le_u32(b, 4))
}

/// Check and parse the record header that follows a skippable frame header.
///
/// `frame_size` is the skippable frame's size field; the record must fill the frame exactly
/// (apart from the fixed-span frames, whose padding follows the body: pass `padded = true`).
pub fn parse_record_header(
    b: &[u8; RECORD_HEADER_LEN],
    frame_size: u32,
    padded: bool,
    at: &Location,
) -> Result<RecordHeader> {
    let crc = crc32fast::hash(&b[..20]);
    let stored = le_u32(b, 20);
    if crc != stored {
        return Err(Error::mismatch(
            at.clone(),
            "record header CRC does not hold",
            format!("{stored:#010x}"),
            format!("{crc:#010x}"),
        ));
    }
    let tag = [b[0], b[1], b[2], b[3]];
    let kind = RecordType::from_tag(tag).ok_or_else(|| {
        Error::mismatch(at.clone(), "unknown record type", "a BK.. tag", hex(&tag))
    })?;
    let major = b[4];
    let minor = b[5];
    if major != FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion {
            at: at.clone(),
            found: format!("{major}.{minor}"),
            supported: format!("{FORMAT_MAJOR}.x"),
        });
    }
    let body_len = le_u32(b, 8);
    let body_crc = le_u32(b, 12);
    if body_len > MAX_BODY_LEN {
        return Err(Error::mismatch(
            at.clone(),
            "record body length out of range",
            format!("at most {MAX_BODY_LEN}"),
            body_len,
        ));
    }
    let need = body_len as u64 + RECORD_HEADER_LEN as u64;
    let fits = if padded {
        need <= frame_size as u64
    } else {
        need == frame_size as u64
    };
    if !fits {
        return Err(Error::mismatch(
            at.clone(),
            "record length disagrees with its frame",
            format!("frame of {frame_size} bytes"),
            format!("record of {need} bytes"),
        ));
    }
    Ok(RecordHeader {
        kind,
        major,
        minor,
        body_len,
        body_crc,
    })
}

/// Check a body against its header's CRC.
pub fn check_body(h: &RecordHeader, body: &[u8], at: &Location) -> Result<()> {
    let crc = crc32fast::hash(body);
    if crc != h.body_crc {
        return Err(Error::mismatch(
            at.clone(),
            format!("{} CRC does not hold", h.kind.name()),
            format!("{:#010x}", h.body_crc),
            format!("{crc:#010x}"),
        ));
    }
    Ok(())
}

/// Encode a whole record: skippable frame header, record header and body, padded with zeros to
/// `span` bytes when `span` is given (the frame then covers the padding too).
pub fn encode_record(kind: RecordType, body: &[u8], span: Option<usize>) -> Vec<u8> {
    let rec_len = RECORD_HEADER_LEN + body.len();
    let total = span
        .unwrap_or(FRAME_HEADER_LEN + rec_len)
        .max(FRAME_HEADER_LEN + rec_len);
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&((total - FRAME_HEADER_LEN) as u32).to_le_bytes());
    let hstart = out.len();
    out.extend_from_slice(&kind.tag());
    out.push(FORMAT_MAJOR);
    out.push(FORMAT_MINOR);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let hcrc = crc32fast::hash(&out[hstart..hstart + 20]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(total, 0);
    out
}

/// Lowercase hex of a few bytes, for messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Little-endian field writer for record bodies.
#[derive(Default)]
pub(crate) struct Put(pub Vec<u8>);

impl Put {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// A string field. Callers bound what they write ([`crate::limits`]); whatever reaches
    /// here longer than a field can say is cut at a character boundary, so a record never holds
    /// a length that lies or a string that is not UTF-8.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        let b = crate::limits::cut(s, u16::MAX as usize).as_bytes();
        self.u16(b.len() as u16);
        self.0.extend_from_slice(b);
        self
    }
}

/// Little-endian field reader over a checked body; running off the end is corruption.
pub(crate) struct Get<'a> {
    b: &'a [u8],
    pos: usize,
    at: &'a Location,
    what: &'static str,
}

impl<'a> Get<'a> {
    pub(crate) fn new(b: &'a [u8], at: &'a Location, what: &'static str) -> Self {
        Get {
            b,
            pos: 0,
            at,
            what,
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                Error::corrupt(
                    self.at.clone(),
                    format!("{} is shorter than its fields", self.what),
                )
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            Error::corrupt(
                self.at.clone(),
                format!("{} holds a string that is not UTF-8", self.what),
            )
        })
    }
    pub(crate) fn rest(&self) -> usize {
        self.b.len() - self.pos
    }
}

/// A 16-byte GUID as stored (RFC 4122 byte order).
pub type Guid = [u8; 16];

/// Format a GUID in the usual 8-4-4-4-12 form.
pub fn guid_string(g: &Guid) -> String {
    uuid::Uuid::from_bytes(*g).hyphenated().to_string()
}

/// A new random GUID.
pub fn new_guid() -> Guid {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Parse a whole in-memory record frame (frame header, record header, body) of an expected type.
pub fn parse_frame<'a>(
    bytes: &'a [u8],
    want: RecordType,
    at: &Location,
) -> Result<(RecordHeader, &'a [u8])> {
    let fh: &[u8; FRAME_HEADER_LEN] = bytes
        .get(..FRAME_HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::Truncated {
            at: at.clone(),
            what: want.name().to_string(),
        })?;
    let size = parse_frame_header(fh).ok_or_else(|| {
        Error::mismatch(
            at.clone(),
            format!("{} frame missing", want.name()),
            "bak skippable frame",
            hex(fh),
        )
    })?;
    let rh: &[u8; RECORD_HEADER_LEN] = bytes
        .get(FRAME_HEADER_LEN..RECORD_PREFIX_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::Truncated {
            at: at.clone(),
            what: want.name().to_string(),
        })?;
    let padded = matches!(want, RecordType::MediaHeader);
    if padded && size as u64 != MEDIA_HEADER_SPAN - FRAME_HEADER_LEN as u64 {
        return Err(Error::mismatch(
            at.clone(),
            "media header frame has the wrong size",
            MEDIA_HEADER_SPAN - FRAME_HEADER_LEN as u64,
            size,
        ));
    }
    let h = parse_record_header(rh, size, padded, at)?;
    if h.kind != want {
        return Err(Error::mismatch(
            at.clone(),
            "unexpected record",
            want.name(),
            h.kind.name(),
        ));
    }
    let body = bytes
        .get(RECORD_PREFIX_LEN..RECORD_PREFIX_LEN + h.body_len as usize)
        .ok_or_else(|| Error::Truncated {
            at: at.clone(),
            what: want.name().to_string(),
        })?;
    check_body(&h, body, at)?;
    Ok((h, body))
}
