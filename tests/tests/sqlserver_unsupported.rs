//! What the tools cannot read is called unsupported (exit 2), never damaged (exit 1): backups
//! marked encrypted or compressed the way MTF marks them, TDE-encrypted pages, and compressed
//! chunks in another algorithm than MS_XPRESS (ZSTD, QAT_DEFLATE). No real backup of these
//! exists among the fixtures, so each is made by patching a real one: a marker set, and the
//! block or stream header re-checksummed so that the marker, not a checksum, is what the tools
//! find. Beside each, real damage to the same bytes is still damage. And the media password:
//! every tool says it is there and not checked, and reads on.
//!
//! The markers, and how sure each is, are in docs/MTF.md ("What this reader cannot read").

use std::path::Path;

use crate::mtf_support::{blocks, chunks, seal_block, seal_stream, streams, u16_at};
use crate::util::*;

/// A plain one-set fixture (SQL Server 2016, 512-byte soft filemarks, page checksums).
const PLAIN: &str = "testdb_dancingfrog.bak";
/// A compressed one-set fixture (55 chunks).
const COMPRESSED: &str = "cmp2019_full_checksum.bak";

/// The three tools on one file: (code, stdout and stderr together) of each.
struct Runs {
    verify: (i32, String),
    read: (i32, String),
    header: (i32, String),
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), o.stderr)
}

fn all_three(f: &Path) -> Runs {
    let v = run("bak-verify", &os(&args![f]), b"");
    let r = run("bak-read", &os(&args!["--quiet", f]), b"");
    let h = run("bak-header", &os(&args!["--json", f]), b"");
    Runs {
        verify: (v.code, text(&v)),
        read: (r.code, text(&r)),
        header: (h.code, text(&h)),
    }
}

/// bak-verify and bak-read exit 2, naming the file, the feature and "unsupported", and never
/// "damaged".
fn assert_unsupported(f: &Path, runs: &Runs, feature: &str) {
    let name = f.file_name().unwrap().to_string_lossy();
    for (tool, (code, out)) in [("bak-verify", &runs.verify), ("bak-read", &runs.read)] {
        assert_eq!(*code, 2, "{tool}: {out}");
        for want in ["unsupported", feature, &*name] {
            assert!(out.contains(want), "{tool}: no {want:?} in:\n{out}");
        }
        assert!(!out.contains("damaged"), "{tool}: {out}");
    }
}

/// bak-verify and bak-read exit 1; bak-verify calls the set damaged; nothing is unsupported.
fn assert_damaged(runs: &Runs) {
    for (tool, (code, out)) in [("bak-verify", &runs.verify), ("bak-read", &runs.read)] {
        assert_eq!(*code, 1, "{tool}: {out}");
        assert!(!out.contains("unsupported"), "{tool}: {out}");
    }
    assert!(runs.verify.1.contains("is damaged"), "{}", runs.verify.1);
}

/// The one HEADERONLY row of a one-set file.
fn header_row(runs: &Runs) -> serde_json::Value {
    assert_eq!(runs.header.0, 0, "{}", runs.header.1);
    let out = &runs.header.1;
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    rows[0].clone()
}

#[test]
fn sets_marked_encrypted_as_mtf_marks_them_are_unsupported_and_listed() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let m = std::fs::read(dir.join(PLAIN)).unwrap();
    let sset = blocks(&m, b"SSET")[0];
    let mqda = streams(&m, b"MQDA")[0];

    // The SSET's common block attribute MTF_ENCRYPTION (0x20000), its header re-checksummed.
    let mut a = m.clone();
    a[sset + 6] |= 0x02;
    seal_block(&mut a, sset);
    let fa = temp_file("sset-encrypted.bak", &a);
    let runs = all_three(&fa);
    assert_unsupported(&fa, &runs, "backup encryption (BACKUP WITH ENCRYPTION");
    assert!(
        runs.verify.1.contains("MTF_ENCRYPTION"),
        "{}",
        runs.verify.1
    );
    assert!(
        runs.verify.1.contains("cannot be verified"),
        "{}",
        runs.verify.1
    );
    let row = header_row(&runs);
    assert_eq!(row["Encrypted"], true, "{row}");
    assert_eq!(row["KeyAlgorithm"], "unknown", "{row}");
    assert_eq!(row["EncryptorThumbprint"], serde_json::Value::Null, "{row}");
    // --mtf writes nothing of it either.
    let mtf = run("bak-read", &os(&args!["--quiet", "--mtf", &*fa]), b"");
    assert_eq!(mtf.code, 2, "{}", mtf.stderr);
    assert!(mtf.stdout.is_empty() && mtf.stderr.contains("unsupported"));
    // Nor --continue-after-error, which goes past damage, not past what cannot be read.
    let cae = run(
        "bak-read",
        &os(&args!["--quiet", "--continue-after-error", &*fa]),
        b"",
    );
    assert_eq!(cae.code, 2, "{}", cae.stderr);
    assert!(cae.stdout.is_empty(), "{} bytes written", cae.stdout.len());

    // The same bit flipped without the checksum mended is damage.
    let mut b = m.clone();
    b[sset + 6] |= 0x02;
    let fb = temp_file("sset-flipped.bak", &b);
    assert_damaged(&all_three(&fb));

    // The data stream's header marked STREAM_ENCRYPTED with data encryption algorithm 6.
    let mut c = m.clone();
    c[mqda + 6] |= 0x08;
    c[mqda + 16..mqda + 18].copy_from_slice(&6u16.to_le_bytes());
    seal_stream(&mut c, mqda);
    let fc = temp_file("stream-encrypted.bak", &c);
    let runs = all_three(&fc);
    assert_unsupported(&fc, &runs, "MTF data encryption algorithm 6");
    assert!(
        runs.verify
            .1
            .contains(&format!("stream MQDA at MTF offset {mqda}")),
        "{}",
        runs.verify.1
    );
    let row = header_row(&runs);
    assert_eq!(row["Encrypted"], true, "{row}");
    assert_eq!(row["KeyAlgorithm"], "MTF algorithm 6", "{row}");
    // The unpatched fixture lists as not encrypted.
    let plain = all_three(&dir.join(PLAIN));
    let row = header_row(&plain);
    assert_eq!(row["Encrypted"], false, "{row}");
    assert_eq!(row["KeyAlgorithm"], serde_json::Value::Null, "{row}");

    // The same stream header changed without its checksum mended is damage.
    let mut d = m.clone();
    d[mqda + 6] |= 0x08;
    let fd = temp_file("stream-flipped.bak", &d);
    assert_damaged(&all_three(&fd));
}

#[test]
fn mtf_software_compression_is_unsupported_and_named_by_its_algorithm() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let m = std::fs::read(dir.join(PLAIN)).unwrap();
    let sset = blocks(&m, b"SSET")[0];
    let msda = blocks(&m, b"MSDA")[0];
    // MTF_COMPRESSION (BIT2) on the MSDA block, the algorithm in the SSET (byte 58).
    let mut a = m.clone();
    a[msda + 4] |= 0x04;
    seal_block(&mut a, msda);
    a[sset + 58..sset + 60].copy_from_slice(&2u16.to_le_bytes());
    let fa = temp_file("mtf-compressed.bak", &a);
    let runs = all_three(&fa);
    assert_unsupported(&fa, &runs, "MTF software compression (algorithm 2)");
    let row = header_row(&runs);
    assert_eq!(row["Compressed"], true, "{row}");
    assert_eq!(row["Compression"], "MTF algorithm 2", "{row}");
    assert_eq!(row["Encrypted"], false, "{row}");

    // The SSET's algorithm field alone, which no checksum covers, is no marker: the set reads.
    let mut b = m.clone();
    b[sset + 58..sset + 60].copy_from_slice(&2u16.to_le_bytes());
    let fb = temp_file("sset-field-only.bak", &b);
    let runs = all_three(&fb);
    assert_eq!(runs.verify.0, 0, "{}", runs.verify.1);
    assert_eq!(runs.read.0, 0, "{}", runs.read.1);

    // The attribute bit flipped without the checksum mended is damage.
    let mut c = m.clone();
    c[msda + 4] |= 0x04;
    let fc = temp_file("msda-flipped.bak", &c);
    assert_damaged(&all_three(&fc));
}

/// The data stream of `m` (a plain backup): every 8 KiB page after the stream's 2 pad bytes,
/// as (offset, whether its header reads as a page header of file 1).
fn data_pages(m: &[u8]) -> Vec<(usize, bool)> {
    let mqda = streams(m, b"MQDA")[0];
    let len = u64::from_le_bytes(m[mqda + 8..mqda + 16].try_into().unwrap()) as usize;
    let first = mqda + 22 + 2;
    (0..(len - 2) / 8192)
        .map(|k| {
            let p = first + k * 8192;
            let header = m[p] == 1 && m[p + 1] != 0 && u16_at(m, p + 36) == 1;
            (p, header)
        })
        .collect()
}

/// Replace the body (bytes 96..8192) of the page at `p` with bytes that look like ciphertext;
/// the header stays, its checksum now stale.
fn encrypt_body(m: &mut [u8], p: usize, rng: &mut Rng) {
    for b in &mut m[p + 96..p + 8192] {
        *b = rng.next_u64() as u8;
    }
}

#[test]
fn tde_pages_are_unsupported_and_a_few_bad_pages_are_damage() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let m = std::fs::read(dir.join(PLAIN)).unwrap();
    let pages = data_pages(&m);
    let with_header: Vec<usize> = pages.iter().filter(|p| p.1).map(|p| p.0).collect();
    assert!(with_header.len() > 100, "{} pages", with_header.len());

    // Every page's body ciphertext, every header readable: what TDE is described to do.
    let mut rng = Rng::new(17);
    let mut a = m.clone();
    for &p in &with_header {
        encrypt_body(&mut a, p, &mut rng);
    }
    let fa = temp_file("tde.bak", &a);
    let runs = all_three(&fa);
    assert_unsupported(&fa, &runs, "transparent data encryption (TDE)");
    assert!(
        runs.verify.1.contains("no possible slot array"),
        "{}",
        runs.verify.1
    );
    // None of the hundreds of pages whose checksum now fails is reported as damage.
    assert!(
        !runs.verify.1.contains("checksum fails"),
        "{}",
        runs.verify.1
    );
    let row = header_row(&runs);
    assert_eq!(row["Encrypted"], true, "{row}");
    assert_eq!(row["KeyAlgorithm"], serde_json::Value::Null, "{row}");

    // Two pages so changed are damage: their checksums fail, named by bak-verify.
    let checksummed: Vec<usize> = with_header
        .iter()
        .copied()
        .filter(|&p| u16_at(&m, p + 4) & 0x200 != 0)
        .collect();
    let mut b = m.clone();
    for &p in &checksummed[10..12] {
        encrypt_body(&mut b, p, &mut rng);
    }
    let fb = temp_file("two-pages.bak", &b);
    let runs = all_three(&fb);
    assert_damaged(&runs);
    assert_eq!(
        runs.verify.1.matches("checksum fails").count(),
        2,
        "{}",
        runs.verify.1
    );

    // Every other page is not three quarters of them: damage too.
    let mut c = m.clone();
    for &p in with_header.iter().step_by(2) {
        encrypt_body(&mut c, p, &mut rng);
    }
    let fc = temp_file("half-the-pages.bak", &c);
    assert_damaged(&all_three(&fc));
}

/// `m` with bytes `at..` replaced by `with`.
fn patched(m: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut v = m.to_vec();
    v[at..at + with.len()].copy_from_slice(with);
    v
}

/// Re-seal the check value of the chunk at `at` (payload length `clen`).
fn seal_chunk(m: &mut [u8], at: usize, clen: usize) {
    let c = bak_mtf::chunk_check(&m[at + 28..at + 28 + clen]);
    m[at + 24..at + 28].copy_from_slice(&c.to_le_bytes());
}

const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP: [u8; 3] = [0x1f, 0x8b, 0x08];

#[test]
fn chunks_in_another_algorithm_are_unsupported_and_a_damaged_chunk_is_not() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let m = std::fs::read(dir.join(COMPRESSED)).unwrap();
    let all = chunks(&m);
    assert!(all.len() > 40, "{} chunks", all.len());
    // Chunk 0 decodes to the TAPE block: nothing can be read without it, so every tool
    // (bak-header too) stops at the start with exit 2.
    let (tape, _) = all[0];
    assert_eq!(tape, 0x1e0);
    let fa = temp_file("zstd-first.bak", &patched(&m, tape + 28, &ZSTD));
    let runs = all_three(&fa);
    assert_unsupported(&fa, &runs, "ZSTD compression (SQL Server 2025)");
    assert_eq!(runs.header.0, 2, "{}", runs.header.1);
    assert!(runs.header.1.contains("unsupported") && runs.header.1.contains("ZSTD"));
    assert!(
        runs.verify.1.contains("a Zstandard frame"),
        "{}",
        runs.verify.1
    );

    // The same with the chunk's check value mended: the payload does not decode as Xpress,
    // and begins with the frame magic.
    let (at, clen) = all[20];
    let mut b = patched(&m, at + 28, &ZSTD);
    seal_chunk(&mut b, at, clen);
    let fb = temp_file("zstd-sealed.bak", &b);
    let runs = all_three(&fb);
    assert_unsupported(&fb, &runs, "ZSTD compression");
    assert!(
        runs.verify
            .1
            .contains(&format!("the chunk at file offset {at} (chunk ")),
        "{}",
        runs.verify.1
    );

    // A chunk of database pages in QAT_DEFLATE (a gzip member, as QATzip writes it).
    let fc = temp_file("qat.bak", &patched(&m, at + 28, &GZIP));
    let runs = all_three(&fc);
    assert_unsupported(&fc, &runs, "QAT_DEFLATE compression");
    // bak-verify reports it among the set's problems, as a report (not an error).
    assert!(
        runs.verify.1.contains("cannot be verified"),
        "{}",
        runs.verify.1
    );

    // A chunk header of another shape (marker 0x22) before a Zstandard frame.
    let mut d = patched(&m, at + 28, &ZSTD);
    d[at] = 0x22;
    let fd = temp_file("zstd-marker.bak", &d);
    assert_unsupported(&fd, &all_three(&fd), "ZSTD compression");

    // The same bytes damaged: one byte of the payload's start changed, or the marker byte
    // alone. Damage, found at the chunk.
    let mut e = m.clone();
    e[at + 28] ^= 0x28;
    let fe = temp_file("chunk-flipped.bak", &e);
    let runs = all_three(&fe);
    assert_damaged(&runs);
    assert!(
        runs.verify.1.contains(&format!("offset {at}")),
        "{}",
        runs.verify.1
    );
    let mut g = m.clone();
    g[at] = 0x22;
    let fg = temp_file("marker-flipped.bak", &g);
    assert_damaged(&all_three(&fg));
}

#[test]
fn the_media_password_is_noted_once_and_the_media_read() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let note = "the media carry a media password (MEDIAPASSWORD";
    let pwd = dir.join("mediapwd2008r2_passwd.bak");
    let say = |tool: &str, extra: &[&str], f: &Path| {
        let mut a: Vec<std::ffi::OsString> = extra.iter().map(|s| s.into()).collect();
        a.push(f.into());
        run(tool, &os(&a), b"")
    };
    // Every tool says it once, with the file's name, and reads on.
    for (tool, extra) in [
        ("bak-header", &[][..]),
        ("bak-header", &["--labelonly"][..]),
        ("bak-verify", &[][..]),
        ("bak-verify", &["--json"][..]),
        ("bak-read", &[][..]),
    ] {
        let o = say(tool, extra, &pwd);
        assert_eq!(o.code, 0, "{tool} {extra:?}: {}", o.stderr);
        assert_eq!(
            o.stderr.matches(note).count(),
            1,
            "{tool} {extra:?}: {}",
            o.stderr
        );
        assert!(
            o.stderr
                .contains(&format!("{tool}: {}: note: {note}", pwd.display())),
            "{tool}: {}",
            o.stderr
        );
        assert!(o.stderr.contains("bak does not check it"), "{}", o.stderr);
    }
    // --quiet silences it where the tool has --quiet.
    for tool in ["bak-verify", "bak-read"] {
        let o = say(tool, &["--quiet"], &pwd);
        assert_eq!(o.code, 0, "{tool}: {}", o.stderr);
        assert!(!o.stderr.contains("password"), "{tool}: {}", o.stderr);
    }
    // The label says so too.
    let l = say("bak-header", &["--labelonly", "--json"], &pwd);
    assert_eq!(json_lines(&l.stdout)[0]["MediaPasswordProtected"], true);
    // No other fixture carries one: no note.
    let mut others = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let f = e.unwrap().path();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".bak") || name.ends_with(".trn")) || f == pwd {
            continue;
        }
        others += 1;
        let o = say("bak-header", &["--labelonly", "--json"], &f);
        assert_eq!(o.code, 0, "{name}: {}", o.stderr);
        assert!(!o.stderr.contains("password"), "{name}: {}", o.stderr);
        assert_eq!(
            json_lines(&o.stdout)[0]["MediaPasswordProtected"],
            false,
            "{name}"
        );
        let v = say("bak-verify", &[], &f);
        assert!(!v.stderr.contains("password"), "{name}: {}", v.stderr);
    }
    assert!(others >= 16, "{others} other fixtures");
}
