//! The page store: every database page of a backup set's data streams, placed per file (file
//! id, page id), each page checked, stale and repeated copies settled.
//!
//! One pass reads the set as bak-verify reads it (the same [`Watch`], so the same problems are
//! found and named) and keeps, for each page, where it lies on the media; pages are read back
//! from there when asked for (positioned reads; a compressed device decodes the chunk again), so
//! memory grows with the number of pages (about 40 bytes each), not with their bytes.
//!
//! Placing a page (docs/MTF.md, "Database pages"): the stream is made of whole extents, so
//! every aligned group of 8 stream pages holds 8 consecutive page ids from a multiple of 8.
//! A page whose id does not fit its group's extent is a stale copy of another page (the
//! SharePoint 2014 fixture holds 20, with valid checksums and older LSNs). When a group holds
//! pages of two candidate extents, the earliest extent after the previous group's wins. Between
//! true copies of one page (2019 repeats pages 0..15 at the end) the higher page LSN wins, on a
//! tie the later copy. Never "last copy wins".

use std::collections::HashMap;

use bak_core::error::{Error, Location, Result};
use bak_core::report::Problem;

use super::page::{untear, Header, PageId, FLAG_CHECKSUM, FLAG_TORN, PAGE};
use crate::check::{self, Out, Watch};
use crate::walk::SetRec;
use crate::{payload, MtfDevice};

/// Pages per extent.
const EXTENT: usize = 8;
/// Page types a page of the stream may have (as the page checks know them).
const KNOWN_TYPES: [u8; 17] = [1, 2, 3, 4, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20];

/// Where one placed page lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc {
    /// Index of the device in the store's device list.
    pub dev: usize,
    /// MTF offset of the page on that device.
    pub off: u64,
    pub lsn: (u32, u32, u16),
    pub kind: u8,
    pub alloc_unit: u64,
}

/// What placing the pages found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StoreStats {
    /// Pages placed.
    pub placed: u64,
    /// Copies whose page id does not fit their extent (or lies past the end of their file).
    pub stale: u64,
    /// Second copies of a page, settled by LSN.
    pub repeated: u64,
    /// Pages that fail their checksum, torn bits or place (named among the problems).
    pub failed: u64,
}

/// A database file of the set, from the configuration stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbFile {
    pub id: u16,
    pub logical: String,
    pub physical: String,
    pub size: u64,
    /// False for the log (its file group id is 0).
    pub data: bool,
}

/// The placed pages of one backup set.
pub(crate) struct PageStore<'a> {
    devs: Vec<&'a MtfDevice>,
    pages: HashMap<PageId, Loc>,
    by_unit: HashMap<u64, Vec<PageId>>,
    pub stats: StoreStats,
    pub files: Vec<DbFile>,
    /// Set when not every family was given: the pages of the others are missing.
    pub partial: Option<String>,
    /// Pages held in memory (a store made from bytes: the fuzz targets); `Loc::off` indexes it.
    mem: Option<Vec<u8>>,
}

/// One group of 8 stream pages being gathered.
struct Group {
    buf: Vec<u8>,
    /// MTF offset of the group's first page.
    off: u64,
    /// The extent chosen for the group before: (file, first page).
    prev: Option<PageId>,
}

/// Gathers the pages of the data streams as their bytes come, in order.
struct Builder<'s> {
    files: &'s [DbFile],
    fids: Vec<u16>,
    pages: HashMap<PageId, Loc>,
    stats: StoreStats,
}

impl Builder<'_> {
    fn plausible(&self, h: &Header) -> bool {
        KNOWN_TYPES.contains(&h.kind)
            && h.id.file != 0
            && (self.fids.is_empty() || self.fids.contains(&h.id.file))
    }

    /// Settle the pages of a full or last group.
    fn group(&mut self, dev: usize, g: &mut Group) {
        let n = g.buf.len() / PAGE;
        let heads: Vec<Option<Header>> = (0..n)
            .map(|k| Header::parse(&g.buf[k * PAGE..(k + 1) * PAGE]).filter(|h| self.plausible(h)))
            .collect();
        let mut cands: Vec<PageId> = heads
            .iter()
            .enumerate()
            .filter_map(|(k, h)| {
                let h = h.as_ref()?;
                (h.id.page as usize % EXTENT == k)
                    .then(|| PageId::new(h.id.file, h.id.page - k as u32))
            })
            .collect();
        cands.sort_unstable();
        cands.dedup();
        let Some(&first) = cands.first() else {
            g.buf.clear();
            return;
        };
        let base = match g.prev {
            Some(prev) if cands.len() > 1 => *cands.iter().find(|c| **c > prev).unwrap_or(&first),
            _ => first,
        };
        g.prev = Some(base);
        for (k, h) in heads.iter().enumerate() {
            let Some(h) = h else { continue };
            let page = &g.buf[k * PAGE..(k + 1) * PAGE];
            let off = g.off + (k * PAGE) as u64;
            let want = PageId::new(base.file, base.page + k as u32);
            let size = self
                .files
                .iter()
                .find(|f| f.id == h.id.file)
                .map(|f| f.size / PAGE as u64);
            if h.id != want || size.is_some_and(|s| s > 0 && u64::from(h.id.page) >= s) {
                self.stats.stale += 1;
                continue;
            }
            if crate::pages::check_page(page, k as u64, off, &self.fids).is_some() {
                // Named by the watch among the set's problems.
                self.stats.failed += 1;
                continue;
            }
            let loc = Loc {
                dev,
                off,
                lsn: h.lsn,
                kind: h.kind,
                alloc_unit: h.alloc_unit(),
            };
            match self.pages.get(&h.id) {
                Some(old) => {
                    self.stats.repeated += 1;
                    if loc.lsn >= old.lsn {
                        self.pages.insert(h.id, loc);
                    }
                }
                None => {
                    self.pages.insert(h.id, loc);
                }
            }
        }
        g.buf.clear();
    }
}

/// The database files a set's configuration names.
pub(crate) fn set_files(s: &SetRec) -> Vec<DbFile> {
    s.lead
        .as_ref()
        .or(s.trail.as_ref())
        .map(|c| {
            c.files
                .iter()
                .filter_map(|f| {
                    Some(DbFile {
                        id: u16::try_from(f.file_id).ok()?,
                        logical: f.logical.clone(),
                        physical: f.physical.clone(),
                        size: f.size,
                        data: f.filegroup_id != 0,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl<'a> PageStore<'a> {
    /// Read the data streams of set `position` on the families `fams` (one media set, in
    /// family order; not necessarily all of them) and place their pages. The problems are
    /// those bak-verify finds in the set's part of each device, in its order.
    pub fn build(
        fams: &[&'a MtfDevice],
        position: u32,
        partial: Option<String>,
    ) -> Result<(PageStore<'a>, Vec<Problem>)> {
        let holders: Vec<(&'a MtfDevice, &'a SetRec)> = fams
            .iter()
            .filter_map(|d| d.set(position).map(|s| (*d, s)))
            .collect();
        let files = holders
            .iter()
            .map(|(_, s)| set_files(s))
            .find(|f| !f.is_empty())
            .unwrap_or_default();
        let mut problems = Vec::new();
        let mut b = Builder {
            files: &files,
            fids: files.iter().filter(|f| f.data).map(|f| f.id).collect(),
            pages: HashMap::new(),
            stats: StoreStats::default(),
        };
        let mut devs = Vec::new();
        for (dev, (d, s)) in holders.iter().enumerate() {
            devs.push(*d);
            for f in check::faults(d, s) {
                problems.push(f.problem(d, s));
            }
            let ranges: Vec<(u64, u64)> = d
                .streams_of(s, b"MSDA", b"MQDA")
                .map(payload)
                .filter(|r| r.1 > 0)
                .collect();
            let mut w = Watch::new(d, &[s], Out::Ranges(ranges.clone()), false);
            let mut cur = (0usize, 0u64);
            let mut g = Group {
                buf: Vec::with_capacity(EXTENT * PAGE),
                off: ranges.first().map_or(0, |r| r.0),
                prev: None,
            };
            let mut sink = |mut bytes: &[u8]| -> Result<()> {
                while !bytes.is_empty() {
                    let Some(&(roff, rlen)) = ranges.get(cur.0) else {
                        break;
                    };
                    let left = usize::try_from(rlen - cur.1).unwrap_or(usize::MAX);
                    let take = left.min(bytes.len());
                    let mut piece = &bytes[..take];
                    while !piece.is_empty() {
                        if g.buf.is_empty() {
                            g.off = roff + cur.1;
                        }
                        let room = (EXTENT * PAGE - g.buf.len()).min(piece.len());
                        g.buf.extend_from_slice(&piece[..room]);
                        piece = &piece[room..];
                        cur.1 += room as u64;
                        if g.buf.len() == EXTENT * PAGE {
                            b.group(dev, &mut g);
                        }
                    }
                    bytes = &bytes[take..];
                    if cur.1 == rlen {
                        // A stream's last group: whole pages only.
                        g.buf.truncate(g.buf.len() / PAGE * PAGE);
                        b.group(dev, &mut g);
                        cur = (cur.0 + 1, 0);
                    }
                }
                Ok(())
            };
            let span = s.end.saturating_sub(s.sset_off);
            d.media.stream_range(s.sset_off, span, &mut |at, piece| {
                w.feed(at, piece, &mut sink)
            })?;
            let seen = w.finish(&mut sink)?;
            problems.extend(seen.sums);
            problems.extend(seen.chunks.into_iter().map(|c| c.0));
            problems.extend(seen.pages);
        }
        let mut by_unit: HashMap<u64, Vec<PageId>> = HashMap::new();
        for (id, loc) in &b.pages {
            by_unit.entry(loc.alloc_unit).or_default().push(*id);
        }
        for v in by_unit.values_mut() {
            v.sort_unstable();
        }
        let mut stats = b.stats;
        stats.placed = b.pages.len() as u64;
        Ok((
            PageStore {
                devs,
                pages: b.pages,
                by_unit,
                stats,
                files,
                partial,
                mem: None,
            },
            problems,
        ))
    }

    /// A store of the pages in `bytes` (a data stream, whole pages, no files known), placed
    /// by the same rules: for the fuzz targets.
    pub fn from_bytes(bytes: &[u8]) -> PageStore<'a> {
        let mut b = Builder {
            files: &[],
            fids: Vec::new(),
            pages: HashMap::new(),
            stats: StoreStats::default(),
        };
        let whole = bytes.len() / PAGE * PAGE;
        let mut g = Group {
            buf: Vec::with_capacity(EXTENT * PAGE),
            off: 0,
            prev: None,
        };
        for (i, chunk) in bytes[..whole].chunks(EXTENT * PAGE).enumerate() {
            g.off = (i * EXTENT * PAGE) as u64;
            g.buf.extend_from_slice(chunk);
            b.group(0, &mut g);
        }
        let mut by_unit: HashMap<u64, Vec<PageId>> = HashMap::new();
        for (id, loc) in &b.pages {
            by_unit.entry(loc.alloc_unit).or_default().push(*id);
        }
        for v in by_unit.values_mut() {
            v.sort_unstable();
        }
        let mut stats = b.stats;
        stats.placed = b.pages.len() as u64;
        PageStore {
            devs: Vec::new(),
            pages: b.pages,
            by_unit,
            stats,
            files: Vec::new(),
            partial: None,
            mem: Some(bytes[..whole].to_vec()),
        }
    }

    /// Where page `id` lies, when placed.
    pub fn loc(&self, id: PageId) -> Option<&Loc> {
        self.pages.get(&id)
    }

    /// The placed pages whose header names allocation unit `unit`, in page order.
    pub fn unit_pages(&self, unit: u64) -> &[PageId] {
        self.by_unit.get(&unit).map_or(&[], |v| v.as_slice())
    }

    /// Every placed page id of file `file`, in page order.
    pub fn file_pages(&self, file: u16) -> Vec<PageId> {
        let mut v: Vec<PageId> = self
            .pages
            .keys()
            .filter(|p| p.file == file)
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// The device a page was read from, for messages.
    fn device_of(&self, loc: &Loc) -> Option<&'a MtfDevice> {
        self.devs.get(loc.dev).copied()
    }

    /// The bytes of page `id` as the media hold them (torn bits as written), checked again as
    /// they are read: `None` when the store does not hold the page.
    pub fn raw(&self, id: PageId) -> Result<Option<Vec<u8>>> {
        let Some(loc) = self.pages.get(&id) else {
            return Ok(None);
        };
        if let Some(mem) = &self.mem {
            let at = usize::try_from(loc.off).unwrap_or(usize::MAX);
            return Ok(mem.get(at..at.saturating_add(PAGE)).map(<[u8]>::to_vec));
        }
        let Some(d) = self.device_of(loc) else {
            return Ok(None);
        };
        let mut p = vec![0u8; PAGE];
        let n = d.media.read_at(loc.off, &mut p)?;
        let at = || {
            Location::device(d.name())
                .family(d.family())
                .at(d.media.file_offset_of(loc.off))
        };
        if n < PAGE {
            return Err(Error::Truncated {
                at: at(),
                what: format!("database page {id}"),
            });
        }
        let h = Header::parse(&p);
        let holds = h.is_some_and(|h| h.id == id)
            && crate::pages::check_page(&p, u64::from(id.page) % EXTENT as u64, loc.off, &[])
                .is_none();
        if !holds {
            return Err(Error::corrupt(
                at(),
                format!("database page {id} changed on the media since it was checked"),
            ));
        }
        Ok(Some(p))
    }

    /// Page `id` ready to be read: torn bits put back.
    pub fn page(&self, id: PageId) -> Result<Option<Vec<u8>>> {
        let Some(mut p) = self.raw(id)? else {
            return Ok(None);
        };
        let flags = u16::from_le_bytes([p[4], p[5]]);
        if flags & FLAG_CHECKSUM == 0 && flags & FLAG_TORN != 0 {
            untear(&mut p);
        }
        Ok(Some(p))
    }
}
