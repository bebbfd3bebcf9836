//! Appending sets, INIT, FORMAT, SKIP and expiration, and appends that are safe against a
//! crash: an interrupted append or INIT never costs an earlier set, and nothing is listed
//! complete that is not.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::*;

/// bak-write in 64 KiB blocks (this module's own `write`, over the shared one).
fn write(devs: &[PathBuf], extra: &[&str], input: &[u8]) -> Output {
    let mut a = vec!["--max-transfer-size", "64K"];
    a.extend_from_slice(extra);
    crate::util::write(devs, &a, input)
}

/// Restore set `pos`.
fn read_set(devs: &[PathBuf], pos: u32) -> Output {
    read(devs, &["--file", &pos.to_string()])
}

fn header(devs: &[PathBuf], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut a = args!["--json"];
    a.extend(extra.iter().map(|s| s.into()));
    a.extend(devs.iter().map(|p| p.into()));
    let o = run("bak-header", &os(&a), b"");
    assert_eq!(o.code, 0, "bak-header: {}", o.stderr);
    json_lines(&o.stdout)
}

fn verify(devs: &[PathBuf], pos: u32) -> Output {
    let mut a = args!["--file", pos.to_string()];
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-verify", &os(&a), b"")
}

/// What the tools say must be true: every set listed complete verifies.
fn told_the_truth(devs: &[PathBuf]) {
    for row in header(devs, &[]) {
        if row["IsComplete"] == true {
            let pos = row["Position"].as_u64().unwrap() as u32;
            let v = verify(devs, pos);
            assert_eq!(
                v.code,
                0,
                "set {pos} listed complete but does not verify: {}",
                String::from_utf8_lossy(&v.stdout)
            );
        }
    }
}

#[test]
fn appends_list_and_pick_sets_by_position() {
    let t = temp_dir("append");
    let devs = devices(&t, "a", 2);
    let inputs: Vec<Vec<u8>> = (0..4).map(|i| data(3 * MTS + i * 1000, i as u64)).collect();
    for (i, inp) in inputs.iter().enumerate() {
        let codec = if i % 2 == 0 { "zstd:1" } else { "none" };
        let w = write(
            &devs,
            &["--compress", codec, "--name", &format!("set{}", i + 1)],
            inp,
        );
        assert_eq!(w.code, 0, "{}", w.stderr);
    }
    let rows = header(&devs, &[]);
    assert_eq!(rows.len(), 4);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["Position"], i as u64 + 1);
        assert_eq!(r["BackupName"], format!("set{}", i + 1));
        assert_eq!(
            r["Compressed"],
            i % 2 == 0,
            "compressed and uncompressed sets share the media"
        );
    }
    for (i, inp) in inputs.iter().enumerate() {
        assert!(
            read_set(&devs, i as u32 + 1).stdout == *inp,
            "set {}",
            i + 1
        );
    }
    let v = run("bak-verify", &os(&args![&devs]), b"");
    assert_eq!(v.code, 0);
    assert_eq!(
        String::from_utf8(v.stdout)
            .unwrap()
            .matches("is valid.")
            .count(),
        4
    );
    let l = header(&devs[..1], &["--labelonly"]);
    assert_eq!(l[0]["BackupSetCount"], 4);
}

#[test]
fn init_keeps_the_label_refuses_unexpired_sets_and_media_name_mismatch() {
    let t = temp_dir("init");
    let devs = devices(&t, "i", 2);
    assert_eq!(
        write(
            &devs,
            &[
                "--media-name",
                "weekly",
                "--media-description",
                "tapes",
                "--retain-days",
                "7"
            ],
            &data(MTS, 1)
        )
        .code,
        0
    );
    let id = header(&devs[..1], &["--labelonly"])[0]["MediaSetId"].clone();
    let l = header(&devs[..1], &["--labelonly"]);
    assert_eq!(l[0]["MediaName"], "weekly");
    assert_eq!(l[0]["MediaDescription"], "tapes");
    assert_eq!(l[0]["Expired"], false);
    assert!(l[0]["ExpirationDate"].is_string());

    let w = write(&devs, &["--init"], &data(MTS, 2));
    assert_eq!(w.code, 2);
    assert!(
        w.stderr.contains("has not expired") && w.stderr.contains("--skip"),
        "{}",
        w.stderr
    );
    let w = write(
        &devs,
        &["--init", "--skip", "--media-name", "other"],
        &data(MTS, 2),
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let w = write(&devs, &["--media-name", "other"], &data(MTS, 3));
    assert_eq!(w.code, 2, "the media are still named weekly");
    assert!(
        w.stderr.contains("weekly") && w.stderr.contains("--skip"),
        "{}",
        w.stderr
    );
    let rows = header(&devs, &[]);
    assert_eq!(rows.len(), 1, "--init overwrote every set");
    assert_eq!(
        header(&devs[..1], &["--labelonly"])[0]["MediaSetId"],
        id,
        "--init keeps the media header"
    );
    assert!(read_set(&devs, 1).stdout == data(MTS, 2));

    // An expired set may be overwritten without --skip.
    assert_eq!(
        write(
            &devs,
            &["--init", "--skip", "--expire-date", "2001-01-01"],
            &data(MTS, 4)
        )
        .code,
        0
    );
    assert_eq!(write(&devs, &["--init"], &data(MTS, 5)).code, 0);
    // RETAINDAYS wins over EXPIREDATE.
    assert_eq!(
        write(
            &devs,
            &[
                "--init",
                "--retain-days",
                "3",
                "--expire-date",
                "2001-01-01"
            ],
            &data(MTS, 6)
        )
        .code,
        0
    );
    let exp = header(&devs, &[])[0]["ExpirationDate"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        exp.as_str() > "2026-01-01",
        "retain-days should win, got {exp}"
    );
}

#[test]
fn format_starts_a_new_media_set_and_mismatches_are_refused() {
    let t = temp_dir("fmt");
    let devs = devices(&t, "f", 3);
    assert_eq!(write(&devs, &[], &data(MTS, 1)).code, 0);
    let id = header(&devs[..1], &["--labelonly"])[0]["MediaSetId"].clone();
    let w = write(&devs[..2], &[], &data(MTS, 2));
    assert_eq!(w.code, 2);
    assert!(
        w.stderr.contains("3 families but 2 devices") && w.stderr.contains("--format"),
        "{}",
        w.stderr
    );
    let other = devices(&t, "o", 1);
    assert_eq!(write(&other, &[], &data(MTS, 3)).code, 0);
    let w = write(
        &[devs[0].clone(), devs[1].clone(), other[0].clone()],
        &[],
        &data(MTS, 2),
    );
    assert_eq!(w.code, 2);
    assert!(
        w.stderr.contains("o1.bak") && w.stderr.contains("another media set"),
        "{}",
        w.stderr
    );
    let fresh = t.path().join("new.bak");
    let w = write(
        &[devs[0].clone(), devs[1].clone(), fresh.clone()],
        &[],
        &data(MTS, 2),
    );
    assert_eq!(w.code, 2);
    assert!(
        w.stderr.contains("new.bak") && w.stderr.contains("holds no bak media"),
        "{}",
        w.stderr
    );
    // FORMAT: two families now, a new media set id.
    assert_eq!(write(&devs[..2], &["--format"], &data(MTS, 4)).code, 0);
    let l = header(&devs[..1], &["--labelonly"]);
    assert_ne!(l[0]["MediaSetId"], id);
    assert_eq!(l[0]["FamilyCount"], 2);
    assert!(read_set(&devs[..2], 1).stdout == data(MTS, 4));
}

#[test]
fn finding_the_append_point_does_not_read_the_data() {
    // The append point comes from the end of the file: after an append onto 200 MiB of sets,
    // the earlier data was never read. Measured by the bytes the process read (/proc io).
    let t = temp_dir("cost");
    let devs = devices(&t, "c", 1);
    let w = run(
        "bak-write",
        &os(&args!["--quiet", &devs[0]]),
        &data(200 << 20, 1),
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let mut child = Command::new(bin("bak-write"))
        .args(["--quiet"])
        .arg(&devs[0])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut si = child.stdin.take().unwrap();
    si.write_all(b"small").unwrap();
    // Let it find the append point, then look at what it has read before it finishes.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    drop(si);
    assert!(child.wait().unwrap().success());
    let rchar: u64 = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        rchar < 4 << 20,
        "bak-write read {rchar} bytes to find the append point"
    );
    assert_eq!(read_set(&devs, 2).stdout, b"small");
}

#[test]
fn kill_9_at_random_moments_during_appends_loses_no_earlier_set() {
    let t = temp_dir("kill");
    let devs = devices(&t, "k", 2);
    let first = data(20 * MTS, 1);
    assert_eq!(write(&devs, &["--compress", "zstd:1"], &first).code, 0);
    let mut rng = Rng::new(0x5eed_0401);
    let big = data(40 * MTS, 2);
    for round in 0..24 {
        // Feed part of the input, then kill -9 while the writer is mid-set.
        let fed = (rng.below(big.len() as u64 - 1) + 1) as usize;
        let mut child = Command::new(bin("bak-write"))
            .args([
                "--quiet",
                "--max-transfer-size",
                "64K",
                "--buffer-count",
                "2",
            ])
            .args(&devs)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut si = child.stdin.take().unwrap();
        let _ = si.write_all(&big[..fed]);
        std::thread::sleep(std::time::Duration::from_millis(rng.below(30)));
        let _ = child.kill();
        let _ = child.wait();
        drop(si);
        // Every earlier set restores byte for byte and verifies.
        let v = verify(&devs, 1);
        assert_eq!(
            v.code,
            0,
            "round {round}: set 1 does not verify: {}",
            String::from_utf8_lossy(&v.stdout)
        );
        assert!(
            read_set(&devs, 1).stdout == first,
            "round {round}: set 1 differs"
        );
        told_the_truth(&devs);
        let rows = header(&devs, &[]);
        if rows.len() > 1 {
            assert_eq!(
                rows[1]["IsComplete"], false,
                "round {round}: the killed set claims completeness"
            );
        }
    }
    // The next append replaces the interrupted set.
    let last = data(5 * MTS + 3, 9);
    assert_eq!(write(&devs, &[], &last).code, 0);
    let rows = header(&devs, &[]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["IsComplete"], true);
    assert!(read_set(&devs, 2).stdout == last);
    assert!(read_set(&devs, 1).stdout == first);
}

#[test]
fn truncation_at_100_offsets_inside_the_last_set() {
    let t = temp_dir("cut");
    let devs = devices(&t, "c", 2);
    let first = data(9 * MTS, 1);
    let second = data(13 * MTS + 5, 2);
    assert_eq!(write(&devs, &["--compress", "zstd:1"], &first).code, 0);
    let before: Vec<u64> = devs
        .iter()
        .map(|d| std::fs::metadata(d).unwrap().len())
        .collect();
    assert_eq!(write(&devs, &[], &second).code, 0);
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut rng = Rng::new(0x5eed_0402);
    for case in 0..100 {
        let fam = rng.below(2) as usize;
        let len = pristine[fam].len() as u64;
        let cut = before[fam] + rng.below(len - before[fam]);
        std::fs::write(&devs[fam], &pristine[fam][..cut as usize]).unwrap();
        let v = verify(&devs, 1);
        assert_eq!(
            v.code,
            0,
            "case {case}: cut family {} at {cut}: {}",
            fam + 1,
            String::from_utf8_lossy(&v.stdout)
        );
        assert!(
            read_set(&devs, 1).stdout == first,
            "case {case}: set 1 differs"
        );
        let v2 = verify(&devs, 2);
        assert_eq!(v2.code, 1, "case {case}: the cut set verifies");
        assert_ne!(
            read_set(&devs, 2).code,
            0,
            "case {case}: the cut set restores"
        );
        told_the_truth(&devs);
        if case % 10 == 0 {
            // A further append replaces the interrupted set.
            let next = data(2 * MTS, case);
            assert_eq!(write(&devs, &[], &next).code, 0, "case {case}");
            assert!(read_set(&devs, 2).stdout == next);
            assert!(read_set(&devs, 1).stdout == first);
        }
        for (d, p) in devs.iter().zip(&pristine) {
            std::fs::write(d, p).unwrap();
        }
    }
}

#[test]
fn interrupted_init_and_format_tell_the_truth() {
    let t = temp_dir("initkill");
    let devs = devices(&t, "n", 2);
    let mut rng = Rng::new(0x5eed_0403);
    let big = data(30 * MTS, 3);
    for round in 0..10 {
        assert_eq!(write(&devs, &["--format"], &data(4 * MTS, round)).code, 0);
        assert_eq!(write(&devs, &[], &data(4 * MTS, round + 100)).code, 0);
        let flag = if round % 2 == 0 { "--init" } else { "--format" };
        let mut child = Command::new(bin("bak-write"))
            .args([
                "--quiet",
                "--max-transfer-size",
                "64K",
                "--buffer-count",
                "2",
                flag,
            ])
            .args(&devs)
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut si = child.stdin.take().unwrap();
        let fed = rng.below(big.len() as u64) as usize;
        let _ = si.write_all(&big[..fed]);
        std::thread::sleep(std::time::Duration::from_millis(rng.below(20)));
        let _ = child.kill();
        let _ = child.wait();
        drop(si);
        // Whatever is left: nothing is claimed complete that is not.
        let mut a = args!["--json"];
        a.extend(devs.iter().map(|p| p.into()));
        let o = run("bak-header", &os(&a), b"");
        if o.code == 0 {
            told_the_truth(&devs);
        } else {
            assert!(
                !o.stderr.is_empty(),
                "round {round}: failure without a message"
            );
        }
    }
}
