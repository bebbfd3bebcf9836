//! Every flag does what `--help` says: the date forms it lists, bounded day counts, `--file`
//! wherever it is offered, set counts in messages, usage errors as exit 2, and a terminal on
//! standard input refused the way zstd refuses it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use crate::util::*;

fn expiration(dev: &std::path::Path) -> Vec<serde_json::Value> {
    let h = run("bak-header", &os(&args!["--json", dev]), b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    json_lines(&h.stdout)
        .into_iter()
        .map(|r| r["ExpirationDate"].clone())
        .collect()
}

#[test]
fn expire_date_takes_every_form_the_help_lists() {
    let t = temp_dir("exp");
    let d = t.path().join("e.bak");
    for (given, stored) in [
        ("2030-01-01", "2030-01-01T00:00:00Z"),
        ("2030-01-01T10:00", "2030-01-01T10:00:00Z"),
        ("2030-01-01T10:00Z", "2030-01-01T10:00:00Z"),
        ("2030-01-01T10:00:30", "2030-01-01T10:00:30Z"),
        ("2030-01-01T12:00+02:00", "2030-01-01T10:00:00Z"),
        ("2030-01-01T05:00:00-05:00", "2030-01-01T10:00:00Z"),
    ] {
        let r = write(
            std::slice::from_ref(&d),
            &["--init", "--skip", "--expire-date", given],
            b"x",
        );
        assert_eq!(r.code, 0, "{given}: {}", r.stderr);
        assert_eq!(expiration(&d), [stored], "{given}");
    }
    for bad in ["2030-13-01", "tomorrow", "2030-01-01Z", "10000-01-01"] {
        let r = write(
            std::slice::from_ref(&d),
            &["--init", "--skip", "--expire-date", bad],
            b"x",
        );
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("--expire-date"), "{}", r.stderr);
    }
}

#[test]
fn retain_days_beyond_the_year_9999_is_refused() {
    let t = temp_dir("ret");
    let d = t.path().join("r.bak");
    let r = write(
        std::slice::from_ref(&d),
        &["--retain-days", "99999999"],
        b"x",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--retain-days 99999999"), "{}", r.stderr);
    assert!(!d.exists());
    assert_eq!(
        write(std::slice::from_ref(&d), &["--retain-days", "7"], b"x").code,
        0
    );
    let e = expiration(&d);
    let s = e[0].as_str().unwrap();
    assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
}

fn two_sets() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = temp_dir("file");
    let d = t.path().join("two.bak");
    assert_eq!(
        write(std::slice::from_ref(&d), &["--name", "one"], b"1").code,
        0
    );
    assert_eq!(
        write(std::slice::from_ref(&d), &["--name", "two"], b"2").code,
        0
    );
    (t, d)
}

#[test]
fn bak_header_file_picks_one_set() {
    let (_t, d) = two_sets();
    let h = run("bak-header", &os(&args!["--json", "--file", "2", &d]), b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Position"], 2);
    assert_eq!(rows[0]["BackupName"], "two");
    let h = run("bak-header", &os(&args!["--file", "3", &d]), b"");
    assert_eq!(h.code, 2);
    assert!(h.stderr.contains("(they hold 2 sets)"), "{}", h.stderr);
    let h = run(
        "bak-header",
        &os(&args!["--labelonly", "--file", "1", &d]),
        b"",
    );
    assert_eq!(h.code, 2, "{}", h.stderr);
}

#[test]
fn a_missing_set_says_how_many_the_media_hold() {
    let (_t, d) = two_sets();
    for tool in ["bak-verify", "bak-read"] {
        let r = run(tool, &os(&args!["--file", "5", &d]), b"");
        assert_eq!(r.code, 2, "{tool}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("backup set 5 is not on the media (they hold 2 sets)"),
            "{tool}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_device_given_twice_is_a_usage_error_in_every_reader() {
    let (t, d) = two_sets();
    let hard = t.path().join("hard.bak");
    std::fs::hard_link(&d, &hard).unwrap();
    for tool in ["bak-read", "bak-verify", "bak-header"] {
        for other in [&d, &hard] {
            let r = run(tool, &os(&args![&d, other]), b"");
            assert_eq!(r.code, 2, "{tool}: {}", r.stderr);
            assert!(r.stderr.contains("twice"), "{tool}: {}", r.stderr);
        }
    }
}

/// A pseudo-terminal: (controller, the terminal end).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the ints given; the name, termios and
    // window size pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

#[test]
fn bak_write_refuses_a_terminal_on_standard_input() {
    let t = temp_dir("tty");
    let d = t.path().join("t.bak");
    let (_controller, term) = pty();
    let mut child = Command::new(bin("bak-write"))
        .arg(&d)
        .stdin(Stdio::from(term))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_within(&mut child, 10, "bak-write with a terminal on stdin");
    let err = stderr_text(&mut child);
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("terminal") && err.contains("--input"), "{err}");
    assert!(!d.exists(), "a device was made for a refused backup");
    // --input FILE with a terminal on stdin is fine.
    let input = t.path().join("in");
    std::fs::write(&input, b"from a file").unwrap();
    let (_c2, term2) = pty();
    let st = Command::new(bin("bak-write"))
        .arg("--quiet")
        .arg("--input")
        .arg(&input)
        .arg(&d)
        .stdin(Stdio::from(term2))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(read(std::slice::from_ref(&d), &[]).stdout, b"from a file");
}
