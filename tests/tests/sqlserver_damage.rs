//! Damage to real SQL Server backups, found and named through the real binaries: a flipped
//! bit in a descriptor block or a compressed chunk, a cut payload, a length past the end, a set
//! copied where it does not belong, and media cut inside a CSUM stream header.

use crate::mtf_support::chunks;
use crate::util::*;

#[test]
fn damage_in_a_copy_is_found_and_refused() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let t = temp_dir("mtfdmg");
    let mut bytes = std::fs::read(&f).unwrap();
    // The MSDA descriptor block: its 52-byte header XORs to zero; flip a bit of its FLA.
    let msda = (0..bytes.len() - 52)
        .step_by(512)
        .find(|&i| &bytes[i..i + 4] == b"MSDA")
        .expect("an MSDA block at a 512-byte boundary");
    bytes[msda + 20] ^= 0x40;
    let c = t.path().join("damaged.bak");
    std::fs::write(&c, &bytes).unwrap();
    let v = run("bak-verify", &os(&args![&c]), b"");
    assert_eq!(v.code, 1, "{}", String::from_utf8_lossy(&v.stdout));
    assert!(String::from_utf8_lossy(&v.stdout).contains("damaged.bak"));
    let junk = t.path().join("junk.bak");
    std::fs::write(&junk, b"TAPE but nothing else").unwrap();
    for tool in ["bak-header", "bak-verify", "bak-read"] {
        let o = run(tool, &os(&args![&junk]), b"");
        assert!(o.code == 1 || o.code == 2, "{tool}: {}", o.code);
        assert!(o.stderr.contains("junk.bak"), "{tool}: {}", o.stderr);
    }
}

#[test]
fn a_cut_payload_and_a_length_past_the_end_are_named() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_full_checksum.bak");
    let t = temp_dir("chunkdmg");
    let m = std::fs::read(&f).unwrap();
    let all = chunks(&m);
    assert!(all.len() > 40, "{} chunks", all.len());
    // The file ends inside the payload of a chunk holding database pages.
    let (at, clen) = all[5];
    assert!(clen > 1000);
    let cut = t.path().join("cut.bak");
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
    let past = t.path().join("past.bak");
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
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_full_checksum.bak");
    let t = temp_dir("chunkflip");
    let m = std::fs::read(&f).unwrap();
    let all = chunks(&m);
    let pristine = run("bak-read", &os(&args!["--quiet", &f]), b"");
    assert_eq!(pristine.code, 0);
    let p = t.path().join("flipped.bak");
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    for case in 0..24 {
        let rng = rng.next_u64();
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
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let t = temp_dir("dupset");
    let m = std::fs::read(&f).unwrap();
    // The set starts at its SSET block (on a 512-byte boundary); append it again, whole.
    let sset = (0..m.len())
        .step_by(512)
        .find(|&i| &m[i..i + 4] == b"SSET")
        .unwrap();
    let mut twice = m.clone();
    twice.extend_from_slice(&m[sset..]);
    let p = t.path().join("twice.bak");
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
fn a_stray_set_between_two_sets_is_named() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("multi2008_omi_2sets.bak");
    let t = temp_dir("between");
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
    let p = t.path().join("between.bak");
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
}

#[test]
fn media_cut_inside_a_csum_stream_header_are_incomplete_not_damaged() {
    // Media cut 10 bytes into the CSUM stream header after the first MQDA: incomplete, not
    // damaged, and no claim that the CSUM is missing.
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let t = temp_dir("csumcut");
    let good = decompressed_mtf(&dir.join("cmp2019_full_checksum.bak"));
    let p = t.path().join("cut.bak");
    std::fs::write(&p, &good[..3023360 + 10]).unwrap();
    let v = run("bak-verify", &os(&args!["--json", &p]), b"");
    let rep: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v.code, 1);
    assert_eq!(rep["Verdict"], "incomplete", "{rep}");
    assert!(!rep.to_string().contains("CSUM"), "{rep}");
}
