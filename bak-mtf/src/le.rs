//! Bounds-checked little-endian field access, the MTF checksum, dates, strings and GUIDs.
//!
//! Every accessor returns `Option`: media bytes are never indexed directly, so a short or
//! damaged record gives `None` (turned into an error by the caller), never a panic.

/// The u8 at `off`.
pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

/// The little-endian u16 at `off`.
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// The little-endian u32 at `off`.
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}

/// The little-endian u64 at `off`.
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Four bytes at `off` (a block or stream id).
pub(crate) fn id_at(b: &[u8], off: usize) -> Option<[u8; 4]> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(a)
}

/// XOR of the little-endian u16 words of `b` (an odd trailing byte counts as a low byte).
/// MTF's header checksum: the XOR over a whole header, checksum word included, is zero.
pub(crate) fn xor16(b: &[u8]) -> u16 {
    let mut x = 0u16;
    let mut it = b.chunks(2);
    for w in &mut it {
        let lo = w.first().copied().unwrap_or(0);
        let hi = w.get(1).copied().unwrap_or(0);
        x ^= u16::from_le_bytes([lo, hi]);
    }
    x
}

/// An id as printable text for messages ("MQDA", or hex when not ASCII).
pub(crate) fn id_text(id: [u8; 4]) -> String {
    if id.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        id.iter().map(|&c| c as char).collect()
    } else {
        format!("0x{:02x}{:02x}{:02x}{:02x}", id[0], id[1], id[2], id[3])
    }
}

/// The five packed bytes of an MTF_DATE_TIME, unpacked (big-endian bit order:
/// 14-bit year, 4 month, 5 day, 5 hour, 6 minute, 6 second). `None` for an all-zero date
/// (MTF's "no date") or a value that is no calendar date.
pub(crate) fn mtf_date(b: &[u8]) -> Option<time::PrimitiveDateTime> {
    let s = b.get(..5)?;
    let v = s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    if v == 0 {
        return None;
    }
    let year = i32::try_from(v >> 26).ok()?;
    let month = u8::try_from((v >> 22) & 0xf).ok()?;
    let day = u8::try_from((v >> 17) & 0x1f).ok()?;
    let hour = u8::try_from((v >> 12) & 0x1f).ok()?;
    let minute = u8::try_from((v >> 6) & 0x3f).ok()?;
    let second = u8::try_from(v & 0x3f).ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(hour, minute, second).ok()?;
    Some(time::PrimitiveDateTime::new(date, t))
}

/// The time zone byte of an SSET: 15-minute steps east of UTC; 127 means "local, unknown".
pub(crate) const LOCAL_TZ: i8 = 127;

/// An MTF date (the writer's local time) as an RFC 3339 UTC string. `tz` is the SSET time
/// zone byte: when it names an offset, the local time is moved to UTC; when it is unknown the
/// local time is printed as if it were UTC (nothing better can be said).
pub(crate) fn mtf_date_us(b: &[u8], tz: Option<i8>) -> Option<i64> {
    let local = mtf_date(b)?;
    let minutes = match tz {
        Some(z) if z != LOCAL_TZ && (-56..=56).contains(&z) => i64::from(z) * 15,
        _ => 0,
    };
    let utc = local
        .checked_sub(time::Duration::minutes(minutes))?
        .assume_utc();
    i64::try_from(utc.unix_timestamp_nanos() / 1000).ok()
}

/// Text of an MTF string (size, offset) pair inside `block`, decoded per the block's string
/// type (1 ANSI, 2 UTF-16LE). Trailing NULs are dropped; an empty string gives `None`, so does
/// a pair that points outside the block (the caller reports damage separately).
pub(crate) fn mtf_string(block: &[u8], pair_off: usize, string_type: u8) -> Option<String> {
    let size = usize::from(u16_at(block, pair_off)?);
    let off = usize::from(u16_at(block, pair_off.checked_add(2)?)?);
    if size == 0 {
        return None;
    }
    let raw = block.get(off..off.checked_add(size)?)?;
    let s = decode_text(raw, string_type);
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// Bytes as text: UTF-16LE for string type 2, Latin-1 otherwise; trailing NULs dropped.
pub(crate) fn decode_text(raw: &[u8], string_type: u8) -> String {
    let s = if string_type == 2 {
        utf16le(raw)
    } else {
        raw.iter().map(|&c| c as char).collect()
    };
    s.trim_end_matches('\0').to_string()
}

/// UTF-16LE bytes as a String; unpaired surrogates become U+FFFD, an odd last byte is dropped.
pub(crate) fn utf16le(raw: &[u8]) -> String {
    let words = raw
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]));
    char::decode_utf16(words)
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect()
}

/// A Microsoft GUID (first three fields little-endian) at `off`, as 8-4-4-4-12 lowercase.
pub(crate) fn ms_guid(b: &[u8], off: usize) -> Option<String> {
    let s = b.get(off..off.checked_add(16)?)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Some(uuid::Uuid::from_bytes_le(a).hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounds_checked() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(u16_at(&b, 0), Some(0x0201));
        assert_eq!(u32_at(&b, 4), Some(0x0807_0605));
        assert_eq!(u64_at(&b, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(u16_at(&b, 7), None);
        assert_eq!(u64_at(&b, 1), None);
        assert_eq!(u32_at(&b, usize::MAX), None);
        assert_eq!(u8_at(&b, 8), None);
    }

    #[test]
    fn checksum_of_a_sealed_header_is_zero() {
        let mut h = vec![0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0];
        let c = xor16(&h[..6]);
        h[6..8].copy_from_slice(&c.to_le_bytes());
        assert_eq!(xor16(&h), 0);
    }

    fn rfc3339(us: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(us / 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    #[test]
    fn date_decodes_the_northwind_media_date() {
        // TAPE bytes 88..93 of northwind_CConocimientos.bak are 1f a3 13 2e 8a; unpacked by hand:
        // 2024-12-09 18:58:10. Its SSET time zone byte is 0xec = -20 (UTC-5).
        let b = [0x1f, 0xa3, 0x13, 0x2e, 0x8a];
        assert_eq!(
            mtf_date_us(&b, None).map(rfc3339).as_deref(),
            Some("2024-12-09T18:58:10Z")
        );
        assert_eq!(
            mtf_date_us(&b, Some(-20)).map(rfc3339).as_deref(),
            Some("2024-12-09T23:58:10Z")
        );
        assert_eq!(
            mtf_date_us(&b, Some(LOCAL_TZ)).map(rfc3339).as_deref(),
            Some("2024-12-09T18:58:10Z")
        );
        assert_eq!(mtf_date(&[0; 5]), None);
        // Month 15 is no month.
        assert_eq!(mtf_date(&[0x1f, 0xa3, 0xd3, 0x2e, 0x8a]), None);
        assert_eq!(mtf_date(&[1, 2]), None);
    }

    #[test]
    fn strings_and_guids() {
        let mut blk = vec![0u8; 8];
        blk[0] = 6; // size
        blk[2] = 8; // offset
        blk.extend_from_slice(&[b'a', 0, b'b', 0, 0, 0]);
        assert_eq!(mtf_string(&blk, 0, 2).as_deref(), Some("ab"));
        blk[2] = 200;
        assert_eq!(mtf_string(&blk, 0, 2), None);
        // RAID GUID bytes of northwind (TAPE+0xa2): 05 44 8e 25 73 82 0d 41 aa 5f 7f 0f f5 3b 9a 3e.
        let g = [
            0x05, 0x44, 0x8e, 0x25, 0x73, 0x82, 0x0d, 0x41, 0xaa, 0x5f, 0x7f, 0x0f, 0xf5, 0x3b,
            0x9a, 0x3e,
        ];
        assert_eq!(
            ms_guid(&g, 0).as_deref(),
            Some("258e4405-8273-410d-aa5f-7f0ff53b9a3e")
        );
        assert_eq!(ms_guid(&g, 1), None);
        assert_eq!(id_text(*b"MQDA"), "MQDA");
        assert_eq!(id_text([0, 1, 2, 3]), "0x00010203");
    }
}
