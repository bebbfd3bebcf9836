//! Issue 8 (hostile environments): a full disk, signals, a concurrent writer, a closed stdout
//! for every tool, odd inputs.

mod util;
use std::io::Write;
use std::process::{Command, Stdio};
use util::*;

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn a_full_disk_stops_every_writer_names_the_device_and_claims_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let t = TempDir::new("full");
    let mnt = t.path("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status();
    if !ok.map(|s| s.success()).unwrap_or(false) {
        eprintln!("SKIPPED: cannot mount tmpfs here");
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
    let big = t.path("roomy.bak");
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
    let t = TempDir::new("sigint");
    let d = t.path("s.bak");
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
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted"), "{err}");
    let h = run("bak-header", &os(&args!["--json", &d]), b"");
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(v["IsComplete"], false);
}

fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child process we spawned and have not waited for yet.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn a_second_writer_on_the_same_media_is_refused() {
    let t = TempDir::new("lock");
    let d = t.path("l.bak");
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

#[test]
fn every_tool_ends_quietly_when_stdout_closes() {
    let t = TempDir::new("head");
    let devs = t.devices("h", 2);
    for i in 0..40 {
        let w = run(
            "bak-write",
            &os(&args!["--quiet", "--max-transfer-size", "64K", &devs]),
            &data(70_000, i),
        );
        assert_eq!(w.code, 0);
    }
    let list: Vec<String> = devs.iter().map(|d| format!("'{}'", d.display())).collect();
    for cmd in [
        "bak-read --quiet",
        "bak-header",
        "bak-header --json",
        "bak-verify",
    ] {
        let mut parts = cmd.split(' ');
        let tool = bin(parts.next().unwrap());
        let rest: Vec<&str> = parts.collect();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' {} {} | head -c 10 > /dev/null; echo ${{PIPESTATUS[0]}}",
                tool.display(),
                rest.join(" "),
                list.join(" ")
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{cmd}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{cmd} printed on a closed pipe"
        );
    }
}

#[test]
fn empty_input_stdin_closed_at_once_and_a_partial_last_block() {
    let t = TempDir::new("odd");
    let d = t.path("e.bak");
    let w = Command::new(bin("bak-write"))
        .arg("--quiet")
        .arg(&d)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(w.status.success());
    let r = run("bak-read", &os(&args!["--quiet", &d]), b"");
    assert_eq!(r.code, 0);
    assert!(r.stdout.is_empty());
    let h = run("bak-header", &os(&args!["--json", &d]), b"");
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(v["BackupSize"], 0);
    assert_eq!(v["IsComplete"], true);
    let odd = data((1 << 20) + 12345, 3);
    let w = run("bak-write", &os(&args!["--quiet", &d]), &odd);
    assert_eq!(w.code, 0);
    assert!(run("bak-read", &os(&args!["--quiet", "--file", "2", &d]), b"").stdout == odd);
}

#[test]
fn a_directory_a_missing_path_and_an_unreadable_device_are_clear_errors() {
    let t = TempDir::new("paths");
    for tool in ["bak-read", "bak-header", "bak-verify"] {
        let o = run(tool, &os(&args![&t.0]), b"");
        assert_eq!(o.code, 2, "{tool}");
        assert!(o.stderr.contains("is a directory"), "{tool}: {}", o.stderr);
        let o = run(tool, &os(&args![&t.path("nope.bak")]), b"");
        assert_eq!(o.code, 2, "{tool}");
        assert!(o.stderr.contains("nope.bak"), "{tool}: {}", o.stderr);
    }
    let d = t.path("secret.bak");
    assert_eq!(run("bak-write", &os(&args!["--quiet", &d]), b"x").code, 0);
    let ro = t.path("readonly.bak");
    assert_eq!(run("bak-write", &os(&args!["--quiet", &ro]), b"x").code, 0);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Permissions do not bind root: as root, run the tools as nobody (setpriv, util-linux).
    let as_user = |tool: &str, args: &[&std::ffi::OsStr], stdin: &[u8]| -> Output {
        if !is_root() {
            return run(tool, args, stdin);
        }
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin(tool))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().expect("setpriv");
        use std::io::Write;
        let _ = ch.stdin.take().unwrap().write_all(stdin);
        let o = ch.wait_with_output().unwrap();
        Output {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    if is_root() && !have("setpriv") {
        eprintln!("SKIPPED (part): running as root without setpriv to drop privileges");
        return;
    }
    for tool in ["bak-read", "bak-header", "bak-verify"] {
        let o = as_user(tool, &os(&args![&d]), b"");
        assert_eq!(o.code, 2, "{tool}: {}", o.stderr);
        assert!(
            o.stderr.contains("secret.bak") && o.stderr.contains("ermission"),
            "{tool}: {}",
            o.stderr
        );
    }
    // Appending to media one may read but not write: refused, the media untouched.
    let before = std::fs::read(&ro).unwrap();
    let o = as_user("bak-write", &os(&args!["--quiet", &ro]), b"more");
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("readonly.bak") && o.stderr.contains("ermission"),
        "{}",
        o.stderr
    );
    assert!(std::fs::read(&ro).unwrap() == before);
}

/// Wait (up to 20 s) until a writer has put its media header on the device: by then it holds
/// the lock and its signal handlers are installed.
fn wait_for_label(d: &std::path::Path) {
    for _ in 0..2000 {
        if std::fs::metadata(d)
            .map(|m| m.len() >= 8192)
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never got its media header", d.display());
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
        eprintln!("SKIPPED: no `script` (util-linux) to give the tools a terminal");
        return;
    }
    let t = TempDir::new("tty");
    let input = t.path("in");
    std::fs::write(&input, data(40 << 20, 5)).unwrap();
    let (bw, br) = (bin("bak-write"), bin("bak-read"));
    let dev = t.path("d.bak");
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
    let quiet = t.path("q.bak");
    let (code, out) = on_a_terminal(&format!(
        "{} -q {} < {}",
        bw.display(),
        quiet.display(),
        input.display()
    ));
    assert_eq!((code, out.as_str()), (0, ""));
}
