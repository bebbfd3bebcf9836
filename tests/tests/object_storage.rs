//! Media families in object storage, through the tools, against moto's S3 server on
//! 127.0.0.1: round trips striped over several URLs and mixed with files, appends, and what
//! each failure says (a missing bucket or object, an unreachable endpoint) without a secret.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::store_support::*;
use crate::util::*;

fn url(bucket: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("s3://{bucket}/{key}"))
}

fn tool(s3: &S3, name: &str, a: &[OsString], stdin: &[u8]) -> Output {
    let out = run_env(name, a, stdin, &s3.env());
    assert!(
        !out.stderr.contains(SECRET),
        "{name} printed the secret: {}",
        out.stderr
    );
    out
}

#[test]
fn a_set_striped_over_urls_and_a_file_round_trips() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("stripe");
    let t = temp_dir("s3stripe");
    let file = t.path().join("local.bak");
    let devs = vec![
        url(&b, "a/db.bak"),
        file.clone(),
        url(&b, "b/db.bak"),
        url(&b, "c/db.bak"),
    ];
    // 5 MiB parts: every URL family (about 6 MiB each) takes a multipart upload of two parts.
    let input = data(24 << 20, 7);
    let w = tool(
        s3,
        "bak-write",
        &args![
            "--quiet",
            "--json",
            "--compress",
            "zstd",
            "--part-size",
            "5M",
            &devs
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let summary = &json_lines(&w.stdout)[0];
    assert_eq!(summary["FamilyCount"], 4);
    assert_eq!(summary["BackupSize"], input.len() as u64);
    assert_eq!(s3.keys(&b), ["a/db.bak", "b/db.bak", "c/db.bak"]);
    assert!(
        s3.uploads(&b).is_empty(),
        "unfinished uploads left: {:?}",
        s3.uploads(&b)
    );

    // Read back with the devices in another order.
    let mut shuffled = devs.clone();
    shuffled.reverse();
    let r = tool(s3, "bak-read", &args!["--quiet", &shuffled], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let v = tool(s3, "bak-verify", &args![&devs], b"");
    assert_eq!(v.code, 0, "{}", v.stderr);
    let h = tool(s3, "bak-header", &args!["--json", &devs], b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["BackupSize"], input.len() as u64);
    assert_eq!(rows[0]["IsComplete"], true);
    let l = tool(
        s3,
        "bak-header",
        &args!["--labelonly", "--json", &devs],
        b"",
    );
    let labels = json_lines(&l.stdout);
    assert!(
        labels
            .iter()
            .any(|r| r["Device"] == format!("s3://{b}/b/db.bak")),
        "{labels:?}"
    );
}

#[test]
fn appends_to_objects_keep_every_set_and_file_picks_one() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("append");
    let devs = vec![url(&b, "x1.bak"), url(&b, "x2.bak")];
    let one = data(3 * MTS + 11, 1);
    let two = data(9 * MTS + 5, 2);
    let three = data(100, 3);
    for (input, name) in [(&one, "one"), (&two, "two"), (&three, "three")] {
        let w = tool(
            s3,
            "bak-write",
            &args![
                "--quiet",
                "--max-transfer-size",
                "64K",
                "--name",
                name,
                &devs
            ],
            input,
        );
        assert_eq!(w.code, 0, "{name}: {}", w.stderr);
    }
    let h = tool(s3, "bak-header", &args!["--json", &devs], b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["BackupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    for (n, want) in [(1, &one), (2, &two), (3, &three)] {
        let r = tool(
            s3,
            "bak-read",
            &args!["--quiet", "--file", n.to_string(), &devs],
            b"",
        );
        assert_eq!(r.code, 0, "--file {n}: {}", r.stderr);
        assert!(r.stdout == *want, "--file {n}: bytes differ");
    }
    // --init starts over at position 1, keeping the label.
    let w = tool(
        s3,
        "bak-write",
        &args!["--quiet", "--init", "--name", "again", &devs],
        &three,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let rows = json_lines(&tool(s3, "bak-header", &args!["--json", &devs], b"").stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["BackupName"], "again");
}

#[test]
fn a_missing_bucket_is_named_and_never_created() {
    let Some(s3) = moto() else { return };
    let dev = url("no-such-bucket-here", "db.bak");
    let w = tool(s3, "bak-write", &args!["--quiet", &dev], b"data");
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(
        w.stderr.contains("s3://no-such-bucket-here/db.bak"),
        "{}",
        w.stderr
    );
    assert!(w.stderr.contains("does not exist"), "{}", w.stderr);
    assert!(
        !s3.bucket_exists("no-such-bucket-here"),
        "the bucket was created"
    );
    for t in ["bak-read", "bak-header", "bak-verify"] {
        let r = tool(s3, t, &args![&dev], b"");
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("bucket \"no-such-bucket-here\" does not exist"),
            "{t}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_missing_object_is_exit_2_naming_the_url() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("missing");
    let dev = url(&b, "nothing/here.bak");
    for t in ["bak-read", "bak-header", "bak-verify"] {
        let r = tool(s3, t, &args![&dev], b"");
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("s3://{b}/nothing/here.bak")),
            "{t}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("no such object"), "{t}: {}", r.stderr);
    }
}

#[test]
fn an_unreachable_endpoint_is_exit_2_naming_the_url() {
    // Nothing listens on the port: every request is refused, retried twice, then reported.
    let mut env = s3_env(&format!("http://127.0.0.1:{}", free_port()));
    env.push(("BAK_STORE_RETRIES".into(), "2".into()));
    let dev = url("bkt", "db.bak");
    for (t, stdin) in [
        ("bak-write", &b"x"[..]),
        ("bak-read", b""),
        ("bak-header", b""),
    ] {
        let q = if t == "bak-header" {
            "--json"
        } else {
            "--quiet"
        };
        let r = run_env(t, &args![q, &dev], stdin, &env);
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert!(r.stderr.contains("s3://bkt/db.bak"), "{t}: {}", r.stderr);
        assert!(r.stderr.contains("cannot connect"), "{t}: {}", r.stderr);
        assert!(!r.stderr.contains(SECRET), "{t}: {}", r.stderr);
    }
}

#[test]
fn a_sas_token_in_a_url_is_never_shown() {
    // Azure through the emulator settings, at a port nobody listens on: the error names the
    // blob without the query that holds the token.
    let env: Vec<(String, String)> = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        ("BAK_STORE_RETRIES", "1".to_string()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    let dev = "az://container/db.bak?sv=2024-01-01&sig=TOPSECRETSIGNATURE";
    for (t, stdin) in [("bak-write", &b"x"[..]), ("bak-header", b"")] {
        let q = if t == "bak-header" {
            "--json"
        } else {
            "--quiet"
        };
        let r = run_env(t, &args![q, dev], stdin, &env);
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert!(
            r.stderr.contains("az://container/db.bak"),
            "{t}: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("TOPSECRET"),
            "{t} showed the SAS token: {}",
            r.stderr
        );
    }
    // Given twice, even with two tokens, it is one blob: refused without either token.
    let r = run_env(
        "bak-write",
        &args![dev, "az://container/db.bak?sig=OTHERSECRET"],
        b"x",
        &env,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("given twice") && !r.stderr.contains("SECRET"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_interrupted_upload_leaves_no_object_and_no_upload() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("sigterm");
    let dev = url(&b, "big.bak");
    let mut child = std::process::Command::new(bin("bak-write"))
        .args(args!["--quiet", "--part-size", "5M", &dev])
        .envs(s3.env())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Feed 12 MiB (two parts go up), then hold the pipe open and stop the tool.
    let mut si = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut si, &data(12 << 20, 4)).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s3.uploads(&b).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s3.uploads(&b), ["big.bak"], "the upload never started");
    send_signal(child.id(), libc::SIGTERM);
    let st = wait_within(&mut child, 20, "bak-write on SIGTERM");
    drop(si);
    let err = stderr_text(&mut child);
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(
        s3.keys(&b).is_empty(),
        "an object was left: {:?}",
        s3.keys(&b)
    );
    assert!(s3.uploads(&b).is_empty(), "the upload was not aborted");
}

#[test]
fn kill_9_during_an_append_loses_no_earlier_set_and_lists_no_broken_one_complete() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("kill9");
    let devs = vec![url(&b, "k1.bak"), url(&b, "k2.bak")];
    let vol = ["--volume-size", "6M", "--part-size", "5M"];
    let one = data(9 << 20, 31);
    let two = data(2 << 20, 32);
    for (input, name) in [(&one, "one"), (&two, "two")] {
        let mut a = args!["--quiet", "--name", name];
        a.extend(vol.iter().map(|s| s.into()));
        a.extend(devs.iter().map(|p| p.into()));
        let w = tool(s3, "bak-write", &a, input);
        assert_eq!(w.code, 0, "{name}: {}", w.stderr);
    }
    // A third set, killed once some of its volumes are complete and another is uploading.
    // Data keeps coming, so an upload is nearly always open; the kill is tried again (at most
    // three times) when it landed between two uploads.
    let before = s3.keys(&b).len();
    for _attempt in 0..3 {
        let mut child = std::process::Command::new(bin("bak-write"))
            .args(args![
                "--quiet",
                "--name",
                "broken",
                "--volume-size",
                "6M",
                "--part-size",
                "5M",
                &devs
            ])
            .envs(s3.env())
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut si = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            let chunk = data(1 << 20, 33);
            for _ in 0..200 {
                if std::io::Write::write_all(&mut si, &chunk).is_err() {
                    break;
                }
            }
        });
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while (s3.keys(&b).len() == before || s3.uploads(&b).is_empty())
            && std::time::Instant::now() < until
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            s3.keys(&b).len() > before,
            "no volume of the broken set was complete"
        );
        send_signal(child.id(), libc::SIGKILL);
        wait_within(&mut child, 10, "bak-write after SIGKILL");
        let _ = feeder.join();
        if !s3.uploads(&b).is_empty() {
            break;
        }
    }
    assert!(
        !s3.uploads(&b).is_empty(),
        "no upload was open when bak-write was killed"
    );

    // Every earlier set reads back; the broken one is never listed complete.
    let h = tool(s3, "bak-header", &args!["--json", &devs], b"");
    let rows = json_lines(&h.stdout);
    let complete: Vec<&str> = rows
        .iter()
        .filter(|r| r["IsComplete"] == true)
        .map(|r| r["BackupName"].as_str().unwrap())
        .collect();
    assert_eq!(complete, ["one", "two"], "{rows:?}");
    for (n, want) in [(1, &one), (2, &two)] {
        let r = tool(
            s3,
            "bak-read",
            &args!["--quiet", "--file", n.to_string(), &devs],
            b"",
        );
        assert_eq!(r.code, 0, "--file {n}: {}", r.stderr);
        assert!(r.stdout == *want, "--file {n} differs");
    }
    // What the kill left is listed and cleaned.
    let l = tool(
        s3,
        "bak-write",
        &args!["--uploads", "list", "--json", &devs],
        b"",
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    let left = json_lines(&l.stdout);
    assert!(!left.is_empty());
    assert!(left.iter().all(|u| u["Url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("s3://{b}/k"))));
    let a = tool(
        s3,
        "bak-write",
        &args!["--uploads", "abort", "--quiet", &devs],
        b"",
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert!(s3.uploads(&b).is_empty(), "{:?}", s3.uploads(&b));
    // The next append replaces the broken set and removes the volumes it left.
    let three = data(100_000, 34);
    let w = tool(
        s3,
        "bak-write",
        &args!["--quiet", "--name", "three", &devs],
        &three,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let rows = json_lines(&tool(s3, "bak-header", &args!["--json", &devs], b"").stdout);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["BackupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert!(rows.iter().all(|r| r["IsComplete"] == true), "{rows:?}");
    let r = tool(s3, "bak-read", &args!["--quiet", "--file", "3", &devs], b"");
    assert!(r.code == 0 && r.stdout == three, "{}", r.stderr);
}

#[test]
fn expiry_init_skip_and_format_keep_their_meaning_on_objects() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("expiry");
    let devs = vec![url(&b, "e.bak")];
    let w = tool(
        s3,
        "bak-write",
        &args!["--quiet", "--retain-days", "3", "--name", "kept", &devs],
        b"first",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let w = tool(
        s3,
        "bak-write",
        &args!["--quiet", "--name", "second", &devs],
        b"second",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(
        s3.keys(&b),
        ["e.bak", "e.bak.v2"],
        "a new set is a new volume object"
    );
    let w = tool(s3, "bak-write", &args!["--quiet", "--init", &devs], b"x");
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(w.stderr.contains("has not expired"), "{}", w.stderr);
    let rows = json_lines(&tool(s3, "bak-header", &args!["--json", &devs], b"").stdout);
    assert_eq!(rows.len(), 2, "a refused --init changed the media");
    let label = |d: &[PathBuf]| {
        json_lines(&tool(s3, "bak-header", &args!["--labelonly", "--json", d], b"").stdout)[0]
            ["MediaSetId"]
            .clone()
    };
    let id = label(&devs);
    let w = tool(
        s3,
        "bak-write",
        &args!["--quiet", "--init", "--skip", "--name", "anew", &devs],
        b"y",
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(s3.keys(&b), ["e.bak"]);
    assert_eq!(label(&devs), id, "--init keeps the label");
    let w = tool(s3, "bak-write", &args!["--quiet", "--format", &devs], b"z");
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_ne!(label(&devs), id, "--format writes a new media set");
    let r = tool(s3, "bak-read", &args!["--quiet", &devs], b"");
    assert!(r.code == 0 && r.stdout == b"z", "{}", r.stderr);
}

#[test]
fn azure_blobs_in_azurite_round_trip_with_files_and_volumes() {
    let t = temp_dir("azurite");
    let Some(az) = azurite(t.path()) else { return };
    azure_container(az.port, "backups");
    let env = azurite_env(az.port);
    let file = t.path().join("local.bak");
    let devs = vec![
        PathBuf::from("az://backups/db/a.bak"),
        PathBuf::from("az://backups/db/b.bak"),
        file.clone(),
    ];
    let input = data(20 << 20, 51);
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--volume-size", "4M", "--part-size", "5M", &devs],
        &input,
        &env,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let r = run_env(
        "bak-read",
        &args!["--quiet", &devs[2], &devs[1], &devs[0]],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let two = data(1 << 20, 52);
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--name", "two", &devs],
        &two,
        &env,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let h = run_env("bak-header", &args!["--json", &devs], b"", &env);
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert_eq!(json_lines(&h.stdout).len(), 2);
    let r = run_env(
        "bak-read",
        &args!["--quiet", "--file", "2", &devs],
        b"",
        &env,
    );
    assert!(r.code == 0 && r.stdout == two, "{}", r.stderr);
    let v = run_env("bak-verify", &args![&devs], b"", &env);
    assert_eq!(v.code, 0, "{}", v.stderr);
    // A container that does not exist is named, and not created.
    let o = run_env(
        "bak-write",
        &args!["--quiet", "az://nosuch/x.bak"],
        b"x",
        &env,
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("container \"nosuch\" does not exist"),
        "{}",
        o.stderr
    );
}

#[test]
fn an_encrypted_set_over_urls_and_a_file_restores_with_the_key_and_verifies_fast_without() {
    use age::secrecy::ExposeSecret;
    let Some(s3) = moto() else { return };
    let b = s3.bucket("crypt");
    let t = temp_dir("s3crypt");
    let id = age::x25519::Identity::generate();
    let key = t.path().join("id.txt");
    std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
    let recipient = id.to_public().to_string();
    let devs = vec![
        url(&b, "e1.bak"),
        t.path().join("e2.bak"),
        url(&b, "e3.bak"),
    ];
    let input = data(18 << 20, 8);
    let w = tool(
        s3,
        "bak-write",
        &args![
            "--quiet",
            "--compress",
            "zstd:1",
            "--part-size",
            "5M",
            "--recipient",
            recipient.as_str(),
            &devs
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    // Nothing of the plaintext is on either kind of device.
    let marker = &input[4 << 20..(4 << 20) + 64];
    let on_file = std::fs::read(&devs[1]).unwrap();
    assert!(!on_file.windows(64).any(|w| w == marker));
    let r = tool(
        s3,
        "bak-read",
        &args!["--quiet", "--identity", &key, &devs],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    // Without the key: the read is refused (exit 2), the listing and a fast verify pass.
    let r = tool(s3, "bak-read", &args!["--quiet", &devs], b"");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let h = tool(s3, "bak-header", &args!["--json", &devs], b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    assert_eq!(rows[0]["IsComplete"], true, "{rows:?}");
    assert_eq!(rows[0]["Encrypted"], true, "{rows:?}");
    let fast = tool(s3, "bak-verify", &args!["--fast", &devs], b"");
    assert_eq!(fast.code, 0, "{}", fast.stderr);
    let full = tool(s3, "bak-verify", &args!["--identity", &key, &devs], b"");
    assert_eq!(full.code, 0, "{}", full.stderr);
}

#[test]
fn a_gs_url_without_google_credentials_is_a_clear_exit_2() {
    // No GCS server here: what can be checked is the URL's parsing and that a missing
    // credential is said at once (not minutes of asking a metadata server that is not there).
    let t = temp_dir("gcs");
    let nobody = format!("127.0.0.1:{}", free_port());
    let env: Vec<(String, String)> = [
        ("HOME", t.path().to_str().unwrap()),
        ("GCE_METADATA_HOST", nobody.as_str()),
        ("GCE_METADATA_IP", nobody.as_str()),
        ("BAK_STORE_RETRIES", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dev = PathBuf::from("gs://some-bucket/dir/db.bak");
    for (name, stdin) in [
        ("bak-write", &b"x"[..]),
        ("bak-read", b""),
        ("bak-header", b""),
        ("bak-verify", b""),
    ] {
        let mut cmd = std::process::Command::new(bin(name));
        let q = if name == "bak-header" {
            "--json"
        } else {
            "--quiet"
        };
        cmd.args(args![q, &dev]);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GOOGLE_")) {
            cmd.env_remove(k);
        }
        let o = run_env_cmd(cmd, stdin, &env);
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains("gs://some-bucket/dir/db.bak"),
            "{name}: {}",
            o.stderr
        );
        assert!(
            o.stderr.contains("no Google Cloud credentials")
                && o.stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{name}: {}",
            o.stderr
        );
    }
    // A key file that is not one is named as such, and the URL too.
    let bad = t.path().join("key.json");
    std::fs::write(&bad, "not json").unwrap();
    let mut env = env.clone();
    env.push((
        "GOOGLE_SERVICE_ACCOUNT".into(),
        bad.to_str().unwrap().to_string(),
    ));
    let o = run_env("bak-header", &args![&dev], b"", &env);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("gs://some-bucket/dir/db.bak"),
        "{}",
        o.stderr
    );
    // A folder is not an object.
    let o = run_env("bak-header", &args!["gs://some-bucket/dir/"], b"", &env);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("names a folder"), "{}", o.stderr);
}
