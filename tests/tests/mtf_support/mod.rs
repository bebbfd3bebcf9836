//! A small writer of synthetic MTF media, shaped like SQL Server's (docs/MTF.md): TAPE with a
//! RAID stream, SFMB, then per set SSET, VOLB, MSCI (MQCI), MSDA (MQDA), MSTL (MQTL), MSLS
//! (MQCI), SFMB, ESET, ESET, SFMB. Used to cover what the real fixtures lack: odd block sizes,
//! several sets, stripes, and every kind of damage. Also the little-endian and checksum helpers
//! the tests of real SQL Server media read their bytes with.
//!
//! fuzz/examples/seeds.rs builds its MTF seeds with this file, included by its path: so it
//! stays at `mtf_support/mod.rs`, needs nothing but std, and may hold what only one of the two
//! uses.
#![allow(dead_code)]

/// 8 KiB SQL Server page.
pub const PAGE: usize = 8192;

/// One backup set to write.
#[derive(Clone, Debug)]
pub struct SetSpec {
    pub name: String,
    pub database: String,
    /// msdb type letter: b'D', b'I', b'L'.
    pub type_letter: u8,
    /// Page ids (file 1) of the data stream; empty = no MSDA block (a log backup).
    pub pages: Vec<u32>,
    /// Log stream bytes.
    pub log: Vec<u8>,
    /// A data stream of whole pages written as it is, in place of `pages` when not empty
    /// (tests/examples/big_backup.rs: a real database's pages).
    pub raw: Vec<u8>,
    /// Size of data file 1 in bytes (MQCI); 0 means 8 MiB.
    pub file_size: u64,
}

/// The media of one family.
#[derive(Clone, Debug)]
pub struct MediaSpec {
    /// Format logical block size.
    pub lbs: usize,
    /// Soft filemark block size in bytes (multiple of 512).
    pub sfm: usize,
    pub guid: [u8; 16],
    pub family_count: u16,
    pub family: u16,
    pub sets: Vec<SetSpec>,
}

impl Default for MediaSpec {
    fn default() -> Self {
        MediaSpec {
            lbs: 1024,
            sfm: 512,
            guid: [7; 16],
            family_count: 1,
            family: 1,
            sets: vec![set("db1", b'D', 0..16)],
        }
    }
}

/// A set with pages `ids` of file 1 and 4 KiB of log.
pub fn set(db: &str, letter: u8, ids: impl IntoIterator<Item = u32>) -> SetSpec {
    SetSpec {
        name: format!("{db}-Full Database Backup"),
        database: db.to_string(),
        type_letter: letter,
        pages: ids.into_iter().collect(),
        log: (0..4096u32).map(|i| (i * 31 % 251) as u8).collect(),
        raw: Vec::new(),
        file_size: 0,
    }
}

/// The u16 at `at`, little-endian.
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The u32 at `at`, little-endian.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// XOR of the little-endian u16 words of `b`: 0 over an MTF block header or stream header
/// whose checksum holds.
pub fn xor16(b: &[u8]) -> u16 {
    b.chunks(2).fold(0, |x, w| {
        x ^ u16::from_le_bytes([w[0], *w.get(1).unwrap_or(&0)])
    })
}

/// Recompute the DBLK checksum of the block at `off`.
pub fn seal_block(m: &mut [u8], off: usize) {
    m[off + 50] = 0;
    m[off + 51] = 0;
    let c = xor16(&m[off..off + 50]);
    m[off + 50..off + 52].copy_from_slice(&c.to_le_bytes());
}

/// Recompute the checksum of the stream header at `off`.
pub fn seal_stream(m: &mut [u8], off: usize) {
    let c = xor16(&m[off..off + 20]);
    m[off + 20..off + 22].copy_from_slice(&c.to_le_bytes());
}

/// SQL Server page checksum (sector XORs rotated by 15 - sector; field at 60 counts as 0).
pub fn page_checksum(p: &[u8]) -> u32 {
    let mut sum = 0u32;
    for (i, s) in p.chunks(512).enumerate() {
        let mut x = 0u32;
        for (j, w) in s.chunks(4).enumerate() {
            if !(i == 0 && j == 15) {
                x ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
        }
        sum ^= x.rotate_left(15 - i as u32);
    }
    sum
}

/// A checksummed data page of file 1.
pub fn page(pid: u32) -> Vec<u8> {
    let mut p: Vec<u8> = (0..PAGE)
        .map(|i| (i as u32 ^ pid.wrapping_mul(2654435761)) as u8)
        .collect();
    p[..96].fill(0);
    p[0] = 1;
    p[1] = 1;
    p[4..6].copy_from_slice(&0x200u16.to_le_bytes());
    p[32..36].copy_from_slice(&pid.to_le_bytes());
    p[36..38].copy_from_slice(&1u16.to_le_bytes());
    let c = page_checksum(&p);
    p[60..64].copy_from_slice(&c.to_le_bytes());
    p
}

/// Append a UTF-16 string and fill its (size, offset) pair; the offset counts from `base`
/// (the block or record start).
fn put_str_from(b: &mut Vec<u8>, base: usize, pair: usize, s: &str) {
    let at = b.len() - base;
    let bytes: Vec<u8> = s.encode_utf16().flat_map(|w| w.to_le_bytes()).collect();
    b.extend_from_slice(&bytes);
    b[pair..pair + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
    b[pair + 2..pair + 4].copy_from_slice(&(at as u16).to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, pair: usize, s: &str) {
    put_str_from(b, 0, pair, s)
}

fn record(tag: &[u8; 4], mut r: Vec<u8>) -> Vec<u8> {
    r[..4].copy_from_slice(tag);
    let n = r.len() as u32;
    r[4..8].copy_from_slice(&n.to_le_bytes());
    r
}

/// An MQCI configuration stream: SCIN, SFGI PRIMARY, SFIN data file 1, SFIN log file 2.
pub fn mqci(db: &str, letter: u8) -> Vec<u8> {
    mqci_sized(db, letter, 8 << 20)
}

/// [`mqci`] with data file 1 of `size` bytes.
pub fn mqci_sized(db: &str, letter: u8, size: u64) -> Vec<u8> {
    let mut scin = vec![0u8; 0x70];
    scin[9] = 2;
    scin[0x18..0x1a].copy_from_slice(&2070u16.to_le_bytes());
    scin[0x1b] = 15;
    scin[0x57] = letter;
    put_str(&mut scin, 0x68, db);
    put_str(&mut scin, 0x6c, "SYNTH\\SQL");
    let mut out = record(b"SCIN", scin);
    let mut g = vec![0u8; 0x20];
    g[0x0c] = 1;
    put_str(&mut g, 0x10, "PRIMARY");
    out.extend(record(b"SFGI", g));
    for (id, fg, ext) in [(1u32, 1u32, "mdf"), (2, 0, "ldf")] {
        let mut f = vec![0u8; 0x40];
        f[0x14..0x18].copy_from_slice(&id.to_le_bytes());
        f[0x24..0x28].copy_from_slice(&fg.to_le_bytes());
        let bytes = if id == 1 { size } else { 8u64 << 20 };
        f[0x28..0x30].copy_from_slice(&bytes.to_le_bytes());
        let logical = if id == 1 {
            db.to_string()
        } else {
            format!("{db}_log")
        };
        put_str(&mut f, 0x30, &logical);
        put_str(&mut f, 0x34, &format!("C:\\data\\{logical}.{ext}"));
        out.extend(record(b"SFIN", f));
    }
    out
}

struct W {
    m: Vec<u8>,
    lbs: usize,
}

impl W {
    fn header(&mut self, kind: &[u8; 4], fso: usize, fla: u64) -> usize {
        let off = self.m.len();
        self.m.resize(off + fso, 0);
        self.m[off..off + 4].copy_from_slice(kind);
        self.m[off + 8..off + 10].copy_from_slice(&(fso as u16).to_le_bytes());
        self.m[off + 10] = 14;
        self.m[off + 20..off + 28].copy_from_slice(&fla.to_le_bytes());
        self.m[off + 48] = 2;
        off
    }

    fn stream(&mut self, id: &[u8; 4], attrs: u16, data: &[u8]) -> usize {
        while !self.m.len().is_multiple_of(4) {
            self.m.push(0);
        }
        let off = self.m.len();
        let mut h = vec![0u8; 22];
        h[..4].copy_from_slice(id);
        h[6..8].copy_from_slice(&attrs.to_le_bytes());
        h[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        self.m.extend_from_slice(&h);
        seal_stream(&mut self.m, off);
        self.m.extend_from_slice(data);
        off
    }

    /// SPAD to the next multiple of `to` counted from `base`.
    fn spad(&mut self, base: usize, to: usize) {
        while !self.m.len().is_multiple_of(4) {
            self.m.push(0);
        }
        let after = self.m.len() + 22;
        let end = base + (after - base).div_ceil(to) * to;
        let n = end - after;
        self.stream(b"SPAD", 0, &vec![0u8; n]);
    }

    fn sfmb(&mut self, sfm: usize, prev: &[usize]) -> usize {
        let off = self.header(b"SFMB", sfm, 0);
        let cap = ((sfm - 72) / 8) as u32;
        self.m[off + 4..off + 8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        self.m[off + 52..off + 56].copy_from_slice(&cap.to_le_bytes());
        self.m[off + 56..off + 60].copy_from_slice(&(prev.len() as u32).to_le_bytes());
        self.m[off + 60..off + 64].copy_from_slice(&0x48u32.to_le_bytes());
        for (i, p) in prev.iter().rev().enumerate() {
            let e = off + 0x48 + 8 * i;
            self.m[e..e + 8].copy_from_slice(&(*p as u64).to_le_bytes());
        }
        seal_block(&mut self.m, off);
        off
    }
}

/// Write the media of one family.
pub fn build(spec: &MediaSpec) -> Vec<u8> {
    let lbs = spec.lbs;
    let mut w = W { m: Vec::new(), lbs };
    // TAPE: fixed part, software name, RAID stream, SPAD to the larger of lbs and sfm.
    let t = w.header(b"TAPE", 52 + 42, 0);
    w.m[t + 4..t + 8].copy_from_slice(&0x30000u32.to_le_bytes());
    w.m[t + 52..t + 56].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    w.m[t + 56] = 5;
    w.m[t + 60] = 1;
    w.m[t + 64..t + 66].copy_from_slice(&((spec.sfm / 512) as u16).to_le_bytes());
    w.m[t + 66] = 3;
    w.m[t + 84..t + 86].copy_from_slice(&(lbs as u16).to_le_bytes());
    w.m[t + 86..t + 88].copy_from_slice(&0x1200u16.to_le_bytes());
    // 2020-11-22 14:43:45 (14-bit year, 4 month, 5 day, 5 hour, 6 minute, 6 second).
    w.m[t + 88..t + 93].copy_from_slice(&[0x1f, 0x92, 0xec, 0xea, 0xed]);
    w.m[t + 93] = 1;
    put_str(&mut w.m, t + 80, "Microsoft SQL Server");
    let fso = w.m.len().div_ceil(4) * 4;
    w.m.resize(fso, 0);
    w.m[t + 8..t + 10].copy_from_slice(&(fso as u16).to_le_bytes());
    seal_block(&mut w.m, t);
    let mut raid = vec![0u8; 32];
    raid[..16].copy_from_slice(&spec.guid);
    raid[20..22].copy_from_slice(&spec.family_count.to_le_bytes());
    raid[22] = 1;
    raid[24..26].copy_from_slice(&spec.family.to_le_bytes());
    w.stream(b"RAID", 0, &raid);
    w.spad(0, lbs.max(spec.sfm));
    let mut sfmbs = vec![w.sfmb(spec.sfm, &[])];
    for (i, s) in spec.sets.iter().enumerate() {
        let base = w.m.len();
        let fla = |w: &W| ((w.m.len() - base) / w.lbs) as u64;
        // SSET
        let f = fla(&w);
        let o = w.header(b"SSET", 116, f);
        w.m[o + 52] = if s.type_letter == b'I' { 8 } else { 4 };
        w.m[o + 60..o + 62].copy_from_slice(&0x1200u16.to_le_bytes());
        w.m[o + 62..o + 64].copy_from_slice(&((i + 1) as u16).to_le_bytes());
        w.m[o + 80..o + 88].copy_from_slice(&(o as u64).to_le_bytes());
        w.m[o + 88..o + 93].copy_from_slice(&[0x1f, 0x92, 0xec, 0xea, 0xed]);
        w.m[o + 93] = 15;
        w.m[o + 95] = 0; // UTC
        w.m[o + 100] = i as u8 + 1;
        put_str_from(&mut w.m, o, o + 64, &s.name);
        put_str_from(&mut w.m, o, o + 76, "SYNTH\\user");
        let fso = w.m.len().div_ceil(4) * 4;
        w.m.resize(fso, 0);
        w.m[o + 8..o + 10].copy_from_slice(&((fso - o) as u16).to_le_bytes());
        seal_block(&mut w.m, o);
        w.spad(base, lbs);
        // VOLB
        let f = fla(&w);
        let o = w.header(b"VOLB", 68, f);
        put_str_from(&mut w.m, o, o + 56, "C:");
        put_str_from(&mut w.m, o, o + 64, "SYNTH");
        let fso = w.m.len().div_ceil(4) * 4;
        w.m.resize(fso, 0);
        w.m[o + 8..o + 10].copy_from_slice(&((fso - o) as u16).to_le_bytes());
        seal_block(&mut w.m, o);
        w.spad(base, lbs);
        // MSCI
        let size = if s.file_size == 0 {
            8 << 20
        } else {
            s.file_size
        };
        let cfg = mqci_sized(&s.database, s.type_letter, size);
        let f = fla(&w);
        let o = w.header(b"MSCI", 56, f);
        seal_block(&mut w.m, o);
        w.stream(b"MQCI", 0, &cfg);
        w.spad(base, lbs);
        // MSDA
        if !s.pages.is_empty() || !s.raw.is_empty() {
            let f = fla(&w);
            let o = w.header(b"MSDA", 60, f);
            seal_block(&mut w.m, o);
            let mut data = vec![0u8; 2];
            if s.raw.is_empty() {
                for &p in &s.pages {
                    data.extend(page(p));
                }
            } else {
                data.extend_from_slice(&s.raw);
            }
            w.stream(b"MQDA", 2, &data);
            w.stream(b"MQDA", 6, &[]);
            w.spad(base, lbs);
        }
        // MSTL
        let f = fla(&w);
        let o = w.header(b"MSTL", 596, f);
        seal_block(&mut w.m, o);
        let mut log = vec![0u8; 2];
        log.extend_from_slice(&s.log);
        w.stream(b"MQTL", 0, &log);
        w.spad(base, lbs);
        // MSLS, padded to the soft filemark size.
        let f = fla(&w);
        let o = w.header(b"MSLS", 56, f);
        seal_block(&mut w.m, o);
        w.stream(b"MQCI", 0, &cfg);
        w.spad(base, lbs.max(spec.sfm));
        sfmbs.push(w.sfmb(spec.sfm, &sfmbs.clone()));
        let e1 = w.header(b"ESET", 88, 0);
        w.m[e1 + 52] = 4;
        w.m[e1 + 78..e1 + 80].copy_from_slice(&((i + 1) as u16).to_le_bytes());
        seal_block(&mut w.m, e1);
        w.spad(base, lbs);
        let e2 = w.header(b"ESET", 88, 0);
        w.m[e2 + 60..e2 + 68].copy_from_slice(&(e1 as u64).to_le_bytes());
        w.m[e2 + 78..e2 + 80].copy_from_slice(&((i + 1) as u16).to_le_bytes());
        seal_block(&mut w.m, e2);
        w.spad(base, lbs.max(spec.sfm));
        sfmbs.push(w.sfmb(spec.sfm, &sfmbs.clone()));
    }
    w.m
}

/// Offsets of every block of a kind (block headers sit on 512-byte boundaries).
pub fn blocks(m: &[u8], kind: &[u8; 4]) -> Vec<usize> {
    (0..m.len())
        .step_by(512)
        .filter(|&o| m.get(o..o + 4) == Some(&kind[..]) && xor16(&m[o..o + 52]) == 0)
        .collect()
}

/// Offsets of every stream header with this id whose checksum holds.
pub fn streams(m: &[u8], id: &[u8; 4]) -> Vec<usize> {
    (0..m.len().saturating_sub(22))
        .step_by(4)
        .filter(|&o| &m[o..o + 4] == id && xor16(&m[o..o + 22]) == 0)
        .collect()
}

/// File offsets and payload lengths of the compressed chunks, walked from their 28-byte
/// headers (marker 0x21, u16 payload length at 2) from 0x1e0; other records end a run, after
/// which the next 512-byte sector holds a chunk or a raw SFMB block.
pub fn chunks(m: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0x1e0;
    while at + 28 <= m.len() {
        if m[at] == 0x21 {
            let clen = usize::from(u16_at(m, at + 2));
            out.push((at, clen));
            at += 28 + clen;
        } else {
            at = (at / 512 + 1) * 512;
        }
    }
    out
}
