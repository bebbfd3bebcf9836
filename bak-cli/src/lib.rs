//! Plumbing shared by the four bak tools, so it is written once: exit codes and error printing,
//! progress on stderr, human sizes, table / JSON / CSV rendering of rows, and the man pages and
//! shell completions (`--generate`).

use std::io::Write;
use std::process::ExitCode;

use bak_core::Error;

pub mod dates;
pub mod devices;
pub mod generate;
pub mod keys;
pub mod many;
pub mod output;
pub mod signals;

pub use devices::StoreArgs;
pub use keys::{EncryptArgs, KeyArgs};
pub use output::{Inputs, Output, OutputOptions};
pub use signals::{stop_on_signals, EXIT_INTERRUPTED};
mod progress;

pub use progress::{Progress, ProgressArgs, ProgressMode};

/// `eprintln!` that cannot panic: a closed stderr (`2> >(head -c0)`) must not stop a tool.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// Exit code: everything checked is good.
pub const EXIT_OK: u8 = 0;
/// Exit code: the media are damaged or incomplete.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code: usage or I/O error, or media that use what this build cannot read
/// ("unsupported": an encryption, a compression algorithm, a format version).
pub const EXIT_USAGE: u8 = 2;

/// Text for `--help` of every tool.
pub const EXIT_HELP: &str = "Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O \
     error, or unsupported media; 130 interrupted (SIGINT or SIGTERM).";

/// Run a tool's body: print an error once as `tool: <chain>` on stderr and map it to the exit
/// code. A broken pipe on the tool's output (stdout, when `quiet_broken_stdout`) ends quietly;
/// on a backup device it is an error like any other.
pub fn run(
    tool: &str,
    quiet_broken_stdout: bool,
    body: impl FnOnce() -> anyhow::Result<u8>,
) -> ExitCode {
    signals::set_tool(tool);
    let result = body();
    let notes = signals::take_notes();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let interrupted = signals::interrupted();
            if quiet_broken_stdout && interrupted.is_none() && is_broken_stdout(&e) {
                EXIT_OK
            } else {
                let msg = error_text(&e);
                match interrupted {
                    // Whatever the signal's stop made fail, the cause is the signal.
                    Some(sig) if msg == "interrupted" => say!("{tool}: interrupted by {sig}"),
                    Some(sig) => say!("{tool}: interrupted by {sig}: {msg}"),
                    None => say!("{tool}: {msg}"),
                }
                match interrupted {
                    Some(_) => EXIT_INTERRUPTED,
                    None => exit_code_of(&e),
                }
            }
        }
    };
    for n in notes {
        say!("{tool}: {n}");
    }
    ExitCode::from(code)
}

/// An error as the tools print it: its chain, `: ` between the links, a link that repeats
/// what is already said left out.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for (i, c) in e.chain().enumerate() {
        // bak-core errors already name the file; skip a context that repeats the text.
        let s = c.to_string();
        if i > 0 && msg.contains(&s) {
            continue;
        }
        if i > 0 {
            msg.push_str(": ");
        }
        msg.push_str(&s);
    }
    msg
}

/// The exit code an error maps to.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(b) if b.is_media_damage() => EXIT_DAMAGED,
        Some(Error::Interrupted) => EXIT_INTERRUPTED,
        _ => EXIT_USAGE,
    }
}

fn is_broken_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| match c.downcast_ref::<Error>() {
        Some(b @ Error::Io { path, .. }) => b.is_broken_pipe() && path.as_os_str() == "stdout",
        _ => c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe),
    })
}

/// What is left to read of standard input when it is a regular file (`< file`): its size less
/// the offset it is at. `None` for a pipe, a terminal or anything else.
pub fn stdin_file_left() -> Option<u64> {
    use std::io::Seek;
    use std::os::fd::AsFd;
    // A duplicate shares the offset; asking for it does not move it.
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let at = f.stream_position().ok()?;
    Some(meta.len().saturating_sub(at))
}

/// Parse a size: `65536`, `64K`, `64KiB`, `1M`, `1MiB`, `1G` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1M, 512K, 65536)"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Bytes in a short human form: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Megabytes (10^6) per second, as SQL Server reports throughput.
pub fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 / 1e6 / secs
    }
}

/// Output format of the reporting tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned table for people.
    Table,
    /// One JSON object per line.
    Json,
    /// CSV with a header line.
    Csv,
}

/// Render rows (serialisable structs) as a table, JSON lines or CSV. `columns` picks and orders
/// the table's and CSV's columns (when empty: every key of any row, in the order they first
/// appear); JSON has every key.
pub fn render<T: serde::Serialize>(
    out: &mut dyn Write,
    rows: &[T],
    columns: &[&str],
    format: Format,
) -> std::io::Result<()> {
    let values: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .filter_map(|r| match serde_json::to_value(r) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect();
    if format == Format::Json {
        for v in &values {
            serde_json::to_writer(&mut *out, v)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let cols: Vec<String> = if columns.is_empty() {
        // Rows of different kinds (bak and SQL Server sets) have different keys.
        let mut seen = std::collections::HashSet::new();
        values
            .iter()
            .flat_map(|m| m.keys())
            .filter(|k| seen.insert(k.as_str()))
            .cloned()
            .collect()
    } else {
        columns.iter().map(|s| s.to_string()).collect()
    };
    let cell = |m: &serde_json::Map<String, serde_json::Value>, c: &str| -> String {
        match m.get(c) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    };
    match format {
        Format::Csv => {
            let esc = |s: &str| {
                if s.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_string()
                }
            };
            writeln!(
                out,
                "{}",
                cols.iter().map(|c| esc(c)).collect::<Vec<_>>().join(",")
            )?;
            for v in &values {
                writeln!(
                    out,
                    "{}",
                    cols.iter()
                        .map(|c| esc(&cell(v, c)))
                        .collect::<Vec<_>>()
                        .join(",")
                )?;
            }
        }
        _ => {
            let cells: Vec<Vec<String>> = values
                .iter()
                .map(|v| {
                    cols.iter()
                        .map(|c| cell(v, c).replace(['\n', '\r', '\t'], " "))
                        .collect()
                })
                .collect();
            let widths: Vec<usize> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].chars().count())
                        .chain([c.chars().count()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |r: &[String]| {
                let mut s = String::new();
                for (i, c) in r.iter().enumerate() {
                    if i > 0 {
                        s.push_str("  ");
                    }
                    s.push_str(c);
                    if i + 1 < r.len() {
                        s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
                    }
                }
                s
            };
            writeln!(out, "{}", line(&cols))?;
            for r in &cells {
                writeln!(out, "{}", line(r))?;
            }
        }
    }
    Ok(())
}

/// The devices given to a reading tool, recognised from their first bytes.
pub enum Media {
    /// bak media.
    Bak(Vec<bak_core::Opened>),
    /// SQL Server backups (MTF, compressed or not).
    Mtf(Vec<bak_mtf::MtfDevice>),
}

/// Open the devices (in parallel: FIFOs may be fed in any order), tell their format, and
/// refuse foreign files or a mix of formats.
pub fn open_media(paths: &[std::path::PathBuf]) -> anyhow::Result<Media> {
    use bak_core::bytes::MediaKind;
    let opened = devices::open_paths(paths)?;
    let mut kinds = Vec::new();
    for d in &opened {
        match d.kind() {
            Some(k) => kinds.push(k),
            None => return Err(not_media(d).into()),
        }
    }
    if kinds.iter().all(|k| *k == MediaKind::Bak) {
        return Ok(Media::Bak(opened));
    }
    if let Some(i) = kinds.iter().position(|k| *k == MediaKind::Bak) {
        anyhow::bail!(
            "{} is bak media but other devices are SQL Server backups; give devices of one media set",
            opened[i].name()
        );
    }
    let mut devs = Vec::new();
    for d in opened {
        devs.push(bak_mtf::MtfDevice::from_device(d.into_device())?);
    }
    Ok(Media::Mtf(devs))
}

/// The error of a device that is neither bak media nor a SQL Server backup.
pub(crate) fn not_media(d: &bak_core::Opened) -> Error {
    let head = d.head();
    Error::NotMedia {
        device: d.name().to_string(),
        found: if head.is_empty() {
            "an empty file".into()
        } else {
            format!(
                "first bytes {}",
                bak_core::bytes::hex(&head[..head.len().min(8)])
            )
        },
    }
}

/// Say on stderr which format each SQL Server device was recognised as (bak media go
/// without saying). Silent with `quiet`.
pub fn announce(tool: &str, media: &Media, quiet: bool) {
    if quiet {
        return;
    }
    if let Media::Mtf(devs) = media {
        for d in devs {
            let l = d.label();
            let kind = l.media_format.map_or("SQL Server backup", |k| k.describe());
            let _ = writeln!(std::io::stderr(), "{tool}: {}: {kind}", d.name());
        }
    }
}

/// Say on stderr, once for each SQL Server device, what its media carry that bak does not
/// check though it reads them all the same (a media password: MEDIAPASSWORD). Silent with
/// `quiet`.
pub fn note_media(tool: &str, media: &Media, quiet: bool) {
    if quiet {
        return;
    }
    if let Media::Mtf(devs) = media {
        for d in devs {
            for n in d.notes() {
                say!("{tool}: {}: note: {n}", d.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10), "10 B");
    }

    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct R {
        name: String,
        size: Option<u64>,
    }

    #[test]
    fn renders_three_ways() {
        let rows = vec![
            R {
                name: "a,b".into(),
                size: Some(10),
            },
            R {
                name: "long name".into(),
                size: None,
            },
        ];
        let mut t = Vec::new();
        render(&mut t, &rows, &["Name", "Size"], Format::Table).unwrap();
        assert_eq!(
            String::from_utf8(t).unwrap(),
            "Name       Size\na,b        10\nlong name  \n"
        );
        let mut c = Vec::new();
        render(&mut c, &rows, &["Name", "Size"], Format::Csv).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "Name,Size\n\"a,b\",10\nlong name,\n"
        );
        // Without columns, CSV has every key of every row, in the order they first appear.
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wide {
            name: String,
            extra: u8,
        }
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Either {
            R(R),
            W(Wide),
        }
        let mixed = vec![
            Either::R(R {
                name: "a".into(),
                size: None,
            }),
            Either::W(Wide {
                name: "b".into(),
                extra: 7,
            }),
        ];
        let mut c = Vec::new();
        render(&mut c, &mixed, &[], Format::Csv).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "Name,Size,Extra\na,,\nb,,7\n"
        );
        let mut j = Vec::new();
        render(&mut j, &rows, &[], Format::Json).unwrap();
        assert_eq!(
            String::from_utf8(j).unwrap(),
            "{\"Name\":\"a,b\",\"Size\":10}\n{\"Name\":\"long name\",\"Size\":null}\n"
        );
    }

    #[test]
    fn damage_maps_to_exit_1_and_io_to_2() {
        let d = anyhow::Error::new(Error::corrupt(bak_core::Location::device("x"), "bad"));
        assert_eq!(exit_code_of(&d), EXIT_DAMAGED);
        let io = anyhow::Error::new(Error::io("x", "read", std::io::ErrorKind::NotFound.into()));
        assert_eq!(exit_code_of(&io), EXIT_USAGE);
    }
}
