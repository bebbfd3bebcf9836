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

// ---- --progress json, totals, --stats percent, the bar's total ----

/// The keys every `--progress json` line has.
const PROGRESS_KEYS: [&str; 5] = ["bytes", "total", "percent", "rate", "eta_seconds"];

/// The `--progress json` lines of a tool run with `--quiet` (so stderr holds nothing else):
/// each a JSON object with every key, `bytes` never going back. At least one line.
fn progress_lines(tool: &str, stderr: &str) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{tool}: a stderr line is not JSON ({e}): {l:?}"))
        })
        .collect();
    assert!(!lines.is_empty(), "{tool}: no progress line");
    for v in &lines {
        for k in PROGRESS_KEYS {
            assert!(v.get(k).is_some(), "{tool}: no {k:?} in {v}");
        }
        assert!(v["bytes"].is_u64() && v["rate"].is_u64(), "{tool}: {v}");
    }
    for w in lines.windows(2) {
        assert!(
            w[0]["bytes"].as_u64() <= w[1]["bytes"].as_u64(),
            "{tool}: bytes went back: {} then {}",
            w[0],
            w[1]
        );
    }
    lines
}

/// The last line of a run that reached its total: bytes and total both `size`, 100 percent,
/// nothing left to wait for.
fn assert_ended_at(tool: &str, lines: &[serde_json::Value], size: u64) {
    let last = lines.last().expect("a line");
    assert_eq!(last["bytes"], size, "{tool}: {last}");
    assert_eq!(last["total"], size, "{tool}: {last}");
    assert_eq!(last["percent"], 100.0, "{tool}: {last}");
    assert_eq!(last["eta_seconds"], 0, "{tool}: {last}");
}

/// Run a tool with a regular file on standard input (`tool ARGS < input`), not a pipe.
fn run_with_stdin_file(tool: &str, args: &[&std::ffi::OsStr], input: &std::path::Path) -> Output {
    let o = std::process::Command::new(bin(tool))
        .args(args)
        .stdin(std::fs::File::open(input).expect("input"))
        .output()
        .expect("spawn tool");
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn progress_json_counts_up_to_the_known_total_on_every_tool() {
    let t = temp_dir("pjson");
    let input = t.path().join("in.bin");
    let size = 40 * MTS as u64 + 123;
    std::fs::write(&input, data(size as usize, 7)).unwrap();
    let d = t.path().join("s.bak");
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--progress",
            "json",
            "--max-transfer-size",
            "64K",
            "--input",
            &input,
            &d
        ]),
        b"",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let lines = progress_lines("bak-write", &w.stderr);
    assert!(lines.iter().all(|v| v["total"] == size), "{}", w.stderr);
    assert_ended_at("bak-write", &lines, size);

    let r = run(
        "bak-read",
        &os(&args![
            "--quiet",
            "--progress",
            "json",
            "-o",
            "/dev/null",
            &d
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = progress_lines("bak-read", &r.stderr);
    assert!(lines.iter().all(|v| v["total"] == size), "{}", r.stderr);
    assert_ended_at("bak-read", &lines, size);

    // bak-verify counts the bytes of media it reads: every set, from the first set's header
    // to the end of the file.
    let media = std::fs::metadata(&d).unwrap().len() - bak_core::bytes::FIRST_SET_OFFSET;
    let v = run(
        "bak-verify",
        &os(&args!["--quiet", "--progress", "json", &d]),
        b"",
    );
    assert_eq!(
        v.code,
        0,
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        v.stderr
    );
    let lines = progress_lines("bak-verify", &v.stderr);
    assert_ended_at("bak-verify", &lines, media);
    assert_eq!(lines[0]["verb"], "VERIFY");
}

#[test]
fn progress_json_of_verify_counts_the_set_asked_for_on_every_family() {
    let t = temp_dir("pjsonv");
    let (devs, _, _) = two_sets_on_three_families(&t, "v");
    // Set 2 alone: its records on each family, from its set header to its end-of-set.
    let mut span = 0;
    for d in &devs {
        let f = std::fs::File::open(d).unwrap();
        let scan = bak_core::internals::scan_file(&f, d).unwrap();
        let e = &scan.set(2).unwrap().eset;
        span += e.self_offset + bak_core::bytes::ESET_FRAME_LEN as u64 - e.set_header_offset;
    }
    let mut a = args!["--quiet", "--progress", "json", "--file", "2"];
    a.extend(devs.iter().map(|p| p.into()));
    let v = run("bak-verify", &os(&a), b"");
    assert_eq!(v.code, 0, "{}", v.stderr);
    let lines = progress_lines("bak-verify", &v.stderr);
    assert_ended_at("bak-verify", &lines, span);
}

#[test]
fn progress_json_knows_a_regular_file_on_stdin_and_the_media_keep_its_size() {
    let t = temp_dir("pjsonstdin");
    let input = t.path().join("in.bin");
    let size = 9 * MTS as u64 + 5;
    let bytes = data(size as usize, 8);
    std::fs::write(&input, &bytes).unwrap();
    let d = t.path().join("s.bak");
    let w = run_with_stdin_file(
        "bak-write",
        &os(&args![
            "--quiet",
            "--progress",
            "json",
            "--max-transfer-size",
            "64K",
            &d
        ]),
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_ended_at(
        "bak-write < file",
        &progress_lines("bak-write", &w.stderr),
        size,
    );
    // Restored from a pipe, the set still says its size: the leading config recorded it.
    let media = std::fs::read(&d).unwrap();
    let r = run(
        "bak-read",
        &os(&args!["--quiet", "--progress", "json", "-"]),
        &media,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, bytes);
    assert_ended_at("bak-read -", &progress_lines("bak-read", &r.stderr), size);
}

#[test]
fn progress_json_says_null_where_the_total_is_unknown() {
    let t = temp_dir("pjsonpipe");
    let size = 9 * MTS as u64 + 5;
    let bytes = data(size as usize, 9);
    let d = t.path().join("s.bak");
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--progress",
            "json",
            "--max-transfer-size",
            "64K",
            &d
        ]),
        &bytes,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let lines = progress_lines("bak-write", &w.stderr);
    for v in &lines {
        assert!(
            v["total"].is_null() && v["percent"].is_null() && v["eta_seconds"].is_null(),
            "a pipe has no total: {v}"
        );
    }
    assert_eq!(lines.last().unwrap()["bytes"], size);
    // Media read from a pipe, of an input that was a pipe: the media do not say the size.
    let media = std::fs::read(&d).unwrap();
    for tool in ["bak-read", "bak-verify"] {
        let o = run(
            tool,
            &os(&args!["--quiet", "--progress", "json", "-"]),
            &media,
        );
        assert_eq!(o.code, 0, "{tool}: {}", o.stderr);
        let lines = progress_lines(tool, &o.stderr);
        assert!(lines.iter().all(|v| v["total"].is_null()), "{}", o.stderr);
    }
}

#[test]
fn progress_json_with_stats_prints_a_line_at_every_mark_and_none_prints_nothing() {
    let t = temp_dir("pjsonstats");
    let input = t.path().join("in.bin");
    std::fs::write(&input, data(64 * MTS, 10)).unwrap();
    let d = t.path().join("s.bak");
    let o = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--progress",
            "json",
            "--stats",
            "25",
            "--max-transfer-size",
            "64K",
            "--input",
            &input,
            &d
        ]),
        b"",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines = progress_lines("bak-write", &o.stderr);
    let percents: Vec<f64> = lines.iter().filter_map(|v| v["percent"].as_f64()).collect();
    assert_eq!(percents, [25.0, 50.0, 75.0, 100.0], "{}", o.stderr);
    assert_eq!(lines[0]["verb"], "BACKUP");
    let n = run(
        "bak-read",
        &os(&args!["--progress", "none", "-o", "/dev/null", &d]),
        b"",
    );
    assert_eq!(n.code, 0, "{}", n.stderr);
    assert!(
        n.stderr.starts_with("RESTORE processed ") && n.stderr.lines().count() == 1,
        "--progress none leaves only the summary: {}",
        n.stderr
    );
}

/// The `--stats` lines of a run: the percent each one gives.
fn stats_percents(verb: &str, stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter(|l| l.starts_with(verb) && !l.contains("processed"))
        .map(|l| {
            let p = l
                .split_once(" (")
                .and_then(|(_, r)| r.split_once("%)"))
                .unwrap_or_else(|| panic!("no percent in {l:?}"));
            p.0.parse().unwrap()
        })
        .collect()
}

#[test]
fn stats_on_read_and_verify_of_a_file_counts_percent() {
    let t = temp_dir("statsrv");
    let input = t.path().join("in.bin");
    std::fs::write(&input, data(64 * MTS, 11)).unwrap();
    let d = t.path().join("s.bak");
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--max-transfer-size",
            "64K",
            "--input",
            &input,
            &d
        ]),
        b"",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let r = run(
        "bak-read",
        &os(&args!["--stats", "10", "-o", "/dev/null", &d]),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = stats_percents("RESTORE ", &r.stderr);
    assert_eq!(p.len(), 10, "{}", r.stderr);
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{}", r.stderr);
    assert_eq!((p[0], p[9]), (10, 100), "{}", r.stderr);
    let v = run("bak-verify", &os(&args!["--stats", "25", &d]), b"");
    assert_eq!(v.code, 0, "{}", v.stderr);
    let p = stats_percents("VERIFY ", &v.stderr);
    assert!(
        p.len() >= 4 && p.windows(2).all(|w| w[0] < w[1]),
        "{}",
        v.stderr
    );
    assert_eq!(p.last(), Some(&100), "{}", v.stderr);
}

#[test]
fn stats_0_is_a_usage_error() {
    let t = temp_dir("stats0");
    let d = t.path().join("s.bak");
    for tool in ["bak-write", "bak-read", "bak-verify"] {
        let o = run(tool, &os(&args!["--stats", "0", &d]), b"");
        assert_eq!(o.code, 2, "{tool}: {}", o.stderr);
        assert!(o.stderr.contains("--stats"), "{tool}: {}", o.stderr);
        let o = run(tool, &os(&args!["--progress", "bar", &d]), b"");
        assert_eq!(o.code, 2, "{tool}: {}", o.stderr);
        assert!(o.stderr.contains("--progress"), "{tool}: {}", o.stderr);
    }
    assert!(!d.exists(), "nothing was written");
}

/// Run a tool with stderr on a pseudo-terminal 120 columns wide (stdin and stdout on
/// /dev/null); its exit code and everything it drew there.
fn with_stderr_on_a_pty(tool: &str, args: &[&std::ffi::OsStr]) -> (i32, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the out-pointers are valid; null name and termios are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, slave] {
        // Not into the children other tests start meanwhile: the master would see no end.
        // SAFETY: fd is open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: openpty gave two open descriptors that nothing else owns.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    };
    let mut cmd = std::process::Command::new(bin(tool));
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(slave);
    let mut child = cmd.spawn().expect("spawn tool");
    drop(cmd); // the last copy of the terminal's slave side here: the master then sees the end
    let reader = std::thread::spawn(move || {
        let mut drawn = Vec::new();
        let mut buf = [0u8; 4096];
        // Once the tool has exited, a read gives EIO (Linux) or 0.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            drawn.extend_from_slice(&buf[..n]);
        }
        drawn
    });
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    let drawn = reader.join().expect("pty reader");
    (code, String::from_utf8_lossy(&drawn).into_owned())
}

#[test]
fn a_bar_on_a_terminal_shows_the_total_percent_and_eta_of_a_restore() {
    let t = temp_dir("ptybar");
    let input = t.path().join("in.bin");
    std::fs::write(&input, data(40 << 20, 12)).unwrap();
    let d = t.path().join("s.bak");
    let w = run(
        "bak-write",
        &os(&args!["--quiet", "--input", &input, &d]),
        b"",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let (code, drawn) = with_stderr_on_a_pty("bak-read", &os(&args!["-o", "/dev/null", &d]));
    assert_eq!(code, 0, "{drawn}");
    assert!(drawn.contains("\x1b[2K"), "drawn in place: {drawn:?}");
    assert!(
        drawn.contains("/40.00 MiB") && drawn.contains("% ") && drawn.contains("ETA"),
        "bytes/total, percent and ETA: {drawn:?}"
    );
    assert!(
        drawn.contains("RESTORE processed 41943040 bytes"),
        "{drawn:?}"
    );
    // --progress none: no bar, the summary alone.
    let (code, drawn) = with_stderr_on_a_pty(
        "bak-read",
        &os(&args!["--progress", "none", "-o", "/dev/null", &d]),
    );
    assert_eq!(code, 0, "{drawn}");
    assert!(
        !drawn.contains("\x1b[2K") && !drawn.contains("ETA"),
        "{drawn:?}"
    );
    assert!(
        drawn.starts_with("RESTORE processed 41943040 bytes"),
        "{drawn:?}"
    );
}
