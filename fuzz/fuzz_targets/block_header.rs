//! The block header (body and frame), its length checks against every max transfer size, and
//! the raw-frame check of whatever bytes follow the header in the input.
#![no_main]

use bak_core::bytes::{
    check_raw_frame, parse_frame, raw_frame_len, BlockCodec, BlockHeader, RecordType,
    BLOCK_HEADER_FRAME_LEN, MAX_TRANSFER, MIN_TRANSFER, SEALED_OVERHEAD,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::BlockHeader,
        BlockHeader::parse_body,
        BlockHeader::encode,
    );
    let at = bak_fuzz::at();
    let Ok((_, body)) = parse_frame(data, RecordType::BlockHeader, &at) else {
        return;
    };
    let Ok(h) = BlockHeader::parse_body(body, &at) else {
        return;
    };
    let payload = data.get(BLOCK_HEADER_FRAME_LEN..).unwrap_or(&[]);
    let mts = (MIN_TRANSFER..=MAX_TRANSFER).step_by(MIN_TRANSFER as usize);
    for mt in mts {
        if h.check_lengths(mt, false, &at).is_ok() {
            assert!(h.original_len >= 1 && h.original_len <= mt);
            assert!(u64::from(h.stored_len) <= raw_frame_len(h.original_len));
        }
        if h.check_lengths(mt, true, &at).is_ok() {
            assert!(h.original_len >= 1 && h.original_len <= mt);
            assert!(h.stored_len <= h.original_len + SEALED_OVERHEAD);
        }
    }
    if h.codec == BlockCodec::Raw {
        let _ = check_raw_frame(payload, h.original_len, &at);
    }
});
