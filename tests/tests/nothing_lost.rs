//! Nothing the user has is lost: an output that is an input is refused, an existing file is
//! replaced only when asked, a failed or interrupted restore leaves no partial file under the
//! final name, and a refused backup changes no device. Each test checks the user's bytes are
//! byte for byte what they were.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

/// Two sets on one device and three families of another media set, with their bytes.
struct Media {
    t: tempfile::TempDir,
    one: std::path::PathBuf,
    fams: Vec<std::path::PathBuf>,
    input: Vec<u8>,
}

fn media() -> Media {
    let t = temp_dir("lost");
    let one = t.path().join("one.bak");
    let input = data(1_000_000, 7);
    // 64 KiB blocks: a restore cut short has written some of them.
    assert_eq!(
        write(
            std::slice::from_ref(&one),
            &["--max-transfer-size", "64K"],
            &input
        )
        .code,
        0
    );
    assert_eq!(
        write(std::slice::from_ref(&one), &[], b"second set").code,
        0
    );
    let fams = devices(&t, "f", 3);
    assert_eq!(
        write(&fams, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    Media {
        t,
        one,
        fams,
        input,
    }
}

fn snapshot(paths: &[&Path]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| fs::read(p).unwrap()).collect()
}

#[test]
fn an_output_that_is_an_input_is_refused_by_name_link_and_hard_link() {
    let m = media();
    let before = snapshot(&[&m.fams[0], &m.fams[1], &m.fams[2]]);
    let sym = m.t.path().join("sym.bak");
    std::os::unix::fs::symlink(&m.fams[1], &sym).unwrap();
    let hard = m.t.path().join("hard.bak");
    fs::hard_link(&m.fams[2], &hard).unwrap();
    for out in [&m.fams[1], &sym, &hard] {
        for force in [false, true] {
            let mut a = args!["-o", out];
            if force {
                a.push("--force".into());
            }
            a.extend(m.fams.iter().map(|p| p.into()));
            let r = run("bak-read", &os(&a), b"");
            assert_eq!(r.code, 2, "{}", r.stderr);
            assert!(
                r.stderr.contains("one of the inputs") && r.stderr.contains("nothing was changed"),
                "{}",
                r.stderr
            );
        }
    }
    assert_eq!(snapshot(&[&m.fams[0], &m.fams[1], &m.fams[2]]), before);
    // The media still restore.
    assert_eq!(read(&m.fams, &[]).stdout, m.input);
}

#[test]
fn a_standard_output_that_is_an_input_is_refused_by_every_tool() {
    let m = media();
    let before = fs::read(&m.one).unwrap();
    for (tool, extra) in [
        ("bak-read", vec![]),
        ("bak-header", vec![]),
        ("bak-header", vec!["--labelonly"]),
        ("bak-verify", vec![]),
    ] {
        // `TOOL one.bak >> one.bak`
        let out = fs::OpenOptions::new().append(true).open(&m.one).unwrap();
        let r = Command::new(bin(tool))
            .args(&extra)
            .arg(&m.one)
            .stdout(Stdio::from(out))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{tool}: {err}");
        assert!(
            err.contains("standard output") && err.contains("one.bak"),
            "{err}"
        );
        assert_eq!(
            fs::read(&m.one).unwrap(),
            before,
            "{tool} changed the media"
        );
    }
    // `bak-write --json DEVICE >> DEVICE`: the summary would land on the media.
    let out = fs::OpenOptions::new().append(true).open(&m.one).unwrap();
    let r = Command::new(bin("bak-write"))
        .args(["--quiet", "--json"])
        .arg(&m.one)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("standard output"));
    assert_eq!(fs::read(&m.one).unwrap(), before);
}

#[test]
fn bak_write_refuses_an_input_that_is_one_of_its_devices() {
    let m = media();
    let before = fs::read(&m.one).unwrap();
    for extra in [&[][..], &["--init"][..], &["--format"][..]] {
        // `bak-write -i X X`
        let mut a = args!["--quiet", "-i", &m.one];
        a.extend(extra.iter().map(|s| s.into()));
        a.push(m.one.clone().into());
        let r = run("bak-write", &os(&a), b"");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("one of the inputs"), "{}", r.stderr);
        // `bak-write X < X`
        let f = fs::File::open(&m.one).unwrap();
        let r = Command::new(bin("bak-write"))
            .arg("--quiet")
            .args(extra)
            .arg(&m.one)
            .stdin(Stdio::from(f))
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&r.stderr).contains("standard input"));
        assert_eq!(fs::read(&m.one).unwrap(), before);
    }
}

#[test]
fn an_existing_output_is_replaced_only_with_force() {
    let m = media();
    let out = m.t.path().join("restored");
    fs::write(&out, b"precious").unwrap();
    let r = read(std::slice::from_ref(&m.one), &["-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    let r = read(
        std::slice::from_ref(&m.one),
        &["-f", "-o", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::read(&out).unwrap(), m.input);
    // A new file gets the usual permissions, not a temporary file's 0600.
    use std::os::unix::fs::PermissionsExt;
    let fresh = m.t.path().join("fresh");
    assert_eq!(
        read(
            std::slice::from_ref(&m.one),
            &["-o", fresh.to_str().unwrap()]
        )
        .code,
        0
    );
    let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0o600, "mode {mode:o}");
    assert_eq!(mode & 0o044, 0o044 & !umask_of_tests(), "mode {mode:o}");
}

fn umask_of_tests() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[test]
fn a_failed_restore_leaves_no_partial_file_and_keeps_the_old_one() {
    let m = media();
    // Cut the device inside the data of set 1.
    let cut = m.t.path().join("cut.bak");
    let bytes = fs::read(&m.one).unwrap();
    fs::write(&cut, &bytes[..700_000]).unwrap();
    let dir = m.t.path().join("out");
    fs::create_dir(&dir).unwrap();
    let out = dir.join("restored");
    let r = read(std::slice::from_ref(&cut), &["-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cut.bak"), "{}", r.stderr);
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    // The restore wrote something before it failed, and says it removed it.
    assert!(
        r.stderr.contains("removed the partial output"),
        "{}",
        r.stderr
    );
    // With --force over an existing file, a failure leaves the old file as it was.
    fs::write(&out, b"yesterday's restore").unwrap();
    let r = read(
        std::slice::from_ref(&cut),
        &["--force", "-o", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert_eq!(fs::read(&out).unwrap(), b"yesterday's restore");
    assert_eq!(names_in(&dir), ["restored"]);
    // --keep-partial keeps what was written: a prefix of the data.
    let kept = dir.join("kept");
    let r = read(
        std::slice::from_ref(&cut),
        &["--keep-partial", "-o", kept.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("kept the partial output"), "{}", r.stderr);
    let k = fs::read(&kept).unwrap();
    assert!(!k.is_empty() && k.len() < m.input.len());
    assert_eq!(&m.input[..k.len()], &k[..]);
    assert_eq!(names_in(&dir), ["kept", "restored"]);
}

#[test]
fn an_interrupted_restore_leaves_no_partial_file() {
    let m = media();
    let dir = m.t.path().join("out");
    fs::create_dir(&dir).unwrap();
    let out = dir.join("restored");
    // A FIFO fed the first part of the media, then silence: the restore is under way and
    // waiting when the signal comes.
    let fifo = m.t.path().join("feed");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let bytes = fs::read(&m.one).unwrap();
    let mut child = Command::new(bin("bak-read"))
        .arg("-o")
        .arg(&out)
        .arg(&fifo)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    use std::io::Write;
    w.write_all(&bytes[..600_000]).unwrap();
    // Wait until the temporary file has bytes in it.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !names_in(&dir)
        .iter()
        .any(|n| n.ends_with(".part") && fs::metadata(dir.join(n)).is_ok_and(|m| m.len() > 0))
    {
        assert!(
            std::time::Instant::now() < until,
            "no partial output appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    send_signal(child.id(), libc::SIGINT);
    let st = wait_within(&mut child, 10, "bak-read after SIGINT");
    drop(w);
    assert_eq!(st.code(), Some(130));
    let err = stderr_text(&mut child);
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(err.contains("removed the partial output"), "{err}");
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
}

#[test]
fn a_text_field_beyond_its_limit_is_refused_before_anything_is_written() {
    let m = media();
    let before = fs::read(&m.one).unwrap();
    let long = "é".repeat(40_000);
    for (flag, limit) in [
        ("--name", 128),
        ("--description", 255),
        ("--media-name", 128),
        ("--media-description", 255),
    ] {
        let r = write(std::slice::from_ref(&m.one), &[flag, &long], b"data");
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.contains(flag)
                && r.stderr.contains("40000 characters")
                && r.stderr.contains(&format!("limit is {limit}")),
            "{}",
            r.stderr
        );
        assert_eq!(
            fs::read(&m.one).unwrap(),
            before,
            "{flag} changed the media"
        );
        // No new device is created either.
        let fresh = m.t.path().join("fresh.bak");
        assert_eq!(
            write(std::slice::from_ref(&fresh), &[flag, &long], b"x").code,
            2
        );
        assert!(!fresh.exists());
    }
    // At the limit, in characters of any width, the set is written and reads back.
    let at = "é".repeat(128);
    assert_eq!(
        write(std::slice::from_ref(&m.one), &["--name", &at], b"third").code,
        0
    );
    let h = run("bak-header", &os(&args!["--json", &m.one]), b"");
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["BackupName"], at.as_str());
    assert_eq!(
        read(std::slice::from_ref(&m.one), &["--file", "1"]).stdout,
        m.input
    );
    assert_eq!(run("bak-verify", &os(&args![&m.one]), b"").code, 0);
}

#[test]
fn thread_and_buffer_counts_are_bounded_with_a_clear_error() {
    let t = temp_dir("bounds");
    let d = t.path().join("b.bak");
    for (tool, a) in [
        ("bak-write", args!["-T", "100000", &d]),
        ("bak-write", args!["-T", "20000", &d]),
        ("bak-write", args!["-T", "0", &d]),
        ("bak-write", args!["--buffer-count", "100000000", &d]),
        ("bak-write", args!["--buffer-count", "1", &d]),
    ] {
        let r = run(tool, &os(&a), b"data");
        assert_eq!(r.code, 2, "{tool} {a:?}: {}", r.stderr);
        assert!(r.stderr.contains("out of range"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(!d.exists(), "{a:?} left a device behind");
    }
    assert_eq!(write(std::slice::from_ref(&d), &[], b"data").code, 0);
    let before = fs::read(&d).unwrap();
    for (tool, a) in [
        ("bak-read", args!["-T", "100000", &d]),
        ("bak-read", args!["--buffer-count", "100000000", &d]),
        ("bak-verify", args!["-T", "100000", &d]),
        ("bak-verify", args!["-T", "0", &d]),
    ] {
        let r = run(tool, &os(&a), b"");
        assert_eq!(r.code, 2, "{tool} {a:?}: {}", r.stderr);
        assert!(r.stderr.contains("out of range"), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    assert_eq!(fs::read(&d).unwrap(), before);
}
