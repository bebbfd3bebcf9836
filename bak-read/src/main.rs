//! bak-read: turn a media set back into the original bytes on standard output.

use std::io::Write as _;
use std::path::PathBuf;

use bak_cli::{mb_per_s, Progress, EXIT_OK};
use bak_cli::{open_media, Inputs, Media, Output, OutputOptions};
use bak_core::{restore, RestoreOptions};
use clap::Parser;

mod damage;
mod files;
mod table;

const EXAMPLES: &str = "Examples:
  bak-read /mnt/c/db.bak /mnt/a/db.bak /mnt/b/db.bak | psql mydb_copy
  bak-read --file 2 nightly.bak > set2.tar
  ssh host 'cat etc.bak' | bak-read - | tar t
  bak-read --table dbo.authors pubs.bak > authors.csv     # a table's rows (SQL Server)
  bak-read --table 'dbo.Order Details' --format jsonl nw.bak
  bak-read --restore-files /srv/restored --move pubs_log=/dev/null pubs.bak
  bak-read --identity ~/.config/bak/key.txt etc.bak | tar t      # an encrypted set

An encrypted set opens with --identity (an age identity file) or --passphrase-file; without
the key nothing is written and the exit status is 2, with the keys that would open the set.
Every block is authenticated before it is written.

Devices may be given in any order; each is recognised by its media header.
Devices may be object-store URLs (s3://BUCKET/KEY, az://CONTAINER/PATH, gs://BUCKET/KEY), with
endpoint and credentials from the environment (bak-write --help names the variables); a family
on volumes is given by its first volume (NAME; NAME.v2, ... are found from it). A URL
device keeps 4 ranged GETs of 4 MiB in flight (16 MiB of memory).

An output file is written under a temporary name beside it and renamed when the restore is
whole; on failure or a signal it is removed (unless --keep-partial). An existing file is
replaced only with --force, and never when it is one of the devices.

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error, or a set that uses
what this build cannot read (unsupported: an encryption, a compression algorithm); 130
interrupted (SIGINT or SIGTERM).";

/// Restore one backup set from its media set to standard output.
#[derive(Parser, Debug)]
#[command(name = "bak-read", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices: every family of the media set, in any order (- is standard input).
    #[arg(required_unless_present = "generate", value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Which backup set to restore, by position (RESTORE's FILE).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    file: u32,
    /// Write to this file instead of standard output (refused when it exists, unless --force).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace the --output file (or, with --restore-files, the data files) when it exists.
    #[arg(short, long)]
    force: bool,
    /// Keep what was written to the --output file when the restore fails or is interrupted
    /// (it is removed otherwise).
    #[arg(long, requires = "output")]
    keep_partial: bool,
    /// Decompression threads (default: the number of cores; 1 to 256).
    #[arg(short = 'T', long, value_name = "N")]
    threads: Option<usize>,
    /// Buffers in the pool (default: devices x 4 + 2 x threads + 2; 2 to 1024).
    #[arg(long, value_name = "N")]
    buffer_count: Option<usize>,
    #[command(flatten)]
    keys: bak_cli::KeyArgs,
    #[command(flatten)]
    progress: bak_cli::ProgressArgs,
    /// No bar, no --stats lines and no summary (--progress json still prints).
    #[arg(short, long)]
    quiet: bool,
    /// SQL Server backups: which stream to write, the database pages (data) or the log.
    #[arg(long, value_name = "STREAM", default_value = "data", value_parser = ["data", "log"])]
    stream: String,
    /// SQL Server backups: list the streams of the set with the offset of each one's data (past
    /// its 22-byte header) and its length, write nothing else.
    #[arg(long)]
    list_streams: bool,
    /// SQL Server backups: write the (decompressed) Microsoft Tape Format stream itself; for a
    /// compressed backup every chunk is checked, and the soft filemark tables are made to point
    /// into the stream written, so it reads as plain MTF.
    #[arg(long)]
    mtf: bool,
    /// Print a man page or a shell completion script for this tool, and exit.
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    generate: Option<bak_cli::generate::Kind>,
    /// Go on past damage (RESTORE's CONTINUE_AFTER_ERROR). bak media: every block that can
    /// be read is written, each lost block (a missing family, a damaged or cut block) as
    /// zeros at its place, so the output keeps the set's length and every good byte its
    /// offset. SQL Server backups: damaged pages are written as they are (a chunk that does
    /// not decode as zeros). Every problem is named on standard error and the exit status is
    /// 1. Without it the restore stops at the first problem, before any byte of a damaged
    /// block or page is written.
    #[arg(long)]
    continue_after_error: bool,
    /// bak media, with --continue-after-error: write the byte ranges of the output that were
    /// restored (+) and lost (-) to FILE, in GNU ddrescue's mapfile format (ddrescuelog reads
    /// it). Refused when FILE exists, unless --force.
    #[arg(long, value_name = "FILE", requires = "continue_after_error")]
    damage_map: Option<PathBuf>,
    /// bak media, with --continue-after-error and -o FILE: print one JSON object per lost
    /// block on standard output (docs/OUTPUT.md).
    #[arg(long, requires = "continue_after_error")]
    json: bool,
    /// SQL Server full backups: write the rows of this table (SCHEMA.NAME, or NAME when one
    /// schema has it), decoded from the backup's pages, with a header line of column names in
    /// CSV.
    #[arg(long, value_name = "SCHEMA.NAME", conflicts_with_all = ["mtf", "list_streams", "continue_after_error"])]
    table: Option<String>,
    /// How --table writes rows: csv (NULL an empty field) or jsonl (one JSON object a line).
    #[arg(long, value_name = "FORMAT", default_value = "csv", value_parser = ["csv", "jsonl"], requires = "table")]
    format: String,
    /// SQL Server full backups: write every data file of the set into DIR, named by the base
    /// name of its PhysicalName, at its full size, each page at page id x 8192 (the data as of
    /// the backup, without the log applied). An existing file is replaced only with --force.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "table", "mtf", "list_streams", "continue_after_error"])]
    restore_files: Option<PathBuf>,
    /// With --restore-files: write data file LOGICAL to PATH instead (repeatable).
    #[arg(long = "move", value_name = "LOGICAL=PATH", requires = "restore_files", value_parser = files::parse_move)]
    moves: Vec<(String, PathBuf)>,
}

/// SQL Server backups: the data or log stream, the stream list, or the MTF stream.
fn run_mtf(args: &Args, devs: &[bak_mtf::MtfDevice], output: Option<Output>) -> anyhow::Result<u8> {
    use bak_mtf as mtf;
    let Some(mut output) = output else {
        let rows = mtf::list_streams(devs, args.file)?;
        let mut out = std::io::stdout().lock();
        bak_cli::render(&mut out, &rows, &[], bak_cli::Format::Table)?;
        return Ok(EXIT_OK);
    };
    if let Some(t) = &args.table {
        return table::rows(devs, args.file, t, &args.format, output, args.quiet);
    }
    let name = output.name().to_string();
    let out = output.writer();
    let started = std::time::Instant::now();
    let opts = mtf::ReadOptions {
        continue_after_error: args.continue_after_error,
    };
    let r = if args.mtf {
        anyhow::ensure!(
            devs.len() == 1,
            "--mtf writes the MTF stream of one file; give one device"
        );
        mtf::write_mtf_with(&devs[0], &opts, out, &name)
    } else {
        let kind = if args.stream == "log" {
            mtf::StreamKind::Log
        } else {
            mtf::StreamKind::Data
        };
        mtf::read_stream_with(devs, args.file, kind, &opts, out, &name)
    }?;
    let n = r.bytes;
    for p in &r.problems {
        bak_cli::say!("bak-read: {p}");
    }
    // A salvage keeps what it wrote: that is its point.
    output.finish()?;
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64();
        bak_cli::say!(
            "RESTORE processed {n} bytes in {secs:.2} s ({:.1} MB/s)",
            mb_per_s(n, secs)
        );
    }
    if !r.problems.is_empty() {
        bak_cli::say!(
            "bak-read: {} problem{} passed over (--continue-after-error): {name} holds damaged bytes",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        );
        return Ok(bak_cli::EXIT_DAMAGED);
    }
    Ok(EXIT_OK)
}

/// bak media with --continue-after-error: salvage, then the map, the JSON and the notes.
fn run_salvage(
    args: &Args,
    devs: Vec<bak_core::Opened>,
    opts: &RestoreOptions,
    mut output: Output,
    map: Option<Output>,
    stop: &bak_core::Stop,
) -> anyhow::Result<u8> {
    let progress = Progress::new("RESTORE", None, &args.progress, args.quiet);
    let out_name = output.name().to_string();
    let r = bak_core::salvage(devs, opts, output.writer(), &out_name, &progress, stop);
    progress.finish();
    let s = r?;
    // A salvage keeps what it wrote: that is its point.
    output.finish()?;
    let map_name = map.as_ref().map(|m| m.name().to_string());
    if let Some(mut m) = map {
        let name = m.name().to_string();
        damage::write_map(m.writer(), &s.lost, s.original_bytes)
            .map_err(|e| bak_core::Error::io(&name, "write", e))?;
        m.finish()?;
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        damage::json(&mut out, &s.lost)?;
        out.flush()?;
    }
    let to_stdout = out_name == "stdout";
    damage::notes(&s, &out_name, map_name.as_deref(), to_stdout);
    if !args.quiet {
        bak_cli::say!(
            "RESTORE processed {} bytes in {} blocks from {} of {} famil{} in {:.2} s ({:.1} MB/s)",
            s.original_bytes,
            s.blocks,
            s.families,
            s.family_count,
            if s.family_count == 1 { "y" } else { "ies" },
            s.seconds,
            mb_per_s(s.original_bytes, s.seconds)
        );
    }
    Ok(if s.exact() {
        EXIT_OK
    } else {
        bak_cli::EXIT_DAMAGED
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-read", true, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    use bak_core::limits::*;
    // First, so that a signal ends the tool in every state, opening a FIFO included.
    let stop = bak_cli::stop_on_signals()?;
    // Restored bytes are binary: refuse a terminal, before any media are opened.
    {
        use std::io::IsTerminal;
        let to_stdout = args.output.as_ref().is_none_or(|p| p.as_os_str() == "-");
        anyhow::ensure!(
            args.list_streams || args.table.is_some() || args.restore_files.is_some() || !to_stdout || !std::io::stdout().is_terminal(),
            "refusing to write the restored bytes to a terminal; redirect standard output or give -o FILE"
        );
    }
    let mut opts = RestoreOptions {
        position: args.file,
        keys: args.keys.keys()?,
        ..Default::default()
    };
    if let Some(t) = args.threads {
        check_count("--threads", t, 1, MAX_THREADS)?;
        opts.threads = t;
    }
    if let Some(b) = args.buffer_count {
        check_count("--buffer-count", b, 2, MAX_BUFFERS)?;
        opts.buffer_count = b;
    }
    // The output is refused now if it is one of the devices or exists without --force: before
    // any device is read, and so before anything could be lost.
    let inputs = Inputs::devices(&args.devices);
    if let Some(dir) = &args.restore_files {
        let media = open_media(&args.devices)?;
        bak_cli::announce("bak-read", &media, args.quiet);
        let Media::Mtf(devs) = media else {
            anyhow::bail!("--restore-files is for SQL Server backups; bak media hold a stream, not database files");
        };
        return files::restore(
            &devs,
            args.file,
            dir,
            &args.moves,
            args.force,
            &inputs,
            args.quiet,
        );
    }
    let to_stdout = args.output.as_ref().is_none_or(|p| p.as_os_str() == "-");
    anyhow::ensure!(
        !args.json || !to_stdout,
        "--json prints the lost blocks on standard output: give -o FILE for the restored bytes"
    );
    // The damage map is refused now too, if it exists without --force or is the output.
    let map = match &args.damage_map {
        Some(m) => {
            anyhow::ensure!(
                args.output.as_deref() != Some(m.as_path()),
                "--damage-map and -o name the same file ({})",
                m.display()
            );
            Some(Output::create(
                Some(m),
                &inputs,
                OutputOptions {
                    force: args.force,
                    keep_partial: false,
                },
            )?)
        }
        None => None,
    };
    let output = if args.list_streams {
        inputs.check_stdout()?;
        None
    } else {
        Some(Output::create(
            args.output.as_deref(),
            &inputs,
            OutputOptions {
                force: args.force,
                // A salvage keeps what it wrote, whatever stops it: that is its point.
                keep_partial: args.keep_partial || args.continue_after_error,
            },
        )?)
    };
    let media = open_media(&args.devices)?;
    bak_cli::announce("bak-read", &media, args.quiet);
    bak_cli::note_media("bak-read", &media, args.quiet);
    let devs = match media {
        Media::Bak(devs) => {
            anyhow::ensure!(
                !args.list_streams && !args.mtf && args.stream == "data" && args.table.is_none(),
                "--stream, --list-streams, --mtf and --table are for SQL Server backups; bak media hold one stream"
            );
            devs
        }
        Media::Mtf(devs) => {
            anyhow::ensure!(
                map.is_none() && !args.json,
                "--damage-map and --json are for bak media; for SQL Server backups the problems are named on standard error"
            );
            return run_mtf(&args, &devs, output);
        }
    };
    let Some(mut output) = output else {
        anyhow::bail!("--list-streams is for SQL Server backups; bak media hold one stream");
    };
    if args.continue_after_error {
        return run_salvage(&args, devs, &opts, output, map, &stop);
    }
    // The total comes from the media, through `restore`.
    let progress = Progress::new("RESTORE", None, &args.progress, args.quiet);
    let out_name = output.name().to_string();
    let r = restore(devs, &opts, output.writer(), &out_name, &progress, &stop);
    progress.finish();
    let s = r?;
    output.finish()?;
    if !args.quiet {
        for p in &s.past_end {
            bak_cli::say!("bak-read: note: {p}");
        }
        bak_cli::say!(
            "RESTORE processed {} bytes in {} blocks from {} famil{} in {:.2} s ({:.1} MB/s)",
            s.original_bytes,
            s.blocks,
            s.families,
            if s.families == 1 { "y" } else { "ies" },
            s.seconds,
            mb_per_s(s.original_bytes, s.seconds)
        );
    }
    Ok(EXIT_OK)
}
