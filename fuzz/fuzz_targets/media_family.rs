//! The whole bak media reader over one in-memory family: the label, the scan of a seekable
//! family (set map, end-of-set chain, forward walk of a damaged tail), and a restore of every
//! set it finds, once from the file (seekable) and once from a pipe (stream).
#![no_main]

use std::sync::atomic::AtomicBool;

use bak_core::media::scan_family;
use bak_core::read::{open_device, read_set, ReadOptions};
use libfuzzer_sys::fuzz_target;

fn restore(path: &std::path::Path, position: u32) {
    let Ok(dev) = open_device(path) else {
        return;
    };
    let opts = ReadOptions {
        position,
        threads: 1,
        buffer_count: 0,
    };
    let mut out = bak_fuzz::Sink::default();
    let cancel = AtomicBool::new(false);
    if let Ok(s) = read_set(vec![dev], &opts, &mut out, "sink", &|_| {}, &cancel) {
        assert_eq!(
            s.original_bytes, out.0,
            "restore summary disagrees with the bytes written"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let positions = bak_fuzz::with_memfd(data, |file, path| {
        let Ok(scan) = scan_family(file, path) else {
            return 1;
        };
        assert!(scan.end_offset <= scan.file_len);
        let count = scan.sets.len() as u32 + u32::from(scan.interrupted.is_some());
        // A few sets are plenty; the rest is the same code again.
        let count = count.clamp(1, 3);
        for position in 1..=count {
            restore(path, position);
        }
        count
    });
    for position in 1..=positions {
        bak_fuzz::with_pipe(data, |path| restore(path, position));
    }
});
