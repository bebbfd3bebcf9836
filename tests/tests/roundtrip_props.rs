//! Property tests: arbitrary bytes and options through the writer and back through the reader
//! (in process, through bak-core).

use bak_core::bytes::Codec;
use bak_core::{
    backup, open_backup_devices, open_paths, restore, BackupOptions, RestoreOptions, Stop,
};
use proptest::prelude::*;

use crate::util::{devices, temp_dir};

fn round_trip(
    input: &[u8],
    n: usize,
    zstd: Option<i32>,
    mts_steps: u32,
    threads: usize,
    buffers: usize,
) -> Vec<u8> {
    let t = temp_dir("prop");
    let devs = devices(&t, "p", n);
    let o = BackupOptions {
        codec: zstd.map_or(Codec::None, Codec::Zstd),
        max_transfer: mts_steps * (64 << 10),
        threads,
        buffer_count: buffers,
        sync: false,
        ..Default::default()
    };
    let stop = Stop::new();
    let targets = open_backup_devices(&devs, o.max_transfer).unwrap();
    let s = backup(&mut &input[..], "input", targets, &o, &|_| {}, &stop).unwrap();
    assert_eq!(s.original_bytes, input.len() as u64);
    let mut shuffled = devs.clone();
    shuffled.rotate_left(n / 2);
    let opened = open_paths(&shuffled).unwrap();
    let mut out = Vec::new();
    let ro = RestoreOptions {
        threads,
        ..Default::default()
    };
    restore(opened, &ro, &mut out, "out", &|_| {}, &stop).unwrap();
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
