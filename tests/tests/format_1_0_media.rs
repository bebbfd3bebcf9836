//! Media written by the last release (format 1.0: the tools of commit 8e2b454) read exactly as
//! they did then.
//!
//! tests/fixtures/format-1.0/ holds small media made by its make.sh with those tools, and what
//! those same tools printed on them (`expected/`: each command with its exit code in
//! `expected/commands`, its output in `expected/NAME.stdout` and `.stderr`, or for a restore
//! `NAME.restored`, which input it gave, all of it or the start). Here the tools of
//! this workspace run the same commands on copies of the media and must give the same: the exit
//! code, stderr and stdout text exactly; `--json` lines as parsed values, less `Seconds` (how
//! long a verification took), and `--json` and `--csv` with keys added only at the end, as
//! docs/OUTPUT.md allows; bak-read's stdout byte for byte against the input it restores,
//! made again here as make.sh made it (a restore that fails may have written the start of its
//! input: how much depends on its threads' timing, so only that it is no more than that start
//! is held).
//!
//! The commands run, as make.sh ran them, in a folder holding copies of the media, with bare
//! device names: the outputs name the devices alike and table columns keep their widths. Any
//! mention of the folder's own path is replaced by `{dir}` all the same.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format-1.0")
}

/// One pinned command of `expected/commands`: `NAME CODE TOOL ARGS..`.
#[derive(Debug)]
struct Pinned {
    name: String,
    code: i32,
    tool: String,
    args: Vec<String>,
}

fn pinned() -> Vec<Pinned> {
    let text = std::fs::read_to_string(fixtures().join("expected/commands")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace().map(str::to_string);
            let mut next = || w.next().unwrap_or_else(|| panic!("short line: {l}"));
            let (name, code, tool) = (next(), next().parse().unwrap(), next());
            Pinned {
                name,
                code,
                tool,
                args: w.collect(),
            }
        })
        .collect()
}

/// The inputs of the fixtures, as make.sh makes them (`inputs`: `NAME LINES SEED BYTES`):
/// `seq 1 LINES`, then BYTES bytes of xorshift64 seeded SEED, each step 8 little-endian bytes.
fn inputs() -> HashMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(fixtures().join("inputs")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let [name, lines, seed, bytes] = w[..] else {
                panic!("inputs: {l}");
            };
            let lines: u64 = lines.parse().unwrap();
            let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).unwrap();
            let bytes: usize = bytes.parse().unwrap();
            let mut v: Vec<u8> = (1..=lines)
                .flat_map(|i| format!("{i}\n").into_bytes())
                .collect();
            let mut rng = Rng::new(seed);
            let start = v.len();
            while v.len() < start + bytes {
                v.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            v.truncate(start + bytes);
            (name.to_string(), v)
        })
        .collect()
}

/// `--json` output as values, less what depends on the moment it ran.
fn json_without_timing(out: &str) -> Vec<serde_json::Value> {
    json_lines(out.as_bytes())
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("Seconds");
            }
            v
        })
        .collect()
}

/// `--json` lines as they were: the same objects, every key of each in the same place with the
/// same value, and new keys only after them (docs/OUTPUT.md: "new keys may be added at the
/// end, none are renamed or removed").
fn json_as_before(now: &[serde_json::Value], then: &[serde_json::Value], what: &str) {
    assert_eq!(
        now.len(),
        then.len(),
        "{what}: stdout lines:\n{now:?}\n{then:?}"
    );
    for (n, t) in now.iter().zip(then) {
        match (n.as_object(), t.as_object()) {
            (Some(n), Some(t)) => {
                let keys: Vec<&String> = n.keys().take(t.len()).collect();
                assert_eq!(
                    keys,
                    t.keys().collect::<Vec<_>>(),
                    "{what}: keys renamed, removed or moved"
                );
                for (k, v) in t {
                    assert_eq!(&n[k], v, "{what}: {k}");
                }
            }
            _ => assert_eq!(n, t, "{what}: stdout"),
        }
    }
}

/// Run every pinned command whose name starts with `prefix` and compare with what the tools of
/// 8e2b454 gave.
fn reads_as_before(prefix: &str) {
    let dir = fixtures();
    let expected = dir.join("expected");
    let inputs = inputs();
    let cmds: Vec<Pinned> = pinned()
        .into_iter()
        .filter(|c| c.name.starts_with(prefix))
        .collect();
    assert!(!cmds.is_empty(), "no pinned command named {prefix}*");
    for c in &cmds {
        // Fresh copies for each command: the tools lock the media they open.
        let t = temp_dir("format-1.0");
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "bak") {
                std::fs::copy(&p, t.path().join(p.file_name().unwrap())).unwrap();
            }
        }
        let out = Command::new(bin(&c.tool))
            .args(&c.args)
            .current_dir(t.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let here = t.path().display().to_string();
        let norm = |b: &[u8]| String::from_utf8_lossy(b).replace(&here, "{dir}");
        let (stdout, stderr) = (norm(&out.stdout), norm(&out.stderr));
        let what = format!("{} ({} {})", c.name, c.tool, c.args.join(" "));
        let want_err = std::fs::read_to_string(expected.join(format!("{}.stderr", c.name)))
            .unwrap_or_default();
        assert_eq!(
            out.status.code(),
            Some(c.code),
            "{what}: exit code\nstderr: {stderr}"
        );
        assert_eq!(stderr, want_err, "{what}: stderr");
        if let Ok(restored) = std::fs::read_to_string(expected.join(format!("{}.restored", c.name)))
        {
            // "INPUT all": that input; "INPUT prefix": the restore failed having written no
            // more than the start of that input (how much depends on its threads' timing).
            let (input, how) = restored
                .trim()
                .split_once(' ')
                .unwrap_or_else(|| panic!("{what}: {restored:?}"));
            let input = &inputs[input];
            match how {
                "all" => assert!(
                    out.stdout == *input,
                    "{what}: restored {} bytes that are not the input ({} bytes)",
                    out.stdout.len(),
                    input.len()
                ),
                "prefix" => assert!(
                    out.stdout.len() < input.len() && input.starts_with(&out.stdout),
                    "{what}: the failed restore wrote {} bytes that are not the start of the \
                     input ({} bytes)",
                    out.stdout.len(),
                    input.len()
                ),
                _ => panic!("{what}: {restored:?}"),
            }
            continue;
        }
        let want_out = std::fs::read_to_string(expected.join(format!("{}.stdout", c.name)))
            .unwrap_or_else(|e| panic!("{what}: expected stdout: {e}"));
        if c.args.iter().any(|a| a == "--json") {
            json_as_before(
                &json_without_timing(&stdout),
                &json_without_timing(&want_out),
                &what,
            );
        } else if c.args.iter().any(|a| a == "--csv") {
            // Columns added at the end, as with --json: each line as it was, then more fields.
            let (now, then): (Vec<&str>, Vec<&str>) =
                (stdout.lines().collect(), want_out.lines().collect());
            assert_eq!(now.len(), then.len(), "{what}: stdout:\n{stdout}");
            for (n, t) in now.iter().zip(&then) {
                assert!(
                    n == t || n.starts_with(&format!("{t},")),
                    "{what}: the line\n{t}\nis now\n{n}"
                );
            }
        } else {
            assert_eq!(stdout, want_out, "{what}: stdout");
        }
    }
}

#[test]
fn one_device_with_two_appended_sets_reads_as_before() {
    reads_as_before("appended-");
}

#[test]
fn three_zstd_families_read_as_before() {
    reads_as_before("striped-");
}

#[test]
fn a_set_interrupted_on_one_of_two_families_reads_as_before() {
    reads_as_before("interrupted-");
}

#[test]
fn a_changed_byte_in_a_block_payload_is_reported_as_before() {
    reads_as_before("damaged-");
}

#[test]
fn every_pinned_command_is_checked_and_its_media_and_inputs_are_there() {
    let dir = fixtures();
    let inputs = inputs();
    for c in pinned() {
        assert!(
            ["appended-", "striped-", "interrupted-", "damaged-"]
                .iter()
                .any(|p| c.name.starts_with(p)),
            "{} is checked by no test",
            c.name
        );
        for a in c.args.iter().filter(|a| a.ends_with(".bak")) {
            assert!(dir.join(a).is_file(), "{}: no {a}", c.name);
        }
        let expected = |ext: &str| dir.join(format!("expected/{}.{ext}", c.name));
        match std::fs::read_to_string(expected("restored")) {
            Ok(r) => {
                let input = r.split_whitespace().next().unwrap_or_default();
                assert!(inputs.contains_key(input), "{}: no input {input}", c.name);
            }
            Err(_) => assert!(expected("stdout").is_file(), "{}: no stdout", c.name),
        }
    }
}
