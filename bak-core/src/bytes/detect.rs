//! Format detection: which kind of media a device holds, from its first bytes.

use super::frame::{FRAME_HEADER_LEN, MEDIA_HEADER_SPAN, SKIPPABLE_MAGIC};
use serde::Serialize;

/// Which kind of media a device holds, as recognised from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MediaKind {
    /// Media written by bak-write (docs/FORMAT.md).
    #[serde(rename = "bak")]
    Bak,
    /// SQL Server native backup: Microsoft Tape Format, uncompressed (starts with a TAPE block).
    #[serde(rename = "mtf")]
    Mtf,
    /// SQL Server compressed backup (starts with `MSSQLBAK`, MTF inside Xpress chunks).
    #[serde(rename = "mtf-compressed")]
    MtfCompressed,
}

impl MediaKind {
    /// A short human name, for messages ("bak media", "SQL Server backup (MTF)").
    pub fn describe(self) -> &'static str {
        match self {
            MediaKind::Bak => "bak media",
            MediaKind::Mtf => "SQL Server backup (Microsoft Tape Format)",
            MediaKind::MtfCompressed => "SQL Server compressed backup (MSSQLBAK, MTF inside)",
        }
    }
}

/// Tell the format from the first bytes (12 are enough; fewer can only say "not bak").
pub fn sniff(head: &[u8]) -> Option<MediaKind> {
    // Two of the three fixed fields are enough: a damaged label is still bak media (and then
    // reported as damaged), not a foreign file.
    if head.len() >= 12 {
        let size = (MEDIA_HEADER_SPAN as u32 - FRAME_HEADER_LEN as u32).to_le_bytes();
        let hits = (head[..4] == SKIPPABLE_MAGIC.to_le_bytes()) as u8
            + (head[4..8] == size) as u8
            + (head[8..12] == *b"BKMH") as u8;
        if hits >= 2 {
            return Some(MediaKind::Bak);
        }
    }
    if head.starts_with(b"TAPE") {
        return Some(MediaKind::Mtf);
    }
    if head.starts_with(b"MSSQLBAK") {
        return Some(MediaKind::MtfCompressed);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"TAPE\0\0"), Some(MediaKind::Mtf));
        assert_eq!(sniff(b"MSSQLBAK\x02\0\0\0"), Some(MediaKind::MtfCompressed));
        assert_eq!(sniff(b"BAK1"), None);
        assert_eq!(sniff(b""), None);
    }
}
