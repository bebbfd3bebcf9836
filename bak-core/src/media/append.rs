//! The append policy (SQL Server's NOINIT / INIT / FORMAT, SKIP and expiry): what each device
//! holds before a backup, where the new set starts on it, and what is refused. Nothing here
//! writes but [`write_slot`], and only after every check passed.

use super::family::{first_bytes, read_label, scan_family, FamilyScan};
use crate::bytes::*;
use crate::device::WriteDevice;
use crate::error::{Error, Refusal, Result};

/// What to do with media that already hold backup sets (SQL Server's NOINIT / INIT / FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitMode {
    /// Append a new set (NOINIT); new media are formatted when all devices are empty.
    #[default]
    Append,
    /// Overwrite all sets, keep the media header.
    Init,
    /// Write new media headers: a new media set.
    Format,
}

/// What the user asked of existing media.
#[derive(Debug, Clone)]
pub(crate) struct MediaRequest<'a> {
    pub mode: InitMode,
    pub skip: bool,
    pub media_name: Option<&'a str>,
    pub media_description: &'a str,
    pub now_us: i64,
}

/// What was found on a device before writing.
pub(crate) enum Found {
    /// Nothing: a new or empty file, a FIFO, stdout.
    Empty,
    /// bak media.
    Media(Box<FamilyScan>),
    /// Something else.
    Foreign(String),
}

/// One device's plan: where writing starts, and what it writes first.
#[derive(Clone)]
pub(crate) struct Plan {
    pub label: MediaHeader,
    pub write_label: bool,
    pub start: u64,
    pub prev_eset: u64,
    pub slot: SetMapSlot,
}

/// Look at what a device holds, without changing it.
pub(crate) fn inspect(dev: &dyn WriteDevice) -> Result<Found> {
    let Some(r) = dev.existing() else {
        return Ok(Found::Empty);
    };
    let name = dev.name();
    let len = r.len().map_err(|e| Error::io(name, "stat", e))?;
    if len == 0 {
        return Ok(Found::Empty);
    }
    Ok(match read_label(r, name) {
        Ok(Some(_)) => Found::Media(Box::new(scan_family(r, name)?)),
        Ok(None) => Found::Foreign(first_bytes(r)),
        Err(e) if e.is_media_damage() => Found::Foreign(format!("damaged bak media ({e})")),
        Err(e) => return Err(e),
    })
}

fn new_label(req: &MediaRequest<'_>, media_set_id: Guid, n: u16, i: u16) -> MediaHeader {
    MediaHeader {
        media_set_id,
        family_id: new_guid(),
        family_count: n,
        family_number: i,
        media_sequence: 1,
        mirror_count: 1,
        mirror_number: 1,
        parity_count: 0,
        flags: MEDIA_FLAG_SET_MAP,
        created_us: req.now_us,
        media_name: req.media_name.unwrap_or_default().to_string(),
        media_description: req.media_description.to_string(),
        software_name: "bak".into(),
        software_version: env!("CARGO_PKG_VERSION").into(),
        volume_start: 0,
    }
}

/// Work out, for every device, what to write where; refuse what NOINIT/INIT/FORMAT forbid.
/// Returns the plans (in device order) and the position of the new set.
pub(crate) fn plan(
    req: &MediaRequest<'_>,
    names: &[&str],
    found: &[Found],
) -> Result<(Vec<Plan>, u32, bool)> {
    let n = found.len() as u16;
    let media_set_id = new_guid();
    let fresh = || -> Vec<Plan> {
        (0..n)
            .map(|i| Plan {
                label: new_label(req, media_set_id, n, i + 1),
                write_label: true,
                start: 0,
                prev_eset: 0,
                slot: SetMapSlot {
                    media_set_id,
                    ..Default::default()
                },
            })
            .collect()
    };
    if req.mode == InitMode::Format {
        return Ok((fresh(), 1, true));
    }
    let scans: Vec<Option<&FamilyScan>> = found
        .iter()
        .map(|d| match d {
            Found::Media(s) => Some(&**s),
            _ => None,
        })
        .collect();
    for (d, name) in found.iter().zip(names) {
        if let Found::Foreign(what) = d {
            return Err(Error::refused(
                Refusal::Foreign,
                format!(
                    "{name}: holds data that is not bak media ({what}); --format overwrites it"
                ),
            ));
        }
    }
    if scans.iter().all(Option::is_none) {
        // Nothing there yet: a new media set, whatever the mode.
        return Ok((fresh(), 1, true));
    }
    if let Some(i) = scans.iter().position(Option::is_none) {
        return Err(Error::refused(
            Refusal::WrongMediaSet,
            format!(
                "{}: holds no bak media while the other devices do; give exactly the devices \
                 of the media set, or --format to start a new one",
                names[i]
            ),
        ));
    }
    let scans: Vec<&FamilyScan> = scans.into_iter().flatten().collect();
    for (d, s) in names.iter().zip(&scans) {
        if let Some(e) = &s.broken {
            if req.mode == InitMode::Append {
                return Err(Error::refused(
                    Refusal::DamagedMedia,
                    format!(
                        "{}: earlier backup sets are damaged ({e}); refusing to append. \
                         bak-verify shows the damage; --init or --format starts over",
                        d
                    ),
                ));
            }
        }
    }
    for s in &scans {
        // Appending starts at the end of the first media: it would cut off the second.
        if let Some(p) = s.past_end.as_ref().filter(|p| {
            req.mode == InitMode::Append && matches!(p.beyond, crate::error::Beyond::Media { .. })
        }) {
            return Err(Error::refused(
                Refusal::DamagedMedia,
                format!(
                    "refusing to append, which would cut off what follows the media: {p}. \
                     --init or --format starts over"
                ),
            ));
        }
    }
    let first = &scans[0].media;
    for (d, s) in names.iter().zip(&scans) {
        if s.media.media_set_id != first.media_set_id {
            return Err(Error::refused(
                Refusal::WrongMediaSet,
                format!(
                    "{}: belongs to another media set ({}) than {} ({}); --format starts a new one",
                    d,
                    guid_string(&s.media.media_set_id),
                    names[0],
                    guid_string(&first.media_set_id)
                ),
            ));
        }
    }
    if first.family_count != n {
        return Err(Error::refused(
            Refusal::WrongMediaSet,
            format!(
                "the media set has {} families but {} devices were given; only --format can \
                 change the number of families",
                first.family_count, n
            ),
        ));
    }
    let mut by_family: Vec<Option<usize>> = vec![None; n as usize];
    for (i, s) in scans.iter().enumerate() {
        let f = s.media.family_number as usize - 1;
        if let Some(j) = by_family[f] {
            return Err(Error::refused(
                Refusal::WrongMediaSet,
                format!(
                    "{} and {} are both family {} of the media set",
                    names[j],
                    names[i],
                    f + 1
                ),
            ));
        }
        by_family[f] = Some(i);
    }
    if let Some(name) = req.media_name {
        if !req.skip && *name != first.media_name {
            return Err(Error::refused(
                Refusal::WrongMediaName,
                format!(
                    "the media are named {:?}, not {:?}; --skip overrides the check",
                    first.media_name, name
                ),
            ));
        }
    }
    // Sets complete on every family, by GUID at each position.
    let complete = (0..)
        .take_while(|&k| {
            let id = scans[0].sets.get(k).map(|s| s.header.set_id);
            id.is_some()
                && scans
                    .iter()
                    .all(|s| s.sets.get(k).map(|x| x.header.set_id) == id)
        })
        .count();
    if req.mode == InitMode::Init && !req.skip {
        let now = req.now_us;
        for s in &scans[0].sets[..complete] {
            if s.header.expire_us > now {
                return Err(Error::refused(
                    Refusal::NotExpired,
                    format!(
                        "backup set {} ({:?}) has not expired (until {}); --skip overrides the check",
                        s.header.position,
                        s.header.name,
                        crate::dates::format_us(s.header.expire_us)
                    ),
                ));
            }
        }
    }
    let keep = if req.mode == InitMode::Init {
        0
    } else {
        complete
    };
    let plans = scans
        .iter()
        .map(|s| {
            let (start, prev) = match keep {
                0 => (FIRST_SET_OFFSET, 0),
                k => {
                    let e = &s.sets[k - 1].eset;
                    (e.self_offset + ESET_FRAME_LEN as u64, e.self_offset)
                }
            };
            let generation = s.slot.map_or(0, |x| x.generation);
            Plan {
                label: s.media.clone(),
                write_label: false,
                start,
                prev_eset: prev,
                slot: SetMapSlot {
                    generation,
                    complete_sets: keep as u32,
                    last_eset_offset: prev,
                    end_offset: start,
                    media_set_id: s.media.media_set_id,
                },
            }
        })
        .collect();
    Ok((plans, keep as u32 + 1, false))
}

/// Write `slot` into the older of the two set map slots, and sync.
pub(crate) fn write_slot(dev: &dyn WriteDevice, slot: &SetMapSlot, sync: bool) -> Result<()> {
    let name = dev.name();
    let bytes = slot.encode();
    let at = if slot.generation.is_multiple_of(2) {
        SET_MAP_OFFSET + FRAME_HEADER_LEN as u64
    } else {
        SET_MAP_OFFSET + SET_MAP_SLOT_B
    };
    dev.write_at(&bytes, at)
        .map_err(|e| Error::io(name, "write", e))?;
    if sync {
        dev.sync().map_err(|e| Error::io(name, "sync", e))?;
    }
    Ok(())
}
