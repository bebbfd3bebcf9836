//! A set map slot: body and frame.
#![no_main]

use bak_core::bytes::{RecordType, SetMapSlot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::SetMap,
        SetMapSlot::parse_body,
        SetMapSlot::encode,
    );
});
