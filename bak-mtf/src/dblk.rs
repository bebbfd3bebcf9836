//! MTF descriptor blocks (DBLKs) and stream headers: fixed offsets and parsers.
//!
//! Offsets are from docs/MTF.md, checked against the fixture bytes. A parser takes the bytes
//! of the block from its start up to (at least) its first stream, checks what it can, and
//! returns `Err` with a reason for anything it cannot trust; it never panics.

use super::le::{id_at, mtf_string, u16_at, u32_at, u64_at, u8_at, xor16};

/// Size of the DBLK common header.
pub(crate) const DBLK_LEN: usize = 52;
/// Size of a stream header.
pub(crate) const STREAM_LEN: usize = 22;

// Common header fields.
const OFF_ATTRS: usize = 4;
const OFF_FIRST_STREAM: usize = 8;
const OFF_OS_ID: usize = 10;
const OFF_FLA: usize = 20;
const OFF_STRING_TYPE: usize = 48;
const OFF_CHECKSUM: usize = 50;

/// Block types this reader knows (MTF's own and SQL Server's).
pub(crate) const KNOWN_BLOCKS: [&[u8; 4]; 14] = [
    b"TAPE", b"SSET", b"VOLB", b"DIRB", b"FILE", b"CFIL", b"ESPB", b"ESET", b"EOTM", b"SFMB",
    b"MSCI", b"MSDA", b"MSTL", b"MSLS",
];

/// Stream media attribute: the stream is of variable length (MQDA, observed).
#[cfg(test)]
pub(crate) const STREAM_VARIABLE: u16 = 0x2;
/// Stream media attribute: the data is encrypted (MTF 1.00a, STREAM_ENCRYPTED).
pub(crate) const STREAM_ENCRYPTED: u16 = 0x8;
/// Stream media attribute: the data is software compressed (MTF 1.00a, STREAM_COMPRESSED).
pub(crate) const STREAM_COMPRESSED: u16 = 0x10;

/// What is wrong with a header, for the caller to turn into a located error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than the header needs.
    Short,
    /// The XOR checksum does not hold.
    Checksum {
        /// The value the header's words give.
        computed: u16,
        /// The value stored in the header.
        stored: u16,
    },
}

/// The common header of every descriptor block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dblk {
    /// Block type, e.g. `*b"SSET"`.
    pub kind: [u8; 4],
    /// Block attributes.
    pub attrs: u32,
    /// Offset of the first stream header from the block start.
    pub first_stream: u16,
    /// Operating system id (14 = Windows NT).
    pub os_id: u8,
    /// Format logical address: logical blocks counted from the SSET.
    pub fla: u64,
    /// 1 ANSI, 2 UTF-16LE.
    pub string_type: u8,
}

impl Dblk {
    /// Parse and checksum-check the 52-byte common header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Dblk, HeaderError> {
        let h = b.get(..DBLK_LEN).ok_or(HeaderError::Short)?;
        let stored = u16_at(h, OFF_CHECKSUM).ok_or(HeaderError::Short)?;
        let computed = xor16(&h[..OFF_CHECKSUM]);
        if computed != stored {
            return Err(HeaderError::Checksum { computed, stored });
        }
        Ok(Dblk {
            kind: id_at(h, 0).ok_or(HeaderError::Short)?,
            attrs: u32_at(h, OFF_ATTRS).ok_or(HeaderError::Short)?,
            first_stream: u16_at(h, OFF_FIRST_STREAM).ok_or(HeaderError::Short)?,
            os_id: u8_at(h, OFF_OS_ID).ok_or(HeaderError::Short)?,
            fla: u64_at(h, OFF_FLA).ok_or(HeaderError::Short)?,
            string_type: u8_at(h, OFF_STRING_TYPE).ok_or(HeaderError::Short)?,
        })
    }

    /// True for a block type this reader knows.
    pub fn known(&self) -> bool {
        KNOWN_BLOCKS.iter().any(|k| **k == self.kind)
    }
}

/// A stream header (22 bytes): what follows it, how long, how it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamHeader {
    /// Stream id, e.g. `*b"MQDA"`.
    pub id: [u8; 4],
    /// Media format attributes (variable, encrypted, compressed ...).
    pub media_attrs: u16,
    /// Bytes of data after the header.
    pub len: u64,
    /// Encryption algorithm (0 = none).
    pub encryption: u16,
    /// Compression algorithm (0 = none).
    pub compression: u16,
}

impl StreamHeader {
    /// Parse and checksum-check the 22-byte stream header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<StreamHeader, HeaderError> {
        let h = b.get(..STREAM_LEN).ok_or(HeaderError::Short)?;
        let stored = u16_at(h, 20).ok_or(HeaderError::Short)?;
        let computed = xor16(&h[..20]);
        if computed != stored {
            return Err(HeaderError::Checksum { computed, stored });
        }
        Ok(StreamHeader {
            id: id_at(h, 0).ok_or(HeaderError::Short)?,
            media_attrs: u16_at(h, 6).ok_or(HeaderError::Short)?,
            len: u64_at(h, 8).ok_or(HeaderError::Short)?,
            encryption: u16_at(h, 16).ok_or(HeaderError::Short)?,
            compression: u16_at(h, 18).ok_or(HeaderError::Short)?,
        })
    }
}

/// TAPE: the media header, first block of every family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tape {
    pub family_id: u32,
    pub attrs: u32,
    pub media_sequence: u16,
    pub password_algorithm: u16,
    /// Soft filemark block size in 512-byte units.
    pub soft_filemark_units: u16,
    pub mbc_type: u16,
    pub media_name: Option<String>,
    pub media_description: Option<String>,
    /// True when the media password field is not empty.
    pub has_password: bool,
    pub software_name: Option<String>,
    pub logical_block_size: u16,
    pub vendor_id: u16,
    pub date: [u8; 5],
    pub mtf_major: u8,
}

impl Tape {
    /// Parse the TAPE-specific fields of a block whose header is `d`; `b` runs from the block
    /// start to its first stream.
    pub fn parse(b: &[u8], d: &Dblk) -> Option<Tape> {
        let st = d.string_type;
        let mut date = [0u8; 5];
        date.copy_from_slice(b.get(88..93)?);
        Some(Tape {
            family_id: u32_at(b, 52)?,
            attrs: u32_at(b, 56)?,
            media_sequence: u16_at(b, 60)?,
            password_algorithm: u16_at(b, 62)?,
            soft_filemark_units: u16_at(b, 64)?,
            mbc_type: u16_at(b, 66)?,
            media_name: mtf_string(b, 68, st),
            media_description: mtf_string(b, 72, st),
            has_password: u16_at(b, 76)? != 0,
            software_name: mtf_string(b, 80, st),
            logical_block_size: u16_at(b, 84)?,
            vendor_id: u16_at(b, 86)?,
            date,
            mtf_major: u8_at(b, 93)?,
        })
    }

    /// Soft filemark block size in bytes.
    pub fn soft_filemark_size(&self) -> u64 {
        u64::from(self.soft_filemark_units) * 512
    }
}

/// The RAID stream of the TAPE block: the media set a family belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raid {
    /// GUID shared by all families of the media set.
    pub guid: String,
    pub family_count: u16,
    pub family_number: u16,
}

impl Raid {
    /// Parse the RAID stream data (observed 32 bytes: GUID, counters).
    pub fn parse(data: &[u8]) -> Option<Raid> {
        Some(Raid {
            guid: super::le::ms_guid(data, 0)?,
            family_count: u16_at(data, 20)?,
            family_number: u16_at(data, 24)?,
        })
    }
}

/// SSET: start of a backup set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sset {
    pub attrs: u32,
    pub password_algorithm: u16,
    pub compression_algorithm: u16,
    pub vendor_id: u16,
    /// Data set number: the position (FILE = n).
    pub number: u16,
    pub name: Option<String>,
    pub description: Option<String>,
    pub has_password: bool,
    pub user: Option<String>,
    /// Physical block address (observed: the byte offset of the SSET).
    pub pba: u64,
    pub date: [u8; 5],
    pub version_major: u8,
    pub version_minor: u8,
    /// 15-minute steps east of UTC; 127 = unknown.
    pub time_zone: i8,
    pub mtf_minor: u8,
    /// Backup set GUID (bytes 100..116), where the fixed part holds it.
    pub guid: Option<String>,
}

/// SSET attribute: differential backup (observed on diff2016_restoretimeclean.bak).
pub(crate) const SSET_DIFFERENTIAL: u32 = 0x8;
/// SSET attribute: a copy backup, one that leaves the backup sequence as it is (MTF 1.00a,
/// SSET_COPY_BIT): SQL Server's COPY_ONLY, HEADERONLY's IsCopyOnly. Clear in every fixture;
/// how sure, and why, in docs/MTF.md (SSET).
pub(crate) const SSET_COPY: u32 = 0x2;

impl Sset {
    /// Parse the SSET-specific fields.
    pub fn parse(b: &[u8], d: &Dblk) -> Option<Sset> {
        let st = d.string_type;
        let mut date = [0u8; 5];
        date.copy_from_slice(b.get(88..93)?);
        // The GUID sits in the fixed part only when the block's strings start after it.
        let guid = if usize::from(d.first_stream) >= 116
            && first_string_offset(b, &[64, 68, 72, 76]) >= 116
        {
            super::le::ms_guid(b, 100).filter(|g| g != "00000000-0000-0000-0000-000000000000")
        } else {
            None
        };
        Some(Sset {
            attrs: u32_at(b, 52)?,
            password_algorithm: u16_at(b, 56)?,
            compression_algorithm: u16_at(b, 58)?,
            vendor_id: u16_at(b, 60)?,
            number: u16_at(b, 62)?,
            name: mtf_string(b, 64, st),
            description: mtf_string(b, 68, st),
            has_password: u16_at(b, 72)? != 0,
            user: mtf_string(b, 76, st),
            pba: u64_at(b, 80)?,
            date,
            version_major: u8_at(b, 93)?,
            version_minor: u8_at(b, 94)?,
            time_zone: i8::from_le_bytes([u8_at(b, 95)?]),
            mtf_minor: u8_at(b, 96)?,
            guid,
        })
    }
}

/// The smallest offset among the non-empty string pairs at `pairs` (usize::MAX if none).
fn first_string_offset(b: &[u8], pairs: &[usize]) -> usize {
    pairs
        .iter()
        .filter_map(|&p| {
            let size = u16_at(b, p)?;
            let off = u16_at(b, p + 2)?;
            (size != 0).then_some(usize::from(off))
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// VOLB: the volume (device) the set was written to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Volb {
    pub device: Option<String>,
    pub volume: Option<String>,
    pub machine: Option<String>,
}

impl Volb {
    /// Parse the VOLB-specific fields.
    pub fn parse(b: &[u8], d: &Dblk) -> Option<Volb> {
        let st = d.string_type;
        // Require the fixed part to be there even when every string is empty.
        u32_at(b, 52)?;
        u32_at(b, 64)?;
        Some(Volb {
            device: mtf_string(b, 56, st),
            volume: mtf_string(b, 60, st),
            machine: mtf_string(b, 64, st),
        })
    }
}

/// ESET: end of a backup set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Eset {
    pub attrs: u32,
    pub corrupt_files: u32,
    /// MBC reserved field (observed in the second ESET: the byte offset of the first).
    pub previous_eset: u64,
    pub number: u16,
    pub date: [u8; 5],
}

impl Eset {
    /// Parse the ESET-specific fields.
    pub fn parse(b: &[u8]) -> Option<Eset> {
        let mut date = [0u8; 5];
        date.copy_from_slice(b.get(80..85)?);
        Some(Eset {
            attrs: u32_at(b, 52)?,
            corrupt_files: u32_at(b, 56)?,
            previous_eset: u64_at(b, 60)?,
            number: u16_at(b, 78)?,
            date,
        })
    }
}

/// SFMB: the soft filemark table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sfmb {
    /// Number of entries the table can hold.
    pub capacity: u32,
    /// Entries in use.
    pub used: u32,
    /// Entries in use, newest first (observed: byte offsets of the earlier SFMBs on the device).
    pub entries: Vec<u64>,
    /// Offset of the entry array within the block.
    pub array: usize,
}

/// SFMB attribute bit set by SQL Server 2008 and later (every 10.0 to 15 fixture), which moves
/// the entry array: with it the u32 at 60 gives the array's offset in the block (0x48). SQL
/// Server 2005 (9.0) leaves the bit clear and writes MTF 1.00a's own layout, the entries from
/// offset 60 on.
const SFMB_ARRAY_OFFSET: u32 = 0x8000_0000;
/// Where the entries start in MTF 1.00a's layout (SQL Server 2005), and where the array offset
/// field of the later layout sits.
const SFMB_ENTRIES: usize = 60;

impl Sfmb {
    /// Parse a whole SFMB block `b`: 52 capacity, 56 entries used, then either (attribute bit
    /// 0x80000000, SQL Server 2008 on) a u32 at 60 with the offset of the u64 entries (0x48), or
    /// (SQL Server 2005, MTF 1.00a) the u64 entries themselves from 60. Either way the capacity
    /// must fit the block.
    pub fn parse(b: &[u8]) -> Result<Sfmb, &'static str> {
        let attrs = u32_at(b, OFF_ATTRS).ok_or("block too short")?;
        let capacity = u32_at(b, 52).ok_or("block too short")?;
        let used = u32_at(b, 56).ok_or("block too short")?;
        let array = if attrs & SFMB_ARRAY_OFFSET != 0 {
            let a = usize::try_from(u32_at(b, SFMB_ENTRIES).ok_or("block too short")?)
                .map_err(|_| "bad array offset")?;
            if a < SFMB_ENTRIES + 4 {
                return Err("entry array overlaps the table's header");
            }
            a
        } else {
            SFMB_ENTRIES
        };
        if used > capacity {
            return Err("more entries used than the table holds");
        }
        let room = b.len().saturating_sub(array) / 8;
        if usize::try_from(capacity).map_or(true, |c| c > room) {
            return Err("table capacity runs past the block");
        }
        let mut entries = Vec::new();
        for i in 0..used as usize {
            let off = i
                .checked_mul(8)
                .and_then(|x| x.checked_add(array))
                .ok_or("bad array offset")?;
            entries.push(u64_at(b, off).ok_or("entries run past the block")?);
        }
        Ok(Sfmb {
            capacity,
            used,
            entries,
            array,
        })
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! A hand builder of blocks for the unit tests.
    use super::super::le::xor16;

    /// A block of `size` bytes with the common header filled and sealed.
    pub fn block(
        kind: &[u8; 4],
        first_stream: u16,
        size: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[..4].copy_from_slice(kind);
        b[8..10].copy_from_slice(&first_stream.to_le_bytes());
        b[10] = 14;
        b[48] = 2;
        fill(&mut b);
        seal(&mut b);
        b
    }

    /// Recompute the DBLK checksum.
    pub fn seal(b: &mut [u8]) {
        b[50] = 0;
        b[51] = 0;
        let c = xor16(&b[..50]);
        b[50..52].copy_from_slice(&c.to_le_bytes());
    }

    /// A sealed stream header.
    pub fn stream(id: &[u8; 4], media_attrs: u16, len: u64) -> Vec<u8> {
        let mut h = vec![0u8; 22];
        h[..4].copy_from_slice(id);
        h[6..8].copy_from_slice(&media_attrs.to_le_bytes());
        h[8..16].copy_from_slice(&len.to_le_bytes());
        let c = xor16(&h[..20]);
        h[20..22].copy_from_slice(&c.to_le_bytes());
        h
    }

    /// Put a UTF-16 string at `at` and its (size, offset) pair at `pair`.
    pub fn put_str(b: &mut [u8], pair: usize, at: usize, s: &str) -> usize {
        let mut n = 0;
        for (i, w) in s.encode_utf16().enumerate() {
            b[at + 2 * i..at + 2 * i + 2].copy_from_slice(&w.to_le_bytes());
            n += 2;
        }
        b[pair..pair + 2].copy_from_slice(&(n as u16).to_le_bytes());
        b[pair + 2..pair + 4].copy_from_slice(&(at as u16).to_le_bytes());
        at + n
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn common_header_round_trip_and_checksum() {
        let b = block(b"VOLB", 92, 1024, |b| b[20] = 1);
        let d = Dblk::parse(&b).unwrap();
        assert_eq!(d.kind, *b"VOLB");
        assert_eq!(d.first_stream, 92);
        assert_eq!(d.fla, 1);
        assert!(d.known());
        let mut bad = b.clone();
        bad[21] ^= 0x40;
        assert!(matches!(
            Dblk::parse(&bad),
            Err(HeaderError::Checksum { .. })
        ));
        assert_eq!(Dblk::parse(&b[..51]), Err(HeaderError::Short));
    }

    #[test]
    fn stream_header_round_trip_and_checksum() {
        let h = stream(b"MQDA", STREAM_VARIABLE, 0x230002);
        let s = StreamHeader::parse(&h).unwrap();
        assert_eq!(s.id, *b"MQDA");
        assert_eq!(s.len, 0x230002);
        assert_eq!(s.media_attrs, STREAM_VARIABLE);
        let mut bad = h.clone();
        bad[9] ^= 1;
        assert!(matches!(
            StreamHeader::parse(&bad),
            Err(HeaderError::Checksum { .. })
        ));
        assert_eq!(StreamHeader::parse(&h[..21]), Err(HeaderError::Short));
    }

    #[test]
    fn tape_fields() {
        let b = block(b"TAPE", 140, 1024, |b| {
            b[52..56].copy_from_slice(&0xe3fa_b86cu32.to_le_bytes());
            b[60] = 1;
            b[64] = 8;
            b[84..86].copy_from_slice(&1024u16.to_le_bytes());
            b[86..88].copy_from_slice(&0x1200u16.to_le_bytes());
            b[88..93].copy_from_slice(&[0x1f, 0xa3, 0x13, 0x2e, 0x8a]);
            b[93] = 1;
            put_str(b, 80, 94, "Microsoft SQL Server");
            put_str(b, 68, 136, "M");
        });
        let d = Dblk::parse(&b).unwrap();
        let t = Tape::parse(&b, &d).unwrap();
        assert_eq!(t.family_id, 0xe3fa_b86c);
        assert_eq!(t.soft_filemark_size(), 4096);
        assert_eq!(t.software_name.as_deref(), Some("Microsoft SQL Server"));
        assert_eq!(t.media_name.as_deref(), Some("M"));
        assert_eq!(t.media_description, None);
        assert!(!t.has_password);
        assert!(Tape::parse(&b[..90], &d).is_none());
    }

    #[test]
    fn raid_fields() {
        let mut r = vec![0u8; 32];
        r[20] = 2;
        r[24] = 1;
        let raid = Raid::parse(&r).unwrap();
        assert_eq!((raid.family_count, raid.family_number), (2, 1));
        assert!(Raid::parse(&r[..20]).is_none());
    }

    #[test]
    fn sset_volb_eset_fields() {
        let b = block(b"SSET", 208, 1024, |b| {
            b[52] = 4;
            b[62] = 3;
            b[80..88].copy_from_slice(&0x2000u64.to_le_bytes());
            b[93] = 15;
            b[95] = 0xec;
            b[100] = 0xce;
            let e = put_str(b, 64, 122, "Full");
            put_str(b, 76, e, "u");
        });
        let d = Dblk::parse(&b).unwrap();
        let s = Sset::parse(&b, &d).unwrap();
        assert_eq!(s.number, 3);
        assert_eq!(s.pba, 0x2000);
        assert_eq!(s.time_zone, -20);
        assert_eq!(s.name.as_deref(), Some("Full"));
        assert_eq!(s.user.as_deref(), Some("u"));
        assert_eq!(
            s.guid.as_deref(),
            Some("000000ce-0000-0000-0000-000000000000")
        );

        let v = block(b"VOLB", 92, 1024, |b| {
            put_str(b, 64, 70, "HOST");
        });
        let d = Dblk::parse(&v).unwrap();
        let vo = Volb::parse(&v, &d).unwrap();
        assert_eq!(vo.machine.as_deref(), Some("HOST"));
        assert_eq!(vo.device, None);

        let e = block(b"ESET", 88, 1024, |b| {
            b[60..68].copy_from_slice(&0x248000u64.to_le_bytes());
            b[78] = 3;
        });
        let es = Eset::parse(&e).unwrap();
        assert_eq!(es.number, 3);
        assert_eq!(es.previous_eset, 0x248000);
        assert!(Eset::parse(&e[..60]).is_none());
    }

    #[test]
    fn sfmb_table() {
        // SQL Server 2008 on: attribute 0x80000000, the array offset at 60.
        let b = block(b"SFMB", 512, 512, |b| {
            b[4..8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
            b[52] = 55;
            b[56] = 2;
            b[60] = 0x48;
            b[0x48..0x50].copy_from_slice(&0xd4200u64.to_le_bytes());
            b[0x50..0x58].copy_from_slice(&0x400u64.to_le_bytes());
        });
        let t = Sfmb::parse(&b).unwrap();
        assert_eq!(t.entries, vec![0xd4200, 0x400]);
        assert_eq!(t.array, 0x48);
        let over = block(b"SFMB", 512, 512, |b| {
            b[52] = 1;
            b[56] = 2;
        });
        assert!(Sfmb::parse(&over).is_err());
        let past = block(b"SFMB", 512, 512, |b| {
            b[4..8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
            b[52] = 200;
            b[56] = 100;
            b[60] = 0x48;
        });
        assert!(Sfmb::parse(&past).is_err());
        // One more entry than 512 bytes hold after 0x48.
        let wide = block(b"SFMB", 512, 512, |b| {
            b[4..8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
            b[52] = 56;
            b[60] = 0x48;
        });
        assert_eq!(
            Sfmb::parse(&wide),
            Err("table capacity runs past the block")
        );
        let inside = block(b"SFMB", 512, 512, |b| {
            b[4..8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
            b[52] = 1;
            b[60] = 0x30;
        });
        assert!(Sfmb::parse(&inside).is_err());
    }

    #[test]
    fn sfmb_table_as_sql_server_2005_writes_it() {
        // sql2005_northwind_blackmonoceros.bak at 0x324800: attributes 0, capacity 56, the
        // entries from 60 with no array offset before them.
        let b = block(b"SFMB", 512, 512, |b| {
            b[52] = 56;
            b[56] = 2;
            b[60..68].copy_from_slice(&0x323a00u64.to_le_bytes());
            b[68..76].copy_from_slice(&0x400u64.to_le_bytes());
        });
        let t = Sfmb::parse(&b).unwrap();
        assert_eq!((t.capacity, t.array), (56, 60));
        assert_eq!(t.entries, vec![0x323a00, 0x400]);
        let wide = block(b"SFMB", 512, 512, |b| b[52] = 57);
        assert!(Sfmb::parse(&wide).is_err());
    }
}
