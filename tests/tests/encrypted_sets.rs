//! Encrypted backup sets (docs/FORMAT.md, "Encryption"): round trips to recipients and a
//! passphrase; a wrong or missing key is exit 2 with nothing written; the media hold nothing of
//! the plaintext; damage and forgery are found with the key; blocks cannot be moved between
//! sets, reordered or cut off; the stock `age` CLI unwraps the data key as documented.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::ExposeSecret;
use bak_core::bytes::{
    parse_frame, EndOfSet, Mbc, RecordType, TrailingConfig, FRAME_HEADER_LEN, RECORD_PREFIX_LEN,
};
use bak_core::internals::scan_file as scan_family;

use crate::util::*;

/// An age identity file and its recipient.
struct Id {
    file: PathBuf,
    recipient: String,
}

/// A new age identity in `dir`, written as age-keygen writes it.
fn identity(dir: &Path, name: &str) -> Id {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let file = dir.join(format!("{name}.txt"));
    let text = format!(
        "# created: by the tests\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    std::fs::write(&file, text).unwrap();
    Id { file, recipient }
}

fn passphrase(dir: &Path, name: &str, p: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, format!("{p}\n")).unwrap();
    f
}

fn tool(t: &str, a: &[std::ffi::OsString]) -> Output {
    run(t, &os(a), b"")
}

fn header_json(devs: &[PathBuf]) -> Vec<serde_json::Value> {
    let h = tool("bak-header", &args!["--json", devs]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    json_lines(&h.stdout)
}

/// The fingerprint bak-header shows for a recipient, as FORMAT.md says to compute it.
fn fingerprint(recipient: &str) -> String {
    let f = bak_core::keys::recipient_fingerprint(recipient);
    format!("x25519:{}", bak_core::bytes::hex(&f))
}

#[test]
fn round_trips_with_one_recipient_several_a_passphrase_and_a_mix() {
    let t = temp_dir("enc-rt");
    let (a, b, c) = (
        identity(t.path(), "a"),
        identity(t.path(), "b"),
        identity(t.path(), "c"),
    );
    let pass = passphrase(t.path(), "pass.txt", "correct horse battery staple");
    let list = t.path().join("team.txt");
    std::fs::write(
        &list,
        format!("# the team\n{}\n\n{}\n", b.recipient, c.recipient),
    )
    .unwrap();
    let list_s = list.to_str().unwrap();
    let pass_s = pass.to_str().unwrap();
    // (name, write options, the keys each of which must open the set alone: identity files,
    // or none for the passphrase)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<Vec<&'a Path>>);
    let cases: Vec<Case> = vec![
        (
            "one",
            vec!["--recipient", &a.recipient],
            vec![vec![a.file.as_path()]],
        ),
        (
            "several",
            vec!["--recipient", &a.recipient, "--recipient-file", list_s],
            vec![
                vec![a.file.as_path()],
                vec![b.file.as_path()],
                vec![c.file.as_path()],
            ],
        ),
        (
            "passphrase",
            vec!["--passphrase-file", pass_s],
            vec![vec![]],
        ),
        (
            "mix",
            vec!["--recipient-file", list_s, "--passphrase-file", pass_s],
            vec![vec![c.file.as_path()], vec![]],
        ),
    ];
    for (name, opts, openers) in &cases {
        for (codec, size, n) in [
            ("zstd:3", 5 * MTS + 17, 2usize),
            ("none", 3 * MTS, 1),
            ("zstd:1", 0, 1),
        ] {
            let devs = devices(&t, &format!("{name}-{}-{size}-", &codec[..4]), n);
            let input = data(size, size as u64 + 5);
            let mut w = vec!["--max-transfer-size", "64K", "-c", codec];
            w.extend(opts.iter().copied());
            let out = write(&devs, &w, &input);
            assert_eq!(out.code, 0, "{name} {codec} {size}: {}", out.stderr);
            let sets = header_json(&devs);
            assert_eq!(sets[0]["Encrypted"], true, "{name}");
            assert!(
                sets[0]["EncryptionAlgorithm"]
                    .as_str()
                    .is_some_and(|a| a == "AES-256-GCM" || a == "ChaCha20-Poly1305"),
                "{name}: {}",
                sets[0]
            );
            let fps: Vec<&str> = sets[0]["KeyFingerprints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for id in [&a, &b, &c] {
                let named = opts.contains(&id.recipient.as_str())
                    || (opts.contains(&list_s) && id.recipient != a.recipient);
                assert_eq!(fps.contains(&fingerprint(&id.recipient).as_str()), named);
            }
            assert_eq!(fps.contains(&"passphrase"), opts.contains(&pass_s));
            for keys in openers {
                let mut r: Vec<std::ffi::OsString> = Vec::new();
                for k in keys {
                    r.extend(args!["--identity", *k]);
                }
                if keys.is_empty() {
                    r.extend(args!["--passphrase-file", pass_s]);
                }
                let mut rr = r.clone();
                rr.extend(args!["--quiet", &devs]);
                let got = tool("bak-read", &rr);
                assert_eq!(got.code, 0, "{name} {codec} {size}: {}", got.stderr);
                assert!(got.stdout == input, "{name} {codec} {size}: bytes differ");
                let mut v = r.clone();
                v.extend(args![&devs]);
                let ver = tool("bak-verify", &v);
                assert_eq!(ver.code, 0, "{name}: verify {}", ver.stderr);
            }
        }
    }
}

#[test]
fn a_wrong_or_missing_key_exits_2_with_nothing_on_stdout_and_names_the_keys() {
    let t = temp_dir("enc-key");
    let (a, other) = (identity(t.path(), "a"), identity(t.path(), "other"));
    let pass = passphrase(t.path(), "pass.txt", "right");
    let wrong = passphrase(t.path(), "wrong.txt", "wrong");
    let devs = devices(&t, "k", 2);
    let input = data(4 * MTS + 3, 9);
    let w = write(
        &devs,
        &[
            "--max-transfer-size",
            "64K",
            "--recipient",
            &a.recipient,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let fp = fingerprint(&a.recipient);
    let out = t.path().join("out");
    let other_key = temp_file("dk.bin", &[7; 32]);
    for (what, keys) in [
        ("no key", Vec::new()),
        ("wrong identity", args!["--identity", &other.file]),
        ("wrong passphrase", args!["--passphrase-file", &wrong]),
        (
            "a data key of another set",
            args!["--data-key-file", &*other_key],
        ),
    ] {
        let mut r = keys.clone();
        r.extend(args!["--quiet", &devs]);
        let got = tool("bak-read", &r);
        assert_eq!(got.code, 2, "{what}: {}", got.stderr);
        assert!(got.stdout.is_empty(), "{what}: bak-read wrote bytes");
        assert!(
            got.stderr.contains(&fp) && got.stderr.contains("passphrase"),
            "{what}: the message does not name the keys: {}",
            got.stderr
        );
        assert!(got.stderr.contains("k1.bak"), "{}", got.stderr);
        // Into a file: nothing is left behind.
        let mut r = keys.clone();
        r.extend(args!["--quiet", "-o", &out, &devs]);
        assert_eq!(tool("bak-read", &r).code, 2, "{what}");
        assert!(!out.exists(), "{what}: an output file was left");
        let mut v = keys.clone();
        v.extend(args![&devs]);
        let ver = tool("bak-verify", &v);
        assert_eq!(ver.code, 2, "{what}: verify {}", ver.stderr);
        assert!(ver.stdout.is_empty(), "{what}: verify printed a verdict");
        assert!(ver.stderr.contains(&fp), "{}", ver.stderr);
    }
    // The identity given is named by its fingerprint, never by its secret.
    let got = tool("bak-read", &args!["--identity", &other.file, &devs]);
    assert!(got.stderr.contains(&fingerprint(&other.recipient)));
    assert!(!got.stderr.contains("AGE-SECRET-KEY"));
    // No key needed: the listing and a fast verify.
    assert_eq!(header_json(&devs)[0]["IsComplete"], true);
    let fast = tool("bak-verify", &args!["--fast", &devs]);
    assert_eq!(fast.code, 0, "{}", fast.stderr);
    assert!(String::from_utf8_lossy(&fast.stdout).contains("is valid"));
}

#[test]
fn the_media_hold_nothing_of_the_plaintext() {
    let t = temp_dir("enc-marker");
    let a = identity(t.path(), "a");
    let marker = b"PLAINTEXT-MARKER-4f1c9a";
    let mut input = Vec::new();
    while input.len() < 6 * MTS {
        input.extend_from_slice(marker);
        input.extend_from_slice(&data(997, input.len() as u64));
    }
    let find = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker);
    for (enc, codec) in [(true, "none"), (true, "zstd:1"), (false, "none")] {
        let devs = devices(&t, &format!("m{enc}{codec}"), 2);
        let mut w = vec!["--max-transfer-size", "64K", "-c", codec, "--name", "named"];
        if enc {
            w.extend(["--recipient", a.recipient.as_str()]);
        }
        assert_eq!(write(&devs, &w, &input).code, 0);
        let media: Vec<u8> = devs
            .iter()
            .flat_map(|d| std::fs::read(d).unwrap())
            .collect();
        // The control: a plain set uncompressed holds the marker, and names are not hidden.
        assert_eq!(find(&media), !enc, "{enc} {codec}");
        assert!(media.windows(5).any(|w| w == b"named"));
        if enc {
            let r = read(&devs, &["--identity", a.file.to_str().unwrap()]);
            assert!(r.code == 0 && r.stdout == input, "{}", r.stderr);
        }
    }
}

/// One encrypted set, compressed, on two families, to a recipient and a passphrase (two key
/// records): the media the damage tests work on.
fn damage_media(t: &tempfile::TempDir) -> (Vec<PathBuf>, Vec<u8>, Id) {
    let a = identity(t.path(), "a");
    let pass = passphrase(t.path(), "pass.txt", "a passphrase");
    let devs = devices(t, "d", 2);
    let input = data(9 * MTS + 100, 31);
    let w = write(
        &devs,
        &[
            "--max-transfer-size",
            "64K",
            "-c",
            "zstd:3",
            "--recipient",
            &a.recipient,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    (devs, input, a)
}

/// With the key: verify says damaged naming the file, a restore never gives other bytes, and
/// (`refused`) does not exit 0 at all.
fn check_found(devs: &[PathBuf], fam: usize, key: &Path, input: &[u8], refused: bool, what: &str) {
    let v = tool("bak-verify", &args!["--identity", key, devs]);
    assert_eq!(v.code, 1, "{what}: verify exit {}: {}", v.code, v.stderr);
    let name = devs[fam].file_name().unwrap().to_string_lossy().to_string();
    let text = format!("{}{}", String::from_utf8_lossy(&v.stdout), v.stderr);
    assert!(text.contains(&name), "{what}: verify names no file: {text}");
    let r = tool("bak-read", &args!["--quiet", "--identity", key, devs]);
    if r.code == 0 {
        assert!(!refused, "{what}: restored");
        assert!(r.stdout == input, "{what}: restore exit 0 with other bytes");
    } else {
        // A field changed into an algorithm this build does not know reads as media of a
        // newer writer: unsupported (exit 2), which is not damage by its bytes alone.
        let unsupported = r.code == 2 && r.stderr.contains("not known to this build");
        assert!(
            r.code == 1 || unsupported,
            "{what}: damage is exit 1: {} {}",
            r.code,
            r.stderr
        );
    }
}

#[test]
fn bit_flips_over_every_record_of_an_encrypted_set_are_found_with_the_key() {
    let t = temp_dir("enc-flips");
    let (devs, input, a) = damage_media(&t);
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<(usize, u64, u64)>> = Default::default();
    for (i, d) in devs.iter().enumerate() {
        for (k, s, e) in regions(d) {
            by_kind.entry(k).or_default().push((i, s, e));
        }
    }
    assert_eq!(
        by_kind["key record"].len(),
        4,
        "two key records on each family"
    );
    let mut rng = Rng::new(0x5eed_0015);
    let mut cases = 0;
    for (kind, places) in &by_kind {
        for _ in 0..22 {
            let (fam, s, e) = places[rng.below(places.len() as u64) as usize];
            let off = s + rng.below(e - s);
            let bit = rng.below(8) as u8;
            let mut bytes = pristine[fam].clone();
            bytes[off as usize] ^= 1 << bit;
            std::fs::write(&devs[fam], &bytes).unwrap();
            let in_set = !matches!(*kind, "set map slot");
            let what = format!("{kind} flip at {off} bit {bit} of family {}", fam + 1);
            check_found(&devs, fam, &a.file, &input, in_set, &what);
            std::fs::write(&devs[fam], &pristine[fam]).unwrap();
            cases += 1;
        }
    }
    assert!(cases >= 200, "only {cases} cases");
}

/// Make a record's CRCs hold again after its body at `off` (a record frame) was changed.
fn fix_record(bytes: &mut [u8], off: usize) {
    let h = off + FRAME_HEADER_LEN;
    let len = u32::from_le_bytes(bytes[h + 8..h + 12].try_into().unwrap()) as usize;
    let body = h + 24;
    let crc = crc32fast::hash(&bytes[body..body + len]);
    bytes[h + 12..h + 16].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&bytes[h..h + 20]);
    bytes[h + 20..h + 24].copy_from_slice(&hcrc.to_le_bytes());
}

/// Make a block's payload CRC (in its header at `header`) hold again, and the header's CRCs.
fn fix_payload(bytes: &mut [u8], header: usize, stored: usize) {
    let p = header + RECORD_PREFIX_LEN + 56;
    let crc = crc32fast::hash(&bytes[p..p + stored]);
    bytes[header + RECORD_PREFIX_LEN + 36..header + RECORD_PREFIX_LEN + 40]
        .copy_from_slice(&crc.to_le_bytes());
    fix_record(bytes, header);
}

#[test]
fn forged_changes_that_keep_every_crc_are_found_with_the_key() {
    let t = temp_dir("enc-forge");
    let (devs, input, a) = damage_media(&t);
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut places = Vec::new();
    for (i, d) in devs.iter().enumerate() {
        for (k, s, e) in regions(d) {
            if matches!(
                k,
                "set header"
                    | "leading config"
                    | "key record"
                    | "block header"
                    | "block payload"
                    | "trailing config"
            ) {
                places.push((i, k, s, e));
            }
        }
    }
    let mut rng = Rng::new(0x5eed_f0f0);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..90 {
        let (fam, kind, s, e) = places[rng.below(places.len() as u64) as usize];
        let mut bytes = pristine[fam].clone();
        let (s, e) = (s as usize, e as usize);
        let off = if kind == "block payload" {
            s + rng.below((e - s) as u64) as usize
        } else {
            // A body byte; a block header's reserved u32 (body 44..48) is bound by nothing.
            let body =
                s + RECORD_PREFIX_LEN + rng.below((e - s - RECORD_PREFIX_LEN) as u64) as usize;
            if kind == "block header" && (44..48).contains(&(body - s - RECORD_PREFIX_LEN)) {
                continue;
            }
            body
        };
        bytes[off] ^= 1 << rng.below(8);
        if kind == "block payload" {
            let header = s - 88;
            fix_payload(&mut bytes, header, e - s);
        } else {
            fix_record(&mut bytes, s);
        }
        std::fs::write(&devs[fam], &bytes).unwrap();
        let what = format!("forged {kind} byte {off} of family {}", fam + 1);
        check_found(&devs, fam, &a.file, &input, true, &what);
        std::fs::write(&devs[fam], &pristine[fam]).unwrap();
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 6, "every kind forged: {kinds:?}");
}

/// The blocks of a family file: (header offset, stored length), in order.
fn blocks_of(path: &Path) -> Vec<(usize, usize)> {
    regions(path)
        .into_iter()
        .filter(|r| r.0 == "block payload")
        .map(|(_, s, e)| (s as usize - 88, (e - s) as usize))
        .collect()
}

#[test]
fn blocks_swapped_between_sets_reordered_or_cut_off_are_refused() {
    let t = temp_dir("enc-move");
    let a = identity(t.path(), "a");
    let key = a.file.to_str().unwrap().to_string();
    let key = key.as_str();
    // Two sets of the same size to the same recipient, uncompressed: their blocks have the
    // same lengths (age's header, and so the key record, varies in length: the blocks' offsets
    // do not match).
    let input = data(6 * MTS, 44);
    let write_one = |name: &str| {
        let d = t.path().join(name);
        let w = write(
            std::slice::from_ref(&d),
            &["--max-transfer-size", "64K", "--recipient", &a.recipient],
            &input,
        );
        assert_eq!(w.code, 0, "{}", w.stderr);
        d
    };
    let (x, y) = (write_one("x.bak"), write_one("y.bak"));
    let (bx, by) = (blocks_of(&x), blocks_of(&y));
    let lens = |b: &[(usize, usize)]| b.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(
        lens(&bx),
        lens(&by),
        "the blocks of the two files are alike"
    );
    let xs = std::fs::read(&x).unwrap();
    let ys = std::fs::read(&y).unwrap();
    let refused = |bytes: &[u8], what: &str, why: &[&str]| {
        std::fs::write(&x, bytes).unwrap();
        let r = tool("bak-read", &args!["--quiet", "--identity", key, &x]);
        assert_eq!(r.code, 1, "{what}: read {}", r.stderr);
        let v = tool("bak-verify", &args!["--identity", key, &x]);
        assert_eq!(v.code, 1, "{what}: verify {}", v.stderr);
        let text = String::from_utf8_lossy(&v.stdout).to_string();
        assert!(
            why.iter().any(|w| text.contains(w)),
            "{what}: verify does not say {why:?}: {text}"
        );
    };
    let (h2, len) = bx[2];
    let span = 88 + len;

    // Block 2 of y put in x whole: its header names another set.
    let y2 = by[2].0;
    let mut b = xs.clone();
    b[h2..h2 + span].copy_from_slice(&ys[y2..y2 + span]);
    refused(
        &b,
        "block from another set",
        &["another set", "authenticate"],
    );
    // ... and with x's set GUID and family written into its header, all CRCs made to hold:
    // only the seal tells (another data key).
    b[h2 + 32..h2 + 48].copy_from_slice(&xs[h2 + 32..h2 + 48]);
    fix_record(&mut b, h2);
    refused(&b, "block from another set, relabelled", &["authenticate"]);

    // Blocks 1 and 2 of x swapped whole: the sequence goes backwards.
    let (h1, _) = bx[1];
    let mut b = xs.clone();
    b[h1..h1 + span].copy_from_slice(&xs[h2..h2 + span]);
    b[h2..h2 + span].copy_from_slice(&xs[h1..h1 + span]);
    refused(
        &b,
        "blocks reordered",
        &["backwards", "twice", "authenticate"],
    );
    // Only their payloads swapped, the payload CRCs made to hold: the nonce holds the sequence.
    let mut b = xs.clone();
    b[h1 + 88..h1 + span].copy_from_slice(&xs[h2 + 88..h2 + span]);
    b[h2 + 88..h2 + span].copy_from_slice(&xs[h1 + 88..h1 + span]);
    fix_payload(&mut b, h1, len);
    fix_payload(&mut b, h2, len);
    refused(&b, "payloads reordered", &["authenticate"]);

    // Cut off after block 4: the set is incomplete, and a restore to a file leaves nothing.
    let (h5, _) = bx[5];
    refused(&xs[..h5], "cut after block 4", &["incomplete", "missing"]);
    let out = t.path().join("out");
    let r = tool("bak-read", &args!["--identity", key, "-o", &out, &x]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!out.exists());
    // Through a pipe too.
    let mut child = Command::new(bin("bak-read"))
        .args(args!["--quiet", "--identity", key, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        let _ = si.write_all(&xs[..h5]);
    }
    assert_eq!(child.wait().unwrap().code(), Some(1));

    // Cut off the last block and rewrite the records after it as a set of 5 blocks, every
    // CRC and pointer holding: block 4 is not marked last (and the trailing config's MAC no
    // longer holds).
    std::fs::write(&x, &xs).unwrap();
    let scan = scan_family(&std::fs::File::open(&x).unwrap(), &x).unwrap();
    let e = scan.sets[0].eset;
    let at = bak_core::Location::device("x");
    let (_, tb) = parse_frame(
        &xs[e.trailing_offset as usize..],
        RecordType::TrailingConfig,
        &at,
    )
    .unwrap();
    let mut tc = TrailingConfig::parse_body(tb, &at).unwrap();
    let (_, mb) = parse_frame(&xs[e.mbc_offset as usize..], RecordType::Mbc, &at).unwrap();
    let mut mbc = Mbc::parse_body(mb, &at).unwrap();
    let last = mbc.entries.pop().unwrap();
    for v in [&mut tc.total_original, &mut tc.family_original] {
        *v -= u64::from(last.original_len);
    }
    for v in [&mut tc.total_stored, &mut tc.family_stored] {
        *v -= u64::from(last.stored_len);
    }
    tc.total_blocks -= 1;
    tc.family_blocks -= 1;
    let (h_last, _) = bx[5];
    let mut b = xs[..h_last].to_vec();
    let trailing = b.len() as u64;
    b.extend(tc.encode());
    let mbc_off = b.len() as u64;
    b.extend(mbc.encode());
    let eset = EndOfSet {
        trailing_offset: trailing,
        mbc_offset: mbc_off,
        self_offset: b.len() as u64,
        family_blocks: e.family_blocks - 1,
        ..e
    };
    b.extend(eset.encode());
    refused(
        &b,
        "last block cut off, records rewritten",
        &["marked last"],
    );
}

#[test]
fn the_age_cli_unwraps_the_data_key_as_documented() {
    if !have("age") {
        skip("the age command is not installed (apt-get install age)");
        return;
    }
    let t = temp_dir("enc-age");
    let a = identity(t.path(), "a");
    let dev = t.path().join("x.bak");
    let devs = vec![dev.clone()];
    // A plain set first, then two encrypted ones: the recipe picks the set by its GUID.
    let inputs = [data(MTS + 1, 1), data(3 * MTS + 2, 2), data(2 * MTS, 3)];
    for (i, input) in inputs.iter().enumerate() {
        let mut w = vec!["--max-transfer-size", "64K", "-c", "zstd"];
        if i > 0 {
            w.extend(["--recipient", a.recipient.as_str()]);
        }
        assert_eq!(write(&devs, &w, input).code, 0);
    }
    let sets = header_json(&devs);
    assert_eq!(
        sets.iter()
            .map(|s| s["Encrypted"].clone())
            .collect::<Vec<_>>(),
        [false, true, true]
    );
    let guid = sets[1]["BackupSetGUID"].as_str().unwrap();
    // FORMAT.md, "Unwrapping the data key with the stock age tool".
    let script = r#"set -e
LC_ALL=C awk -v want="bak key record $G x25519" \
  '$0 == want {f=1; next} f {print} f && /^-----END AGE ENCRYPTED FILE-----$/ {exit}' \
  "$DEV" > "$DIR/set.age"
age -d -i "$KEY" -o "$DIR/set.key" "$DIR/set.age""#;
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("G", guid)
        .env("DEV", &dev)
        .env("KEY", &a.file)
        .env("DIR", t.path())
        .status()
        .unwrap();
    assert!(st.success(), "the documented recipe failed");
    let dk = t.path().join("set.key");
    assert_eq!(std::fs::metadata(&dk).unwrap().len(), 32);
    let r = tool(
        "bak-read",
        &args!["--quiet", "--file", "2", "--data-key-file", &dk, &dev],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == inputs[1], "the unwrapped key opens set 2");
    // It is set 2's key, not set 3's.
    let r = tool(
        "bak-read",
        &args!["--quiet", "--file", "3", "--data-key-file", &dk, &dev],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The fingerprint recipe of FORMAT.md gives what bak-header shows.
    if have("sha256sum") {
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#"printf %s "$R" | sha256sum | cut -c1-16"#)
            .env("R", &a.recipient)
            .output()
            .unwrap();
        let fp = format!("x25519:{}", String::from_utf8_lossy(&out.stdout).trim());
        assert_eq!(sets[1]["KeyFingerprints"][0], fp.as_str());
    }
}

#[test]
fn encrypted_and_plain_sets_share_media_and_go_through_pipes() {
    let t = temp_dir("enc-mix");
    let a = identity(t.path(), "a");
    let key = a.file.to_str().unwrap();
    let devs = devices(&t, "m", 2);
    let inputs = [data(2 * MTS + 5, 1), data(3 * MTS + 7, 2), data(MTS - 1, 3)];
    for (i, input) in inputs.iter().enumerate() {
        let mut w = vec!["--max-transfer-size", "64K", "-c", "zstd:1"];
        if i == 1 {
            w.extend(["--recipient", a.recipient.as_str()]);
        }
        assert_eq!(write(&devs, &w, input).code, 0);
    }
    let sets = header_json(&devs);
    let enc: Vec<_> = sets.iter().map(|s| s["Encrypted"].clone()).collect();
    assert_eq!(enc, [false, true, false]);
    assert!(sets[0]["KeyFingerprints"].is_null());
    // Plain sets read without a key; the encrypted one with it.
    for (i, input) in inputs.iter().enumerate() {
        let pos = (i + 1).to_string();
        let mut extra = vec!["--file", pos.as_str()];
        if i == 1 {
            extra.extend(["--identity", key]);
        }
        let r = read(&devs, &extra);
        assert!(r.code == 0 && r.stdout == *input, "set {pos}: {}", r.stderr);
    }
    // A verify of every set needs the key; of set 3 alone it does not.
    assert_eq!(tool("bak-verify", &args![&devs]).code, 2);
    assert_eq!(tool("bak-verify", &args!["--file", "3", &devs]).code, 0);
    assert_eq!(tool("bak-verify", &args!["--identity", key, &devs]).code, 0);

    // Standard output as the device, standard input as the media.
    let w = run(
        "bak-write",
        &os(&args![
            "--quiet",
            "--recipient",
            a.recipient.as_str(),
            "-c",
            "zstd",
            "-"
        ]),
        &inputs[1],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let r = run(
        "bak-read",
        &os(&args!["--quiet", "--identity", key, "-"]),
        &w.stdout,
    );
    assert!(r.code == 0 && r.stdout == inputs[1], "{}", r.stderr);
    let r = run("bak-read", &os(&args!["--quiet", "-"]), &w.stdout);
    assert!(r.code == 2 && r.stdout.is_empty(), "{}", r.stderr);
    let h = run("bak-header", &os(&args!["--json", "-"]), &w.stdout);
    assert_eq!(json_lines(&h.stdout)[0]["Encrypted"], true, "{}", h.stderr);

    // FIFOs: bak-write into two, bak-read from them at once.
    if !have("mkfifo") {
        skip("mkfifo is not installed");
        return;
    }
    let fifos = devices(&t, "fifo", 2);
    for f in &fifos {
        assert!(Command::new("mkfifo").arg(f).status().unwrap().success());
    }
    let reader = Command::new(bin("bak-read"))
        .args(args!["--quiet", "--identity", key, &fifos])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = write(
        &fifos,
        &["--max-transfer-size", "64K", "--recipient", &a.recipient],
        &inputs[0],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let out = reader.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == inputs[0]);
}

#[test]
fn chacha20_poly1305_is_written_when_asked_and_reads_back() {
    let t = temp_dir("enc-chacha");
    let a = identity(t.path(), "a");
    let devs = devices(&t, "c", 2);
    let input = data(5 * MTS + 11, 8);
    let w = write(
        &devs,
        &[
            "--max-transfer-size",
            "64K",
            "-c",
            "zstd",
            "--cipher",
            "chacha20-poly1305",
            "--recipient",
            &a.recipient,
        ],
        &input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(
        header_json(&devs)[0]["EncryptionAlgorithm"],
        "ChaCha20-Poly1305"
    );
    let r = read(&devs, &["--identity", a.file.to_str().unwrap()]);
    assert!(r.code == 0 && r.stdout == input, "{}", r.stderr);
    // --cipher without anyone to encrypt to is refused before any device is made.
    let lone = t.path().join("lone.bak");
    let w = write(
        std::slice::from_ref(&lone),
        &["--cipher", "chacha20-poly1305"],
        b"x",
    );
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(!lone.exists());
}
