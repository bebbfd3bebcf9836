//! Large values stored off the row: text, ntext and image through their 16-byte text pointer,
//! and the (max) types and row-overflow columns through an in-row root. Both lead to blob
//! fragment records (record type 4) on text pages (types 3 and 4), in a tree of roots,
//! internal nodes and data fragments. Every hop is bounded: by depth, by the bytes gathered and
//! by the records it lands on.

use super::page::{slot_offset, Header, PageId, TYPE_TEXT_MIX, TYPE_TEXT_TREE};
use super::store::PageStore;
use crate::le::{u16_at, u32_at};

/// Deepest tree of fragments followed.
const MAX_DEPTH: u32 = 16;
/// Largest value gathered (SQL Server's limit for a LOB is 2 GiB - 1).
const MAX_VALUE: usize = (1 << 31) - 1;

/// Blob fragment types (u16 at +12 of the record).
const SMALL_ROOT: u16 = 0;
const INTERNAL: u16 = 2;
const DATA: u16 = 3;
const LARGE_ROOT_YUKON: u16 = 5;

/// The bytes of the blob fragment record at `id`, slot `slot` (as long as it says it is).
fn fragment(store: &PageStore<'_>, id: PageId, slot: u16) -> Result<Vec<u8>, String> {
    let p = store
        .page(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("text page {id} is not in the backup"))?;
    let h = Header::parse(&p).ok_or_else(|| format!("page {id} has no page header"))?;
    if h.kind != TYPE_TEXT_MIX && h.kind != TYPE_TEXT_TREE {
        return Err(format!("page {id} is of type {}, not a text page", h.kind));
    }
    let off =
        slot_offset(&p, h.slots, slot).ok_or_else(|| format!("page {id} has no slot {slot}"))?;
    let rec = &p[off..super::page::records_end(h.slots)];
    if rec.first().map(|s| (s >> 1) & 7) != Some(4) {
        return Err(format!("record {id} slot {slot} is not a blob fragment"));
    }
    let len = usize::from(u16_at(rec, 2).ok_or("blob fragment cut short")?);
    rec.get(..len).map(<[u8]>::to_vec).ok_or_else(|| {
        format!("blob fragment {id} slot {slot} says {len} bytes, more than the page holds")
    })
}

/// Append the value under fragment (`id`, `slot`) to `out`.
fn gather(
    store: &PageStore<'_>,
    id: PageId,
    slot: u16,
    depth: u32,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "blob tree deeper than {MAX_DEPTH} levels at {id} slot {slot}"
        ));
    }
    let rec = fragment(store, id, slot)?;
    let kind = u16_at(&rec, 12).ok_or("blob fragment cut short")?;
    let room = |out: &Vec<u8>, n: usize| {
        if out.len().saturating_add(n) > MAX_VALUE {
            Err(format!("value larger than {MAX_VALUE} bytes"))
        } else {
            Ok(())
        }
    };
    match kind {
        SMALL_ROOT => {
            let len = usize::from(u16_at(&rec, 14).ok_or("small root cut short")?);
            let data = rec
                .get(20..20 + len)
                .ok_or("small root's data runs past its record")?;
            room(out, data.len())?;
            out.extend_from_slice(data);
        }
        DATA => {
            let data = rec.get(14..).unwrap_or(&[]);
            room(out, data.len())?;
            out.extend_from_slice(data);
        }
        LARGE_ROOT_YUKON | INTERNAL => {
            let count = usize::from(u16_at(&rec, 16).ok_or("blob root cut short")?);
            let (first, size) = if kind == LARGE_ROOT_YUKON {
                (24, 12)
            } else {
                (20, 16)
            };
            for i in 0..count {
                let e = first + i * size;
                let ptr = if kind == LARGE_ROOT_YUKON {
                    e + 4
                } else {
                    e + 8
                };
                let child =
                    PageId::at(&rec, ptr).ok_or("blob root's entries run past its record")?;
                let cslot =
                    u16_at(&rec, ptr + 6).ok_or("blob root's entries run past its record")?;
                gather(store, child, cslot, depth + 1, out)?;
            }
        }
        other => {
            return Err(format!(
                "blob fragment of type {other}, which this reader does not know"
            ))
        }
    }
    Ok(())
}

/// The value a 16-byte text pointer (text, ntext, image) points at: timestamp 8, page u32,
/// file u16, slot u16.
pub(crate) fn text_pointer(store: &PageStore<'_>, ptr: &[u8]) -> Result<Vec<u8>, String> {
    if ptr.len() != 16 {
        return Err(format!(
            "a text pointer is 16 bytes, the column holds {} (text in row is not read)",
            ptr.len()
        ));
    }
    let id = PageId::at(ptr, 8).ok_or("text pointer cut short")?;
    let slot = u16_at(ptr, 14).ok_or("text pointer cut short")?;
    let mut out = Vec::new();
    gather(store, id, slot, 0, &mut out)?;
    Ok(out)
}

/// The value of an in-row root of a (max) or row-overflow column: byte 0 is 2 (row-overflow)
/// or 4 (BLOB inline root), a 12-byte header, then 12-byte entries: cumulative end u32, page
/// u32, file u16, slot u16.
pub(crate) fn in_row_root(store: &PageStore<'_>, b: &[u8]) -> Result<Vec<u8>, String> {
    let kind = *b.first().ok_or("empty in-row root")?;
    if kind != 2 && kind != 4 {
        return Err(format!(
            "in-row root of type {kind}, which this reader does not know"
        ));
    }
    if b.len() < 12 || !(b.len() - 12).is_multiple_of(12) {
        return Err(format!("in-row root of {} bytes", b.len()));
    }
    let mut out = Vec::new();
    let mut prev = 0usize;
    for e in b[12..].chunks_exact(12) {
        let end = u32_at(e, 0).ok_or("short entry")? as usize;
        let id = PageId::at(e, 4).ok_or("short entry")?;
        let slot = u16_at(e, 10).ok_or("short entry")?;
        let before = out.len();
        gather(store, id, slot, 1, &mut out)?;
        if end >= prev && out.len() - before != end - prev && kind == 4 {
            return Err(format!(
                "in-row root says a fragment of {} bytes, {} were found",
                end - prev,
                out.len() - before
            ));
        }
        prev = end;
    }
    Ok(out)
}
