//! The Xpress Huffman chunk decoder. Input: a 3-byte little-endian output length (up to
//! 16 MiB, so the 1 MiB refusal is reached too), then the compressed bytes.
#![no_main]

use bak_mtf::xpress::{decompress, decompress_into};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let out_len = u32::from_le_bytes([data[0], data[1], data[2], 0]) as usize;
    let input = &data[3..];
    let a = decompress(input, out_len);
    if let Ok(v) = &a {
        assert_eq!(v.len(), out_len);
    }
    if out_len <= 1 << 20 {
        let mut out = vec![0u8; out_len];
        let b = decompress_into(input, &mut out);
        assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "decompress and decompress_into disagree"
        );
        if let Ok(v) = a {
            assert!(
                v == out,
                "decompress and decompress_into decode differently"
            );
        }
    }
});
