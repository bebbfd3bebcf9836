//! Rebuilding a mirror copy (MIRROR TO): a new copy of family N, mirror number M, written from
//! the copies of family N given, each record and block checked on the way (and read from
//! another copy where it does not check), with the new copy's own label.

use std::io::IoSlice;

use crate::bytes::*;
use crate::device::{write_all, WriteDevice};
use crate::error::{Error, Refusal, Result};
use crate::media::mirror::{CopyReading, MirrorNote, MirrorNoteKind};
use crate::media::open::Opened;
use crate::Stop;

/// What a rebuild of a copy did.
#[derive(Debug, Clone)]
pub struct RebuildSummary {
    /// The family rebuilt.
    pub family: u16,
    /// The mirror number of the new copy.
    pub mirror: u16,
    /// Bytes written to the new copy.
    pub bytes: u64,
    /// What was found of the copies read (damage read from another copy).
    pub notes: Vec<MirrorNote>,
}

/// Write copy `mirror` of family `family` onto `new` from the devices given (any devices of
/// the media set; the copies of `family` among them are read). Refuses a `new` device that
/// holds bytes unless `format`; fails, leaving the new copy without its end, when a record or
/// block checks on no copy given.
pub fn rebuild_mirror(
    devs: Vec<Opened>,
    family: u16,
    mirror: u16,
    mut new: Box<dyn WriteDevice>,
    format: bool,
    sync: bool,
    stop: &Stop,
) -> Result<RebuildSummary> {
    let new_name = new.name().to_string();
    let copies: Vec<Opened> = devs
        .into_iter()
        .filter(|d| d.label.as_ref().is_some_and(|l| l.family_number == family))
        .collect();
    let Some(label) = copies.first().and_then(|d| d.label.clone()) else {
        return Err(Error::refused(
            Refusal::Usage,
            format!("no copy of family {family} was given to rebuild copy {mirror} from"),
        ));
    };
    if copies.iter().any(|d| {
        d.label
            .as_ref()
            .is_some_and(|l| l.media_set_id != label.media_set_id)
    }) {
        return Err(Error::refused(
            Refusal::WrongMediaSet,
            format!("the copies of family {family} given belong to different media sets"),
        ));
    }
    if mirror == 0 || mirror > label.mirror_count.max(1) {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "the media set keeps {} cop{} of each family; there is no copy {mirror}",
                label.mirror_count,
                if label.mirror_count == 1 { "y" } else { "ies" }
            ),
        ));
    }
    if let Some(r) = new.existing() {
        let len = r.len().map_err(|e| Error::io(&new_name, "stat", e))?;
        if len > 0 && !format {
            return Err(Error::refused(
                Refusal::Foreign,
                format!("{new_name}: holds {len} bytes; --format writes over it"),
            ));
        }
    }
    let (source, fam) = crate::media::mirror::one_source(copies, CopyReading::Heal)?;
    let mut label = label;
    label.mirror_number = mirror;
    label.media_sequence = 1;
    label.volume_start = 0;
    let mut src = source.into_device();
    let w = |e: std::io::Error| Error::io(&new_name, "write", e);
    let r = |e: std::io::Error| Error::io(&fam.given[0].0, "read", e);
    if new.caps().truncate {
        new.set_len(0)
            .map_err(|e| Error::io(&new_name, "truncate", e))?;
    }
    new.begin(0).map_err(|e| Error::io(&new_name, "open", e))?;
    // The label of the new copy, then every byte of the family after it.
    let mut skip = vec![0u8; MEDIA_HEADER_SPAN as usize];
    fill(&mut *src, &mut skip).map_err(r)?;
    let head = label.encode();
    write_all(new.as_mut(), &mut [IoSlice::new(&head)]).map_err(w)?;
    let mut bytes = head.len() as u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if stop.is_raised() {
            return Err(Error::Interrupted);
        }
        let n = fill(&mut *src, &mut buf).map_err(r)?;
        if n == 0 {
            break;
        }
        // Nothing that checks on no copy is written as if it were good.
        let notes = fam.notes();
        if let Some(l) = notes.iter().find(|n| n.kind == MirrorNoteKind::Lost) {
            return Err(Error::MediaSet {
                what: format!(
                    "family {family} cannot be copied whole: {l}; the new copy {new_name} is \
                     left without it"
                ),
            });
        }
        write_all(new.as_mut(), &mut [IoSlice::new(&buf[..n])]).map_err(w)?;
        bytes += n as u64;
    }
    new.flush().map_err(w)?;
    if sync && new.caps().durable_sync {
        new.sync().map_err(|e| Error::io(&new_name, "sync", e))?;
    }
    new.finish().map_err(w)?;
    Ok(RebuildSummary {
        family,
        mirror,
        bytes,
        notes: fam.notes(),
    })
}

fn fill(src: &mut dyn crate::device::ReadDevice, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match src.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
