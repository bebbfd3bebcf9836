//! Where a tool writes what it makes (a restore's bytes, a report), and the rule that nothing a
//! user has is lost doing so:
//! - an output that is one of the tool's inputs (the same file, through any link) is refused;
//! - an existing file is replaced only with `-f/--force`;
//! - a file is written under a temporary name beside it and renamed into place when whole; on
//!   failure or a signal the temporary file is removed and the tool says so, unless
//!   `--keep-partial` asks to keep what was written.
//!
//! FIFOs, character devices and standard output are written as they are.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context};
use bak_core::device::FileId;

use crate::signals::{self, Partial, PARTIALS};

/// The files a tool reads, to tell an output that would overwrite one of them.
#[derive(Debug, Default)]
pub struct Inputs {
    ids: Vec<(FileId, String)>,
}

impl Inputs {
    /// The devices a tool reads; `-` is standard input.
    pub fn devices(paths: &[PathBuf]) -> Inputs {
        let mut i = Inputs::default();
        for p in paths {
            i.add(p);
        }
        i
    }

    /// One more input; `-` is standard input.
    pub fn add(&mut self, path: &Path) {
        let id = if path.as_os_str() == "-" {
            FileId::of_fd(std::io::stdin().as_fd())
        } else {
            FileId::of_path(path)
        };
        let name = if path.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            path.display().to_string()
        };
        if let Some(id) = id {
            self.ids.push((id, name));
        }
    }

    /// Refuse to write `what` (a file given, or standard output) when it is one of the inputs.
    pub fn check(&self, out: Option<FileId>, what: &str) -> anyhow::Result<()> {
        if let Some((_, name)) = out.and_then(|o| self.ids.iter().find(|(i, _)| *i == o)) {
            if what.ends_with(name.as_str()) {
                bail!("refusing to write {what}: it is one of the inputs; nothing was changed");
            }
            bail!(
                "refusing to write {what}: it is the same file as {name}, one of the inputs; \
                 nothing was changed"
            );
        }
        Ok(())
    }

    /// Refuse a standard output that is one of the inputs (`bak-header x.bak >> x.bak`).
    pub fn check_stdout(&self) -> anyhow::Result<()> {
        self.check(
            FileId::of_fd(std::io::stdout().as_fd()),
            "to standard output",
        )
    }
}

/// How an output file may treat what is there.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    /// Replace an existing file (`-f/--force`).
    pub force: bool,
    /// Keep a partial output under its name when the tool fails or is interrupted.
    pub keep_partial: bool,
}

/// An output being written. Call [`Output::finish`] when it is whole; dropped before that, a
/// file output is removed (or kept, with `keep_partial`) and the tool says which after its
/// error message.
pub struct Output {
    file: File,
    name: String,
    partial: Option<u64>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Output {
    /// Open the output: standard output when `path` is `None` or `-`, else the file (see the
    /// module documentation for what is refused).
    pub fn create(
        path: Option<&Path>,
        inputs: &Inputs,
        opts: OutputOptions,
    ) -> anyhow::Result<Output> {
        let path = match path {
            Some(p) if p.as_os_str() != "-" => p,
            _ => {
                inputs.check_stdout()?;
                let fd = std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("stdout")?;
                bak_core::device::enlarge_pipe(fd.as_fd(), 2 << 20);
                return Ok(Output {
                    file: File::from(fd),
                    name: "stdout".into(),
                    partial: None,
                });
            }
        };
        let shown = path.display().to_string();
        inputs.check(FileId::of_path(path), &shown)?;
        let meta = match std::fs::metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(bak_core::Error::io(path, "stat", e).into()),
        };
        if let Some(m) = &meta {
            let ft = m.file_type();
            if ft.is_dir() {
                bail!("{shown}: is a directory; give a file name for the output");
            }
            if ft.is_fifo() || ft.is_char_device() || ft.is_socket() {
                if ft.is_char_device() && bak_core::device::is_tty(path) {
                    bail!("{shown}: refusing to write binary output to a terminal");
                }
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| bak_core::Error::io(path, "open", e))?;
                return Ok(Output {
                    file,
                    name: shown,
                    partial: None,
                });
            }
            if !opts.force {
                bail!(
                    "{shown}: the file exists; give -f/--force to replace it (nothing was changed)"
                );
            }
        }
        // The name a rename lands on: through a symbolic link, the file it points to.
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
            }
            _ => path.to_path_buf(),
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = target
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let (file, temp) = tempfile::Builder::new()
            .prefix(&format!(".{base}."))
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(|e| bak_core::Error::io(&dir, "create a temporary file in", e))?
            .into_parts();
        let temp = temp
            .keep()
            .map_err(|e| bak_core::Error::io(&dir, "create a temporary file in", e.error))?;
        // The permissions a new file gets (tempfile makes it 0600).
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        lock_partials().push(Partial {
            id,
            temp,
            path: target,
            keep: opts.keep_partial,
            force: opts.force,
        });
        Ok(Output {
            file,
            name: shown,
            partial: Some(id),
        })
    }

    /// Where the bytes go.
    pub fn writer(&mut self) -> &mut File {
        &mut self.file
    }

    /// The output's name in messages (`stdout` or the path given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output is whole: a file goes into place under its name.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.file
            .flush()
            .map_err(|e| bak_core::Error::io(&self.name, "write", e))?;
        let Some(id) = self.partial.take() else {
            return Ok(());
        };
        let mut all = lock_partials();
        let Some(i) = all.iter().position(|p| p.id == id) else {
            bail!("{}: interrupted before the output was complete", self.name);
        };
        let p = all.remove(i);
        drop(all);
        signals::place(&p.temp, &p.path, p.force).map_err(|e| {
            let _ = std::fs::remove_file(&p.temp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{}: a file of that name appeared while writing; it was left alone and the output removed",
                    self.name
                )
            } else {
                anyhow::Error::new(bak_core::Error::io(&p.path, "rename into place", e))
            }
        })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let Some(id) = self.partial.take() else {
            return;
        };
        let mut all = lock_partials();
        if let Some(i) = all.iter().position(|p| p.id == id) {
            let p = all.remove(i);
            drop(all);
            if let Some(n) = signals::settle(&p) {
                signals::note(n);
            }
        }
    }
}

fn lock_partials() -> std::sync::MutexGuard<'static, Vec<Partial>> {
    PARTIALS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process's file mode creation mask (Linux reports it in /proc; 022 otherwise).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}
