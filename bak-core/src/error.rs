//! The one error type of bak-core. Every variant carries what a person needs to act on it.

use std::fmt;
use std::path::PathBuf;

/// Where on the media something was found: device, family, set, block, byte offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The device path.
    pub device: String,
    /// Family number, counted from 1.
    pub family: Option<u32>,
    /// Backup set position, counted from 1.
    pub position: Option<u32>,
    /// Block sequence number (bak) or block / chunk index (MTF).
    pub block: Option<u64>,
    /// Byte offset in the device.
    pub offset: Option<u64>,
}

impl Location {
    /// A location naming only the device.
    pub fn device(device: impl Into<String>) -> Self {
        Location {
            device: device.into(),
            ..Default::default()
        }
    }
    /// The same location at a byte offset.
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
    /// The same location in a family.
    pub fn family(mut self, family: u32) -> Self {
        self.family = Some(family);
        self
    }
    /// The same location in a backup set.
    pub fn set(mut self, position: u32) -> Self {
        self.position = Some(position);
        self
    }
    /// The same location at a block.
    pub fn block(mut self, seq: u64) -> Self {
        self.block = Some(seq);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.device)?;
        if let Some(x) = self.family {
            write!(f, ": family {x}")?;
        }
        if let Some(x) = self.position {
            write!(f, ", set {x}")?;
        }
        if let Some(x) = self.block {
            write!(f, ", block {x}")?;
        }
        if let Some(x) = self.offset {
            write!(f, ", offset {x}")?;
        }
        Ok(())
    }
}

/// What lies past the end of the bak media on a device: where the records of its media stop and
/// bytes that are not theirs begin (docs/FORMAT.md, "After the end of the media"). Never read as
/// more of the media, never passed over in silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastEnd {
    /// The device and family (and the set cut short, if the bytes begin inside one).
    pub at: Location,
    /// Byte offset in the device where they begin.
    pub offset: u64,
    /// Bytes from there to the end of the device, when known (a stream is measured only by
    /// reading it to its end).
    pub len: Option<u64>,
    /// What they are.
    pub beyond: Beyond,
}

/// What the bytes past the end of the media are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beyond {
    /// A whole bak media label: another media begins there, concatenated onto this one (as
    /// `cat >>` makes). Its sets are not sets of this media.
    Media {
        /// Its media set id.
        media_set_id: String,
        /// True when it names the same media set as the first media (a copy, or another
        /// family of the set, put after this one).
        same_media_set: bool,
        /// Its family number.
        family_number: u16,
        /// The family count of its media set.
        family_count: u16,
    },
    /// Bytes that are not bak records.
    Bytes {
        /// Their first bytes, in hex.
        first: String,
    },
}

impl PastEnd {
    /// Where the bytes begin, as a location.
    pub fn location(&self) -> Location {
        self.at.clone().at(self.offset)
    }

    /// The same, measured: `len` bytes from `offset` to the end of the device.
    pub fn with_len(mut self, len: u64) -> PastEnd {
        self.len = Some(len);
        self
    }

    /// What the same bytes are where the media are known to go on after them (a file whose
    /// end-of-set chain names later sets): damage.
    pub fn into_damage(self) -> Error {
        let at = self.location();
        match self.beyond {
            Beyond::Media { .. } => Error::mismatch(
                at,
                "unexpected record",
                "a record of this media",
                "a media header",
            ),
            Beyond::Bytes { first } => Error::mismatch(
                at,
                "expected a bak record frame",
                "skippable frame magic",
                first,
            ),
        }
    }

    /// The sentence without the location: what the bytes are and how to get at them.
    pub fn describe(&self) -> String {
        let follow = match self.len {
            Some(n) => format!("{n} bytes to the end of the device"),
            None => "the rest of the device".to_string(),
        };
        let cut = match self.at.position {
            Some(p) => format!(", where backup set {p} was not finished"),
            None => String::new(),
        };
        match &self.beyond {
            Beyond::Media {
                media_set_id,
                same_media_set,
                family_number,
                family_count,
            } => {
                let same = if *same_media_set {
                    ", the same media set as the first media"
                } else {
                    ""
                };
                format!(
                    "a second bak media begins here (media set {media_set_id}, family \
                     {family_number} of {family_count}{same}; {follow}){cut}: media \
                     concatenated on one device, as `cat >>` makes, are not one media set, so \
                     its backup sets are not listed or read as sets of this media; {}",
                    self.recipe(*family_count)
                )
            }
            Beyond::Bytes { first } => {
                let n = match self.len {
                    Some(n) => format!("{n} bytes"),
                    None => "bytes".to_string(),
                };
                format!("{n} past the end of the media{cut} (not bak records: first bytes {first})")
            }
        }
    }

    /// How to reach a second media: the bytes from `offset` on are a whole media of their own.
    fn recipe(&self, family_count: u16) -> String {
        let n = self.offset + 1;
        let one = family_count == 1;
        if self.at.device == "stdin" {
            let then = if one {
                "bak-read -` restores its set 1"
            } else {
                "bak-header -` lists it"
            };
            return format!(
                "the same stream through `tail -c +{n}` gives it whole (`... | tail -c +{n} | {then})"
            );
        }
        let dev = shell_word(&self.at.device);
        let cut = format!("`tail -c +{n} {dev} > second.bak` cuts it out as a device of its own");
        if one {
            format!("`tail -c +{n} {dev} | bak-read -` restores its set 1, and {cut}")
        } else {
            format!("{cut}, to give with the other families of its media set")
        }
    }
}

/// A path as one word of a shell command: quoted unless it is plain.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/+,:@%=".contains(&b));
    if plain && !s.starts_with('-') {
        s.to_string()
    } else if plain {
        format!("./{s}")
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl fmt::Display for PastEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.describe())
    }
}

/// Everything that can go wrong in bak-core.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on a named file.
    Io {
        /// The file (device, input or output) the error happened on.
        path: PathBuf,
        /// What the operation was ("read", "write", "open", "sync" ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not media this crate knows (neither bak nor MTF).
    NotMedia {
        /// The device.
        device: String,
        /// What was found instead, e.g. the first bytes in hex.
        found: String,
    },
    /// The media use a format version this build does not read. Not corruption.
    UnsupportedVersion {
        /// Where.
        at: Location,
        /// The version found.
        found: String,
        /// The versions this build reads.
        supported: String,
    },
    /// A record or block is damaged: a checksum fails, a field is impossible.
    Corrupt {
        /// Where.
        at: Location,
        /// What is wrong.
        what: String,
        /// What was expected, where it can be said.
        expected: Option<String>,
        /// What was found, where it can be said.
        found: Option<String>,
    },
    /// The media end before a record or block that should be there.
    Truncated {
        /// Where the missing bytes should start.
        at: Location,
        /// What was being read.
        what: String,
    },
    /// The devices given do not form a whole media set (missing, duplicated or foreign family).
    MediaSet {
        /// A sentence naming the family numbers and files concerned.
        what: String,
    },
    /// The requested backup set is not on the media.
    NoSuchSet {
        /// The position asked for.
        position: u32,
        /// How many sets the media hold.
        count: u32,
    },
    /// Bytes that are not this media's records follow its end (another media concatenated
    /// onto it, or other bytes) where more of the media was read for.
    PastEnd(Box<PastEnd>),
    /// The requested backup set is not on the media, and the device holds bytes past the end
    /// of the media (another media concatenated onto it, or other bytes).
    NoSuchSetPastEnd {
        /// The position asked for.
        position: u32,
        /// How many sets the media hold.
        count: u32,
        /// What follows the end of the media.
        past: Box<PastEnd>,
    },
    /// The media can be recognised but this operation cannot proceed on them
    /// (e.g. an encrypted SQL Server backup, or a log backup asked for its data stream).
    Unsupported {
        /// The device.
        device: String,
        /// Why, and what to do instead.
        what: String,
    },
    /// An encrypted backup set, and none of the keys given opens it (or none was given). Not
    /// damage: the media may be whole.
    KeyNeeded {
        /// The set.
        at: Location,
        /// What would open it: its recipients' fingerprints, a passphrase.
        needs: String,
        /// What was given ("no key was given", or the identities' fingerprints).
        given: String,
    },
    /// A request this build will not carry out as asked: a bad option value, an overwrite
    /// that needs a flag, a device in use. Never damage.
    Refused {
        /// Which kind of refusal.
        kind: Refusal,
        /// Why, and which flag overrides it where one exists.
        what: String,
    },
    /// A fault of this program, not of the media or the request: a worker thread panicked.
    Internal {
        /// What failed.
        what: String,
        /// The panic message, where there was one.
        detail: Option<String>,
    },
    /// The operation was interrupted (a signal).
    Interrupted,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// An option value or combination out of range.
    Usage,
    /// The device is not something media can be on (a directory).
    NotADevice,
    /// Media would be written to, or read from, a terminal.
    Terminal,
    /// Another bak process holds the device.
    Locked,
    /// The device holds data that is not bak media; `--format` overwrites it.
    Foreign,
    /// The devices do not fit the media set on them (another set, another family count).
    WrongMediaSet,
    /// A backup set has not expired; `--skip` overrides.
    NotExpired,
    /// The media are named otherwise; `--skip` overrides.
    WrongMediaName,
    /// Earlier sets are damaged, so appending after them is refused.
    DamagedMedia,
    /// The device cannot do what this needs (a positioned read on a pipe).
    Capability,
}

impl Error {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// A refusal of a kind, with its sentence.
    pub fn refused(kind: Refusal, what: impl Into<String>) -> Self {
        Error::Refused {
            kind,
            what: what.into(),
        }
    }

    /// A damaged record.
    pub fn corrupt(at: Location, what: impl Into<String>) -> Self {
        Error::Corrupt {
            at,
            what: what.into(),
            expected: None,
            found: None,
        }
    }

    /// A damaged record with expected and found values.
    pub fn mismatch(
        at: Location,
        what: impl Into<String>,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Error::Corrupt {
            at,
            what: what.into(),
            expected: Some(expected.to_string()),
            found: Some(found.to_string()),
        }
    }

    /// True when this error says the media are damaged or incomplete (exit code 1), as opposed
    /// to a usage or I/O error (exit code 2).
    pub fn is_media_damage(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::Truncated { .. }
                | Error::MediaSet { .. }
                | Error::PastEnd(_)
                | Error::NoSuchSetPastEnd { .. }
        )
    }

    /// The I/O error underneath, if this is one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the error is a broken pipe on output (the reader went away: end quietly).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// An I/O error in words, once: "no space left on device", not "No space left on device (os
/// error 28)".
pub fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(i)) => s[..i].to_string(),
        _ => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) if c.clone().next().is_some_and(|x| x.is_lowercase()) => {
            first.to_lowercase().chain(c).collect()
        }
        _ => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "{}: {op} failed: {}", path.display(), io_words(source))
            }
            Error::NotMedia { device, found } => {
                write!(
                    f,
                    "{device}: not backup media (neither bak nor SQL Server MTF): found {found}"
                )
            }
            Error::UnsupportedVersion {
                at,
                found,
                supported,
            } => write!(
                f,
                "{at}: unsupported format version {found} (this build reads {supported}); \
                 the media may be newer than this tool"
            ),
            Error::Corrupt {
                at,
                what,
                expected,
                found,
            } => {
                write!(f, "{at}: {what}")?;
                match (expected, found) {
                    (Some(e), Some(x)) => write!(f, " (expected {e}, found {x})"),
                    (Some(e), None) => write!(f, " (expected {e})"),
                    (None, Some(x)) => write!(f, " (found {x})"),
                    (None, None) => Ok(()),
                }
            }
            Error::Truncated { at, what } => write!(f, "{at}: media end before {what}"),
            Error::MediaSet { what } => f.write_str(what),
            Error::NoSuchSet { position, count } => write!(
                f,
                "backup set {position} is not on the media (they hold {count} set{})",
                if *count == 1 { "" } else { "s" }
            ),
            Error::PastEnd(p) => p.fmt(f),
            Error::NoSuchSetPastEnd {
                position,
                count,
                past,
            } => write!(
                f,
                "backup set {position} is not on the media (they hold {count} set{}); {past}",
                if *count == 1 { "" } else { "s" }
            ),
            Error::Unsupported { device, what } => write!(f, "{device}: {what}"),
            Error::KeyNeeded { at, needs, given } => write!(
                f,
                "{at}: the backup set is encrypted and no key given opens it ({given}); it \
                 opens with {needs}"
            ),
            Error::Refused { what, .. } => f.write_str(what),
            Error::Internal { what, detail } => {
                write!(f, "internal error: {what}")?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                f.write_str("; this is a bug in bak, please report it")
            }
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

// Display already says the cause of an I/O error in words; giving it again as `source` made
// every printed chain say it twice ("no space left on device: No space left on device (os
// error 28)"). The cause stays reachable through the `source` field.
impl std::error::Error for Error {}

/// bak-core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_and_io_are_told_apart() {
        let c = Error::corrupt(Location::device("a.bak").family(2).at(4096), "bad CRC");
        assert!(c.is_media_damage());
        assert_eq!(c.to_string(), "a.bak: family 2, offset 4096: bad CRC");
        let io = Error::io(
            "a.bak",
            "write",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(!io.is_media_damage());
        assert_eq!(
            io.to_string(),
            "a.bak: write failed: no space left on device"
        );
        let v = Error::UnsupportedVersion {
            at: Location::device("x"),
            found: "9.0".into(),
            supported: "1.x".into(),
        };
        assert!(!v.is_media_damage());
        assert!(v.to_string().contains("unsupported format version 9.0"));
    }

    fn second_media(device: &str, family_count: u16) -> PastEnd {
        PastEnd {
            at: Location::device(device).family(1),
            offset: 597793,
            len: Some(1000),
            beyond: Beyond::Media {
                media_set_id: "e7af8072-b51d-4ea4-81f4-dfe285e6b5b5".into(),
                same_media_set: false,
                family_number: 1,
                family_count,
            },
        }
    }

    #[test]
    fn past_end_says_where_what_and_how_to_reach_it() {
        let p = second_media("x.bak", 1);
        let s = p.to_string();
        assert!(s.starts_with(
            "x.bak: family 1, offset 597793: a second bak media begins here (media set \
             e7af8072-b51d-4ea4-81f4-dfe285e6b5b5, family 1 of 1; 1000 bytes to the end of the \
             device): media concatenated on one device, as `cat >>` makes, are not one media set"
        ));
        assert!(s.contains("`tail -c +597794 x.bak | bak-read -` restores its set 1"));
        assert!(s.contains("`tail -c +597794 x.bak > second.bak`"));
        // A path the shell would split is quoted; one that looks like an option is not one.
        let s = second_media("my disk/it's.bak", 1).to_string();
        assert!(
            s.contains("tail -c +597794 'my disk/it'\\''s.bak' |"),
            "{s}"
        );
        assert!(second_media("-x.bak", 1)
            .to_string()
            .contains("tail -c +597794 ./-x.bak |"));
        // A stream: the same stream cut; another family of a striped set: cut out only.
        let s = second_media("stdin", 1).to_string();
        assert!(s.contains("`... | tail -c +597794 | bak-read -`"), "{s}");
        let s = second_media("a.bak", 2).to_string();
        assert!(
            s.contains("family 1 of 2") && !s.contains("bak-read -"),
            "{s}"
        );
        assert!(
            s.contains("to give with the other families of its media set"),
            "{s}"
        );

        let mut b = PastEnd {
            beyond: Beyond::Bytes {
                first: "00000000".into(),
            },
            ..second_media("x.bak", 1)
        };
        assert_eq!(
            b.to_string(),
            "x.bak: family 1, offset 597793: 1000 bytes past the end of the media (not bak \
             records: first bytes 00000000)"
        );
        b.at.position = Some(2);
        b.len = None;
        assert_eq!(
            b.describe(),
            "bytes past the end of the media, where backup set 2 was not finished (not bak \
             records: first bytes 00000000)"
        );

        let e = Error::PastEnd(Box::new(p.clone()));
        assert!(e.is_media_damage());
        let e = Error::NoSuchSetPastEnd {
            position: 2,
            count: 1,
            past: Box::new(p.clone()),
        };
        assert!(e.is_media_damage());
        assert!(e
            .to_string()
            .starts_with("backup set 2 is not on the media (they hold 1 set); x.bak: family 1, offset 597793: a second bak media"));
        // Where the media go on after them, the same bytes are damage.
        let d = p.into_damage();
        assert!(matches!(d, Error::Corrupt { ref at, .. } if at.offset == Some(597793)));
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = Error::io("stdout", "write", std::io::ErrorKind::BrokenPipe.into());
        assert!(e.is_broken_pipe());
    }
}
