//! `bak-read --restore-files DIR`: the data files of real SQL Server full backups rebuilt page by
//! page, named by the base name of their PhysicalName, nothing written outside DIR or over a
//! file without --force.

use crate::util::*;

/// Every page in `file` whose header is a page header lies at its page id x 8192.
fn pages_in_place(file: &[u8]) -> usize {
    let mut n = 0;
    for (i, p) in file.chunks_exact(8192).enumerate() {
        if p[0] == 1 && p[36..38] != [0, 0] {
            assert_eq!(
                u32::from_le_bytes(p[32..36].try_into().unwrap()) as usize,
                i,
                "page at {i}"
            );
            n += 1;
        }
    }
    n
}

#[test]
fn data_files_are_rebuilt_at_their_size_each_page_in_place() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for name in [
        "pubs_UGR95.bak",
        "linux2019_meetupdb.bak",
        "cmp2014_sharepoint_2sets.bak",
        "sql2005_stdb2sql_2sets.bak",
    ] {
        let f = dir.join(name);
        let out = temp_dir("files");
        let r = run(
            "bak-read",
            &os(&args!["--restore-files", out.path(), &f]),
            b"",
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let list = run("bak-header", &os(&args!["--filelist", "--json", &f]), b"");
        let files = json_lines(&list.stdout);
        let data: Vec<&serde_json::Value> = files
            .iter()
            .filter(|x| x["Position"] == 1 && x["Type"] == "D")
            .collect();
        assert_eq!(
            names_in(out.path()).len(),
            data.len(),
            "{name}: {:?}",
            names_in(out.path())
        );
        for d in data {
            let phys = d["PhysicalName"].as_str().unwrap();
            let base = phys.rsplit(['/', '\\']).next().unwrap();
            let bytes = std::fs::read(out.path().join(base)).unwrap();
            assert_eq!(
                bytes.len() as u64,
                d["Size"].as_u64().unwrap(),
                "{name} {base}"
            );
            let n = pages_in_place(&bytes);
            assert!(n > 100, "{name}: {n} pages");
            // The boot page names the database.
            assert_eq!(bytes[9 * 8192 + 1], 13, "{name}: page 9 is the boot page");
        }
        assert!(
            r.stderr.contains("is not in the data stream: not written"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn restored_files_go_only_where_they_are_allowed() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let out = temp_dir("files-safe");
    // An existing file is left alone without --force, replaced with it.
    std::fs::write(out.path().join("pubs.mdf"), b"keep").unwrap();
    let r = run(
        "bak-read",
        &os(&args!["--restore-files", out.path(), &f]),
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("give -f/--force"), "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("pubs.mdf")).unwrap(), b"keep");
    let r = run(
        "bak-read",
        &os(&args!["-f", "--restore-files", out.path(), &f]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::metadata(out.path().join("pubs.mdf"))
            .unwrap()
            .len(),
        4259840
    );
    // A link in the way is never written through, --force or not.
    let other = temp_dir("files-other");
    let victim = other.path().join("victim");
    std::fs::write(&victim, b"victim").unwrap();
    let linked = temp_dir("files-link");
    std::os::unix::fs::symlink(&victim, linked.path().join("pubs.mdf")).unwrap();
    let r = run(
        "bak-read",
        &os(&args!["-f", "--restore-files", linked.path(), &f]),
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    // --move puts one file elsewhere; an unknown logical name is refused.
    let moved = other.path().join("moved.mdf");
    let r = run(
        "bak-read",
        &os(&args![
            "--restore-files",
            linked.path(),
            "--move",
            format!("pubs={}", moved.display()),
            &f
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::metadata(&moved).unwrap().len(), 4259840);
    let r = run(
        "bak-read",
        &os(&args![
            "--restore-files",
            out.path(),
            "--move",
            "nosuch=/tmp/x",
            &f
        ]),
        b"",
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no data file nosuch") && r.stderr.contains("pubs"),
        "{}",
        r.stderr
    );
    // Not a directory; a differential has no whole catalog.
    let r = run("bak-read", &os(&args!["--restore-files", &victim, &f]), b"");
    assert_eq!(r.code, 2);
    let r = run(
        "bak-read",
        &os(&args![
            "--restore-files",
            out.path(),
            &dir.join("diff2016_restoretimeclean.bak")
        ]),
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_lone_stripe_restores_what_it_holds_labelled_partial() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let out = temp_dir("files-stripe");
    let pair = crate::sqlserver_range::STRIPED_PAIR;
    let r = run(
        "bak-read",
        &os(&args![
            "--restore-files",
            out.path(),
            &dir.join(pair[0]),
            &dir.join(pair[1])
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let whole = names_in(out.path());
    assert_eq!(whole.len(), 1, "{whole:?}");
    let bytes = std::fs::read(out.path().join(&whole[0])).unwrap();
    let all = pages_in_place(&bytes);
    let lone = temp_dir("files-lone");
    let r = run(
        "bak-read",
        &os(&args!["--restore-files", lone.path(), &dir.join(pair[1])]),
        b"",
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("partial"), "{}", r.stderr);
    let part = pages_in_place(&std::fs::read(lone.path().join(&whole[0])).unwrap());
    assert!(part > 0 && part < all, "{part} of {all}");
}
