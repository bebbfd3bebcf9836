//! Records read front to back from any `Read` (a pipe, a FIFO, or a device from an offset),
//! with the byte offset tracked for messages. Every length is checked by its CRC before use,
//! and a large body grows its buffer only as bytes arrive.

use std::io::{self, Read};

use crate::bytes::*;
use crate::error::{Error, Location, Result};

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
