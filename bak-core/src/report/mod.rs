//! Typed reports: what the operations return. Verdicts and problems are types, never decided
//! from message text; listings are typed facts (dates as numbers, formatted only when
//! serialised). A leaf beside the layer stack: it imports only the bytes layer ([`MediaKind`],
//! `hex`), the date helper and errors, and the operations above build its values.

use serde::Serialize;

use crate::bytes::MediaKind;
use crate::error::{Beyond, Error, Location, PastEnd};

/// The verdict on a backup set (RESTORE VERIFYONLY's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Whole and every check holds.
    #[default]
    Valid,
    /// Started but not finished: its end is missing on some family, nothing else is wrong.
    Incomplete,
    /// Something is wrong with what is there.
    Damaged,
    /// Not whole, yet every byte is restorable from the redundancy (a mirror copy missing or
    /// damaged while another copy of each family is whole).
    Degraded,
    /// Nothing is wrong with what could be checked, but the set uses what this build cannot
    /// read (an encryption, a compression algorithm, a format version): not a verdict on its
    /// bytes, and never called damaged for it.
    Unsupported,
}

impl Verdict {
    /// The word: "valid", "incomplete", "damaged", "unsupported", "degraded".
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Incomplete => "incomplete",
            Verdict::Damaged => "damaged",
            Verdict::Unsupported => "unsupported",
            Verdict::Degraded => "degraded",
        }
    }

    /// The verdict that the problems found, and whether the set is whole, make. Problems of
    /// kind [`ProblemKind::Unsupported`] are not damage: a set with only those is
    /// `Unsupported`; with others besides, the others decide.
    pub fn of(problems: &[Problem], complete: bool) -> Verdict {
        let damage = || {
            problems
                .iter()
                .filter(|p| p.kind != ProblemKind::Unsupported)
        };
        if problems.is_empty() && complete {
            Verdict::Valid
        } else if !complete && damage().all(|p| p.kind == ProblemKind::Incomplete) {
            Verdict::Incomplete
        } else if damage().next().is_none() {
            Verdict::Unsupported
        } else {
            Verdict::Damaged
        }
    }

    /// True for a verdict that bak-verify's exit status 1 stands for: damaged, incomplete
    /// or degraded (CI must notice a dead copy before the last one dies).
    pub fn is_damage(self) -> bool {
        matches!(
            self,
            Verdict::Damaged | Verdict::Incomplete | Verdict::Degraded
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// What kind of problem verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Bytes are damaged: a checksum fails, a field is impossible, records disagree.
    #[default]
    Corrupt,
    /// The media end before something that should be there (not at a set boundary).
    Truncated,
    /// A backup set was started and not finished (interrupted): its end is missing.
    Incomplete,
    /// Something that should be there is not: a family, a set on a family, a block.
    Missing,
    /// Something belongs to other media: another media set, another set.
    Foreign,
    /// Recognised, but this build cannot check it.
    Unsupported,
    /// Another bak media begins after the end of these media on the same device: media
    /// concatenated on one device (as `cat >>` makes), which are not one media set.
    Concatenated,
    /// Bytes that are not bak records follow the end of the media.
    PastEnd,
}

impl ProblemKind {
    /// The kind of problem that bytes past the end of the media make.
    pub fn of_past_end(p: &PastEnd) -> ProblemKind {
        match p.beyond {
            Beyond::Media { .. } => ProblemKind::Concatenated,
            Beyond::Bytes { .. } => ProblemKind::PastEnd,
        }
    }
}

impl Problem {
    /// The problem an error describes, at `at` where the error does not say more.
    pub fn from_error(at: &Location, e: &Error) -> Problem {
        let (kind, what, expected, found) = match e {
            Error::Corrupt {
                what,
                expected,
                found,
                ..
            } => (
                ProblemKind::Corrupt,
                what.clone(),
                expected.clone(),
                found.clone(),
            ),
            Error::Truncated { what, .. } => (
                ProblemKind::Truncated,
                format!("media end before {what}"),
                None,
                None,
            ),
            Error::UnsupportedVersion { .. } | Error::Unsupported { .. } => {
                (ProblemKind::Unsupported, e.to_string(), None, None)
            }
            Error::MediaSet { .. } => (ProblemKind::Missing, e.to_string(), None, None),
            Error::PastEnd(p) => (ProblemKind::of_past_end(p), p.describe(), None, None),
            other => (ProblemKind::Corrupt, other.to_string(), None, None),
        };
        let past_at;
        let loc = match e {
            Error::Corrupt { at: loc, .. }
            | Error::Truncated { at: loc, .. }
            | Error::UnsupportedVersion { at: loc, .. } => loc,
            Error::PastEnd(p) => {
                past_at = p.location();
                &past_at
            }
            _ => at,
        };
        Problem {
            kind,
            device: loc.device.clone(),
            family: loc.family.or(at.family),
            position: loc.position.or(at.position),
            block: loc.block,
            offset: loc.offset,
            what,
            expected,
            found,
        }
    }

    /// The same problem, of another kind.
    pub fn with_kind(mut self, kind: ProblemKind) -> Problem {
        self.kind = kind;
        self
    }
}

/// A point in time: microseconds since the Unix epoch, UTC. Serialises (and displays) as RFC
/// 3339 in UTC to the second, as SQL Server tools print dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::dates::format_us(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn hex_digest<S: serde::Serializer>(d: &Option<[u8; 16]>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&crate::bytes::hex(d)),
        None => s.serialize_none(),
    }
}

/// One device's media label: what RESTORE LABELONLY shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelInfo {
    /// The path given on the command line.
    pub device: String,
    /// Which format the media are.
    pub media_format: Option<MediaKind>,
    /// Format version the media label was written with (bak: "1.1", or "1.0" for media of
    /// earlier releases; MTF: the MTF major version).
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
    /// Which copy of its family this device is (MIRROR TO), counted from 1.
    pub mirror_number: Option<u32>,
    /// Software that wrote the media.
    pub software_name: Option<String>,
    /// Vendor id (MTF: 0x1200 = SQL Server; bak: none).
    pub software_vendor_id: Option<u32>,
    /// When the media were formatted, UTC.
    pub media_date: Option<Timestamp>,
    /// MTF format logical block size in bytes.
    pub logical_block_size: Option<u32>,
    /// Number of backup sets on this device (complete or not).
    pub backup_set_count: Option<u32>,
    /// True when the media carry a media password (MTF only).
    pub media_password_protected: Option<bool>,
    /// True when the media are compressed as a whole (MTF: MSSQLBAK container).
    pub is_compressed: Option<bool>,
    /// Latest expiration date of the sets on the media (UTC), if any set has one.
    pub expiration_date: Option<Timestamp>,
    /// True when every set on the media has expired (or none carries a date).
    pub expired: Option<bool>,
}

/// One backup set: what RESTORE HEADERONLY shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetInfo {
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
    /// As SQL Server words it: "Database", "Database Differential", "Transaction Log", ...;
    /// "Stream" for bak media.
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
    /// Start time, UTC.
    pub backup_start_date: Option<Timestamp>,
    /// Finish time, UTC.
    pub backup_finish_date: Option<Timestamp>,
    /// Expiration time, UTC.
    pub expiration_date: Option<Timestamp>,
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
    /// Copies of each family, as msdb counts them: 1 without mirrors, 3 with two
    /// `--mirror-to`.
    pub mirror_count: Option<u32>,
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
    /// The codec-independent digest of the original bytes (bak only).
    #[serde(serialize_with = "hex_digest")]
    pub digest: Option<[u8; 16]>,
    /// The label of the source (bak: what `--input` named, or "stdin").
    pub source_label: Option<String>,
    /// The algorithm a backup made `WITH ENCRYPTION` is encrypted with, as far as the media
    /// say it (MTF: the data encryption algorithm id of the stream headers); null when the
    /// set is not encrypted or the media do not say.
    pub key_algorithm: Option<String>,
    /// Thumbprint of the certificate or asymmetric key that encrypted the set's key, in hex,
    /// where the media carry one.
    pub encryptor_thumbprint: Option<String>,
    /// "CERTIFICATE" or "ASYMMETRIC KEY", where the media say it.
    pub encryptor_type: Option<String>,
    /// The cipher of an encrypted set, e.g. "AES-256-GCM".
    pub encryption_algorithm: Option<String>,
    /// What opens an encrypted set: `x25519:` and the fingerprint of each recipient (the first
    /// 8 bytes of the SHA-256 of its `age1...` key, in hex), and `passphrase`.
    pub key_fingerprints: Option<Vec<String>>,
    /// SQL Server's own HEADERONLY columns (SQL Server backups only: absent for bak media).
    #[serde(flatten)]
    pub sql: Option<SqlServerSet>,
    /// Where the row was read (absent when the tool lists one bak media set, as format 1.0
    /// tools did).
    #[serde(flatten)]
    pub origin: Option<Origin>,
}

/// A SQL Server log sequence number: (virtual log file sequence number, log block offset,
/// slot). Displays, and serialises as a string (it exceeds 2^53), as SQL Server prints it: the
/// decimal `seq * 10^15 + block * 10^5 + slot`, e.g. `34000000016000037`. The order of the
/// fields is the order of the decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn {
    /// Sequence number of the virtual log file.
    pub seq: u32,
    /// Offset of the log block in the virtual log file (in 512-byte units).
    pub block: u32,
    /// Slot of the log record in the block.
    pub slot: u16,
}

impl Lsn {
    /// The LSN as SQL Server's numeric(25,0).
    pub fn decimal(self) -> u128 {
        u128::from(self.seq) * 1_000_000_000_000_000
            + u128::from(self.block) * 100_000
            + u128::from(self.slot)
    }

    /// True for the LSN 0 (SQL Server's "none": no earlier full backup, for instance).
    pub fn is_zero(self) -> bool {
        self == Lsn::default()
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.decimal())
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;

    /// Parse SQL Server's decimal form; refuses a number whose parts do not fit their fields.
    fn from_str(s: &str) -> Result<Lsn, String> {
        let n: u128 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an LSN (a decimal number)"))?;
        let (seq, rest) = (n / 1_000_000_000_000_000, n % 1_000_000_000_000_000);
        let bad = || format!("{s:?} is not an LSN: a part does not fit its field");
        Ok(Lsn {
            seq: u32::try_from(seq).map_err(|_| bad())?,
            block: u32::try_from(rest / 100_000).map_err(|_| bad())?,
            slot: u16::try_from(rest % 100_000).map_err(|_| bad())?,
        })
    }
}

impl Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The columns of RESTORE HEADERONLY that only SQL Server backups carry, where the media carry
/// them: `None` (null) where they do not, or where bak cannot read them reliably
/// (docs/OUTPUT.md says where each one comes from and how sure it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqlServerSet {
    /// Log sequence number of the first log record in the backup set.
    #[serde(rename = "FirstLSN")]
    pub first_lsn: Option<Lsn>,
    /// Log sequence number of the next log record after the backup set.
    #[serde(rename = "LastLSN")]
    pub last_lsn: Option<Lsn>,
    /// Log sequence number of the most recent checkpoint at the time the backup was created.
    #[serde(rename = "CheckpointLSN")]
    pub checkpoint_lsn: Option<Lsn>,
    /// The CheckpointLSN of the most recent full database backup (0: none).
    #[serde(rename = "DatabaseBackupLSN")]
    pub database_backup_lsn: Option<Lsn>,
    /// Differential backups: the LSN their changes start from (their base's); null otherwise.
    #[serde(rename = "DifferentialBaseLSN")]
    pub differential_base_lsn: Option<Lsn>,
    /// Differential backups: the BackupSetGUID of their base full backup; null otherwise.
    #[serde(rename = "DifferentialBaseGUID")]
    pub differential_base_guid: Option<String>,
    /// The database's family GUID: the same for every backup of one database (and of its
    /// restored copies).
    #[serde(rename = "FamilyGUID")]
    pub family_guid: Option<String>,
    /// `FULL`, `BULK-LOGGED` or `SIMPLE`.
    pub recovery_model: Option<String>,
    /// The database's compatibility level (90 = 2005 ... 150 = 2019).
    pub compatibility_level: Option<u32>,
    /// The database's collation, e.g. `SQL_Latin1_General_CP1_CI_AS`.
    pub collation: Option<String>,
    /// True for a COPY_ONLY backup.
    pub is_copy_only: Option<bool>,
    /// The database's internal version (611 = 2005 ... 904 = 2019).
    pub database_version: Option<u32>,
}

/// Where a listed row was read: the devices (in family order, `, ` between them) and their
/// media set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Origin {
    /// The device, or the devices of a set that spans families.
    pub device: String,
    /// The media set id the devices carry (MTF: the RAID stream GUID), where they carry one.
    pub media_set_id: Option<String>,
}

/// One database file inside a backup set: what RESTORE FILELISTONLY shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileInfo {
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
    /// Where the row was read.
    #[serde(flatten)]
    pub origin: Option<Origin>,
}

/// One problem found by verification. Every field that locates the damage is filled where known.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Problem {
    /// What kind of problem. (Not in the JSON: the verdict says what a CI job acts on, and the
    /// output of format-1.0 tools stays unchanged.)
    #[serde(skip)]
    pub kind: ProblemKind,
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
    /// The verdict.
    pub verdict: Verdict,
    /// Every problem found (or the first, with --stop-on-error).
    pub problems: Vec<Problem>,
    /// Stored bytes read and checked.
    pub bytes_checked: u64,
    /// Original bytes whose digest was checked (0 with --fast).
    pub original_bytes_checked: u64,
    /// Wall time spent on this set.
    pub seconds: f64,
    /// True when every byte of the set can be restored (valid or degraded).
    pub recoverable: bool,
    /// How many more family losses the set survives: with mirrors, the fewest whole copies of
    /// any family minus 1 (0 without redundancy).
    pub redundancy_left: u32,
    /// What was found of the copies of mirrored families (copies missing, damage read from
    /// another copy, copies that differ).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirror_notes: Vec<MirrorNote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lsn_prints_as_sql_server_prints_it_and_parses_back() {
        let l = Lsn {
            seq: 34,
            block: 160,
            slot: 37,
        };
        assert_eq!(l.to_string(), "34000000016000037");
        assert_eq!("34000000016000037".parse::<Lsn>(), Ok(l));
        let max = Lsn {
            seq: u32::MAX,
            block: u32::MAX,
            slot: u16::MAX,
        };
        assert_eq!(max.to_string().parse::<Lsn>(), Ok(max));
        assert_eq!(serde_json::to_string(&max).unwrap(), format!("\"{max}\""));
        assert!(max.decimal() > 1 << 53);
        // The order of the fields is the order of the numbers.
        let next_block = Lsn {
            seq: 34,
            block: 161,
            slot: 0,
        };
        assert!(l < next_block && l.decimal() < next_block.decimal());
        assert!(Lsn::default().is_zero() && !l.is_zero());
        assert!("12x".parse::<Lsn>().is_err());
        // A slot of 100000 or more cannot be told from the block: not an LSN.
        assert!("4294967296000000000000000".parse::<Lsn>().is_err());
    }

    #[test]
    fn sql_server_columns_and_origin_are_absent_unless_given() {
        let bare = serde_json::to_value(SetInfo::default()).unwrap();
        assert!(bare.get("FirstLSN").is_none() && bare.get("Device").is_none());
        let row = SetInfo {
            sql: Some(SqlServerSet::default()),
            origin: Some(Origin {
                device: "a.bak".into(),
                media_set_id: None,
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(row).unwrap();
        assert_eq!(v["Device"], "a.bak");
        assert!(v["IsCopyOnly"].is_null() && v["MediaSetId"].is_null());
        assert!(v.as_object().unwrap().contains_key("DifferentialBaseGUID"));
    }

    #[test]
    fn bytes_past_the_end_are_a_problem_of_their_own_kind_where_they_begin() {
        let past = |beyond| PastEnd {
            at: Location::device("x.bak").family(1),
            offset: 8192,
            len: Some(10),
            beyond,
        };
        let media = past(Beyond::Media {
            media_set_id: "id".into(),
            same_media_set: false,
            family_number: 1,
            family_count: 1,
        });
        let p = Problem::from_error(
            &Location::device("elsewhere"),
            &Error::PastEnd(Box::new(media)),
        );
        assert_eq!(p.kind, ProblemKind::Concatenated);
        assert_eq!(
            (p.device.as_str(), p.family, p.offset, p.position),
            ("x.bak", Some(1), Some(8192), None)
        );
        assert!(p
            .what
            .starts_with("a second bak media begins here (media set id"));
        assert!(p
            .to_string()
            .starts_with("x.bak: family 1, offset 8192: a second bak media"));
        let bytes = past(Beyond::Bytes { first: "ff".into() });
        let p = Problem::from_error(&Location::device("x.bak"), &Error::PastEnd(Box::new(bytes)));
        assert_eq!(p.kind, ProblemKind::PastEnd);
        assert_eq!(
            p.what,
            "10 bytes past the end of the media (not bak records: first bytes ff)"
        );
        assert_eq!(Verdict::of(&[p], true), Verdict::Damaged);
    }

    #[test]
    fn what_cannot_be_read_is_unsupported_not_damaged() {
        let of = |kinds: &[ProblemKind], complete| {
            let ps: Vec<Problem> = kinds
                .iter()
                .map(|&kind| Problem {
                    kind,
                    ..Default::default()
                })
                .collect();
            Verdict::of(&ps, complete)
        };
        use ProblemKind::*;
        assert_eq!(of(&[Unsupported], true), Verdict::Unsupported);
        assert_eq!(of(&[Unsupported, Unsupported], true), Verdict::Unsupported);
        // Damage besides decides, as does a set cut short.
        assert_eq!(of(&[Unsupported, Corrupt], true), Verdict::Damaged);
        assert_eq!(of(&[Unsupported, Incomplete], false), Verdict::Incomplete);
        assert_eq!(of(&[Incomplete], false), Verdict::Incomplete);
        assert_eq!(of(&[], true), Verdict::Valid);
        assert!(!Verdict::Unsupported.is_damage());
        assert!(Verdict::Damaged.is_damage() && Verdict::Incomplete.is_damage());
        assert!(!Verdict::Valid.is_damage());
        assert_eq!(Verdict::Unsupported.word(), "unsupported");
    }
}

/// What kind of thing a reader found about a copy of a mirrored family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MirrorNoteKind {
    /// The copy was not given.
    Missing,
    /// A unit (record, block) of the copy does not check; another copy's was used.
    Damaged,
    /// A unit checks on no copy given: lost, unless parity rebuilds it.
    Lost,
    /// The copy ends before the others (cut short, or a read error).
    CutShort,
    /// Two copies that both check hold different bytes.
    Differ,
}

/// One thing a reader found about a copy of a mirrored family (docs/FORMAT.md, "Mirrors").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MirrorNote {
    /// What it is.
    pub kind: MirrorNoteKind,
    /// The family.
    pub family: u16,
    /// The copy's mirror number.
    pub mirror: u16,
    /// The copy's device (empty for a copy not given).
    pub device: String,
    /// The family offset it concerns.
    pub offset: u64,
    /// What, in words.
    pub what: String,
    /// The device the unit was read from instead, for damage healed.
    pub from: Option<String>,
}

impl std::fmt::Display for MirrorNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == MirrorNoteKind::Missing {
            return write!(f, "{}", self.what);
        }
        write!(
            f,
            "{} (copy {} of family {}), offset {}: {}",
            self.device, self.mirror, self.family, self.offset, self.what
        )?;
        if let Some(d) = &self.from {
            write!(f, "; read from {d}")?;
        }
        Ok(())
    }
}
