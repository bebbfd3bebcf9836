//! One database page: header, slot array, records, PFS, torn bits, checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_mtf::fuzzing::page(data);
});
