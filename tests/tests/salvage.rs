//! `bak-read --continue-after-error` on bak media (RESTORE ... WITH CONTINUE_AFTER_ERROR):
//! every byte that can be read is restored at its offset, lost blocks are zeros, the damage
//! map (ddrescue's mapfile) names exactly the byte ranges that differ from the input, and the
//! exit status is 1; undamaged media read exactly, exit 0.

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;

use crate::util::*;

/// Blocks of the input: 24 whole ones and a short last one.
const INPUT_LEN: usize = 24 * MTS + 12_345;

struct Media {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    devs: Vec<PathBuf>,
    input: Vec<u8>,
    /// Key arguments for bak-read (an encrypted set).
    keys: Vec<String>,
}

/// A set written with bak-write at 64 KiB blocks on `n` families.
fn media(tag: &str, n: usize, codec: &str, encrypted: bool, seed: u64) -> Media {
    let dir = temp_dir(tag);
    let devs = devices(&dir, "f", n);
    let input = data(INPUT_LEN, seed);
    let mut extra = vec![
        "--max-transfer-size".to_string(),
        "64K".into(),
        "--compress".into(),
        codec.into(),
    ];
    let mut keys = Vec::new();
    if encrypted {
        let id = age::x25519::Identity::generate();
        let file = dir.path().join("key.txt");
        std::fs::write(&file, format!("{}\n", id.to_string().expose_secret())).unwrap();
        extra.extend(["--recipient".into(), id.to_public().to_string()]);
        keys = vec!["--identity".into(), file.display().to_string()];
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let w = write(&devs, &extra, &input);
    assert_eq!(w.code, 0, "bak-write: {}", w.stderr);
    Media {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        devs,
        input,
        keys,
    }
}

/// What a salvage gave.
struct Salvaged {
    code: i32,
    out: Vec<u8>,
    map: String,
    json: Vec<serde_json::Value>,
    stderr: String,
}

fn salvage(m: &Media, devs: &[PathBuf], run_no: usize) -> Salvaged {
    let out = m.dir.join(format!("out{run_no}"));
    let map = m.dir.join(format!("map{run_no}"));
    let mut a = args!["--quiet", "--continue-after-error", "--json", "-o", &out];
    a.extend(args!["--damage-map", &map]);
    a.extend(m.keys.iter().map(|k| k.into()));
    a.extend(devs.iter().map(|p| p.into()));
    let r = run("bak-read", &os(&a), b"");
    Salvaged {
        code: r.code,
        out: std::fs::read(&out).unwrap_or_default(),
        map: std::fs::read_to_string(&map).unwrap_or_default(),
        json: json_lines(&r.stdout),
        stderr: r.stderr,
    }
}

/// Block-aligned byte ranges where `got` differs from `want`, merged: (offset, length).
fn differing(want: &[u8], got: &[u8]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = Vec::new();
    for (i, (a, b)) in want.chunks(MTS).zip(got.chunks(MTS)).enumerate() {
        if a != b {
            let off = (i * MTS) as u64;
            match v.last_mut() {
                Some(l) if l.0 + l.1 == off => l.1 += a.len() as u64,
                _ => v.push((off, a.len() as u64)),
            }
        }
    }
    v
}

/// The map's block lines: (offset, length, status).
fn map_blocks(map: &str) -> Vec<(u64, u64, char)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    map.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "map line {l:?}");
            (hex(f[0]), hex(f[1]), f[2].chars().next().unwrap())
        })
        .collect()
}

/// The map's lost ranges, after checking that its blocks cover the output in order.
fn map_lost(map: &str, len: u64) -> Vec<(u64, u64)> {
    let blocks = map_blocks(map);
    let mut at = 0;
    for b in &blocks {
        assert_eq!(b.0, at, "map blocks leave a hole or overlap:\n{map}");
        assert!(b.2 == '+' || b.2 == '-', "status {:?}", b.2);
        at += b.1;
    }
    assert_eq!(at, len, "the map covers the output:\n{map}");
    blocks
        .iter()
        .filter(|b| b.2 == '-')
        .map(|b| (b.0, b.1))
        .collect()
}

/// ddrescuelog reads the map, and counts the lost bytes as the map says.
fn ddrescuelog_reads(map: &str, dir: &Path, lost: u64) {
    if !have("ddrescuelog") {
        skip("ddrescuelog (Debian package gddrescue) is not installed");
        return;
    }
    let f = dir.join("check.map");
    std::fs::write(&f, map).unwrap();
    let t = std::process::Command::new("ddrescuelog")
        .arg("-t")
        .arg(&f)
        .output()
        .unwrap();
    assert!(t.status.success(), "ddrescuelog -t: {t:?}");
    let l = std::process::Command::new("ddrescuelog")
        .args(["-b", "1", "--list-blocks=-"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(l.status.success(), "ddrescuelog --list-blocks: {l:?}");
    let listed = String::from_utf8_lossy(&l.stdout).lines().count() as u64;
    assert_eq!(listed, lost, "bytes ddrescuelog lists as bad");
}

/// The checks every damaged case makes: exit 1, the original length, the map names exactly
/// the differing ranges, the JSON lists them, ddrescuelog reads the map.
fn check_damaged(m: &Media, s: &Salvaged, case: &str) -> Vec<(u64, u64)> {
    check_damaged_to(m, s, case, m.input.len())
}

/// As [`check_damaged`], for an output of `len` bytes (less than the input's when the set's
/// length was lost with its last blocks).
fn check_damaged_to(m: &Media, s: &Salvaged, case: &str, len: usize) -> Vec<(u64, u64)> {
    assert_eq!(s.code, 1, "{case}: exit status; stderr: {}", s.stderr);
    assert_eq!(s.out.len(), len, "{case}: output length");
    let diff = differing(&m.input[..len], &s.out);
    let lost = map_lost(&s.map, s.out.len() as u64);
    assert_eq!(lost, diff, "{case}: map against the differing ranges");
    // Every lost byte is zero; every byte outside the lost ranges is exact (checked by
    // `differing` block by block).
    for (off, len) in &lost {
        assert!(
            s.out[*off as usize..(off + len) as usize]
                .iter()
                .all(|&b| b == 0),
            "{case}: lost bytes are zeros"
        );
    }
    let json_bytes: u64 = s.json.iter().map(|j| j["Length"].as_u64().unwrap()).sum();
    let lost_bytes: u64 = lost.iter().map(|l| l.1).sum();
    assert_eq!(json_bytes, lost_bytes, "{case}: JSON lists the lost bytes");
    for j in &s.json {
        let (off, len) = (j["Offset"].as_u64().unwrap(), j["Length"].as_u64().unwrap());
        assert_eq!(off, j["Sequence"].as_u64().unwrap() * MTS as u64);
        assert!(
            lost.iter().any(|l| l.0 <= off && off + len <= l.0 + l.1),
            "{case}: {j} inside a lost range"
        );
    }
    ddrescuelog_reads(&s.map, &m.dir, lost_bytes);
    lost
}

/// Offsets of one kind of region in a family file (`util::regions`).
fn region(dev: &Path, kind: &str, nth: usize) -> (u64, u64) {
    let r: Vec<_> = regions(dev)
        .into_iter()
        .filter(|r| r.0 == kind)
        .map(|r| (r.1, r.2))
        .collect();
    r[nth.min(r.len() - 1)]
}

fn flip(dev: &Path, off: u64) {
    let mut b = std::fs::read(dev).unwrap();
    b[off as usize] ^= 0x5A;
    std::fs::write(dev, b).unwrap();
}

#[test]
fn undamaged_media_with_the_flag_read_exactly_and_exit_0() {
    for (n, codec, enc) in [
        (1, "none", false),
        (3, "zstd:1", false),
        (3, "zstd:1", true),
    ] {
        let m = media("salv-whole", n, codec, enc, 7);
        let s = salvage(&m, &m.devs, 0);
        assert_eq!(s.code, 0, "{n} {codec}: {}", s.stderr);
        assert!(s.out == m.input, "{n} {codec}: exact output");
        assert!(s.json.is_empty());
        assert!(map_lost(&s.map, m.input.len() as u64).is_empty());
        assert_eq!(s.stderr, "", "no note when nothing was lost");
        ddrescuelog_reads(&s.map, &m.dir, 0);
    }
}

#[test]
fn a_missing_family_is_zeros_at_its_blocks_places() {
    for codec in ["none", "zstd:1"] {
        let m = media("salv-missing", 3, codec, false, 11);
        let given = [m.devs[0].clone(), m.devs[2].clone()];
        let s = salvage(&m, &given, 0);
        let lost = check_damaged(&m, &s, &format!("family 2 missing, {codec}"));
        assert!(!lost.is_empty(), "family 2 held blocks");
        for j in &s.json {
            assert_eq!(j["Family"], 2, "{j}");
            assert_eq!(j["Why"], "missing-family", "{j}");
        }
        assert!(
            s.stderr.contains("family 2 of 3 was not given"),
            "{}",
            s.stderr
        );
        assert!(s.stderr.contains("digest not checked"), "{}", s.stderr);
    }
}

#[test]
fn flipped_bits_in_a_payload_or_a_block_header_lose_that_block_only() {
    for (n, codec, enc) in [
        (1, "none", false),
        (1, "zstd:1", false),
        (3, "zstd:1", false),
        (1, "none", true),
        (3, "zstd:1", true),
    ] {
        for (kind, why) in [("block payload", "damaged"), ("block header", "unreadable")] {
            let case = format!("{kind} flipped, {n} families, {codec}, encrypted {enc}");
            let m = media("salv-flip", n, codec, enc, 13);
            let (a, b) = region(&m.devs[0], kind, 3);
            flip(&m.devs[0], (a + b) / 2);
            let s = salvage(&m, &m.devs, 0);
            let lost = check_damaged(&m, &s, &case);
            assert_eq!(lost.len(), 1, "{case}: one block lost: {lost:?}");
            assert_eq!(s.json.len(), 1, "{case}");
            assert_eq!(s.json[0]["Why"], why, "{case}: {}", s.json[0]);
            assert_eq!(s.json[0]["Family"], 1, "{case}: {}", s.json[0]);
        }
    }
}

#[test]
fn a_damaged_trailing_config_is_named_and_loses_no_byte() {
    for n in [1, 3] {
        let m = media("salv-trailing", n, "zstd:1", false, 17);
        let (a, b) = region(&m.devs[0], "trailing config", 0);
        flip(&m.devs[0], (a + b) / 2);
        let s = salvage(&m, &m.devs, 0);
        let lost = check_damaged(&m, &s, &format!("trailing config, {n} families"));
        assert!(lost.is_empty());
        assert!(s.out == m.input);
        assert!(
            s.stderr.contains("trailing config CRC does not hold"),
            "{}",
            s.stderr
        );
        // One family: its length is only known from the blocks read.
        assert_eq!(
            s.stderr.contains("length is unknown"),
            n == 1,
            "{}",
            s.stderr
        );
    }
}

#[test]
fn a_family_cut_mid_block_loses_the_rest_of_it() {
    for (n, enc) in [(1, false), (3, false), (3, true)] {
        let m = media("salv-cut", n, "none", enc, 19);
        let victim = &m.devs[n - 1];
        let (a, b) = region(victim, "block payload", 4);
        let bytes = std::fs::read(victim).unwrap();
        std::fs::write(victim, &bytes[..((a + b) / 2) as usize]).unwrap();
        let s = salvage(&m, &m.devs, 0);
        let case = format!("family {n} of {n} cut, encrypted {enc}");
        // One family: the set's length is gone with the tail, and the output ends after the
        // block the cut is in (its header says its length).
        let len = if n == 1 { 5 * MTS } else { m.input.len() };
        let lost = check_damaged_to(&m, &s, &case, len);
        assert!(!lost.is_empty(), "{case}");
        assert!(
            s.json.iter().any(|j| j["Why"] == "cut-off"),
            "{case}: {:?}",
            s.json
        );
        if n == 1 {
            assert!(s.stderr.contains("length is unknown"), "{}", s.stderr);
        }
    }
}

#[test]
fn damage_is_stepped_over_through_fifos() {
    if !have("mkfifo") {
        skip("mkfifo is not installed");
        return;
    }
    let m = media("salv-fifo", 3, "zstd:1", false, 23);
    let (a, b) = region(&m.devs[0], "block header", 2);
    flip(&m.devs[0], (a + b) / 2);
    let (a, b) = region(&m.devs[1], "block payload", 1);
    flip(&m.devs[1], (a + b) / 2);
    let fifos: Vec<PathBuf> = (1..=3).map(|i| m.dir.join(format!("p{i}"))).collect();
    for (f, d) in fifos.iter().zip(&m.devs) {
        let st = std::process::Command::new("mkfifo")
            .arg(f)
            .status()
            .unwrap();
        assert!(st.success());
        let (f, d) = (f.clone(), d.clone());
        std::thread::spawn(move || {
            let bytes = std::fs::read(d).unwrap();
            if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(f) {
                use std::io::Write;
                let _ = w.write_all(&bytes);
            }
        });
    }
    let s = salvage(&m, &fifos, 0);
    let lost = check_damaged(&m, &s, "two damaged families through FIFOs");
    assert_eq!(lost.len(), 2, "{lost:?}");
    let mut fams: Vec<u64> = s
        .json
        .iter()
        .map(|j| j["Family"].as_u64().unwrap())
        .collect();
    fams.sort();
    assert_eq!(fams, [1, 2], "{:?}", s.json);
}

#[test]
fn the_map_is_refused_when_it_exists_and_the_json_needs_a_file_output() {
    let m = media("salv-refuse", 1, "none", false, 29);
    let map = m.dir.join("exists.map");
    std::fs::write(&map, "keep me").unwrap();
    let out = m.dir.join("o");
    let r = read(
        &m.devs,
        &[
            "--continue-after-error",
            "-o",
            out.to_str().unwrap(),
            "--damage-map",
            map.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&map).unwrap(), "keep me");
    assert!(!out.exists());
    let r = read(&m.devs, &["--continue-after-error", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // To standard output the map is the only record, and the note says so.
    let map2 = m.dir.join("new.map");
    let (a, b) = region(&m.devs[0], "block payload", 0);
    flip(&m.devs[0], (a + b) / 2);
    let r = read(
        &m.devs,
        &[
            "--continue-after-error",
            "--damage-map",
            map2.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout.len(), m.input.len());
    assert!(
        r.stderr
            .contains("is the only record of which bytes are zeros"),
        "{}",
        r.stderr
    );
    assert_eq!(
        map_lost(
            &std::fs::read_to_string(&map2).unwrap(),
            m.input.len() as u64
        )
        .len(),
        1
    );
}
