//! Payload geometry: the transfer-size rule and the raw zstd frame bak stores uncompressed
//! blocks in (docs/FORMAT.md, "Block payloads").

use super::frame::ZSTD_MAGIC;
use crate::error::{Error, Location, Result};

/// Smallest and largest max transfer size, and the step between them.
pub const MIN_TRANSFER: u32 = 64 << 10;
/// Largest max transfer size.
pub const MAX_TRANSFER: u32 = 4 << 20;

pub(crate) fn check_transfer(mts: u32, at: &Location) -> Result<()> {
    if !(MIN_TRANSFER..=MAX_TRANSFER).contains(&mts) || !mts.is_multiple_of(MIN_TRANSFER) {
        return Err(Error::mismatch(
            at.clone(),
            "max transfer size out of range",
            "64 KiB to 4 MiB in steps of 64 KiB",
            mts,
        ));
    }
    Ok(())
}

/// Largest zstd raw block.
pub const RAW_BLOCK_MAX: u32 = 128 << 10;
/// Bytes of the zstd frame header bak writes for a raw frame.
pub const RAW_FRAME_HEADER_LEN: usize = 9;

/// Bytes of a raw zstd frame holding `original` bytes.
pub fn raw_frame_len(original: u32) -> u64 {
    let blocks = (original as u64).div_ceil(RAW_BLOCK_MAX as u64).max(1);
    RAW_FRAME_HEADER_LEN as u64 + original as u64 + 3 * blocks
}

/// The most bytes a stored payload of `original` bytes may take: a compressed frame is kept
/// only when it is smaller than the raw frame.
pub fn max_stored_len(original: u32) -> u64 {
    raw_frame_len(original)
}

/// Magic of the zstd skippable frame a sealed payload rides in (nibble 0xC of the range, so it
/// is never taken for a bak record).
pub const SEALED_MAGIC: u32 = 0x184D_2A5C;
/// Bytes of the skippable frame header before a sealed payload's ciphertext.
pub const SEALED_HEADER_LEN: usize = 8;
/// Bytes a sealed payload adds to its plaintext: the frame header and the AEAD tag.
pub const SEALED_OVERHEAD: u32 = SEALED_HEADER_LEN as u32 + 16;

/// The frame header of a sealed payload whose stored length is `stored`.
pub fn sealed_frame_header(stored: u32) -> [u8; SEALED_HEADER_LEN] {
    let mut h = [0u8; SEALED_HEADER_LEN];
    h[..4].copy_from_slice(&SEALED_MAGIC.to_le_bytes());
    h[4..].copy_from_slice(&(stored - SEALED_HEADER_LEN as u32).to_le_bytes());
    h
}

/// Check that a sealed payload starts with the frame header bak writes for it.
pub fn check_sealed_frame(payload: &[u8], at: &Location) -> Result<()> {
    let ok = payload.len() >= SEALED_OVERHEAD as usize
        && payload.get(..SEALED_HEADER_LEN) == Some(&sealed_frame_header(payload.len() as u32)[..]);
    if !ok {
        return Err(Error::corrupt(
            at.clone(),
            "sealed payload frame header is not what bak writes",
        ));
    }
    Ok(())
}

/// The buffer a stored payload of at most `max_transfer` original bytes needs, sealed or not.
pub fn payload_capacity(max_transfer: u32) -> usize {
    (raw_frame_len(max_transfer) as usize).max((max_transfer + SEALED_OVERHEAD) as usize)
}

/// The header of a raw frame: magic, descriptor (single segment, 4-byte content size), size.
pub fn raw_frame_header(original: u32) -> [u8; RAW_FRAME_HEADER_LEN] {
    let mut h = [0u8; RAW_FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&ZSTD_MAGIC.to_le_bytes());
    h[4] = 0xA0; // FCS_flag = 2 (4 bytes), Single_Segment = 1, no checksum, no dictionary
    h[5..9].copy_from_slice(&original.to_le_bytes());
    h
}

/// The 3-byte header of a raw zstd block of `len` bytes.
pub fn raw_block_header(len: u32, last: bool) -> [u8; 3] {
    let v = (len << 3) | last as u32; // block type 0 (raw) in bits 1-2
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

/// The places of the original bytes inside a raw frame of `original` bytes: (frame offset, len).
pub fn raw_frame_pieces(original: u32) -> impl Iterator<Item = (usize, usize)> {
    let n = original as usize;
    let step = RAW_BLOCK_MAX as usize;
    (0..n.div_ceil(step)).map(move |i| {
        let start = i * step;
        let len = step.min(n - start);
        (RAW_FRAME_HEADER_LEN + i * (step + 3) + 3, len)
    })
}

/// Check that a raw frame's framing bytes are what bak writes.
pub fn check_raw_frame(frame: &[u8], original: u32, at: &Location) -> Result<()> {
    if frame.len() as u64 != raw_frame_len(original)
        || frame.get(..RAW_FRAME_HEADER_LEN) != Some(&raw_frame_header(original)[..])
    {
        return Err(Error::corrupt(
            at.clone(),
            "raw frame header is not what bak writes",
        ));
    }
    let step = RAW_BLOCK_MAX as usize;
    let count = (original as usize).div_ceil(step);
    for (i, (off, len)) in raw_frame_pieces(original).enumerate() {
        let h = raw_block_header(len as u32, i + 1 == count);
        if frame.get(off - 3..off) != Some(&h[..]) {
            return Err(Error::corrupt(
                at.clone(),
                "raw frame block header is not what bak writes",
            ));
        }
    }
    Ok(())
}
