//! `bak-read --table`: the rows of one table of a SQL Server full backup, as CSV or JSON lines.

use bak_cli::{Output, EXIT_DAMAGED, EXIT_OK};
use bak_mtf::{Database, MtfDevice, RowFormat};

/// Write the rows of `name` of set `file`; exit 1 when the set's bytes showed problems or only
/// some families were given (the rows written are then what the given pages hold).
pub fn rows(
    devs: &[MtfDevice],
    file: u32,
    name: &str,
    format: &str,
    mut output: Output,
    quiet: bool,
) -> anyhow::Result<u8> {
    let db = Database::open(devs, Some(file))?;
    let format = if format == "jsonl" {
        RowFormat::Jsonl
    } else {
        RowFormat::Csv
    };
    let out_name = output.name().to_string();
    let started = std::time::Instant::now();
    let done = db.write_rows(name, format, output.writer(), &out_name)?;
    output.finish()?;
    for p in db.problems() {
        bak_cli::say!("bak-read: {p}");
    }
    for n in db.notes() {
        bak_cli::say!("bak-read: note: {n}");
    }
    if let Some(p) = db.partial() {
        bak_cli::say!(
            "bak-read: partial: {p}; written are the rows the given families' pages hold"
        );
    }
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        bak_cli::say!(
            "bak-read: {} rows from {} data pages in {secs:.2} s ({:.1} MB/s of pages)",
            done.rows,
            done.pages,
            bak_cli::mb_per_s(done.pages * 8192, secs)
        );
    }
    Ok(if db.problems().is_empty() && db.partial().is_none() {
        EXIT_OK
    } else {
        EXIT_DAMAGED
    })
}
