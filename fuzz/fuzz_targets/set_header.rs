//! The backup set header: body and frame.
#![no_main]

use bak_core::bytes::{RecordType, SetHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::SetHeader,
        SetHeader::parse_body,
        SetHeader::encode,
    );
});
