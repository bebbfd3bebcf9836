//! Devices of any number of media sets, for a tool that lists (bak-header): each path is opened
//! and read on its own, so that one that cannot be read is reported and the others listed, and
//! the devices read are grouped into their media sets. The tools that act on one media set
//! (bak-read, bak-verify) keep [`crate::open_media`], which refuses devices of several.

use std::path::PathBuf;

use bak_core::bytes::MediaKind;
use bak_core::list::{self, FamilyCatalog};
use bak_core::report::Origin;
use bak_core::{Error, Opened};
use bak_mtf::MtfDevice;

/// Devices a listing takes at once. Each is opened on a thread of its own (FIFOs fed in any
/// order must all be open at once), so there is a bound.
pub const MAX_LISTED: usize = 4096;

/// One device, read.
pub enum Listed {
    /// A family of bak media, cataloged.
    Bak(FamilyCatalog),
    /// A SQL Server backup (one media family).
    Mtf(MtfDevice),
}

/// Open every path and read what it holds, all at once: a bak device is cataloged, a SQL
/// Server backup walked. One result per path, in the order given. `Err` only for a usage
/// error that concerns them all (too many, one given twice).
pub fn open_each(paths: &[PathBuf]) -> anyhow::Result<Vec<anyhow::Result<Listed>>> {
    if paths.len() > MAX_LISTED {
        return Err(Error::refused(
            bak_core::Refusal::Usage,
            format!(
                "{} devices given; bak-header lists at most {MAX_LISTED} at once",
                paths.len()
            ),
        )
        .into());
    }
    bak_core::device::check_distinct(paths)?;
    crate::devices::check_urls_distinct(paths)?;
    Ok(std::thread::scope(|s| {
        let hs: Vec<_> = paths.iter().map(|p| s.spawn(move || read(p))).collect();
        hs.into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        what: "the thread reading a device panicked".into(),
                        detail: None,
                    }
                    .into())
                })
            })
            .collect()
    }))
}

fn read(path: &std::path::Path) -> anyhow::Result<Listed> {
    let d = Opened::new(crate::devices::open_read(path)?)?;
    match d.kind() {
        Some(MediaKind::Bak) => Ok(Listed::Bak(list::catalog(d)?)),
        Some(_) => Ok(Listed::Mtf(MtfDevice::from_device(d.into_device())?)),
        None => Err(crate::not_media(&d).into()),
    }
}

/// The devices of one media set, as given.
pub enum MediaSet {
    /// Families of bak media.
    Bak(Vec<FamilyCatalog>),
    /// Families of a SQL Server backup.
    Mtf(Vec<MtfDevice>),
}

impl MediaSet {
    /// How many devices.
    pub fn len(&self) -> usize {
        match self {
            MediaSet::Bak(v) => v.len(),
            MediaSet::Mtf(v) => v.len(),
        }
    }

    /// True when it holds no device (never, as [`group`] makes them).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The media set id the devices carry (bak: the label's; MTF: the RAID stream GUID).
    pub fn id(&self) -> Option<String> {
        match self {
            MediaSet::Bak(v) => v.first().and_then(|c| list::label_info(c).media_set_id),
            MediaSet::Mtf(v) => v.first().and_then(|d| d.label().media_set_id),
        }
    }

    /// The devices' names, in family order, `, ` between them.
    pub fn names(&self) -> String {
        self.devices_holding(None).device
    }

    /// Where set `position` was read: the devices holding it (every device for `None`), in
    /// family order, and the media set id.
    pub fn devices_holding(&self, position: Option<u32>) -> Origin {
        let mut fams: Vec<(u32, String)> = match self {
            MediaSet::Bak(v) => v
                .iter()
                .filter(|c| position.is_none_or(|p| c.sets.iter().any(|s| s.header.position == p)))
                .map(|c| (u32::from(c.media.family_number), c.name.clone()))
                .collect(),
            MediaSet::Mtf(v) => v
                .iter()
                .filter(|d| position.is_none_or(|p| d.positions().contains(&p)))
                .map(|d| (d.family(), d.name()))
                .collect(),
        };
        fams.sort_by_key(|(f, _)| *f);
        Origin {
            device: fams
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<_>>()
                .join(", "),
            media_set_id: self.id(),
        }
    }
}

/// Group the devices into media sets by the id they carry, in the order the first device of
/// each was given; devices within a set keep their order. A SQL Server backup without a media
/// set id is a set of its own.
pub fn group(devices: Vec<Listed>) -> Vec<MediaSet> {
    let mut sets: Vec<(Option<String>, MediaSet)> = Vec::new();
    for d in devices {
        match d {
            Listed::Bak(c) => {
                let id = list::label_info(&c).media_set_id;
                match sets
                    .iter_mut()
                    .find(|(i, s)| i.is_some() && *i == id && matches!(s, MediaSet::Bak(_)))
                {
                    Some((_, MediaSet::Bak(v))) => v.push(c),
                    _ => sets.push((id, MediaSet::Bak(vec![c]))),
                }
            }
            Listed::Mtf(m) => {
                let id = m.label().media_set_id;
                match sets
                    .iter_mut()
                    .find(|(i, s)| i.is_some() && *i == id && matches!(s, MediaSet::Mtf(_)))
                {
                    Some((_, MediaSet::Mtf(v))) => v.push(m),
                    _ => sets.push((id, MediaSet::Mtf(vec![m]))),
                }
            }
        }
    }
    sets.into_iter().map(|(_, s)| s).collect()
}
