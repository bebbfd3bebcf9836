//! The MTF reader (SQL Server .bak, plain or compressed, told apart by the first bytes) over
//! one in-memory device: open and walk, then every question a tool asks of it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::exercise_mtf(bak_fuzz::file(&bak_fuzz::device(data)));
});
