//! HEADERONLY's own columns of SQL Server backups (LSNs, differential base, family GUID,
//! recovery model, compatibility level, collation, database version), as bak-header prints
//! them, against values read here from the fixture bytes: the SCIN record of each set's
//! configuration stream (MQCI), its trailing copy (docs/MTF.md), read with a reader of its own
//! at the offsets; a few values checked by hand against the bytes besides, with how.

use std::path::Path;

use crate::mtf_support::{blocks, streams, u16_at, u32_at};
use crate::util::*;

/// The SCIN record of every MQCI stream of an MTF stream, in media order: the data of a
/// stream begins with it (the stream header is 22 bytes; the record's u32 at 4 is its length).
fn scins(mtf: &[u8]) -> Vec<Vec<u8>> {
    streams(mtf, b"MQCI")
        .into_iter()
        .map(|h| {
            let at = h + 22;
            assert_eq!(&mtf[at..at + 4], b"SCIN", "MQCI at {h} begins with SCIN");
            let len = u32_at(mtf, at + 4) as usize;
            mtf[at..at + len].to_vec()
        })
        .collect()
}

/// The MTF stream of a fixture: the file itself, or decompressed (`bak-read --mtf`).
fn mtf_of(f: &Path) -> Vec<u8> {
    let bytes = std::fs::read(f).unwrap();
    if bytes.starts_with(b"MSSQLBAK") {
        decompressed_mtf(f)
    } else {
        bytes
    }
}

/// SQL Server's decimal form of the 10-byte LSN at `off`: seq × 10^15 + block × 10^5 + slot.
fn lsn(rec: &[u8], off: usize) -> String {
    let seq = u128::from(u32_at(rec, off));
    let block = u128::from(u32_at(rec, off + 4));
    let slot = u128::from(u16_at(rec, off + 8));
    (seq * 1_000_000_000_000_000 + block * 100_000 + slot).to_string()
}

/// A Microsoft-order GUID at `off` (first three fields little-endian).
fn guid(rec: &[u8], off: usize) -> String {
    let b = &rec[off..off + 16];
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32_at(b, 0),
        u16_at(b, 4),
        u16_at(b, 6),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The recovery model the database status bits at 0xf4 give (docs/OUTPUT.md).
fn recovery(status: u32) -> &'static str {
    if status & 8 != 0 {
        "SIMPLE"
    } else if status & 4 != 0 {
        "BULK-LOGGED"
    } else {
        "FULL"
    }
}

/// The sets of a file as bak-header --json lists them.
fn header(f: &Path) -> Vec<serde_json::Value> {
    let o = run("bak-header", &os(&args!["--json", f]), b"");
    assert_eq!(o.code, 0, "{}: {}", f.display(), o.stderr);
    json_lines(&o.stdout)
}

/// Every fixture but the second family of the striped pair (the first stands for the set).
const ONE_FAMILY: &[&str] = &[
    "northwind_CConocimientos.bak",
    "pubs_UGR95.bak",
    "testdb_Docmilo.bak",
    "testdb_dancingfrog.bak",
    "cmp2019_full_checksum.bak",
    "cmp2019_log.bak",
    "cmp2014_sharepoint_2sets.bak",
    "log2016_restoretimeclean.trn",
    "diff2016_restoretimeclean.bak",
    "multi2008_omi_2sets.bak",
    "linux2019_meetupdb.bak",
    "mediapwd2008r2_passwd.bak",
    "sql2005_northwind_blackmonoceros.bak",
    "sql2005_stdb2sql_2sets.bak",
    "cmp2019_datatable_peterezz.bak",
    "stripe2008r2_full_fam1.bak",
];

#[test]
fn every_fixture_prints_the_columns_its_trailing_scin_holds() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut seen = 0;
    for name in ONE_FAMILY {
        let f = dir.join(name);
        let mtf = mtf_of(&f);
        let recs = scins(&mtf);
        let ssets = blocks(&mtf, b"SSET");
        let rows = header(&f);
        // A leading and a trailing copy per set.
        assert_eq!(recs.len(), rows.len() * 2, "{name}");
        assert_eq!(ssets.len(), rows.len(), "{name}");
        for (k, r) in rows.iter().enumerate() {
            let t = &recs[2 * k + 1];
            let what = format!("{name} set {}", r["Position"]);
            // IsCopyOnly is the SSET attributes' copy bit (+52, 0x2): clear in every fixture.
            let attrs = u32_at(&mtf, ssets[k] + 52);
            assert_eq!(r["IsCopyOnly"], attrs & 2 != 0, "{what}");
            assert_eq!(r["IsCopyOnly"], false, "{what}");
            assert_eq!(r["FirstLSN"], lsn(t, 0x20), "{what}");
            assert_eq!(r["LastLSN"], lsn(t, 0x2a), "{what}");
            assert_eq!(r["CheckpointLSN"], lsn(t, 0x34), "{what}");
            assert_eq!(r["DatabaseBackupLSN"], lsn(t, 0x3e), "{what}");
            assert_eq!(r["CompatibilityLevel"], u64::from(t[0x5b]), "{what}");
            assert_eq!(r["DatabaseVersion"], u64::from(u16_at(t, 0x5e)), "{what}");
            assert_eq!(r["FamilyGUID"], guid(t, 0xe0), "{what}");
            assert_eq!(r["RecoveryModel"], recovery(u32_at(t, 0xf4)), "{what}");
            let differential = t[0x57] == b'I';
            if differential {
                assert_eq!(r["DifferentialBaseLSN"], lsn(t, 0x104), "{what}");
                assert_eq!(r["DifferentialBaseGUID"], guid(t, 0x110), "{what}");
            } else {
                assert!(r["DifferentialBaseLSN"].is_null(), "{what}");
                assert!(r["DifferentialBaseGUID"].is_null(), "{what}");
            }
            // What any backup must satisfy.
            let n = |k: &str| r[k].as_str().unwrap().parse::<u128>().unwrap();
            assert!(n("LastLSN") > n("FirstLSN"), "{what}");
            assert!(
                n("FirstLSN") <= n("CheckpointLSN") && n("CheckpointLSN") < n("LastLSN"),
                "{what}"
            );
            let version = (
                r["SoftwareVersionMajor"].as_u64().unwrap(),
                r["SoftwareVersion"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap(),
            );
            let (db_version, top_level) = match version {
                (9, _) => (611, 90),
                (10, "0") => (655, 100),
                (10, "50") => (661, 100),
                (11, _) => (706, 110),
                (12, _) => (782, 120),
                (13, _) => (852, 130),
                (15, _) => (904, 150),
                v => panic!("{what}: a version no fixture has: {v:?}"),
            };
            assert_eq!(r["DatabaseVersion"], db_version, "{what}");
            let compat = r["CompatibilityLevel"].as_u64().unwrap();
            assert!((80..=top_level).contains(&compat), "{what}: {compat}");
            seen += 1;
        }
    }
    assert_eq!(seen, 19);
}

#[test]
fn values_checked_by_hand_against_the_bytes() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let one = |name: &str| header(&dir.join(name)).remove(0);
    // diff2016, trailing SCIN at 0xb724e: +0x104 = 27 00 00 00 e8 01 00 00 47 00 (39:488:71),
    // +0x110 = 51 41 c4 c6 2c 8a 6c 4c 9b f5 2e 02 09 0c 8e bc.
    let d = one("diff2016_restoretimeclean.bak");
    assert_eq!(d["BackupTypeDescription"], "Database Differential");
    assert_eq!(d["DifferentialBaseLSN"], "39000000048800071");
    assert_eq!(
        d["DifferentialBaseGUID"],
        "c6c44151-8a2c-4c6c-9bf5-2e02090c8ebc"
    );
    // Its DatabaseBackupLSN (+0x3e, the same bytes) is its base's CheckpointLSN.
    assert_eq!(d["DatabaseBackupLSN"], d["DifferentialBaseLSN"]);
    assert_eq!(d["Collation"], "SQL_Latin1_General_CP1_CI_AS"); // +0xd8: 09 04 d0 00 34
                                                                // log2016: +0x20 = 27 00 00 00 da 01 00 00 01 00 (39:474:1), +0x2a 39:541:1, status
                                                                // +0xf4 = 00 00 01 00 (0x10000: neither bit 0x8 nor 0x4: FULL, as a log backup needs).
    let l = one("log2016_restoretimeclean.trn");
    assert_eq!(l["BackupTypeDescription"], "Transaction Log");
    assert_eq!(
        (&l["FirstLSN"], &l["LastLSN"]),
        (
            &serde_json::json!("39000000047400001"),
            &serde_json::json!("39000000054100001")
        )
    );
    assert_eq!(l["RecoveryModel"], "FULL");
    assert_eq!(l["FamilyGUID"], d["FamilyGUID"]);
    // SQL Server 2005 Northwind: +0x5b = 0x5a (90), +0x5e = 63 02 (611), +0xd8 = 15 04 d0 00 00
    // (LCID 0x415, Polish, case-insensitive, accent-sensitive), status 0x1000c (truncate log on
    // checkpoint and bulk copy, as the sample's install script sets them): SIMPLE.
    let n = one("sql2005_northwind_blackmonoceros.bak");
    assert_eq!(n["SoftwareProduct"], "SQL Server 2005");
    assert_eq!(
        (
            n["CompatibilityLevel"].as_u64(),
            n["DatabaseVersion"].as_u64()
        ),
        (Some(90), Some(611))
    );
    assert_eq!(n["Collation"], "Polish_CI_AS");
    assert_eq!(n["RecoveryModel"], "SIMPLE");
    assert_eq!(n["FirstLSN"], "49000000009400037"); // 31 00 00 00 5e 00 00 00 25 00
                                                    // SharePoint_Config (compressed 2014): +0xd8 = 09 04 10 00 00, only "ignore case" among the
                                                    // flags: Latin1_General_CI_AS_KS_WS, the collation SharePoint requires.
    let s = one("cmp2014_sharepoint_2sets.bak");
    assert_eq!(s["Collation"], "Latin1_General_CI_AS_KS_WS");
    // pubs (Granada): +0xd8 = 0a 0c d0 00 00, LCID 0xc0a.
    assert_eq!(one("pubs_UGR95.bak")["Collation"], "Modern_Spanish_CI_AS");
    // SQL Server 2019 writes later LSNs in the trailing copy (leading FirstLSN
    // 37000000083100193), and the log backup after it names the trailing CheckpointLSN as its
    // DatabaseBackupLSN and the full's BackupSetGUID at +0xc8.
    let full = one("cmp2019_full_checksum.bak");
    let log = one("cmp2019_log.bak");
    assert_eq!(full["CheckpointLSN"], "37000000091400001");
    assert_eq!(log["DatabaseBackupLSN"], full["CheckpointLSN"]);
    assert_eq!(full["FamilyGUID"], log["FamilyGUID"]);
    // Appended sets: the second set's DatabaseBackupLSN is the first one's CheckpointLSN.
    // So the first set is not copy-only (a copy-only full is no base), and says so; nor is
    // the full that cmp2019_log names, nor a differential (COPY_ONLY does not apply to one).
    for name in ["multi2008_omi_2sets.bak", "cmp2014_sharepoint_2sets.bak"] {
        let rows = header(&dir.join(name));
        assert_eq!(
            rows[1]["DatabaseBackupLSN"], rows[0]["CheckpointLSN"],
            "{name}"
        );
        assert_eq!(rows[0]["IsCopyOnly"], false, "{name}");
    }
    assert_eq!(full["IsCopyOnly"], false);
    assert_eq!(d["IsCopyOnly"], false);
}

/// The SSET attributes of a set with the copy bit set, as SQL Server marks a COPY_ONLY backup
/// (MTF's SSET_COPY_BIT; no fixture is copy-only, so the bit is set here by hand, in a plain
/// and in a decompressed compressed backup). No checksum covers the field.
#[test]
fn the_sset_copy_bit_makes_a_copy_only_backup() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for name in ["testdb_dancingfrog.bak", "cmp2019_full_checksum.bak"] {
        let mut m = mtf_of(&dir.join(name));
        let sset = blocks(&m, b"SSET")[0];
        assert_eq!(
            u32_at(&m, sset + 52),
            4,
            "{name}: a full backup, NORMAL only"
        );
        m[sset + 52] |= 2;
        let f = temp_file("copy-only.bak", &m);
        let rows = header(&f);
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(rows[0]["IsCopyOnly"], true, "{name}");
        // Still a full backup, and as good as before.
        assert_eq!(rows[0]["BackupTypeDescription"], "Database", "{name}");
        let v = run("bak-verify", &os(&args!["--quiet", &*f]), b"");
        assert_eq!(v.code, 0, "{name}: {}", v.stderr);
        // The differential bit next to it is a differential, not a copy.
        m[sset + 52] = 8;
        let g = temp_file("differential.bak", &m);
        assert_eq!(header(&g)[0]["IsCopyOnly"], false, "{name}");
    }
}

#[test]
fn bak_media_have_no_sql_server_columns() {
    let t = temp_dir("no-sql");
    let d = t.path().join("a.bak");
    assert_eq!(write(std::slice::from_ref(&d), &[], b"hello").code, 0);
    let rows = json_lines(&run("bak-header", &os(&args!["--json", &d]), b"").stdout);
    let keys = rows[0].as_object().unwrap();
    for k in [
        "FirstLSN",
        "RecoveryModel",
        "Collation",
        "IsCopyOnly",
        "Device",
        "MediaSetId",
    ] {
        assert!(!keys.contains_key(k), "{k} in {:?}", rows[0]);
    }
}
