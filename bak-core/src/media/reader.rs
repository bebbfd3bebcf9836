//! Records read front to back from any `Read` (a pipe, a FIFO, or a device from an offset),
//! with the byte offset tracked for messages. Every length is checked by its CRC before use,
//! and a large body grows its buffer only as bytes arrive.

use std::io::{self, Read};

use crate::bytes::*;
use crate::error::{Error, Location, PastEnd, Result};

/// How the next record frame of a stream starts ([`RecordReader::frame_start`]).
#[derive(Debug)]
pub(crate) enum FrameStart {
    /// The clean end of the stream.
    End,
    /// A bak record frame header, with its frame size.
    Frame(u32),
    /// Bytes that do not start a bak record frame: up to 8 of them (fewer when the stream
    /// ended first).
    Other(Vec<u8>),
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
        match self.frame_start()? {
            FrameStart::End => Ok(None),
            FrameStart::Frame(size) => self.record_after(offset, size).map(Some),
            // Mid-set, a short end is the set cut short, whatever the bytes.
            FrameStart::Other(b) if b.len() < FRAME_HEADER_LEN => {
                let at = self.at.clone().at(self.offset);
                self.offset = offset;
                Err(Error::Truncated {
                    at,
                    what: "record".into(),
                })
            }
            FrameStart::Other(b) => Err(Error::mismatch(
                self.at.clone().at(offset),
                "expected a bak record frame",
                "skippable frame magic",
                hex(&b),
            )),
        }
    }

    /// The frame header of the next record, where the media may end or other bytes begin:
    /// the end of the stream, a bak frame (its size), or up to 8 bytes that do not start one.
    /// The bytes read are consumed. A bak frame header cut short by the end is `Truncated`.
    pub(crate) fn frame_start(&mut self) -> Result<FrameStart> {
        let mut fh = [0u8; FRAME_HEADER_LEN];
        let mut n = 0;
        while n < fh.len() {
            match self.inner.read(&mut fh[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.at.device, "read", e)),
            }
        }
        if n == 0 {
            return Ok(FrameStart::End);
        }
        let end = self.offset + n as u64;
        let k = n.min(4);
        if fh[..k] != SKIPPABLE_MAGIC.to_le_bytes()[..k] {
            self.offset = end;
            return Ok(FrameStart::Other(fh[..n].to_vec()));
        }
        match parse_frame_header(&fh) {
            Some(size) if n == fh.len() => {
                self.offset = end;
                Ok(FrameStart::Frame(size))
            }
            _ => Err(Error::Truncated {
                at: self.at.clone().at(end),
                what: "record".into(),
            }),
        }
    }

    /// The rest of the record whose frame header (frame size `size`) was read at `offset`. A
    /// media header is read whole, its padding included: a reader meets one only where another
    /// media begins, and says so.
    pub(crate) fn record_after(&mut self, offset: u64, size: u32) -> Result<StreamRecord> {
        let at = self.at.clone().at(offset);
        let mut rh = [0u8; RECORD_HEADER_LEN];
        self.read_exact(&mut rh, "record header")?;
        let label_span = (MEDIA_HEADER_SPAN - FRAME_HEADER_LEN as u64) as u32;
        let padded = rh[..4] == RecordType::MediaHeader.tag() && size == label_span;
        let h = parse_record_header(&rh, size, padded, &at)?;
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
        if padded {
            let pad = size as u64 - RECORD_HEADER_LEN as u64 - h.body_len as u64;
            self.skip(pad, h.kind.name())?;
        }
        Ok(StreamRecord {
            kind: h.kind,
            offset,
            body,
        })
    }

    /// Read to the end of the stream; the number of bytes that were left.
    pub(crate) fn rest_len(&mut self) -> Result<u64> {
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0u64;
        loop {
            match self.inner.read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(k) => n += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.at.device, "read", e)),
            }
        }
    }

    /// `past`, which this reader has begun to read, measured: the bytes from its offset to the
    /// end of the stream (read to the end to count them).
    pub(crate) fn measure(&mut self, past: PastEnd) -> Result<PastEnd> {
        let read = self.offset.saturating_sub(past.offset);
        let rest = self.rest_len()?;
        self.offset += rest;
        Ok(past.with_len(read + rest))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(b: &[u8]) -> RecordReader<&[u8]> {
        RecordReader::new(b, 100, Location::device("t"))
    }

    #[test]
    fn a_frame_start_tells_the_end_a_frame_and_other_bytes() {
        assert!(matches!(reader(b"").frame_start(), Ok(FrameStart::End)));
        let mut r = reader(b"not a frame");
        assert!(matches!(r.frame_start(), Ok(FrameStart::Other(b)) if b == b"not a fr"));
        assert_eq!(r.offset, 108);
        // Fewer than 8 bytes: other bytes unless they begin like a frame, which is cut short.
        assert!(matches!(reader(b"abc").frame_start(), Ok(FrameStart::Other(b)) if b == b"abc"));
        let magic = SKIPPABLE_MAGIC.to_le_bytes();
        let mut r = reader(&magic[..3]);
        assert!(
            matches!(r.frame_start(), Err(Error::Truncated { ref at, .. }) if at.offset == Some(103))
        );
        assert_eq!(r.offset, 100);
        // Mid-set the same short bytes are the set cut short, as they always were.
        let mut r = reader(b"abc");
        assert!(matches!(r.next_record(), Err(Error::Truncated { .. })));
        assert_eq!(r.offset, 100);
        assert!(matches!(
            reader(b"not a frame").next_record(),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn a_media_header_is_read_whole_with_its_padding() {
        let label = MediaHeader {
            media_set_id: [7; 16],
            family_id: [8; 16],
            family_count: 1,
            family_number: 1,
            media_sequence: 1,
            mirror_count: 1,
            mirror_number: 1,
            parity_count: 0,
            flags: MEDIA_FLAG_SET_MAP,
            created_us: 1,
            media_name: "m".into(),
            media_description: String::new(),
            software_name: "bak".into(),
            software_version: "0".into(),
            volume_start: 0,
        };
        let mut bytes = label.encode();
        bytes.extend_from_slice(b"next");
        let mut r = reader(&bytes);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.kind, RecordType::MediaHeader);
        assert_eq!(r.offset, 100 + MEDIA_HEADER_SPAN);
        let at = Location::device("t");
        assert_eq!(MediaHeader::parse_body(&rec.body, &at).unwrap(), label);
        assert_eq!(r.rest_len().unwrap(), 4);
    }
}
