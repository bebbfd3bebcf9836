//! `bak-header --tables`: the user tables of a SQL Server full backup, read from its pages.

use std::io::Write;

use bak_cli::{render, Format, EXIT_DAMAGED, EXIT_OK};
use bak_mtf::{Database, MtfDevice, TableInfo};
use serde::Serialize;

/// The columns of the table view.
const TABLE_COLUMNS: &[&str] = &[
    "Schema",
    "Table",
    "Rows",
    "DataPages",
    "Columns",
    "Unsupported",
];

/// A table as the table and CSV views show it: the columns in one line.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Flat<'a> {
    position: u32,
    schema: &'a str,
    table: &'a str,
    rows: i64,
    data_pages: u64,
    records_on_pages: u64,
    columns: String,
    unsupported: Option<&'a str>,
    partial: bool,
}

fn flat(t: &TableInfo) -> Flat<'_> {
    Flat {
        position: t.position,
        schema: &t.schema,
        table: &t.table,
        rows: t.rows,
        data_pages: t.data_pages,
        records_on_pages: t.records_on_pages,
        columns: t.columns_text(),
        unsupported: t.unsupported.as_deref(),
        partial: t.partial,
    }
}

/// List the tables of set `file` (the first when `None`); exit 1 when the set's bytes showed
/// problems or only some families were given.
pub fn list(
    out: &mut dyn Write,
    devs: &[MtfDevice],
    file: Option<u32>,
    format: Format,
) -> anyhow::Result<u8> {
    let db = Database::open(devs, file)?;
    let rows = db.tables()?;
    match format {
        Format::Json => render(out, &rows, &[], format)?,
        _ => {
            let flat: Vec<Flat<'_>> = rows.iter().map(flat).collect();
            let cols: &[&str] = if format == Format::Table {
                TABLE_COLUMNS
            } else {
                &[]
            };
            render(out, &flat, cols, format)?;
        }
    }
    out.flush()?;
    for p in db.problems() {
        bak_cli::say!("bak-header: {p}");
    }
    for n in db.notes() {
        bak_cli::say!("bak-header: note: {n}");
    }
    if let Some(p) = db.partial() {
        bak_cli::say!("bak-header: partial: {p}; listed is what the given families' pages hold");
    }
    Ok(if db.problems().is_empty() && db.partial().is_none() {
        EXIT_OK
    } else {
        EXIT_DAMAGED
    })
}
