//! Opening a media set for reading, and the restore pipeline: one reader thread per family,
//! a sequencer that takes blocks in global order from the heads of the families, a pool of
//! workers that check and decompress, and the calling thread writing the output in order.
//! Memory is bounded by the buffer pool whatever the assignment of blocks to families: each
//! family's queue holds a few blocks, and the block the sequencer needs next is always at the
//! head of one family.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::error::{Error, Location, Result};
use crate::format::*;
use crate::media::{scan_family, FamilyScan, RecordReader, StreamRecord};
use crate::model::MediaKind;
use crate::pipeline::{guarded, write_all_vectored, Abort, Ordered, Pool, Queue};

/// A device opened for reading, its first bytes already read so the format can be told.
pub struct Opened {
    /// The path as given ("-" for standard input).
    pub path: PathBuf,
    /// The name used in messages.
    pub name: String,
    /// The file, when it is a regular file (seekable).
    pub file: Option<File>,
    /// The stream, when it is not (pipe, FIFO, standard input).
    stream: Option<Box<dyn Read + Send>>,
    /// The first bytes (up to 8 KiB: the media header and set map).
    pub head: Vec<u8>,
    /// What the first bytes say.
    pub kind: Option<MediaKind>,
    /// bak label, when `kind` is bak.
    pub label: Option<MediaHeader>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Opened {
    /// The first bytes and the rest of a stream device (a file is opened again from its start).
    pub fn into_stream(self) -> (Vec<u8>, Box<dyn Read + Send>) {
        match (self.stream, self.file) {
            (Some(s), _) => (self.head, s),
            (None, Some(f)) => {
                use std::io::{Seek, SeekFrom};
                let mut f = f;
                let n = self.head.len() as u64;
                let _ = f.seek(SeekFrom::Start(n));
                (self.head, Box::new(f))
            }
            (None, None) => (self.head, Box::new(std::io::empty())),
        }
    }
}

/// Tell the format from the first bytes.
pub fn sniff(head: &[u8]) -> Option<MediaKind> {
    // Two of the three fixed fields are enough: a damaged label is still bak media (and then
    // reported as damaged), not a foreign file.
    if head.len() >= 12 {
        let size = (MEDIA_HEADER_SPAN as u32 - FRAME_HEADER_LEN as u32).to_le_bytes();
        let hits = (head[..4] == SKIPPABLE_MAGIC.to_le_bytes()) as u8
            + (head[4..8] == size) as u8
            + (head[8..12] == *b"BKMH") as u8;
        if hits >= 2 {
            return Some(MediaKind::Bak);
        }
    }
    if head.starts_with(b"TAPE") {
        return Some(MediaKind::Mtf);
    }
    if head.starts_with(b"MSSQLBAK") {
        return Some(MediaKind::MtfCompressed);
    }
    None
}

/// Open one device and read its first bytes. FIFOs block here until a writer opens them, so
/// callers open several devices in parallel ([`open_all`]).
pub fn open_device(path: &Path) -> Result<Opened> {
    let name = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let (file, mut stream): (Option<File>, Option<Box<dyn Read + Send>>) =
        if path.as_os_str() == "-" {
            use std::os::fd::AsFd;
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("stdin", "open", e))?;
            crate::pipeline::enlarge_pipe(fd.as_fd(), 2 << 20);
            (None, Some(Box::new(File::from(fd))))
        } else {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "open", e))?;
            if meta.is_dir() {
                return Err(Error::Refused {
                    what: format!("{name}: is a directory, not a backup device"),
                });
            }
            let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
            // Regular files are read with positioned reads (seekable); anything else is a stream.
            if meta.file_type().is_file() {
                (Some(f), None)
            } else {
                use std::os::fd::AsFd;
                crate::pipeline::enlarge_pipe(f.as_fd(), 2 << 20);
                (None, Some(Box::new(f)))
            }
        };
    let mut head = vec![0u8; FIRST_SET_OFFSET as usize];
    let n = match (&file, stream.as_mut()) {
        (Some(f), _) => {
            use std::os::unix::fs::FileExt;
            let mut done = 0;
            while done < head.len() {
                match f.read_at(&mut head[done..], done as u64) {
                    Ok(0) => break,
                    Ok(k) => done += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(path, "read", e)),
                }
            }
            done
        }
        (None, Some(s)) => {
            let mut done = 0;
            while done < head.len() {
                match s.read(&mut head[done..]) {
                    Ok(0) => break,
                    Ok(k) => done += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(path, "read", e)),
                }
            }
            done
        }
        _ => 0,
    };
    head.truncate(n);
    let kind = sniff(&head);
    let label = if kind == Some(MediaKind::Bak) {
        let at = Location::device(name.clone()).at(0);
        if head.len() < MEDIA_HEADER_SPAN as usize {
            return Err(Error::Truncated {
                at,
                what: "media header".into(),
            });
        }
        let (_, body) = parse_frame(&head, RecordType::MediaHeader, &at)?;
        Some(MediaHeader::parse_body(body, &at)?)
    } else {
        None
    };
    Ok(Opened {
        path: path.to_path_buf(),
        name,
        file,
        stream,
        head,
        kind,
        label,
    })
}

/// Open devices in parallel (so FIFOs fed by one writer in any order do not deadlock).
pub fn open_all(paths: &[PathBuf]) -> Result<Vec<Opened>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = paths
            .iter()
            .map(|p| s.spawn(move || open_device(p)))
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Refused {
                        what: "internal error opening a device".into(),
                    })
                })
            })
            .collect()
    })
}

/// Check that bak devices form one whole media set; return them in family order.
pub fn order_families(devs: Vec<Opened>) -> Result<Vec<Opened>> {
    let n = devs.len();
    let first = devs
        .first()
        .and_then(|d| d.label.clone())
        .ok_or_else(|| Error::MediaSet {
            what: "no bak media given".into(),
        })?;
    let mut slots: Vec<Option<Opened>> = (0..first.family_count).map(|_| None).collect();
    for d in devs {
        let Some(l) = d.label.clone() else {
            return Err(Error::MediaSet {
                what: format!("{}: not bak media", d.name),
            });
        };
        if l.media_set_id != first.media_set_id {
            return Err(Error::MediaSet {
                what: format!(
                    "{}: family {} of another media set ({}), not of {} ({})",
                    d.name,
                    l.family_number,
                    guid_string(&l.media_set_id),
                    guid_string(&first.media_set_id),
                    if first.media_name.is_empty() {
                        "unnamed"
                    } else {
                        &first.media_name
                    }
                ),
            });
        }
        let i = l.family_number as usize - 1;
        match slots.get_mut(i) {
            Some(slot @ None) => *slot = Some(d),
            Some(Some(other)) => {
                return Err(Error::MediaSet {
                    what: format!(
                        "family {} given twice: {} and {}",
                        i + 1,
                        other.name,
                        d.name
                    ),
                })
            }
            None => {
                return Err(Error::MediaSet {
                    what: format!("{}: family number {} out of range", d.name, i + 1),
                })
            }
        }
    }
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MediaSet {
            what: format!(
                "the media set has {} families; family {} {} missing ({} device{} given)",
                first.family_count,
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                n,
                if n == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(slots.into_iter().flatten().collect())
}

/// A family positioned at the start of a set: a record reader over the rest of the device.
pub struct Positioned {
    /// The device name.
    pub name: String,
    /// Family number.
    pub family: u16,
    /// The reader, at the set header.
    pub reader: RecordReader<Box<dyn Read + Send>>,
    /// What a scan found (files only).
    pub scan: Option<FamilyScan>,
}

/// Put each family at the start of set `position`: on files through the end-of-set chain, on
/// streams by reading through the sets before it.
pub fn position_families(devs: Vec<Opened>, position: u32) -> Result<Vec<Positioned>> {
    let mut out = Vec::new();
    for d in devs {
        let label = d.label.clone().ok_or_else(|| Error::MediaSet {
            what: format!("{}: not bak media", d.name),
        })?;
        let at = Location::device(d.name.clone()).family(label.family_number as u32);
        if let Some(f) = d.file {
            let scan = scan_family(&f, &d.path)?;
            let count = scan.next_position() - 1 + scan.interrupted.is_some() as u32;
            let offset = if let Some(s) = scan.set(position) {
                s.eset.set_header_offset
            } else if position == scan.next_position() && scan.interrupted.is_some() {
                scan.end_offset
            } else if let (Some(e), Some(first)) = (&scan.broken, scan.sets.first()) {
                if position < first.header.position {
                    return Err(Error::corrupt(
                        Location::device(d.name.clone())
                            .family(label.family_number as u32)
                            .set(position),
                        format!("backup set {position} cannot be found: {e}"),
                    ));
                }
                return Err(Error::NoSuchSet { position, count });
            } else if let Some(e) = scan.broken {
                return Err(e);
            } else {
                return Err(Error::NoSuchSet { position, count });
            };
            use std::io::{Seek, SeekFrom};
            let mut f2 = f.try_clone().map_err(|e| Error::io(&d.path, "open", e))?;
            f2.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(&d.path, "seek", e))?;
            let reader: Box<dyn Read + Send> = Box::new(f2);
            out.push(Positioned {
                name: d.name,
                family: label.family_number,
                reader: RecordReader::new(reader, offset, at),
                scan: Some(scan),
            });
        } else {
            let Some(stream) = d.stream else {
                return Err(Error::Refused {
                    what: format!("{}: nothing to read", d.name),
                });
            };
            let rest: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(d.head).chain(stream));
            let mut r = RecordReader::new(rest, 0, at.clone());
            r.skip(FIRST_SET_OFFSET, "set map")?;
            // Read through earlier sets.
            let mut current = 0u32;
            loop {
                let start = r.offset;
                // Peek the next record; a set header of the wanted position ends the search.
                let rec = r.next_record()?.ok_or(Error::NoSuchSet {
                    position,
                    count: current,
                })?;
                if rec.kind == RecordType::SetHeader {
                    let h = SetHeader::parse_body(&rec.body, &at.clone().at(start))?;
                    current = h.position;
                    if h.position == position {
                        let replay = rec_bytes(&rec);
                        let inner = r.into_inner();
                        let reader: Box<dyn Read + Send> =
                            Box::new(std::io::Cursor::new(replay).chain(inner));
                        r = RecordReader::new(reader, start, at.clone());
                        break;
                    }
                } else if rec.kind == RecordType::BlockHeader {
                    let bh = BlockHeader::parse_body(&rec.body, &at.clone().at(start))?;
                    bh.check_lengths(MAX_TRANSFER, &at.clone().at(start))?;
                    r.skip(bh.stored_len as u64, "block payload")?;
                }
            }
            out.push(Positioned {
                name: d.name,
                family: label.family_number,
                reader: r,
                scan: None,
            });
        }
    }
    Ok(out)
}

/// Re-encode a record read from a stream (used to put a peeked set header back).
fn rec_bytes(rec: &StreamRecord) -> Vec<u8> {
    encode_record(rec.kind, &rec.body, None)
}

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Backup set position (RESTORE's FILE), from 1.
    pub position: u32,
    /// Decompression workers.
    pub threads: usize,
    /// Buffers in the pool.
    pub buffer_count: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            position: 1,
            threads: std::thread::available_parallelism().map_or(2, |x| x.get()),
            buffer_count: 0,
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct ReadSummary {
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
    /// Original bytes: in `buf` directly (zstd), or inside the raw frame in `buf`.
    buf: Vec<u8>,
}

/// The set-level facts every family must agree on.
#[derive(Clone)]
struct SetFacts {
    header: SetHeader,
    leading: LeadingConfig,
}

/// Read the set header and leading config at the reader's position.
fn read_set_start(p: &mut Positioned, position: u32) -> Result<SetFacts> {
    let at0 = p.reader.location();
    let rec = p.reader.next_record()?.ok_or_else(|| Error::Truncated {
        at: at0.clone(),
        what: "backup set header".into(),
    })?;
    if rec.kind != RecordType::SetHeader {
        return Err(Error::mismatch(
            at0,
            "unexpected record",
            "backup set header",
            rec.kind.name(),
        ));
    }
    let header = SetHeader::parse_body(&rec.body, &at0)?;
    if header.position != position || header.family_number != p.family {
        return Err(Error::mismatch(
            at0,
            "backup set header names another set or family",
            format!("set {position}, family {}", p.family),
            format!("set {}, family {}", header.position, header.family_number),
        ));
    }
    let at1 = p.reader.location();
    let rec = p.reader.next_record()?.ok_or_else(|| Error::Truncated {
        at: at1.clone(),
        what: "leading config".into(),
    })?;
    if rec.kind != RecordType::LeadingConfig {
        return Err(Error::mismatch(
            at1,
            "unexpected record",
            "leading config",
            rec.kind.name(),
        ));
    }
    let leading = LeadingConfig::parse_body(&rec.body, &at1)?;
    if leading.set_id != header.set_id {
        return Err(Error::corrupt(
            at1,
            "leading config belongs to another backup set",
        ));
    }
    let loc = Location::device(p.name.clone())
        .family(p.family as u32)
        .set(position);
    p.reader.set_location(loc);
    Ok(SetFacts { header, leading })
}

/// Restore backup set `opts.position` from the devices to `out`.
pub fn read_set(
    devs: Vec<Opened>,
    opts: &ReadOptions,
    out: &mut dyn Write,
    out_name: &str,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<ReadSummary> {
    let started = Instant::now();
    if opts.position == 0 {
        return Err(Error::NoSuchSet {
            position: 0,
            count: 0,
        });
    }
    let devs = order_families(devs)?;
    let mut fams = position_families(devs, opts.position)?;
    let n = fams.len();
    let mut facts = Vec::with_capacity(n);
    for p in fams.iter_mut() {
        facts.push(read_set_start(p, opts.position)?);
    }
    let f0 = facts[0].clone();
    for (p, f) in fams.iter().zip(&facts) {
        if f.header.set_id != f0.header.set_id {
            return Err(Error::MediaSet {
                what: format!(
                    "{}: family {} holds another backup set at position {} than family 1",
                    p.name, p.family, opts.position
                ),
            });
        }
    }
    let mts = f0.leading.max_transfer;
    let buf_size = raw_frame_len(mts) as usize;
    let threads = opts.threads.max(1);
    let count = if opts.buffer_count == 0 {
        n * 4 + 2 * threads + 2
    } else {
        opts.buffer_count.max(n + 2)
    };
    let per_family = ((count.saturating_sub(2 * threads)) / n).max(1);
    let abort_own = Abort::default();
    let pool_own = Pool::new(count, buf_size);
    let heads_own = Mutex::new(Heads {
        q: (0..n).map(|_| VecDeque::new()).collect(),
    });
    let heads_cv_own = Condvar::new();
    let jobs_own: Queue<Job> = Queue::new(threads * 2);
    let done_own: Ordered<Out> = Ordered::default();
    let trailer_own: Mutex<Option<TrailingConfig>> = Mutex::new(None);
    let (abort, pool, heads, heads_cv, jobs, done, trailer) = (
        &abort_own,
        &pool_own,
        &heads_own,
        &heads_cv_own,
        &jobs_own,
        &done_own,
        &trailer_own,
    );
    let set_id = f0.header.set_id;
    let position = opts.position;

    // After a failure every thread must see the flag at once, not at its next 50 ms re-check.
    let fail = move |e: Error| {
        abort.fail(e);
        pool.wake();
        jobs.wake();
        done.wake();
        drop(heads.lock().unwrap_or_else(|p| p.into_inner()));
        heads_cv.notify_all();
    };
    let result = std::thread::scope(|s| -> Result<ReadSummary> {
        for (i, p) in fams.into_iter().enumerate() {
            s.spawn(move || {
                let r = guarded("family reader", || {
                    family_reader(
                        i, p, set_id, position, mts, pool, heads, heads_cv, per_family, abort,
                    )
                });
                if let Err(e) = r {
                    fail(e);
                }
                heads_cv.notify_all();
            });
        }
        s.spawn(move || {
            let r = guarded("sequencer", || {
                sequencer(n, heads, heads_cv, jobs, done, trailer, abort)
            });
            jobs.close();
            if let Err(e) = r {
                fail(e);
            }
        });
        for _ in 0..threads {
            s.spawn(move || {
                let r = guarded("decompression", || read_worker(jobs, done, abort));
                if let Err(e) = r {
                    fail(e);
                }
            });
        }
        // Output, in order, in this thread.
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut written = 0u64;
        let mut stored = 0u64;
        let mut blocks = 0u64;
        let r = (|| -> Result<()> {
            while let Some((_, o)) = done.take(abort) {
                if cancel.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted);
                }
                hasher.update(&o.header.original_hash.to_le_bytes());
                let ol = o.header.original_len as usize;
                let w = |e| Error::io(out_name, "write", e);
                match o.header.codec {
                    BlockCodec::Zstd => out.write_all(&o.buf[..ol]).map_err(w)?,
                    BlockCodec::Raw => {
                        let mut v: Vec<IoSlice<'_>> = raw_frame_pieces(o.header.original_len)
                            .map(|(off, len)| IoSlice::new(&o.buf[off..off + len]))
                            .collect();
                        write_all_vectored(out, &mut v).map_err(w)?;
                    }
                }
                written += ol as u64;
                stored += o.header.stored_len as u64;
                blocks += 1;
                progress(written);
                pool.put(o.buf);
            }
            Ok(())
        })();
        if let Err(e) = r {
            fail(e);
        }
        if abort.is_set() {
            fail(Error::Interrupted);
            return Err(abort.take().unwrap_or(Error::Interrupted));
        }
        out.flush().map_err(|e| Error::io(out_name, "write", e))?;
        let t = trailer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let t = t.ok_or_else(|| Error::Truncated {
            at: Location::device("the media set").set(position),
            what: "the trailing config".into(),
        })?;
        let digest = hasher.digest128().to_le_bytes();
        if t.total_blocks != blocks || t.total_original != written {
            return Err(Error::mismatch(
                Location::device("the media set").set(position),
                "trailing config totals disagree with the blocks read",
                format!("{} blocks, {} bytes", t.total_blocks, t.total_original),
                format!("{blocks} blocks, {written} bytes"),
            ));
        }
        if digest != t.digest {
            return Err(Error::mismatch(
                Location::device("the media set").set(position),
                "end-to-end digest of the original bytes does not hold",
                hex(&t.digest),
                hex(&digest),
            ));
        }
        Ok(ReadSummary {
            original_bytes: written,
            stored_bytes: stored,
            blocks,
            families: n as u32,
            seconds: started.elapsed().as_secs_f64(),
        })
    });
    result
}

#[allow(clippy::too_many_arguments)]
fn family_reader(
    i: usize,
    mut p: Positioned,
    set_id: Guid,
    position: u32,
    mts: u32,
    pool: &Pool,
    heads: &Mutex<Heads>,
    heads_cv: &Condvar,
    cap: usize,
    abort: &Abort,
) -> Result<()> {
    let fam = p.family;
    let push = |item: FamItem| -> bool {
        let mut g = heads.lock().unwrap_or_else(|e| e.into_inner());
        while g.q[i].len() >= cap {
            if abort.is_set() {
                return false;
            }
            g = crate::pipeline::wait(heads_cv, g);
        }
        g.q[i].push_back(item);
        drop(g);
        heads_cv.notify_all();
        true
    };
    let mut last_seq: Option<u64> = None;
    loop {
        if abort.is_set() {
            return Ok(());
        }
        let at = p.reader.location();
        let rec = p.reader.next_record()?.ok_or_else(|| Error::Truncated {
            at: at.clone(),
            what: "the rest of the backup set (the set is incomplete on this family)".into(),
        })?;
        match rec.kind {
            RecordType::BlockHeader => {
                let h = BlockHeader::parse_body(&rec.body, &at)?;
                let at = at.block(h.seq);
                if h.set_id != set_id || h.position != position || h.family != fam {
                    return Err(Error::corrupt(
                        at,
                        "block header belongs to another set or family",
                    ));
                }
                if last_seq.is_some_and(|l| h.seq <= l) {
                    return Err(Error::mismatch(
                        at,
                        "block sequence goes backwards on this family",
                        format!("more than {}", last_seq.unwrap_or(0)),
                        h.seq,
                    ));
                }
                last_seq = Some(h.seq);
                h.check_lengths(mts, &at)?;
                let Some(mut buf) = pool.get(abort) else {
                    return Ok(());
                };
                // Buffers keep their length between uses, so they are zeroed once, not per block.
                let stored = h.stored_len as usize;
                if buf.len() < stored {
                    buf.resize(buf.capacity().max(stored), 0);
                }
                p.reader.read_exact(&mut buf[..stored], "block payload")?;
                if !push(FamItem::Block { header: h, buf, at }) {
                    return Ok(());
                }
            }
            RecordType::TrailingConfig => {
                let t = TrailingConfig::parse_body(&rec.body, &at)?;
                if t.set_id != set_id || t.family_number != fam {
                    return Err(Error::corrupt(
                        at,
                        "trailing config belongs to another set or family",
                    ));
                }
                // The MBC and end-of-set must follow; a restore checks they are there and whole.
                let at2 = p.reader.location();
                let m = p.reader.next_record()?.ok_or_else(|| Error::Truncated {
                    at: at2.clone(),
                    what: "MBC".into(),
                })?;
                if m.kind != RecordType::Mbc {
                    return Err(Error::mismatch(
                        at2,
                        "unexpected record",
                        "MBC",
                        m.kind.name(),
                    ));
                }
                let mbc = Mbc::parse_body(&m.body, &at2)?;
                if mbc.entries.len() as u64 != t.family_blocks {
                    return Err(Error::mismatch(
                        at2,
                        "MBC block count disagrees with the trailing config",
                        t.family_blocks,
                        mbc.entries.len(),
                    ));
                }
                let at3 = p.reader.location();
                let e = p.reader.next_record()?.ok_or_else(|| Error::Truncated {
                    at: at3.clone(),
                    what: "end-of-set record (the set is incomplete on this family)".into(),
                })?;
                if e.kind != RecordType::EndOfSet {
                    return Err(Error::mismatch(
                        at3,
                        "unexpected record",
                        "end-of-set record",
                        e.kind.name(),
                    ));
                }
                EndOfSet::parse_body(&e.body, &at3)?;
                push(FamItem::End { trailing: t, at });
                return Ok(());
            }
            other => {
                return Err(Error::mismatch(
                    at,
                    "unexpected record in the data",
                    "block header or trailing config",
                    other.name(),
                ));
            }
        }
    }
}

fn sequencer(
    n: usize,
    heads: &Mutex<Heads>,
    heads_cv: &Condvar,
    jobs: &Queue<Job>,
    done: &Ordered<Out>,
    trailer: &Mutex<Option<TrailingConfig>>,
    abort: &Abort,
) -> Result<()> {
    let mut next = 0u64;
    let mut g = heads.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if abort.is_set() {
            return Ok(());
        }
        let mut found = None;
        let mut all_present = true;
        let mut ended = 0;
        for (i, q) in g.q.iter().enumerate() {
            match q.front() {
                Some(FamItem::Block { header, at, .. }) => {
                    if header.seq == next {
                        found = Some(i);
                        break;
                    }
                    if header.seq < next {
                        return Err(Error::mismatch(
                            at.clone(),
                            "block sequence number given twice",
                            format!("{next} or more"),
                            header.seq,
                        ));
                    }
                }
                Some(FamItem::End { .. }) => ended += 1,
                None => all_present = false,
            }
        }
        if let Some(i) = found {
            let Some(FamItem::Block { header, buf, at }) = g.q[i].pop_front() else {
                continue;
            };
            drop(g);
            heads_cv.notify_all();
            if !jobs.push(Job { header, buf, at }, abort) {
                return Ok(());
            }
            next += 1;
            g = heads.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if all_present && ended == n {
            // Every family is at its end: check that they agree on the totals.
            let ts: Vec<(TrailingConfig, Location)> =
                g.q.iter()
                    .filter_map(|q| match q.front() {
                        Some(FamItem::End { trailing, at }) => Some((trailing.clone(), at.clone())),
                        _ => None,
                    })
                    .collect();
            let (t0, _) = &ts[0];
            for (t, at) in &ts {
                if t.total_blocks != t0.total_blocks
                    || t.total_original != t0.total_original
                    || t.digest != t0.digest
                {
                    return Err(Error::corrupt(
                        at.clone(),
                        "trailing configs of the families disagree on the set's totals",
                    ));
                }
            }
            if t0.total_blocks != next {
                return Err(Error::mismatch(
                    ts[0].1.clone(),
                    "blocks are missing from the media set",
                    format!("{} blocks", t0.total_blocks),
                    format!("{next} blocks (block {next} is on no family)"),
                ));
            }
            *trailer.lock().unwrap_or_else(|e| e.into_inner()) = Some(t0.clone());
            done.finish(next);
            return Ok(());
        }
        if all_present {
            // Every family has something at its head, and none is the block we need.
            let at = g.q.iter().find_map(|q| match q.front() {
                Some(FamItem::Block { at, .. }) | Some(FamItem::End { at, .. }) => Some(at.clone()),
                None => None,
            });
            return Err(Error::corrupt(
                at.unwrap_or_else(|| Location::device("the media set")),
                format!("block {next} is missing: no family holds it"),
            ));
        }
        g = crate::pipeline::wait(heads_cv, g);
    }
}

fn read_worker(jobs: &Queue<Job>, done: &Ordered<Out>, abort: &Abort) -> Result<()> {
    let mut dctx = zstd::bulk::Decompressor::new().map_err(|e| Error::Refused {
        what: format!("zstd: {e}"),
    })?;
    // Each worker decodes into its own scratch buffer and swaps it with the payload's buffer, so
    // it never waits on the pool while the families hold it (that would deadlock).
    let mut scratch = Vec::new();
    while let Some(Job { header, buf, at }) = jobs.pop(abort) {
        let o = check_and_decode(&header, buf, &at, &mut dctx, &mut scratch)?;
        done.put(header.seq, o);
    }
    Ok(())
}

/// Check a block's payload CRC, decode it, and check the original bytes' hash.
fn check_and_decode(
    header: &BlockHeader,
    buf: Vec<u8>,
    at: &Location,
    dctx: &mut zstd::bulk::Decompressor<'_>,
    scratch: &mut Vec<u8>,
) -> Result<Out> {
    let payload = &buf[..header.stored_len as usize];
    let crc = crc32fast::hash(payload);
    if crc != header.payload_crc {
        return Err(Error::mismatch(
            at.clone(),
            "block payload CRC does not hold",
            format!("{:#010x}", header.payload_crc),
            format!("{crc:#010x}"),
        ));
    }
    match header.codec {
        BlockCodec::Raw => {
            // The payload CRC proves these are the bytes the writer hashed, and the hash in the
            // CRC-checked header goes into the digest: hashing them again would prove nothing
            // more and cost a pass over every byte.
            check_raw_frame(payload, header.original_len, at)?;
            Ok(Out {
                header: *header,
                buf,
            })
        }
        BlockCodec::Zstd => {
            let ol = header.original_len as usize;
            if scratch.len() < ol {
                scratch.resize(scratch.capacity().max(ol), 0);
            }
            let k = dctx
                .decompress_to_buffer(payload, &mut scratch[..ol])
                .map_err(|e| {
                    Error::corrupt(at.clone(), format!("zstd frame does not decode: {e}"))
                })?;
            if k != ol {
                return Err(Error::mismatch(
                    at.clone(),
                    "block decodes to the wrong length",
                    ol,
                    k,
                ));
            }
            check_hash(header, xxhash_rust::xxh3::xxh3_64(&scratch[..ol]), at)?;
            let dst = std::mem::replace(scratch, buf);
            Ok(Out {
                header: *header,
                buf: dst,
            })
        }
    }
}

fn check_hash(header: &BlockHeader, got: u64, at: &Location) -> Result<()> {
    if got != header.original_hash {
        return Err(Error::mismatch(
            at.clone(),
            "block's original bytes do not match their hash",
            format!("{:#018x}", header.original_hash),
            format!("{got:#018x}"),
        ));
    }
    Ok(())
}
