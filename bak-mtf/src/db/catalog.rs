//! The catalog of a database, read from its system base tables: allocation units
//! (sysallocunits), rowsets (sysrowsets), the physical columns of every rowset (sysrscols; in
//! SQL Server 2005 sysrowsetcolumns with syshobtcolumns), objects (sysschobjs), columns
//! (syscolpars), schemas (sysclsobjs) and alias types (sysscalartypes).
//!
//! Only the bootstrap is hard-coded: the record offsets of sysallocunits and of the column
//! tables (they are needed to read anything else), and the column ids of syscolpars. Every
//! other base table is read by column name, through the columns syscolpars lists for it and
//! the layout the column tables give; the hard-coded offsets are checked against that same
//! layout, so a catalog laid out otherwise is refused by name instead of read wrong.

use std::collections::{HashMap, HashSet};

use super::page::{
    pfs_byte, pfs_page_of, slot_offset, Header, PageId, PFS_ALLOCATED, TYPE_BOOT, TYPE_DATA,
};
use super::record::{self, Record};
use super::store::PageStore;
use super::types::{self, ColType, Value};
use crate::le::{u16_at, u32_at, u64_at};

/// Why the catalog could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatalogError {
    /// Pages it needs are not in the backup (a lone stripe, a differential, damage).
    Missing(String),
    /// A record or page of it is malformed.
    Damaged(String),
    /// Laid out in a way this reader does not know.
    Unknown(String),
    /// The pages are not those of a database: no boot page, no catalog page.
    NotADatabase(String),
}

type CResult<T> = Result<T, CatalogError>;

/// The page of the boot record, and where on it the first sysallocunits page is named.
const BOOT_PAGE: u32 = 9;
const BOOT_VERSION: usize = 100;
const BOOT_DBNAME: usize = 148;
const BOOT_FIRST_SYSINDEXES: usize = 612;

/// Object ids of the base tables.
const SYSRSCOLS: u32 = 3;
const SYSROWSETCOLUMNS: u32 = 4;
const SYSROWSETS: u32 = 5;
const SYSALLOCUNITS: u32 = 7;
const SYSHOBTCOLUMNS: u32 = 13;
const SYSSCHOBJS: u32 = 34;
const SYSCOLPARS: u32 = 41;
const SYSSCALARTYPES: u32 = 50;
const SYSCLSOBJS: u32 = 64;

/// The allocation unit (in-row data) of base table `obj` with index `idx`; for base tables it
/// is also the rowset id.
fn base_unit(obj: u32, idx: u16) -> u64 {
    (u64::from(idx) << 48) | (u64::from(obj) << 16)
}

/// One allocation unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllocUnit {
    pub id: u64,
    /// 1 in-row data, 2 LOB data, 3 row-overflow data.
    pub kind: u8,
    /// The rowset (partition) it belongs to.
    pub owner: u64,
    pub first: PageId,
}

/// One column as a rowset stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PhysCol {
    /// The table's column id (syscolpars.colid); 0 for a uniquifier.
    pub colid: u32,
    /// The column's place in the rowset (sysrscols.hbcolid).
    pub hbcolid: u32,
    /// Leaf offset: > 0 a fixed column at that record offset, < 0 variable column number -n.
    pub offset: i16,
    /// Bit in the null bitmap, counted from 1.
    pub nullbit: u16,
    /// Bit inside the byte, for bit columns.
    pub bitpos: u8,
    pub dropped: bool,
    pub sparse: bool,
    /// The type as the column table records it (used for base tables).
    pub ty: ColType,
    /// The value of a column added by ALTER TABLE without rewriting the rows (SQL Server 2012
    /// and later), for records written before it: a `sql_variant` as sysseobjvalues keeps it
    /// (valclass 1, id = rowset, subid = hbcolid, valnum 0).
    pub default: Option<Vec<u8>>,
}

/// One column of a user table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub colid: u32,
    pub name: String,
    pub ty: ColType,
    pub nullable: bool,
    pub identity: bool,
    /// The alias type's name (pubs' `id`, `tid`; `sysname`), when the column has one.
    pub user_type: Option<String>,
    /// Where the rowsets store it; `None` for a computed column that is not stored.
    pub phys: Option<PhysCol>,
}

/// One rowset (partition) of a table's heap or clustered index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rowset {
    pub id: u64,
    /// 0 heap, 1 clustered index.
    pub index: u32,
    /// sysrowsets.rcrows.
    pub rows: i64,
    /// 0 none, 1 row, 2 page, 3 and 4 columnstore.
    pub compression: u8,
    /// Its in-row data allocation unit.
    pub in_row: Option<AllocUnit>,
    /// Its LOB and row-overflow allocation units.
    pub lob: Vec<AllocUnit>,
}

/// One user table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub rowsets: Vec<Rowset>,
    pub columns: Vec<Column>,
    /// What this reader does not decode in it, each named.
    pub unsupported: Vec<String>,
}

/// The catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub database: Option<String>,
    /// dbi_version of the boot page (611 = SQL Server 2005, 904 = 2019 ...).
    pub version: Option<u16>,
    pub tables: Vec<Table>,
    /// Notes on what could not be read (a partial set): pages missing from chains.
    pub notes: Vec<String>,
    /// Where a whole set's catalog describes a base table otherwise than [`KNOWN`] does (the
    /// layout a partial set falls back to): each difference, for the tests.
    pub known_differs: Vec<String>,
}

/// A syscolpars row: (id, number, colid, name, type, utype, status).
type ColPar = (u32, u16, u32, String, ColType, u32, u32);

/// A record copied out of its page, with where it lay.
struct Row {
    page: PageId,
    slot: u16,
    bytes: Vec<u8>,
}

/// What the page chains found missing, shared by the scans.
#[derive(Default)]
pub(crate) struct Scanner {
    pub notes: Vec<String>,
}

impl Scanner {
    /// The data pages of allocation unit `au`, in the order a scan reads them: for a B-tree
    /// (`btree`), the leaf chain from its first page; then (and for a heap, only) every page of
    /// the store whose header names the unit, that PFS calls allocated, in page order.
    pub fn data_pages(
        &mut self,
        store: &PageStore<'_>,
        au: &AllocUnit,
        btree: bool,
    ) -> CResult<Vec<PageId>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        if btree && !au.first.is_null() {
            let mut cur = au.first;
            loop {
                if cur.is_null() || !seen.insert(cur) {
                    break;
                }
                let Some(p) = store
                    .page(cur)
                    .map_err(|e| CatalogError::Damaged(e.to_string()))?
                else {
                    self.notes.push(format!(
                        "page {cur} of allocation unit {} is not in the backup",
                        au.id
                    ));
                    break;
                };
                let Some(h) = Header::parse(&p) else { break };
                if h.alloc_unit() != au.id || h.kind != TYPE_DATA {
                    return Err(CatalogError::Damaged(format!(
                        "page {cur}, in the page chain of allocation unit {}, belongs to allocation unit {} (type {})",
                        au.id,
                        h.alloc_unit(),
                        h.kind
                    )));
                }
                out.push(cur);
                cur = h.next;
            }
        }
        for &id in store.unit_pages(au.id) {
            if seen.contains(&id) {
                continue;
            }
            let Some(loc) = store.loc(id) else { continue };
            if loc.kind != TYPE_DATA || !allocated(store, id)? {
                continue;
            }
            out.push(id);
        }
        Ok(out)
    }
}

/// Whether PFS says page `id` is allocated (true when its PFS page is not in the backup: a
/// partial set cannot tell).
pub(crate) fn allocated(store: &PageStore<'_>, id: PageId) -> CResult<bool> {
    let pfs = PageId::new(id.file, pfs_page_of(id.page));
    match store
        .page(pfs)
        .map_err(|e| CatalogError::Damaged(e.to_string()))?
    {
        Some(p) => Ok(pfs_byte(&p, id.page).is_none_or(|b| b & PFS_ALLOCATED != 0)),
        None => Ok(true),
    }
}

/// Every row record (primary, forwarded, not ghost) on `pages`.
fn rows_of(store: &PageStore<'_>, pages: &[PageId]) -> CResult<Vec<Row>> {
    let mut out = Vec::new();
    for &id in pages {
        let Some(p) = store
            .page(id)
            .map_err(|e| CatalogError::Damaged(e.to_string()))?
        else {
            continue;
        };
        let Some(h) = Header::parse(&p) else { continue };
        let end = super::page::records_end(h.slots);
        for slot in 0..h.slots {
            let Some(off) = slot_offset(&p, h.slots, slot) else {
                continue;
            };
            let rec = &p[off..end];
            if record::is_row(rec) {
                out.push(Row {
                    page: id,
                    slot,
                    bytes: rec.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

fn damaged(r: &Row, what: impl std::fmt::Display) -> CatalogError {
    CatalogError::Damaged(format!(
        "record {}:{} (slot {}): {what}",
        r.page.file, r.page.page, r.slot
    ))
}

/// The fixed-offset fields of a record, read by the bootstrap.
struct Fixed<'r>(&'r Row, Record<'r>);

impl<'r> Fixed<'r> {
    fn new(r: &'r Row) -> CResult<Fixed<'r>> {
        let rec = Record::parse(&r.bytes).map_err(|e| damaged(r, e.0))?;
        Ok(Fixed(r, rec))
    }
    fn get(&self, off: usize, len: usize) -> CResult<&'r [u8]> {
        self.1
            .fixed(off, len)
            .ok_or_else(|| damaged(self.0, format!("no {len}-byte field at offset {off}")))
    }
    fn u8(&self, off: usize) -> CResult<u8> {
        Ok(self.get(off, 1)?[0])
    }
    fn u16(&self, off: usize) -> CResult<u16> {
        u16_at(self.get(off, 2)?, 0).ok_or_else(|| damaged(self.0, "short field"))
    }
    fn u32(&self, off: usize) -> CResult<u32> {
        u32_at(self.get(off, 4)?, 0).ok_or_else(|| damaged(self.0, "short field"))
    }
    fn u64(&self, off: usize) -> CResult<u64> {
        u64_at(self.get(off, 8)?, 0).ok_or_else(|| damaged(self.0, "short field"))
    }
    fn ptr(&self, off: usize) -> CResult<PageId> {
        PageId::at(self.get(off, 6)?, 0).ok_or_else(|| damaged(self.0, "short field"))
    }
}

/// The type a 2008+ sysrscols `ti` and collation describe.
fn ti_type(ti: u32, collation: u32) -> ColType {
    let xtype = (ti & 0xff) as u8;
    let (mut length, mut precision, mut scale) = (0i32, 0u8, 0u8);
    match xtype {
        types::x::DECIMAL | types::x::NUMERIC => {
            precision = ((ti >> 8) & 0xff) as u8;
            scale = ((ti >> 16) & 0xff) as u8;
        }
        types::x::TIME | types::x::DATETIME2 | types::x::DATETIMEOFFSET => {
            scale = ((ti >> 8) & 0xff) as u8;
        }
        types::x::CHAR
        | types::x::VARCHAR
        | types::x::NCHAR
        | types::x::NVARCHAR
        | types::x::BINARY
        | types::x::VARBINARY => {
            let l = (ti >> 8) & 0xffff;
            length = if l == 0 { -1 } else { l as i32 };
        }
        _ => {}
    }
    let mut t = ColType {
        xtype,
        length,
        precision,
        scale,
        collation,
    };
    if let Some(n) = t.fixed_len() {
        if t.length == 0 {
            t.length = n as i32;
        }
    }
    t
}

/// A value of column `col` of a record, through the generic decoder (no LOBs).
pub(crate) fn column_value(rec: &Record<'_>, col: &PhysCol, ty: &ColType) -> Result<Value, String> {
    if rec.is_null(usize::from(col.nullbit)) {
        return Ok(Value::Null);
    }
    if col.offset > 0 {
        let off = col.offset as usize;
        if ty.xtype == types::x::BIT {
            return Ok(match rec.fixed(off, 1) {
                Some(b) => Value::Bool(b[0] >> (col.bitpos & 7) & 1 == 1),
                None => Value::Null,
            });
        }
        let len = ty
            .fixed_len()
            .ok_or_else(|| format!("{} stored as a fixed column", ty.name()))?;
        return match rec.fixed(off, len) {
            Some(b) => types::decode(ty, b).map_err(|e| e.0),
            None => Ok(Value::Null),
        };
    }
    let n = usize::from(col.offset.unsigned_abs());
    match rec.var(n) {
        None => Ok(Value::Null),
        Some(v) if v.complex => Err(format!("{} stored off the row", ty.name())),
        Some(v) => types::decode(ty, v.bytes).map_err(|e| e.0),
    }
}

/// The catalog reader: the store, the allocation units and the layouts read so far.
struct Reader<'s, 'a> {
    store: &'s PageStore<'a>,
    scan: Scanner,
    units: HashMap<u64, AllocUnit>,
    by_owner: HashMap<u64, Vec<u64>>,
    layouts: HashMap<u64, Vec<PhysCol>>,
    /// Base table columns by (object id, name): colid.
    names: HashMap<(u32, String), u32>,
    /// Not every family was given: what the missing ones hold is read by the known layout.
    partial: bool,
}

/// The base tables' columns this reader reads by name, where every complete SQL Server 2008
/// to 2019 fixture puts them (docs/MTF.md; the offsets of the shared notes): (object, index,
/// name, colid, offset, xtype, length). A variable column's offset is minus its number. Used
/// only for a partial set (a lone stripe) whose catalog rows that describe a base table lie on
/// a missing family; on a whole set the catalog's own description is read and these are
/// checked against it (`known_layouts_agree`). syscolpars keeps its real column ids, which
/// its reader addresses; the others get ids past any real one.
const KNOWN: &[(u32, u16, &str, u32, i16, u8, i32)] = &[
    (SYSCOLPARS, 1, "id", 1, 4, types::x::INT, 4),
    (SYSCOLPARS, 1, "number", 2, 8, types::x::SMALLINT, 2),
    (SYSCOLPARS, 1, "colid", 3, 10, types::x::INT, 4),
    (SYSCOLPARS, 1, "name", 4, -1, types::x::NVARCHAR, 256),
    (SYSCOLPARS, 1, "xtype", 5, 14, types::x::TINYINT, 1),
    (SYSCOLPARS, 1, "utype", 6, 15, types::x::INT, 4),
    (SYSCOLPARS, 1, "length", 7, 19, types::x::SMALLINT, 2),
    (SYSCOLPARS, 1, "prec", 8, 21, types::x::TINYINT, 1),
    (SYSCOLPARS, 1, "scale", 9, 22, types::x::TINYINT, 1),
    (SYSCOLPARS, 1, "collationid", 10, 23, types::x::INT, 4),
    (SYSCOLPARS, 1, "status", 11, 27, types::x::INT, 4),
    (SYSSCHOBJS, 1, "id", 1001, 4, types::x::INT, 4),
    (SYSSCHOBJS, 1, "nsid", 1002, 8, types::x::INT, 4),
    (SYSSCHOBJS, 1, "status", 1003, 13, types::x::INT, 4),
    (SYSSCHOBJS, 1, "type", 1004, 17, types::x::CHAR, 2),
    (SYSSCHOBJS, 1, "name", 1005, -1, types::x::NVARCHAR, 256),
    (SYSROWSETS, 0, "rowsetid", 1001, 4, types::x::BIGINT, 8),
    (SYSROWSETS, 0, "idmajor", 1002, 13, types::x::INT, 4),
    (SYSROWSETS, 0, "idminor", 1003, 17, types::x::INT, 4),
    (SYSROWSETS, 0, "rcrows", 1004, 31, types::x::BIGINT, 8),
    (SYSROWSETS, 0, "cmprlevel", 1005, 39, types::x::TINYINT, 1),
    (SYSCLSOBJS, 1, "class", 1001, 4, types::x::TINYINT, 1),
    (SYSCLSOBJS, 1, "id", 1002, 5, types::x::INT, 4),
    (SYSCLSOBJS, 1, "name", 1003, -1, types::x::NVARCHAR, 256),
];

/// The collation the known layout decodes sysschobjs.type (char(2)) with: Latin1_General_CI_AS.
const KNOWN_COLLATION: u32 = 53256;

/// The known layout of base table `obj`'s columns (index `idx`): (name, column).
fn known_layout(obj: u32, idx: u16) -> Vec<(&'static str, PhysCol)> {
    KNOWN
        .iter()
        .filter(|k| k.0 == obj && k.1 == idx)
        .map(|&(_, _, name, colid, offset, xtype, length)| {
            let ty = ColType {
                xtype,
                length,
                precision: 0,
                scale: 0,
                collation: KNOWN_COLLATION,
            };
            let c = PhysCol {
                colid,
                hbcolid: 0,
                offset,
                nullbit: 0,
                bitpos: 0,
                dropped: false,
                sparse: false,
                ty,
                default: None,
            };
            (name, c)
        })
        .collect()
}

/// What one base table's record gives, by column name.
struct Named<'r, 'x, 's, 'a> {
    rd: &'x Reader<'s, 'a>,
    obj: u32,
    layout: &'x [PhysCol],
    row: &'r Row,
    rec: Record<'r>,
}

impl Named<'_, '_, '_, '_> {
    fn value(&self, name: &str) -> CResult<Option<Value>> {
        let Some(colid) = self.rd.names.get(&(self.obj, name.to_string())) else {
            return Ok(None);
        };
        let Some(col) = self.layout.iter().find(|c| c.colid == *colid && !c.dropped) else {
            return Err(CatalogError::Unknown(format!(
                "base table {} has no stored column {name}",
                self.obj
            )));
        };
        column_value(&self.rec, col, &col.ty)
            .map(Some)
            .map_err(|e| damaged(self.row, format!("column {name}: {e}")))
    }
    /// The stored bytes of variable-length column `name` (a `sql_variant`), not decoded.
    fn raw(&self, name: &str) -> CResult<Option<Vec<u8>>> {
        let Some(colid) = self.rd.names.get(&(self.obj, name.to_string())) else {
            return Ok(None);
        };
        let Some(col) = self.layout.iter().find(|c| c.colid == *colid && !c.dropped) else {
            return Ok(None);
        };
        if self.rec.is_null(usize::from(col.nullbit)) || col.offset >= 0 {
            return Ok(None);
        }
        Ok(self
            .rec
            .var(usize::from(col.offset.unsigned_abs()))
            .filter(|v| !v.complex)
            .map(|v| v.bytes.to_vec()))
    }

    fn int(&self, name: &str) -> CResult<Option<i64>> {
        Ok(match self.value(name)? {
            Some(Value::Int(i)) => Some(i),
            Some(Value::Bool(b)) => Some(i64::from(b)),
            _ => None,
        })
    }
    fn text(&self, name: &str) -> CResult<Option<String>> {
        Ok(match self.value(name)? {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        })
    }
}

impl<'s, 'a> Reader<'s, 'a> {
    fn unit(&mut self, id: u64) -> CResult<&AllocUnit> {
        if self.partial && !self.units.contains_key(&id) && id >> 16 & 0xffff_ffff < 100 {
            // A base table's row of sysallocunits lies on a missing family: its unit id is
            // its object and index id, and its pages are found by their headers.
            self.scan.notes.push(format!(
                "the sysallocunits row of base table {} is not in the backup; its pages were found by their headers",
                id >> 16 & 0xffff_ffff
            ));
            self.units.insert(
                id,
                AllocUnit {
                    id,
                    kind: 1,
                    owner: id,
                    first: PageId::new(0, 0),
                },
            );
        }
        self.units.get(&id).ok_or_else(|| {
            CatalogError::Missing(format!("allocation unit {id} is not in sysallocunits"))
        })
    }

    /// Every column of [`KNOWN`] that the catalog places otherwise (another id for
    /// syscolpars, another offset or type).
    fn known_differs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for &(obj, idx, name, colid, offset, xtype, _) in KNOWN {
            let real = self.names.get(&(obj, name.to_string())).and_then(|id| {
                self.layouts
                    .get(&base_unit(obj, idx))
                    .and_then(|l| l.iter().find(|c| c.colid == *id))
            });
            match real {
                Some(c)
                    if c.offset == offset
                        && c.ty.xtype == xtype
                        && (obj != SYSCOLPARS || c.colid == colid) => {}
                Some(c) => out.push(format!(
                    "base table {obj} column {name}: colid {} offset {} type {}, known as colid {colid} offset {offset} type {xtype}",
                    c.colid, c.offset, c.ty.xtype
                )),
                None => out.push(format!("base table {obj} has no column {name}")),
            }
        }
        out
    }

    /// On a partial set, the known layout for base table `obj` (index `idx`) when the
    /// catalog's own description of a column it reads is missing.
    fn fill_known(&mut self, obj: u32, idx: u16) {
        if !self.partial {
            return;
        }
        let known = known_layout(obj, idx);
        let unit = base_unit(obj, idx);
        let whole = known.iter().all(|(name, _)| {
            self.names
                .get(&(obj, name.to_string()))
                .is_some_and(|colid| {
                    self.layouts
                        .get(&unit)
                        .is_some_and(|l| l.iter().any(|c| c.colid == *colid))
                })
        });
        if whole || known.is_empty() {
            return;
        }
        self.scan.notes.push(format!(
            "the catalog's description of base table {obj} is not in the backup; its columns were read where whole backups put them"
        ));
        let mut layout = Vec::new();
        for (name, c) in known {
            self.names.insert((obj, name.to_string()), c.colid);
            layout.push(c);
        }
        self.layouts.insert(unit, layout);
    }

    fn rows_of_unit(&mut self, au: &AllocUnit) -> CResult<Vec<Row>> {
        let pages = self.scan.data_pages(self.store, au, true)?;
        rows_of(self.store, &pages)
    }

    fn base_rows(&mut self, obj: u32, idx: u16) -> CResult<Vec<Row>> {
        let au = self.unit(base_unit(obj, idx))?.clone();
        self.rows_of_unit(&au)
    }

    /// Read sysallocunits, starting at its first page.
    fn alloc_units(&mut self, first: PageId) -> CResult<()> {
        let au = AllocUnit {
            id: base_unit(SYSALLOCUNITS, 0),
            kind: 1,
            owner: base_unit(SYSALLOCUNITS, 0),
            first,
        };
        for r in self.rows_of_unit(&au)? {
            let f = Fixed::new(&r)?;
            let a = AllocUnit {
                id: f.u64(4)?,
                kind: f.u8(12)?,
                owner: f.u64(13)?,
                first: f.ptr(27)?,
            };
            self.by_owner.entry(a.owner).or_default().push(a.id);
            self.units.insert(a.id, a);
        }
        if self.units.is_empty() {
            return Err(CatalogError::Missing(format!(
                "sysallocunits (first page {first}) holds no rows in the backup"
            )));
        }
        Ok(())
    }

    /// The physical columns of every rowset: sysrscols, or SQL Server 2005's pair.
    fn layouts(&mut self) -> CResult<&'static str> {
        let rscols = base_unit(SYSRSCOLS, 0);
        if self.units.contains_key(&rscols)
            || (self.partial && !self.store.unit_pages(rscols).is_empty())
        {
            for r in self.base_rows(SYSRSCOLS, 0)? {
                let f = Fixed::new(&r)?;
                let status = f.u32(40)?;
                let c = PhysCol {
                    colid: f.u32(12)?,
                    hbcolid: f.u32(16)?,
                    offset: f.u16(44)? as i16,
                    nullbit: f.u16(48)?,
                    bitpos: f.u8(52)?,
                    dropped: status & 2 != 0,
                    sparse: status & 0x100 != 0,
                    ty: ti_type(f.u32(28)?, f.u32(32)?),
                    default: None,
                };
                self.layouts.entry(f.u64(4)?).or_default().push(c);
            }
            return Ok("sysrscols");
        }
        if self.units.contains_key(&base_unit(SYSROWSETCOLUMNS, 0))
            && self.units.contains_key(&base_unit(SYSHOBTCOLUMNS, 0))
        {
            let mut hobt: HashMap<(u64, u32), PhysCol> = HashMap::new();
            for r in self.base_rows(SYSHOBTCOLUMNS, 0)? {
                let f = Fixed::new(&r)?;
                let ty = ColType {
                    xtype: f.u8(22)?,
                    length: i32::from(f.u16(23)? as i16),
                    precision: f.u8(25)?,
                    scale: f.u8(26)?,
                    collation: f.u32(27)?,
                };
                let c = PhysCol {
                    colid: 0,
                    hbcolid: f.u32(12)?,
                    offset: f.u16(31)? as i16,
                    nullbit: f.u16(37)?,
                    bitpos: f.u8(35)?,
                    dropped: false,
                    sparse: false,
                    ty,
                    default: None,
                };
                hobt.insert((f.u64(4)?, f.u32(12)?), c);
            }
            // A rowset's column maps to its hobt's column (the rowset id is the hobt id).
            for r in self.base_rows(SYSROWSETCOLUMNS, 0)? {
                let f = Fixed::new(&r)?;
                let rs = f.u64(4)?;
                let (colid, hcol) = (f.u32(12)?, f.u32(16)?);
                if let Some(h) = hobt.get(&(rs, hcol)) {
                    let mut c = h.clone();
                    c.colid = colid;
                    self.layouts.entry(rs).or_default().push(c);
                }
            }
            return Ok("sysrowsetcolumns and syshobtcolumns");
        }
        Err(CatalogError::Unknown(
            "the catalog has neither sysrscols (SQL Server 2008 and later) nor sysrowsetcolumns and syshobtcolumns (2005)".into(),
        ))
    }

    /// syscolpars, by its hard-coded column ids (checked against its own rows): the names of
    /// every base table's columns.
    fn base_names(&mut self) -> CResult<Vec<ColPar>> {
        const COLS: [(u32, &str); 11] = [
            (1, "id"),
            (2, "number"),
            (3, "colid"),
            (4, "name"),
            (5, "xtype"),
            (6, "utype"),
            (7, "length"),
            (8, "prec"),
            (9, "scale"),
            (10, "collationid"),
            (11, "status"),
        ];
        let unit = base_unit(SYSCOLPARS, 1);
        self.fill_known(SYSCOLPARS, 1);
        let layout = self
            .layouts
            .get(&unit)
            .cloned()
            .ok_or_else(|| CatalogError::Missing("no column layout for syscolpars".into()))?;
        let col = |id: u32| {
            layout
                .iter()
                .find(|c| c.colid == id)
                .cloned()
                .ok_or_else(|| CatalogError::Unknown(format!("syscolpars has no column {id}")))
        };
        let cols: Vec<PhysCol> = COLS.iter().map(|(i, _)| col(*i)).collect::<CResult<_>>()?;
        let mut out = Vec::new();
        for r in self.base_rows(SYSCOLPARS, 1)? {
            let rec = Record::parse(&r.bytes).map_err(|e| damaged(&r, e.0))?;
            let v: Vec<Value> = cols
                .iter()
                .map(|c| column_value(&rec, c, &c.ty).map_err(|e| damaged(&r, e)))
                .collect::<CResult<_>>()?;
            let int = |i: usize| match &v[i] {
                Value::Int(x) => *x,
                _ => 0,
            };
            let name = match &v[3] {
                Value::Text(s) => s.clone(),
                _ => String::new(),
            };
            let ty = ColType {
                xtype: int(4) as u8,
                length: int(6) as i32,
                precision: int(7) as u8,
                scale: int(8) as u8,
                collation: int(9) as u32,
            };
            out.push((
                int(0) as u32,
                int(1) as u16,
                int(2) as u32,
                name,
                ty,
                int(5) as u32,
                int(10) as u32,
            ));
        }
        for (id, number, colid, name, ..) in &out {
            if *number == 0 && *id < 100 {
                self.names.insert((*id, name.clone()), *colid);
            }
        }
        for (i, want) in COLS {
            let got = out
                .iter()
                .find(|r| r.0 == SYSCOLPARS && r.1 == 0 && r.2 == i)
                .map(|r| r.3.as_str());
            if got.is_none() && self.partial {
                continue;
            }
            if got != Some(want) {
                return Err(CatalogError::Unknown(format!(
                    "syscolpars column {i} is {}, where this reader expects {want}",
                    got.unwrap_or("missing")
                )));
            }
        }
        Ok(out)
    }

    /// The hard-coded offsets, checked against the layout the catalog gives for them.
    fn check_bootstrap(&self, columns: &str) -> CResult<()> {
        let mut want: Vec<(u32, &str, i16)> = vec![
            (SYSALLOCUNITS, "auid", 4),
            (SYSALLOCUNITS, "type", 12),
            (SYSALLOCUNITS, "ownerid", 13),
            (SYSALLOCUNITS, "pgfirst", 27),
        ];
        if columns == "sysrscols" {
            want.extend([
                (SYSRSCOLS, "rsid", 4),
                (SYSRSCOLS, "rscolid", 12),
                (SYSRSCOLS, "ti", 28),
                (SYSRSCOLS, "cid", 32),
                (SYSRSCOLS, "status", 40),
                (SYSRSCOLS, "offset", 44),
                (SYSRSCOLS, "nullbit", 48),
                (SYSRSCOLS, "bitpos", 52),
            ]);
        } else {
            want.extend([
                (SYSROWSETCOLUMNS, "rowsetid", 4),
                (SYSROWSETCOLUMNS, "rowsetcolid", 12),
                (SYSROWSETCOLUMNS, "hobtcolid", 16),
                (SYSHOBTCOLUMNS, "hobtid", 4),
                (SYSHOBTCOLUMNS, "hobtcolumnid", 12),
                (SYSHOBTCOLUMNS, "xtype", 22),
                (SYSHOBTCOLUMNS, "length", 23),
                (SYSHOBTCOLUMNS, "collationid", 27),
                (SYSHOBTCOLUMNS, "offsetleaf", 31),
                (SYSHOBTCOLUMNS, "bitposleaf", 35),
                (SYSHOBTCOLUMNS, "nullbitleaf", 37),
            ]);
        }
        for (obj, name, off) in want {
            let found = self
                .names
                .get(&(obj, name.to_string()))
                .and_then(|colid| {
                    self.layouts
                        .get(&base_unit(obj, 0))
                        .and_then(|l| l.iter().find(|c| c.colid == *colid))
                })
                .map(|c| c.offset);
            if found.is_none() && self.partial {
                continue;
            }
            if found != Some(off) {
                return Err(CatalogError::Unknown(format!(
                    "base table {obj}'s column {name} lies at {}, where this reader expects offset {off}",
                    found.map_or("no known offset".to_string(), |o| format!("offset {o}"))
                )));
            }
        }
        Ok(())
    }

    /// The defaults of columns added without rewriting the rows: sysseobjvalues' rows of
    /// valclass 1 (SEVC_OUT_OF_ROW_DEFAULT) and valnum 0, by (rowset id, hbcolid), as
    /// sys.system_internals_partition_columns joins them for its `default_value`.
    fn stored_defaults(
        &mut self,
        obj: u32,
        colpars: &[ColPar],
    ) -> CResult<HashMap<(u64, u32), Vec<u8>>> {
        for (id, number, colid, name, ..) in colpars {
            if *id == obj && *number == 0 {
                self.names.insert((obj, name.clone()), *colid);
            }
        }
        let Some(idx) = [1u16, 0]
            .into_iter()
            .find(|i| self.units.contains_key(&base_unit(obj, *i)))
        else {
            return Ok(HashMap::new());
        };
        let rows = self.named(obj, idx, |n| {
            if n.int("valclass")? != Some(1) || n.int("valnum")? != Some(0) {
                return Ok(None);
            }
            Ok(match (n.int("id")?, n.int("subid")?, n.raw("value")?) {
                (Some(id), Some(sub), Some(v)) => Some(((id as u64, sub as u32), v)),
                _ => None,
            })
        })?;
        Ok(rows.into_iter().collect())
    }

    /// Rows of base table `obj` (index `idx`), read by column name.
    fn named<T>(
        &mut self,
        obj: u32,
        idx: u16,
        mut each: impl FnMut(&Named<'_, '_, '_, '_>) -> CResult<Option<T>>,
    ) -> CResult<Vec<T>> {
        self.fill_known(obj, idx);
        let rows = self.base_rows(obj, idx)?;
        let layout = self
            .layouts
            .get(&base_unit(obj, idx))
            .cloned()
            .ok_or_else(|| {
                CatalogError::Missing(format!("no column layout for base table {obj}"))
            })?;
        let mut out = Vec::new();
        let rd: &Reader<'_, '_> = self;
        for r in &rows {
            let rec = Record::parse(&r.bytes).map_err(|e| damaged(r, e.0))?;
            let n = Named {
                rd,
                obj,
                layout: &layout,
                row: r,
                rec,
            };
            if let Some(t) = each(&n)? {
                out.push(t);
            }
        }
        Ok(out)
    }
}

/// Read the catalog of the pages in `store`.
pub(crate) fn read(store: &PageStore<'_>) -> CResult<Catalog> {
    let mut rd = Reader {
        store,
        scan: Scanner::default(),
        units: HashMap::new(),
        by_owner: HashMap::new(),
        layouts: HashMap::new(),
        names: HashMap::new(),
        partial: store.partial.is_some(),
    };
    let mut database = None;
    let mut version = None;
    let boot = store
        .page(PageId::new(1, BOOT_PAGE))
        .map_err(|e| CatalogError::Damaged(e.to_string()))?;
    let first = match boot {
        Some(b) => {
            if Header::parse(&b).map(|h| h.kind) != Some(TYPE_BOOT) {
                return Err(CatalogError::NotADatabase(
                    "page 1:9 is not a boot page".into(),
                ));
            }
            version = u16_at(&b, BOOT_VERSION);
            database = b.get(BOOT_DBNAME..BOOT_DBNAME + 256).map(|n| {
                crate::le::utf16le(n)
                    .trim_end_matches(['\u{2020}', ' ', '\0'])
                    .to_string()
            });
            PageId::at(&b, BOOT_FIRST_SYSINDEXES)
                .ok_or_else(|| CatalogError::Damaged("boot page cut short".into()))?
        }
        None => {
            // No boot page (a lone stripe): the first page of sysallocunits is the one of its
            // pages that no page precedes.
            let unit = base_unit(SYSALLOCUNITS, 0);
            let mut first = None;
            for &id in store.unit_pages(unit) {
                if let Some(p) = store
                    .page(id)
                    .map_err(|e| CatalogError::Damaged(e.to_string()))?
                {
                    if Header::parse(&p).is_some_and(|h| h.prev.is_null() && h.kind == TYPE_DATA) {
                        first = Some(id);
                        break;
                    }
                }
            }
            rd.scan
                .notes
                .push("the boot page (1:9) is not in the backup; sysallocunits was found by its page headers".into());
            match first {
                Some(f) => f,
                None if store.unit_pages(unit).is_empty() => {
                    return Err(CatalogError::NotADatabase(
                        "neither a boot page (1:9) nor a page of sysallocunits is in the data stream".into(),
                    ))
                }
                // Its pages on the given families are found by their headers.
                None if rd.partial => PageId::new(0, 0),
                None => {
                    return Err(CatalogError::Missing(
                        "the first page of sysallocunits is not in the backup".into(),
                    ))
                }
            }
        }
    };
    rd.alloc_units(first)?;
    let columns = rd.layouts()?;
    let colpars = rd.base_names()?;
    rd.check_bootstrap(columns)?;
    let known_differs = if columns == "sysrscols" && !rd.partial {
        rd.known_differs()
    } else {
        Vec::new()
    };
    // Schemas.
    let schemas: HashMap<u32, String> = rd
        .named(SYSCLSOBJS, 1, |n| {
            Ok(match (n.int("class")?, n.int("id")?, n.text("name")?) {
                (Some(50), Some(id), Some(name)) => Some((id as u32, name)),
                _ => None,
            })
        })?
        .into_iter()
        .collect();
    // Alias types.
    let scalar: HashMap<u32, String> = rd
        .named(SYSSCALARTYPES, 1, |n| {
            Ok(match (n.int("id")?, n.text("name")?) {
                (Some(id), Some(name)) => Some((id as u32, name)),
                _ => None,
            })
        })
        .unwrap_or_default()
        .into_iter()
        .collect();
    // Rowsets of heaps and clustered indexes.
    let rowsets = rd.named(SYSROWSETS, 0, |n| {
        let idminor = n.int("idminor")?.unwrap_or(-1);
        if !(0..=1).contains(&idminor) {
            return Ok(None);
        }
        Ok(Some((
            n.int("idmajor")?.unwrap_or(0) as u32,
            Rowset {
                id: n.int("rowsetid")?.unwrap_or(0) as u64,
                index: idminor as u32,
                rows: n.int("rcrows")?.unwrap_or(0),
                compression: n.int("cmprlevel")?.unwrap_or(0) as u8,
                in_row: None,
                lob: Vec::new(),
            },
        )))
    })?;
    // User tables: type U, not shipped by Microsoft; and the base table sysseobjvalues.
    let mut seobjvalues = None;
    let objects = rd.named(SYSSCHOBJS, 1, |n| {
        let ty = n.text("type")?.unwrap_or_default();
        let status = n.int("status")?.unwrap_or(0);
        if ty.trim_end() == "S" && n.text("name")?.as_deref() == Some("sysseobjvalues") {
            seobjvalues = n.int("id")?.map(|i| i as u32);
        }
        if ty.trim_end() != "U" || status & 1 != 0 {
            return Ok(None);
        }
        Ok(Some((
            n.int("id")?.unwrap_or(0) as u32,
            n.int("nsid")?.unwrap_or(0) as u32,
            n.text("name")?.unwrap_or_default(),
        )))
    })?;
    let defaults = match seobjvalues {
        // Only rows written before a column was added need it: a sysseobjvalues that cannot
        // be read is a note, and such a column then reads as damage, not as its default.
        Some(obj) => rd.stored_defaults(obj, &colpars).unwrap_or_else(|e| {
            rd.scan.notes.push(format!(
                "sysseobjvalues (column defaults) could not be read: {e:?}"
            ));
            HashMap::new()
        }),
        None => HashMap::new(),
    };
    let mut tables = Vec::new();
    for (id, nsid, name) in objects {
        let mut unsupported = Vec::new();
        let mut sets: Vec<Rowset> = rowsets
            .iter()
            .filter(|(o, _)| *o == id)
            .map(|(_, r)| r.clone())
            .collect();
        sets.sort_by_key(|r| r.id);
        for r in &mut sets {
            for uid in rd.by_owner.get(&r.id).map(|v| v.as_slice()).unwrap_or(&[]) {
                if let Some(u) = rd.units.get(uid) {
                    if u.kind == 1 {
                        r.in_row = Some(u.clone());
                    } else {
                        r.lob.push(u.clone());
                    }
                }
            }
            if r.in_row.is_none() && rd.partial && !store.unit_pages(r.id).is_empty() {
                // Its sysallocunits row lies on a missing family, and pages on this one name
                // a unit of the rowset's id (SQL Server gives a rowset's in-row unit its id):
                // those pages, found by their headers.
                rd.scan.notes.push(format!(
                    "the allocation unit of table {name} is not in sysallocunits on the given families; its pages were found by their headers"
                ));
                r.in_row = Some(AllocUnit {
                    id: r.id,
                    kind: 1,
                    owner: r.id,
                    first: PageId::new(0, 0),
                });
            }
        }
        if sets.is_empty() && rd.partial {
            rd.scan.notes.push(format!(
                "the sysrowsets rows of table {name} are not in the backup: its rows cannot be found"
            ));
        } else if sets.is_empty() {
            unsupported.push(
                "no heap or clustered rowset holds its rows (a memory-optimized table?)".into(),
            );
        }
        if let Some(c) = sets.iter().map(|r| r.compression).find(|c| *c != 0) {
            unsupported.push(match c {
                1 => "ROW compression".to_string(),
                2 => "PAGE compression".to_string(),
                3 | 4 => "columnstore".to_string(),
                n => format!("compression level {n}"),
            });
        }
        let mut layout = sets
            .first()
            .and_then(|r| rd.layouts.get(&r.id))
            .cloned()
            .unwrap_or_default();
        if let Some(first) = sets.first() {
            for c in &mut layout {
                c.default = defaults.get(&(first.id, c.hbcolid)).cloned();
            }
        }
        let mut columns: Vec<Column> = colpars
            .iter()
            .filter(|c| c.0 == id && c.1 == 0)
            .map(|(_, _, colid, name, ty, utype, status)| Column {
                colid: *colid,
                name: name.clone(),
                ty: ty.clone(),
                nullable: status & 1 == 0,
                identity: status & 4 != 0,
                user_type: (*utype != u32::from(ty.xtype))
                    .then(|| scalar.get(utype).cloned())
                    .flatten(),
                phys: layout
                    .iter()
                    .find(|p| p.colid == *colid && !p.dropped)
                    .cloned(),
            })
            .collect();
        columns.sort_by_key(|c| c.colid);
        for c in &columns {
            if let Some(why) = types::unsupported(&c.ty) {
                unsupported.push(format!("column {}: {why}", c.name));
            }
            if c.phys.as_ref().is_some_and(|p| p.sparse) {
                unsupported.push(format!("column {}: sparse", c.name));
            }
        }
        tables.push(Table {
            id,
            schema: schemas.get(&nsid).cloned().unwrap_or_else(|| {
                // The schemas every database has, by their fixed ids (a partial set may lack
                // their sysclsobjs rows).
                match nsid {
                    1 => "dbo".into(),
                    3 => "INFORMATION_SCHEMA".into(),
                    4 => "sys".into(),
                    _ => format!("schema{nsid}"),
                }
            }),
            name,
            rowsets: sets,
            columns,
            unsupported,
        });
    }
    tables.sort_by(|a, b| {
        (a.schema.as_str(), a.name.as_str()).cmp(&(b.schema.as_str(), b.name.as_str()))
    });
    Ok(Catalog {
        database,
        version,
        tables,
        notes: rd.scan.notes,
        known_differs,
    })
}
