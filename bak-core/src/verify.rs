//! RESTORE VERIFYONLY for bak media: every record's and block's CRC, the record sequence of each
//! set on each family, the block sequence across families (no gap, no duplicate), the MBC and
//! trailing config against what was read, and (unless `fast`) the decoded bytes against their
//! hashes and the end-to-end digest. Every problem is collected, not only the first.
//!
//! Each family is read sequentially in its own thread. On a file, each set is reached through
//! the end-of-set chain, so damage inside one set does not hide the sets after it.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, Location, Result};
use crate::format::*;
use crate::media::{scan_family, RecordReader};
use crate::model::{Problem, SetReport};
use crate::pipeline::{Abort, Pool, Queue};
use crate::read::{order_families, Opened};
use std::sync::{Arc, Mutex};

/// What to verify, and how.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only this set position; all sets when `None`.
    pub position: Option<u32>,
    /// Check stored bytes only (no decompression, no digest).
    pub fast: bool,
    /// Stop at the first problem.
    pub stop_on_error: bool,
    /// Decoding threads (0: the number of cores).
    pub threads: usize,
}

/// Decoding of checked payloads, shared by the family threads: every core decodes whatever
/// family the blocks come from, so a one-device set verifies as fast as a striped one.
struct Decoders {
    jobs: Queue<DecodeJob>,
    pool: Pool,
    results: Mutex<Vec<DecodeResult>>,
    abort: Abort,
}

struct DecodeJob {
    position: u32,
    family: u16,
    header: BlockHeader,
    buf: Payload,
    at: Location,
}

/// A checked block payload on its way to the decoders: in place in a family's memory map, or
/// copied into a pooled buffer (a family read from a pipe).
enum Payload {
    Mapped(Arc<LockedMap>, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Mapped(m, r) => m.get(r.clone()).unwrap_or(&[]),
            Payload::Owned(v) => v,
        }
    }
}

struct DecodeResult {
    position: u32,
    family: u16,
    problem: Option<Problem>,
    original: u64,
}

impl Decoders {
    fn work(&self) {
        let mut dctx = zstd::bulk::Decompressor::new().ok();
        let mut scratch: Vec<u8> = Vec::new();
        while let Some(j) = self.jobs.pop(&self.abort) {
            let h = &j.header;
            let ol = h.original_len as usize;
            let bytes = j.buf.bytes();
            let payload = bytes.get(..h.stored_len as usize).unwrap_or(bytes);
            let got = match h.codec {
                BlockCodec::Raw => {
                    let mut x = xxhash_rust::xxh3::Xxh3::new();
                    for (o, l) in raw_frame_pieces(h.original_len) {
                        x.update(&payload[o..o + l]);
                    }
                    Ok(x.digest())
                }
                BlockCodec::Zstd => {
                    if scratch.len() < ol {
                        scratch.resize(scratch.capacity().max(ol), 0);
                    }
                    match dctx
                        .as_mut()
                        .map(|d| d.decompress_to_buffer(payload, &mut scratch[..ol]))
                    {
                        Some(Ok(k)) if k == ol => Ok(xxhash_rust::xxh3::xxh3_64(&scratch[..ol])),
                        Some(Ok(k)) => Err(Error::mismatch(
                            j.at.clone(),
                            "block decodes to the wrong length",
                            ol,
                            k,
                        )),
                        _ => Err(Error::corrupt(j.at.clone(), "zstd frame does not decode")),
                    }
                }
            };
            let problem = match got {
                Ok(x) if x == h.original_hash => None,
                Ok(_) => Some(problem(
                    &j.at,
                    &Error::corrupt(
                        j.at.clone(),
                        "block's original bytes do not match their hash",
                    ),
                )),
                Err(e) => Some(problem(&j.at, &e)),
            };
            let original = if problem.is_none() { ol as u64 } else { 0 };
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
}

struct FamResult {
    family: u16,
    name: String,
    sets: BTreeMap<u32, FamSet>,
    media_problems: Vec<Problem>,
}

fn problem(at: &Location, e: &Error) -> Problem {
    let (what, expected, found) = match e {
        Error::Corrupt {
            what,
            expected,
            found,
            ..
        } => (what.clone(), expected.clone(), found.clone()),
        Error::Truncated { what, .. } => (format!("media end before {what}"), None, None),
        other => (other.to_string(), None, None),
    };
    let loc = match e {
        Error::Corrupt { at, .. }
        | Error::Truncated { at, .. }
        | Error::UnsupportedVersion { at, .. } => at,
        _ => at,
    };
    Problem {
        device: loc.device.clone(),
        family: loc.family.or(at.family),
        position: loc.position.or(at.position),
        block: loc.block,
        offset: loc.offset,
        what,
        expected,
        found,
    }
}

/// Verify bak media. `Err` only for I/O errors and devices that are not one whole media set.
pub fn verify_bak(
    devs: Vec<Opened>,
    opts: &VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<SetReport>> {
    let started = Instant::now();
    let devs = order_families(devs)?;
    let n = devs.len();
    let done = AtomicU64::new(0);
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |x| x.get())
    } else {
        opts.threads
    };
    let decoders = Decoders {
        jobs: Queue::new(threads * 2),
        pool: Pool::new(threads * 3 + n, raw_frame_len(MAX_TRANSFER) as usize),
        results: Mutex::new(Vec::new()),
        abort: Abort::default(),
    };
    let dec = (!opts.fast).then_some(&decoders);
    let results: Vec<Result<FamResult>> = std::thread::scope(|s| {
        let workers: Vec<_> = match dec {
            Some(d) => (0..threads).map(|_| s.spawn(move || d.work())).collect(),
            None => Vec::new(),
        };
        let hs: Vec<_> = devs
            .into_iter()
            .map(|d| {
                let done = &done;
                s.spawn(move || {
                    verify_family(d, opts, dec, &|k| {
                        progress(done.fetch_add(k, Ordering::Relaxed) + k)
                    })
                })
            })
            .collect();
        let r = hs
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Refused {
                        what: "internal error verifying a family".into(),
                    })
                })
            })
            .collect();
        decoders.jobs.close();
        for w in workers {
            let _ = w.join();
        }
        r
    });
    let mut fams: Vec<FamResult> = results.into_iter().collect::<Result<_>>()?;
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
            return Err(Error::NoSuchSet {
                position: p,
                count: positions.len() as u32,
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
            verdict: "damaged".into(),
            problems: media_problems,
            bytes_checked: 0,
            original_bytes_checked: 0,
            seconds,
        });
    }
    for pos in positions {
        let mut problems = Vec::new();
        let mut complete = true;
        let (mut bytes, mut orig_checked) = (0, 0);
        let ids: Vec<Option<Guid>> = fams
            .iter()
            .map(|f| f.sets.get(&pos).and_then(|s| s.set_id))
            .collect();
        let id0 = ids.iter().flatten().next().copied();
        for f in &fams {
            let dev = f.name.clone();
            match f.sets.get(&pos) {
                None => {
                    complete = false;
                    problems.push(Problem {
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
                if !opts.fast && problems.is_empty() && seq_problems.is_empty() {
                    let mut h = xxhash_rust::xxh3::Xxh3::new();
                    for (_, x) in &all {
                        h.update(&x.to_le_bytes());
                    }
                    let d = h.digest128().to_le_bytes();
                    if d != t.digest {
                        problems.push(Problem {
                            device: "the media set".into(),
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
            device: "the media set".into(),
            position: Some(pos),
            what,
            ..Default::default()
        }));
        if opts.stop_on_error {
            problems.truncate(1);
        }
        let verdict = if problems
            .iter()
            .all(|p| p.what.contains("end of the backup set is missing"))
            && !complete
        {
            "incomplete"
        } else if problems.is_empty() && complete {
            "valid"
        } else if !complete && problems.is_empty() {
            "incomplete"
        } else {
            "damaged"
        };
        reports.push(SetReport {
            position: pos,
            verdict: verdict.into(),
            problems,
            bytes_checked: bytes,
            original_bytes_checked: orig_checked,
            seconds,
        });
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

fn verify_family(
    d: Opened,
    opts: &VerifyOptions,
    dec: Option<&Decoders>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FamResult> {
    let label = d.label.clone().ok_or_else(|| Error::NotMedia {
        device: d.name.clone(),
        found: "not bak media".into(),
    })?;
    let fam = label.family_number;
    let at = Location::device(d.name.clone()).family(fam as u32);
    let mut media_problems = Vec::new();
    check_head(&d.head, &label, &at, &mut media_problems);
    let mut sets = BTreeMap::new();
    let name = d.name.clone();

    // Sets known from the tail of a file: (position, set header offset, previous end-of-set).
    let known: Vec<(u32, u64, u64)> = d
        .file
        .as_ref()
        .and_then(|f| scan_family(f, &d.path).ok())
        .map(|scan| {
            scan.sets
                .iter()
                .map(|s| {
                    (
                        s.header.position,
                        s.eset.set_header_offset,
                        s.eset.prev_eset_offset,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let file = d
        .file
        .as_ref()
        .map(|f| f.try_clone().map_err(|e| Error::io(&d.path, "open", e)))
        .transpose()?;
    // Files are read through a memory map: no read(2) per block. A shared lock keeps bak
    // writers (which take an exclusive one) from truncating the file under the map.
    let map = match &file {
        Some(f) => Some(map_shared(f, &name)?),
        None => None,
    };
    let open_at = |off: u64| -> Result<RecordReader<Box<dyn Source>>> {
        let Some(m) = &map else {
            return Err(Error::Refused {
                what: "not a file".into(),
            });
        };
        let reader = MapReader {
            map: Arc::clone(m),
            pos: off.min(m.len() as u64) as usize,
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
            Some(&(p, off, prev)) => (p, prev, open_at(off)?),
            None if file.is_some() => (1, 0, open_at(FIRST_SET_OFFSET)?),
            None => {
                let (head, stream) = d.into_stream();
                let rest: Box<dyn Source> = Box::new(std::io::Cursor::new(head).chain(stream));
                let mut r = RecordReader::new(rest, 0, at.clone());
                r.skip(FIRST_SET_OFFSET, "set map")?;
                (1, 0, r)
            }
        };
    loop {
        if opts.position.is_some_and(|p| p < pos) {
            break;
        }
        let (s, eset) = verify_set(&mut r, &label, pos, prev, opts, dec, &at, progress);
        if s.set_id.is_none() && s.problems.is_empty() {
            break; // the clean end of the family
        }
        let next_known = known.iter().find(|k| k.0 > pos).copied();
        if s.set_id.is_none() && next_known.is_none() {
            media_problems.extend(s.problems.into_iter().map(|mut p| {
                p.what = format!("bytes after the last backup set: {}", p.what);
                p.position = None;
                p
            }));
            break;
        }
        let stop = opts.stop_on_error && !s.problems.is_empty();
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
            (None, Some((p, off, pv))) if file.is_some() => {
                pos = p;
                prev = pv;
                r = open_at(off)?;
            }
            (None, _) => break,
        }
    }
    Ok(FamResult {
        family: fam,
        name: at.device.clone(),
        sets,
        media_problems,
    })
}

/// The label's padding and the set map slots.
fn check_head(head: &[u8], label: &MediaHeader, at: &Location, problems: &mut Vec<Problem>) {
    let body_end = RECORD_PREFIX_LEN + label.encode_body().len();
    if head.len() < FIRST_SET_OFFSET as usize {
        problems.push(problem(
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
                let mut p = problem(&slot_at, &e);
                p.what = format!("set map slot {name}: {}", p.what);
                problems.push(p);
            }
        }
    }
}

/// Verify one set on one family from its set header. Returns what was seen and the offset of
/// its end-of-set frame when the set's framing held to the end.
#[allow(clippy::too_many_arguments)]
fn verify_set(
    r: &mut RecordReader<Box<dyn Source>>,
    label: &MediaHeader,
    position: u32,
    prev_eset: u64,
    opts: &VerifyOptions,
    dec: Option<&Decoders>,
    fam_at: &Location,
    progress: &(dyn Fn(u64) + Sync),
) -> (FamSet, Option<u64>) {
    let mut s = FamSet::default();
    let set_at = fam_at.clone().set(position);
    r.set_location(set_at.clone());
    let start = r.offset;
    let mut payload = Vec::new();
    let mut mbc_expect: Vec<MbcEntry> = Vec::new();
    let mut last_seq: Option<u64> = None;
    let header: Option<SetHeader>;
    let mts;
    let mut offsets = (start, 0u64, 0u64);
    macro_rules! fail {
        ($at:expr, $e:expr) => {{
            s.problems.push(problem($at, &$e));
            if opts.stop_on_error {
                return (s, None);
            }
        }};
    }
    // Set header and leading config.
    let first = match r.next_record() {
        Ok(None) => return (s, None),
        Ok(Some(rec)) => rec,
        Err(e) => {
            s.problems.push(problem(&set_at.clone().at(start), &e));
            return (s, None);
        }
    };
    let here = set_at.clone().at(first.offset);
    if first.kind != RecordType::SetHeader {
        s.problems.push(problem(
            &here,
            &Error::mismatch(
                here.clone(),
                "unexpected record",
                "backup set header",
                first.kind.name(),
            ),
        ));
        return (s, None);
    }
    match SetHeader::parse_body(&first.body, &here) {
        Ok(h) => {
            if h.position != position
                || h.family_number != label.family_number
                || h.media_set_id != label.media_set_id
            {
                fail!(
                    &here,
                    Error::mismatch(
                        here.clone(),
                        "backup set header does not fit its place",
                        format!(
                            "set {position} of family {} of this media set",
                            label.family_number
                        ),
                        format!("set {} of family {}", h.position, h.family_number)
                    )
                );
            }
            mts = h.max_transfer;
            s.set_id = Some(h.set_id);
            header = Some(h);
        }
        Err(e) => {
            s.problems.push(problem(&here, &e));
            return (s, None);
        }
    }
    let set_id = s.set_id.unwrap_or_default();
    loop {
        let off = r.offset;
        let here = set_at.clone().at(off);
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                s.problems.push(Problem {
                    device: here.device.clone(),
                    family: here.family,
                    position: Some(position),
                    offset: Some(off),
                    what: "the end of the backup set is missing on this family (interrupted set)"
                        .into(),
                    ..Default::default()
                });
                return (s, None);
            }
            Err(e) => {
                let mut p = problem(&here, &e);
                if matches!(e, Error::Truncated { .. }) {
                    p.what = format!(
                        "the end of the backup set is missing on this family (interrupted set): {}",
                        p.what
                    );
                }
                s.problems.push(p);
                return (s, None);
            }
        };
        s.bytes += r.offset - off;
        progress(r.offset - off);
        match rec.kind {
            RecordType::LeadingConfig => match LeadingConfig::parse_body(&rec.body, &here) {
                Ok(l) => {
                    if l.set_id != set_id || l.family_count != label.family_count {
                        fail!(
                            &here,
                            Error::corrupt(here.clone(), "leading config belongs to another set")
                        );
                    }
                    if header
                        .as_ref()
                        .is_some_and(|h| h.codec != l.codec || h.max_transfer != l.max_transfer)
                    {
                        fail!(
                            &here,
                            Error::corrupt(
                                here.clone(),
                                "leading config disagrees with the set header"
                            )
                        );
                    }
                }
                Err(e) => fail!(&here, e),
            },
            RecordType::BlockHeader => {
                let h = match BlockHeader::parse_body(&rec.body, &here) {
                    Ok(h) => h,
                    Err(e) => {
                        s.problems.push(problem(&here, &e));
                        return (s, None);
                    }
                };
                let bat = here.clone().block(h.seq);
                if let Err(e) = h.check_lengths(mts, &bat) {
                    s.problems.push(problem(&bat, &e));
                    return (s, None); // the payload length cannot be trusted: framing lost
                }
                let stored = h.stored_len as usize;
                // From a map the payload is checked (and decoded) where it lies; from a pipe it
                // is read into a buffer.
                let mapped = r.get_mut().take_mapped(stored);
                let read = match &mapped {
                    Some(_) => {
                        r.advanced(stored as u64);
                        Ok(())
                    }
                    None => {
                        if payload.len() < stored {
                            payload.resize(payload.capacity().max(stored), 0);
                        }
                        r.read_exact(&mut payload[..stored], "block payload")
                    }
                };
                if let Err(e) = read {
                    let mut p = problem(&bat, &e);
                    p.what = format!(
                        "the end of the backup set is missing on this family (interrupted set): {}",
                        p.what
                    );
                    s.problems.push(p);
                    return (s, None);
                }
                s.bytes += h.stored_len as u64;
                progress(h.stored_len as u64);
                if h.set_id != set_id || h.position != position || h.family != label.family_number {
                    fail!(
                        &bat,
                        Error::corrupt(
                            bat.clone(),
                            "block header belongs to another set or family"
                        )
                    );
                }
                if last_seq.is_some_and(|l| h.seq <= l) {
                    fail!(
                        &bat,
                        Error::mismatch(
                            bat.clone(),
                            "block sequence goes backwards on this family",
                            format!("more than {}", last_seq.unwrap_or(0)),
                            h.seq
                        )
                    );
                }
                last_seq = Some(h.seq);
                let bytes: &[u8] = match &mapped {
                    Some((m, range)) => m.get(range.clone()).unwrap_or(&[]),
                    None => &payload[..stored],
                };
                let crc = crc32fast::hash(bytes);
                let framing = if crc != h.payload_crc {
                    Err(Error::mismatch(
                        bat.clone(),
                        "block payload CRC does not hold",
                        format!("{:#010x}", h.payload_crc),
                        format!("{crc:#010x}"),
                    ))
                } else if h.codec == BlockCodec::Raw {
                    check_raw_frame(bytes, h.original_len, &bat)
                } else {
                    Ok(())
                };
                match (framing, dec) {
                    (Err(e), _) => fail!(&bat, e),
                    // Checked stored bytes go to the shared decoders: a range of the map, or
                    // the buffer swapped for a free one from their pool (no copy either way;
                    // the queue and the pool bound what is in flight).
                    (Ok(()), Some(d)) => {
                        let buf = match mapped {
                            Some((m, range)) => Some(Payload::Mapped(m, range)),
                            None => d.pool.get(&d.abort).map(|mut fresh| {
                                if fresh.len() < payload.len() {
                                    fresh.resize(fresh.capacity().max(payload.len()), 0);
                                }
                                Payload::Owned(std::mem::replace(&mut payload, fresh))
                            }),
                        };
                        if let Some(buf) = buf {
                            d.jobs.push(
                                DecodeJob {
                                    position,
                                    family: label.family_number,
                                    header: h,
                                    buf,
                                    at: bat.clone(),
                                },
                                &d.abort,
                            );
                        }
                    }
                    (Ok(()), None) => {}
                }
                s.blocks.push((h.seq, h.original_hash));
                s.original += h.original_len as u64;
                s.stored += h.stored_len as u64;
                mbc_expect.push(MbcEntry {
                    seq: h.seq,
                    offset: off,
                    stored_len: h.stored_len,
                    original_len: h.original_len,
                    payload_crc: h.payload_crc,
                    codec: (h.codec == BlockCodec::Zstd) as u8,
                    original_hash: h.original_hash,
                });
            }
            RecordType::TrailingConfig => {
                offsets.1 = off;
                match TrailingConfig::parse_body(&rec.body, &here) {
                    Ok(t) => {
                        if t.set_id != set_id
                            || t.family_number != label.family_number
                            || t.position != position
                        {
                            fail!(
                                &here,
                                Error::corrupt(
                                    here.clone(),
                                    "trailing config belongs to another set or family"
                                )
                            );
                        }
                        if t.family_blocks != s.blocks.len() as u64
                            || t.family_original != s.original
                            || t.family_stored != s.stored
                        {
                            fail!(&here, Error::mismatch(
                                here.clone(),
                                "trailing config totals for this family disagree with its blocks",
                                format!("{} blocks, {} bytes", t.family_blocks, t.family_original),
                                format!("{} blocks, {} bytes", s.blocks.len(), s.original)
                            ));
                        }
                        s.trailing = Some(t);
                    }
                    Err(e) => fail!(&here, e),
                }
            }
            RecordType::Mbc => {
                offsets.2 = off;
                match Mbc::parse_body(&rec.body, &here) {
                    Ok(m) => {
                        if m.set_id != set_id || m.entries != mbc_expect {
                            let first_bad =
                                m.entries.iter().zip(&mbc_expect).position(|(a, b)| a != b);
                            fail!(
                                &here,
                                Error::mismatch(
                                    here.clone(),
                                    "MBC disagrees with the blocks on this family",
                                    format!("{} entries", mbc_expect.len()),
                                    match first_bad {
                                        Some(i) => format!(
                                            "{} entries, entry {i} differs",
                                            m.entries.len()
                                        ),
                                        None => format!("{} entries", m.entries.len()),
                                    }
                                )
                            );
                        }
                    }
                    Err(e) => fail!(&here, e),
                }
            }
            RecordType::EndOfSet => {
                match EndOfSet::parse_body(&rec.body, &here) {
                    Ok(e) => {
                        let want = (start, offsets.1, offsets.2, off, prev_eset);
                        let got = (
                            e.set_header_offset,
                            e.trailing_offset,
                            e.mbc_offset,
                            e.self_offset,
                            e.prev_eset_offset,
                        );
                        if want != got
                            || e.set_id != set_id
                            || e.family_blocks != s.blocks.len() as u64
                        {
                            fail!(
                                &here,
                                Error::mismatch(
                                    here.clone(),
                                    "end-of-set pointers do not match the records",
                                    format!("{want:?}"),
                                    format!("{got:?}")
                                )
                            );
                        }
                    }
                    Err(e) => fail!(&here, e),
                }
                s.complete = s.trailing.is_some();
                return (s, Some(off));
            }
            other => {
                s.problems.push(problem(
                    &here,
                    &Error::mismatch(
                        here.clone(),
                        "unexpected record in a backup set",
                        "block header, trailing config, MBC or end-of-set",
                        other.name(),
                    ),
                ));
                return (s, None);
            }
        }
    }
}

/// A family file's memory map together with a descriptor holding its shared lock: payload
/// ranges handed to the decoders keep both alive, so no bak writer can take the file (and
/// truncate it under the map) while any of them is still being read.
struct LockedMap {
    map: memmap2::Mmap,
    _lock: std::fs::File,
}

impl std::ops::Deref for LockedMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

/// Map a family file for reading, under a shared lock.
fn map_shared(f: &std::fs::File, name: &str) -> Result<Arc<LockedMap>> {
    match f.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Refused {
                what: format!(
                "{name}: being written by another bak process (locked); verify it when that ends"
            ),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(name, "lock", e)),
    }
    // SAFETY: the mapping is read-only and private. bak writers are excluded by the shared lock
    // taken above; a file cut short by anything else while mapped is outside what bak-verify
    // promises (as for every tool that maps its input).
    let m = unsafe { memmap2::Mmap::map(f) }.map_err(|e| Error::io(name, "map", e))?;
    let _ = m.advise(memmap2::Advice::Sequential);
    // A duplicate descriptor shares the open file and so the lock taken on it.
    let lock = f.try_clone().map_err(|e| Error::io(name, "open", e))?;
    Ok(Arc::new(LockedMap {
        map: m,
        _lock: lock,
    }))
}

/// What a family is verified from: any `Read`, and for a memory-mapped file the bytes in place.
trait Source: Read + Send {
    /// The next `n` bytes in place, consumed; `None` (nothing consumed) when the source has no
    /// map or fewer than `n` bytes remain.
    fn take_mapped(&mut self, _n: usize) -> Option<(Arc<LockedMap>, std::ops::Range<usize>)> {
        None
    }
}

impl<R: Read + Send> Source for std::io::Chain<std::io::Cursor<Vec<u8>>, R> {}

/// `Read` over a shared memory map, from a position.
struct MapReader {
    map: Arc<LockedMap>,
    pos: usize,
}

impl Source for MapReader {
    fn take_mapped(&mut self, n: usize) -> Option<(Arc<LockedMap>, std::ops::Range<usize>)> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.map.len())?;
        let r = self.pos..end;
        self.pos = end;
        Some((Arc::clone(&self.map), r))
    }
}

impl Read for MapReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.map.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}
