//! Every tool ends promptly on SIGINT and SIGTERM, in every state (blocked opening a FIFO
//! nobody opens at the other end, blocked reading a silent pipe), with exit status 130.

use std::process::{Child, Command, Stdio};

use crate::util::*;

fn fifo(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    assert!(Command::new("mkfifo").arg(&p).status().unwrap().success());
    p
}

/// Signal a child once it has had time to block, and check it ends within 10 s with 130,
/// saying which signal.
fn ends_on(mut child: Child, sig: i32, what: &str) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what} ended by itself"
    );
    send_signal(child.id(), sig);
    let st = wait_within(&mut child, 10, what);
    let err = stderr_text(&mut child);
    assert_eq!(st.code(), Some(130), "{what}: {err}");
    let name = if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(
        err.contains(&format!("interrupted by {name}")),
        "{what}: {err}"
    );
}

#[test]
fn bak_write_waiting_for_a_fifo_reader_ends_on_sigint_and_sigterm() {
    let t = temp_dir("intw");
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let f = fifo(&t, &format!("w{sig}"));
        let child = Command::new(bin("bak-write"))
            .arg("--quiet")
            .arg(&f)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        ends_on(child, sig, "bak-write on a FIFO nobody reads");
    }
}

#[test]
fn readers_waiting_for_a_fifo_writer_end_on_sigint_and_sigterm() {
    let t = temp_dir("intr");
    for tool in ["bak-read", "bak-verify", "bak-header"] {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let f = fifo(&t, &format!("{tool}{sig}"));
            let child = Command::new(bin(tool))
                .arg(&f)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            ends_on(child, sig, &format!("{tool} on a FIFO nobody writes"));
        }
    }
}

#[test]
fn readers_blocked_on_a_silent_pipe_end_on_a_signal() {
    for tool in ["bak-read", "bak-verify", "bak-header"] {
        // Standard input is a pipe that stays open and says nothing.
        let mut child = Command::new(bin(tool))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        ends_on(
            child,
            libc::SIGTERM,
            &format!("{tool} reading a silent pipe"),
        );
        drop(stdin);
    }
}

#[test]
fn bak_write_reading_a_silent_pipe_ends_and_leaves_earlier_sets_whole() {
    let t = temp_dir("intp");
    let d = t.path().join("m.bak");
    let first = data(200_000, 3);
    assert_eq!(write(std::slice::from_ref(&d), &[], &first).code, 0);
    let mut child = Command::new(bin("bak-write"))
        .arg("--quiet")
        .arg(&d)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    ends_on(child, libc::SIGINT, "bak-write reading a silent pipe");
    drop(stdin);
    // Set 1 is as it was; the interrupted set 2 is incomplete.
    assert_eq!(
        read(std::slice::from_ref(&d), &["--file", "1"]).stdout,
        first
    );
    let h = run("bak-header", &os(&args!["--json", &d]), b"");
    let rows = json_lines(&h.stdout);
    assert_eq!(rows[0]["IsComplete"], true);
    assert!(
        rows.len() == 1 || rows[1]["IsComplete"] == false,
        "{rows:?}"
    );
    // The next append replaces the incomplete set.
    assert_eq!(write(std::slice::from_ref(&d), &[], b"third").code, 0);
    assert_eq!(
        read(std::slice::from_ref(&d), &["--file", "2"]).stdout,
        b"third"
    );
}
