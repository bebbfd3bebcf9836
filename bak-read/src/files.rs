//! `bak-read --restore-files DIR`: the data files of a SQL Server full backup, rebuilt page by
//! page (RESTORE ... WITH MOVE, without SQL Server and without the log applied).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bak_cli::{Inputs, EXIT_DAMAGED, EXIT_OK};
use bak_mtf::{Database, MtfDevice};

/// The base name of a path from the backup (Windows or Unix separators), when it is a plain
/// file name: not empty, not `.` or `..`, no separator or NUL left.
pub fn base_name(physical: &str) -> Option<&str> {
    let base = physical.rsplit(['/', '\\']).next()?;
    let plain = !base.is_empty()
        && base != "."
        && base != ".."
        && !base.contains(['/', '\\', '\0'])
        // A drive-relative name such as C:x.
        && !base.contains(':');
    plain.then_some(base)
}

/// Where each data file goes: `--move LOGICAL=PATH`, else DIR/base name of its PhysicalName.
fn target(
    dir: &Path,
    moves: &[(String, PathBuf)],
    logical: &str,
    physical: &str,
) -> anyhow::Result<PathBuf> {
    if let Some((_, p)) = moves.iter().find(|(l, _)| l.eq_ignore_ascii_case(logical)) {
        return Ok(p.clone());
    }
    match base_name(physical) {
        Some(b) => Ok(dir.join(b)),
        None => bail!(
            "data file {logical}: its physical name {physical:?} gives no usable file name; give --move {logical}=PATH"
        ),
    }
}

/// Parse `--move LOGICAL=PATH`.
pub fn parse_move(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((l, p)) if !l.is_empty() && !p.is_empty() => Ok((l.to_string(), PathBuf::from(p))),
        _ => Err(format!("{s:?} is not LOGICAL=PATH")),
    }
}

/// Write every data file of set `file` into `dir` (or where `--move` says).
pub fn restore(
    devs: &[MtfDevice],
    file: u32,
    dir: &Path,
    moves: &[(String, PathBuf)],
    force: bool,
    inputs: &Inputs,
    quiet: bool,
) -> anyhow::Result<u8> {
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "{}: not a directory; --restore-files takes the directory to write into",
            dir.display()
        );
    }
    let db = Database::open_pages(devs, Some(file))?;
    let files = db.data_files();
    for (l, _) in moves {
        if !files.iter().any(|f| f.logical_name.eq_ignore_ascii_case(l)) {
            let names: Vec<&str> = files.iter().map(|f| f.logical_name.as_str()).collect();
            bail!(
                "--move {l}=...: backup set {file} has no data file {l} (its data files: {})",
                names.join(", ")
            );
        }
    }
    // Every target is decided and checked before anything is written.
    let mut plan = Vec::new();
    for f in &files {
        let path = target(dir, moves, &f.logical_name, &f.physical_name)?;
        if plan.iter().any(|(_, p): &(_, PathBuf)| *p == path) {
            bail!(
                "two data files would both be written to {}; give --move for one of them",
                path.display()
            );
        }
        inputs.check(
            bak_core::device::FileId::of_path(&path),
            &path.display().to_string(),
        )?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!(
                    "{}: is a symbolic link; a restored file is never written through a link",
                    path.display()
                )
            }
            Ok(m) if !m.is_file() => bail!("{}: exists and is not a regular file", path.display()),
            Ok(_) if !force => {
                bail!(
                    "{}: the file exists; give -f/--force to replace it (nothing was written)",
                    path.display()
                )
            }
            _ => {}
        }
        plan.push((f, path));
    }
    for (f, path) in &plan {
        if force {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(bak_core::Error::io(path, "remove", e).into())
                }
                _ => {}
            }
        }
        // O_EXCL with O_NOFOLLOW: a file or link that appeared since is not written through.
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| bak_core::Error::io(path, "create", e))?;
        let shown = path.display().to_string();
        match db.write_file(f.file_id, &out, &shown) {
            Ok(done) => {
                if !quiet {
                    bak_cli::say!(
                        "bak-read: {} ({}, file {}): {} pages, {} bytes -> {shown}",
                        f.logical_name,
                        f.physical_name,
                        f.file_id,
                        done.pages,
                        done.size
                    );
                }
            }
            Err(e) => {
                drop(out);
                let _ = std::fs::remove_file(path);
                return Err(e.into());
            }
        }
    }
    for l in db.log_files() {
        if !quiet {
            bak_cli::say!("bak-read: the log file {l} is not in the data stream: not written");
        }
    }
    for p in db.problems() {
        bak_cli::say!("bak-read: {p}");
    }
    if let Some(p) = db.partial() {
        bak_cli::say!("bak-read: partial: {p}; the files hold only the given families' pages");
    }
    Ok(if db.problems().is_empty() && db.partial().is_none() {
        EXIT_OK
    } else {
        EXIT_DAMAGED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_base_names_are_taken() {
        assert_eq!(
            base_name(r"C:\Program Files\MSSQL\DATA\pubs.mdf"),
            Some("pubs.mdf")
        );
        assert_eq!(
            base_name("/var/opt/mssql/data/MeetUpDB.mdf"),
            Some("MeetUpDB.mdf")
        );
        assert_eq!(base_name("x.ndf"), Some("x.ndf"));
        for bad in [
            "",
            "C:\\data\\",
            "/",
            "..",
            "a/..",
            r"a\.",
            "C:x.mdf",
            "a\0b",
        ] {
            assert_eq!(base_name(bad), None, "{bad:?}");
        }
        let dir = Path::new("/out");
        let moves = vec![("pubs".to_string(), PathBuf::from("/elsewhere/p.mdf"))];
        assert_eq!(
            target(dir, &moves, "PUBS", "C:\\x\\pubs.mdf").unwrap(),
            PathBuf::from("/elsewhere/p.mdf")
        );
        assert_eq!(
            target(dir, &[], "pubs", "C:\\x\\..\\pubs.mdf").unwrap(),
            PathBuf::from("/out/pubs.mdf")
        );
        assert!(target(dir, &[], "pubs", "C:\\x\\..").is_err());
        assert!(parse_move("a=b").is_ok());
        assert!(parse_move("ab").is_err() && parse_move("=b").is_err());
    }
}
