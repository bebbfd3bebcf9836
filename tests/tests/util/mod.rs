//! Helpers shared by the integration tests: find the built tools, run them through real pipes,
//! make deterministic data.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target directory the tests were built into (tools are built by the test command first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first (the README's test command does)",
        p.display()
    );
    p
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("bak-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn devices(&self, prefix: &str, n: usize) -> Vec<PathBuf> {
        (1..=n)
            .map(|i| self.path(&format!("{prefix}{i}.bak")))
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished tool run gave.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Run a tool with `stdin` fed through a real pipe (from another thread) and both outputs
/// collected.
pub fn run(tool: &str, args: &[&std::ffi::OsStr], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin(tool))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let mut si = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = si.write_all(&data);
    });
    let mut so = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let mut se = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut se)
        .expect("stderr");
    let status = child.wait().expect("wait");
    let _ = feeder.join();
    let stdout = reader.join().expect("reader");
    Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: se,
    }
}

/// Convenience: arguments from strings and paths.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => {{
        let mut v: Vec<std::ffi::OsString> = Vec::new();
        $( $crate::util::push_arg(&mut v, $a); )*
        v
    }};
}

pub trait Arg {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>);
}
impl Arg for &str {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>) {
        v.push(self.into());
    }
}
impl Arg for String {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>) {
        v.push(self.into());
    }
}
impl Arg for &PathBuf {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>) {
        v.push(self.into());
    }
}
impl Arg for &Vec<PathBuf> {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>) {
        v.extend(self.iter().map(|p| p.into()));
    }
}
impl Arg for &[PathBuf] {
    fn push_to(self, v: &mut Vec<std::ffi::OsString>) {
        v.extend(self.iter().map(|p| p.into()));
    }
}
pub fn push_arg(v: &mut Vec<std::ffi::OsString>, a: impl Arg) {
    a.push_to(v);
}

pub fn os(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

/// Deterministic data: `len` bytes from a seeded generator, half of it compressible text.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    let mut line = 0u64;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x >> 60) & 1 == 0 {
            v.extend_from_slice(&x.to_le_bytes());
        } else {
            line += 1;
            v.extend_from_slice(format!("row {line} value {}\n", x % 1000).as_bytes());
        }
    }
    v.truncate(len);
    v
}

/// True when an external program is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A real SQL Server backup from `../shared/fixtures/sqlserver/` (beside the project), or `None`
/// with a SKIPPED line when that folder is absent (a clone outside this workplace).
pub fn sql_fixture(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/sqlserver"
    ))
    .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared SQL Server fixtures are not beside the project)",
            p.display()
        );
        None
    }
}
