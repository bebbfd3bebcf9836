//! The checks verification makes of a backup set, in one place for every reader of a set: what
//! the catalog already holds against the set before a byte of it is read ([`faults`]), and what
//! its bytes show as they go by ([`Watch`]: database pages, backup checksums, chunks that do not
//! decode). bak-verify reports every one; bak-read stops at the first, before the bytes it
//! concerns are written, or with `--continue-after-error` writes everything and reports every
//! one. One list of checks, so what one tool calls bad the other cannot pass on.

use bak_core::error::{Error, Result};
use bak_core::report::{Problem, ProblemKind};

use super::csum;
use super::media::ContainerDamage;
use super::pages::{PageChecker, PageProblem};
use super::unsupported::Finding;
use super::walk::{self, SetRec};
use super::{payload, MtfDevice};

/// Something verification holds against a set that is known from the catalog, before the set's
/// bytes are read.
pub(crate) enum Fault<'a> {
    /// Damage the walk found: a descriptor block or stream header, a soft filemark table, the
    /// chain of blocks.
    Walk(&'a walk::Damage),
    /// Damage in the compressed container: a chunk header, the chunk index, stray bytes.
    Container(&'a ContainerDamage),
    /// The set as a whole: its trailing configuration missing, or disagreeing with the leading
    /// one.
    Set(String),
    /// The set uses what this reader cannot read (an encryption, a compression algorithm):
    /// not damage, and what bak-verify reports when nothing else is wrong.
    Unsupported(&'a Finding),
}

impl Fault<'_> {
    /// The media end early (as opposed to bytes being wrong).
    pub fn truncated(&self) -> bool {
        match self {
            Fault::Walk(x) => x.truncated,
            Fault::Container(x) => x.truncated,
            Fault::Set(_) | Fault::Unsupported(_) => false,
        }
    }

    /// The set uses what this reader cannot read (as opposed to being damaged).
    pub fn unsupported(&self) -> bool {
        matches!(self, Fault::Unsupported(_))
    }

    /// As bak-verify reports it.
    pub fn problem(&self, d: &MtfDevice, s: &SetRec) -> Problem {
        match self {
            Fault::Walk(x) => problem_of(d, x, Some(s.position)),
            Fault::Container(x) => container_problem(d, x, Some(s.position)),
            Fault::Set(what) => set_problem(d, s, what, None, None),
            Fault::Unsupported(f) => f.problem(d),
        }
    }

    /// As a reader stops with it.
    pub fn error(&self, d: &MtfDevice, s: &SetRec) -> Error {
        match self {
            Fault::Walk(x) => d.damage_error(x, Some(s.position)),
            Fault::Container(x) => container_error(d, x, Some(s.position)),
            Fault::Set(what) => Error::corrupt(
                d.loc()
                    .set(s.position)
                    .at(d.media.file_offset_of(s.sset_off)),
                what.clone(),
            ),
            Fault::Unsupported(f) => f.error(d),
        }
    }
}

/// What verification holds against set `s` of device `d` before reading its bytes, in the
/// order it reports them: the walk's damage in the set's span (for the first set, also before
/// it: the media header; damage outside every set goes with the set before it), the
/// container's damage in the set's part of the file (for the first set also before it, for the
/// last also after it), then the set's own faults, then what it uses that this reader cannot
/// read.
pub(crate) fn faults<'a>(d: &'a MtfDevice, s: &'a SetRec) -> Vec<Fault<'a>> {
    let sets = &d.cat.sets;
    let first_set = sets.first().map(|f| f.sset_off) == Some(s.sset_off);
    let last_set = sets.last().map(|l| l.sset_off) == Some(s.sset_off);
    let within = |o: &SetRec, off: u64| off >= o.sset_off && off < o.end.max(o.sset_off + 1);
    let mut out = Vec::new();
    for x in &d.cat.damage {
        let inside = within(s, x.off);
        let before = first_set && x.off < s.sset_off;
        let orphan = !sets.iter().any(|o| within(o, x.off));
        let owner = sets
            .iter()
            .rev()
            .find(|o| o.sset_off <= x.off)
            .map(|o| o.sset_off);
        if inside || before || (orphan && owner == Some(s.sset_off)) {
            out.push(Fault::Walk(x));
        }
    }
    if let Some(map) = &d.media.map {
        let lo = d.media.file_offset_of(s.sset_off);
        let hi = d.media.file_offset_of(s.end);
        for x in &map.damage {
            if (x.file_off >= lo && x.file_off < hi)
                || (first_set && x.file_off < lo)
                || (last_set && x.file_off >= hi)
            {
                out.push(Fault::Container(x));
            }
        }
    }
    if s.trail.is_none() && s.closed() {
        out.push(Fault::Set(
            "backup set has no trailing configuration (MSLS block)".into(),
        ));
    }
    if let (Some(a), Some(b)) = (&s.lead, &s.trail) {
        for diff in a.differences(b) {
            out.push(Fault::Set(format!(
                "leading and trailing configuration disagree: {diff}"
            )));
        }
    }
    out.extend(d.findings_of(s).map(Fault::Unsupported));
    out
}

/// The problems a reader meets: with `stop` the first is its error; going on past damage,
/// each is kept and the read goes on.
pub(crate) struct Tally {
    stop: bool,
    pub problems: Vec<Problem>,
}

impl Tally {
    pub fn new(stop: bool) -> Self {
        Tally {
            stop,
            problems: Vec::new(),
        }
    }

    /// A problem, as bak-verify reports it and as the error a reader stops with.
    pub fn note(&mut self, p: Problem, e: Error) -> Result<()> {
        if self.stop {
            return Err(e);
        }
        self.problems.push(p);
        Ok(())
    }

    /// What a [`Watch`] found (it stopped on its own at the first, with `stop`).
    pub fn add(&mut self, seen: Seen) {
        self.problems.extend(seen.sums);
        self.problems.extend(seen.chunks.into_iter().map(|c| c.0));
        self.problems.extend(seen.pages);
    }
}

/// Which bytes of the range a [`Watch`] sees go to its receiver.
pub(crate) enum Out {
    /// None (verification).
    Nothing,
    /// Every byte (the MTF stream).
    All,
    /// These (offset, length) ranges, in order (the data or log streams).
    Ranges(Vec<(u64, u64)>),
}

impl Out {
    fn covers(&self, off: u64, len: u64) -> bool {
        match self {
            Out::Nothing => false,
            Out::All => true,
            Out::Ranges(v) => v.iter().any(|&(o, l)| o <= off && off + len <= o + l),
        }
    }
}

/// The pages of one data stream, judged as they go by.
struct Pages {
    off: u64,
    end: u64,
    position: u32,
    checker: PageChecker,
    /// Its bytes go to the receiver.
    out: bool,
}

/// What a [`Watch`] found, in the order bak-verify reports it.
#[derive(Default)]
pub(crate) struct Seen {
    /// Bytes seen (decoded).
    pub bytes: u64,
    /// Backup checksums (CSUM) that do not hold, or that are missing.
    pub sums: Vec<Problem>,
    /// Chunks that did not decode, and whether each is the media ending early.
    pub chunks: Vec<(Problem, bool)>,
    /// Database pages that fail.
    pub pages: Vec<Problem>,
}

/// Receives the bytes a [`Watch`] hands on.
pub(crate) type Sink<'a> = dyn FnMut(&[u8]) -> Result<()> + 'a;

/// The checks of the bytes of some sets of one device, fed the pieces of its MTF stream in
/// order ([`super::media::Media::stream_range`]), handing on the bytes of [`Out`] once they are
/// judged: a database page only when the whole page holds. With `stop`, the first problem is
/// the `Err` of [`Watch::feed`], returned before the bytes it concerns are handed on (a backup
/// checksum is known only after its stream, so a stream whose CSUM fails has gone out); without
/// it, every problem is kept in [`Seen`], bytes that fail go on, and the bytes of a chunk that
/// does not decode go on as zeros, so the output keeps its length and its pages their place.
pub(crate) struct Watch<'a> {
    d: &'a MtfDevice,
    /// (start, end, position) of each set watched.
    spans: Vec<(u64, u64, u32)>,
    pages: Vec<Pages>,
    /// Index of the first data stream not finished.
    next: usize,
    sums: Vec<Checked>,
    out: Out,
    stop: bool,
    seen: Seen,
}

impl<'a> Watch<'a> {
    /// Watch the sets `sets` of `d`, handing on the bytes of `out`. The pages and backup
    /// checksums of a set that uses what this reader cannot read (encrypted pages, another
    /// compression) are not judged: they are not what the checks are of, and calling them
    /// damaged would be wrong.
    pub fn new(d: &'a MtfDevice, sets: &[&SetRec], out: Out, stop: bool) -> Self {
        let mut pages = Vec::new();
        let mut sums = Vec::new();
        for s in sets.iter().filter(|s| d.findings_of(s).next().is_none()) {
            let fids = s.file_ids();
            for (off, len) in d.streams_of(s, b"MSDA", b"MQDA").map(payload) {
                if len > 0 {
                    pages.push(Pages {
                        off,
                        end: off + len,
                        position: s.position,
                        checker: PageChecker::new(off, fids.clone()),
                        out: out.covers(off, len),
                    });
                }
            }
            sums.extend(checksummed_streams(d, s));
        }
        pages.sort_by_key(|p| p.off);
        Watch {
            d,
            spans: sets
                .iter()
                .map(|s| (s.sset_off, s.end, s.position))
                .collect(),
            pages,
            next: 0,
            sums,
            out,
            stop,
            seen: Seen::default(),
        }
    }

    /// The set a chunk at MTF offset `at` belongs to: the one whose span holds it, else the
    /// one before it.
    fn position_at(&self, at: u64) -> Option<u32> {
        self.spans
            .iter()
            .find(|(lo, hi, _)| at >= *lo && at < *hi)
            .or_else(|| self.spans.iter().rev().find(|(lo, _, _)| *lo <= at))
            .or(self.spans.first())
            .map(|s| s.2)
    }

    /// The next piece of the stream, at MTF offset `at`: its bytes, or for a chunk that does
    /// not decode its length and error.
    pub fn feed(
        &mut self,
        at: u64,
        piece: std::result::Result<&[u8], (u64, Error)>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        match piece {
            Ok(b) => {
                self.seen.bytes += b.len() as u64;
                self.walk(at, b.len() as u64, Some(b), sink)?;
                self.feed_sums(at, b)
            }
            Err((len, e)) => {
                for c in &mut self.sums {
                    c.gap |= at < c.data.0 + c.data.1 && at + len > c.data.0;
                }
                // A chunk in another algorithm cannot be gone past by a reader: what it holds
                // is not to be had, not damaged.
                let foreign = matches!(e, Error::Unsupported { .. });
                if self.stop || (foreign && !matches!(self.out, Out::Nothing)) {
                    return Err(e);
                }
                let truncated = matches!(e, Error::Truncated { .. });
                let p = error_problem(self.d, e, self.position_at(at));
                self.seen.chunks.push((p, truncated));
                self.walk(at, len, None, sink)
            }
        }
    }

    /// Hand on the bytes `at..at + len` (`None`: they could not be read), the data streams'
    /// through their page checkers.
    fn walk(&mut self, at: u64, len: u64, bytes: Option<&[u8]>, sink: &mut Sink<'_>) -> Result<()> {
        let Watch {
            d,
            pages,
            next,
            out,
            stop,
            seen,
            ..
        } = self;
        let end = at + len;
        let part = |lo: u64, hi: u64| bytes.map(|b| &b[(lo - at) as usize..(hi - at) as usize]);
        let mut cur = at;
        loop {
            // A data stream ends before what follows it is handed on: its last bytes go first.
            while let Some(r) = pages.get_mut(*next).filter(|r| r.end <= cur) {
                let give = r.out;
                r.checker.finish(&mut |b, _| give_to(give, sink, b))?;
                *next += 1;
            }
            if cur >= end {
                return Ok(());
            }
            match pages.get_mut(*next) {
                Some(r) if r.off <= cur => {
                    let hi = end.min(r.end);
                    let (give, pos) = (r.out, r.position);
                    let mut pass = |b: &[u8], p: Option<PageProblem>| {
                        if let Some(p) = p {
                            if *stop {
                                return Err(page_error(d, pos, p, give));
                            }
                            seen.pages.push(page_problem(d, pos, p));
                        }
                        give_to(give, sink, b)
                    };
                    match part(cur, hi) {
                        Some(b) => r.checker.feed(cur, b, &mut pass)?,
                        None => {
                            r.checker.gap(&mut pass)?;
                            if give {
                                zeros(sink, hi - cur)?;
                            }
                        }
                    }
                    cur = hi;
                }
                r => {
                    let hi = r.map_or(end, |r| end.min(r.off));
                    let mut plain = |lo: u64, hi: u64| match part(lo, hi) {
                        Some(b) => sink(b),
                        None => zeros(sink, hi - lo),
                    };
                    match out {
                        Out::Nothing => {}
                        Out::All => plain(cur, hi)?,
                        Out::Ranges(v) => {
                            for &(o, l) in v.iter() {
                                let (lo, up) = (cur.max(o), hi.min(o + l));
                                if lo < up {
                                    plain(lo, up)?;
                                }
                            }
                        }
                    }
                    cur = hi;
                }
            }
        }
    }

    /// Feed the backup checksums; judge each as soon as its stored value is read.
    fn feed_sums(&mut self, at: u64, b: &[u8]) -> Result<()> {
        let end = at + b.len() as u64;
        let part = |o: u64, l: u64| {
            let (lo, hi) = (at.max(o), end.min(o + l));
            (lo < hi).then(|| (lo, &b[(lo - at) as usize..(hi - at) as usize]))
        };
        for c in &mut self.sums {
            if let Some((_, p)) = part(c.data.0, c.data.1) {
                c.sum.feed(p);
            }
            if let Some(o) = c.csum_off {
                if let Some((lo, p)) = part(o, csum::CSUM_LEN) {
                    let k = (lo - o) as usize;
                    c.stored[k..k + p.len()].copy_from_slice(p);
                    c.stored_len += p.len();
                }
            }
        }
        let mut i = 0;
        while i < self.sums.len() {
            if self.sums[i].csum_off.is_some() && self.sums[i].stored_len == csum::CSUM_LEN as usize
            {
                let c = self.sums.remove(i);
                self.judge_sum(c)?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn judge_sum(&mut self, c: Checked) -> Result<()> {
        let Some(p) = c.problem(self.d) else {
            return Ok(());
        };
        if self.stop {
            let mut at = self.d.loc().at(p.offset.unwrap_or(0));
            at.position = Some(c.position);
            at.block = p.block;
            return Err(Error::Corrupt {
                at,
                what: if c.csum_off.is_some() {
                    format!("{}; the restored bytes are wrong", p.what)
                } else {
                    format!("{}; the restored bytes cannot be checked", p.what)
                },
                expected: p.expected,
                found: p.found,
            });
        }
        self.seen.sums.push(p);
        Ok(())
    }

    /// The end of the range: the last bytes held by the page checkers go on, the backup
    /// checksums not yet judged are. What was found.
    pub fn finish(mut self, sink: &mut Sink<'_>) -> Result<Seen> {
        for r in &mut self.pages[self.next..] {
            let give = r.out;
            r.checker.finish(&mut |b, _| give_to(give, sink, b))?;
        }
        for c in std::mem::take(&mut self.sums) {
            self.judge_sum(c)?;
        }
        Ok(self.seen)
    }
}

fn give_to(give: bool, sink: &mut Sink<'_>, b: &[u8]) -> Result<()> {
    if give {
        sink(b)
    } else {
        Ok(())
    }
}

/// `n` zero bytes to `sink`, in pieces.
fn zeros(sink: &mut Sink<'_>, mut n: u64) -> Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        sink(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn page_where(d: &MtfDevice, p: &PageProblem) -> String {
    if d.media.map.is_some() {
        format!("{} (decompressed MTF offset {})", p.what, p.off)
    } else {
        p.what.clone()
    }
}

/// A page that fails, as bak-verify reports it.
fn page_problem(d: &MtfDevice, position: u32, p: PageProblem) -> Problem {
    Problem {
        kind: ProblemKind::Corrupt,
        device: d.media.device(),
        family: Some(d.family()),
        position: Some(position),
        block: d.media.seg_at(p.off).map(|g| g.index),
        offset: Some(d.media.file_offset_of(p.off)),
        what: page_where(d, &p),
        expected: p.expected,
        found: p.found,
    }
}

/// A page that fails, as a reader stops with it; `held` when the page was to be written.
fn page_error(d: &MtfDevice, position: u32, p: PageProblem, held: bool) -> Error {
    let mut at = d.loc().set(position).at(d.media.file_offset_of(p.off));
    at.block = d.media.seg_at(p.off).map(|g| g.index);
    let what = page_where(d, &p);
    Error::Corrupt {
        at,
        what: if held {
            format!("{what}; nothing of the page was written")
        } else {
            what
        },
        expected: p.expected,
        found: p.found,
    }
}

/// A data or log stream that carries a backup checksum, and what was gathered of it.
pub(crate) struct Checked {
    pub id: [u8; 4],
    /// The set it belongs to.
    pub position: u32,
    /// MTF offset of the stream's header.
    pub hdr_off: u64,
    /// The checksummed bytes: the stream's data after its pad bytes.
    pub data: (u64, u64),
    /// MTF offset of the CSUM stream's 4 data bytes; `None` when no CSUM stream follows.
    pub csum_off: Option<u64>,
    pub stored: [u8; 4],
    pub stored_len: usize,
    pub sum: csum::StreamSum,
    /// Part of the data could not be read (a chunk that does not decode).
    pub gap: bool,
}

impl Checked {
    /// The problem with this stream's checksum, if any. A CSUM whose bytes could not be read
    /// (a chunk that does not decode) is left to the chunk's own problem.
    pub fn problem(&self, d: &MtfDevice) -> Option<Problem> {
        let name = String::from_utf8_lossy(&self.id).into_owned();
        let (what, at, expected, found) = match self.csum_off {
            None => (
                format!("stream {name} is marked checksummed (media attribute 0x100) but no 4-byte CSUM stream follows it"),
                self.hdr_off,
                Some("CSUM".to_string()),
                None,
            ),
            Some(o) => {
                if self.gap || self.stored_len != self.stored.len() {
                    return None;
                }
                let stored = u32::from_le_bytes(self.stored);
                let (computed, sectors) = self.sum.clone().finish();
                if csum::matches(stored, computed, sectors) {
                    return None;
                }
                (
                    format!("backup checksum (CSUM) of stream {name} does not match its data"),
                    o,
                    Some(format!("{stored:#010x}")),
                    Some(format!("{computed:#010x}")),
                )
            }
        };
        Some(Problem {
            kind: ProblemKind::Corrupt,
            device: d.media.device(),
            family: Some(d.family()),
            position: Some(self.position),
            block: d.media.seg_at(at).map(|g| g.index),
            offset: Some(d.media.file_offset_of(at)),
            what: if d.media.map.is_some() {
                format!("{what} (decompressed MTF offset {at})")
            } else {
                what
            },
            expected,
            found,
        })
    }
}

/// Every MQDA and MQTL stream of a set marked as followed by a CSUM stream.
pub(crate) fn checksummed_streams(d: &MtfDevice, s: &SetRec) -> Vec<Checked> {
    let mut out = Vec::new();
    for b in s.blocks.iter().filter_map(|&i| d.cat.blocks.get(i)) {
        for (k, st) in b.streams.iter().enumerate() {
            if !(st.id == *b"MQDA" || st.id == *b"MQTL")
                || st.media_attrs & csum::ATTR_CSUM_FOLLOWS == 0
            {
                continue;
            }
            let next = b.streams.get(k + 1);
            // A chain cut short by damage (it does not end with SPAD) may have lost the CSUM:
            // the walk reports that damage; the checksum cannot be checked.
            if next.is_none() && b.streams.last().map(|x| x.id) != Some(*b"SPAD") {
                continue;
            }
            let csum_off = next
                .filter(|n| n.id == *b"CSUM" && n.len == csum::CSUM_LEN)
                .map(|n| n.data_off);
            out.push(Checked {
                id: st.id,
                position: s.position,
                hdr_off: st.hdr_off,
                data: payload(st),
                csum_off,
                stored: [0; 4],
                stored_len: 0,
                sum: csum::StreamSum::default(),
                gap: false,
            });
        }
    }
    out
}

pub(crate) fn problem_of(d: &MtfDevice, x: &walk::Damage, pos: Option<u32>) -> Problem {
    let seg = d.media.seg_at(x.off).map(|g| g.index);
    let block = seg.or_else(|| {
        let i = d.cat.blocks.partition_point(|b| b.off <= x.off);
        i.checked_sub(1).map(|i| i as u64)
    });
    Problem {
        kind: ProblemKind::Corrupt,
        device: d.media.device(),
        family: Some(d.family()),
        position: pos,
        block,
        offset: Some(d.media.file_offset_of(x.off)),
        what: if d.media.map.is_some() {
            format!("{} (decompressed MTF offset {})", x.what, x.off)
        } else {
            x.what.clone()
        },
        expected: x.expected.clone(),
        found: x.found.clone(),
    }
}

pub(crate) fn container_problem(d: &MtfDevice, x: &ContainerDamage, pos: Option<u32>) -> Problem {
    Problem {
        kind: ProblemKind::Corrupt,
        device: d.media.device(),
        family: Some(d.family()),
        position: pos,
        block: x.chunk,
        offset: Some(x.file_off),
        what: x.what.clone(),
        expected: None,
        found: None,
    }
}

/// Damage in the compressed container as the error a reader stops with.
pub(crate) fn container_error(d: &MtfDevice, x: &ContainerDamage, pos: Option<u32>) -> Error {
    let mut at = d.loc().at(x.file_off);
    at.block = x.chunk;
    at.position = pos;
    if x.truncated {
        Error::Truncated {
            at,
            what: x.what.clone(),
        }
    } else {
        Error::Corrupt {
            at,
            what: x.what.clone(),
            expected: None,
            found: None,
        }
    }
}

pub(crate) fn set_problem(
    d: &MtfDevice,
    s: &SetRec,
    what: &str,
    expected: Option<String>,
    found: Option<String>,
) -> Problem {
    Problem {
        kind: ProblemKind::Corrupt,
        device: d.media.device(),
        family: Some(d.family()),
        position: Some(s.position),
        block: None,
        offset: Some(d.media.file_offset_of(s.sset_off)),
        what: what.to_string(),
        expected,
        found,
    }
}

pub(crate) fn error_problem(d: &MtfDevice, e: Error, pos: Option<u32>) -> Problem {
    let unsupported = matches!(e, Error::Unsupported { .. });
    let (at, what, expected, found) = match e {
        Error::Corrupt {
            at,
            what,
            expected,
            found,
        } => (Some(at), what, expected, found),
        Error::Truncated { at, what } => (Some(at), format!("media end before {what}"), None, None),
        other => (None, other.to_string(), None, None),
    };
    Problem {
        kind: if unsupported {
            ProblemKind::Unsupported
        } else {
            ProblemKind::Corrupt
        },
        device: d.media.device(),
        family: Some(d.family()),
        position: pos,
        block: at.as_ref().and_then(|a| a.block),
        offset: at.as_ref().and_then(|a| a.offset),
        what,
        expected,
        found,
    }
}
