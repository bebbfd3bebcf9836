//! One data record: every accessor, every column type decoded from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_mtf::fuzzing::record(data);
});
