//! The MTF reader (bak-core, in process) on the real SQL Server backups in
//! ../shared/fixtures/sqlserver.
//!
//! Every expected value was read from the fixture bytes by hand (xxd, `strings -el`), never from
//! this reader's output; each assertion says where it came from. The tests skip, saying so, when
//! the fixture folder is absent (a clone outside this workplace).

use bak_core::report::Verdict;
use std::path::Path;

use bak_core::Error;
use bak_mtf::{self as mtf, MtfDevice, StreamKind};

use crate::util::*;

fn open(dir: &Path, name: &str) -> MtfDevice {
    MtfDevice::open(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_fixture_verifies() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    // Every file in the folder: a whole media set verifies valid, set by set; a lone family of
    // two (northwind is family 1 of 2, RAID u16 at 20 = 2, at 24 = 1, and its family 2 was
    // never published; either stripe2008r2 file alone) is refused, naming the missing family.
    for f in crate::sqlserver_range::fixtures(&dir) {
        let dev = open(&dir, &f.name);
        match f.lacks {
            None => {
                let reps = mtf::verify(&[dev], None, false).unwrap();
                assert_eq!(reps.len() as u32, f.sets, "{}", f.name);
                for r in &reps {
                    assert_eq!(r.verdict, Verdict::Valid, "{}: {r:?}", f.name);
                }
            }
            Some(lacks) => {
                let e = mtf::verify(&[dev], None, false).unwrap_err();
                assert!(
                    matches!(&e, Error::MediaSet { what } if what.contains(&format!("{lacks} missing"))),
                    "{}: {e}",
                    f.name
                );
            }
        }
    }
    let pair: Vec<MtfDevice> = crate::sqlserver_range::STRIPED_PAIR
        .iter()
        .map(|n| open(&dir, n))
        .collect();
    let reps = mtf::verify(&pair, None, false).unwrap();
    assert!(
        reps.len() == 1 && reps[0].verdict == Verdict::Valid,
        "{reps:?}"
    );
}

#[test]
fn a_lone_family_of_two_gives_its_label_header_and_file_list() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let d = open(&dir, "northwind_CConocimientos.bak");
    let l = d.label();
    // RAID stream data at 0xa2: 05 44 8e 25 73 82 0d 41 aa 5f 7f 0f f5 3b 9a 3e (MS GUID order).
    assert_eq!(
        l.media_set_id.as_deref(),
        Some("258e4405-8273-410d-aa5f-7f0ff53b9a3e")
    );
    assert_eq!(
        (l.family_count, l.family_sequence_number),
        (Some(2), Some(1))
    );
    // TAPE +52: 6c b8 fa e3; +84: 00 04; +86: 00 12; +80 string "Microsoft SQL Server".
    assert_eq!(l.media_family_id.as_deref(), Some("e3fab86c"));
    assert_eq!(l.logical_block_size, Some(1024));
    assert_eq!(l.software_vendor_id, Some(0x1200));
    assert_eq!(l.software_name.as_deref(), Some("Microsoft SQL Server"));
    // TAPE +88: 1f a3 13 2e 8a = 2024-12-09 18:58:10 local; SSET +95 = 0xec = -20 × 15 min.
    assert_eq!(
        l.media_date.map(|t| t.to_string()).as_deref(),
        Some("2024-12-09T23:58:10Z")
    );
    assert_eq!(l.media_password_protected, Some(false));
    let rows = mtf::header_only(std::slice::from_ref(&d)).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    // SSET strings (strings -el): "Northwind-Full Database Backup", "LENOVO\Astrit".
    assert_eq!(
        r.backup_name.as_deref(),
        Some("Northwind-Full Database Backup")
    );
    assert_eq!(r.user_name.as_deref(), Some("LENOVO\\Astrit"));
    // MQCI SCIN: +0x68 → "Northwind", +0x6c → "LENOVO"; +0x57 = 'D'; +0x18 = d0 07 00 0c.
    assert_eq!(r.database_name.as_deref(), Some("Northwind"));
    assert_eq!(r.server_name.as_deref(), Some("LENOVO"));
    assert_eq!(r.backup_type, Some(1));
    assert_eq!(r.software_version_major, Some(12));
    assert_eq!(r.software_version.as_deref(), Some("12.0.2000"));
    assert_eq!(r.software_product.as_deref(), Some("SQL Server 2014"));
    // MQDA length 0x230002 and MQTL 0x10002, each less its 2-byte pad.
    assert_eq!(r.backup_size, Some(0x230000 + 0x10000));
    assert!(!r.compressed);
    assert!(!r.is_complete, "family 2 of 2 is missing");
    let files = mtf::file_list(&[d], None).unwrap();
    // SFIN records: logical names, paths, file ids 1/2, sizes (u64 at +0x28) 0x530000 / 0x10c000.
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].logical_name, "Northwind");
    assert_eq!(
        files[0].physical_name,
        "C:\\Program Files\\Microsoft SQL Server\\MSSQL12.MSSQLSERVER\\MSSQL\\DATA\\Northwind.mdf"
    );
    assert_eq!(
        (files[0].file_type.as_str(), files[0].size, files[0].file_id),
        ("D", Some(0x530000), Some(1))
    );
    assert_eq!(files[0].file_group_name.as_deref(), Some("PRIMARY"));
    assert_eq!(files[1].logical_name, "Northwind_log");
    assert_eq!(
        (files[1].file_type.as_str(), files[1].size, files[1].file_id),
        ("L", Some(0x10c000), Some(2))
    );
}

#[test]
fn a_striped_pair_reads_as_one_set() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (f1, f2) = (
        open(&dir, "stripe2008r2_full_fam1.bak"),
        open(&dir, "stripe2008r2_full_fam2.bak"),
    );
    // RAID: same GUID bytes 16 98 a9 db ... in both; family number 1 and 2 at byte 24.
    assert_eq!(f1.label().media_set_id, f2.label().media_set_id);
    assert_eq!(f2.label().family_sequence_number, Some(2));
    let devs = [f2, f1];
    let rows = mtf::header_only(&devs).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_complete);
    assert_eq!(rows[0].database_name.as_deref(), Some("RestoreTimeStripe"));
    assert_eq!(rows[0].software_version.as_deref(), Some("10.50.4042"));
    // Each family's MQDA is 786434 bytes (0xc0002); the log (65538) is on family 1 only.
    let mut data = Vec::new();
    assert_eq!(
        mtf::read_stream(&devs, 1, StreamKind::Data, &mut data, "out").unwrap(),
        2 * 786432
    );
    // Family 1 starts with the file header page 1:0 (page header bytes 32..38 = 0 0 0 0 1 0),
    // family 2 with page 1:8.
    assert_eq!(&data[32..38], &[0, 0, 0, 0, 1, 0]);
    assert_eq!(&data[786432 + 32..786432 + 38], &[8, 0, 0, 0, 1, 0]);
    let mut log = Vec::new();
    assert_eq!(
        mtf::read_stream(&devs, 1, StreamKind::Log, &mut log, "out").unwrap(),
        65536
    );
    // A lone family can still be listed, and reading it names the missing family.
    let lone = [open(&dir, "stripe2008r2_full_fam1.bak")];
    let e = mtf::read_stream(&lone, 1, StreamKind::Data, &mut Vec::new(), "out").unwrap_err();
    assert!(e.to_string().contains("family 2 missing"), "{e}");
}

#[test]
fn log_and_differential_types_come_from_the_media() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (log, diff) = (
        open(&dir, "log2016_restoretimeclean.trn"),
        open(&dir, "diff2016_restoretimeclean.bak"),
    );
    // SCIN +0x57: 'L' in the .trn, 'I' in the diff (whose SSET attributes are 0x8).
    let logs = [log];
    let r = &mtf::header_only(&logs).unwrap()[0];
    assert_eq!(
        (r.backup_type, r.backup_type_description.as_deref()),
        (Some(2), Some("Transaction Log"))
    );
    // SSET +88 = 1f 8d 45 35 02 (2019-05-02 21:05:55 local), +95 = 4 (UTC+1).
    assert_eq!(
        r.backup_start_date.map(|t| t.to_string()).as_deref(),
        Some("2019-05-02T20:05:55Z")
    );
    let e = mtf::read_stream(&logs, 1, StreamKind::Data, &mut Vec::new(), "out").unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("use the log stream"),
        "{e}"
    );
    assert_eq!(
        mtf::read_stream(&logs, 1, StreamKind::Log, &mut Vec::new(), "out").unwrap(),
        65536
    );
    let r = &mtf::header_only(&[diff]).unwrap()[0];
    assert_eq!(r.backup_type, Some(5));
}

#[test]
fn appended_sets_are_picked_by_position() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let d = open(&dir, "multi2008_omi_2sets.bak");
    let devs = [d];
    let rows = mtf::header_only(&devs).unwrap();
    // SSET +62 = 1 at 0x600 and 2 at 0x1d5200; names from strings -el.
    assert_eq!(
        rows.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(rows[0].backup_name.as_deref(), Some("OMIstats"));
    assert_eq!(
        rows[1].backup_name.as_deref(),
        Some("OMIstats-Full Database Backup")
    );
    assert_eq!(rows[1].volume_name.as_deref(), Some("Data and Games"));
    // MQDA lengths 1835010 and 1900546, less the 2-byte pad.
    let mut out = Vec::new();
    assert_eq!(
        mtf::read_stream(&devs, 2, StreamKind::Data, &mut out, "out").unwrap(),
        1900544
    );
    assert_eq!(
        mtf::read_stream(&devs, 1, StreamKind::Data, &mut out, "out").unwrap(),
        1835008
    );
    assert!(matches!(
        mtf::file_list(&devs, Some(3)),
        Err(Error::NoSuchSet {
            position: 3,
            count: 2
        })
    ));
    let streams = mtf::list_streams(&devs, 2).unwrap();
    // The second set's MQDA header is at 0x1d69e8, its data at 0x1d69fe.
    assert!(streams
        .iter()
        .any(|s| s.stream == "MQDA" && s.offset == 0x1d69fe && s.length == 1900546));
}

#[test]
fn a_linux_backup_and_a_media_password_still_read() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (lx, pw) = (
        open(&dir, "linux2019_meetupdb.bak"),
        open(&dir, "mediapwd2008r2_passwd.bak"),
    );
    let r = &mtf::header_only(std::slice::from_ref(&lx)).unwrap()[0];
    assert_eq!(r.device_name, None, "VOLB device name pair is empty");
    assert_eq!(r.machine_name.as_deref(), Some("1bebe6dec426"));
    let files = mtf::file_list(&[lx], None).unwrap();
    assert_eq!(files[0].physical_name, "/var/opt/mssql/data/MeetUpDB.mdf");
    // TAPE +62 = 5 (password algorithm), RAID moved to 0x9c; the data is readable.
    assert_eq!(pw.label().media_password_protected, Some(true));
    let devs = [pw];
    assert_eq!(
        mtf::header_only(&devs).unwrap()[0].database_name.as_deref(),
        Some("stripetest")
    );
    assert!(mtf::read_stream(&devs, 1, StreamKind::Data, &mut Vec::new(), "out").unwrap() > 0);
}

#[test]
fn compressed_backups_decode_list_and_read() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (full, log, two) = (
        open(&dir, "cmp2019_full_checksum.bak"),
        open(&dir, "cmp2019_log.bak"),
        open(&dir, "cmp2014_sharepoint_2sets.bak"),
    );
    let l = full.label();
    assert_eq!(l.is_compressed, Some(true));
    let fulls = [full];
    let r = &mtf::header_only(&fulls).unwrap()[0];
    assert!(r.compressed);
    // SCIN +8 = 0x10 (WITH CHECKSUM) in the decompressed MQCI; 'D' at +0x57.
    assert_eq!(r.has_backup_checksums, Some(true));
    assert_eq!(r.backup_type, Some(1));
    assert!(r.compressed_backup_size.unwrap() < r.backup_size.unwrap());
    // The 55 chunks decode to 3234816 bytes, and three raw 512-byte SFMB blocks are kept.
    let mut m = Vec::new();
    assert_eq!(
        mtf::write_mtf(&fulls[0], &mut m, "out").unwrap(),
        3234816 + 3 * 512
    );
    assert_eq!(&m[..4], b"TAPE");
    // MQDA streams of 3014658 and 131074 bytes, less their pads.
    assert_eq!(
        mtf::read_stream(&fulls, 1, StreamKind::Data, &mut Vec::new(), "out").unwrap(),
        3014656 + 131072
    );
    let logs = [log];
    assert_eq!(mtf::header_only(&logs).unwrap()[0].backup_type, Some(2));
    assert!(matches!(
        mtf::read_stream(&logs, 1, StreamKind::Data, &mut Vec::new(), "out"),
        Err(Error::Unsupported { .. })
    ));
    let rows = mtf::header_only(&[two]).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(rows[0].database_name.as_deref(), Some("SharePoint_Config"));
}

#[test]
fn a_damaged_compressed_chunk_is_named() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut m = std::fs::read(dir.join("cmp2019_log.bak")).unwrap();
    // The chunk at 0x600 (header 21 0e 00 04: 7168 bytes from a 1024-byte payload) holds the
    // SSET..MSCI blocks; damage its Huffman table.
    for b in &mut m[0x600 + 28..0x600 + 28 + 64] {
        *b = 0xff;
    }
    let t = temp_dir("mtfchunk");
    let p = t.path().join("cmp2019_log_damaged.bak");
    std::fs::write(&p, &m).unwrap();
    let d = MtfDevice::open(&p).unwrap();
    let reps = mtf::verify(std::slice::from_ref(&d), None, false).unwrap();
    assert!(
        reps.iter().all(|r| r.verdict == Verdict::Damaged),
        "{reps:?}"
    );
    assert!(
        reps.iter()
            .flat_map(|r| &r.problems)
            .any(|p| p.offset == Some(0x600)),
        "{reps:?}"
    );
    let e = mtf::write_mtf(&d, &mut Vec::new(), "out").unwrap_err();
    assert!(
        matches!(&e, Error::Corrupt { at, .. } if at.offset == Some(0x600)),
        "{e}"
    );
}
