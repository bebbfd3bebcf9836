//! Issue 2: bak-write stripes a stream onto a media set and bak-read restores it byte for byte,
//! through real pipes, FIFOs and files; every failure has its message and exit code.

mod util;
use std::process::{Command, Stdio};
use util::*;

const MTS: usize = 64 << 10;

fn write(devs: &[std::path::PathBuf], extra: &[&str], input: &[u8]) -> Output {
    let mut a = args!["--quiet"];
    a.extend(extra.iter().map(|s| s.into()));
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-write", &os(&a), input)
}

fn read(devs: &[std::path::PathBuf], extra: &[&str]) -> Output {
    let mut a = args!["--quiet"];
    a.extend(extra.iter().map(|s| s.into()));
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-read", &os(&a), b"")
}

#[test]
fn round_trips_every_boundary_size_on_1_2_3_8_devices_compressed_or_not() {
    let t = TempDir::new("rt");
    for &n in &[1usize, 2, 3, 8] {
        for &size in &[0usize, 1, MTS - 1, MTS, MTS + 1, 5 * MTS + 17] {
            for codec in ["none", "zstd:3"] {
                let devs = t.devices(&format!("n{n}s{size}{}", &codec[..4]), n);
                let input = data(size, (n * 1000 + size) as u64);
                let w = write(
                    &devs,
                    &["--max-transfer-size", "64K", "--compress", codec],
                    &input,
                );
                assert_eq!(w.code, 0, "write n={n} size={size} {codec}: {}", w.stderr);
                let mut shuffled = devs.clone();
                shuffled.reverse();
                shuffled.rotate_left(n / 2);
                let r = read(&shuffled, &[]);
                assert_eq!(r.code, 0, "read n={n} size={size} {codec}: {}", r.stderr);
                assert!(r.stdout == input, "bytes differ: n={n} size={size} {codec}");
            }
        }
    }
}

#[test]
fn a_few_hundred_mib_round_trip_through_pipes() {
    let t = TempDir::new("big");
    let input = data(300 << 20, 7);
    for codec in ["none", "zstd:1"] {
        let devs = t.devices(codec, 3);
        let w = write(&devs, &["--compress", codec], &input);
        assert_eq!(w.code, 0, "{}", w.stderr);
        let r = read(&devs, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout == input, "300 MiB {codec} differs");
        for d in &devs {
            std::fs::remove_file(d).unwrap();
        }
    }
}

#[test]
fn every_family_is_a_zstd_stream_and_a_single_device_decodes_with_zstd() {
    if !have("zstd") {
        eprintln!("SKIPPED: the zstd command is not installed (apt-get install zstd)");
        return;
    }
    let t = TempDir::new("zstd");
    let input = data(3 * MTS + 5, 3);
    for codec in ["none", "zstd:1", "zstd:9"] {
        let devs = t.devices(codec, 3);
        assert_eq!(
            write(
                &devs,
                &["--max-transfer-size", "64K", "--compress", codec],
                &input
            )
            .code,
            0
        );
        for d in &devs {
            let st = Command::new("zstd")
                .arg("-t")
                .arg("-q")
                .arg(d)
                .status()
                .unwrap();
            assert!(st.success(), "zstd -t fails on {}", d.display());
        }
        let one = t.path(&format!("one-{codec}.bak"));
        assert_eq!(
            write(std::slice::from_ref(&one), &["--compress", codec], &input).code,
            0
        );
        let o = Command::new("zstd").arg("-dc").arg(&one).output().unwrap();
        assert!(o.status.success());
        assert!(
            o.stdout == input,
            "zstd -dc of a one-device {codec} set differs from the input"
        );
    }
    // The empty input is a valid zstd stream too, decoding to nothing.
    let empty = t.path("empty.bak");
    assert_eq!(write(std::slice::from_ref(&empty), &[], b"").code, 0);
    let o = Command::new("zstd")
        .arg("-dc")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stdout.is_empty());
}

fn mkfifo(p: &std::path::Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

#[test]
fn fifos_for_writing_and_reading_at_once() {
    // bak-write writes into three FIFOs that bak-read reads at the same time.
    let t = TempDir::new("fifo");
    let devs = t.devices("f", 3);
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
    let t = TempDir::new("fifo2");
    let devs = t.devices("f", 2);
    let input = data(9 * MTS, 5);
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    let fifos = t.devices("p", 2);
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
fn media_set_errors_name_the_family_and_file() {
    let t = TempDir::new("set");
    let devs = t.devices("a", 3);
    let other = t.devices("b", 3);
    let input = data(10 * MTS, 1);
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    assert_eq!(
        write(&other, &["--max-transfer-size", "64K"], &input).code,
        0
    );

    let r = read(&devs[..2], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("family 3 is missing"), "{}", r.stderr);

    let r = read(&[devs[0].clone(), devs[1].clone(), devs[1].clone()], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("family 2 given twice"), "{}", r.stderr);

    let r = read(&[devs[0].clone(), devs[1].clone(), other[2].clone()], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("another media set") && r.stderr.contains("b3.bak"),
        "{}",
        r.stderr
    );

    let r = read(&devs, &["--file", "2"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("backup set 2 is not on the media"),
        "{}",
        r.stderr
    );
}

#[test]
fn damage_stops_the_restore_with_exit_1_naming_block_and_offset() {
    let t = TempDir::new("dmg");
    let devs = t.devices("d", 2);
    let input = data(20 * MTS, 2);
    assert_eq!(
        write(
            &devs,
            &["--max-transfer-size", "64K", "--compress", "zstd:1"],
            &input
        )
        .code,
        0
    );
    let original = std::fs::read(&devs[1]).unwrap();
    let mut bytes = original.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&devs[1], &bytes).unwrap();
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("d2.bak") && r.stderr.contains("family 2") && r.stderr.contains("offset"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.len() < input.len() && input.starts_with(&r.stdout),
        "wrong bytes passed on"
    );

    // Truncated family: the set is incomplete.
    std::fs::write(&devs[1], &original).unwrap();
    let b = std::fs::read(&devs[0]).unwrap();
    std::fs::write(&devs[0], &b[..b.len() - 300]).unwrap();
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("d1.bak"), "{}", r.stderr);
}

#[test]
fn refuses_to_overwrite_foreign_data_and_keeps_it() {
    let t = TempDir::new("ow");
    let f = t.path("precious.txt");
    std::fs::write(&f, b"my thesis").unwrap();
    let w = write(std::slice::from_ref(&f), &[], b"data");
    assert_eq!(w.code, 2);
    assert!(
        w.stderr.contains("precious.txt") && w.stderr.contains("--format"),
        "{}",
        w.stderr
    );
    assert_eq!(std::fs::read(&f).unwrap(), b"my thesis");
    // --format is the explicit request.
    let w = write(std::slice::from_ref(&f), &["--format"], b"data");
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(read(std::slice::from_ref(&f), &[]).stdout, b"data");
}

#[test]
fn usage_and_io_errors_exit_2_with_a_named_file() {
    let t = TempDir::new("usage");
    let d = t.path("x.bak");
    for (extra, needle) in [
        (vec!["--compress", "gzip"], "--compress"),
        (vec!["--max-transfer-size", "100K"], "--max-transfer-size"),
        (vec!["--max-transfer-size", "8M"], "--max-transfer-size"),
        (vec!["--input", "/nonexistent/input"], "/nonexistent/input"),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ] {
        let w = write(std::slice::from_ref(&d), &extra, b"x");
        assert_eq!(w.code, 2, "{extra:?}: {}", w.stderr);
        assert!(w.stderr.contains(needle), "{extra:?}: {}", w.stderr);
    }
    let w = write(std::slice::from_ref(&t.0), &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("is a directory"), "{}", w.stderr);
    let w = write(&[d.clone(), d.clone()], &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("given twice"), "{}", w.stderr);
    let w = write(&[t.path("no/such/dir/x.bak")], &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("no/such/dir/x.bak"), "{}", w.stderr);

    let junk = t.path("junk");
    std::fs::write(&junk, b"hello, not media").unwrap();
    let r = read(std::slice::from_ref(&junk), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("junk") && r.stderr.contains("not backup media"),
        "{}",
        r.stderr
    );
    let r = read(&[t.path("missing.bak")], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.bak"), "{}", r.stderr);
}

#[test]
fn broken_pipe_on_stdout_ends_bak_read_quietly() {
    let t = TempDir::new("pipe");
    let d = t.path("p.bak");
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
fn a_dead_pipe_on_one_device_stops_the_write_naming_it() {
    let t = TempDir::new("dead");
    let f = t.path("fifo");
    mkfifo(&f);
    let other = t.path("ok.bak");
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
fn summary_line_and_json() {
    let t = TempDir::new("sum");
    let d = t.path("s.bak");
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
fn a_slow_device_takes_fewer_blocks_instead_of_stalling_the_others() {
    // One family is a FIFO read slowly (a 64 KiB read every 20 ms), the other a file: blocks
    // go to whichever device is free, so the file takes most of them.
    let t = TempDir::new("slow");
    let fast = t.path("fast.bak");
    let slow = t.path("slow.fifo");
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

#[test]
fn stats_prints_a_plain_line_every_n_percent_and_quiet_silences_it() {
    let t = TempDir::new("stats");
    let input = t.path("in.bin");
    std::fs::write(&input, data(64 * MTS, 6)).unwrap();
    let d = t.path("s.bak");
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
