//! Reed-Solomon parity families (`bak-write --parity K`): any K families lost or damaged, the
//! set still restores byte for byte; more than K, the restore fails naming the families.

use std::path::PathBuf;

use bak_core::bytes::Codec;
use bak_core::device::{MemDevice, ReadDevice, WriteDevice};
use bak_core::{backup, open_devices, restore, BackupOptions, RestoreOptions, Stop};

use crate::util::*;

fn opts(codec: Codec, parity: u16) -> BackupOptions {
    BackupOptions {
        codec,
        max_transfer: MTS as u32,
        sync: false,
        parity,
        threads: 2,
        ..Default::default()
    }
}

fn write_mem(n: usize, input: &[u8], o: &BackupOptions) -> Vec<MemDevice> {
    let devs: Vec<MemDevice> = (1..=n).map(|i| MemDevice::new(format!("m{i}"))).collect();
    let targets: Vec<Box<dyn WriteDevice>> = devs
        .iter()
        .map(|d| Box::new(d.handle()) as Box<dyn WriteDevice>)
        .collect();
    backup(&mut &input[..], "input", targets, o, &|_| {}, &Stop::new()).unwrap();
    devs
}

/// Restore from `devs` (files or streams as `streams` says), in the order given.
fn restore_mem(
    devs: &[&MemDevice],
    streams: bool,
) -> bak_core::Result<(Vec<u8>, bak_core::RestoreSummary)> {
    let handles: Vec<Box<dyn ReadDevice>> = devs
        .iter()
        .map(|d| Box::new(if streams { d.stream() } else { d.handle() }) as Box<dyn ReadDevice>)
        .collect();
    let mut out = Vec::new();
    let s = restore(
        open_devices(handles)?,
        &RestoreOptions {
            threads: 2,
            ..Default::default()
        },
        &mut out,
        "out",
        &|_| {},
        &Stop::new(),
    )?;
    Ok((out, s))
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Offsets of every record with this tag on a family (the frame starts 8 bytes before).
fn records(bytes: &[u8], tag: &[u8; 4]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == tag)
        .map(|(i, _)| i - 8)
        .collect()
}

#[test]
fn every_loss_of_up_to_k_families_restores_exact() {
    let mut rng = Rng::new(14);
    let mut runs = 0;
    for n in 2..=8usize {
        for k in 1..=3usize.min(n - 1) {
            let d = n - k;
            // One full stripe and a short one; compressed and not, in turn.
            let codec = if (n + k) % 2 == 0 {
                Codec::None
            } else {
                Codec::Zstd(1)
            };
            let input = data((d + 1) * MTS + 777, (n * 10 + k) as u64);
            let devs = write_mem(n, &input, &opts(codec, k as u16));
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize > k {
                    continue;
                }
                let mut given: Vec<&MemDevice> = (0..n)
                    .filter(|i| mask & (1 << i) == 0)
                    .map(|i| &devs[i])
                    .collect();
                shuffle(&mut given, &mut rng);
                let streams = rng.below(2) == 0;
                let (out, s) = restore_mem(&given, streams).unwrap_or_else(|e| {
                    panic!("N {n} K {k} {codec} lost {mask:b}: {e}");
                });
                assert!(
                    out == input,
                    "N {n} K {k} {codec} lost {mask:b}: output differs"
                );
                let r = s
                    .redundancy
                    .expect("a set with parity reports its redundancy");
                let lost: Vec<u16> = (0..n as u16)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| i + 1)
                    .collect();
                assert_eq!(r.missing, lost, "N {n} K {k} lost {mask:b}");
                let data_lost = lost.iter().filter(|&&f| (f as usize) <= d).count();
                assert_eq!(
                    r.rebuilt_blocks > 0,
                    data_lost > 0,
                    "N {n} K {k} lost {mask:b}: {r:?}"
                );
                runs += 1;
            }
        }
    }
    assert!(runs > 300, "{runs} restores");
}

#[test]
fn more_than_k_losses_fail_naming_the_families() {
    let input = data(5 * MTS, 3);
    let devs = write_mem(4, &input, &opts(Codec::None, 1));
    let e = restore_mem(&[&devs[0], &devs[3]], false).unwrap_err();
    let msg = e.to_string();
    assert!(e.is_media_damage(), "{msg}");
    assert!(msg.contains("family 2, 3"), "{msg}");
}

/// Flip one byte of family `f`'s record `nth` with this tag: in its payload, or in its header.
fn flip(dev: &MemDevice, tag: &[u8; 4], nth: usize, in_header: bool) {
    dev.edit(|b| {
        let at = records(b, tag)[nth];
        let body_len = u32::from_le_bytes(b[at + 16..at + 20].try_into().unwrap()) as usize;
        let pos = if in_header {
            at + 32 + 20
        } else {
            at + 32 + body_len + 40
        };
        b[pos] ^= 0x10;
    });
}

#[test]
fn flipped_bits_in_up_to_k_families_per_stripe_heal() {
    let (n, k) = (6, 2);
    let d = n - k;
    for codec in [Codec::None, Codec::Zstd(1)] {
        let stripes = 4;
        let input = data(stripes * d * MTS - 100, 21);
        let clean = write_mem(n, &input, &opts(codec, k as u16));
        let mut rng = Rng::new(99);
        for round in 0..3 {
            let devs: Vec<MemDevice> = clean
                .iter()
                .enumerate()
                .map(|(i, m)| MemDevice::with_bytes(format!("c{round}-{i}"), m.to_vec()))
                .collect();
            // Each stripe: payloads of two distinct families (data block or parity shard).
            for s in 0..stripes {
                let a = rng.below(n as u64) as usize;
                let b = (a + 1 + rng.below(n as u64 - 1) as usize) % n;
                for f in [a, b] {
                    let tag = if f < d { b"BKBH" } else { b"BKPB" };
                    flip(&devs[f], tag, s, false);
                }
            }
            let all: Vec<&MemDevice> = devs.iter().collect();
            let (out, s) = restore_mem(&all, round % 2 == 0).unwrap();
            assert!(out == input, "{codec} round {round}: output differs");
            let r = s.redundancy.unwrap();
            assert_eq!(
                r.damaged_blocks.len() + r.damaged_parity.len(),
                2 * stripes,
                "{r:?}"
            );
            assert_eq!(r.rebuilt_blocks as usize, r.damaged_blocks.len());
        }
        // A block header that fails its CRC loses its family from there; another family's
        // damaged payload in an earlier stripe still heals.
        let devs: Vec<MemDevice> = clean
            .iter()
            .enumerate()
            .map(|(i, m)| MemDevice::with_bytes(format!("h{i}"), m.to_vec()))
            .collect();
        flip(&devs[1], b"BKBH", 2, true);
        flip(&devs[n - 1], b"BKPB", 0, false);
        flip(&devs[0], b"BKBH", 0, false);
        let all: Vec<&MemDevice> = devs.iter().collect();
        let (out, s) = restore_mem(&all, false).unwrap();
        assert!(out == input, "{codec}: header damage: output differs");
        let r = s.redundancy.unwrap();
        assert_eq!(
            r.lost.iter().map(|l| l.0).collect::<Vec<_>>(),
            vec![2],
            "{r:?}"
        );
    }
}

fn files(t: &tempfile::TempDir, n: usize) -> Vec<PathBuf> {
    devices(t, "p", n)
}

#[test]
fn the_tools_restore_with_families_missing_and_say_so() {
    let t = temp_dir("parity-cli");
    let devs = files(&t, 5);
    let input = data(11 * MTS + 5, 8);
    let w = write(
        &devs,
        &[
            "--max-transfer-size",
            "64K",
            "--parity",
            "2",
            "-c",
            "zstd:1",
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    if have("zstd") {
        for d in &devs {
            let st = std::process::Command::new("zstd")
                .arg("-tq")
                .arg(d)
                .status()
                .unwrap();
            assert!(st.success(), "zstd -t {}", d.display());
        }
    }
    // bak-header says which families hold parity, and how many.
    let h = run(
        "bak-header",
        &os(&{
            let mut a = args!["--json"];
            a.extend(devs.iter().map(|p| p.into()));
            a
        }),
        b"",
    );
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert_eq!(json_lines(&h.stdout)[0]["ParityFamilyCount"], 2);
    for (i, d) in devs.iter().enumerate() {
        let l = run("bak-header", &os(&args!["--labelonly", "--json", d]), b"");
        let v = &json_lines(&l.stdout)[0];
        assert_eq!(
            v["FamilyRole"],
            if i < 3 { "data" } else { "parity" },
            "family {}",
            i + 1
        );
    }
    // Two missing (one data, one parity), given in another order: exact, and a note.
    let given = vec![devs[4].clone(), devs[0].clone(), devs[2].clone()];
    let mut a = args![];
    a.extend(given.iter().map(|p| p.into()));
    let r = run("bak-read", &os(&a), b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
    assert!(r.stderr.contains("family 2, 4 missing"), "{}", r.stderr);
    assert!(r.stderr.contains("rebuilt from parity"), "{}", r.stderr);
    // --quiet silences it.
    let q = read(&given, &[]);
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert!(!q.stderr.contains("missing"), "{}", q.stderr);
    // Three missing: exit 1 naming them.
    let r = read(&[devs[0].clone(), devs[2].clone()], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("family 2, 4, 5"), "{}", r.stderr);
}

#[test]
fn parity_is_refused_before_any_device_is_touched() {
    let t = temp_dir("parity-refused");
    let devs = files(&t, 3);
    for k in ["3", "0", "5"] {
        let w = write(&devs, &["--parity", k], b"abc");
        assert_eq!(w.code, 2, "--parity {k}: {}", w.stderr);
        assert!(w.stderr.contains("--parity"), "{}", w.stderr);
        for d in &devs {
            assert!(!d.exists(), "--parity {k} created {}", d.display());
        }
    }
}

#[test]
fn appends_keep_the_parity_of_the_media() {
    let t = temp_dir("parity-append");
    let devs = files(&t, 4);
    let one = data(6 * MTS, 1);
    let two = data(4 * MTS + 9, 2);
    let o = ["--max-transfer-size", "64K", "--parity", "1"];
    assert_eq!(write(&devs, &o, &one).code, 0);
    assert_eq!(write(&devs, &o, &two).code, 0);
    let w = write(
        &devs,
        &["--max-transfer-size", "64K", "--parity", "2"],
        &two,
    );
    assert_ne!(w.code, 0);
    assert!(w.stderr.contains("1 parity famil"), "{}", w.stderr);
    let w = write(&devs, &["--max-transfer-size", "64K"], &two);
    assert_ne!(w.code, 0, "an append without --parity to media with parity");
    for (pos, want) in [("1", &one), ("2", &two)] {
        let r = read(&devs[1..], &["--file", pos]);
        assert_eq!(r.code, 0, "set {pos}: {}", r.stderr);
        assert!(r.stdout == *want, "set {pos}");
    }
}

#[test]
fn parity_through_fifos() {
    let t = temp_dir("parity-fifo");
    let devs = files(&t, 3);
    for d in &devs {
        let st = std::process::Command::new("mkfifo")
            .arg(d)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let input = data(20 * MTS + 3, 4);
    let mut rd = std::process::Command::new(bin("bak-read"))
        .arg("--quiet")
        .args(devs.iter().rev())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = rd.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).unwrap();
        v
    });
    let w = write(
        &devs,
        &["--max-transfer-size", "64K", "--parity", "1"],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let out = rd.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(drain.join().unwrap() == input);
}

#[test]
fn encrypted_set_with_parity_rebuilds_the_ciphertext() {
    let t = temp_dir("parity-enc");
    let pass = t.path().join("pass.txt");
    std::fs::write(&pass, "a parity passphrase\n").unwrap();
    let pass_s = pass.to_str().unwrap();
    let devs = files(&t, 4);
    let input = data(9 * MTS + 1, 6);
    let w = write(
        &devs,
        &[
            "--max-transfer-size",
            "64K",
            "--parity",
            "2",
            "--passphrase-file",
            pass_s,
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    // Without the key, a fast verification of the whole set passes: parity CRCs need none.
    let v = run(
        "bak-verify",
        &os(&{
            let mut a = args!["--fast"];
            a.extend(devs.iter().map(|p| p.into()));
            a
        }),
        b"",
    );
    assert_eq!(
        v.code,
        0,
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        v.stderr
    );
    // Two families lost, one of them data: the sealed blocks are rebuilt and then opened.
    let r = read(
        &[devs[3].clone(), devs[1].clone()],
        &["--passphrase-file", pass_s],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
}
