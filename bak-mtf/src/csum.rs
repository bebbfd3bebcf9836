//! The backup checksum of a SQL Server data or log stream (BACKUP ... WITH CHECKSUM): the
//! 4-byte `CSUM` stream that follows an MQDA or MQTL stream whose media attributes carry
//! [`ATTR_CSUM_FOLLOWS`].
//!
//! Worked out from the cmp2019 fixtures (docs/MTF.md, "CSUM"): the stream's data after its two
//! pad bytes is cut into 512-byte sectors; sector i (counted from 0 in each stream) gives S_i,
//! the XOR of its 128 little-endian u32 words; the checksum is the XOR over all sectors of
//! rotl32(S_i, 31 - i mod 32). It is SQL Server's page checksum construction carried over a
//! whole stream. Every stream in the fixtures has a multiple of 32 sectors, where this equals the
//! running form `c = rotl32(c, 1) ^ S_i`; the two differ by a rotation of n mod 32 otherwise, so
//! [`matches`] accepts either until a backup with another sector count settles it.

/// Media attribute bit of an MQDA/MQTL stream that a `CSUM` stream follows (observed 0x100,
/// alone or with 0x2 "variable").
pub(crate) const ATTR_CSUM_FOLLOWS: u16 = 0x100;
/// Length of a `CSUM` stream's data.
pub(crate) const CSUM_LEN: u64 = 4;

const SECTOR: usize = 512;

/// The checksum of one stream, fed its bytes in order in pieces of any size.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamSum {
    /// Sectors finished so far.
    sectors: u64,
    /// XOR of the current sector's words so far.
    acc: u32,
    /// Bytes of the current sector seen so far (0..512).
    fill: usize,
    sum: u32,
}

impl StreamSum {
    /// Add the next bytes of the stream.
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if !self.fill.is_multiple_of(4) || b.len() < 4 {
                // A word split between pieces: one byte at a time until aligned again.
                self.acc ^= u32::from(b[0]) << (8 * (self.fill % 4));
                self.fill += 1;
                b = &b[1..];
            } else {
                let take = (SECTOR - self.fill).min(b.len()) & !3;
                let (words, rest) = b.split_at(take);
                self.acc ^= xor_words(words);
                self.fill += take;
                b = rest;
            }
            if self.fill == SECTOR {
                self.end_sector();
            }
        }
    }

    fn end_sector(&mut self) {
        let rot = 31 - (self.sectors % 32) as u32;
        self.sum ^= self.acc.rotate_left(rot);
        self.sectors += 1;
        self.acc = 0;
        self.fill = 0;
    }

    /// The checksum and the number of sectors; a last partial sector counts as if padded with
    /// zeros.
    pub fn finish(mut self) -> (u32, u64) {
        if self.fill > 0 {
            self.end_sector();
        }
        (self.sum, self.sectors)
    }
}

/// XOR of the little-endian u32 words of `b` (whose length is a multiple of 4).
pub(crate) fn xor_words(b: &[u8]) -> u32 {
    // Eight lanes of u64 let the compiler vectorise; the halves fold at the end (XOR does not
    // care which word lands in which lane, only that each word keeps its byte order).
    let mut lanes = [0u64; 8];
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        for (l, w) in lanes.iter_mut().zip(c.chunks_exact(8)) {
            *l ^= u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        }
    }
    let x = lanes.iter().fold(0u64, |a, l| a ^ l);
    let mut acc = (x as u32) ^ ((x >> 32) as u32);
    for w in chunks.remainder().chunks_exact(4) {
        acc ^= u32::from_le_bytes(w.try_into().unwrap_or([0; 4]));
    }
    acc
}

/// The check value of a compressed chunk's payload (bytes 24..28 of its 28-byte header), and of
/// a chunk index's entries: the payload, zero-padded to a multiple of 4, as little-endian u32
/// words w; c = 0, then c = rotl32(c, 1) ^ w for each word. Verified on all 527 chunks and 4
/// indexes of the compressed fixtures.
pub fn chunk_check(payload: &[u8]) -> u32 {
    chunk_check_from(0, payload)
}

/// [`chunk_check`] continued from `c` over more bytes (every piece but the last a multiple of
/// 4 bytes long).
pub(crate) fn chunk_check_from(mut c: u32, payload: &[u8]) -> u32 {
    let mut words = payload.chunks_exact(4);
    for w in &mut words {
        c = c.rotate_left(1) ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 4];
        w[..rest.len()].copy_from_slice(rest);
        c = c.rotate_left(1) ^ u32::from_le_bytes(w);
    }
    c
}

/// True when `stored` is the checksum of a stream of `sectors` sectors whose indexed form is
/// `computed` (or its running form, which is `computed` rotated by `sectors` mod 32).
pub(crate) fn matches(stored: u32, computed: u32, sectors: u64) -> bool {
    stored == computed || stored == computed.rotate_left((sectors % 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, written plainly: whole stream in memory, one word at a time.
    fn reference(data: &[u8]) -> (u32, u64) {
        let mut sum = 0u32;
        let mut n = 0u64;
        for (i, sector) in data.chunks(SECTOR).enumerate() {
            let mut s = sector.to_vec();
            s.resize(SECTOR, 0);
            let x = s
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |a, w| a ^ w);
            sum ^= x.rotate_left(31 - (i as u32 % 32));
            n += 1;
        }
        (sum, n)
    }

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn pieces_of_any_size_give_the_definition() {
        for (n, seed) in [
            (0, 1),
            (3, 2),
            (512, 3),
            (513, 4),
            (40 * 512, 5),
            (70_001, 6),
        ] {
            let data = bytes(n, seed);
            let want = reference(&data);
            for step in [1usize, 3, 4, 7, 64, 511, 512, 4096, 1 << 20] {
                let mut s = StreamSum::default();
                for piece in data.chunks(step) {
                    s.feed(piece);
                }
                assert_eq!(s.finish(), want, "{n} bytes in pieces of {step}");
            }
        }
    }

    #[test]
    fn every_flipped_bit_changes_the_sum() {
        let data = bytes(64 * 512, 9);
        let (good, _) = reference(&data);
        for bit in (0..data.len() * 8).step_by(97) {
            let mut d = data.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            let mut s = StreamSum::default();
            s.feed(&d);
            assert_ne!(s.finish().0, good, "bit {bit}");
        }
    }

    #[test]
    fn chunk_check_of_known_payloads() {
        // c = 1, then rotl(1, 1) ^ 2 = 0; a 3-byte tail is padded with a zero byte.
        assert_eq!(chunk_check(&[]), 0);
        assert_eq!(chunk_check(&[1, 0, 0, 0, 2, 0, 0, 0]), 0);
        assert_eq!(chunk_check(&[1, 0, 0, 0, 0, 0, 0, 0]), 2);
        assert_eq!(chunk_check(&[0, 0, 0, 0x80, 5, 6, 7]), 0x0007_0604);
        let data = bytes(1001, 4);
        for bit in 0..data.len() * 8 {
            let mut d = data.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(chunk_check(&d), chunk_check(&data), "bit {bit}");
        }
    }

    #[test]
    fn running_form_is_accepted_for_other_sector_counts() {
        let data = bytes(48 * 512, 11);
        let (indexed, n) = reference(&data);
        let running = data
            .chunks(SECTOR)
            .map(|s| {
                s.chunks_exact(4)
                    .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .fold(0, |a, w| a ^ w)
            })
            .fold(0u32, |c, x| c.rotate_left(1) ^ x);
        assert_ne!(indexed, running);
        assert!(matches(running, indexed, n));
        assert!(matches(indexed, indexed, n));
        assert!(!matches(indexed ^ 1, indexed, n));
    }
}
