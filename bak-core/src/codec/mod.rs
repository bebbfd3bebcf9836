//! Layer 3, per-block codecs: what turns a block of original bytes into its stored payload and
//! back, with the checks on the way. The one place that compresses, decompresses, computes a
//! payload CRC and checks a block's hash; backup, restore and verify all go through it.
//!
//! The chain today is one stage, compression (zstd, or the raw zstd frame when compressing
//! does not pay). Encryption will be the next stage: sealed after compression on the way out,
//! opened before decompression on the way in, with the CRC over what is stored (so the parity
//! and `--fast` checks need no key).

use crate::bytes::{
    block_hash, check_raw_frame, raw_block_header, raw_frame_header, raw_frame_len,
    raw_frame_pieces, BlockCodec, BlockHeader, Codec, RAW_BLOCK_MAX,
};
use crate::error::{Error, Location, Result};

/// What encoding a block gave: the fields of its block header that describe the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoded {
    pub codec: BlockCodec,
    pub original_len: u32,
    pub stored_len: u32,
    pub crc: u32,
    pub hash: u64,
}

/// Encodes blocks for one worker thread; keeps its compression context and scratch buffer.
pub(crate) struct Encoder {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    buf_size: usize,
}

impl Encoder {
    pub fn new(codec: Codec, buf_size: usize) -> Result<Self> {
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
        })
    }

    /// Encode the original bytes in `buf`. Returns the buffer that holds the stored payload:
    /// for zstd the compressed frame (in what was the scratch buffer; `buf` becomes the new
    /// scratch), for a raw frame `buf` itself, unchanged: the frame's headers are written
    /// around its pieces (zero-copy, vectored) by the device writer.
    pub fn encode(&mut self, buf: Vec<u8>) -> (Vec<u8>, Encoded) {
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
                        original_len,
                        stored_len: k as u32,
                        crc,
                        hash,
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
                original_len,
                stored_len: raw_len as u32,
                crc: crc.finalize(),
                hash,
            },
        )
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

/// Check a stored payload against its block header: the CRC, and for a raw frame its framing.
/// Needs no key and decodes nothing (`--fast` verification, and the first step of decoding).
pub(crate) fn check_stored(h: &BlockHeader, payload: &[u8], at: &Location) -> Result<()> {
    check_crc(h, crc32fast::hash(payload), at)?;
    if h.codec == BlockCodec::Raw {
        check_raw_frame(payload, h.original_len, at)?;
    }
    Ok(())
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
        return check_stored(h, payload, at);
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

/// Decodes blocks for one worker thread; keeps its decompression context and scratch buffer.
pub(crate) struct Decoder {
    zstd: zstd::bulk::Decompressor<'static>,
    scratch: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Result<Self> {
        Ok(Decoder {
            zstd: zstd::bulk::Decompressor::new().map_err(|e| Error::Internal {
                what: "a zstd decompressor could not be set up".into(),
                detail: Some(e.to_string()),
            })?,
            scratch: Vec::new(),
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

    /// Check and decode the stored payload in `buf` for a restore. Returns the buffer that
    /// holds the original bytes: for zstd the decoded bytes at its start (in what was the
    /// scratch buffer), for a raw frame `buf` itself with the bytes at [`raw_frame_pieces`].
    ///
    /// A raw payload's original bytes are hashed too, as a full verify hashes them: a CRC that
    /// holds makes a wrong hash unlikely, not impossible (a 32-bit CRC is matched by one
    /// damage in 2^32, a faulty writer may match it every time), and bak-read must not write
    /// bytes that bak-verify calls bad. The hash is taken in the same pass as the CRC
    /// ([`check_raw`]), so the zero-copy path still reads each byte from memory once.
    pub fn restore(&mut self, h: &BlockHeader, buf: Vec<u8>, at: &Location) -> Result<Vec<u8>> {
        let payload = &buf[..h.stored_len as usize];
        match h.codec {
            BlockCodec::Raw => {
                check_raw(h, payload, at)?;
                Ok(buf)
            }
            BlockCodec::Zstd => {
                check_stored(h, payload, at)?;
                self.inflate(h, payload, at)?;
                check_hash(h, block_hash(&self.scratch[..h.original_len as usize]), at)?;
                Ok(std::mem::replace(&mut self.scratch, buf))
            }
        }
    }

    /// Decode a payload whose stored bytes were already checked ([`check_stored`]) and check
    /// the original bytes against their hash, keeping nothing: a full verify.
    pub fn check_original(&mut self, h: &BlockHeader, payload: &[u8], at: &Location) -> Result<()> {
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
            stored_len: e.stored_len,
            original_len: e.original_len,
            payload_crc: e.crc,
            position: 1,
            original_hash: e.hash,
        }
    }

    fn stored(buf: &[u8], e: &Encoded) -> Vec<u8> {
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
            let mut enc = Encoder::new(codec, raw_frame_len(2 << 20) as usize).unwrap();
            let (buf, e) = enc.encode(data.clone());
            assert_eq!(e.codec, want);
            let h = header(&e);
            let s = stored(&buf, &e);
            let mut dec = Decoder::new().unwrap();
            dec.check_original(&h, &s, &at).unwrap();
            let mut padded = s.clone();
            padded.resize(raw_frame_len(2 << 20) as usize, 0);
            let out = dec.restore(&h, padded, &at).unwrap();
            let got: Vec<u8> = match e.codec {
                BlockCodec::Zstd => out[..data.len()].to_vec(),
                BlockCodec::Raw => raw_frame_pieces(e.original_len)
                    .flat_map(|(o, l)| out[o..o + l].to_vec())
                    .collect(),
            };
            assert_eq!(got, data);
            let mut bad = s.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 4;
            assert!(check_stored(&h, &bad, &at).is_err());
        }
    }

    #[test]
    fn a_raw_payload_whose_crc_holds_but_whose_hash_does_not_is_refused_by_restore() {
        let at = Location::device("t");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
        let mut enc = Encoder::new(Codec::None, raw_frame_len(2 << 20) as usize).unwrap();
        let (buf, e) = enc.encode(data);
        let mut s = stored(&buf, &e);
        // A byte of the second chunk changed, and the CRC made to fit (a faulty writer, or
        // damage that a CRC32 does not see): only the hash tells.
        let (off, _) = raw_frame_pieces(e.original_len).nth(1).unwrap();
        s[off + 5] ^= 0x20;
        let mut h = header(&e);
        h.payload_crc = crc32fast::hash(&s);
        check_stored(&h, &s, &at).unwrap();
        let mut dec = Decoder::new().unwrap();
        let v = dec.check_original(&h, &s, &at).unwrap_err().to_string();
        let r = dec.restore(&h, s.clone(), &at).unwrap_err().to_string();
        assert!(r.contains("do not match their hash"), "{r}");
        assert_eq!(r, v, "restore and verify say the same");
        // Damaged framing: the CRC is what is reported, as check_stored reports it.
        let mut f = stored(&buf, &e);
        f[off - 2] ^= 1;
        let r = dec
            .restore(&header(&e), f.clone(), &at)
            .unwrap_err()
            .to_string();
        assert!(r.contains("CRC does not hold"), "{r}");
        assert_eq!(
            r,
            check_stored(&header(&e), &f, &at).unwrap_err().to_string()
        );
    }
}
