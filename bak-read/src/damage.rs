//! What a salvage (`--continue-after-error` on bak media) lost: the damage map in GNU
//! ddrescue's mapfile format, the `--json` lines, and the notes on standard error.

use std::io::Write;

use bak_core::{DigestCheck, LostBlock, SalvageSummary};

/// Byte ranges of the output, `(offset, length, good)`, in order, covering `0..len`; adjacent
/// ranges of one kind are merged.
pub fn ranges(lost: &[LostBlock], len: u64) -> Vec<(u64, u64, bool)> {
    let mut out: Vec<(u64, u64, bool)> = Vec::new();
    let mut push = |off: u64, n: u64, good: bool| {
        if n == 0 {
            return;
        }
        match out.last_mut() {
            Some(l) if l.2 == good && l.0 + l.1 == off => l.1 += n,
            _ => out.push((off, n, good)),
        }
    };
    let mut at = 0u64;
    for b in lost {
        let start = b.offset.min(len);
        let end = (b.offset + b.len).min(len);
        if start > at {
            push(at, start - at, true);
        }
        if end > start.max(at) {
            push(start.max(at), end - start.max(at), false);
        }
        at = at.max(end);
    }
    if len > at {
        push(at, len - at, true);
    }
    out
}

/// Write the damage map of an output of `len` bytes: `+` finished (restored), `-` bad (lost,
/// written as zeros), as `ddrescuelog` reads it.
pub fn write_map(w: &mut dyn Write, lost: &[LostBlock], len: u64) -> std::io::Result<()> {
    writeln!(
        w,
        "# Mapfile. Created by bak-read {} (--continue-after-error)",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(
        w,
        "# + : restored bytes; - : lost bytes, written to the output as zeros"
    )?;
    writeln!(w, "# current_pos  current_status  current_pass")?;
    let pos = lost.first().map_or(0, |b| b.offset.min(len));
    writeln!(w, "0x{pos:08X}     +               1")?;
    writeln!(w, "#      pos        size  status")?;
    for (off, n, good) in ranges(lost, len) {
        writeln!(
            w,
            "0x{off:08X}  0x{n:08X}  {}",
            if good { '+' } else { '-' }
        )?;
    }
    Ok(())
}

/// One JSON object per lost block (docs/OUTPUT.md).
pub fn json(w: &mut dyn Write, lost: &[LostBlock]) -> std::io::Result<()> {
    for b in lost {
        let v = serde_json::json!({
            "Sequence": b.seq,
            "Family": b.family,
            "Offset": b.offset,
            "Length": b.len,
            "Why": b.why.name(),
            "Detail": b.detail,
        });
        writeln!(w, "{v}")?;
    }
    Ok(())
}

/// The notes on standard error: the problems, the blocks lost (the first few), the digest.
pub fn notes(s: &SalvageSummary, out_name: &str, map: Option<&str>, to_stdout: bool) {
    const SHOWN: usize = 10;
    for p in &s.problems {
        bak_cli::say!("bak-read: {p}");
    }
    for b in s.lost.iter().take(SHOWN) {
        let fam = b
            .family
            .map_or("family unknown".to_string(), |f| format!("family {f}"));
        let detail = if b.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", b.detail)
        };
        bak_cli::say!(
            "bak-read: block {} ({fam}, bytes {}..{}) lost ({}){detail}",
            b.seq,
            b.offset,
            b.offset + b.len,
            b.why.name()
        );
    }
    if s.lost.len() > SHOWN {
        bak_cli::say!(
            "bak-read: ... and {} more lost blocks",
            s.lost.len() - SHOWN
        );
    }
    if s.exact() {
        return;
    }
    let zeros: u64 = s.lost.iter().map(|b| b.len).sum();
    bak_cli::say!(
        "bak-read: --continue-after-error: {} block{} ({zeros} bytes) lost and written as zeros, \
         {} problem{}; {out_name} holds {} bytes{}",
        s.lost.len(),
        if s.lost.len() == 1 { "" } else { "s" },
        s.problems.len(),
        if s.problems.len() == 1 { "" } else { "s" },
        s.original_bytes,
        match s.set_length {
            Some(_) => String::new(),
            None => " (the set's length is unknown: no trailing config was read)".into(),
        }
    );
    bak_cli::say!(
        "bak-read: end-to-end digest {}",
        match s.digest {
            DigestCheck::Holds => "holds",
            DigestCheck::Fails => "does not hold: the output is not the original",
            DigestCheck::NotChecked => "not checked: the output is not known to be the original",
        }
    );
    if to_stdout {
        match map {
            Some(m) => bak_cli::say!(
                "bak-read: the output went to standard output; the damage map {m} is the only \
                 record of which bytes are zeros"
            ),
            None => bak_cli::say!(
                "bak-read: the output went to standard output and no --damage-map was given; \
                 these messages are the only record of which bytes are zeros"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(seq: u64, len: u64) -> LostBlock {
        LostBlock {
            seq,
            family: None,
            offset: seq * 10,
            len,
            why: bak_core::LostWhy::NotFound,
            detail: String::new(),
        }
    }

    #[test]
    fn ranges_cover_the_output_and_merge_neighbours() {
        assert_eq!(ranges(&[], 0), vec![]);
        assert_eq!(ranges(&[], 25), vec![(0, 25, true)]);
        let l = [lost(1, 10), lost(2, 10), lost(4, 5)];
        assert_eq!(
            ranges(&l, 45),
            vec![
                (0, 10, true),
                (10, 20, false),
                (30, 10, true),
                (40, 5, false)
            ]
        );
        assert_eq!(ranges(&[lost(0, 10)], 10), vec![(0, 10, false)]);
    }

    #[test]
    fn the_map_names_every_range() {
        let mut v = Vec::new();
        write_map(&mut v, &[lost(1, 10)], 30).unwrap();
        let t = String::from_utf8(v).unwrap();
        let body: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "0x0000000A     +               1",
                "0x00000000  0x0000000A  +",
                "0x0000000A  0x0000000A  -",
                "0x00000014  0x0000000A  +"
            ]
        );
    }
}
