//! RESTORE ... WITH CONTINUE_AFTER_ERROR for bak media: restore every byte of a backup set
//! that can be read from the devices given, and write each block that cannot as zeros at its
//! place, so the output has the set's length and every good byte its offset.
//!
//! Unlike [`restore`](super::restore::restore), which stops at the first problem, a salvage
//! reads each family front to back through [`Resync`], which steps over a record that does
//! not read whole to the next one that does; a block whose header reads but whose payload is
//! cut, fails its CRC or hash, does not decode or does not authenticate is lost by sequence
//! number; a block found on no family (a missing family, a damaged block header, a family
//! cut short) is a gap in the sequence. Blocks are written in order as soon as every family
//! has something at its head, so a salvage works on streams (FIFOs, pipes) as on files, with
//! one reader thread per family (each decodes its own blocks) and a few blocks per family in
//! memory. What each lost block was, and which family held it, is said from the families'
//! MBCs where they were read.
//!
//! Before a lost block becomes zeros it is offered to [`Redundancy::rebuild_lost_block`]
//! (parity families or mirror copies, once a media set has them).

use std::io::{IoSlice, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use super::restore::{check_trailing_mac, set_name, RestoreOptions};
use super::resync::{Next, Resync, Skipped};
use crate::bytes::*;
use crate::codec::keys::{KeyRing, Opening};
use crate::codec::seal::{Cipher, SetKeys};
use crate::codec::{Decoded, Decoder, SetDigest};
use crate::device::write_all_vectored;
use crate::engine::Stop;
use crate::error::{Error, Location, Refusal, Result};
use crate::media::family::scan_family;
use crate::media::open::Opened;
use crate::media::reader::StreamRecord;
use crate::ops::ProgressSink;

/// Why a block of a salvaged set was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostWhy {
    /// It is on a family that was not given.
    MissingFamily,
    /// Its block header, or the records around it, could not be read.
    Unreadable,
    /// Its payload failed its CRC or hash, did not decode, or did not authenticate.
    Damaged,
    /// Its family ends before it (cut short).
    CutOff,
    /// It was on no family read, and no MBC says where it was.
    NotFound,
}

impl LostWhy {
    /// The name used in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            LostWhy::MissingFamily => "missing-family",
            LostWhy::Unreadable => "unreadable",
            LostWhy::Damaged => "damaged",
            LostWhy::CutOff => "cut-off",
            LostWhy::NotFound => "not-found",
        }
    }
}

/// A block of the set that was written as zeros.
#[derive(Debug, Clone)]
pub struct LostBlock {
    /// Block sequence number.
    pub seq: u64,
    /// The family that held it, when known.
    pub family: Option<u16>,
    /// Offset of its bytes in the output.
    pub offset: u64,
    /// Its length (its original length; max transfer size when its header was not read).
    pub len: u64,
    /// Why it was lost.
    pub why: LostWhy,
    /// What was found, for a person.
    pub detail: String,
}

/// Whether the set's end-to-end digest was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// Every block was read and the digest of the trailing config holds.
    Holds,
    /// Every block was read, and the digest does not hold.
    Fails,
    /// Not checked: blocks were lost, or no trusted trailing config was read.
    NotChecked,
}

/// What a salvage did.
#[derive(Debug)]
pub struct SalvageSummary {
    /// Bytes written (lost blocks as zeros included).
    pub original_bytes: u64,
    /// Blocks written (lost ones included).
    pub blocks: u64,
    /// Families read.
    pub families: u32,
    /// Families of the media set.
    pub family_count: u32,
    /// The set's original length, when a trailing config said it; `None`: unknown, the output
    /// ends after the last block read.
    pub set_length: Option<u64>,
    /// Blocks written as zeros, in sequence order.
    pub lost: Vec<LostBlock>,
    /// Blocks that were lost on the media and given back by [`Redundancy`].
    pub rebuilt: Vec<u64>,
    /// Other damage found (records passed over, missing families, a trailing MAC that fails),
    /// in the order found.
    pub problems: Vec<Error>,
    /// The end-to-end digest.
    pub digest: DigestCheck,
    /// Wall time.
    pub seconds: f64,
}

impl SalvageSummary {
    /// The output is the set's exact bytes, known so: nothing lost or damaged and the digest
    /// holds.
    pub fn exact(&self) -> bool {
        self.lost.is_empty() && self.problems.is_empty() && self.digest == DigestCheck::Holds
    }
}

/// REDUNDANCY HOOK. Where a salvage offers a lost block before it becomes zeros: a parity
/// family's stripe rebuild (format 1.2) or a mirror's copy of the block. The media sets a
/// salvage reads today have neither, and it passes [`NoRedundancy`].
pub(crate) trait Redundancy: Sync {
    /// The original bytes of block `seq` (`len` of them, when the block's header was read),
    /// rebuilt or read from another copy and checked against the block's hash; `None` when
    /// they cannot be had.
    fn rebuild_lost_block(&self, seq: u64, len: Option<u32>) -> Option<Vec<u8>>;
}

/// No parity, no mirrors: every lost block becomes zeros.
pub(crate) struct NoRedundancy;

impl Redundancy for NoRedundancy {
    fn rebuild_lost_block(&self, _seq: u64, _len: Option<u32>) -> Option<Vec<u8>> {
        None
    }
}

/// Blocks a family reader may hold ahead of the writer.
const AHEAD: usize = 4;

/// One family, read up to its first block.
struct Fam {
    number: u16,
    at: Location,
    r: Resync<Box<dyn Read + Send>>,
    header: Option<(SetHeader, Vec<u8>)>,
    leading: Option<(LeadingConfig, Vec<u8>)>,
    keys: Vec<KeyRecord>,
    /// The first record of the set after its leading records.
    pending: Option<StreamRecord>,
    /// The family ended before the set's blocks.
    ended: bool,
    skipped: Vec<Skipped>,
    problems: Vec<Error>,
}

/// What the facts of the set are, taken from whichever family reads.
struct Ctx {
    position: u32,
    set_id: Guid,
    mts: u32,
    sealed: bool,
    keys: Option<Arc<SetKeys>>,
}

enum Item {
    Block {
        seq: u64,
        hash: u64,
        data: Vec<u8>,
    },
    Lost {
        seq: u64,
        len: u32,
        why: LostWhy,
        detail: String,
    },
}

impl Item {
    fn seq(&self) -> u64 {
        match self {
            Item::Block { seq, .. } | Item::Lost { seq, .. } => *seq,
        }
    }
}

/// What a family reader found besides its blocks.
#[derive(Default)]
struct FamEnd {
    trailing: Option<TrailingConfig>,
    mac_failed: bool,
    mbc: Option<Vec<MbcEntry>>,
    /// The family ended without its end-of-set record, at this offset.
    cut_at: Option<u64>,
    skipped: Vec<Skipped>,
    problems: Vec<Error>,
}

/// Salvage backup set `opts.position` from the devices given (any subset of the families of
/// one media set) into `out`, which must take the set's bytes in order. See the module
/// documentation. `Err` when nothing of the set can be read (no family holds its set header
/// or leading config), for a key that is needed and not given, and for I/O errors; damage is
/// in the summary.
pub fn salvage(
    devs: Vec<Opened>,
    opts: &RestoreOptions,
    out: &mut dyn Write,
    out_name: &str,
    progress: &dyn ProgressSink,
    stop: &Stop,
) -> Result<SalvageSummary> {
    salvage_with(devs, opts, &NoRedundancy, out, out_name, progress, stop)
}

pub(crate) fn salvage_with(
    devs: Vec<Opened>,
    opts: &RestoreOptions,
    redundancy: &dyn Redundancy,
    out: &mut dyn Write,
    out_name: &str,
    progress: &dyn ProgressSink,
    stop: &Stop,
) -> Result<SalvageSummary> {
    let started = Instant::now();
    opts.check()?;
    let position = opts.position;
    if position == 0 {
        return Err(Error::NoSuchSet {
            position: 0,
            count: 0,
        });
    }
    let (devs, family_count, missing) = check_families(devs)?;
    let names: Vec<String> = devs.iter().map(|d| d.name().to_string()).collect();
    let set_at = Location::device(set_name(
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .set(position);
    let mut problems: Vec<Error> = missing
        .iter()
        .map(|m| Error::MediaSet {
            what: format!("family {m} of {family_count} was not given: its blocks are lost"),
        })
        .collect();
    let mut fams = Vec::with_capacity(devs.len());
    for d in devs {
        let mut f = open_family(d, position)?;
        find_set(&mut f, position)?;
        fams.push(f);
    }
    let ctx = set_facts(&fams, position, &set_at, &KeyRing::new(opts.keys.clone()))?;
    let expected = fams
        .iter()
        .filter_map(|f| f.leading.as_ref())
        .map(|l| l.0.expected_size)
        .find(|&s| s != u64::MAX);
    progress.total(expected);
    let n = fams.len();
    let mut numbers = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    let mut first_skips = Vec::with_capacity(n);
    let mut rxs: Vec<Option<Receiver<Item>>> = Vec::with_capacity(n);
    let mut txs = Vec::with_capacity(n);
    for f in &mut fams {
        numbers.push(f.number);
        ats.push(f.at.clone());
        first_skips.push((
            std::mem::take(&mut f.skipped),
            std::mem::take(&mut f.problems),
        ));
        if f.ended {
            rxs.push(None);
            txs.push(None);
        } else {
            let (tx, rx) = sync_channel(AHEAD);
            rxs.push(Some(rx));
            txs.push(Some(tx));
        }
    }
    let ctx = &ctx;
    let mut w = Writer {
        out,
        out_name,
        written: 0,
        progress,
    };
    let (result, ends) = std::thread::scope(|s| {
        let handles: Vec<_> = fams
            .into_iter()
            .zip(txs)
            .map(|(f, tx)| {
                s.spawn(move || match tx {
                    Some(tx) => family_reader(f, ctx, tx),
                    None => Ok(FamEnd {
                        cut_at: Some(f.r.offset()),
                        ..FamEnd::default()
                    }),
                })
            })
            .collect();
        let r = sequence(rxs, &numbers, ctx, redundancy, &mut w, stop);
        let ends: Vec<Result<FamEnd>> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        what: "a salvage family reader panicked".into(),
                        detail: None,
                    })
                })
            })
            .collect();
        (r, ends)
    });
    let mut seq = result?;
    let mut ends_ok = Vec::with_capacity(n);
    for (e, (skips, probs)) in ends.into_iter().zip(first_skips) {
        let mut e = e?;
        let mut s = skips;
        s.append(&mut e.skipped);
        e.skipped = s;
        let mut p = probs;
        p.append(&mut e.problems);
        e.problems = p;
        ends_ok.push(e);
    }
    let ends = ends_ok;
    // The set's totals: from a trailing config whose MAC holds (any, for a plain set).
    let trailing = ends
        .iter()
        .filter(|e| !e.mac_failed)
        .find_map(|e| e.trailing.clone())
        .or_else(|| ends.iter().find_map(|e| e.trailing.clone()));
    let mts = ctx.mts as u64;
    if let Some(t) = &trailing {
        while seq.next < t.total_blocks {
            let s = seq.next;
            let len = t.total_original.saturating_sub(s * mts).min(mts);
            seq.lose(
                &mut w,
                redundancy,
                s,
                len as u32,
                None,
                LostWhy::NotFound,
                String::new(),
            )?;
        }
        if seq.next > t.total_blocks {
            problems.push(Error::mismatch(
                set_at.clone(),
                "more blocks than the trailing config counts",
                t.total_blocks,
                seq.next,
            ));
        }
    } else {
        problems.push(Error::corrupt(
            set_at.clone(),
            "no family given holds a trailing config that reads: the set's length is unknown, \
             and the output ends after the last block read",
        ));
    }
    w.out.flush().map_err(|e| Error::io(out_name, "write", e))?;
    let mut lost = seq.lost;
    attribute(&mut lost, &numbers, &missing, &ends);
    for (fat, e) in ats.iter().zip(&ends) {
        for s in &e.skipped {
            problems.push(Error::corrupt(
                fat.clone().at(s.from),
                format!(
                    "{} bytes passed over to the next record that reads whole: {}",
                    s.to - s.from,
                    s.why
                ),
            ));
        }
        problems.extend(e.problems.iter().map(clone_error));
    }
    let digest = match (&trailing, seq.digest) {
        (Some(t), Some(d)) if lost.is_empty() && !ends.iter().any(|e| e.mac_failed) => {
            if d.finish() == t.digest {
                DigestCheck::Holds
            } else {
                problems.push(Error::corrupt(
                    set_at.clone(),
                    "end-to-end digest of the original bytes does not hold",
                ));
                DigestCheck::Fails
            }
        }
        _ => DigestCheck::NotChecked,
    };
    Ok(SalvageSummary {
        original_bytes: w.written,
        blocks: seq.next,
        families: n as u32,
        family_count: family_count as u32,
        set_length: trailing.map(|t| t.total_original),
        lost,
        rebuilt: seq.rebuilt,
        problems,
        digest,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Errors are not `Clone` (an I/O error inside); the problems of a salvage are damage, kept
/// as they are.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Corrupt {
            at,
            what,
            expected,
            found,
        } => Error::Corrupt {
            at: at.clone(),
            what: what.clone(),
            expected: expected.clone(),
            found: found.clone(),
        },
        Error::Truncated { at, what } => Error::Truncated {
            at: at.clone(),
            what: what.clone(),
        },
        _ => Error::MediaSet {
            what: e.to_string(),
        },
    }
}

/// The devices, each a family of one media set and none twice (in the order given); the
/// family count; the family numbers not given.
fn check_families(devs: Vec<Opened>) -> Result<(Vec<Opened>, u16, Vec<u16>)> {
    let first = devs
        .first()
        .and_then(|d| d.label.clone())
        .ok_or_else(|| Error::MediaSet {
            what: "no bak media given".into(),
        })?;
    let mut seen = vec![None::<String>; first.family_count as usize];
    for d in &devs {
        let Some(l) = &d.label else {
            return Err(Error::MediaSet {
                what: format!("{}: not bak media", d.name()),
            });
        };
        if l.media_set_id != first.media_set_id {
            return Err(Error::MediaSet {
                what: format!(
                    "{}: family {} of another media set ({}), not of {}",
                    d.name(),
                    l.family_number,
                    guid_string(&l.media_set_id),
                    guid_string(&first.media_set_id)
                ),
            });
        }
        match seen.get_mut(l.family_number as usize - 1) {
            Some(Some(other)) => {
                return Err(Error::refused(
                    Refusal::Usage,
                    format!(
                        "family {} given twice: {other} and {}; give each family once",
                        l.family_number,
                        d.name()
                    ),
                ))
            }
            Some(slot) => *slot = Some(d.name().to_string()),
            None => {
                return Err(Error::MediaSet {
                    what: format!(
                        "{}: family number {} out of range",
                        d.name(),
                        l.family_number
                    ),
                })
            }
        }
    }
    let missing = (1..=first.family_count)
        .filter(|&i| seen[i as usize - 1].is_none())
        .collect();
    Ok((devs, first.family_count, missing))
}

/// A family's reader, at set `position` when a scan of a file finds it, else at the first set.
fn open_family(d: Opened, position: u32) -> Result<Fam> {
    let name = d.name().to_string();
    let number = d.label.as_ref().map_or(0, |l| l.family_number);
    let at = Location::device(name.clone()).family(number as u32);
    let mut start = FIRST_SET_OFFSET;
    let mut end = None;
    if let Some(dev) = d.random() {
        // Damage may keep the scan from finding the set; then it is looked for from the start.
        if let Ok(scan) = scan_family(dev, &name) {
            if let Some(s) = scan.set(position) {
                start = s.eset.set_header_offset;
            } else if position == scan.next_position() && scan.interrupted.is_some() {
                start = scan.end_offset;
            }
            end = scan.past_end.as_ref().map(|p| p.offset);
        }
    }
    let inner = d.records_from(start, at.clone())?.into_inner();
    let inner: Box<dyn Read + Send> = match end {
        Some(e) => Box::new(inner.take(e.saturating_sub(start))),
        None => inner,
    };
    let at = at.set(position);
    Ok(Fam {
        number,
        r: Resync::new(inner, start, at.clone()),
        at,
        header: None,
        leading: None,
        keys: Vec::new(),
        pending: None,
        ended: false,
        skipped: Vec::new(),
        problems: Vec::new(),
    })
}

/// Read a family up to the first block (or later record) of set `position`, keeping its set
/// header, leading config and key records as they read. Records of earlier sets are passed
/// over (their payloads by the lengths their checked headers give).
fn find_set(f: &mut Fam, position: u32) -> Result<()> {
    // Whether the records read now are of the wanted set: at the first set offset they are
    // when it is set 1, else after the previous set's end.
    let mut ours = position == 1 || f.r.offset() != FIRST_SET_OFFSET;
    let mut found = false;
    loop {
        let (next, skipped) = f.r.next()?;
        if let Some(s) = skipped {
            f.skipped.push(s);
        }
        let rec = match next {
            Next::Record(r) => r,
            Next::End | Next::Lost => {
                f.ended = true;
                return Ok(());
            }
        };
        let at = f.at.clone().at(rec.offset);
        match rec.kind {
            RecordType::SetHeader => match SetHeader::parse_body(&rec.body, &at) {
                Ok(h) if h.position == position && !found => {
                    f.header = Some((h, rec.body));
                    ours = true;
                    found = true;
                }
                Ok(h) if h.position < position => ours = false,
                // A later set, or this one again: this set is over on this family.
                Ok(_) => {
                    f.ended = true;
                    return Ok(());
                }
                Err(e) => f.problems.push(e),
            },
            RecordType::LeadingConfig if ours => match LeadingConfig::parse_body(&rec.body, &at) {
                Ok(l) => {
                    f.leading = Some((l, rec.body));
                    found = true;
                }
                Err(e) => f.problems.push(e),
            },
            RecordType::KeyRecord if ours => match KeyRecord::parse_body(&rec.body, &at) {
                Ok(k) => f.keys.push(k),
                Err(e) => f.problems.push(e),
            },
            RecordType::BlockHeader => match BlockHeader::parse_body(&rec.body, &at) {
                Ok(h) if h.position == position => {
                    f.pending = Some(rec);
                    return Ok(());
                }
                Ok(h) => {
                    if h.position > position {
                        f.ended = true;
                        return Ok(());
                    }
                    ours = false;
                    if h.check_lengths(MAX_TRANSFER, true, &at).is_ok()
                        || h.check_lengths(MAX_TRANSFER, false, &at).is_ok()
                    {
                        f.r.skip(h.stored_len as u64)?;
                    }
                }
                Err(e) => f.problems.push(e),
            },
            RecordType::TrailingConfig | RecordType::Mbc if ours && found => {
                f.pending = Some(rec);
                return Ok(());
            }
            RecordType::EndOfSet => match EndOfSet::parse_body(&rec.body, &at) {
                Ok(e) if e.position + 1 == position => ours = true,
                Ok(e) if e.position >= position => {
                    f.pending = found.then_some(rec);
                    f.ended = !found;
                    return Ok(());
                }
                Ok(_) => ours = false,
                Err(e) => f.problems.push(e),
            },
            // Another media concatenated on the device: these media end here.
            RecordType::MediaHeader => {
                f.ended = true;
                return Ok(());
            }
            _ => {}
        }
    }
}

/// The set's id, max transfer size and keys, from whichever family holds them.
fn set_facts(fams: &[Fam], position: u32, set_at: &Location, ring: &KeyRing) -> Result<Ctx> {
    let header = fams.iter().find_map(|f| f.header.as_ref());
    let leading = fams
        .iter()
        .filter_map(|f| f.leading.as_ref())
        .find(|l| header.is_none_or(|h| h.0.set_id == l.0.set_id));
    let (set_id, mts) = match (header, leading) {
        (Some(h), _) => (h.0.set_id, h.0.max_transfer),
        (None, Some(l)) => (l.0.set_id, l.0.max_transfer),
        (None, None) => {
            if fams.iter().all(|f| f.ended && f.skipped.is_empty()) {
                return Err(Error::NoSuchSet { position, count: 0 });
            }
            return Err(Error::corrupt(
                set_at.clone(),
                "no family given holds a readable set header or leading config of the set: \
                 nothing of it can be restored",
            ));
        }
    };
    let encryption = leading.map_or(0, |l| l.0.encryption);
    let mut keys = None;
    if let Some(cipher) = Cipher::from_id(encryption) {
        let mut last = None;
        for f in fams {
            let (Some(h), Some(l)) = (&f.header, &f.leading) else {
                continue;
            };
            if l.0.set_id != set_id || f.keys.len() != l.0.key_records as usize {
                continue;
            }
            match ring.open(cipher, &set_id, &f.keys, (&h.1, &l.1), &f.at) {
                Ok(Opening::Opened(k)) => {
                    keys = Some(k);
                    break;
                }
                Ok(Opening::NoKey(e)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        if keys.is_none() {
            return Err(last.unwrap_or_else(|| {
                Error::corrupt(
                    set_at.clone(),
                    "no family given holds whole key records of the encrypted set: it cannot \
                     be opened",
                )
            }));
        }
    }
    Ok(Ctx {
        position,
        set_id,
        mts,
        sealed: encryption != 0,
        keys,
    })
}

/// Read one family's blocks from its first one on, each decoded and checked, into `tx`.
fn family_reader(mut f: Fam, ctx: &Ctx, tx: SyncSender<Item>) -> Result<FamEnd> {
    let mut end = FamEnd::default();
    let mut dec = Decoder::new()?;
    let mut pending = f.pending.take();
    let keys = ctx.keys.as_deref();
    loop {
        let rec = match pending.take() {
            Some(r) => r,
            None => {
                let (next, skipped) = f.r.next()?;
                if let Some(s) = skipped {
                    end.skipped.push(s);
                }
                match next {
                    Next::Record(r) => r,
                    Next::End | Next::Lost => {
                        end.cut_at = Some(f.r.offset());
                        break;
                    }
                }
            }
        };
        let at = f.at.clone().at(rec.offset);
        match rec.kind {
            RecordType::BlockHeader => {
                let h = match BlockHeader::parse_body(&rec.body, &at) {
                    Ok(h) => h,
                    Err(e) => {
                        end.problems.push(e);
                        continue;
                    }
                };
                let bat = at.clone().block(h.seq);
                // The payload's length is trusted only within bounds: else the next resync
                // steps over it.
                if let Err(e) = h.check_lengths(ctx.mts, ctx.sealed, &bat) {
                    end.problems.push(e);
                    continue;
                }
                if h.set_id != ctx.set_id || h.position != ctx.position {
                    if h.position > ctx.position {
                        end.cut_at = Some(rec.offset);
                        break;
                    }
                    end.problems
                        .push(Error::corrupt(bat, "block header of another set"));
                    f.r.skip(h.stored_len as u64)?;
                    continue;
                }
                let stored = h.stored_len as usize;
                let mut buf = vec![0u8; stored];
                let got = f.r.read_payload(&mut buf)?;
                let item = if got < stored {
                    end.cut_at = Some(f.r.offset());
                    Item::Lost {
                        seq: h.seq,
                        len: h.original_len,
                        why: LostWhy::CutOff,
                        detail: format!(
                            "the family ends inside its payload ({got} of {stored} bytes)"
                        ),
                    }
                } else {
                    match dec.restore(&h, buf, keys, &bat) {
                        Ok((buf, decoded)) => Item::Block {
                            seq: h.seq,
                            hash: h.original_hash,
                            data: original_bytes(buf, decoded, h.original_len),
                        },
                        Err(e) => Item::Lost {
                            seq: h.seq,
                            len: h.original_len,
                            why: LostWhy::Damaged,
                            detail: e.to_string(),
                        },
                    }
                };
                let cut = matches!(
                    item,
                    Item::Lost {
                        why: LostWhy::CutOff,
                        ..
                    }
                );
                if tx.send(item).is_err() || cut {
                    break;
                }
            }
            RecordType::TrailingConfig => match TrailingConfig::parse_body(&rec.body, &at) {
                Ok(t) if t.set_id == ctx.set_id && t.position == ctx.position => {
                    if let Some(k) = keys {
                        if let Err(e) = check_trailing_mac(k, &t, &rec.body, &at) {
                            end.mac_failed = true;
                            end.problems.push(e);
                        }
                    }
                    end.trailing = Some(t);
                }
                Ok(_) => end
                    .problems
                    .push(Error::corrupt(at, "trailing config of another set")),
                Err(e) => end.problems.push(e),
            },
            RecordType::Mbc => match Mbc::parse_body(&rec.body, &at) {
                Ok(m) if m.set_id == ctx.set_id => end.mbc = Some(m.entries),
                Ok(_) => end.problems.push(Error::corrupt(at, "MBC of another set")),
                Err(e) => end.problems.push(e),
            },
            RecordType::EndOfSet => break,
            // The next set, or another media: this set ended on this family without its end.
            RecordType::SetHeader | RecordType::MediaHeader => {
                end.cut_at = Some(rec.offset);
                break;
            }
            k => end.problems.push(Error::mismatch(
                at,
                "unexpected record in a backup set",
                "block header, trailing config, MBC or end-of-set",
                k.name(),
            )),
        }
    }
    Ok(end)
}

/// The original bytes of a decoded block, on their own.
fn original_bytes(mut buf: Vec<u8>, decoded: Decoded, len: u32) -> Vec<u8> {
    match decoded {
        Decoded::At(at) => {
            buf.truncate(at + len as usize);
            buf.drain(..at);
            buf
        }
        Decoded::RawFrame => {
            let mut v = Vec::with_capacity(len as usize);
            for (off, n) in raw_frame_pieces(len) {
                v.extend_from_slice(&buf[off..off + n]);
            }
            v
        }
    }
}

struct Writer<'a> {
    out: &'a mut dyn Write,
    out_name: &'a str,
    written: u64,
    progress: &'a dyn ProgressSink,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        let mut v = [IoSlice::new(b)];
        write_all_vectored(self.out, &mut v).map_err(|e| Error::io(self.out_name, "write", e))?;
        self.written += b.len() as u64;
        self.progress.done(self.written);
        Ok(())
    }

    fn zeros(&mut self, n: u64) -> Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len() as u64) as usize;
            self.bytes(&ZEROS[..k])?;
            left -= k as u64;
        }
        Ok(())
    }
}

/// Where the sequencer is.
struct Seq {
    next: u64,
    lost: Vec<LostBlock>,
    rebuilt: Vec<u64>,
    /// The digest of the blocks so far, while none is lost.
    digest: Option<SetDigest>,
    mts: u64,
}

impl Seq {
    #[allow(clippy::too_many_arguments)]
    fn lose(
        &mut self,
        w: &mut Writer<'_>,
        redundancy: &dyn Redundancy,
        seq: u64,
        len: u32,
        family: Option<u16>,
        why: LostWhy,
        detail: String,
    ) -> Result<()> {
        let known = family.map(|_| len);
        match redundancy.rebuild_lost_block(seq, known) {
            Some(bytes) if bytes.len() == len as usize => {
                w.bytes(&bytes)?;
                self.rebuilt.push(seq);
                // The rebuilt block's hash is not at hand here: the digest is not checked.
                self.digest = None;
            }
            _ => {
                w.zeros(len as u64)?;
                self.digest = None;
                self.lost.push(LostBlock {
                    seq,
                    family,
                    offset: seq * self.mts,
                    len: len as u64,
                    why,
                    detail,
                });
            }
        }
        self.next = seq + 1;
        Ok(())
    }
}

/// Take blocks in sequence order from the heads of the families and write them; a block that
/// no family can give any more (every family's head is past it, or ended) is lost.
fn sequence(
    mut rxs: Vec<Option<Receiver<Item>>>,
    numbers: &[u16],
    ctx: &Ctx,
    redundancy: &dyn Redundancy,
    w: &mut Writer<'_>,
    stop: &Stop,
) -> Result<Seq> {
    let mut heads: Vec<Option<Item>> = rxs.iter().map(|_| None).collect();
    let mut seq = Seq {
        next: 0,
        lost: Vec::new(),
        rebuilt: Vec::new(),
        digest: Some(SetDigest::new(ctx.keys.as_deref())),
        mts: ctx.mts as u64,
    };
    loop {
        if stop.is_raised() {
            return Err(Error::Interrupted);
        }
        for (i, rx) in rxs.iter_mut().enumerate() {
            if heads[i].is_some() {
                continue;
            }
            if let Some(r) = rx {
                match r.recv() {
                    Ok(item) => heads[i] = Some(item),
                    Err(_) => *rx = None,
                }
            }
        }
        // A block given twice (a sequence that goes back) is passed over.
        if let Some(i) = heads
            .iter()
            .position(|h| h.as_ref().is_some_and(|h| h.seq() < seq.next))
        {
            heads[i] = None;
            continue;
        }
        let at_next = heads
            .iter()
            .position(|h| h.as_ref().is_some_and(|h| h.seq() == seq.next));
        match at_next {
            Some(i) => match heads[i].take() {
                Some(Item::Block { seq: s, hash, data }) => {
                    w.bytes(&data)?;
                    if let Some(d) = &mut seq.digest {
                        d.add_block(hash);
                    }
                    seq.next = s + 1;
                }
                Some(Item::Lost {
                    seq: s,
                    len,
                    why,
                    detail,
                }) => seq.lose(w, redundancy, s, len, Some(numbers[i]), why, detail)?,
                None => {}
            },
            None if heads.iter().any(Option::is_some) => {
                let s = seq.next;
                seq.lose(
                    w,
                    redundancy,
                    s,
                    ctx.mts,
                    None,
                    LostWhy::NotFound,
                    String::new(),
                )?
            }
            None => return Ok(seq),
        }
    }
}

/// Say which family held each lost block whose header was not read, and why it was lost: from
/// the MBCs read, else from what is known of the families.
fn attribute(lost: &mut [LostBlock], numbers: &[u16], missing: &[u16], ends: &[FamEnd]) {
    for b in lost.iter_mut().filter(|b| b.family.is_none()) {
        let held = numbers.iter().zip(ends).find_map(|(num, e)| {
            let entry = e.mbc.as_ref()?.iter().find(|x| x.seq == b.seq)?;
            Some((*num, e, entry.offset))
        });
        if let Some((num, e, off)) = held {
            b.family = Some(num);
            if let Some(s) = e.skipped.iter().find(|s| s.from <= off && off < s.to) {
                b.why = LostWhy::Unreadable;
                b.detail = format!("its block header at offset {off} does not read: {}", s.why);
            } else if e.cut_at.is_some_and(|c| off >= c) {
                b.why = LostWhy::CutOff;
                b.detail = format!("the family ends before its block header at offset {off}");
            }
            continue;
        }
        // Families that may hold it: the missing ones, and those whose MBC was not read.
        let unknown: Vec<(u16, Option<&FamEnd>)> = missing
            .iter()
            .map(|&m| (m, None))
            .chain(
                numbers
                    .iter()
                    .zip(ends)
                    .filter(|(_, e)| e.mbc.is_none())
                    .map(|(n, e)| (*n, Some(e))),
            )
            .collect();
        if let [(num, e)] = unknown[..] {
            b.family = Some(num);
            match e {
                None => {
                    b.why = LostWhy::MissingFamily;
                    b.detail = format!("family {num} was not given");
                }
                Some(e) => {
                    if let Some(c) = e.cut_at {
                        b.why = LostWhy::CutOff;
                        b.detail = format!("family {num} ends at offset {c}, before its end");
                    } else if !e.skipped.is_empty() {
                        b.why = LostWhy::Unreadable;
                        b.detail = format!("family {num} has damaged records");
                    }
                }
            }
        } else if !unknown.is_empty() && unknown.iter().all(|u| u.1.is_none()) {
            b.why = LostWhy::MissingFamily;
            b.detail = format!(
                "on one of the families not given ({})",
                missing
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else if b.detail.is_empty() {
            b.detail = format!(
                "on none of the families read; it may be on famil{} {}",
                if unknown.len() == 1 { "y" } else { "ies" },
                unknown
                    .iter()
                    .map(|u| u.0.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
