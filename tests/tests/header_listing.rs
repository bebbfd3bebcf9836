//! bak-header on bak media: HEADERONLY as JSON, table and CSV, LABELONLY, and what it lists when
//! a set is cut short or an end-of-set chain is broken.

use bak_core::internals::scan_file as scan_family;

use crate::util::*;

fn tool(t: &str, a: &[std::ffi::OsString]) -> Output {
    run(t, &os(a), b"")
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
fn headeronly_lists_every_set_as_json_table_and_csv() {
    let t = temp_dir("golden");
    let (devs, one, two) = two_sets_on_three_families(&t, "g");
    let json = tool("bak-header", &args!["--json", &devs]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let js = String::from_utf8(json.stdout).unwrap();
    let rows = json_lines(js.as_bytes());
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
fn labelonly_describes_the_media_of_one_family() {
    let t = temp_dir("label");
    let (devs, _, _) = two_sets_on_three_families(&t, "l");
    let j = tool("bak-header", &args!["--labelonly", "--json", &devs[1]]);
    assert_eq!(j.code, 0, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["MediaName"], "golden");
    assert_eq!(v["FamilyCount"], 3);
    assert_eq!(v["FamilySequenceNumber"], 2);
    assert_eq!(v["BackupSetCount"], 2);
    assert_eq!(v["MediaFormat"], "bak");
    assert_eq!(v["FormatVersion"], "1.2");
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
    let t = temp_dir("incomplete");
    let (devs, _, _) = two_sets_on_three_families(&t, "i");
    // Cut family 3 inside set 2 (how many blocks a family holds varies: blocks go to whichever
    // device is free, so a fixed cut could reach into set 1).
    let f = std::fs::File::open(&devs[2]).unwrap();
    let start = scan_family(&f, &devs[2]).unwrap().sets[1]
        .eset
        .set_header_offset as usize;
    let b = std::fs::read(&devs[2]).unwrap();
    std::fs::write(&devs[2], &b[..(start + b.len()) / 2]).unwrap();
    let j = tool("bak-header", &args!["--json", &devs]);
    let rows = json_lines(&j.stdout);
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
fn header_lists_the_sets_after_a_broken_end_of_set_chain_and_says_so() {
    let t = temp_dir("chain");
    let (devs, _, two) = two_sets_on_three_families(&t, "c");
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
    let rows = json_lines(&h.stdout);
    let two_row = rows
        .iter()
        .find(|r| r["Position"] == 2)
        .expect("set 2 is listed");
    assert_eq!(two_row["BackupSize"], two.len() as u64);
    let r = tool("bak-read", &args!["--quiet", "--file", "2", &devs]);
    assert!(r.code == 0 && r.stdout == two);
}
