//! Checks of the SQL Server pages inside a data stream (MQDA).
//!
//! The data stream is a run of extents, 8 pages of 8 KiB each, copied whole and aligned: the
//! page at slot k of an extent has a page id ≡ k (mod 8). Allocated pages carry a 96-byte header
//! naming their file and page id; unallocated pages of an extent hold zeros or stale bytes, and
//! stale bytes can be a whole old page with a valid header and checksum naming another extent
//! (cmp2014_sharepoint_2sets.bak: slots 338..343 hold old copies of pages 18..23). So a page
//! is judged only when its header looks like a page header (version 1, a known page type, a file
//! id of the set), and then: when it carries a checksum (flag 0x200) the checksum must hold, when
//! it carries torn-page bits (flag 0x100) every sector must carry their pattern, and its page id
//! must fit its slot. The checksum algorithm was confirmed on every checksummed
//! page of the fixtures.

use bak_core::error::Result;

/// SQL Server page size.
pub(crate) const PAGE: usize = 8192;
/// Size of the page header.
pub(crate) const HEADER: usize = 96;
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
        let mut x = crate::csum::xor_words(sector);
        if i == 0 {
            // XORing the stored field in again takes it out.
            x ^= u32::from_le_bytes([sector[60], sector[61], sector[62], sector[63]]);
        }
        sum ^= x.rotate_left((15 - i as u32) % 32);
    }
    Some(sum)
}

/// Whether a whole page's header reads as a page header: version 1, a known page type, a file
/// id of the set (`fids`; empty = unknown: any non-zero id). Anything else is stale bytes of
/// an unallocated page, and not judged.
pub(crate) fn has_page_header(p: &[u8], fids: &[u16]) -> bool {
    if p.len() != PAGE || p[0] != 1 || !KNOWN_TYPES.contains(&p[1]) {
        return false;
    }
    let fid = u16::from_le_bytes([p[36], p[37]]);
    if fids.is_empty() {
        fid != 0
    } else {
        fids.contains(&fid)
    }
}

/// Judge one whole page found at `slot` (0..8) of its extent, at MTF offset `off`. `fids` are
/// the set's file ids (empty = unknown: any non-zero id).
pub(crate) fn check_page(p: &[u8], slot: u64, off: u64, fids: &[u16]) -> Option<PageProblem> {
    if !has_page_header(p, fids) {
        return None;
    }
    let pid = u32::from_le_bytes([p[32], p[33], p[34], p[35]]);
    let fid = u16::from_le_bytes([p[36], p[37]]);
    let flags = u16::from_le_bytes([p[4], p[5]]);
    if flags & FLAG_CHECKSUM != 0 {
        let stored = u32::from_le_bytes([p[60], p[61], p[62], p[63]]);
        if let Some(c) = page_checksum(p) {
            if c != stored {
                return Some(PageProblem {
                    off,
                    what: format!("database page {fid}:{pid} checksum fails"),
                    expected: Some(format!("{c:#010x}")),
                    found: Some(format!("{stored:#010x}")),
                });
            }
        }
    }
    if flags & FLAG_CHECKSUM == 0
        && flags & crate::db::page::FLAG_TORN != 0
        && !crate::db::page::torn_bits_hold(p)
    {
        return Some(PageProblem {
            off,
            what: format!(
                "database page {fid}:{pid} is torn: a sector does not carry its torn-page bits"
            ),
            expected: Some(format!("pattern {:#04b} in every sector", p[60] & 3)),
            found: None,
        });
    }
    (u64::from(pid) % EXTENT_PAGES != slot).then(|| PageProblem {
        off,
        what: format!("database page {fid}:{pid} lies at slot {slot} of its extent"),
        expected: Some(format!("a page id ≡ {slot} (mod 8)")),
        found: Some(pid.to_string()),
    })
}

/// Receives the bytes of a data stream once they are judged, in order: a run of bytes and, when
/// the run is one page that fails, its problem. Its `Err` ends the feed.
pub(crate) type Pass<'a> = dyn FnMut(&[u8], Option<PageProblem>) -> Result<()> + 'a;

/// Judges a data stream's pages (after its 2-byte pad) as its bytes come in pieces of any size,
/// and hands the bytes on only once their page is judged: whole pages inside a piece are judged
/// where they lie, and only the bytes of a page cut by the end of a piece are held (copied)
/// until the rest comes. So a reader that writes what it is handed never writes a byte of a
/// page that fails (bak-read), and one that writes nothing judges the same pages (bak-verify).
pub(crate) struct PageChecker {
    /// Bytes of the page in progress.
    held: Vec<u8>,
    /// MTF offset of the page in progress (of `held[0]`).
    start: u64,
    /// MTF offset of the stream's first page.
    first: u64,
    fids: Vec<u16>,
}

impl PageChecker {
    /// A checker for pages starting at MTF offset `first`, of the files `fids`.
    pub fn new(first: u64, fids: Vec<u16>) -> Self {
        PageChecker {
            held: Vec::new(),
            start: first,
            first,
            fids,
        }
    }

    fn judge(&self, page: &[u8], off: u64) -> Option<PageProblem> {
        let slot = ((off - self.first) / PAGE as u64) % EXTENT_PAGES;
        check_page(page, slot, off, &self.fids)
    }

    /// Bytes at MTF offset `off`. Pieces come in order; bytes missing before `off` (a gap)
    /// leave the page they cut unjudged, and its bytes are handed on as they are.
    pub fn feed(&mut self, off: u64, mut data: &[u8], pass: &mut Pass<'_>) -> Result<()> {
        if off != self.start + self.held.len() as u64 {
            self.gap(pass)?;
            let rel = off.saturating_sub(self.first);
            let next = rel.div_ceil(PAGE as u64) * PAGE as u64;
            let skip = usize::try_from(next - rel)
                .unwrap_or(usize::MAX)
                .min(data.len());
            if skip > 0 {
                pass(&data[..skip], None)?;
            }
            data = &data[skip..];
            self.start = self.first + next;
        }
        if !self.held.is_empty() {
            let take = (PAGE - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.held.len() < PAGE {
                return Ok(());
            }
            let problem = self.judge(&self.held, self.start);
            pass(&self.held, problem)?;
            self.held.clear();
            self.start += PAGE as u64;
        }
        // Whole pages where they lie; runs of good pages go on as one slice.
        let whole = data.len() / PAGE * PAGE;
        let mut good = 0;
        let mut at = 0;
        while at < whole {
            let page = &data[at..at + PAGE];
            if let Some(problem) = self.judge(page, self.start) {
                if good < at {
                    pass(&data[good..at], None)?;
                }
                pass(page, Some(problem))?;
                good = at + PAGE;
            }
            self.start += PAGE as u64;
            at += PAGE;
        }
        if good < whole {
            pass(&data[good..whole], None)?;
        }
        if whole < data.len() {
            self.held.reserve_exact(PAGE);
            self.held.extend_from_slice(&data[whole..]);
        }
        Ok(())
    }

    /// Bytes are missing from here on (a chunk that does not decode): the page in progress
    /// cannot be judged; what is held of it is handed on as it is.
    pub fn gap(&mut self, pass: &mut Pass<'_>) -> Result<()> {
        if !self.held.is_empty() {
            pass(&self.held, None)?;
            self.held.clear();
        }
        Ok(())
    }

    /// End of the stream: a last partial page is not a page and is not judged; its bytes are
    /// handed on as they are.
    pub fn finish(&mut self, pass: &mut Pass<'_>) -> Result<()> {
        self.gap(pass)
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

    /// Feed `data` from MTF offset `first` in pieces of `step`; the bytes handed on and the
    /// problems found.
    fn feed_all(first: u64, data: &[u8], step: usize, fids: &[u16]) -> (Vec<u8>, Vec<PageProblem>) {
        let mut c = PageChecker::new(first, fids.to_vec());
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        let mut pass = |b: &[u8], p: Option<PageProblem>| {
            out.extend_from_slice(b);
            problems.extend(p);
            Ok(())
        };
        for (i, piece) in data.chunks(step).enumerate() {
            c.feed(first + (i * step) as u64, piece, &mut pass).unwrap();
        }
        c.finish(&mut pass).unwrap();
        (out, problems)
    }

    fn check_all(data: &[u8], fids: &[u16]) -> Vec<PageProblem> {
        feed_all(0, data, data.len().max(1), fids).1
    }

    #[test]
    fn good_extents_pass() {
        assert!(check_all(&[extent(16), extent(8)].concat(), &[1, 2]).is_empty());
    }

    #[test]
    fn the_checksum_is_the_definition() {
        // Written plainly: every word but the field at 60, sector by sector.
        let p = page(1, 77, 0x5a);
        let mut sum = 0u32;
        for (i, sector) in p.chunks_exact(512).enumerate() {
            let mut x = 0u32;
            for (j, w) in sector.chunks_exact(4).enumerate() {
                if !(i == 0 && j == 15) {
                    x ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                }
            }
            sum ^= x.rotate_left((15 - i as u32) % 32);
        }
        assert_eq!(page_checksum(&p), Some(sum));
        assert_eq!(u32::from_le_bytes(p[60..64].try_into().unwrap()), sum);
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
        let out = check_page(&p, 2, 0, &[1]).unwrap();
        assert!(out.what.contains("slot 2"));
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
    fn every_byte_is_handed_on_in_order_and_a_bad_page_alone() {
        let mut data: Vec<u8> = [extent(0), extent(8)].concat();
        data.extend_from_slice(&[7; 100]); // a last partial page
        data[10 * PAGE + 1234] ^= 0x40;
        for step in [1, 1000, PAGE, PAGE + 1, 3 * PAGE - 5, data.len()] {
            let mut c = PageChecker::new(100, vec![1]);
            let mut runs: Vec<(usize, bool)> = Vec::new();
            let mut out = Vec::new();
            let mut pass = |b: &[u8], p: Option<PageProblem>| {
                runs.push((b.len(), p.is_some()));
                out.extend_from_slice(b);
                Ok(())
            };
            for (i, piece) in data.chunks(step).enumerate() {
                c.feed(100 + (i * step) as u64, piece, &mut pass).unwrap();
            }
            c.finish(&mut pass).unwrap();
            assert_eq!(out, data, "pieces of {step}");
            assert_eq!(runs.iter().filter(|r| r.1).count(), 1, "pieces of {step}");
            assert!(runs.contains(&(PAGE, true)), "pieces of {step}: {runs:?}");
            // Before the bad page is handed on, exactly the 10 pages before it were.
            let before: usize = runs.iter().take_while(|r| !r.1).map(|r| r.0).sum();
            assert_eq!(before, 10 * PAGE, "pieces of {step}");
        }
    }

    #[test]
    fn an_error_from_the_receiver_stops_before_the_bad_page() {
        let mut data: Vec<u8> = [extent(0), extent(8)].concat();
        data[5 * PAGE + 9] ^= 1;
        let mut c = PageChecker::new(0, vec![1]);
        let mut written = 0;
        let r = c.feed(0, &data, &mut |b, p| {
            if p.is_some() {
                return Err(bak_core::Error::corrupt(
                    bak_core::Location::device("t"),
                    "bad page",
                ));
            }
            written += b.len();
            Ok(())
        });
        assert!(r.is_err());
        assert_eq!(written, 5 * PAGE);
    }

    #[test]
    fn checker_handles_pieces_and_gaps() {
        let data: Vec<u8> = [extent(0), extent(8)].concat();
        let (out, problems) = feed_all(100, &data, 1000, &[1]);
        assert!(problems.is_empty());
        assert_eq!(out, data);
        // A gap: the cut page is not judged, the bytes around it still go on.
        let mut c = PageChecker::new(0, vec![1]);
        let mut out = Vec::new();
        let mut problems = Vec::new();
        let mut pass = |b: &[u8], p: Option<PageProblem>| {
            out.extend_from_slice(b);
            problems.extend(p);
            Ok(())
        };
        c.feed(0, &data[..5000], &mut pass).unwrap();
        c.gap(&mut pass).unwrap();
        c.feed(70_000, &data[70_000..], &mut pass).unwrap();
        c.finish(&mut pass).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out, [&data[..5000], &data[70_000..]].concat());
    }
}
