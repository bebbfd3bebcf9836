//! What bak-verify calls bad, bak-read does not pass on, and what bak-verify calls incomplete,
//! bak-header does not list as complete: the checks are the same, whichever tool reads.
//!
//! SQL Server: a database page whose checksum fails stops the restore before any byte of the
//! page is written (exit 1, the page named); `--continue-after-error` writes everything, names
//! every bad page and exits 1. bak media: a raw block whose bytes miss their hash is not
//! written, a set cut after its trailing config is not listed as complete from a pipe, and a
//! family that lacks the set being restored is damage (exit 1), not a missing set (exit 2).

use std::path::Path;

use bak_core::bytes::{
    parse_frame, raw_frame_pieces, BlockHeader, Mbc, RecordType, ESET_FRAME_LEN,
};
use bak_core::internals::scan_file as scan_family;

use crate::util::*;

// ---- bak media ----

/// Change the payload of the block whose header frame is at `hdr` with `f`, then make every
/// check that does not decode agree with the new bytes: the payload CRC in the block header
/// (and so the header's record CRCs) and in the MBC entry. Only the block's hash still tells.
fn rewrite_block(m: &mut [u8], path: &Path, hdr: usize, f: impl FnOnce(&mut [u8], &BlockHeader)) {
    let at = bak_core::Location::device("test");
    let (_, body) = parse_frame(&m[hdr..], RecordType::BlockHeader, &at).unwrap();
    let mut h = BlockHeader::parse_body(body, &at).unwrap();
    let head = h.encode().len();
    let payload = hdr + head..hdr + head + h.stored_len as usize;
    f(&mut m[payload.clone()], &h);
    h.payload_crc = crc32fast::hash(&m[payload]);
    m[hdr..hdr + head].copy_from_slice(&h.encode());
    let (mbc_at, mbc_end) = regions(path)
        .into_iter()
        .find(|r| r.0 == "MBC")
        .map(|r| (r.1 as usize, r.2 as usize))
        .unwrap();
    let (_, body) = parse_frame(&m[mbc_at..], RecordType::Mbc, &at).unwrap();
    let mut mbc = Mbc::parse_body(body, &at).unwrap();
    for e in mbc.entries.iter_mut().filter(|e| e.seq == h.seq) {
        e.payload_crc = h.payload_crc;
    }
    let enc = mbc.encode();
    assert_eq!(enc.len(), mbc_end - mbc_at, "the MBC keeps its length");
    m[mbc_at..mbc_end].copy_from_slice(&enc);
}

#[test]
fn a_raw_block_whose_bytes_miss_their_hash_is_not_written() {
    let t = temp_dir("rawhash");
    let devs = devices(&t, "raw", 1);
    let input = data(8 * MTS + 100, 31);
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    let dev = &devs[0];
    let blocks: Vec<usize> = regions(dev)
        .into_iter()
        .filter(|r| r.0 == "block header")
        .map(|r| r.1 as usize)
        .collect();
    assert_eq!(blocks.len(), 9);
    let mut m = std::fs::read(dev).unwrap();
    // Block 3: one original byte changed, every CRC made to hold.
    rewrite_block(&mut m, dev, blocks[3], |p, h| {
        let (off, _) = raw_frame_pieces(h.original_len).next().unwrap();
        p[off + 100] ^= 0x04;
    });
    std::fs::write(dev, &m).unwrap();
    let v = run("bak-verify", &os(&args!["--json", dev]), b"");
    let rep = &json_lines(&v.stdout)[0];
    assert_eq!(v.code, 1, "{rep}");
    assert_eq!(rep["Verdict"], "damaged", "{rep}");
    assert!(
        rep.to_string().contains("do not match their hash"),
        "verify finds the hash: {rep}"
    );
    let r = read(&devs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("raw1.bak")
            && r.stderr.contains("block 3")
            && r.stderr.contains("do not match their hash"),
        "{}",
        r.stderr
    );
    // Nothing of block 3 or after it: what came out is the input up to block 3 at most.
    assert!(
        r.stdout.len() <= 3 * MTS,
        "{} bytes written",
        r.stdout.len()
    );
    assert_eq!(r.stdout[..], input[..r.stdout.len()]);
}

#[test]
fn a_set_cut_after_its_trailing_config_is_not_listed_complete() {
    let t = temp_dir("cuttrail");
    let devs = devices(&t, "cut", 1);
    let input = data(5 * MTS + 9, 32);
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &input).code,
        0
    );
    let dev = &devs[0];
    let m = std::fs::read(dev).unwrap();
    let reg = regions(dev);
    let start = |name: &str| reg.iter().find(|r| r.0 == name).unwrap().1 as usize;
    // Cut inside the MBC, and just before the end-of-set: the trailing config is whole.
    for (case, cut) in [
        ("inside the MBC", start("MBC") + 40),
        ("before the end-of-set", start("end-of-set")),
    ] {
        let p = t.path().join("cut.bak");
        std::fs::write(&p, &m[..cut]).unwrap();
        let v = run("bak-verify", &os(&args!["--json", "-"]), &m[..cut]);
        let rep = &json_lines(&v.stdout)[0];
        assert_eq!(v.code, 1, "{case}: {rep}");
        assert_eq!(rep["Verdict"], "incomplete", "{case}: {rep}");
        // From a pipe (read front to back) and from the file (read from its tail) alike.
        for (how, a, stdin) in [
            ("a pipe", args!["--json", "-"], &m[..cut]),
            ("a file", args!["--json", &p], &[][..]),
        ] {
            let h = run("bak-header", &os(&a), stdin);
            assert_eq!(h.code, 0, "{case}, {how}: {}", h.stderr);
            let rows = json_lines(&h.stdout);
            assert_eq!(rows.len(), 1, "{case}, {how}");
            assert_eq!(rows[0]["IsComplete"], false, "{case}, {how}: {}", rows[0]);
        }
        let r = run("bak-read", &os(&args!["--quiet", "-"]), &m[..cut]);
        assert_eq!(r.code, 1, "{case}: {}", r.stderr);
    }
}

#[test]
fn a_family_that_lacks_the_set_is_damage_not_a_missing_set() {
    let t = temp_dir("lacks");
    let devs = devices(&t, "fam", 2);
    let one = data(6 * MTS, 33);
    let two = data(6 * MTS + 1, 34);
    for input in [&one, &two] {
        assert_eq!(write(&devs, &["--max-transfer-size", "64K"], input).code, 0);
    }
    // Family 2 loses set 2 whole: cut just after set 1's end-of-set. Its device holds one
    // set, family 1's two.
    let f = std::fs::File::open(&devs[1]).unwrap();
    let scan = scan_family(&f, &devs[1]).unwrap();
    let end = scan.sets[0].eset.self_offset + ESET_FRAME_LEN as u64;
    drop(f);
    let m = std::fs::read(&devs[1]).unwrap();
    std::fs::write(&devs[1], &m[..end as usize]).unwrap();
    let v = run(
        "bak-verify",
        &os(&args!["--json", "--file", "2", &devs]),
        b"",
    );
    let rep = &json_lines(&v.stdout)[0];
    assert_eq!(v.code, 1, "{rep}");
    assert_eq!(rep["Verdict"], "damaged", "{rep}");
    let r = read(&devs, &["--file", "2"]);
    assert_eq!(r.code, 1, "damage, not a usage error: {}", r.stderr);
    assert!(
        r.stderr.contains("fam2.bak") && r.stderr.contains("lacks backup set 2"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // Set 1 is whole on both and still restores.
    let r = read(&devs, &["--file", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, one);
    // bak-header lists set 2 as not complete.
    let h = run("bak-header", &os(&args!["--json", &devs]), b"");
    let rows = json_lines(&h.stdout);
    assert_eq!(rows[1]["IsComplete"], false, "{}", rows[1]);
}
