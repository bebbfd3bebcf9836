//! `bak-header --chain`: the full, differential and log backups of each database put in their
//! restore sequence by LSN, and where the sequence breaks (exit 1). On the fixtures that hold
//! several backups of one database (the restoretimeclean2016 differential and log; the cmp2019
//! Test full and log), alone, all together, and with a gap made in a log's LSNs.

use std::path::Path;

use crate::mtf_support::streams;
use crate::util::*;

fn chain(files: &[&Path]) -> (i32, Vec<serde_json::Value>, String) {
    let mut a = args!["--chain", "--json"];
    a.extend(files.iter().map(|f| f.into()));
    let o = run("bak-header", &os(&a), b"");
    (o.code, json_lines(&o.stdout), o.stderr)
}

/// (Step, Role, Device) of each row.
fn steps(rows: &[serde_json::Value]) -> Vec<(Option<u64>, String, Option<String>)> {
    rows.iter()
        .map(|r| {
            (
                r["Step"].as_u64(),
                r["Role"].as_str().unwrap().to_string(),
                r["Device"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn n(v: &serde_json::Value) -> u128 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn the_restoretimeclean_differential_lacks_its_full_backup() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let diff = dir.join("diff2016_restoretimeclean.bak");
    let log = dir.join("log2016_restoretimeclean.trn");
    let (code, rows, err) = chain(&[&log, &diff]);
    // The full backup both are based on is not among the fixtures: a break.
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("RestoreTimeClean breaks") && err.contains("no full backup"),
        "{err}"
    );
    let (d, l) = (diff.display().to_string(), log.display().to_string());
    assert_eq!(
        steps(&rows),
        vec![
            (Some(1), "missing".into(), None),
            (Some(2), "differential".into(), Some(d)),
            (None, "not-needed".into(), Some(l)),
        ]
    );
    // The missing full is the one the differential names (its DatabaseBackupLSN and
    // DifferentialBaseGUID: SCIN +0x3e and +0x110 of diff2016).
    assert_eq!(rows[0]["BackupTypeDescription"], "Database");
    assert_eq!(rows[0]["CheckpointLSN"], "39000000048800071");
    assert_eq!(
        rows[0]["BackupSetGUID"],
        "c6c44151-8a2c-4c6c-9bf5-2e02090c8ebc"
    );
    // The log ends (39000000054100001) before the differential does (39000000059800001).
    assert!(n(&rows[2]["LastLSN"]) < n(&rows[1]["LastLSN"]));
    assert!(rows[2]["Note"].as_str().unwrap().contains("already covers"));
    assert!(rows.iter().all(|r| r["ChainWhole"] == false));
    assert!(rows.iter().all(|r| r["DatabaseName"] == "RestoreTimeClean"));
}

#[test]
fn the_cmp2019_full_and_log_chain() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let full = dir.join("cmp2019_full_checksum.bak");
    let log = dir.join("cmp2019_log.bak");
    // Given log first: ordered by LSN, not by the command line.
    let (code, rows, err) = chain(&[&log, &full]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        steps(&rows),
        vec![
            (Some(1), "full".into(), Some(full.display().to_string())),
            (Some(2), "log".into(), Some(log.display().to_string())),
        ]
    );
    // The log holds the point the full reaches: FirstLSN <= the full's LastLSN < its LastLSN
    // (37000000019700001 <= 37000000091700001 < 37000000128700001).
    let (f, l) = (&rows[0], &rows[1]);
    assert!(n(&l["FirstLSN"]) <= n(&f["LastLSN"]) && n(&f["LastLSN"]) < n(&l["LastLSN"]));
    assert_eq!(l["DatabaseBackupLSN"], f["CheckpointLSN"]);
    assert!(rows.iter().all(|r| r["ChainWhole"] == true));
    // The table says the same.
    let t = run("bak-header", &os(&args!["--chain", &full, &log]), b"");
    assert_eq!(t.code, 0, "{}", t.stderr);
    let text = String::from_utf8(t.stdout).unwrap();
    let head: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(&head[..3], ["DatabaseName", "Step", "Role"]);
    assert!(text.lines().nth(1).unwrap().contains(" full "));
}

#[test]
fn a_log_alone_lacks_its_full_backup() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let (code, rows, err) = chain(&[&dir.join("cmp2019_log.bak")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        steps(&rows)
            .into_iter()
            .map(|(s, r, _)| (s, r))
            .collect::<Vec<_>>(),
        vec![
            (Some(1), "missing".to_string()),
            (Some(2), "log".to_string())
        ]
    );
}

#[test]
fn a_log_with_a_gap_after_the_full_breaks_the_chain() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let full = dir.join("cmp2019_full_checksum.bak");
    // The log backup as plain MTF (bak-read --mtf), its FirstLSN moved in both SCIN copies
    // from 37:197:1 to 37:1000:1, after the full's LastLSN 37:917:1 (the stream headers'
    // checksums do not cover the data).
    let mut m = decompressed_mtf(&dir.join("cmp2019_log.bak"));
    let mqci = streams(&m, b"MQCI");
    assert_eq!(mqci.len(), 2);
    for h in mqci {
        let scin = h + 22;
        assert_eq!(&m[scin..scin + 4], b"SCIN");
        m[scin + 0x24..scin + 0x28].copy_from_slice(&1000u32.to_le_bytes());
    }
    let t = temp_dir("gap");
    let gapped = t.path().join("log-gap.bak");
    std::fs::write(&gapped, &m).unwrap();
    let (code, rows, err) = chain(&[&full, &gapped]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        steps(&rows),
        vec![
            (Some(1), "full".into(), Some(full.display().to_string())),
            (Some(2), "missing".into(), None),
            (Some(3), "log".into(), Some(gapped.display().to_string())),
        ]
    );
    // The missing log backups are those from the full's LastLSN to the log's FirstLSN.
    assert_eq!(rows[1]["BackupTypeDescription"], "Transaction Log");
    assert_eq!(rows[1]["FirstLSN"], rows[0]["LastLSN"]);
    assert_eq!(rows[1]["LastLSN"], "37000000100000001");
    assert_eq!(rows[2]["FirstLSN"], "37000000100000001");
    assert!(
        err.contains("log backups of Test from LSN 37000000091700001 to 37000000100000001"),
        "{err}"
    );
}

#[test]
fn every_fixture_at_once_groups_by_database() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bak" || x == "trn"))
        .collect();
    files.sort();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (code, rows, err) = chain(&refs);
    // RestoreTimeClean lacks its full; Northwind's lone stripe is incomplete.
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("RestoreTimeClean") && err.contains("Northwind"),
        "{err}"
    );
    let of = |db: &str| -> Vec<&serde_json::Value> {
        rows.iter().filter(|r| r["DatabaseName"] == db).collect()
    };
    // Two unrelated databases named TestDB (family GUIDs differ): two sequences of one full.
    let testdb = of("TestDB");
    assert_eq!(testdb.len(), 2);
    assert_ne!(testdb[0]["FamilyGUID"], testdb[1]["FamilyGUID"]);
    assert!(testdb.iter().all(|r| r["Step"] == 1 && r["Role"] == "full"));
    // Appended fulls of one database: the later one is the start, the earlier not needed.
    let omi = of("OMIstats");
    assert_eq!(
        omi.iter()
            .map(|r| (r["Role"].as_str().unwrap(), r["Position"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("full", 2), ("not-needed", 1)]
    );
    // Whole sequences say so; the broken ones on every row.
    assert!(of("Test").iter().all(|r| r["ChainWhole"] == true));
    assert!(of("RestoreTimeClean")
        .iter()
        .all(|r| r["ChainWhole"] == false));
    let nw = of("Northwind");
    assert!(nw
        .iter()
        .any(|r| r["ChainWhole"] == false && r["Note"].as_str().unwrap().contains("not complete")));
}
