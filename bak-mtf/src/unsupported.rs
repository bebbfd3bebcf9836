//! What this reader recognises on SQL Server media but cannot read, so that it says
//! "unsupported" (exit 2) instead of calling good media damaged (exit 1); and what the media
//! carry that it does not check but that does not keep it from reading them (passwords).
//!
//! No fixture holds any of these: the markers come from the MTF 1.00a specification and from
//! public descriptions of SQL Server's media. docs/MTF.md ("What this reader cannot read")
//! lists every marker with how sure it is. A marker is looked for only where the bytes it
//! lies in are otherwise accounted for (a checksummed header, a chunk that fails to decode as
//! Xpress), so that damage is not taken for a feature by chance: the odds are given there.

use bak_core::error::Error;
use bak_core::report::{Problem, ProblemKind};

use super::dblk::{STREAM_COMPRESSED, STREAM_ENCRYPTED};
use super::le::id_text;
use super::pages::{self, PAGE};
use super::walk::SetRec;
use super::{payload, MtfDevice};

/// DBLK common block attribute, any block of a set: its streams may be software compressed
/// (MTF 1.00a, MTF_COMPRESSION, BIT2). SQL Server's own compression is the MSSQLBAK
/// container, which leaves it clear (every compressed fixture, decompressed).
pub(crate) const MTF_COMPRESSION: u32 = 0x4;
/// SSET common block attribute: the set's data is encrypted (MTF 1.00a, MTF_ENCRYPTION, an
/// SSET-specific bit: BIT17).
pub(crate) const MTF_ENCRYPTION: u32 = 0x2_0000;
/// Page header flag: torn-page bits, which replace the last two bits of every sector (the
/// slot array's last byte among them) until the page is read back.
const FLAG_TORN: u16 = 0x100;

/// The Zstandard frame magic number 0xFD2FB528 as it lies in the bytes (RFC 8878, 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A gzip member header with deflate (RFC 1952: ID1 ID2 CM=8): the output of QATzip, the
/// library SQL Server's QAT_DEFLATE uses, in its default format (gzip with a "QZ" extra
/// field).
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Pages of a set's data stream looked at for transparent data encryption, from its start.
const TDE_SAMPLE: u64 = 128;
/// Pages with a readable header and an impossible slot array it takes to say TDE, at the
/// least; and they must be at least three quarters of the pages judged.
const TDE_MIN_PAGES: u64 = 4;

/// A compression algorithm this reader does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// SQL Server 2022's `COMPRESSION (ALGORITHM = QAT_DEFLATE)` (Intel QuickAssist).
    QatDeflate,
    /// SQL Server 2025's `COMPRESSION (ALGORITHM = ZSTD)`.
    Zstd,
    /// MTF's own software compression, with the algorithm id the media give.
    Mtf(u16),
}

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::QatDeflate => "QAT_DEFLATE compression (SQL Server 2022, Intel QAT)".into(),
            Codec::Zstd => "ZSTD compression (SQL Server 2025)".into(),
            Codec::Mtf(n) => format!("MTF software compression (algorithm {n})"),
        }
    }
}

/// What a set uses that this reader cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Feature {
    /// Backup encryption (`BACKUP ... WITH ENCRYPTION`), marked as MTF marks encrypted data;
    /// the algorithm id where a stream header gives one.
    Encryption { algorithm: Option<u16> },
    /// Transparent data encryption: the database pages are ciphertext.
    Tde,
    /// A compression algorithm other than MS_XPRESS.
    Compression(Codec),
}

impl Feature {
    /// The feature, named for a person.
    pub fn name(&self) -> String {
        match self {
            Feature::Encryption { algorithm } => {
                let alg = algorithm.map_or(String::new(), |a| {
                    format!(", MTF data encryption algorithm {a}")
                });
                format!(
                    "backup encryption (BACKUP WITH ENCRYPTION{alg}; the media carry no \
                     encryptor thumbprint this reader knows of)"
                )
            }
            Feature::Tde => "transparent data encryption (TDE)".into(),
            Feature::Compression(c) => c.name(),
        }
    }

    /// What this reader cannot do about it.
    fn cannot(&self) -> &'static str {
        match self {
            Feature::Encryption { .. } => "does not decrypt",
            Feature::Tde => {
                "cannot read the database pages without the certificate that protects the \
                 database encryption key"
            }
            Feature::Compression(_) => "decodes only MS_XPRESS",
        }
    }

    /// True for what keeps the data from being read: encryption of either kind.
    pub fn is_encryption(&self) -> bool {
        matches!(self, Feature::Encryption { .. } | Feature::Tde)
    }
}

/// A feature found on a set, and the marker that gave it away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub feature: Feature,
    /// The set's position and the MTF offset of its SSET.
    pub position: u32,
    pub sset_off: u64,
    /// MTF offset of the marker.
    pub off: u64,
    /// The marker, in words.
    pub marker: String,
}

impl Finding {
    fn what(&self) -> String {
        format!(
            "backup set {} uses {}: unsupported, this reader {} ({})",
            self.position,
            self.feature.name(),
            self.feature.cannot(),
            self.marker
        )
    }

    /// As bak-verify reports it: a problem of kind `Unsupported`, not damage.
    pub fn problem(&self, d: &MtfDevice) -> Problem {
        Problem {
            kind: ProblemKind::Unsupported,
            device: d.media.device(),
            family: Some(d.family()),
            position: Some(self.position),
            block: d.media.seg_at(self.off).map(|g| g.index),
            offset: Some(d.media.file_offset_of(self.off)),
            what: self.what(),
            expected: None,
            found: None,
        }
    }

    /// As a reader refuses the set with it.
    pub fn error(&self, d: &MtfDevice) -> Error {
        Error::Unsupported {
            device: d.media.device(),
            what: self.what(),
        }
    }
}

/// What every set of the device uses that this reader cannot read, set by set in media order;
/// at most one finding of each kind per set (its first marker).
pub(crate) fn scan(d: &MtfDevice) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &d.cat.sets {
        let mut found: Vec<Finding> = Vec::new();
        let mut add = |feature: Feature, off: u64, marker: String| {
            add_finding(&mut found, s, feature, off, marker)
        };
        let blocks = s.blocks.iter().filter_map(|&i| d.cat.blocks.get(i));
        for b in blocks {
            let kind = id_text(b.kind);
            if b.kind == *b"SSET" && b.attrs & MTF_ENCRYPTION != 0 {
                add(
                    Feature::Encryption { algorithm: None },
                    b.off,
                    format!("SSET block attribute MTF_ENCRYPTION ({MTF_ENCRYPTION:#x}) at MTF offset {}", b.off),
                );
            }
            if b.attrs & MTF_COMPRESSION != 0 {
                add(
                    Feature::Compression(Codec::Mtf(s.sset.compression_algorithm)),
                    b.off,
                    format!("{kind} block attribute MTF_COMPRESSION ({MTF_COMPRESSION:#x}) at MTF offset {}", b.off),
                );
            }
            for st in &b.streams {
                let id = id_text(st.id);
                if st.media_attrs & STREAM_ENCRYPTED != 0 || st.encryption != 0 {
                    add(
                        Feature::Encryption {
                            algorithm: (st.encryption != 0).then_some(st.encryption),
                        },
                        st.hdr_off,
                        format!(
                            "stream {id} at MTF offset {} marked encrypted: media attributes {:#06x}, data encryption algorithm {}",
                            st.hdr_off, st.media_attrs, st.encryption
                        ),
                    );
                }
                if st.media_attrs & STREAM_COMPRESSED != 0 || st.compression != 0 {
                    add(
                        Feature::Compression(Codec::Mtf(st.compression)),
                        st.hdr_off,
                        format!(
                            "stream {id} at MTF offset {} marked compressed: media attributes {:#06x}, data compression algorithm {}",
                            st.hdr_off, st.media_attrs, st.compression
                        ),
                    );
                }
            }
        }
        // The SSET's software compression algorithm (byte 58) is not a marker of its own: no
        // checksum covers it, so a flipped bit there would pass for one. It names the
        // algorithm of a set that MTF_COMPRESSION marks.
        // Pages already unreadable for the reasons above say nothing more.
        if found.is_empty() {
            if let Some((off, bad, judged)) = tde_pages(d, s) {
                add_finding(
                    &mut found,
                    s,
                    Feature::Tde,
                    off,
                    format!(
                        "{bad} of the {judged} pages with a readable header among the first \
                         {TDE_SAMPLE} of the data stream hold no possible slot array, the first \
                         at MTF offset {off}"
                    ),
                );
            }
        }
        out.extend(found);
    }
    out
}

/// Add a finding to a set's, unless one of its kind is there (an algorithm named later completes
/// an encryption found without one).
fn add_finding(found: &mut Vec<Finding>, s: &SetRec, feature: Feature, off: u64, marker: String) {
    let kind = std::mem::discriminant(&feature);
    if let Some(f) = found
        .iter_mut()
        .find(|f| std::mem::discriminant(&f.feature) == kind)
    {
        if let (
            Feature::Encryption {
                algorithm: a @ None,
            },
            Feature::Encryption {
                algorithm: b @ Some(_),
            },
        ) = (&mut f.feature, &feature)
        {
            *a = *b;
        }
        return;
    }
    found.push(Finding {
        feature,
        position: s.position,
        sset_off: s.sset_off,
        off,
        marker,
    });
}

/// The first pages of a set's data stream, judged for transparent data encryption: TDE, as
/// public descriptions have it, encrypts each page's body and leaves its 96-byte header
/// readable, so a run of pages whose headers hold and whose slot arrays cannot be (record
/// offsets outside the page's records) is what it looks like. Returns the first such page's
/// MTF offset, how many there were and how many pages were judged, when they are at least
/// [`TDE_MIN_PAGES`] and three quarters of those judged. A page that cannot be read (a chunk
/// that does not decode) ends the sample: that is for the checks to report.
fn tde_pages(d: &MtfDevice, s: &SetRec) -> Option<(u64, u64, u64)> {
    let fids = s.file_ids();
    let mut page = vec![0u8; PAGE];
    let (mut seen, mut judged, mut bad, mut first) = (0u64, 0u64, 0u64, None);
    'streams: for (off, len) in d.streams_of(s, b"MSDA", b"MQDA").map(payload) {
        for k in 0..len / PAGE as u64 {
            if seen >= TDE_SAMPLE {
                break 'streams;
            }
            seen += 1;
            let at = off + k * PAGE as u64;
            match d.media.read_at(at, &mut page) {
                Ok(n) if n == PAGE => {}
                _ => break 'streams,
            }
            match slot_array_possible(&page, &fids) {
                Some(true) => judged += 1,
                Some(false) => {
                    judged += 1;
                    bad += 1;
                    first.get_or_insert(at);
                }
                None => {}
            }
        }
    }
    let first = first?;
    (bad >= TDE_MIN_PAGES && bad * 4 >= judged * 3).then_some((first, bad, judged))
}

/// Whether a page whose header reads as one (the header [`pages::check_page`] judges) has a
/// slot array that can be: the free data offset between the header and the slot array, and
/// every record offset either 0 (a slot freed) or among the records, between the header and
/// the free data. `None` for a page not judged: no page header, torn-page bits (they rewrite
/// the slot array's last byte), or no slots. Every such page of the fixtures passes.
pub(crate) fn slot_array_possible(p: &[u8], fids: &[u16]) -> Option<bool> {
    if !pages::has_page_header(p, fids) {
        return None;
    }
    let flags = u16::from_le_bytes([p[4], p[5]]);
    let slots = usize::from(u16::from_le_bytes([p[22], p[23]]));
    if flags & FLAG_TORN != 0 || slots == 0 {
        return None;
    }
    let free = usize::from(u16::from_le_bytes([p[30], p[31]]));
    let header = pages::HEADER;
    if slots > (PAGE - header) / 2 || free < header || free > PAGE - 2 * slots {
        return Some(false);
    }
    Some((0..slots).all(|k| {
        let at = PAGE - 2 - 2 * k;
        let o = usize::from(u16::from_le_bytes([p[at], p[at + 1]]));
        o == 0 || (header..free).contains(&o)
    }))
}

/// The compression algorithm whose data `b` starts with, when it is one this reader knows to
/// be foreign: a Zstandard frame or a gzip (QATzip) member.
pub(crate) fn foreign_payload(b: &[u8]) -> Option<Codec> {
    if b.starts_with(&ZSTD_MAGIC) {
        Some(Codec::Zstd)
    } else if b.starts_with(&GZIP_MAGIC) {
        Some(Codec::QatDeflate)
    } else {
        None
    }
}

/// A compressed container with a chunk in another algorithm (`what` says where and what was
/// seen), as the error every reader stops with: nothing of a container in an algorithm this
/// reader does not decode can be read.
pub(crate) fn foreign_chunk(device: &str, codec: Codec, what: &str) -> Error {
    Error::Unsupported {
        device: device.to_string(),
        what: format!(
            "the backup uses {}: unsupported, this reader decodes only MS_XPRESS ({what})",
            codec.name()
        ),
    }
}

/// What the media carry that this reader does not check and that does not keep it from
/// reading them: a media password (MEDIAPASSWORD) and backup set passwords (PASSWORD). SQL
/// Server's passwords only gate RESTORE; the data are not encrypted with them.
pub(crate) fn notes(d: &MtfDevice) -> Vec<String> {
    let mut out = Vec::new();
    let t = &d.cat.tape;
    if t.password_algorithm != 0 || t.has_password {
        out.push(format!(
            "the media carry a media password (MEDIAPASSWORD; TAPE password encryption \
             algorithm {}); bak does not check it, and reads the media without it",
            t.password_algorithm
        ));
    }
    for s in &d.cat.sets {
        if s.sset.password_algorithm != 0 || s.sset.has_password {
            out.push(format!(
                "backup set {} carries a backup set password (PASSWORD; SSET password \
                 encryption algorithm {}); bak does not check it, and reads the set without it",
                s.position, s.sset.password_algorithm
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::testkit::page;

    #[test]
    fn foreign_payloads_are_named_and_xpress_is_not() {
        assert_eq!(
            foreign_payload(&[0x28, 0xb5, 0x2f, 0xfd, 0x04]),
            Some(Codec::Zstd)
        );
        assert_eq!(
            foreign_payload(&[0x1f, 0x8b, 0x08, 0x04]),
            Some(Codec::QatDeflate)
        );
        // One byte off is not the magic.
        assert_eq!(foreign_payload(&[0x28, 0xb5, 0x2f, 0xfc]), None);
        assert_eq!(foreign_payload(&[0x1f, 0x8b, 0x09]), None);
        assert_eq!(foreign_payload(&[]), None);
    }

    #[test]
    fn slot_arrays_of_plain_pages_hold_and_random_bodies_do_not() {
        // Two records at 96 and 120, free data from 150.
        let mut p = page(1, 33, 0x5a);
        p[22..24].copy_from_slice(&2u16.to_le_bytes());
        p[30..32].copy_from_slice(&150u16.to_le_bytes());
        p[8190..8192].copy_from_slice(&96u16.to_le_bytes());
        p[8188..8190].copy_from_slice(&120u16.to_le_bytes());
        assert_eq!(slot_array_possible(&p, &[1]), Some(true));
        // A record offset past the free data, or inside the header.
        let mut q = p.clone();
        q[8188..8190].copy_from_slice(&7000u16.to_le_bytes());
        assert_eq!(slot_array_possible(&q, &[1]), Some(false));
        q[8188..8190].copy_from_slice(&40u16.to_le_bytes());
        assert_eq!(slot_array_possible(&q, &[1]), Some(false));
        // Free data beyond the slot array.
        let mut r = p.clone();
        r[30..32].copy_from_slice(&8190u16.to_le_bytes());
        assert_eq!(slot_array_possible(&r, &[1]), Some(false));
        // Not judged: torn bits, no slots, another file, no header.
        let mut t = q.clone();
        t[4..6].copy_from_slice(&0x100u16.to_le_bytes());
        assert_eq!(slot_array_possible(&t, &[1]), None);
        let mut e = q.clone();
        e[22..24].fill(0);
        assert_eq!(slot_array_possible(&e, &[1]), None);
        assert_eq!(slot_array_possible(&q, &[2]), None);
        assert_eq!(slot_array_possible(&[0u8; PAGE], &[1]), None);
    }
}
