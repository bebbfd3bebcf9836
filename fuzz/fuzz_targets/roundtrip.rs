//! Arbitrary bytes and options through the writer and back through the reader must come out
//! equal: one to three families, each codec, block sizes from 64 KiB, and an appended second
//! set read back by position as well.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use arbitrary::Arbitrary;
use bak_core::format::{Codec, MIN_TRANSFER};
use bak_core::read::{open_all, read_set, ReadOptions};
use bak_core::write::{write_set, InitMode, WriteOptions};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    families: u8,
    /// 0: none; otherwise zstd at a level in -3..=4 (higher levels only cost time here).
    codec: u8,
    /// Max transfer in steps of 64 KiB: 1..=4 (up to 256 KiB, so small data spans blocks).
    transfer_steps: u8,
    /// The data is `data` repeated this many times (so inputs of a few KiB make many blocks).
    repeat: u8,
    threads: u8,
    buffer_count: u8,
    name: String,
    /// When given, a second set is appended and both are read back.
    second: Option<Vec<u8>>,
    data: Vec<u8>,
}

fn expand(data: &[u8], repeat: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() * (repeat as usize % 32 + 1));
    for i in 0..=(repeat as usize % 32) {
        // Vary the copies so compression does not see one long repeat.
        v.extend(data.iter().map(|b| b.wrapping_add(i as u8)));
    }
    v
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("bak-fuzz-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn read_back(devices: &[PathBuf], position: u32) -> Vec<u8> {
    let devs = open_all(devices).expect("open the media just written");
    let opts = ReadOptions {
        position,
        threads: 2,
        buffer_count: 0,
    };
    let mut out = Vec::new();
    read_set(
        devs,
        &opts,
        &mut out,
        "out",
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap_or_else(|e| panic!("reading back set {position}: {e}"));
    out
}

fuzz_target!(|input: Input| {
    let d = dir();
    let n = input.families as usize % 3 + 1;
    let devices: Vec<PathBuf> = (1..=n).map(|i| d.join(format!("f{i}.bak"))).collect();
    for p in &devices {
        let _ = std::fs::remove_file(p);
    }
    let mut opts = WriteOptions::new(devices.clone());
    opts.codec = match input.codec % 9 {
        0 => Codec::None,
        c => Codec::Zstd(c as i32 - 4),
    };
    opts.max_transfer = MIN_TRANSFER * (u32::from(input.transfer_steps) % 4 + 1);
    opts.threads = input.threads as usize % 3 + 1;
    opts.buffer_count = input.buffer_count as usize % 16;
    if opts.buffer_count == 0 {
        opts.buffer_count = n * 4 + 2;
    }
    opts.name = input.name.clone();
    opts.sync = false;
    opts.mode = InitMode::Format;
    opts.user = "fuzz".into();
    opts.host = "fuzz".into();
    let first = expand(&input.data, input.repeat);
    let cancel = AtomicBool::new(false);
    let s = write_set(&mut &first[..], "input", &opts, &|_| {}, &cancel)
        .unwrap_or_else(|e| panic!("writing set 1: {e}"));
    assert_eq!(s.original_bytes, first.len() as u64);
    assert_eq!(s.position, 1);
    let mut sets = vec![first];
    if let Some(second) = &input.second {
        opts.mode = InitMode::Append;
        let s = write_set(&mut &second[..], "input", &opts, &|_| {}, &cancel)
            .unwrap_or_else(|e| panic!("appending set 2: {e}"));
        assert_eq!(s.position, 2);
        sets.push(second.clone());
    }
    for (i, want) in sets.iter().enumerate() {
        let got = read_back(&devices, i as u32 + 1);
        assert!(
            got == *want,
            "set {} comes back different: {} bytes written, {} read",
            i + 1,
            want.len(),
            got.len()
        );
    }
});
