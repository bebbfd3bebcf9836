//! bak-header over devices of many media sets at once (`bak-header *.bak`): every set of every
//! file, the families of one media set together, each row naming its Device and MediaSetId in
//! the table, JSON and CSV alike; a device that cannot be read is named and the rest listed.

use std::path::{Path, PathBuf};

use crate::mtf_support::{streams, u16_at, u32_at};
use crate::util::*;

/// Every fixture file, sorted by name (what a shell's `*.bak *.trn` gives).
fn all_fixtures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bak" || x == "trn"))
        .collect();
    v.sort();
    v
}

/// The media set GUID of an uncompressed fixture, from its bytes: the first 16 bytes of the
/// RAID stream's data (22 bytes after its header), in Microsoft byte order.
fn raid_guid(f: &Path) -> String {
    let m = std::fs::read(f).unwrap();
    let h = streams(&m[..0x2000.min(m.len())], b"RAID")[0];
    let b = &m[h + 22..h + 38];
    let hex = |s: &[u8]| s.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32_at(b, 0),
        u16_at(b, 4),
        u16_at(b, 6),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

#[test]
fn all_seventeen_fixtures_at_once_list_every_set_with_device_and_media_set() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let files = all_fixtures(&dir);
    assert_eq!(files.len(), 17);
    let o = run("bak-header", &os(&args!["--json", &files]), b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let rows = json_lines(&o.stdout);
    // 17 files: three hold two sets each (cmp2014, multi2008, stdb2sql), the striped pair one
    // set between them: 17 - 3 - 2 + 6 + 1.
    assert_eq!(rows.len(), 19);
    for r in &rows {
        assert!(r["Device"].as_str().is_some_and(|d| !d.is_empty()), "{r}");
        assert!(r["MediaSetId"].is_string(), "{r}");
    }
    // The striped pair groups into one media set: one row naming both families, in order.
    let fam = |n: &str| dir.join(n).display().to_string();
    let stripe: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["DatabaseName"] == "RestoreTimeStripe")
        .collect();
    assert_eq!(stripe.len(), 1);
    assert_eq!(
        stripe[0]["Device"],
        format!(
            "{}, {}",
            fam("stripe2008r2_full_fam1.bak"),
            fam("stripe2008r2_full_fam2.bak")
        )
    );
    assert_eq!(stripe[0]["FamilyCount"], 2);
    assert_eq!(stripe[0]["IsComplete"], true);
    let guid = raid_guid(&dir.join("stripe2008r2_full_fam1.bak"));
    assert_eq!(guid, raid_guid(&dir.join("stripe2008r2_full_fam2.bak")));
    assert_eq!(stripe[0]["MediaSetId"], guid);
    // Each other uncompressed file's rows carry its own RAID GUID; both sets of an appended
    // file name it.
    for f in &files {
        let text = f.display().to_string();
        if text.contains("stripe2008r2") || std::fs::read(f).unwrap().starts_with(b"MSSQLBAK") {
            continue;
        }
        let mine: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|r| r["Device"] == text.as_str())
            .collect();
        assert!(!mine.is_empty(), "{text}");
        for r in mine {
            assert_eq!(r["MediaSetId"], raid_guid(f), "{text}");
        }
    }
    let of = |n: &str| rows.iter().filter(|r| r["Device"] == fam(n)).count();
    assert_eq!(of("multi2008_omi_2sets.bak"), 2);
    assert_eq!(of("sql2005_stdb2sql_2sets.bak"), 2);
    // Every media set is a different one.
    let mut ids: Vec<&str> = rows
        .iter()
        .map(|r| r["MediaSetId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 16);

    // The table and CSV carry the same columns and rows.
    let t = run("bak-header", &os(&args![&files]), b"");
    assert_eq!(t.code, 0, "{}", t.stderr);
    let text = String::from_utf8(t.stdout).unwrap();
    let head: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head.first(), Some(&"Device"));
    assert_eq!(head.last(), Some(&"MediaSetId"));
    assert!(head.contains(&"FirstLSN") && head.contains(&"LastLSN"));
    assert_eq!(text.lines().count(), 1 + 19);
    assert!(text.contains(&guid));
    let c = run("bak-header", &os(&args!["--csv", &files]), b"");
    assert_eq!(c.code, 0, "{}", c.stderr);
    let csv = String::from_utf8(c.stdout).unwrap();
    let cols: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for k in [
        "Device",
        "MediaSetId",
        "FirstLSN",
        "RecoveryModel",
        "Collation",
    ] {
        assert!(cols.contains(&k), "{k}: {cols:?}");
    }
    // One line per set, the striped one quoted (its Device holds ", ").
    assert_eq!(csv.lines().count(), 1 + 19);
    assert!(csv.contains(&format!("\"{}, ", fam("stripe2008r2_full_fam1.bak"))));

    // LABELONLY: a row per device, 17; FILELISTONLY: the first set of each media set, each
    // row naming its device.
    let l = run(
        "bak-header",
        &os(&args!["--labelonly", "--json", &files]),
        b"",
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    let labels = json_lines(&l.stdout);
    assert_eq!(labels.len(), 17);
    assert_eq!(
        labels
            .iter()
            .filter(|r| r["MediaSetId"] == guid.as_str())
            .count(),
        2
    );
    let fl = run(
        "bak-header",
        &os(&args!["--filelist", "--json", &files]),
        b"",
    );
    assert_eq!(fl.code, 0, "{}", fl.stderr);
    let fls = json_lines(&fl.stdout);
    let mut devs: Vec<&str> = fls.iter().map(|r| r["Device"].as_str().unwrap()).collect();
    devs.dedup();
    assert_eq!(devs.len(), 16, "{devs:?}");
    assert!(fls
        .iter()
        .all(|r| r["Position"] == 1 && r["MediaSetId"].is_string()));
}

#[test]
fn a_device_that_cannot_be_read_is_named_and_the_others_listed() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let t = temp_dir("many-bad");
    let junk = t.path().join("junk.bak");
    std::fs::write(&junk, b"not a backup at all").unwrap();
    let missing = t.path().join("missing.bak");
    let pubs = dir.join("pubs_UGR95.bak");
    let log = dir.join("log2016_restoretimeclean.trn");
    let o = run(
        "bak-header",
        &os(&args!["--json", &pubs, &junk, &missing, &log]),
        b"",
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("junk.bak") && o.stderr.contains("missing.bak"),
        "{}",
        o.stderr
    );
    let rows = json_lines(&o.stdout);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["DatabaseName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pubs", "RestoreTimeClean"]);

    // bak media whose label is damaged: exit 1 (damage), not 2, and the others still listed.
    let bad = t.path().join("bad.bak");
    assert_eq!(write(std::slice::from_ref(&bad), &[], b"some data").code, 0);
    let mut b = std::fs::read(&bad).unwrap();
    b[40] ^= 0x01;
    std::fs::write(&bad, &b).unwrap();
    let o = run("bak-header", &os(&args!["--json", &bad, &pubs]), b"");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("bad.bak"), "{}", o.stderr);
    assert_eq!(json_lines(&o.stdout).len(), 1);
    // The worst wins: damage and a missing file give 2.
    let o = run("bak-header", &os(&args![&bad, &missing, &pubs]), b"");
    assert_eq!(o.code, 2, "{}", o.stderr);
    // Alone, a device that cannot be read prints no table.
    let o = run("bak-header", &os(&args![&missing]), b"");
    assert_eq!((o.code, o.stdout.is_empty()), (2, true), "{}", o.stderr);
}

#[test]
fn bak_media_sets_and_sql_server_backups_list_together() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let t = temp_dir("many-mixed");
    let (a, b) = (t.path().join("a.bak"), t.path().join("b.bak"));
    assert_eq!(
        write(std::slice::from_ref(&a), &["--name", "first"], b"aaaa").code,
        0
    );
    assert_eq!(
        write(std::slice::from_ref(&b), &["--name", "second"], b"bb").code,
        0
    );
    let id = |d: &Path| {
        json_lines(&run("bak-header", &os(&args!["--labelonly", "--json", d]), b"").stdout)[0]
            ["MediaSetId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let pubs = dir.join("pubs_UGR95.bak");
    let o = run("bak-header", &os(&args!["--json", &a, &pubs, &b]), b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let rows = json_lines(&o.stdout);
    assert_eq!(rows.len(), 3);
    // In the order given; bak rows now say where they were read too.
    assert_eq!(rows[0]["BackupName"], "first");
    assert_eq!(rows[0]["Device"], a.display().to_string());
    assert_eq!(rows[0]["MediaSetId"], id(&a));
    assert!(rows[0].get("FirstLSN").is_none(), "{}", rows[0]);
    assert_eq!(rows[1]["DatabaseName"], "pubs");
    assert_eq!(rows[2]["BackupName"], "second");
    assert_eq!(rows[2]["MediaSetId"], id(&b));
    assert_ne!(id(&a), id(&b));
    // CSV: the union of the columns, bak rows empty where SQL Server columns are.
    let c = run("bak-header", &os(&args!["--csv", &a, &pubs]), b"");
    let csv = String::from_utf8(c.stdout).unwrap();
    assert!(csv.lines().next().unwrap().contains("FirstLSN"));
    assert_eq!(csv.lines().count(), 3);
    // The tools that act on one media set still refuse two.
    for tool in ["bak-verify", "bak-read"] {
        let o = run(tool, &os(&args![&a, &b]), b"");
        assert_ne!(o.code, 0, "{tool}");
        assert!(
            o.stderr.contains("another media set"),
            "{tool}: {}",
            o.stderr
        );
    }
    let o = run(
        "bak-verify",
        &os(&args![&pubs, &dir.join("cmp2019_log.bak")]),
        b"",
    );
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("belongs to media set"), "{}", o.stderr);
}
