//! Every failure has its message, naming the file (and the family, block and offset where there
//! is one), and its exit code: 1 for damaged or incomplete media, 2 for usage and I/O errors.

use crate::util::*;

#[test]
fn media_set_errors_name_the_family_and_file() {
    let t = temp_dir("set");
    let devs = devices(&t, "a", 3);
    let other = devices(&t, "b", 3);
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

    // The same device twice is a usage error; so is a copy of a family beside the family.
    let r = read(&[devs[0].clone(), devs[1].clone(), devs[1].clone()], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("given twice"), "{}", r.stderr);
    let copy = devs[1].with_extension("copy");
    std::fs::copy(&devs[1], &copy).unwrap();
    let r = read(&[devs[0].clone(), devs[1].clone(), copy], &[]);
    assert_eq!(r.code, 2);
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
    let t = temp_dir("dmg");
    let devs = devices(&t, "d", 2);
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
    // The first free writer takes each block, so one family may hold few blocks (or none)
    // and its middle byte lie in the label's padding: damage the family that holds the most.
    let lens: Vec<u64> = devs
        .iter()
        .map(|d| std::fs::metadata(d).unwrap().len())
        .collect();
    let (fam, other) = if lens[1] >= lens[0] { (1, 0) } else { (0, 1) };
    let original = std::fs::read(&devs[fam]).unwrap();
    let mut bytes = original.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&devs[fam], &bytes).unwrap();
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("d{}.bak", fam + 1))
            && r.stderr.contains(&format!("family {}", fam + 1))
            && r.stderr.contains("offset"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.len() < input.len() && input.starts_with(&r.stdout),
        "wrong bytes passed on"
    );

    // Truncated family: the set is incomplete.
    std::fs::write(&devs[fam], &original).unwrap();
    let b = std::fs::read(&devs[other]).unwrap();
    std::fs::write(&devs[other], &b[..b.len() - 300]).unwrap();
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("d{}.bak", other + 1)),
        "{}",
        r.stderr
    );
}

#[test]
fn refuses_to_overwrite_foreign_data_and_keeps_it() {
    let t = temp_dir("ow");
    let f = t.path().join("precious.txt");
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
    let t = temp_dir("usage");
    let d = t.path().join("x.bak");
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
    let w = write(&[t.path().to_path_buf()], &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("is a directory"), "{}", w.stderr);
    let w = write(&[d.clone(), d.clone()], &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("given twice"), "{}", w.stderr);
    let w = write(&[t.path().join("no/such/dir/x.bak")], &[], b"x");
    assert_eq!(w.code, 2);
    assert!(w.stderr.contains("no/such/dir/x.bak"), "{}", w.stderr);

    let junk = t.path().join("junk");
    std::fs::write(&junk, b"hello, not media").unwrap();
    let r = read(std::slice::from_ref(&junk), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("junk") && r.stderr.contains("not backup media"),
        "{}",
        r.stderr
    );
    let r = read(&[t.path().join("missing.bak")], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.bak"), "{}", r.stderr);
}

#[test]
fn a_directory_a_missing_path_and_an_unreadable_device_are_clear_errors() {
    let t = temp_dir("paths");
    for tool in ["bak-read", "bak-header", "bak-verify"] {
        let o = run(tool, &os(&args![t.path()]), b"");
        assert_eq!(o.code, 2, "{tool}");
        assert!(o.stderr.contains("is a directory"), "{tool}: {}", o.stderr);
        let o = run(tool, &os(&args![&t.path().join("nope.bak")]), b"");
        assert_eq!(o.code, 2, "{tool}");
        assert!(o.stderr.contains("nope.bak"), "{tool}: {}", o.stderr);
    }
    let d = t.path().join("secret.bak");
    assert_eq!(run("bak-write", &os(&args!["--quiet", &d]), b"x").code, 0);
    let ro = t.path().join("readonly.bak");
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
        skip("(part) running as root without setpriv to drop privileges");
        return;
    }
    // Run as nobody, the tools must reach the files: the temporary directory is mode 0700.
    if is_root() {
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
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
