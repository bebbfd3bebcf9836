//! A larger SQL Server backup made from a real fixture's own pages, for bench/tables.sh (issue
//! 18: "measured on the fixtures repeated into a larger backup").
//!
//!     cargo run --release -p bak-tests --example big_backup -- FIXTURE OUT [MIB]
//!
//! It reads the data stream of the fixture's first backup set, picks the user table whose
//! clustered index has the longest leaf chain (ties: the most records), and repeats that
//! chain's pages after the database's last page until the stream holds about MIB MiB (256 by
//! default): each copy gets a new page id (whole extents, skipping the ids of PFS, GAM and SGAM
//! pages), the leaf chain's next and previous links run through every copy, the table's row
//! count in sysrowsets and its page counts in sysallocunits are raised to match, and every
//! changed page's checksum is computed again. The pages are written into a one-family MTF
//! medium (tests/tests/mtf_support), whose configuration gives data file 1 the size the new
//! pages need. So `bak-read --table` reads the table through its ordinary path and
//! bak-verify's row-count check holds. Prints the table's object id and the figures to stderr.

#[path = "../tests/mtf_support/mod.rs"]
#[allow(dead_code)]
mod mtf_support;

use std::collections::HashMap;
use std::path::PathBuf;

use bak_mtf::{MtfDevice, StreamKind};
use mtf_support::{build, page_checksum, set, u16_at, u32_at, MediaSpec, PAGE};

/// sysallocunits' and sysrowsets' allocation units (their object ids 7 and 5, index 0).
const SYSALLOCUNITS: u64 = 7 << 16;
const SYSROWSETS: u64 = 5 << 16;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A page's allocation unit: index id << 48 | object id << 16.
fn unit(p: &[u8]) -> u64 {
    (u64::from(u16_at(p, 6)) << 48) | (u64::from(u32_at(p, 24)) << 16)
}

/// Page id (file, page) of the page header at `p`.
fn id(p: &[u8]) -> (u16, u32) {
    (u16_at(p, 36), u32_at(p, 32))
}

/// The record offsets of a page's slots.
fn slots(p: &[u8]) -> Vec<usize> {
    let n = usize::from(u16_at(p, 22));
    (0..n.min(1000))
        .map(|s| usize::from(u16_at(p, PAGE - 2 - 2 * s)))
        .filter(|&o| (96..PAGE - 4).contains(&o))
        .collect()
}

/// A primary or forwarded record that is not a ghost.
fn is_row(p: &[u8], off: usize) -> bool {
    match (p[off] >> 1) & 7 {
        0 => true,
        1 => p[off + 1] & 1 == 0,
        _ => false,
    }
}

/// Stream page `k` of `data`.
fn page_of(data: &[u8], k: usize) -> &[u8] {
    &data[k * PAGE..(k + 1) * PAGE]
}

fn seal(p: &mut [u8]) {
    if u16_at(p, 4) & 0x200 != 0 {
        let c = page_checksum(p);
        p[60..64].copy_from_slice(&c.to_le_bytes());
    }
}

fn set_link(p: &mut [u8], at: usize, to: Option<(u16, u32)>) {
    let (f, pg) = to.unwrap_or((0, 0));
    p[at..at + 4].copy_from_slice(&pg.to_le_bytes());
    p[at + 4..at + 6].copy_from_slice(&f.to_le_bytes());
}

/// A page id that SQL Server keeps for an allocation page: PFS (every 8088), GAM and SGAM
/// (2 and 3 of every 511232).
fn reserved(pg: u32) -> bool {
    pg % 8088 == 0 || pg == 1 || matches!(pg % 511_232, 0..=3)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(from), Some(to)) = (args.first(), args.get(1)) else {
        eprintln!("usage: big_backup FIXTURE OUT [MIB]");
        std::process::exit(2);
    };
    let mib: u64 = args
        .get(2)
        .map_or(256, |m| m.parse().expect("MIB: a number"));
    let dev = MtfDevice::open(&PathBuf::from(from)).unwrap_or_else(|e| {
        eprintln!("big_backup: {e}");
        std::process::exit(2)
    });
    let mut data = Vec::new();
    bak_mtf::read_stream(&[dev], 1, StreamKind::Data, &mut data, "data").unwrap();
    data.truncate(data.len() / PAGE * PAGE);
    // Whole extents, so that the stream's groups of 8 stay aligned after the new pages.
    data.resize(data.len().div_ceil(8 * PAGE) * 8 * PAGE, 0);
    let n = data.len() / PAGE;
    // Where each page lies: the copy that fits its extent (a stale copy names another page).
    let mut at: HashMap<(u16, u32), usize> = HashMap::new();
    let mut last = 0u32;
    for k in 0..n {
        let p = page_of(&data, k);
        if p[0] != 1 || u16_at(p, 36) != 1 || u32_at(p, 32) as usize % 8 != k % 8 {
            continue;
        }
        at.insert(id(p), k);
        last = last.max(u32_at(p, 32));
    }
    let find = |unit_id: u64| -> Vec<usize> {
        let mut v: Vec<usize> = at
            .values()
            .copied()
            .filter(|&k| unit(page_of(&data, k)) == unit_id && page_of(&data, k)[1] == 1)
            .collect();
        v.sort_unstable();
        v
    };
    // sysrowsets: rowset id -> (object id, index id); sysallocunits: in-row units.
    let mut rowsets = HashMap::new();
    for k in find(SYSROWSETS) {
        for o in slots(page_of(&data, k)) {
            let p = page_of(&data, k);
            if is_row(p, o) {
                rowsets.insert(u64_at(p, o + 4), (u32_at(p, o + 13), u32_at(p, o + 17)));
            }
        }
    }
    // The user table (object id >= 100) with a clustered index whose leaf chain is longest.
    let mut best: Option<(usize, usize, u64, u32, Vec<usize>)> = None;
    for k in find(SYSALLOCUNITS) {
        for o in slots(page_of(&data, k)) {
            let p = page_of(&data, k);
            if !is_row(p, o) || p[o + 12] != 1 {
                continue;
            }
            let (auid, owner) = (u64_at(p, o + 4), u64_at(p, o + 13));
            let Some(&(obj, 1)) = rowsets.get(&owner) else {
                continue;
            };
            if obj < 100 {
                continue;
            }
            let mut chain = Vec::new();
            let mut cur = (u16_at(p, o + 31), u32_at(p, o + 27));
            while let Some(&c) = at.get(&cur) {
                if chain.contains(&c) || unit(page_of(&data, c)) != auid {
                    break;
                }
                chain.push(c);
                cur = (u16_at(page_of(&data, c), 20), u32_at(page_of(&data, c), 16));
            }
            let rows: usize = chain
                .iter()
                .map(|&c| {
                    slots(page_of(&data, c))
                        .into_iter()
                        .filter(|&o| is_row(page_of(&data, c), o))
                        .count()
                })
                .sum();
            if best
                .as_ref()
                .is_none_or(|b| (chain.len(), rows) > (b.0, b.1))
            {
                best = Some((chain.len(), rows, owner, obj, chain));
            }
        }
    }
    let (len, rows, owner, obj, chain) = best.expect("no user table with a clustered index");
    let copies = ((mib << 20) as usize / PAGE).saturating_sub(n) / len.max(1);
    // New ids: whole extents after the last page, none of them an allocation page's.
    let mut ids = Vec::new();
    let mut next = (last / 8 + 1) * 8;
    while ids.len() < copies * len {
        if !(next..next + 8).any(reserved) {
            ids.extend(next..next + 8);
        }
        next += 8;
    }
    ids.truncate(copies * len);
    let mut order: Vec<(u16, u32)> = chain.iter().map(|&c| id(page_of(&data, c))).collect();
    order.extend(ids.iter().map(|&i| (1u16, i)));
    // The new pages, extent by extent (unused slots of the last extent stay zero).
    let first_new = ids.first().copied().unwrap_or(next);
    let extents = ids.last().map_or(0, |l| (l - first_new) / 8 + 1) as usize;
    let mut more = vec![0u8; extents * 8 * PAGE];
    for (i, &nid) in ids.iter().enumerate() {
        let src = chain[i % len];
        let slot = (nid - first_new) as usize;
        let p = &mut more[slot * PAGE..(slot + 1) * PAGE];
        p.copy_from_slice(&data[src * PAGE..(src + 1) * PAGE]);
        p[32..36].copy_from_slice(&nid.to_le_bytes());
        p[36..38].copy_from_slice(&1u16.to_le_bytes());
        let pos = len + i;
        set_link(p, 8, Some(order[pos - 1]));
        set_link(p, 16, order.get(pos + 1).copied());
        seal(p);
    }
    // The catalog's pages, found before any page changes.
    let catalog: Vec<usize> = find(SYSROWSETS)
        .into_iter()
        .chain(find(SYSALLOCUNITS))
        .collect();
    // The chain's last original page now leads to the first copy.
    let tail = chain[len - 1];
    if let Some(&nx) = order.get(len) {
        let p = &mut data[tail * PAGE..(tail + 1) * PAGE];
        set_link(p, 16, Some(nx));
        seal(p);
    }
    // The counts the catalog keeps: rows in sysrowsets, pages in sysallocunits.
    let total_rows = (rows * (copies + 1)) as i64;
    let added = ids.len() as u64;
    for k in catalog {
        let is_rowsets = unit(page_of(&data, k)) == SYSROWSETS;
        let p = &mut data[k * PAGE..(k + 1) * PAGE];
        let mut changed = false;
        for o in slots(p) {
            if !is_row(p, o) {
                continue;
            }
            if is_rowsets && u64_at(p, o + 4) == owner {
                p[o + 31..o + 39].copy_from_slice(&total_rows.to_le_bytes());
                changed = true;
            } else if !is_rowsets && u64_at(p, o + 13) == owner && p[o + 12] == 1 {
                for f in [45, 53, 61] {
                    let v = u64_at(p, o + f) + added;
                    p[o + f..o + f + 8].copy_from_slice(&v.to_le_bytes());
                }
                changed = true;
            }
        }
        if changed {
            seal(p);
        }
    }
    data.extend_from_slice(&more);
    let file_size = (u64::from(next) + 8) * PAGE as u64;
    let mut s = set("big", b'D', []);
    s.raw = data;
    s.file_size = file_size;
    let spec = MediaSpec {
        lbs: 1024,
        sets: vec![s],
        ..Default::default()
    };
    let bytes = build(&spec);
    std::fs::write(to, &bytes).unwrap_or_else(|e| {
        eprintln!("big_backup: {to}: {e}");
        std::process::exit(2)
    });
    eprintln!(
        "big_backup: {to}: {} MiB; object {obj}: {len} leaf pages x {} = {} pages, {total_rows} rows",
        bytes.len() >> 20,
        copies + 1,
        len * (copies + 1)
    );
}
