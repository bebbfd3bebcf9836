//! crc32fast over an in-memory buffer, to give the machine's CRC32 ceiling.
//!
//! Usage: crc-speed [BUFFER_MIB] [SECONDS]   (defaults: 64 MiB, 2 s)
//! Prints one line: `crc32fast MB/s <value> (<bytes> bytes in <secs> s, buffer <n> MiB)`.
//! The buffer is larger than the caches so the figure includes memory bandwidth, as
//! bak-verify's must; MB is 10^6 bytes, as in RESULTS.md.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(64, |s| s.parse().expect("BUFFER_MIB"));
    let secs: f64 = args.next().map_or(2.0, |s| s.parse().expect("SECONDS"));

    // Pseudo-random fill (xorshift) so no page is the shared zero page.
    let mut buf = vec![0u8; mib << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in buf.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }

    // Warm up once (page faults, frequency), then time whole passes.
    let mut sink = crc32fast::hash(&buf);
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut bytes: u64 = 0;
    while start.elapsed() < budget {
        // 1 MiB blocks, as bak-verify checks one block at a time.
        for block in buf.chunks(1 << 20) {
            sink ^= crc32fast::hash(block);
        }
        bytes += buf.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "crc32fast MB/s {:.0} ({} bytes in {:.3} s, buffer {} MiB, checksum {:08x})",
        bytes as f64 / elapsed / 1e6,
        bytes,
        elapsed,
        mib,
        sink
    );
}
