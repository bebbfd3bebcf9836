//! The write pipeline: one reader (the calling thread) fills buffers from the input, a pool of
//! workers compresses and checksums them, and one writer thread per device takes the finished
//! blocks strictly in sequence order, each taking the next block as soon as it is free (so a slow
//! device takes fewer blocks instead of stalling the others). Memory: the buffer pool plus one
//! scratch buffer per worker, whatever the input size.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::format::*;
use crate::media::{read_label, scan_family, FamilyScan};
use crate::pipeline::{guarded, write_all_vectored, Abort, Ordered, Pool, Queue};

/// What to do with media that already hold backup sets (SQL Server's NOINIT / INIT / FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitMode {
    /// Append a new set (NOINIT); new media are formatted when all devices are empty.
    #[default]
    Append,
    /// Overwrite all sets, keep the media header.
    Init,
    /// Write new media headers: a new media set.
    Format,
}

/// Everything bak-write needs to know.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The devices; "-" is standard output.
    pub devices: Vec<PathBuf>,
    /// Codec of the new set.
    pub codec: Codec,
    /// Max transfer size: the size of each block of original bytes.
    pub max_transfer: u32,
    /// Buffers in the pool.
    pub buffer_count: usize,
    /// Compression workers.
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
    /// fsync every device at the end.
    pub sync: bool,
    /// What the input was, for the set header ("stdin" or a path).
    pub source_label: String,
    /// Size of the input when known (a file), for the leading config and progress.
    pub expected_size: Option<u64>,
    /// User name for the set header.
    pub user: String,
    /// Host name for the set header.
    pub host: String,
}

impl WriteOptions {
    /// Options with the defaults of bak-write for these devices.
    pub fn new(devices: Vec<PathBuf>) -> Self {
        let n = devices.len();
        WriteOptions {
            devices,
            codec: Codec::None,
            max_transfer: 1 << 20,
            buffer_count: n * 4 + 2,
            threads: std::thread::available_parallelism().map_or(2, |x| x.get()),
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
        }
    }
}

/// What a finished write did.
#[derive(Debug, Clone)]
pub struct WriteSummary {
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
}

/// The login name of the current user.
pub fn current_user() -> String {
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

/// How a device is reached.
enum Target {
    /// A regular file, opened, locked, inspected.
    File(File),
    /// A FIFO or character device: opened by its writer thread (opening a FIFO waits for a reader).
    Stream(PathBuf),
    /// Standard output.
    Stdout,
}

/// What was found on a device before writing.
enum Found {
    /// Nothing: a new or empty file, a FIFO, stdout.
    Empty,
    /// bak media.
    Media(Box<FamilyScan>),
    /// Something else.
    Foreign(String),
}

struct Device {
    path: PathBuf,
    name: String,
    target: Target,
    found: Found,
}

/// One device's plan: where writing starts, and what it writes first.
struct Plan {
    label: MediaHeader,
    write_label: bool,
    start: u64,
    prev_eset: u64,
    slot: SetMapSlot,
}

fn open_device(path: &Path) -> Result<Device> {
    let name = path.display().to_string();
    if name == "-" {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            return Err(Error::Refused {
                what: "refusing to write backup media to a terminal; redirect standard output"
                    .into(),
            });
        }
        return Ok(Device {
            path: path.into(),
            name: "stdout".into(),
            target: Target::Stdout,
            found: Found::Empty,
        });
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, "stat", e)),
    };
    if let Some(m) = &meta {
        let ft = m.file_type();
        if ft.is_dir() {
            return Err(Error::Refused {
                what: format!("{name}: is a directory, not a backup device"),
            });
        }
        if ft.is_fifo() || ft.is_char_device() || ft.is_socket() {
            if ft.is_char_device() && is_tty(path) {
                return Err(Error::Refused {
                    what: format!("{name}: refusing to write backup media to a terminal"),
                });
            }
            return Ok(Device {
                path: path.into(),
                name,
                target: Target::Stream(path.into()),
                found: Found::Empty,
            });
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, "open", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Refused {
                what: format!(
                    "{name}: in use by another bak process (locked); try again when it ends"
                ),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, "lock", e)),
    }
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    let found = if len == 0 {
        Found::Empty
    } else {
        match read_label(&file, path) {
            Ok(Some(_)) => Found::Media(Box::new(scan_family(&file, path)?)),
            Ok(None) => Found::Foreign(crate::media::first_bytes(&file)),
            Err(e) if e.is_media_damage() => Found::Foreign(format!("damaged bak media ({e})")),
            Err(e) => return Err(e),
        }
    };
    Ok(Device {
        path: path.into(),
        name,
        target: Target::File(file),
        found,
    })
}

fn is_tty(path: &Path) -> bool {
    use std::io::IsTerminal;
    File::open(path).map(|f| f.is_terminal()).unwrap_or(false)
}

/// Refuse a device given twice (by path, link or hard link), before anything is opened or locked.
fn check_distinct(paths: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<((u64, u64), &Path)> = Vec::new();
    for p in paths {
        let id = if p.as_os_str() == "-" {
            Some((u64::MAX, u64::MAX))
        } else {
            // A path that does not exist yet is told apart by its absolute form.
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.dev(), m.ino()))
                .or_else(|| {
                    let a = std::path::absolute(p).ok()?;
                    let h = xxhash_rust::xxh3::xxh3_64(a.as_os_str().as_encoded_bytes());
                    Some((u64::MAX - 1, h))
                })
        };
        if let Some(id) = id {
            if let Some((_, other)) = seen.iter().find(|(x, _)| *x == id) {
                return Err(Error::Refused {
                    what: format!(
                        "{} and {} are the same device, given twice",
                        p.display(),
                        other.display()
                    ),
                });
            }
            seen.push((id, p));
        }
    }
    Ok(())
}

fn new_label(opts: &WriteOptions, media_set_id: Guid, n: u16, i: u16) -> MediaHeader {
    MediaHeader {
        media_set_id,
        family_id: new_guid(),
        family_count: n,
        family_number: i,
        media_sequence: 1,
        mirror_count: 1,
        mirror_number: 1,
        parity_count: 0,
        flags: MEDIA_FLAG_SET_MAP,
        created_us: now_us(),
        media_name: opts.media_name.clone().unwrap_or_default(),
        media_description: opts.media_description.clone(),
        software_name: "bak".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Work out, for every device, what to write where; refuse what NOINIT/INIT/FORMAT forbid.
/// Returns the plans (in device order) and the position of the new set.
fn plan(opts: &WriteOptions, devs: &[Device]) -> Result<(Vec<Plan>, u32, bool)> {
    let n = devs.len() as u16;
    let media_set_id = new_guid();
    let fresh = |devs: &[Device]| -> Vec<Plan> {
        devs.iter()
            .enumerate()
            .map(|(i, _)| Plan {
                label: new_label(opts, media_set_id, n, i as u16 + 1),
                write_label: true,
                start: 0,
                prev_eset: 0,
                slot: SetMapSlot {
                    media_set_id,
                    ..Default::default()
                },
            })
            .collect()
    };
    if opts.mode == InitMode::Format {
        return Ok((fresh(devs), 1, true));
    }
    let scans: Vec<Option<&FamilyScan>> = devs
        .iter()
        .map(|d| match &d.found {
            Found::Media(s) => Some(&**s),
            _ => None,
        })
        .collect();
    for d in devs {
        if let Found::Foreign(what) = &d.found {
            return Err(Error::Refused {
                what: format!(
                    "{}: holds data that is not bak media ({what}); --format overwrites it",
                    d.name
                ),
            });
        }
    }
    if scans.iter().all(Option::is_none) {
        // Nothing there yet: a new media set, whatever the mode.
        return Ok((fresh(devs), 1, true));
    }
    if let Some(i) = scans.iter().position(Option::is_none) {
        return Err(Error::Refused {
            what: format!(
                "{}: holds no bak media while the other devices do; give exactly the devices \
                 of the media set, or --format to start a new one",
                devs[i].name
            ),
        });
    }
    let scans: Vec<&FamilyScan> = scans.into_iter().flatten().collect();
    for (d, s) in devs.iter().zip(&scans) {
        if let Some(e) = &s.broken {
            if opts.mode == InitMode::Append {
                return Err(Error::Refused {
                    what: format!(
                        "{}: earlier backup sets are damaged ({e}); refusing to append. \
                         bak-verify shows the damage; --init or --format starts over",
                        d.name
                    ),
                });
            }
        }
    }
    let first = &scans[0].media;
    for (d, s) in devs.iter().zip(&scans) {
        if s.media.media_set_id != first.media_set_id {
            return Err(Error::Refused {
                what: format!(
                    "{}: belongs to another media set ({}) than {} ({}); --format starts a new one",
                    d.name,
                    guid_string(&s.media.media_set_id),
                    devs[0].name,
                    guid_string(&first.media_set_id)
                ),
            });
        }
    }
    if first.family_count != n {
        return Err(Error::Refused {
            what: format!(
                "the media set has {} families but {} devices were given; only --format can \
                 change the number of families",
                first.family_count, n
            ),
        });
    }
    let mut by_family: Vec<Option<usize>> = vec![None; n as usize];
    for (i, s) in scans.iter().enumerate() {
        let f = s.media.family_number as usize - 1;
        if let Some(j) = by_family[f] {
            return Err(Error::Refused {
                what: format!(
                    "{} and {} are both family {} of the media set",
                    devs[j].name,
                    devs[i].name,
                    f + 1
                ),
            });
        }
        by_family[f] = Some(i);
    }
    if let Some(name) = &opts.media_name {
        if !opts.skip && *name != first.media_name {
            return Err(Error::Refused {
                what: format!(
                    "the media are named {:?}, not {:?}; --skip overrides the check",
                    first.media_name, name
                ),
            });
        }
    }
    // Sets complete on every family, by GUID at each position.
    let complete = (0..)
        .take_while(|&k| {
            let id = scans[0].sets.get(k).map(|s| s.header.set_id);
            id.is_some()
                && scans
                    .iter()
                    .all(|s| s.sets.get(k).map(|x| x.header.set_id) == id)
        })
        .count();
    if opts.mode == InitMode::Init && !opts.skip {
        let now = now_us();
        for s in &scans[0].sets[..complete] {
            if s.header.expire_us > now {
                return Err(Error::Refused {
                    what: format!(
                        "backup set {} ({:?}) has not expired (until {}); --skip overrides the check",
                        s.header.position,
                        s.header.name,
                        crate::dates::format_us(s.header.expire_us)
                    ),
                });
            }
        }
    }
    let keep = if opts.mode == InitMode::Init {
        0
    } else {
        complete
    };
    let plans = scans
        .iter()
        .map(|s| {
            let (start, prev) = match keep {
                0 => (FIRST_SET_OFFSET, 0),
                k => {
                    let e = &s.sets[k - 1].eset;
                    (e.self_offset + ESET_FRAME_LEN as u64, e.self_offset)
                }
            };
            let generation = s.slot.map_or(0, |x| x.generation);
            Plan {
                label: s.media.clone(),
                write_label: false,
                start,
                prev_eset: prev,
                slot: SetMapSlot {
                    generation,
                    complete_sets: keep as u32,
                    last_eset_offset: prev,
                    end_offset: start,
                    media_set_id: s.media.media_set_id,
                },
            }
        })
        .collect();
    Ok((plans, keep as u32 + 1, false))
}

/// Write `slot` into the older of the two set map slots, and sync.
fn write_slot(file: &File, path: &Path, slot: &SetMapSlot, sync: bool) -> Result<()> {
    let bytes = slot.encode();
    let at = if slot.generation.is_multiple_of(2) {
        SET_MAP_OFFSET + FRAME_HEADER_LEN as u64
    } else {
        SET_MAP_OFFSET + SET_MAP_SLOT_B
    };
    file.write_all_at(&bytes, at)
        .map_err(|e| Error::io(path, "write", e))?;
    if sync {
        file.sync_data().map_err(|e| Error::io(path, "sync", e))?;
    }
    Ok(())
}

/// A block ready for the device writers.
struct Ready {
    buf: Vec<u8>,
    original_len: u32,
    codec: BlockCodec,
    stored_len: u32,
    crc: u32,
    hash: u64,
}

struct Job {
    seq: u64,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Totals {
    original: u64,
    stored: u64,
    blocks: u64,
    hashes: Vec<(u64, u64)>,
}

struct Finish {
    done: usize,
    info: Option<TrailingConfig>,
}

/// Write one backup set from `input` to the devices of `opts`.
///
/// `progress` is called from the reading thread with the original bytes read so far.
/// `cancel` is polled; when raised, the write stops and the set is left incomplete.
pub fn write_set(
    input: &mut dyn Read,
    input_name: &str,
    opts: &WriteOptions,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<WriteSummary> {
    let started = Instant::now();
    let mts = opts.max_transfer;
    if !(MIN_TRANSFER..=MAX_TRANSFER).contains(&mts) || !mts.is_multiple_of(MIN_TRANSFER) {
        return Err(Error::Refused {
            what: format!("max transfer size {mts} is not 64 KiB to 4 MiB in steps of 64 KiB"),
        });
    }
    if opts.devices.is_empty() || opts.devices.len() > 64 {
        return Err(Error::Refused {
            what: "give 1 to 64 devices".into(),
        });
    }
    check_distinct(&opts.devices)?;
    let mut devs = opts
        .devices
        .iter()
        .map(|p| open_device(p))
        .collect::<Result<Vec<_>>>()?;
    let (mut plans, position, formatted) = plan(opts, &devs)?;

    // Destructive steps only after every check passed: first make the set map say exactly what
    // is complete (so a crash from here on loses nothing that was), then cut what is replaced.
    for (d, p) in devs.iter_mut().zip(plans.iter_mut()) {
        if let Target::File(f) = &d.target {
            if p.write_label {
                // Only cut what is there: truncating an empty new file makes ext4 flush it on
                // close (auto_da_alloc), which cost ~8 ms per device for nothing.
                if f.metadata().map(|m| m.len()).unwrap_or(1) != 0 {
                    f.set_len(0)
                        .map_err(|e| Error::io(&d.path, "truncate", e))?;
                }
            } else {
                p.slot.generation += 1;
                write_slot(f, &d.path, &p.slot, opts.sync)?;
                f.set_len(p.start)
                    .map_err(|e| Error::io(&d.path, "truncate", e))?;
            }
        }
    }

    let set_id = new_guid();
    let media_set_id = plans[0].label.media_set_id;
    let n = devs.len();
    let family_ids: Vec<Guid> = {
        let mut v = vec![[0u8; 16]; n];
        for p in &plans {
            v[p.label.family_number as usize - 1] = p.label.family_id;
        }
        v
    };
    let leading = LeadingConfig {
        set_id,
        codec: opts.codec,
        digest_algorithm: DIGEST_XXH3_TREE,
        checksum_algorithm: CHECKSUM_CRC32,
        max_transfer: mts,
        family_count: n as u16,
        parity_count: 0,
        encryption: 0,
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
        user: opts.user.clone(),
        host: opts.host.clone(),
        source: opts.source_label.clone(),
        software_name: "bak".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    };

    let abort_own = Abort::default();
    let buf_size = raw_frame_len(mts) as usize;
    let pool_own = Pool::new(opts.buffer_count.max(2), buf_size);
    let jobs_own: Queue<Job> = Queue::new(opts.buffer_count.max(2));
    let ready_own: Ordered<Ready> = Ordered::default();
    let totals_own = Mutex::new(Totals::default());
    let finish_own = Mutex::new(Finish {
        done: 0,
        info: None,
    });
    let finish_cv_own = Condvar::new();
    let (abort, pool, jobs, ready) = (&abort_own, &pool_own, &jobs_own, &ready_own);
    let (totals, finish, finish_cv) = (&totals_own, &finish_own, &finish_cv_own);
    let leading = &leading;
    let set_header = &set_header;
    let threads = opts.threads.max(1);
    // After a failure every thread must see the flag at once, not at its next 50 ms re-check.
    let wake_all = || {
        pool.wake();
        jobs.wake();
        ready.wake();
        drop(finish.lock().unwrap_or_else(|p| p.into_inner()));
        finish_cv.notify_all();
    };

    let result: Result<(Vec<u64>, u64)> = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || {
                let r = guarded("compression", || {
                    worker(opts.codec, buf_size, jobs, ready, abort)
                });
                if let Err(e) = r {
                    abort.fail(e);
                    wake_all();
                }
            });
        }
        let mut handles = Vec::new();
        for (d, p) in devs.into_iter().zip(plans) {
            let ctx = WriterCtx {
                set_header: set_header(p.label.family_number).encode(),
                leading,
                ready,
                pool,
                abort,
                totals,
                finish,
                finish_cv,
                sync: opts.sync,
                set_id,
                position,
                pipe_size: 2 * mts as usize,
            };
            handles.push(s.spawn(move || {
                let r = guarded("device writer", || device_writer(d, p, ctx));
                if let Err(e) = &r {
                    abort.fail(clone_err(e));
                    wake_all();
                }
                r
            }));
        }

        // The reading thread: fill buffers, hand them to the workers.
        let read_result = (|| -> Result<u64> {
            let mut seq = 0u64;
            let mut total = 0u64;
            loop {
                if cancel.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted);
                }
                let Some(mut buf) = pool.get(abort) else {
                    return Ok(seq);
                };
                // Buffers come back with their old length: grow (zeroing only the new part) or cut.
                if buf.len() < mts as usize {
                    buf.resize(mts as usize, 0);
                } else {
                    buf.truncate(mts as usize);
                }
                let n = fill(input, &mut buf).map_err(|e| Error::io(input_name, "read", e))?;
                if n == 0 {
                    pool.put(buf);
                    return Ok(seq);
                }
                buf.truncate(n);
                total += n as u64;
                if !jobs.push(Job { seq, buf }, abort) {
                    return Ok(seq);
                }
                seq += 1;
                progress(total);
            }
        })();
        jobs.close();
        let read_result = read_result.and_then(|blocks| {
            ready.finish(blocks);
            // Wait for every writer to write its last block, then release the trailing records,
            // unless the user interrupted (upstream may have died of the same Ctrl-C, making the
            // end of input look normal).
            let mut g = finish.lock().unwrap_or_else(|p| p.into_inner());
            while g.done < n && !abort.is_set() {
                g = crate::pipeline::wait(finish_cv, g);
                if cancel.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted);
                }
            }
            if abort.is_set() {
                return Ok(blocks);
            }
            if cancel.load(Ordering::SeqCst) {
                return Err(Error::Interrupted);
            }
            let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
            t.hashes.sort_unstable();
            let digest = tree_digest(t.hashes.iter().map(|h| h.1));
            g.info = Some(TrailingConfig {
                set_id,
                position,
                family_number: 0,
                family_count: n as u16,
                finish_us: now_us(),
                total_original: t.original,
                total_stored: t.stored,
                total_blocks: t.blocks,
                digest_algorithm: DIGEST_XXH3_TREE,
                digest,
                ..Default::default()
            });
            drop(g);
            finish_cv.notify_all();
            Ok(blocks)
        });
        if let Err(e) = read_result {
            abort.fail(e);
        }
        if abort.is_set() {
            wake_all();
        }
        let mut fam_blocks = vec![0u64; n];
        let mut device_bytes = 0;
        for h in handles {
            match h.join() {
                Ok(Ok((fam, blocks, bytes))) => {
                    fam_blocks[fam as usize - 1] = blocks;
                    device_bytes += bytes;
                }
                Ok(Err(_)) => {}
                Err(_) => abort.fail(Error::Refused {
                    what: "internal error in a device writer".into(),
                }),
            }
        }
        match abort.take() {
            Some(e) => Err(e),
            None if abort.is_set() => Err(Error::Interrupted),
            None => Ok((fam_blocks, device_bytes)),
        }
    });
    let (family_blocks, device_bytes) = result?;
    let t = totals_own.into_inner().unwrap_or_else(|p| p.into_inner());
    let digest = finish_own
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .info
        .map_or([0; 16], |i| i.digest);
    Ok(WriteSummary {
        position,
        set_id,
        media_set_id,
        original_bytes: t.original,
        stored_bytes: t.stored,
        device_bytes,
        blocks: t.blocks,
        families: n as u32,
        family_blocks,
        seconds: started.elapsed().as_secs_f64(),
        digest,
        formatted,
    })
}

fn clone_err(e: &Error) -> Error {
    match e {
        Error::Io { path, op, source } => Error::Io {
            path: path.clone(),
            op,
            source: match source.raw_os_error() {
                Some(c) => std::io::Error::from_raw_os_error(c),
                None => std::io::Error::new(source.kind(), source.to_string()),
            },
        },
        other => Error::Refused {
            what: other.to_string(),
        },
    }
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

/// The end-to-end digest: XXH3-128 over the little-endian XXH3-64 of each block, in order.
pub fn tree_digest(block_hashes: impl Iterator<Item = u64>) -> [u8; 16] {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for x in block_hashes {
        h.update(&x.to_le_bytes());
    }
    h.digest128().to_le_bytes()
}

fn worker(
    codec: Codec,
    buf_size: usize,
    jobs: &Queue<Job>,
    ready: &Ordered<Ready>,
    abort: &Abort,
) -> Result<()> {
    let mut compressor = match codec {
        Codec::Zstd(level) => {
            let mut c = zstd::bulk::Compressor::new(level).map_err(|e| Error::Refused {
                what: format!("zstd level {level}: {e}"),
            })?;
            let _ = c.include_checksum(false);
            let _ = c.include_contentsize(true);
            let _ = c.include_dictid(false);
            Some(c)
        }
        Codec::None => None,
    };
    // The scratch buffer stays initialised, so zstd can write into a plain slice bounded by the
    // raw frame size: if the compressed frame would not be smaller, zstd says it does not fit.
    let mut scratch: Vec<u8> = Vec::new();
    while let Some(Job { seq, buf }) = jobs.pop(abort) {
        let original_len = buf.len() as u32;
        let hash = xxhash_rust::xxh3::xxh3_64(&buf);
        let raw_len = raw_frame_len(original_len) as usize;
        let mut compressed = None;
        if let Some(c) = compressor.as_mut() {
            if scratch.len() < buf_size {
                scratch.resize(buf_size, 0);
            }
            if let Ok(k) = c.compress_to_buffer(&buf[..], &mut scratch[..raw_len - 1]) {
                compressed = Some(k);
            }
        }
        let r = match compressed {
            Some(k) => {
                let crc = crc32fast::hash(&scratch[..k]);
                let out = std::mem::replace(&mut scratch, buf);
                Ready {
                    buf: out,
                    original_len,
                    codec: BlockCodec::Zstd,
                    stored_len: k as u32,
                    crc,
                    hash,
                }
            }
            None => {
                let mut crc = crc32fast::Hasher::new();
                crc.update(&raw_frame_header(original_len));
                let count = (original_len as usize).div_ceil(RAW_BLOCK_MAX as usize);
                for (i, chunk) in buf.chunks(RAW_BLOCK_MAX as usize).enumerate() {
                    crc.update(&raw_block_header(chunk.len() as u32, i + 1 == count));
                    crc.update(chunk);
                }
                Ready {
                    buf,
                    original_len,
                    codec: BlockCodec::Raw,
                    stored_len: raw_len as u32,
                    crc: crc.finalize(),
                    hash,
                }
            }
        };
        ready.put(seq, r);
    }
    Ok(())
}

struct WriterCtx<'a> {
    set_header: Vec<u8>,
    leading: &'a [u8],
    ready: &'a Ordered<Ready>,
    pool: &'a Pool,
    abort: &'a Abort,
    totals: &'a Mutex<Totals>,
    finish: &'a Mutex<Finish>,
    finish_cv: &'a Condvar,
    sync: bool,
    set_id: Guid,
    position: u32,
    pipe_size: usize,
}

/// Returns (family number, blocks written, bytes written).
fn device_writer(dev: Device, plan: Plan, cx: WriterCtx<'_>) -> Result<(u16, u64, u64)> {
    let path = dev.path.clone();
    let ioerr = |e: std::io::Error| Error::io(&dev.name, "write", e);
    let (mut out, file): (Box<dyn Write + Send>, Option<File>) = match dev.target {
        Target::File(f) => {
            let w = f.try_clone().map_err(|e| Error::io(&path, "open", e))?;
            let mut w = w;
            use std::io::Seek;
            w.seek(std::io::SeekFrom::Start(plan.start))
                .map_err(|e| Error::io(&path, "seek", e))?;
            (Box::new(w), Some(f))
        }
        Target::Stream(p) => {
            let f = OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| Error::io(&p, "open", e))?;
            {
                use std::os::fd::AsFd;
                crate::pipeline::enlarge_pipe(f.as_fd(), cx.pipe_size);
            }
            (Box::new(f), None)
        }
        Target::Stdout => {
            use std::os::fd::AsFd;
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("stdout", "open", e))?;
            crate::pipeline::enlarge_pipe(fd.as_fd(), cx.pipe_size);
            (Box::new(File::from(fd)), None)
        }
    };
    let fam = plan.label.family_number;
    let mut offset = plan.start;
    if plan.write_label {
        let mut head = plan.label.encode();
        head.extend_from_slice(&plan.slot.encode_frame());
        out.write_all(&head).map_err(ioerr)?;
        offset += head.len() as u64;
    }
    let set_header_offset = offset;
    out.write_all(&cx.set_header).map_err(ioerr)?;
    out.write_all(cx.leading).map_err(ioerr)?;
    offset += (cx.set_header.len() + cx.leading.len()) as u64;

    let mut mbc = Mbc {
        set_id: cx.set_id,
        position: cx.position,
        family_number: fam,
        entries: Vec::new(),
    };
    let (mut fam_orig, mut fam_stored) = (0u64, 0u64);
    while let Some((seq, r)) = cx.ready.take(cx.abort) {
        {
            let mut t = cx.totals.lock().unwrap_or_else(|p| p.into_inner());
            t.original += r.original_len as u64;
            t.stored += r.stored_len as u64;
            t.blocks += 1;
            t.hashes.push((seq, r.hash));
        }
        let header = BlockHeader {
            set_id: cx.set_id,
            seq,
            family: fam,
            codec: r.codec,
            stored_len: r.stored_len,
            original_len: r.original_len,
            payload_crc: r.crc,
            position: cx.position,
            original_hash: r.hash,
        }
        .encode();
        match r.codec {
            BlockCodec::Zstd => {
                let mut v = [
                    IoSlice::new(&header),
                    IoSlice::new(&r.buf[..r.stored_len as usize]),
                ];
                write_all_vectored(&mut out, &mut v).map_err(ioerr)?;
            }
            BlockCodec::Raw => {
                let fh = raw_frame_header(r.original_len);
                let count = (r.original_len as usize).div_ceil(RAW_BLOCK_MAX as usize);
                let data = &r.buf[..r.original_len as usize];
                let bhs: Vec<[u8; 3]> = data
                    .chunks(RAW_BLOCK_MAX as usize)
                    .enumerate()
                    .map(|(i, c)| raw_block_header(c.len() as u32, i + 1 == count))
                    .collect();
                let mut v = Vec::with_capacity(2 + 2 * count);
                v.push(IoSlice::new(&header));
                v.push(IoSlice::new(&fh));
                for (c, h) in data.chunks(RAW_BLOCK_MAX as usize).zip(&bhs) {
                    v.push(IoSlice::new(h));
                    v.push(IoSlice::new(c));
                }
                write_all_vectored(&mut out, &mut v).map_err(ioerr)?;
            }
        }
        mbc.entries.push(MbcEntry {
            seq,
            offset,
            stored_len: r.stored_len,
            original_len: r.original_len,
            payload_crc: r.crc,
            codec: matches!(r.codec, BlockCodec::Zstd) as u8,
            original_hash: r.hash,
        });
        offset += (header.len() + r.stored_len as usize) as u64;
        fam_orig += r.original_len as u64;
        fam_stored += r.stored_len as u64;
        cx.pool.put(r.buf);
    }
    if cx.abort.is_set() {
        return Ok((fam, mbc.entries.len() as u64, offset - plan.start));
    }
    // Wait for the whole set's totals.
    let info = {
        let mut g = cx.finish.lock().unwrap_or_else(|p| p.into_inner());
        g.done += 1;
        cx.finish_cv.notify_all();
        loop {
            if let Some(i) = &g.info {
                break i.clone();
            }
            if cx.abort.is_set() {
                return Ok((fam, mbc.entries.len() as u64, offset - plan.start));
            }
            g = crate::pipeline::wait(cx.finish_cv, g);
        }
    };
    let family_blocks = mbc.entries.len() as u64;
    let trailing = TrailingConfig {
        family_number: fam,
        family_original: fam_orig,
        family_stored: fam_stored,
        family_blocks,
        ..info
    }
    .encode();
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
    let mut tail = trailing;
    tail.extend_from_slice(&mbc_bytes);
    // Make the data durable before the end-of-set that vouches for it.
    out.write_all(&tail).map_err(ioerr)?;
    out.flush().map_err(ioerr)?;
    if cx.sync {
        if let Some(f) = &file {
            f.sync_data().map_err(|e| Error::io(&path, "sync", e))?;
        }
    }
    out.write_all(&eset).map_err(ioerr)?;
    out.flush().map_err(ioerr)?;
    let end = eset_offset + ESET_FRAME_LEN as u64;
    if let Some(f) = &file {
        if cx.sync {
            f.sync_data().map_err(|e| Error::io(&path, "sync", e))?;
        }
        let slot = SetMapSlot {
            generation: plan.slot.generation + 1,
            complete_sets: cx.position,
            last_eset_offset: eset_offset,
            end_offset: end,
            media_set_id: plan.label.media_set_id,
        };
        write_slot(f, &path, &slot, cx.sync)?;
    }
    Ok((fam, family_blocks, end - plan.start))
}
