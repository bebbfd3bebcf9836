//! Devices that are FIFOs or standard input and output, and pipes that break: the tools write
//! and read through them at once, a slow device takes fewer blocks, a closed stdout ends a tool
//! quietly, a dead pipe on a device stops the write naming it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

#[test]
fn fifos_for_writing_and_reading_at_once() {
    // bak-write writes into three FIFOs that bak-read reads at the same time.
    let t = temp_dir("fifo");
    let devs = devices(&t, "f", 3);
    for d in &devs {
        mkfifo(d);
    }
    let input = data(40 * MTS + 3, 11);
    let mut rd = Command::new(bin("bak-read"))
        .arg("--quiet")
        .args(devs.iter().rev())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain bak-read's output while bak-write runs, as a shell pipeline would.
    let mut so = rd.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).unwrap();
        v
    });
    let w = write(
        &devs,
        &["--max-transfer-size", "64K", "--compress", "zstd:1"],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let mut out = rd.wait_with_output().unwrap();
    out.stdout = drain.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == input);
}

#[test]
fn fifos_fed_from_files_and_stdout_device() {
    let t = temp_dir("fifo2");
    let devs = devices(&t, "f", 2);
    let input = data(9 * MTS, 5);
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    let fifos = devices(&t, "p", 2);
    for (f, d) in fifos.iter().zip(&devs) {
        mkfifo(f);
        let (f, d) = (f.clone(), d.clone());
        std::thread::spawn(move || {
            let mut src = std::fs::File::open(d).unwrap();
            let mut dst = std::fs::OpenOptions::new().write(true).open(f).unwrap();
            let _ = std::io::copy(&mut src, &mut dst);
        });
    }
    let r = read(&fifos, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);

    // "-" as a device: media on standard output, read back from standard input.
    let w = run("bak-write", &os(&args!["--quiet", "-"]), &input);
    assert_eq!(w.code, 0, "{}", w.stderr);
    let r = run("bak-read", &os(&args!["--quiet", "-"]), &w.stdout);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
}

#[test]
fn broken_pipe_on_stdout_ends_bak_read_quietly() {
    let t = temp_dir("pipe");
    let d = t.path().join("p.bak");
    assert_eq!(
        write(std::slice::from_ref(&d), &[], &data(8 << 20, 4)).code,
        0
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' '{}' | head -c 100 > /dev/null; echo ${{PIPESTATUS[0]}}",
            bin("bak-read").display(),
            d.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no message on a broken pipe"
    );
}

#[test]
fn every_tool_ends_quietly_when_stdout_closes() {
    let t = temp_dir("head");
    let devs = devices(&t, "h", 2);
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
fn a_dead_pipe_on_one_device_stops_the_write_naming_it() {
    let t = temp_dir("dead");
    let f = t.path().join("fifo");
    mkfifo(&f);
    let other = t.path().join("ok.bak");
    // The reader of the FIFO takes 10 KiB and dies; every block is 1 MiB, more than a pipe holds.
    let fc = f.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut r = std::fs::File::open(fc).unwrap();
        let mut b = vec![0u8; 10 << 10];
        let _ = r.read_exact(&mut b);
    });
    let w = write(
        &[other.clone(), f.clone()],
        &["--max-transfer-size", "1M"],
        &data(64 << 20, 9),
    );
    reader.join().unwrap();
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(w.stderr.contains("fifo"), "{}", w.stderr);
    // What is on the other device does not claim a complete set: it has no end-of-set record.
    let b = std::fs::read(&other).unwrap();
    let tail = &b[b.len().saturating_sub(96)..];
    assert!(
        !tail.windows(4).any(|w| w == b"BKES"),
        "the surviving family claims a complete set"
    );
}

#[test]
fn a_slow_device_takes_fewer_blocks_instead_of_stalling_the_others() {
    // One family is a FIFO read slowly (a 64 KiB read every 20 ms), the other a file: blocks
    // go to whichever device is free, so the file takes most of them.
    let t = temp_dir("slow");
    let fast = t.path().join("fast.bak");
    let slow = t.path().join("slow.fifo");
    mkfifo(&slow);
    let sc = slow.clone();
    let drain = std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(sc).unwrap();
        let mut b = vec![0u8; 64 << 10];
        while f.read(&mut b).map(|n| n > 0).unwrap_or(false) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let out = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--json",
            "--max-transfer-size",
            "64K",
            &fast,
            &slow
        ]),
        &data(200 * MTS, 8),
    );
    drain.join().unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blocks: Vec<u64> = v["FamilyBlocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(blocks.iter().sum::<u64>(), 200);
    assert!(
        blocks[0] > 4 * blocks[1],
        "the slow device took {} of 200 blocks",
        blocks[1]
    );
}
