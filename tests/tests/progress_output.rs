//! What the tools tell a person while they work: the summary line and its JSON, plain progress
//! lines with --stats, a live bar only on a terminal, --quiet, and no binary output to a
//! terminal.

use crate::util::*;

#[test]
fn write_prints_a_summary_line_and_json() {
    let t = temp_dir("sum");
    let d = t.path().join("s.bak");
    let out = run("bak-write", &os(&args!["--json", &d]), &data(3 * MTS, 1));
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["BackupSize"], 3 * MTS as u64);
    assert_eq!(v["FamilyCount"], 1);
    assert_eq!(v["Position"], 1);
    assert!(
        out.stderr
            .starts_with("BACKUP processed 196608 bytes in 1 blocks on 1 family in "),
        "{}",
        out.stderr
    );
}

#[test]
fn stats_prints_a_plain_line_every_n_percent_and_quiet_silences_it() {
    let t = temp_dir("stats");
    let input = t.path().join("in.bin");
    std::fs::write(&input, data(64 * MTS, 6)).unwrap();
    let d = t.path().join("s.bak");
    let o = run(
        "bak-write",
        &os(&args![
            "--input",
            &input,
            "--max-transfer-size",
            "64K",
            "--stats",
            "25",
            &d
        ]),
        b"",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("BACKUP ") && l.contains("%)"))
        .collect();
    assert_eq!(lines.len(), 4, "{}", o.stderr);
    assert!(
        lines[0].contains("(25%)") && lines[3].contains("(100%)"),
        "{}",
        o.stderr
    );
    let q = run(
        "bak-write",
        &os(&args![
            "--format", "--quiet", "--stats", "25", "--input", &input, &d
        ]),
        b"",
    );
    assert_eq!(q.code, 0);
    assert_eq!(q.stderr, "", "--quiet silences progress and the summary");
}

/// Run `cmd` under `script`, which gives it a terminal (a pty) for stdin, stdout and stderr;
/// returns its exit code and what it wrote to the terminal.
fn on_a_terminal(cmd: &str) -> (i32, String) {
    let o = std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn a_terminal_gets_no_binary_output_and_a_live_progress_bar() {
    if !have("script") {
        skip("no `script` (util-linux) to give the tools a terminal");
        return;
    }
    let t = temp_dir("tty");
    let input = t.path().join("in");
    std::fs::write(&input, data(40 << 20, 5)).unwrap();
    let (bw, br) = (bin("bak-write"), bin("bak-read"));
    let dev = t.path().join("d.bak");
    // Media to a terminal: refused.
    let (code, out) = on_a_terminal(&format!("{} - < {}", bw.display(), input.display()));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("refusing to write backup media to a terminal"),
        "{out}"
    );
    // Progress on a terminal: a bar redrawn in place, then the summary.
    let (code, out) = on_a_terminal(&format!(
        "{} --max-transfer-size 64K {} < {}",
        bw.display(),
        dev.display(),
        input.display()
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\x1b[2K") && out.contains("MiB/s"), "{out:?}");
    assert!(out.contains("BACKUP processed 41943040 bytes"), "{out}");
    // Restored bytes to a terminal: refused, before anything is written; a pipe is fine.
    let (code, out) = on_a_terminal(&format!("{} {}", br.display(), dev.display()));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("refusing to write the restored bytes to a terminal"),
        "{out}"
    );
    assert!(!out.contains("RESTORE processed"), "{out}");
    let (code, out) = on_a_terminal(&format!("{} -q {} | wc -c", br.display(), dev.display()));
    assert_eq!((code, out.trim()), (0, "41943040"));
    // --quiet: nothing at all on the terminal.
    let quiet = t.path().join("q.bak");
    let (code, out) = on_a_terminal(&format!(
        "{} -q {} < {}",
        bw.display(),
        quiet.display(),
        input.display()
    ));
    assert_eq!((code, out.as_str()), (0, ""));
}
