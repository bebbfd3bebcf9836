//! SQL Server backups read from a pipe: every fixture through bak-header, bak-verify and
//! bak-read on standard input gives what the same tool gives on the file, byte for byte (the
//! device name aside: "stdin" for the path), and exits as the fixture table of
//! sqlserver_range.rs says: 0, or 1 for a lone family of a striped set.

use std::path::Path;

use crate::sqlserver_range::{fixtures, STRIPED_PAIR};
use crate::util::{fixtures_or_skip, json_lines, os, run, Output};

/// The tool's result on the file, and on the file's bytes piped into `-`.
fn both(tool: &str, extra: &[&str], f: &Path) -> (Output, Output) {
    let mut a: Vec<std::ffi::OsString> = Vec::new();
    for e in extra {
        a.push(e.into());
    }
    let mut on_file = a.clone();
    on_file.push(f.into());
    let mut on_pipe = a;
    on_pipe.push("-".into());
    let bytes = std::fs::read(f).unwrap();
    (
        run(tool, &os(&on_file), b""),
        run(tool, &os(&on_pipe), &bytes),
    )
}

/// Run `tool` on the file and on a pipe, check both give the same, and give the exit code and
/// the output (on the file).
fn same(tool: &str, extra: &[&str], f: &Path) -> Output {
    let (file, pipe) = both(tool, extra, f);
    let name = f.display().to_string();
    // Text with the device named as on the pipe; in JSON, the time taken left out.
    let norm = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .replace(&name, "stdin")
            .lines()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(serde_json::Value::Object(mut m)) => {
                    m.remove("Seconds");
                    serde_json::Value::Object(m).to_string()
                }
                _ => l.to_string(),
            })
            .collect()
    };
    assert_eq!(
        file.code, pipe.code,
        "{tool} {extra:?} {name}: exit codes differ; file: {} pipe: {}",
        file.stderr, pipe.stderr
    );
    if extra.contains(&"--json") || tool == "bak-header" {
        assert_eq!(
            norm(&file.stdout),
            norm(&pipe.stdout),
            "{tool} {extra:?} {name}"
        );
    } else {
        assert!(
            file.stdout == pipe.stdout,
            "{tool} {extra:?} {name}: {} bytes from the file, {} from the pipe",
            file.stdout.len(),
            pipe.stdout.len()
        );
    }
    assert_eq!(
        file.stderr.replace(&name, "stdin"),
        pipe.stderr,
        "{tool} {extra:?} {name}: messages differ"
    );
    file
}

#[test]
fn every_sqlserver_fixture_reads_the_same_from_a_pipe_as_from_its_file() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for f in fixtures(&dir) {
        let p = f.path.as_path();
        let h = same("bak-header", &["--json"], p);
        assert_eq!(h.code, 0, "{}: {}", f.name, h.stderr);
        assert_eq!(json_lines(&h.stdout).len() as u32, f.sets, "{}", f.name);
        same("bak-header", &["--labelonly", "--json"], p);
        same("bak-header", &["--filelist", "--json"], p);
        assert_eq!(
            same("bak-verify", &["--json"], p).code,
            f.code(),
            "{}",
            f.name
        );
        same("bak-read", &["--quiet"], p);
        same("bak-read", &["--quiet", "--stream", "log"], p);
        same("bak-read", &["--quiet", "--mtf"], p);
        for set in 1..=f.sets {
            let set = set.to_string();
            let flags = ["--quiet", "--stream", f.stream, "--file", set.as_str()];
            let r = same("bak-read", &flags, p);
            assert_eq!(r.code, f.code(), "{} set {set}: {}", f.name, r.stderr);
            let v = same("bak-verify", &["--file", set.as_str()], p);
            assert_eq!(v.code, f.code(), "{} set {set}: {}", f.name, v.stderr);
        }
    }
}

#[test]
fn a_striped_pair_reads_with_one_family_from_a_pipe() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let [piped, on_file] = STRIPED_PAIR.map(|n| dir.join(n));
    let bytes = std::fs::read(&piped).unwrap();
    let whole = run("bak-read", &os(&args!["--quiet", &piped, &on_file]), b"");
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let r = run("bak-read", &os(&args!["--quiet", "-", &on_file]), &bytes);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout == whole.stdout,
        "the same pages with family 2 on a pipe"
    );
    let v = run("bak-verify", &os(&args!["-", &on_file]), &bytes);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let h = run("bak-header", &os(&args!["--json", "-", &on_file]), &bytes);
    let rows = json_lines(&h.stdout);
    assert_eq!(
        (rows.len(), rows[0]["IsComplete"].as_bool()),
        (1, Some(true))
    );
}
