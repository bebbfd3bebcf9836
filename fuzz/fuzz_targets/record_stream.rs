//! The front-to-back record reader (what a restore from a pipe uses) over in-memory bytes fed
//! in short reads: every record it returns is parsed by its type, block payloads are skipped.
//! Input: one byte n, then n (mod 8) read sizes, then the stream.
#![no_main]

use bak_core::bytes::*;
use bak_core::internals::RecordReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize % 8).min(rest.len());
    let (pattern, stream) = rest.split_at(n);
    let at = bak_fuzz::at();
    let mut r = RecordReader::new(bak_fuzz::ShortReader::new(stream, pattern), 0, at.clone());
    let mut max_transfer = MAX_TRANSFER;
    let mut sealed = false;
    while let Ok(Some(rec)) = r.next_record() {
        assert_eq!(
            rec.offset + (RECORD_PREFIX_LEN + rec.body.len()) as u64,
            r.offset,
            "record reader offset does not follow the records"
        );
        let b = &rec.body[..];
        let ok = match rec.kind {
            RecordType::MediaHeader => MediaHeader::parse_body(b, &at).is_ok(),
            RecordType::SetMap => SetMapSlot::parse_body(b, &at).is_ok(),
            RecordType::SetHeader => match SetHeader::parse_body(b, &at) {
                Ok(h) => {
                    max_transfer = h.max_transfer;
                    true
                }
                Err(_) => false,
            },
            RecordType::LeadingConfig => match LeadingConfig::parse_body(b, &at) {
                Ok(l) => {
                    sealed = l.encryption != 0;
                    true
                }
                Err(_) => false,
            },
            RecordType::KeyRecord => KeyRecord::parse_body(b, &at).is_ok(),
            RecordType::BlockHeader => match BlockHeader::parse_body(b, &at) {
                Ok(h) if h.check_lengths(max_transfer, sealed, &at).is_ok() => {
                    r.skip(u64::from(h.stored_len), "block payload").is_ok()
                }
                _ => false,
            },
            RecordType::TrailingConfig => TrailingConfig::parse_body(b, &at).is_ok(),
            RecordType::Mbc => Mbc::parse_body(b, &at).is_ok(),
            RecordType::EndOfSet => EndOfSet::parse_body(b, &at).is_ok(),
        };
        if !ok {
            break;
        }
    }
});
