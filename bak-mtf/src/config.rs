//! SQL Server's configuration stream (MQCI), found in the MSCI block before the data and again
//! in the MSLS block after the log.
//!
//! The stream is a run of records, each a 4-byte tag and a u32 length counting the whole record:
//! SCIN (the backup: database, server, type, dates, version), SFGI (a file group), SFIN (a
//! database file). Strings inside a record are (u16 byte length, u16 offset from the record
//! start) pairs of UTF-16LE text. The offsets were read off the fixtures (docs/MTF.md) and hold
//! from SQL Server 2008 to 2019.

use bak_core::report::Lsn;

use super::le::{id_at, ms_guid, u16_at, u32_at, u64_at, u8_at, utf16le};

/// Backup flags (SCIN +8): the backup carries page checksums (WITH CHECKSUM).
pub(crate) const SCIN_FLAG_CHECKSUMS: u32 = 0x10;

/// Offsets in the SCIN record of RESTORE HEADERONLY's own columns (docs/MTF.md says how each
/// was checked against the fixtures). LSNs are 10 bytes: u32 sequence, u32 block, u16 slot.
mod scin {
    pub const FIRST_LSN: usize = 0x20;
    pub const LAST_LSN: usize = 0x2a;
    pub const CHECKPOINT_LSN: usize = 0x34;
    pub const DATABASE_BACKUP_LSN: usize = 0x3e;
    /// u8.
    pub const COMPATIBILITY_LEVEL: usize = 0x5b;
    /// u16.
    pub const DATABASE_VERSION: usize = 0x5e;
    /// 5 bytes: the collation id (u32) and sort id (u8) of SQL Server's wire format.
    pub const COLLATION: usize = 0xd8;
    /// 16-byte GUID.
    pub const FAMILY_GUID: usize = 0xe0;
    /// u32: the database's status bits (sysdatabases.status).
    pub const DATABASE_STATUS: usize = 0xf4;
    pub const DIFFERENTIAL_BASE_LSN: usize = 0x104;
    /// 16-byte GUID.
    pub const DIFFERENTIAL_BASE_GUID: usize = 0x110;
}

/// Database status bit: truncate log on checkpoint (the SIMPLE recovery model).
const STATUS_TRUNC_LOG: u32 = 0x8;
/// Database status bit: select into / bulk copy (the BULK_LOGGED recovery model).
const STATUS_BULK_COPY: u32 = 0x4;

/// One database file named in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigFile {
    pub logical: String,
    pub physical: String,
    pub file_id: u32,
    /// File group id; 0 for log files (SQL Server gives the log no file group).
    pub filegroup_id: u32,
    /// Size of the file in bytes.
    pub size: u64,
}

/// What the configuration stream says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Config {
    pub database: Option<String>,
    pub server: Option<String>,
    /// msdb's backup type letter: D database, I differential, L log, F file, G differential
    /// file, P partial, Q differential partial.
    pub type_letter: Option<u8>,
    /// SCIN flags (bit 0x10: WITH CHECKSUM).
    pub flags: u32,
    /// (major, minor, build) of the SQL Server that wrote the backup.
    pub version: Option<(u8, u8, u16)>,
    /// Start and finish dates (MTF packed); the finish date is only filled in the trailing copy.
    pub start: Option<[u8; 5]>,
    pub finish: Option<[u8; 5]>,
    pub files: Vec<ConfigFile>,
    /// (file group id, name).
    pub filegroups: Vec<(u32, String)>,
    /// First, last, checkpoint and database backup LSNs, as HEADERONLY names them.
    pub first_lsn: Option<Lsn>,
    pub last_lsn: Option<Lsn>,
    pub checkpoint_lsn: Option<Lsn>,
    pub database_backup_lsn: Option<Lsn>,
    pub compatibility_level: Option<u8>,
    pub database_version: Option<u16>,
    /// Collation id and sort id (see `collation`).
    pub collation: Option<[u8; 5]>,
    pub family_guid: Option<String>,
    /// sysdatabases.status of the database.
    pub database_status: Option<u32>,
    /// What a differential backup is based on (zero in other backups).
    pub differential_base_lsn: Option<Lsn>,
    pub differential_base_guid: Option<String>,
}

/// A string pair of a record, bounded by the record.
fn rec_string(rec: &[u8], pair: usize) -> Option<String> {
    let len = usize::from(u16_at(rec, pair)?);
    let off = usize::from(u16_at(rec, pair.checked_add(2)?)?);
    if len == 0 {
        return None;
    }
    let raw = rec.get(off..off.checked_add(len)?)?;
    let s = utf16le(raw).trim_end_matches('\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// An LSN (u32 sequence, u32 block, u16 slot) at `off`.
fn lsn(rec: &[u8], off: usize) -> Option<Lsn> {
    Some(Lsn {
        seq: u32_at(rec, off)?,
        block: u32_at(rec, off.checked_add(4)?)?,
        slot: u16_at(rec, off.checked_add(8)?)?,
    })
}

/// A GUID at `off`, `None` when it is all zeros (not set).
fn guid(rec: &[u8], off: usize) -> Option<String> {
    let raw = rec.get(off..off.checked_add(16)?)?;
    if raw.iter().all(|&b| b == 0) {
        return None;
    }
    ms_guid(rec, off)
}

fn date5(rec: &[u8], off: usize) -> Option<[u8; 5]> {
    let s = rec.get(off..off.checked_add(5)?)?;
    if s.iter().all(|&b| b == 0) {
        return None;
    }
    let mut a = [0u8; 5];
    a.copy_from_slice(s);
    Some(a)
}

impl Config {
    /// Parse the data of an MQCI stream. A record that runs past the stream is an error; an
    /// unknown tag is skipped (newer versions may add records).
    pub fn parse(data: &[u8]) -> Result<Config, String> {
        let mut c = Config::default();
        let mut pos = 0usize;
        let mut seen_scin = false;
        while pos < data.len() {
            let rest = &data[pos..];
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            let tag = id_at(rest, 0).ok_or_else(|| format!("record at byte {pos} cut short"))?;
            let len = u32_at(rest, 4).ok_or_else(|| format!("record at byte {pos} cut short"))?;
            let len =
                usize::try_from(len).map_err(|_| format!("record at byte {pos}: bad length"))?;
            if len < 8 || len > rest.len() {
                return Err(format!(
                    "record {} at byte {pos} claims {len} bytes, {} remain",
                    super::le::id_text(tag),
                    rest.len()
                ));
            }
            let rec = &rest[..len];
            match &tag {
                b"SCIN" => {
                    seen_scin = true;
                    c.flags = u32_at(rec, 8).unwrap_or(0);
                    c.version =
                        (|| Some((u8_at(rec, 0x1b)?, u8_at(rec, 0x1a)?, u16_at(rec, 0x18)?)))();
                    c.start = date5(rec, 0x4d);
                    c.finish = date5(rec, 0x52);
                    c.type_letter = u8_at(rec, 0x57).filter(|b| b.is_ascii_uppercase());
                    c.database = rec_string(rec, 0x68);
                    c.server = rec_string(rec, 0x6c);
                    c.first_lsn = lsn(rec, scin::FIRST_LSN);
                    c.last_lsn = lsn(rec, scin::LAST_LSN);
                    c.checkpoint_lsn = lsn(rec, scin::CHECKPOINT_LSN);
                    c.database_backup_lsn = lsn(rec, scin::DATABASE_BACKUP_LSN);
                    c.compatibility_level = u8_at(rec, scin::COMPATIBILITY_LEVEL);
                    c.database_version = u16_at(rec, scin::DATABASE_VERSION);
                    c.collation = rec
                        .get(scin::COLLATION..scin::COLLATION + 5)
                        .and_then(|b| b.try_into().ok());
                    c.family_guid = guid(rec, scin::FAMILY_GUID);
                    c.database_status = u32_at(rec, scin::DATABASE_STATUS);
                    c.differential_base_lsn = lsn(rec, scin::DIFFERENTIAL_BASE_LSN);
                    c.differential_base_guid = guid(rec, scin::DIFFERENTIAL_BASE_GUID);
                }
                b"SFIN" => {
                    let f = ConfigFile {
                        logical: rec_string(rec, 0x30).unwrap_or_default(),
                        physical: rec_string(rec, 0x34).unwrap_or_default(),
                        file_id: u32_at(rec, 0x14).unwrap_or(0),
                        filegroup_id: u32_at(rec, 0x24).unwrap_or(0),
                        size: u64_at(rec, 0x28).unwrap_or(0),
                    };
                    c.files.push(f);
                }
                b"SFGI" => {
                    if let (Some(id), Some(name)) = (u32_at(rec, 0x0c), rec_string(rec, 0x10)) {
                        c.filegroups.push((id, name));
                    }
                }
                _ => {}
            }
            pos += len;
        }
        if !seen_scin {
            return Err("no SCIN record".into());
        }
        Ok(c)
    }

    /// HEADERONLY's BackupType code and description for the type letter.
    pub fn backup_type(&self) -> Option<(u32, &'static str)> {
        type_code(self.type_letter?)
    }

    /// True for a differential backup (database, file or partial differential).
    pub fn is_differential(&self) -> bool {
        matches!(self.type_letter, Some(b'I' | b'G' | b'Q'))
    }

    /// HEADERONLY's RecoveryModel, from the database status bits: SIMPLE when the log is
    /// truncated on checkpoint, BULK-LOGGED when bulk copies are minimally logged, FULL
    /// otherwise (how SQL Server 2000's options map to the recovery models).
    pub fn recovery_model(&self) -> Option<&'static str> {
        let s = self.database_status?;
        Some(if s & STATUS_TRUNC_LOG != 0 {
            "SIMPLE"
        } else if s & STATUS_BULK_COPY != 0 {
            "BULK-LOGGED"
        } else {
            "FULL"
        })
    }

    /// The name of a file group by id.
    pub fn filegroup_name(&self, id: u32) -> Option<&str> {
        self.filegroups
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }

    /// What must be equal between the leading and the trailing copy: names, type, files.
    /// (Dates, LSNs and sizes legitimately differ: the trailing copy is written at the end.)
    pub fn differences(&self, other: &Config) -> Vec<String> {
        let mut d = Vec::new();
        if self.database != other.database {
            d.push(format!(
                "database name {:?} vs {:?}",
                self.database, other.database
            ));
        }
        if self.server != other.server {
            d.push(format!(
                "server name {:?} vs {:?}",
                self.server, other.server
            ));
        }
        if self.type_letter != other.type_letter {
            d.push("backup type".into());
        }
        let names = |c: &Config| -> Vec<(String, String, u32)> {
            c.files
                .iter()
                .map(|f| (f.logical.clone(), f.physical.clone(), f.file_id))
                .collect()
        };
        if names(self) != names(other) {
            d.push("file list".into());
        }
        d
    }
}

/// RESTORE HEADERONLY's BackupType and BackupTypeDescription (in SQL Server's words) for
/// msdb's type letter.
pub(crate) fn type_code(letter: u8) -> Option<(u32, &'static str)> {
    Some(match letter {
        b'D' => (1, "Database"),
        b'L' => (2, "Transaction Log"),
        b'F' => (4, "File or filegroup"),
        b'I' => (5, "Database Differential"),
        b'G' => (6, "File Differential"),
        b'P' => (7, "Partial"),
        b'Q' => (8, "Partial Differential"),
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Hand-built configuration streams for unit tests.

    fn put(rec: &mut Vec<u8>, pair: usize, s: &str) {
        let at = rec.len();
        let bytes: Vec<u8> = s.encode_utf16().flat_map(|w| w.to_le_bytes()).collect();
        rec.extend_from_slice(&bytes);
        rec[pair..pair + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
        rec[pair + 2..pair + 4].copy_from_slice(&(at as u16).to_le_bytes());
    }

    fn close(tag: &[u8; 4], mut rec: Vec<u8>) -> Vec<u8> {
        rec[..4].copy_from_slice(tag);
        let n = rec.len() as u32;
        rec[4..8].copy_from_slice(&n.to_le_bytes());
        rec
    }

    /// An MQCI stream: SCIN (database, server, type letter), SFGI PRIMARY, then the files
    /// (logical, physical, file id, file group id, size).
    pub fn mqci(
        db: &str,
        server: &str,
        letter: u8,
        files: &[(&str, &str, u32, u32, u64)],
    ) -> Vec<u8> {
        let mut scin = vec![0u8; 0x120];
        scin[8] = 0;
        scin[9] = 2;
        scin[0x18..0x1a].copy_from_slice(&2070u16.to_le_bytes());
        scin[0x1b] = 15;
        // FirstLSN 34:160:37, LastLSN 34:648:1, CheckpointLSN = FirstLSN, DatabaseBackupLSN 0.
        for (at, (seq, block, slot)) in [
            (0x20, (34u32, 160u32, 37u16)),
            (0x2a, (34, 648, 1)),
            (0x34, (34, 160, 37)),
        ] {
            scin[at..at + 4].copy_from_slice(&seq.to_le_bytes());
            scin[at + 4..at + 8].copy_from_slice(&block.to_le_bytes());
            scin[at + 8..at + 10].copy_from_slice(&slot.to_le_bytes());
        }
        scin[0x4d..0x52].copy_from_slice(&[0x1f, 0x92, 0xec, 0xf5, 0x42]);
        scin[0x57] = letter;
        scin[0x5b] = 150;
        scin[0x5e..0x60].copy_from_slice(&904u16.to_le_bytes());
        scin[0xd8..0xdd].copy_from_slice(&[0x09, 0x04, 0xd0, 0x00, 0x34]);
        scin[0xe0..0xf0].copy_from_slice(&[0x11; 16]);
        scin[0xf4..0xf8].copy_from_slice(&0x1_0008u32.to_le_bytes());
        if letter == b'I' {
            scin[0x104..0x108].copy_from_slice(&33u32.to_le_bytes());
            scin[0x110..0x120].copy_from_slice(&[0x22; 16]);
        }
        put(&mut scin, 0x68, db);
        put(&mut scin, 0x6c, server);
        let mut out = close(b"SCIN", scin);
        let mut sfgi = vec![0u8; 0x20];
        sfgi[0x0c] = 1;
        put(&mut sfgi, 0x10, "PRIMARY");
        out.extend(close(b"SFGI", sfgi));
        for (l, p, id, fg, size) in files {
            let mut r = vec![0u8; 0x40];
            r[0x14..0x18].copy_from_slice(&id.to_le_bytes());
            r[0x24..0x28].copy_from_slice(&fg.to_le_bytes());
            r[0x28..0x30].copy_from_slice(&size.to_le_bytes());
            put(&mut r, 0x30, l);
            put(&mut r, 0x34, p);
            out.extend(close(b"SFIN", r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = testkit::mqci(
            "TestDB",
            "HOST\\SQL",
            b'D',
            &[
                ("TestDB", "C:\\d\\TestDB.mdf", 1, 1, 8 << 20),
                ("TestDB_log", "C:\\d\\TestDB_log.ldf", 2, 0, 8 << 20),
            ],
        );
        let c = Config::parse(&m).unwrap();
        assert_eq!(c.database.as_deref(), Some("TestDB"));
        assert_eq!(c.server.as_deref(), Some("HOST\\SQL"));
        assert_eq!(c.backup_type(), Some((1, "Database")));
        assert_eq!(c.version, Some((15, 0, 2070)));
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.files[1].filegroup_id, 0);
        assert_eq!(c.filegroup_name(1), Some("PRIMARY"));
        assert!(c.differences(&c).is_empty());
        let mut other = c.clone();
        other.database = Some("x".into());
        assert_eq!(other.differences(&c).len(), 1);
    }

    #[test]
    fn headeronly_columns_of_the_scin_record() {
        let c = Config::parse(&testkit::mqci("d", "s", b'D', &[])).unwrap();
        let l = |seq, block, slot| Some(Lsn { seq, block, slot });
        assert_eq!(c.first_lsn, l(34, 160, 37));
        assert_eq!(c.last_lsn, l(34, 648, 1));
        assert_eq!(c.checkpoint_lsn, c.first_lsn);
        assert_eq!(c.database_backup_lsn, l(0, 0, 0));
        assert_eq!(
            (c.compatibility_level, c.database_version),
            (Some(150), Some(904))
        );
        assert_eq!(c.collation, Some([0x09, 0x04, 0xd0, 0x00, 0x34]));
        assert_eq!(
            c.family_guid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(c.recovery_model(), Some("SIMPLE"));
        assert!(!c.is_differential() && c.differential_base_guid.is_none());
        let d = Config::parse(&testkit::mqci("d", "s", b'I', &[])).unwrap();
        assert!(d.is_differential());
        assert_eq!(d.differential_base_lsn, l(33, 0, 0));
        assert_eq!(
            d.differential_base_guid.as_deref(),
            Some("22222222-2222-2222-2222-222222222222")
        );
        let model = |status| {
            Config {
                database_status: Some(status),
                ..Default::default()
            }
            .recovery_model()
        };
        assert_eq!(model(0x1_000c), Some("SIMPLE"));
        assert_eq!(model(0x4), Some("BULK-LOGGED"));
        assert_eq!(model(0x1_0001), Some("FULL"));
        assert_eq!(Config::default().recovery_model(), None);
    }

    #[test]
    fn a_short_scin_record_has_no_headeronly_columns() {
        // SCIN cut after the names' pairs: the columns past it are unknown, not zero.
        let mut rec = vec![0u8; 0x70];
        rec[..4].copy_from_slice(b"SCIN");
        rec[4..8].copy_from_slice(&0x70u32.to_le_bytes());
        let c = Config::parse(&rec).unwrap();
        assert!(c.first_lsn.is_some() && c.compatibility_level.is_some());
        assert_eq!((c.collation, c.database_status), (None, None));
        assert_eq!((c.family_guid, c.differential_base_lsn), (None, None));
    }

    #[test]
    fn record_running_past_the_stream_is_an_error() {
        let mut m = testkit::mqci("a", "b", b'L', &[]);
        let n = m.len() as u32 + 100;
        m[4..8].copy_from_slice(&n.to_le_bytes());
        assert!(Config::parse(&m).unwrap_err().contains("claims"));
        assert!(Config::parse(&m[..6]).is_err());
        assert!(Config::parse(&[]).unwrap_err().contains("SCIN"));
    }

    #[test]
    fn type_letters() {
        assert_eq!(type_code(b'I'), Some((5, "Database Differential")));
        assert_eq!(type_code(b'L'), Some((2, "Transaction Log")));
        assert_eq!(type_code(b'Z'), None);
    }
}
