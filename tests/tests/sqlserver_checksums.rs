//! Backup checksums (CSUM streams) of real SQL Server backups, through the real binaries. The
//! CSUM values and stream offsets below were read from the decompressed bytes of the fixtures
//! (stream headers at those offsets, the stored 4 bytes), and the checksum is recomputed here by
//! a plain implementation of its definition (docs/MTF.md, "CSUM").

use crate::mtf_support::{u16_at, u32_at, xor16};
use crate::util::*;

/// A 22-byte MTF stream header at `at`: its id, media attributes and length, after checking
/// that its 11 words XOR to zero.
fn stream_header(b: &[u8], at: usize) -> ([u8; 4], u16, u64) {
    let h = &b[at..at + 22];
    assert_eq!(xor16(h), 0, "stream header at {at} does not XOR to zero");
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
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    for (name, at, id, len, want) in cases {
        let m = decompressed_mtf(&dir.join(name));
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
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let t = temp_dir("csum");
    let good = decompressed_mtf(&dir.join("cmp2019_full_checksum.bak"));
    let plain = t.path().join("plain.bak");
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
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for case in 0..6 {
        let rng = rng.next_u64();
        let page = unchecked[rng as usize % unchecked.len()];
        let at = page + (rng >> 20) as usize % 8192;
        let mut bad = good.clone();
        bad[at] ^= 1 << (case % 8);
        let p = t.path().join("flipped.bak");
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
    let p = t.path().join("csum.bak");
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
    let x = xor16(&bad[3023360..3023380]);
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
