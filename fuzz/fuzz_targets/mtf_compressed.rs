//! The compressed SQL Server container (MSSQLBAK: MTF inside Xpress Huffman chunks): the input
//! follows a fixed 16-byte header (magic and version 2.3), so every byte goes to the chunk map
//! and the chunk decoder rather than to reaching them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut v = Vec::with_capacity(16 + data.len());
    v.extend_from_slice(b"MSSQLBAK");
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(data);
    bak_fuzz::with_memfd(&v, |_, path| bak_fuzz::exercise_mtf(path));
});
