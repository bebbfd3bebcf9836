//! The rows the tools print: RESTORE LABELONLY, HEADERONLY and FILELISTONLY in SQL Server's own
//! column names (PascalCase keys), made from bak-core's typed facts. Dates print as RFC 3339
//! UTC; a fact a format cannot say is `None` and prints as JSON `null` (empty in CSV and table).

use bak_core::bytes::{hex, MediaKind};
use bak_core::report::{FileInfo, LabelInfo, SetInfo};
use serde::Serialize;

use crate::dates::format_us;

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

impl From<&LabelInfo> for LabelRow {
    fn from(i: &LabelInfo) -> Self {
        LabelRow {
            device: i.device.clone(),
            media_format: i.media_format,
            format_version: i.format_version.clone(),
            media_name: i.media_name.clone(),
            media_description: i.media_description.clone(),
            media_set_id: i.media_set_id.clone(),
            media_family_id: i.media_family_id.clone(),
            family_count: i.family_count,
            family_sequence_number: i.family_sequence_number,
            media_sequence_number: i.media_sequence_number,
            software_name: i.software_name.clone(),
            software_vendor_id: i.software_vendor_id,
            media_date: i.media_date.map(format_us),
            logical_block_size: i.logical_block_size,
            backup_set_count: i.backup_set_count,
            media_password_protected: i.media_password_protected,
            is_compressed: i.is_compressed,
            expiration_date: i.expiration_date.map(format_us),
            expired: i.expired,
        }
    }
}

impl From<&SetInfo> for SetRow {
    fn from(i: &SetInfo) -> Self {
        SetRow {
            position: i.position,
            backup_name: i.backup_name.clone(),
            backup_description: i.backup_description.clone(),
            backup_set_guid: i.backup_set_guid.clone(),
            backup_type: i.backup_type,
            backup_type_description: i.backup_type_description.clone(),
            user_name: i.user_name.clone(),
            machine_name: i.machine_name.clone(),
            server_name: i.server_name.clone(),
            database_name: i.database_name.clone(),
            device_name: i.device_name.clone(),
            volume_name: i.volume_name.clone(),
            backup_start_date: i.backup_start_date.map(format_us),
            backup_finish_date: i.backup_finish_date.map(format_us),
            expiration_date: i.expiration_date.map(format_us),
            compressed: i.compressed,
            compression: i.compression.clone(),
            encrypted: i.encrypted,
            backup_size: i.backup_size,
            compressed_backup_size: i.compressed_backup_size,
            family_count: i.family_count,
            block_count: i.block_count,
            max_transfer_size: i.max_transfer_size,
            has_backup_checksums: i.has_backup_checksums,
            is_complete: i.is_complete,
            software_name: i.software_name.clone(),
            software_version: i.software_version.clone(),
            software_version_major: i.software_version_major,
            software_product: i.software_product.clone(),
            digest: i.digest.as_ref().map(|d| hex(d)),
            source_label: i.source_label.clone(),
        }
    }
}

impl From<&FileInfo> for FileRow {
    fn from(i: &FileInfo) -> Self {
        FileRow {
            position: i.position,
            logical_name: i.logical_name.clone(),
            physical_name: i.physical_name.clone(),
            file_type: i.file_type.clone(),
            file_group_name: i.file_group_name.clone(),
            size: i.size,
            file_id: i.file_id,
        }
    }
}
