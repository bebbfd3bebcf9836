//! The compressed SQL Server container (MSSQLBAK: MTF inside Xpress Huffman chunks): the input
//! follows a fixed 16-byte header (magic and version 2.3), so every byte goes to the chunk map
//! and the chunk decoder rather than to reaching them. Each chunk's check value is set right
//! for its (mutated) payload first, so mutations reach the decoder and the MTF inside; the
//! `mtf` target feeds the same seeds unrepaired, which covers the check itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Where the first chunk starts, and the sector that runs of chunks end on.
const FIRST_CHUNK: usize = 0x1e0;
const SECTOR: usize = 512;

fn repair_checks(v: &mut [u8]) {
    let mut at = FIRST_CHUNK;
    while at + 28 <= v.len() {
        if v[at] != 0x21 {
            at = (at / SECTOR + 1) * SECTOR;
            continue;
        }
        let clen = usize::from(u16::from_le_bytes([v[at + 2], v[at + 3]]));
        let Some(payload) = v.get(at + 28..at + 28 + clen) else {
            return;
        };
        let c = bak_mtf::chunk_check(payload);
        v[at + 24..at + 28].copy_from_slice(&c.to_le_bytes());
        at += 28 + clen;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut v = Vec::with_capacity(16 + data.len());
    v.extend_from_slice(b"MSSQLBAK");
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(data);
    repair_checks(&mut v);
    bak_fuzz::exercise_mtf(Box::new(bak_core::device::MemDevice::with_bytes(
        bak_fuzz::DEVICE,
        v,
    )));
});
