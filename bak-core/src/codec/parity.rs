//! Reed-Solomon parity over the stored payloads of a stripe (docs/FORMAT.md, "Parity"), with
//! the `reed-solomon-simd` crate: encoding a stripe's parity shards as it is written, and
//! rebuilding the lost members of a stripe from those present.
//!
//! A stripe holds D data blocks (the last stripe of a set may hold fewer: the others are empty)
//! and K parity shards. Each data block's stored payload (its zstd frame, or its sealed frame)
//! is zero-padded to the shard length, the stripe's longest payload rounded up to 64 bytes
//! ([`shard_len_for`]); a missing member of a short stripe is all zeros. Parity is over stored
//! bytes, so computing, checking and rebuilding it needs no key.
//!
//! The code works on 64-byte columns independently, so a shard is fed in slices of
//! [`SLICE`] bytes through one encoder kept per thread: the same parity bytes as one call over
//! the whole shard, with the working set in cache (`tests::sliced_equals_whole`).
//!
//! **For other readers** (salvage, mirrors): [`rebuild_stripe`] takes what was found of a
//! stripe (the payloads read, `None` for each lost one, and the parity records with their
//! shards) and returns the lost blocks, header and payload, each checked against the CRC its
//! parity record gives. A caller needs at least as many parity shards as blocks lost.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::bytes::{shard_len_for, BlockHeader, ParityRecord};
use crate::error::{Error, Location, Result};

/// Bytes of a shard fed to the code at once.
pub const SLICE: usize = 64 << 10;

fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::Internal {
        what: "Reed-Solomon code".into(),
        detail: Some(e.to_string()),
    }
}

/// Copy bytes `[from, from + out.len())` of the concatenation of `pieces` into `out`,
/// zero-filling past their end.
fn gather(pieces: &[&[u8]], from: usize, out: &mut [u8]) {
    let mut pos = 0usize;
    let mut done = 0usize;
    for p in pieces {
        let end = pos + p.len();
        if end > from + done && done < out.len() {
            let start = from + done - pos;
            let n = (p.len() - start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&p[start..start + n]);
            done += n;
        }
        pos = end;
        if done == out.len() {
            return;
        }
    }
    out[done..].fill(0);
}

/// Computes the parity shards of stripes; one per writing thread, reused for every stripe.
pub struct ParityEncoder {
    enc: ReedSolomonEncoder,
    data: usize,
    parity: usize,
    scratch: Vec<u8>,
}

impl ParityEncoder {
    /// An encoder for stripes of `data` blocks and `parity` shards.
    pub fn new(data: usize, parity: usize) -> Result<Self> {
        Ok(ParityEncoder {
            enc: ReedSolomonEncoder::new(data, parity, SLICE).map_err(rs_err)?,
            data,
            parity,
            scratch: vec![0; SLICE],
        })
    }

    /// The parity of one stripe: `members[j]` is data block j's stored payload as the pieces
    /// it is written in (fewer than D members: the rest are empty). Each of `out` (K buffers)
    /// gets its shard: `shard_len` bytes, which must be the stripe's [`shard_len_for`].
    pub fn encode(
        &mut self,
        members: &[&[&[u8]]],
        shard_len: usize,
        out: &mut [Vec<u8>],
    ) -> Result<()> {
        debug_assert!(members.len() <= self.data && out.len() == self.parity);
        for o in out.iter_mut() {
            o.clear();
            o.resize(shard_len, 0);
        }
        let mut at = 0;
        while at < shard_len {
            let w = SLICE.min(shard_len - at);
            self.enc.reset(self.data, self.parity, w).map_err(rs_err)?;
            for j in 0..self.data {
                let s = &mut self.scratch[..w];
                match members.get(j) {
                    Some(m) => gather(m, at, s),
                    None => s.fill(0),
                }
                self.enc.add_original_shard(&*s).map_err(rs_err)?;
            }
            let r = self.enc.encode().map_err(rs_err)?;
            for (i, o) in out.iter_mut().enumerate() {
                let shard = r.recovery(i).ok_or_else(|| {
                    rs_err(reed_solomon_simd::Error::TooFewOriginalShards {
                        original_count: self.data,
                        original_received_count: 0,
                    })
                })?;
                o[at..at + w].copy_from_slice(shard);
            }
            at += w;
        }
        Ok(())
    }
}

/// Rebuilds lost members of stripes; one per reading thread, reused.
pub struct Rebuilder {
    dec: Option<ReedSolomonDecoder>,
    scratch: Vec<u8>,
}

impl Default for Rebuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Rebuilder {
    /// A rebuilder; its working space grows with the first stripe.
    pub fn new() -> Self {
        Rebuilder {
            dec: None,
            scratch: vec![0; SLICE],
        }
    }

    /// Rebuild shards: `data[j]` is data shard j (`None`: lost; shorter than `shard_len`:
    /// zero-padded), `parity[i]` parity shard i (`None`: lost). Returns, for each lost data
    /// shard in order, its index and `shard_len` bytes.
    pub fn rebuild_shards(
        &mut self,
        data: &[Option<&[u8]>],
        parity: &[Option<&[u8]>],
        shard_len: usize,
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let (d, k) = (data.len(), parity.len());
        let lost: Vec<usize> = (0..d).filter(|&j| data[j].is_none()).collect();
        let mut out: Vec<(usize, Vec<u8>)> =
            lost.iter().map(|&j| (j, vec![0u8; shard_len])).collect();
        if lost.is_empty() {
            return Ok(out);
        }
        let have = parity.iter().filter(|p| p.is_some()).count();
        if have < lost.len() {
            return Err(Error::Internal {
                what: "rebuild asked with fewer parity shards than blocks lost".into(),
                detail: Some(format!("{} lost, {have} parity shards", lost.len())),
            });
        }
        let mut at = 0;
        while at < shard_len {
            let w = SLICE.min(shard_len - at);
            let dec = match &mut self.dec {
                Some(dec) => {
                    dec.reset(d, k, w).map_err(rs_err)?;
                    dec
                }
                None => self
                    .dec
                    .insert(ReedSolomonDecoder::new(d, k, w).map_err(rs_err)?),
            };
            for (j, s) in data.iter().enumerate() {
                if let Some(s) = s {
                    let sc = &mut self.scratch[..w];
                    gather(&[s], at, sc);
                    dec.add_original_shard(j, &*sc).map_err(rs_err)?;
                }
            }
            for (i, p) in parity.iter().enumerate() {
                if let Some(p) = p {
                    let sc = &mut self.scratch[..w];
                    gather(&[p], at, sc);
                    dec.add_recovery_shard(i, &*sc).map_err(rs_err)?;
                }
            }
            let r = dec.decode().map_err(rs_err)?;
            for (j, o) in out.iter_mut() {
                let s = r.restored_original(*j).ok_or_else(|| Error::Internal {
                    what: "Reed-Solomon decoder gave no shard for a lost block".into(),
                    detail: None,
                })?;
                o[at..at + w].copy_from_slice(s);
            }
            at += w;
        }
        Ok(out)
    }
}

/// What a reader found of one stripe.
#[derive(Debug)]
pub struct StripeFound<'a> {
    /// Data family count D.
    pub data_count: usize,
    /// For each data block of the stripe in order (up to D), its stored payload as read and
    /// checked, or `None` when it is lost (missing family, CRC failed, unreadable header).
    pub blocks: Vec<Option<&'a [u8]>>,
    /// For each parity family in order (K), its parity record of this stripe and the shard
    /// (the bytes after the shard frame's 8-byte header), or `None` when lost.
    pub parity: Vec<Option<(&'a ParityRecord, &'a [u8])>>,
}

/// A block rebuilt from its stripe: its header (as the parity record describes it) and its
/// stored payload (its CRC checked against the header).
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The block's header.
    pub header: BlockHeader,
    /// The stored payload.
    pub payload: Vec<u8>,
}

/// How many blocks a stripe has and what each is: from any parity record present.
pub fn stripe_record<'a>(s: &StripeFound<'a>) -> Option<&'a ParityRecord> {
    s.parity.iter().flatten().map(|(r, _)| *r).next()
}

/// Rebuild the lost blocks of a stripe (`None` in `s.blocks`) from the blocks and parity
/// shards present, with a reused [`Rebuilder`]. Fails (as damage, at `at`) when more blocks
/// are lost than parity shards are present, when a shard has the wrong length, or when a
/// rebuilt payload's CRC is not the one its parity record names. The parity records present
/// must agree on the stripe's members; the first one's member list describes the blocks.
pub fn rebuild_stripe(
    r: &mut Rebuilder,
    s: &StripeFound<'_>,
    at: &Location,
) -> Result<Vec<Rebuilt>> {
    let Some(rec) = stripe_record(s) else {
        return Err(Error::corrupt(
            at.clone(),
            "a block of the stripe is lost and no parity record of it is left",
        ));
    };
    let members = &rec.members;
    let lost: Vec<usize> = (0..members.len())
        .filter(|&j| s.blocks.get(j).is_none_or(|b| b.is_none()))
        .collect();
    let have = s.parity.iter().filter(|p| p.is_some()).count();
    if lost.len() > have {
        return Err(Error::corrupt(
            at.clone(),
            format!(
                "stripe {}: {} blocks lost, only {have} parity shards left",
                rec.stripe,
                lost.len()
            ),
        ));
    }
    let shard_len = rec.shard_len as usize;
    let longest = members.iter().map(|m| m.stored_len).max().unwrap_or(0);
    if rec.shard_len != shard_len_for(longest) {
        return Err(Error::corrupt(
            at.clone(),
            "parity shard length does not fit its stripe",
        ));
    }
    for (p, sh) in s.parity.iter().flatten() {
        if p.members != rec.members || p.stripe != rec.stripe || sh.len() != shard_len {
            return Err(Error::corrupt(
                at.clone(),
                format!(
                    "stripe {}: the parity records disagree on its blocks",
                    rec.stripe
                ),
            ));
        }
    }
    let data: Vec<Option<&[u8]>> = (0..s.data_count)
        .map(|j| {
            if j < members.len() {
                s.blocks.get(j).copied().flatten()
            } else {
                Some(&[][..])
            }
        })
        .collect();
    let parity: Vec<Option<&[u8]>> = s.parity.iter().map(|p| p.map(|(_, sh)| sh)).collect();
    let shards = r.rebuild_shards(&data, &parity, shard_len)?;
    let mut out = Vec::with_capacity(shards.len());
    for (j, mut payload) in shards {
        let m = &members[j];
        payload.truncate(m.stored_len as usize);
        let crc = crc32fast::hash(&payload);
        if crc != m.payload_crc {
            return Err(Error::mismatch(
                at.clone().block(m.seq),
                "block rebuilt from parity does not have its CRC",
                format!("{:#010x}", m.payload_crc),
                format!("{crc:#010x}"),
            ));
        }
        out.push(Rebuilt {
            header: m.header(rec.set_id, rec.position),
            payload,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
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
    fn sliced_equals_whole() {
        let (d, k, len) = (3, 2, SLICE * 2 + 192);
        let data: Vec<Vec<u8>> = (0..d).map(|j| pseudo(len, j as u64 + 1)).collect();
        let mut whole = ReedSolomonEncoder::new(d, k, len).unwrap();
        for s in &data {
            whole.add_original_shard(s).unwrap();
        }
        let r = whole.encode().unwrap();
        let mut enc = ParityEncoder::new(d, k).unwrap();
        let pieces: Vec<Vec<&[u8]>> = data
            .iter()
            .map(|s| vec![&s[..100], &s[100..SLICE + 7], &s[SLICE + 7..]])
            .collect();
        let members: Vec<&[&[u8]]> = pieces.iter().map(|p| &p[..]).collect();
        let mut out = vec![Vec::new(); k];
        enc.encode(&members, len, &mut out).unwrap();
        for (i, o) in out.iter().enumerate() {
            assert_eq!(o.as_slice(), r.recovery(i).unwrap(), "parity shard {i}");
        }
    }

    #[test]
    fn every_loss_up_to_k_rebuilds() {
        for (d, k) in [(1, 1), (2, 1), (3, 2), (5, 3)] {
            let len = 256;
            let data: Vec<Vec<u8>> = (0..d).map(|j| pseudo(len - 3 * j, j as u64 + 9)).collect();
            let mut enc = ParityEncoder::new(d, k).unwrap();
            let pieces: Vec<[&[u8]; 1]> = data.iter().map(|s| [&s[..]]).collect();
            let members: Vec<&[&[u8]]> = pieces.iter().map(|p| &p[..]).collect();
            let mut par = vec![Vec::new(); k];
            enc.encode(&members, len, &mut par).unwrap();
            let mut rb = Rebuilder::new();
            for mask in 0u32..(1 << (d + k)) {
                if mask.count_ones() as usize > k || mask == 0 {
                    continue;
                }
                let ds: Vec<Option<&[u8]>> = (0..d)
                    .map(|j| (mask & (1 << j) == 0).then_some(&data[j][..]))
                    .collect();
                let ps: Vec<Option<&[u8]>> = (0..k)
                    .map(|i| (mask & (1 << (d + i)) == 0).then_some(&par[i][..]))
                    .collect();
                for (j, got) in rb.rebuild_shards(&ds, &ps, len).unwrap() {
                    assert_eq!(
                        &got[..data[j].len()],
                        &data[j][..],
                        "d {d} k {k} mask {mask:b}"
                    );
                    assert!(got[data[j].len()..].iter().all(|&b| b == 0));
                }
            }
        }
    }

    /// Pinned vectors: committed data and the parity this build must give for it, so that an
    /// upgrade of the Reed-Solomon crate that changed one byte of parity (and so could not
    /// rebuild media written before it) fails here.
    #[test]
    fn pinned_vectors() {
        let vectors: [(usize, usize, usize, &[u8], &[u8]); 3] = [
            (
                2,
                1,
                4096,
                include_bytes!("../../../tests/fixtures/parity/d2k1.data"),
                include_bytes!("../../../tests/fixtures/parity/d2k1.parity"),
            ),
            (
                4,
                2,
                SLICE + 128,
                include_bytes!("../../../tests/fixtures/parity/d4k2.data"),
                include_bytes!("../../../tests/fixtures/parity/d4k2.parity"),
            ),
            (
                5,
                3,
                1024,
                include_bytes!("../../../tests/fixtures/parity/d5k3.data"),
                include_bytes!("../../../tests/fixtures/parity/d5k3.parity"),
            ),
        ];
        for (d, k, len, data, parity) in vectors {
            assert_eq!(data.len(), d * len);
            let pieces: Vec<[&[u8]; 1]> = data.chunks(len).map(|c| [c]).collect();
            let members: Vec<&[&[u8]]> = pieces.iter().map(|p| &p[..]).collect();
            let mut enc = ParityEncoder::new(d, k).unwrap();
            let mut out = vec![Vec::new(); k];
            enc.encode(&members, len, &mut out).unwrap();
            if std::env::var_os("BAK_PIN_PARITY_VECTORS").is_some() {
                // Regenerate (only when the format's parity is meant to change).
                let p = format!(
                    "{}/../tests/fixtures/parity/d{d}k{k}.parity",
                    env!("CARGO_MANIFEST_DIR")
                );
                std::fs::write(p, out.concat()).unwrap();
                continue;
            }
            assert_eq!(parity.len(), k * len);
            assert!(
                out.concat() == parity,
                "parity of the pinned vector d{d}k{k} changed"
            );
            // And the parity rebuilds the first K data shards.
            let ds: Vec<Option<&[u8]>> = data
                .chunks(len)
                .enumerate()
                .map(|(j, c)| (j >= k).then_some(c))
                .collect();
            let ps: Vec<Option<&[u8]>> = parity.chunks(len).map(Some).collect();
            for (j, got) in Rebuilder::new().rebuild_shards(&ds, &ps, len).unwrap() {
                assert!(got == data[j * len..(j + 1) * len], "d{d}k{k} shard {j}");
            }
        }
    }
}
