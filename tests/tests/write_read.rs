//! bak-write stripes a stream onto a media set and bak-read restores it byte for byte: every
//! boundary size, many devices, compressed or not, large inputs, and every family a zstd stream.

use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn round_trips_every_boundary_size_on_1_2_3_8_devices_compressed_or_not() {
    let t = temp_dir("rt");
    for &n in &[1usize, 2, 3, 8] {
        for &size in &[0usize, 1, MTS - 1, MTS, MTS + 1, 5 * MTS + 17] {
            for codec in ["none", "zstd:3"] {
                let devs = devices(&t, &format!("n{n}s{size}{}", &codec[..4]), n);
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
    let t = temp_dir("big");
    let input = data(300 << 20, 7);
    for codec in ["none", "zstd:1"] {
        let devs = devices(&t, codec, 3);
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
        skip("the zstd command is not installed (apt-get install zstd)");
        return;
    }
    let t = temp_dir("zstd");
    let input = data(3 * MTS + 5, 3);
    for codec in ["none", "zstd:1", "zstd:9"] {
        let devs = devices(&t, codec, 3);
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
        let one = t.path().join(format!("one-{codec}.bak"));
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
    let empty = t.path().join("empty.bak");
    assert_eq!(write(std::slice::from_ref(&empty), &[], b"").code, 0);
    let o = Command::new("zstd")
        .arg("-dc")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stdout.is_empty());
}

#[test]
fn empty_input_stdin_closed_at_once_and_a_partial_last_block() {
    let t = temp_dir("odd");
    let d = t.path().join("e.bak");
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
