//! bak-read: turn a media set back into the original bytes on standard output.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use bak_cli::{mb_per_s, Progress, EXIT_OK};
use bak_core::model::MediaKind;
use bak_core::read::{open_all, read_set, ReadOptions};
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
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    bak_cli::run("bak-read", true, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    let devs = open_all(&args.devices)?;
    for d in &devs {
        match d.kind {
            Some(MediaKind::Bak) => {}
            Some(k) => anyhow::bail!(
                "{}: {} is not handled by this build of bak-read yet",
                d.name,
                k.describe()
            ),
            None => {
                return Err(bak_core::Error::NotMedia {
                    device: d.name.clone(),
                    found: if d.head.is_empty() {
                        "an empty file".into()
                    } else {
                        format!(
                            "first bytes {}",
                            bak_core::format::hex(&d.head[..d.head.len().min(8)])
                        )
                    },
                }
                .into())
            }
        }
    }
    let mut opts = ReadOptions {
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
    let (mut out, out_name): (Box<dyn Write>, String) = match &args.output {
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
            (Box::new(File::from(fd)), "stdout".to_string())
        }
    };
    let cancel = AtomicBool::new(false);
    let progress = Progress::new("RESTORE", None, args.stats, args.quiet);
    let r = read_set(
        devs,
        &opts,
        &mut out,
        &out_name,
        &|n| progress.update(n),
        &cancel,
    );
    progress.finish();
    let s = r?;
    if !args.quiet {
        eprintln!(
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
