//! Inside a full backup: the database's pages, placed per file and checked (the page store),
//! the catalog read from them, the user tables with their row counts, their rows, and the
//! database files rebuilt page by page. See docs/MTF.md, "Database pages".
//!
//! A module of bak-mtf, not a crate of its own: the page store is fed by the reader's own walk
//! of the set and its one list of checks (`check::Watch`), which stay private to the crate so
//! that what bak-verify calls bad no other reader can pass on.

mod catalog;
mod collation;
mod files;
mod lob;
pub(crate) mod page;
mod record;
mod rows;
mod store;
mod types;

use serde::Serialize;

use bak_core::error::{Error, Location, Result};
use bak_core::report::{Problem, ProblemKind};

use crate::dblk::SSET_DIFFERENTIAL;
use crate::{all_positions, media_set, no_such_set, MtfDevice};
use catalog::{Catalog, CatalogError, Scanner, Table};
use page::{slot_offset, Header, PageId};
use store::PageStore;

pub use files::{DataFile, FileOutcome};
pub use rows::{RowFormat, RowsOutcome};
pub use types::Value;

/// One column of a table, as `bak-header --tables --json` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Type as T-SQL writes it: `nvarchar(40)`, `decimal(10,2)`, `varchar(max)`.
    #[serde(rename = "Type")]
    pub type_name: String,
    /// NULL allowed.
    pub nullable: bool,
    /// The alias type the column was declared with (pubs' `id`), where it has one.
    pub user_type: Option<String>,
    /// An identity column.
    pub identity: bool,
}

/// One user table: `bak-header --tables`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TableInfo {
    /// The backup set.
    pub position: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Rows, as the catalog counts them (sysrowsets, summed over partitions).
    pub rows: i64,
    /// Data pages of the table's heap or clustered index found in the backup.
    pub data_pages: u64,
    /// Rows counted on those pages (primary and forwarded records, not ghosts).
    pub records_on_pages: u64,
    /// The columns, in column order.
    pub columns: Vec<ColumnInfo>,
    /// What this reader does not decode in the table, each part named; `None` when its
    /// rows can be read.
    pub unsupported: Option<String>,
    /// The set was read without all its families: the table's pages may be missing.
    pub partial: bool,
}

impl TableInfo {
    /// The columns in one line: `au_id varchar(11) NOT NULL, au_lname varchar(40) NOT NULL`.
    pub fn columns_text(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.name,
                    c.user_type.as_deref().unwrap_or(&c.type_name),
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A backup set's database, opened from its pages.
pub struct Database<'a> {
    store: PageStore<'a>,
    catalog: Catalog,
    position: u32,
    device: String,
    problems: Vec<Problem>,
}

pub(crate) fn catalog_error(
    device: &str,
    position: u32,
    partial: Option<&str>,
    e: CatalogError,
) -> Error {
    let at = Location::device(device).set(position);
    // Without every family, any part of the catalog may be missing: incomplete, not unknown.
    let e = match (partial, e) {
        (
            Some(_),
            CatalogError::Unknown(w) | CatalogError::Damaged(w) | CatalogError::NotADatabase(w),
        ) => CatalogError::Missing(w),
        (_, e) => e,
    };
    match e {
        CatalogError::Missing(what) => Error::corrupt(
            at,
            match partial {
                Some(p) => format!("the catalog cannot be read from a partial set ({p}): {what}"),
                None => format!("the catalog is not whole: {what}"),
            },
        ),
        CatalogError::Damaged(what) => Error::corrupt(at, format!("the catalog is damaged: {what}")),
        CatalogError::NotADatabase(what) => Error::Unsupported {
            device: device.to_string(),
            what: format!("backup set {position}: its data stream holds no database this reader can read: {what}"),
        },
        CatalogError::Unknown(what) => Error::Unsupported {
            device: device.to_string(),
            what: format!("backup set {position}: the catalog is laid out in a way this reader does not know: {what}"),
        },
    }
}

impl<'a> Database<'a> {
    /// Open set `position` (the first set when `None`) of the devices: one media set, every
    /// family or some (then the database is partial: what the given families' pages hold).
    /// A differential or log backup has no whole catalog and is refused as unsupported.
    pub fn open(devices: &'a [MtfDevice], position: Option<u32>) -> Result<Database<'a>> {
        Self::open_with(devices, position, true)
    }

    /// [`Database::open`] for the pages alone (`--restore-files`): the catalog is read when it
    /// can be, and a catalog that cannot be read (a lone stripe) is no error.
    pub fn open_pages(devices: &'a [MtfDevice], position: Option<u32>) -> Result<Database<'a>> {
        Self::open_with(devices, position, false)
    }

    fn open_with(
        devices: &'a [MtfDevice],
        position: Option<u32>,
        need_catalog: bool,
    ) -> Result<Database<'a>> {
        let fams = media_set(devices, false)?;
        let position = match position {
            Some(p) => p,
            None => *all_positions(&fams)
                .first()
                .ok_or_else(|| no_such_set(&fams, 1))?,
        };
        let holders: Vec<&MtfDevice> = fams
            .iter()
            .filter(|d| d.set(position).is_some())
            .copied()
            .collect();
        let Some(&first) = holders.first() else {
            return Err(no_such_set(&fams, position));
        };
        let device = first.name();
        let s = first
            .set(position)
            .ok_or_else(|| no_such_set(&fams, position))?;
        let letter = s
            .lead
            .as_ref()
            .or(s.trail.as_ref())
            .and_then(|c| c.type_letter);
        let what = if s.sset.attrs & SSET_DIFFERENTIAL != 0 || letter == Some(b'I') {
            Some("a differential backup: it carries only the extents changed since the full backup, so it has no whole catalog; read the full backup it is based on")
        } else if letter == Some(b'L') {
            Some("a log backup: it holds no database pages")
        } else if matches!(letter, Some(b'F' | b'G' | b'Q')) {
            Some("a file or differential backup: it has no whole catalog")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::Unsupported {
                device,
                what: format!("backup set {position} is {what}"),
            });
        }
        if holders.iter().any(|d| {
            d.set(position)
                .is_some_and(|s| d.findings_of(s).any(|f| f.feature.is_encryption()))
        }) {
            return Err(Error::Unsupported {
                device,
                what: format!("backup set {position} is encrypted; this reader does not decrypt"),
            });
        }
        let count = first.family_count();
        let missing: Vec<String> = (1..=count)
            .filter(|f| !holders.iter().any(|d| d.family() == *f))
            .map(|f| f.to_string())
            .collect();
        let partial = (!missing.is_empty()).then(|| {
            format!(
                "famil{} {} of {count} not given: {} pages are missing",
                if missing.len() == 1 { "y" } else { "ies" },
                missing.join(", "),
                if missing.len() == 1 { "its" } else { "their" }
            )
        });
        let (store, problems) = PageStore::build(&holders, position, partial.clone())?;
        let catalog = match catalog::read(&store) {
            Ok(c) => c,
            Err(e) if need_catalog => {
                return Err(catalog_error(&device, position, partial.as_deref(), e))
            }
            Err(e) => Catalog {
                notes: vec![catalog_error(&device, position, partial.as_deref(), e).to_string()],
                ..Default::default()
            },
        };
        Ok(Database {
            store,
            catalog,
            position,
            device,
            problems,
        })
    }

    /// The problems the set's bytes showed (as bak-verify names them); pages that fail are
    /// left out of the store.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Why the database is partial (families not given), if it is.
    pub fn partial(&self) -> Option<&str> {
        self.store.partial.as_deref()
    }

    /// The database name the boot page gives.
    pub fn name(&self) -> Option<&str> {
        self.catalog.database.as_deref()
    }

    /// The boot page's dbi_version (611 SQL Server 2005, 661 2008 R2, 904 2019 ...).
    pub fn version(&self) -> Option<u16> {
        self.catalog.version
    }

    /// Notes on what could not be read: pages missing from the catalog's chains.
    pub fn notes(&self) -> &[String] {
        &self.catalog.notes
    }

    /// Where the catalog of a whole set describes a base table otherwise than the layout a
    /// partial set falls back to (for the tests: empty on every fixture from SQL Server 2008).
    #[doc(hidden)]
    pub fn known_layout_differs(&self) -> &[String] {
        &self.catalog.known_differs
    }

    /// Pages placed, stale copies dropped, repeated copies settled, pages failed.
    pub fn page_counts(&self) -> (u64, u64, u64, u64) {
        let s = &self.store.stats;
        (s.placed, s.stale, s.repeated, s.failed)
    }

    fn count(&self, t: &Table, scan: &mut Scanner) -> Result<(u64, u64)> {
        let (mut pages, mut records) = (0u64, 0u64);
        for r in &t.rowsets {
            let Some(au) = &r.in_row else { continue };
            let list = scan
                .data_pages(&self.store, au, r.index == 1)
                .map_err(|e| catalog_error(&self.device, self.position, self.partial(), e))?;
            pages += list.len() as u64;
            for id in list {
                let Some(p) = self.store.page(id)? else {
                    continue;
                };
                let Some(h) = Header::parse(&p) else { continue };
                let end = page::records_end(h.slots);
                for slot in 0..h.slots {
                    if let Some(off) = slot_offset(&p, h.slots, slot) {
                        if record::is_row(&p[off..end]) {
                            records += 1;
                        }
                    }
                }
            }
        }
        Ok((pages, records))
    }

    /// The user tables, in schema and name order.
    pub fn tables(&self) -> Result<Vec<TableInfo>> {
        let mut scan = Scanner::default();
        let mut out = Vec::new();
        for t in &self.catalog.tables {
            let (data_pages, records_on_pages) = self.count(t, &mut scan)?;
            out.push(TableInfo {
                position: self.position,
                schema: t.schema.clone(),
                table: t.name.clone(),
                rows: t.rowsets.iter().map(|r| r.rows).sum(),
                data_pages,
                records_on_pages,
                columns: t
                    .columns
                    .iter()
                    .map(|c| ColumnInfo {
                        name: c.name.clone(),
                        type_name: c.ty.name(),
                        nullable: c.nullable,
                        user_type: c.user_type.clone(),
                        identity: c.identity,
                    })
                    .collect(),
                unsupported: (!t.unsupported.is_empty()).then(|| t.unsupported.join("; ")),
                partial: self.partial().is_some(),
            });
        }
        Ok(out)
    }

    /// A small DBCC CHECKTABLE: every table whose catalog row count differs from the records
    /// on its pages, as a problem.
    pub fn check_tables(&self) -> Result<Vec<Problem>> {
        let mut out = Vec::new();
        for t in self.tables()? {
            if t.rows < 0 || t.rows as u64 != t.records_on_pages {
                out.push(Problem {
                    kind: ProblemKind::Corrupt,
                    device: self.device.clone(),
                    position: Some(self.position),
                    what: format!(
                        "table {}.{}: the catalog counts {} rows, its {} data pages hold {} records",
                        t.schema, t.table, t.rows, t.data_pages, t.records_on_pages
                    ),
                    expected: Some(t.rows.to_string()),
                    found: Some(t.records_on_pages.to_string()),
                    ..Default::default()
                });
            }
        }
        Ok(out)
    }

    #[allow(dead_code)]
    fn page_bytes(&self, id: PageId) -> Result<Option<Vec<u8>>> {
        self.store.page(id)
    }
}

/// What bak-verify holds against the tables of set `position` of a whole media set: a table
/// whose catalog row count differs from the rows on its pages, or a catalog that cannot be read.
/// Nothing for a set that has no whole catalog (differential, log) or one this reader does not
/// know (`Err` only for I/O).
pub(crate) fn table_problems(devices: &[MtfDevice], position: u32) -> Result<Vec<Problem>> {
    match Database::open(devices, Some(position)) {
        Ok(db) => match db.check_tables() {
            Ok(p) => Ok(p),
            Err(e) if e.is_media_damage() => Ok(vec![Problem::from_error(
                &Location::device(db.device.clone()).set(position),
                &e,
            )]),
            Err(e) => Err(e),
        },
        Err(e) if e.is_media_damage() => Ok(vec![Problem::from_error(
            &Location::device(devices.first().map(|d| d.name()).unwrap_or_default()).set(position),
            &e,
        )]),
        Err(Error::Unsupported { .. } | Error::UnsupportedVersion { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Entry points for the fuzz targets (not a stable API): each parser over arbitrary bytes.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// One page: its header, slots, records, PFS byte, torn bits and checks.
    pub fn page(bytes: &[u8]) {
        let mut p = bytes.to_vec();
        p.resize(page::PAGE, 0);
        if let Some(h) = Header::parse(&p) {
            let _ = h.alloc_unit();
            for slot in 0..h.slots.min(600) {
                if let Some(off) = slot_offset(&p, h.slots, slot) {
                    let rec = &p[off..page::records_end(h.slots)];
                    let _ = record::is_row(rec);
                    let _ = record::Record::parse(rec);
                }
            }
            let _ = page::pfs_byte(&p, h.id.page);
        }
        let _ = page::torn_bits_hold(&p);
        let _ = page::untear(&mut p.clone());
        let _ = crate::pages::check_page(&p, 0, 0, &[]);
    }

    /// One record, every accessor, and every type decoded from its columns.
    pub fn record(bytes: &[u8]) {
        let Ok(r) = record::Record::parse(bytes) else {
            return;
        };
        for n in 0..=r.columns.min(64) + 1 {
            let _ = r.is_null(n);
            let _ = r.var(n);
            let _ = r.fixed(n, 8);
        }
        let ty = |xtype: u8, length: i32, precision: u8, scale: u8| types::ColType {
            xtype,
            length,
            precision,
            scale,
            collation: 872468488,
        };
        let all = [
            ty(48, 1, 3, 0),
            ty(52, 2, 5, 0),
            ty(56, 4, 10, 0),
            ty(127, 8, 19, 0),
            ty(104, 1, 1, 0),
            ty(59, 4, 24, 0),
            ty(62, 8, 53, 0),
            ty(60, 8, 19, 4),
            ty(122, 4, 10, 4),
            ty(106, 9, 18, 4),
            ty(108, 17, 38, 10),
            ty(61, 8, 23, 3),
            ty(58, 4, 16, 0),
            ty(40, 3, 10, 0),
            ty(41, 5, 16, 7),
            ty(42, 8, 27, 7),
            ty(43, 10, 34, 7),
            ty(36, 16, 0, 0),
            ty(167, 50, 0, 0),
            ty(231, 100, 0, 0),
            ty(165, -1, 0, 0),
            ty(175, 10, 0, 0),
        ];
        for t in &all {
            let _ = types::decode(t, bytes);
            let _ = t.name();
            if let Some(v) = r.var(1) {
                let _ = types::decode(t, v.bytes).map(|v| (v.text(), v.json()));
            }
        }
    }

    /// A data stream (whole pages): placed, its catalog read, every table listed and read.
    pub fn catalog(bytes: &[u8]) {
        let store = store::PageStore::from_bytes(bytes);
        let Ok(catalog) = catalog::read(&store) else {
            return;
        };
        let db = Database {
            store,
            catalog,
            position: 1,
            device: "fuzz".into(),
            problems: Vec::new(),
        };
        let _ = db.tables();
        let _ = db.check_tables();
        for t in db.catalog.tables.iter().take(16) {
            let name = format!("{}.{}", t.schema, t.name);
            let _ = db.write_rows(&name, RowFormat::Jsonl, &mut std::io::sink(), "sink");
        }
    }
}
