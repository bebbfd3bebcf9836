//! Every record type of bak media, with `encode` and `parse_body`. docs/FORMAT.md is the spec;
//! the offsets here are its tables. All integers are little-endian.

use super::frame::*;
use super::payload::*;
use crate::error::{Error, Location, Result};

/// Bit 0 of the media header flags: the set map frame follows the media header.
pub const MEDIA_FLAG_SET_MAP: u32 = 1;

/// The media header (label) that starts every family file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHeader {
    /// GUID shared by all families of the media set.
    pub media_set_id: Guid,
    /// GUID of this family.
    pub family_id: Guid,
    /// Number of families in the media set (1..=64), parity families included.
    pub family_count: u16,
    /// This family's number, counted from 1.
    pub family_number: u16,
    /// Volume number within the family, counted from 1 (room for spanning volumes).
    pub media_sequence: u16,
    /// Number of mirrors of the media set (1 = no mirror; room for MIRROR TO).
    pub mirror_count: u16,
    /// Which mirror this is, counted from 1.
    pub mirror_number: u16,
    /// How many of the families hold parity: the last ones, `family_count - parity_count + 1`
    /// to `family_count` (format 1.2; 0 without parity).
    pub parity_count: u16,
    /// Flags, [`MEDIA_FLAG_SET_MAP`].
    pub flags: u32,
    /// Creation time, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
    /// Media name (MEDIANAME).
    pub media_name: String,
    /// Media description (MEDIADESCRIPTION).
    pub media_description: String,
    /// Software that formatted the media.
    pub software_name: String,
    /// Its version.
    pub software_version: String,
    /// Volumes 2 and later only: the offset in the family at which this volume's bytes (those
    /// after its label) go on. 0 on volume 1, where it is not written.
    pub volume_start: u64,
}

impl MediaHeader {
    /// The body bytes.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.bytes(&self.media_set_id)
            .bytes(&self.family_id)
            .u16(self.family_count)
            .u16(self.family_number)
            .u16(self.media_sequence)
            .u16(self.mirror_count)
            .u16(self.mirror_number)
            .u16(self.parity_count)
            .u32(self.flags)
            .i64(self.created_us)
            .u64(SET_MAP_OFFSET)
            .str(&self.media_name)
            .str(&self.media_description)
            .str(&self.software_name)
            .str(&self.software_version);
        // A continuation volume says where it goes on; volume 1 is byte for byte as in 1.0.
        if self.media_sequence > 1 {
            p.u64(self.volume_start);
        }
        p.0
    }

    /// The whole frame, padded to [`MEDIA_HEADER_SPAN`].
    pub fn encode(&self) -> Vec<u8> {
        encode_record(
            RecordType::MediaHeader,
            &self.encode_body(),
            Some(MEDIA_HEADER_SPAN as usize),
        )
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "media header");
        let mut h = MediaHeader {
            media_set_id: g.arr()?,
            family_id: g.arr()?,
            family_count: g.u16()?,
            family_number: g.u16()?,
            media_sequence: g.u16()?,
            mirror_count: g.u16()?,
            mirror_number: g.u16()?,
            parity_count: g.u16()?,
            flags: g.u32()?,
            created_us: g.i64()?,
            media_name: {
                let map_at = g.u64()?;
                if map_at != SET_MAP_OFFSET {
                    return Err(Error::mismatch(
                        at.clone(),
                        "media header names an impossible set map offset",
                        SET_MAP_OFFSET,
                        map_at,
                    ));
                }
                g.str()?
            },
            media_description: g.str()?,
            software_name: g.str()?,
            software_version: g.str()?,
            volume_start: 0,
        };
        if h.media_sequence == 0 {
            return Err(Error::mismatch(
                at.clone(),
                "media sequence number out of range",
                "1 or more",
                0,
            ));
        }
        if h.media_sequence > 1 {
            h.volume_start = g.u64()?;
        }
        if h.family_count == 0 || h.family_count > 64 {
            return Err(Error::mismatch(
                at.clone(),
                "family count out of range",
                "1 to 64",
                h.family_count,
            ));
        }
        if h.parity_count != 0 && h.parity_count >= h.family_count {
            return Err(Error::mismatch(
                at.clone(),
                "parity family count out of range",
                format!("0 to {}", h.family_count - 1),
                h.parity_count,
            ));
        }
        if h.family_number == 0 || h.family_number > h.family_count {
            return Err(Error::mismatch(
                at.clone(),
                "family number out of range",
                format!("1 to {}", h.family_count),
                h.family_number,
            ));
        }
        Ok(h)
    }
}

/// One slot of the set map: where the last complete set ends. Rewritten in place on seekable
/// devices after a set is complete and synced; the valid slot with the highest generation wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetMapSlot {
    /// Generation; higher is newer.
    pub generation: u64,
    /// Number of backup sets complete on this family.
    pub complete_sets: u32,
    /// Offset of the last complete set's end-of-set frame (0 when none).
    pub last_eset_offset: u64,
    /// Offset where that set ends: the append point.
    pub end_offset: u64,
    /// The media set the slot belongs to.
    pub media_set_id: Guid,
}

impl SetMapSlot {
    /// The slot's record bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.u64(self.generation)
            .u32(self.complete_sets)
            .u32(0)
            .u64(self.last_eset_offset)
            .u64(self.end_offset)
            .bytes(&self.media_set_id);
        encode_record(RecordType::SetMap, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "set map slot");
        let generation = g.u64()?;
        let complete_sets = g.u32()?;
        g.skip(4)?;
        Ok(SetMapSlot {
            generation,
            complete_sets,
            last_eset_offset: g.u64()?,
            end_offset: g.u64()?,
            media_set_id: g.arr()?,
        })
    }

    /// The whole set map frame with this slot in both A and B places.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SET_MAP_SPAN as usize);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&((SET_MAP_SPAN as u32) - FRAME_HEADER_LEN as u32).to_le_bytes());
        let slot = self.encode();
        out.extend_from_slice(&slot);
        out.resize(SET_MAP_SLOT_B as usize, 0);
        out.extend_from_slice(&slot);
        out.resize(SET_MAP_SPAN as usize, 0);
        out
    }
}

/// Codec of a backup set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as zstd raw-block frames.
    None,
    /// zstd at a level.
    Zstd(i32),
}

impl Codec {
    fn code(self) -> (u8, i8) {
        match self {
            Codec::None => (0, 0),
            Codec::Zstd(l) => (1, l.clamp(-128, 127) as i8),
        }
    }
    fn from_code(c: u8, level: i8, at: &Location) -> Result<Self> {
        match c {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Zstd(level as i32)),
            x => Err(Error::mismatch(
                at.clone(),
                "unknown codec",
                "0 (none) or 1 (zstd)",
                x,
            )),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Zstd(l) => write!(f, "zstd:{l}"),
        }
    }
}

/// Digest algorithm id 1: XXH3-128 over the XXH3-64 of each block (docs/FORMAT.md).
pub const DIGEST_XXH3_TREE: u8 = 1;
/// Digest algorithm id 2: keyed, HMAC-SHA256 under the set's hash key over its keyed block
/// hashes (encrypted sets, docs/FORMAT.md "Encryption").
pub const DIGEST_KEYED: u8 = 2;
/// Block checksum algorithm id 1: CRC32 (IEEE) of the stored payload.
pub const CHECKSUM_CRC32: u8 = 1;

/// The backup set header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetHeader {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// GUID of the media set.
    pub media_set_id: Guid,
    /// Position on the media, counted from 1.
    pub position: u32,
    /// Families the set spans.
    pub family_count: u16,
    /// This family's number.
    pub family_number: u16,
    /// Start time, microseconds since the epoch, UTC.
    pub start_us: i64,
    /// Expiration time, microseconds since the epoch, UTC; 0 = none.
    pub expire_us: i64,
    /// Codec.
    pub codec: Codec,
    /// Max transfer size (largest original block).
    pub max_transfer: u32,
    /// Backup name.
    pub name: String,
    /// Backup description.
    pub description: String,
    /// User who ran the backup.
    pub user: String,
    /// Host that ran it.
    pub host: String,
    /// What the source was ("stdin", or the input path).
    pub source: String,
    /// Software name.
    pub software_name: String,
    /// Software version.
    pub software_version: String,
}

impl SetHeader {
    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let (c, l) = self.codec.code();
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .bytes(&self.media_set_id)
            .u32(self.position)
            .u16(self.family_count)
            .u16(self.family_number)
            .i64(self.start_us)
            .i64(self.expire_us)
            .u8(c)
            .u8(l as u8)
            .u16(0)
            .u32(self.max_transfer)
            .str(&self.name)
            .str(&self.description)
            .str(&self.user)
            .str(&self.host)
            .str(&self.source)
            .str(&self.software_name)
            .str(&self.software_version);
        encode_record(RecordType::SetHeader, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "backup set header");
        let set_id = g.arr()?;
        let media_set_id = g.arr()?;
        let position = g.u32()?;
        let family_count = g.u16()?;
        let family_number = g.u16()?;
        let start_us = g.i64()?;
        let expire_us = g.i64()?;
        let c = g.u8()?;
        let l = g.u8()? as i8;
        g.skip(2)?;
        let max_transfer = g.u32()?;
        let h = SetHeader {
            set_id,
            media_set_id,
            position,
            family_count,
            family_number,
            start_us,
            expire_us,
            codec: Codec::from_code(c, l, at)?,
            max_transfer,
            name: g.str()?,
            description: g.str()?,
            user: g.str()?,
            host: g.str()?,
            source: g.str()?,
            software_name: g.str()?,
            software_version: g.str()?,
        };
        check_transfer(h.max_transfer, at)?;
        if position == 0 {
            return Err(Error::mismatch(
                at.clone(),
                "set position out of range",
                "1 or more",
                0,
            ));
        }
        Ok(h)
    }
}

/// The leading configuration: everything a restore needs, written before the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadingConfig {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Codec.
    pub codec: Codec,
    /// Digest algorithm ([`DIGEST_XXH3_TREE`]).
    pub digest_algorithm: u8,
    /// Block checksum algorithm ([`CHECKSUM_CRC32`]).
    pub checksum_algorithm: u8,
    /// Max transfer size.
    pub max_transfer: u32,
    /// Data families (all families less the parity families).
    pub family_count: u16,
    /// Parity families (format 1.2; 0 without parity).
    pub parity_count: u16,
    /// Encryption algorithm: 0 none, 1 AES-256-GCM, 2 ChaCha20-Poly1305.
    pub encryption: u16,
    /// Key records that follow the leading config (0 for a set without encryption).
    pub key_records: u16,
    /// Size of the input when known in advance, else `u64::MAX`.
    pub expected_size: u64,
    /// Family GUIDs, in family order: every family, data and parity.
    pub family_ids: Vec<Guid>,
}

impl LeadingConfig {
    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let (c, l) = self.codec.code();
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .u8(c)
            .u8(l as u8)
            .u8(self.digest_algorithm)
            .u8(self.checksum_algorithm)
            .u32(self.max_transfer)
            .u16(self.family_count)
            .u16(self.parity_count)
            .u16(self.encryption)
            .u16(self.key_records)
            .u64(self.expected_size);
        for f in &self.family_ids {
            p.bytes(f);
        }
        encode_record(RecordType::LeadingConfig, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "leading config");
        let set_id = g.arr()?;
        let c = g.u8()?;
        let l = g.u8()? as i8;
        let codec = Codec::from_code(c, l, at)?;
        let digest_algorithm = g.u8()?;
        let checksum_algorithm = g.u8()?;
        let max_transfer = g.u32()?;
        check_transfer(max_transfer, at)?;
        let family_count = g.u16()?;
        let parity_count = g.u16()?;
        let encryption = g.u16()?;
        let key_records = g.u16()?;
        let expected_size = g.u64()?;
        // The list holds every family, data and parity (format 1.2).
        let all = family_count as usize + parity_count as usize;
        if g.rest() != all * 16 {
            return Err(Error::mismatch(
                at.clone(),
                "leading config family list has the wrong length",
                all * 16,
                g.rest(),
            ));
        }
        let mut family_ids = Vec::with_capacity(all);
        for _ in 0..all {
            family_ids.push(g.arr()?);
        }
        if !matches!(digest_algorithm, DIGEST_XXH3_TREE | DIGEST_KEYED)
            || checksum_algorithm != CHECKSUM_CRC32
        {
            return Err(Error::Unsupported {
                device: at.device.clone(),
                what: format!(
                    "digest algorithm {digest_algorithm} / checksum algorithm \
                     {checksum_algorithm} not known to this build"
                ),
            });
        }
        if encryption > ENCRYPTION_MAX {
            return Err(Error::Unsupported {
                device: at.device.clone(),
                what: format!("encryption algorithm {encryption} is not known to this build"),
            });
        }
        if family_count == 0 || all > 64 {
            return Err(Error::mismatch(
                at.clone(),
                "leading config family counts out of range",
                "1 to 64 families, at least one of them data",
                format!("{family_count} data and {parity_count} parity families"),
            ));
        }
        // An encrypted set has keyed hashes and key records; a plain one neither.
        let encrypted = encryption != 0;
        if encrypted != (digest_algorithm == DIGEST_KEYED) || encrypted != (key_records != 0) {
            return Err(Error::mismatch(
                at.clone(),
                "leading config's encryption, digest and key records disagree",
                if encrypted {
                    "keyed digest (2) and at least one key record"
                } else {
                    "digest 1 and no key record"
                },
                format!("digest {digest_algorithm}, {key_records} key records"),
            ));
        }
        Ok(LeadingConfig {
            set_id,
            codec,
            digest_algorithm,
            checksum_algorithm,
            max_transfer,
            family_count,
            parity_count,
            encryption,
            key_records,
            expected_size,
            family_ids,
        })
    }
}

/// The highest encryption algorithm id this build knows (2, ChaCha20-Poly1305).
pub const ENCRYPTION_MAX: u16 = 2;

/// Bytes of a block header frame (frame header, record header, fixed body).
pub const BLOCK_HEADER_FRAME_LEN: usize = RECORD_PREFIX_LEN + BLOCK_HEADER_BODY_LEN;
/// Bytes of a block header body.
pub const BLOCK_HEADER_BODY_LEN: usize = 56;

/// How a block's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCodec {
    /// A zstd frame of raw blocks: the original bytes with 3-byte block headers.
    Raw,
    /// A compressed zstd frame.
    Zstd,
}

/// The header of one data block; the stored payload (a zstd frame) follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Global sequence number, from 0 across all families.
    pub seq: u64,
    /// Family number the block was written to.
    pub family: u16,
    /// How the payload is stored.
    pub codec: BlockCodec,
    /// Flags: bit 0 (encrypted sets) the set's last block; other bits reserved.
    pub flags: u8,
    /// Bytes of the stored payload.
    pub stored_len: u32,
    /// Bytes of the original data.
    pub original_len: u32,
    /// CRC32 of the stored payload.
    pub payload_crc: u32,
    /// Position of the set.
    pub position: u32,
    /// XXH3-64 of the original bytes.
    pub original_hash: u64,
}

impl BlockHeader {
    /// The whole frame, [`BLOCK_HEADER_FRAME_LEN`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .u64(self.seq)
            .u16(self.family)
            .u8(match self.codec {
                BlockCodec::Raw => 0,
                BlockCodec::Zstd => 1,
            })
            .u8(self.flags)
            .u32(self.stored_len)
            .u32(self.original_len)
            .u32(self.payload_crc)
            .u32(self.position)
            .u32(0)
            .u64(self.original_hash);
        encode_record(RecordType::BlockHeader, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "block header");
        let set_id = g.arr()?;
        let seq = g.u64()?;
        let family = g.u16()?;
        let codec = match g.u8()? {
            0 => BlockCodec::Raw,
            1 => BlockCodec::Zstd,
            x => {
                return Err(Error::mismatch(
                    at.clone(),
                    "unknown block codec",
                    "0 or 1",
                    x,
                ))
            }
        };
        let flags = g.u8()?;
        Ok(BlockHeader {
            set_id,
            seq,
            family,
            codec,
            flags,
            stored_len: g.u32()?,
            original_len: g.u32()?,
            payload_crc: g.u32()?,
            position: g.u32()?,
            original_hash: {
                g.skip(4)?;
                g.u64()?
            },
        })
    }

    /// True when the header marks the set's last block (encrypted sets).
    pub fn is_last(&self) -> bool {
        self.flags & BLOCK_FLAG_LAST != 0
    }

    /// Check the lengths against the set's max transfer size, before anything is allocated.
    /// A sealed payload (`sealed`, an encrypted set) is its plaintext and 24 bytes.
    pub fn check_lengths(&self, max_transfer: u32, sealed: bool, at: &Location) -> Result<()> {
        if self.original_len == 0 || self.original_len > max_transfer {
            return Err(Error::mismatch(
                at.clone(),
                "block original length out of range",
                format!("1 to {max_transfer}"),
                self.original_len,
            ));
        }
        let (limit, ok) = if sealed {
            let raw = self.original_len as u64 + SEALED_OVERHEAD as u64;
            let s = self.stored_len as u64;
            match self.codec {
                BlockCodec::Raw => (raw, s == raw),
                // Compressed is kept only when smaller than the original bytes.
                BlockCodec::Zstd => (raw - 1, s < raw && s >= SEALED_OVERHEAD as u64 + 9),
            }
        } else {
            let limit = max_stored_len(self.original_len);
            let ok = match self.codec {
                BlockCodec::Raw => self.stored_len as u64 == raw_frame_len(self.original_len),
                BlockCodec::Zstd => self.stored_len as u64 <= limit && self.stored_len >= 9,
            };
            (limit, ok)
        };
        if !ok {
            return Err(Error::mismatch(
                at.clone(),
                "block stored length impossible for its original length",
                format!("at most {limit}"),
                self.stored_len,
            ));
        }
        Ok(())
    }
}

/// Block header flag bit 0: the set's last block (encrypted sets; part of the AEAD nonce).
pub const BLOCK_FLAG_LAST: u8 = 1;

/// The trailing configuration: totals and digest, written after the data of each family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrailingConfig {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Position.
    pub position: u32,
    /// This family.
    pub family_number: u16,
    /// Families of the set.
    pub family_count: u16,
    /// Finish time, microseconds since the epoch, UTC.
    pub finish_us: i64,
    /// Original bytes of the whole set.
    pub total_original: u64,
    /// Stored payload bytes of the whole set.
    pub total_stored: u64,
    /// Blocks of the whole set.
    pub total_blocks: u64,
    /// Original bytes in this family.
    pub family_original: u64,
    /// Stored payload bytes in this family.
    pub family_stored: u64,
    /// Blocks in this family.
    pub family_blocks: u64,
    /// Digest algorithm.
    pub digest_algorithm: u8,
    /// The end-to-end digest of the original bytes.
    pub digest: [u8; 16],
    /// Encrypted sets: HMAC-SHA256 of the body before it under the set's metadata key.
    pub mac: Option<[u8; 32]>,
}

/// Bytes of a trailing config body before its MAC.
pub const TRAILING_BODY_LEN: usize = 112;

impl TrailingConfig {
    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signed_body();
        if let Some(m) = &self.mac {
            b.extend_from_slice(m);
        }
        encode_record(RecordType::TrailingConfig, &b, None)
    }

    /// The body bytes a MAC covers: all but the MAC.
    pub fn signed_body(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .u32(self.position)
            .u16(self.family_number)
            .u16(self.family_count)
            .i64(self.finish_us)
            .u64(self.total_original)
            .u64(self.total_stored)
            .u64(self.total_blocks)
            .u64(self.family_original)
            .u64(self.family_stored)
            .u64(self.family_blocks)
            .u8(self.digest_algorithm)
            .zeros(15)
            .bytes(&self.digest);
        p.0
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "trailing config");
        let t = TrailingConfig {
            set_id: g.arr()?,
            position: g.u32()?,
            family_number: g.u16()?,
            family_count: g.u16()?,
            finish_us: g.i64()?,
            total_original: g.u64()?,
            total_stored: g.u64()?,
            total_blocks: g.u64()?,
            family_original: g.u64()?,
            family_stored: g.u64()?,
            family_blocks: g.u64()?,
            digest_algorithm: {
                let d = g.u8()?;
                g.skip(15)?;
                d
            },
            digest: g.arr()?,
            mac: None,
        };
        // Format 1.0 readers stop after the digest; 1.1 adds the MAC of an encrypted set.
        let t = match g.rest() {
            0 => t,
            32 => TrailingConfig {
                mac: Some(g.arr()?),
                ..t
            },
            n => {
                return Err(Error::mismatch(
                    at.clone(),
                    "trailing config has the wrong length",
                    "112 bytes, or 144 with a MAC",
                    TRAILING_BODY_LEN + n,
                ))
            }
        };
        Ok(t)
    }
}

/// What a key record wraps the data key for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// X25519 recipients (age's native keys), 1.
    X25519,
    /// A passphrase (age's scrypt), 2.
    Passphrase,
}

impl KeyKind {
    fn code(self) -> u8 {
        match self {
            KeyKind::X25519 => 1,
            KeyKind::Passphrase => 2,
        }
    }

    /// The word in the record's label line: `x25519` or `scrypt`.
    pub fn word(self) -> &'static str {
        match self {
            KeyKind::X25519 => "x25519",
            KeyKind::Passphrase => "scrypt",
        }
    }
}

/// The line before a key record's age file (docs/FORMAT.md, "Key record"), so that text tools
/// find it in a family file: `bak key record GUID x25519|scrypt`.
pub fn key_label_line(set_id: &Guid, kind: KeyKind) -> String {
    format!("bak key record {} {}", guid_string(set_id), kind.word())
}

/// Bytes of a key record's MAC.
pub const KEY_MAC_LEN: usize = 32;
/// The first line of age's ASCII armor.
pub const AGE_ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
/// The last line of age's ASCII armor.
pub const AGE_ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";

/// A key record of an encrypted set: the set's data key wrapped in one age file (format 1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Which record of the set this is, from 0.
    pub index: u16,
    /// How many key records the set has.
    pub count: u16,
    /// What the data key is wrapped for.
    pub kind: KeyKind,
    /// X25519: the recipients' fingerprints (first 8 bytes of the SHA-256 of `age1...`).
    pub fingerprints: Vec<[u8; 8]>,
    /// A newline, the label line, a newline, and the age file in age's ASCII armor.
    pub text: String,
    /// HMAC-SHA256 under the set's metadata key (docs/FORMAT.md).
    pub mac: [u8; KEY_MAC_LEN],
}

impl KeyRecord {
    /// The text of a record: label line and armored age file.
    pub fn text_of(set_id: &Guid, kind: KeyKind, armored: &str) -> String {
        format!("\n{}\n{armored}", key_label_line(set_id, kind))
    }

    /// The age file (armored) inside the text.
    pub fn age_file(&self) -> &str {
        self.text
            .find(AGE_ARMOR_BEGIN)
            .map_or("", |i| &self.text[i..])
    }

    /// The body bytes its MAC covers: all but the MAC.
    pub fn signed_body(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .u16(self.index)
            .u16(self.count)
            .u8(self.kind.code())
            .u8(0)
            .u16(self.fingerprints.len() as u16)
            .u32(self.text.len() as u32);
        for f in &self.fingerprints {
            p.bytes(f);
        }
        p.bytes(self.text.as_bytes());
        p.0
    }

    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signed_body();
        b.extend_from_slice(&self.mac);
        encode_record(RecordType::KeyRecord, &b, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "key record");
        let set_id = g.arr()?;
        let index = g.u16()?;
        let count = g.u16()?;
        let kind = match g.u8()? {
            1 => KeyKind::X25519,
            2 => KeyKind::Passphrase,
            x => {
                return Err(Error::Unsupported {
                    device: at.device.clone(),
                    what: format!("key record kind {x} is not known to this build"),
                })
            }
        };
        let reserved = g.u8()?;
        let nf = g.u16()? as usize;
        let text_len = g.u32()? as usize;
        let need = nf
            .checked_mul(8)
            .and_then(|n| n.checked_add(text_len))
            .and_then(|n| n.checked_add(KEY_MAC_LEN));
        if need != Some(g.rest()) {
            return Err(Error::mismatch(
                at.clone(),
                "key record fields disagree with its length",
                format!("{} bytes after its header", g.rest()),
                format!("{nf} fingerprints and {text_len} bytes of text"),
            ));
        }
        let mut fingerprints = Vec::with_capacity(nf);
        for _ in 0..nf {
            fingerprints.push(g.arr()?);
        }
        let text = String::from_utf8(g.take(text_len)?.to_vec())
            .map_err(|_| Error::corrupt(at.clone(), "key record text is not UTF-8"))?;
        let r = KeyRecord {
            set_id,
            index,
            count,
            kind,
            fingerprints,
            text,
            mac: g.arr()?,
        };
        let head = format!("\n{}\n{AGE_ARMOR_BEGIN}\n", key_label_line(&set_id, kind));
        let fits_kind = match kind {
            KeyKind::X25519 => nf >= 1,
            KeyKind::Passphrase => nf == 0,
        };
        if !r.text.starts_with(&head) || !r.text.ends_with(&format!("\n{AGE_ARMOR_END}\n")) {
            return Err(Error::corrupt(
                at.clone(),
                "key record text is not a label line and an armored age file",
            ));
        }
        if !fits_kind || count == 0 || index >= count || reserved != 0 {
            return Err(Error::mismatch(
                at.clone(),
                "key record fields out of range",
                "index below count, fingerprints for X25519 only, reserved byte 0",
                format!(
                    "record {index} of {count}, {} with {nf} fingerprints",
                    kind.word()
                ),
            ));
        }
        Ok(r)
    }
}

/// Bytes of a parity record body before its member entries.
pub const PARITY_BODY_FIXED: usize = 48;
/// Bytes of one member entry of a parity record.
pub const PARITY_MEMBER_LEN: usize = 40;
/// Bytes of the frame header before a parity shard.
pub const PARITY_SHARD_HEADER_LEN: usize = 8;
/// A parity shard's length is a multiple of this (what the Reed-Solomon code works in).
pub const PARITY_SHARD_ALIGN: u32 = 64;

/// What a parity record says of one data block of its stripe: every field of the block's
/// header but the set GUID and position (which the record carries once), so that a lost block
/// is rebuilt whole, header and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParityMember {
    /// Global sequence number.
    pub seq: u64,
    /// Family the block was written to.
    pub family: u16,
    /// How the payload is stored.
    pub codec: BlockCodec,
    /// Block flags.
    pub flags: u8,
    /// Bytes of the stored payload.
    pub stored_len: u32,
    /// Bytes of the original data.
    pub original_len: u32,
    /// CRC32 of the stored payload.
    pub payload_crc: u32,
    /// The block hash (XXH3-64 of the original, or the keyed hash of an encrypted set).
    pub original_hash: u64,
}

impl ParityMember {
    /// The member of a block header.
    pub fn of(h: &BlockHeader) -> Self {
        ParityMember {
            seq: h.seq,
            family: h.family,
            codec: h.codec,
            flags: h.flags,
            stored_len: h.stored_len,
            original_len: h.original_len,
            payload_crc: h.payload_crc,
            original_hash: h.original_hash,
        }
    }

    /// The block header this member describes, in set `set_id` at `position`.
    pub fn header(&self, set_id: Guid, position: u32) -> BlockHeader {
        BlockHeader {
            set_id,
            seq: self.seq,
            family: self.family,
            codec: self.codec,
            flags: self.flags,
            stored_len: self.stored_len,
            original_len: self.original_len,
            payload_crc: self.payload_crc,
            position,
            original_hash: self.original_hash,
        }
    }
}

/// A parity record (`BKPB`, format 1.2): the parity shard of one parity family for one stripe,
/// and what the stripe's data blocks are. The shard follows in a skippable frame of its own
/// ([`PARITY_MAGIC`]): [`ParityRecord::payload_len`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityRecord {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Position of the set.
    pub position: u32,
    /// The parity family this record is on.
    pub family: u16,
    /// Which parity shard this is, from 0 (family number less the data family count, less 1).
    pub index: u16,
    /// The stripe: blocks `stripe x D` to `stripe x D + D - 1`, D the data family count.
    pub stripe: u64,
    /// Bytes of the parity shard (a multiple of [`PARITY_SHARD_ALIGN`]).
    pub shard_len: u32,
    /// CRC32 of the payload: the shard frame, its 8-byte header and the shard.
    pub payload_crc: u32,
    /// The stripe's data blocks, in sequence order (fewer than D only in the set's last
    /// stripe).
    pub members: Vec<ParityMember>,
}

impl ParityRecord {
    /// Bytes of the payload that follows the record: the shard frame.
    pub fn payload_len(&self) -> u64 {
        PARITY_SHARD_HEADER_LEN as u64 + self.shard_len as u64
    }

    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Put(Vec::with_capacity(
            PARITY_BODY_FIXED + self.members.len() * PARITY_MEMBER_LEN,
        ));
        p.bytes(&self.set_id)
            .u32(self.position)
            .u16(self.family)
            .u16(self.index)
            .u64(self.stripe)
            .u16(self.members.len() as u16)
            .u16(0)
            .u32(self.shard_len)
            .u32(self.payload_crc)
            .u32(0);
        for m in &self.members {
            p.u64(m.seq)
                .u16(m.family)
                .u8(matches!(m.codec, BlockCodec::Zstd) as u8)
                .u8(m.flags)
                .u32(m.stored_len)
                .u32(m.original_len)
                .u32(m.payload_crc)
                .u64(m.original_hash)
                .zeros(8);
        }
        encode_record(RecordType::Parity, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "parity record");
        let set_id = g.arr()?;
        let position = g.u32()?;
        let family = g.u16()?;
        let index = g.u16()?;
        let stripe = g.u64()?;
        let count = g.u16()? as usize;
        g.skip(2)?;
        let shard_len = g.u32()?;
        let payload_crc = g.u32()?;
        g.skip(4)?;
        if g.rest() != count * PARITY_MEMBER_LEN || count == 0 {
            return Err(Error::mismatch(
                at.clone(),
                "parity record member count disagrees with its length",
                format!("{} members", g.rest() / PARITY_MEMBER_LEN),
                count,
            ));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let seq = g.u64()?;
            let family = g.u16()?;
            let codec = match g.u8()? {
                0 => BlockCodec::Raw,
                1 => BlockCodec::Zstd,
                x => {
                    return Err(Error::mismatch(
                        at.clone(),
                        "unknown block codec in a parity record",
                        "0 or 1",
                        x,
                    ))
                }
            };
            let flags = g.u8()?;
            let stored_len = g.u32()?;
            let original_len = g.u32()?;
            let payload_crc = g.u32()?;
            let original_hash = g.u64()?;
            g.skip(8)?;
            members.push(ParityMember {
                seq,
                family,
                codec,
                flags,
                stored_len,
                original_len,
                payload_crc,
                original_hash,
            });
        }
        let longest = members.iter().map(|m| m.stored_len).max().unwrap_or(0);
        if shard_len == 0
            || !shard_len.is_multiple_of(PARITY_SHARD_ALIGN)
            || shard_len != shard_len_for(longest)
        {
            return Err(Error::mismatch(
                at.clone(),
                "parity shard length does not fit its stripe",
                shard_len_for(longest),
                shard_len,
            ));
        }
        Ok(ParityRecord {
            set_id,
            position,
            family,
            index,
            stripe,
            shard_len,
            payload_crc,
            members,
        })
    }
}

/// The shard length of a stripe whose longest stored payload is `longest` bytes: rounded up to
/// [`PARITY_SHARD_ALIGN`].
pub fn shard_len_for(longest: u32) -> u32 {
    longest.div_ceil(PARITY_SHARD_ALIGN).max(1) * PARITY_SHARD_ALIGN
}

/// The 8-byte frame header of a parity shard of `shard_len` bytes.
pub fn parity_frame_header(shard_len: u32) -> [u8; PARITY_SHARD_HEADER_LEN] {
    let mut h = [0u8; PARITY_SHARD_HEADER_LEN];
    h[..4].copy_from_slice(&PARITY_MAGIC.to_le_bytes());
    h[4..].copy_from_slice(&shard_len.to_le_bytes());
    h
}

/// The codec byte of an MBC entry that indexes a parity record (format 1.2).
pub const MBC_CODEC_PARITY: u8 = 2;

/// Bytes of one MBC entry.
pub const MBC_ENTRY_LEN: usize = 40;

/// One entry of the MBC: where a block of this family lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbcEntry {
    /// Global sequence number.
    pub seq: u64,
    /// Offset of the block header frame in the device.
    pub offset: u64,
    /// Stored payload bytes.
    pub stored_len: u32,
    /// Original bytes.
    pub original_len: u32,
    /// CRC32 of the stored payload.
    pub payload_crc: u32,
    /// 0 raw, 1 zstd.
    pub codec: u8,
    /// XXH3-64 of the original bytes.
    pub original_hash: u64,
}

/// The media based catalog of one family for one set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mbc {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Position.
    pub position: u32,
    /// Family.
    pub family_number: u16,
    /// The blocks, in the order written.
    pub entries: Vec<MbcEntry>,
}

impl Mbc {
    /// The whole record.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Put(Vec::with_capacity(32 + self.entries.len() * MBC_ENTRY_LEN));
        p.bytes(&self.set_id)
            .u32(self.position)
            .u16(self.family_number)
            .u16(0)
            .u64(self.entries.len() as u64);
        for e in &self.entries {
            p.u64(e.seq)
                .u64(e.offset)
                .u32(e.stored_len)
                .u32(e.original_len)
                .u32(e.payload_crc)
                .u8(e.codec)
                .zeros(3)
                .u64(e.original_hash);
        }
        encode_record(RecordType::Mbc, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "MBC");
        let set_id = g.arr()?;
        let position = g.u32()?;
        let family_number = g.u16()?;
        g.skip(2)?;
        let count = g.u64()?;
        if count.checked_mul(MBC_ENTRY_LEN as u64) != Some(g.rest() as u64) {
            return Err(Error::mismatch(
                at.clone(),
                "MBC entry count disagrees with its length",
                g.rest() / MBC_ENTRY_LEN,
                count,
            ));
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let seq = g.u64()?;
            let offset = g.u64()?;
            let stored_len = g.u32()?;
            let original_len = g.u32()?;
            let payload_crc = g.u32()?;
            let codec = g.u8()?;
            g.skip(3)?;
            entries.push(MbcEntry {
                seq,
                offset,
                stored_len,
                original_len,
                payload_crc,
                codec,
                original_hash: g.u64()?,
            });
        }
        Ok(Mbc {
            set_id,
            position,
            family_number,
            entries,
        })
    }
}

/// Bytes of the end-of-set frame; it is always last in a complete family file.
pub const ESET_FRAME_LEN: usize = RECORD_PREFIX_LEN + ESET_BODY_LEN;
/// Bytes of the end-of-set body.
pub const ESET_BODY_LEN: usize = 96;

/// The end-of-set record: back pointers, so sets can be walked from the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndOfSet {
    /// GUID of the backup set.
    pub set_id: Guid,
    /// Media set.
    pub media_set_id: Guid,
    /// Position.
    pub position: u32,
    /// Family.
    pub family_number: u16,
    /// Offset of the set header frame.
    pub set_header_offset: u64,
    /// Offset of the trailing config frame.
    pub trailing_offset: u64,
    /// Offset of the MBC frame.
    pub mbc_offset: u64,
    /// Offset of this frame (a check that it was found where it was written).
    pub self_offset: u64,
    /// Offset of the previous set's end-of-set frame, 0 for the first set.
    pub prev_eset_offset: u64,
    /// Blocks in this family for the set.
    pub family_blocks: u64,
}

impl EndOfSet {
    /// The whole frame, [`ESET_FRAME_LEN`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Put::default();
        p.bytes(&self.set_id)
            .bytes(&self.media_set_id)
            .u32(self.position)
            .u16(self.family_number)
            .u16(0)
            .u64(self.set_header_offset)
            .u64(self.trailing_offset)
            .u64(self.mbc_offset)
            .u64(self.self_offset)
            .u64(self.prev_eset_offset)
            .u64(self.family_blocks)
            .zeros(8);
        encode_record(RecordType::EndOfSet, &p.0, None)
    }

    /// Parse a checked body.
    pub fn parse_body(b: &[u8], at: &Location) -> Result<Self> {
        let mut g = Get::new(b, at, "end-of-set record");
        let e = EndOfSet {
            set_id: g.arr()?,
            media_set_id: g.arr()?,
            position: g.u32()?,
            family_number: {
                let f = g.u16()?;
                g.skip(2)?;
                f
            },
            set_header_offset: g.u64()?,
            trailing_offset: g.u64()?,
            mbc_offset: g.u64()?,
            self_offset: g.u64()?,
            prev_eset_offset: g.u64()?,
            family_blocks: g.u64()?,
        };
        let ordered = e.set_header_offset < e.trailing_offset
            && e.trailing_offset < e.mbc_offset
            && e.mbc_offset < e.self_offset
            && e.prev_eset_offset < e.set_header_offset;
        if !ordered {
            return Err(Error::corrupt(
                at.clone(),
                "end-of-set pointers are out of order",
            ));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at() -> Location {
        Location::device("t")
    }

    fn media() -> MediaHeader {
        MediaHeader {
            media_set_id: [1; 16],
            family_id: [2; 16],
            family_count: 3,
            family_number: 2,
            media_sequence: 1,
            mirror_count: 1,
            mirror_number: 1,
            parity_count: 0,
            flags: MEDIA_FLAG_SET_MAP,
            created_us: 1_700_000_000_000_000,
            media_name: "nightly".into(),
            media_description: "Ünïcode ✓".into(),
            software_name: "bak".into(),
            software_version: "0.1.0".into(),
            volume_start: 0,
        }
    }

    #[test]
    fn media_header_round_trip_and_span() {
        let m = media();
        let b = m.encode();
        assert_eq!(b.len(), MEDIA_HEADER_SPAN as usize);
        let (_, body) = parse_frame(&b, RecordType::MediaHeader, &at()).unwrap();
        assert_eq!(MediaHeader::parse_body(body, &at()).unwrap(), m);
    }

    #[test]
    fn a_continuation_label_says_where_its_volume_goes_on() {
        let one = media();
        // Volume 1 is byte for byte a 1.0 label: no volume start written.
        assert_eq!(
            one.encode_body().len() + 8,
            MediaHeader {
                media_sequence: 2,
                ..media()
            }
            .encode_body()
            .len()
        );
        let three = MediaHeader {
            media_sequence: 3,
            volume_start: 123_456_789,
            ..media()
        };
        let b = three.encode();
        let (_, body) = parse_frame(&b, RecordType::MediaHeader, &at()).unwrap();
        assert_eq!(MediaHeader::parse_body(body, &at()).unwrap(), three);
        // Cut before its volume start: not a whole continuation label.
        let body = three.encode_body();
        assert!(MediaHeader::parse_body(&body[..body.len() - 8], &at()).is_err());
        let zero = MediaHeader {
            media_sequence: 0,
            ..media()
        }
        .encode_body();
        assert!(MediaHeader::parse_body(&zero, &at()).is_err());
    }

    #[test]
    fn every_bit_flip_in_a_record_is_detected() {
        let b = media().encode();
        let used = RECORD_PREFIX_LEN + media().encode_body().len();
        for byte in 0..used {
            for bit in 0..8 {
                let mut c = b.clone();
                c[byte] ^= 1 << bit;
                let r = parse_frame(&c, RecordType::MediaHeader, &at())
                    .and_then(|(_, body)| MediaHeader::parse_body(body, &at()));
                assert!(r.is_err(), "flip of bit {bit} at byte {byte} not detected");
            }
        }
    }

    #[test]
    fn unknown_major_version_is_not_corruption() {
        let mut b = media().encode();
        b[FRAME_HEADER_LEN + 4] = 7;
        let crc = crc32fast::hash(&b[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 20]);
        b[FRAME_HEADER_LEN + 20..FRAME_HEADER_LEN + 24].copy_from_slice(&crc.to_le_bytes());
        match parse_frame(&b, RecordType::MediaHeader, &at()) {
            Err(Error::UnsupportedVersion { found, .. }) => {
                assert_eq!(found, format!("7.{FORMAT_MINOR}"))
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }

    #[test]
    fn wrong_record_type_and_truncation_are_errors() {
        let b = media().encode();
        assert!(matches!(
            parse_frame(&b, RecordType::SetHeader, &at()),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            parse_frame(&b[..20], RecordType::MediaHeader, &at()),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn family_numbers_are_range_checked() {
        let mut m = media();
        m.family_number = 4;
        let b = m.encode();
        let (_, body) = parse_frame(&b, RecordType::MediaHeader, &at()).unwrap();
        assert!(MediaHeader::parse_body(body, &at()).is_err());
    }

    #[test]
    fn set_map_frame_holds_two_slots() {
        let s = SetMapSlot {
            generation: 5,
            complete_sets: 2,
            last_eset_offset: 9000,
            end_offset: 9120,
            media_set_id: [7; 16],
        };
        let f = s.encode_frame();
        assert_eq!(f.len(), SET_MAP_SPAN as usize);
        for off in [FRAME_HEADER_LEN, SET_MAP_SLOT_B as usize] {
            let (_, body) = parse_frame(&f[off..], RecordType::SetMap, &at()).unwrap();
            assert_eq!(SetMapSlot::parse_body(body, &at()).unwrap(), s);
        }
    }

    #[test]
    fn raw_frame_geometry() {
        assert_eq!(raw_frame_len(1), 9 + 1 + 3);
        assert_eq!(raw_frame_len(RAW_BLOCK_MAX), 9 + RAW_BLOCK_MAX as u64 + 3);
        assert_eq!(
            raw_frame_len(RAW_BLOCK_MAX + 1),
            9 + RAW_BLOCK_MAX as u64 + 1 + 6
        );
        let pieces: Vec<_> = raw_frame_pieces(RAW_BLOCK_MAX + 5).collect();
        assert_eq!(
            pieces,
            vec![
                (12, RAW_BLOCK_MAX as usize),
                (12 + RAW_BLOCK_MAX as usize + 3, 5)
            ]
        );
        assert_eq!(raw_block_header(5, true), [41, 0, 0]);
    }

    #[test]
    fn block_lengths_are_bounded_before_allocation() {
        let mut h = BlockHeader {
            set_id: [0; 16],
            seq: 0,
            family: 1,
            codec: BlockCodec::Zstd,
            flags: 0,
            stored_len: u32::MAX,
            original_len: 1 << 20,
            payload_crc: 0,
            position: 1,
            original_hash: 0,
        };
        assert!(h.check_lengths(1 << 20, false, &at()).is_err());
        h.stored_len = 1000;
        assert!(h.check_lengths(1 << 20, false, &at()).is_ok());
        h.original_len = (1 << 20) + 1;
        assert!(h.check_lengths(1 << 20, false, &at()).is_err());
        h.codec = BlockCodec::Raw;
        h.original_len = 10;
        h.stored_len = 22;
        assert!(h.check_lengths(1 << 20, false, &at()).is_ok());
        h.stored_len = 23;
        assert!(h.check_lengths(1 << 20, false, &at()).is_err());
        // Sealed: the plaintext and 24 bytes; compressed only when smaller than the original.
        h.original_len = 100;
        h.stored_len = 124;
        assert!(h.check_lengths(1 << 20, true, &at()).is_ok());
        h.stored_len = 125;
        assert!(h.check_lengths(1 << 20, true, &at()).is_err());
        h.codec = BlockCodec::Zstd;
        h.stored_len = 124;
        assert!(h.check_lengths(1 << 20, true, &at()).is_err());
        h.stored_len = 123;
        assert!(h.check_lengths(1 << 20, true, &at()).is_ok());
        h.stored_len = 32;
        assert!(h.check_lengths(1 << 20, true, &at()).is_err());
    }

    #[test]
    fn eset_is_fixed_size_and_checks_its_pointers() {
        let e = EndOfSet {
            set_id: [3; 16],
            media_set_id: [4; 16],
            position: 2,
            family_number: 1,
            set_header_offset: 100,
            trailing_offset: 200,
            mbc_offset: 300,
            self_offset: 400,
            prev_eset_offset: 50,
            family_blocks: 9,
        };
        let b = e.encode();
        assert_eq!(b.len(), ESET_FRAME_LEN);
        let (_, body) = parse_frame(&b, RecordType::EndOfSet, &at()).unwrap();
        assert_eq!(EndOfSet::parse_body(body, &at()).unwrap(), e);
        let bad = EndOfSet {
            mbc_offset: 500,
            ..e
        };
        let b = bad.encode();
        let (_, body) = parse_frame(&b, RecordType::EndOfSet, &at()).unwrap();
        assert!(EndOfSet::parse_body(body, &at()).is_err());
    }

    fn guid() -> impl Strategy<Value = Guid> {
        any::<[u8; 16]>()
    }

    proptest! {
        #[test]
        fn set_header_round_trips(
            set_id in guid(), media_set_id in guid(), position in 1u32..,
            fc in 1u16..=64, start in any::<i64>(), expire in any::<i64>(),
            level in -7i32..=22, z in any::<bool>(), mts_steps in 1u32..=64,
            name in ".{0,40}", desc in ".{0,40}", user in ".{0,20}", host in ".{0,20}",
        ) {
            let h = SetHeader {
                set_id, media_set_id, position, family_count: fc, family_number: fc,
                start_us: start, expire_us: expire,
                codec: if z { Codec::Zstd(level) } else { Codec::None },
                max_transfer: mts_steps * MIN_TRANSFER,
                name, description: desc, user, host, source: "stdin".into(),
                software_name: "bak".into(), software_version: "1".into(),
            };
            let b = h.encode();
            let (_, body) = parse_frame(&b, RecordType::SetHeader, &at()).unwrap();
            prop_assert_eq!(SetHeader::parse_body(body, &at()).unwrap(), h);
        }

        #[test]
        fn leading_config_round_trips(set_id in guid(), fams in proptest::collection::vec(guid(), 1..64),
                                      size in any::<u64>(), level in 1i32..=19) {
            let c = LeadingConfig {
                set_id, codec: Codec::Zstd(level), digest_algorithm: DIGEST_XXH3_TREE,
                checksum_algorithm: CHECKSUM_CRC32, max_transfer: MAX_TRANSFER,
                family_count: fams.len() as u16, parity_count: 0, encryption: 0, key_records: 0,
                expected_size: size, family_ids: fams,
            };
            let b = c.encode();
            let (_, body) = parse_frame(&b, RecordType::LeadingConfig, &at()).unwrap();
            prop_assert_eq!(LeadingConfig::parse_body(body, &at()).unwrap(), c);
        }

        #[test]
        fn block_header_round_trips(set_id in guid(), seq in any::<u64>(), fam in 1u16..=64,
                                    z in any::<bool>(), s in any::<u32>(), o in any::<u32>(),
                                    crc in any::<u32>(), pos in any::<u32>(), hash in any::<u64>()) {
            let h = BlockHeader {
                set_id, seq, family: fam, codec: if z { BlockCodec::Zstd } else { BlockCodec::Raw }, flags: fam as u8,
                stored_len: s, original_len: o, payload_crc: crc, position: pos, original_hash: hash,
            };
            let b = h.encode();
            prop_assert_eq!(b.len(), BLOCK_HEADER_FRAME_LEN);
            let (_, body) = parse_frame(&b, RecordType::BlockHeader, &at()).unwrap();
            prop_assert_eq!(BlockHeader::parse_body(body, &at()).unwrap(), h);
        }

        #[test]
        fn trailing_config_round_trips(v in any::<[u64; 6]>(), d in any::<[u8; 16]>(), t in any::<i64>(),
                                       mac in proptest::option::of(any::<[u8; 32]>())) {
            let c = TrailingConfig {
                set_id: [9; 16], position: 3, family_number: 2, family_count: 4, finish_us: t,
                total_original: v[0], total_stored: v[1], total_blocks: v[2],
                family_original: v[3], family_stored: v[4], family_blocks: v[5],
                digest_algorithm: DIGEST_XXH3_TREE, digest: d, mac,
            };
            let b = c.encode();
            let (_, body) = parse_frame(&b, RecordType::TrailingConfig, &at()).unwrap();
            prop_assert_eq!(TrailingConfig::parse_body(body, &at()).unwrap(), c);
        }

        #[test]
        fn mbc_round_trips(es in proptest::collection::vec(any::<(u64, u64, u32, u32, u32, bool, u64)>(), 0..50)) {
            let m = Mbc {
                set_id: [5; 16], position: 1, family_number: 1,
                entries: es.into_iter().map(|(seq, offset, s, o, crc, z, h)| MbcEntry {
                    seq, offset, stored_len: s, original_len: o, payload_crc: crc,
                    codec: z as u8, original_hash: h,
                }).collect(),
            };
            let b = m.encode();
            let (_, body) = parse_frame(&b, RecordType::Mbc, &at()).unwrap();
            prop_assert_eq!(Mbc::parse_body(body, &at()).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            for t in [RecordType::MediaHeader, RecordType::SetHeader, RecordType::LeadingConfig,
                      RecordType::BlockHeader, RecordType::TrailingConfig, RecordType::Mbc,
                      RecordType::EndOfSet, RecordType::SetMap, RecordType::KeyRecord] {
                let _ = parse_frame(&b, t, &at());
            }
            let _ = MediaHeader::parse_body(&b, &at());
            let _ = SetHeader::parse_body(&b, &at());
            let _ = LeadingConfig::parse_body(&b, &at());
            let _ = BlockHeader::parse_body(&b, &at());
            let _ = TrailingConfig::parse_body(&b, &at());
            let _ = Mbc::parse_body(&b, &at());
            let _ = EndOfSet::parse_body(&b, &at());
            let _ = SetMapSlot::parse_body(&b, &at());
            let _ = KeyRecord::parse_body(&b, &at());
        }

        #[test]
        fn key_record_round_trips(set_id in guid(), fps in proptest::collection::vec(any::<[u8; 8]>(), 1..5),
                                  body in "[A-Za-z0-9+/]{1,200}", mac in any::<[u8; 32]>(), two in any::<bool>()) {
            let armored = format!("{AGE_ARMOR_BEGIN}\n{body}\n{AGE_ARMOR_END}\n");
            let kind = if two { KeyKind::Passphrase } else { KeyKind::X25519 };
            let r = KeyRecord {
                set_id, index: 0, count: 1 + two as u16, kind,
                fingerprints: if two { Vec::new() } else { fps },
                text: KeyRecord::text_of(&set_id, kind, &armored), mac,
            };
            let b = r.encode();
            let (_, body) = parse_frame(&b, RecordType::KeyRecord, &at()).unwrap();
            let back = KeyRecord::parse_body(body, &at()).unwrap();
            prop_assert_eq!(back.age_file(), armored.as_str());
            prop_assert_eq!(back, r);
        }
    }
}
