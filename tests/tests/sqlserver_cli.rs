//! bak-header, bak-verify and bak-read on real SQL Server backups, through the real binaries.
//! Expected values were read from the fixture bytes (`strings -el`, hexdump of stream headers),
//! never from the tools' own output; the library-level tests with every value's provenance are
//! in sqlserver_fixtures.rs.

use crate::mtf_support::xor16;
use crate::util::*;

/// Length of the first MQDA stream of an uncompressed file, read from its 22-byte stream
/// header (id, fs attrs u16, media attrs u16, length u64 at +8, ...; 11 u16 words XOR to 0).
fn first_mqda_len(bytes: &[u8]) -> u64 {
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(4).position(|w| w == b"MQDA") {
        let s = at + i;
        if let Some(h) = bytes.get(s..s + 22) {
            let len = u64::from_le_bytes(h[8..16].try_into().unwrap());
            if xor16(h) == 0 && len > 0 {
                return len;
            }
        }
        at = s + 4;
    }
    panic!("no MQDA stream header");
}

#[test]
fn headeronly_filelist_and_label_of_a_plain_full_backup() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let rows = json_lines(&run("bak-header", &os(&args!["--json", &f]), b"").stdout);
    assert_eq!(rows.len(), 1);
    // strings -el: "pubsDESKTOP-7789AN9\SQLEXPRESS", "pubs-Full Database BackupDESKTOP-7789AN9\Uriel"
    assert_eq!(rows[0]["DatabaseName"], "pubs");
    assert_eq!(rows[0]["ServerName"], "DESKTOP-7789AN9\\SQLEXPRESS");
    assert_eq!(rows[0]["BackupName"], "pubs-Full Database Backup");
    assert_eq!(rows[0]["UserName"], "DESKTOP-7789AN9\\Uriel");
    assert_eq!(rows[0]["SoftwareVersionMajor"], 11); // SSET byte 93 = 0x0b
    assert_eq!(rows[0]["SoftwareProduct"], "SQL Server 2012");
    assert_eq!(rows[0]["BackupTypeDescription"], "Database");
    assert_eq!(rows[0]["Compressed"], false);
    assert_eq!(rows[0]["IsComplete"], true);
    let files = json_lines(&run("bak-header", &os(&args!["--filelist", "--json", &f]), b"").stdout);
    let names: Vec<(&str, &str)> = files
        .iter()
        .map(|r| {
            (
                r["LogicalName"].as_str().unwrap(),
                r["Type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("pubs", "D"), ("pubs_log", "L")]);
    assert!(files[0]["PhysicalName"]
        .as_str()
        .unwrap()
        .ends_with("\\DATA\\pubs.mdf"));
    let label =
        json_lines(&run("bak-header", &os(&args!["--labelonly", "--json", &f]), b"").stdout);
    assert_eq!(label[0]["MediaFormat"], "mtf");
    assert_eq!(label[0]["SoftwareVendorId"], 0x1200);
    assert_eq!(label[0]["SoftwareName"], "Microsoft SQL Server");
}

#[test]
fn a_plain_full_backup_verifies_and_restores_its_data_pages() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let v = run("bak-verify", &os(&args![&f]), b"");
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert_eq!(
        String::from_utf8_lossy(&v.stdout),
        "The backup set on file 1 is valid.\n"
    );
    assert!(
        v.stderr
            .contains("pubs_UGR95.bak: SQL Server backup (Microsoft Tape Format)"),
        "{}",
        v.stderr
    );
    let r = run("bak-read", &os(&args!["--quiet", &f]), b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bytes = std::fs::read(&f).unwrap();
    // The data stream is the MQDA payload less its 2 leading pad bytes: whole 8 KiB pages.
    assert_eq!(r.stdout.len() as u64, first_mqda_len(&bytes) - 2);
    assert_eq!(r.stdout.len() % 8192, 0);
    // Each page's header names its own page id (u32 at offset 32), counting up from 0; an
    // unallocated page inside a backed-up extent is all zeros.
    for (i, page) in r.stdout.chunks(8192).take(16).enumerate() {
        let id = u32::from_le_bytes(page[32..36].try_into().unwrap());
        assert!(
            id == i as u32 || page[..96].iter().all(|&b| b == 0),
            "page {i} says {id}"
        );
    }
    let ls = run("bak-read", &os(&args!["--list-streams", &f]), b"");
    assert!(String::from_utf8_lossy(&ls.stdout).contains("MQDA"));
}

#[test]
fn a_log_backup_has_no_data_stream_but_a_log_stream() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("log2016_restoretimeclean.trn");
    let rows = json_lines(&run("bak-header", &os(&args!["--json", &f]), b"").stdout);
    assert_eq!(rows[0]["BackupTypeDescription"], "Transaction Log");
    assert_eq!(rows[0]["DatabaseName"], "RestoreTimeClean");
    let r = run("bak-read", &os(&args!["--quiet", &f]), b"");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("log backup") && r.stderr.contains("log stream"),
        "{}",
        r.stderr
    );
    let r = run(
        "bak-read",
        &os(&args!["--quiet", "--stream", "log", &f]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.is_empty());
}

#[test]
fn a_striped_set_needs_every_family() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (a, b) = (
        dir.join("stripe2008r2_full_fam1.bak"),
        dir.join("stripe2008r2_full_fam2.bak"),
    );
    let r = run("bak-read", &os(&args!["--quiet", &a]), b"");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("family 2"), "{}", r.stderr);
    let v = run("bak-verify", &os(&args![&b]), b"");
    assert_eq!(v.code, 1);
    assert!(v.stderr.contains("family 1"), "{}", v.stderr);
    let rows = json_lines(&run("bak-header", &os(&args!["--json", &b, &a]), b"").stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["FamilyCount"], 2);
    assert_eq!(run("bak-verify", &os(&args![&b, &a]), b"").code, 0);
    let r = run("bak-read", &os(&args!["--quiet", &b, &a]), b"");
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.len() % 8192, 0);
    let l = json_lines(&run("bak-header", &os(&args!["--labelonly", "--json", &b]), b"").stdout);
    assert_eq!(l[0]["FamilyCount"], 2);
    assert_eq!(l[0]["FamilySequenceNumber"], 2);
}

#[test]
fn a_compressed_backup_reads_verifies_and_gives_its_mtf_stream() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_full_checksum.bak");
    let rows = json_lines(&run("bak-header", &os(&args!["--json", &f]), b"").stdout);
    assert_eq!(rows[0]["Compressed"], true);
    assert!(
        rows[0]["CompressedBackupSize"].as_u64().unwrap() < rows[0]["BackupSize"].as_u64().unwrap()
    );
    assert_eq!(rows[0]["HasBackupChecksums"], true);
    assert_eq!(run("bak-verify", &os(&args![&f]), b"").code, 0);
    let m = run("bak-read", &os(&args!["--quiet", "--mtf", &f]), b"");
    assert_eq!(m.code, 0);
    assert_eq!(&m.stdout[..4], b"TAPE");
    assert_eq!(
        xor16(&m.stdout[..52]),
        0,
        "the decompressed TAPE block's checksum holds"
    );
    let d = run("bak-read", &os(&args!["--quiet", &f]), b"");
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert_eq!(d.stdout.len() % 8192, 0);
}

#[test]
fn the_mtf_stream_of_a_compressed_backup_stands_on_its_own() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for name in [
        "cmp2019_full_checksum.bak",
        "cmp2019_log.bak",
        "cmp2014_sharepoint_2sets.bak",
    ] {
        let f = dir.join(name);
        let t = temp_dir("mtfout");
        let m = decompressed_mtf(&f);
        let p = t.path().join("plain.bak");
        std::fs::write(&p, &m).unwrap();
        // Its soft filemark tables list offsets in the stream itself, so it verifies as plain
        // MTF, and every set reads the same from it as from the compressed file.
        let v = run("bak-verify", &os(&args![&p]), b"");
        assert_eq!(v.code, 0, "{name}: {}", String::from_utf8_lossy(&v.stdout));
        let h = run("bak-header", &os(&args!["--json", &p]), b"");
        let sets = String::from_utf8_lossy(&h.stdout).lines().count();
        assert!(sets >= 1);
        for pos in 1..=sets {
            let pos = pos.to_string();
            let stream = if name == "cmp2019_log.bak" {
                "log"
            } else {
                "data"
            };
            let a = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--stream",
                    stream,
                    "--file",
                    pos.as_str(),
                    &f
                ]),
                b"",
            );
            let b = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--stream",
                    stream,
                    "--file",
                    pos.as_str(),
                    &p
                ]),
                b"",
            );
            assert_eq!((a.code, b.code), (0, 0), "{name} set {pos}");
            assert!(a.stdout == b.stdout, "{name} set {pos}: the same bytes");
        }
    }
}

#[test]
fn a_full_output_is_named_by_its_path_for_sqlserver_backups_too() {
    let Some(dir) = crate::util::fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    for extra in [&[][..], &["--mtf"][..]] {
        let mut a: Vec<std::ffi::OsString> =
            vec!["--quiet".into(), "-o".into(), "/dev/full".into()];
        a.extend(extra.iter().map(|x| x.into()));
        a.push(f.clone().into());
        let r = crate::util::run("bak-read", &crate::util::os(&a), b"");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("/dev/full: write failed: no space left on device"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("output"), "{}", r.stderr);
    }
}
