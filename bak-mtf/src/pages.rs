//! Checks of the SQL Server pages inside a data stream (MQDA).
//!
//! The data stream is a run of extents, 8 pages of 8 KiB each, copied whole and aligned: the
//! page at slot k of an extent has a page id ≡ k (mod 8). Allocated pages carry a 96-byte header
//! naming their file and page id; unallocated pages of an extent hold zeros or stale bytes, and
//! stale bytes can be a whole old page with a valid header and checksum naming another extent
//! (cmp2014_sharepoint_2sets.bak: slots 338..343 hold old copies of pages 18..23). So a page
//! is judged only when its header looks like a page header (version 1, a known page type, a file
//! id of the set), and then: when it carries a checksum (flag 0x200) the checksum must hold, and
//! its page id must fit its slot. The checksum algorithm was confirmed on every checksummed
//! page of the fixtures.

/// SQL Server page size.
pub(crate) const PAGE: usize = 8192;
/// Pages per extent.
const EXTENT_PAGES: u64 = 8;
/// Page header flag: the page carries a checksum at offset 60.
const FLAG_CHECKSUM: u16 = 0x200;
/// Page types seen in SQL Server (data, index, text, GAM, SGAM, IAM, PFS, boot, file header,
/// diff and ML maps, sort, ...).
const KNOWN_TYPES: [u8; 17] = [1, 2, 3, 4, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20];

/// A problem with one page, at an MTF offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageProblem {
    pub off: u64,
    pub what: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

/// SQL Server's page checksum: XOR of each 512-byte sector's u32 words, rotated left by
/// 15 - sector, XORed together; the checksum field itself (offset 60) counts as zero.
pub(crate) fn page_checksum(page: &[u8]) -> Option<u32> {
    if page.len() != PAGE {
        return None;
    }
    let mut sum = 0u32;
    for (i, sector) in page.chunks_exact(512).enumerate() {
        let mut x = 0u32;
        for (j, w) in sector.chunks_exact(4).enumerate() {
            if !(i == 0 && j == 15) {
                x ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
        }
        sum ^= x.rotate_left((15 - i as u32) % 32);
    }
    Some(sum)
}

/// Check one whole page found at `slot` (0..8) of its extent, at MTF offset `off`. `fids` are
/// the set's file ids (empty = unknown: any non-zero id).
pub(crate) fn check_page(p: &[u8], slot: u64, off: u64, fids: &[u16], out: &mut Vec<PageProblem>) {
    if p.len() != PAGE || p[0] != 1 || !KNOWN_TYPES.contains(&p[1]) {
        return;
    }
    let pid = u32::from_le_bytes([p[32], p[33], p[34], p[35]]);
    let fid = u16::from_le_bytes([p[36], p[37]]);
    let plausible = if fids.is_empty() {
        fid != 0
    } else {
        fids.contains(&fid)
    };
    if !plausible {
        return; // stale bytes of an unallocated page
    }
    let flags = u16::from_le_bytes([p[4], p[5]]);
    if flags & FLAG_CHECKSUM != 0 {
        let stored = u32::from_le_bytes([p[60], p[61], p[62], p[63]]);
        if let Some(c) = page_checksum(p) {
            if c != stored {
                out.push(PageProblem {
                    off,
                    what: format!("database page {fid}:{pid} checksum fails"),
                    expected: Some(format!("{c:#010x}")),
                    found: Some(format!("{stored:#010x}")),
                });
                return;
            }
        }
    }
    if u64::from(pid) % EXTENT_PAGES != slot {
        out.push(PageProblem {
            off,
            what: format!("database page {fid}:{pid} lies at slot {slot} of its extent"),
            expected: Some(format!("a page id ≡ {slot} (mod 8)")),
            found: Some(pid.to_string()),
        });
    }
}

/// Feeds a data stream's bytes (after its 2-byte pad) in pieces and checks page by page.
pub(crate) struct PageChecker {
    buf: Vec<u8>,
    /// MTF offset of `buf[0]`.
    start: u64,
    /// MTF offset of the stream's first page.
    first: u64,
    fids: Vec<u16>,
    pub problems: Vec<PageProblem>,
}

impl PageChecker {
    /// A checker for pages starting at MTF offset `first`, of the files `fids`.
    pub fn new(first: u64, fids: Vec<u16>) -> Self {
        PageChecker {
            buf: Vec::with_capacity(PAGE),
            start: first,
            first,
            fids,
            problems: Vec::new(),
        }
    }

    fn page_done(&mut self) {
        let slot = ((self.start - self.first) / PAGE as u64) % EXTENT_PAGES;
        check_page(&self.buf, slot, self.start, &self.fids, &mut self.problems);
        self.start += PAGE as u64;
        self.buf.clear();
    }

    /// Bytes at MTF offset `off` (pieces come in order; a gap drops the page in progress).
    pub fn feed(&mut self, off: u64, mut data: &[u8]) {
        if off != self.start + self.buf.len() as u64 {
            self.buf.clear();
            let rel = off.saturating_sub(self.first);
            let next = rel.div_ceil(PAGE as u64) * PAGE as u64;
            let skip = usize::try_from(next - rel)
                .unwrap_or(usize::MAX)
                .min(data.len());
            data = &data[skip..];
            self.start = self.first + next;
        }
        while !data.is_empty() {
            let take = (PAGE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == PAGE {
                self.page_done();
            }
        }
    }

    /// End of the stream: a last partial page is not a page and is not judged.
    pub fn finish(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    /// A page with a header naming (fid, pid), a checksum, some content.
    pub fn page(fid: u16, pid: u32, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; PAGE];
        p[..96].fill(0);
        p[0] = 1;
        p[1] = 1;
        p[4..6].copy_from_slice(&FLAG_CHECKSUM.to_le_bytes());
        p[32..36].copy_from_slice(&pid.to_le_bytes());
        p[36..38].copy_from_slice(&fid.to_le_bytes());
        let c = page_checksum(&p).unwrap();
        p[60..64].copy_from_slice(&c.to_le_bytes());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::page;
    use super::*;

    fn extent(base: u32) -> Vec<u8> {
        (0..8)
            .flat_map(|k| page(1, base + k, k as u8 + 1))
            .collect()
    }

    fn check_all(data: &[u8], fids: &[u16]) -> Vec<PageProblem> {
        let mut c = PageChecker::new(0, fids.to_vec());
        c.feed(0, data);
        c.finish();
        c.problems
    }

    #[test]
    fn good_extents_pass() {
        assert!(check_all(&[extent(16), extent(8)].concat(), &[1, 2]).is_empty());
    }

    #[test]
    fn wrong_id_and_bad_checksum_are_found() {
        let mut e = extent(16);
        e[3 * PAGE + 32] ^= 0x01; // page 19's header damaged: checksum fails
        e[5 * PAGE + 4000] ^= 0x10; // body damage on page 21
        let out = check_all(&e, &[1]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].off, 3 * PAGE as u64);
        assert!(out[0].what.contains("1:18 checksum"), "{}", out[0].what);
        assert!(out[1].what.contains("1:21 checksum"));
        // A page without checksum flag at the wrong slot.
        let mut p = page(1, 21, 0);
        p[4] = 0;
        p[5] = 0;
        let mut out = Vec::new();
        check_page(&p, 2, 0, &[1], &mut out);
        assert!(out[0].what.contains("slot 2"));
    }

    #[test]
    fn stale_and_zero_pages_are_ignored() {
        let mut e = extent(8);
        e[2 * PAGE..3 * PAGE].fill(0);
        for (i, b) in e[4 * PAGE..5 * PAGE].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        e[4 * PAGE] = 1;
        e[4 * PAGE + 1] = 1;
        // An old, intact copy of page 21 at slot 5: valid, not flagged.
        e[5 * PAGE..6 * PAGE].copy_from_slice(&page(1, 21, 9));
        assert!(check_all(&e, &[1]).is_empty());
    }

    #[test]
    fn checker_handles_pieces_and_gaps() {
        let data: Vec<u8> = [extent(0), extent(8)].concat();
        let mut c = PageChecker::new(100, vec![1]);
        for (i, piece) in data.chunks(1000).enumerate() {
            c.feed(100 + (i * 1000) as u64, piece);
        }
        c.finish();
        assert!(c.problems.is_empty());
        let mut c = PageChecker::new(0, vec![1]);
        c.feed(0, &data[..5000]);
        c.feed(70_000, &data[70_000..]);
        c.finish();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }
}
