//! MIRROR TO: copies of one family (docs/FORMAT.md, "Mirrors"). Every copy holds the same
//! bytes as copy 1 but its label frames, so every offset is the same in every copy.
//!
//! - Writing: [`MirrorWriter`] is one [`WriteDevice`] over the copies of a family, a tee below
//!   the family writer: the bytes of the family are encoded once and written to every copy at
//!   the same place, each copy getting its own label (its mirror number). A copy that fails is
//!   dropped and named in the [`CopyFailures`]; the family goes on while one copy is left, and
//!   the copy cut short never gets the end-of-set that would make its set look complete.
//! - Reading: [`group_copies`] makes the copies of a family given to a reader one family
//!   source, a [`MirrorReader`]: each unit of the family (a record frame, a block payload)
//!   comes from a copy where it checks (its CRCs); a unit lost on every copy is passed on as
//!   copy 1 has it, so the reader above reports the block lost as on an unmirrored family.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use crate::bytes::*;
use crate::device::{read_full_at, write_all_vectored, Caps, RandomRead, ReadDevice, WriteDevice};
use crate::error::{Error, Location, Result};

use super::open::Opened;

/// The most copies of a family: the main devices and three `--mirror-to` lists.
pub const MAX_COPIES: usize = 4;

/// A copy of a family that failed while a backup wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCopy {
    /// The device.
    pub device: String,
    /// The family it is a copy of.
    pub family: u16,
    /// Its mirror number.
    pub mirror: u16,
    /// What failed.
    pub error: String,
}

/// The copies that failed during one backup, shared by the writers of every family.
pub(crate) type CopyFailures = Arc<Mutex<Vec<FailedCopy>>>;

struct WriteCopy {
    dev: Option<Box<dyn WriteDevice>>,
    name: String,
    mirror: u16,
    /// The copy's label frame, written in place of copy 1's at offsets 0..4096.
    label: Vec<u8>,
}

/// One family written to several copies at once.
pub(crate) struct MirrorWriter {
    name: String,
    family: u16,
    copies: Vec<WriteCopy>,
    /// Offset of the cursor (from [`WriteDevice::begin`]).
    pos: u64,
    failures: CopyFailures,
    /// Copies whose `sync` or `write_at` (calls on `&self`) failed: dropped at the next call
    /// that can drop them.
    sick: Mutex<Vec<(usize, io::Error)>>,
}

impl MirrorWriter {
    /// A tee over `copies` (copy 1 first): each with its mirror number and, when the backup
    /// writes new labels, its label frame.
    pub fn new(
        family: u16,
        copies: Vec<(Box<dyn WriteDevice>, u16, Vec<u8>)>,
        failures: CopyFailures,
    ) -> MirrorWriter {
        let names: Vec<&str> = copies.iter().map(|c| c.0.name()).collect();
        let name = format!("{} (mirrored to {})", names[0], names[1..].join(", "));
        MirrorWriter {
            name,
            family,
            copies: copies
                .into_iter()
                .map(|(dev, mirror, label)| WriteCopy {
                    name: dev.name().to_string(),
                    dev: Some(dev),
                    mirror,
                    label,
                })
                .collect(),
            pos: 0,
            failures,
            sick: Mutex::new(Vec::new()),
        }
    }

    fn live(&self) -> usize {
        self.copies.iter().filter(|c| c.dev.is_some()).count()
    }

    /// Drop a copy that failed; the error of the family once no copy is left.
    fn failed(&mut self, i: usize, e: io::Error) -> Option<io::Error> {
        if self.copies[i].dev.take().is_none() {
            return None;
        }
        let live = self.live();
        let c = &self.copies[i];
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FailedCopy {
                device: c.name.clone(),
                family: self.family,
                mirror: c.mirror,
                error: e.to_string(),
            });
        if live == 0 {
            return Some(io::Error::new(
                e.kind(),
                format!(
                    "{}: every copy of family {} failed; the last: {e}",
                    c.name, self.family
                ),
            ));
        }
        None
    }

    /// Drop the copies whose `&self` calls failed.
    fn settle(&mut self) -> io::Result<()> {
        let sick = std::mem::take(&mut *self.sick.lock().unwrap_or_else(|p| p.into_inner()));
        let mut last = None;
        for (i, e) in sick {
            if let Some(e) = self.failed(i, e) {
                last = Some(e);
            }
        }
        last.map_or(Ok(()), Err)
    }

    /// Apply `f` to every live copy; a copy whose call fails is dropped.
    fn each(&mut self, f: impl Fn(&mut dyn WriteDevice) -> io::Result<()>) -> io::Result<()> {
        self.settle()?;
        let mut last = None;
        for i in 0..self.copies.len() {
            let Some(d) = self.copies[i].dev.as_mut() else {
                continue;
            };
            if let Err(e) = f(d.as_mut()) {
                if let Some(e) = self.failed(i, e) {
                    last = Some(e);
                }
            }
        }
        last.map_or(Ok(()), Err)
    }
}

impl MirrorWriter {
    /// A `&self` call on every live copy: a copy that fails is dropped at the next `&mut`
    /// call; the call fails only when every copy did.
    fn on_each(&self, f: impl Fn(&dyn WriteDevice) -> io::Result<()>) -> io::Result<()> {
        let mut sick = self.sick.lock().unwrap_or_else(|p| p.into_inner());
        let (mut ok, mut last) = (0, None);
        for (i, c) in self.copies.iter().enumerate() {
            let Some(d) = c.dev.as_ref() else { continue };
            if sick.iter().any(|s| s.0 == i) {
                continue;
            }
            match f(d.as_ref()) {
                Ok(()) => ok += 1,
                Err(e) => {
                    last = Some(io::Error::new(e.kind(), format!("{}: {e}", c.name)));
                    sick.push((i, e));
                }
            }
        }
        match (ok, last) {
            (0, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// The slices of `bufs` (which start at family offset `pos`) with the bytes at 0..4096
/// taken from `label` instead.
fn with_label<'a>(bufs: &'a [IoSlice<'_>], pos: u64, label: &'a [u8]) -> Vec<IoSlice<'a>> {
    let span = label.len() as u64;
    let mut out = Vec::with_capacity(bufs.len() + 1);
    let mut at = pos;
    for b in bufs {
        let (start, end) = (at, at + b.len() as u64);
        at = end;
        if label.is_empty() || start >= span {
            out.push(IoSlice::new(b));
            continue;
        }
        let bytes: &'a [u8] = b;
        let cut = (span.min(end) - start) as usize;
        out.push(IoSlice::new(&label[start as usize..start as usize + cut]));
        if cut < bytes.len() {
            out.push(IoSlice::new(&bytes[cut..]));
        }
    }
    out
}

impl WriteDevice for MirrorWriter {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        // What any live copy can do: each call goes to the copies that can take it.
        let mut caps = Caps::default();
        for c in self.copies.iter().filter_map(|c| c.dev.as_ref()) {
            let k = c.caps();
            caps.overwrite |= k.overwrite;
            caps.truncate |= k.truncate;
            caps.durable_sync |= k.durable_sync;
            caps.append |= k.append;
        }
        caps
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        for c in self.copies.iter().filter_map(|c| c.dev.as_ref()) {
            if c.caps().truncate {
                c.set_len(len)?;
            }
        }
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.on_each(|d| match d.caps().overwrite {
            true => d.write_at(buf, offset),
            false => Ok(()),
        })
    }
    fn begin(&mut self, offset: u64) -> io::Result<()> {
        self.settle()?;
        self.pos = offset;
        self.each(|d| d.begin(offset))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.settle()?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let pos = self.pos;
        // Every copy at once: a reader of FIFOs reads the copies side by side, so no copy may
        // wait for another to drain.
        let results: Vec<(usize, io::Result<()>)> = std::thread::scope(|s| {
            let hs: Vec<_> = self
                .copies
                .iter_mut()
                .enumerate()
                .filter(|(_, c)| c.dev.is_some())
                .map(|(i, c)| {
                    s.spawn(move || {
                        let mut v = with_label(bufs, pos, &c.label);
                        let d = c.dev.as_mut().map(|d| d.as_mut());
                        let r = match d {
                            Some(d) => write_all_vectored(&mut DevWrite(d), &mut v),
                            None => Ok(()),
                        };
                        (i, r)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (0, Err(io::Error::other("a mirror writer thread panicked")))
                    })
                })
                .collect()
        });
        let mut last = None;
        for (i, r) in results {
            if let Err(e) = r {
                if let Some(e) = self.failed(i, e) {
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        self.pos += total as u64;
        Ok(total)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.each(|d| d.flush())
    }
    fn sync(&self) -> io::Result<()> {
        self.on_each(|d| match d.caps().durable_sync {
            true => d.sync(),
            false => Ok(()),
        })
    }
    fn finish(&mut self) -> io::Result<()> {
        self.each(|d| d.finish())
    }
}

/// `io::Write` over a device's cursor.
struct DevWrite<'a>(&'a mut dyn WriteDevice);

impl io::Write for DevWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Planned = (Vec<super::append::Plan>, u32, bool);

/// Make the plans of the copies one plan: new media get one media set (copy 1's labels, each
/// copy its mirror number); existing media must agree copy for copy (media set, family,
/// copies, where the new set starts), or the backup is refused naming the devices.
pub(crate) fn reconcile(
    main: Planned,
    main_names: &[&str],
    mirrors: Vec<(Planned, Vec<&str>)>,
    m: u16,
) -> Result<Planned2> {
    use crate::error::Refusal;
    let (mut plans, position, formatted) = main;
    let disagree = |what: String| Error::refused(Refusal::WrongMediaSet, what);
    if formatted {
        for p in &mut plans {
            p.label.mirror_count = m;
            p.label.mirror_number = 1;
        }
    } else {
        for (p, name) in plans.iter().zip(main_names) {
            if p.label.mirror_count != m {
                return Err(disagree(format!(
                    "{name}: the media set keeps {} cop{} of each family, but {m} {} given; \
                     give every copy (--mirror-to), or --format to start a new media set",
                    p.label.mirror_count,
                    if p.label.mirror_count == 1 {
                        "y"
                    } else {
                        "ies"
                    },
                    if m == 1 { "is" } else { "are" },
                )));
            }
        }
    }
    let mut out = vec![plans.clone()];
    for (k, ((mp, mpos, mfmt), names)) in mirrors.into_iter().enumerate() {
        let mirror = k as u16 + 2;
        if formatted {
            if !mfmt {
                return Err(disagree(format!(
                    "the copies disagree: {} holds bak media while {} holds none; give empty \
                     devices, or --format to write over them",
                    names[0], main_names[0]
                )));
            }
            out.push(
                plans
                    .iter()
                    .map(|p| {
                        let mut p = p.clone();
                        p.label.mirror_number = mirror;
                        p
                    })
                    .collect(),
            );
            continue;
        }
        if mfmt {
            return Err(disagree(format!(
                "the copies disagree: {} holds no bak media while {} does; give the copies \
                 of this media set, or --format to start a new one",
                names[0], main_names[0]
            )));
        }
        let mut list = Vec::with_capacity(mp.len());
        for (i, mut q) in mp.into_iter().enumerate() {
            let p = &plans[i];
            let (a, b) = (main_names[i], names[i]);
            let why = if q.label.media_set_id != p.label.media_set_id {
                Some(format!(
                    "{b} belongs to media set {}, {a} to {}",
                    guid_string(&q.label.media_set_id),
                    guid_string(&p.label.media_set_id)
                ))
            } else if q.label.family_number != p.label.family_number
                || q.label.family_id != p.label.family_id
            {
                Some(format!(
                    "{b} is family {}, {a} family {} (give the copies in the same order)",
                    q.label.family_number, p.label.family_number
                ))
            } else if q.label.mirror_count != m {
                Some(format!(
                    "{b}: the media set keeps {} copies of each family, but {m} are given",
                    q.label.mirror_count
                ))
            } else if position != mpos || q.start != p.start || q.prev_eset != p.prev_eset {
                Some(format!(
                    "{a} holds {} complete backup set{} ending at offset {}, {b} {} ending at \
                     offset {}",
                    position - 1,
                    if position == 2 { "" } else { "s" },
                    p.start,
                    mpos - 1,
                    q.start
                ))
            } else if let Some(o) = out
                .iter()
                .map(|l| &l[i])
                .find(|o| o.label.mirror_number == q.label.mirror_number)
            {
                let _ = o;
                Some(format!(
                    "{b} and another device given are both copy {} of family {}",
                    q.label.mirror_number, q.label.family_number
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(disagree(format!(
                    "the copies of family {} disagree on what the media hold, refusing to \
                     write: {why}; bak-verify shows which is whole, --format starts over",
                    p.label.family_number
                )));
            }
            // One set map history: the slot goes where copy 1's goes.
            q.slot = p.slot;
            list.push(q);
        }
        out.push(list);
    }
    Ok((out, position, formatted))
}

type Planned2 = (Vec<Vec<super::append::Plan>>, u32, bool);

// ---- Reading ----------------------------------------------------------------------------

pub use crate::report::{MirrorNote, MirrorNoteKind};

/// What the copies of one family given to a reader showed.
#[derive(Debug)]
pub(crate) struct FamilyCopies {
    /// The family number.
    pub family: u16,
    /// Copies of each family the media set keeps.
    pub mirror_count: u16,
    /// The devices given for it, with their mirror numbers.
    pub given: Vec<(String, u16)>,
    /// What reading found, shared with the family's reader.
    pub notes: Arc<Mutex<Vec<MirrorNote>>>,
}

impl FamilyCopies {
    /// What was found, in the order found, the copies not given first.
    pub fn notes(&self) -> Vec<MirrorNote> {
        let mut out = Vec::new();
        for k in 1..=self.mirror_count {
            if !self.given.iter().any(|g| g.1 == k) {
                out.push(MirrorNote {
                    kind: MirrorNoteKind::Missing,
                    family: self.family,
                    mirror: k,
                    device: String::new(),
                    offset: 0,
                    what: format!("copy {k} of family {} was not given", self.family),
                    from: None,
                });
            }
        }
        out.extend(
            self.notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        out
    }

    /// Copies of this family that were given and had nothing wrong.
    pub fn healthy(&self) -> usize {
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        self.given
            .iter()
            .filter(|(d, _)| {
                !notes.iter().any(|n| {
                    &n.device == d
                        && matches!(
                            n.kind,
                            MirrorNoteKind::Damaged
                                | MirrorNoteKind::CutShort
                                | MirrorNoteKind::Lost
                        )
                })
            })
            .count()
    }
}

/// Whether the copies of a family are read only where copy 1 fails (a restore: files are
/// read where needed, streams side by side) or every copy is read and compared (verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyReading {
    /// The first copy where it checks; other files only where it does not.
    Heal,
    /// Every copy, checked and compared.
    CheckAll,
}

/// Put the copies of each family among `devs` together: one [`Opened`] per family, the copies
/// of a family (same media set, family number and family id; different mirror numbers) read
/// through a [`MirrorReader`]. Devices that are not bak media pass through unchanged.
pub(crate) fn group_copies(
    devs: Vec<Opened>,
    reading: CopyReading,
) -> Result<(Vec<Opened>, Vec<FamilyCopies>)> {
    let mut groups: Vec<Vec<Opened>> = Vec::new();
    for d in devs {
        let key = d
            .label
            .as_ref()
            .map(|l| (l.media_set_id, l.family_number, l.family_id));
        match groups.iter_mut().find(|g| {
            key.is_some()
                && g[0]
                    .label
                    .as_ref()
                    .map(|l| (l.media_set_id, l.family_number, l.family_id))
                    == key
        }) {
            Some(g) => g.push(d),
            None => groups.push(vec![d]),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut fams = Vec::new();
    for mut g in groups {
        let Some(label) = g[0].label.clone() else {
            out.extend(g);
            continue;
        };
        g.sort_by_key(|d| d.label.as_ref().map_or(0, |l| l.mirror_number));
        for w in g.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if a.label.as_ref().map(|l| l.mirror_number)
                == b.label.as_ref().map(|l| l.mirror_number)
            {
                return Err(Error::refused(
                    crate::error::Refusal::Usage,
                    format!(
                        "family {} copy {} given twice: {} and {}; give each copy once",
                        label.family_number,
                        a.label.as_ref().map_or(0, |l| l.mirror_number),
                        a.name(),
                        b.name()
                    ),
                ));
            }
        }
        let notes: Arc<Mutex<Vec<MirrorNote>>> = Default::default();
        let given: Vec<(String, u16)> = g
            .iter()
            .map(|d| {
                (
                    d.name().to_string(),
                    d.label.as_ref().map_or(0, |l| l.mirror_number),
                )
            })
            .collect();
        fams.push(FamilyCopies {
            family: label.family_number,
            mirror_count: label.mirror_count.max(1),
            given: given.clone(),
            notes: Arc::clone(&notes),
        });
        if g.len() == 1 {
            out.extend(g);
            continue;
        }
        out.push(MirrorReader::open(g, reading, notes)?);
    }
    Ok((out, fams))
}

/// The copies of one family (all of them bak media of one family) as one source, even one
/// copy alone: every unit read is checked, and what is found is in the [`FamilyCopies`].
pub(crate) fn one_source(g: Vec<Opened>, reading: CopyReading) -> Result<(Opened, FamilyCopies)> {
    let label = g[0].label.clone().ok_or_else(|| Error::MediaSet {
        what: format!("{}: not bak media", g[0].name()),
    })?;
    let notes: Arc<Mutex<Vec<MirrorNote>>> = Default::default();
    let mut g = g;
    g.sort_by_key(|d| d.label.as_ref().map_or(0, |l| l.mirror_number));
    let fam = FamilyCopies {
        family: label.family_number,
        mirror_count: label.mirror_count.max(1),
        given: g
            .iter()
            .map(|d| {
                (
                    d.name().to_string(),
                    d.label.as_ref().map_or(0, |l| l.mirror_number),
                )
            })
            .collect(),
        notes: Arc::clone(&notes),
    };
    Ok((MirrorReader::open(g, reading, notes)?, fam))
}

struct ReadCopy {
    name: String,
    mirror: u16,
    dev: Box<dyn ReadDevice>,
    random: bool,
    alive: bool,
    /// The copy's bytes of the unit being read, when read.
    buf: Vec<u8>,
    /// True when `buf` holds the whole unit and it checks.
    good: bool,
    read: bool,
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A record frame starts here.
    Frame,
    /// A block's stored payload: its length, CRC and sequence number.
    Payload { len: usize, crc: u32, seq: u64 },
    /// Bytes that are not bak records (past the end of the media): copy 1's, as they are.
    Raw,
}

/// The copies of one family read as one device, front to back (docs/FORMAT.md, "Mirrors").
pub(crate) struct MirrorReader {
    name: String,
    family: u16,
    copies: Vec<ReadCopy>,
    reading: CopyReading,
    /// Family offset of the next unit.
    offset: u64,
    unit: Unit,
    /// The unit being handed out, and how much of it was.
    out: Vec<u8>,
    out_pos: usize,
    notes: Arc<Mutex<Vec<MirrorNote>>>,
}

const RAW_CHUNK: usize = 64 << 10;

impl MirrorReader {
    fn open(
        g: Vec<Opened>,
        reading: CopyReading,
        notes: Arc<Mutex<Vec<MirrorNote>>>,
    ) -> Result<Opened> {
        let names: Vec<String> = g.iter().map(|d| d.name().to_string()).collect();
        let name = match names.len() {
            1 => names[0].clone(),
            _ => format!("{} (copies: {})", names[0], names[1..].join(", ")),
        };
        let family = g[0].label.as_ref().map_or(0, |l| l.family_number);
        let head_full = |d: &Opened| d.head.len() == FIRST_SET_OFFSET as usize;
        let primary = g.iter().position(head_full).unwrap_or(0);
        let head = g[primary].head.clone();
        let label = g[primary].label.clone();
        let mut copies = Vec::with_capacity(g.len());
        for d in g {
            let alive = head_full(&d);
            let mirror = d.label.as_ref().map_or(0, |l| l.mirror_number);
            let dname = d.name().to_string();
            if !alive {
                notes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(MirrorNote {
                        kind: MirrorNoteKind::CutShort,
                        family,
                        mirror,
                        device: dname.clone(),
                        offset: d.head.len() as u64,
                        what: "the copy ends before its first backup set".into(),
                        from: None,
                    });
            }
            let dev = d.into_raw();
            copies.push(ReadCopy {
                name: dname,
                mirror,
                random: dev.random().is_some(),
                dev,
                alive,
                buf: Vec::new(),
                good: false,
                read: false,
            });
        }
        let r = MirrorReader {
            name: name.clone(),
            family,
            copies,
            reading,
            offset: FIRST_SET_OFFSET,
            unit: Unit::Frame,
            out: Vec::new(),
            out_pos: 0,
            notes,
        };
        Ok(Opened::from_parts(Box::new(r), name, head, label))
    }

    fn note(
        &self,
        kind: MirrorNoteKind,
        c: usize,
        offset: u64,
        what: String,
        from: Option<String>,
    ) {
        let c = &self.copies[c];
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(MirrorNote {
                kind,
                family: self.family,
                mirror: c.mirror,
                device: c.name.clone(),
                offset,
                what,
                from,
            });
    }

    /// Read `len` bytes at family offset `at` from copy `i` into its buffer; false when the
    /// copy ended or failed first (it is then dead, and noted so).
    fn read_copy(&mut self, i: usize, at: u64, len: usize) -> bool {
        let c = &mut self.copies[i];
        let start = c.buf.len();
        c.buf.resize(start + len, 0);
        let got = if c.random {
            let r = c
                .dev
                .random()
                .map(|r| read_full_at(r, &mut c.buf[start..], at));
            r.unwrap_or(Ok(0))
        } else {
            let mut done = 0;
            let mut res = Ok(0);
            while done < len {
                match c.dev.read(&mut c.buf[start + done..]) {
                    Ok(0) => break,
                    Ok(k) => done += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            res.map(|_| done)
        };
        match got {
            Ok(n) if n == len => true,
            Ok(n) => {
                c.buf.truncate(start + n);
                c.alive = false;
                false
            }
            Err(e) => {
                c.buf.truncate(start);
                c.alive = false;
                let what = format!("read error: {e}");
                self.note(MirrorNoteKind::CutShort, i, at, what, None);
                false
            }
        }
    }

    /// Whether copy `i` must be read for the current unit: streams always (they stay side by
    /// side), every copy when checking all, files only while no copy has checked.
    fn must_read(&self, i: usize, found: bool) -> bool {
        let c = &self.copies[i];
        c.alive && (!c.random || self.reading == CopyReading::CheckAll || !found)
    }

    fn next_unit(&mut self) -> io::Result<()> {
        let o = self.offset;
        for c in &mut self.copies {
            c.buf.clear();
            c.good = false;
            c.read = false;
        }
        match self.unit {
            Unit::Raw => {
                let mut first = None;
                for i in 0..self.copies.len() {
                    if self.copies[i].alive && (first.is_none() || !self.copies[i].random) {
                        self.read_copy(i, o, RAW_CHUNK);
                        first.get_or_insert(i);
                    }
                }
                if let Some(i) = first {
                    self.out = std::mem::take(&mut self.copies[i].buf);
                }
                self.offset += self.out.len() as u64;
                return Ok(());
            }
            Unit::Frame => {
                // The prefix of every live copy (a few bytes from a file): the frame's size
                // comes from a copy whose record header checks.
                let mut ended = Vec::new();
                for i in 0..self.copies.len() {
                    if self.copies[i].alive && !self.read_copy(i, o, RECORD_PREFIX_LEN) {
                        ended.push(i);
                    }
                }
                let mut size = None;
                let mut kind = None;
                for c in &self.copies {
                    if c.buf.len() == RECORD_PREFIX_LEN {
                        if let Some((k, s)) = prefix_size(&c.buf) {
                            size = Some(s);
                            kind = Some(k);
                            break;
                        }
                    }
                }
                let longest = self.copies.iter().map(|c| c.buf.len()).max().unwrap_or(0);
                for &i in &ended {
                    if self.copies[i].buf.len() < longest {
                        let what = "the copy ends here, before the others".to_string();
                        self.note(
                            MirrorNoteKind::CutShort,
                            i,
                            o + self.copies[i].buf.len() as u64,
                            what,
                            None,
                        );
                    }
                }
                let Some(size) = size else {
                    // Not a record on any copy: the end, or bytes that are not bak records;
                    // the first copy's bytes go on as they are.
                    let i = (0..self.copies.len())
                        .max_by_key(|&i| (self.copies[i].buf.len(), usize::MAX - i))
                        .unwrap_or(0);
                    self.out = std::mem::take(&mut self.copies[i].buf);
                    self.offset += self.out.len() as u64;
                    if !self.out.is_empty() {
                        self.unit = Unit::Raw;
                    }
                    return Ok(());
                };
                let rest = size - RECORD_PREFIX_LEN;
                let kind = kind.unwrap_or(RecordType::BlockHeader);
                self.pick(
                    o,
                    RECORD_PREFIX_LEN,
                    rest,
                    &|b: &[u8]| frame_checks(b),
                    kind.name(),
                )?;
            }
            Unit::Payload { len, crc, seq } => {
                let what = format!("block {seq}");
                self.pick(o, 0, len, &|b: &[u8]| crc32fast::hash(b) == crc, &what)?;
                self.unit = Unit::Frame;
            }
        }
        Ok(())
    }

    /// Read the rest of a unit (`have` bytes of it are in the buffers of the copies that read
    /// them) and hand out the first copy's where it checks.
    fn pick(
        &mut self,
        o: u64,
        have: usize,
        rest: usize,
        check: &dyn Fn(&[u8]) -> bool,
        what: &str,
    ) -> io::Result<()> {
        let total = have + rest;
        let mut found = None;
        for i in 0..self.copies.len() {
            if !self.must_read(i, found.is_some()) {
                continue;
            }
            if self.copies[i].buf.len() != have {
                // A random copy not read yet for this unit.
                self.copies[i].buf.clear();
                if have > 0 && !self.read_copy(i, o, have) {
                    continue;
                }
            }
            self.copies[i].read = true;
            if !self.read_copy(i, o + have as u64, rest) {
                let at = o + self.copies[i].buf.len() as u64;
                self.note(
                    MirrorNoteKind::CutShort,
                    i,
                    at,
                    "the copy ends here".into(),
                    None,
                );
                continue;
            }
            let c = &mut self.copies[i];
            c.good = c.buf.len() == total && check(&c.buf);
            if c.good && found.is_none() {
                found = Some(i);
            }
        }
        let from = found.map(|i| self.copies[i].name.clone());
        for i in 0..self.copies.len() {
            let c = &self.copies[i];
            if c.read && !c.good && c.buf.len() == total {
                let kind = if found.is_some() {
                    MirrorNoteKind::Damaged
                } else {
                    MirrorNoteKind::Lost
                };
                self.note(kind, i, o, format!("{what} does not check"), from.clone());
            }
        }
        match found {
            Some(f) => {
                if self.reading == CopyReading::CheckAll {
                    for i in 0..self.copies.len() {
                        let (a, b) = (&self.copies[f], &self.copies[i]);
                        if i != f && b.good && a.buf != b.buf {
                            let w = format!("{what} differs from the copy on {}", a.name);
                            self.note(MirrorNoteKind::Differ, i, o, w, None);
                        }
                    }
                }
                if kind_of(&self.copies[f].buf) == Some(RecordType::BlockHeader) && have > 0 {
                    let b = &self.copies[f].buf;
                    let at = Location::device(self.name.clone()).at(o);
                    if let Ok(h) = BlockHeader::parse_body(&b[RECORD_PREFIX_LEN..], &at) {
                        self.unit = Unit::Payload {
                            len: h.stored_len as usize,
                            crc: h.payload_crc,
                            seq: h.seq,
                        };
                    }
                }
                self.out = std::mem::take(&mut self.copies[f].buf);
            }
            None => {
                // Lost on every copy: copy 1's bytes as they are, for the reader above to
                // report as on an unmirrored family; what follows is not known to be records.
                let i = (0..self.copies.len())
                    .max_by_key(|&i| (self.copies[i].buf.len(), usize::MAX - i))
                    .unwrap_or(0);
                self.out = std::mem::take(&mut self.copies[i].buf);
                // A record whose length is known goes on at the next record; a block header
                // lost everywhere leaves its payload's length unknown.
                if have > 0 && kind_of(&self.out) == Some(RecordType::BlockHeader) {
                    self.unit = Unit::Raw;
                }
            }
        }
        self.offset += self.out.len() as u64;
        Ok(())
    }
}

fn kind_of(b: &[u8]) -> Option<RecordType> {
    let tag: [u8; 4] = b
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4)?
        .try_into()
        .ok()?;
    RecordType::from_tag(tag)
}

/// The record type and whole frame length a record prefix says, when its header checks.
fn prefix_size(b: &[u8]) -> Option<(RecordType, usize)> {
    let fh: &[u8; FRAME_HEADER_LEN] = b.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
    let size = parse_frame_header(fh)?;
    let rh: &[u8; RECORD_HEADER_LEN] = b
        .get(FRAME_HEADER_LEN..RECORD_PREFIX_LEN)?
        .try_into()
        .ok()?;
    let at = Location::device(String::new());
    let h = parse_record_header(rh, size, false, &at).ok()?;
    Some((h.kind, FRAME_HEADER_LEN + size as usize))
}

/// A whole record frame whose header and body check.
fn frame_checks(b: &[u8]) -> bool {
    let Some((_, size)) = prefix_size(b) else {
        return false;
    };
    if size != b.len() {
        return false;
    }
    let rh: &[u8; RECORD_HEADER_LEN] = match b[FRAME_HEADER_LEN..RECORD_PREFIX_LEN].try_into() {
        Ok(r) => r,
        Err(_) => return false,
    };
    let at = Location::device(String::new());
    match parse_record_header(rh, (size - FRAME_HEADER_LEN) as u32, false, &at) {
        Ok(h) => check_body(&h, &b[RECORD_PREFIX_LEN..], &at).is_ok(),
        Err(_) => false,
    }
}

impl ReadDevice for MirrorReader {
    fn name(&self) -> &str {
        &self.name
    }
    fn caps(&self) -> Caps {
        Caps::default()
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos >= self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.next_unit()?;
            if self.out.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
    fn into_random(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn RandomRead>, Box<dyn ReadDevice>> {
        Err(self)
    }
}
