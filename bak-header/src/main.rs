//! bak-header: what backup media hold (RESTORE LABELONLY, HEADERONLY, FILELISTONLY), for bak
//! media and SQL Server backups alike.

use std::io::Write;
use std::path::PathBuf;

use bak_cli::{open_media, render, Format, Media, EXIT_OK};
use bak_core::list;
use bak_core::report::{FileInfo, LabelInfo, SetInfo};
use clap::Parser;

const EXAMPLES: &str = "Examples:
  bak-header /mnt/a/db.bak /mnt/b/db.bak          # one row per backup set (HEADERONLY)
  bak-header --labelonly /mnt/a/db.bak            # the media label of each device
  bak-header --filelist AdventureWorks.bak        # database files of a SQL Server backup
  bak-header --json nightly.bak | jq .BackupSize  # for CI: one JSON object per line

On files only the headers, trailing records and back pointers are read; pipes are streamed.
Devices may be object-store URLs (s3://BUCKET/KEY, az://CONTAINER/PATH, gs://BUCKET/KEY), with
endpoint and credentials from the environment (bak-write --help names the variables); a family
on volumes is given by its first volume (NAME; NAME.v2, ... are found from it).
JSON keys are SQL Server's column names; docs/OUTPUT.md lists them.

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error; 130 interrupted
(SIGINT or SIGTERM).";

/// Print what backup media hold.
#[derive(Parser, Debug)]
#[command(name = "bak-header", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices (bak media or SQL Server .bak files).
    #[arg(required_unless_present = "generate", value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Print the media label of each device (LABELONLY).
    #[arg(long, conflicts_with = "filelist")]
    labelonly: bool,
    /// Print the database files of each backup set (FILELISTONLY; SQL Server backups).
    #[arg(long)]
    filelist: bool,
    /// Only this backup set (HEADERONLY and FILELISTONLY; the label is the media's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "labelonly")]
    file: Option<u32>,
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
const FILE_COLUMNS: &[&str] = &[
    "Position",
    "LogicalName",
    "PhysicalName",
    "Type",
    "FileGroupName",
    "Size",
];

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-header", true, || run(args))
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
    let cols = |key: &'static [&'static str]| -> &'static [&'static str] {
        if args.all_columns || format != Format::Table {
            &[]
        } else {
            key
        }
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    match open_media(&args.devices)? {
        Media::Bak(devs) => {
            let n = devs.len();
            let cats = list::catalog_all(devs)?;
            if args.labelonly {
                let rows: Vec<LabelInfo> = cats.iter().map(list::label_info).collect();
                render(&mut out, &rows, cols(LABEL_COLUMNS), format)?;
                if format == Format::Table {
                    if let Some(c) = cats.first() {
                        let fams: Vec<String> =
                            (1..=c.media.family_count).map(|f| f.to_string()).collect();
                        writeln!(
                            out,
                            "The media set has {} famil{} (numbers {}); {} device{} given.",
                            c.media.family_count,
                            if c.media.family_count == 1 {
                                "y"
                            } else {
                                "ies"
                            },
                            fams.join(", "),
                            n,
                            if n == 1 { "" } else { "s" }
                        )?;
                    }
                }
            } else if args.filelist {
                // A bak backup set holds one stream; it has no database file list.
                let rows: Vec<FileInfo> = Vec::new();
                render(&mut out, &rows, cols(FILE_COLUMNS), format)?;
            } else {
                check_set_given(&cats);
                let rows = only_set(list::set_infos(&cats), args.file)?;
                render(&mut out, &rows, cols(SET_COLUMNS), format)?;
                let damaged: Vec<&String> = cats.iter().filter_map(|c| c.damage.as_ref()).collect();
                if !damaged.is_empty() {
                    out.flush()?;
                    for d in damaged {
                        bak_cli::say!("bak-header: earlier backup sets cannot be listed: {d}");
                    }
                    say_past_end(&cats);
                    return Ok(bak_cli::EXIT_DAMAGED);
                }
            }
            // Another media concatenated onto these, or other bytes: listed above is only what
            // comes before them.
            if cats.iter().any(|c| c.past_end.is_some()) {
                out.flush()?;
                say_past_end(&cats);
                return Ok(bak_cli::EXIT_DAMAGED);
            }
        }
        Media::Mtf(devs) => {
            if args.labelonly {
                let rows: Vec<LabelInfo> = devs.iter().map(|d| d.label()).collect();
                render(&mut out, &rows, cols(LABEL_COLUMNS), format)?;
            } else if args.filelist {
                let rows = bak_mtf::file_list(&devs, args.file)?;
                render(&mut out, &rows, cols(FILE_COLUMNS), format)?;
            } else {
                let rows = only_set(bak_mtf::header_only(&devs)?, args.file)?;
                render(&mut out, &rows, cols(SET_COLUMNS), format)?;
            }
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}

fn say_past_end(cats: &[list::FamilyCatalog]) {
    for p in cats.iter().filter_map(|c| c.past_end.as_ref()) {
        bak_cli::say!("bak-header: {p}");
    }
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
fn only_set(rows: Vec<SetInfo>, file: Option<u32>) -> anyhow::Result<Vec<SetInfo>> {
    let Some(p) = file else {
        return Ok(rows);
    };
    if !rows.iter().any(|r| r.position == p) {
        let count = rows.iter().map(|r| r.position).max().unwrap_or(0);
        return Err(bak_core::Error::NoSuchSet { position: p, count }.into());
    }
    Ok(rows.into_iter().filter(|r| r.position == p).collect())
}
