//! What bak media hold, as LABELONLY and HEADERONLY facts: from the tail of a random-read
//! device (reads only the label, set map, end-of-set chain, set headers and trailing configs),
//! or through the set parser front to back on a stream. What follows the end of the media
//! (another media concatenated onto them, other bytes) is reported with them, typed.

use std::collections::BTreeMap;

use crate::bytes::*;
use crate::codec::keys::show_fingerprint;
use crate::codec::seal::Cipher;
use crate::error::{Error, Location, PastEnd, Result};
use crate::media::family::{read_leading, scan_family};
use crate::media::open::Opened;
use crate::media::parser::{Event, SetParser};
use crate::ops::backup::now_us;
use crate::report::{LabelInfo, SetInfo, Timestamp};

/// One set as seen on one family.
#[derive(Debug, Clone)]
pub struct SetSeen {
    /// Its header.
    pub header: SetHeader,
    /// Its trailing config, when the set is complete on this family.
    pub trailing: Option<TrailingConfig>,
    /// Its encryption, when its leading config could be read: algorithm id (0 none) and the
    /// keys that open it.
    pub encryption: Option<(u16, Vec<String>)>,
}

/// What the leading config and key records say of a set's encryption.
fn encryption_of(encryption: u16, keys: &[KeyRecord]) -> (u16, Vec<String>) {
    let mut fps = Vec::new();
    for k in keys {
        match k.kind {
            KeyKind::X25519 => fps.extend(k.fingerprints.iter().map(show_fingerprint)),
            KeyKind::Passphrase => fps.push("passphrase".to_string()),
        }
    }
    (encryption, fps)
}

/// What one family holds.
#[derive(Debug, Clone)]
pub struct FamilyCatalog {
    /// Device name.
    pub name: String,
    /// Label.
    pub media: MediaHeader,
    /// The format version the label was written with (major, minor).
    pub format: (u8, u8),
    /// Sets by position (complete ones have a trailing config).
    pub sets: Vec<SetSeen>,
    /// Damage that kept earlier sets from being listed, if any.
    pub damage: Option<String>,
    /// What follows the end of the media on the device, if anything does: another media
    /// concatenated onto them, whose sets are not listed as these media's, or other bytes.
    pub past_end: Option<PastEnd>,
}

/// Catalog one bak device: from its tail when it has positioned reads, through the set parser
/// otherwise.
pub fn catalog(d: Opened) -> Result<FamilyCatalog> {
    let media = d.label.clone().ok_or_else(|| Error::NotMedia {
        device: d.name().to_string(),
        found: "not bak media".into(),
    })?;
    let name = d.name().to_string();
    // The label's record header says which version wrote it: 1.0 media stay 1.0.
    let version = |i: usize, or: u8| d.head.get(FRAME_HEADER_LEN + i).copied().unwrap_or(or);
    let format = (version(4, FORMAT_MAJOR), version(5, FORMAT_MINOR));
    if let Some(f) = d.random() {
        let scan = scan_family(f, &name)?;
        // Sets before a break in the end-of-set chain cannot be listed without reading the
        // data; the ones after it still are, and the damage is reported with them.
        let damage = scan.broken.as_ref().map(|e| e.to_string());
        let at = Location::device(name.clone()).family(media.family_number as u32);
        let crypt = |off: u64| {
            read_leading(f, off, &at)
                .ok()
                .map(|(l, k)| encryption_of(l.encryption, &k))
        };
        let mut sets: Vec<SetSeen> = scan
            .sets
            .into_iter()
            .map(|s| SetSeen {
                encryption: crypt(s.eset.set_header_offset),
                header: s.header,
                trailing: Some(s.trailing),
            })
            .collect();
        if let Some(h) = scan.interrupted.and_then(|i| i.header) {
            sets.push(SetSeen {
                header: h,
                trailing: None,
                encryption: crypt(scan.end_offset),
            });
        }
        return Ok(FamilyCatalog {
            name,
            media,
            format,
            sets,
            damage,
            past_end: scan.past_end,
        });
    }
    let at = Location::device(name.clone()).family(media.family_number as u32);
    let mut r = d.records_from(FIRST_SET_OFFSET, at.clone())?;
    let mut sets: Vec<SetSeen> = Vec::new();
    let mut past_end = None;
    'sets: loop {
        let mut p = SetParser::new(&media, at.clone(), None, None);
        // A trailing config makes the set complete only once its end-of-set follows: media
        // cut in the MBC or before the end-of-set hold an interrupted set, as verify says.
        let mut trailing = None;
        loop {
            let ev = match p.next(&mut r) {
                Ok(Some(ev)) => ev,
                Ok(None) => break 'sets,
                // An interrupted set at the end of a stream: what came before is still listed.
                Err(Error::Truncated { .. }) => break 'sets,
                // The media end and something else follows: read to the end to measure it.
                Err(Error::PastEnd(past)) => {
                    past_end = Some(r.measure(*past)?);
                    break 'sets;
                }
                Err(e) => return Err(e),
            };
            match ev {
                Event::Header(h) => sets.push(SetSeen {
                    header: h,
                    trailing: None,
                    encryption: None,
                }),
                Event::Leading(l) => {
                    if let Some(s) = sets.last_mut() {
                        s.encryption = Some(encryption_of(l.encryption, &[]));
                    }
                }
                Event::Key(k) => {
                    if let Some((_, fps)) = sets.last_mut().and_then(|s| s.encryption.as_mut()) {
                        let (_, more) = encryption_of(0, &[k]);
                        fps.extend(more);
                    }
                }
                Event::Block(h, _) => match r.skip(h.stored_len as u64, "block payload") {
                    Ok(()) => {}
                    Err(Error::Truncated { .. }) => break 'sets,
                    Err(e) => return Err(e),
                },
                Event::Trailing(t) => trailing = Some(t),
                Event::End(_) => {
                    if let (Some(s), Some(t)) = (sets.last_mut(), trailing.take()) {
                        if s.header.set_id == t.set_id {
                            s.trailing = Some(t);
                        }
                    }
                    break;
                }
                Event::Mbc => {}
            }
        }
    }
    // Listing is forgiving about problems that leave the framing whole: verification is the
    // place for such doubts.
    Ok(FamilyCatalog {
        name,
        media,
        format,
        sets,
        damage: None,
        past_end,
    })
}

/// Catalog several devices in parallel (streams may be fed in any order).
pub fn catalog_all(devs: Vec<Opened>) -> Result<Vec<FamilyCatalog>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = devs
            .into_iter()
            .map(|d| s.spawn(move || catalog(d)))
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        what: "the thread listing a device panicked".into(),
                        detail: None,
                    })
                })
            })
            .collect()
    })
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The LABELONLY facts of one family.
pub fn label_info(c: &FamilyCatalog) -> LabelInfo {
    let m = &c.media;
    let latest = c.sets.iter().map(|s| s.header.expire_us).max().unwrap_or(0);
    LabelInfo {
        device: c.name.clone(),
        media_format: Some(MediaKind::Bak),
        format_version: format!("{}.{}", c.format.0, c.format.1),
        media_name: opt(&m.media_name),
        media_description: opt(&m.media_description),
        media_set_id: Some(guid_string(&m.media_set_id)),
        media_family_id: Some(guid_string(&m.family_id)),
        family_count: Some(m.family_count as u32),
        family_sequence_number: Some(m.family_number as u32),
        media_sequence_number: Some(m.media_sequence as u32),
        mirror_number: Some(m.mirror_number as u32),
        software_name: Some(format!("{} {}", m.software_name, m.software_version)),
        software_vendor_id: None,
        media_date: Some(Timestamp(m.created_us)),
        logical_block_size: None,
        backup_set_count: Some(c.sets.len() as u32),
        media_password_protected: None,
        is_compressed: Some(false),
        expiration_date: (latest > 0).then_some(Timestamp(latest)),
        expired: Some(latest <= now_us()),
    }
}

/// HEADERONLY facts: one per set position, merged over the families given. A set is complete
/// when its trailing config and end-of-set are on every family given and every family is given.
pub fn set_infos(cats: &[FamilyCatalog]) -> Vec<SetInfo> {
    // Copies of a family (MIRROR TO) count once.
    let families = |fams: &mut dyn Iterator<Item = u16>| {
        let mut v: Vec<u16> = fams.collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let given = families(&mut cats.iter().map(|c| c.media.family_number));
    let all_given = cats
        .first()
        .is_some_and(|c| c.media.family_count as usize == given);
    let mut by_pos: BTreeMap<u32, Vec<&SetSeen>> = BTreeMap::new();
    for c in cats {
        for s in &c.sets {
            by_pos.entry(s.header.position).or_default().push(s);
        }
    }
    by_pos
        .into_iter()
        .map(|(pos, seen)| {
            let h = &seen[0].header;
            let t = seen.iter().find_map(|s| s.trailing.as_ref());
            let crypt = seen.iter().find_map(|s| s.encryption.as_ref());
            let complete = all_given
                && families(&mut seen.iter().map(|s| s.header.family_number)) == given
                && seen
                    .iter()
                    .all(|s| s.trailing.is_some() && s.header.set_id == h.set_id);
            SetInfo {
                position: pos,
                backup_name: opt(&h.name),
                backup_description: opt(&h.description),
                backup_set_guid: Some(guid_string(&h.set_id)),
                backup_type: None,
                backup_type_description: Some("Stream".into()),
                user_name: opt(&h.user),
                machine_name: opt(&h.host),
                server_name: None,
                database_name: None,
                device_name: None,
                volume_name: None,
                backup_start_date: Some(Timestamp(h.start_us)),
                backup_finish_date: t.map(|t| Timestamp(t.finish_us)),
                expiration_date: (h.expire_us > 0).then_some(Timestamp(h.expire_us)),
                compressed: !matches!(h.codec, Codec::None),
                compression: Some(h.codec.to_string()),
                encrypted: crypt.map(|c| c.0 != 0),
                encryption_algorithm: crypt.filter(|c| c.0 != 0).map(|c| {
                    Cipher::from_id(c.0)
                        .map_or(format!("algorithm {}", c.0), |c| c.name().to_string())
                }),
                key_fingerprints: crypt.filter(|c| c.0 != 0).map(|c| c.1.clone()),
                backup_size: t.map(|t| t.total_original),
                compressed_backup_size: t.map(|t| t.total_stored),
                family_count: Some(h.family_count as u32),
                mirror_count: cats.first().map(|c| c.media.mirror_count.max(1) as u32),
                block_count: t.map(|t| t.total_blocks),
                max_transfer_size: Some(h.max_transfer),
                has_backup_checksums: Some(true),
                is_complete: complete,
                software_name: Some(h.software_name.clone()),
                software_version: Some(h.software_version.clone()),
                software_version_major: None,
                software_product: None,
                digest: t.map(|t| t.digest),
                source_label: opt(&h.source),
                key_algorithm: None,
                encryptor_thumbprint: None,
                encryptor_type: None,
                sql: None,
                origin: None,
            }
        })
        .collect()
}
