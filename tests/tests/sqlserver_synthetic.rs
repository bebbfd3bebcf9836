//! The MTF reader on synthesized SQL Server media (mtf_support/mod.rs): what the real fixtures
//! lack — appended sets, stripes, odd block sizes, log backups, and damage of every kind.

use bak_core::report::Verdict;
use bak_core::Error;
use bak_mtf::{self as mtf, MtfDevice, StreamKind};

use crate::mtf_support::*;
use crate::util::temp_file;

fn open(name: &str, bytes: &[u8]) -> MtfDevice {
    MtfDevice::open(&temp_file(name, bytes)).unwrap()
}

fn pages(ids: impl IntoIterator<Item = u32>) -> Vec<u8> {
    ids.into_iter().flat_map(page).collect()
}

#[test]
fn appended_sets_list_verify_and_read_back() {
    let spec = MediaSpec {
        sets: vec![
            set("alpha", b'D', 0..16),
            set("beta", b'I', 8..16),
            set("gamma", b'L', []),
        ],
        ..Default::default()
    };
    let d = open("appended.bak", &build(&spec));
    let devs = [d];
    let rows = mtf::header_only(&devs).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(rows[0].database_name.as_deref(), Some("alpha"));
    assert_eq!(
        rows[0].backup_name.as_deref(),
        Some("alpha-Full Database Backup")
    );
    assert_eq!(rows[0].user_name.as_deref(), Some("SYNTH\\user"));
    assert_eq!(rows[0].device_name.as_deref(), Some("C:"));
    assert_eq!(rows[0].backup_type, Some(1));
    assert_eq!(rows[1].backup_type, Some(5));
    assert_eq!(rows[2].backup_type, Some(2));
    assert_eq!(rows[0].backup_size, Some(16 * 8192 + 4096));
    assert_eq!(rows[0].server_name.as_deref(), Some("SYNTH\\SQL"));
    assert_eq!(rows[0].machine_name.as_deref(), Some("SYNTH"));
    assert_eq!(
        rows[0].backup_start_date.map(|t| t.to_string()).as_deref(),
        Some("2020-11-22T14:43:45Z")
    );
    assert!(rows.iter().all(|r| r.is_complete));
    let files = mtf::file_list(&devs, Some(2)).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].logical_name, "beta");
    assert_eq!(files[0].file_type, "D");
    assert_eq!(files[1].file_type, "L");
    let mut out = Vec::new();
    assert_eq!(
        mtf::read_stream(&devs, 2, StreamKind::Data, &mut out, "out").unwrap(),
        8 * 8192
    );
    assert_eq!(out, pages(8..16));
    let mut log = Vec::new();
    mtf::read_stream(&devs, 3, StreamKind::Log, &mut log, "out").unwrap();
    assert_eq!(log, spec.sets[2].log);
    let e = mtf::read_stream(&devs, 3, StreamKind::Data, &mut Vec::new(), "out").unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("use the log stream"),
        "{e}"
    );
    assert!(matches!(
        mtf::read_stream(&devs, 9, StreamKind::Data, &mut Vec::new(), "out"),
        Err(Error::NoSuchSet {
            position: 9,
            count: 3
        })
    ));
    let reps = mtf::verify(&devs, None, false).unwrap();
    assert_eq!(reps.len(), 3);
    assert!(reps.iter().all(|r| r.verdict == Verdict::Valid), "{reps:?}");
    let one = mtf::verify(&devs, Some(2), false).unwrap();
    assert_eq!(one.len(), 1);
    let streams = mtf::list_streams(&devs, 1).unwrap();
    assert!(streams
        .iter()
        .any(|s| s.block == "MSDA" && s.stream == "MQDA" && s.length == 2 + 16 * 8192));
    assert_eq!(devs[0].label().backup_set_count, Some(3));
}

#[test]
fn odd_block_and_filemark_sizes_verify_and_read() {
    for (lbs, sfm) in [
        (512, 512),
        (2048, 4096),
        (4096, 512),
        (1024, 8192),
        (1536, 3072),
    ] {
        let spec = MediaSpec {
            lbs,
            sfm,
            sets: vec![set("a", b'D', 0..8), set("b", b'D', 0..24)],
            ..Default::default()
        };
        let devs = [open(&format!("odd{lbs}_{sfm}.bak"), &build(&spec))];
        let reps = mtf::verify(&devs, None, false).unwrap();
        assert!(
            reps.iter().all(|r| r.verdict == Verdict::Valid),
            "lbs {lbs} sfm {sfm}: {reps:?}"
        );
        let mut out = Vec::new();
        mtf::read_stream(&devs, 2, StreamKind::Data, &mut out, "out").unwrap();
        assert_eq!(out, pages(0..24));
        assert_eq!(devs[0].label().logical_block_size, Some(lbs as u32));
    }
}

fn stripe(n: u16, guid: u8) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|f| {
            let ids = (0..8u32).map(move |k| (u32::from(f) - 1) * 8 + k);
            build(&MediaSpec {
                guid: [guid; 16],
                family_count: n,
                family: f,
                sets: vec![set("s", b'D', ids)],
                ..Default::default()
            })
        })
        .collect()
}

#[test]
fn striped_set_in_any_order_and_a_missing_family() {
    let fams = stripe(3, 9);
    let devs = [
        open("st3.bak", &fams[2]),
        open("st1.bak", &fams[0]),
        open("st2.bak", &fams[1]),
    ];
    let rows = mtf::header_only(&devs).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].family_count, Some(3));
    assert!(rows[0].is_complete);
    let mut out = Vec::new();
    mtf::read_stream(&devs, 1, StreamKind::Data, &mut out, "out").unwrap();
    assert_eq!(out, pages(0..24), "families are read in family order");
    assert!(mtf::verify(&devs, None, false)
        .unwrap()
        .iter()
        .all(|r| r.verdict == Verdict::Valid));
    // Family 2 missing: verify and read name it.
    let two = [open("st1b.bak", &fams[0]), open("st3b.bak", &fams[2])];
    let e = mtf::verify(&two, None, false).unwrap_err();
    assert!(
        matches!(&e, Error::MediaSet { what } if what.contains("family 2 missing")),
        "{e}"
    );
    assert!(matches!(
        mtf::read_stream(&two, 1, StreamKind::Data, &mut Vec::new(), "out"),
        Err(Error::MediaSet { .. })
    ));
    // A lone family says which family of how many, and headers still read.
    let lone = [open("st2c.bak", &fams[1])];
    let l = lone[0].label();
    assert_eq!(
        (l.family_sequence_number, l.family_count),
        (Some(2), Some(3))
    );
    assert!(!mtf::header_only(&lone).unwrap()[0].is_complete);
    // The same family twice, or a family of another media set, is refused.
    let dup = [open("d1.bak", &fams[0]), open("d2.bak", &fams[0])];
    assert!(matches!(
        mtf::header_only(&dup),
        Err(Error::Refused {
            kind: bak_core::Refusal::Usage,
            ..
        })
    ));
    let other = stripe(3, 10);
    let mixed = [
        open("m1.bak", &fams[0]),
        open("m2.bak", &other[1]),
        open("m3.bak", &fams[2]),
    ];
    assert!(matches!(
        mtf::verify(&mixed, None, false),
        Err(Error::MediaSet { .. })
    ));
}

fn verify_bytes(name: &str, m: &[u8]) -> Vec<bak_core::report::SetReport> {
    match MtfDevice::open(&temp_file(name, m)) {
        Ok(d) => mtf::verify(&[d], None, false).unwrap(),
        Err(e) => {
            assert!(
                e.is_media_damage() || matches!(e, Error::NotMedia { .. }),
                "{e}"
            );
            Vec::new()
        }
    }
}

fn problems_at(reps: &[bak_core::report::SetReport], off: usize) -> bool {
    reps.iter()
        .flat_map(|r| &r.problems)
        .any(|p| p.offset == Some(off as u64))
}

#[test]
fn bit_flip_in_every_block_header_is_found_where_it_is() {
    let good = build(&MediaSpec {
        sets: vec![set("a", b'D', 0..8), set("b", b'D', 0..8)],
        ..Default::default()
    });
    for kind in [
        b"SSET", b"VOLB", b"MSCI", b"MSDA", b"MSTL", b"MSLS", b"SFMB", b"ESET",
    ] {
        for off in blocks(&good, kind) {
            let mut m = good.clone();
            m[off + 21] ^= 0x04;
            let reps = verify_bytes("flip.bak", &m);
            assert!(
                reps.iter().any(|r| r.verdict == Verdict::Damaged),
                "{}",
                String::from_utf8_lossy(kind)
            );
            assert!(
                problems_at(&reps, off),
                "{} at {off}: {reps:?}",
                String::from_utf8_lossy(kind)
            );
        }
    }
    // The TAPE block: opening fails with a located Corrupt error.
    let mut m = good.clone();
    m[30] ^= 1;
    let e = MtfDevice::open(&temp_file("tape.bak", &m)).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { ref at, .. } if at.offset == Some(0)),
        "{e}"
    );
}

#[test]
fn bit_flip_in_stream_headers_and_pages() {
    let good = build(&MediaSpec::default());
    for id in [b"MQDA", b"MQTL", b"MQCI", b"SPAD"] {
        let off = streams(&good, id)[0];
        let mut m = good.clone();
        m[off + 9] ^= 0x80;
        let reps = verify_bytes("sflip.bak", &m);
        assert!(
            problems_at(&reps, off),
            "{}: {reps:?}",
            String::from_utf8_lossy(id)
        );
        assert_eq!(reps[0].verdict, Verdict::Damaged);
    }
    // A flip inside a page body: the page checksum names the page.
    let mqda = streams(&good, b"MQDA")[0];
    let page5 = mqda + 24 + 5 * PAGE;
    let mut m = good.clone();
    m[page5 + 3000] ^= 0x01;
    let reps = verify_bytes("pflip.bak", &m);
    let p = &reps[0].problems[0];
    assert_eq!(p.offset, Some(page5 as u64));
    assert!(p.what.contains("1:5 checksum"), "{p:?}");
    assert_eq!(reps[0].verdict, Verdict::Damaged);
    // The restore stops before the page: pages 0 to 4 out, nothing of page 5.
    let d = MtfDevice::open(&temp_file("pflip2.bak", &m)).unwrap();
    let mut out = Vec::new();
    let e = mtf::read_stream(&[d], 1, StreamKind::Data, &mut out, "out").unwrap_err();
    assert!(e.to_string().contains("1:5 checksum fails"), "{e}");
    assert_eq!(out, pages(0..5));
}

#[test]
fn stream_running_past_the_end_and_truncation() {
    let good = build(&MediaSpec::default());
    let off = streams(&good, b"MQDA")[0];
    let mut m = good.clone();
    m[off + 8..off + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    seal_stream(&mut m, off);
    let reps = verify_bytes("long.bak", &m);
    assert!(problems_at(&reps, off), "{reps:?}");
    let d = MtfDevice::open(&temp_file("long2.bak", &m)).unwrap();
    assert!(mtf::read_stream(&[d], 1, StreamKind::Data, &mut Vec::new(), "out").is_err());
    // Cut the media anywhere: never a panic; a cut after the TAPE block gives a verdict.
    for cut in (0..good.len())
        .step_by(509)
        .chain([good.len() - 1, good.len() - 512])
    {
        let reps = verify_bytes("cut.bak", &good[..cut]);
        if cut > 2048 {
            assert!(
                reps.iter().all(|r| r.verdict != Verdict::Valid),
                "cut at {cut}: {reps:?}"
            );
        }
    }
    // Cut just before the closing ESETs: the set is incomplete.
    let eset = blocks(&good, b"ESET")[0];
    let reps = verify_bytes("noeset.bak", &good[..eset]);
    assert_eq!(reps[0].verdict, Verdict::Incomplete, "{reps:?}");
}

#[test]
fn soft_filemark_table_and_fla_damage() {
    let good = build(&MediaSpec {
        sets: vec![set("a", b'D', 0..8), set("b", b'D', 0..8)],
        ..Default::default()
    });
    let last = *blocks(&good, b"SFMB").last().unwrap();
    let mut m = good.clone();
    m[last + 0x48] ^= 0x02;
    seal_block(&mut m, last);
    assert!(problems_at(&verify_bytes("sfmb.bak", &m), last));
    let msda = blocks(&good, b"MSDA")[0];
    let mut m = good.clone();
    m[msda + 20] = m[msda + 20].wrapping_add(1);
    seal_block(&mut m, msda);
    let reps = verify_bytes("fla.bak", &m);
    assert!(
        reps[0]
            .problems
            .iter()
            .any(|p| p.what.contains("format logical address")),
        "{reps:?}"
    );
    // Trailing configuration naming another database.
    let mut m = good.clone();
    let msls = blocks(&good, b"MSLS")[0];
    let name = msls + 56 + 22 + 0x70;
    m[name] ^= 0x01;
    let reps = verify_bytes("cfg.bak", &m);
    assert!(
        reps[0].problems.iter().any(|p| p.what.contains("disagree")),
        "{reps:?}"
    );
}

#[test]
fn stop_on_error_reports_one_problem() {
    let good = build(&MediaSpec::default());
    let mqda = streams(&good, b"MQDA")[0];
    let mut m = good.clone();
    for k in 0..4 {
        m[mqda + 24 + k * PAGE + 500] ^= 1;
    }
    let d = MtfDevice::open(&temp_file("stop.bak", &m)).unwrap();
    let all = mtf::verify(std::slice::from_ref(&d), None, false).unwrap();
    assert_eq!(all[0].problems.len(), 4);
    let first = mtf::verify(&[d], None, true).unwrap();
    assert_eq!(first[0].problems.len(), 1);
}

#[test]
fn not_media_is_told_apart() {
    let e = MtfDevice::open(&temp_file("text.txt", b"hello world")).unwrap_err();
    assert!(matches!(e, Error::NotMedia { .. }));
    let e = MtfDevice::open(std::path::Path::new("/nonexistent/x.bak")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert_eq!(mtf::sniff(b"TAPE"), Some(bak_core::bytes::MediaKind::Mtf));
    assert_eq!(
        mtf::sniff(b"MSSQLBAK"),
        Some(bak_core::bytes::MediaKind::MtfCompressed)
    );
    assert_eq!(mtf::sniff(b"xx"), None);
    // A compressed container of an unknown version: not corruption.
    let mut c = b"MSSQLBAK".to_vec();
    c.extend_from_slice(&[9, 0, 0, 0, 3, 0, 0, 0]);
    c.resize(2048, 0);
    let e = MtfDevice::open(&temp_file("v9.bak", &c)).unwrap_err();
    assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
}

#[test]
fn write_mtf_of_a_plain_device_is_a_copy() {
    let m = build(&MediaSpec::default());
    let d = open("copy.bak", &m);
    let mut out = Vec::new();
    assert_eq!(mtf::write_mtf(&d, &mut out, "out").unwrap(), m.len() as u64);
    assert_eq!(out, m);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(head in prop::sample::select(vec![&b"TAPE"[..], &b"MSSQLBAK\x02\0\0\0\x03\0\0\0"[..]]), body in prop::collection::vec(any::<u8>(), 0..6000)) {
            let mut m = head.to_vec();
            m.extend(body);
            if let Ok(d) = MtfDevice::open(&temp_file("arb.bak", &m)) {
                let devs = [d];
                let _ = mtf::header_only(&devs);
                let _ = mtf::file_list(&devs, None);
                let _ = mtf::verify(&devs, None, false);
                let _ = mtf::read_stream(&devs, 1, StreamKind::Data, &mut Vec::new(), "out");
                let _ = mtf::write_mtf(&devs[0], &mut Vec::new(), "out");
            }
        }

        #[test]
        fn damaged_media_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut m = build(&MediaSpec { sets: vec![set("a", b'D', 0..8), set("b", b'L', [])], ..Default::default() });
            for (i, v) in flips {
                let k = i.index(m.len());
                m[k] ^= v | 1;
            }
            if let Ok(d) = MtfDevice::open(&temp_file("dmg.bak", &m)) {
                let devs = [d];
                let _ = mtf::header_only(&devs);
                let _ = mtf::list_streams(&devs, 1);
                let _ = mtf::verify(&devs, None, false);
                let _ = mtf::read_stream(&devs, 1, StreamKind::Data, &mut Vec::new(), "out");
                let _ = mtf::read_stream(&devs, 2, StreamKind::Log, &mut Vec::new(), "out");
            }
        }
    }
}

#[test]
fn a_set_appended_to_one_family_only_is_incomplete() {
    // Two families; set 1 on both, set 2 appended to family 1 only.
    let fam = |f: u16, sets: Vec<SetSpec>| {
        build(&MediaSpec {
            guid: [11; 16],
            family_count: 2,
            family: f,
            sets,
            ..Default::default()
        })
    };
    let one = fam(1, vec![set("s", b'D', 0..8), set("s", b'D', 0..4)]);
    let two = fam(2, vec![set("s", b'D', 8..16)]);
    let devs = [open("inc1.bak", &one), open("inc2.bak", &two)];
    let reps = mtf::verify(&devs, None, false).unwrap();
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[0].verdict, Verdict::Valid, "{reps:?}");
    assert_eq!(reps[1].verdict, Verdict::Incomplete, "{reps:?}");
    assert!(
        reps[1].problems[0].what.contains("ends after set 1"),
        "{:?}",
        reps[1].problems
    );
    // bak-read of set 2 does not pass it off as whole.
    assert!(mtf::read_stream(&devs, 2, StreamKind::Data, &mut Vec::new(), "out").is_err());
}
