//! VERIFYONLY for bak media: every record's and block's CRC, the record sequence of each set on
//! each family (through the set parser), the block sequence across families (no gap, no
//! duplicate), the MBC and trailing config against what was read, and (unless `fast`) the
//! decoded bytes against their hashes and the end-to-end digest. Every problem is collected,
//! not only the first. What follows the end of the media (another media concatenated onto
//! them, other bytes) is a problem outside any set.
//!
//! Each family is read sequentially in its own thread. On a random-read device each set is
//! reached through the end-of-set chain, so damage inside one set does not hide the sets after
//! it; a device that maps cheaply is checked in place, without a copy.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::bytes::*;
use crate::codec::keys::{KeyRing, Keys, Opening};
use crate::codec::seal::{Cipher, SetKeys};
use crate::codec::{check_stored, Decoder, SetDigest};
use crate::device::Mapping;
use crate::engine::{run_part, spawn_part, Pool, Queue, RaiseOnPanic, Sender, Stop};
use crate::error::{Beyond, Error, Location, PastEnd, Result};
use crate::media::family::scan_family;
use crate::media::mirror::CopyReading;
use crate::media::open::{order_families, Opened};
use crate::media::parser::{Event, SetParser, INCOMPLETE, REST_OF_SET};
use crate::media::reader::RecordReader;
use crate::ops::restore::set_name;
use crate::ops::ProgressSink;
use crate::report::{Problem, ProblemKind, SetReport, Verdict};

/// What to verify, and how.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only this set position; all sets when `None`.
    pub position: Option<u32>,
    /// Check stored bytes only (no decoding, no digest).
    pub fast: bool,
    /// Stop at the first problem.
    pub stop_on_error: bool,
    /// Decoding threads (0: the number of cores).
    pub threads: usize,
    /// Keys for encrypted sets (a full verify of an encrypted set needs one; `fast` none).
    pub keys: Keys,
}

/// A checked block payload on its way to the decoders: in place in a family's mapping, or
/// copied into a pooled buffer (a family read from a stream).
enum Payload {
    Mapped(Arc<dyn Mapping>, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Mapped(m, r) => m.bytes().get(r.clone()).unwrap_or(&[]),
            Payload::Owned(v) => v,
        }
    }
}

struct DecodeJob {
    position: u32,
    family: u16,
    keys: Option<Arc<SetKeys>>,
    header: BlockHeader,
    buf: Payload,
    at: Location,
}

struct DecodeResult {
    position: u32,
    family: u16,
    problem: Option<Problem>,
    original: u64,
}

/// Decoding of checked payloads, shared by the family threads: every core decodes whatever
/// family the blocks come from, so a one-device set verifies as fast as a striped one.
struct Decoders {
    jobs: Queue<DecodeJob>,
    pool: Pool,
    results: Mutex<Vec<DecodeResult>>,
}

impl Decoders {
    fn work(&self) -> Result<()> {
        let mut dec = Decoder::new()?;
        while let Some(j) = self.jobs.pop() {
            let h = &j.header;
            let bytes = j.buf.bytes();
            let payload = bytes.get(..h.stored_len as usize).unwrap_or(bytes);
            let problem = dec
                .check_original(h, payload, j.keys.as_deref(), &j.at)
                .err()
                .map(|e| Problem::from_error(&j.at, &e));
            let original = if problem.is_none() {
                h.original_len as u64
            } else {
                0
            };
            self.results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(DecodeResult {
                    position: j.position,
                    family: j.family,
                    problem,
                    original,
                });
            if let Payload::Owned(b) = j.buf {
                self.pool.put(b);
            }
        }
        Ok(())
    }
}

/// One set as read on one family.
#[derive(Default)]
struct FamSet {
    set_id: Option<Guid>,
    blocks: Vec<(u64, u64)>, // (seq, original hash)
    original: u64,
    stored: u64,
    trailing: Option<TrailingConfig>,
    complete: bool,
    problems: Vec<Problem>,
    bytes: u64,
    original_checked: u64,
    /// An encrypted set's keys, when a key given opened it.
    keys: Option<Arc<SetKeys>>,
}

struct FamResult {
    family: u16,
    name: String,
    sets: BTreeMap<u32, FamSet>,
    sets_seen: u32,
    media_problems: Vec<Problem>,
    past_end: Option<PastEnd>,
}

/// Verify bak media: a report per backup set (and one at position 0 for damage outside any
/// set). `Err` only for I/O errors and devices that are not one whole media set. Raising
/// `stop` ends it with [`Error::Interrupted`].
///
/// `progress` counts the bytes of media read, summed over the families: records and stored
/// payloads, what a family's reader passes over. Its total is known when every family is a
/// file (a mapped random-read device): from the first set (or the set asked for) to the end
/// of the file (or of that set). Damage that makes a family skip to its next set leaves the
/// count short of the total.
pub fn verify(
    devs: Vec<Opened>,
    opts: &VerifyOptions,
    progress: &dyn ProgressSink,
    stop: &Stop,
) -> Result<Vec<SetReport>> {
    let started = Instant::now();
    let threads = if opts.threads == 0 {
        crate::limits::default_threads()
    } else {
        crate::limits::check_count("threads", opts.threads, 1, crate::limits::MAX_THREADS)?;
        opts.threads
    };
    let (devs, copies) = order_families(devs, CopyReading::CheckAll)?;
    let n = devs.len();
    // Each family's tail and map before any family is read, so the total is known first.
    let tails = devs.iter().map(Tail::of).collect::<Result<Vec<Tail>>>()?;
    progress.total(tails.iter().map(|t| t.span(opts.position)).sum());
    let media_set = set_name(&devs.iter().map(|d| d.name()).collect::<Vec<_>>());
    let op = stop.child();
    let done = AtomicU64::new(0);
    let decoders = Decoders {
        jobs: Queue::new(threads * 2, &op),
        pool: Pool::new(threads * 3 + n, payload_capacity(MAX_TRANSFER), &op),
        results: Mutex::new(Vec::new()),
    };
    let dec = (!opts.fast).then_some(&decoders);
    let ring = KeyRing::new(opts.keys.clone());
    let ring = &ring;
    let results: Vec<Option<FamResult>> = std::thread::scope(|s| {
        let _guard = RaiseOnPanic(&op);
        // Every family's sender exists before any thread starts: the queue closes when the
        // last one is dropped, and a family that ends early must not close it on the others.
        let txs: Vec<Tx<'_>> = devs
            .iter()
            .map(|_| dec.map(|d| (d, d.jobs.sender())))
            .collect();
        if let Some(d) = dec {
            for _ in 0..threads {
                let op = &op;
                spawn_part(s, op, "decompression", move || {
                    run_part(op, "decompression", || d.work())
                });
            }
        }
        let hs: Vec<_> = devs
            .into_iter()
            .zip(tails)
            .zip(txs)
            .map(|((d, tail), tx)| {
                let done = &done;
                let op = &op;
                spawn_part(s, op, "family verifier", move || {
                    let mut out = None;
                    run_part(op, "family verifier", || {
                        out = Some(verify_family(d, tail, opts, tx, ring, op, &|k| {
                            progress.done(done.fetch_add(k, Ordering::Relaxed) + k)
                        })?);
                        Ok(())
                    });
                    out
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.and_then(|h| h.join().ok().flatten()))
            .collect()
    });
    op.outcome(())?;
    let mut fams: Vec<FamResult> = results.into_iter().flatten().collect();
    for r in decoders
        .results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        if let Some(s) = fams
            .iter_mut()
            .find(|f| f.family == r.family)
            .and_then(|f| f.sets.get_mut(&r.position))
        {
            s.original_checked += r.original;
            s.problems.extend(r.problem);
        }
    }
    let mut positions: Vec<u32> = fams.iter().flat_map(|f| f.sets.keys().copied()).collect();
    positions.sort_unstable();
    positions.dedup();
    if let Some(p) = opts.position {
        if !positions.contains(&p) {
            let count = fams.iter().map(|f| f.sets_seen).max().unwrap_or(0);
            return Err(match fams.iter().find_map(|f| f.past_end.clone()) {
                Some(past) => Error::NoSuchSetPastEnd {
                    position: p,
                    count,
                    past: Box::new(past),
                },
                None => Error::NoSuchSet { position: p, count },
            });
        }
        positions = vec![p];
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut reports = Vec::new();
    let media_problems: Vec<Problem> = fams.iter().flat_map(|f| f.media_problems.clone()).collect();
    if !media_problems.is_empty() {
        reports.push(SetReport {
            position: 0,
            verdict: Verdict::Damaged,
            problems: media_problems,
            bytes_checked: 0,
            original_bytes_checked: 0,
            seconds,
            ..Default::default()
        });
    }
    // Mirrors: a set whose every byte was read from some copy is degraded while a copy of a
    // family is missing, damaged or cut short.
    let notes: Vec<_> = copies.iter().flat_map(|c| c.notes()).collect();
    let fewest = copies.iter().map(|c| c.healthy()).min().unwrap_or(1);
    let whole = copies
        .iter()
        .all(|c| c.healthy() >= c.mirror_count as usize);
    for pos in positions {
        let mut r = judge(pos, &fams, opts, &media_set, seconds);
        if r.verdict == Verdict::Valid {
            r.redundancy_left = fewest.saturating_sub(1) as u32;
            if !whole {
                r.verdict = Verdict::Degraded;
            }
        }
        r.mirror_notes = notes.clone();
        reports.push(r);
    }
    if opts.stop_on_error {
        // STOP_ON_ERROR: the report ends at the first problem, in media order (families stop
        // reading at their own first problem, so later sets would only show that).
        if let Some(i) = reports.iter().position(|r| !r.problems.is_empty()) {
            reports.truncate(i + 1);
            reports[i].problems.truncate(1);
        }
    }
    Ok(reports)
}

/// The report on set `pos`: what each family saw of it, put together (every family holds the
/// set, the blocks 0..total lie on them once each, the trailing configs agree, and unless
/// `--fast` the end-to-end digest holds).
fn judge(
    pos: u32,
    fams: &[FamResult],
    opts: &VerifyOptions,
    media_set: &str,
    seconds: f64,
) -> SetReport {
    let mut problems = Vec::new();
    let mut complete = true;
    let (mut bytes, mut orig_checked) = (0, 0);
    let ids: Vec<Option<Guid>> = fams
        .iter()
        .map(|f| f.sets.get(&pos).and_then(|s| s.set_id))
        .collect();
    let id0 = ids.iter().flatten().next().copied();
    for f in fams {
        let dev = f.name.clone();
        match f.sets.get(&pos) {
            // A family that ends before the set was never written with it: the set is
            // incomplete. One that holds later sets but not this one is damaged.
            None if f.sets_seen < pos => {
                complete = false;
                problems.push(Problem {
                    kind: ProblemKind::Incomplete,
                    device: dev,
                    family: Some(f.family as u32),
                    position: Some(pos),
                    what: format!(
                        "the backup set is not on this family, which ends after set {}",
                        f.sets_seen
                    ),
                    ..Default::default()
                });
            }
            None => {
                complete = false;
                problems.push(Problem {
                    kind: ProblemKind::Missing,
                    device: dev,
                    family: Some(f.family as u32),
                    position: Some(pos),
                    what: "the backup set is missing on this family".into(),
                    ..Default::default()
                });
            }
            Some(s) => {
                complete &= s.complete;
                problems.extend(s.problems.iter().cloned());
                bytes += s.bytes;
                orig_checked += s.original_checked;
                if s.set_id.is_some() && s.set_id != id0 {
                    problems.push(Problem {
                        kind: ProblemKind::Foreign,
                        device: dev,
                        family: Some(f.family as u32),
                        position: Some(pos),
                        what: "another backup set is at this position on this family".into(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    let sets: Vec<&FamSet> = fams.iter().filter_map(|f| f.sets.get(&pos)).collect();
    let trailing = sets.iter().find_map(|s| s.trailing.clone());
    if let Some(t) = &trailing {
        for (f, s) in fams.iter().zip(fams.iter().map(|f| f.sets.get(&pos))) {
            if let Some(tt) = s.and_then(|s| s.trailing.as_ref()) {
                if tt.total_blocks != t.total_blocks
                    || tt.total_original != t.total_original
                    || tt.digest != t.digest
                {
                    problems.push(Problem {
                        device: f.name.clone(),
                        family: Some(f.family as u32),
                        position: Some(pos),
                        what: "trailing configs of the families disagree on the set's totals"
                            .into(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    // The block sequence across families: 0..total, each exactly once.
    let mut all: Vec<(u64, u64)> = sets.iter().flat_map(|s| s.blocks.iter().copied()).collect();
    all.sort_unstable();
    let mut expect = 0u64;
    let mut seq_problems = Vec::new();
    if complete {
        for w in all.windows(2) {
            if w[0].0 == w[1].0 {
                seq_problems.push(format!("block {} is on two families", w[0].0));
            }
        }
        for &(seq, _) in &all {
            if seq > expect {
                seq_problems.push(format!("blocks {expect} to {} are on no family", seq - 1));
            }
            expect = expect.max(seq + 1);
        }
        if let Some(t) = &trailing {
            if expect < t.total_blocks {
                seq_problems.push(format!(
                    "blocks {expect} to {} are on no family",
                    t.total_blocks - 1
                ));
            }
            let orig: u64 = sets.iter().map(|s| s.original).sum();
            if orig != t.total_original || all.len() as u64 != t.total_blocks {
                seq_problems.push(format!(
                    "the families hold {} blocks of {} bytes; the trailing config says {} blocks of {} bytes",
                    all.len(),
                    orig,
                    t.total_blocks,
                    t.total_original
                ));
            }
            let keys = sets.iter().find_map(|s| s.keys.clone());
            if !opts.fast && problems.is_empty() && seq_problems.is_empty() {
                let d = SetDigest::of(keys.as_deref(), all.iter().map(|x| x.1));
                if d != t.digest {
                    problems.push(Problem {
                        device: media_set.to_string(),
                        position: Some(pos),
                        what: "end-to-end digest of the original bytes does not hold".into(),
                        expected: Some(hex(&t.digest)),
                        found: Some(hex(&d)),
                        ..Default::default()
                    });
                }
            }
        }
    }
    problems.extend(seq_problems.into_iter().map(|what| Problem {
        kind: ProblemKind::Missing,
        device: media_set.to_string(),
        position: Some(pos),
        what,
        ..Default::default()
    }));
    if opts.stop_on_error {
        problems.truncate(1);
    }
    let verdict = Verdict::of(&problems, complete);
    SetReport {
        position: pos,
        verdict,
        recoverable: verdict == Verdict::Valid,
        problems,
        bytes_checked: bytes,
        original_bytes_checked: orig_checked,
        seconds,
        ..Default::default()
    }
}

type Tx<'a> = Option<(&'a Decoders, Sender<'a, DecodeJob>)>;

/// What is known of a family before it is read: the sets its tail names (random-read
/// devices), and its bytes in place (files).
struct Tail {
    /// (position, set header offset, previous end-of-set, end of the set's end-of-set record)
    known: Vec<(u32, u64, u64, u64)>,
    map: Option<Arc<dyn Mapping>>,
    /// What the scan found past the end of the media (a second media, other bytes).
    past_end: Option<PastEnd>,
}

impl Tail {
    fn of(d: &Opened) -> Result<Tail> {
        let scan = d.random().and_then(|f| scan_family(f, d.name()).ok());
        let known = scan
            .as_ref()
            .map(|scan| {
                scan.sets
                    .iter()
                    .map(|s| {
                        (
                            s.header.position,
                            s.eset.set_header_offset,
                            s.eset.prev_eset_offset,
                            s.eset.self_offset + ESET_FRAME_LEN as u64,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A file is read through a memory map: no read(2) per block. Its shared lock keeps bak
        // writers (which take an exclusive one) from truncating the file under the map.
        let map = if d.random().is_some() { d.map()? } else { None };
        Ok(Tail {
            known,
            map,
            past_end: scan.and_then(|s| s.past_end),
        })
    }

    /// The bytes `verify_family` will read of a mapped family: from the wanted set when the
    /// tail knows it, else from the first set, to the end of that set, else of the file.
    /// `None` for a stream.
    fn span(&self, position: Option<u32>) -> Option<u64> {
        let len = self.map.as_ref()?.bytes().len() as u64;
        let len = self.past_end.as_ref().map_or(len, |p| p.offset.min(len));
        Some(
            match position.and_then(|p| self.known.iter().find(|k| k.0 == p)) {
                Some(&(_, start, _, end)) => end.min(len).saturating_sub(start),
                None => len.saturating_sub(FIRST_SET_OFFSET),
            },
        )
    }
}

fn verify_family(
    d: Opened,
    tail: Tail,
    opts: &VerifyOptions,
    dec: Tx<'_>,
    ring: &KeyRing,
    stop: &Stop,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FamResult> {
    let label = d.label.clone().ok_or_else(|| Error::NotMedia {
        device: d.name().to_string(),
        found: "not bak media".into(),
    })?;
    let fam = label.family_number;
    let name = d.name().to_string();
    let at = Location::device(name.clone()).family(fam as u32);
    let mut media_problems = Vec::new();
    let mut past_end = None;
    check_head(&d.head, &label, &at, &mut media_problems);
    let mut sets = BTreeMap::new();
    // The highest position met, whichever set was asked for: "the media hold N sets".
    let mut sets_seen = 0u32;
    let Tail {
        known,
        map,
        past_end: scan_past,
    } = tail;
    // On a file the scan says where the media end, and nothing past there is read as theirs.
    let media_end = scan_past.as_ref().map_or(u64::MAX, |p| p.offset);
    let file = map.is_some();
    let open_at = |off: u64| -> Result<RecordReader<Box<dyn Source>>> {
        let Some(m) = &map else {
            return Err(Error::Internal {
                what: "a stream was to be read at an offset".into(),
                detail: None,
            });
        };
        let end = media_end.min(m.bytes().len() as u64);
        let reader = MapReader {
            map: Arc::clone(m),
            pos: off.min(end) as usize,
            end: end as usize,
        };
        Ok(RecordReader::new(
            Box::new(reader) as Box<dyn Source>,
            off,
            at.clone(),
        ))
    };
    // Start where the wanted set is known to be, else at the first set.
    let (mut pos, mut prev, mut r) =
        match opts.position.and_then(|p| known.iter().find(|k| k.0 == p)) {
            Some(&(p, off, prev, _)) => (p, prev, open_at(off)?),
            None if file => (1, 0, open_at(FIRST_SET_OFFSET)?),
            None => {
                let r = d.records_from(FIRST_SET_OFFSET, at.clone())?;
                let off = r.offset;
                let rest: Box<dyn Source> = Box::new(Plain(r.into_inner()));
                (1, 0, RecordReader::new(rest, off, at.clone()))
            }
        };
    let mut payload = Vec::new();
    loop {
        if opts.position.is_some_and(|p| p < pos) || stop.is_raised() {
            break;
        }
        let next_known = known.iter().find(|k| k.0 > pos).copied();
        let v = SetVerifier {
            label: &label,
            position: pos,
            prev_eset: prev,
            opts,
            dec: &dec,
            ring,
            fam_at: &at,
            progress,
            stream: !file,
        };
        let (s, eset, past) = v.run(&mut r, &mut payload)?;
        if let Some(past) = past {
            // A stream's media end here: what follows is measured to the end of the stream; a
            // set it cut short is incomplete.
            past_end = Some(r.measure(past)?);
            if s.set_id.is_some() && opts.position.is_none_or(|p| p == pos) {
                sets.insert(pos, s);
            }
            break;
        }
        if s.set_id.is_none() && s.problems.is_empty() {
            break; // the clean end of the family
        }
        if s.set_id.is_none() && next_known.is_none() {
            media_problems.extend(s.problems.into_iter().map(|mut p| {
                p.what = format!("bytes after the last backup set: {}", p.what);
                p.position = None;
                p
            }));
            break;
        }
        let stop = opts.stop_on_error && !s.problems.is_empty();
        sets_seen = sets_seen.max(pos);
        if opts.position.is_none_or(|p| p == pos) {
            sets.insert(pos, s);
        }
        if stop {
            break;
        }
        match (eset, next_known) {
            (Some(e), _) => {
                prev = e;
                pos += 1;
                r.set_location(at.clone());
                if let Some(k) = known.iter().find(|k| k.0 == pos) {
                    if k.1 != e + ESET_FRAME_LEN as u64 {
                        // The chain and the stream disagree; follow the chain.
                        r = open_at(k.1)?;
                    }
                }
            }
            // The set's framing was lost: resume at the next set the tail knows of.
            (None, Some((p, off, pv, _))) if file => {
                pos = p;
                prev = pv;
                r = open_at(off)?;
            }
            (None, _) => break,
        }
    }
    // What follows the end of the media is one problem outside any set.
    let past_end = past_end.or(scan_past);
    if let Some(p) = &past_end {
        media_problems.push(Problem::from_error(
            &at,
            &Error::PastEnd(Box::new(p.clone())),
        ));
    }
    Ok(FamResult {
        family: fam,
        name,
        sets,
        sets_seen,
        media_problems,
        past_end,
    })
}

/// The label's padding and the set map slots.
fn check_head(head: &[u8], label: &MediaHeader, at: &Location, problems: &mut Vec<Problem>) {
    let body_end = RECORD_PREFIX_LEN + label.encode_body().len();
    if head.len() < FIRST_SET_OFFSET as usize {
        problems.push(Problem::from_error(
            at,
            &Error::Truncated {
                at: at.clone().at(head.len() as u64),
                what: "set map".into(),
            },
        ));
        return;
    }
    if head[body_end..MEDIA_HEADER_SPAN as usize]
        .iter()
        .any(|&b| b != 0)
    {
        problems.push(Problem {
            device: at.device.clone(),
            family: at.family,
            offset: Some(body_end as u64),
            what: "media header padding is not zero".into(),
            ..Default::default()
        });
    }
    let map = &head[SET_MAP_OFFSET as usize..FIRST_SET_OFFSET as usize];
    let mut fh = [0u8; FRAME_HEADER_LEN];
    fh.copy_from_slice(&map[..FRAME_HEADER_LEN]);
    if parse_frame_header(&fh) != Some(SET_MAP_SPAN as u32 - FRAME_HEADER_LEN as u32) {
        problems.push(Problem {
            device: at.device.clone(),
            family: at.family,
            offset: Some(SET_MAP_OFFSET),
            what: "set map frame header is damaged".into(),
            ..Default::default()
        });
    }
    for (name, off) in [("A", FRAME_HEADER_LEN), ("B", SET_MAP_SLOT_B as usize)] {
        let slot_at = at.clone().at(SET_MAP_OFFSET + off as u64);
        let r = parse_frame(&map[off..], RecordType::SetMap, &slot_at).and_then(|(h, b)| {
            SetMapSlot::parse_body(b, &slot_at)
                .map(|s| (s, RECORD_PREFIX_LEN + h.body_len as usize))
        });
        match r {
            Ok((s, len)) => {
                let end = if name == "A" {
                    SET_MAP_SLOT_B as usize
                } else {
                    SET_MAP_SPAN as usize
                };
                if s.media_set_id != label.media_set_id {
                    problems.push(Problem {
                        device: at.device.clone(),
                        family: at.family,
                        offset: Some(SET_MAP_OFFSET + off as u64),
                        what: format!("set map slot {name} names another media set"),
                        ..Default::default()
                    });
                }
                if map[off + len..end].iter().any(|&b| b != 0) {
                    problems.push(Problem {
                        device: at.device.clone(),
                        family: at.family,
                        offset: Some(SET_MAP_OFFSET + (off + len) as u64),
                        what: format!("set map padding after slot {name} is not zero"),
                        ..Default::default()
                    });
                }
            }
            Err(e) => {
                let mut p = Problem::from_error(&slot_at, &e);
                p.what = format!("set map slot {name}: {}", p.what);
                problems.push(p);
            }
        }
    }
}

/// Verifies one set on one family from its set header.
struct SetVerifier<'a> {
    label: &'a MediaHeader,
    position: u32,
    prev_eset: u64,
    opts: &'a VerifyOptions,
    dec: &'a Tx<'a>,
    ring: &'a KeyRing,
    fam_at: &'a Location,
    progress: &'a (dyn Fn(u64) + Sync),
    /// True on a stream, where the media end wherever the parser finds bytes that are not
    /// theirs. A file is read only to where its scan found the media to end, so what the
    /// parser takes for such bytes before there is damage.
    stream: bool,
}

impl SetVerifier<'_> {
    /// What was seen; the offset of the set's end-of-set record when its framing held to the
    /// end; and what follows the end of the media, when the media end in or before this set.
    /// `Err` when the set asked for is encrypted, the verify is a full one, and no key given
    /// opens it: not a verdict.
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        r: &mut RecordReader<Box<dyn Source>>,
        payload: &mut Vec<u8>,
    ) -> Result<(FamSet, Option<u64>, Option<PastEnd>)> {
        let mut past = None;
        let mut s = FamSet::default();
        let mut leading: Option<LeadingConfig> = None;
        let mut records = Vec::new();
        // Encrypted, and no key to open the blocks with: their stored bytes are checked only.
        let mut sealed_shut = false;
        let mut p = SetParser::new(
            self.label,
            self.fam_at.clone(),
            Some(self.position),
            Some(self.prev_eset),
        );
        let set_at = p.set_at();
        let stop_on_error = self.opts.stop_on_error;
        let end = loop {
            let off = r.offset;
            let was_started = p.started();
            let ev = p.next(r);
            // BytesChecked counts the set's records after its header, as format-1.0 tools did.
            if was_started {
                s.bytes += r.offset - off;
            }
            (self.progress)(r.offset - off);
            let soft = !p.problems.is_empty();
            s.problems.extend(
                p.problems
                    .drain(..)
                    .map(|e| Problem::from_error(&set_at, &e)),
            );
            if soft && stop_on_error {
                break None;
            }
            let ev = match ev {
                Ok(Some(ev)) => ev,
                Ok(None) => break None,
                Err(Error::PastEnd(pe)) if self.stream => {
                    if p.started() {
                        s.problems.push(self.cut_short(&p, &pe));
                    }
                    past = Some(*pe);
                    break None;
                }
                Err(Error::PastEnd(pe)) => {
                    let e = pe.into_damage();
                    s.problems.push(self.lost(&p, &set_at.clone().at(off), &e));
                    break None;
                }
                Err(e) => {
                    s.problems.push(self.lost(&p, &set_at.clone().at(off), &e));
                    break None;
                }
            };
            match ev {
                Event::Header(h) => s.set_id = Some(h.set_id),
                Event::Leading(l) => {
                    sealed_shut = l.encryption != 0;
                    leading = Some(l);
                    if let Some(e) = self.open(&p, leading.as_ref(), &records, &mut s)? {
                        sealed_shut = e;
                    }
                }
                Event::Key(k) => {
                    records.push(k);
                    if let Some(e) = self.open(&p, leading.as_ref(), &records, &mut s)? {
                        sealed_shut = e;
                    }
                }
                Event::Block(h, bat) => match self.payload(r, &h, &bat, payload, &s, sealed_shut) {
                    Ok(None) => s.bytes += h.stored_len as u64,
                    Ok(Some(problem)) => {
                        s.bytes += h.stored_len as u64;
                        s.problems.push(problem);
                        if stop_on_error {
                            break None;
                        }
                    }
                    Err(e) => {
                        s.problems.push(self.lost(&p, &bat, &e));
                        break None;
                    }
                },
                Event::Trailing(t) => {
                    if let Some(k) = &s.keys {
                        if let Err(e) = crate::ops::restore::check_trailing_mac(
                            k,
                            &t,
                            p.body(),
                            &set_at.clone().at(off),
                        ) {
                            s.problems.push(Problem::from_error(&set_at, &e));
                        }
                    }
                    s.trailing = Some(t)
                }
                Event::End(_) => {
                    s.complete = s.trailing.is_some();
                    break Some(off);
                }
                Event::Mbc => {}
            }
        };
        s.blocks = p.blocks().collect();
        (s.original, s.stored) = p.totals();
        Ok((s, end, past))
    }

    /// Once an encrypted set's key records are all read, open it with the keys given.
    /// `Some(shut)`: whether its blocks stay shut (no key, or key records that do not hold);
    /// `None` while records are still to come, or for a set that is not encrypted.
    fn open(
        &self,
        p: &SetParser,
        leading: Option<&LeadingConfig>,
        records: &[KeyRecord],
        s: &mut FamSet,
    ) -> Result<Option<bool>> {
        let Some(l) = leading.filter(|l| l.key_records as usize == records.len()) else {
            return Ok(None);
        };
        let Some(cipher) = Cipher::from_id(l.encryption) else {
            return Ok(None);
        };
        if self.opts.fast {
            return Ok(Some(true));
        }
        let at = p.set_at();
        match self
            .ring
            .open(cipher, &l.set_id, records, p.leading_bodies(), &at)
        {
            Ok(Opening::Opened(k)) => {
                s.keys = Some(k);
                Ok(Some(false))
            }
            // A set not asked for is passed over without its key.
            Ok(Opening::NoKey(e)) if self.opts.position.is_none_or(|x| x == self.position) => {
                Err(e)
            }
            Ok(Opening::NoKey(_)) => Ok(Some(true)),
            Err(e) => {
                s.problems.push(Problem::from_error(&at, &e));
                Ok(Some(true))
            }
        }
    }

    /// The problem of a set that the end of the media cut short: it is incomplete.
    fn cut_short(&self, p: &SetParser, past: &PastEnd) -> Problem {
        let what = match past.beyond {
            Beyond::Media { .. } => "another bak media begins",
            Beyond::Bytes { .. } => "bytes that are not bak records begin",
        };
        Problem {
            kind: ProblemKind::Incomplete,
            what: format!("{INCOMPLETE}: {what} here"),
            ..Problem::from_error(
                &p.set_at(),
                &Error::Truncated {
                    at: past.location(),
                    what: REST_OF_SET.into(),
                },
            )
        }
    }

    /// The problem that ended a set's framing: an end of the media inside the set makes the
    /// set incomplete, anything else damaged.
    fn lost(&self, p: &SetParser, at: &Location, e: &Error) -> Problem {
        let mut prob = Problem::from_error(at, e);
        if let (true, Error::Truncated { what, .. }) = (p.started(), e) {
            prob.kind = ProblemKind::Incomplete;
            prob.what = if what == REST_OF_SET {
                INCOMPLETE.into()
            } else {
                format!("{INCOMPLETE}: {}", prob.what)
            };
        }
        prob
    }

    /// Take a block's payload and check its stored bytes; checked payloads go to the shared
    /// decoders. `Err` when the payload cannot be read (the framing is lost); a problem with
    /// its bytes is the `Ok(Some)`.
    fn payload(
        &self,
        r: &mut RecordReader<Box<dyn Source>>,
        h: &BlockHeader,
        bat: &Location,
        payload: &mut Vec<u8>,
        set: &FamSet,
        sealed_shut: bool,
    ) -> Result<Option<Problem>> {
        let stored = h.stored_len as usize;
        // From a map the payload is checked (and decoded) where it lies; from a stream it is
        // read into a buffer.
        let mapped = r.get_mut().take_mapped(stored);
        match &mapped {
            Some(_) => r.advanced(stored as u64),
            None => {
                if payload.len() < stored {
                    payload.resize(payload.capacity().max(stored), 0);
                }
                r.read_exact(&mut payload[..stored], "block payload")?;
            }
        }
        (self.progress)(stored as u64);
        let bytes: &[u8] = match &mapped {
            Some((m, range)) => m.bytes().get(range.clone()).unwrap_or(&[]),
            None => &payload[..stored],
        };
        let sealed = sealed_shut || set.keys.is_some();
        if let Err(e) = check_stored(h, bytes, sealed, bat) {
            return Ok(Some(Problem::from_error(bat, &e)));
        }
        if sealed_shut {
            return Ok(None);
        }
        // Checked stored bytes go to the shared decoders: a range of the map, or the buffer
        // swapped for a free one from their pool (no copy either way; the queue and the pool
        // bound what is in flight).
        if let Some((d, tx)) = self.dec {
            let buf = match mapped {
                Some((m, range)) => Some(Payload::Mapped(m, range)),
                None => d.pool.get().map(|mut fresh| {
                    if fresh.len() < payload.len() {
                        fresh.resize(fresh.capacity().max(payload.len()), 0);
                    }
                    Payload::Owned(std::mem::replace(payload, fresh))
                }),
            };
            if let Some(buf) = buf {
                tx.push(DecodeJob {
                    position: self.position,
                    family: self.label.family_number,
                    keys: set.keys.clone(),
                    header: *h,
                    buf,
                    at: bat.clone(),
                });
            }
        }
        Ok(None)
    }
}

/// What a family is verified from: any `Read`, and for a mapped device the bytes in place.
trait Source: Read + Send {
    /// The next `n` bytes in place, consumed; `None` (nothing consumed) when the source has no
    /// map or fewer than `n` bytes remain.
    fn take_mapped(&mut self, _n: usize) -> Option<(Arc<dyn Mapping>, std::ops::Range<usize>)> {
        None
    }
}

/// A stream, read front to back.
struct Plain(Box<dyn Read + Send>);

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Source for Plain {}

/// `Read` over a shared mapping, from a position to `end` (where the media end).
struct MapReader {
    map: Arc<dyn Mapping>,
    pos: usize,
    end: usize,
}

impl Source for MapReader {
    fn take_mapped(&mut self, n: usize) -> Option<(Arc<dyn Mapping>, std::ops::Range<usize>)> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.end)?;
        let r = self.pos..end;
        self.pos = end;
        Some((Arc::clone(&self.map), r))
    }
}

impl Read for MapReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.map.bytes().get(self.pos..self.end).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}
