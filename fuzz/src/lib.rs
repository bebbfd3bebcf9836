//! What the fuzz targets share: an in-memory file for the readers that take a path or a
//! `File`, a reader that returns short reads, and the encode/parse round trip of a record.

use std::cell::RefCell;
use std::fmt::Debug;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;

use bak_core::format::{parse_frame, RecordType};
use bak_core::{Location, Result};

/// The location every target reports errors under.
pub fn at() -> Location {
    Location::device("fuzz")
}

thread_local! {
    static MEMFD: RefCell<Option<(File, PathBuf)>> = const { RefCell::new(None) };
}

/// Put `bytes` in an in-memory file (memfd, created once per thread and rewritten each time)
/// and call `f` with it and a path that opens it again (`/proc/self/fd/N`).
pub fn with_memfd<T>(bytes: &[u8], f: impl FnOnce(&File, &std::path::Path) -> T) -> T {
    MEMFD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (file, path) = slot.get_or_insert_with(|| {
            // SAFETY: a NUL-terminated name and no flags; the result is checked.
            let fd = unsafe { libc::memfd_create(c"bak-fuzz".as_ptr(), 0) };
            assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
            // SAFETY: `fd` was just created and is owned by nothing else.
            let file = unsafe { File::from_raw_fd(fd) };
            let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            (file, path)
        });
        file.set_len(0).expect("truncate memfd");
        use std::os::unix::fs::FileExt;
        file.write_all_at(bytes, 0).expect("write memfd");
        f(file, path)
    })
}

/// A reader over a slice that hands out at most a few bytes per call, the sizes cycling
/// through `steps` (a zero step is read as "the rest"), as a pipe might.
pub struct ShortReader<'a> {
    data: &'a [u8],
    steps: Vec<usize>,
    i: usize,
}

impl<'a> ShortReader<'a> {
    /// A reader over `data` with read sizes taken from `pattern`.
    pub fn new(data: &'a [u8], pattern: &[u8]) -> Self {
        let steps = if pattern.is_empty() {
            vec![0]
        } else {
            pattern.iter().map(|&b| b as usize * 17).collect()
        };
        ShortReader { data, steps, i: 0 }
    }
}

impl Read for ShortReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = self.steps[self.i % self.steps.len()];
        self.i = self.i.wrapping_add(1);
        let n = if step == 0 { buf.len() } else { step }
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A writer that keeps nothing and counts the bytes.
#[derive(Default)]
pub struct Sink(pub u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The fuzz body of one record type: parse the input as a body and as a whole frame; whatever
/// parses must encode to a frame that parses back to the same value.
pub fn record_target<T: PartialEq + Debug>(
    data: &[u8],
    kind: RecordType,
    parse: impl Fn(&[u8], &Location) -> Result<T>,
    encode: impl Fn(&T) -> Vec<u8>,
) {
    let at = at();
    let check = |v: T| {
        let frame = encode(&v);
        let (_, body) = parse_frame(&frame, kind, &at)
            .unwrap_or_else(|e| panic!("{} frame we encoded does not parse: {e}", kind.name()));
        let back = parse(body, &at)
            .unwrap_or_else(|e| panic!("{} body we encoded does not parse: {e}", kind.name()));
        assert_eq!(back, v, "{} changes through encode and parse", kind.name());
    };
    if let Ok(v) = parse(data, &at) {
        check(v);
    }
    if let Ok((_, body)) = parse_frame(data, kind, &at) {
        if let Ok(v) = parse(body, &at) {
            check(v);
        }
    }
}

/// Feed `bytes` through a pipe (a writer thread on one end) and call `f` with a path that opens
/// the read end, so the readers take their streaming paths.
pub fn with_pipe<T>(bytes: &[u8], f: impl FnOnce(&std::path::Path) -> T) -> T {
    static IGNORE_SIGPIPE: std::sync::Once = std::sync::Once::new();
    // A reader that stops early closes the pipe under the writer: an error, not a signal.
    // SAFETY: setting a signal disposition to SIG_IGN.
    IGNORE_SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors; the result is checked.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (r, mut w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let path = PathBuf::from(format!("/proc/self/fd/{}", r.as_raw_fd()));
    std::thread::scope(|s| {
        s.spawn(move || {
            let _ = w.write_all(bytes);
        });
        let res = f(&path);
        // Whatever the reader left unread, the writer must see the pipe close to finish.
        drop(r);
        res
    })
}

/// Open an MTF device at `path` and ask it everything the tools ask: label, HEADERONLY,
/// FILELISTONLY, the stream list, the data and log streams, the MTF copy and VERIFYONLY.
pub fn exercise_mtf(path: &std::path::Path) {
    use bak_core::mtf::{self, MtfDevice, StreamKind};
    let Ok(dev) = MtfDevice::open(path) else {
        return;
    };
    let _ = dev.label();
    let _ = (dev.family(), dev.family_count());
    let positions = dev.positions();
    let devs = [dev];
    let _ = mtf::header_only(&devs);
    let _ = mtf::file_list(&devs, None);
    for &p in positions.iter().take(4) {
        let _ = mtf::file_list(&devs, Some(p));
        let _ = mtf::list_streams(&devs, p);
        for kind in [StreamKind::Data, StreamKind::Log] {
            let mut out = Sink::default();
            if let Ok(n) = mtf::read_stream(&devs, p, kind, &mut out) {
                assert_eq!(
                    n, out.0,
                    "read_stream count disagrees with the bytes written"
                );
            }
        }
    }
    let mut out = Sink::default();
    if let Ok(n) = mtf::write_mtf(&devs[0], &mut out) {
        assert_eq!(n, out.0, "write_mtf count disagrees with the bytes written");
    }
    let _ = mtf::verify(&devs, None, false);
    let _ = mtf::verify(&devs, None, true);
}
