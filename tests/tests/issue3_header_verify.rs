//! Issue 3: bak-header (LABELONLY, HEADERONLY) and bak-verify (VERIFYONLY) on bak media:
//! golden output in three formats, and a seeded fault-injection suite.

mod util;
use std::path::{Path, PathBuf};
use util::*;

use bak_core::format::{parse_frame, Mbc, RecordType, FRAME_HEADER_LEN, RECORD_PREFIX_LEN};
use bak_core::media::{read_label, scan_family};

const MTS: usize = 64 << 10;

fn tool(t: &str, a: &[std::ffi::OsString]) -> Output {
    run(t, &os(a), b"")
}

/// Two sets on three families: set 1 zstd:3, set 2 uncompressed.
fn make_media(t: &TempDir, prefix: &str) -> (Vec<PathBuf>, Vec<u8>, Vec<u8>) {
    let devs = t.devices(prefix, 3);
    let one = data(23 * MTS + 100, 1);
    let two = data(17 * MTS + 7, 2);
    let mut a = args![
        "--quiet",
        "--max-transfer-size",
        "64K",
        "--compress",
        "zstd:3",
        "--name",
        "first",
        "--description",
        "the first set",
        "--media-name",
        "golden"
    ];
    a.extend(devs.iter().map(|p| p.into()));
    assert_eq!(run("bak-write", &os(&a), &one).code, 0);
    let mut a = args!["--quiet", "--max-transfer-size", "64K", "--name", "second"];
    a.extend(devs.iter().map(|p| p.into()));
    assert_eq!(run("bak-write", &os(&a), &two).code, 0);
    (devs, one, two)
}

/// Replace every GUID and date that the JSON rows name with placeholders.
fn normalise(text: &str, json: &str) -> String {
    let mut out = text.to_string();
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for (k, val) in v.as_object().unwrap() {
            if let Some(s) = val.as_str() {
                if k.ends_with("Date")
                    || k.ends_with("GUID")
                    || k.ends_with("Id")
                    || k == "Digest"
                    || k == "UserName"
                    || k == "MachineName"
                    || k == "SoftwareName"
                {
                    let tag = if k.ends_with("Date") {
                        "YYYY-MM-DDTHH:MM:SSZ"
                    } else if k == "Digest" {
                        "<DIGEST>"
                    } else {
                        "<ID>"
                    };
                    if !s.is_empty() {
                        out = out.replace(s, tag);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn headeronly_golden_table_json_csv() {
    let t = TempDir::new("golden");
    let (devs, one, two) = make_media(&t, "g");
    let json = tool("bak-header", &args!["--json", &devs]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let js = String::from_utf8(json.stdout).unwrap();
    let rows: Vec<serde_json::Value> = js
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Position"], 1);
    assert_eq!(rows[0]["BackupName"], "first");
    assert_eq!(rows[0]["BackupDescription"], "the first set");
    assert_eq!(rows[0]["Compression"], "zstd:3");
    assert_eq!(rows[0]["Compressed"], true);
    assert_eq!(rows[0]["BackupSize"], one.len() as u64);
    assert_eq!(rows[0]["BlockCount"], 24);
    assert_eq!(rows[0]["MaxTransferSize"], MTS as u64);
    assert_eq!(rows[0]["FamilyCount"], 3);
    assert_eq!(rows[0]["IsComplete"], true);
    assert_eq!(rows[0]["HasBackupChecksums"], true);
    assert!(rows[0]["CompressedBackupSize"].as_u64().unwrap() < one.len() as u64);
    assert_eq!(rows[1]["BackupName"], "second");
    assert_eq!(rows[1]["Compressed"], false);
    assert_eq!(rows[1]["BackupSize"], two.len() as u64);
    assert_eq!(rows[1]["Compression"], "none");
    for k in [
        "BackupSetGUID",
        "UserName",
        "MachineName",
        "BackupStartDate",
        "BackupFinishDate",
        "ExpirationDate",
        "SoftwareName",
        "SoftwareVersion",
    ] {
        assert!(rows[0].get(k).is_some(), "key {k} missing");
    }

    let table = tool("bak-header", &args![&devs]);
    assert_eq!(table.code, 0);
    let table = normalise(&String::from_utf8(table.stdout).unwrap(), &js);
    let c2 = rows[1]["CompressedBackupSize"].as_u64().unwrap();
    let c1 = rows[0]["CompressedBackupSize"].as_u64().unwrap();
    let expected = format!(
        "Position  BackupName  BackupTypeDescription  DatabaseName  BackupStartDate       Compression  BackupSize  CompressedBackupSize  FamilyCount  IsComplete\n\
         1         first       Stream                               YYYY-MM-DDTHH:MM:SSZ  zstd:3       {}     {:<20}  3            true\n\
         2         second      Stream                               YYYY-MM-DDTHH:MM:SSZ  none         {}     {:<20}  3            true\n",
        one.len(), c1, two.len(), c2
    );
    assert_eq!(table, expected);

    let csv = tool("bak-header", &args!["--csv", &devs]);
    let csv = normalise(&String::from_utf8(csv.stdout).unwrap(), &js);
    let mut lines = csv.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("Position,BackupName,BackupDescription,BackupSetGUID,"),
        "{head}"
    );
    let first = lines.next().unwrap();
    assert!(first.starts_with("1,first,the first set,<ID>,,Stream,<ID>,<ID>,,,,,YYYY-MM-DDTHH:MM:SSZ,YYYY-MM-DDTHH:MM:SSZ,,true,zstd:3,false,"), "{first}");
    assert_eq!(lines.count(), 1);
}

#[test]
fn labelonly_golden() {
    let t = TempDir::new("label");
    let (devs, _, _) = make_media(&t, "l");
    let j = tool("bak-header", &args!["--labelonly", "--json", &devs[1]]);
    assert_eq!(j.code, 0, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["MediaName"], "golden");
    assert_eq!(v["FamilyCount"], 3);
    assert_eq!(v["FamilySequenceNumber"], 2);
    assert_eq!(v["BackupSetCount"], 2);
    assert_eq!(v["MediaFormat"], "bak");
    assert_eq!(v["FormatVersion"], "1.0");
    assert_eq!(v["Expired"], true);
    let tbl = tool("bak-header", &args!["--labelonly", &devs[1]]);
    let text = String::from_utf8(tbl.stdout).unwrap();
    assert!(
        text.ends_with("The media set has 3 families (numbers 1, 2, 3); 1 device given.\n"),
        "{text}"
    );
}

#[test]
fn an_interrupted_set_is_listed_as_incomplete_never_hidden() {
    let t = TempDir::new("incomplete");
    let (devs, _, _) = make_media(&t, "i");
    // Cut family 3 inside set 2 (how many blocks a family holds varies: blocks go to whichever
    // device is free, so a fixed cut could reach into set 1).
    let f = std::fs::File::open(&devs[2]).unwrap();
    let start = scan_family(&f, &devs[2]).unwrap().sets[1]
        .eset
        .set_header_offset as usize;
    let b = std::fs::read(&devs[2]).unwrap();
    std::fs::write(&devs[2], &b[..(start + b.len()) / 2]).unwrap();
    let j = tool("bak-header", &args!["--json", &devs]);
    let rows: Vec<serde_json::Value> = String::from_utf8(j.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{}", j.stderr);
    assert_eq!(rows[0]["IsComplete"], true);
    assert_eq!(rows[1]["IsComplete"], false);
    let v = tool("bak-verify", &args![&devs]);
    assert_eq!(v.code, 1);
    let out = String::from_utf8(v.stdout).unwrap();
    assert!(out.contains("The backup set on file 1 is valid."), "{out}");
    assert!(
        out.contains("The backup set on file 2 is incomplete"),
        "{out}"
    );
}

#[test]
fn verify_json_report_and_file_selection() {
    let t = TempDir::new("vjson");
    let (devs, one, _) = make_media(&t, "v");
    let v = tool("bak-verify", &args!["--json", &devs]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let reps: Vec<serde_json::Value> = String::from_utf8(v.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[0]["Verdict"], "valid");
    assert_eq!(reps[0]["OriginalBytesChecked"], one.len() as u64);
    assert!(reps[0]["Problems"].as_array().unwrap().is_empty());
    let f = tool(
        "bak-verify",
        &args!["--fast", "--file", "2", "--json", &devs],
    );
    assert_eq!(f.code, 0);
    let r: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(r["Position"], 2);
    assert_eq!(r["OriginalBytesChecked"], 0);
    let missing = tool("bak-verify", &args![&devs[0], &devs[1]]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("family 3 is missing"),
        "{}",
        missing.stderr
    );
}

/// Byte ranges of every kind of record in a family file, found through the library.
fn regions(path: &Path) -> Vec<(&'static str, u64, u64)> {
    let f = std::fs::File::open(path).unwrap();
    let mut v = Vec::new();
    let label = read_label(&f, path).unwrap().unwrap();
    v.push((
        "media header",
        0,
        (RECORD_PREFIX_LEN + label.encode_body().len()) as u64,
    ));
    v.push((
        "set map slot",
        4096 + FRAME_HEADER_LEN as u64,
        4096 + FRAME_HEADER_LEN as u64 + 80,
    ));
    let bytes = std::fs::read(path).unwrap();
    let scan = scan_family(&f, path).unwrap();
    for s in &scan.sets {
        let e = &s.eset;
        let sh = e.set_header_offset as usize;
        let sh_len = u32::from_le_bytes(bytes[sh + 4..sh + 8].try_into().unwrap()) as u64 + 8;
        v.push((
            "set header",
            e.set_header_offset,
            e.set_header_offset + sh_len,
        ));
        let lc = e.set_header_offset + sh_len;
        let lc_len = u32::from_le_bytes(bytes[lc as usize + 4..lc as usize + 8].try_into().unwrap())
            as u64
            + 8;
        v.push(("leading config", lc, lc + lc_len));
        v.push(("trailing config", e.trailing_offset, e.mbc_offset));
        v.push(("MBC", e.mbc_offset, e.self_offset));
        v.push(("end-of-set", e.self_offset, e.self_offset + 120));
        let at = bak_core::Location::device("x");
        let (_, body) = parse_frame(&bytes[e.mbc_offset as usize..], RecordType::Mbc, &at).unwrap();
        let m = Mbc::parse_body(body, &at).unwrap();
        for b in &m.entries {
            v.push(("block header", b.offset, b.offset + 88));
            v.push((
                "block payload",
                b.offset + 88,
                b.offset + 88 + b.stored_len as u64,
            ));
        }
    }
    v
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Which set (1 or 2) a byte offset of a family file belongs to; 0 = outside both.
fn set_of(path: &Path, off: u64) -> u32 {
    let f = std::fs::File::open(path).unwrap();
    let scan = scan_family(&f, path).unwrap();
    for s in &scan.sets {
        if off >= s.eset.set_header_offset && off < s.eset.self_offset + 120 {
            return s.header.position;
        }
    }
    0
}

/// Run verify and both reads on damaged media and check every promise.
fn check_case(
    devs: &[PathBuf],
    damaged: &Path,
    hit_set: Option<u32>,
    sets: &[&[u8]; 2],
    what: &str,
) {
    let v = tool("bak-verify", &args![devs]);
    let name = damaged.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(v.code, 1, "{what}: verify exit {} {}", v.code, v.stderr);
    let text = format!("{}{}", String::from_utf8_lossy(&v.stdout), v.stderr);
    assert!(
        text.contains(&name),
        "{what}: verify does not name {name}: {text}"
    );
    assert!(
        text.contains("offset") || text.contains("missing") || text.contains("family"),
        "{what}: no location: {text}"
    );
    for pos in 1..=2u32 {
        let r = tool(
            "bak-read",
            &args!["--quiet", "--file", pos.to_string(), devs],
        );
        let want = sets[pos as usize - 1];
        if r.code == 0 {
            assert!(
                r.stdout == want,
                "{what}: read of set {pos} exit 0 with wrong bytes"
            );
        }
        match hit_set {
            Some(h) if h == pos => {
                assert_ne!(r.code, 0, "{what}: read of damaged set {pos} succeeded")
            }
            Some(_) | None if hit_set != Some(0) => {}
            _ => {}
        }
        if hit_set == Some(0) || hit_set.is_some_and(|h| h != pos) {
            // Damage outside this set: the restore must still be exact.
            assert_eq!(
                r.code, 0,
                "{what}: read of intact set {pos} refused: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn fault_injection_bit_flips_in_every_kind_of_record() {
    let t = TempDir::new("flips");
    let (devs, one, two) = make_media(&t, "f");
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<(usize, u64, u64)>> = Default::default();
    for (i, d) in devs.iter().enumerate() {
        for (k, a, b) in regions(d) {
            by_kind.entry(k).or_default().push((i, a, b));
        }
    }
    let mut rng = Rng(0x5eed_0003);
    let mut cases = 0;
    for (kind, places) in &by_kind {
        for _ in 0..25 {
            let (fam, a, b) = places[rng.below(places.len() as u64) as usize];
            let off = a + rng.below(b - a);
            let bit = rng.below(8) as u8;
            let mut bytes = pristine[fam].clone();
            bytes[off as usize] ^= 1 << bit;
            std::fs::write(&devs[fam], &bytes).unwrap();
            let hit = match *kind {
                "media header" => None, // needed by every set: both reads may refuse
                "set map slot" => Some(0),
                _ => Some(set_of_pristine(&pristine[fam], &devs[fam], off)),
            };
            check_case(
                &devs,
                &devs[fam],
                hit,
                &[&one, &two],
                &format!("{kind} flip at {off} bit {bit} of family {}", fam + 1),
            );
            std::fs::write(&devs[fam], &pristine[fam]).unwrap();
            cases += 1;
        }
    }
    assert!(cases >= 200, "only {cases} cases");
}

fn set_of_pristine(pristine: &[u8], path: &Path, off: u64) -> u32 {
    let cur = std::fs::read(path).unwrap();
    std::fs::write(path, pristine).unwrap();
    let s = set_of(path, off);
    std::fs::write(path, cur).unwrap();
    s
}

#[test]
fn fault_injection_truncation_zeroed_ranges_garbage_and_set_mixups() {
    let t = TempDir::new("trunc");
    let (devs, one, two) = make_media(&t, "t");
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut rng = Rng(0x5eed_0004);
    // Truncation inside the last set.
    for _ in 0..20 {
        let fam = rng.below(3) as usize;
        let f = std::fs::File::open(&devs[fam]).unwrap();
        let start = scan_family(&f, &devs[fam]).unwrap().sets[1]
            .eset
            .set_header_offset;
        let len = pristine[fam].len() as u64;
        let cut = start + rng.below(len - start);
        std::fs::write(&devs[fam], &pristine[fam][..cut as usize]).unwrap();
        check_case(
            &devs,
            &devs[fam],
            Some(2),
            &[&one, &two],
            &format!("truncated family {} at {cut}", fam + 1),
        );
        std::fs::write(&devs[fam], &pristine[fam]).unwrap();
    }
    // A zeroed 4 KiB range somewhere in the sets.
    for _ in 0..10 {
        let fam = rng.below(3) as usize;
        let len = pristine[fam].len() as u64;
        let at = 8192 + rng.below(len - 8192 - 4096);
        let mut b = pristine[fam].clone();
        b[at as usize..at as usize + 4096].fill(0);
        std::fs::write(&devs[fam], &b).unwrap();
        check_case(
            &devs,
            &devs[fam],
            None,
            &[&one, &two],
            &format!("zeroed 4 KiB at {at} of family {}", fam + 1),
        );
        std::fs::write(&devs[fam], &pristine[fam]).unwrap();
    }
    // Garbage appended.
    let mut b = pristine[1].clone();
    b.extend_from_slice(&data(5000, 99));
    std::fs::write(&devs[1], &b).unwrap();
    check_case(&devs, &devs[1], Some(0), &[&one, &two], "garbage appended");
    std::fs::write(&devs[1], &pristine[1]).unwrap();

    // A missing family, a family twice, two media sets mixed.
    let other = make_media(&t, "o").0;
    for (given, needle) in [
        (
            vec![devs[0].clone(), devs[1].clone()],
            "family 3 is missing",
        ),
        (
            vec![devs[0].clone(), devs[1].clone(), devs[1].clone()],
            "family 2 given twice",
        ),
        (
            vec![devs[0].clone(), devs[1].clone(), other[2].clone()],
            "another media set",
        ),
    ] {
        let v = tool("bak-verify", &args![&given]);
        assert_eq!(v.code, 1, "{needle}: {}", v.stderr);
        assert!(v.stderr.contains(needle), "{}", v.stderr);
        let r = tool("bak-read", &args![&given]);
        assert_eq!(r.code, 1, "{needle}: {}", r.stderr);
    }
}

#[test]
fn stop_on_error_reports_only_the_first_problem() {
    let t = TempDir::new("stop");
    let (devs, _, _) = make_media(&t, "s");
    // Damage two blocks of set 1 on a family that holds at least two of them (blocks go to
    // whichever device is free, so which family that is varies).
    let (dev, payloads) = devs
        .iter()
        .find_map(|d| {
            let p: Vec<u64> = regions(d)
                .into_iter()
                .filter(|x| x.0 == "block payload" && set_of(d, x.1) == 1)
                .map(|x| x.1)
                .collect();
            (p.len() >= 2).then(|| (d.clone(), p))
        })
        .expect("some family holds two blocks of set 1");
    let mut b = std::fs::read(&dev).unwrap();
    for p in payloads.iter().take(2) {
        b[(p + 20) as usize] ^= 1;
    }
    std::fs::write(&dev, &b).unwrap();
    let all = tool("bak-verify", &args!["--json", "--file", "1", &devs]);
    let rep: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all.code, 1);
    assert!(rep["Problems"].as_array().unwrap().len() >= 2, "{rep}");
    let one = tool(
        "bak-verify",
        &args!["--json", "--stop-on-error", "--file", "1", &devs],
    );
    let rep: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one.code, 1);
    assert_eq!(rep["Problems"].as_array().unwrap().len(), 1, "{rep}");
    assert_eq!(rep["Verdict"], "damaged");
    // Over every set: the report stops at set 1, whose one problem is the first; set 2
    // (intact, on the same media) is not reported after it.
    let every = tool("bak-verify", &args!["--json", "--stop-on-error", &devs]);
    assert_eq!(every.code, 1);
    let reps: Vec<serde_json::Value> = String::from_utf8(every.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reps.len(), 1, "{reps:?}");
    assert_eq!(reps[0]["Position"], 1);
    assert_eq!(reps[0]["Problems"].as_array().unwrap().len(), 1);
    let without = tool("bak-verify", &args!["--json", &devs]);
    assert_eq!(
        String::from_utf8(without.stdout).unwrap().lines().count(),
        2
    );
}

#[test]
fn header_lists_the_sets_after_a_broken_end_of_set_chain_and_says_so() {
    let t = TempDir::new("chain");
    let (devs, _, two) = make_media(&t, "c");
    let f = std::fs::File::open(&devs[0]).unwrap();
    let eset1 = scan_family(&f, &devs[0]).unwrap().sets[0].eset.self_offset as usize;
    let mut b = std::fs::read(&devs[0]).unwrap();
    b[eset1 + 40] ^= 0x04;
    std::fs::write(&devs[0], &b).unwrap();
    let h = tool("bak-header", &args!["--json", &devs]);
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert!(
        h.stderr.contains("earlier backup sets cannot be listed") && h.stderr.contains("c1.bak"),
        "{}",
        h.stderr
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(h.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let two_row = rows
        .iter()
        .find(|r| r["Position"] == 2)
        .expect("set 2 is listed");
    assert_eq!(two_row["BackupSize"], two.len() as u64);
    let r = tool("bak-read", &args!["--quiet", "--file", "2", &devs]);
    assert!(r.code == 0 && r.stdout == two);
}
