//! What fuzzing found, one test per finding, and the promise that sizes read from the media
//! are never trusted for allocation, tested directly: a counting global allocator watches the
//! largest single allocation and the growth of live memory while a lying input is read.
//!
//! The allocator counts for the whole test binary, where other tests run at the same time; so
//! each test here runs again in a process of its own (see [`alone`]), and measures only there.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bak_core::bytes::*;
use bak_core::internals::{scan_file as scan_family, RecordReader};
use bak_core::{
    backup, open_backup_devices, open_paths, restore as restore_set, BackupOptions, InitMode,
    RestoreOptions, Stop,
};
use bak_core::{Error, Location};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        note_alloc(new);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Set in the process that runs one test of this module alone.
const ALONE: &str = "BAK_TESTS_ALLOCATION_ALONE";

/// In the test run: run the calling test again in a process of its own (this test binary,
/// filtered to that one test) where no other test allocates, check that it passed there, and
/// return false. In that process: return true, and the test goes on to measure.
fn alone() -> bool {
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let name = crate::util::test_name();
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name}, run alone, failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// What `f` allocated: the largest single allocation, and the peak growth of live memory.
struct Spent {
    largest: usize,
    peak_growth: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Spent) {
    let base = LIVE.load(Ordering::SeqCst);
    LARGEST.store(0, Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    let spent = Spent {
        largest: LARGEST.load(Ordering::SeqCst),
        peak_growth: PEAK.load(Ordering::SeqCst).saturating_sub(base),
    };
    (r, spent)
}

const MIB: usize = 1 << 20;

/// Run `f` alone and check it stayed within `budget` bytes, both for its largest allocation and
/// for the growth of live memory.
fn within<T>(what: &str, budget: usize, f: impl FnOnce() -> T) -> T {
    assert!(
        std::env::var_os(ALONE).is_some(),
        "{what}: measured beside other tests (call alone() first)"
    );
    let (r, s) = measure(f);
    assert!(
        s.largest <= budget && s.peak_growth <= 2 * budget,
        "{what}: allocated {} bytes at once ({} MiB) and grew live memory by {} MiB; \
         the budget is {} MiB: a size read from the media was trusted",
        s.largest,
        s.largest / MIB,
        s.peak_growth / MIB,
        budget / MIB
    );
    r
}

/// A record prefix (frame header and record header, both CRCs right) claiming a body of
/// `body_len` bytes whose CRC is `body_crc`.
fn lying_prefix(kind: RecordType, body_len: u32, body_crc: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(RECORD_PREFIX_LEN);
    h.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    h.extend_from_slice(&(body_len + RECORD_HEADER_LEN as u32).to_le_bytes());
    h.extend_from_slice(&kind.tag());
    h.push(FORMAT_MAJOR);
    h.push(FORMAT_MINOR);
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&body_len.to_le_bytes());
    h.extend_from_slice(&body_crc.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32fast::hash(&h[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 20]);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// One family of bak media holding one set of `len` bytes in 64 KiB blocks; its path.
fn media(dir: &Path, len: usize, codec: Codec) -> PathBuf {
    let dev = dir.join("f1.bak");
    let opts = BackupOptions {
        codec,
        max_transfer: MIN_TRANSFER,
        threads: 1,
        sync: false,
        mode: InitMode::Format,
        ..Default::default()
    };
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let targets = open_backup_devices(std::slice::from_ref(&dev), opts.max_transfer)
        .expect("open the device");
    backup(
        &mut &data[..],
        "data",
        targets,
        &opts,
        &|_| {},
        &Stop::new(),
    )
    .expect("write media");
    dev
}

/// Offsets and bodies of the records of the first set of a family file.
fn records(file: &[u8]) -> Vec<(RecordType, usize, Vec<u8>)> {
    let start = FIRST_SET_OFFSET as usize;
    let at = Location::device("t");
    let mut r = RecordReader::new(&file[start..], start as u64, at.clone());
    let mut v = Vec::new();
    while let Ok(Some(rec)) = r.next_record() {
        if rec.kind == RecordType::BlockHeader {
            let h = BlockHeader::parse_body(&rec.body, &at).unwrap();
            r.skip(h.stored_len as u64, "payload").unwrap();
        }
        v.push((rec.kind, rec.offset as usize, rec.body));
    }
    v
}

fn restore(dev: &Path) -> bak_core::Result<Vec<u8>> {
    let d = open_paths(&[dev.to_path_buf()])?;
    let opts = RestoreOptions {
        position: 1,
        threads: 1,
        buffer_count: 0,
        ..Default::default()
    };
    let mut out = Vec::new();
    restore_set(d, &opts, &mut out, "out", &|_| {}, &Stop::new())?;
    Ok(out)
}

// ---- Sizes from the media are not trusted for allocation ----

/// Finding (record_stream, by review of the allocation budget): `RecordReader::next_record`
/// allocated the whole claimed body (`vec![0; body_len]`, up to `MAX_BODY_LEN` = 256 MiB) before
/// reading a byte of it, so 32 bytes on a pipe made a restore allocate 256 MiB.
#[test]
fn record_reader_does_not_allocate_a_claimed_256_mib_body() {
    if !alone() {
        return;
    }
    let mut s = lying_prefix(RecordType::Mbc, MAX_BODY_LEN, 0);
    s.extend_from_slice(&[0u8; 100]);
    let r = within("RecordReader::next_record", 4 * MIB, || {
        RecordReader::new(Cursor::new(&s), 0, Location::device("t")).next_record()
    });
    assert!(matches!(r, Err(Error::Truncated { .. })), "{r:?}");
}

/// The same lie in the MBC of a real family file: a restore reads the MBC through the record
/// reader after the trailing config.
#[test]
fn restore_of_an_mbc_claiming_256_mib_does_not_allocate_it() {
    if !alone() {
        return;
    }
    let dir = crate::util::temp_dir("mbc");
    let dev = media(dir.path(), 100_000, Codec::None);
    let mut f = std::fs::read(&dev).unwrap();
    let (_, off, _) = records(&f)
        .into_iter()
        .find(|r| r.0 == RecordType::Mbc)
        .unwrap();
    f[off..off + RECORD_PREFIX_LEN].copy_from_slice(&lying_prefix(
        RecordType::Mbc,
        MAX_BODY_LEN,
        0,
    ));
    std::fs::write(&dev, &f).unwrap();
    let r = within("restore with a lying MBC", 16 * MIB, || restore(&dev));
    assert!(r.is_err(), "a restore through a lying MBC succeeded");
}

/// An MBC body whose count claims 2^40 entries (a TiB of catalog): refused from the count and
/// the length it really has, with nothing allocated for it.
#[test]
fn mbc_claiming_a_tib_of_entries_is_refused_without_allocating() {
    if !alone() {
        return;
    }
    let mut body = vec![0u8; 16 + 4 + 2 + 2];
    body.extend_from_slice(&(1u64 << 40).to_le_bytes());
    body.extend_from_slice(&[0u8; 40]);
    let r = within("Mbc::parse_body", MIB, || {
        Mbc::parse_body(&body, &Location::device("t"))
    });
    assert!(r.is_err());
}

/// A block header claiming a block of 4 GiB (the most its u32 fields can say; the set's max
/// transfer is 64 KiB): the restore refuses it from the lengths, before any buffer is sized.
#[test]
fn block_header_claiming_4_gib_is_refused_without_allocating() {
    if !alone() {
        return;
    }
    let dir = crate::util::temp_dir("block");
    let dev = media(dir.path(), 100_000, Codec::None);
    let mut f = std::fs::read(&dev).unwrap();
    let at = Location::device("t");
    let (_, off, body) = records(&f)
        .into_iter()
        .find(|r| r.0 == RecordType::BlockHeader)
        .unwrap();
    let mut h = BlockHeader::parse_body(&body, &at).unwrap();
    h.original_len = u32::MAX;
    h.stored_len = u32::MAX;
    f[off..off + BLOCK_HEADER_FRAME_LEN].copy_from_slice(&h.encode());
    std::fs::write(&dev, &f).unwrap();
    let r = within("restore with a 4 GiB block header", 16 * MIB, || {
        restore(&dev)
    });
    assert!(r.is_err());
    // The same header alone.
    let r = within("check_lengths", MIB, || {
        h.check_lengths(MIN_TRANSFER, false, &at)
    });
    assert!(r.is_err());
}

/// An end-of-set record pointing at a set header that claims a 256 MiB body in a small file:
/// the scan finds the claim runs past the end of the file before allocating.
#[test]
fn scan_of_a_set_header_claiming_256_mib_does_not_allocate_it() {
    if !alone() {
        return;
    }
    let dir = crate::util::temp_dir("scan");
    let dev = media(dir.path(), 10_000, Codec::None);
    let mut f = std::fs::read(&dev).unwrap();
    let (_, off, _) = records(&f)
        .into_iter()
        .find(|r| r.0 == RecordType::SetHeader)
        .unwrap();
    f[off..off + RECORD_PREFIX_LEN].copy_from_slice(&lying_prefix(
        RecordType::SetHeader,
        MAX_BODY_LEN,
        0,
    ));
    std::fs::write(&dev, &f).unwrap();
    let file = std::fs::File::open(&dev).unwrap();
    let r = within("scan_family", 4 * MIB, || scan_family(&file, &dev));
    // Whether the scan reports the set as damaged or refuses the family, it must not allocate.
    drop(r);
}

/// An MTF data stream whose header claims 1 TiB: HEADERONLY, VERIFYONLY and the stream copy
/// answer promptly (an error or a reported problem) without allocating it.
#[test]
fn mtf_stream_claiming_1_tib_is_not_allocated() {
    if !alone() {
        return;
    }
    use crate::mtf_support::*;
    use crate::util::temp_file;
    use bak_mtf::{self as mtf, MtfDevice, StreamKind};
    let mut m = build(&MediaSpec::default());
    let offs = streams(&m, b"MQDA");
    assert!(!offs.is_empty(), "the synthetic media have an MQDA stream");
    for o in offs {
        m[o + 8..o + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        seal_stream(&mut m, o);
    }
    let path = temp_file("fuzzreg-tib-stream.bak", &m);
    within("the MTF reader over a 1 TiB stream", 16 * MIB, || {
        let Ok(d) = MtfDevice::open(&path) else {
            return;
        };
        let devs = [d];
        let _ = mtf::header_only(&devs);
        let _ = mtf::verify(&devs, None, false);
        let mut sink = std::io::sink();
        let r = mtf::read_stream(&devs, 1, StreamKind::Data, &mut sink, "out");
        assert!(
            r.is_err(),
            "a 1 TiB stream in a small file was read as whole"
        );
    });
}

/// The Xpress decoder asked for a TiB of output refuses before allocating.
#[test]
fn xpress_refuses_a_tib_output_without_allocating() {
    if !alone() {
        return;
    }
    let r = within("xpress::decompress", 2 * MIB, || {
        bak_mtf::xpress::decompress(&[0u8; 300], 1 << 40)
    });
    assert!(r.is_err());
}

// ---- Sanity of the measure itself ----

#[test]
fn the_allocation_budget_sees_a_big_allocation() {
    if !alone() {
        return;
    }
    let (v, s) = measure(|| vec![1u8; 8 * MIB]);
    assert!(s.largest >= 8 * MIB);
    drop(v);
}

#[test]
fn a_restore_of_good_media_fits_the_budget() {
    if !alone() {
        return;
    }
    let dir = crate::util::temp_dir("good");
    let dev = media(dir.path(), 300_000, Codec::Zstd(1));
    let out = within("restore of good media", 16 * MIB, || restore(&dev)).unwrap();
    assert_eq!(out.len(), 300_000);
}
