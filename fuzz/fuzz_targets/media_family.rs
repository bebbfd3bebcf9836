//! The whole bak media reader over one in-memory family: the label, the scan of a seekable
//! family (set map, end-of-set chain, forward walk of a damaged tail), and a restore of every
//! set it finds, once from a handle that reads like a file (seekable) and once from one that
//! reads like a pipe (stream); then the catalog (HEADERONLY facts) and a full verification of
//! the family, from both kinds of handle.
#![no_main]

use bak_core::device::{MemDevice, ReadDevice};
use bak_core::internals::{read_label, scan_family};
use bak_core::report::Verdict;
use bak_core::{list, open_devices, restore, verify, RestoreOptions, Stop, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fn restore_set(dev: Box<dyn ReadDevice>, position: u32) {
    let Ok(devs) = open_devices(vec![dev]) else {
        return;
    };
    let opts = RestoreOptions {
        position,
        threads: 1,
        buffer_count: 0,
        ..Default::default()
    };
    let mut out = bak_fuzz::Sink::default();
    if let Ok(s) = restore(devs, &opts, &mut out, "sink", &|_| {}, &Stop::new()) {
        assert_eq!(
            s.original_bytes, out.0,
            "restore summary disagrees with the bytes written"
        );
    }
}

/// The catalog and a full verification must give facts and reports, or an error: never a
/// panic.
fn describe_and_verify(handle: impl Fn() -> Box<dyn ReadDevice>) {
    if let Ok(devs) = open_devices(vec![handle()]) {
        if let Ok(cats) = list::catalog_all(devs) {
            let _ = list::set_infos(&cats);
            let _ = cats.iter().map(list::label_info).count();
        }
    }
    if let Ok(devs) = open_devices(vec![handle()]) {
        let opts = VerifyOptions {
            threads: 1,
            ..Default::default()
        };
        if let Ok(reports) = verify(devs, &opts, &|_| {}, &Stop::new()) {
            for r in reports {
                assert!(
                    r.verdict != Verdict::Valid || r.problems.is_empty(),
                    "set {} is valid with problems: {:?}",
                    r.position,
                    r.problems
                );
            }
        }
    }
}

/// Label, scan and restores from a handle that reads like a file; returns how many sets to
/// restore from a pipe as well.
fn as_file(dev: &MemDevice, len: u64) -> u32 {
    describe_and_verify(|| bak_fuzz::file(dev));
    let _ = read_label(&dev.handle(), bak_fuzz::DEVICE);
    let Ok(scan) = scan_family(&dev.handle(), bak_fuzz::DEVICE) else {
        return 1;
    };
    assert!(
        scan.end_offset <= len,
        "the append point {} lies past the end of the {len}-byte family",
        scan.end_offset
    );
    let count = scan.sets.len() as u32 + u32::from(scan.interrupted.is_some());
    // A few sets are plenty; the rest is the same code again.
    let count = count.clamp(1, 3);
    for position in 1..=count {
        restore_set(bak_fuzz::file(dev), position);
    }
    count
}

fuzz_target!(|data: &[u8]| {
    let dev = bak_fuzz::device(data);
    let positions = as_file(&dev, data.len() as u64);
    for position in 1..=positions {
        restore_set(bak_fuzz::pipe(&dev), position);
    }
    describe_and_verify(|| bak_fuzz::pipe(&dev));
});
