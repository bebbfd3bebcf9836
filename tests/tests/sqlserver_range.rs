//! The whole range of real SQL Server backups in ../shared/fixtures/sqlserver through the three
//! tools: SQL Server 2005's soft filemark tables, a compressed backup padded to 4096-byte
//! blocks (and damage in that padding), the product named for every software version, and
//! what each fixture is to give alone (the table the fixture and pipe tests share).
//!
//! Expected values come from the fixture bytes (offsets given) and the folder's README, never
//! from the tools' own output.

use std::path::{Path, PathBuf};

use crate::mtf_support::{u16_at, u32_at, xor16};
use crate::util::*;

// ---- what each fixture is to give alone ----

/// Fixtures with two backup sets appended (README: "two full backup sets appended").
const TWO_SETS: [&str; 3] = [
    "cmp2014_sharepoint_2sets.bak",
    "multi2008_omi_2sets.bak",
    "sql2005_stdb2sql_2sets.bak",
];
/// Transaction log backups: no data stream, bak-read copies the log (README).
const LOG_BACKUPS: [&str; 2] = ["cmp2019_log.bak", "log2016_restoretimeclean.trn"];
/// Files that alone are not a whole media set, and the family they lack (RAID stream: family
/// count 2). Northwind's family 2 was never published; the stripe pair reads together.
const LONE_FAMILIES: [(&str, &str); 3] = [
    ("northwind_CConocimientos.bak", "family 2"),
    ("stripe2008r2_full_fam1.bak", "family 2"),
    ("stripe2008r2_full_fam2.bak", "family 1"),
];
/// The two families of one striped media set, family 2 first (any order will do).
pub(crate) const STRIPED_PAIR: [&str; 2] =
    ["stripe2008r2_full_fam2.bak", "stripe2008r2_full_fam1.bak"];
/// The files the folder held when this table was written (README: 17).
const AT_LEAST: usize = 17;

/// One fixture and what the tools are to make of it given alone. A file the lists above do
/// not name is a whole one-family media set with one backup set: it must list, verify valid
/// and read. None is refused for what it is: the media password one (mediapwd2008r2_passwd)
/// reads like any other, as its data is not encrypted (the password only gates RESTORE).
pub(crate) struct Fixture {
    pub name: String,
    pub path: PathBuf,
    /// Backup sets on the file.
    pub sets: u32,
    /// The stream bak-read copies: "log" for a log backup, "data" otherwise.
    pub stream: &'static str,
    /// Alone the file is one family of a media set whose other family is missing: verify and
    /// read exit 1, naming the missing family.
    pub lacks: Option<&'static str>,
}

impl Fixture {
    /// The exit code of bak-verify and bak-read on this file alone.
    pub fn code(&self) -> i32 {
        i32::from(self.lacks.is_some())
    }
}

/// Every .bak and .trn in the folder, in name order.
pub(crate) fn fixtures(dir: &Path) -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bak" || x == "trn"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= AT_LEAST,
        "{} holds {} backups, expected at least {AT_LEAST}",
        dir.display(),
        paths.len()
    );
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let n = name.as_str();
            Fixture {
                sets: if TWO_SETS.contains(&n) { 2 } else { 1 },
                stream: if LOG_BACKUPS.contains(&n) {
                    "log"
                } else {
                    "data"
                },
                lacks: LONE_FAMILIES
                    .iter()
                    .find(|(f, _)| *f == n)
                    .map(|(_, lacks)| *lacks),
                name,
                path,
            }
        })
        .collect()
}

#[test]
fn every_fixture_lists_verifies_and_reads_every_set_from_its_file() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for f in fixtures(&dir) {
        let h = run("bak-header", &os(&args!["--json", &f.path]), b"");
        assert_eq!(h.code, 0, "{}: {}", f.name, h.stderr);
        let rows = json_lines(&h.stdout);
        let positions: Vec<u64> = rows.iter().filter_map(|r| r["Position"].as_u64()).collect();
        assert_eq!(
            positions,
            (1..=u64::from(f.sets)).collect::<Vec<_>>(),
            "{}",
            f.name
        );
        let v = run("bak-verify", &os(&args![&f.path]), b"");
        let said = String::from_utf8_lossy(&v.stdout);
        assert_eq!(v.code, f.code(), "{}: {said}{}", f.name, v.stderr);
        match f.lacks {
            None => {
                for p in 1..=f.sets {
                    assert!(
                        said.contains(&format!("The backup set on file {p} is valid.")),
                        "{}: {said}",
                        f.name
                    );
                }
            }
            Some(fam) => assert!(
                v.stderr.contains(&format!("{fam} missing")),
                "{}: {}",
                f.name,
                v.stderr
            ),
        }
        for p in 1..=f.sets {
            let p = p.to_string();
            let r = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--stream",
                    f.stream,
                    "--file",
                    p.as_str(),
                    &f.path
                ]),
                b"",
            );
            assert_eq!(r.code, f.code(), "{} set {p}: {}", f.name, r.stderr);
            if f.lacks.is_none() {
                assert!(!r.stdout.is_empty(), "{} set {p}", f.name);
                if f.stream == "data" {
                    assert_eq!(r.stdout.len() % 8192, 0, "{} set {p}: whole pages", f.name);
                }
            }
        }
    }
    // The lone stripes read as one set together.
    let pair: Vec<PathBuf> = STRIPED_PAIR.iter().map(|n| dir.join(n)).collect();
    assert_eq!(run("bak-verify", &os(&args![&pair]), b"").code, 0);
    let r = run("bak-read", &os(&args!["--quiet", &pair]), b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.len(),
        2 * 786432,
        "each family's MQDA is 0xc0002 bytes"
    );
}

// ---- SQL Server 2005 ----

/// Lengths of the non-empty MQDA streams of a plain file, in file order, from their 22-byte
/// stream headers (length u64 at +8; the 11 words XOR to zero).
fn mqda_lengths(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(4).position(|w| w == b"MQDA") {
        let s = at + i;
        if let Some(h) = bytes.get(s..s + 22) {
            let len = u64::from_le_bytes(h[8..16].try_into().unwrap());
            if xor16(h) == 0 && len > 0 {
                out.push(len);
            }
        }
        at = s + 4;
    }
    out
}

#[test]
fn sql_server_2005_backups_list_verify_and_read_from_the_file_and_a_pipe() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    // (file, database, build from SCIN +0x18 of each set, (SSET +62) positions)
    let cases = [
        // SCIN +0x18: fc 0b 00 09 = 9.0.3068; MQCI strings "Northwind", "HP05\INST1".
        (
            "sql2005_northwind_blackmonoceros.bak",
            "Northwind",
            "9.0.3068",
        ),
        // SCIN +0x18: 05 0c 00 09 = 9.0.3077 in both sets (MSCI at 0xe00 and 0x1b9200).
        ("sql2005_stdb2sql_2sets.bak", "StDb2SQL", "9.0.3077"),
    ];
    for (name, db, version) in cases {
        let f = dir.join(name);
        let bytes = std::fs::read(&f).unwrap();
        let lens = mqda_lengths(&bytes);
        for (tool, extra) in [
            ("bak-header", &["--json"][..]),
            ("bak-header", &["--filelist", "--json"][..]),
            ("bak-header", &["--labelonly", "--json"][..]),
            ("bak-verify", &[][..]),
        ] {
            let a: Vec<std::ffi::OsString> = extra.iter().map(|s| s.into()).collect();
            let (mut on_file, mut on_pipe) = (a.clone(), a);
            on_file.push(f.clone().into());
            on_pipe.push("-".into());
            let x = run(tool, &os(&on_file), b"");
            let y = run(tool, &os(&on_pipe), &bytes);
            assert_eq!(
                (x.code, y.code),
                (0, 0),
                "{tool} {extra:?} {name}: {}",
                x.stderr
            );
            assert_eq!(
                String::from_utf8_lossy(&x.stdout).replace(&f.display().to_string(), "stdin"),
                String::from_utf8_lossy(&y.stdout),
                "{tool} {extra:?} {name}"
            );
            assert!(!x.stderr.contains("damaged"), "{name}: {}", x.stderr);
        }
        let rows = json_lines(&run("bak-header", &os(&args!["--json", &f]), b"").stdout);
        assert_eq!(rows.len(), lens.len(), "{name}: one MQDA stream per set");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r["Position"], i as u64 + 1, "{name}");
            assert_eq!(r["DatabaseName"], db, "{name}");
            assert_eq!(r["SoftwareVersion"], version, "{name}");
            assert_eq!(r["SoftwareVersionMajor"], 9, "{name}: SSET byte 93");
            assert_eq!(r["SoftwareProduct"], "SQL Server 2005", "{name}");
            assert_eq!(r["IsComplete"], true, "{name}");
            assert_eq!(
                r["BackupTypeDescription"], "Database",
                "{name}: SCIN +0x57 'D'"
            );
        }
        let v = run("bak-verify", &os(&args![&f]), b"");
        let said = String::from_utf8_lossy(&v.stdout);
        for p in 1..=lens.len() {
            assert!(
                said.contains(&format!("The backup set on file {p} is valid.")),
                "{name}: {said}"
            );
        }
        let files =
            json_lines(&run("bak-header", &os(&args!["--filelist", "--json", &f]), b"").stdout);
        let types: Vec<&str> = files.iter().map(|r| r["Type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["D", "L"],
            "{name}: SFIN records, file group 1 and 0"
        );
        let mut sets = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let p = (i + 1).to_string();
            let a = args!["--quiet", "--file", p.as_str(), &f];
            let r = run("bak-read", &os(&a), b"");
            assert_eq!(r.code, 0, "{name} set {p}: {}", r.stderr);
            // The MQDA stream less its 2 pad bytes: whole 8 KiB pages, numbered from 0 (page
            // header u32 at 32), an unallocated page being zeros.
            assert_eq!(r.stdout.len() as u64, len - 2, "{name} set {p}");
            for (k, page) in r.stdout.chunks(8192).take(16).enumerate() {
                let id = u32_at(page, 32);
                assert!(
                    id == k as u32 || page[..96].iter().all(|&b| b == 0),
                    "{name} set {p}: page {k} says {id}"
                );
            }
            let piped = run(
                "bak-read",
                &os(&args!["--quiet", "--file", p.as_str(), "-"]),
                &bytes,
            );
            assert_eq!(
                piped.code, 0,
                "{name} set {p} from a pipe: {}",
                piped.stderr
            );
            assert!(
                piped.stdout == r.stdout,
                "{name} set {p}: the same bytes from a pipe"
            );
            sets.push(r.stdout);
        }
        if sets.len() == 2 {
            assert!(sets[0] != sets[1], "{name}: two different backups");
        }
    }
}

/// Offsets of the 512-byte-aligned SFMB blocks whose 52-byte header XORs to zero.
fn sfmbs(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len().saturating_sub(52))
        .step_by(512)
        .filter(|&o| &bytes[o..o + 4] == b"SFMB" && xor16(&bytes[o..o + 52]) == 0)
        .collect()
}

#[test]
fn a_sql_server_2005_soft_filemark_table_is_read_and_checked() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("sql2005_northwind_blackmonoceros.bak");
    let bytes = std::fs::read(&f).unwrap();
    // 2005 writes MTF 1.00a's table: attributes 0 (2008 on: 0x80000000), capacity 56 at 52
    // ((512 - 60) / 8), entries used at 56, the u64 entries from 60, newest first.
    let marks = sfmbs(&bytes);
    assert_eq!(marks, [0x400, 0x323a00, 0x324800]);
    let last = marks[2];
    assert_eq!(u32_at(&bytes, last + 4), 0);
    assert_eq!(
        (u32_at(&bytes, last + 52), u32_at(&bytes, last + 56)),
        (56, 2)
    );
    assert_eq!(u32_at(&bytes, last + 60) as usize, marks[1]);
    assert_eq!(u32_at(&bytes, last + 68) as usize, marks[0]);
    // An entry that no longer names the earlier filemark (outside the checksummed header, so
    // only the table check can see it) is damage.
    let mut bad = bytes.clone();
    bad[last + 60 + 1] ^= 0x02;
    let t = temp_dir("sfmb2005");
    let p = t.path().join("sfmb.bak");
    std::fs::write(&p, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    let said = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{said}");
    assert!(
        said.contains(&format!(
            "offset {last}: soft filemark table does not list the earlier filemarks"
        )),
        "{said}"
    );
    // A capacity larger than the block holds is damage, not a longer table.
    let mut bad = bytes.clone();
    bad[last + 52] = 57;
    std::fs::write(&p, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    let said = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{said}");
    assert!(
        said.contains("soft filemark table damaged: table capacity runs past the block"),
        "{said}"
    );
}

// ---- compressed padding ----

/// A record that ends a run of chunks and the padding after it, as the record states it.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// File offset of the record: 0x24 (end of a run) or 0x2c (chunk index).
    at: usize,
    index: bool,
    /// First padding byte (after the 24-byte record, or after the index entries).
    pad: usize,
    /// Where the record says the padding ends (0x24: u16 at 2 pad bytes after the record;
    /// 0x2c: u32 at 8 of the 16-byte index header, counted from that header).
    end: usize,
}

/// The container's pieces, walked from 0x1e0: chunks (marker 0x21, u16 payload length at 2,
/// 28-byte header), raw SFMB blocks (u16 at 8 = their size), and the records ending runs.
fn container(m: &[u8]) -> (Vec<(usize, usize)>, Vec<Run>) {
    let (mut chunks, mut runs) = (Vec::new(), Vec::new());
    let mut at = 0x1e0;
    while at + 28 <= m.len() {
        if &m[at..at + 4] == b"SFMB" {
            at += usize::from(u16_at(m, at + 8));
        } else if m[at] == 0x21 {
            let clen = usize::from(u16_at(m, at + 2));
            chunks.push((at, clen));
            at += 28 + clen;
        } else if m[at] == 0x24 {
            let end = at + 24 + usize::from(u16_at(m, at + 2));
            runs.push(Run {
                at,
                index: false,
                pad: at + 24,
                end,
            });
            at = end;
        } else if m[at] == 0x2c {
            let h = at + 24;
            let count = u32_at(m, h + 4) as usize;
            let end = h + u32_at(m, h + 8) as usize;
            runs.push(Run {
                at,
                index: true,
                pad: h + 16 + 16 * count,
                end,
            });
            at = end;
        } else {
            panic!("unknown container bytes at {at}");
        }
    }
    assert_eq!(at, m.len(), "the pieces cover the file");
    (chunks, runs)
}

/// bak-verify of `bytes` written to a file: the exit code and what it printed.
fn verify_bytes(t: &tempfile::TempDir, bytes: &[u8]) -> (i32, String) {
    let p = t.path().join("padded.bak");
    std::fs::write(&p, bytes).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    (
        v.code,
        format!("{}{}", String::from_utf8_lossy(&v.stdout), v.stderr),
    )
}

#[test]
fn the_padded_compressed_backup_verifies_valid_and_real_damage_in_its_last_chunk_and_in_its_padding_is_found(
) {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_datatable_peterezz.bak");
    let m = std::fs::read(&f).unwrap();
    let (chunks, runs) = container(&m);
    // Its soft filemark blocks are 4096 bytes (the raw SFMB at 0x1000: u16 at 8 = 0x1000), and
    // every run's padding ends on a 4096-byte boundary: the end record at 0x35e pads 3210
    // bytes to 0x1000, the chunk index at 0x92361 to 0x93000 (zeros from 0x92400 on, which
    // a 512-byte rule called damage), the last end record to 0x95000.
    assert_eq!(u16_at(&m, 0x1008), 4096);
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r.end % 4096 == 0), "{runs:?}");
    let (idx, last_run) = (runs[1], runs[2]);
    assert!(idx.index && idx.end - idx.pad > 512, "{idx:?}");
    // The index pads with zeros, then repeats its 16-byte header in the last 16 bytes.
    assert_eq!(m[idx.end - 16..idx.end], m[idx.at + 24..idx.at + 40]);
    assert!(m[idx.pad..idx.end - 16].iter().all(|&b| b == 0));

    let pristine = run("bak-verify", &os(&args![&f]), b"");
    assert_eq!(
        (
            pristine.code,
            String::from_utf8_lossy(&pristine.stdout).as_ref()
        ),
        (0, "The backup set on file 1 is valid.\n"),
        "{}",
        pristine.stderr
    );
    let t = temp_dir("cmppad");

    // The last chunk: its payload no longer matches its check value.
    let (last, clen) = *chunks.last().unwrap();
    assert!(last < last_run.at);
    let mut bad = m.clone();
    bad[last + 28 + clen / 2] ^= 0x10;
    let (code, said) = verify_bytes(&t, &bad);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!(
            "offset {last}: compressed chunk's payload does not match its check value"
        )),
        "{said}"
    );

    // A non-zero byte in the index's padding, and in the last run's.
    for (run, what) in [
        (idx, "the chunk index"),
        (last_run, "the record that ends a run of chunks"),
    ] {
        let byte = (run.pad + run.end) / 2;
        let mut bad = m.clone();
        bad[byte] = 0x5a;
        let (code, said) = verify_bytes(&t, &bad);
        assert_eq!(code, 1, "{said}");
        assert!(
            said.contains(&format!(
                "offset {}: non-zero byte 0x5a at {byte} in the padding after {what}",
                run.at
            )),
            "{said}"
        );
        let p = t.path().join("padded.bak");
        let r = run_mtf(&p);
        assert_eq!(r, 1, "--mtf refuses a damaged container");
    }

    // The copy of the index header at the end of its padding.
    let mut bad = m.clone();
    bad[idx.end - 4] ^= 0x01;
    let (code, said) = verify_bytes(&t, &bad);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(
            "the padding after the chunk index does not end with a copy of the index header"
        ),
        "{said}"
    );

    // More zeros than the rule allows: one more 4096-byte block of them after the last run,
    // its record counting them (nothing after it lists offsets, so only the padding is wrong).
    let mut bad = m.clone();
    let more = u16_at(&m, last_run.at + 2) + 4096;
    bad[last_run.at + 2..last_run.at + 4].copy_from_slice(&more.to_le_bytes());
    bad.splice(last_run.end..last_run.end, vec![0u8; 4096]);
    let (code, said) = verify_bytes(&t, &bad);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!(
            "offset {}: the record that ends a run of chunks says its padding ends at {}, but the next 4096-byte boundary is {}",
            last_run.at,
            last_run.end + 4096,
            last_run.end
        )),
        "{said}"
    );
    // Zeros after the last block are no padding the format has.
    let mut bad = m.clone();
    bad.extend_from_slice(&[0u8; 4096]);
    let (code, said) = verify_bytes(&t, &bad);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!(
            "offset {}: unrecognised bytes in the compressed container",
            m.len()
        )),
        "{said}"
    );
    // The file cut inside the padding is incomplete.
    let (code, said) = verify_bytes(&t, &m[..last_run.pad + 100]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("media end inside the padding after the record that ends a run of chunks")
            && said.contains("incomplete"),
        "{said}"
    );
}

/// `bak-read --mtf` of a file: its exit code.
fn run_mtf(p: &Path) -> i32 {
    run("bak-read", &os(&args!["--quiet", "--mtf", p]), b"").code
}

#[test]
fn compressed_padding_follows_the_soft_filemark_size_of_each_backup() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    // 512-byte soft filemarks: every padding ends on a 512-byte boundary, most not on a
    // 4096-byte one, and it is held to 512 just as strictly.
    for name in [
        "cmp2019_full_checksum.bak",
        "cmp2019_log.bak",
        "cmp2014_sharepoint_2sets.bak",
    ] {
        let m = std::fs::read(dir.join(name)).unwrap();
        let (_, runs) = container(&m);
        assert_eq!(u16_at(&m, 0x408), 512, "{name}: the raw SFMB at 0x400");
        assert!(runs.iter().all(|r| r.end % 512 == 0), "{name}: {runs:?}");
        assert!(runs.iter().any(|r| r.end % 4096 != 0), "{name}: {runs:?}");
        let t = temp_dir("cmppad512");
        let first = runs[0];
        assert!(first.end > first.pad, "{name}: {first:?}");
        let mut bad = m.clone();
        bad[first.end - 1] = 1;
        let (code, said) = verify_bytes(&t, &bad);
        assert_eq!(code, 1, "{name}: {said}");
        assert!(
            said.contains(&format!(
                "offset {}: non-zero byte 0x01 at {} in the padding",
                first.at,
                first.end - 1
            )),
            "{name}: {said}"
        );
    }
}

// ---- products ----

#[test]
fn every_fixture_names_the_product_of_its_software_version() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    // The README's "written by" column (SSET bytes 93 and 94).
    let written_by = [
        ("cmp2014_sharepoint_2sets.bak", "12.0", "SQL Server 2014"),
        ("cmp2019_datatable_peterezz.bak", "15.0", "SQL Server 2019"),
        ("cmp2019_full_checksum.bak", "15.0", "SQL Server 2019"),
        ("cmp2019_log.bak", "15.0", "SQL Server 2019"),
        ("diff2016_restoretimeclean.bak", "13.0", "SQL Server 2016"),
        ("linux2019_meetupdb.bak", "15.0", "SQL Server 2019"),
        ("log2016_restoretimeclean.trn", "13.0", "SQL Server 2016"),
        ("mediapwd2008r2_passwd.bak", "10.50", "SQL Server 2008 R2"),
        ("multi2008_omi_2sets.bak", "10.0", "SQL Server 2008"),
        ("northwind_CConocimientos.bak", "12.0", "SQL Server 2014"),
        ("pubs_UGR95.bak", "11.0", "SQL Server 2012"),
        (
            "sql2005_northwind_blackmonoceros.bak",
            "9.0",
            "SQL Server 2005",
        ),
        ("sql2005_stdb2sql_2sets.bak", "9.0", "SQL Server 2005"),
        ("stripe2008r2_full_fam1.bak", "10.50", "SQL Server 2008 R2"),
        ("stripe2008r2_full_fam2.bak", "10.50", "SQL Server 2008 R2"),
        ("testdb_Docmilo.bak", "15.0", "SQL Server 2019"),
        ("testdb_dancingfrog.bak", "13.0", "SQL Server 2016"),
    ];
    for f in fixtures(&dir) {
        let Some((_, version, product)) = written_by.iter().find(|(n, _, _)| *n == f.name) else {
            panic!(
                "{}: not in this test's table of the README's versions",
                f.name
            );
        };
        let rows = json_lines(&run("bak-header", &os(&args!["--json", &f.path]), b"").stdout);
        assert_eq!(rows.len() as u32, f.sets, "{}", f.name);
        for r in rows {
            let shown = r["SoftwareVersion"].as_str().unwrap();
            assert!(
                shown.starts_with(&format!("{version}.")),
                "{}: {shown}",
                f.name
            );
            assert_eq!(r["SoftwareProduct"], *product, "{}", f.name);
        }
    }
}
