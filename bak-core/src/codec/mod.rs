//! Layer 3, per-block codecs: what turns a block of original bytes into its stored payload and
//! back, with the checks on the way. The one place that compresses, decompresses, computes a
//! payload CRC and checks a block's hash; backup, restore and verify all go through it.
//!
//! The chain has two stages: compression (zstd, or the raw zstd frame when compressing does
//! not pay), then, for an encrypted set, sealing ([`seal`]): compressed (or original) bytes are
//! sealed on the way out and opened before decompression on the way in, with the CRC over what
//! is stored, so the parity and `--fast` checks need no key. Key wrapping is [`keys`].

pub mod keys;
pub mod parity;
pub mod seal;

use std::sync::Arc;

use crate::bytes::{
    block_hash, check_raw_frame, check_sealed_frame, raw_block_header, raw_frame_header,
    raw_frame_len, raw_frame_pieces, sealed_frame_header, BlockCodec, BlockHeader, Codec, Digest,
    BLOCK_FLAG_LAST, RAW_BLOCK_MAX, SEALED_HEADER_LEN, SEALED_OVERHEAD,
};
use crate::error::{Error, Location, Result};
use seal::{BlockAad, KeyedDigest, SetKeys, TAG_LEN};

/// What encoding a block gave: the fields of its block header that describe the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoded {
    pub codec: BlockCodec,
    pub flags: u8,
    pub original_len: u32,
    pub stored_len: u32,
    pub crc: u32,
    pub hash: u64,
    /// A sealed payload's AEAD tag; the ciphertext is at the start of the buffer.
    pub tag: Option<[u8; TAG_LEN]>,
}

/// Encodes blocks for one worker thread; keeps its compression context and scratch buffer.
pub(crate) struct Encoder {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    buf_size: usize,
    keys: Option<Arc<SetKeys>>,
}

/// The fields of a block header that its seal binds.
fn header_aad(h: &BlockHeader) -> BlockAad {
    BlockAad {
        set_id: h.set_id,
        seq: h.seq,
        codec: h.codec,
        flags: h.flags,
        stored_len: h.stored_len,
        original_len: h.original_len,
        hash: h.original_hash,
    }
}

/// The end-to-end digest of a set being computed: plain (XXH3 tree) or keyed. One per
/// operation, on the stack of one thread: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SetDigest {
    Plain(Digest),
    Keyed(KeyedDigest),
}

impl SetDigest {
    pub fn new(keys: Option<&SetKeys>) -> Self {
        match keys {
            Some(k) => SetDigest::Keyed(k.digest()),
            None => SetDigest::Plain(Digest::new()),
        }
    }
    pub fn add_block(&mut self, hash: u64) {
        match self {
            SetDigest::Plain(d) => d.add_block(hash),
            SetDigest::Keyed(d) => d.add_block(hash),
        }
    }
    pub fn finish(self) -> [u8; 16] {
        match self {
            SetDigest::Plain(d) => d.finish(),
            SetDigest::Keyed(d) => d.finish(),
        }
    }
    /// The digest of a whole sequence of block hashes.
    pub fn of(keys: Option<&SetKeys>, hashes: impl IntoIterator<Item = u64>) -> [u8; 16] {
        let mut d = SetDigest::new(keys);
        for h in hashes {
            d.add_block(h);
        }
        d.finish()
    }
}

impl Encoder {
    /// An encoder for a set of `codec`; `keys` when the set is encrypted.
    pub fn new(codec: Codec, buf_size: usize, keys: Option<Arc<SetKeys>>) -> Result<Self> {
        let zstd = match codec {
            Codec::Zstd(level) => {
                let mut c = zstd::bulk::Compressor::new(level).map_err(|e| Error::Internal {
                    what: format!("zstd level {level} could not be set up"),
                    detail: Some(e.to_string()),
                })?;
                let _ = c.include_checksum(false);
                let _ = c.include_contentsize(true);
                let _ = c.include_dictid(false);
                Some(c)
            }
            Codec::None => None,
        };
        Ok(Encoder {
            zstd,
            scratch: Vec::new(),
            buf_size,
            keys,
        })
    }

    /// Encode block `seq` (the set's last when `last`) of the original bytes in `buf`.
    /// Returns the buffer that holds the stored payload: for zstd the compressed frame (in
    /// what was the scratch buffer; `buf` becomes the new scratch), for a raw frame `buf`
    /// itself, unchanged: the frame's headers are written around its pieces (zero-copy,
    /// vectored) by the device writer. Sealed, the buffer holds the ciphertext at its start,
    /// and the frame header and tag are written around it.
    pub fn encode(&mut self, seq: u64, last: bool, buf: Vec<u8>) -> (Vec<u8>, Encoded) {
        if let Some(keys) = self.keys.clone() {
            return self.seal(&keys, seq, last, buf);
        }
        let original_len = buf.len() as u32;
        let hash = block_hash(&buf);
        let raw_len = raw_frame_len(original_len) as usize;
        if let Some(c) = self.zstd.as_mut() {
            // The scratch buffer stays initialised, so zstd writes into a plain slice bounded
            // by the raw frame size: if the compressed frame would not be smaller, it does not
            // fit and the block is stored raw.
            if self.scratch.len() < self.buf_size {
                self.scratch.resize(self.buf_size, 0);
            }
            if let Ok(k) = c.compress_to_buffer(&buf[..], &mut self.scratch[..raw_len - 1]) {
                let crc = crc32fast::hash(&self.scratch[..k]);
                let out = std::mem::replace(&mut self.scratch, buf);
                return (
                    out,
                    Encoded {
                        codec: BlockCodec::Zstd,
                        flags: 0,
                        original_len,
                        stored_len: k as u32,
                        crc,
                        hash,
                        tag: None,
                    },
                );
            }
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&raw_frame_header(original_len));
        let count = (original_len as usize).div_ceil(RAW_BLOCK_MAX as usize);
        for (i, chunk) in buf.chunks(RAW_BLOCK_MAX as usize).enumerate() {
            crc.update(&raw_block_header(chunk.len() as u32, i + 1 == count));
            crc.update(chunk);
        }
        (
            buf,
            Encoded {
                codec: BlockCodec::Raw,
                flags: 0,
                original_len,
                stored_len: raw_len as u32,
                crc: crc.finalize(),
                hash,
                tag: None,
            },
        )
    }

    /// Encode for an encrypted set: compress when it pays (the frame must come out smaller
    /// than the original bytes), then seal in place.
    fn seal(&mut self, keys: &SetKeys, seq: u64, last: bool, buf: Vec<u8>) -> (Vec<u8>, Encoded) {
        let original_len = buf.len() as u32;
        let hash = keys.block_hash(seq, block_hash(&buf));
        let flags = if last { BLOCK_FLAG_LAST } else { 0 };
        let mut compressed = None;
        if let Some(c) = self.zstd.as_mut() {
            if self.scratch.len() < self.buf_size {
                self.scratch.resize(self.buf_size, 0);
            }
            let room = (original_len as usize).saturating_sub(1);
            if let Ok(k) = c.compress_to_buffer(&buf[..], &mut self.scratch[..room]) {
                compressed = Some(k);
            }
        }
        let (mut out, codec, plain_len) = match compressed {
            Some(k) => (
                std::mem::replace(&mut self.scratch, buf),
                BlockCodec::Zstd,
                k,
            ),
            None => {
                let n = buf.len();
                (buf, BlockCodec::Raw, n)
            }
        };
        let stored_len = plain_len as u32 + SEALED_OVERHEAD;
        let a = BlockAad {
            set_id: *keys.set_id(),
            seq,
            codec,
            flags,
            stored_len,
            original_len,
            hash,
        };
        let tag = keys.seal(&a, &mut out[..plain_len]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&sealed_frame_header(stored_len));
        crc.update(&out[..plain_len]);
        crc.update(&tag);
        (
            out,
            Encoded {
                codec,
                flags,
                original_len,
                stored_len,
                crc: crc.finalize(),
                hash,
                tag: Some(tag),
            },
        )
    }
}

/// Where a decoded block's original bytes lie in the buffer a decoder returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// In one run from this offset.
    At(usize),
    /// Inside a raw zstd frame, at [`raw_frame_pieces`].
    RawFrame,
}

#[cfg(test)]
impl Decoded {
    /// The (offset, length) runs of the original bytes of a block of `original_len` bytes.
    pub fn pieces(self, original_len: u32) -> Vec<(usize, usize)> {
        match self {
            Decoded::At(o) => vec![(o, original_len as usize)],
            Decoded::RawFrame => raw_frame_pieces(original_len).collect(),
        }
    }
}

/// The pieces of a stored raw payload around the original bytes in `data`, for a vectored
/// write: frame header, then (block header, chunk) pairs.
pub(crate) fn raw_pieces(data: &[u8]) -> (Vec<u8>, Vec<[u8; 3]>) {
    let n = data.len() as u32;
    let count = (n as usize).div_ceil(RAW_BLOCK_MAX as usize);
    let heads = data
        .chunks(RAW_BLOCK_MAX as usize)
        .enumerate()
        .map(|(i, c)| raw_block_header(c.len() as u32, i + 1 == count))
        .collect();
    (raw_frame_header(n).to_vec(), heads)
}

/// Check a stored payload against its block header: the CRC, and its framing (a raw frame's,
/// or a sealed payload's frame header). Needs no key and decodes nothing (`--fast`
/// verification, and the first step of decoding).
pub(crate) fn check_stored(
    h: &BlockHeader,
    payload: &[u8],
    sealed: bool,
    at: &Location,
) -> Result<()> {
    check_crc(h, crc32fast::hash(payload), at)?;
    if sealed {
        check_sealed_frame(payload, at)?;
    } else if h.codec == BlockCodec::Raw {
        check_raw_frame(payload, h.original_len, at)?;
    }
    Ok(())
}

fn not_authentic(at: &Location) -> Error {
    Error::corrupt(
        at.clone(),
        "block does not authenticate under the set's key: its bytes or header were damaged or \
         altered, or it was moved from another set or place",
    )
}

fn check_crc(h: &BlockHeader, crc: u32, at: &Location) -> Result<()> {
    if crc != h.payload_crc {
        return Err(Error::mismatch(
            at.clone(),
            "block payload CRC does not hold",
            format!("{:#010x}", h.payload_crc),
            format!("{crc:#010x}"),
        ));
    }
    Ok(())
}

/// Bytes fed to the CRC and the hash in turn: small enough that the hash reads what the CRC
/// just read from the L1 cache, so a raw payload is read from memory once.
const FUSED_STEP: usize = 16 << 10;

/// What [`check_stored`] and [`Decoder::check_original`] check of a raw payload (CRC, framing,
/// the hash of the original bytes), in one pass over its bytes: the restore's check.
fn check_raw(h: &BlockHeader, payload: &[u8], at: &Location) -> Result<()> {
    if check_raw_frame(payload, h.original_len, at).is_err() {
        // Damaged framing is reported as check_stored reports it: the CRC first.
        return check_stored(h, payload, false, at);
    }
    let mut crc = crc32fast::Hasher::new();
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    let mut done = 0;
    // The framing was checked: every piece lies inside the payload.
    for (off, len) in raw_frame_pieces(h.original_len) {
        crc.update(payload.get(done..off).unwrap_or(&[]));
        for part in payload
            .get(off..off + len)
            .unwrap_or(&[])
            .chunks(FUSED_STEP)
        {
            crc.update(part);
            hash.update(part);
        }
        done = off + len;
    }
    crc.update(payload.get(done..).unwrap_or(&[]));
    check_crc(h, crc.finalize(), at)?;
    check_hash(h, hash.digest(), at)
}

fn check_hash(h: &BlockHeader, got: u64, at: &Location) -> Result<()> {
    if got != h.original_hash {
        return Err(Error::mismatch(
            at.clone(),
            "block's original bytes do not match their hash",
            format!("{:#018x}", h.original_hash),
            format!("{got:#018x}"),
        ));
    }
    Ok(())
}

/// Decodes blocks for one worker thread; keeps its decompression context and scratch buffers.
pub(crate) struct Decoder {
    zstd: zstd::bulk::Decompressor<'static>,
    scratch: Vec<u8>,
    /// A sealed payload copied out of a read-only map to be opened in place (verify).
    opened: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Result<Self> {
        Ok(Decoder {
            zstd: zstd::bulk::Decompressor::new().map_err(|e| Error::Internal {
                what: "a zstd decompressor could not be set up".into(),
                detail: Some(e.to_string()),
            })?,
            scratch: Vec::new(),
            opened: Vec::new(),
        })
    }

    fn inflate(&mut self, h: &BlockHeader, payload: &[u8], at: &Location) -> Result<()> {
        let ol = h.original_len as usize;
        if self.scratch.len() < ol {
            self.scratch.resize(self.scratch.capacity().max(ol), 0);
        }
        let k = self
            .zstd
            .decompress_to_buffer(payload, &mut self.scratch[..ol])
            .map_err(|e| Error::corrupt(at.clone(), format!("zstd frame does not decode: {e}")))?;
        if k != ol {
            return Err(Error::mismatch(
                at.clone(),
                "block decodes to the wrong length",
                ol,
                k,
            ));
        }
        Ok(())
    }

    /// Check and decode the stored payload in `buf` for a restore (`keys`: the set is
    /// encrypted). Returns the buffer that holds the original bytes and where they lie: for
    /// zstd at its start (in what was the scratch buffer), for a raw frame `buf` itself with
    /// the bytes at [`raw_frame_pieces`], for a sealed raw payload `buf` itself with the bytes
    /// after the frame header. A sealed payload is authenticated before anything else is done
    /// with its bytes.
    ///
    /// A raw payload's original bytes are hashed too, as a full verify hashes them: a CRC that
    /// holds makes a wrong hash unlikely, not impossible (a 32-bit CRC is matched by one
    /// damage in 2^32, a faulty writer may match it every time), and bak-read must not write
    /// bytes that bak-verify calls bad. The hash is taken in the same pass as the CRC
    /// ([`check_raw`]), so the zero-copy path still reads each byte from memory once.
    pub fn restore(
        &mut self,
        h: &BlockHeader,
        mut buf: Vec<u8>,
        keys: Option<&SetKeys>,
        at: &Location,
    ) -> Result<(Vec<u8>, Decoded)> {
        let stored = h.stored_len as usize;
        if let Some(k) = keys {
            // The tag covers the stored bytes (and the header's fields, the hash among them):
            // where it holds, the CRC and a raw block's hash hold too, as the writer made them
            // from these very bytes, so the restore spends no pass on them (bak-verify checks
            // them all). A compressed block's decoded bytes are still checked against the hash.
            check_sealed_frame(&buf[..stored], at)?;
            if !k.open(&header_aad(h), &mut buf[SEALED_HEADER_LEN..stored]) {
                return Err(not_authentic(at));
            }
            let plain = &buf[SEALED_HEADER_LEN..stored - TAG_LEN];
            return match h.codec {
                BlockCodec::Raw => Ok((buf, Decoded::At(SEALED_HEADER_LEN))),
                BlockCodec::Zstd => {
                    self.inflate(h, plain, at)?;
                    let ol = h.original_len as usize;
                    check_hash(h, k.block_hash(h.seq, block_hash(&self.scratch[..ol])), at)?;
                    Ok((std::mem::replace(&mut self.scratch, buf), Decoded::At(0)))
                }
            };
        }
        let payload = &buf[..stored];
        match h.codec {
            BlockCodec::Raw => {
                check_raw(h, payload, at)?;
                Ok((buf, Decoded::RawFrame))
            }
            BlockCodec::Zstd => {
                check_stored(h, payload, false, at)?;
                self.inflate(h, payload, at)?;
                check_hash(h, block_hash(&self.scratch[..h.original_len as usize]), at)?;
                Ok((std::mem::replace(&mut self.scratch, buf), Decoded::At(0)))
            }
        }
    }

    /// Decode a payload whose stored bytes were already checked ([`check_stored`]) and check
    /// the original bytes against their hash, keeping nothing: a full verify. A sealed payload
    /// (`keys`) is copied and opened first.
    pub fn check_original(
        &mut self,
        h: &BlockHeader,
        payload: &[u8],
        keys: Option<&SetKeys>,
        at: &Location,
    ) -> Result<()> {
        if let Some(k) = keys {
            let sealed = payload.get(SEALED_HEADER_LEN..).unwrap_or(&[]);
            let mut opened = std::mem::take(&mut self.opened);
            opened.clear();
            opened.extend_from_slice(sealed);
            let r = (|| {
                if sealed.len() < TAG_LEN || !k.open(&header_aad(h), &mut opened[..]) {
                    return Err(not_authentic(at));
                }
                let plain = &opened[..sealed.len() - TAG_LEN];
                let got = match h.codec {
                    BlockCodec::Raw => block_hash(plain),
                    BlockCodec::Zstd => {
                        self.inflate(h, plain, at)?;
                        block_hash(&self.scratch[..h.original_len as usize])
                    }
                };
                check_hash(h, k.block_hash(h.seq, got), at)
            })();
            self.opened = opened;
            return r;
        }
        let got = match h.codec {
            BlockCodec::Raw => {
                let mut x = xxhash_rust::xxh3::Xxh3::new();
                for (o, l) in raw_frame_pieces(h.original_len) {
                    x.update(&payload[o..o + l]);
                }
                x.digest()
            }
            BlockCodec::Zstd => {
                self.inflate(h, payload, at)?;
                block_hash(&self.scratch[..h.original_len as usize])
            }
        };
        check_hash(h, got, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(e: &Encoded) -> BlockHeader {
        BlockHeader {
            set_id: [1; 16],
            seq: 0,
            family: 1,
            codec: e.codec,
            flags: e.flags,
            stored_len: e.stored_len,
            original_len: e.original_len,
            payload_crc: e.crc,
            position: 1,
            original_hash: e.hash,
        }
    }

    fn stored(buf: &[u8], e: &Encoded) -> Vec<u8> {
        if let Some(tag) = e.tag {
            let n = e.stored_len - SEALED_OVERHEAD;
            let mut v = sealed_frame_header(e.stored_len).to_vec();
            v.extend_from_slice(&buf[..n as usize]);
            v.extend_from_slice(&tag);
            return v;
        }
        match e.codec {
            BlockCodec::Zstd => buf[..e.stored_len as usize].to_vec(),
            BlockCodec::Raw => {
                let (fh, heads) = raw_pieces(buf);
                let mut v = fh;
                for (c, h) in buf.chunks(RAW_BLOCK_MAX as usize).zip(&heads) {
                    v.extend_from_slice(h);
                    v.extend_from_slice(c);
                }
                v
            }
        }
    }

    #[test]
    fn blocks_round_trip_through_both_codecs_and_damage_is_caught() {
        let at = Location::device("t");
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let mut noise = vec![0u8; 200_000];
        let mut x = 0x9e3779b97f4a7c15u64;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for (codec, data, want) in [
            (Codec::Zstd(1), text.clone(), BlockCodec::Zstd),
            (Codec::Zstd(1), noise.clone(), BlockCodec::Raw),
            (Codec::None, text.clone(), BlockCodec::Raw),
        ] {
            let mut enc = Encoder::new(codec, raw_frame_len(2 << 20) as usize, None).unwrap();
            let (buf, e) = enc.encode(0, false, data.clone());
            assert_eq!(e.codec, want);
            let h = header(&e);
            let s = stored(&buf, &e);
            let mut dec = Decoder::new().unwrap();
            dec.check_original(&h, &s, None, &at).unwrap();
            let mut padded = s.clone();
            padded.resize(raw_frame_len(2 << 20) as usize, 0);
            let (out, at_) = dec.restore(&h, padded, None, &at).unwrap();
            let got: Vec<u8> = at_
                .pieces(e.original_len)
                .into_iter()
                .flat_map(|(o, l)| out[o..o + l].to_vec())
                .collect();
            assert_eq!(got, data);
            let mut bad = s.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 4;
            assert!(check_stored(&h, &bad, false, &at).is_err());
        }
    }

    #[test]
    fn a_raw_payload_whose_crc_holds_but_whose_hash_does_not_is_refused_by_restore() {
        let at = Location::device("t");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
        let mut enc = Encoder::new(Codec::None, raw_frame_len(2 << 20) as usize, None).unwrap();
        let (buf, e) = enc.encode(0, false, data);
        let mut s = stored(&buf, &e);
        // A byte of the second chunk changed, and the CRC made to fit (a faulty writer, or
        // damage that a CRC32 does not see): only the hash tells.
        let (off, _) = raw_frame_pieces(e.original_len).nth(1).unwrap();
        s[off + 5] ^= 0x20;
        let mut h = header(&e);
        h.payload_crc = crc32fast::hash(&s);
        check_stored(&h, &s, false, &at).unwrap();
        let mut dec = Decoder::new().unwrap();
        let v = dec
            .check_original(&h, &s, None, &at)
            .unwrap_err()
            .to_string();
        let r = dec
            .restore(&h, s.clone(), None, &at)
            .unwrap_err()
            .to_string();
        assert!(r.contains("do not match their hash"), "{r}");
        assert_eq!(r, v, "restore and verify say the same");
        // Damaged framing: the CRC is what is reported, as check_stored reports it.
        let mut f = stored(&buf, &e);
        f[off - 2] ^= 1;
        let r = dec
            .restore(&header(&e), f.clone(), None, &at)
            .unwrap_err()
            .to_string();
        assert!(r.contains("CRC does not hold"), "{r}");
        assert_eq!(
            r,
            check_stored(&header(&e), &f, false, &at)
                .unwrap_err()
                .to_string()
        );
    }

    #[test]
    fn sealed_blocks_round_trip_and_refuse_another_key_place_or_flag() {
        let at = Location::device("t");
        let keys = Arc::new(SetKeys::derive(seal::Cipher::Aes256Gcm, &[3; 32], &[1; 16]).unwrap());
        let other = SetKeys::derive(seal::Cipher::Aes256Gcm, &[4; 32], &[1; 16]).unwrap();
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let mut x = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let size = crate::bytes::payload_capacity(2 << 20);
        for (codec, data, want) in [
            (Codec::Zstd(1), text.clone(), BlockCodec::Zstd),
            (Codec::Zstd(1), noise.clone(), BlockCodec::Raw),
            (Codec::None, text.clone(), BlockCodec::Raw),
        ] {
            let mut enc = Encoder::new(codec, size, Some(keys.clone())).unwrap();
            let (buf, e) = enc.encode(7, true, data.clone());
            assert_eq!(e.codec, want);
            assert_eq!(e.flags, BLOCK_FLAG_LAST);
            let h = header(&e);
            let h = BlockHeader { seq: 7, ..h };
            h.check_lengths(2 << 20, true, &at).unwrap();
            let s = stored(&buf, &e);
            assert_eq!(s.len(), e.stored_len as usize);
            // Nothing of the original is in the stored bytes.
            assert!(!s.windows(64).any(|w| data.windows(64).next() == Some(w)));
            check_stored(&h, &s, true, &at).unwrap();
            let mut dec = Decoder::new().unwrap();
            dec.check_original(&h, &s, Some(&keys), &at).unwrap();
            let mut padded = s.clone();
            padded.resize(size, 0);
            let (out, d) = dec.restore(&h, padded.clone(), Some(&keys), &at).unwrap();
            let got: Vec<u8> = d
                .pieces(e.original_len)
                .into_iter()
                .flat_map(|(o, l)| out[o..o + l].to_vec())
                .collect();
            assert_eq!(got, data);
            for (hh, k) in [
                (BlockHeader { seq: 8, ..h }, &*keys),
                (BlockHeader { flags: 0, ..h }, &*keys),
                (
                    BlockHeader {
                        set_id: [2; 16],
                        ..h
                    },
                    &*keys,
                ),
                (h, &other),
            ] {
                let r = dec.restore(&hh, padded.clone(), Some(k), &at);
                let r = r.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(r.contains("does not authenticate"), "{r}");
                let v = dec
                    .check_original(&hh, &s, Some(k), &at)
                    .unwrap_err()
                    .to_string();
                assert_eq!(r, v);
            }
        }
    }
}
