//! Tables, row counts and columns read from the pages of real SQL Server full backups
//! (`bak-header --tables`), against Microsoft's scripts that made pubs and Northwind
//! (../shared/fixtures/sqlserver/scripts) and the fixtures' README.
//!
//! Expected values come from the scripts, the README and the backups' own catalogs, never from
//! the tool's earlier output.

use std::collections::BTreeMap;
use std::path::Path;

use crate::sqlserver_range::fixtures;
use crate::util::*;

/// The tables of `bak-header --tables --json` for one set of `files`, by name.
pub(crate) fn tables(files: &[&Path], set: u32) -> BTreeMap<String, serde_json::Value> {
    let mut a = args!["--tables", "--json", "--file", set.to_string()];
    for f in files {
        push_arg(&mut a, *f);
    }
    let h = run("bak-header", &os(&a), b"");
    assert_eq!(h.code, 0, "{files:?}: {}", h.stderr);
    json_lines(&h.stdout)
        .into_iter()
        .map(|t| {
            let name = format!(
                "{}.{}",
                t["Schema"].as_str().unwrap(),
                t["Table"].as_str().unwrap()
            );
            (name, t)
        })
        .collect()
}

/// A table of a script: its columns (name, type as written, nullability when written).
#[derive(Debug, Default)]
pub(crate) struct ScriptTable {
    pub columns: Vec<(String, String, Option<bool>)>,
    pub inserts: usize,
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '[' || c == ']')
        .to_string()
}

/// Split at commas that are not inside parentheses.
fn top_level(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0i32, String::new(), Vec::new());
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The tables a creation script makes, and how many rows it inserts into each.
pub(crate) fn script_tables(script: &str) -> BTreeMap<String, ScriptTable> {
    let lower = script.to_ascii_lowercase();
    let mut out: BTreeMap<String, ScriptTable> = BTreeMap::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("create table") {
        let start = at + i + "create table".len();
        // Only a statement: at the start of its line (the script also says it in messages).
        let line_start = lower[..at + i].rfind('\n').map_or(0, |k| k + 1);
        if !lower[line_start..at + i].trim().is_empty() {
            at = start;
            continue;
        }
        let open = start + lower[start..].find('(').unwrap();
        let name = unquote(
            script[start..open]
                .trim()
                .rsplit('.')
                .next()
                .unwrap()
                .trim(),
        );
        // The body: up to the matching parenthesis.
        let (mut depth, mut end) = (0, open);
        for (k, c) in script[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let mut t = ScriptTable::default();
        for item in top_level(&script[open + 1..end]) {
            let words: Vec<&str> = item.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            let kw = first.to_ascii_lowercase();
            if ["constraint", "primary", "foreign", "check", "unique"].contains(&kw.as_str()) {
                continue;
            }
            let rest = item.trim_start()[first.len()..].trim_start();
            // The type: a word, maybe quoted, maybe followed by (n) or (p, s).
            let ty_end = rest
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(rest.len());
            let mut ty = unquote(&rest[..ty_end]).to_ascii_lowercase();
            // T-SQL's synonyms, as the catalog names them.
            if ty == "dec" {
                ty = "decimal".into();
            }
            let after = rest[ty_end..].trim_start();
            if after.starts_with('(') {
                let close = after.find(')').unwrap();
                ty.push_str(&after[..=close].replace([' ', '\n', '\r', '\t'], ""));
            }
            let up = item.to_ascii_uppercase();
            let nullable = if up.contains("NOT NULL") {
                Some(false)
            } else if up.split_whitespace().any(|w| w == "NULL") {
                Some(true)
            } else {
                None
            };
            t.columns.push((unquote(first), ty, nullable));
        }
        out.insert(name, t);
        at = end;
    }
    // INSERT [INTO] "Name" ... / insert name values ...
    for line in script.lines() {
        let l = line.trim_start().to_ascii_lowercase();
        let Some(rest) = l.strip_prefix("insert ") else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("into ").unwrap_or(rest).trim_start();
        let name_len = match rest.strip_prefix('"') {
            Some(r) => r.find('"').map(|k| k + 2).unwrap_or(rest.len()),
            None => rest
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(rest.len()),
        };
        let name = unquote(&rest[..name_len]);
        if let Some((_, t)) = out.iter_mut().find(|(k, _)| k.to_ascii_lowercase() == name) {
            t.inserts += 1;
        }
    }
    out
}

/// Every column of the script is listed, in order, with its type (or alias type) and, where
/// the script says, its nullability.
fn columns_match(table: &str, got: &serde_json::Value, want: &ScriptTable) {
    let cols = got["Columns"].as_array().unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c["Name"].as_str().unwrap()).collect();
    let want_names: Vec<&str> = want.columns.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, want_names, "{table}");
    for (c, (name, ty, nullable)) in cols.iter().zip(&want.columns) {
        let listed = c["UserType"]
            .as_str()
            .unwrap_or_else(|| c["Type"].as_str().unwrap())
            .to_ascii_lowercase();
        assert_eq!(&listed, ty, "{table}.{name}: {c}");
        if let Some(n) = nullable {
            assert_eq!(c["Nullable"].as_bool(), Some(*n), "{table}.{name}");
        }
    }
}

#[test]
fn northwind_2005_holds_the_scripts_tables_rows_and_columns() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instnwnd.sql")).unwrap();
    let want = script_tables(&script);
    assert_eq!(
        want.len(),
        13,
        "the script makes 13 tables: {:?}",
        want.keys()
    );
    let got = tables(&[&dir.join("sql2005_northwind_blackmonoceros.bak")], 1);
    for (name, t) in &want {
        let g = got
            .get(&format!("dbo.{name}"))
            .unwrap_or_else(|| panic!("dbo.{name} not listed: {:?}", got.keys()));
        assert_eq!(g["Rows"].as_u64(), Some(t.inserts as u64), "{name}");
        assert_eq!(g["RecordsOnPages"], g["Rows"], "{name}");
        columns_match(name, g, t);
    }
    // The script's tables and the diagram table SSMS adds.
    let mut names: Vec<String> = want.keys().map(|k| format!("dbo.{k}")).collect();
    names.push("dbo.sysdiagrams".into());
    names.sort();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), names);
    // The README's counts, too.
    assert_eq!(got["dbo.Order Details"]["Rows"], 2155);
    assert_eq!(got["dbo.CustomerDemographics"]["Rows"], 0);
}

#[test]
fn pubs_holds_the_scripts_tables_as_the_readme_says_it_was_edited() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instpubs.sql")).unwrap();
    let want = script_tables(&script);
    assert_eq!(want.len(), 11, "{:?}", want.keys());
    let got = tables(&[&dir.join("pubs_UGR95.bak")], 1);
    // README: 3 more authors, 2 more sales, 1 more title and titleauthor; 4 tables added.
    let more: BTreeMap<&str, u64> = [
        ("authors", 3),
        ("sales", 2),
        ("titles", 1),
        ("titleauthor", 1),
    ]
    .into();
    for (name, t) in &want {
        let g = &got[&format!("dbo.{name}")];
        let extra = more.get(name.as_str()).copied().unwrap_or(0);
        assert_eq!(g["Rows"].as_u64(), Some(t.inserts as u64 + extra), "{name}");
        assert_eq!(g["RecordsOnPages"], g["Rows"], "{name}");
        columns_match(name, g, t);
    }
    assert_eq!(got.len(), want.len() + 4, "{:?}", got.keys());
}

#[test]
fn every_complete_full_backup_counts_the_rows_its_pages_hold() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut tables_seen = 0;
    for f in fixtures(&dir) {
        if f.stream == "log" || f.lacks.is_some() || f.name.starts_with("diff") {
            continue;
        }
        for set in 1..=f.sets {
            let got = tables(&[&f.path], set);
            assert!(!got.is_empty(), "{} set {set}: no table", f.name);
            for (name, t) in &got {
                assert_eq!(
                    t["RecordsOnPages"], t["Rows"],
                    "{} set {set}: {name}",
                    f.name
                );
                assert_eq!(t["Partial"], false);
                assert!(!t["Columns"].as_array().unwrap().is_empty(), "{name}");
                assert!(
                    t["DataPages"].as_u64().unwrap() > 0 || t["Rows"] == 0,
                    "{name}"
                );
            }
            tables_seen += got.len();
        }
    }
    // The striped pair, given whole.
    let pair: Vec<std::path::PathBuf> = crate::sqlserver_range::STRIPED_PAIR
        .iter()
        .map(|n| dir.join(n))
        .collect();
    let got = tables(&[&pair[0], &pair[1]], 1);
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), ["dbo.steps"]);
    assert!(tables_seen >= 100, "{tables_seen} tables");
}

#[test]
fn a_differential_or_log_backup_has_no_whole_catalog() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for (name, what) in [
        ("diff2016_restoretimeclean.bak", "differential"),
        ("log2016_restoretimeclean.trn", "log backup"),
        ("cmp2019_log.bak", "log backup"),
    ] {
        let h = run("bak-header", &os(&args!["--tables", &dir.join(name)]), b"");
        assert_eq!(h.code, 2, "{name}: {}", h.stderr);
        assert!(
            h.stderr.contains(what) && h.stderr.contains(name),
            "{name}: {}",
            h.stderr
        );
        assert!(h.stdout.is_empty());
    }
    let h = run(
        "bak-header",
        &os(&args![
            "--tables",
            &dir.join("diff2016_restoretimeclean.bak")
        ]),
        b"",
    );
    assert!(h.stderr.contains("no whole catalog"), "{}", h.stderr);
}

#[test]
fn a_lone_stripe_is_partial() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for name in [
        "northwind_CConocimientos.bak",
        "stripe2008r2_full_fam1.bak",
        "stripe2008r2_full_fam2.bak",
    ] {
        let h = run("bak-header", &os(&args!["--tables", &dir.join(name)]), b"");
        assert_eq!(h.code, 1, "{name}: {}", h.stderr);
        assert!(h.stderr.contains("partial"), "{name}: {}", h.stderr);
        assert!(h.stderr.contains("of 2 not given"), "{name}: {}", h.stderr);
    }
}

/// A lone stripe lists the tables whose catalog rows are on its pages, labelled partial, and
/// reads the rows its pages hold (exit 1, saying what is partial): never a table or row that
/// the whole database lacks.
#[test]
fn a_lone_stripe_lists_and_reads_what_its_pages_hold() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instnwnd.sql")).unwrap();
    let mut listed = 0;
    for (name, whole) in [
        ("northwind_CConocimientos.bak", None),
        (
            "stripe2008r2_full_fam1.bak",
            Some(crate::sqlserver_range::STRIPED_PAIR),
        ),
        (
            "stripe2008r2_full_fam2.bak",
            Some(crate::sqlserver_range::STRIPED_PAIR),
        ),
    ] {
        let f = dir.join(name);
        let h = run("bak-header", &os(&args!["--tables", "--json", &f]), b"");
        assert_eq!(h.code, 1, "{name}: {}", h.stderr);
        assert!(h.stderr.contains("partial"), "{name}: {}", h.stderr);
        // The tables the whole database has, and their rows.
        let truth: BTreeMap<String, serde_json::Value> = match whole {
            Some(pair) => {
                let p: Vec<std::path::PathBuf> = pair.iter().map(|n| dir.join(n)).collect();
                tables(&[&p[0], &p[1]], 1)
            }
            None => BTreeMap::new(),
        };
        for t in json_lines(&h.stdout) {
            let full = format!(
                "{}.{}",
                t["Schema"].as_str().unwrap(),
                t["Table"].as_str().unwrap()
            );
            assert_eq!(t["Partial"], true, "{name} {full}");
            match whole {
                Some(_) => {
                    let w = truth.get(&full).unwrap_or_else(|| panic!("{name}: {full}"));
                    assert!(t["RecordsOnPages"].as_u64() <= w["RecordsOnPages"].as_u64());
                }
                None => {
                    let bare = t["Table"].as_str().unwrap();
                    assert!(
                        script.contains(&format!("CREATE TABLE \"{bare}\""))
                            || script.contains(&format!("CREATE TABLE [{bare}]"))
                            || bare == "sysdiagrams",
                        "{name}: {full} is no table of Northwind"
                    );
                }
            }
            listed += 1;
            if !t["Unsupported"].is_null() {
                continue;
            }
            let r = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--table",
                    full.as_str(),
                    "--format",
                    "jsonl",
                    &f
                ]),
                b"",
            );
            assert_eq!(r.code, 1, "{name} {full}: {}", r.stderr);
            assert!(r.stderr.contains("partial"), "{name} {full}: {}", r.stderr);
            assert_eq!(
                Some(json_lines(&r.stdout).len() as u64),
                t["RecordsOnPages"].as_u64(),
                "{name} {full}"
            );
        }
    }
    assert!(listed > 0, "no lone stripe listed a table");
}

#[test]
fn tables_print_as_a_table_and_as_csv() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let t = run("bak-header", &os(&args!["--tables", &f]), b"");
    assert_eq!(t.code, 0, "{}", t.stderr);
    let text = String::from_utf8(t.stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "Schema",
            "Table",
            "Rows",
            "DataPages",
            "Columns",
            "Unsupported"
        ]
    );
    let authors = lines
        .find(|l| l.split_whitespace().nth(1) == Some("authors"))
        .unwrap();
    assert!(
        authors.contains(" 26 ") && authors.contains("au_lname varchar(40) NOT NULL"),
        "{authors}"
    );
    let c = run("bak-header", &os(&args!["--tables", "--csv", &f]), b"");
    assert_eq!(c.code, 0);
    let csv = String::from_utf8(c.stdout).unwrap();
    assert!(
        csv.starts_with(
            "Position,Schema,Table,Rows,DataPages,RecordsOnPages,Columns,Unsupported,Partial\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 16);
    // bak media hold no database.
    let h = run(
        "bak-header",
        &os(&args!["--tables", "--file", "1", "/nonexistent.bak"]),
        b"",
    );
    assert_eq!(h.code, 2);
}

/// pubs_UGR95.bak with the catalog's row count of dbo.sales (23) changed to 24: the record of
/// its rowset in sysrowsets (object 5; idminor at 17, rcrows at 31), its page checksum sealed
/// again, so only the count disagrees with the pages.
fn pubs_with_a_wrong_count(dir: &Path) -> tempfile::TempPath {
    use crate::mtf_support::{page_checksum, u16_at, u32_at};
    let mut b = std::fs::read(dir.join("pubs_UGR95.bak")).unwrap();
    let mut changed = 0;
    let mut at = 0;
    while at + 8192 <= b.len() {
        let p = &b[at..at + 8192];
        let is_rowsets = p[0] == 1 && p[1] == 1 && u32_at(p, 24) == 5 && u16_at(p, 6) == 0;
        if !is_rowsets || u32_at(p, 60) != page_checksum(p) {
            at += 512;
            continue;
        }
        let slots = usize::from(u16_at(p, 22));
        for s in 0..slots {
            let off = at + usize::from(u16_at(&b, at + 8190 - 2 * s));
            let idminor = u32_at(&b, off + 17);
            let rows = u64::from_le_bytes(b[off + 31..off + 39].try_into().unwrap());
            // User objects have ids from 100 on (a base table counts 23 rows too).
            if idminor <= 1 && rows == 23 && u32_at(&b, off + 13) >= 100 {
                b[off + 31..off + 39].copy_from_slice(&24u64.to_le_bytes());
                changed += 1;
            }
        }
        let c = page_checksum(&b[at..at + 8192]);
        b[at + 60..at + 64].copy_from_slice(&c.to_le_bytes());
        at += 8192;
    }
    assert_eq!(
        changed, 1,
        "one heap or clustered rowset of pubs counts 23 rows (dbo.sales)"
    );
    temp_file("pubs-count.bak", &b)
}

#[test]
fn verify_names_a_table_whose_count_disagrees_with_its_pages() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = pubs_with_a_wrong_count(&dir);
    let v = run("bak-verify", &os(&args![f.as_ref() as &Path]), b"");
    let said = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{said}{}", v.stderr);
    assert!(
        said.contains(
            "table dbo.sales: the catalog counts 24 rows, its 1 data pages hold 23 records"
        ),
        "{said}"
    );
    assert_eq!(said.matches("table dbo.").count(), 1, "{said}");
    let j = run(
        "bak-verify",
        &os(&args!["--json", f.as_ref() as &Path]),
        b"",
    );
    let r = &json_lines(&j.stdout)[0];
    assert_eq!(r["Verdict"], "damaged");
    assert_eq!(r["Problems"][0]["Expected"], "24");
    assert_eq!(r["Problems"][0]["Found"], "23");
    // The listing shows both numbers; the untouched backup verifies valid (every fixture does).
    let t = tables(&[f.as_ref()], 1);
    assert_eq!(t["dbo.sales"]["Rows"], 24);
    assert_eq!(t["dbo.sales"]["RecordsOnPages"], 23);
    let v = run("bak-verify", &os(&args![&dir.join("pubs_UGR95.bak")]), b"");
    assert_eq!(v.code, 0, "{}", String::from_utf8_lossy(&v.stdout));
}

/// The layout a lone stripe falls back to for the base tables whose description lies on the
/// missing family is the one every whole catalog from SQL Server 2008 on gives them.
#[test]
fn the_known_base_table_layout_is_every_whole_catalogs() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut checked = 0;
    for f in fixtures(&dir) {
        if f.stream == "log" || f.lacks.is_some() || f.name.starts_with("diff") {
            continue;
        }
        let devs = [bak_mtf::MtfDevice::open(&f.path).unwrap()];
        for set in 1..=f.sets {
            let db = bak_mtf::Database::open(&devs, Some(set)).unwrap();
            if db.version().is_some_and(|v| v <= 611) {
                continue; // SQL Server 2005: sysrowsetcolumns, not sysrscols
            }
            assert!(
                db.known_layout_differs().is_empty(),
                "{} set {set}: {:?}",
                f.name,
                db.known_layout_differs()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} sets");
}
