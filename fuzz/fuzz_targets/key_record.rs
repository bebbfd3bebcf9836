//! The key record of an encrypted set: body and frame.
#![no_main]

use bak_core::bytes::{KeyRecord, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::KeyRecord,
        KeyRecord::parse_body,
        KeyRecord::encode,
    );
});
