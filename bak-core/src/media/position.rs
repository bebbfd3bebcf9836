//! Putting each family of a media set at the start of backup set N: on a random-read device
//! through the end-of-set chain (a few reads), on a stream by parsing through the sets before
//! it.

use std::io::Read;

use super::family::{scan_family, FamilyScan};
use super::open::Opened;
use super::parser::SetParser;
use super::reader::RecordReader;
use crate::bytes::*;
use crate::error::{Error, Location, Result};

/// A family positioned at the set header of the wanted set.
pub(crate) struct Positioned {
    /// The device name.
    pub name: String,
    /// The family's label.
    pub label: MediaHeader,
    /// The reader, at the set header.
    pub reader: RecordReader<Box<dyn Read + Send>>,
    /// Where the previous set's end-of-set record lies (0 before set 1), when known.
    pub prev_eset: Option<u64>,
    /// What a scan of the family found (random-read devices).
    pub scan: Option<FamilyScan>,
}

impl Positioned {
    /// A parser for the set this family is positioned at.
    pub fn parser(&self, position: u32) -> SetParser {
        let at = Location::device(self.name.clone()).family(self.label.family_number as u32);
        SetParser::new(&self.label, at, Some(position), self.prev_eset)
    }
}

/// Put each family at the start of set `position`.
///
/// A set that some families hold and others end before is incomplete (it was never written to
/// them whole): media damage naming the family it is missing on, not "no such set".
pub(crate) fn position_families(devs: Vec<Opened>, position: u32) -> Result<Vec<Positioned>> {
    let tried: Vec<(String, Option<u16>, Result<Positioned>)> = devs
        .into_iter()
        .map(|d| {
            let name = d.name().to_string();
            let fam = d.label.as_ref().map(|l| l.family_number);
            (name, fam, position_one(d, position))
        })
        .collect();
    let holder = tried
        .iter()
        .find(|t| t.2.is_ok())
        .map(|t| (t.0.clone(), t.1));
    let mut out = Vec::with_capacity(tried.len());
    for (name, fam, r) in tried {
        match (r, &holder) {
            (Ok(p), _) => out.push(p),
            (Err(Error::NoSuchSet { count, .. }), Some((other, Some(of)))) => {
                let mut at = Location::device(name);
                if let Some(f) = fam {
                    at = at.family(f as u32);
                }
                return Err(Error::Truncated {
                    at,
                    what: format!(
                        "backup set {position}, which family {of} ({other}) holds: this family \
                         ends after set {count}, so the backup set is incomplete"
                    ),
                });
            }
            (Err(e), _) => return Err(e),
        }
    }
    Ok(out)
}

pub(crate) fn position_one(d: Opened, position: u32) -> Result<Positioned> {
    let name = d.name().to_string();
    let label = d.label.clone().ok_or_else(|| Error::MediaSet {
        what: format!("{name}: not bak media"),
    })?;
    let at = Location::device(name.clone()).family(label.family_number as u32);
    if let Some(dev) = d.random() {
        let scan = scan_family(dev, &name)?;
        let count = scan.next_position() - 1 + scan.interrupted.is_some() as u32;
        let (offset, prev) = if let Some(s) = scan.set(position) {
            (s.eset.set_header_offset, s.eset.prev_eset_offset)
        } else if position == scan.next_position() && scan.interrupted.is_some() {
            (
                scan.end_offset,
                scan.sets.last().map_or(0, |s| s.eset.self_offset),
            )
        } else if let (Some(e), Some(first)) = (&scan.broken, scan.sets.first()) {
            if position < first.header.position {
                return Err(Error::corrupt(
                    at.set(position),
                    format!("backup set {position} cannot be found: {e}"),
                ));
            }
            return Err(Error::NoSuchSet { position, count });
        } else if let Some(e) = scan.broken {
            return Err(e);
        } else if let Some(past) = scan.past_end {
            return Err(Error::NoSuchSetPastEnd {
                position,
                count,
                past: Box::new(past),
            });
        } else {
            return Err(Error::NoSuchSet { position, count });
        };
        let mut reader = d.records_from(offset, at.clone())?;
        if let Some(p) = &scan.past_end {
            // The media end where other bytes begin: a set is not read on into them.
            let inner = reader.into_inner().take(p.offset.saturating_sub(offset));
            reader = RecordReader::new(Box::new(inner), offset, at);
        }
        return Ok(Positioned {
            name,
            label,
            reader,
            prev_eset: Some(prev),
            scan: Some(scan),
        });
    }
    let mut r = d.records_from(FIRST_SET_OFFSET, at.clone())?;
    let mut prev = 0u64;
    for p in 1..position {
        let mut parser = SetParser::new(&label, at.clone(), Some(p), Some(prev));
        match parser.skip_to_end(&mut r, |r, n| r.skip(n, "block payload")) {
            Ok(Some(e)) => prev = e.self_offset,
            Ok(None) => {
                return Err(Error::NoSuchSet {
                    position,
                    count: p - 1,
                })
            }
            Err(Error::PastEnd(past)) => {
                return Err(Error::NoSuchSetPastEnd {
                    position,
                    count: p - 1,
                    past: Box::new(r.measure(*past)?),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Positioned {
        name,
        label,
        reader: r,
        prev_eset: Some(prev),
        scan: None,
    })
}
