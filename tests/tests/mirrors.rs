//! MIRROR TO: `bak-write --mirror-to`, readers that take any copies in any order and heal
//! damage from another copy, bak-verify's `degraded`, the listing's mirror columns, a copy
//! failing during the backup, and `--rebuild-mirror`.

use std::path::PathBuf;

use crate::util::*;

/// `bak-write --quiet EXTRA.. --mirror-to M1 .. DEVS..`.
fn write_mirrored(
    devs: &[PathBuf],
    mirrors: &[Vec<PathBuf>],
    extra: &[&str],
    input: &[u8],
) -> Output {
    let mut a = args!["--quiet", "--max-transfer-size", "64K"];
    a.extend(extra.iter().map(|s| s.into()));
    for m in mirrors {
        let list: Vec<String> = m.iter().map(|p| p.display().to_string()).collect();
        a.push("--mirror-to".into());
        a.push(list.join(",").into());
    }
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-write", &os(&a), input)
}

fn all(devs: &[PathBuf], mirrors: &[Vec<PathBuf>]) -> Vec<PathBuf> {
    let mut v = devs.to_vec();
    for m in mirrors {
        v.extend(m.iter().cloned());
    }
    v
}

fn shuffled(mut v: Vec<PathBuf>, seed: u64) -> Vec<PathBuf> {
    let mut r = Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

fn verify_json(devs: &[PathBuf]) -> (i32, Vec<serde_json::Value>, String) {
    let mut a = args!["--json"];
    a.extend(devs.iter().map(|p| p.into()));
    let o = run("bak-verify", &os(&a), b"");
    (o.code, json_lines(&o.stdout), o.stderr)
}

#[test]
fn one_two_and_three_mirrors_round_trip_from_any_copies_in_any_order() {
    let dir = temp_dir("mir-rt");
    let input = data(700_000, 14);
    for (m, compress) in [(1, "none"), (2, "zstd"), (3, "none")] {
        let devs = devices(&dir, &format!("m{m}-main"), 3);
        let mirrors: Vec<Vec<PathBuf>> = (1..=m)
            .map(|k| devices(&dir, &format!("m{m}-copy{k}-"), 3))
            .collect();
        let o = write_mirrored(&devs, &mirrors, &["--compress", compress], &input);
        assert_eq!(o.code, 0, "{}", o.stderr);
        // Every copy given, shuffled: exact, no note.
        let every = shuffled(all(&devs, &mirrors), m as u64);
        let r = read(&every, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout == input, "mirrors {m}: restore differs");
        // One copy of each family, from different copies: exact.
        let pick: Vec<PathBuf> = (0..3)
            .map(|f| match f % (m + 1) {
                0 => devs[f].clone(),
                k => mirrors[k - 1][f].clone(),
            })
            .collect();
        let r = read(&shuffled(pick.clone(), 7), &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout == input);
        // Verify: every copy valid; a missing copy is degraded (exit 1).
        let (code, reps, err) = verify_json(&every);
        assert_eq!(code, 0, "{err} {reps:?}");
        assert_eq!(reps[0]["Verdict"], "valid");
        assert_eq!(reps[0]["RedundancyLeft"], m as u64);
        let (code, reps, _) = verify_json(&pick);
        assert_eq!(code, 1);
        assert_eq!(reps[0]["Verdict"], "degraded");
        assert_eq!(reps[0]["Recoverable"], true);
        assert_eq!(reps[0]["RedundancyLeft"], 0);
        // The listing counts the copies as msdb does; each label says which it is.
        let h = run("bak-header", &os(&args!["--json", &mirrors[m - 1][0]]), b"");
        assert_eq!(h.code, 0, "{}", h.stderr);
        let rows = json_lines(&h.stdout);
        assert_eq!(rows[0]["MirrorCount"], m as u64 + 1, "{rows:?}");
        let h = run(
            "bak-header",
            &os(&args!["--labelonly", "--json", &mirrors[m - 1][0]]),
            b"",
        );
        assert_eq!(h.code, 0, "{}", h.stderr);
        let rows = json_lines(&h.stdout);
        assert_eq!(rows[0]["MirrorNumber"], m as u64 + 1, "{rows:?}");
    }
}

#[test]
fn an_encrypted_mirrored_set_restores_from_either_copy() {
    let dir = temp_dir("mir-enc");
    let input = data(300_000, 3);
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let p = pass.display().to_string();
    let devs = devices(&dir, "e", 2);
    let mirror = devices(&dir, "f", 2);
    let o = write_mirrored(&devs, &[mirror.clone()], &["--passphrase-file", &p], &input);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = read(
        &[mirror[1].clone(), devs[0].clone()],
        &["--passphrase-file", &p],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
}

#[test]
fn damage_on_one_copy_at_every_block_in_turn_heals_and_verify_says_degraded() {
    let dir = temp_dir("mir-dmg");
    let input = data(6 * MTS + 1000, 21);
    let devs = devices(&dir, "a", 1);
    let mirror = devices(&dir, "b", 1);
    let o = write_mirrored(&devs, &[mirror.clone()], &[], &input);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let good = std::fs::read(&devs[0]).unwrap();
    let targets: Vec<(&str, u64, u64)> = regions(&devs[0])
        .into_iter()
        .filter(|r| r.0 == "block header" || r.0 == "block payload")
        .collect();
    assert!(targets.len() >= 14);
    for (i, (what, start, end)) in targets.iter().enumerate() {
        // Copy 1 damaged at even targets, copy 2 at odd ones.
        let victim = if i % 2 == 0 { &devs[0] } else { &mirror[0] };
        let orig = std::fs::read(victim).unwrap();
        let mut bad = orig.clone();
        let at = (start + (end - start) / 2) as usize;
        bad[at] ^= 0x10;
        std::fs::write(victim, &bad).unwrap();
        let r = read(&[devs[0].clone(), mirror[0].clone()], &[]);
        assert_eq!(r.code, 0, "{what} at {at}: {}", r.stderr);
        assert!(r.stdout == input, "{what} at {at}: restore differs");
        let mut a = args!["--json", &devs[0], &mirror[0]];
        let v = run("bak-verify", &os(&a), b"");
        let reps = json_lines(&v.stdout);
        assert_eq!(v.code, 1, "{what} at {at}: {reps:?}");
        assert_eq!(reps[0]["Verdict"], "degraded", "{what} at {at}");
        // Without --quiet bak-read names the damaged copy.
        a = args![&devs[0], &mirror[0]];
        let r = run("bak-read", &os(&a), b"");
        assert!(
            r.stderr.contains(&victim.display().to_string()),
            "{what}: {}",
            r.stderr
        );
        std::fs::write(victim, &orig).unwrap();
    }
    assert_eq!(std::fs::read(&devs[0]).unwrap(), good);
    // Damage on both copies at the same block is lost: exit 1, as without mirrors.
    let t = targets.iter().find(|t| t.0 == "block payload").unwrap();
    for d in [&devs[0], &mirror[0]] {
        let mut b = std::fs::read(d).unwrap();
        b[(t.1 + 5) as usize] ^= 1;
        std::fs::write(d, &b).unwrap();
    }
    let r = read(&[devs[0].clone(), mirror[0].clone()], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (code, reps, _) = verify_json(&[devs[0].clone(), mirror[0].clone()]);
    assert_eq!(code, 1);
    assert_eq!(reps[0]["Verdict"], "damaged");
}

#[test]
fn mirrors_through_fifos_are_read_side_by_side() {
    if !have("mkfifo") {
        return skip("mkfifo not found");
    }
    let dir = temp_dir("mir-fifo");
    let input = data(900_000, 5);
    let fifos: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("f{i}"))).collect();
    for f in &fifos {
        assert!(std::process::Command::new("mkfifo")
            .arg(f)
            .status()
            .unwrap()
            .success());
    }
    let (devs, mirror) = (fifos[..2].to_vec(), fifos[2..].to_vec());
    let reader = {
        let every = shuffled(fifos.clone(), 3);
        std::thread::spawn(move || read(&every, &[]))
    };
    let o = write_mirrored(&devs, &[mirror], &["--compress", "zstd"], &input);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = reader.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
}

#[test]
fn appends_act_on_every_copy_and_refuse_copies_that_disagree() {
    let dir = temp_dir("mir-app");
    let (one, two) = (data(200_000, 1), data(150_000, 2));
    let devs = devices(&dir, "a", 2);
    let mirror = devices(&dir, "b", 2);
    assert_eq!(write_mirrored(&devs, &[mirror.clone()], &[], &one).code, 0);
    let o = write_mirrored(&devs, &[mirror.clone()], &[], &two);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = read(&mirror, &["--file", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == two);
    let r = read(&[devs[0].clone(), mirror[1].clone()], &["--file", "1"]);
    assert!(r.stdout == one);
    // Without the mirror: refused, nothing changed.
    let before = std::fs::read(&devs[0]).unwrap();
    let o = write(&devs, &["--max-transfer-size", "64K"], &two);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("copies"), "{}", o.stderr);
    assert_eq!(std::fs::read(&devs[0]).unwrap(), before);
    // A copy that holds one set less: refused naming it.
    let other = devices(&dir, "c", 2);
    assert_eq!(write_mirrored(&devs[..1].to_vec(), &[], &[], &one).code, 2);
    let lone = devices(&dir, "lone", 2);
    assert_eq!(write(&lone, &[], &one).code, 0);
    let o = write_mirrored(&devs, &[lone.clone()], &[], &two);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains(&lone[0].display().to_string()),
        "{}",
        o.stderr
    );
    // --format starts over on every copy, --init keeps the labels of every copy.
    let o = write_mirrored(&devs, &[other.clone()], &["--format"], &one);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = write_mirrored(&devs, &[other.clone()], &["--init"], &two);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = read(&other, &[]);
    assert!(r.stdout == two, "{}", r.stderr);
    let (code, reps, _) = verify_json(&all(&devs, &[other]));
    assert_eq!(code, 0, "{reps:?}");
    assert_eq!(reps.len(), 1);
}

#[test]
fn a_mirror_fifo_whose_reader_exits_leaves_that_copy_behind_with_exit_1() {
    if !have("mkfifo") {
        return skip("mkfifo not found");
    }
    let dir = temp_dir("mir-fail");
    let input = data(3_000_000, 9);
    let dev = dir.path().join("main.bak");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // A reader that takes 100 KiB and goes away.
    let f2 = fifo.clone();
    let quitter = std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&f2).unwrap();
        let mut b = vec![0u8; 100 << 10];
        f.read_exact(&mut b).unwrap();
    });
    let o = write_mirrored(&[dev.clone()], &[vec![fifo.clone()]], &[], &input);
    quitter.join().unwrap();
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains(&fifo.display().to_string()),
        "{}",
        o.stderr
    );
    // The set is whole on the healthy copy.
    let r = read(&[dev.clone()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input);
    let (code, reps, _) = verify_json(&[dev.clone()]);
    assert_eq!(code, 1);
    assert_eq!(reps[0]["Verdict"], "degraded");
}

#[test]
fn a_file_copy_cut_short_never_looks_complete() {
    // A copy that fails part way on a file: simulated by a full tmpfs when root.
    if !is_root() || !have("mount") {
        return skip("needs root to mount a tmpfs");
    }
    let dir = temp_dir("mir-full");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap()
        .success();
    if !ok {
        return skip("mount -t tmpfs failed");
    }
    let input = data(3_000_000, 11);
    let dev = dir.path().join("main.bak");
    let small = mnt.join("copy.bak");
    let o = write_mirrored(&[dev.clone()], &[vec![small.clone()]], &[], &input);
    let cut = std::fs::read(&small).unwrap_or_default();
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains(&small.display().to_string()),
        "{}",
        o.stderr
    );
    let r = read(&[dev.clone()], &[]);
    assert!(r.stdout == input, "{}", r.stderr);
    // What the full copy holds is an interrupted set, not a complete one.
    let cutf = dir.path().join("cut.bak");
    std::fs::write(&cutf, &cut).unwrap();
    let (code, reps, _) = verify_json(&[cutf]);
    assert_eq!(code, 1);
    assert_ne!(reps[0]["Verdict"], "valid");
    assert_ne!(reps[0]["Verdict"], "degraded");
}

#[test]
fn a_rebuilt_copy_makes_the_media_set_valid_again() {
    let dir = temp_dir("mir-rebuild");
    let input = data(500_000, 4);
    let devs = devices(&dir, "a", 2);
    let mirror = devices(&dir, "b", 2);
    assert_eq!(
        write_mirrored(&devs, &[mirror.clone()], &["--compress", "zstd"], &input).code,
        0
    );
    std::fs::remove_file(&mirror[1]).unwrap();
    let (code, reps, _) = verify_json(&[devs.clone(), vec![mirror[0].clone()]].concat());
    assert_eq!(code, 1);
    assert_eq!(reps[0]["Verdict"], "degraded");
    let new = dir.path().join("b2-new.bak");
    let spec = format!("2.2={}", new.display());
    let o = run(
        "bak-write",
        &os(&args!["--rebuild-mirror", spec.as_str(), &devs[1]]),
        b"",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let every = vec![
        devs[0].clone(),
        devs[1].clone(),
        mirror[0].clone(),
        new.clone(),
    ];
    let (code, reps, err) = verify_json(&every);
    assert_eq!(code, 0, "{err} {reps:?}");
    assert_eq!(reps[0]["Verdict"], "valid");
    let r = read(&[devs[0].clone(), new.clone()], &[]);
    assert!(r.stdout == input, "{}", r.stderr);
    // An existing non-empty file is not written over without --format.
    let o = run(
        "bak-write",
        &os(&args!["--rebuild-mirror", spec.as_str(), &devs[1]]),
        b"",
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
}
