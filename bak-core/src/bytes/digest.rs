//! The end-to-end digest of a backup set (docs/FORMAT.md, "Digest"): XXH3-128 over the
//! little-endian XXH3-64 of each block's original bytes, in sequence order. The one place that
//! computes it; backup, restore and verify all use it.

/// The hash of one block's original bytes, as the block header and MBC store it.
pub fn block_hash(original: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(original)
}

/// The digest of a set, fed one block hash at a time in sequence order.
#[derive(Clone, Default)]
pub struct Digest(xxhash_rust::xxh3::Xxh3);

impl Digest {
    /// An empty digest.
    pub fn new() -> Self {
        Digest::default()
    }
    /// Add the next block's hash.
    pub fn add_block(&mut self, hash: u64) {
        self.0.update(&hash.to_le_bytes());
    }
    /// The digest of the blocks added so far.
    pub fn finish(&self) -> [u8; 16] {
        self.0.digest128().to_le_bytes()
    }
    /// The digest of a whole sequence of block hashes.
    pub fn of(hashes: impl IntoIterator<Item = u64>) -> [u8; 16] {
        let mut d = Digest::new();
        for h in hashes {
            d.add_block(h);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_sensitive_and_incremental() {
        let a = Digest::of([1, 2, 3]);
        let mut d = Digest::new();
        d.add_block(1);
        d.add_block(2);
        d.add_block(3);
        assert_eq!(a, d.finish());
        assert_ne!(a, Digest::of([2, 1, 3]));
    }
}
