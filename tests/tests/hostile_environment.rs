//! Hostile environments: a full disk, a signal, a second writer on the same media. The writer
//! stops naming the device, and no set is claimed complete that is not.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn a_full_disk_stops_every_writer_names_the_device_and_claims_nothing() {
    if !is_root() {
        skip("mounting a small tmpfs needs root");
        return;
    }
    let t = temp_dir("full");
    let mnt = t.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status();
    if !ok.map(|s| s.success()).unwrap_or(false) {
        skip("cannot mount tmpfs here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let small = mnt.join("full.bak");
    let big = t.path().join("roomy.bak");
    let w = run(
        "bak-write",
        &os(&args!["--quiet", &big, &small]),
        &data(64 << 20, 1),
    );
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(
        w.stderr.contains("full.bak") && w.stderr.contains("no space left"),
        "{}",
        w.stderr
    );
    // Nothing claims a complete set.
    let h = run("bak-header", &os(&args!["--json", &big, &small]), b"");
    for line in String::from_utf8_lossy(&h.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["IsComplete"], false);
    }
    let r = run("bak-read", &os(&args![&big, &small]), b"");
    assert_ne!(r.code, 0);
}

#[test]
fn sigint_leaves_the_set_incomplete() {
    let t = temp_dir("sigint");
    let d = t.path().join("s.bak");
    let mut child = Command::new(bin("bak-write"))
        .arg("--quiet")
        .arg(&d)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    si.write_all(&data(3 << 20, 1)).unwrap();
    wait_for_label(&d);
    send_signal(child.id(), libc::SIGINT);
    // Upstream ends too, as it would on a terminal's Ctrl-C.
    drop(si);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("interrupted by SIGINT") && err.contains("left incomplete"),
        "{err}"
    );
    let h = run("bak-header", &os(&args!["--json", &d]), b"");
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(v["IsComplete"], false);
}

#[test]
fn a_second_writer_on_the_same_media_is_refused() {
    let t = temp_dir("lock");
    let d = t.path().join("l.bak");
    let mut first = Command::new(bin("bak-write"))
        .arg("--quiet")
        .arg(&d)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = first.stdin.take().unwrap();
    si.write_all(b"first writer").unwrap();
    wait_for_label(&d);
    let second = run("bak-write", &os(&args!["--quiet", &d]), b"second writer");
    assert_eq!(second.code, 2);
    assert!(
        second.stderr.contains("in use by another bak process"),
        "{}",
        second.stderr
    );
    // A verification meanwhile is refused too (it maps the file under a shared lock).
    let v = run("bak-verify", &os(&args![&d]), b"");
    assert_eq!(v.code, 2);
    assert!(
        v.stderr.contains("being written by another bak process"),
        "{}",
        v.stderr
    );
    drop(si);
    assert!(first.wait().unwrap().success());
    let r = run("bak-read", &os(&args!["--quiet", &d]), b"");
    assert_eq!(r.stdout, b"first writer");
    assert_eq!(run("bak-verify", &os(&args![&d]), b"").code, 0);
}
