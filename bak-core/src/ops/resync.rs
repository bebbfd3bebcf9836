//! Records read front to back past damage: after a record that does not read whole (a frame
//! header, record header or body whose CRC fails, bytes cut short), the reader scans forward
//! for the next place where a bak record frame begins and reads whole (skippable frame magic,
//! a record header whose CRC holds, a body whose CRC holds), a bounded distance, and goes on
//! from there. No length from a damaged record is used: the scan moves one byte at a time.
//!
//! Salvage reads every family through it; a parity rebuild or a mirror reader that meets a
//! damaged record may use it the same way. It works on any `Read` (a FIFO, a pipe, a file from
//! an offset), holding at most one record (or one scan window) in memory.

use std::io::{self, Read};

use crate::bytes::*;
use crate::error::{Error, Location, Result};
use crate::media::reader::StreamRecord;

/// How far past the start of a damaged record a scan looks for the next record by default:
/// one block payload of the largest max transfer size and a few records, the most a writer
/// ever puts between two record frames.
pub(crate) fn default_scan_limit() -> u64 {
    payload_capacity(MAX_TRANSFER) as u64 + (64 << 10)
}

/// Bytes passed over between two records that read whole.
#[derive(Debug)]
pub(crate) struct Skipped {
    /// Offset of the first byte passed over (where the damaged record began).
    pub from: u64,
    /// Offset where reading went on (the next whole record, or the end).
    pub to: u64,
    /// Why the record at `from` could not be read.
    pub why: Error,
}

/// What [`Resync::next`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A record that reads whole.
    Record(StreamRecord),
    /// The end of the stream.
    End,
    /// No record within the scan limit: what follows cannot be found without trusting a
    /// damaged length.
    Lost,
}

enum Try {
    Whole(usize, StreamRecord),
    Bad(Error),
    End,
}

/// A front-to-back record reader that steps over damage (see the module documentation).
pub(crate) struct Resync<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed in `buf`.
    pos: usize,
    /// Device offset of `buf[pos]`.
    offset: u64,
    eof: bool,
    at: Location,
    /// How far a scan goes past the start of a damaged record before it gives up.
    pub limit: u64,
}

impl<R: Read> Resync<R> {
    /// A reader at device offset `offset`, named in messages by `at`.
    pub fn new(inner: R, offset: u64, at: Location) -> Self {
        Resync {
            inner,
            buf: Vec::new(),
            pos: 0,
            offset,
            eof: false,
            at,
            limit: default_scan_limit(),
        }
    }

    /// Offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Make `buf[pos..]` hold at least `n` bytes, unless the stream ends first; the bytes held.
    fn want(&mut self, n: usize) -> Result<usize> {
        if self.buf.len() - self.pos >= n || self.eof {
            return Ok(self.buf.len() - self.pos);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while self.buf.len() < n && !self.eof {
            let old = self.buf.len();
            let grow = (n - old).max(64 << 10);
            self.buf.resize(old + grow, 0);
            match self.inner.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(k) => self.buf.truncate(old + k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(Error::io(&self.at.device, "read", e));
                }
            }
        }
        Ok(self.buf.len())
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    /// The record at the current position, if it reads whole; nothing is consumed.
    fn try_record(&mut self) -> Result<Try> {
        let at = self.at.clone().at(self.offset);
        let avail = self.want(RECORD_PREFIX_LEN)?;
        if avail == 0 {
            return Ok(Try::End);
        }
        let cut = |at: Location| Error::Truncated {
            at,
            what: "record".into(),
        };
        if avail < RECORD_PREFIX_LEN {
            return Ok(Try::Bad(cut(at)));
        }
        let p = self.pos;
        let mut fh = [0u8; FRAME_HEADER_LEN];
        fh.copy_from_slice(&self.buf[p..p + FRAME_HEADER_LEN]);
        let Some(size) = parse_frame_header(&fh) else {
            return Ok(Try::Bad(Error::mismatch(
                at,
                "expected a bak record frame",
                "skippable frame magic",
                hex(&fh[..4]),
            )));
        };
        let mut rh = [0u8; RECORD_HEADER_LEN];
        rh.copy_from_slice(&self.buf[p + FRAME_HEADER_LEN..p + RECORD_PREFIX_LEN]);
        let label_span = (MEDIA_HEADER_SPAN - FRAME_HEADER_LEN as u64) as u32;
        let padded = rh[..4] == RecordType::MediaHeader.tag() && size == label_span;
        let h = match parse_record_header(&rh, size, padded, &at) {
            Ok(h) => h,
            Err(e) => return Ok(Try::Bad(e)),
        };
        let need = RECORD_PREFIX_LEN + h.body_len as usize;
        let span = FRAME_HEADER_LEN + size as usize;
        let avail = self.want(span)?;
        if avail < need {
            return Ok(Try::Bad(cut(at)));
        }
        let p = self.pos;
        let body = &self.buf[p + RECORD_PREFIX_LEN..p + need];
        if let Err(e) = check_body(&h, body, &at) {
            return Ok(Try::Bad(e));
        }
        let rec = StreamRecord {
            kind: h.kind,
            offset: self.offset,
            body: body.to_vec(),
        };
        Ok(Try::Whole(span.min(avail), rec))
    }

    /// The next record that reads whole, and what was passed over to reach it. `Err` only for
    /// a read that fails (I/O), never for damage.
    pub fn next(&mut self) -> Result<(Next, Option<Skipped>)> {
        let from = self.offset;
        let why = match self.try_record()? {
            Try::End => return Ok((Next::End, None)),
            Try::Whole(span, rec) => {
                self.consume(span);
                return Ok((Next::Record(rec), None));
            }
            Try::Bad(why) => why,
        };
        let magic = SKIPPABLE_MAGIC.to_le_bytes();
        self.consume(1);
        loop {
            if self.offset - from > self.limit {
                return Ok((
                    Next::Lost,
                    Some(Skipped {
                        from,
                        to: self.offset,
                        why,
                    }),
                ));
            }
            let avail = self.want(RECORD_PREFIX_LEN)?;
            if avail < magic.len() {
                self.consume(avail);
                return Ok((
                    Next::End,
                    Some(Skipped {
                        from,
                        to: self.offset,
                        why,
                    }),
                ));
            }
            let window = &self.buf[self.pos..self.pos + avail];
            match window.windows(magic.len()).position(|w| w == magic) {
                None => self.consume(avail - (magic.len() - 1)),
                Some(i) => {
                    self.consume(i);
                    match self.try_record()? {
                        Try::Whole(span, rec) => {
                            let s = Skipped {
                                from,
                                to: self.offset,
                                why,
                            };
                            self.consume(span);
                            return Ok((Next::Record(rec), Some(s)));
                        }
                        Try::End => {
                            return Ok((
                                Next::End,
                                Some(Skipped {
                                    from,
                                    to: self.offset,
                                    why,
                                }),
                            ))
                        }
                        Try::Bad(_) => self.consume(1),
                    }
                }
            }
        }
    }

    /// Read up to `dst.len()` bytes (a block payload); fewer only at the end of the stream.
    pub fn read_payload(&mut self, dst: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < dst.len() {
            let avail = self.want((dst.len() - done).min(4 << 20))?;
            if avail == 0 {
                break;
            }
            let k = avail.min(dst.len() - done);
            dst[done..done + k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.consume(k);
            done += k;
        }
        Ok(done)
    }

    /// Pass over `n` bytes (a payload not wanted); the bytes passed (fewer at the end).
    pub fn skip(&mut self, n: u64) -> Result<u64> {
        let mut left = n;
        while left > 0 {
            let avail = self.want(left.min(1 << 20) as usize)?;
            if avail == 0 {
                break;
            }
            let k = (avail as u64).min(left) as usize;
            self.consume(k);
            left -= k as u64;
        }
        Ok(n - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: RecordType, body: &[u8]) -> Vec<u8> {
        encode_record(kind, body, None)
    }

    fn reader(b: &[u8]) -> Resync<&[u8]> {
        Resync::new(b, 1000, Location::device("t"))
    }

    #[test]
    fn whole_records_read_in_order_and_the_end_is_clean() {
        let mut b = rec(RecordType::Mbc, b"one");
        b.extend(rec(RecordType::EndOfSet, b"two"));
        let mut r = reader(&b);
        match r.next().unwrap() {
            (Next::Record(x), None) => {
                assert_eq!(
                    (x.kind, x.offset, &x.body[..]),
                    (RecordType::Mbc, 1000, &b"one"[..])
                )
            }
            x => panic!("{x:?}"),
        }
        assert!(matches!(r.next().unwrap(), (Next::Record(x), None) if x.body == b"two"));
        assert!(matches!(r.next().unwrap(), (Next::End, None)));
        assert_eq!(r.offset(), 1000 + b.len() as u64);
    }

    #[test]
    fn a_damaged_record_is_stepped_over_to_the_next_whole_one() {
        let first = rec(RecordType::Mbc, &[7u8; 100]);
        let mut b = first.clone();
        // Garbage that holds the magic but no whole record, then a whole record.
        b.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        b.extend_from_slice(&[0xAB; 50]);
        let second = rec(RecordType::EndOfSet, b"after");
        b.extend(second.clone());
        for flip in [2usize, 12, 40, 90] {
            let mut d = b.clone();
            d[flip] ^= 0x10;
            let mut r = reader(&d);
            match r.next().unwrap() {
                (Next::Record(x), Some(s)) => {
                    assert_eq!(x.body, b"after", "flip at {flip}");
                    assert_eq!(s.from, 1000);
                    assert_eq!(s.to, 1000 + (first.len() + 54) as u64);
                    assert_eq!(x.offset, s.to);
                }
                x => panic!("flip at {flip}: {x:?}"),
            }
            assert!(matches!(r.next().unwrap(), (Next::End, None)));
        }
    }

    #[test]
    fn a_cut_record_ends_the_stream_and_the_scan_is_bounded() {
        let b = rec(RecordType::Mbc, &[1u8; 300]);
        let mut r = reader(&b[..200]);
        match r.next().unwrap() {
            (Next::End, Some(s)) => {
                assert!(matches!(s.why, Error::Truncated { .. }));
                assert_eq!((s.from, s.to), (1000, 1200));
            }
            x => panic!("{x:?}"),
        }
        let mut junk = vec![0u8; 10_000];
        junk.extend(rec(RecordType::EndOfSet, b"far"));
        let mut r = reader(&junk);
        r.limit = 5000;
        assert!(matches!(r.next().unwrap(), (Next::Lost, Some(s)) if s.to > 6000 - 1));
        let mut r = reader(&junk);
        assert!(matches!(r.next().unwrap(), (Next::Record(x), Some(_)) if x.body == b"far"));
    }

    #[test]
    fn payloads_are_read_and_skipped_through_the_buffer() {
        let mut b = vec![5u8; 70_000];
        b.extend(rec(RecordType::EndOfSet, b"x"));
        let mut r = reader(&b);
        let mut dst = vec![0u8; 69_000];
        assert_eq!(r.read_payload(&mut dst).unwrap(), 69_000);
        assert!(dst.iter().all(|&x| x == 5));
        assert_eq!(r.skip(1000).unwrap(), 1000);
        assert!(matches!(r.next().unwrap(), (Next::Record(x), None) if x.body == b"x"));
        assert_eq!(r.skip(10).unwrap(), 0);
    }
}
