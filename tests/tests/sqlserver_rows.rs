//! Rows read from the pages of real SQL Server full backups (`bak-read --table`), compared
//! value by value with the INSERTs of Microsoft's scripts that made pubs and Northwind.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::*;

/// One value of a script's INSERT: a string, a number (as written, `$` dropped) or NULL.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(String),
    Null,
}

/// The value lists of every `INSERT [INTO] table ... VALUES (...)` of `script`.
fn inserts(script: &str, table: &str) -> Vec<Vec<Lit>> {
    let lower = script.to_ascii_lowercase();
    let t = table.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("insert") {
        let start = at + i;
        at = start + 6;
        let line_start = lower[..start].rfind('\n').map_or(0, |k| k + 1);
        if !lower[line_start..start].trim().is_empty() {
            continue;
        }
        let rest = lower[at..].trim_start();
        let rest = rest.strip_prefix("into").unwrap_or(rest).trim_start();
        let name = rest.trim_start_matches('"');
        if !(name.starts_with(&t) && name[t.len()..].starts_with(['"', ' ', '\n', '\r', '(', '\t']))
        {
            continue;
        }
        let v = at + lower[at..].find("values").unwrap() + 6;
        // INSERT t (columns) VALUES: a list of some columns only, in its own order. The
        // Northwind Orders INSERTs name every column in table order; they are kept.
        let cols = &lower[at..v];
        if cols.contains('(') && !cols.contains("\"orderid\"") {
            at = v;
            continue;
        }
        let open = v + script[v..].find('(').unwrap();
        let b = script.as_bytes();
        let (mut k, mut vals, mut cur) = (open + 1, Vec::new(), String::new());
        loop {
            let c = b[k] as char;
            if c == '\'' || ((c == 'N' || c == 'n') && b[k + 1] == b'\'' && cur.trim().is_empty()) {
                // A string, '' for a quote.
                k += if c == '\'' { 1 } else { 2 };
                let mut s = Vec::new();
                loop {
                    if b[k] == b'\'' {
                        if b[k + 1] == b'\'' {
                            s.push(b'\'');
                            k += 2;
                            continue;
                        }
                        k += 1;
                        break;
                    }
                    s.push(b[k]);
                    k += 1;
                }
                vals.push(Lit::Str(String::from_utf8_lossy(&s).into_owned()));
                cur.clear();
                cur.push('\u{1}');
                continue;
            }
            if c == ',' || c == ')' {
                let w = cur.trim();
                if w != "\u{1}" {
                    vals.push(if w.eq_ignore_ascii_case("null") {
                        Lit::Null
                    } else {
                        Lit::Num(w.trim_start_matches('$').to_string())
                    });
                }
                cur.clear();
                k += 1;
                if c == ')' {
                    break;
                }
                continue;
            }
            cur.push(c);
            k += 1;
        }
        out.push(vals);
        at = k;
    }
    out
}

/// A CSV file's records (RFC 4180 quoting); a field's `None` is an empty unquoted field.
fn csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' if quoted => {
                if it.peek() == Some(&'"') {
                    field.push('"');
                    it.next();
                } else {
                    quoted = false;
                }
            }
            '"' if field.is_empty() => {
                quoted = true;
                any = true;
            }
            ',' if !quoted => {
                row.push((any || !field.is_empty()).then(|| std::mem::take(&mut field)));
                any = false;
            }
            '\n' if !quoted => {
                row.push((any || !field.is_empty()).then(|| std::mem::take(&mut field)));
                any = false;
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    rows
}

/// A number without trailing fraction zeros: `14.0000` and `14` alike.
fn num(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A script date (`06/12/91`, `7/4/1996`) as `YYYY-MM-DD 00:00:00`.
fn date(s: &str) -> Option<String> {
    let p: Vec<u32> = s
        .split('/')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [m, d, y] = p[..] else { return None };
    let y = if y < 100 { 1900 + y } else { y };
    Some(format!("{y:04}-{m:02}-{d:02} 00:00:00"))
}

/// Does exported field `got` hold the script's literal `want`?
fn same(got: &Option<String>, want: &Lit) -> bool {
    match (got, want) {
        (None, Lit::Null) => true,
        (Some(g), Lit::Num(w)) => num(g) == num(w),
        (Some(g), Lit::Str(w)) => {
            g.trim_end() == w.trim_end() || date(w).as_deref() == Some(g.as_str())
        }
        _ => false,
    }
}

/// A script's non-Unicode literal as the database stored it: SQL Server converts it into the
/// column's code page, a character the code page lacks to its base letter ("best fit"). So the
/// exported text equals the script's, character for character, where the code page has the
/// character, and holds a plain ASCII letter where it does not.
fn fits(enc: &'static encoding_rs::Encoding, got: &str, want: &str) -> bool {
    let (g, w): (Vec<char>, Vec<char>) = (got.chars().collect(), want.chars().collect());
    g.len() == w.len()
        && g.iter().zip(&w).all(|(a, b)| {
            let mut buf = [0u8; 4];
            let (_, _, lacks) = enc.encode(b.encode_utf8(&mut buf));
            a == b || (lacks && a.is_ascii_alphabetic())
        })
        && g != w
}

/// Exported rows by their key.
type Rows = BTreeMap<Vec<String>, Vec<Option<String>>>;

/// The table's rows as `bak-read --table` writes them, by the values of `key` columns.
fn exported(f: &Path, table: &str, key: &[usize]) -> (Vec<String>, Rows) {
    let r = run("bak-read", &os(&args!["--quiet", "--table", table, f]), b"");
    assert_eq!(r.code, 0, "{table}: {}", r.stderr);
    let mut rows = csv(&String::from_utf8(r.stdout).unwrap());
    let head: Vec<String> = rows.remove(0).into_iter().map(|h| h.unwrap()).collect();
    let by_key = rows
        .into_iter()
        .map(|r| {
            (
                key.iter()
                    .map(|&k| r[k].clone().unwrap_or_default())
                    .collect(),
                r,
            )
        })
        .collect();
    (head, by_key)
}

/// Every row the script inserts is there, every value equal, except the (row key, column)
/// pairs in `edited`.
#[allow(clippy::too_many_arguments)]
fn compare(
    f: &Path,
    script: &str,
    table: &str,
    key: &[usize],
    at_least: usize,
    edited: &[(&str, &str)],
    bits: &[&str],
    best_fit: Option<&'static encoding_rs::Encoding>,
) {
    let want = inserts(script, table);
    assert!(
        want.len() >= at_least,
        "{table}: {} inserts parsed",
        want.len()
    );
    let (head, got) = exported(f, table, key);
    for w in &want {
        assert_eq!(w.len(), head.len(), "{table}: {w:?}");
        let k: Vec<String> = key
            .iter()
            .map(|&i| match &w[i] {
                Lit::Str(s) | Lit::Num(s) => s.clone(),
                Lit::Null => String::new(),
            })
            .collect();
        let g = got
            .get(&k)
            .unwrap_or_else(|| panic!("{table}: row {k:?} missing"));
        for (i, lit) in w.iter().enumerate() {
            if k.iter()
                .any(|x| edited.contains(&(x.as_str(), head[i].as_str())))
            {
                continue;
            }
            let bit = bits.contains(&head[i].as_str())
                && matches!(lit, Lit::Num(n) if n.parse::<i64>().is_ok_and(|v| v != 0))
                && g[i].as_deref() == Some("1");
            let fitted = best_fit.is_some_and(|enc| match (&g[i], lit) {
                (Some(g), Lit::Str(w)) => fits(enc, g, w),
                _ => false,
            });
            assert!(
                same(&g[i], lit) || bit || fitted,
                "{table} {k:?} {}: exported {:?}, script {lit:?}",
                head[i],
                g[i]
            );
        }
    }
}

#[test]
fn pubs_rows_match_the_script() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instpubs.sql")).unwrap();
    let f = dir.join("pubs_UGR95.bak");
    // contract is a bit: the script's 3 is stored as 1.
    compare(&f, &script, "authors", &[0], 23, &[], &["contract"], None);
    compare(&f, &script, "titles", &[0], 16, &[], &[], None);
    // README: qty 0 on orders P723 and X999.
    let qty = [("P723", "qty"), ("X999", "qty")];
    compare(&f, &script, "sales", &[0, 1, 5], 21, &qty, &[], None);
}

#[test]
fn northwind_rows_match_the_script() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instnwnd.sql")).unwrap();
    let f = dir.join("sql2005_northwind_blackmonoceros.bak");
    compare(&f, &script, "Orders", &[0], 830, &[], &[], None);
    compare(&f, &script, "Order Details", &[0, 1], 2155, &[], &[], None);
    // The Customers INSERTs are not N'' literals, and this database is Polish_CI_AS (code
    // page 1250): 'Luleå' was stored as Lulea, 'Berglunds snabbköp' as it is.
    let (_, got) = exported(&f, "Customers", &[0]);
    assert_eq!(got[&vec!["BERGS".to_string()]][5].as_deref(), Some("Lulea"));
    assert_eq!(
        got[&vec!["BERGS".to_string()]][1].as_deref(),
        Some("Berglunds snabbköp")
    );
    compare(
        &f,
        &script,
        "Customers",
        &[0],
        91,
        &[],
        &[],
        Some(encoding_rs::WINDOWS_1250),
    );
}

#[test]
fn every_readable_table_of_every_complete_backup_exports_its_rows() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut tables = 0;
    for f in crate::sqlserver_range::fixtures(&dir) {
        if f.stream == "log" || f.lacks.is_some() || f.name.starts_with("diff") {
            continue;
        }
        for set in 1..=f.sets {
            for (name, t) in crate::sqlserver_tables::tables(&[&f.path], set) {
                let r = run(
                    "bak-read",
                    &os(&args![
                        "--quiet",
                        "--file",
                        set.to_string(),
                        "--table",
                        name.as_str(),
                        "--format",
                        "jsonl",
                        &f.path
                    ]),
                    b"",
                );
                if t["Unsupported"].is_string() {
                    // Listed, never read as garbage: refused, naming what.
                    assert_eq!(r.code, 2, "{} {name}: {}", f.name, r.stderr);
                    assert!(
                        r.stderr.contains("cannot be read")
                            && r.stderr.contains(t["Unsupported"].as_str().unwrap()),
                        "{}",
                        r.stderr
                    );
                    continue;
                }
                assert_eq!(r.code, 0, "{} {name}: {}", f.name, r.stderr);
                let rows = json_lines(&r.stdout);
                assert_eq!(
                    Some(rows.len() as u64),
                    t["Rows"].as_u64(),
                    "{} {name}",
                    f.name
                );
                let cols = t["Columns"].as_array().unwrap();
                for row in &rows {
                    assert_eq!(
                        row.as_object().unwrap().len(),
                        cols.len(),
                        "{} {name}",
                        f.name
                    );
                }
                tables += 1;
            }
        }
    }
    assert!(tables >= 100, "{tables}");
}

#[test]
fn values_lobs_and_refusals() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let pubs = dir.join("pubs_UGR95.bak");
    // image through its text pointer: the logos are GIFs; text too.
    let r = run(
        "bak-read",
        &os(&args![
            "-q",
            "--table",
            "dbo.pub_info",
            "--format",
            "jsonl",
            &pubs
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = json_lines(&r.stdout);
    assert_eq!(rows.len(), 8);
    let logo = rows[0]["logo"].as_str().unwrap();
    assert!(logo.starts_with("0x474946383961"), "{}", &logo[..20]);
    assert!(logo.len() > 1000);
    assert!(
        rows[0]["pr_info"]
            .as_str()
            .unwrap()
            .starts_with("This is sample text data for"),
        "{}",
        rows[0]["pr_info"]
    );
    // NULL: JSON null, an empty CSV field; money exact.
    let r = run(
        "bak-read",
        &os(&args!["-q", "--table", "titles", &pubs]),
        b"",
    );
    let text = String::from_utf8(r.stdout).unwrap();
    let mc = text.lines().find(|l| l.starts_with("MC3026,")).unwrap();
    // Its pubdate defaults to GETDATE(): milliseconds shown (in steps of 1/300 s).
    let (head, pubdate) = mc.rsplit_once(',').unwrap();
    assert_eq!(
        head,
        "MC3026,The Psychology of Computer Cooking,UNDECIDED   ,0877,,,,,"
    );
    assert_eq!(pubdate.len(), "2024-02-18 19:45:49.470".len(), "{pubdate}");
    assert!(text.contains(",19.9900,5000.0000,"), "{text}");
    // SharePoint's nvarchar(max) stored out of row ("large value types out of row").
    let sp = dir.join("cmp2014_sharepoint_2sets.bak");
    let r = run(
        "bak-read",
        &os(&args![
            "-q",
            "--table",
            "dbo.Objects",
            "--format",
            "jsonl",
            &sp
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = json_lines(&r.stdout);
    assert_eq!(rows.len(), 586);
    assert!(rows
        .iter()
        .filter_map(|r| r["Properties"].as_str())
        .any(|p| p.starts_with("<object") && p.len() > 8000));
    // A table that is not there, named with the tables that are.
    let r = run(
        "bak-read",
        &os(&args!["-q", "--table", "dbo.nosuch", &pubs]),
        b"",
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no table dbo.nosuch") && r.stderr.contains("dbo.authors"),
        "{}",
        r.stderr
    );
    // bak-read's -o rules: an existing file is not replaced without --force.
    let t = temp_dir("rows");
    let out = t.path().join("authors.csv");
    std::fs::write(&out, b"keep").unwrap();
    let r = run(
        "bak-read",
        &os(&args!["-q", "--table", "authors", "-o", &out, &pubs]),
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    let r = run(
        "bak-read",
        &os(&args!["-q", "--table", "authors", "-f", "-o", &out, &pubs]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("au_id,au_lname,"));
    // Differential: no whole catalog.
    let r = run(
        "bak-read",
        &os(&args![
            "-q",
            "--table",
            "x",
            &dir.join("diff2016_restoretimeclean.bak")
        ]),
        b"",
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no whole catalog"), "{}", r.stderr);
}

#[test]
fn pubs_heaps_a_uniquified_index_and_an_identity_match_the_script() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("scripts/instpubs.sql")).unwrap();
    let f = dir.join("pubs_UGR95.bak");
    // roysched and discounts have no index: heaps, their pages found through IAM and PFS.
    compare(&f, &script, "roysched", &[0, 1], 86, &[], &[], None);
    compare(&f, &script, "discounts", &[0], 3, &[], &[], None);
    // employee's clustered index (lname, fname, minit) is not unique: its records carry a
    // uniquifier, which is no column of the table.
    compare(&f, &script, "employee", &[0], 43, &[], &[], None);
    let t = crate::sqlserver_tables::tables(&[&f], 1);
    let emp = t["dbo.employee"]["Columns"].as_array().unwrap();
    let names: Vec<&str> = emp.iter().map(|c| c["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "emp_id",
            "fname",
            "minit",
            "lname",
            "job_id",
            "job_lvl",
            "pub_id",
            "hire_date"
        ]
    );
    assert_eq!(t["dbo.employee"]["Rows"], 43);
    assert_eq!(t["dbo.roysched"]["RecordsOnPages"], 86);
    // jobs.job_id is an identity: the script's INSERTs leave it out, the rows hold 1..14.
    let jobs = t["dbo.jobs"]["Columns"].as_array().unwrap();
    let identity: Vec<bool> = jobs.iter().map(|c| c["Identity"] == true).collect();
    assert_eq!(identity, [true, false, false, false]);
    let (head, got) = exported(&f, "jobs", &[0]);
    assert_eq!(head, ["job_id", "job_desc", "min_lvl", "max_lvl"]);
    assert_eq!(got.len(), 14);
    let want = inserts(&script, "jobs");
    for (i, w) in want.iter().enumerate() {
        let g = &got[&vec![(i + 1).to_string()]];
        for (k, lit) in w.iter().enumerate() {
            assert!(same(&g[k + 1], lit), "jobs {}: {:?} vs {lit:?}", i + 1, g);
        }
    }
}
