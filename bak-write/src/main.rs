//! bak-write: stripe a stream onto a media set as one backup set.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use bak_cli::{mb_per_s, parse_size, Progress, EXIT_OK};
use bak_core::bytes::{guid_string, hex, Codec};
use bak_core::{backup_mirrored, BackupOptions, InitMode};
use clap::Parser;

/// The last instant an expiration date may name: 9999-12-31T23:59:59Z, in microseconds.
const LAST_DATE_US: i64 = 253_402_300_799_000_000;

const EXAMPLES: &str = "Examples:
  pg_dump mydb | bak-write --compress zstd /mnt/a/db.bak /mnt/b/db.bak /mnt/c/db.bak
  bak-write --input disk.img --name nightly --retain-days 7 /backup/disk.bak
  tar c /etc | ssh host bak-write etc.bak      # media on another host: write them there
  tar c /etc | bak-write --compress zstd --recipient-file team.txt etc.bak   # encrypted

Run pipelines under `set -o pipefail`: bak-write cannot tell a producer that failed half-way.
A pipe cannot append: `bak-write - | ssh host 'cat >> x.bak'` puts a second media set after the
first instead of a second backup set; run bak-write where the media are.

With --recipient, --recipient-file or --passphrase-file the set is encrypted (compressed first):
its data can be read only with an age identity of a recipient or the passphrase; names, sizes
and times stay readable (docs/FORMAT.md, \"Encryption\"). Keep the identity apart from the media.

Devices are files (created when missing), FIFOs, character devices, - for standard output, or
object-store URLs (s3://BUCKET/KEY, az://CONTAINER/PATH, gs://BUCKET/KEY), in any mix.
On devices that already hold a media set, a new backup set is appended (NOINIT).

URL devices take their endpoint and credentials from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP=true for plain http;
AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_USE_EMULATOR; the Google
equivalents). An object is uploaded in parts, --parts-in-flight at a time: memory per URL
device is (--parts-in-flight + 1) x --part-size, 40 MiB by default. Nothing is visible until
the upload completes; a failed or interrupted upload is aborted. A bucket is never created.

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error; 130 interrupted
(SIGINT or SIGTERM: the set being written is left incomplete, and the next append replaces it).";

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
    /// Buffers in the pool (default: devices x 4 + 2; at most 1024, and 4 GiB of blocks).
    #[arg(long, value_name = "N")]
    buffer_count: Option<usize>,
    /// Compression threads (default: the number of cores; 1 to 256).
    #[arg(short = 'T', long, value_name = "N")]
    threads: Option<usize>,
    /// Backup set name (up to 128 characters).
    #[arg(short, long, default_value = "")]
    name: String,
    /// Backup set description (up to 255 characters).
    #[arg(short, long, default_value = "")]
    description: String,
    /// Media name (new media; up to 128 characters); on existing media it must match unless
    /// --skip.
    #[arg(long)]
    media_name: Option<String>,
    /// Media description (new media; up to 255 characters).
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
    /// YYYY-MM-DDTHH:MM:SS, in UTC unless followed by Z or an offset (2030-01-01T10:00Z,
    /// 2030-01-01T12:00+02:00).
    #[arg(long, value_name = "DATE")]
    expire_date: Option<String>,
    /// The set may not be overwritten for N days (up to the year 9999; wins over --expire-date).
    #[arg(long, value_name = "N")]
    retain_days: Option<u32>,
    /// Spread each family over volumes of at most SIZE bytes (files and URLs; 1M at least):
    /// volume 1 is the DEVICE named, volume 2 DEVICE.v2, and so on. Readers find the volumes
    /// from the first one's name.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    volume_size: Option<u64>,
    /// Mirror the media set (MIRROR TO): every family is also written, byte for byte but its
    /// label, to the device of the same place in this comma-separated list, which has as many
    /// devices as DEVICE... (files, FIFOs, pipes, URLs). Up to 3 times: 4 copies of each
    /// family. Appends, --init, --format and expiry act on every copy, and an append refuses
    /// copies that disagree on what the media hold. A copy that fails during the backup is
    /// left behind while another copy of its family goes on: the set is finished on the other
    /// copies (restorable from them), the failed device is named, and the exit status is 1
    /// (the media set is not whole: rebuild the copy with --rebuild-mirror). A family with no
    /// copy left fails the backup (exit 2). A copy cut short never holds a complete set.
    #[arg(long, value_name = "DEV,DEV,...")]
    mirror_to: Vec<String>,
    /// Instead of a backup: write a new copy of family N, mirror number M (N.M=NEWDEVICE) from
    /// the copies of family N among DEVICE... (any devices of the media set), every record and
    /// block checked and read from another copy where it does not check. NEWDEVICE gets the
    /// copy's own label; an existing non-empty file is written over only with --format. Then
    /// bak-verify, given every copy, calls the media set valid again.
    #[arg(long, value_name = "N.M=NEWDEVICE", conflicts_with_all = ["mirror_to", "init", "uploads"])]
    rebuild_mirror: Option<String>,
    /// Do not fsync the devices at the end.
    #[arg(long)]
    no_sync: bool,
    #[command(flatten)]
    encrypt: bak_cli::EncryptArgs,
    #[command(flatten)]
    store: bak_cli::StoreArgs,
    #[command(flatten)]
    progress: bak_cli::ProgressArgs,
    /// No bar, no --stats lines and no summary (--progress json still prints).
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// URL devices: list (`list`) or abort (`abort`) the unfinished uploads of each family
    /// (its key and its volumes' keys) that a killed backup left, instead of writing a backup.
    /// S3 only. Abort only when no backup to these devices is running.
    #[arg(long, value_name = "ACTION", value_parser = ["list", "abort"])]
    uploads: Option<String>,
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

/// `--uploads list|abort`: what killed backups left unfinished in object storage.
fn unfinished_uploads(args: &Args, abort: bool) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for d in &args.devices {
        anyhow::ensure!(
            bak_cli::devices::is_url(d),
            "--uploads: {} is not a URL; only objects have unfinished uploads",
            bak_cli::devices::shown(d)
        );
        rows.extend(bak_store::list_unfinished(d)?);
    }
    if abort {
        for u in &rows {
            bak_store::abort(u)?;
        }
    }
    let mut out = std::io::stdout().lock();
    let format = if args.json {
        bak_cli::Format::Json
    } else {
        bak_cli::Format::Table
    };
    bak_cli::render(&mut out, &rows, &["Url", "UploadId", "Initiated"], format)?;
    if !args.quiet && !args.json {
        bak_cli::say!(
            "{} unfinished upload{}{}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            if abort { " aborted" } else { "" }
        );
    }
    Ok(EXIT_OK)
}

/// `--rebuild-mirror N.M=NEWDEVICE DEVICE...`.
fn rebuild_mirror(args: &Args, spec: &str, stop: &bak_core::Stop) -> anyhow::Result<u8> {
    let parsed = spec.split_once('=').and_then(|(nm, dev)| {
        let (n, m) = nm.split_once('.')?;
        Some((
            n.parse::<u16>().ok()?,
            m.parse::<u16>().ok()?,
            PathBuf::from(dev),
        ))
    });
    let Some((family, mirror, new)) = parsed.filter(|p| !p.2.as_os_str().is_empty()) else {
        anyhow::bail!("--rebuild-mirror {spec:?}: use N.M=NEWDEVICE (family N, copy M)");
    };
    let mut all = args.devices.clone();
    all.push(new.clone());
    bak_core::device::check_distinct(&all)?;
    let devs = bak_cli::devices::open_paths(&args.devices)?;
    let store = args.store.options()?;
    let mut out =
        bak_cli::devices::open_write_devices(std::slice::from_ref(&new), 1 << 20, &store)?;
    let s = bak_core::rebuild_mirror(
        devs,
        family,
        mirror,
        out.remove(0),
        args.format,
        !args.no_sync,
        stop,
    )?;
    if !args.quiet {
        for n in &s.notes {
            bak_cli::say!("bak-write: note: mirror: {n}");
        }
        bak_cli::say!(
            "REBUILD wrote copy {} of family {} ({} bytes) to {}",
            s.mirror,
            s.family,
            s.bytes,
            bak_cli::devices::shown(&new)
        );
    }
    Ok(EXIT_OK)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return bak_cli::generate::print(<Args as clap::CommandFactory>::command(), kind);
    }
    bak_cli::run("bak-write", false, || run(args))
}

fn run(args: Args) -> anyhow::Result<u8> {
    use bak_core::limits::*;
    // First, so that a signal ends the tool in every state, opening a FIFO included.
    let stop = bak_cli::stop_on_signals()?;
    if let Some(action) = &args.uploads {
        return unfinished_uploads(&args, action == "abort");
    }
    if let Some(spec) = &args.rebuild_mirror {
        return rebuild_mirror(&args, spec, &stop);
    }
    let codec = parse_codec(&args.compress)?;
    if args.json
        && (args.devices.iter().any(|d| d.as_os_str() == "-")
            || args
                .mirror_to
                .iter()
                .any(|m| m.split(',').any(|d| d == "-")))
    {
        anyhow::bail!("--json prints on standard output, which is a device here; drop one of them");
    }
    // The main list, then each --mirror-to list.
    let mut lists = vec![args.devices.clone()];
    for m in &args.mirror_to {
        let l: Vec<PathBuf> = m.split(',').map(PathBuf::from).collect();
        anyhow::ensure!(
            l.len() == args.devices.len() && l.iter().all(|p| !p.as_os_str().is_empty()),
            "--mirror-to {m:?}: give as many devices as the main list ({}), separated by commas",
            args.devices.len()
        );
        lists.push(l);
    }
    anyhow::ensure!(
        lists.len() <= 4,
        "--mirror-to given {} times; at most 3 mirrors",
        lists.len() - 1
    );
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
        check_count("--buffer-count", b, 2, MAX_BUFFERS)?;
        check_pool("--buffer-count", b, u64::from(mts))?;
        opts.buffer_count = b;
    }
    if let Some(t) = args.threads {
        check_count("--threads", t, 1, MAX_THREADS)?;
        opts.threads = t;
    }
    // Every text field within its limit before anything is opened: media never hold a field
    // cut short, and a refused backup changes nothing.
    check_text("--name", &args.name, NAME_MAX_CHARS)?;
    check_text("--description", &args.description, DESCRIPTION_MAX_CHARS)?;
    if let Some(m) = &args.media_name {
        check_text("--media-name", m, NAME_MAX_CHARS)?;
    }
    check_text(
        "--media-description",
        &args.media_description,
        DESCRIPTION_MAX_CHARS,
    )?;
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
    opts.volume_size = args.volume_size;
    opts.expire_us = match (args.retain_days, &args.expire_date) {
        (Some(d), _) => bak_core::now_us()
            .checked_add(i64::from(d) * 86_400_000_000)
            .filter(|&t| t <= LAST_DATE_US)
            .with_context(|| {
                format!("--retain-days {d}: the set would expire after the year 9999")
            })?,
        (None, Some(s)) => bak_cli::dates::parse_date(s)
            .filter(|&t| t <= LAST_DATE_US)
            .with_context(|| {
                format!(
                    "--expire-date {s:?}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or \
                     RFC 3339 with Z or an offset, up to the year 9999"
                )
            })?,
        (None, None) => 0,
    };
    // Recipients and the passphrase are read and checked before any device is opened.
    opts.encryption = args.encrypt.encryption()?;
    opts.check()?;
    let store = args.store.options()?;

    // What is read must not be one of the devices written: `bak-write -i X X`, or
    // `bak-write X < X`, would write the media over their own source.
    let input_path = args.input.clone().unwrap_or_else(|| PathBuf::from("-"));
    let mut inputs = bak_cli::Inputs::default();
    inputs.add(&input_path);
    if args.json {
        // The summary goes to standard output: not onto the input, nor onto a device.
        let all: Vec<PathBuf> = lists.iter().flatten().cloned().collect();
        let mut ours = bak_cli::Inputs::devices(&all);
        ours.add(&input_path);
        ours.check_stdout()?;
    }
    for d in lists.iter().flatten() {
        if d.as_os_str() == "-" {
            inputs.check_stdout()?;
        } else {
            inputs.check(
                bak_core::device::FileId::of_path(d),
                &format!("the device {}", d.display()),
            )?;
        }
    }

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
        _ => {
            use std::io::IsTerminal;
            // As zstd does: a person typing is not a backup source; waiting for them to press
            // Ctrl-D would make an empty set.
            anyhow::ensure!(
                !std::io::stdin().is_terminal(),
                "refusing to read the backup from a terminal; pipe the data in or give --input FILE"
            );
            // `< file` has a known size too: a total for the progress and the leading config.
            opts.expected_size = bak_cli::stdin_file_left();
            (Box::new(std::io::stdin().lock()), "stdin".to_string())
        }
    };

    // A block per system call: a 64 KiB pipe made bak-write wait on 16 reads per block.
    {
        use std::os::fd::AsFd;
        match &args.input {
            Some(p) if p.as_os_str() != "-" => {}
            _ => bak_core::device::enlarge_pipe(std::io::stdin().as_fd(), 2 * mts as usize),
        }
    }
    let copies = bak_cli::devices::open_write_copies(&lists, mts, &store)?;
    let progress = Progress::new("BACKUP", opts.expected_size, &args.progress, args.quiet);
    let result = backup_mirrored(
        &mut input,
        &input_name,
        copies,
        &opts,
        &|n| progress.update(n),
        &stop,
    );
    progress.finish();
    let s = match result {
        Ok(s) => s,
        Err(bak_core::Error::Interrupted) => {
            anyhow::bail!("the backup set was left incomplete; the next append replaces it")
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
            "EncryptionAlgorithm": s.cipher.map(|c| c.name()),
            "MirrorCount": s.mirror_count,
            "FailedCopies": s.failed_copies.iter().map(|f| serde_json::json!({
                "Device": f.device, "Family": f.family, "Mirror": f.mirror, "Error": f.error,
            })).collect::<Vec<_>>(),
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
    if !s.failed_copies.is_empty() {
        // Not whole, yet restorable: said even with --quiet, and the exit status says it too.
        for f in &s.failed_copies {
            bak_cli::say!(
                "bak-write: copy {} of family {} ({}) failed and was left behind: {}",
                f.mirror,
                f.family,
                f.device,
                f.error
            );
        }
        bak_cli::say!(
            "bak-write: the backup set is complete on the other copies and restorable from \
             them, but the media set is not whole; rebuild the failed cop{} with \
             --rebuild-mirror",
            if s.failed_copies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        return Ok(bak_cli::EXIT_DAMAGED);
    }
    Ok(EXIT_OK)
}
