//! RESTORE: one backup set from the devices of a media set into a writer. One reader thread
//! per family runs the set parser over its device, a sequencer takes blocks in global order
//! from the heads of the families, a pool of workers checks and decodes them, and the calling
//! thread writes the output in order. Memory is bounded by the buffer pool whatever the
//! assignment of blocks to families: each family's queue holds a few blocks, and the block the
//! sequencer needs next is always at the head of one family.

use std::collections::VecDeque;
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::bytes::*;
use crate::codec::keys::{trailing_mac_holds, KeyRing, Keys, Opening};
use crate::codec::parity::{rebuild_stripe, Rebuilder, StripeFound};
use crate::codec::seal::{Cipher, SetKeys};
use crate::codec::{Decoded, Decoder, SetDigest};
use crate::device::write_all_vectored;
use crate::engine::{
    run_part, spawn_part, Cell, Ordered, Placement, Pool, Queue, RaiseOnPanic, Stop,
};
use crate::error::{Error, Location, PastEnd, Result};
use crate::media::open::{order_families_with, Opened};
use crate::media::parser::{Event, SetParser};
use crate::media::position::{position_families, position_one, Positioned};
use crate::ops::ProgressSink;

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Backup set position (RESTORE's FILE), from 1.
    pub position: u32,
    /// Decoding workers.
    pub threads: usize,
    /// Buffers in the pool (0: chosen from the families and threads).
    pub buffer_count: usize,
    /// Keys for an encrypted set.
    pub keys: Keys,
}

impl RestoreOptions {
    /// Refuse thread and buffer counts beyond [`crate::limits`], before any device is read.
    pub fn check(&self) -> Result<()> {
        use crate::limits::*;
        check_count("threads", self.threads, 1, MAX_THREADS)?;
        if self.buffer_count != 0 {
            check_count("buffer count", self.buffer_count, 2, MAX_BUFFERS)?;
            check_pool("buffer count", self.buffer_count, u64::from(MAX_TRANSFER))?;
        }
        Ok(())
    }
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            position: 1,
            threads: crate::limits::default_threads(),
            buffer_count: 0,
            keys: Keys::default(),
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// Original bytes written.
    pub original_bytes: u64,
    /// Stored bytes read.
    pub stored_bytes: u64,
    /// Blocks.
    pub blocks: u64,
    /// Families.
    pub families: u32,
    /// Wall time.
    pub seconds: f64,
    /// What the devices hold past the end of their media (another media concatenated onto
    /// them, other bytes), as far as it is known without reading further than the set: on
    /// random-read devices.
    pub past_end: Vec<PastEnd>,
    /// A set with parity families: what was missing, damaged and rebuilt (`None` without
    /// parity).
    pub redundancy: Option<RedundancyReport>,
}

/// What a restore of a set with parity met and mended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedundancyReport {
    /// Parity families of the set.
    pub parity_families: u16,
    /// Families not given, or not readable from the set's start (family numbers).
    pub missing: Vec<u16>,
    /// Families lost part way (unreadable from a record on): family number and why.
    pub lost: Vec<(u16, String)>,
    /// Blocks whose stored payload failed its CRC: (sequence, family).
    pub damaged_blocks: Vec<(u64, u16)>,
    /// Parity records whose shard failed its CRC: (stripe, family).
    pub damaged_parity: Vec<(u64, u16)>,
    /// Blocks rebuilt from their stripe's parity.
    pub rebuilt_blocks: u64,
}

impl RedundancyReport {
    /// True when nothing was missing or damaged.
    pub fn is_whole(&self) -> bool {
        self.missing.is_empty()
            && self.lost.is_empty()
            && self.damaged_blocks.is_empty()
            && self.damaged_parity.is_empty()
    }
}

/// One item from a family reader.
enum FamItem {
    Block {
        header: BlockHeader,
        buf: Vec<u8>,
        at: Location,
    },
    End {
        trailing: TrailingConfig,
        at: Location,
    },
    /// A parity record and its shard frame (parity families).
    Parity { record: ParityRecord, buf: Vec<u8> },
    /// A block, or a parity record, whose payload failed its CRC (sets with parity): lost,
    /// to be rebuilt. `seq` is the block sequence, or the stripe of a parity record.
    Bad { seq: u64 },
    /// The family cannot be read further (sets with parity): every block from here is lost.
    Lost,
}

#[derive(Default)]
struct Heads {
    q: Vec<VecDeque<FamItem>>,
}

struct Job {
    header: BlockHeader,
    buf: Vec<u8>,
    at: Location,
}

struct Out {
    header: BlockHeader,
    /// The original bytes, where `decoded` says.
    buf: Vec<u8>,
    decoded: Decoded,
}

/// A family whose set header, leading config and key records were read.
struct Started {
    fam: Positioned,
    parser: SetParser,
    leading: LeadingConfig,
    /// The set's keys, when it is encrypted.
    keys: Option<Arc<SetKeys>>,
}

/// The first problem the parser kept, as the error a restore stops with.
fn first_problem(p: &mut SetParser) -> Result<()> {
    match p.problems.drain(..).next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Read the set header, leading config and key records of each positioned family, and open an
/// encrypted set with the keys given: before any block is read, so a missing key writes
/// nothing.
fn start(
    fams: Vec<Positioned>,
    position: u32,
    count_before: u32,
    ring: &KeyRing,
) -> Result<Vec<Started>> {
    let mut out = Vec::with_capacity(fams.len());
    for mut fam in fams {
        let mut parser = fam.parser(position);
        let mut leading = None;
        let mut records = Vec::new();
        let leading = loop {
            if let Some(l) = leading
                .as_ref()
                .filter(|l: &&LeadingConfig| records.len() == l.key_records as usize)
            {
                break l.clone();
            }
            let ev = match parser.next(&mut fam.reader) {
                // The media end where the set would begin: it is not on them.
                Err(Error::PastEnd(past)) if !parser.started() => {
                    return Err(Error::NoSuchSetPastEnd {
                        position,
                        count: count_before,
                        past: Box::new(fam.reader.measure(*past)?),
                    })
                }
                ev => ev?,
            };
            first_problem(&mut parser)?;
            match ev {
                None => {
                    return Err(Error::NoSuchSet {
                        position,
                        count: count_before,
                    })
                }
                Some(Event::Leading(l)) => leading = Some(l),
                Some(Event::Key(k)) => records.push(k),
                Some(_) => {}
            }
        };
        let keys = match Cipher::from_id(leading.encryption) {
            None => None,
            Some(cipher) => {
                let at = parser.set_at();
                match ring.open(
                    cipher,
                    &leading.set_id,
                    &records,
                    parser.leading_bodies(),
                    &at,
                )? {
                    Opening::Opened(k) => Some(k),
                    Opening::NoKey(e) => return Err(e),
                }
            }
        };
        out.push(Started {
            fam,
            parser,
            leading,
            keys,
        });
    }
    Ok(out)
}

fn internal(what: &str) -> Error {
    Error::Internal {
        what: what.into(),
        detail: None,
    }
}

/// The name of a media set in messages about the whole set: its devices.
pub(crate) fn set_name(names: &[&str]) -> String {
    names.join(", ")
}

/// Restore backup set `opts.position` from the devices to `out` (named `out_name` in
/// messages). Every block's CRC and hash and the end-to-end digest are checked (an encrypted
/// set's blocks are authenticated instead, which covers both); the restore stops at the first
/// problem and never writes a byte it knows to be wrong. Raising `stop`
/// ends it with [`Error::Interrupted`].
///
/// `progress` counts the original bytes written. Its total is the set's original size: from
/// the trailing config when a family is a random-read device (a file), else the input size
/// the writer knew in advance (the leading config's expected size), else unknown.
pub fn restore(
    devs: Vec<Opened>,
    opts: &RestoreOptions,
    out: &mut dyn Write,
    out_name: &str,
    progress: &dyn ProgressSink,
    stop: &Stop,
) -> Result<RestoreSummary> {
    let started = Instant::now();
    opts.check()?;
    let position = opts.position;
    if position == 0 {
        return Err(Error::NoSuchSet {
            position: 0,
            count: 0,
        });
    }
    let slots = order_families_with(devs, true)?;
    let names: Vec<String> = slots
        .iter()
        .flatten()
        .map(|d| d.name().to_string())
        .collect();
    let set_at = Location::device(set_name(
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .set(position);
    let parity = slots
        .iter()
        .flatten()
        .next()
        .and_then(|d| d.label.as_ref())
        .map_or(0, |l| l.parity_count);
    if parity > 0 {
        let ring = KeyRing::new(opts.keys.clone());
        return restore_parity(
            slots,
            opts,
            &ring,
            (out, out_name),
            (&set_at, parity),
            progress,
            stop,
            started,
        );
    }
    let devs: Vec<Opened> = slots.into_iter().flatten().collect();
    let fams = position_families(devs, position)?;
    let count_before = fams
        .iter()
        .filter_map(|f| f.scan.as_ref())
        .map(|s| s.next_position() - 1)
        .min()
        .unwrap_or(position - 1);
    let ring = KeyRing::new(opts.keys.clone());
    let fams = start(fams, position, count_before, &ring)?;
    let past_end: Vec<PastEnd> = fams
        .iter()
        .filter_map(|f| f.fam.scan.as_ref()?.past_end.clone())
        .collect();
    let n = fams.len();
    let set_id = fams[0].parser.header().map(|h| h.set_id);
    for f in &fams {
        if f.parser.header().map(|h| h.set_id) != set_id {
            return Err(Error::MediaSet {
                what: format!(
                    "{}: family {} holds another backup set at position {position} than family 1",
                    f.fam.name, f.fam.label.family_number
                ),
            });
        }
    }
    if fams
        .iter()
        .any(|f| f.leading.encryption != fams[0].leading.encryption)
    {
        return Err(Error::MediaSet {
            what: format!(
                "the families of set {position} disagree on whether it is encrypted ({})",
                set_name(&names.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        });
    }
    let keys = fams[0].keys.clone();
    progress.total(set_size(&fams, position));
    let mts = fams[0].leading.max_transfer;
    let buf_size = payload_capacity(mts);
    let threads = opts.threads.max(1);
    let count = if opts.buffer_count == 0 {
        n * 4 + 2 * threads + 2
    } else {
        opts.buffer_count.max(n + 2)
    };
    let per_family = ((count.saturating_sub(2 * threads)) / n).max(1);
    let op = stop.child();
    let pool = Pool::new(count, buf_size, &op);
    let heads = Cell::new(
        Heads {
            q: (0..n).map(|_| VecDeque::new()).collect(),
        },
        &op,
    );
    let jobs: Queue<Job> = Queue::new(threads * 2, &op);
    let done: Ordered<Out> = Ordered::new(Placement::FirstFree, &op);
    let trailer: Cell<Option<TrailingConfig>> = Cell::new(None, &op);
    let (pool, heads, jobs, done, trailer) = (&pool, &heads, &jobs, &done, &trailer);

    let outcome = std::thread::scope(|s| -> Result<(u64, u64, u64, [u8; 16])> {
        let _guard = RaiseOnPanic(&op);
        for (i, f) in fams.into_iter().enumerate() {
            let op = &op;
            spawn_part(s, op, "family reader", move || {
                run_part(op, "family reader", || {
                    family_reader(i, f, pool, heads, per_family)
                })
            });
        }
        let tx = jobs.sender();
        let set_at2 = set_at.clone();
        let op2 = &op;
        spawn_part(s, op2, "sequencer", move || {
            run_part(op2, "sequencer", || {
                sequencer(n, heads, &tx, done, trailer, &set_at2)
            })
        });
        for _ in 0..threads {
            let op = &op;
            let keys = keys.as_deref();
            spawn_part(s, op, "decompression", move || {
                run_part(op, "decompression", || {
                    let mut dec = Decoder::new()?;
                    while let Some(Job { header, buf, at }) = jobs.pop() {
                        let (buf, decoded) = dec.restore(&header, buf, keys, &at)?;
                        done.put(
                            header.seq,
                            Out {
                                header,
                                buf,
                                decoded,
                            },
                        );
                    }
                    Ok(())
                })
            });
        }
        // Output, in order, in this thread.
        let mut digest = SetDigest::new(keys.as_deref());
        let (mut written, mut stored, mut blocks) = (0u64, 0u64, 0u64);
        let r = (|| -> Result<()> {
            while let Some((_, o)) = done.take(0) {
                digest.add_block(o.header.original_hash);
                let ol = o.header.original_len as usize;
                let w = |e| Error::io(out_name, "write", e);
                match o.decoded {
                    Decoded::At(at) => out.write_all(&o.buf[at..at + ol]).map_err(w)?,
                    Decoded::RawFrame => {
                        let mut v: Vec<IoSlice<'_>> = raw_frame_pieces(o.header.original_len)
                            .map(|(off, len)| IoSlice::new(&o.buf[off..off + len]))
                            .collect();
                        write_all_vectored(out, &mut v).map_err(w)?;
                    }
                }
                written += ol as u64;
                stored += o.header.stored_len as u64;
                blocks += 1;
                progress.done(written);
                pool.put(o.buf);
            }
            Ok(())
        })();
        if let Err(e) = r {
            op.fail(e);
        }
        Ok((written, stored, blocks, digest.finish()))
    });
    let (written, stored, blocks, digest) = op.outcome(outcome)??;
    out.flush().map_err(|e| Error::io(out_name, "write", e))?;
    let t = trailer
        .update(|t| t.clone())
        .ok_or_else(|| Error::Truncated {
            at: set_at.clone(),
            what: "the trailing config".into(),
        })?;
    if t.total_blocks != blocks || t.total_original != written {
        return Err(Error::mismatch(
            set_at,
            "trailing config totals disagree with the blocks read",
            format!("{} blocks, {} bytes", t.total_blocks, t.total_original),
            format!("{blocks} blocks, {written} bytes"),
        ));
    }
    if digest != t.digest {
        return Err(Error::mismatch(
            set_at,
            "end-to-end digest of the original bytes does not hold",
            hex(&t.digest),
            hex(&digest),
        ));
    }
    Ok(RestoreSummary {
        original_bytes: written,
        stored_bytes: stored,
        blocks,
        families: n as u32,
        seconds: started.elapsed().as_secs_f64(),
        past_end,
        redundancy: None,
    })
}

/// The original size of the set, where the media say it before the data: a file's scan found
/// the set's trailing config; a stream has only the size the writer expected (its input's size,
/// when that was a file).
fn set_size(fams: &[Started], position: u32) -> Option<u64> {
    let scanned = fams.iter().find_map(|f| {
        let s = f.fam.scan.as_ref()?.set(position)?;
        Some(s.trailing.total_original)
    });
    scanned.or_else(|| {
        fams.iter()
            .map(|f| f.leading.expected_size)
            .find(|&s| s != u64::MAX)
    })
}

fn family_reader(i: usize, f: Started, pool: &Pool, heads: &Cell<Heads>, cap: usize) -> Result<()> {
    family_reader_with(i, f, pool, heads, cap, false)
}

/// One family's reader. With `lossy` (a set with parity), damage does not end the restore:
/// a payload whose CRC fails is a [`FamItem::Bad`], and a record that cannot be read, or any
/// problem the parser finds, ends the family with [`FamItem::Lost`].
fn family_reader_with(
    i: usize,
    f: Started,
    pool: &Pool,
    heads: &Cell<Heads>,
    cap: usize,
    lossy: bool,
) -> Result<()> {
    let Started {
        mut fam,
        mut parser,
        keys,
        ..
    } = f;
    let push = |item: FamItem| -> bool {
        let mut item = Some(item);
        heads
            .wait_for(|h| {
                if h.q[i].len() >= cap {
                    return None;
                }
                h.q[i].extend(item.take());
                Some(())
            })
            .is_some()
    };
    let mut trailing = None;
    loop {
        let ev = match (parser.next(&mut fam.reader), lossy) {
            (Ok(ev), _) => match (first_problem(&mut parser), lossy) {
                (Ok(()), _) => ev,
                (Err(_), true) => {
                    push(FamItem::Lost);
                    return Ok(());
                }
                (Err(e), false) => return Err(e),
            },
            (Err(e), true) if e.is_media_damage() => {
                push(FamItem::Lost);
                return Ok(());
            }
            (Err(e), _) => return Err(e),
        };
        match ev {
            // The parser gives no end before a set header, and that header was read.
            None => return Err(internal("the set parser ended a started set")),
            Some(Event::Block(h, at)) => {
                // Room in this family's queue first, then a buffer: a family never holds a
                // buffer while it waits for room, so a slow family always finds one for the
                // block everyone waits for (a buffer held per waiting family could leave none).
                if heads
                    .wait_for(|h| (h.q[i].len() < cap).then_some(()))
                    .is_none()
                {
                    return Ok(());
                }
                let Some(mut buf) = pool.get() else {
                    return Ok(());
                };
                // Buffers keep their length between uses, so they are zeroed once, not per block.
                let stored = h.stored_len as usize;
                if buf.len() < stored {
                    buf.resize(buf.capacity().max(stored), 0);
                }
                match fam.reader.read_exact(&mut buf[..stored], "block payload") {
                    Ok(()) => {}
                    Err(e) if lossy && e.is_media_damage() => {
                        pool.put(buf);
                        push(FamItem::Lost);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                if lossy && crc32fast::hash(&buf[..stored]) != h.payload_crc {
                    pool.put(buf);
                    if !push(FamItem::Bad { seq: h.seq }) {
                        return Ok(());
                    }
                    continue;
                }
                if !push(FamItem::Block { header: h, buf, at }) {
                    return Ok(());
                }
            }
            Some(Event::Parity(record, _)) => {
                if heads
                    .wait_for(|h| (h.q[i].len() < cap).then_some(()))
                    .is_none()
                {
                    return Ok(());
                }
                let Some(mut buf) = pool.get() else {
                    return Ok(());
                };
                let len = record.payload_len() as usize;
                if buf.len() < len {
                    buf.resize(buf.capacity().max(len), 0);
                }
                match fam.reader.read_exact(&mut buf[..len], "parity shard") {
                    Ok(()) => {}
                    Err(e) if e.is_media_damage() => {
                        pool.put(buf);
                        push(FamItem::Lost);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                let item = if crc32fast::hash(&buf[..len]) != record.payload_crc {
                    pool.put(buf);
                    FamItem::Bad { seq: record.stripe }
                } else {
                    FamItem::Parity { record, buf }
                };
                if !push(item) {
                    return Ok(());
                }
            }
            Some(Event::Trailing(t)) => {
                if let Some(k) = &keys {
                    if let Err(e) = check_trailing_mac(k, &t, parser.body(), &parser.set_at()) {
                        if lossy {
                            push(FamItem::Lost);
                            return Ok(());
                        }
                        return Err(e);
                    }
                }
                trailing = Some((t, fam.reader.location()))
            }
            Some(Event::End(_)) => {
                let Some((trailing, at)) = trailing else {
                    return Err(internal(
                        "the set parser gave an end before a trailing config",
                    ));
                };
                push(FamItem::End { trailing, at });
                return Ok(());
            }
            Some(_) => {}
        }
    }
}

/// An encrypted set's trailing config (`body` as read) against its MAC.
pub(crate) fn check_trailing_mac(
    keys: &SetKeys,
    t: &TrailingConfig,
    body: &[u8],
    at: &Location,
) -> Result<()> {
    let signed = body.get(..TRAILING_BODY_LEN).unwrap_or(body);
    let holds = t.mac.is_some_and(|m| trailing_mac_holds(keys, signed, &m));
    if !holds {
        return Err(Error::corrupt(
            at.clone(),
            "trailing config's MAC does not hold: its totals or digest were altered",
        ));
    }
    Ok(())
}

enum Step {
    Block(Job),
    End(TrailingConfig, u64),
}

fn sequencer(
    n: usize,
    heads: &Cell<Heads>,
    jobs: &crate::engine::Sender<'_, Job>,
    done: &Ordered<Out>,
    trailer: &Cell<Option<TrailingConfig>>,
    set_at: &Location,
) -> Result<()> {
    let mut next = 0u64;
    loop {
        let step = heads.wait_for(|h| -> Option<Result<Step>> {
            let mut ended = 0;
            let mut all_present = true;
            for (i, q) in h.q.iter().enumerate() {
                match q.front() {
                    Some(FamItem::Block { header, at, .. }) => {
                        if header.seq == next {
                            return Some(match h.q[i].pop_front() {
                                Some(FamItem::Block { header, buf, at }) => {
                                    Ok(Step::Block(Job { header, buf, at }))
                                }
                                _ => Err(internal("a family's head changed under the sequencer")),
                            });
                        }
                        if header.seq < next {
                            return Some(Err(Error::mismatch(
                                at.clone(),
                                "block sequence number given twice",
                                format!("{next} or more"),
                                header.seq,
                            )));
                        }
                    }
                    Some(FamItem::End { .. }) => ended += 1,
                    Some(_) => return Some(Err(internal("a parity item in a set without parity"))),
                    None => all_present = false,
                }
            }
            if !all_present {
                return None;
            }
            if ended == n {
                // Every family is at its end: check that they agree on the totals.
                let ts: Vec<(&TrailingConfig, &Location)> =
                    h.q.iter()
                        .filter_map(|q| match q.front() {
                            Some(FamItem::End { trailing, at }) => Some((trailing, at)),
                            _ => None,
                        })
                        .collect();
                let t0 = ts[0].0;
                for (t, at) in &ts {
                    if t.total_blocks != t0.total_blocks
                        || t.total_original != t0.total_original
                        || t.digest != t0.digest
                    {
                        return Some(Err(Error::corrupt(
                            (*at).clone(),
                            "trailing configs of the families disagree on the set's totals",
                        )));
                    }
                }
                if t0.total_blocks != next {
                    return Some(Err(Error::mismatch(
                        ts[0].1.clone(),
                        "blocks are missing from the media set",
                        format!("{} blocks", t0.total_blocks),
                        format!("{next} blocks (block {next} is on no family)"),
                    )));
                }
                return Some(Ok(Step::End(t0.clone(), next)));
            }
            // Every family has something at its head, and none is the block needed.
            let at = h.q.iter().find_map(|q| match q.front() {
                Some(FamItem::Block { at, .. }) | Some(FamItem::End { at, .. }) => Some(at.clone()),
                _ => None,
            });
            Some(Err(Error::corrupt(
                at.unwrap_or_else(|| set_at.clone()),
                format!("block {next} is missing: no family holds it"),
            )))
        });
        match step {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(Step::Block(job))) => {
                if !jobs.push(job) {
                    return Ok(());
                }
                next += 1;
            }
            Some(Ok(Step::End(t, count))) => {
                trailer.update(|x| *x = Some(t));
                done.finish(count);
                return Ok(());
            }
        }
    }
}

/// What the stripe sequencer knows of the families of a set with parity.
struct StripeCx<'a> {
    /// Family number of each reader's queue.
    fam_of: &'a [u16],
    /// Data families D and parity families K.
    d: usize,
    k: usize,
    report: &'a Cell<RedundancyReport>,
}

/// A set with parity: read whatever families are there, rebuild each lost block from its
/// stripe while no more of a stripe is lost than its parity covers.
#[allow(clippy::too_many_arguments)]
fn restore_parity(
    slots: Vec<Option<Opened>>,
    opts: &RestoreOptions,
    ring: &KeyRing,
    (out, out_name): (&mut dyn Write, &str),
    (set_at, parity): (&Location, u16),
    progress: &dyn ProgressSink,
    stop: &Stop,
    started: Instant,
) -> Result<RestoreSummary> {
    let position = opts.position;
    let total = slots.len();
    let k = parity as usize;
    let d = total - k;
    let mut report = RedundancyReport {
        parity_families: parity,
        ..Default::default()
    };
    let mut fams = Vec::new();
    let mut first_err = None;
    for (i, slot) in slots.into_iter().enumerate() {
        let fam = i as u16 + 1;
        let Some(dev) = slot else {
            report.missing.push(fam);
            continue;
        };
        // A family that cannot be read to its set's first block is as good as missing.
        let got = position_one(dev, position).and_then(|p| {
            let before = p
                .scan
                .as_ref()
                .map_or(position - 1, |s| s.next_position() - 1);
            start(vec![p], position, before, ring)
        });
        match got {
            Ok(mut v) => fams.extend(v.pop()),
            Err(e) if e.is_media_damage() => {
                report.lost.push((fam, e.to_string()));
                first_err.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let gone = report.missing.len() + report.lost.len();
    if gone > k || fams.is_empty() {
        let mut names: Vec<u16> = report.missing.clone();
        names.extend(report.lost.iter().map(|l| l.0));
        names.sort_unstable();
        return Err(Error::MediaSet {
            what: format!(
                "the media set has {total} families, {k} of them parity; family {} cannot be \
                 read ({}), more than the parity covers{}",
                names
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if gone == 1 { "one" } else { "several" },
                first_err.map_or(String::new(), |e| format!(": {e}"))
            ),
        });
    }
    let set_id = fams[0].parser.header().map(|h| h.set_id);
    if fams
        .iter()
        .any(|f| f.parser.header().map(|h| h.set_id) != set_id)
    {
        return Err(Error::MediaSet {
            what: format!("the families hold different backup sets at position {position}"),
        });
    }
    let keys = fams.iter().find_map(|f| f.keys.clone());
    let past_end: Vec<PastEnd> = fams
        .iter()
        .filter_map(|f| f.fam.scan.as_ref()?.past_end.clone())
        .collect();
    progress.total(set_size(&fams, position));
    let fam_of: Vec<u16> = fams.iter().map(|f| f.fam.label.family_number).collect();
    let n = fams.len();
    let mts = fams[0].leading.max_transfer;
    let buf_size = shard_len_for(payload_capacity(mts) as u32) as usize + PARITY_SHARD_HEADER_LEN;
    let threads = opts.threads.max(1);
    let count = if opts.buffer_count == 0 {
        n * 4 + 2 * threads + 2
    } else {
        opts.buffer_count.max(2 * n + 2)
    };
    let per_family = ((count.saturating_sub(2 * threads)) / n).max(1);
    let op = stop.child();
    let pool = Pool::new(count, buf_size, &op);
    let heads = Cell::new(
        Heads {
            q: (0..n).map(|_| VecDeque::new()).collect(),
        },
        &op,
    );
    let jobs: Queue<Job> = Queue::new(threads * 2, &op);
    let done: Ordered<Out> = Ordered::new(Placement::FirstFree, &op);
    let trailer: Cell<Option<TrailingConfig>> = Cell::new(None, &op);
    let rep = Cell::new(report, &op);
    let (pool, heads, jobs, done, trailer) = (&pool, &heads, &jobs, &done, &trailer);
    let scx = StripeCx {
        fam_of: &fam_of,
        d,
        k,
        report: &rep,
    };
    let outcome = std::thread::scope(|s| -> Result<(u64, u64, u64, [u8; 16])> {
        let _guard = RaiseOnPanic(&op);
        for (i, f) in fams.into_iter().enumerate() {
            let op = &op;
            spawn_part(s, op, "family reader", move || {
                run_part(op, "family reader", || {
                    family_reader_with(i, f, pool, heads, per_family, true)
                })
            });
        }
        let tx = jobs.sender();
        let (op2, scx) = (&op, &scx);
        spawn_part(s, op2, "sequencer", move || {
            run_part(op2, "sequencer", || {
                stripe_sequencer(scx, heads, &tx, pool, done, trailer)
            })
        });
        for _ in 0..threads {
            let op = &op;
            let keys = keys.as_deref();
            spawn_part(s, op, "decompression", move || {
                run_part(op, "decompression", || {
                    let mut dec = Decoder::new()?;
                    while let Some(Job { header, buf, at }) = jobs.pop() {
                        let (buf, decoded) = dec.restore(&header, buf, keys, &at)?;
                        done.put(
                            header.seq,
                            Out {
                                header,
                                buf,
                                decoded,
                            },
                        );
                    }
                    Ok(())
                })
            });
        }
        let r = write_out(done, pool, out, out_name, keys.as_deref(), progress);
        match r {
            Ok(t) => Ok(t),
            Err(e) => {
                op.fail(e);
                Ok((0, 0, 0, [0; 16]))
            }
        }
    });
    let (written, stored, blocks, digest) = op.outcome(outcome)??;
    out.flush().map_err(|e| Error::io(out_name, "write", e))?;
    check_end(trailer, set_at, blocks, written, digest)?;
    let report = rep.update(|r| r.clone());
    Ok(RestoreSummary {
        original_bytes: written,
        stored_bytes: stored,
        blocks,
        families: total as u32,
        seconds: started.elapsed().as_secs_f64(),
        past_end,
        redundancy: Some(report),
    })
}

/// Write the decoded blocks in order; returns (bytes written, stored, blocks, digest).
fn write_out(
    done: &Ordered<Out>,
    pool: &Pool,
    out: &mut dyn Write,
    out_name: &str,
    keys: Option<&SetKeys>,
    progress: &dyn ProgressSink,
) -> Result<(u64, u64, u64, [u8; 16])> {
    let mut digest = SetDigest::new(keys);
    let (mut written, mut stored, mut blocks) = (0u64, 0u64, 0u64);
    while let Some((_, o)) = done.take(0) {
        digest.add_block(o.header.original_hash);
        let ol = o.header.original_len as usize;
        let w = |e| Error::io(out_name, "write", e);
        match o.decoded {
            Decoded::At(at) => out.write_all(&o.buf[at..at + ol]).map_err(w)?,
            Decoded::RawFrame => {
                let mut v: Vec<IoSlice<'_>> = raw_frame_pieces(o.header.original_len)
                    .map(|(off, len)| IoSlice::new(&o.buf[off..off + len]))
                    .collect();
                write_all_vectored(out, &mut v).map_err(w)?;
            }
        }
        written += ol as u64;
        stored += o.header.stored_len as u64;
        blocks += 1;
        progress.done(written);
        pool.put(o.buf);
    }
    Ok((written, stored, blocks, digest.finish()))
}

/// The set's totals and digest against its trailing config.
fn check_end(
    trailer: &Cell<Option<TrailingConfig>>,
    set_at: &Location,
    blocks: u64,
    written: u64,
    digest: [u8; 16],
) -> Result<()> {
    let t = trailer
        .update(|t| t.clone())
        .ok_or_else(|| Error::Truncated {
            at: set_at.clone(),
            what: "the trailing config".into(),
        })?;
    if t.total_blocks != blocks || t.total_original != written {
        return Err(Error::mismatch(
            set_at.clone(),
            "trailing config totals disagree with the blocks read",
            format!("{} blocks, {} bytes", t.total_blocks, t.total_original),
            format!("{blocks} blocks, {written} bytes"),
        ));
    }
    if digest != t.digest {
        return Err(Error::mismatch(
            set_at.clone(),
            "end-to-end digest of the original bytes does not hold",
            hex(&t.digest),
            hex(&digest),
        ));
    }
    Ok(())
}

/// What the heads of the families give for one stripe.
enum StripeStep {
    Stripe {
        blocks: Vec<Option<(BlockHeader, Vec<u8>, Location)>>,
        parity: Vec<Option<(ParityRecord, Vec<u8>)>>,
        bad: Vec<(u64, u16)>,
        bad_parity: Vec<(u64, u16)>,
        lost: Vec<u16>,
        total: Option<u64>,
    },
    End(TrailingConfig, u64),
}

/// The sequencer of a set with parity: stripe by stripe (blocks `sD..sD+D-1` on data families
/// 1..D in turn, one parity record on each parity family), takes what each family has, rebuilds
/// what is lost, and queues the stripe's blocks in order for decoding.
fn stripe_sequencer(
    cx: &StripeCx<'_>,
    heads: &Cell<Heads>,
    jobs: &crate::engine::Sender<'_, Job>,
    pool: &Pool,
    done: &Ordered<Out>,
    trailer: &Cell<Option<TrailingConfig>>,
) -> Result<()> {
    let (d, k) = (cx.d, cx.k);
    let mut rebuilder = Rebuilder::new();
    let mut lost_seen: Vec<u16> = Vec::new();
    let mut s = 0u64;
    let mut next = 0u64;
    loop {
        let step = heads.wait_for(|h| -> Option<Result<StripeStep>> {
            // Every family must have something at its head (or be gone) before the stripe is
            // judged.
            if h.q.iter().any(|q| q.is_empty()) {
                return None;
            }
            let mut total = None;
            for q in &h.q {
                if let Some(FamItem::End { trailing, .. }) = q.front() {
                    total = Some(trailing.total_blocks);
                }
            }
            let first = s * d as u64;
            if total.is_some_and(|t| first >= t) {
                // Past the last stripe: every family must be at its end (or lost).
                let ts: Vec<&TrailingConfig> =
                    h.q.iter()
                        .filter_map(|q| match q.front() {
                            Some(FamItem::End { trailing, .. }) => Some(trailing),
                            _ => None,
                        })
                        .collect();
                let busy = h.q.iter().any(|q| {
                    matches!(
                        q.front(),
                        Some(FamItem::Block { .. } | FamItem::Parity { .. } | FamItem::Bad { .. })
                    )
                });
                let t0 = ts[0];
                if busy
                    || ts.iter().any(|t| {
                        t.total_blocks != t0.total_blocks
                            || t.total_original != t0.total_original
                            || t.digest != t0.digest
                    })
                {
                    return Some(Err(Error::corrupt(
                        Location::device(String::new()),
                        "trailing configs of the families disagree on the set's totals",
                    )));
                }
                return Some(Ok(StripeStep::End(t0.clone(), next)));
            }
            let mut blocks: Vec<Option<(BlockHeader, Vec<u8>, Location)>> =
                (0..d).map(|_| None).collect();
            let mut parity: Vec<Option<(ParityRecord, Vec<u8>)>> = (0..k).map(|_| None).collect();
            let (mut bad, mut bad_parity, mut lost) = (Vec::new(), Vec::new(), Vec::new());
            for (i, q) in h.q.iter_mut().enumerate() {
                let fam = cx.fam_of[i];
                let j = fam as usize - 1;
                let want = if j < d { first + j as u64 } else { s };
                let take = match q.front() {
                    Some(FamItem::Block { header, .. }) => header.seq == want && j < d,
                    Some(FamItem::Parity { record, .. }) => record.stripe == want && j >= d,
                    Some(FamItem::Bad { seq }) => *seq == want,
                    Some(FamItem::Lost) => {
                        lost.push(fam);
                        false
                    }
                    _ => false,
                };
                if !take {
                    continue;
                }
                match q.pop_front() {
                    Some(FamItem::Block { header, buf, at }) => blocks[j] = Some((header, buf, at)),
                    Some(FamItem::Parity { record, buf }) => parity[j - d] = Some((record, buf)),
                    Some(FamItem::Bad { seq }) if j < d => bad.push((seq, fam)),
                    Some(FamItem::Bad { seq }) => bad_parity.push((seq, fam)),
                    _ => {}
                }
            }
            Some(Ok(StripeStep::Stripe {
                blocks,
                parity,
                bad,
                bad_parity,
                lost,
                total,
            }))
        });
        let (blocks, parity, total) = match step {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(StripeStep::End(t, count))) => {
                trailer.update(|x| *x = Some(t));
                done.finish(count);
                return Ok(());
            }
            Some(Ok(StripeStep::Stripe {
                blocks,
                parity,
                bad,
                bad_parity,
                lost,
                total,
            })) => {
                cx.report.update(|r| {
                    r.damaged_blocks.extend(bad);
                    r.damaged_parity.extend(bad_parity);
                });
                for f in lost {
                    if !lost_seen.contains(&f) {
                        lost_seen.push(f);
                        cx.report.update(|r| {
                            if !r.lost.iter().any(|l| l.0 == f) {
                                r.lost.push((f, format!("unreadable from stripe {s} on")));
                            }
                        });
                    }
                }
                (blocks, parity, total)
            }
        };
        let first = s * d as u64;
        // How many blocks the stripe has: a parity record says; else the set's count.
        let members = parity
            .iter()
            .flatten()
            .map(|(r, _)| r.members.len())
            .next()
            .or_else(|| total.map(|t| (t - first).min(d as u64) as usize));
        let present = blocks.iter().filter(|b| b.is_some()).count();
        let members = match members {
            Some(m) => m,
            // No parity record and no count: the stripe is whole only if every block is here.
            None if present == d => d,
            None => {
                return Err(Error::MediaSet {
                    what: format!(
                        "stripe {s} (blocks {first} to {}): blocks are lost and no parity \
                         record of the stripe is left to rebuild them",
                        first + d as u64 - 1
                    ),
                })
            }
        };
        let lost_members = (0..members).filter(|&j| blocks[j].is_none()).count();
        let mut out: Vec<Option<Job>> = (0..members).map(|_| None).collect();
        let mut spare: Vec<Vec<u8>> = Vec::new();
        if lost_members > 0 {
            let at = Location::device(String::new()).block(first);
            let found = StripeFound {
                data_count: d,
                blocks: (0..d)
                    .map(|j| {
                        blocks[j]
                            .as_ref()
                            .map(|(h, b, _)| &b[..h.stored_len as usize])
                    })
                    .collect(),
                parity: parity
                    .iter()
                    .map(|p| {
                        p.as_ref().map(|(r, b)| {
                            (
                                r,
                                &b[PARITY_SHARD_HEADER_LEN
                                    ..PARITY_SHARD_HEADER_LEN + r.shard_len as usize],
                            )
                        })
                    })
                    .collect(),
            };
            let rebuilt = rebuild_stripe(&mut rebuilder, &found, &at).map_err(|e| {
                let mut gone: Vec<u16> = cx.report.update(|r| {
                    let mut v = r.missing.clone();
                    v.extend(r.lost.iter().map(|l| l.0));
                    v
                });
                gone.sort_unstable();
                Error::MediaSet {
                    what: format!(
                        "stripe {s}: {lost_members} blocks lost, more than the parity left \
                         covers (families missing or lost: {}): {e}",
                        gone.iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            })?;
            cx.report
                .update(|r| r.rebuilt_blocks += rebuilt.len() as u64);
            let mut bufs: Vec<Vec<u8>> = parity.into_iter().flatten().map(|(_, b)| b).collect();
            for rb in rebuilt {
                let j = (rb.header.seq - first) as usize;
                let mut buf = bufs
                    .pop()
                    .ok_or_else(|| internal("no buffer for a rebuilt block"))?;
                buf.clear();
                buf.extend_from_slice(&rb.payload);
                let at = Location::device(String::new()).block(rb.header.seq);
                out[j] = Some(Job {
                    header: rb.header,
                    buf,
                    at,
                });
            }
            spare = bufs;
        } else {
            spare.extend(parity.into_iter().flatten().map(|(_, b)| b));
        }
        for b in spare {
            pool.put(b);
        }
        for (j, b) in blocks.into_iter().enumerate() {
            if let Some((header, buf, at)) = b {
                if j < members {
                    out[j] = Some(Job { header, buf, at });
                } else {
                    pool.put(buf);
                }
            }
        }
        for job in out.into_iter().flatten() {
            if !jobs.push(job) {
                return Ok(());
            }
            next += 1;
        }
        s += 1;
    }
}
