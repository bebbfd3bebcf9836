//! The library over in-memory devices, in process: back up onto memory, restore from memory
//! handles that read like files and like pipes, append, verify, list, and see damage.

use bak_core::bytes::Codec;
use bak_core::device::{MemDevice, ReadDevice, WriteDevice};
use bak_core::report::Verdict;
use bak_core::{
    backup, list, open_devices, restore, verify, BackupOptions, RestoreOptions, Stop, VerifyOptions,
};

use crate::util::data;

fn opts(codec: Codec) -> BackupOptions {
    BackupOptions {
        codec,
        max_transfer: 64 << 10,
        sync: false,
        ..Default::default()
    }
}

fn write_to(devs: &[MemDevice], input: &[u8], o: &BackupOptions) -> bak_core::BackupSummary {
    let targets: Vec<Box<dyn WriteDevice>> = devs
        .iter()
        .map(|d| Box::new(d.handle()) as Box<dyn WriteDevice>)
        .collect();
    backup(&mut &input[..], "input", targets, o, &|_| {}, &Stop::new()).unwrap()
}

fn read_from(devs: Vec<Box<dyn ReadDevice>>, position: u32) -> bak_core::Result<Vec<u8>> {
    let mut out = Vec::new();
    let o = RestoreOptions {
        position,
        ..Default::default()
    };
    restore(
        open_devices(devs)?,
        &o,
        &mut out,
        "out",
        &|_| {},
        &Stop::new(),
    )?;
    Ok(out)
}

#[test]
fn sets_round_trip_through_memory_read_as_files_and_as_pipes_in_any_order() {
    let devs: Vec<MemDevice> = (1..=3).map(|i| MemDevice::new(format!("m{i}"))).collect();
    let first = data(1_000_003, 7);
    let second = data(333_333, 8);
    assert_eq!(write_to(&devs, &first, &opts(Codec::Zstd(1))).position, 1);
    assert_eq!(write_to(&devs, &second, &opts(Codec::None)).position, 2);
    for (pos, want) in [(1, &first), (2, &second)] {
        let files: Vec<Box<dyn ReadDevice>> = devs
            .iter()
            .rev()
            .map(|d| Box::new(d.handle()) as Box<dyn ReadDevice>)
            .collect();
        assert!(
            read_from(files, pos).unwrap() == *want,
            "set {pos} from files"
        );
        let pipes: Vec<Box<dyn ReadDevice>> = [1, 0, 2]
            .iter()
            .map(|&i| Box::new(devs[i].stream()) as Box<dyn ReadDevice>)
            .collect();
        assert!(
            read_from(pipes, pos).unwrap() == *want,
            "set {pos} from pipes"
        );
    }
    let handles = || -> Vec<Box<dyn ReadDevice>> {
        devs.iter()
            .map(|d| Box::new(d.stream()) as Box<dyn ReadDevice>)
            .collect()
    };
    let reports = verify(
        open_devices(handles()).unwrap(),
        &VerifyOptions::default(),
        &|_| {},
        &Stop::new(),
    )
    .unwrap();
    assert_eq!(reports.len(), 2);
    assert!(
        reports.iter().all(|r| r.verdict == Verdict::Valid),
        "{reports:?}"
    );
    let cats = list::catalog_all(open_devices(handles()).unwrap()).unwrap();
    let sets = list::set_infos(&cats);
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].backup_size, Some(first.len() as u64));
    assert_eq!(sets[1].compression.as_deref(), Some("none"));
    assert!(sets.iter().all(|s| s.is_complete));
}

#[test]
fn a_damaged_byte_in_memory_media_is_found_and_never_restored() {
    let devs = vec![MemDevice::new("d1"), MemDevice::new("d2")];
    let input = data(700_000, 3);
    write_to(&devs, &input, &opts(Codec::None));
    // A byte in the middle of the family holding the most data (the first free writer takes
    // each block, so the other may hold only its label).
    let fam = if devs[0].to_vec().len() >= devs[1].to_vec().len() {
        0
    } else {
        1
    };
    let name = format!("d{}", fam + 1);
    devs[fam].edit(|b| {
        let i = b.len() / 2;
        b[i] ^= 0x40;
    });
    let readers = || -> Vec<Box<dyn ReadDevice>> {
        devs.iter()
            .map(|d| Box::new(d.handle()) as Box<dyn ReadDevice>)
            .collect()
    };
    let e = match read_from(readers(), 1) {
        Ok(out) => panic!("restored {} bytes from damaged media", out.len()),
        Err(e) => e,
    };
    assert!(e.is_media_damage(), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{name}: family {}, set 1", fam + 1)),
        "{e}"
    );
    let reports = verify(
        open_devices(readers()).unwrap(),
        &VerifyOptions::default(),
        &|_| {},
        &Stop::new(),
    )
    .unwrap();
    assert_eq!(reports[0].verdict, Verdict::Damaged);
    assert_eq!(reports[0].problems[0].device, name);
}

#[test]
fn a_raised_stop_interrupts_a_backup_and_leaves_no_set_complete() {
    let dev = MemDevice::new("s");
    let stop = Stop::new();
    stop.raise();
    let input = data(500_000, 1);
    let targets: Vec<Box<dyn WriteDevice>> = vec![Box::new(dev.handle())];
    let r = backup(
        &mut &input[..],
        "in",
        targets,
        &opts(Codec::None),
        &|_| {},
        &stop,
    );
    assert!(matches!(r, Err(bak_core::Error::Interrupted)), "{r:?}");
    let cats = list::catalog_all(
        open_devices(vec![Box::new(dev.handle()) as Box<dyn ReadDevice>]).unwrap(),
    )
    .unwrap();
    assert!(list::set_infos(&cats).iter().all(|s| !s.is_complete));
}
