//! One database page as the readers of tables see it: the 96-byte header, the slot array, torn
//! bits put back, and the PFS byte of a page. Every access is bounded by the page; a length or
//! offset read from the page is checked before it is used.
//!
//! Offsets are those of docs/MTF.md, "Database pages" (from the shared sqlserver-pages notes,
//! checked on every fixture from SQL Server 2005 to 2019).

use crate::le::{u16_at, u32_at};

/// SQL Server page size.
pub(crate) const PAGE: usize = 8192;
/// Size of the page header.
pub(crate) const HEADER: usize = 96;
/// Page header flag: torn-page detection bits at offset 60.
pub(crate) const FLAG_TORN: u16 = 0x100;
/// Page header flag: a checksum at offset 60.
pub(crate) const FLAG_CHECKSUM: u16 = 0x200;

/// Page types the readers use.
pub(crate) const TYPE_DATA: u8 = 1;
pub(crate) const TYPE_TEXT_MIX: u8 = 3;
pub(crate) const TYPE_TEXT_TREE: u8 = 4;
pub(crate) const TYPE_PFS: u8 = 11;
pub(crate) const TYPE_BOOT: u8 = 13;

/// Pages covered by one PFS page.
pub(crate) const PFS_INTERVAL: u32 = 8088;
/// PFS byte: the page is allocated.
pub(crate) const PFS_ALLOCATED: u8 = 0x40;

/// A page address: file id and page id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct PageId {
    pub file: u16,
    pub page: u32,
}

impl PageId {
    pub fn new(file: u16, page: u32) -> Self {
        PageId { file, page }
    }

    /// A 6-byte page pointer (page u32, file u16) at `off`; `None` outside `b`.
    pub fn at(b: &[u8], off: usize) -> Option<PageId> {
        Some(PageId {
            page: u32_at(b, off)?,
            file: u16_at(b, off.checked_add(4)?)?,
        })
    }

    pub fn is_null(&self) -> bool {
        self.file == 0 && self.page == 0
    }
}

impl std::fmt::Display for PageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.page)
    }
}

/// The header fields the readers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Header {
    pub kind: u8,
    pub level: u8,
    pub flags: u16,
    pub index_id: u16,
    pub prev: PageId,
    pub next: PageId,
    pub slots: u16,
    pub object_id: u32,
    pub id: PageId,
    /// (file seq, block, slot) of the last change; compared as a tuple.
    pub lsn: (u32, u32, u16),
    pub ghosts: u16,
}

impl Header {
    /// The header of a whole page; `None` when `p` is not 8192 bytes or not a version-1 header.
    pub fn parse(p: &[u8]) -> Option<Header> {
        if p.len() != PAGE || p[0] != 1 {
            return None;
        }
        Some(Header {
            kind: p[1],
            level: p[3],
            flags: u16_at(p, 4)?,
            index_id: u16_at(p, 6)?,
            prev: PageId {
                page: u32_at(p, 8)?,
                file: u16_at(p, 12)?,
            },
            next: PageId {
                page: u32_at(p, 16)?,
                file: u16_at(p, 20)?,
            },
            slots: u16_at(p, 22)?,
            object_id: u32_at(p, 24)?,
            id: PageId {
                page: u32_at(p, 32)?,
                file: u16_at(p, 36)?,
            },
            lsn: (u32_at(p, 40)?, u32_at(p, 44)?, u16_at(p, 48)?),
            ghosts: u16_at(p, 58)?,
        })
    }

    /// The allocation unit the page belongs to, as sysallocunits numbers it.
    pub fn alloc_unit(&self) -> u64 {
        (u64::from(self.index_id) << 48) | (u64::from(self.object_id) << 16)
    }
}

/// Offset of the record in `slot`, when the slot array holds it and it points into the page's
/// record area (past the header, before the slot array).
pub(crate) fn slot_offset(p: &[u8], slots: u16, slot: u16) -> Option<usize> {
    if slot >= slots {
        return None;
    }
    let at = PAGE.checked_sub(2 * (usize::from(slot) + 1))?;
    let off = usize::from(u16_at(p, at)?);
    let array = PAGE.checked_sub(2 * usize::from(slots))?;
    (off >= HEADER && off < array).then_some(off)
}

/// The end of the record area: where the slot array starts.
pub(crate) fn records_end(slots: u16) -> usize {
    PAGE.saturating_sub(2 * usize::from(slots))
}

/// Put back the bits torn-page detection replaced: with flag 0x100 the low 2 bits of the last
/// byte of sectors 1..15 carry a pattern, and their original values are in the header's u32 at
/// 60 (bits 2i and 2i+1 for sector i; its two low bits hold the pattern). Returns false when
/// some sector does not carry the pattern: the page was torn (written in part).
pub(crate) fn untear(p: &mut [u8]) -> bool {
    if p.len() != PAGE {
        return false;
    }
    let bits = u32::from_le_bytes([p[60], p[61], p[62], p[63]]);
    let pattern = (bits & 3) as u8;
    let mut whole = true;
    for i in 1..16 {
        let at = i * 512 + 511;
        whole &= p[at] & 3 == pattern;
        p[at] = (p[at] & !3) | ((bits >> (2 * i)) & 3) as u8;
    }
    whole
}

/// Whether a torn-bits page carries its pattern in every sector (it was written whole).
pub(crate) fn torn_bits_hold(p: &[u8]) -> bool {
    if p.len() != PAGE {
        return false;
    }
    let pattern = p[60] & 3;
    (1..16).all(|i| p[i * 512 + 511] & 3 == pattern)
}

/// The PFS page that describes page `page` of a file.
pub(crate) fn pfs_page_of(page: u32) -> u32 {
    match page / PFS_INTERVAL {
        0 => 1,
        n => n * PFS_INTERVAL,
    }
}

/// The PFS byte of page `page`, from its PFS page `pfs` (slot 0: a 4-byte record header, then
/// one byte per page of the interval).
pub(crate) fn pfs_byte(pfs: &[u8], page: u32) -> Option<u8> {
    let h = Header::parse(pfs)?;
    if h.kind != TYPE_PFS {
        return None;
    }
    let base = pfs_page_of(page);
    if h.id.page != base {
        return None;
    }
    let off = slot_offset(pfs, h.slots, 0)?;
    let base = if base == 1 { 0 } else { base };
    let i = usize::try_from(page - base).ok()?;
    let at = off.checked_add(4)?.checked_add(i)?;
    (at < records_end(h.slots)).then(|| pfs[at])
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Pages made by hand: a header and records placed through a slot array.
    use super::*;

    /// A data page `file:page` of allocation unit (object, index) holding `records`.
    pub fn page(id: PageId, object: u32, index: u16, records: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0u8; PAGE];
        p[0] = 1;
        p[1] = TYPE_DATA;
        p[6..8].copy_from_slice(&index.to_le_bytes());
        p[22..24].copy_from_slice(&(records.len() as u16).to_le_bytes());
        p[24..28].copy_from_slice(&object.to_le_bytes());
        p[32..36].copy_from_slice(&id.page.to_le_bytes());
        p[36..38].copy_from_slice(&id.file.to_le_bytes());
        let mut at = HEADER;
        for (i, r) in records.iter().enumerate() {
            p[at..at + r.len()].copy_from_slice(r);
            let s = PAGE - 2 * (i + 1);
            p[s..s + 2].copy_from_slice(&(at as u16).to_le_bytes());
            at += r.len();
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_bits_come_back_and_a_torn_page_is_told() {
        let mut p: Vec<u8> = (0..PAGE).map(|i| (i * 31 % 251) as u8).collect();
        let orig = p.clone();
        // Tear-protect by hand: pattern 0b10, keep the original low bits in the header.
        let mut bits = 0b10u32;
        for i in 1..16 {
            let at = i * 512 + 511;
            bits |= u32::from(p[at] & 3) << (2 * i);
            p[at] = (p[at] & !3) | 0b10;
        }
        p[60..64].copy_from_slice(&bits.to_le_bytes());
        let mut want = orig.clone();
        want[60..64].copy_from_slice(&bits.to_le_bytes());
        assert!(torn_bits_hold(&p));
        let mut q = p.clone();
        assert!(untear(&mut q));
        assert_eq!(q, want);
        // Sector 7 written by an earlier write: its pattern differs.
        p[7 * 512 + 511] ^= 3;
        assert!(!torn_bits_hold(&p));
        assert!(!untear(&mut p.clone()));
        assert!(!untear(&mut [0u8; 100]));
    }

    #[test]
    fn slots_are_bounded_by_the_page() {
        let id = PageId::new(1, 200);
        let p = testkit::page(id, 5, 0, &[vec![0x10; 20], vec![0x30; 10]]);
        let h = Header::parse(&p).unwrap();
        assert_eq!(h.id, id);
        assert_eq!(h.slots, 2);
        assert_eq!(slot_offset(&p, h.slots, 0), Some(96));
        assert_eq!(slot_offset(&p, h.slots, 1), Some(116));
        assert_eq!(slot_offset(&p, h.slots, 2), None);
        // A slot pointing into the header or the slot array is refused.
        let mut q = p.clone();
        q[PAGE - 2..].copy_from_slice(&10u16.to_le_bytes());
        assert_eq!(slot_offset(&q, 2, 0), None);
        q[PAGE - 2..].copy_from_slice(&8190u16.to_le_bytes());
        assert_eq!(slot_offset(&q, 2, 0), None);
        assert_eq!(slot_offset(&q, u16::MAX, 0), None);
    }

    #[test]
    fn pfs_pages_and_bytes() {
        assert_eq!(pfs_page_of(0), 1);
        assert_eq!(pfs_page_of(8087), 1);
        assert_eq!(pfs_page_of(8088), 8088);
        assert_eq!(pfs_page_of(20000), 16176);
        let mut rec = vec![0u8; 4 + 8088];
        rec[4 + 120] = 0x60;
        let mut p = testkit::page(PageId::new(1, 1), 99, 0, &[rec]);
        p[1] = TYPE_PFS;
        assert_eq!(pfs_byte(&p, 120), Some(0x60));
        assert_eq!(pfs_byte(&p, 121), Some(0));
        assert_eq!(pfs_byte(&p, 9000), None);
    }
}
