//! Issue 7: backup checksums (CSUM streams) and damage to compressed backups, through the real
//! binaries. The CSUM values and stream offsets below were read from the decompressed bytes of
//! the fixtures (stream headers at those offsets, the stored 4 bytes), and the checksum is
//! recomputed here by a plain implementation of its definition (docs/MTF.md, "CSUM").

mod util;
use std::path::PathBuf;
use util::*;

/// The next value of a xorshift64 sequence (seeded cases, the same on every run).
fn xorshift(x: &mut u64) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// A 22-byte MTF stream header at `at`: its id, media attributes and length, after checking
/// that its 11 words XOR to zero.
fn stream_header(b: &[u8], at: usize) -> ([u8; 4], u16, u64) {
    let h = &b[at..at + 22];
    let x = h.chunks(2).fold(0u16, |a, c| a ^ u16_at(c, 0));
    assert_eq!(x, 0, "stream header at {at} does not XOR to zero");
    (
        h[..4].try_into().unwrap(),
        u16_at(h, 6),
        u64::from_le_bytes(h[8..16].try_into().unwrap()),
    )
}

/// The definition: after the 2 pad bytes, 512-byte sectors; S_i = XOR of the sector's LE u32
/// words; CSUM = XOR of rotl(S_i, 31 - i mod 32).
fn csum(data: &[u8]) -> u32 {
    data[2..]
        .chunks(512)
        .enumerate()
        .map(|(i, s)| {
            let x = s.chunks(4).fold(0u32, |a, w| a ^ u32_at(w, 0));
            x.rotate_left(31 - (i as u32 % 32))
        })
        .fold(0, |a, x| a ^ x)
}

/// The decompressed MTF stream of a compressed fixture.
fn mtf_of(f: &PathBuf) -> Vec<u8> {
    let m = run("bak-read", &os(&args!["--quiet", "--mtf", f]), b"");
    assert_eq!(m.code, 0, "{}", m.stderr);
    m.stdout
}

#[test]
fn csum_streams_hold_the_checksum_of_the_stream_before_them() {
    // (fixture, header offset of the checksummed stream, its id, data length, stored CSUM)
    let cases: [(&str, usize, &[u8; 4], u64, u32); 4] = [
        (
            "cmp2019_full_checksum.bak",
            8680,
            b"MQDA",
            3014658,
            0xbbb6_15c5,
        ),
        (
            "cmp2019_full_checksum.bak",
            3025384,
            b"MQDA",
            131074,
            0x6511_dbde,
        ),
        ("cmp2019_full_checksum.bak", 3158504, b"MQTL", 65538, 0),
        ("cmp2019_log.bak", 8680, b"MQTL", 589826, 0x9f57_ff97),
    ];
    for (name, at, id, len, want) in cases {
        let Some(f) = sql_fixture(name) else {
            return;
        };
        let m = mtf_of(&f);
        let (got_id, attrs, got_len) = stream_header(&m, at);
        assert_eq!((&got_id, got_len), (id, len), "{name} at {at}");
        assert_ne!(
            attrs & 0x100,
            0,
            "{name} at {at}: marked as followed by a CSUM"
        );
        let data = &m[at + 22..at + 22 + len as usize];
        // The CSUM stream starts on the next 4-byte boundary.
        let c = (at + 22 + len as usize).next_multiple_of(4);
        assert_eq!(
            stream_header(&m, c),
            (*b"CSUM", 0, 4),
            "{name}: CSUM at {c}"
        );
        let stored = u32_at(&m, c + 22);
        assert_eq!(stored, want, "{name}: the stored value");
        assert_eq!(csum(data), stored, "{name}: the checksum of stream at {at}");
    }
}

#[test]
fn a_changed_byte_anywhere_in_a_checksummed_stream_fails_verify_and_restore() {
    let Some(f) = sql_fixture("cmp2019_full_checksum.bak") else {
        return;
    };
    let t = TempDir::new("csum");
    let good = mtf_of(&f);
    let plain = t.path("plain.bak");
    std::fs::write(&plain, &good).unwrap();
    assert_eq!(run("bak-verify", &os(&args![&plain]), b"").code, 0);
    let pristine = run("bak-read", &os(&args!["--quiet", &plain]), b"");
    assert_eq!(pristine.code, 0);
    // Pages of the first MQDA (data after the 22-byte header and 2 pad bytes at 8680) without
    // the page-checksum flag (0x200 in the u16 at 4): only the backup checksum covers them.
    let first = 8680 + 22 + 2;
    let unchecked: Vec<usize> = (0..368)
        .map(|p| first + p * 8192)
        .filter(|&p| u16_at(&good, p + 4) & 0x200 == 0)
        .collect();
    assert!(unchecked.len() > 10, "{} pages", unchecked.len());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for case in 0..6 {
        xorshift(&mut rng);
        let page = unchecked[rng as usize % unchecked.len()];
        let at = page + (rng >> 20) as usize % 8192;
        let mut bad = good.clone();
        bad[at] ^= 1 << (case % 8);
        let p = t.path("flipped.bak");
        std::fs::write(&p, &bad).unwrap();
        let v = run("bak-verify", &os(&args![&p]), b"");
        let out = String::from_utf8_lossy(&v.stdout);
        assert_eq!(v.code, 1, "case {case}: byte {at}: {out}");
        assert!(
            out.contains("flipped.bak") && out.contains("backup checksum (CSUM) of stream MQDA"),
            "case {case}: {out}"
        );
        let r = run("bak-read", &os(&args!["--quiet", &p]), b"");
        assert_eq!(r.code, 1, "case {case}: the restore fails");
        assert!(r.stderr.contains("CSUM"), "case {case}: {}", r.stderr);
    }
    // The stored value itself damaged.
    let mut bad = good.clone();
    bad[3023360 + 22] ^= 0x10;
    let p = t.path("csum.bak");
    std::fs::write(&p, &bad).unwrap();
    assert_eq!(run("bak-verify", &os(&args![&p]), b"").code, 1);
    assert_eq!(run("bak-read", &os(&args!["--quiet", &p]), b"").code, 1);
    // The log stream's CSUM is checked too (the restore of the log stream as well).
    let mut bad = good.clone();
    bad[3158504 + 22 + 2 + 700] ^= 0x01;
    std::fs::write(&p, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("CSUM) of stream MQTL"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    let r = run(
        "bak-read",
        &os(&args!["--quiet", "--stream", "log", &p]),
        b"",
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    // A checksummed stream whose CSUM stream is gone (renamed): named, exit 1.
    let mut bad = good;
    bad[3023360..3023364].copy_from_slice(b"CSUX");
    let x = bad[3023360..3023380]
        .chunks(2)
        .fold(0u16, |a, c| a ^ u16_at(c, 0));
    bad[3023380..3023382].copy_from_slice(&x.to_le_bytes());
    std::fs::write(&p, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    assert_eq!(v.code, 1);
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("no 4-byte CSUM stream follows"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

#[test]
fn the_mtf_stream_of_a_compressed_backup_stands_on_its_own() {
    for name in [
        "cmp2019_full_checksum.bak",
        "cmp2019_log.bak",
        "cmp2014_sharepoint_2sets.bak",
    ] {
        let Some(f) = sql_fixture(name) else {
            return;
        };
        let t = TempDir::new("mtfout");
        let m = mtf_of(&f);
        let p = t.path("plain.bak");
        std::fs::write(&p, &m).unwrap();
        // Its soft filemark tables list offsets in the stream itself, so it verifies as plain
        // MTF, and every set reads the same from it as from the compressed file.
        let v = run("bak-verify", &os(&args![&p]), b"");
        assert_eq!(v.code, 0, "{name}: {}", String::from_utf8_lossy(&v.stdout));
        let h = run("bak-header", &os(&args!["--json", &p]), b"");
        let sets = String::from_utf8_lossy(&h.stdout).lines().count();
        assert!(sets >= 1);
        for pos in 1..=sets {
            let pos = pos.to_string();
            let stream = if name == "cmp2019_log.bak" {
                "log"
            } else {
                "data"
            };
            let a = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--stream",
                    stream,
                    "--file",
                    pos.as_str(),
                    &f
                ]),
                b"",
            );
            let b = run(
                "bak-read",
                &os(&args![
                    "--quiet",
                    "--stream",
                    stream,
                    "--file",
                    pos.as_str(),
                    &p
                ]),
                b"",
            );
            assert_eq!((a.code, b.code), (0, 0), "{name} set {pos}");
            assert!(a.stdout == b.stdout, "{name} set {pos}: the same bytes");
        }
    }
}

/// File offsets and payload lengths of the compressed chunks, walked from their 28-byte
/// headers (marker 0x21, u16 payload length at 2) from 0x1e0; other records end a run, after
/// which the next 512-byte sector holds a chunk or a raw SFMB block.
fn chunks(m: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0x1e0;
    while at + 28 <= m.len() {
        if m[at] == 0x21 {
            let clen = usize::from(u16_at(m, at + 2));
            out.push((at, clen));
            at += 28 + clen;
        } else {
            at = (at / 512 + 1) * 512;
        }
    }
    out
}

#[test]
fn a_cut_payload_and_a_length_past_the_end_are_named() {
    let Some(f) = sql_fixture("cmp2019_full_checksum.bak") else {
        return;
    };
    let t = TempDir::new("chunkdmg");
    let m = std::fs::read(&f).unwrap();
    let all = chunks(&m);
    assert!(all.len() > 40, "{} chunks", all.len());
    // The file ends inside the payload of a chunk holding database pages.
    let (at, clen) = all[5];
    assert!(clen > 1000);
    let cut = t.path("cut.bak");
    std::fs::write(&cut, &m[..at + 28 + clen / 2]).unwrap();
    let v = run("bak-verify", &os(&args![&cut]), b"");
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "offset {at}: chunk payload of {clen} bytes runs past the end of the file"
        )) && out.contains("cut.bak: family 1, set 1"),
        "{out}"
    );
    let r = run("bak-read", &os(&args!["--quiet", &cut]), b"");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cut.bak") && r.stderr.contains("media end before"),
        "{}",
        r.stderr
    );
    // The header still reads, and says the set is not complete.
    let h = run("bak-header", &os(&args!["--json", &cut]), b"");
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(String::from_utf8_lossy(&h.stdout).contains("\"IsComplete\":false"));

    // The last chunk's length field claims more than the file holds.
    let (last, _) = *all.last().unwrap();
    let mut bad = m.clone();
    bad[last + 2..last + 4].copy_from_slice(&0xffffu16.to_le_bytes());
    let past = t.path("past.bak");
    std::fs::write(&past, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&past]), b"");
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "offset {last}: chunk payload of 65535 bytes runs past the end of the file"
        )),
        "{out}"
    );
    // That chunk holds the end of the set: the data stream is whole, but the set is not, and
    // the restore says so instead of passing it off as complete.
    let r = run("bak-read", &os(&args!["--quiet", &past]), b"");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the set is incomplete"), "{}", r.stderr);
}

#[test]
fn every_flipped_bit_in_a_compressed_payload_is_found_at_its_chunk() {
    let Some(f) = sql_fixture("cmp2019_full_checksum.bak") else {
        return;
    };
    let t = TempDir::new("chunkflip");
    let m = std::fs::read(&f).unwrap();
    let all = chunks(&m);
    let pristine = run("bak-read", &os(&args!["--quiet", &f]), b"");
    assert_eq!(pristine.code, 0);
    let p = t.path("flipped.bak");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for case in 0..24 {
        xorshift(&mut rng);
        let (at, clen) = all[rng as usize % all.len()];
        let byte = at + 28 + (rng >> 16) as usize % clen;
        let mut bad = m.clone();
        bad[byte] ^= 1 << ((rng >> 40) % 8);
        std::fs::write(&p, &bad).unwrap();
        let v = run("bak-verify", &os(&args![&p]), b"");
        // A damaged first chunk (the TAPE block) stops the media from opening: then the
        // message is on stderr.
        let out = format!("{}{}", String::from_utf8_lossy(&v.stdout), v.stderr);
        assert_eq!(v.code, 1, "case {case}: byte {byte}: {out}");
        assert!(
            out.contains(&format!(
                "offset {at}: compressed chunk's payload does not match its check value"
            )),
            "case {case}: byte {byte} of the chunk at {at}: {out}"
        );
        let r = run("bak-read", &os(&args!["--quiet", &p]), b"");
        assert!(
            r.code == 1 || (r.code == 0 && r.stdout == pristine.stdout),
            "case {case}: the restore exits {} with {} bytes",
            r.code,
            r.stdout.len()
        );
        let r = run("bak-read", &os(&args!["--quiet", "--mtf", &p]), b"");
        assert_eq!(r.code, 1, "case {case}: --mtf decodes every chunk");
    }
    // The chunk index after the data: its entries carry a check value too.
    let index = all
        .iter()
        .map(|&(at, clen)| at + 28 + clen)
        .find(|&e| m[e] == 0x2c)
        .expect("a chunk index record after a run of chunks");
    let mut bad = m.clone();
    bad[index + 24 + 16 + 3] ^= 0x08;
    std::fs::write(&p, &bad).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{out}");
    assert!(
        out.contains(&format!("offset {index}: chunk index of"))
            && out.contains("does not match its check value"),
        "{out}"
    );
}

#[test]
fn a_set_copied_after_the_last_one_is_not_passed_over() {
    let Some(f) = sql_fixture("pubs_UGR95.bak") else {
        return;
    };
    let t = TempDir::new("dupset");
    let m = std::fs::read(&f).unwrap();
    // The set starts at its SSET block (on a 512-byte boundary); append it again, whole.
    let sset = (0..m.len())
        .step_by(512)
        .find(|&i| &m[i..i + 4] == b"SSET")
        .unwrap();
    let mut twice = m.clone();
    twice.extend_from_slice(&m[sset..]);
    let p = t.path("twice.bak");
    std::fs::write(&p, &twice).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "offset {}: backup set number 1 follows set 1 on the media",
            m.len()
        )),
        "{out}"
    );
    // The listing still has the one real set.
    let h = run("bak-header", &os(&args!["--json", &p]), b"");
    assert_eq!(String::from_utf8_lossy(&h.stdout).lines().count(), 1);
}

#[test]
fn a_stray_set_between_two_sets_and_a_cut_after_a_checksummed_stream() {
    let Some(f) = sql_fixture("multi2008_omi_2sets.bak") else {
        return;
    };
    let t = TempDir::new("between");
    let m = std::fs::read(&f).unwrap();
    // Sets start at their SSET blocks (512-byte boundaries): copy set 1 in front of set 2.
    let ssets: Vec<usize> = (0..m.len())
        .step_by(512)
        .filter(|&i| &m[i..i + 4] == b"SSET")
        .collect();
    assert_eq!(ssets.len(), 2);
    let (s1, s2) = (ssets[0], ssets[1]);
    let mut b = m[..s2].to_vec();
    b.extend_from_slice(&m[s1..s2]);
    b.extend_from_slice(&m[s2..]);
    let p = t.path("between.bak");
    std::fs::write(&p, &b).unwrap();
    let v = run("bak-verify", &os(&args![&p]), b"");
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "set 1, block 12, offset {s2}: backup set number 1 follows set 1 on the media"
        )),
        "{out}"
    );

    // Media cut 10 bytes into the CSUM stream header after the first MQDA: incomplete, not
    // damaged, and no claim that the CSUM is missing.
    let Some(f) = sql_fixture("cmp2019_full_checksum.bak") else {
        return;
    };
    let good = mtf_of(&f);
    let p = t.path("cut.bak");
    std::fs::write(&p, &good[..3023360 + 10]).unwrap();
    let v = run("bak-verify", &os(&args!["--json", &p]), b"");
    let rep: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v.code, 1);
    assert_eq!(rep["Verdict"], "incomplete", "{rep}");
    assert!(!rep.to_string().contains("CSUM"), "{rep}");
}
