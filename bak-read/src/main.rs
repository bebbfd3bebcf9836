//! bak-read: turn a media set back into the original bytes on standard output.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use bak_cli::{mb_per_s, Progress, EXIT_OK};
use bak_cli::{open_media, Media};
use bak_core::{restore, RestoreOptions};
use clap::Parser;

const EXAMPLES: &str = "Examples:
  bak-read /mnt/c/db.bak /mnt/a/db.bak /mnt/b/db.bak | psql mydb_copy
  bak-read --file 2 nightly.bak > set2.tar
  ssh host 'cat etc.bak' | bak-read - | tar t

Devices may be given in any order; each is recognised by its media header.

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error.";

/// Restore one backup set from its media set to standard output.
#[derive(Parser, Debug)]
#[command(name = "bak-read", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices: every family of the media set, in any order (- is standard input).
    #[arg(required = true, value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Which backup set to restore, by position (RESTORE's FILE).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    file: u32,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Decompression threads (default: the number of cores).
    #[arg(short = 'T', long, value_name = "N")]
    threads: Option<usize>,
    /// Buffers in the pool (default: devices x 4 + 2 x threads + 2).
    #[arg(long, value_name = "N")]
    buffer_count: Option<usize>,
    /// Print a progress line every N percent (every N GiB when the size is unknown).
    #[arg(long, value_name = "N")]
    stats: Option<u64>,
    /// No progress output and no summary.
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
    /// SQL Server backups: go on past damage (RESTORE's CONTINUE_AFTER_ERROR). Every byte that
    /// can be read is written, damaged pages included (a chunk that does not decode as zeros),
    /// every problem is named on standard error, and the exit status is 1. Without it the
    /// restore stops at the first problem, before any byte of a damaged page is written.
    #[arg(long)]
    continue_after_error: bool,
}

fn output(args: &Args) -> anyhow::Result<(Box<dyn Write>, String)> {
    Ok(match &args.output {
        Some(p) if p.as_os_str() != "-" => (
            Box::new(
                File::create(p)
                    .with_context(|| format!("{}: cannot create the output", p.display()))?,
            ),
            p.display().to_string(),
        ),
        _ => {
            use std::os::fd::AsFd;
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("stdout")?;
            bak_core::device::enlarge_pipe(fd.as_fd(), 2 << 20);
            (Box::new(File::from(fd)), "stdout".to_string())
        }
    })
}

/// SQL Server backups: the data or log stream, the stream list, or the MTF stream.
fn run_mtf(args: &Args, devs: &[bak_mtf::MtfDevice]) -> anyhow::Result<u8> {
    use bak_mtf as mtf;
    if args.list_streams {
        let rows = mtf::list_streams(devs, args.file)?;
        let mut out = std::io::stdout().lock();
        bak_cli::render(&mut out, &rows, &[], bak_cli::Format::Table)?;
        return Ok(EXIT_OK);
    }
    let (mut out, name) = output(args)?;
    let started = std::time::Instant::now();
    let opts = mtf::ReadOptions {
        continue_after_error: args.continue_after_error,
    };
    let r = if args.mtf {
        anyhow::ensure!(
            devs.len() == 1,
            "--mtf writes the MTF stream of one file; give one device"
        );
        mtf::write_mtf_with(&devs[0], &opts, &mut out, &name)
    } else {
        let kind = if args.stream == "log" {
            mtf::StreamKind::Log
        } else {
            mtf::StreamKind::Data
        };
        mtf::read_stream_with(devs, args.file, kind, &opts, &mut out, &name)
    }?;
    let n = r.bytes;
    out.flush()
        .map_err(|e| bak_core::Error::io(&name, "write", e))?;
    for p in &r.problems {
        bak_cli::say!("bak-read: {p}");
    }
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

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    bak_cli::run("bak-read", true, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    // Restored bytes are binary: refuse a terminal, before any media are opened.
    {
        use std::io::IsTerminal;
        let to_stdout = args.output.as_ref().is_none_or(|p| p.as_os_str() == "-");
        anyhow::ensure!(
            args.list_streams || !to_stdout || !std::io::stdout().is_terminal(),
            "refusing to write the restored bytes to a terminal; redirect standard output or give -o FILE"
        );
    }
    let media = open_media(&args.devices)?;
    bak_cli::announce("bak-read", &media, args.quiet);
    let devs = match media {
        Media::Bak(devs) => {
            anyhow::ensure!(
                !args.list_streams && !args.mtf && args.stream == "data" && !args.continue_after_error,
                "--stream, --list-streams, --mtf and --continue-after-error are for SQL Server backups; bak media hold one stream, and their restore stops at the first problem"
            );
            devs
        }
        Media::Mtf(devs) => return run_mtf(&args, &devs),
    };
    let mut opts = RestoreOptions {
        position: args.file,
        ..Default::default()
    };
    if let Some(t) = args.threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        opts.threads = t;
    }
    if let Some(b) = args.buffer_count {
        opts.buffer_count = b;
    }
    let (mut out, out_name) = output(&args)?;
    let stop = bak_core::Stop::new();
    let progress = Progress::new("RESTORE", None, args.stats, args.quiet);
    let r = restore(
        devs,
        &opts,
        &mut out,
        &out_name,
        &|n| progress.update(n),
        &stop,
    );
    progress.finish();
    let s = r?;
    if !args.quiet {
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
