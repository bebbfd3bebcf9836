//! bak-header: what backup media hold (RESTORE LABELONLY, HEADERONLY, FILELISTONLY), for bak
//! media and SQL Server backups alike, of any number of media sets at once; and the restore
//! sequence of SQL Server backups (`--chain`).

use std::io::Write;
use std::path::PathBuf;

use bak_cli::many::{self, MediaSet};
use bak_cli::{render, Format, EXIT_DAMAGED, EXIT_OK};
use bak_core::list;
use bak_core::report::{FileInfo, LabelInfo, SetInfo};
use clap::Parser;

mod tables;

const EXAMPLES: &str = "Examples:
  bak-header /mnt/a/db.bak /mnt/b/db.bak          # one row per backup set (HEADERONLY)
  bak-header /backups/*.bak                       # every set of every file, by media set
  bak-header --chain /backups/*.bak /backups/*.trn  # the restore sequence of each database
  bak-header --labelonly /mnt/a/db.bak            # the media label of each device
  bak-header --filelist AdventureWorks.bak        # database files of a SQL Server backup
  bak-header --tables --json pubs.bak             # user tables, row counts, columns
  bak-header --json nightly.bak | jq .BackupSize  # for CI: one JSON object per line

Devices may belong to different media sets: each row names its device and media set. A device
that cannot be read is reported and the others listed. On files only the headers, trailing
records and back pointers are read; pipes are streamed. JSON keys are SQL Server's column
names; docs/OUTPUT.md lists them.
Devices may be object-store URLs (s3://BUCKET/KEY, az://CONTAINER/PATH, gs://BUCKET/KEY), with
endpoint and credentials from the environment (bak-write --help names the variables); a family
on volumes is given by its first volume (NAME; NAME.v2, ... are found from it).

Exit status: 0 good; 1 media damaged or incomplete, or (--chain) a restore sequence broken;
2 usage or I/O error (a device that cannot be read), or media this build cannot read
(unsupported); 130 interrupted (SIGINT or SIGTERM).";

/// Print what backup media hold.
#[derive(Parser, Debug)]
#[command(name = "bak-header", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices (bak media or SQL Server .bak files), of one media set or several.
    #[arg(required_unless_present = "generate", value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Print the media label of each device (LABELONLY).
    #[arg(long, conflicts_with = "filelist")]
    labelonly: bool,
    /// Print the database files of each backup set (FILELISTONLY; SQL Server backups).
    #[arg(long)]
    filelist: bool,
    /// Print the user tables of a full database backup (SQL Server backups): schema, name, row
    /// count, data pages and columns, read from the backup's pages.
    #[arg(long, conflicts_with_all = ["labelonly", "filelist"])]
    tables: bool,
    /// Only this backup set (HEADERONLY and FILELISTONLY; the label is the media's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "labelonly")]
    file: Option<u32>,
    /// Put each database's full, differential and log backups (SQL Server backups, across all
    /// the devices given) in their restore sequence by LSN, and say where it breaks (exit 1).
    #[arg(long, conflicts_with_all = ["labelonly", "filelist", "file"])]
    chain: bool,
    /// One JSON object per line, every key.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header line.
    #[arg(long)]
    csv: bool,
    /// Every column in the table, not only the key ones.
    #[arg(long)]
    all_columns: bool,
    /// Print a man page or a shell completion script for this tool, and exit.
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    generate: Option<bak_cli::generate::Kind>,
}

const LABEL_COLUMNS: &[&str] = &[
    "Device",
    "MediaFormat",
    "MediaName",
    "MediaSetId",
    "FamilyCount",
    "FamilySequenceNumber",
    "BackupSetCount",
    "MediaDate",
    "SoftwareName",
];
const SET_COLUMNS: &[&str] = &[
    "Position",
    "BackupName",
    "BackupTypeDescription",
    "DatabaseName",
    "BackupStartDate",
    "Compression",
    "BackupSize",
    "CompressedBackupSize",
    "FamilyCount",
    "IsComplete",
];
/// Key columns of SQL Server sets, after [`SET_COLUMNS`].
const SQL_SET_COLUMNS: &[&str] = &["FirstLSN", "LastLSN"];
const FILE_COLUMNS: &[&str] = &[
    "Position",
    "LogicalName",
    "PhysicalName",
    "Type",
    "FileGroupName",
    "Size",
];
const CHAIN_COLUMNS: &[&str] = &[
    "DatabaseName",
    "Step",
    "Role",
    "Device",
    "Position",
    "BackupTypeDescription",
    "FirstLSN",
    "LastLSN",
    "Note",
];

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-header", true, || run(args))
}

/// What the run has come to so far: the worst exit code, and what to say on stderr once the
/// rows are out.
struct Outcome {
    code: u8,
    after: Vec<String>,
}

impl Outcome {
    /// Say an error now (a device or a media set that cannot be listed) and go on.
    fn fail(&mut self, e: &anyhow::Error) {
        bak_cli::say!("bak-header: {}", bak_cli::error_text(e));
        self.code = self.code.max(bak_cli::exit_code_of(e));
    }

    /// Say `what` after the rows, and exit 1.
    fn damaged(&mut self, what: String) {
        self.after.push(what);
        self.code = self.code.max(EXIT_DAMAGED);
    }
}

fn run(args: Args) -> anyhow::Result<u8> {
    // First, so that a signal ends the tool in every state, opening a FIFO included.
    let _stop = bak_cli::stop_on_signals()?;
    bak_cli::Inputs::devices(&args.devices).check_stdout()?;
    let format = if args.json {
        Format::Json
    } else if args.csv {
        Format::Csv
    } else {
        Format::Table
    };
    let mut o = Outcome {
        code: EXIT_OK,
        after: Vec::new(),
    };
    let mut read = Vec::new();
    for r in many::open_each(&args.devices)? {
        match r {
            Ok(d) => read.push(d),
            Err(e) => o.fail(&e),
        }
    }
    let sets = many::group(read);
    for set in &sets {
        if let MediaSet::Mtf(devs) = set {
            for d in devs {
                for n in d.notes() {
                    bak_cli::say!("bak-header: {}: note: {n}", d.name());
                }
            }
        }
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let table = format == Format::Table && !args.all_columns;
    if args.tables {
        let mut mtf = sets.iter().filter_map(|s| match s {
            MediaSet::Mtf(devs) => Some(devs),
            MediaSet::Bak(_) => None,
        });
        if sets.iter().any(|s| matches!(s, MediaSet::Bak(_))) {
            anyhow::bail!(
                "--tables is for SQL Server backups; bak media hold a stream, not a database"
            );
        }
        if sets.len() > 1 {
            anyhow::bail!(
                "--tables lists one media set at a time; the devices given hold {}",
                sets.len()
            );
        }
        return match mtf.next() {
            Some(devs) => {
                let code = tables::list(&mut out, devs, args.file, format)?;
                Ok(code.max(o.code))
            }
            None => Ok(o.code),
        };
    }
    if args.labelonly {
        let rows = labels(&sets);
        if !rows.is_empty() || o.code == EXIT_OK {
            let cols: &[&str] = if table { LABEL_COLUMNS } else { &[] };
            render(&mut out, &rows, cols, format)?;
            if format == Format::Table {
                label_footers(&mut out, &sets)?;
            }
        }
    } else if args.filelist {
        let rows = files(&sets, args.file, &mut o);
        if !rows.is_empty() || o.code == EXIT_OK {
            let mut cols: Vec<&str> = Vec::new();
            if table {
                let origin = rows.iter().any(|r| r.origin.is_some());
                cols = with_origin(FILE_COLUMNS, &[], origin);
            }
            render(&mut out, &rows, &cols, format)?;
        }
    } else if args.chain {
        let rows = sets_of(&sets, None, true, &mut o);
        let chains = bak_mtf::chain::chains(&rows);
        let lines: Vec<&bak_mtf::chain::ChainRow> =
            chains.iter().flat_map(|c| c.rows.iter()).collect();
        if !lines.is_empty() || o.code == EXIT_OK {
            let cols: &[&str] = if table { CHAIN_COLUMNS } else { &[] };
            render(&mut out, &lines, cols, format)?;
        }
        for c in chains.iter().filter(|c| !c.is_whole()) {
            let db = c.database_name.as_deref().unwrap_or("(unnamed database)");
            o.damaged(format!(
                "bak-header: the restore sequence of {db} breaks: {}",
                c.breaks.join("; ")
            ));
        }
    } else {
        let rows = sets_of(&sets, args.file, false, &mut o);
        if !rows.is_empty() || o.code == EXIT_OK {
            let mut cols: Vec<&str> = Vec::new();
            if table {
                let origin = rows.iter().any(|r| r.origin.is_some());
                let sql = if rows.iter().any(|r| r.sql.is_some()) {
                    SQL_SET_COLUMNS
                } else {
                    &[]
                };
                cols = with_origin(SET_COLUMNS, sql, origin);
            }
            render(&mut out, &rows, &cols, format)?;
        }
    }
    // Another media concatenated onto bak media, or other bytes: listed above is only what
    // comes before them.
    for set in &sets {
        if let MediaSet::Bak(cats) = set {
            for p in cats.iter().filter_map(|c| c.past_end.as_ref()) {
                o.damaged(format!("bak-header: {p}"));
            }
        }
    }
    out.flush()?;
    for a in &o.after {
        bak_cli::say!("{a}");
    }
    Ok(o.code)
}

/// The table's columns: `key` and `extra`, with Device first and MediaSetId last when the rows
/// say where they were read.
fn with_origin<'a>(key: &[&'a str], extra: &[&'a str], origin: bool) -> Vec<&'a str> {
    let mut v = Vec::new();
    if origin {
        v.push("Device");
    }
    v.extend_from_slice(key);
    v.extend_from_slice(extra);
    if origin {
        v.push("MediaSetId");
    }
    v
}

/// An error about one media set: named by its devices when several sets are listed and it
/// does not name one itself.
fn about(e: bak_core::Error, set: &MediaSet, several: bool) -> anyhow::Error {
    let names = set.names();
    let text = e.to_string();
    let e = anyhow::Error::new(e);
    if several && !names.split(", ").any(|n| text.contains(n)) {
        e.context(names)
    } else {
        e
    }
}

/// LABELONLY: one row per device.
fn labels(sets: &[MediaSet]) -> Vec<LabelInfo> {
    let mut rows = Vec::new();
    for set in sets {
        match set {
            MediaSet::Bak(cats) => rows.extend(cats.iter().map(list::label_info)),
            MediaSet::Mtf(devs) => rows.extend(devs.iter().map(|d| d.label())),
        }
    }
    rows
}

/// What a table of labels says of each bak media set below it.
fn label_footers(out: &mut dyn Write, sets: &[MediaSet]) -> std::io::Result<()> {
    let several = sets.len() > 1;
    for set in sets {
        let MediaSet::Bak(cats) = set else { continue };
        let Some(c) = cats.first() else { continue };
        let n = cats.len();
        let count = c.media.family_count;
        let fams: Vec<String> = (1..=count).map(|f| f.to_string()).collect();
        let which = if several {
            format!("The media set {}", set.id().unwrap_or_default())
        } else {
            "The media set".to_string()
        };
        writeln!(
            out,
            "{which} has {count} famil{} (numbers {}); {n} device{} given.",
            if count == 1 { "y" } else { "ies" },
            fams.join(", "),
            if n == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

/// FILELISTONLY: the files of set `file` (the first set without it) of each SQL Server
/// backup; bak media hold one stream per set and have no rows.
fn files(sets: &[MediaSet], file: Option<u32>, o: &mut Outcome) -> Vec<FileInfo> {
    let several = sets.len() > 1;
    let mut rows = Vec::new();
    for set in sets {
        let MediaSet::Mtf(devs) = set else { continue };
        match bak_mtf::file_list(devs, file) {
            Ok(mut r) => {
                for f in &mut r {
                    f.origin = Some(set.devices_holding(Some(f.position)));
                }
                rows.extend(r);
            }
            Err(e) => o.fail(&about(e, set, several)),
        }
    }
    rows
}

/// HEADERONLY: every set of every media set (or set `file` of each). Rows of SQL Server
/// backups say where they were read; so do those of bak media when several media sets are
/// listed. With `sql_only` (for --chain) bak media are left out, saying so.
fn sets_of(sets: &[MediaSet], file: Option<u32>, sql_only: bool, o: &mut Outcome) -> Vec<SetInfo> {
    let several = sets.len() > 1;
    let mut rows = Vec::new();
    for set in sets {
        match set {
            MediaSet::Bak(_) if sql_only => bak_cli::say!(
                "bak-header: {}: bak media, not SQL Server backups: not in any restore sequence",
                set.names()
            ),
            MediaSet::Bak(cats) => {
                check_set_given(cats);
                match only_set(list::set_infos(cats), file) {
                    Ok(mut r) => {
                        if several {
                            for s in &mut r {
                                s.origin = Some(set.devices_holding(Some(s.position)));
                            }
                        }
                        rows.extend(r);
                    }
                    Err(e) => {
                        o.fail(&about(e, set, several));
                        continue;
                    }
                }
                for d in cats.iter().filter_map(|c| c.damage.as_ref()) {
                    o.damaged(format!(
                        "bak-header: earlier backup sets cannot be listed: {d}"
                    ));
                }
            }
            MediaSet::Mtf(devs) => {
                match bak_mtf::header_only(devs).and_then(|r| only_set(r, file)) {
                    Ok(mut r) => {
                        for s in &mut r {
                            s.origin = Some(set.devices_holding(Some(s.position)));
                        }
                        rows.extend(r);
                    }
                    Err(e) => o.fail(&about(e, set, several)),
                }
            }
        }
    }
    rows
}

fn check_set_given(cats: &[list::FamilyCatalog]) {
    if let Some(c) = cats.first() {
        if (c.media.family_count as usize) != cats.len() {
            bak_cli::say!(
                "bak-header: note: {} of {} families given; IsComplete is false until every family is given",
                cats.len(),
                c.media.family_count
            );
        }
    }
}

/// The rows of set `file` alone (all rows without it); a set that is not there is an error
/// saying how many the media hold.
fn only_set(rows: Vec<SetInfo>, file: Option<u32>) -> bak_core::Result<Vec<SetInfo>> {
    let Some(p) = file else {
        return Ok(rows);
    };
    if !rows.iter().any(|r| r.position == p) {
        let count = rows.iter().map(|r| r.position).max().unwrap_or(0);
        return Err(bak_core::Error::NoSuchSet { position: p, count });
    }
    Ok(rows.into_iter().filter(|r| r.position == p).collect())
}
