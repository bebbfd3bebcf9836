//! What the fuzz targets share: the fuzz input as an in-memory device (read like a file or like
//! a pipe), a reader that returns short reads, and the encode/parse round trip of a record.

use std::fmt::Debug;
use std::io::{self, Read, Write};

use bak_core::bytes::{parse_frame, RecordType};
use bak_core::device::{MemDevice, ReadDevice};
use bak_core::{Location, Result};

/// The name of the device every target reads, and the location it reports errors under.
pub const DEVICE: &str = "fuzz";

/// The location every target reports errors under.
pub fn at() -> Location {
    Location::device(DEVICE)
}

/// The fuzz input as an in-memory device: [`MemDevice::handle`] reads it like a file (every
/// capability), [`MemDevice::stream`] like a pipe (front to back only).
pub fn device(bytes: &[u8]) -> MemDevice {
    MemDevice::with_bytes(DEVICE, bytes.to_vec())
}

/// A handle on `dev` that reads like a file, boxed as the operations take it.
pub fn file(dev: &MemDevice) -> Box<dyn ReadDevice> {
    Box::new(dev.handle())
}

/// A handle on `dev` that reads like a pipe, boxed as the operations take it.
pub fn pipe(dev: &MemDevice) -> Box<dyn ReadDevice> {
    Box::new(dev.stream())
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

/// Open an MTF device on `dev` and ask it everything the tools ask: label, HEADERONLY,
/// FILELISTONLY, the stream list, the data and log streams, the MTF copy and VERIFYONLY.
pub fn exercise_mtf(dev: Box<dyn ReadDevice>) {
    use bak_mtf::{MtfDevice, StreamKind};
    let Ok(dev) = MtfDevice::from_device(dev) else {
        return;
    };
    let _ = dev.label();
    let _ = (dev.name(), dev.family(), dev.family_count());
    let positions = dev.positions();
    let devs = [dev];
    let _ = bak_mtf::header_only(&devs);
    let _ = bak_mtf::file_list(&devs, None);
    for &p in positions.iter().take(4) {
        let _ = bak_mtf::file_list(&devs, Some(p));
        let _ = bak_mtf::list_streams(&devs, p);
        for kind in [StreamKind::Data, StreamKind::Log] {
            let mut out = Sink::default();
            if let Ok(n) = bak_mtf::read_stream(&devs, p, kind, &mut out, "out") {
                assert_eq!(
                    n, out.0,
                    "read_stream count disagrees with the bytes written"
                );
            }
        }
    }
    let mut out = Sink::default();
    if let Ok(n) = bak_mtf::write_mtf(&devs[0], &mut out, "out") {
        assert_eq!(n, out.0, "write_mtf count disagrees with the bytes written");
    }
    let _ = bak_mtf::verify(&devs, None, false);
    let _ = bak_mtf::verify(&devs, None, true);
}
