//! The stated limits of what a caller may ask for: the text fields a person names, and the
//! counts that size threads and memory. They are checked before anything is opened or written,
//! so a request beyond them is refused whole instead of making media that cannot be read.
//!
//! Text limits are SQL Server's own (BACKUP's NAME, DESCRIPTION, MEDIANAME and
//! MEDIADESCRIPTION are `nvarchar(128)` and `nvarchar(255)`), counted in characters (Unicode
//! scalar values). At 4 bytes per character at most, every field then fits its record with room
//! to spare (docs/FORMAT.md, "Strings").

use crate::error::{Error, Refusal, Result};

/// Characters in a backup set name or a media name (SQL Server: `nvarchar(128)`).
pub const NAME_MAX_CHARS: usize = 128;
/// Characters in a backup set or media description (SQL Server: `nvarchar(255)`).
pub const DESCRIPTION_MAX_CHARS: usize = 255;
/// Bytes kept of a field the tools fill in themselves (user, host, the input's path, the
/// software's name): a longer value is cut at a character boundary, never refused.
pub const INFO_MAX_BYTES: usize = 1024;

/// Worker threads an operation may be given.
pub const MAX_THREADS: usize = 256;
/// Buffers in an operation's pool.
pub const MAX_BUFFERS: usize = 1024;
/// Bytes the pool's buffers may hold together (buffers x block size).
pub const MAX_POOL_BYTES: u64 = 4 << 30;

/// Threads when none are asked for: one per core, at most [`MAX_THREADS`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |x| x.get())
        .min(MAX_THREADS)
}

/// Refuse `text` longer than `max_chars` characters; `what` names the field in the message
/// (a flag, for a command-line tool).
pub fn check_text(what: &str, text: &str, max_chars: usize) -> Result<()> {
    let n = text.chars().count();
    if n > max_chars {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "{what} is {n} characters long; the limit is {max_chars} (nothing was written)"
            ),
        ));
    }
    Ok(())
}

/// Refuse a count outside `1..=max` (`min..=max`); `what` names it in the message.
pub fn check_count(what: &str, n: usize, min: usize, max: usize) -> Result<()> {
    if n < min || n > max {
        return Err(Error::refused(
            Refusal::Usage,
            format!("{what} {n} is out of range: use {min} to {max}"),
        ));
    }
    Ok(())
}

/// Refuse a pool of `buffers` buffers of `block` bytes that would hold more than
/// [`MAX_POOL_BYTES`].
pub fn check_pool(what: &str, buffers: usize, block: u64) -> Result<()> {
    let bytes = (buffers as u64).saturating_mul(block);
    if bytes > MAX_POOL_BYTES {
        return Err(Error::refused(
            Refusal::Usage,
            format!(
                "{what} {buffers} of {} KiB blocks would hold {} MiB; the limit is {} MiB",
                block >> 10,
                bytes >> 20,
                MAX_POOL_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_counted_in_characters() {
        assert!(check_text("--name", &"é".repeat(128), NAME_MAX_CHARS).is_ok());
        let e = check_text("--name", &"é".repeat(40_000), NAME_MAX_CHARS).unwrap_err();
        assert!(e
            .to_string()
            .contains("--name is 40000 characters long; the limit is 128"));
    }

    #[test]
    fn cut_keeps_utf8_whole() {
        let s = "aé".repeat(10);
        for max in 0..s.len() + 2 {
            let c = cut(&s, max);
            assert!(c.len() <= max);
            assert!(s.starts_with(c));
        }
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("é", 1), "");
    }

    #[test]
    fn counts_and_pools_are_bounded() {
        assert!(check_count("--threads", 0, 1, MAX_THREADS).is_err());
        assert!(check_count("--threads", 20_000, 1, MAX_THREADS).is_err());
        assert!(check_count("--threads", 256, 1, MAX_THREADS).is_ok());
        assert!(check_pool("--buffer-count", 1024, 4 << 20).is_ok());
        assert!(check_pool("--buffer-count", 1025, 4 << 20).is_err());
    }
}
