//! Seeded fault injection on bak media: bit flips in every kind of record, truncation, zeroed
//! ranges, garbage, and mixed-up media sets. Whatever the damage, verify says so naming the
//! file and where, and a restore either gives the exact bytes or fails; a set the damage did
//! not touch still restores.

use std::path::{Path, PathBuf};

use bak_core::internals::scan_file as scan_family;

use crate::util::*;

fn tool(t: &str, a: &[std::ffi::OsString]) -> Output {
    run(t, &os(a), b"")
}

/// Run verify and both reads on damaged media and check every promise.
fn check_case(
    devs: &[PathBuf],
    damaged: &Path,
    hit_set: Option<u32>,
    sets: &[&[u8]; 2],
    what: &str,
) {
    let v = tool("bak-verify", &args![devs]);
    let name = damaged.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(v.code, 1, "{what}: verify exit {} {}", v.code, v.stderr);
    let text = format!("{}{}", String::from_utf8_lossy(&v.stdout), v.stderr);
    assert!(
        text.contains(&name),
        "{what}: verify does not name {name}: {text}"
    );
    assert!(
        text.contains("offset") || text.contains("missing") || text.contains("family"),
        "{what}: no location: {text}"
    );
    for pos in 1..=2u32 {
        let r = tool(
            "bak-read",
            &args!["--quiet", "--file", pos.to_string(), devs],
        );
        let want = sets[pos as usize - 1];
        if r.code == 0 {
            assert!(
                r.stdout == want,
                "{what}: read of set {pos} exit 0 with wrong bytes"
            );
        }
        if hit_set == Some(pos) {
            assert_ne!(r.code, 0, "{what}: read of damaged set {pos} succeeded")
        }
        if hit_set == Some(0) || hit_set.is_some_and(|h| h != pos) {
            // Damage outside this set: the restore must still be exact.
            assert_eq!(
                r.code, 0,
                "{what}: read of intact set {pos} refused: {}",
                r.stderr
            );
        }
    }
}

/// Which set a byte offset belonged to before the damage: `set_of` on the pristine bytes.
fn set_of_pristine(pristine: &[u8], path: &Path, off: u64) -> u32 {
    let cur = std::fs::read(path).unwrap();
    std::fs::write(path, pristine).unwrap();
    let s = set_of(path, off);
    std::fs::write(path, cur).unwrap();
    s
}

#[test]
fn bit_flips_in_every_kind_of_record_are_found_and_never_restored_wrong() {
    let t = temp_dir("flips");
    let (devs, one, two) = two_sets_on_three_families(&t, "f");
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<(usize, u64, u64)>> = Default::default();
    for (i, d) in devs.iter().enumerate() {
        for (k, a, b) in regions(d) {
            by_kind.entry(k).or_default().push((i, a, b));
        }
    }
    let mut rng = Rng::new(0x5eed_0003);
    let mut cases = 0;
    for (kind, places) in &by_kind {
        for _ in 0..25 {
            let (fam, a, b) = places[rng.below(places.len() as u64) as usize];
            let off = a + rng.below(b - a);
            let bit = rng.below(8) as u8;
            let mut bytes = pristine[fam].clone();
            bytes[off as usize] ^= 1 << bit;
            std::fs::write(&devs[fam], &bytes).unwrap();
            let hit = match *kind {
                "media header" => None, // needed by every set: both reads may refuse
                "set map slot" => Some(0),
                _ => Some(set_of_pristine(&pristine[fam], &devs[fam], off)),
            };
            check_case(
                &devs,
                &devs[fam],
                hit,
                &[&one, &two],
                &format!("{kind} flip at {off} bit {bit} of family {}", fam + 1),
            );
            std::fs::write(&devs[fam], &pristine[fam]).unwrap();
            cases += 1;
        }
    }
    assert!(cases >= 200, "only {cases} cases");
}

#[test]
fn truncation_zeroed_ranges_garbage_and_set_mixups_are_found() {
    let t = temp_dir("trunc");
    let (devs, one, two) = two_sets_on_three_families(&t, "t");
    let pristine: Vec<Vec<u8>> = devs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let mut rng = Rng::new(0x5eed_0004);
    // Truncation inside the last set.
    for _ in 0..20 {
        let fam = rng.below(3) as usize;
        let f = std::fs::File::open(&devs[fam]).unwrap();
        let start = scan_family(&f, &devs[fam]).unwrap().sets[1]
            .eset
            .set_header_offset;
        let len = pristine[fam].len() as u64;
        let cut = start + rng.below(len - start);
        std::fs::write(&devs[fam], &pristine[fam][..cut as usize]).unwrap();
        check_case(
            &devs,
            &devs[fam],
            Some(2),
            &[&one, &two],
            &format!("truncated family {} at {cut}", fam + 1),
        );
        std::fs::write(&devs[fam], &pristine[fam]).unwrap();
    }
    // A zeroed 4 KiB range somewhere in the sets.
    for _ in 0..10 {
        let fam = rng.below(3) as usize;
        let len = pristine[fam].len() as u64;
        let at = 8192 + rng.below(len - 8192 - 4096);
        let mut b = pristine[fam].clone();
        b[at as usize..at as usize + 4096].fill(0);
        std::fs::write(&devs[fam], &b).unwrap();
        check_case(
            &devs,
            &devs[fam],
            None,
            &[&one, &two],
            &format!("zeroed 4 KiB at {at} of family {}", fam + 1),
        );
        std::fs::write(&devs[fam], &pristine[fam]).unwrap();
    }
    // Garbage appended.
    let mut b = pristine[1].clone();
    b.extend_from_slice(&data(5000, 99));
    std::fs::write(&devs[1], &b).unwrap();
    check_case(&devs, &devs[1], Some(0), &[&one, &two], "garbage appended");
    std::fs::write(&devs[1], &pristine[1]).unwrap();

    // A missing family, two media sets mixed (damage: exit 1); a family twice (usage: exit 2).
    let other = two_sets_on_three_families(&t, "o").0;
    for (given, needle, code) in [
        (
            vec![devs[0].clone(), devs[1].clone()],
            "family 3 is missing",
            1,
        ),
        (
            vec![devs[0].clone(), devs[1].clone(), devs[1].clone()],
            "given twice",
            2,
        ),
        (
            vec![devs[0].clone(), devs[1].clone(), other[2].clone()],
            "another media set",
            1,
        ),
    ] {
        let v = tool("bak-verify", &args![&given]);
        assert_eq!(v.code, code, "{needle}: {}", v.stderr);
        assert!(v.stderr.contains(needle), "{}", v.stderr);
        let r = tool("bak-read", &args![&given]);
        assert_eq!(r.code, code, "{needle}: {}", r.stderr);
    }
}
