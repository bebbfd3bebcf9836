//! Build the seed corpora of every fuzz target: bak media written by bak-core itself (cut into
//! their records for the record targets), synthetic MTF media (the tests' own writer), and the
//! heads of the real SQL Server fixtures in `../shared/fixtures/sqlserver/` when present.
//!
//! Usage: `cargo run --example seeds -- OUT_DIR [FIXTURE_DIR]`; writes OUT_DIR/<target>/*.

#[path = "../../tests/tests/mtf_support/mod.rs"]
mod mtf_support;

use std::path::{Path, PathBuf};

use bak_core::bytes::*;
use bak_core::device::{MemDevice, WriteDevice};
use bak_core::internals::RecordReader;
use bak_core::{backup, BackupOptions, InitMode, Location, Stop};

/// Inputs bigger than this only slow the fuzzers down; the heads of the fixtures carry the
/// metadata that matters.
const MAX_SEED: usize = 256 << 10;

struct Out {
    root: PathBuf,
    n: usize,
}

impl Out {
    fn put(&mut self, target: &str, bytes: &[u8]) {
        let d = self.root.join(target);
        std::fs::create_dir_all(&d).expect("corpus dir");
        self.n += 1;
        let max = if target == "db_catalog" { 256 * 8192 } else { MAX_SEED };
        let bytes = &bytes[..bytes.len().min(max)];
        std::fs::write(d.join(format!("seed-{:04}", self.n)), bytes).expect("write seed");
    }
}

/// Data that compresses somewhat, like real files.
fn sample(len: usize, salt: u32) -> Vec<u8> {
    let words = [&b"backup "[..], b"restore ", b"media ", b"family ", b"set "];
    let mut v = Vec::with_capacity(len);
    let mut x = salt.wrapping_mul(2_654_435_761).wrapping_add(1);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if x.is_multiple_of(3) {
            v.extend_from_slice(&x.to_le_bytes());
        } else {
            v.extend_from_slice(words[x as usize % words.len()]);
        }
    }
    v.truncate(len);
    v
}

/// Write sets of `sizes` bytes to `families` fresh devices in memory; returns their bytes.
fn bak_media(
    tag: &str,
    families: usize,
    codec: Codec,
    sizes: &[usize],
    encryption: Option<bak_core::keys::Encryption>,
) -> Vec<Vec<u8>> {
    let devices: Vec<MemDevice> = (1..=families)
        .map(|i| MemDevice::new(format!("{tag}-{i}.bak")))
        .collect();
    let mut opts = BackupOptions {
        codec,
        max_transfer: MIN_TRANSFER,
        threads: 1,
        sync: false,
        name: format!("seed {tag}"),
        user: "seed".into(),
        host: "seed".into(),
        encryption,
        ..Default::default()
    };
    for (i, &size) in sizes.iter().enumerate() {
        opts.mode = if i == 0 {
            InitMode::Format
        } else {
            InitMode::Append
        };
        let data = sample(size, i as u32 + 7);
        let targets: Vec<Box<dyn WriteDevice>> = devices
            .iter()
            .map(|d| Box::new(d.handle()) as Box<dyn WriteDevice>)
            .collect();
        backup(
            &mut &data[..],
            "seed",
            targets,
            &opts,
            &|_| {},
            &Stop::new(),
        )
        .expect("write seed media");
    }
    devices.iter().map(MemDevice::to_vec).collect()
}

/// Cut one family file into its records and give each record target its frames and bodies.
fn split_records(out: &mut Out, file: &[u8]) {
    let at = Location::device("seed");
    out.put("media_header", &file[..MEDIA_HEADER_SPAN as usize]);
    if let Ok((_, body)) = parse_frame(file, RecordType::MediaHeader, &at) {
        out.put("media_header", body);
    }
    let slot = &file[SET_MAP_OFFSET as usize + FRAME_HEADER_LEN..];
    if let Ok((h, body)) = parse_frame(slot, RecordType::SetMap, &at) {
        out.put("set_map", &slot[..RECORD_PREFIX_LEN + h.body_len as usize]);
        out.put("set_map", body);
    }
    let start = FIRST_SET_OFFSET as usize;
    let mut r = RecordReader::new(&file[start..], start as u64, at.clone());
    while let Ok(Some(rec)) = r.next_record() {
        let off = rec.offset as usize;
        let frame = &file[off..off + RECORD_PREFIX_LEN + rec.body.len()];
        let target = match rec.kind {
            RecordType::MediaHeader => "media_header",
            RecordType::SetMap => "set_map",
            RecordType::SetHeader => "set_header",
            RecordType::LeadingConfig => "leading_config",
            RecordType::BlockHeader => "block_header",
            RecordType::TrailingConfig => "trailing_config",
            RecordType::Mbc => "mbc",
            RecordType::EndOfSet => "end_of_set",
            RecordType::KeyRecord => "key_record",
        };
        out.put(target, &rec.body);
        if rec.kind == RecordType::BlockHeader {
            let h = BlockHeader::parse_body(&rec.body, &at).expect("our block header");
            let end = off + BLOCK_HEADER_FRAME_LEN + h.stored_len as usize;
            out.put(target, &file[off..end]);
            r.skip(h.stored_len as u64, "payload").expect("payload");
        } else {
            out.put(target, frame);
        }
    }
    out.put("record_stream", &[&[0u8][..], &file[start..]].concat());
    out.put(
        "record_stream",
        &[&[3u8, 1, 2, 0][..], &file[start..]].concat(),
    );
}

fn bak_seeds(out: &mut Out) {
    let cases: [(&str, usize, Codec, &[usize]); 5] = [
        ("small", 1, Codec::None, &[3000]),
        ("zstd", 1, Codec::Zstd(1), &[70_000]),
        ("stripe", 2, Codec::Zstd(3), &[150_000]),
        ("two-sets", 1, Codec::None, &[1000, 2000]),
        ("empty", 1, Codec::Zstd(1), &[0]),
    ];
    for (tag, families, codec, sizes) in cases {
        let files = bak_media(tag, families, codec, sizes, None);
        for f in &files {
            split_records(out, f);
            out.put("media_family", f);
            // A cut tail: the scan then walks forward from the set map.
            out.put("media_family", &f[..f.len() - 50]);
        }
    }
}

/// An encrypted set (to a passphrase: the seeds need no identity file): key records and
/// sealed payloads for the record targets.
fn encrypted_seeds(out: &mut Out) {
    let mut e = bak_core::keys::Encryption::new();
    e.set_passphrase(bak_core::keys::SecretString::from("seed".to_string()))
        .expect("a passphrase");
    for f in &bak_media("encrypted", 2, Codec::Zstd(1), &[150_000], Some(e)) {
        split_records(out, f);
        out.put("media_family", f);
    }
}

fn mtf_seeds(out: &mut Out) {
    use mtf_support::*;
    let specs = [
        MediaSpec::default(),
        MediaSpec {
            sets: vec![set("alpha", b'D', 0..4), set("beta", b'L', [])],
            ..Default::default()
        },
        MediaSpec {
            lbs: 512,
            sfm: 1024,
            sets: vec![set("gamma", b'I', 2..5)],
            ..Default::default()
        },
        MediaSpec {
            family_count: 2,
            family: 2,
            sets: vec![set("stripe", b'D', 0..3)],
            ..Default::default()
        },
    ];
    for s in &specs {
        out.put("mtf", &build(s));
    }
}

/// The compressed chunks at the start of a compressed fixture, as xpress inputs.
fn xpress_chunks(out: &mut Out, f: &[u8]) {
    let mut pos = 0x1e0usize;
    let mut k = 0;
    while k < 24 && pos + 28 <= f.len() && f[pos] == 0x21 {
        let ulen = f[pos + 1] as usize * 512;
        let clen = u16::from_le_bytes([f[pos + 2], f[pos + 3]]) as usize;
        let Some(payload) = f.get(pos + 28..pos + 28 + clen) else {
            break;
        };
        let ul = (ulen as u32).to_le_bytes();
        out.put("xpress", &[&ul[..3], payload].concat());
        pos += 28 + clen;
        k += 1;
    }
}

/// The database pages of a plain fixture (its data stream starts on a 4096-byte boundary after
/// the MQDA header): the first 256 as a data stream (boot page and catalog), and pages and
/// their records one by one.
fn db_seeds(out: &mut Out, f: &[u8]) {
    if !f.starts_with(b"TAPE") {
        return;
    }
    let Some(start) = (0..f.len().saturating_sub(8192))
        .step_by(512)
        .find(|&o| f[o] == 1 && f[o + 32..o + 38] == [0, 0, 0, 0, 1, 0])
    else {
        return;
    };
    let stream = &f[start..f.len().min(start + 256 * 8192)];
    let whole = stream.len() / 8192 * 8192;
    out.put("db_catalog", &stream[..whole]);
    for p in stream[..whole].chunks(8192).take(64) {
        out.put("db_page", p);
        let slots = u16::from_le_bytes([p[22], p[23]]) as usize;
        for s in 0..slots.min(4) {
            let off = u16::from_le_bytes([p[8190 - 2 * s], p[8191 - 2 * s]]) as usize;
            if (96..8192).contains(&off) {
                out.put("db_record", &p[off..(off + 512).min(8192)]);
            }
        }
    }
}

fn fixture_seeds(out: &mut Out, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        eprintln!("seeds: {} absent; no SQL Server seeds", dir.display());
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(f) = std::fs::read(&p) else { continue };
        db_seeds(out, &f);
        if f.starts_with(b"MSSQLBAK") {
            out.put("mtf", &f);
            out.put("mtf_compressed", &f[16..]);
            xpress_chunks(out, &f);
        } else if f.starts_with(b"TAPE") {
            out.put("mtf", &f);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).expect("usage: seeds OUT_DIR [FIXTURE_DIR]"));
    let fixtures = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../shared/fixtures/sqlserver"));
    let mut out = Out { root, n: 0 };
    bak_seeds(&mut out);
    encrypted_seeds(&mut out);
    mtf_seeds(&mut out);
    fixture_seeds(&mut out, &fixtures);
    eprintln!("seeds: wrote {} inputs under {}", out.n, out.root.display());
}
