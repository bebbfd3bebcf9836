//! The output model shared by both media formats (bak media and SQL Server's MTF media).
//!
//! `bak-header` prints these rows as a table, JSON or CSV. Field names serialize in SQL Server's
//! own column names (PascalCase), so a CI job that knows RESTORE HEADERONLY knows the keys.
//! A field that a format cannot say is `None` and prints as JSON `null` (empty in CSV and table).

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

/// One device's media label: RESTORE LABELONLY.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LabelRow {
    /// The path given on the command line.
    pub device: String,
    /// "bak", "mtf" or "mtf-compressed".
    pub media_format: Option<MediaKind>,
    /// Format version of the media (bak: "1.0"; MTF: the MTF major version).
    pub format_version: String,
    /// Media name (MEDIANAME).
    pub media_name: Option<String>,
    /// Media description (MEDIADESCRIPTION).
    pub media_description: Option<String>,
    /// GUID shared by every family of the media set (MTF: the RAID stream GUID).
    pub media_set_id: Option<String>,
    /// Identifier of this media family.
    pub media_family_id: Option<String>,
    /// Number of families in the media set.
    pub family_count: Option<u32>,
    /// This device's family number, counted from 1.
    pub family_sequence_number: Option<u32>,
    /// Volume number within the family, counted from 1.
    pub media_sequence_number: Option<u32>,
    /// Software that wrote the media.
    pub software_name: Option<String>,
    /// Vendor id (MTF: 0x1200 = SQL Server; bak: none).
    pub software_vendor_id: Option<u32>,
    /// When the media were formatted, RFC 3339 UTC.
    pub media_date: Option<String>,
    /// MTF format logical block size in bytes.
    pub logical_block_size: Option<u32>,
    /// Number of backup sets on this device (complete or not).
    pub backup_set_count: Option<u32>,
    /// True when the media carry a media password (MTF only).
    pub media_password_protected: Option<bool>,
    /// True when the media are compressed as a whole (MTF: MSSQLBAK container).
    pub is_compressed: Option<bool>,
    /// Latest expiration date of the sets on the media, RFC 3339 UTC, if any set has one.
    pub expiration_date: Option<String>,
    /// True when every set on the media has expired (or none carries a date).
    pub expired: Option<bool>,
}

/// One backup set: RESTORE HEADERONLY.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SetRow {
    /// Position of the set on the media, counted from 1 (RESTORE's FILE = n).
    pub position: u32,
    /// Backup name.
    pub backup_name: Option<String>,
    /// Backup description.
    pub backup_description: Option<String>,
    /// Backup set GUID.
    #[serde(rename = "BackupSetGUID")]
    pub backup_set_guid: Option<String>,
    /// Backup type code as msdb writes it: 1 database, 5 differential, 2 log; bak media: none.
    pub backup_type: Option<u32>,
    /// "Database", "Differential database", "Transaction log", or "Stream" for bak media.
    pub backup_type_description: Option<String>,
    /// User that ran the backup.
    pub user_name: Option<String>,
    /// Machine that ran the backup.
    pub machine_name: Option<String>,
    /// SQL Server instance name (MTF only).
    pub server_name: Option<String>,
    /// Database name (MTF only).
    pub database_name: Option<String>,
    /// Device name recorded on the media (MTF VOLB).
    pub device_name: Option<String>,
    /// Volume name recorded on the media (MTF VOLB).
    pub volume_name: Option<String>,
    /// Start time, RFC 3339 UTC.
    pub backup_start_date: Option<String>,
    /// Finish time, RFC 3339 UTC.
    pub backup_finish_date: Option<String>,
    /// Expiration time, RFC 3339 UTC.
    pub expiration_date: Option<String>,
    /// True when the set is compressed.
    pub compressed: bool,
    /// Codec and level, e.g. "zstd:3" or "none" (bak), "xpress" (MTF).
    pub compression: Option<String>,
    /// True when the set is encrypted.
    pub encrypted: Option<bool>,
    /// Original bytes of the backup.
    pub backup_size: Option<u64>,
    /// Stored bytes of the backup.
    pub compressed_backup_size: Option<u64>,
    /// Number of families the set spans.
    pub family_count: Option<u32>,
    /// Number of data blocks.
    pub block_count: Option<u64>,
    /// Largest transfer (block) size in bytes.
    pub max_transfer_size: Option<u32>,
    /// True when the backup carries checksums of its data.
    pub has_backup_checksums: Option<bool>,
    /// False when the set was interrupted (its end is missing on some family).
    pub is_complete: bool,
    /// Software that wrote the set.
    pub software_name: Option<String>,
    /// Software version, e.g. "0.1.0" or "15.0".
    pub software_version: Option<String>,
    /// SQL Server major version (11 = 2012 ... 16 = 2022); MTF only.
    pub software_version_major: Option<u32>,
    /// Product name for the major version, e.g. "SQL Server 2019".
    pub software_product: Option<String>,
    /// The codec-independent digest of the original bytes (bak only), hex.
    pub digest: Option<String>,
    /// The label of the source (bak: what `--input` named, or "stdin").
    pub source_label: Option<String>,
}

/// One database file inside a backup set: RESTORE FILELISTONLY.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct FileRow {
    /// Position of the backup set it belongs to.
    pub position: u32,
    /// Logical file name.
    pub logical_name: String,
    /// Physical path of the file on the server.
    pub physical_name: String,
    /// D data, L log, F full-text, S filestream.
    #[serde(rename = "Type")]
    pub file_type: String,
    /// File group name, where known.
    pub file_group_name: Option<String>,
    /// Size in bytes, where the media say it.
    pub size: Option<u64>,
    /// File id, where known.
    #[serde(rename = "FileID")]
    pub file_id: Option<u32>,
}

/// Name of the SQL Server product for a major version number.
pub fn sql_server_product(major: u32) -> Option<&'static str> {
    Some(match major {
        8 => "SQL Server 2000",
        9 => "SQL Server 2005",
        10 => "SQL Server 2008",
        11 => "SQL Server 2012",
        12 => "SQL Server 2014",
        13 => "SQL Server 2016",
        14 => "SQL Server 2017",
        15 => "SQL Server 2019",
        16 => "SQL Server 2022",
        17 => "SQL Server 2025",
        _ => return None,
    })
}

/// One problem found by verification. Every field that locates the damage is filled where known.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Problem {
    /// The device (path) the damage is on.
    pub device: String,
    /// Family number, counted from 1.
    pub family: Option<u32>,
    /// Backup set position, counted from 1.
    pub position: Option<u32>,
    /// Global block sequence number (bak) or block/chunk index (MTF).
    pub block: Option<u64>,
    /// Byte offset in the device where the damaged record or block starts.
    pub offset: Option<u64>,
    /// What is wrong, in a sentence.
    pub what: String,
    /// What was expected, where that can be said.
    pub expected: Option<String>,
    /// What was found, where that can be said.
    pub found: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.device)?;
        if let Some(fam) = self.family {
            write!(f, ": family {fam}")?;
        }
        if let Some(pos) = self.position {
            write!(f, ", set {pos}")?;
        }
        if let Some(b) = self.block {
            write!(f, ", block {b}")?;
        }
        if let Some(o) = self.offset {
            write!(f, ", offset {o}")?;
        }
        write!(f, ": {}", self.what)?;
        match (&self.expected, &self.found) {
            (Some(e), Some(x)) => write!(f, " (expected {e}, found {x})"),
            (Some(e), None) => write!(f, " (expected {e})"),
            (None, Some(x)) => write!(f, " (found {x})"),
            (None, None) => Ok(()),
        }
    }
}

/// The verdict on one backup set: RESTORE VERIFYONLY.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SetReport {
    /// Position of the set, counted from 1.
    pub position: u32,
    /// "valid", "damaged" or "incomplete".
    pub verdict: String,
    /// Every problem found (or the first, with --stop-on-error).
    pub problems: Vec<Problem>,
    /// Stored bytes read and checked.
    pub bytes_checked: u64,
    /// Original bytes whose digest was checked (0 with --fast).
    pub original_bytes_checked: u64,
    /// Wall time spent on this set.
    pub seconds: f64,
}
