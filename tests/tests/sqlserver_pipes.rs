//! SQL Server backups read from a pipe: every fixture through bak-header, bak-verify and
//! bak-read on standard input gives what the same tool gives on the file, byte for byte (the
//! device name aside: "stdin" for the path).

use std::path::Path;

use crate::util::{fixtures_or_skip, os, run, Output};

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

fn same(tool: &str, extra: &[&str], f: &Path) {
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
}

#[test]
fn every_sqlserver_fixture_reads_the_same_from_a_pipe_as_from_its_file() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bak" || x == "trn"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        same("bak-header", &["--json"], f);
        same("bak-header", &["--labelonly", "--json"], f);
        same("bak-header", &["--filelist", "--json"], f);
        same("bak-verify", &["--json"], f);
        same("bak-read", &["--quiet"], f);
        same("bak-read", &["--quiet", "--stream", "log"], f);
        same("bak-read", &["--quiet", "--mtf"], f);
    }
}
