//! Data records in the FixedVar format (the format of every heap and B-tree leaf record that
//! is not compressed): the status bytes, the fixed part, the null bitmap and the variable-length
//! columns, every offset checked against the record's room on the page.

use crate::le::u16_at;

/// What a record is (status byte A, bits 1-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Primary,
    Forwarded,
    ForwardingStub,
    Index,
    BlobFragment,
    GhostIndex,
    GhostData,
    GhostVersion,
}

impl Kind {
    fn of(status: u8) -> Kind {
        match (status >> 1) & 7 {
            0 => Kind::Primary,
            1 => Kind::Forwarded,
            2 => Kind::ForwardingStub,
            3 => Kind::Index,
            4 => Kind::BlobFragment,
            5 => Kind::GhostIndex,
            6 => Kind::GhostData,
            _ => Kind::GhostVersion,
        }
    }
}

/// Status A: a null bitmap follows the column count.
const HAS_NULLS: u8 = 0x10;
/// Status A: variable-length columns follow the null bitmap.
const HAS_VARS: u8 = 0x20;
/// Status B: a forwarded record that is a ghost.
const GHOST_FORWARDED: u8 = 0x01;

/// The kind of a record, from its first two bytes, without parsing the rest.
pub(crate) fn kind_of(rec: &[u8]) -> Option<Kind> {
    rec.first().map(|&s| Kind::of(s))
}

/// Whether the record at the start of `rec` is a row of the table: a primary or forwarded
/// record that is not a ghost (forwarding stubs point at the row's forwarded record, which is
/// counted where it lies).
pub(crate) fn is_row(rec: &[u8]) -> bool {
    match kind_of(rec) {
        Some(Kind::Primary) => true,
        Some(Kind::Forwarded) => rec.get(1).is_some_and(|b| b & GHOST_FORWARDED == 0),
        _ => false,
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

/// A parsed FixedVar record. `bytes` runs from the record's first byte to the end of the
/// page's record area; every part lies inside it.
#[derive(Debug, Clone)]
pub(crate) struct Record<'p> {
    pub bytes: &'p [u8],
    /// End of the fixed part (offset of the column count).
    pub fixed_end: usize,
    /// Columns the record says it has.
    pub columns: usize,
    nulls: Option<&'p [u8]>,
    /// Offset of the first variable column's data.
    var_start: usize,
    /// End offsets (bit 15: a complex column) of the variable columns.
    var_ends: Vec<u16>,
}

/// A variable-length column's bytes; `complex` marks a column stored off the row or as a
/// pointer (bit 15 of its end offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Var<'p> {
    pub bytes: &'p [u8],
    pub complex: bool,
}

impl<'p> Record<'p> {
    /// Parse the record at the start of `bytes` (which ends where the page's record area
    /// ends).
    pub fn parse(bytes: &'p [u8]) -> Result<Record<'p>, Malformed> {
        let bad = |what: &str| Malformed(what.to_string());
        let status = *bytes.first().ok_or_else(|| bad("empty record"))?;
        let fixed_end = usize::from(u16_at(bytes, 2).ok_or_else(|| bad("record cut short"))?);
        if fixed_end < 4 {
            return Err(bad("fixed part ends before it starts"));
        }
        let columns = usize::from(u16_at(bytes, fixed_end).ok_or_else(|| {
            Malformed(format!("fixed part ({fixed_end} bytes) runs past the page"))
        })?);
        let mut at = fixed_end + 2;
        let nulls = if status & HAS_NULLS != 0 {
            let n = columns.div_ceil(8);
            let b = bytes
                .get(at..at + n)
                .ok_or_else(|| bad("null bitmap runs past the page"))?;
            at += n;
            Some(b)
        } else {
            None
        };
        let mut var_ends = Vec::new();
        if status & HAS_VARS != 0 {
            let n = usize::from(
                u16_at(bytes, at).ok_or_else(|| bad("variable column count runs past the page"))?,
            );
            at += 2;
            let arr = bytes
                .get(at..at + 2 * n)
                .ok_or_else(|| bad("variable column offsets run past the page"))?;
            at += 2 * n;
            var_ends = arr
                .chunks_exact(2)
                .map(|w| u16::from_le_bytes([w[0], w[1]]))
                .collect();
            let mut prev = at;
            for (i, e) in var_ends.iter().enumerate() {
                let end = usize::from(e & 0x7fff);
                if end < prev || end > bytes.len() {
                    return Err(Malformed(format!(
                        "variable column {} ends at {end}, outside {prev}..{}",
                        i + 1,
                        bytes.len()
                    )));
                }
                prev = end;
            }
        }
        Ok(Record {
            bytes,
            fixed_end,
            columns,
            nulls,
            var_start: at,
            var_ends,
        })
    }

    /// Whether column `nullbit` (counted from 1) is NULL: its bit is set, or the record was
    /// written before the column existed (it has fewer columns).
    pub fn is_null(&self, nullbit: usize) -> bool {
        if nullbit == 0 {
            return false;
        }
        if nullbit > self.columns {
            return true;
        }
        match self.nulls {
            Some(b) => b
                .get((nullbit - 1) / 8)
                .is_some_and(|x| x >> ((nullbit - 1) % 8) & 1 == 1),
            None => false,
        }
    }

    /// `len` bytes of the fixed part at record offset `off`; `None` when they lie outside it
    /// (a column added after the record was written).
    pub fn fixed(&self, off: usize, len: usize) -> Option<&'p [u8]> {
        if off < 4 || off.checked_add(len)? > self.fixed_end {
            return None;
        }
        self.bytes.get(off..off + len)
    }

    /// Variable column `n` (counted from 1); `None` when the record has fewer.
    pub fn var(&self, n: usize) -> Option<Var<'p>> {
        if n == 0 || n > self.var_ends.len() {
            return None;
        }
        let start = if n == 1 {
            self.var_start
        } else {
            usize::from(self.var_ends[n - 2] & 0x7fff)
        };
        let e = self.var_ends[n - 1];
        let end = usize::from(e & 0x7fff);
        Some(Var {
            bytes: self.bytes.get(start..end)?,
            complex: e & 0x8000 != 0,
        })
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Records made by hand, in the layout [`Record::parse`] reads.

    /// A primary record: `fixed` bytes after the 4-byte header, `columns` columns, the null
    /// bits in `nulls` (counted from 1), and the variable columns.
    pub fn record(fixed: &[u8], columns: u16, nulls: &[usize], vars: &[&[u8]]) -> Vec<u8> {
        let mut r = vec![0x10 | if vars.is_empty() { 0 } else { 0x20 }, 0];
        let fixed_end = 4 + fixed.len();
        r.extend_from_slice(&(fixed_end as u16).to_le_bytes());
        r.extend_from_slice(fixed);
        r.extend_from_slice(&columns.to_le_bytes());
        let mut bm = vec![0u8; usize::from(columns).div_ceil(8)];
        for &n in nulls {
            bm[(n - 1) / 8] |= 1 << ((n - 1) % 8);
        }
        r.extend_from_slice(&bm);
        if !vars.is_empty() {
            r.extend_from_slice(&(vars.len() as u16).to_le_bytes());
            let mut end = r.len() + 2 * vars.len();
            for v in vars {
                end += v.len();
                r.extend_from_slice(&(end as u16).to_le_bytes());
            }
            for v in vars {
                r.extend_from_slice(v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::record;
    use super::*;

    #[test]
    fn a_record_reads_back() {
        let r = record(&[1, 0, 0, 0, 7], 4, &[3], &[b"abc", b"", b"xy"]);
        let p = Record::parse(&r).unwrap();
        assert_eq!(p.fixed(4, 4), Some(&[1, 0, 0, 0][..]));
        assert_eq!(p.fixed(8, 1), Some(&[7][..]));
        assert_eq!(p.fixed(8, 2), None);
        assert!(p.is_null(3));
        assert!(!p.is_null(2));
        assert!(p.is_null(5), "a column the record predates is NULL");
        assert_eq!(p.var(1).unwrap().bytes, b"abc");
        assert_eq!(p.var(2).unwrap().bytes, b"");
        assert_eq!(p.var(3).unwrap().bytes, b"xy");
        assert_eq!(p.var(4), None);
        assert!(is_row(&r));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let r = record(&[1, 2, 3, 4], 2, &[], &[b"abcdef"]);
        for cut in 0..r.len() {
            let _ = Record::parse(&r[..cut]);
        }
        let mut bad = r.clone();
        bad[2] = 200; // fixed part past the end
        assert!(Record::parse(&bad).is_err());
        let mut bad = r.clone();
        let n = bad.len();
        bad[n - 8] = 0xff; // a variable end offset past the record
        bad[n - 7] = 0x7f;
        assert!(Record::parse(&bad).is_err());
        // Ghosts and stubs are not rows.
        let mut ghost = r.clone();
        ghost[0] = (ghost[0] & !0x0e) | (6 << 1);
        assert!(!is_row(&ghost));
        let stub = [2u8 << 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(!is_row(&stub));
    }
}
