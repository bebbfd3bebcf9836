//! Helpers shared by the integration tests: find the built tools, run them through real pipes,
//! make deterministic data, temporary directories, the SQL Server fixtures, and the layout of
//! bak media that the damage tests aim at.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bak_core::bytes::{parse_frame, Mbc, RecordType, FRAME_HEADER_LEN, RECORD_PREFIX_LEN};
use bak_core::internals::{read_label_file as read_label, scan_file as scan_family};

/// 64 KiB: the smallest block size, the one most tests write with.
pub const MTS: usize = 64 << 10;

/// A tool from the target directory the tests were built into. Cargo sets `CARGO_BIN_EXE_*`
/// only for a package's own binaries, so the tools are found beside `deps/` (the test command
/// builds the workspace first).
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

/// A fresh temporary directory, removed on drop; `tag` shows in its name.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("bak-test-{tag}-"))
        .tempdir()
        .expect("temp dir")
}

/// `n` device paths `<prefix>1.bak` .. `<prefix>n.bak` in `dir`.
pub fn devices(dir: &tempfile::TempDir, prefix: &str, n: usize) -> Vec<PathBuf> {
    (1..=n)
        .map(|i| dir.path().join(format!("{prefix}{i}.bak")))
        .collect()
}

/// A fresh temporary file holding `bytes`, named like `name` (`flip.bak` gives
/// `bak-mtf-flip-XXXXXX.bak`); removed when the returned path is dropped. An `MtfDevice` opened from
/// it keeps its file open, so the path may go as soon as the device is open.
pub fn temp_file(name: &str, bytes: &[u8]) -> tempfile::TempPath {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let mut f = tempfile::Builder::new()
        .prefix(&format!("bak-mtf-{stem}-"))
        .suffix(&format!(".{ext}"))
        .tempfile()
        .expect("temp file");
    f.write_all(bytes).expect("write temp file");
    f.into_temp_path()
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

/// Arguments from strings and paths: `args!["--json", &dev, &devs]`.
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
impl Arg for &Path {
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

/// `bak-write --quiet EXTRA.. DEVICE..` fed `input`.
pub fn write(devs: &[PathBuf], extra: &[&str], input: &[u8]) -> Output {
    let mut a = args!["--quiet"];
    a.extend(extra.iter().map(|s| s.into()));
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-write", &os(&a), input)
}

/// `bak-read --quiet EXTRA.. DEVICE..`.
pub fn read(devs: &[PathBuf], extra: &[&str]) -> Output {
    let mut a = args!["--quiet"];
    a.extend(extra.iter().map(|s| s.into()));
    a.extend(devs.iter().map(|p| p.into()));
    run("bak-read", &os(&a), b"")
}

/// One JSON value per line (the tools' `--json` output).
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out)
        .expect("--json output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The one seeded generator of the tests (xorshift64): the same cases on every run.
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (not 0: xorshift stays at 0).
    pub fn new(seed: u64) -> Rng {
        assert_ne!(seed, 0, "a xorshift seed of 0 stays 0");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Deterministic data: `len` bytes from a seeded generator, half of it compressible text.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut v = Vec::with_capacity(len);
    let mut line = 0u64;
    while v.len() < len {
        let x = rng.next_u64();
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

/// True when the tests run as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The name of the running test (libtest names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// Say that the running test skips (some or all of) its work: `SKIPPED: <test>: <why>` on
/// stderr, once per call. libtest keeps what `eprintln!` prints from a passing test to itself,
/// so unless it was told to show that output the same line also goes straight to the
/// process's stderr: every skip can be seen and counted (`cargo test 2>&1 | grep -c
/// '^SKIPPED:'`).
pub fn skip(why: &str) {
    let line = format!("SKIPPED: {}: {why}", test_name());
    eprintln!("{line}");
    let shown = std::env::args()
        .any(|a| a == "--nocapture" || a == "--no-capture" || a == "--show-output")
        || std::env::var_os("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0");
    if !shown {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Where the real SQL Server backups are unless `BAK_SQLSERVER_FIXTURES` names another folder.
const SQLSERVER_FIXTURES: &str = "../shared/fixtures/sqlserver";

/// The folder of real SQL Server backups: `../shared/fixtures/sqlserver/` beside the project, or
/// the folder that `BAK_SQLSERVER_FIXTURES` names. When it is absent (a clone outside this
/// workplace) the test is to skip: this says so (see [`skip`]) and gives `None`. Call it once,
/// at the start of a test.
pub fn fixtures_or_skip() -> Option<PathBuf> {
    let (dir, shown) = match std::env::var_os("BAK_SQLSERVER_FIXTURES") {
        Some(d) => (PathBuf::from(&d), PathBuf::from(d).display().to_string()),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(SQLSERVER_FIXTURES),
            SQLSERVER_FIXTURES.to_string(),
        ),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&format!("{shown} not found"));
        None
    }
}

/// The decompressed MTF stream of a compressed SQL Server backup (`bak-read --mtf`).
pub fn decompressed_mtf(f: &Path) -> Vec<u8> {
    let m = run("bak-read", &os(&args!["--quiet", "--mtf", f]), b"");
    assert_eq!(m.code, 0, "{}", m.stderr);
    m.stdout
}

// ---- bak media with two sets, and where each of their records lies ----

/// Two sets on three families `<prefix>1.bak`..`<prefix>3.bak`: set 1 zstd:3 (named "first",
/// "the first set", media name "golden"), set 2 uncompressed ("second"). The devices and the
/// two inputs.
pub fn two_sets_on_three_families(
    t: &tempfile::TempDir,
    prefix: &str,
) -> (Vec<PathBuf>, Vec<u8>, Vec<u8>) {
    let devs = devices(t, prefix, 3);
    let one = data(23 * MTS + 100, 1);
    let two = data(17 * MTS + 7, 2);
    let mut a = args![
        "--quiet",
        "--max-transfer-size",
        "64K",
        "--compress",
        "zstd:3",
        "--name",
        "first",
        "--description",
        "the first set",
        "--media-name",
        "golden"
    ];
    a.extend(devs.iter().map(|p| p.into()));
    assert_eq!(run("bak-write", &os(&a), &one).code, 0);
    let mut a = args!["--quiet", "--max-transfer-size", "64K", "--name", "second"];
    a.extend(devs.iter().map(|p| p.into()));
    assert_eq!(run("bak-write", &os(&a), &two).code, 0);
    (devs, one, two)
}

/// Byte ranges of every kind of record in a family file, found through the library.
pub fn regions(path: &Path) -> Vec<(&'static str, u64, u64)> {
    let f = std::fs::File::open(path).unwrap();
    let mut v = Vec::new();
    let label = read_label(&f, path).unwrap().unwrap();
    v.push((
        "media header",
        0,
        (RECORD_PREFIX_LEN + label.encode_body().len()) as u64,
    ));
    v.push((
        "set map slot",
        4096 + FRAME_HEADER_LEN as u64,
        4096 + FRAME_HEADER_LEN as u64 + 80,
    ));
    let bytes = std::fs::read(path).unwrap();
    let scan = scan_family(&f, path).unwrap();
    for s in &scan.sets {
        let e = &s.eset;
        let sh = e.set_header_offset as usize;
        let sh_len = u32::from_le_bytes(bytes[sh + 4..sh + 8].try_into().unwrap()) as u64 + 8;
        v.push((
            "set header",
            e.set_header_offset,
            e.set_header_offset + sh_len,
        ));
        let lc = e.set_header_offset + sh_len;
        let lc_len = u32::from_le_bytes(bytes[lc as usize + 4..lc as usize + 8].try_into().unwrap())
            as u64
            + 8;
        v.push(("leading config", lc, lc + lc_len));
        // An encrypted set's key records follow the leading config.
        let mut kr = lc + lc_len;
        while bytes.get(kr as usize + 8..kr as usize + 12) == Some(&b"BKKR"[..]) {
            let len =
                u32::from_le_bytes(bytes[kr as usize + 4..kr as usize + 8].try_into().unwrap())
                    as u64
                    + 8;
            v.push(("key record", kr, kr + len));
            kr += len;
        }
        v.push(("trailing config", e.trailing_offset, e.mbc_offset));
        v.push(("MBC", e.mbc_offset, e.self_offset));
        v.push(("end-of-set", e.self_offset, e.self_offset + 120));
        let at = bak_core::Location::device("x");
        let (_, body) = parse_frame(&bytes[e.mbc_offset as usize..], RecordType::Mbc, &at).unwrap();
        let m = Mbc::parse_body(body, &at).unwrap();
        for b in &m.entries {
            v.push(("block header", b.offset, b.offset + 88));
            v.push((
                "block payload",
                b.offset + 88,
                b.offset + 88 + b.stored_len as u64,
            ));
        }
    }
    v
}

/// Which set (1 or 2) a byte offset of a family file belongs to; 0 = outside both.
pub fn set_of(path: &Path, off: u64) -> u32 {
    let f = std::fs::File::open(path).unwrap();
    let scan = scan_family(&f, path).unwrap();
    for s in &scan.sets {
        if off >= s.eset.set_header_offset && off < s.eset.self_offset + 120 {
            return s.header.position;
        }
    }
    0
}

/// Send `sig` to a child process that has not been waited for.
pub fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child process we spawned and have not waited for yet.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Wait (up to 20 s) until a writer has put its media header on the device: by then it holds
/// the lock and its signal handlers are installed.
pub fn wait_for_label(d: &Path) {
    for _ in 0..2000 {
        if std::fs::metadata(d)
            .map(|m| m.len() >= 8192)
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never got its media header", d.display());
}

/// Wait up to `secs` for a child to end; kill it and fail when it does not.
pub fn wait_within(
    child: &mut std::process::Child,
    secs: u64,
    what: &str,
) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file name in a directory, sorted (to see that no temporary file was left).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// All a child wrote on its piped stderr (after it ended).
pub fn stderr_text(child: &mut std::process::Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut err)
        .expect("stderr");
    err
}
