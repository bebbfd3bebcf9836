//! The media header (label): body and whole 4096-byte frame.
#![no_main]

use bak_core::bytes::{MediaHeader, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::MediaHeader,
        MediaHeader::parse_body,
        MediaHeader::encode,
    );
});
