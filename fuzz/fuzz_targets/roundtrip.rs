//! Arbitrary bytes and options through the writer and back through the reader must come out
//! equal: one to three families in memory, each codec, block sizes from 64 KiB, and an
//! appended second set read back by position as well. Every set is read back twice, the
//! families given in a shuffled order: from handles that read like files, and from handles
//! that read like pipes.
#![no_main]

use arbitrary::Arbitrary;
use bak_core::bytes::{Codec, MIN_TRANSFER};
use bak_core::device::{MemDevice, ReadDevice, WriteDevice};
use bak_core::{backup, open_devices, restore, BackupOptions, InitMode, RestoreOptions, Stop};
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
    /// The order the families are given in when read back (a permutation's index).
    order: u8,
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

/// The permutation of `0..n` numbered `k` (mod n!), by its factorial-base digits.
fn permutation(n: usize, mut k: usize) -> Vec<usize> {
    let mut left: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(n);
    while !left.is_empty() {
        let i = k % left.len();
        k /= left.len();
        out.push(left.remove(i));
    }
    out
}

fn read_back(devs: Vec<Box<dyn ReadDevice>>, position: u32, how: &str) -> Vec<u8> {
    let devs = open_devices(devs)
        .unwrap_or_else(|e| panic!("opening the media just written ({how}): {e}"));
    let opts = RestoreOptions {
        position,
        threads: 2,
        buffer_count: 0,
        ..Default::default()
    };
    let mut out = Vec::new();
    restore(devs, &opts, &mut out, "out", &|_| {}, &Stop::new())
        .unwrap_or_else(|e| panic!("reading back set {position} ({how}): {e}"));
    out
}

fn write(devices: &[MemDevice], data: &[u8], opts: &BackupOptions) -> bak_core::BackupSummary {
    let targets: Vec<Box<dyn WriteDevice>> = devices
        .iter()
        .map(|d| Box::new(d.handle()) as Box<dyn WriteDevice>)
        .collect();
    backup(
        &mut &data[..],
        "input",
        targets,
        opts,
        &|_| {},
        &Stop::new(),
    )
    .unwrap_or_else(|e| panic!("writing set ({:?}): {e}", opts.mode))
}

fuzz_target!(|input: Input| {
    let n = input.families as usize % 3 + 1;
    let devices: Vec<MemDevice> = (1..=n).map(|i| MemDevice::new(format!("f{i}"))).collect();
    let threads = input.threads as usize % 3 + 1;
    let mut opts = BackupOptions {
        codec: match input.codec % 9 {
            0 => Codec::None,
            c => Codec::Zstd(c as i32 - 4),
        },
        max_transfer: MIN_TRANSFER * (u32::from(input.transfer_steps) % 4 + 1),
        threads,
        buffer_count: match input.buffer_count as usize % 16 {
            0 => n * 4 + 2,
            // A pool needs two buffers (bak_core::limits): fewer is refused, not fuzzed.
            c => c.max(2),
        },
        // Names within their stated limit (longer ones are refused before anything is written).
        name: input
            .name
            .chars()
            .take(bak_core::limits::NAME_MAX_CHARS)
            .collect(),
        sync: false,
        mode: InitMode::Format,
        user: "fuzz".into(),
        host: "fuzz".into(),
        ..Default::default()
    };
    let first = expand(&input.data, input.repeat);
    let s = write(&devices, &first, &opts);
    assert_eq!(s.original_bytes, first.len() as u64);
    assert_eq!(s.position, 1);
    let mut sets = vec![first];
    if let Some(second) = &input.second {
        opts.mode = InitMode::Append;
        let s = write(&devices, second, &opts);
        assert_eq!(s.original_bytes, second.len() as u64);
        assert_eq!(s.position, 2);
        sets.push(second.clone());
    }
    let order = permutation(n, input.order as usize);
    for (i, want) in sets.iter().enumerate() {
        let position = i as u32 + 1;
        let files = order.iter().map(|&f| Box::new(devices[f].handle()) as _);
        // The pipes in the reverse of the files' order: a second arrangement for free.
        let pipes = order
            .iter()
            .rev()
            .map(|&f| Box::new(devices[f].stream()) as _);
        for (how, devs) in [("files", files.collect()), ("pipes", pipes.collect())] {
            let got = read_back(devs, position, how);
            assert!(
                got == *want,
                "set {position} comes back different from {how} in order {order:?}: {} bytes \
                 written, {} read",
                want.len(),
                got.len()
            );
        }
    }
});
