//! The MBC (media based catalog): body and frame; a count that lies must not allocate.
#![no_main]

use bak_core::bytes::{Mbc, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(data, RecordType::Mbc, Mbc::parse_body, Mbc::encode);
});
