//! Opening devices for reading: the first bytes tell the format, a bak label is parsed, and the
//! devices of a media set are put in family order.

use std::io::{self, Read};
use std::path::PathBuf;

use super::reader::RecordReader;
use crate::bytes::*;
use crate::device::{
    check_distinct, open_read, read_full_at, Caps, Mapping, RandomRead, ReadDevice,
};
use crate::error::{Error, Location, Refusal, Result};

/// Devices a reader takes at once: 64 families, room for their mirrors.
const MAX_READ_DEVICES: usize = 256;

/// A device opened for reading, its first bytes read so the format is known.
pub struct Opened {
    dev: Box<dyn ReadDevice>,
    name: String,
    /// The first bytes (up to 8 KiB: the media header and set map).
    pub(crate) head: Vec<u8>,
    kind: Option<MediaKind>,
    /// The bak label, when the device holds bak media.
    pub(crate) label: Option<MediaHeader>,
    /// True when reading the head moved a stream's cursor past it.
    consumed: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Opened {
    /// Read a device's first bytes and tell its format. A damaged bak label is an error
    /// naming the device.
    pub fn new(mut dev: Box<dyn ReadDevice>) -> Result<Opened> {
        let name = dev.name().to_string();
        let mut head = vec![0u8; FIRST_SET_OFFSET as usize];
        let (n, consumed) = match dev.random() {
            Some(r) => (
                read_full_at(r, &mut head, 0).map_err(|e| Error::io(&name, "read", e))?,
                false,
            ),
            None => {
                let mut done = 0;
                while done < head.len() {
                    match dev.read(&mut head[done..]) {
                        Ok(0) => break,
                        Ok(k) => done += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io(&name, "read", e)),
                    }
                }
                (done, true)
            }
        };
        head.truncate(n);
        let kind = sniff(&head);
        let label = if kind == Some(MediaKind::Bak) {
            let at = Location::device(name.clone()).at(0);
            if head.len() < MEDIA_HEADER_SPAN as usize {
                return Err(Error::Truncated {
                    at,
                    what: "media header".into(),
                });
            }
            let (_, body) = parse_frame(&head, RecordType::MediaHeader, &at)?;
            Some(MediaHeader::parse_body(body, &at)?)
        } else {
            None
        };
        // A family on volumes reads as one device from here on.
        let mut name = name;
        if let Some(l) = &label {
            dev = super::volumes::with_volumes(dev, l)?;
            name = dev.name().to_string();
        }
        Ok(Opened {
            dev,
            name,
            head,
            kind,
            label,
            consumed,
        })
    }

    /// The device as opened, its cursor wherever reading the head left it (past the head on a
    /// stream).
    pub(crate) fn into_raw(self) -> Box<dyn ReadDevice> {
        self.dev
    }

    /// A bak device made of other devices (the copies of a family): a stream whose head,
    /// already read, is `head`.
    pub(crate) fn from_parts(
        dev: Box<dyn ReadDevice>,
        name: String,
        head: Vec<u8>,
        label: Option<MediaHeader>,
    ) -> Opened {
        Opened {
            dev,
            name,
            head,
            kind: Some(MediaKind::Bak),
            label,
            consumed: true,
        }
    }

    /// The device's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What its first bytes say it holds; `None` for anything else.
    pub fn kind(&self) -> Option<MediaKind> {
        self.kind
    }

    /// The first bytes read (up to 8 KiB).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// What the device can do.
    pub fn caps(&self) -> Caps {
        self.dev.caps()
    }

    /// Positioned reads, where the device has them.
    pub fn random(&self) -> Option<&dyn RandomRead> {
        self.dev.random()
    }

    /// The device's bytes in place, where that is cheap.
    pub fn map(&self) -> Result<Option<std::sync::Arc<dyn Mapping>>> {
        self.dev.map()
    }

    /// The device again, reading from its first byte (for another reader of the format, such
    /// as the SQL Server reader): a stream replays the bytes already read.
    pub fn into_device(self) -> Box<dyn ReadDevice> {
        if self.consumed {
            Box::new(Replay {
                head: self.head,
                pos: 0,
                inner: self.dev,
            })
        } else {
            let mut dev = self.dev;
            let _ = dev.seek(0);
            dev
        }
    }

    /// A reader of records from `offset`. A random-read device reads from there through a
    /// second handle; a stream only from its start (the head is replayed).
    pub(crate) fn records_from(
        self,
        offset: u64,
        at: Location,
    ) -> Result<RecordReader<Box<dyn Read + Send>>> {
        if self.dev.random().is_some() {
            let mut d = self
                .dev
                .try_clone()
                .map_err(|e| Error::io(&self.name, "open", e))?;
            d.seek(offset)
                .map_err(|e| Error::io(&self.name, "seek", e))?;
            return Ok(RecordReader::new(Box::new(d), offset, at));
        }
        let mut r = RecordReader::new(Box::new(self.into_device()) as Box<dyn Read + Send>, 0, at);
        if offset > 0 {
            r.skip(offset, "the start of the media")?;
        }
        Ok(r)
    }
}

/// A stream whose first bytes were already read: they are given again first.
struct Replay {
    head: Vec<u8>,
    pos: usize,
    inner: Box<dyn ReadDevice>,
}

impl ReadDevice for Replay {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn crate::device::RandomRead>, Box<dyn ReadDevice>> {
        Err(self)
    }
}

/// Open devices by path and read their first bytes, in parallel: FIFOs fed by one writer in
/// any order do not deadlock.
pub fn open_paths(paths: &[PathBuf]) -> Result<Vec<Opened>> {
    open_paths_with(paths, &open_read)
}

/// [`open_paths`] with another way to open a name (a program that also takes URLs opens those
/// itself and hands the rest to [`open_read`]).
pub fn open_paths_with(
    paths: &[PathBuf],
    open: &(dyn Fn(&std::path::Path) -> Result<Box<dyn ReadDevice>> + Sync),
) -> Result<Vec<Opened>> {
    if paths.len() > MAX_READ_DEVICES {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "{} devices given; a media set has at most {MAX_READ_DEVICES}",
                paths.len()
            ),
        ));
    }
    check_distinct(paths)?;
    std::thread::scope(|s| {
        let hs: Vec<_> = paths
            .iter()
            .map(|p| s.spawn(move || open(p).and_then(Opened::new)))
            .collect();
        hs.into_iter().map(join).collect()
    })
}

/// Read the first bytes of several devices, in parallel (streams may be fed in any order).
pub fn open_devices(devs: Vec<Box<dyn ReadDevice>>) -> Result<Vec<Opened>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = devs
            .into_iter()
            .map(|d| s.spawn(move || Opened::new(d)))
            .collect();
        hs.into_iter().map(join).collect()
    })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|_| {
        Err(Error::Internal {
            what: "the thread opening a device panicked".into(),
            detail: None,
        })
    })
}

/// Check that bak devices form one whole media set; return them in family order, the copies
/// of a mirrored family read as one ([`super::mirror::group_copies`]), with what is known of
/// the copies of each family.
pub(crate) fn order_families(
    devs: Vec<Opened>,
    reading: super::mirror::CopyReading,
) -> Result<(Vec<Opened>, Vec<super::mirror::FamilyCopies>)> {
    let (devs, copies) = super::mirror::group_copies(devs, reading)?;
    Ok((order_grouped(devs)?, copies))
}

fn order_grouped(devs: Vec<Opened>) -> Result<Vec<Opened>> {
    let n = devs.len();
    let first = devs
        .first()
        .and_then(|d| d.label.clone())
        .ok_or_else(|| Error::MediaSet {
            what: "no bak media given".into(),
        })?;
    let mut slots: Vec<Option<Opened>> = (0..first.family_count).map(|_| None).collect();
    for d in devs {
        let Some(l) = d.label.clone() else {
            return Err(Error::MediaSet {
                what: format!("{}: not bak media", d.name),
            });
        };
        if l.media_set_id != first.media_set_id {
            return Err(Error::MediaSet {
                what: format!(
                    "{}: family {} of another media set ({}), not of {} ({})",
                    d.name,
                    l.family_number,
                    guid_string(&l.media_set_id),
                    guid_string(&first.media_set_id),
                    if first.media_name.is_empty() {
                        "unnamed"
                    } else {
                        &first.media_name
                    }
                ),
            });
        }
        let i = l.family_number as usize - 1;
        match slots.get_mut(i) {
            Some(slot @ None) => *slot = Some(d),
            // Two copies of one family: a usage error, like one device given twice.
            Some(Some(other)) => {
                return Err(Error::refused(
                    Refusal::Usage,
                    format!(
                        "family {} given twice: {} and {}; give each family once",
                        i + 1,
                        other.name,
                        d.name
                    ),
                ))
            }
            None => {
                return Err(Error::MediaSet {
                    what: format!("{}: family number {} out of range", d.name, i + 1),
                })
            }
        }
    }
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MediaSet {
            what: format!(
                "the media set has {} families; family {} {} missing ({} device{} given)",
                first.family_count,
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                n,
                if n == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(slots.into_iter().flatten().collect())
}
