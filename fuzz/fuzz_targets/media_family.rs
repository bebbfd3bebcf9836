//! The whole bak media reader over one in-memory family: the label, the scan of a seekable
//! family (set map, end-of-set chain, forward walk of a damaged tail), and a restore of every
//! set it finds, once from the file (seekable) and once from a pipe (stream); then the catalog
//! (HEADERONLY rows) and a full verification of the family.
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

/// The catalog and a full verification must give rows and reports, or an error: never a panic.
fn describe_and_verify(path: &std::path::Path) {
    if let Ok(dev) = open_device(path) {
        if let Ok(cats) = bak_core::catalog::catalog_all(vec![dev]) {
            let _ = bak_core::catalog::set_rows(&cats);
            let _ = cats.iter().map(bak_core::catalog::label_row).count();
        }
    }
    if let Ok(dev) = open_device(path) {
        let opts = bak_core::verify::VerifyOptions {
            threads: 1,
            ..Default::default()
        };
        if let Ok(reports) = bak_core::verify::verify_bak(vec![dev], &opts, &|_| {}) {
            for r in reports {
                assert!(r.verdict != "valid" || r.problems.is_empty());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let positions = bak_fuzz::with_memfd(data, |file, path| {
        describe_and_verify(path);
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
    bak_fuzz::with_pipe(data, describe_and_verify);
});
