//! bak-verify: whether backup media are intact (RESTORE VERIFYONLY), for bak media and SQL
//! Server backups alike.

use std::io::Write;
use std::path::PathBuf;

use bak_cli::{open_media, Media, Progress, EXIT_DAMAGED, EXIT_OK, EXIT_USAGE};
use bak_core::report::{SetReport, Verdict};
use bak_core::{verify, VerifyOptions};
use clap::Parser;

const EXAMPLES: &str = "Examples:
  bak-verify /mnt/a/db.bak /mnt/b/db.bak /mnt/c/db.bak
  bak-verify --fast --file 2 nightly.bak
  bak-verify --json AdventureWorks.bak            # one report object per set, for CI

Checks that the media set is whole, each set complete, every record and block CRC, the block
sequence across families, the MBC and trailing config, and (unless --fast) the decoded bytes
against the end-to-end digest. Every problem is listed, each naming file, family, set, block
and byte offset.

Devices may be object-store URLs (s3://BUCKET/KEY, az://CONTAINER/PATH, gs://BUCKET/KEY), with
endpoint and credentials from the environment (bak-write --help names the variables); a family
on volumes is given by its first volume (NAME; NAME.v2, ... are found from it).

An encrypted set needs its key (--identity or --passphrase-file) for a full verify, which then
also authenticates every block and record; --fast checks its stored bytes without a key.

Exit status: 0 everything checked is valid; 1 media damaged or incomplete; 2 usage or I/O error,
or a set uses what this build cannot read and nothing checked is damaged (verdict
\"unsupported\": an encryption, a compression algorithm); 130 interrupted (SIGINT or SIGTERM).";

/// Verify backup media without restoring them.
#[derive(Parser, Debug)]
#[command(name = "bak-verify", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices: every family of the media set, in any order.
    #[arg(required_unless_present = "generate", value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Only this backup set (default: every set).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    file: Option<u32>,
    /// Check stored bytes only, without decompressing (bak media).
    #[arg(long)]
    fast: bool,
    /// Stop at the first problem (STOP_ON_ERROR): report it alone, and no set after it.
    #[arg(long)]
    stop_on_error: bool,
    /// Decoding threads (default: the number of cores; 1 to 256).
    #[arg(short = 'T', long, value_name = "N")]
    threads: Option<usize>,
    /// One JSON report object per set.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    keys: bak_cli::KeyArgs,
    #[command(flatten)]
    progress: bak_cli::ProgressArgs,
    /// No bar and no --stats lines (--progress json still prints).
    #[arg(short, long)]
    quiet: bool,
    /// Print a man page or a shell completion script for this tool, and exit.
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    generate: Option<bak_cli::generate::Kind>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-verify", true, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    // First, so that a signal ends the tool in every state, opening a FIFO included.
    let stop = bak_cli::stop_on_signals()?;
    if let Some(t) = args.threads {
        bak_core::limits::check_count("--threads", t, 1, bak_core::limits::MAX_THREADS)?;
    }
    bak_cli::Inputs::devices(&args.devices).check_stdout()?;
    let media = open_media(&args.devices)?;
    bak_cli::announce("bak-verify", &media, args.quiet || args.json);
    bak_cli::note_media("bak-verify", &media, args.quiet);
    let reports = match media {
        Media::Bak(devs) => {
            let opts = VerifyOptions {
                position: args.file,
                fast: args.fast,
                stop_on_error: args.stop_on_error,
                threads: args.threads.unwrap_or(0),
                keys: args.keys.keys()?,
            };
            // Bytes of media read; the total comes from the media, through `verify`.
            let progress = Progress::new("VERIFY", None, &args.progress, args.quiet);
            let r = verify(devs, &opts, &progress, &stop);
            progress.finish();
            r?
        }
        Media::Mtf(devs) => bak_mtf::verify(&devs, args.file, args.stop_on_error)?,
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    print_reports(&mut out, &reports, args.json)?;
    out.flush()?;
    Ok(exit_code(&reports))
}

/// 1 when any set is damaged or incomplete (damage is what a person must act on first); else 2
/// when any set uses what this build cannot read; else 0.
fn exit_code(reports: &[SetReport]) -> u8 {
    if reports.iter().any(|r| r.verdict.is_damage()) {
        EXIT_DAMAGED
    } else if reports.iter().any(|r| r.verdict == Verdict::Unsupported) {
        EXIT_USAGE
    } else {
        EXIT_OK
    }
}

fn print_reports(out: &mut dyn Write, reports: &[SetReport], json: bool) -> std::io::Result<()> {
    for r in reports {
        if json {
            serde_json::to_writer(&mut *out, r)?;
            writeln!(out)?;
            continue;
        }
        for p in &r.problems {
            writeln!(out, "  {p}")?;
        }
        let n = r.problems.len();
        let s = if n == 1 { "" } else { "s" };
        if r.position == 0 {
            writeln!(out, "The media have {n} problem{s} outside any backup set.")?;
        } else if r.verdict == Verdict::Valid {
            writeln!(out, "The backup set on file {} is valid.", r.position)?;
        } else if r.verdict == Verdict::Degraded {
            for m in &r.mirror_notes {
                writeln!(out, "  mirror: {m}")?;
            }
            writeln!(
                out,
                "The backup set on file {} is degraded: every byte is restorable, but the media \
                 set is not whole; it survives the loss of {} more famil{}. Rebuild the copies \
                 named (bak-write --rebuild-mirror).",
                r.position,
                r.redundancy_left,
                if r.redundancy_left == 1 { "y" } else { "ies" }
            )?;
        } else if r.verdict == Verdict::Unsupported {
            writeln!(
                out,
                "The backup set on file {} cannot be verified: it uses what this build cannot read (unsupported, {n} problem{s}).",
                r.position
            )?;
        } else {
            writeln!(
                out,
                "The backup set on file {} is {}: {n} problem{s}.",
                r.position, r.verdict
            )?;
        }
    }
    Ok(())
}
