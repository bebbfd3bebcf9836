//! The one parser of a backup set on one family: set header, leading config, blocks, trailing
//! config, MBC, end-of-set (docs/FORMAT.md, "A backup set on a family"). Every reader of sets
//! consumes its events: restore, verify, listing a stream, positioning on set N of a stream,
//! and the recovery of complete sets after a damaged tail. Each structural check, and its
//! message, is made here once: record order, set id, family, media set, position, rising
//! block sequence, block lengths bounded before anything is allocated, the trailing config's
//! family totals, the MBC against the blocks, and the end-of-set's pointers.
//!
//! Where a set may start, the media may instead end, cleanly or not: another media's label (media
//! concatenated on one device), or bytes that are not a bak record. Both are
//! [`Error::PastEnd`], typed, so that no reader takes them for more of these media.
//!
//! A problem that leaves the framing intact (a record that names another set, totals that
//! disagree) is kept in [`SetParser::problems`] and parsing goes on; one that does not (a
//! record that cannot be read, a length that cannot be trusted) is the `Err` of
//! [`SetParser::next`], after which the set cannot be followed further. A restore stops at the
//! first of either; a verify collects them all.

use std::io::Read;

use super::reader::{FrameStart, RecordReader};
use crate::bytes::*;
use crate::error::{Beyond, Error, Location, PastEnd, Result};

/// One record of a set, checked.
#[derive(Debug)]
pub(crate) enum Event {
    /// The set header.
    Header(SetHeader),
    /// The leading config.
    Leading(LeadingConfig),
    /// A key record (encrypted sets: as many as the leading config says, after it).
    Key(KeyRecord),
    /// A block header at `at`; its stored payload (`stored_len` bytes) follows, and the caller
    /// reads or skips it before asking for the next event.
    Block(BlockHeader, Location),
    /// A parity record at `at` (parity families, format 1.2); its shard frame
    /// ([`ParityRecord::payload_len`] bytes) follows, and the caller reads or skips it.
    Parity(ParityRecord, Location),
    /// The trailing config.
    Trailing(TrailingConfig),
    /// The MBC.
    Mbc,
    /// The end-of-set record: the set is complete on this family.
    End(EndOfSet),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Leading,
    Keys,
    Blocks,
    Mbc,
    End,
    Done,
}

/// The message of a set whose end is not on this family.
pub(crate) const INCOMPLETE: &str =
    "the end of the backup set is missing on this family (interrupted set)";

/// What is missing when the media end cleanly inside a set.
pub(crate) const REST_OF_SET: &str =
    "the rest of the backup set (the set is incomplete on this family)";

/// Parses one set on one family.
pub(crate) struct SetParser {
    fam_at: Location,
    family: u16,
    media_set_id: Guid,
    family_count: u16,
    parity_count: u16,
    position: Option<u32>,
    prev_eset: Option<u64>,
    state: State,
    start: u64,
    set_id: Guid,
    header: Option<SetHeader>,
    mts: u32,
    last_seq: Option<u64>,
    entries: Vec<MbcEntry>,
    original: u64,
    stored: u64,
    trailing_offset: u64,
    mbc_offset: u64,
    trailing: Option<TrailingConfig>,
    /// The leading config's encryption algorithm (0: none) and key record count.
    encryption: u16,
    key_records: u16,
    keys_seen: u16,
    /// Bodies of the set header and leading config, which an encrypted set's key records
    /// authenticate.
    header_body: Vec<u8>,
    leading_body: Vec<u8>,
    /// The body of the record of the last event.
    body: Vec<u8>,
    /// Blocks on this family marked as the set's last.
    marked_last: Vec<u64>,
    /// Problems found that left the framing intact, in the order found.
    pub problems: Vec<Error>,
}

impl SetParser {
    /// A parser of set `position` (`None`: whatever position the set header says) of the
    /// family `label` describes, on the device named in `fam_at`. `prev_eset`: where the
    /// previous set's end-of-set record lies, when the reader knows (0 for the first set).
    pub fn new(
        label: &MediaHeader,
        fam_at: Location,
        position: Option<u32>,
        prev_eset: Option<u64>,
    ) -> Self {
        SetParser {
            fam_at,
            family: label.family_number,
            media_set_id: label.media_set_id,
            family_count: label.family_count,
            parity_count: label.parity_count,
            position,
            prev_eset,
            state: State::Header,
            start: 0,
            set_id: [0; 16],
            header: None,
            mts: MAX_TRANSFER,
            last_seq: None,
            entries: Vec::new(),
            original: 0,
            stored: 0,
            trailing_offset: 0,
            mbc_offset: 0,
            trailing: None,
            encryption: 0,
            key_records: 0,
            keys_seen: 0,
            header_body: Vec::new(),
            leading_body: Vec::new(),
            body: Vec::new(),
            marked_last: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The bodies of the set header and the leading config, as read.
    pub fn leading_bodies(&self) -> (&[u8], &[u8]) {
        (&self.header_body, &self.leading_body)
    }

    /// The body of the record the last event came from, as read (a trailing config's MAC is
    /// over its bytes).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The location of this set (device, family, set) for messages.
    pub fn set_at(&self) -> Location {
        match self.position.or(self.header.as_ref().map(|h| h.position)) {
            Some(p) => self.fam_at.clone().set(p),
            None => self.fam_at.clone(),
        }
    }

    /// True once the set header was read: an end of the media from here on is an interrupted
    /// set, not the end of the family.
    pub fn started(&self) -> bool {
        self.state != State::Header
    }

    /// The set header, once read.
    pub fn header(&self) -> Option<&SetHeader> {
        self.header.as_ref()
    }

    /// Blocks seen so far on this family: (sequence, original hash), in order.
    pub fn blocks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries
            .iter()
            .filter(|e| e.codec != MBC_CODEC_PARITY)
            .map(|e| (e.seq, e.original_hash))
    }

    /// Original and stored bytes of the blocks seen so far on this family.
    pub fn totals(&self) -> (u64, u64) {
        (self.original, self.stored)
    }

    /// The next event; `Ok(None)` when the media end cleanly where a set would start (no more
    /// sets on this family). The end of the media inside a set is an `Err` saying the set is
    /// incomplete.
    pub fn next<R: Read>(&mut self, r: &mut RecordReader<R>) -> Result<Option<Event>> {
        let off = r.offset;
        let here = self.set_at().at(off);
        r.set_location(self.set_at());
        let rec = if self.state == State::Header {
            // Where a set may start, the media may also end: cleanly, or with bytes that are
            // not theirs.
            match r.frame_start()? {
                FrameStart::End => return Ok(None),
                FrameStart::Frame(size) => r.record_after(off, size)?,
                FrameStart::Other(b) => {
                    return Err(self.past_end(off, Beyond::Bytes { first: hex(&b) }));
                }
            }
        } else {
            match r.next_record() {
                Ok(Some(rec)) => {
                    debug_assert_eq!(rec.offset, off);
                    rec
                }
                Ok(None) => {
                    return Err(Error::Truncated {
                        at: here,
                        what: REST_OF_SET.into(),
                    })
                }
                Err(e) => return Err(e),
            }
        };
        if rec.kind == RecordType::MediaHeader {
            let m = MediaHeader::parse_body(&rec.body, &here)?;
            return Err(self.past_end(
                off,
                Beyond::Media {
                    media_set_id: guid_string(&m.media_set_id),
                    same_media_set: m.media_set_id == self.media_set_id,
                    family_number: m.family_number,
                    family_count: m.family_count,
                },
            ));
        }
        let expect = |want: &str, got: RecordType| {
            Error::mismatch(here.clone(), "unexpected record", want, got.name())
        };
        self.body.clear();
        self.body.extend_from_slice(&rec.body);
        match (self.state, rec.kind) {
            (State::Header, RecordType::SetHeader) => {
                let h = SetHeader::parse_body(&rec.body, &here)?;
                let want_pos = self.position.unwrap_or(h.position);
                if h.position != want_pos
                    || h.family_number != self.family
                    || h.media_set_id != self.media_set_id
                {
                    self.problems.push(Error::mismatch(
                        here.clone(),
                        "backup set header does not fit its place",
                        format!("set {want_pos} of family {} of this media set", self.family),
                        format!("set {} of family {}", h.position, h.family_number),
                    ));
                }
                self.position = Some(want_pos);
                self.start = off;
                self.set_id = h.set_id;
                self.mts = h.max_transfer;
                self.header_body = rec.body.clone();
                self.header = Some(h.clone());
                self.state = State::Leading;
                Ok(Some(Event::Header(h)))
            }
            (State::Header, k) => Err(expect("backup set header", k)),
            (State::Leading, RecordType::LeadingConfig) => {
                let l = LeadingConfig::parse_body(&rec.body, &here)?;
                if l.set_id != self.set_id
                    || l.family_count + l.parity_count != self.family_count
                    || l.parity_count != self.parity_count
                {
                    self.problems.push(Error::corrupt(
                        here.clone(),
                        "leading config belongs to another backup set",
                    ));
                }
                if self
                    .header
                    .as_ref()
                    .is_some_and(|h| h.codec != l.codec || h.max_transfer != l.max_transfer)
                {
                    self.problems.push(Error::corrupt(
                        here.clone(),
                        "leading config disagrees with the set header",
                    ));
                }
                self.encryption = l.encryption;
                self.key_records = l.key_records;
                self.leading_body = rec.body.clone();
                self.state = if l.key_records > 0 {
                    State::Keys
                } else {
                    State::Blocks
                };
                Ok(Some(Event::Leading(l)))
            }
            (State::Leading, k) => Err(expect("leading config", k)),
            (State::Keys, RecordType::KeyRecord) => {
                let k = KeyRecord::parse_body(&rec.body, &here)?;
                if k.set_id != self.set_id
                    || k.index != self.keys_seen
                    || k.count != self.key_records
                {
                    self.problems.push(Error::mismatch(
                        here.clone(),
                        "key record does not fit its place",
                        format!(
                            "key record {} of {} of this set",
                            self.keys_seen + 1,
                            self.key_records
                        ),
                        format!("key record {} of {}", k.index + 1, k.count),
                    ));
                }
                self.keys_seen += 1;
                if self.keys_seen == self.key_records {
                    self.state = State::Blocks;
                }
                Ok(Some(Event::Key(k)))
            }
            (State::Keys, k) => Err(expect("key record", k)),
            (State::Blocks, RecordType::Parity) => {
                let p = ParityRecord::parse_body(&rec.body, &here)?;
                let data = self.family_count - self.parity_count;
                let pat = here.clone().block(p.stripe);
                if self.family <= data {
                    self.problems.push(Error::corrupt(
                        pat.clone(),
                        "parity record on a data family",
                    ));
                }
                if p.set_id != self.set_id
                    || Some(p.position) != self.position
                    || p.family != self.family
                    || p.index != self.family.wrapping_sub(data + 1)
                    || p.members.len() > data as usize
                {
                    self.problems.push(Error::corrupt(
                        pat.clone(),
                        "parity record belongs to another set or family",
                    ));
                }
                if let Some(l) = self.last_seq.filter(|&l| p.stripe <= l) {
                    self.problems.push(Error::mismatch(
                        pat.clone(),
                        "parity stripe number goes backwards on this family",
                        format!("more than {l}"),
                        p.stripe,
                    ));
                }
                self.last_seq = Some(p.stripe);
                self.stored += p.payload_len();
                self.entries.push(MbcEntry {
                    seq: p.stripe,
                    offset: off,
                    stored_len: p.payload_len() as u32,
                    original_len: 0,
                    payload_crc: p.payload_crc,
                    codec: MBC_CODEC_PARITY,
                    original_hash: 0,
                });
                Ok(Some(Event::Parity(p, pat)))
            }
            (State::Blocks, RecordType::BlockHeader) => {
                let h = BlockHeader::parse_body(&rec.body, &here)?;
                let bat = here.clone().block(h.seq);
                if self.family > self.family_count - self.parity_count {
                    self.problems
                        .push(Error::corrupt(bat.clone(), "data block on a parity family"));
                }
                // The payload length cannot be trusted past this: the framing is lost.
                h.check_lengths(self.mts, self.encryption != 0, &bat)?;
                if h.set_id != self.set_id
                    || Some(h.position) != self.position
                    || h.family != self.family
                {
                    self.problems.push(Error::corrupt(
                        bat.clone(),
                        "block header belongs to another set or family",
                    ));
                }
                if let Some(l) = self.last_seq.filter(|&l| h.seq <= l) {
                    self.problems.push(Error::mismatch(
                        bat.clone(),
                        "block sequence goes backwards on this family",
                        format!("more than {l}"),
                        h.seq,
                    ));
                }
                if self.encryption != 0 && h.is_last() {
                    self.marked_last.push(h.seq);
                }
                self.last_seq = Some(h.seq);
                self.original += h.original_len as u64;
                self.stored += h.stored_len as u64;
                self.entries.push(MbcEntry {
                    seq: h.seq,
                    offset: off,
                    stored_len: h.stored_len,
                    original_len: h.original_len,
                    payload_crc: h.payload_crc,
                    codec: (h.codec == BlockCodec::Zstd) as u8,
                    original_hash: h.original_hash,
                });
                Ok(Some(Event::Block(h, bat)))
            }
            (State::Blocks, RecordType::TrailingConfig) => {
                let t = TrailingConfig::parse_body(&rec.body, &here)?;
                if t.set_id != self.set_id
                    || t.family_number != self.family
                    || Some(t.position) != self.position
                {
                    self.problems.push(Error::corrupt(
                        here.clone(),
                        "trailing config belongs to another set or family",
                    ));
                }
                let n = self.entries.len() as u64;
                if t.family_blocks != n
                    || t.family_original != self.original
                    || t.family_stored != self.stored
                {
                    self.problems.push(Error::mismatch(
                        here.clone(),
                        "trailing config totals for this family disagree with its blocks",
                        format!("{} blocks, {} bytes", t.family_blocks, t.family_original),
                        format!("{n} blocks, {} bytes", self.original),
                    ));
                }
                if (self.encryption != 0) != t.mac.is_some() {
                    self.problems.push(Error::corrupt(
                        here.clone(),
                        if t.mac.is_some() {
                            "trailing config carries a MAC, but the set is not encrypted"
                        } else {
                            "trailing config of an encrypted set has no MAC"
                        },
                    ));
                }
                if self.encryption != 0 {
                    self.check_last_block(&t, &here);
                }
                self.trailing_offset = off;
                self.trailing = Some(t.clone());
                self.state = State::Mbc;
                Ok(Some(Event::Trailing(t)))
            }
            (State::Blocks, k) => Err(Error::mismatch(
                here.clone(),
                "unexpected record in a backup set",
                "block header, trailing config, MBC or end-of-set",
                k.name(),
            )),
            (State::Mbc, RecordType::Mbc) => {
                let m = Mbc::parse_body(&rec.body, &here)?;
                if m.set_id != self.set_id || m.entries != self.entries {
                    let first_bad = m
                        .entries
                        .iter()
                        .zip(&self.entries)
                        .position(|(a, b)| a != b);
                    self.problems.push(Error::mismatch(
                        here.clone(),
                        "MBC disagrees with the blocks on this family",
                        format!("{} entries", self.entries.len()),
                        match first_bad {
                            Some(i) => format!("{} entries, entry {i} differs", m.entries.len()),
                            None => format!("{} entries", m.entries.len()),
                        },
                    ));
                }
                self.mbc_offset = off;
                self.state = State::End;
                Ok(Some(Event::Mbc))
            }
            (State::Mbc, k) => Err(expect("MBC", k)),
            (State::End, RecordType::EndOfSet) => {
                let e = EndOfSet::parse_body(&rec.body, &here)?;
                let want = (
                    self.start,
                    self.trailing_offset,
                    self.mbc_offset,
                    off,
                    self.prev_eset.unwrap_or(e.prev_eset_offset),
                );
                let got = (
                    e.set_header_offset,
                    e.trailing_offset,
                    e.mbc_offset,
                    e.self_offset,
                    e.prev_eset_offset,
                );
                if want != got
                    || e.set_id != self.set_id
                    || e.media_set_id != self.media_set_id
                    || e.family_number != self.family
                    || e.family_blocks != self.entries.len() as u64
                {
                    self.problems.push(Error::mismatch(
                        here.clone(),
                        "end-of-set pointers do not match the records",
                        format!("{want:?}"),
                        format!("{got:?}"),
                    ));
                }
                self.state = State::Done;
                Ok(Some(Event::End(e)))
            }
            (State::End, k) => Err(expect("end-of-set record", k)),
            (State::Done, k) => Err(expect("nothing more of this set", k)),
        }
    }

    /// An encrypted set marks its last block, inside the block's nonce: a block so marked
    /// must be the last of the set's count, and the last of the count, if on this family,
    /// must be so marked. So blocks cut off the end, or added, are found.
    fn check_last_block(&mut self, t: &TrailingConfig, at: &Location) {
        let last = t.total_blocks.checked_sub(1);
        for &seq in &self.marked_last {
            if Some(seq) != last {
                self.problems.push(Error::mismatch(
                    at.clone().block(seq),
                    "block is marked as the set's last, but is not",
                    format!("{} blocks", t.total_blocks),
                    format!("block {seq} marked last"),
                ));
            }
        }
        if let Some(l) = last {
            let on_this = self
                .entries
                .iter()
                .any(|e| e.seq == l && e.codec != MBC_CODEC_PARITY);
            if on_this && !self.marked_last.contains(&l) {
                self.problems.push(Error::corrupt(
                    at.clone().block(l),
                    "the set's last block is not marked last: blocks after it were cut off, or \
                     the count was altered",
                ));
            }
        }
    }

    /// The media of this family end at `offset` and `beyond` begins there (inside this set,
    /// once it was started).
    fn past_end(&self, offset: u64, beyond: Beyond) -> Error {
        let at = if self.started() {
            self.set_at()
        } else {
            self.fam_at.clone()
        };
        Error::PastEnd(Box::new(PastEnd {
            at,
            offset,
            len: None,
            beyond,
        }))
    }

    /// Read through the rest of the set to its end-of-set record, passing over payloads with
    /// `skip`, and return that record; `Ok(None)` when the media end where a set would start.
    /// Problems that leave the framing intact are kept in `problems`.
    pub fn skip_to_end<R: Read>(
        &mut self,
        r: &mut RecordReader<R>,
        mut skip: impl FnMut(&mut RecordReader<R>, u64) -> Result<()>,
    ) -> Result<Option<EndOfSet>> {
        loop {
            match self.next(r)? {
                None => return Ok(None),
                Some(Event::Block(h, _)) => skip(r, h.stored_len as u64)?,
                Some(Event::Parity(p, _)) => skip(r, p.payload_len())?,
                Some(Event::End(e)) => return Ok(Some(e)),
                Some(_) => {}
            }
        }
    }
}

/// `Read` over a random-read device from an offset to `end` (a record reader on a file or
/// memory; `end` is where the media end, before another media concatenated onto them).
pub(crate) struct PosRead<'a> {
    pub dev: &'a dyn crate::device::RandomRead,
    pub pos: u64,
    pub end: u64,
}

impl Read for PosRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.end.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        let n = self.dev.read_at(&mut buf[..room], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
