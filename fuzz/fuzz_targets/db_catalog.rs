//! A data stream of whole pages: placed as the page store places them, the catalog read, every table listed, counted and read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_mtf::fuzzing::catalog(data);
});
