//! The trailing config: body and frame.
#![no_main]

use bak_core::bytes::{RecordType, TrailingConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::TrailingConfig,
        TrailingConfig::parse_body,
        TrailingConfig::encode,
    );
});
