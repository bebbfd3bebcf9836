//! Property tests: arbitrary bytes and options through the writer and back through the reader
//! (in-process, through bak-core), and the record reader fed by a reader that returns short
//! reads.

mod util;
use std::io::Read;
use std::sync::atomic::AtomicBool;

use bak_core::format::{Codec, RecordType};
use bak_core::media::RecordReader;
use bak_core::read::{open_all, read_set, ReadOptions};
use bak_core::write::{write_set, WriteOptions};
use proptest::prelude::*;
use util::TempDir;

fn round_trip(
    input: &[u8],
    n: usize,
    zstd: Option<i32>,
    mts_steps: u32,
    threads: usize,
    buffers: usize,
) -> Vec<u8> {
    let t = TempDir::new("prop");
    let devs = t.devices("p", n);
    let mut o = WriteOptions::new(devs.clone());
    o.codec = zstd.map_or(Codec::None, Codec::Zstd);
    o.max_transfer = mts_steps * (64 << 10);
    o.threads = threads;
    o.buffer_count = buffers;
    o.sync = false;
    let cancel = AtomicBool::new(false);
    let s = write_set(&mut &input[..], "input", &o, &|_| {}, &cancel).unwrap();
    assert_eq!(s.original_bytes, input.len() as u64);
    let mut shuffled = devs.clone();
    shuffled.rotate_left(n / 2);
    let opened = open_all(&shuffled).unwrap();
    let mut out = Vec::new();
    let ro = ReadOptions {
        threads,
        ..Default::default()
    };
    read_set(opened, &ro, &mut out, "out", &|_| {}, &cancel).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_gives_the_input_back(
        input in proptest::collection::vec(any::<u8>(), 0..400_000),
        repeat in 0usize..3,
        n in 1usize..5,
        zstd in proptest::option::of(1i32..6),
        mts_steps in 1u32..3,
        threads in 1usize..4,
        buffers in 2usize..12,
    ) {
        // Repeating the bytes makes some blocks compressible and some not.
        let input: Vec<u8> = input.iter().copied().cycle().take(input.len() * (repeat + 1)).collect();
        let out = round_trip(&input, n, zstd, mts_steps, threads, buffers);
        prop_assert!(out == input);
    }
}

/// Returns at most 7 bytes per read, as a slow pipe might.
struct Trickle<R>(R, usize);
impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let k = buf.len().min(self.1);
        self.0.read(&mut buf[..k])
    }
}

#[test]
fn the_record_reader_takes_short_reads() {
    let t = TempDir::new("short");
    let d = t.path("s.bak");
    let mut o = WriteOptions::new(vec![d.clone()]);
    o.max_transfer = 64 << 10;
    o.sync = false;
    let input = util::data(300_000, 5);
    write_set(&mut &input[..], "in", &o, &|_| {}, &AtomicBool::new(false)).unwrap();
    let bytes = std::fs::read(&d).unwrap();
    let kinds = |r: &mut dyn Read| {
        let mut rr = RecordReader::new(r, 0, bak_core::Location::device("s"));
        rr.skip(8192, "head").unwrap();
        let mut v = Vec::new();
        while let Some(rec) = rr.next_record().unwrap() {
            if rec.kind == RecordType::BlockHeader {
                let h =
                    bak_core::format::BlockHeader::parse_body(&rec.body, &rr.location()).unwrap();
                rr.skip(h.stored_len as u64, "payload").unwrap();
            }
            v.push((rec.kind, rec.offset, rec.body));
        }
        v
    };
    let whole = kinds(&mut &bytes[..]);
    let short = kinds(&mut Trickle(&bytes[..], 0));
    assert_eq!(whole.len(), short.len());
    assert!(whole == short);
    assert_eq!(whole.first().map(|r| r.0), Some(RecordType::SetHeader));
    assert_eq!(whole.last().map(|r| r.0), Some(RecordType::EndOfSet));
}
