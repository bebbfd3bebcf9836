//! Families that span volumes (`bak-write --volume-size`), on files and in object storage:
//! the volumes' names, a round trip, appends, a missing volume named, and on objects the
//! volumes cut by themselves before an object would need more parts than the store takes.

use std::path::{Path, PathBuf};

use crate::store_support::*;
use crate::util::*;

/// Volume `k` of the family whose first volume is `first` (docs/FORMAT.md, "Volumes").
fn vol(first: &Path, k: u16) -> PathBuf {
    if k == 1 {
        return first.to_path_buf();
    }
    PathBuf::from(format!("{}.v{k}", first.display()))
}

/// Two families of 1 MiB volumes holding 5 MiB: three volumes each.
fn five_mib_on_volumes(t: &tempfile::TempDir) -> (Vec<PathBuf>, Vec<u8>) {
    let devs = devices(t, "v", 2);
    let input = data(5 << 20, 11);
    let w = write(
        &devs,
        &["--max-transfer-size", "64K", "--volume-size", "1M"],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    (devs, input)
}

#[test]
fn a_family_goes_on_in_volumes_named_after_the_first() {
    let t = temp_dir("vols");
    let (devs, input) = five_mib_on_volumes(&t);
    // Blocks go to whichever family is free, so the count per family varies; 5 MiB need six
    // volumes of 1 MiB at least, and none is larger.
    let mut count = 0;
    for d in &devs {
        assert!(std::fs::metadata(d).unwrap().len() <= 1 << 20);
        count += 1;
        for k in (2..).take_while(|&k| vol(d, k).exists()) {
            let n = std::fs::metadata(vol(d, k)).unwrap().len();
            assert!(n <= 1 << 20, "volume {k} holds {n} bytes");
            count += 1;
        }
    }
    assert!(count >= 6, "{count} volumes");
    let mut rev = devs.clone();
    rev.reverse();
    let r = read(&rev, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let v = run("bak-verify", &os(&args![&devs]), b"");
    assert_eq!(v.code, 0, "{}", v.stderr);
    // Each volume holds whole records: every one is a valid zstd stream by itself.
    if have("zstd") {
        for k in (2..).take_while(|&k| vol(&devs[0], k).exists()) {
            let st = std::process::Command::new("zstd")
                .args(["-q", "-t"])
                .arg(vol(&devs[0], k))
                .status()
                .unwrap();
            assert!(st.success(), "zstd -t on volume {k}");
        }
    } else {
        skip("zstd not installed: volumes not checked as zstd streams");
    }
}

#[test]
fn appends_go_on_in_the_last_volume_and_every_set_reads_back() {
    let t = temp_dir("volapp");
    let (devs, one) = five_mib_on_volumes(&t);
    let two = data(3 << 20, 12);
    let w = write(
        &devs,
        &["--max-transfer-size", "64K", "--volume-size", "1M"],
        &two,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let three = data(70_000, 13);
    // Without --volume-size the last volume takes the new set whole.
    let w = write(&devs, &["--max-transfer-size", "64K"], &three);
    assert_eq!(w.code, 0, "{}", w.stderr);
    for (n, want) in [(1, &one), (2, &two), (3, &three)] {
        let r = read(&devs, &["--file", &n.to_string()]);
        assert_eq!(r.code, 0, "--file {n}: {}", r.stderr);
        assert!(r.stdout == *want, "--file {n} differs");
    }
    let h = run("bak-header", &os(&args!["--json", &devs]), b"");
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["IsComplete"] == true), "{rows:?}");
    // --init starts over: the volumes after the first are removed.
    let w = write(&devs, &["--init", "--max-transfer-size", "64K"], &three);
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(!vol(&devs[0], 2).exists() && !vol(&devs[1], 2).exists());
    let r = read(&devs, &[]);
    assert!(r.code == 0 && r.stdout == three, "{}", r.stderr);
}

#[test]
fn a_missing_volume_is_named() {
    let t = temp_dir("volmiss");
    let (devs, _) = five_mib_on_volumes(&t);
    // The middle one: the media set is damaged, and the message names the file.
    let (fam, first) = devs
        .iter()
        .enumerate()
        .find(|(_, d)| vol(d, 3).exists())
        .expect("a family of three volumes");
    let v2 = vol(first, 2);
    std::fs::rename(&v2, t.path().join("away")).unwrap();
    for tool in ["bak-read", "bak-verify", "bak-header"] {
        let r = run(tool, &os(&args![&devs]), b"");
        assert_eq!(r.code, 1, "{tool}: {}", r.stderr);
        let want = format!(
            "volume 2 of family {} is missing ({})",
            fam + 1,
            v2.display()
        );
        assert!(r.stderr.contains(&want), "{tool}: {}", r.stderr);
    }
    std::fs::rename(t.path().join("away"), &v2).unwrap();
    // The last one: the set it holds the end of is incomplete, and the family's name says
    // which volume is missing.
    let d = devs
        .iter()
        .rev()
        .find(|d| vol(d, 2).exists())
        .expect("a family on volumes");
    let last = (2..).take_while(|&k| vol(d, k).exists()).last().unwrap();
    let gone = vol(d, last);
    std::fs::remove_file(&gone).unwrap();
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("(volume {last}, {}, is missing)", gone.display())),
        "{}",
        r.stderr
    );
    let h = run("bak-header", &os(&args!["--json", &devs]), b"");
    let rows = json_lines(&h.stdout);
    assert_eq!(rows[0]["IsComplete"], false, "{rows:?}");
    // Volume 2 given alone is refused, naming the first.
    let r = read(&[vol(first, 2)], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("give the family's first volume"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_stream_takes_no_volume_size() {
    let t = temp_dir("volstream");
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--volume-size",
            "1M",
            "-",
            &t.path().join("x.bak")
        ]),
        b"abc",
    );
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(
        w.stderr.contains("--volume-size is for files and objects"),
        "{}",
        w.stderr
    );
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--volume-size",
            "4K",
            &t.path().join("y.bak")
        ]),
        b"abc",
    );
    assert_eq!(w.code, 2, "{}", w.stderr);
}

fn url(bucket: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("s3://{bucket}/{key}"))
}

#[test]
fn objects_are_cut_into_volumes_before_the_part_limit() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("parts");
    let devs = vec![url(&b, "fam1.bak"), url(&b, "fam2.bak")];
    let input = data(36 << 20, 21);
    // Two parts of 5 MiB an object: no object is over 10 MiB, whatever the set's size.
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--part-size", "5M", "--max-parts", "2", &devs],
        &input,
        &s3.env(),
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let sizes = s3.sizes(&b);
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(sizes.iter().all(|(_, n)| *n <= 10 << 20), "{sizes:?}");
    let on_volumes = ["fam1.bak", "fam2.bak"]
        .into_iter()
        .find(|f| sizes.iter().any(|(k, _)| *k == format!("{f}.v2")))
        .expect("a family on volumes");
    let r = run_env("bak-read", &args!["--quiet", &devs], b"", &s3.env());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    // A missing volume object is named by its URL.
    s3.delete(&b, &format!("{on_volumes}.v2"));
    let r = run_env("bak-read", &args!["--quiet", &devs], b"", &s3.env());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("s3://{b}/{on_volumes}.v2")),
        "{}",
        r.stderr
    );
}

#[test]
fn volume_size_on_urls_mixed_with_files() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("mixed");
    let t = temp_dir("volmixed");
    let devs = vec![url(&b, "m.bak"), t.path().join("m.bak")];
    let input = data(20 << 20, 22);
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--volume-size", "6M", "--part-size", "5M", &devs],
        &input,
        &s3.env(),
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    // How the blocks split between the object and the file depends on which is faster; the
    // volumes of both are within the size, and 20 MiB take four of them at least.
    let sizes = s3.sizes(&b);
    assert!(sizes.iter().all(|(_, n)| *n <= 6 << 20), "{sizes:?}");
    let files: Vec<u64> = (1..)
        .map(|k| vol(&devs[1], k))
        .take_while(|p| p.exists())
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(files.iter().all(|&n| n <= 6 << 20), "{files:?}");
    assert!(sizes.len() + files.len() >= 4, "{sizes:?} {files:?}");
    let r = run_env(
        "bak-read",
        &args!["--quiet", &devs[1], &devs[0]],
        b"",
        &s3.env(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let v = run_env("bak-verify", &args![&devs], b"", &s3.env());
    assert_eq!(v.code, 0, "{}", v.stderr);
}
