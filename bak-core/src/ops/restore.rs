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
use crate::codec::seal::{Cipher, SetKeys};
use crate::codec::{Decoded, Decoder, SetDigest};
use crate::device::write_all_vectored;
use crate::engine::{
    run_part, spawn_part, Cell, Ordered, Placement, Pool, Queue, RaiseOnPanic, Stop,
};
use crate::error::{Error, Location, PastEnd, Result};
use crate::media::mirror::{CopyReading, FamilyCopies};
use crate::media::open::{order_families, Opened};
use crate::media::parser::{Event, SetParser};
use crate::media::position::{position_families, Positioned};
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
    /// What was found of the copies of mirrored families: copies not given, damage read
    /// from another copy instead, copies cut short (docs/FORMAT.md, "Mirrors").
    pub mirror_notes: Vec<crate::report::MirrorNote>,
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
    let (devs, copies) = order_families(devs, CopyReading::Heal)?;
    let names: Vec<String> = devs.iter().map(|d| d.name().to_string()).collect();
    let set_at = Location::device(set_name(
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .set(position);
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
        mirror_notes: notes_of(&copies),
    })
}

/// What the copies of every family showed.
fn notes_of(copies: &[FamilyCopies]) -> Vec<crate::report::MirrorNote> {
    copies.iter().flat_map(FamilyCopies::notes).collect()
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
        let ev = parser.next(&mut fam.reader)?;
        first_problem(&mut parser)?;
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
                fam.reader.read_exact(&mut buf[..stored], "block payload")?;
                if !push(FamItem::Block { header: h, buf, at }) {
                    return Ok(());
                }
            }
            Some(Event::Trailing(t)) => {
                if let Some(k) = &keys {
                    check_trailing_mac(k, &t, parser.body(), &parser.set_at())?;
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
                None => None,
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
