//! bak-write: stripe a stream onto a media set as one backup set.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use bak_cli::{mb_per_s, parse_size, Progress, EXIT_OK};
use bak_core::bytes::{guid_string, hex, Codec};
use bak_core::{backup, open_backup_devices, BackupOptions, InitMode};
use clap::Parser;

const EXAMPLES: &str = "Examples:
  pg_dump mydb | bak-write --compress zstd /mnt/a/db.bak /mnt/b/db.bak /mnt/c/db.bak
  bak-write --input disk.img --name nightly --retain-days 7 /backup/disk.bak
  tar c /etc | bak-write - | ssh host 'cat > etc.bak'

Devices are files (created when missing), FIFOs, character devices, or - for standard output.
On devices that already hold a media set, a new backup set is appended (NOINIT).

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error.";

/// Stripe standard input (or --input) across DEVICE... as one backup set of a media set.
#[derive(Parser, Debug)]
#[command(name = "bak-write", version, about, after_help = EXAMPLES)]
struct Args {
    /// Backup devices: one media family each (1 to 64).
    #[arg(required_unless_present = "generate", value_name = "DEVICE")]
    devices: Vec<PathBuf>,
    /// Read this file instead of standard input.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Compression: none, zstd (level 1) or zstd:LEVEL (1 to 19).
    #[arg(short, long, value_name = "CODEC", default_value = "none")]
    compress: String,
    /// Size of each block (64K to 4M, a multiple of 64K).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    max_transfer_size: u64,
    /// Buffers in the pool (default: devices x 4 + 2).
    #[arg(long, value_name = "N")]
    buffer_count: Option<usize>,
    /// Compression threads (default: the number of cores).
    #[arg(short = 'T', long, value_name = "N")]
    threads: Option<usize>,
    /// Backup set name.
    #[arg(short, long, default_value = "")]
    name: String,
    /// Backup set description.
    #[arg(short, long, default_value = "")]
    description: String,
    /// Media name (new media); on existing media it must match unless --skip.
    #[arg(long)]
    media_name: Option<String>,
    /// Media description (new media).
    #[arg(long, default_value = "")]
    media_description: String,
    /// Overwrite every backup set on the media, keeping the media header (INIT).
    #[arg(long, conflicts_with = "format")]
    init: bool,
    /// Write new media headers: a new media set on these devices, whatever they held (FORMAT).
    #[arg(long)]
    format: bool,
    /// Skip the expiration and media-name checks (SKIP).
    #[arg(long)]
    skip: bool,
    /// The set may not be overwritten before this date: YYYY-MM-DD, YYYY-MM-DDTHH:MM or
    /// YYYY-MM-DDTHH:MM:SS (UTC; RFC 3339 with an offset is also taken).
    #[arg(long, value_name = "DATE")]
    expire_date: Option<String>,
    /// The set may not be overwritten for N days (wins over --expire-date).
    #[arg(long, value_name = "N")]
    retain_days: Option<u32>,
    /// Do not fsync the devices at the end.
    #[arg(long)]
    no_sync: bool,
    /// Print a progress line every N percent (every N GiB when the size is unknown).
    #[arg(long, value_name = "N")]
    stats: Option<u64>,
    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// Print a man page or a shell completion script for this tool, and exit.
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    generate: Option<bak_cli::generate::Kind>,
}

fn parse_codec(s: &str) -> anyhow::Result<Codec> {
    match s {
        "none" | "off" => Ok(Codec::None),
        "zstd" => Ok(Codec::Zstd(1)),
        _ => {
            let level = s
                .strip_prefix("zstd:")
                .and_then(|l| l.parse::<i32>().ok())
                .filter(|l| (1..=19).contains(l))
                .with_context(|| {
                    format!("--compress {s:?}: use none, zstd or zstd:LEVEL with LEVEL 1 to 19")
                })?;
            Ok(Codec::Zstd(level))
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-write", false, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    let codec = parse_codec(&args.compress)?;
    if args.json && args.devices.iter().any(|d| d.as_os_str() == "-") {
        anyhow::bail!("--json prints on standard output, which is a device here; drop one of them");
    }
    let mts = u32::try_from(args.max_transfer_size)
        .ok()
        .filter(|m| (64 << 10..=4 << 20).contains(m) && m % (64 << 10) == 0);
    let Some(mts) = mts else {
        anyhow::bail!(
            "--max-transfer-size {}: use 64K to 4M in steps of 64K",
            args.max_transfer_size
        );
    };
    let mut opts = BackupOptions {
        codec,
        max_transfer: mts,
        ..Default::default()
    };
    if let Some(b) = args.buffer_count {
        anyhow::ensure!(b >= 2, "--buffer-count must be at least 2");
        opts.buffer_count = b;
    }
    if let Some(t) = args.threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        opts.threads = t;
    }
    opts.name = args.name;
    opts.description = args.description;
    opts.media_name = args.media_name;
    opts.media_description = args.media_description;
    opts.mode = if args.format {
        InitMode::Format
    } else if args.init {
        InitMode::Init
    } else {
        InitMode::Append
    };
    opts.skip = args.skip || args.format;
    opts.sync = !args.no_sync;
    opts.expire_us = match (args.retain_days, &args.expire_date) {
        (Some(d), _) => bak_core::now_us() + d as i64 * 86_400_000_000,
        (None, Some(s)) => bak_cli::dates::parse_date(s).with_context(|| {
            format!("--expire-date {s:?}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
        })?,
        (None, None) => 0,
    };

    let (mut input, input_name): (Box<dyn Read>, String) = match &args.input {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                File::open(p).with_context(|| format!("{}: cannot open the input", p.display()))?;
            let meta = f
                .metadata()
                .with_context(|| format!("{}: cannot stat the input", p.display()))?;
            anyhow::ensure!(!meta.is_dir(), "{}: the input is a directory", p.display());
            if meta.is_file() {
                opts.expected_size = Some(meta.len());
            }
            opts.source_label = p.display().to_string();
            (Box::new(f), p.display().to_string())
        }
        _ => (Box::new(std::io::stdin().lock()), "stdin".to_string()),
    };

    // A block per system call: a 64 KiB pipe made bak-write wait on 16 reads per block.
    {
        use std::os::fd::AsFd;
        match &args.input {
            Some(p) if p.as_os_str() != "-" => {}
            _ => bak_core::device::enlarge_pipe(std::io::stdin().as_fd(), 2 * mts as usize),
        }
    }
    let stop = bak_cli::stop_on_signals()?;
    let devices = open_backup_devices(&args.devices, mts)?;
    let progress = Progress::new("BACKUP", opts.expected_size, args.stats, args.quiet);
    let result = backup(
        &mut input,
        &input_name,
        devices,
        &opts,
        &|n| progress.update(n),
        &stop,
    );
    progress.finish();
    let s = match result {
        Ok(s) => s,
        Err(bak_core::Error::Interrupted) => {
            anyhow::bail!("interrupted: the backup set was left incomplete and will be replaced by the next append")
        }
        Err(
            e @ bak_core::Error::Io {
                op: "write" | "sync",
                ..
            },
        ) => return Err(anyhow::Error::new(e).context(
            "BACKUP failed; the set being written is incomplete and no device claims it complete",
        )),
        Err(e) => return Err(e.into()),
    };
    let rate = mb_per_s(s.original_bytes, s.seconds);
    if args.json {
        let v = serde_json::json!({
            "Position": s.position,
            "BackupSetGUID": guid_string(&s.set_id),
            "MediaSetId": guid_string(&s.media_set_id),
            "BackupSize": s.original_bytes,
            "CompressedBackupSize": s.stored_bytes,
            "DeviceBytes": s.device_bytes,
            "BlockCount": s.blocks,
            "FamilyCount": s.families,
            "FamilyBlocks": s.family_blocks,
            "Seconds": s.seconds,
            "MBPerSecond": rate,
            "Digest": hex(&s.digest),
            "Formatted": s.formatted,
        });
        println!("{v}");
    }
    if !args.quiet {
        bak_cli::say!(
            "BACKUP processed {} bytes in {} blocks on {} famil{} in {:.2} s ({:.1} MB/s)",
            s.original_bytes,
            s.blocks,
            s.families,
            if s.families == 1 { "y" } else { "ies" },
            s.seconds,
            rate
        );
    }
    Ok(EXIT_OK)
}
