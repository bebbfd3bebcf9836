//! The end-of-set record: body and frame.
#![no_main]

use bak_core::bytes::{EndOfSet, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::EndOfSet,
        EndOfSet::parse_body,
        EndOfSet::encode,
    );
});
