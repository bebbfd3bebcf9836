//! BACKUP: one backup set from a reader onto devices. The calling thread fills buffers from
//! the input, a pool of workers encodes them (per-block codecs), and one writer thread per
//! device takes the finished blocks in sequence order as the placement allows: without parity,
//! the first free writer takes the next block, so a slow device takes fewer blocks instead of
//! stalling the others. Memory: the buffer pool plus one scratch buffer per worker, whatever
//! the input size.

use std::io::{IoSlice, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::bytes::*;
use crate::codec::keys::{key_record_mac, trailing_mac, Encryption};
use crate::codec::seal::{new_data_key, Cipher, SetKeys};
use crate::codec::{raw_pieces, Encoded, Encoder, SetDigest};
use crate::device::{check_distinct, open_write, write_all, WriteDevice};
use crate::engine::{
    run_part, spawn_part, Cell, Ordered, Placement, Pool, Queue, RaiseOnPanic, Stop,
};
use crate::error::{Error, Refusal, Result};
use crate::limits::{cut, INFO_MAX_BYTES};
use crate::media::append::{inspect, plan, write_slot, Found, MediaRequest, Plan};
use crate::media::mirror::{CopyFailures, FailedCopy, MirrorWriter, MAX_COPIES};
use crate::media::InitMode;

/// Everything a backup needs to know besides its input and devices.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Codec of the new set.
    pub codec: Codec,
    /// Max transfer size: the size of each block of original bytes.
    pub max_transfer: u32,
    /// Buffers in the pool (0: devices x 4 + 2).
    pub buffer_count: usize,
    /// Encoding workers.
    pub threads: usize,
    /// Backup name.
    pub name: String,
    /// Backup description.
    pub description: String,
    /// Media name; when given on existing media it must match unless `skip`.
    pub media_name: Option<String>,
    /// Media description for new media.
    pub media_description: String,
    /// NOINIT / INIT / FORMAT.
    pub mode: InitMode,
    /// Skip the expiration and media-name checks.
    pub skip: bool,
    /// When the new set may be overwritten, microseconds since the epoch (0 = any time).
    pub expire_us: i64,
    /// Make every device durable at the end (fsync).
    pub sync: bool,
    /// What the input was, for the set header ("stdin" or a path).
    pub source_label: String,
    /// Size of the input when known (a file), for the leading config.
    pub expected_size: Option<u64>,
    /// User name for the set header.
    pub user: String,
    /// Host name for the set header.
    pub host: String,
    /// Encrypt the set to these recipients and passphrase (`None`: no encryption).
    pub encryption: Option<Encryption>,
    /// Move each family to its next volume before a volume grows past this many bytes
    /// (files and objects; at least 1 MiB). `None`: one volume, except on object storage,
    /// where a store's part-count limit cuts volumes anyway.
    pub volume_size: Option<u64>,
}

impl BackupOptions {
    /// Refuse options beyond the stated limits ([`crate::limits`]): text fields too long for
    /// their record, thread or buffer counts that cannot be met, a block size the format does
    /// not have. [`backup`] checks them first; a tool calls this before it opens any device, so
    /// nothing is created or changed for a request that is refused.
    pub fn check(&self) -> Result<()> {
        use crate::limits::*;
        let mts = self.max_transfer;
        if !(MIN_TRANSFER..=MAX_TRANSFER).contains(&mts) || !mts.is_multiple_of(MIN_TRANSFER) {
            return Err(Error::refused(
                Refusal::Usage,
                format!("max transfer size {mts} is not 64 KiB to 4 MiB in steps of 64 KiB"),
            ));
        }
        check_text("the backup name", &self.name, NAME_MAX_CHARS)?;
        check_text(
            "the backup description",
            &self.description,
            DESCRIPTION_MAX_CHARS,
        )?;
        if let Some(m) = &self.media_name {
            check_text("the media name", m, NAME_MAX_CHARS)?;
        }
        check_text(
            "the media description",
            &self.media_description,
            DESCRIPTION_MAX_CHARS,
        )?;
        check_count("threads", self.threads, 1, MAX_THREADS)?;
        if let Some(v) = self.volume_size {
            if v < crate::media::volumes::MIN_VOLUME_SIZE {
                return Err(Error::refused(
                    Refusal::Usage,
                    format!("volume size {v} is less than 1 MiB"),
                ));
            }
        }
        if self.buffer_count != 0 {
            check_count("buffer count", self.buffer_count, 2, MAX_BUFFERS)?;
            check_pool("buffer count", self.buffer_count, u64::from(mts))?;
        }
        if self.encryption.as_ref().is_some_and(|e| !e.is_set()) {
            return Err(Error::refused(
                Refusal::Usage,
                "encryption asked for without a recipient or passphrase",
            ));
        }
        Ok(())
    }
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            codec: Codec::None,
            max_transfer: 1 << 20,
            buffer_count: 0,
            threads: crate::limits::default_threads(),
            name: String::new(),
            description: String::new(),
            media_name: None,
            media_description: String::new(),
            mode: InitMode::Append,
            skip: false,
            expire_us: 0,
            sync: true,
            source_label: "stdin".into(),
            expected_size: None,
            user: current_user(),
            host: current_host(),
            encryption: None,
            volume_size: None,
        }
    }
}

/// What a finished backup did.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// Position of the new set.
    pub position: u32,
    /// GUID of the new set.
    pub set_id: Guid,
    /// GUID of the media set.
    pub media_set_id: Guid,
    /// Original bytes.
    pub original_bytes: u64,
    /// Stored payload bytes.
    pub stored_bytes: u64,
    /// Bytes written to the devices in all (records included).
    pub device_bytes: u64,
    /// Blocks.
    pub blocks: u64,
    /// Families.
    pub families: u32,
    /// Blocks per family, in family order.
    pub family_blocks: Vec<u64>,
    /// Wall time.
    pub seconds: f64,
    /// End-to-end digest.
    pub digest: [u8; 16],
    /// True when new media headers were written.
    pub formatted: bool,
    /// The cipher, when the set is encrypted.
    pub cipher: Option<Cipher>,
    /// Copies of each family (1 without mirrors).
    pub mirror_count: u16,
    /// Copies that failed during the backup and were left behind (the set was finished on
    /// the others, so it is restorable, but the media set is not whole).
    pub failed_copies: Vec<FailedCopy>,
}

/// The login name of the current user.
pub fn current_user() -> String {
    use std::os::unix::fs::MetadataExt;
    for v in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(v) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    std::fs::metadata("/proc/self")
        .map(|m| format!("uid {}", m.uid()))
        .unwrap_or_default()
}

/// The host name of this machine.
pub fn current_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Open the devices of a backup by path ("-" is standard output), refusing one given twice.
/// Nothing on them changes until [`backup`] has checked what they hold.
pub fn open_backup_devices(
    paths: &[PathBuf],
    max_transfer: u32,
) -> Result<Vec<Box<dyn WriteDevice>>> {
    open_backup_devices_with(paths, &|p| open_write(p, 2 * max_transfer as usize))
}

/// [`open_backup_devices`] with another way to open a name (a program that also takes URLs
/// opens those itself and hands the rest to [`open_write`]).
pub fn open_backup_devices_with(
    paths: &[PathBuf],
    open: &dyn Fn(&std::path::Path) -> Result<Box<dyn WriteDevice>>,
) -> Result<Vec<Box<dyn WriteDevice>>> {
    if paths.is_empty() || paths.len() > 64 {
        return Err(Error::refused(Refusal::Usage, "give 1 to 64 devices"));
    }
    check_distinct(paths)?;
    paths.iter().map(|p| open(p)).collect()
}

/// A block ready for the device writers.
struct Ready {
    buf: Vec<u8>,
    e: Encoded,
}

struct Job {
    seq: u64,
    last: bool,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Totals {
    original: u64,
    stored: u64,
    blocks: u64,
    hashes: Vec<(u64, u64)>,
}

#[derive(Default)]
struct Finish {
    done: usize,
    info: Option<TrailingConfig>,
}

/// Back up `input` as one new backup set onto `devices` (1 to 64, in family order for new
/// media). `progress` is called from the reading thread with the original bytes read so far.
/// Raising `stop` (from another thread) ends the backup: the set is left incomplete and the
/// result is [`Error::Interrupted`].
pub fn backup(
    input: &mut dyn Read,
    input_name: &str,
    devices: Vec<Box<dyn WriteDevice>>,
    opts: &BackupOptions,
    progress: &(dyn Fn(u64) + Sync),
    stop: &Stop,
) -> Result<BackupSummary> {
    backup_mirrored(input, input_name, vec![devices], opts, progress, stop)
}

/// [`backup`] onto several copies of every family (MIRROR TO): `copies[0]` are the devices of
/// the media set, each further list (up to 3, as long as the first) a mirror: family `i` is
/// also written, byte for byte but its label, to `copies[k][i]`. A copy that fails during the
/// backup is left behind while another copy of its family goes on; the summary names it
/// ([`BackupSummary::failed_copies`]). A family left with no copy fails the backup.
pub fn backup_mirrored(
    input: &mut dyn Read,
    input_name: &str,
    copies: Vec<Vec<Box<dyn WriteDevice>>>,
    opts: &BackupOptions,
    progress: &(dyn Fn(u64) + Sync),
    stop: &Stop,
) -> Result<BackupSummary> {
    let started = Instant::now();
    opts.check()?;
    let mts = opts.max_transfer;
    let n = copies.first().map_or(0, Vec::len);
    if n == 0 || n > 64 {
        return Err(Error::refused(Refusal::Usage, "give 1 to 64 devices"));
    }
    if copies.len() > MAX_COPIES {
        return Err(Error::refused(
            Refusal::Usage,
            format!("at most {} mirrors (--mirror-to)", MAX_COPIES - 1),
        ));
    }
    if let Some(l) = copies.iter().find(|l| l.len() != n) {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "a mirror has {} device{} but the media set {n}: give each mirror as many \
                 devices as the main list",
                l.len(),
                if l.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let copies = copies
        .into_iter()
        .map(|list| {
            list.into_iter()
                .map(|d| {
                    let over = opts.mode != InitMode::Append;
                    crate::media::volumes::for_writing(d, opts.volume_size, opts.sync, over)
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let set_id = new_guid();
    // The data key is wrapped before any device changes: a passphrase's scrypt takes a
    // second, and nothing is cut for a backup that cannot start.
    let sealing = match &opts.encryption {
        Some(e) => {
            let dk = new_data_key()?;
            let keys = Arc::new(SetKeys::derive(e.cipher(), &dk, &set_id)?);
            Some((keys, e.wrap(&dk)?))
        }
        None => None,
    };
    let keys = sealing.as_ref().map(|s| Arc::clone(&s.0));
    let (mut all_plans, position, formatted) = prepare(&copies, opts)?;
    let mirror_count = copies.len() as u16;
    let failures: CopyFailures = Default::default();
    let plans = all_plans.remove(0);
    let devices: Vec<Box<dyn WriteDevice>> = if copies.len() == 1 {
        copies.into_iter().next().unwrap_or_default()
    } else {
        let mut lists: Vec<std::vec::IntoIter<Box<dyn WriteDevice>>> =
            copies.into_iter().map(Vec::into_iter).collect();
        (0..n)
            .map(|i| {
                let p = &plans[i];
                let label_of = |pl: &Plan| match p.write_label {
                    true => pl.label.encode(),
                    false => Vec::new(),
                };
                let mut tee = Vec::with_capacity(lists.len());
                for (k, list) in lists.iter_mut().enumerate() {
                    let Some(d) = list.next() else { break };
                    let pl = if k == 0 { p } else { &all_plans[k - 1][i] };
                    tee.push((d, pl.label.mirror_number, label_of(pl)));
                }
                Box::new(MirrorWriter::new(
                    p.label.family_number,
                    tee,
                    Arc::clone(&failures),
                )) as Box<dyn WriteDevice>
            })
            .collect()
    };
    let media_set_id = plans[0].label.media_set_id;
    let mut family_ids = vec![[0u8; 16]; n];
    for p in &plans {
        family_ids[p.label.family_number as usize - 1] = p.label.family_id;
    }
    let leading = LeadingConfig {
        set_id,
        codec: opts.codec,
        digest_algorithm: if keys.is_some() {
            DIGEST_KEYED
        } else {
            DIGEST_XXH3_TREE
        },
        checksum_algorithm: CHECKSUM_CRC32,
        max_transfer: mts,
        family_count: n as u16,
        parity_count: 0,
        encryption: keys.as_ref().map_or(0, |k| k.cipher().id()),
        key_records: sealing.as_ref().map_or(0, |s| s.1.len() as u16),
        expected_size: opts.expected_size.unwrap_or(u64::MAX),
        family_ids,
    }
    .encode();
    let start_us = now_us();
    let set_header = |fam: u16| SetHeader {
        set_id,
        media_set_id,
        position,
        family_count: n as u16,
        family_number: fam,
        start_us,
        expire_us: opts.expire_us,
        codec: opts.codec,
        max_transfer: mts,
        name: opts.name.clone(),
        description: opts.description.clone(),
        user: cut(&opts.user, INFO_MAX_BYTES).into(),
        host: cut(&opts.host, INFO_MAX_BYTES).into(),
        source: cut(&opts.source_label, INFO_MAX_BYTES).into(),
        software_name: "bak".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    };

    let op = stop.child();
    let buffers = match opts.buffer_count {
        0 => n * 4 + 2,
        c => c,
    }
    .max(2);
    let buf_size = payload_capacity(mts);
    let pool = Pool::new(buffers, buf_size, &op);
    let jobs: Queue<Job> = Queue::new(buffers, &op);
    let ready: Ordered<Ready> = Ordered::new(Placement::FirstFree, &op);
    let totals = Cell::new(Totals::default(), &op);
    let finish = Cell::new(Finish::default(), &op);
    let threads = opts.threads.max(1);
    let (pool, jobs, ready, totals, finish, leading) =
        (&pool, &jobs, &ready, &totals, &finish, &leading);
    let cx = WriterCtx {
        leading,
        ready,
        pool,
        stop: &op,
        totals,
        finish,
        sync: opts.sync,
        set_id,
        position,
        keys: keys.as_deref(),
    };

    let results: Vec<Option<(u16, u64, u64)>> = std::thread::scope(|s| {
        let _guard = RaiseOnPanic(&op);
        for _ in 0..threads {
            let op = &op;
            let keys = keys.clone();
            spawn_part(s, op, "compression", move || {
                run_part(op, "compression", || {
                    let mut enc = Encoder::new(opts.codec, buf_size, keys.clone())?;
                    while let Some(Job { seq, last, buf }) = jobs.pop() {
                        let (buf, e) = enc.encode(seq, last, buf);
                        ready.put(seq, Ready { buf, e });
                    }
                    Ok(())
                })
            });
        }
        let handles: Vec<_> = devices
            .into_iter()
            .zip(plans)
            .enumerate()
            .map(|(i, (d, p))| {
                let header = set_header(p.label.family_number).encode();
                let key_recs = match &sealing {
                    Some((k, wrapped)) => key_records(k, wrapped, set_id, &header, leading),
                    None => Vec::new(),
                };
                let head = [header, key_recs];
                let cx = &cx;
                spawn_part(s, cx.stop, "device writer", move || {
                    let mut out = None;
                    run_part(cx.stop, "device writer", || {
                        out = Some(device_writer(i, d, p, head, cx)?);
                        Ok(())
                    });
                    out
                })
            })
            .collect();

        // The reading thread: fill buffers, hand them to the workers.
        let read_result =
            feed(input, input_name, mts, pool, jobs, ready, progress).and_then(|blocks| {
                let end = SetEnd {
                    n,
                    set_id,
                    position,
                    keys: keys.as_deref(),
                };
                finish_set(blocks, &end, totals, finish)
            });
        if let Err(e) = read_result {
            op.fail(e);
        }
        handles
            .into_iter()
            .map(|h| h.and_then(|h| h.join().ok().flatten()))
            .collect()
    });
    op.outcome(())?;
    let mut family_blocks = vec![0u64; n];
    let mut device_bytes = 0;
    for (fam, blocks, bytes) in results.into_iter().flatten() {
        family_blocks[fam as usize - 1] = blocks;
        device_bytes += bytes;
    }
    let t = totals.update(|t| (t.original, t.stored, t.blocks));
    let digest = finish.update(|f| f.info.as_ref().map_or([0; 16], |i| i.digest));
    let failed_copies = std::mem::take(&mut *failures.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(BackupSummary {
        position,
        set_id,
        media_set_id,
        original_bytes: t.0,
        stored_bytes: t.1,
        device_bytes,
        blocks: t.2,
        families: n as u32,
        family_blocks,
        seconds: started.elapsed().as_secs_f64(),
        digest,
        formatted,
        cipher: keys.as_ref().map(|k| k.cipher()),
        mirror_count,
        failed_copies,
    })
}

/// The key records of one family: each wrapping of the data key, with its MAC over this
/// family's set header and the leading config (`header` and `leading` are whole records).
fn key_records(
    keys: &SetKeys,
    wrapped: &[crate::codec::keys::Wrapped],
    set_id: Guid,
    header: &[u8],
    leading: &[u8],
) -> Vec<u8> {
    let bodies = (&header[RECORD_PREFIX_LEN..], &leading[RECORD_PREFIX_LEN..]);
    let mut out = Vec::new();
    for (i, w) in wrapped.iter().enumerate() {
        let mut r = KeyRecord {
            set_id,
            index: i as u16,
            count: wrapped.len() as u16,
            kind: w.kind,
            fingerprints: w.fingerprints.clone(),
            text: KeyRecord::text_of(&set_id, w.kind, &w.armored),
            mac: [0; KEY_MAC_LEN],
        };
        r.mac = key_record_mac(keys, bodies, &r.signed_body());
        out.extend(r.encode());
    }
    out
}

/// Check what the devices hold against what was asked, then (only then) make them ready:
/// the set map says exactly what is complete (so a crash from here on loses nothing that
/// was), and what the new set replaces is cut. Returns the plans (one list per copy), the new
/// set's position, and whether new media headers are written.
fn prepare(
    copies: &[Vec<Box<dyn WriteDevice>>],
    opts: &BackupOptions,
) -> Result<(Vec<Vec<Plan>>, u32, bool)> {
    let req = MediaRequest {
        mode: opts.mode,
        skip: opts.skip,
        media_name: opts.media_name.as_deref(),
        media_description: &opts.media_description,
        now_us: now_us(),
    };
    let m = copies.len() as u16;
    let mut lists = Vec::with_capacity(copies.len());
    for devices in copies {
        let found = devices
            .iter()
            .map(|d| inspect(d.as_ref()))
            .collect::<Result<Vec<Found>>>()?;
        let names: Vec<&str> = devices.iter().map(|d| d.name()).collect();
        lists.push((plan(&req, &names, &found)?, names));
    }
    let (mut plans, position, formatted) = {
        let (main, names) = lists.remove(0);
        crate::media::mirror::reconcile(main, &names, lists, m)?
    };

    for (devices, plans) in copies.iter().zip(plans.iter_mut()) {
        for (d, p) in devices.iter().zip(plans.iter_mut()) {
            let (caps, name) = (d.caps(), d.name());
            if p.write_label {
                if caps.truncate {
                    d.set_len(0).map_err(|e| Error::io(name, "truncate", e))?;
                }
                continue;
            }
            // Appending to existing media: only a device that holds them can get here.
            if caps.overwrite {
                p.slot.generation += 1;
                write_slot(d.as_ref(), &p.slot, opts.sync)?;
            }
            if caps.truncate {
                d.set_len(p.start)
                    .map_err(|e| Error::io(name, "truncate", e))?;
            }
        }
    }

    Ok((plans, position, formatted))
}

/// Fill pool buffers from the input and queue them for the workers. Returns the number of
/// blocks, or stops early (with the count so far) when the stop is raised. A full block is
/// held until the next read says whether it was the last: an encrypted set marks its last
/// block inside the seal.
fn feed(
    input: &mut dyn Read,
    input_name: &str,
    mts: u32,
    pool: &Pool,
    jobs: &Queue<Job>,
    ready: &Ordered<Ready>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<u64>> {
    let tx = jobs.sender();
    let mut seq = 0u64;
    let mut total = 0u64;
    let mut held: Option<Vec<u8>> = None;
    let push = |buf: Vec<u8>, last: bool, seq: &mut u64| -> bool {
        let ok = tx.push(Job {
            seq: *seq,
            last,
            buf,
        });
        *seq += 1;
        ok
    };
    loop {
        let Some(mut buf) = pool.get() else {
            return Ok(None);
        };
        // Buffers come back with their old length: grow (zeroing only the new part) or cut.
        buf.resize(mts as usize, 0);
        let got = fill(input, &mut buf).map_err(|e| Error::io(input_name, "read", e))?;
        if got == 0 {
            pool.put(buf);
            break;
        }
        buf.truncate(got);
        total += got as u64;
        if let Some(prev) = held.take() {
            if !push(prev, false, &mut seq) {
                return Ok(None);
            }
        }
        progress(total);
        if got < mts as usize {
            // `fill` stops short only at the end of the input.
            if !push(buf, true, &mut seq) {
                return Ok(None);
            }
            break;
        }
        held = Some(buf);
    }
    if let Some(prev) = held.take() {
        if !push(prev, true, &mut seq) {
            return Ok(None);
        }
    }
    drop(tx);
    ready.finish(seq);
    Ok(Some(seq))
}

/// What the end of a set needs to know of it.
struct SetEnd<'a> {
    n: usize,
    set_id: Guid,
    position: u32,
    keys: Option<&'a SetKeys>,
}

/// Once every writer has written its last block, work out the set's totals and digest and
/// release them to the writers for their trailing records.
fn finish_set(
    blocks: Option<u64>,
    end: &SetEnd<'_>,
    totals: &Cell<Totals>,
    finish: &Cell<Finish>,
) -> Result<()> {
    let SetEnd {
        n,
        set_id,
        position,
        keys,
    } = *end;
    if blocks.is_none() || finish.wait_for(|f| (f.done == n).then_some(())).is_none() {
        return Ok(());
    }
    let info = totals.update(|t| {
        t.hashes.sort_unstable();
        TrailingConfig {
            set_id,
            position,
            family_number: 0,
            family_count: n as u16,
            finish_us: now_us(),
            total_original: t.original,
            total_stored: t.stored,
            total_blocks: t.blocks,
            digest_algorithm: if keys.is_some() {
                DIGEST_KEYED
            } else {
                DIGEST_XXH3_TREE
            },
            digest: SetDigest::of(keys, t.hashes.iter().map(|h| h.1)),
            ..Default::default()
        }
    });
    finish.update(|f| f.info = Some(info));
    Ok(())
}

/// Read until `buf` is full or the input ends.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

struct WriterCtx<'a> {
    leading: &'a [u8],
    ready: &'a Ordered<Ready>,
    pool: &'a Pool,
    stop: &'a Stop,
    totals: &'a Cell<Totals>,
    finish: &'a Cell<Finish>,
    sync: bool,
    set_id: Guid,
    position: u32,
    keys: Option<&'a SetKeys>,
}

/// Write a block header and its stored payload. The raw path writes the original buffer where
/// it lies, with the frame's headers around its pieces: no copy.
fn write_block(
    dev: &mut dyn WriteDevice,
    header: &[u8],
    buf: &[u8],
    e: &Encoded,
) -> std::io::Result<()> {
    if let Some(tag) = &e.tag {
        let n = (e.stored_len - SEALED_OVERHEAD) as usize;
        let fh = sealed_frame_header(e.stored_len);
        let mut v = [
            IoSlice::new(header),
            IoSlice::new(&fh),
            IoSlice::new(&buf[..n]),
            IoSlice::new(tag),
        ];
        return write_all(dev, &mut v);
    }
    match e.codec {
        BlockCodec::Zstd => {
            let mut v = [
                IoSlice::new(header),
                IoSlice::new(&buf[..e.stored_len as usize]),
            ];
            write_all(dev, &mut v)
        }
        BlockCodec::Raw => {
            let data = &buf[..e.original_len as usize];
            let (fh, heads) = raw_pieces(data);
            let mut v = Vec::with_capacity(2 + 2 * heads.len());
            v.push(IoSlice::new(header));
            v.push(IoSlice::new(&fh));
            for (c, h) in data.chunks(RAW_BLOCK_MAX as usize).zip(&heads) {
                v.push(IoSlice::new(h));
                v.push(IoSlice::new(c));
            }
            write_all(dev, &mut v)
        }
    }
}

/// Write one family's part of the set. Returns (family number, blocks, bytes written), or
/// `None` when the backup was stopped before the family's end was written.
fn device_writer(
    taker: usize,
    mut dev: Box<dyn WriteDevice>,
    plan: Plan,
    head: [Vec<u8>; 2],
    cx: &WriterCtx<'_>,
) -> Result<(u16, u64, u64)> {
    let [set_header, key_recs] = head;
    let name = dev.name().to_string();
    let ioerr = |e: std::io::Error| Error::io(&name, "write", e);
    dev.begin(plan.start)
        .map_err(|e| Error::io(&name, "open", e))?;
    let fam = plan.label.family_number;
    let mut offset = plan.start;
    if plan.write_label {
        let mut head = plan.label.encode();
        head.extend_from_slice(&plan.slot.encode_frame());
        write_all(dev.as_mut(), &mut [IoSlice::new(&head)]).map_err(ioerr)?;
        offset += head.len() as u64;
    }
    let set_header_offset = offset;
    write_all(
        dev.as_mut(),
        &mut [
            IoSlice::new(&set_header),
            IoSlice::new(cx.leading),
            IoSlice::new(&key_recs),
        ],
    )
    .map_err(ioerr)?;
    offset += (set_header.len() + cx.leading.len() + key_recs.len()) as u64;

    let mut mbc = Mbc {
        set_id: cx.set_id,
        position: cx.position,
        family_number: fam,
        entries: Vec::new(),
    };
    let (mut fam_orig, mut fam_stored) = (0u64, 0u64);
    while let Some((seq, Ready { buf, e })) = cx.ready.take(taker) {
        cx.totals.update(|t| {
            t.original += e.original_len as u64;
            t.stored += e.stored_len as u64;
            t.blocks += 1;
            t.hashes.push((seq, e.hash));
        });
        let header = BlockHeader {
            set_id: cx.set_id,
            seq,
            family: fam,
            codec: e.codec,
            flags: e.flags,
            stored_len: e.stored_len,
            original_len: e.original_len,
            payload_crc: e.crc,
            position: cx.position,
            original_hash: e.hash,
        }
        .encode();
        write_block(dev.as_mut(), &header, &buf, &e).map_err(ioerr)?;
        mbc.entries.push(MbcEntry {
            seq,
            offset,
            stored_len: e.stored_len,
            original_len: e.original_len,
            payload_crc: e.crc,
            codec: matches!(e.codec, BlockCodec::Zstd) as u8,
            original_hash: e.hash,
        });
        offset += (header.len() + e.stored_len as usize) as u64;
        fam_orig += e.original_len as u64;
        fam_stored += e.stored_len as u64;
        cx.pool.put(buf);
    }
    if cx.stop.is_raised() {
        return Err(Error::Interrupted);
    }
    // Wait for the whole set's totals.
    cx.finish.update(|f| f.done += 1);
    let Some(info) = cx.finish.wait_for(|f| f.info.clone()) else {
        return Err(Error::Interrupted);
    };
    let family_blocks = mbc.entries.len() as u64;
    let mut trailing = TrailingConfig {
        family_number: fam,
        family_original: fam_orig,
        family_stored: fam_stored,
        family_blocks,
        ..info
    };
    if let Some(k) = cx.keys {
        trailing.mac = Some(trailing_mac(k, &trailing.signed_body()));
    }
    let trailing = trailing.encode();
    let trailing_offset = offset;
    let mbc_bytes = mbc.encode();
    let mbc_offset = trailing_offset + trailing.len() as u64;
    let eset_offset = mbc_offset + mbc_bytes.len() as u64;
    let eset = EndOfSet {
        set_id: cx.set_id,
        media_set_id: plan.label.media_set_id,
        position: cx.position,
        family_number: fam,
        set_header_offset,
        trailing_offset,
        mbc_offset,
        self_offset: eset_offset,
        prev_eset_offset: plan.prev_eset,
        family_blocks,
    }
    .encode();
    let durable = cx.sync && dev.caps().durable_sync;
    let sync = |d: &dyn WriteDevice| -> Result<()> {
        if durable {
            d.sync().map_err(|e| Error::io(&name, "sync", e))?;
        }
        Ok(())
    };
    // Make the data durable before the end-of-set that vouches for it.
    write_all(
        dev.as_mut(),
        &mut [IoSlice::new(&trailing), IoSlice::new(&mbc_bytes)],
    )
    .map_err(ioerr)?;
    dev.flush().map_err(ioerr)?;
    sync(dev.as_ref())?;
    write_all(dev.as_mut(), &mut [IoSlice::new(&eset)]).map_err(ioerr)?;
    dev.flush().map_err(ioerr)?;
    let end = eset_offset + ESET_FRAME_LEN as u64;
    if dev.caps().overwrite {
        sync(dev.as_ref())?;
        let slot = SetMapSlot {
            generation: plan.slot.generation + 1,
            complete_sets: cx.position,
            last_eset_offset: eset_offset,
            end_offset: end,
            media_set_id: plan.label.media_set_id,
        };
        write_slot(dev.as_ref(), &slot, cx.sync)?;
    }
    dev.finish().map_err(ioerr)?;
    Ok((fam, family_blocks, end - plan.start))
}
