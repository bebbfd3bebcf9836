//! The metadata walk: follow the chain of descriptor blocks and stream headers of one device
//! and build its catalog, without reading stream data (except the small RAID and MQCI streams).
//!
//! The walk never stops at damage: it records what it found (a `Damage`) and resumes at the
//! next valid block header on a 512-byte boundary, so a verifier can report everything.

use super::config::Config;
use super::dblk::{
    Dblk, Eset, HeaderError, Raid, Sfmb, Sset, StreamHeader, Tape, Volb, DBLK_LEN, STREAM_LEN,
};
use super::le::id_text;
use super::media::Media;
use bak_core::error::{Error, Location, Result};

/// Largest MQCI stream read into memory (observed about 3 KiB; a header claiming more is damage).
const MAX_CONFIG: u64 = 16 << 20;
/// Largest block header area read (first-stream offset).
const MAX_HEADER_AREA: u16 = u16::MAX;
/// Block types that lie inside a set, counted by FLA from its SSET.
const IN_SET: [&[u8; 4]; 6] = [b"SSET", b"VOLB", b"MSCI", b"MSDA", b"MSTL", b"MSLS"];

/// One stream header found in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRec {
    pub id: [u8; 4],
    pub hdr_off: u64,
    pub data_off: u64,
    pub len: u64,
    pub media_attrs: u16,
    pub encryption: u16,
    pub compression: u16,
}

/// One descriptor block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockRec {
    pub off: u64,
    pub kind: [u8; 4],
    pub attrs: u32,
    pub fla: u64,
    pub streams: Vec<StreamRec>,
    pub end: u64,
}

/// One backup set as found on this device.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetRec {
    pub position: u32,
    pub sset_off: u64,
    pub sset: Sset,
    pub volb: Option<Volb>,
    pub lead: Option<Config>,
    pub trail: Option<Config>,
    /// Indexes into `Catalog::blocks` of the set's blocks (SSET to the last ESET).
    pub blocks: Vec<usize>,
    pub esets: Vec<(u64, Eset)>,
    /// Offset just past the set's last block (its closing SFMB included).
    pub end: u64,
}

impl SetRec {
    /// True when the set reached its ESET.
    pub fn closed(&self) -> bool {
        !self.esets.is_empty()
    }

    /// The ids of the database files the leading configuration lists (none without one).
    pub fn file_ids(&self) -> Vec<u16> {
        self.lead
            .as_ref()
            .map(|c| {
                c.files
                    .iter()
                    .filter_map(|f| u16::try_from(f.file_id).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Damage found by the walk, at an MTF offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub off: u64,
    pub what: String,
    pub expected: Option<String>,
    pub found: Option<String>,
    /// The media end early (as opposed to bytes being wrong).
    pub truncated: bool,
}

/// What one device holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub tape: Tape,
    pub raid: Option<Raid>,
    pub blocks: Vec<BlockRec>,
    pub sets: Vec<SetRec>,
    /// (MTF offset, table) of every soft filemark block.
    pub sfmbs: Vec<(u64, Sfmb)>,
    pub damage: Vec<Damage>,
}

struct Walker<'a> {
    m: &'a Media,
    cat: Catalog,
    lbs: u64,
}

fn header_problem(e: &HeaderError, what: &str) -> (String, Option<String>, Option<String>) {
    match e {
        HeaderError::Short => (format!("{what} cut short"), None, None),
        HeaderError::Checksum { computed, stored } => (
            format!("{what} checksum fails"),
            Some(format!("{computed:#06x}")),
            Some(format!("{stored:#06x}")),
        ),
    }
}

/// Walk a device. `Err` only for I/O errors and for media whose TAPE block cannot be used.
pub(crate) fn walk(m: &Media) -> Result<Catalog> {
    let dev = m.device();
    let loc = || Location::device(dev.clone());
    let head = m.read_vec(0, DBLK_LEN)?.ok_or_else(|| Error::Truncated {
        at: loc().at(0),
        what: "the media header (TAPE block)".into(),
    })?;
    let d = Dblk::parse(&head).map_err(|e| {
        let (what, exp, found) = header_problem(&e, "media header (TAPE block)");
        Error::Corrupt {
            at: loc().at(0),
            what,
            expected: exp,
            found,
        }
    })?;
    if d.kind != *b"TAPE" {
        return Err(Error::NotMedia {
            device: dev.clone(),
            found: format!("a {} block where TAPE belongs", id_text(d.kind)),
        });
    }
    let area = usize::from(d.first_stream.clamp(DBLK_LEN as u16, MAX_HEADER_AREA));
    let blk = m.read_vec(0, area)?.ok_or_else(|| Error::Truncated {
        at: loc().at(0),
        what: "the TAPE block".into(),
    })?;
    let tape = Tape::parse(&blk, &d)
        .ok_or_else(|| Error::corrupt(loc().at(0), "TAPE block too short for its fields"))?;
    let lbs = u64::from(tape.logical_block_size);
    if !(512..=65536).contains(&lbs) || lbs % 512 != 0 {
        return Err(Error::mismatch(
            loc().at(84),
            "TAPE format logical block size is impossible",
            "a multiple of 512 up to 65536",
            lbs,
        ));
    }
    let sfm = tape.soft_filemark_size();
    if !(512..=65536).contains(&sfm) {
        return Err(Error::mismatch(
            loc().at(64),
            "TAPE soft filemark block size is impossible",
            "512 to 65536 bytes",
            sfm,
        ));
    }
    let mut w = Walker {
        m,
        cat: Catalog {
            tape,
            ..Default::default()
        },
        lbs,
    };
    let (streams, end) = w.streams(0, u64::from(d.first_stream))?;
    if let Some(r) = streams.iter().find(|s| s.id == *b"RAID") {
        if let Some(data) = m.read_vec(r.data_off, usize::try_from(r.len.min(64)).unwrap_or(64))? {
            w.cat.raid = Raid::parse(&data);
        }
    }
    w.cat.blocks.push(BlockRec {
        off: 0,
        kind: d.kind,
        attrs: d.attrs,
        fla: d.fla,
        streams,
        end: end.unwrap_or(m.len()),
    });
    match end {
        Some(e) => w.run(e)?,
        None => {
            let next = w.resync(512)?;
            w.run(next)?
        }
    }
    Ok(w.cat)
}

/// Outcome of a metadata read.
enum Rd {
    Bytes(Vec<u8>),
    /// The stream ends first.
    End,
    /// The bytes cannot be had (a compressed chunk does not decode): resume at this offset.
    Bad(u64),
}

impl Walker<'_> {
    /// Read `len` MTF bytes at `off`. A chunk that does not decode is recorded (once) as
    /// damage and reported as `Bad` with the offset just past it; only I/O errors are `Err`.
    fn rd(&mut self, off: u64, len: usize) -> Result<Rd> {
        match self.m.read_vec(off, len) {
            Ok(Some(b)) => Ok(Rd::Bytes(b)),
            Ok(None) => Ok(Rd::End),
            Err(Error::Io { path, op, source }) => Err(Error::Io { path, op, source }),
            // A chunk in an algorithm this reader does not decode: none of the media can be
            // had, so nothing is walked past it.
            Err(e @ Error::Unsupported { .. }) => Err(e),
            Err(e) => {
                let (start, resume) = match self.m.seg_at(off) {
                    Some(s) => (s.mtf_off, s.mtf_off + u64::from(s.ulen)),
                    None => (off, off.saturating_add(512)),
                };
                let (what, truncated) = match e {
                    Error::Truncated { what, .. } => (format!("media end before {what}"), true),
                    other => (
                        match other {
                            Error::Corrupt { what, .. } => what,
                            o => o.to_string(),
                        },
                        false,
                    ),
                };
                if !self
                    .cat
                    .damage
                    .iter()
                    .any(|d| d.off == start && d.what == what)
                {
                    self.damage(start, what, None, None, truncated);
                }
                Ok(Rd::Bad(resume.max(off + 1)))
            }
        }
    }

    fn damage(
        &mut self,
        off: u64,
        what: impl Into<String>,
        expected: Option<String>,
        found: Option<String>,
        truncated: bool,
    ) {
        self.cat.damage.push(Damage {
            off,
            what: what.into(),
            expected,
            found,
            truncated,
        });
    }

    /// Follow the stream chain starting at `from` (block at `blk`). Returns the streams and the
    /// offset where the chain ends (after SPAD), or `None` when the chain is broken (recorded).
    fn streams(&mut self, blk: u64, from: u64) -> Result<(Vec<StreamRec>, Option<u64>)> {
        let mut out = Vec::new();
        let mut p = from;
        let len = self.m.len();
        loop {
            if !p.is_multiple_of(4) {
                self.damage(
                    p,
                    "stream header not 4-byte aligned",
                    Some("a multiple of 4".into()),
                    Some(format!("{p}")),
                    false,
                );
                return Ok((out, None));
            }
            let h = match self.rd(p, STREAM_LEN)? {
                Rd::Bytes(h) => h,
                Rd::End => {
                    self.damage(
                        p,
                        format!("media end inside the stream chain of the block at {blk}"),
                        None,
                        None,
                        true,
                    );
                    return Ok((out, None));
                }
                Rd::Bad(_) => return Ok((out, None)),
            };
            let s = match StreamHeader::parse(&h) {
                Ok(s) => s,
                Err(e) => {
                    let (what, exp, found) =
                        header_problem(&e, &format!("stream header (block at {blk})"));
                    self.damage(p, what, exp, found, false);
                    return Ok((out, None));
                }
            };
            let data_off = p + STREAM_LEN as u64;
            let remain = len.saturating_sub(data_off);
            if s.len > remain {
                self.damage(
                    p,
                    format!("stream {} runs past the end of the media", id_text(s.id)),
                    Some(format!("at most {remain} bytes")),
                    Some(format!("{} bytes", s.len)),
                    true,
                );
                return Ok((out, None));
            }
            let data_end = data_off + s.len;
            out.push(StreamRec {
                id: s.id,
                hdr_off: p,
                data_off,
                len: s.len,
                media_attrs: s.media_attrs,
                encryption: s.encryption,
                compression: s.compression,
            });
            if s.id == *b"SPAD" {
                return Ok((out, Some(data_end)));
            }
            p = data_end.div_ceil(4) * 4;
        }
    }

    /// The next 512-aligned offset at or after `from` holding a valid, known block header.
    fn resync(&mut self, from: u64) -> Result<u64> {
        const WIN: usize = 1 << 16;
        let len = self.m.len();
        let mut p = from.div_ceil(512) * 512;
        let mut buf = vec![0u8; WIN + DBLK_LEN];
        while p < len {
            let n = match self.m.read_at(p, &mut buf) {
                Ok(n) => n,
                Err(Error::Io { path, op, source }) => return Err(Error::Io { path, op, source }),
                Err(_) => {
                    // A window over an undecodable chunk: try sector by sector.
                    let mut k = p;
                    let stop = p + WIN as u64;
                    while k < stop.min(len) {
                        match self.rd(k, DBLK_LEN)? {
                            Rd::Bytes(h) => {
                                if Dblk::parse(&h).is_ok_and(|d| d.known()) {
                                    return Ok(k);
                                }
                                k += 512;
                            }
                            Rd::End => return Ok(len),
                            Rd::Bad(next) => k = next.div_ceil(512) * 512,
                        }
                    }
                    p = k;
                    continue;
                }
            };
            if n < DBLK_LEN {
                break;
            }
            let mut k = 0usize;
            while k + DBLK_LEN <= n && k < WIN {
                if let Ok(d) = Dblk::parse(&buf[k..]) {
                    if d.known() {
                        return Ok(p + k as u64);
                    }
                }
                k += 512;
            }
            p += WIN as u64;
        }
        Ok(len)
    }

    fn run(&mut self, mut pos: u64) -> Result<()> {
        let len = self.m.len();
        let mut cur: Option<SetRec> = None;
        while pos < len {
            let h = match self.rd(pos, DBLK_LEN)? {
                Rd::Bytes(h) => h,
                Rd::End => {
                    // Trailing zeros after the last block are padding, not damage.
                    let tail_len = usize::try_from(len - pos).unwrap_or(0);
                    if let Rd::Bytes(tail) = self.rd(pos, tail_len)? {
                        if tail.iter().any(|&b| b != 0) {
                            self.damage(pos, "media end inside a block header", None, None, true);
                        }
                    }
                    break;
                }
                Rd::Bad(next) => {
                    pos = self.resync(next)?;
                    continue;
                }
            };
            if h.iter().all(|&b| b == 0) {
                // Zero fill between sets (tape padding): skip a sector.
                pos += 512;
                continue;
            }
            let d = match Dblk::parse(&h) {
                Ok(d) if d.known() => d,
                Ok(d) => {
                    self.damage(
                        pos,
                        format!("unknown block type {}", id_text(d.kind)),
                        None,
                        None,
                        false,
                    );
                    pos = self.resync(pos + 1)?;
                    continue;
                }
                Err(e) => {
                    let (what, exp, found) = header_problem(&e, "descriptor block header");
                    self.damage(pos, what, exp, found, false);
                    if h.starts_with(b"SFMB") {
                        // Later tables still list this filemark: keep its place, skip its size.
                        self.cat.sfmbs.push((pos, Sfmb::default()));
                        pos += self.cat.tape.soft_filemark_size();
                    } else {
                        pos = self.resync(pos + 1)?;
                    }
                    continue;
                }
            };
            let idx = self.cat.blocks.len();
            if d.kind == *b"SFMB" {
                pos = self.sfmb(pos, &d, &mut cur)?;
                continue;
            }
            if d.kind == *b"SSET" {
                if let Some(prev) = cur.take() {
                    self.close_set(prev, pos, false);
                }
                cur = Some(SetRec {
                    sset_off: pos,
                    ..Default::default()
                });
            }
            let base = cur.as_ref().map(|s| s.sset_off).unwrap_or(0);
            let in_set = IN_SET.iter().any(|k| **k == d.kind);
            if in_set && cur.is_some() {
                let rel = pos - base;
                if !rel.is_multiple_of(self.lbs) {
                    self.damage(
                        pos,
                        format!("{} block not on a logical block boundary", id_text(d.kind)),
                        None,
                        None,
                        false,
                    );
                } else if d.fla != rel / self.lbs {
                    self.damage(
                        pos,
                        format!(
                            "{} block's format logical address disagrees with its position",
                            id_text(d.kind)
                        ),
                        Some(format!("{}", rel / self.lbs)),
                        Some(format!("{}", d.fla)),
                        false,
                    );
                }
            }
            let area_len = usize::from(d.first_stream.max(DBLK_LEN as u16));
            let area = match self.rd(pos, area_len)? {
                Rd::Bytes(b) => Some(b),
                Rd::End => {
                    self.damage(
                        pos,
                        format!("media end inside the {} block", id_text(d.kind)),
                        None,
                        None,
                        true,
                    );
                    None
                }
                Rd::Bad(_) => None,
            };
            let (streams, end) = match area {
                Some(_) => self.streams(pos, pos + u64::from(d.first_stream))?,
                None => (Vec::new(), None),
            };
            let area = area.unwrap_or_default();
            self.block_fields(&d, pos, &area, &streams, &mut cur)?;
            self.cat.blocks.push(BlockRec {
                off: pos,
                kind: d.kind,
                attrs: d.attrs,
                fla: d.fla,
                streams,
                end: end.unwrap_or(pos),
            });
            if let Some(s) = cur.as_mut() {
                s.blocks.push(idx);
            }
            if d.kind == *b"EOTM" {
                break;
            }
            pos = match end {
                Some(e) => {
                    if in_set && cur.is_some() && !(e - base).is_multiple_of(self.lbs) {
                        self.damage(
                            e,
                            "stream chain does not end on a logical block boundary",
                            None,
                            None,
                            false,
                        );
                    }
                    e
                }
                None => self.resync(pos + 1)?,
            };
        }
        if let Some(prev) = cur.take() {
            self.close_set(prev, len, true);
        }
        Ok(())
    }

    fn sfmb(&mut self, pos: u64, d: &Dblk, cur: &mut Option<SetRec>) -> Result<u64> {
        let size = u64::from(d.first_stream);
        let want = self.cat.tape.soft_filemark_size();
        if size != want {
            self.damage(
                pos,
                "soft filemark block size differs from the TAPE block's",
                Some(want.to_string()),
                Some(size.to_string()),
                false,
            );
        }
        let size = if (512..=65536).contains(&size) {
            size
        } else {
            want
        };
        let b = match self.rd(pos, usize::try_from(size).unwrap_or(512))? {
            Rd::Bytes(b) => b,
            Rd::End => {
                self.damage(
                    pos,
                    "media end inside a soft filemark block",
                    None,
                    None,
                    true,
                );
                return Ok(self.m.len());
            }
            Rd::Bad(next) => return self.resync(next),
        };
        match Sfmb::parse(&b) {
            Ok(t) => {
                // Entries name the earlier SFMBs of the device, newest first, as file offsets.
                let prev: Vec<u64> = self
                    .cat
                    .sfmbs
                    .iter()
                    .rev()
                    .map(|(o, _)| self.m.file_offset_of(*o))
                    .collect();
                if t.entries != prev {
                    let show = |v: &[u64]| {
                        v.iter()
                            .map(|x| format!("{x:#x}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    self.damage(
                        pos,
                        "soft filemark table does not list the earlier filemarks",
                        Some(format!("[{}]", show(&prev))),
                        Some(format!("[{}]", show(&t.entries))),
                        false,
                    );
                }
                self.cat.sfmbs.push((pos, t));
            }
            Err(why) => self.damage(
                pos,
                format!("soft filemark table damaged: {why}"),
                None,
                None,
                false,
            ),
        }
        if let Some(s) = cur.as_mut() {
            s.end = pos + size;
        }
        // The SFMB after the ESETs closes the set.
        if cur.as_ref().is_some_and(|s| s.closed()) {
            if let Some(s) = cur.take() {
                self.push_set(s);
            }
        }
        Ok(pos + size)
    }

    /// Close a set that was not closed by the SFMB after its ESETs: `end` is where the next
    /// set starts, or the end of the media (`eof`).
    fn close_set(&mut self, mut s: SetRec, end: u64, eof: bool) {
        if !s.closed() {
            self.damage(
                end,
                format!("backup set {} ends without its ESET block", s.position),
                Some("ESET".into()),
                None,
                true,
            );
        } else {
            self.damage(
                end,
                format!(
                    "backup set {} is not closed by a soft filemark after its ESET",
                    s.position
                ),
                Some("SFMB".into()),
                None,
                eof,
            );
        }
        s.end = s.end.max(end);
        self.push_set(s);
    }

    /// Record a set. Sets on a device are numbered 1, 2, 3 in order; one whose number does not
    /// follow the previous set's (a repeated or spliced copy) is damage, named where it starts,
    /// and is not listed: its blocks count as bytes after the last set.
    fn push_set(&mut self, s: SetRec) {
        if let Some(prev) = self.cat.sets.last() {
            if s.position <= prev.position {
                let (at, want, found) = (s.sset_off, prev.position + 1, s.position);
                self.damage(
                    at,
                    format!(
                        "backup set number {found} follows set {} on the media",
                        prev.position
                    ),
                    Some(format!("set {want} or later")),
                    Some(format!("set {found}")),
                    false,
                );
                return;
            }
        }
        self.cat.sets.push(s);
    }

    fn block_fields(
        &mut self,
        d: &Dblk,
        pos: u64,
        area: &[u8],
        streams: &[StreamRec],
        cur: &mut Option<SetRec>,
    ) -> Result<()> {
        match &d.kind {
            b"SSET" => match Sset::parse(area, d) {
                Some(ss) => {
                    if let Some(s) = cur.as_mut() {
                        s.position = u32::from(ss.number);
                        s.sset = ss;
                    }
                }
                None => self.damage(
                    pos,
                    "SSET block too short for its fields",
                    None,
                    None,
                    false,
                ),
            },
            b"VOLB" => {
                if let Some(s) = cur.as_mut() {
                    s.volb = Volb::parse(area, d);
                }
            }
            b"ESET" => match Eset::parse(area) {
                Some(e) => {
                    if let Some(s) = cur.as_mut() {
                        if u32::from(e.number) != s.position {
                            self.damage(
                                pos,
                                "ESET names another backup set",
                                Some(s.position.to_string()),
                                Some(e.number.to_string()),
                                false,
                            );
                        }
                        s.esets.push((pos, e));
                    } else {
                        self.damage(pos, "ESET block outside any backup set", None, None, false);
                    }
                }
                None => self.damage(
                    pos,
                    "ESET block too short for its fields",
                    None,
                    None,
                    false,
                ),
            },
            b"MSCI" | b"MSLS" => {
                let Some(st) = streams.iter().find(|s| s.id == *b"MQCI") else {
                    if streams.last().is_some_and(|s| s.id == *b"SPAD") {
                        self.damage(
                            pos,
                            format!("{} block without its MQCI stream", id_text(d.kind)),
                            None,
                            None,
                            false,
                        );
                    }
                    return Ok(());
                };
                if st.len > MAX_CONFIG {
                    self.damage(
                        st.hdr_off,
                        "configuration stream implausibly long",
                        Some(format!("at most {MAX_CONFIG}")),
                        Some(st.len.to_string()),
                        false,
                    );
                    return Ok(());
                }
                let Some(data) = self
                    .m
                    .read_vec(st.data_off, usize::try_from(st.len).unwrap_or(0))?
                else {
                    return Ok(());
                };
                match Config::parse(&data) {
                    Ok(c) => {
                        if let Some(s) = cur.as_mut() {
                            if d.kind == *b"MSCI" {
                                s.lead = Some(c);
                            } else {
                                s.trail = Some(c);
                            }
                        }
                    }
                    Err(why) => self.damage(
                        st.data_off,
                        format!("configuration stream (MQCI) damaged: {why}"),
                        None,
                        None,
                        false,
                    ),
                }
            }
            _ => {}
        }
        Ok(())
    }
}
