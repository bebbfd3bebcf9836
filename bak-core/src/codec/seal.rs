//! The keys of an encrypted set and what they do to each block (docs/FORMAT.md,
//! "Encryption"): HKDF-SHA256 derives a block key, a metadata key and a hash key from the
//! set's random data key; a block is sealed with AES-256-GCM (or ChaCha20-Poly1305) under a
//! nonce made of its sequence number and flags, with its header's fields as associated data;
//! metadata records carry an HMAC-SHA256 under the metadata key; block hashes and the
//! end-to-end digest are keyed under the hash key. All of it from `ring`.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::bytes::{BlockCodec, Guid, BLOCK_FLAG_LAST};
use crate::error::{Error, Result};

/// Bytes of an AEAD tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a data key.
pub const DATA_KEY_LEN: usize = 32;
/// Bytes of a metadata MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// The AEAD of an encrypted set (the leading config's encryption algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM (id 1), for CPUs with AES and carry-less multiply instructions.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (id 2), for CPUs without them.
    ChaCha20Poly1305,
}

impl Cipher {
    /// The id stored in the leading config.
    pub fn id(self) -> u16 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }

    /// The cipher of an id, if this build knows it.
    pub fn from_id(id: u16) -> Option<Cipher> {
        match id {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The name people read (and `bak-header` shows as EncryptionAlgorithm).
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }

    /// The cipher for this CPU: AES-256-GCM where the CPU has AES instructions (and a
    /// carry-less multiply for GHASH), which makes it the fastest; ChaCha20-Poly1305 where it
    /// has not, as ChaCha20 in software is faster than AES in constant-time software.
    pub fn for_this_cpu() -> Cipher {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
            {
                return Cipher::Aes256Gcm;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("aes")
                && std::arch::is_aarch64_feature_detected!("pmull")
            {
                return Cipher::Aes256Gcm;
            }
        }
        Cipher::ChaCha20Poly1305
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

impl std::str::FromStr for Cipher {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "aes-256-gcm" | "aes256gcm" => Ok(Cipher::Aes256Gcm),
            "chacha20-poly1305" | "chacha20poly1305" => Ok(Cipher::ChaCha20Poly1305),
            _ => Err(format!(
                "unknown cipher {s:?}: give aes-256-gcm or chacha20-poly1305"
            )),
        }
    }
}

/// A fresh random data key.
pub(crate) fn new_data_key() -> Result<Zeroizing<[u8; DATA_KEY_LEN]>> {
    let mut k = Zeroizing::new([0u8; DATA_KEY_LEN]);
    SystemRandom::new()
        .fill(&mut k[..])
        .map_err(|_| Error::Internal {
            what: "the system's random number generator failed".into(),
            detail: None,
        })?;
    Ok(k)
}

/// The fields of a block header that its seal binds (docs/FORMAT.md, "Sealed payload").
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockAad {
    pub set_id: Guid,
    pub seq: u64,
    pub codec: BlockCodec,
    pub flags: u8,
    pub stored_len: u32,
    pub original_len: u32,
    /// The keyed hash of the original bytes.
    pub hash: u64,
}

/// The derived keys of one encrypted set.
pub(crate) struct SetKeys {
    cipher: Cipher,
    set_id: Guid,
    block: LessSafeKey,
    meta: hmac::Key,
    hash: hmac::Key,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes are far below HKDF-SHA256's 255 x 32 limit: expand cannot fail.
    if let Ok(okm) = prk.expand(&[info], Len(32)) {
        let _ = okm.fill(&mut out[..]);
    }
    out
}

/// HKDF info strings (docs/FORMAT.md, "Keys").
const INFO_BLOCK: &[u8] = b"bak 1.1 block key";
const INFO_META: &[u8] = b"bak 1.1 metadata key";
const INFO_HASH: &[u8] = b"bak 1.1 hash key";

impl SetKeys {
    /// Derive the set's keys from its data key; the set GUID is the HKDF salt.
    pub fn derive(cipher: Cipher, data_key: &[u8; DATA_KEY_LEN], set_id: &Guid) -> Result<SetKeys> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, set_id).extract(data_key);
        let block = expand(&prk, INFO_BLOCK);
        let meta = expand(&prk, INFO_META);
        let hash = expand(&prk, INFO_HASH);
        // Both AEADs take a 32-byte key.
        let unbound = UnboundKey::new(cipher.aead(), &block[..]).map_err(|_| Error::Internal {
            what: format!("{} refused a 32-byte key", cipher.name()),
            detail: None,
        })?;
        Ok(SetKeys {
            cipher,
            set_id: *set_id,
            block: LessSafeKey::new(unbound),
            meta: hmac::Key::new(hmac::HMAC_SHA256, &meta[..]),
            hash: hmac::Key::new(hmac::HMAC_SHA256, &hash[..]),
        })
    }

    /// The set's cipher.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The set the keys belong to.
    pub fn set_id(&self) -> &Guid {
        &self.set_id
    }

    /// The nonce: sequence number, then the flags as a u32 (bit 0 the last block; bits 1
    /// and 2, metadata and parity, never set on a data block and kept for sealed records of
    /// those kinds, so that they can never share a nonce with one).
    fn nonce(a: &BlockAad) -> Nonce {
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&a.seq.to_le_bytes());
        n[8..].copy_from_slice(&u32::from(a.flags & BLOCK_FLAG_LAST).to_le_bytes());
        Nonce::assume_unique_for_key(n)
    }

    fn aad(a: &BlockAad) -> [u8; 44] {
        let mut b = [0u8; 44];
        b[..16].copy_from_slice(&a.set_id);
        b[16..24].copy_from_slice(&a.seq.to_le_bytes());
        b[24] = match a.codec {
            BlockCodec::Raw => 0,
            BlockCodec::Zstd => 1,
        };
        b[25] = a.flags;
        // 26..28 reserved, zero
        b[28..32].copy_from_slice(&a.stored_len.to_le_bytes());
        b[32..36].copy_from_slice(&a.original_len.to_le_bytes());
        b[36..44].copy_from_slice(&a.hash.to_le_bytes());
        b
    }

    /// Seal `plain` in place; returns the tag.
    pub fn seal(&self, a: &BlockAad, plain: &mut [u8]) -> [u8; TAG_LEN] {
        let aad = Self::aad(a);
        let mut out = [0u8; TAG_LEN];
        // ring refuses only inputs longer than the AEAD's limit (GiBs): blocks are 4 MiB.
        if let Ok(tag) =
            self.block
                .seal_in_place_separate_tag(Self::nonce(a), Aad::from(&aad[..]), plain)
        {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    /// Open ciphertext-and-tag in place; `false` when it does not authenticate (the bytes are
    /// then not to be used).
    pub fn open(&self, a: &BlockAad, sealed: &mut [u8]) -> bool {
        let aad = Self::aad(a);
        self.block
            .open_in_place(Self::nonce(a), Aad::from(&aad[..]), sealed)
            .is_ok()
    }

    fn mac_ctx(key: &hmac::Key, tag: &[u8; 4], parts: &[&[u8]]) -> hmac::Context {
        let mut c = hmac::Context::with_key(key);
        c.update(tag);
        for p in parts {
            c.update(&(p.len() as u32).to_le_bytes());
            c.update(p);
        }
        c
    }

    /// The MAC of a metadata record of type `tag` over `parts` (each length-prefixed).
    pub fn mac(&self, tag: &[u8; 4], parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(Self::mac_ctx(&self.meta, tag, parts).sign().as_ref());
        out
    }

    /// Check a metadata MAC in constant time.
    pub fn check_mac(&self, tag: &[u8; 4], parts: &[&[u8]], mac: &[u8]) -> bool {
        let want = self.mac(tag, parts);
        // Constant time: every byte is compared whatever the first difference.
        want.len() == mac.len() && want.iter().zip(mac).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }

    /// The keyed hash of block `seq` whose original bytes have XXH3-64 `xxh`.
    pub fn block_hash(&self, seq: u64, xxh: u64) -> u64 {
        let mut m = [0u8; 16];
        m[..8].copy_from_slice(&seq.to_le_bytes());
        m[8..].copy_from_slice(&xxh.to_le_bytes());
        let t = Self::mac_ctx(&self.hash, b"BKBH", &[&m]).sign();
        let mut h = [0u8; 8];
        h.copy_from_slice(&t.as_ref()[..8]);
        u64::from_le_bytes(h)
    }

    /// A keyed digest, fed the block hashes in sequence order.
    pub fn digest(&self) -> KeyedDigest {
        let mut c = hmac::Context::with_key(&self.hash);
        c.update(b"BKDG");
        KeyedDigest(c)
    }
}

/// The keyed end-to-end digest being computed.
#[derive(Clone)]
pub(crate) struct KeyedDigest(hmac::Context);

impl KeyedDigest {
    pub fn add_block(&mut self, hash: u64) {
        self.0.update(&hash.to_le_bytes());
    }
    pub fn finish(self) -> [u8; 16] {
        let mut d = [0u8; 16];
        d.copy_from_slice(&self.0.sign().as_ref()[..16]);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(seq: u64, flags: u8, len: u32) -> BlockAad {
        BlockAad {
            set_id: [1; 16],
            seq,
            codec: BlockCodec::Raw,
            flags,
            stored_len: len + 24,
            original_len: len,
            hash: 5,
        }
    }

    #[test]
    fn a_sealed_block_opens_only_in_its_place_under_its_key() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let k = SetKeys::derive(cipher, &[7; 32], &[1; 16]).unwrap();
            let plain: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
            let mut b = plain.clone();
            let a = aad(3, 0, 5000);
            let tag = k.seal(&a, &mut b);
            assert_ne!(b, plain);
            let mut s = b.clone();
            s.extend_from_slice(&tag);
            let mut ok = s.clone();
            assert!(k.open(&a, &mut ok));
            assert_eq!(&ok[..5000], &plain[..]);
            // Another sequence number, the last flag, another set, another key, a flipped bit.
            for (key, at) in [
                (
                    SetKeys::derive(cipher, &[7; 32], &[1; 16]).unwrap(),
                    aad(4, 0, 5000),
                ),
                (
                    SetKeys::derive(cipher, &[7; 32], &[1; 16]).unwrap(),
                    aad(3, 1, 5000),
                ),
                (SetKeys::derive(cipher, &[7; 32], &[2; 16]).unwrap(), a),
                (SetKeys::derive(cipher, &[8; 32], &[1; 16]).unwrap(), a),
            ] {
                let mut t = s.clone();
                assert!(!key.open(&at, &mut t));
            }
            let mut t = s.clone();
            t[100] ^= 1;
            assert!(!k.open(&a, &mut t));
        }
    }

    #[test]
    fn keyed_hashes_depend_on_the_key_and_the_place() {
        let a = SetKeys::derive(Cipher::Aes256Gcm, &[1; 32], &[1; 16]).unwrap();
        let b = SetKeys::derive(Cipher::Aes256Gcm, &[2; 32], &[1; 16]).unwrap();
        assert_ne!(a.block_hash(0, 42), b.block_hash(0, 42));
        assert_ne!(a.block_hash(0, 42), a.block_hash(1, 42));
        assert_eq!(a.block_hash(0, 42), a.block_hash(0, 42));
        let mac = a.mac(b"BKTC", &[b"x"]);
        assert!(a.check_mac(b"BKTC", &[b"x"], &mac));
        assert!(!a.check_mac(b"BKTC", &[b"y"], &mac));
        assert!(!a.check_mac(b"BKKR", &[b"x"], &mac));
        assert!(!b.check_mac(b"BKTC", &[b"x"], &mac));
        // Length prefixes: moving a byte between parts changes the MAC.
        assert_ne!(
            a.mac(b"BKKR", &[b"ab", b"c"]),
            a.mac(b"BKKR", &[b"a", b"bc"])
        );
        let mut d = a.digest();
        d.add_block(1);
        let mut e = b.digest();
        e.add_block(1);
        assert_ne!(d.finish(), e.finish());
    }

    #[test]
    fn cipher_ids_and_names_round_trip() {
        for c in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            assert_eq!(Cipher::from_id(c.id()), Some(c));
            assert_eq!(c.name().parse::<Cipher>(), Ok(c));
        }
        assert_eq!(Cipher::from_id(0), None);
        assert_eq!(Cipher::from_id(3), None);
    }
}
