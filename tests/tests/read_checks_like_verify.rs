//! What bak-verify calls bad, bak-read does not pass on, and what bak-verify calls incomplete,
//! bak-header does not list as complete: the checks are the same, whichever tool reads
//! (docs/RELIABILITY.md, "What each tool checks").
//!
//! SQL Server: a database page whose checksum fails stops the restore before any byte of the
//! page is written (exit 1, the page named), for the data, the log and the MTF stream alike;
//! `--continue-after-error` writes everything, names every bad page and exits 1. Damage that
//! verify counts against the set but that no byte written depends on (the chunk index, a
//! stripe that lacks the set) fails the restore too, and over every real fixture bak-read
//! exits 0 just when bak-verify does. bak media: a raw block whose bytes miss their hash is
//! not written, a set cut after its trailing config is not listed as complete from a pipe,
//! and a family that lacks the set being restored is damage (exit 1), not a missing set
//! (exit 2).

use std::path::{Path, PathBuf};

use bak_core::bytes::{
    parse_frame, raw_frame_pieces, BlockHeader, Mbc, RecordType, ESET_FRAME_LEN,
};
use bak_core::internals::scan_file as scan_family;

use crate::mtf_support::{build, chunks, set, u16_at, u32_at, MediaSpec, PAGE};
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
fn a_family_that_lacks_the_set_is_incomplete_not_a_missing_set() {
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
    // The family ends before set 2: it was never written there (issue 17: incomplete).
    assert_eq!(rep["Verdict"], "incomplete", "{rep}");
    let r = read(&devs, &["--file", "2"]);
    assert_eq!(
        r.code, 1,
        "incomplete media, not a usage error: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("fam2.bak") && r.stderr.contains("backup set is incomplete"),
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

// ---- SQL Server backups ----

/// The file offset of the first page of set 1's first data stream on plain MTF media (the
/// stream's data after its 2 pad bytes), and its length in pages.
fn data_pages(f: &Path) -> (usize, usize) {
    let d = bak_mtf::MtfDevice::open(f).unwrap();
    let rows = bak_mtf::list_streams(&[d], 1).unwrap();
    let r = rows.iter().find(|r| r.stream == "MQDA").unwrap();
    (
        (r.offset + 2) as usize,
        ((r.length - 2) / PAGE as u64) as usize,
    )
}

/// The first page at or after index `from` of the data stream at `first` (of `n` pages) that
/// carries a page checksum (header version 1, flag 0x200 in the u16 at 4): its index, file id
/// and page id.
fn checksummed_page(m: &[u8], first: usize, n: usize, from: usize) -> (usize, u16, u32) {
    (from..n)
        .map(|k| (k, &m[first + k * PAGE..]))
        .find(|(_, p)| p[0] == 1 && u16_at(p, 4) & 0x200 != 0)
        .map(|(k, p)| (k, u16_at(p, 36), u32_at(p, 32)))
        .expect("a page with a page checksum")
}

fn quiet_read(extra: &[&str], f: &Path) -> Output {
    let mut a = args!["--quiet"];
    a.extend(extra.iter().map(|s| s.into()));
    a.push(f.into());
    run("bak-read", &os(&a), b"")
}

#[test]
fn a_page_whose_checksum_fails_is_not_written_and_is_named() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("pubs_UGR95.bak");
    let t = temp_dir("pagesum");
    let m = std::fs::read(&f).unwrap();
    let pristine = quiet_read(&[], &f);
    let pristine_log = quiet_read(&["--stream", "log"], &f);
    assert_eq!((pristine.code, pristine_log.code), (0, 0));
    let (first, n) = data_pages(&f);
    assert_eq!(
        pristine.stdout.len(),
        n * PAGE,
        "one data stream of whole pages"
    );
    // A page in the second half of the data, one byte of its body changed.
    let (k, fid, pid) = checksummed_page(&m, first, n, n / 2);
    let at = first + k * PAGE;
    let mut bad = m.clone();
    bad[at + 5000] ^= 0x10;
    let p = t.path().join("damaged.bak");
    std::fs::write(&p, &bad).unwrap();
    let page = format!("database page {fid}:{pid} checksum fails");

    // bak-verify names the page at its offset.
    let v = run("bak-verify", &os(&args!["--json", &p]), b"");
    assert_eq!(v.code, 1);
    let rep = &json_lines(&v.stdout)[0];
    let found: Vec<&serde_json::Value> = rep["Problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["What"] == page.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{rep}");
    assert_eq!(found[0]["Offset"], at as u64, "{rep}");

    // bak-read stops before the page: every page before it, nothing of it.
    let r = quiet_read(&[], &p);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("damaged.bak")
            && r.stderr.contains(&format!("offset {at}: {page}"))
            && r.stderr.contains("nothing of the page was written"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout.len(), k * PAGE);
    assert_eq!(r.stdout[..], pristine.stdout[..k * PAGE]);

    // Going on past it: everything written, the damaged page as it is, the page named.
    let c = quiet_read(&["--continue-after-error"], &p);
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_eq!(c.stdout.len(), pristine.stdout.len());
    assert_eq!(c.stdout[..], bad[first..first + n * PAGE]);
    assert!(
        c.stderr.contains(&format!("offset {at}: {page}"))
            && c.stderr.contains("1 problem passed over"),
        "{}",
        c.stderr
    );

    // The MTF stream: the same, byte for byte up to the page.
    let mm = quiet_read(&["--mtf"], &p);
    assert_eq!(mm.code, 1, "{}", mm.stderr);
    assert_eq!(mm.stdout[..], bad[..at]);
    let mc = quiet_read(&["--mtf", "--continue-after-error"], &p);
    assert_eq!(mc.code, 1, "{}", mc.stderr);
    assert_eq!(mc.stdout, bad);

    // The log stream of a set verify calls damaged: not exit 0 either.
    let l = quiet_read(&["--stream", "log"], &p);
    assert_eq!(l.code, 1, "{}", l.stderr);
    assert!(l.stderr.contains(&page), "{}", l.stderr);
    assert!(l.stdout.is_empty(), "the data pages come before the log");
    let lc = quiet_read(&["--stream", "log", "--continue-after-error"], &p);
    assert_eq!(lc.code, 1, "{}", lc.stderr);
    assert_eq!(lc.stdout, pristine_log.stdout);
}

#[test]
fn every_bad_page_is_listed_and_the_backup_checksum_too() {
    // A backup WITH CHECKSUM (decompressed to plain MTF): two pages damaged; the first stops
    // the restore, going on names both and the stream's CSUM.
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let t = temp_dir("twopages");
    let good = decompressed_mtf(&dir.join("cmp2019_full_checksum.bak"));
    let plain = t.path().join("plain.bak");
    std::fs::write(&plain, &good).unwrap();
    let pristine = quiet_read(&[], &plain);
    assert_eq!(pristine.code, 0, "{}", pristine.stderr);
    let (first, n) = data_pages(&plain);
    let a = checksummed_page(&good, first, n, 20);
    let b = checksummed_page(&good, first, n, a.0 + 10);
    let mut bad = good.clone();
    // Different bits at different places: two changes the CSUM's XOR could cancel would not
    // make the point.
    bad[first + a.0 * PAGE + 700] ^= 0x01;
    bad[first + b.0 * PAGE + 3001] ^= 0x40;
    let p = t.path().join("twice.bak");
    std::fs::write(&p, &bad).unwrap();
    let named =
        |(_, fid, pid): (usize, u16, u32)| format!("database page {fid}:{pid} checksum fails");
    let r = quiet_read(&[], &p);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&named(a)), "{}", r.stderr);
    assert!(!r.stderr.contains(&named(b)), "{}", r.stderr);
    assert!(pristine.stdout.starts_with(&r.stdout));
    assert_eq!(r.stdout.len(), a.0 * PAGE);
    let c = quiet_read(&["--continue-after-error"], &p);
    assert_eq!(c.code, 1);
    assert_eq!(c.stdout.len(), pristine.stdout.len());
    for what in [named(a), named(b)] {
        assert!(c.stderr.contains(&what), "{what}: {}", c.stderr);
    }
    assert!(
        c.stderr
            .contains("backup checksum (CSUM) of stream MQDA does not match its data")
            && c.stderr.contains("3 problems passed over"),
        "{}",
        c.stderr
    );
    // bak-verify lists the same three.
    let v = run("bak-verify", &os(&args!["--json", &p]), b"");
    let rep = &json_lines(&v.stdout)[0];
    assert_eq!(rep["Problems"].as_array().unwrap().len(), 3, "{rep}");
}

#[test]
fn damage_to_the_chunk_index_stops_the_restore_too() {
    // The chunk index is not needed to read the data, but bak-verify calls the set damaged:
    // bak-read does not exit 0 with it.
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_full_checksum.bak");
    let t = temp_dir("chunkindex");
    let m = std::fs::read(&f).unwrap();
    let pristine = quiet_read(&[], &f);
    let index = chunks(&m)
        .iter()
        .map(|&(at, clen)| at + 28 + clen)
        .find(|&e| m[e] == 0x2c)
        .expect("a chunk index record after a run of chunks");
    let mut bad = m.clone();
    bad[index + 24 + 16 + 3] ^= 0x08;
    let p = t.path().join("index.bak");
    std::fs::write(&p, &bad).unwrap();
    assert_eq!(run("bak-verify", &os(&args![&p]), b"").code, 1);
    let r = quiet_read(&[], &p);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("offset {index}: chunk index of"))
            && r.stderr.contains("does not match its check value"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "known before a byte is written");
    let c = quiet_read(&["--continue-after-error"], &p);
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_eq!(
        c.stdout, pristine.stdout,
        "the data do not depend on the index"
    );
    assert_eq!(quiet_read(&["--mtf"], &p).code, 1);
}

#[test]
fn going_on_past_a_chunk_that_does_not_decode_keeps_every_page_in_its_place() {
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let f = dir.join("cmp2019_full_checksum.bak");
    let t = temp_dir("chunkgap");
    let m = std::fs::read(&f).unwrap();
    let pristine = quiet_read(&[], &f);
    let (at, clen) = chunks(&m)[5];
    let mut bad = m.clone();
    bad[at + 28 + clen / 3] ^= 0x02;
    let p = t.path().join("chunk.bak");
    std::fs::write(&p, &bad).unwrap();
    let chunk = format!("offset {at}: compressed chunk's payload does not match its check value");
    let r = quiet_read(&[], &p);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&chunk), "{}", r.stderr);
    assert!(r.stdout.len() < pristine.stdout.len() && pristine.stdout.starts_with(&r.stdout));
    let c = quiet_read(&["--continue-after-error"], &p);
    assert_eq!(c.code, 1);
    assert!(c.stderr.contains(&chunk), "{}", c.stderr);
    // Same length; what differs is one run of zeros no longer than a chunk decodes to.
    assert_eq!(c.stdout.len(), pristine.stdout.len());
    let diff: Vec<usize> = (0..c.stdout.len())
        .filter(|&i| c.stdout[i] != pristine.stdout[i])
        .collect();
    let (lo, hi) = (diff[0], *diff.last().unwrap());
    assert!(hi - lo < 255 * 512, "{lo}..{hi}");
    assert!(c.stdout[lo..=hi].iter().all(|&b| b == 0));
}

#[test]
fn every_fixture_restores_exactly_when_it_verifies() {
    // Over the real backups (the striped pair given together): bak-read exits 0 just when
    // bak-verify does, and 1 (damage), not 2, otherwise; --mtf and bak-header agree.
    let Some(dir) = fixtures_or_skip() else {
        return;
    };
    let mut cases: Vec<Vec<PathBuf>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bak" || x == "trn"))
        .map(|p| vec![p])
        .collect();
    cases.sort();
    cases.push(vec![
        dir.join("stripe2008r2_full_fam1.bak"),
        dir.join("stripe2008r2_full_fam2.bak"),
    ]);
    assert!(cases.len() >= 17, "{} fixtures", cases.len());
    for devs in &cases {
        let v = run("bak-verify", &os(&args![devs]), b"");
        let mut r = read(devs, &[]);
        if r.code == 2 && r.stderr.contains("is a log backup") {
            r = read(devs, &["--stream", "log"]);
        }
        let name = format!(
            "{:?}",
            devs.iter()
                .map(|p| p.file_name().unwrap())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            r.code,
            if v.code == 0 { 0 } else { 1 },
            "{name}: verify exits {}, read {}: {}",
            v.code,
            r.code,
            r.stderr
        );
        if v.code == 0 {
            if let [one] = &devs[..] {
                assert_eq!(read(devs, &["--mtf"]).code, 0, "{name}");
                let h = run("bak-header", &os(&args!["--json", one]), b"");
                for row in json_lines(&h.stdout) {
                    assert_eq!(row["IsComplete"], true, "{name}: {row}");
                }
            }
        }
    }
}

#[test]
fn a_stripe_that_lacks_the_set_is_named_not_passed_over() {
    // Family 1 holds sets 1 and 2, family 2 only set 1: set 2 is incomplete, not family 1's
    // half.
    let family = |f: u16, sets| {
        let m = build(&MediaSpec {
            guid: [5; 16],
            family_count: 2,
            family: f,
            sets,
            ..Default::default()
        });
        bak_mtf::MtfDevice::open(&temp_file(&format!("lack{f}.bak"), &m)).unwrap()
    };
    let devs = [
        family(1, vec![set("a", b'D', 0..8), set("b", b'D', 0..8)]),
        family(2, vec![set("a", b'D', 8..16)]),
    ];
    let reps = bak_mtf::verify(&devs, Some(2), false).unwrap();
    assert_eq!(reps[0].verdict, bak_core::report::Verdict::Incomplete);
    assert!(reps[0].problems[0]
        .what
        .contains("family 2 lacks backup set 2"));
    let mut out = Vec::new();
    let e = bak_mtf::read_stream(&devs, 2, bak_mtf::StreamKind::Data, &mut out, "out").unwrap_err();
    assert!(e.is_media_damage(), "{e}");
    assert!(e.to_string().contains("family 2 lacks backup set 2"), "{e}");
    assert!(out.is_empty());
    let opts = bak_mtf::ReadOptions {
        continue_after_error: true,
    };
    let o = bak_mtf::read_stream_with(&devs, 2, bak_mtf::StreamKind::Data, &opts, &mut out, "out")
        .unwrap();
    assert_eq!(o.problems.len(), 1, "{:?}", o.problems);
    assert_eq!(
        o.bytes as usize,
        8 * PAGE,
        "family 1's half, named as a half"
    );
    assert_eq!(out.len(), 8 * PAGE);
}
