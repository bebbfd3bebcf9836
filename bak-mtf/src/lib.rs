//! bak-mtf: a reader of SQL Server native backups (Microsoft Tape Format), over bak-core's
//! readable devices, so a backup is read from a file, a pipe or memory alike. See docs/MTF.md.
//!
//! Read-only. A device (one file, one media family) is opened with [`MtfDevice::open`], which
//! recognises plain MTF (starts with a TAPE block) and compressed backups (starts with
//! `MSSQLBAK`, MTF inside Xpress Huffman chunks) and walks the descriptor blocks without
//! reading data into memory. The functions below answer RESTORE LABELONLY, HEADERONLY,
//! FILELISTONLY and VERIFYONLY, and copy the data or log stream out.
//!
//! Malformed media give an `Err` or a reported problem, never a panic: every length read from
//! the media is bounded by the bytes that remain before anything is allocated.

#![deny(missing_docs)]

pub mod chain;
mod check;
mod collation;
mod config;
mod csum;
mod db;
mod dblk;
mod le;
mod media;
mod pages;
mod unsupported;
mod walk;
pub mod xpress;

pub use csum::chunk_check;
pub use db::fuzzing;
pub use db::{
    ColumnInfo, DataFile, Database, FileOutcome, RowFormat, RowsOutcome, TableInfo, Value,
};

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use bak_core::bytes::MediaKind;
use bak_core::error::{Error, Location, Result};
use bak_core::report::{
    FileInfo, LabelInfo, Problem, ProblemKind, SetInfo, SetReport, SqlServerSet, Timestamp, Verdict,
};
use check::{Out, Watch};
use config::Config;
use dblk::{SSET_COPY, SSET_DIFFERENTIAL};
use le::{id_text, mtf_date_us};
use media::Media;
use walk::{Catalog, SetRec, StreamRec};

/// Name of the SQL Server product that writes software version `major.minor` (the SSET's
/// bytes 93 and 94), or `None` for a version no release has. The minor number tells two
/// products apart only at 10: 10.0 is SQL Server 2008, 10.50 SQL Server 2008 R2. Up to 10 a
/// version is named only with the minor its release has (7.0, 8.0, 9.0); from 11 (2012) on the
/// major number alone names the product (all of them have minor 0).
pub fn sql_server_product(major: u32, minor: u32) -> Option<&'static str> {
    Some(match (major, minor) {
        (7, 0) => "SQL Server 7.0",
        (8, 0) => "SQL Server 2000",
        (9, 0) => "SQL Server 2005",
        (10, 0) => "SQL Server 2008",
        (10, 50) => "SQL Server 2008 R2",
        (11, _) => "SQL Server 2012",
        (12, _) => "SQL Server 2014",
        (13, _) => "SQL Server 2016",
        (14, _) => "SQL Server 2017",
        (15, _) => "SQL Server 2019",
        (16, _) => "SQL Server 2022",
        (17, _) => "SQL Server 2025",
        _ => return None,
    })
}

/// Bytes of padding at the start of every MQDA/MQTL stream: the stream header is 22 bytes on a
/// 4-byte boundary, and these 2 bytes bring the data to the next boundary (observed zero in all
/// fixtures), so the pages that follow land on sector boundaries.
const DATA_PAD: u64 = 2;

/// Recognise media from their first bytes: `TAPE` → plain MTF, `MSSQLBAK` → compressed.
pub fn sniff(head: &[u8]) -> Option<MediaKind> {
    media::sniff(head)
}

/// One opened device (one media family's file), with its catalog of blocks and sets.
pub struct MtfDevice {
    media: Media,
    cat: Catalog,
    /// What its sets use that this reader cannot read (docs/MTF.md).
    findings: Vec<unsupported::Finding>,
}

impl std::fmt::Debug for MtfDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtfDevice")
            .field("name", &self.media.device())
            .field("kind", &self.media.kind)
            .finish()
    }
}

/// One stream of a backup set as it lies on the media: `bak-read --list`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRow {
    /// Position of the backup set.
    pub position: u32,
    /// Family number (1 when the media do not say).
    pub family: u32,
    /// Descriptor block type holding the stream (MSDA, MSTL, MSCI ...).
    pub block: String,
    /// Stream id (MQDA, MQTL, MQCI, APAD, SPAD ...).
    pub stream: String,
    /// Offset of the stream data in the device's MTF stream (for a compressed device: in the
    /// decompressed stream that [`write_mtf`] produces).
    pub offset: u64,
    /// Length of the stream data in bytes.
    pub length: u64,
}

/// Which stream [`read_stream`] copies out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The database pages (MQDA streams of the MSDA blocks).
    Data,
    /// The transaction log (MQTL streams of the MSTL blocks).
    Log,
}

impl MtfDevice {
    /// Open a device and walk its metadata. Fails for I/O errors, for files that are not MTF
    /// media, and for media whose TAPE block cannot be read; any later damage is kept and
    /// reported by [`verify`] (and refused by the readers).
    pub fn open(path: &Path) -> Result<MtfDevice> {
        MtfDevice::from_device(bak_core::device::open_read(path)?)
    }

    /// Open a device that was opened already (a file, a pipe, memory) and walk its metadata.
    /// A device without positioned reads is first copied to an anonymous temporary file.
    pub fn from_device(dev: Box<dyn bak_core::device::ReadDevice>) -> Result<MtfDevice> {
        let media = Media::open(dev)?;
        let cat = walk::walk(&media)?;
        let mut d = MtfDevice {
            media,
            cat,
            findings: Vec::new(),
        };
        d.findings = unsupported::scan(&d);
        Ok(d)
    }

    /// What the media carry that this reader does not check, though it reads the media all
    /// the same: a media password (MEDIAPASSWORD), backup set passwords. One sentence each,
    /// for the tools to say once on stderr.
    pub fn notes(&self) -> Vec<String> {
        unsupported::notes(self)
    }

    /// What set `s` uses that this reader cannot read.
    fn findings_of<'a>(
        &'a self,
        s: &'a SetRec,
    ) -> impl Iterator<Item = &'a unsupported::Finding> + 'a {
        self.findings
            .iter()
            .filter(move |f| f.sset_off == s.sset_off)
    }

    /// The device's name in messages.
    pub fn name(&self) -> String {
        self.media.device()
    }

    /// Family number of this device (1 when the media do not say).
    pub fn family(&self) -> u32 {
        self.cat
            .raid
            .as_ref()
            .map(|r| u32::from(r.family_number))
            .filter(|&f| f > 0)
            .unwrap_or(1)
    }

    /// Number of families of the media set (1 when the media do not say).
    pub fn family_count(&self) -> u32 {
        self.cat
            .raid
            .as_ref()
            .map(|r| u32::from(r.family_count))
            .filter(|&f| f > 0)
            .unwrap_or(1)
    }

    /// Backup set positions on this device, in media order.
    pub fn positions(&self) -> Vec<u32> {
        self.cat.sets.iter().map(|s| s.position).collect()
    }

    fn tz(&self) -> Option<i8> {
        self.cat.sets.first().map(|s| s.sset.time_zone)
    }

    /// The media label: RESTORE LABELONLY.
    pub fn label(&self) -> LabelInfo {
        let t = &self.cat.tape;
        LabelInfo {
            device: self.media.device(),
            media_format: Some(self.media.kind),
            format_version: t.mtf_major.to_string(),
            media_name: t.media_name.clone(),
            media_description: t.media_description.clone(),
            media_set_id: self.cat.raid.as_ref().map(|r| r.guid.clone()),
            media_family_id: Some(format!("{:08x}", t.family_id)),
            family_count: self.cat.raid.as_ref().map(|r| u32::from(r.family_count)),
            family_sequence_number: self.cat.raid.as_ref().map(|r| u32::from(r.family_number)),
            media_sequence_number: Some(u32::from(t.media_sequence)),
            software_name: t.software_name.clone(),
            software_vendor_id: Some(u32::from(t.vendor_id)),
            media_date: mtf_date_us(&t.date, self.tz()).map(Timestamp),
            logical_block_size: Some(u32::from(t.logical_block_size)),
            backup_set_count: Some(self.cat.sets.len() as u32),
            media_password_protected: Some(t.password_algorithm != 0 || t.has_password),
            is_compressed: Some(self.media.kind == MediaKind::MtfCompressed),
            expiration_date: None,
            expired: None,
        }
    }

    fn set(&self, position: u32) -> Option<&SetRec> {
        self.cat.sets.iter().find(|s| s.position == position)
    }

    fn loc(&self) -> Location {
        Location::device(self.media.device()).family(self.family())
    }

    /// Streams of a set's blocks of one kind, with the stream id wanted.
    fn streams_of<'a>(
        &'a self,
        s: &'a SetRec,
        block: &'a [u8; 4],
        id: &'a [u8; 4],
    ) -> impl Iterator<Item = &'a StreamRec> + 'a {
        s.blocks
            .iter()
            .filter_map(move |&i| self.cat.blocks.get(i))
            .filter(move |b| b.kind == *block)
            .flat_map(|b| b.streams.iter())
            .filter(move |st| st.id == *id)
    }

    /// The first damage the walk found inside a set's span, as an error.
    fn set_damage(&self, s: &SetRec) -> Option<Error> {
        let d = self
            .cat
            .damage
            .iter()
            .find(|d| d.off >= s.sset_off && d.off < s.end.max(s.sset_off + 1))?;
        Some(self.damage_error(d, Some(s.position)))
    }

    fn damage_error(&self, d: &walk::Damage, position: Option<u32>) -> Error {
        let mut at = self.loc().at(self.media.file_offset_of(d.off));
        at.position = position;
        if let Some(seg) = self.media.seg_at(d.off) {
            at.block = Some(seg.index);
        }
        if d.truncated {
            // The walk words its damage as a sentence; the error reads "media end before ...".
            let what = if let Some(rest) = d.what.strip_prefix("media end before ") {
                rest.to_string()
            } else if let Some(rest) = d.what.strip_prefix("media end inside ") {
                format!("the end of {rest}")
            } else {
                format!("the end of the backup set ({})", d.what)
            };
            Error::Truncated { at, what }
        } else {
            Error::Corrupt {
                at,
                what: d.what.clone(),
                expected: d.expected.clone(),
                found: d.found.clone(),
            }
        }
    }
}

/// The devices as one media set, ordered by family. `whole` demands every family.
fn media_set(devices: &[MtfDevice], whole: bool) -> Result<Vec<&MtfDevice>> {
    let first = devices.first().ok_or_else(|| Error::MediaSet {
        what: "no device given".into(),
    })?;
    let guid = first.cat.raid.as_ref().map(|r| r.guid.clone());
    let count = first.family_count();
    let mut v: Vec<&MtfDevice> = Vec::new();
    for d in devices {
        let g = d.cat.raid.as_ref().map(|r| r.guid.clone());
        if g != guid {
            return Err(Error::MediaSet {
                what: format!(
                    "{} belongs to media set {} but {} to media set {}",
                    d.media.device(),
                    g.unwrap_or_else(|| "(none)".into()),
                    first.media.device(),
                    guid.clone().unwrap_or_else(|| "(none)".into())
                ),
            });
        }
        if d.family() > count || d.family_count() != count {
            return Err(Error::MediaSet {
                what: format!(
                    "{} says family {} of {}, the set has {count}",
                    d.media.device(),
                    d.family(),
                    d.family_count()
                ),
            });
        }
        // Two copies of one family: a usage error, like one device given twice.
        if let Some(o) = v.iter().find(|o| o.family() == d.family()) {
            return Err(Error::refused(
                bak_core::Refusal::Usage,
                format!(
                    "{} and {} are both family {} of the media set; give each family once",
                    o.media.device(),
                    d.media.device(),
                    d.family()
                ),
            ));
        }
        v.push(d);
    }
    v.sort_by_key(|d| d.family());
    if whole {
        let missing: Vec<String> = (1..=count)
            .filter(|f| !v.iter().any(|d| d.family() == *f))
            .map(|f| f.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MediaSet {
                what: format!(
                    "media set {} has {count} families; family {} missing (given: {})",
                    guid.unwrap_or_else(|| "(unknown)".into()),
                    missing.join(", "),
                    v.iter()
                        .map(|d| format!("{} = family {}", d.media.device(), d.family()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(v)
}

fn all_positions(fams: &[&MtfDevice]) -> Vec<u32> {
    let mut p: Vec<u32> = fams.iter().flat_map(|d| d.positions()).collect();
    p.sort_unstable();
    p.dedup();
    p
}

fn no_such_set(fams: &[&MtfDevice], position: u32) -> Error {
    Error::NoSuchSet {
        position,
        count: all_positions(fams).len() as u32,
    }
}

fn payload(st: &StreamRec) -> (u64, u64) {
    if st.len >= DATA_PAD {
        (st.data_off + DATA_PAD, st.len - DATA_PAD)
    } else {
        (st.data_off + st.len, 0)
    }
}

/// One row per backup set (RESTORE HEADERONLY). For a striped set given whole, one row per
/// set, its sizes summed over the families.
pub fn header_only(devices: &[MtfDevice]) -> Result<Vec<SetInfo>> {
    let fams = media_set(devices, false)?;
    let mut rows = Vec::new();
    for pos in all_positions(&fams) {
        let holders: Vec<(&MtfDevice, &SetRec)> = fams
            .iter()
            .filter_map(|d| d.set(pos).map(|s| (*d, s)))
            .collect();
        let Some(&(dev, s)) = holders.first() else {
            continue;
        };
        for (d, s) in &holders {
            if let Some(e) = d.set_damage(s) {
                if !matches!(e, Error::Truncated { .. }) {
                    return Err(e);
                }
            }
        }
        let cfg = s.lead.as_ref().or(s.trail.as_ref());
        let tz = Some(s.sset.time_zone);
        let mut data = 0u64;
        let mut stored = 0u64;
        let mut blocks = 0u64;
        for (d, s) in &holders {
            for st in d
                .streams_of(s, b"MSDA", b"MQDA")
                .chain(d.streams_of(s, b"MSTL", b"MQTL"))
            {
                data += payload(st).1;
            }
            blocks += s
                .blocks
                .iter()
                .filter_map(|&i| d.cat.blocks.get(i))
                .filter(|b| b.kind == *b"MSDA" || b.kind == *b"MSTL")
                .count() as u64;
            stored += d
                .media
                .file_offset_of(s.end)
                .saturating_sub(d.media.file_offset_of(s.sset_off));
        }
        let (btype, bdesc) = match cfg.and_then(|c| c.backup_type()) {
            Some((c, t)) => (Some(c), Some(t.to_string())),
            None if s.sset.attrs & SSET_DIFFERENTIAL != 0 => {
                (Some(5), Some("Database Differential".to_string()))
            }
            None => (None, None),
        };
        let found: Vec<&unsupported::Finding> =
            holders.iter().flat_map(|(d, s)| d.findings_of(s)).collect();
        let mtf_codec = found.iter().find_map(|f| match f.feature {
            unsupported::Feature::Compression(unsupported::Codec::Mtf(n)) => Some(n),
            _ => None,
        });
        let key_algorithm = found.iter().find_map(|f| match f.feature {
            unsupported::Feature::Encryption { algorithm } => {
                Some(algorithm.map_or("unknown".into(), |a| format!("MTF algorithm {a}")))
            }
            _ => None,
        });
        let compressed = dev.media.kind == MediaKind::MtfCompressed || mtf_codec.is_some();
        let compression = match mtf_codec {
            Some(n) => format!("MTF algorithm {n}"),
            None if compressed => "xpress".into(),
            None => "none".into(),
        };
        let major = u32::from(s.sset.version_major);
        let version = match cfg.and_then(|c| c.version) {
            Some((ma, mi, b)) => format!("{ma}.{mi}.{b}"),
            None => format!("{}.{}", s.sset.version_major, s.sset.version_minor),
        };
        // Complete unless verify would call the set incomplete: every family, each closed
        // with its MSLS, and no damage counted against the set that is the media ending early.
        let complete = fams.len() as u32 == dev.family_count()
            && holders.len() == fams.len()
            && holders.iter().all(|(d, s)| {
                s.closed()
                    && s.trail.is_some()
                    && d.set_damage(s).is_none()
                    && !check::faults(d, s).iter().any(|f| f.truncated())
            });
        rows.push(SetInfo {
            position: pos,
            backup_name: s.sset.name.clone(),
            backup_description: s.sset.description.clone(),
            backup_set_guid: s.sset.guid.clone(),
            backup_type: btype,
            backup_type_description: bdesc,
            user_name: s.sset.user.clone(),
            machine_name: s.volb.as_ref().and_then(|v| v.machine.clone()),
            server_name: cfg.and_then(|c| c.server.clone()),
            database_name: cfg.and_then(|c| c.database.clone()),
            device_name: s.volb.as_ref().and_then(|v| v.device.clone()),
            volume_name: s.volb.as_ref().and_then(|v| v.volume.clone()),
            backup_start_date: mtf_date_us(&s.sset.date, tz).map(Timestamp),
            backup_finish_date: s
                .trail
                .as_ref()
                .and_then(|c| c.finish)
                .and_then(|f| mtf_date_us(&f, tz))
                .map(Timestamp),
            expiration_date: None,
            compressed,
            compression: Some(compression),
            encrypted: Some(found.iter().any(|f| f.feature.is_encryption())),
            encryption_algorithm: None,
            key_fingerprints: None,
            backup_size: Some(data),
            compressed_backup_size: compressed.then_some(stored),
            family_count: Some(dev.family_count()),
            block_count: Some(blocks),
            max_transfer_size: None,
            has_backup_checksums: cfg.map(|c| c.flags & config::SCIN_FLAG_CHECKSUMS != 0),
            is_complete: complete,
            software_name: dev.cat.tape.software_name.clone(),
            software_version: Some(version),
            software_version_major: Some(major),
            software_product: sql_server_product(major, u32::from(s.sset.version_minor))
                .map(str::to_string),
            digest: None,
            source_label: None,
            key_algorithm,
            // No public description says where SQL Server puts these; none is read.
            encryptor_thumbprint: None,
            encryptor_type: None,
            sql: Some(sql_columns(s)),
            origin: None,
        });
    }
    Ok(rows)
}

/// HEADERONLY's own columns of a set, from its configuration: the trailing copy (MSLS) where
/// the set has one, as it is written when the backup ends (SQL Server 2019 writes other LSNs
/// there than in the leading copy, and the later backups of the database refer to those: see
/// docs/MTF.md), else the leading one.
fn sql_columns(s: &SetRec) -> SqlServerSet {
    // From the SSET, not the configuration: MTF's copy bit (docs/MTF.md says how sure).
    let is_copy_only = Some(s.sset.attrs & SSET_COPY != 0);
    let Some(c) = s.trail.as_ref().or(s.lead.as_ref()) else {
        return SqlServerSet {
            is_copy_only,
            ..SqlServerSet::default()
        };
    };
    let diff = c.is_differential();
    SqlServerSet {
        first_lsn: c.first_lsn,
        last_lsn: c.last_lsn,
        checkpoint_lsn: c.checkpoint_lsn,
        database_backup_lsn: c.database_backup_lsn,
        differential_base_lsn: c.differential_base_lsn.filter(|l| diff && !l.is_zero()),
        differential_base_guid: c.differential_base_guid.clone().filter(|_| diff),
        family_guid: c.family_guid.clone(),
        recovery_model: c.recovery_model().map(str::to_string),
        compatibility_level: c.compatibility_level.map(u32::from),
        collation: c.collation.and_then(collation::name),
        is_copy_only,
        database_version: c.database_version.map(u32::from),
    }
}

/// One row per database file of a set (RESTORE FILELISTONLY); `None` = the first set.
pub fn file_list(devices: &[MtfDevice], position: Option<u32>) -> Result<Vec<FileInfo>> {
    let fams = media_set(devices, false)?;
    let pos = match position {
        Some(p) => p,
        None => *all_positions(&fams)
            .first()
            .ok_or_else(|| no_such_set(&fams, 1))?,
    };
    let (dev, s) = fams
        .iter()
        .find_map(|d| d.set(pos).map(|s| (*d, s)))
        .ok_or_else(|| no_such_set(&fams, pos))?;
    let cfg: &Config = match s.lead.as_ref().or(s.trail.as_ref()) {
        Some(c) => c,
        None => {
            return Err(dev.set_damage(s).unwrap_or_else(|| {
                Error::corrupt(
                    dev.loc().set(pos).at(dev.media.file_offset_of(s.sset_off)),
                    "backup set has no configuration stream (MQCI)",
                )
            }))
        }
    };
    Ok(cfg
        .files
        .iter()
        .map(|f| FileInfo {
            position: pos,
            logical_name: f.logical.clone(),
            physical_name: f.physical.clone(),
            // The log has no file group (id 0); every file in a file group holds data.
            file_type: if f.filegroup_id == 0 { "L" } else { "D" }.to_string(),
            file_group_name: if f.filegroup_id == 0 {
                None
            } else {
                cfg.filegroup_name(f.filegroup_id).map(str::to_string)
            },
            size: (f.size > 0).then_some(f.size),
            file_id: (f.file_id > 0).then_some(f.file_id),
            origin: None,
        })
        .collect())
}

/// Every stream of a set's blocks, family by family, with its offset and length.
pub fn list_streams(devices: &[MtfDevice], position: u32) -> Result<Vec<StreamRow>> {
    let fams = media_set(devices, false)?;
    let mut rows = Vec::new();
    let mut found = false;
    for d in &fams {
        let Some(s) = d.set(position) else { continue };
        found = true;
        for b in s.blocks.iter().filter_map(|&i| d.cat.blocks.get(i)) {
            for st in &b.streams {
                rows.push(StreamRow {
                    position,
                    family: d.family(),
                    block: id_text(b.kind),
                    stream: id_text(st.id),
                    offset: st.data_off,
                    length: st.len,
                });
            }
        }
    }
    if !found {
        return Err(no_such_set(&fams, position));
    }
    Ok(rows)
}

/// An error writing the output, named as the caller names it.
fn write_err(out_name: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(out_name, "write", e)
}

/// How [`read_stream_with`] and [`write_mtf_with`] treat damage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Go on past damage (RESTORE's CONTINUE_AFTER_ERROR): write every byte that can be read,
    /// damaged pages included, and the bytes of a chunk that does not decode as zeros (so the
    /// output keeps its length and every page its place), and report every problem. Without
    /// it the read stops at the first problem, before the bytes it concerns are written.
    pub continue_after_error: bool,
}

/// What a read wrote, and the problems it went past (only with
/// [`ReadOptions::continue_after_error`]; without it the first one is the read's `Err`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Bytes written.
    pub bytes: u64,
    /// Every problem found, as bak-verify reports it, in the order found (empty: the bytes
    /// are what the backup holds).
    pub problems: Vec<Problem>,
}

/// Copy a set's data stream (the database pages, in media order) or log stream to `out`;
/// stripes are read family by family (family 1 first). Returns the bytes written. Each
/// stream's 2-byte alignment pad is left out, so the data output is whole 8 KiB pages.
/// Stops at the first problem: see [`read_stream_with`].
pub fn read_stream(
    devices: &[MtfDevice],
    position: u32,
    kind: StreamKind,
    out: &mut dyn Write,
    out_name: &str,
) -> Result<u64> {
    read_stream_with(
        devices,
        position,
        kind,
        &ReadOptions::default(),
        out,
        out_name,
    )
    .map(|o| o.bytes)
}

/// [`read_stream`], checking what [`verify`] checks of the set: every family holds it, the
/// catalog's damage that verify counts against it, its ESET, its trailing configuration; and
/// as its bytes go by (the whole set is read, as verify reads it) every chunk, every database
/// page of its data streams and every backup checksum. A page is written only once it is
/// whole and holds, so on the first problem nothing of a failing page has been written; a
/// backup checksum is known only at its stream's end, after the stream's bytes. With
/// [`ReadOptions::continue_after_error`] every problem is listed in the outcome instead and
/// the read goes on.
pub fn read_stream_with(
    devices: &[MtfDevice],
    position: u32,
    kind: StreamKind,
    opts: &ReadOptions,
    out: &mut dyn Write,
    out_name: &str,
) -> Result<ReadOutcome> {
    let fams = media_set(devices, true)?;
    let holders: Vec<(&MtfDevice, &SetRec)> = fams
        .iter()
        .filter_map(|d| d.set(position).map(|s| (*d, s)))
        .collect();
    if holders.is_empty() {
        // Damage outside every set listed (an SSET whose header fails, say) may be where the
        // set was: that is damage, not a set the media do not hold.
        let hidden = fams.iter().find_map(|d| {
            let listed = |off: u64| d.cat.sets.iter().any(|s| off >= s.sset_off && off < s.end);
            d.cat
                .damage
                .iter()
                .find(|x| !x.truncated && !listed(x.off))
                .map(|x| d.damage_error(x, None))
        });
        return Err(hidden.unwrap_or_else(|| no_such_set(&fams, position)));
    }
    let stop = !opts.continue_after_error;
    // What is known before a byte is read: stop before writing any, or note it and go on.
    let mut tally = check::Tally::new(stop);
    for d in &fams {
        if d.set(position).is_none() {
            // A family that ends before the set was never written with it: incomplete.
            let last = d.positions().into_iter().max().unwrap_or(0);
            let (kind, what) = if last < position {
                (
                    ProblemKind::Incomplete,
                    format!(
                        "family {} lacks backup set {position}: it ends after set {last}, so \
                         the set is incomplete",
                        d.family()
                    ),
                )
            } else {
                (
                    ProblemKind::Missing,
                    format!(
                        "family {} lacks backup set {position}, which other families of the \
                         media set hold",
                        d.family()
                    ),
                )
            };
            tally.note(
                Problem {
                    kind,
                    device: d.media.device(),
                    family: Some(d.family()),
                    position: Some(position),
                    what: what.clone(),
                    ..Default::default()
                },
                Error::MediaSet {
                    what: format!("{}: {what}", d.media.device()),
                },
            )?;
        }
    }
    let walk = |f: &&check::Fault<'_>| matches!(f, check::Fault::Walk(_));
    // A set without its end first, then the walk's damage: either may be why a stream is
    // missing from the catalog.
    for (d, s) in &holders {
        if !s.closed() {
            let e = unclosed(d, s);
            tally.note(Problem::from_error(&d.loc().set(position), &e), e)?;
        }
        for f in check::faults(d, s).iter().filter(walk) {
            tally.note(f.problem(d, s), f.error(d, s))?;
        }
        // Not even --continue-after-error goes past it: there is nothing to write.
        if let Some(f) = d.findings_of(s).next() {
            return Err(f.error(d));
        }
    }
    let (block, id) = match kind {
        StreamKind::Data => (b"MSDA", b"MQDA"),
        StreamKind::Log => (b"MSTL", b"MQTL"),
    };
    let any = holders
        .iter()
        .any(|(d, s)| d.streams_of(s, block, id).next().is_some());
    if !any && kind == StreamKind::Data {
        let (d, s) = holders[0];
        let is_log = s.lead.as_ref().and_then(|c| c.type_letter) == Some(b'L');
        if !tally.problems.is_empty() {
            // Going on past damage that left no data stream: nothing to write.
            return Ok(ReadOutcome {
                bytes: 0,
                problems: tally.problems,
            });
        }
        return Err(Error::Unsupported {
            device: d.media.device(),
            what: if is_log {
                format!("backup set {position} is a log backup: it has no data stream; use the log stream")
            } else {
                format!("backup set {position} has no data stream")
            },
        });
    }
    for (d, s) in &holders {
        for f in check::faults(d, s)
            .iter()
            .filter(|f| !walk(f) && !f.unsupported())
        {
            tally.note(f.problem(d, s), f.error(d, s))?;
        }
    }
    let mut written = 0u64;
    let mut sink = |b: &[u8]| -> Result<()> {
        out.write_all(b).map_err(write_err(out_name))?;
        written += b.len() as u64;
        Ok(())
    };
    for (d, s) in &holders {
        let wanted = d.streams_of(s, block, id).map(payload).collect();
        let mut w = Watch::new(d, &[s], Out::Ranges(wanted), stop);
        let span = s.end.saturating_sub(s.sset_off);
        d.media.stream_range(s.sset_off, span, &mut |at, piece| {
            w.feed(at, piece, &mut sink)
        })?;
        tally.add(w.finish(&mut sink)?);
    }
    out.flush().map_err(write_err(out_name))?;
    Ok(ReadOutcome {
        bytes: written,
        problems: tally.problems,
    })
}

/// The error of a set without its ESET: cut off at the end of the media, or followed by
/// something else.
fn unclosed(d: &MtfDevice, s: &SetRec) -> Error {
    let position = s.position;
    let at = d.loc().at(d.media.file_offset_of(s.end));
    if s.end >= d.media.len() {
        Error::Truncated {
            at,
            what: format!(
                "the ESET block that closes backup set {position} (the set is incomplete)"
            ),
        }
    } else {
        Error::Corrupt {
            at,
            what: format!("backup set {position} has no ESET block: the set is incomplete"),
            expected: Some("ESET".into()),
            found: None,
        }
    }
}

/// Write the MTF stream of a device: decompressed for a compressed backup (`bak-read --mtf`),
/// a plain copy otherwise. Returns the bytes written. Stops at the first problem: see
/// [`write_mtf_with`].
pub fn write_mtf(device: &MtfDevice, out: &mut dyn Write, out_name: &str) -> Result<u64> {
    write_mtf_with(device, &ReadOptions::default(), out, out_name).map(|o| o.bytes)
}

/// [`write_mtf`], checking what [`verify`] checks of the device: the container's and the
/// walk's damage and each set's own faults before a byte is written, then as the bytes go by
/// every chunk, database page and backup checksum (a page is written only once it is whole and
/// holds). With [`ReadOptions::continue_after_error`] every problem is listed in the outcome
/// and the copy goes on.
pub fn write_mtf_with(
    device: &MtfDevice,
    opts: &ReadOptions,
    out: &mut dyn Write,
    out_name: &str,
) -> Result<ReadOutcome> {
    let d = device;
    let stop = !opts.continue_after_error;
    let mut tally = check::Tally::new(stop);
    if let Some(map) = &d.media.map {
        for x in &map.damage {
            tally.note(
                check::container_problem(d, x, None),
                check::container_error(d, x, None),
            )?;
        }
    }
    for s in &d.cat.sets {
        for f in check::faults(d, s) {
            if !matches!(f, check::Fault::Container(_) | check::Fault::Unsupported(_)) {
                tally.note(f.problem(d, s), f.error(d, s))?;
            }
        }
    }
    // A set this reader cannot read cannot be checked as its bytes go by: nothing is written
    // (bak-verify would not call it valid either).
    if let Some(f) = d.findings.first() {
        return Err(f.error(d));
    }
    if d.cat.sets.is_empty() {
        for x in &d.cat.damage {
            tally.note(check::problem_of(d, x, None), d.damage_error(x, None))?;
        }
    }
    let patches = sfmb_patches(device);
    let sets: Vec<&SetRec> = d.cat.sets.iter().collect();
    let mut w = Watch::new(d, &sets, Out::All, stop);
    let mut written = 0u64;
    let mut sink = |b: &[u8]| -> Result<()> {
        out.write_all(b).map_err(write_err(out_name))?;
        written += b.len() as u64;
        Ok(())
    };
    let mut buf = Vec::new();
    d.media
        .stream_range(0, d.media.len(), &mut |at, piece| match piece {
            Ok(bytes) => {
                let end = at + bytes.len() as u64;
                let hit = patches
                    .iter()
                    .filter(|(o, v)| *o < end && o + v.len() as u64 > at);
                let bytes = if hit.clone().next().is_some() {
                    buf.clear();
                    buf.extend_from_slice(bytes);
                    for (o, v) in hit {
                        for (k, &b) in v.iter().enumerate() {
                            if let Some(i) = (o + k as u64).checked_sub(at) {
                                if let Some(x) = buf.get_mut(i as usize) {
                                    *x = b;
                                }
                            }
                        }
                    }
                    &buf[..]
                } else {
                    bytes
                };
                w.feed(at, Ok(bytes), &mut sink)
            }
            Err(e) => w.feed(at, Err(e), &mut sink),
        })?;
    let seen = w.finish(&mut sink)?;
    tally.add(seen);
    out.flush().map_err(write_err(out_name))?;
    Ok(ReadOutcome {
        bytes: written,
        problems: tally.problems,
    })
}

/// The bytes to change so that the decompressed MTF stream of a compressed device stands on its
/// own: its soft filemark tables list the earlier filemarks by their offsets in the compressed
/// file; in the stream written out they must be offsets in that stream. Tables whose entries are
/// not the expected compressed offsets (damage) are left as they are; the entries lie outside
/// the 52-byte header, so no checksum changes.
fn sfmb_patches(device: &MtfDevice) -> Vec<(u64, Vec<u8>)> {
    let media = &device.media;
    if media.map.is_none() {
        return Vec::new();
    }
    let marks = &device.cat.sfmbs;
    let mut patches = Vec::new();
    for (k, (off, table)) in marks.iter().enumerate() {
        let earlier = marks[..k].iter().rev().map(|(o, _)| *o);
        let in_file: Vec<u64> = earlier.clone().map(|o| media.file_offset_of(o)).collect();
        if table.entries.is_empty() || table.entries != in_file {
            continue;
        }
        let bytes: Vec<u8> = earlier.flat_map(u64::to_le_bytes).collect();
        patches.push((off + table.array as u64, bytes));
    }
    patches
}

/// Verify sets (RESTORE VERIFYONLY): every block and stream header checksum, the block chain
/// (offsets, lengths, alignment, FLA), the soft filemark tables, each set closed by its ESET,
/// leading and trailing configuration agreeing, all families present, and the database pages
/// inside the data streams (ids and page checksums). For compressed devices every chunk is
/// decoded. `Err` only for I/O or when the devices are not one whole media set.
pub fn verify(
    devices: &[MtfDevice],
    position: Option<u32>,
    stop_on_error: bool,
) -> Result<Vec<SetReport>> {
    let fams = media_set(devices, true)?;
    let positions = match position {
        Some(p) => {
            if !all_positions(&fams).contains(&p) {
                return Err(no_such_set(&fams, p));
            }
            vec![p]
        }
        None => all_positions(&fams),
    };
    let mut reports = Vec::new();
    if positions.is_empty() {
        // No set at all: report what damage there is under position 1.
        let mut problems = Vec::new();
        for d in &fams {
            problems.extend(d.cat.damage.iter().map(|x| check::problem_of(d, x, None)));
            if let Some(map) = &d.media.map {
                problems.extend(
                    map.damage
                        .iter()
                        .map(|x| check::container_problem(d, x, None)),
                );
            }
        }
        if problems.is_empty() {
            problems.push(Problem {
                device: fams[0].media.device(),
                family: Some(fams[0].family()),
                what: "no backup set on the media".into(),
                ..Default::default()
            });
        }
        if stop_on_error {
            problems.truncate(1);
        }
        reports.push(SetReport {
            position: 1,
            verdict: Verdict::Damaged,
            problems,
            ..Default::default()
        });
        return Ok(reports);
    }
    let mut stop = false;
    for pos in positions {
        let t0 = Instant::now();
        let mut rep = SetReport {
            position: pos,
            ..Default::default()
        };
        let mut truncated_only = true;
        for d in &fams {
            if stop {
                break;
            }
            let Some(s) = d.set(pos) else {
                // A family that ends before the set was never written with it (the set was
                // appended to other families only): incomplete. A gap among its sets: damage.
                let last = d.positions().into_iter().max().unwrap_or(0);
                let ends_before = last < pos;
                rep.problems.push(Problem {
                    kind: if ends_before {
                        ProblemKind::Incomplete
                    } else {
                        ProblemKind::Missing
                    },
                    device: d.media.device(),
                    family: Some(d.family()),
                    position: Some(pos),
                    what: if ends_before {
                        format!(
                            "family {} lacks backup set {pos}: it ends after set {last}, so the \
                             set is incomplete",
                            d.family()
                        )
                    } else {
                        format!("family {} lacks backup set {pos}", d.family())
                    },
                    ..Default::default()
                });
                truncated_only &= ends_before;
                continue;
            };
            for f in check::faults(d, s) {
                if !f.unsupported() {
                    truncated_only &= f.truncated();
                }
                rep.problems.push(f.problem(d, s));
            }
            // Read everything: chunks decode, database pages and backup checksums hold.
            let mut w = Watch::new(d, &[s], Out::Nothing, false);
            let span = s.end.saturating_sub(s.sset_off);
            let mut nowhere = |_: &[u8]| Ok(());
            d.media.stream_range(s.sset_off, span, &mut |at, piece| {
                w.feed(at, piece, &mut nowhere)
            })?;
            let seen = w.finish(&mut nowhere)?;
            for p in seen.sums {
                truncated_only = false;
                rep.problems.push(p);
            }
            for (p, truncated) in seen.chunks {
                if p.kind != ProblemKind::Unsupported {
                    truncated_only &= truncated;
                }
                rep.problems.push(p);
            }
            for p in seen.pages {
                truncated_only = false;
                rep.problems.push(p);
            }
            let bytes = seen.bytes;
            rep.bytes_checked += match d.media.map {
                Some(_) => d
                    .media
                    .file_offset_of(s.end)
                    .saturating_sub(d.media.file_offset_of(s.sset_off)),
                None => bytes,
            };
            rep.original_bytes_checked += bytes;
            if stop_on_error && !rep.problems.is_empty() {
                stop = true;
            }
        }
        // A small DBCC CHECKTABLE, on a set that is otherwise valid: every table's row count
        // against the rows on its pages.
        if rep.problems.is_empty() && !stop {
            let found = db::table_problems(devices, pos)?;
            truncated_only &= found.is_empty();
            rep.problems.extend(found);
        }
        if stop_on_error {
            rep.problems.truncate(1);
        }
        let damage = rep
            .problems
            .iter()
            .any(|p| p.kind != ProblemKind::Unsupported);
        rep.verdict = if rep.problems.is_empty() {
            Verdict::Valid
        } else if !damage {
            Verdict::Unsupported
        } else if truncated_only {
            Verdict::Incomplete
        } else {
            Verdict::Damaged
        };
        rep.seconds = t0.elapsed().as_secs_f64();
        reports.push(rep);
        if stop {
            break;
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod products {
    use super::sql_server_product;

    #[test]
    fn every_version_names_its_product() {
        let named = [
            ((9, 0), "SQL Server 2005"),
            ((10, 0), "SQL Server 2008"),
            ((10, 50), "SQL Server 2008 R2"),
            ((11, 0), "SQL Server 2012"),
            ((12, 0), "SQL Server 2014"),
            ((13, 0), "SQL Server 2016"),
            ((14, 0), "SQL Server 2017"),
            ((15, 0), "SQL Server 2019"),
            ((16, 0), "SQL Server 2022"),
            ((17, 0), "SQL Server 2025"),
        ];
        for ((major, minor), product) in named {
            assert_eq!(
                sql_server_product(major, minor),
                Some(product),
                "{major}.{minor}"
            );
        }
        // No release has these: an unknown product, not a wrong one.
        for (major, minor) in [(10, 25), (9, 50), (6, 50), (18, 0), (0, 0)] {
            assert_eq!(sql_server_product(major, minor), None, "{major}.{minor}");
        }
    }
}

#[cfg(test)]
mod props {
    //! Arbitrary bytes never panic any parser.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(d) = dblk::Dblk::parse(&b) {
                let _ = dblk::Tape::parse(&b, &d);
                let _ = dblk::Sset::parse(&b, &d);
                let _ = dblk::Volb::parse(&b, &d);
            }
            let _ = dblk::StreamHeader::parse(&b);
            let _ = dblk::Eset::parse(&b);
            let _ = dblk::Sfmb::parse(&b);
            let _ = dblk::Raid::parse(&b);
            let _ = Config::parse(&b);
            let _ = le::mtf_date(&b);
            let _ = le::mtf_string(&b, 0, 2);
            let mut page = b.clone();
            page.resize(pages::PAGE, 0);
            let _ = pages::check_page(&page, 3, 0, &[]);
        }

        #[test]
        fn database_parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..20000)) {
            db::fuzzing::page(&b);
            db::fuzzing::record(&b);
            db::fuzzing::catalog(&b);
        }

        #[test]
        fn config_with_tags_never_panics(tag in prop::sample::select(vec![*b"SCIN", *b"SFIN", *b"SFGI"]), len in 0u32..4096, body in prop::collection::vec(any::<u8>(), 0..1024)) {
            let mut b = tag.to_vec();
            b.extend_from_slice(&len.to_le_bytes());
            b.extend(body);
            let _ = Config::parse(&b);
        }
    }
}
