//! SQL Server's configuration stream (MQCI), found in the MSCI block before the data and again
//! in the MSLS block after the log.
//!
//! The stream is a run of records, each a 4-byte tag and a u32 length counting the whole record:
//! SCIN (the backup: database, server, type, dates, version), SFGI (a file group), SFIN (a
//! database file). Strings inside a record are (u16 byte length, u16 offset from the record
//! start) pairs of UTF-16LE text. The offsets were read off the fixtures (docs/MTF.md) and hold
//! from SQL Server 2008 to 2019.

use super::le::{id_at, u16_at, u32_at, u64_at, u8_at, utf16le};

/// Backup flags (SCIN +8): the backup carries page checksums (WITH CHECKSUM).
pub(crate) const SCIN_FLAG_CHECKSUMS: u32 = 0x10;

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

/// RESTORE HEADERONLY's BackupType for msdb's type letter.
pub(crate) fn type_code(letter: u8) -> Option<(u32, &'static str)> {
    Some(match letter {
        b'D' => (1, "Database"),
        b'L' => (2, "Transaction log"),
        b'F' => (4, "File or filegroup"),
        b'I' => (5, "Differential database"),
        b'G' => (6, "Differential file"),
        b'P' => (7, "Partial"),
        b'Q' => (8, "Differential partial"),
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
        let mut scin = vec![0u8; 0x70];
        scin[8] = 0;
        scin[9] = 2;
        scin[0x18..0x1a].copy_from_slice(&2070u16.to_le_bytes());
        scin[0x1b] = 15;
        scin[0x4d..0x52].copy_from_slice(&[0x1f, 0x92, 0xec, 0xf5, 0x42]);
        scin[0x57] = letter;
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
        assert_eq!(type_code(b'I'), Some((5, "Differential database")));
        assert_eq!(type_code(b'L'), Some((2, "Transaction log")));
        assert_eq!(type_code(b'Z'), None);
    }
}
