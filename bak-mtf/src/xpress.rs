//! Decoder of Microsoft's Xpress Huffman compression ([MS-XCA] 2.2.4), used by compressed SQL
//! Server backups.
//!
//! A payload is a run of blocks. Each block opens with 256 bytes holding the 4-bit code lengths
//! of 512 symbols (the even symbol in the low nibble), followed by a bit stream read as
//! little-endian 16-bit words, most significant bit first. Symbols below 256 are literal bytes;
//! the others are matches: the low nibble is the length less 3 (15 means the length continues in
//! whole bytes placed between the words), the high nibble the number of distance bits. A block
//! covers 65536 bytes of output (a match may run past that), and the next block's table starts
//! where the bit reader stands.
//!
//! The decoder is strict about the code (it must be a complete prefix code, as the specification
//! asks) and lenient about the end of the input: bits past the end read as zero, and decoding
//! stops as soon as the output is full, whatever follows (SQL Server ends each payload with an
//! end-of-stream symbol and padding).

// What the chunks look like (observed in the three compressed fixtures; the container parser
// owns this). The file starts with "MSSQLBAK", u32 2, u32 3, zeros; the first chunk is at 0x1e0.
// A chunk is a 28-byte header and its payload:
//   0      u8   0x21, the chunk marker
//   1      u8   uncompressed size / 512 (2 = the 1024-byte TAPE block, 0x80 = 65536; seen: 2, 4,
//               6, 14, 16, 50, 128)
//   2..4   u16  payload length; the next chunk follows the payload directly
//   4..12  u64  } vary from chunk to chunk and read like leftover pointers (0x7fff12c4a41d,
//   12..20 u64  } 0x23a71734160) or zero: treat as unused
//   20..24      zero in every chunk
//   24..28 u32  differs per chunk and repeats when the payload repeats (0xa00 and 0x6fede of
//               cmp2019_full_checksum.bak): a check value of some kind, but not CRC-32,
//               CRC-32C or Adler-32 of the payload or of the output
// A run of chunks ends with a record whose first byte is 0x24 or 0x2c (the 0x2c one carries a
// table of uncompressed/compressed offset pairs), then zeros up to a boundary of the soft
// filemark size (512 or 4096; docs/MTF.md), where an SFMB block follows. cmp2019_full_checksum.bak holds 55 chunks decoding to
// 3234816 bytes; cmp2019_log.bak 13; cmp2014_sharepoint_2sets.bak 459; all decode to their size.
// xpress-huffman 0.1.3 came up short on the chunks at 0x600 and 0x718e1 of the first, but under
// the specification's reader (32 bits ahead) their bits do not run out: it never reads past the
// payload on any chunk of these files.

use std::fmt;

/// Bytes of code lengths that open each block: 512 symbols, 4 bits each.
const TABLE_BYTES: usize = 256;
/// The longest code the format allows.
const MAX_CODE_BITS: u32 = 15;
/// Bits the first-level decode table resolves. Its 2^12 entries (8 KiB) stay in the L1 cache,
/// where one table for all 15 bits (64 KiB) does not (that one decoded literal-heavy data a
/// fifth slower); codes longer than this are rare by construction.
const PRIMARY_BITS: u32 = 12;
/// Bits a second-level table resolves after the first level's.
const SUB_BITS: u32 = MAX_CODE_BITS - PRIMARY_BITS;
/// Each second-level table holds at least one of the 512 symbols.
const MAX_SUBTABLES: usize = 512;
/// Output bytes covered by one block's code table.
const BLOCK_OUTPUT: usize = 1 << 16;
/// Largest size `decompress` allocates: SQL Server chunks hold at most 255 × 512 bytes, so
/// anything bigger is a damaged header, not a reason to allocate.
const MAX_ALLOC: usize = 1 << 20;

/// Error of the Xpress Huffman decoder: what is wrong and at which byte of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XpressError {
    /// Byte offset in the payload where the decoder stood when it found the fault.
    pub offset: usize,
    /// What is wrong, e.g. "invalid Huffman table (incomplete code lengths)".
    pub what: &'static str,
}

impl fmt::Display for XpressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {} of the payload: {}", self.offset, self.what)
    }
}

impl std::error::Error for XpressError {}

fn error(offset: usize, what: &'static str) -> XpressError {
    XpressError { offset, what }
}

/// Decode `input` (one compressed payload) into exactly `output.len()` bytes.
///
/// Decoding stops as soon as `output` is full, so trailing input (an end-of-stream symbol,
/// padding) is ignored, and a bit stream that ends early is read on as zero bits. Never panics:
/// damage gives an [`XpressError`].
pub fn decompress_into(input: &[u8], output: &mut [u8]) -> Result<(), XpressError> {
    // On the stack: 16 KiB, whatever the input says.
    let mut table = DecodeTable::new();
    let mut in_pos = 0usize;
    let mut out_pos = 0usize;
    while out_pos < output.len() {
        let lengths = input
            .get(in_pos..)
            .and_then(|rest| rest.get(..TABLE_BYTES))
            .ok_or_else(|| error(in_pos, "Huffman table truncated"))?;
        table.build(lengths).map_err(|what| error(in_pos, what))?;
        let mut reader = BitReader::new(input, in_pos.saturating_add(TABLE_BYTES));
        let block_end = out_pos.saturating_add(BLOCK_OUTPUT).min(output.len());
        out_pos = decode_block(&table, &mut reader, output, out_pos, block_end)?;
        in_pos = reader.pos;
    }
    Ok(())
}

/// Convenience: allocate `out_len` bytes and decode `input` into them.
///
/// Refuses an `out_len` over 1 MiB with an error rather than allocate it: no SQL Server chunk
/// comes near that, so such a size comes from a damaged header.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, XpressError> {
    if out_len > MAX_ALLOC {
        return Err(error(0, "uncompressed size over 1 MiB"));
    }
    let mut output = vec![0u8; out_len];
    decompress_into(input, &mut output)?;
    Ok(output)
}

/// A canonical Huffman decode table in two levels, indexed by the next 15 bits of the stream.
/// Entries are `symbol << 4 | code length`; a first-level entry of length 0 instead names the
/// second-level table (`index << 4`) that resolves the codes longer than [`PRIMARY_BITS`].
struct DecodeTable {
    primary: [u16; 1 << PRIMARY_BITS],
    secondary: [u16; MAX_SUBTABLES << SUB_BITS],
}

impl DecodeTable {
    fn new() -> Self {
        DecodeTable {
            primary: [0; 1 << PRIMARY_BITS],
            secondary: [0; MAX_SUBTABLES << SUB_BITS],
        }
    }

    /// Build from a block's 256 bytes of code lengths. Canonical order (by length, then
    /// symbol) lays the codes out as consecutive runs of a 2^15 space, a code of length `n`
    /// owning 2^(15 - n) of it; the runs must tile the space exactly, or some bit pattern would
    /// decode to nothing (incomplete) or to two symbols (over-subscribed).
    fn build(&mut self, lengths: &[u8]) -> Result<(), &'static str> {
        // The even symbol of each pair sits in the low nibble.
        let length_of = |symbol: usize| {
            let pair = lengths.get(symbol / 2).copied().unwrap_or(0);
            usize::from((pair >> (4 * (symbol & 1))) & 15)
        };
        let mut count = [0usize; 16];
        for symbol in 0..2 * lengths.len() {
            count[length_of(symbol)] += 1;
        }
        let mut used = 0usize;
        for (len, &n) in count.iter().enumerate().skip(1) {
            used += n << (MAX_CODE_BITS as usize - len);
        }
        if used > 1 << MAX_CODE_BITS {
            return Err("invalid Huffman table (over-subscribed code lengths)");
        }
        if used < 1 << MAX_CODE_BITS {
            return Err("invalid Huffman table (incomplete code lengths)");
        }

        // Counting sort of the coded symbols into canonical order.
        let mut order = [0u16; 512];
        let mut next = [0usize; 16];
        let mut coded = 0;
        for (len, &n) in count.iter().enumerate().skip(1) {
            next[len] = coded;
            coded += n;
        }
        for symbol in 0..2 * lengths.len() {
            let len = length_of(symbol);
            if len > 0 {
                if let Some(slot) = order.get_mut(next[len]) {
                    *slot = symbol as u16;
                }
                next[len] += 1;
            }
        }

        let mut start = 0usize;
        let mut prefix_in_use = usize::MAX;
        let mut subtables = 0usize;
        for &symbol in order.iter().take(coded) {
            let len = length_of(usize::from(symbol));
            let span = 1usize << (MAX_CODE_BITS as usize - len);
            // symbol < 512 and len < 16: 13 bits.
            let entry = (symbol << 4) | len as u16;
            if len <= PRIMARY_BITS as usize {
                // A short code's run is aligned to whole first-level entries.
                let run = start >> SUB_BITS..(start + span) >> SUB_BITS;
                if let Some(run) = self.primary.get_mut(run) {
                    run.fill(entry);
                }
            } else {
                // Long codes sharing a first-level prefix are neighbours in canonical order.
                let prefix = start >> SUB_BITS;
                if prefix != prefix_in_use {
                    prefix_in_use = prefix;
                    if let Some(link) = self.primary.get_mut(prefix) {
                        *link = (subtables as u16) << 4;
                    }
                    subtables += 1;
                }
                let base = (subtables - 1) << SUB_BITS;
                let low = start & ((1 << SUB_BITS) - 1);
                if let Some(run) = self.secondary.get_mut(base + low..base + low + span) {
                    run.fill(entry);
                }
            }
            start += span;
        }
        Ok(())
    }

    /// The entry for the code at the top of `bits`.
    #[inline(always)]
    fn lookup(&self, bits: u32) -> u16 {
        let index = (bits >> (32 - PRIMARY_BITS)) as usize;
        let entry = self.primary.get(index).copied().unwrap_or(0);
        if entry & 15 != 0 {
            return entry;
        }
        let low = (bits >> (32 - MAX_CODE_BITS)) as usize & ((1 << SUB_BITS) - 1);
        let index = (usize::from(entry >> 4) << SUB_BITS) | low;
        self.secondary.get(index).copied().unwrap_or(0)
    }
}

/// The specification's bit reader, kept exactly: 32 bits in hand, refilled 16 at a time, with
/// the match-length bytes read at the same position as the next word. Any other buffering
/// would move where those bytes (and the next block's table) are looked for.
struct BitReader<'a> {
    input: &'a [u8],
    /// Where the next word or length byte is read (the spec's CurrentPosition). May pass the
    /// end of `input`: words from there read as zero.
    pos: usize,
    /// Unread bits, left-aligned; the top `16 + extra` of them are real.
    bits: u32,
    /// Bits in hand beyond the 16 always kept; negative means a refill is due.
    extra: i32,
}

impl<'a> BitReader<'a> {
    fn new(input: &'a [u8], pos: usize) -> Self {
        let mut reader = BitReader {
            input,
            pos,
            bits: 0,
            extra: 16,
        };
        let high = reader.next_word();
        let low = reader.next_word();
        reader.bits = (high << 16) | low;
        reader
    }

    #[inline(always)]
    fn next_word(&mut self) -> u32 {
        let word = match self.input.get(self.pos..) {
            Some([low, high, ..]) => u32::from(u16::from_le_bytes([*low, *high])),
            Some([low]) => u32::from(*low),
            _ => 0,
        };
        self.pos = self.pos.saturating_add(2);
        word
    }

    /// The next `n` bits (1..=15) without consuming them.
    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        self.bits >> (32 - n)
    }

    /// Drop `n` bits (0..=15); at least 16 remain in hand afterwards.
    #[inline(always)]
    fn skip(&mut self, n: u32) {
        self.bits <<= n;
        self.extra -= n as i32;
        if self.extra < 0 {
            let word = self.next_word();
            self.bits |= word << self.extra.unsigned_abs();
            self.extra += 16;
        }
    }

    /// Length bytes are real data: running out of them is damage, not padding.
    fn take<const N: usize>(&mut self) -> Result<[u8; N], XpressError> {
        let bytes = self
            .input
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .ok_or_else(|| error(self.pos, "match length past the end of the payload"))?;
        self.pos += N;
        Ok(bytes)
    }

    /// The length (less 3) of a match whose symbol said 15: one byte, or 255 then a u16, or
    /// 255, a zero u16 and then a u32.
    fn long_length(&mut self) -> Result<usize, XpressError> {
        let [byte] = self.take::<1>()?;
        if byte < 255 {
            return Ok(usize::from(byte) + 15);
        }
        let at = self.pos;
        let mut len = u32::from(u16::from_le_bytes(self.take::<2>()?));
        if len == 0 {
            len = u32::from_le_bytes(self.take::<4>()?);
        }
        if len < 15 {
            // The short forms cover these; the spec calls the long form for them invalid.
            return Err(error(at, "invalid match length"));
        }
        Ok(usize::try_from(len).unwrap_or(usize::MAX))
    }
}

/// Decode one block's symbols into `output` from `out_pos` until `block_end` is reached (a
/// match may carry past it, up to the end of `output`). Returns the new output position.
fn decode_block(
    table: &DecodeTable,
    reader: &mut BitReader<'_>,
    output: &mut [u8],
    mut out_pos: usize,
    block_end: usize,
) -> Result<usize, XpressError> {
    while out_pos < block_end {
        let entry = table.lookup(reader.bits);
        reader.skip(u32::from(entry & 15));
        let symbol = entry >> 4;
        if symbol < 256 {
            if let Some(slot) = output.get_mut(out_pos) {
                *slot = symbol as u8;
            }
            out_pos += 1;
            continue;
        }
        let symbol = symbol - 256;
        let mut len = usize::from(symbol & 15);
        if len == 15 {
            len = reader.long_length()?;
        }
        let len = len.saturating_add(3);
        let distance_bits = u32::from(symbol >> 4);
        let distance = if distance_bits == 0 {
            1
        } else {
            (1usize << distance_bits) + reader.peek(distance_bits) as usize
        };
        reader.skip(distance_bits);
        if distance > out_pos {
            return Err(error(
                reader.pos,
                "match distance before the start of the output",
            ));
        }
        // The output's end is the only hard stop: a match decoded from the zero bits past the
        // payload's end may ask for more than is left.
        let len = len.min(output.len().saturating_sub(out_pos));
        copy_match(output, out_pos, distance, len)
            .ok_or_else(|| error(reader.pos, "match outside the output"))?;
        out_pos += len;
    }
    Ok(out_pos)
}

/// Copy `len` bytes from `distance` back to `dst`; the ranges overlap when `distance < len`,
/// which repeats the last `distance` bytes. `None` only if the caller's bounds were wrong.
#[inline(always)]
fn copy_match(output: &mut [u8], dst: usize, distance: usize, len: usize) -> Option<()> {
    let src = dst.checked_sub(distance)?;
    if distance == 1 {
        let byte = *output.get(src)?;
        output.get_mut(dst..dst.checked_add(len)?)?.fill(byte);
        return Some(());
    }
    // Copy in pieces no longer than the gap between source and destination, so each piece
    // reads bytes already written; the gap doubles each time, keeping the pieces few.
    let mut done = 0;
    while done < len {
        let at = dst + done;
        let n = (len - done).min(at - src);
        let (before, after) = output.split_at_mut_checked(at)?;
        after
            .get_mut(..n)?
            .copy_from_slice(before.get(src..src + n)?);
        done += n;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/sqlserver"
    );
    const FULL: &str = "cmp2019_full_checksum.bak";
    const LOG: &str = "cmp2019_log.bak";
    const CHUNK_HEADER: usize = 28;

    fn fixture(name: &str) -> Option<Vec<u8>> {
        let path = format!("{FIXTURES}/{name}");
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("skipping: SQL Server fixture {path} not readable ({e})");
                None
            }
        }
    }

    /// The chunk at `at`: (uncompressed size, payload).
    fn chunk_at(file: &[u8], at: usize) -> (usize, &[u8]) {
        let header = &file[at..at + CHUNK_HEADER];
        assert_eq!(header[0], 0x21, "chunk marker at {at:#x}");
        let size = usize::from(header[1]) * 512;
        let payload_len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let start = at + CHUNK_HEADER;
        (size, &file[start..start + payload_len])
    }

    /// Every chunk of the file, found as observed: chunks follow each other directly; a run
    /// ends with a 0x24 or 0x2c record, after which the next chunk starts at a 512-byte
    /// boundary (SFMB blocks and the record's tail in between).
    fn all_chunks(file: &[u8]) -> Vec<(usize, usize, &[u8])> {
        let mut chunks = Vec::new();
        let mut pos = 0x1e0;
        while pos + CHUNK_HEADER <= file.len() {
            if file[pos] == 0x21 {
                let (size, payload) = chunk_at(file, pos);
                chunks.push((pos, size, payload));
                pos += CHUNK_HEADER + payload.len();
                continue;
            }
            assert!(
                file[pos] == 0x24 || file[pos] == 0x2c,
                "neither chunk nor end record at {pos:#x}"
            );
            pos = (pos / 512 + 1) * 512;
            while pos < file.len() && file[pos] != 0x21 {
                pos += 512;
            }
        }
        chunks
    }

    fn xor_words(bytes: &[u8]) -> u16 {
        bytes
            .chunks_exact(2)
            .fold(0, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
    }

    #[test]
    fn first_chunk_is_the_tape_block() {
        let Some(file) = fixture(FULL) else { return };
        let (size, payload) = chunk_at(&file, 0x1e0);
        assert_eq!(size, 1024);
        let out = decompress(payload, size).unwrap();
        assert_eq!(&out[..4], b"TAPE");
        assert_eq!(
            xor_words(&out[..52]),
            0,
            "TAPE descriptor block header checksum"
        );
    }

    #[test]
    fn chunks_another_decoder_left_short_fill() {
        // xpress-huffman 0.1.3 came up 2 and 1 bytes short on these two. Each starts with a
        // descriptor block or stream header and ends with a 22-byte stream header 24 bytes
        // before its end; all of them check.
        let Some(file) = fixture(FULL) else { return };
        for (at, want, first, first_len, last) in [
            (0x600, 7168, b"SSET", 52, b"MQDA"),
            (0x718e1, 2048, b"CSUM", 22, b"MQTL"),
        ] {
            let (size, payload) = chunk_at(&file, at);
            assert_eq!(size, want);
            let out = decompress(payload, size).unwrap();
            assert_eq!(out.len(), want);
            assert_eq!(&out[..4], first, "chunk at {at:#x}");
            assert_eq!(xor_words(&out[..first_len]), 0, "chunk at {at:#x}");
            let tail = &out[want - 24..want - 2];
            assert_eq!(&tail[..4], last, "chunk at {at:#x}");
            assert_eq!(xor_words(tail), 0, "chunk at {at:#x}");
        }
    }

    #[test]
    fn every_chunk_of_the_fixtures_decodes_to_its_size() {
        for (name, count, bytes) in [(FULL, 55, 3_234_816), (LOG, 13, 609_280)] {
            let Some(file) = fixture(name) else { continue };
            let chunks = all_chunks(&file);
            assert_eq!(chunks.len(), count, "{name}");
            if name == FULL {
                let found: Vec<usize> = chunks.iter().map(|c| c.0).collect();
                assert!(found.contains(&0x600) && found.contains(&0x718e1));
            }
            let mut total = 0;
            for (at, size, payload) in chunks {
                let out = decompress(payload, size)
                    .unwrap_or_else(|e| panic!("{name}, chunk at {at:#x} ({size} bytes): {e}"));
                assert_eq!(out.len(), size);
                total += size;
            }
            assert_eq!(total, bytes, "{name}");
        }
    }

    // A test-only encoder. It mirrors the decoder's reader to place each 16-bit word where the
    // decoder will fetch it, between the length bytes, which is all the format asks.

    enum Token {
        Literal(u8),
        Match { len: usize, distance: usize },
    }

    struct Encoder {
        out: Vec<u8>,
        codes: Vec<(u32, u32)>,
        bits: Vec<bool>,
        slots: Vec<usize>,
        extra: i32,
    }

    impl Encoder {
        fn new() -> Self {
            Encoder {
                out: Vec::new(),
                codes: Vec::new(),
                bits: Vec::new(),
                slots: Vec::new(),
                extra: 0,
            }
        }

        fn start_block(&mut self, lengths: &[u8; 512]) {
            for pair in lengths.chunks_exact(2) {
                self.out.push(pair[0] | (pair[1] << 4));
            }
            // Canonical codes in the spec's order: by length, then symbol.
            self.codes = vec![(0, 0); 512];
            let mut code = 0u32;
            for len in 1..=15u8 {
                for (symbol, _) in lengths.iter().enumerate().filter(|(_, &l)| l == len) {
                    self.codes[symbol] = (code >> (15 - len), u32::from(len));
                    code += 1 << (15 - len);
                }
            }
            assert_eq!(code, 1 << 15, "test table must be a complete code");
            self.bits.clear();
            self.slots.clear();
            self.reserve_word();
            self.reserve_word();
            self.extra = 16;
        }

        fn reserve_word(&mut self) {
            self.slots.push(self.out.len());
            self.out.extend([0, 0]);
        }

        fn put_bits(&mut self, value: u32, n: u32) {
            for i in (0..n).rev() {
                self.bits.push(value >> i & 1 == 1);
            }
            self.extra -= n as i32;
            if self.extra < 0 {
                self.reserve_word();
                self.extra += 16;
            }
        }

        fn symbol(&mut self, symbol: usize) {
            let (code, len) = self.codes[symbol];
            assert!(len > 0, "symbol {symbol} has no code in this table");
            self.put_bits(code, len);
        }

        fn token(&mut self, token: &Token) {
            match *token {
                Token::Literal(byte) => self.symbol(usize::from(byte)),
                Token::Match { len, distance } => {
                    let distance_bits = distance.ilog2();
                    let short = (len - 3).min(15);
                    self.symbol(256 + short + ((distance_bits as usize) << 4));
                    if short == 15 {
                        let rest = len - 3;
                        if rest - 15 < 255 {
                            self.out.push((rest - 15) as u8);
                        } else if rest <= 0xffff {
                            self.out.push(255);
                            self.out.extend((rest as u16).to_le_bytes());
                        } else {
                            self.out.push(255);
                            self.out.extend([0, 0]);
                            self.out.extend((rest as u32).to_le_bytes());
                        }
                    }
                    let low = distance - (1 << distance_bits);
                    self.put_bits(low as u32, distance_bits);
                }
            }
        }

        fn end_block(&mut self) {
            for (i, &slot) in self.slots.iter().enumerate() {
                let mut word = 0u16;
                for bit in 0..16 {
                    let set = self.bits.get(i * 16 + bit).copied().unwrap_or(false);
                    word = word << 1 | u16::from(set);
                }
                self.out[slot..slot + 2].copy_from_slice(&word.to_le_bytes());
            }
            assert!(self.bits.len() <= self.slots.len() * 16);
        }
    }

    fn token_len(token: &Token) -> usize {
        match token {
            Token::Literal(_) => 1,
            Token::Match { len, .. } => *len,
        }
    }

    /// Encode `tokens` with one code table per 65536 output bytes, as the decoder expects.
    fn encode(tokens: &[Token], lengths: &[u8; 512]) -> Vec<u8> {
        let mut encoder = Encoder::new();
        let mut block_start = 0;
        let mut produced = 0;
        encoder.start_block(lengths);
        for token in tokens {
            if produced - block_start >= BLOCK_OUTPUT {
                encoder.end_block();
                encoder.start_block(lengths);
                block_start = produced;
            }
            encoder.token(token);
            produced += token_len(token);
        }
        encoder.end_block();
        encoder.out
    }

    /// Greedy LZ77 with one candidate per 3-byte prefix: weak, but it makes every kind of match.
    fn tokenize(data: &[u8], lengths: &[u8; 512]) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut last: HashMap<[u8; 3], usize> = HashMap::new();
        let mut i = 0;
        while i < data.len() {
            let mut best = None;
            if let Some(key) = data.get(i..i + 3) {
                let key = [key[0], key[1], key[2]];
                if let Some(&j) = last.get(&key) {
                    let distance = i - j;
                    let mut len = 0;
                    while i + len < data.len() && data[j + len] == data[i + len] {
                        len += 1;
                    }
                    if distance < 65536 {
                        let symbol = 256 + (len - 3).min(15) + ((distance.ilog2() as usize) << 4);
                        if lengths[symbol] != 0 {
                            best = Some((len, distance));
                        }
                    }
                }
                last.insert(key, i);
            }
            match best {
                Some((len, distance)) => {
                    tokens.push(Token::Match { len, distance });
                    i += len;
                }
                None => {
                    tokens.push(Token::Literal(data[i]));
                    i += 1;
                }
            }
        }
        tokens
    }

    fn round_trip(data: &[u8], lengths: &[u8; 512]) {
        let payload = encode(&tokenize(data, lengths), lengths);
        let out = decompress(&payload, data.len()).unwrap();
        assert!(out == data, "round trip of {} bytes differs", data.len());
    }

    /// Every symbol 9 bits long: 512 × 2^6 fills the table exactly.
    fn flat_lengths() -> [u8; 512] {
        [9; 512]
    }

    /// Literals 0..64 at 7 bits, 64..192 at 9, the rest of the literals and the matches with
    /// up to 11 distance bits at 10; matches with 12..15 distance bits have no code.
    fn mixed_lengths() -> [u8; 512] {
        let mut lengths = [0u8; 512];
        for (symbol, len) in lengths.iter_mut().enumerate() {
            *len = match symbol {
                0..64 => 7,
                64..192 => 9,
                192..448 => 10,
                _ => 0,
            };
        }
        lengths
    }

    /// A skewed code: 'a' 1 bit, 'b' 2 bits, ... down to two 15-bit codes.
    fn skewed_lengths() -> [u8; 512] {
        let mut lengths = [0u8; 512];
        for i in 0..15u8 {
            lengths[usize::from(b'a' + i)] = i + 1;
        }
        lengths[usize::from(b'a' + 15)] = 15;
        lengths
    }

    fn sample_data(len: usize) -> Vec<u8> {
        let text = b"The quick brown fox jumps over the lazy dog. 0123456789 ";
        let mut data = Vec::with_capacity(len);
        let mut state = 0x2545_f491_u32;
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match state % 4 {
                0 => data.extend_from_slice(text),
                1 => data.extend((0..state % 700).map(|_| 0u8)),
                2 => data.extend((0..state % 40).map(|k| (k as u8).wrapping_mul(state as u8))),
                _ => data.extend((0..state % 100).map(|k| (k * 3 % 7) as u8)),
            }
        }
        data.truncate(len);
        data
    }

    #[test]
    fn literals_round_trip() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let lengths = flat_lengths();
        let tokens: Vec<Token> = data.iter().map(|&b| Token::Literal(b)).collect();
        let payload = encode(&tokens, &lengths);
        assert_eq!(decompress(&payload, data.len()).unwrap(), data);
    }

    #[test]
    fn longest_codes_round_trip() {
        let data: Vec<u8> = (0..3000u32).map(|i| b'a' + (i * i % 16) as u8).collect();
        let lengths = skewed_lengths();
        let tokens: Vec<Token> = data.iter().map(|&b| Token::Literal(b)).collect();
        assert_eq!(
            decompress(&encode(&tokens, &lengths), data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn matches_round_trip() {
        round_trip(&sample_data(20_000), &flat_lengths());
        round_trip(&sample_data(20_000), &mixed_lengths());
    }

    #[test]
    fn long_match_lengths_round_trip() {
        // One byte of length (18..=272), the u16 form, and the u32 form that runs past the
        // first block's 65536 bytes.
        for len in [40, 272, 273, 5000, 65_538, 65_539, 70_000] {
            let mut data = vec![7u8; len + 1];
            data[0] = 1;
            round_trip(&data, &flat_lengths());
        }
    }

    #[test]
    fn several_blocks_round_trip() {
        round_trip(&sample_data(200_000), &flat_lengths());
        let data: Vec<u8> = (0..140_000u32)
            .map(|i| (i % 253) as u8 ^ (i >> 9) as u8)
            .collect();
        let tokens: Vec<Token> = data.iter().map(|&b| Token::Literal(b)).collect();
        let lengths = flat_lengths();
        assert_eq!(
            decompress(&encode(&tokens, &lengths), data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn bits_past_the_end_read_as_zero() {
        // Literal 0 has the all-zero code, so cutting the last words off still decodes them.
        let tokens: Vec<Token> = (0..100).map(|_| Token::Literal(0)).collect();
        let lengths = flat_lengths();
        let payload = encode(&tokens, &lengths);
        let out = decompress(&payload[..256], 100).unwrap();
        assert_eq!(out, vec![0; 100]);
    }

    #[test]
    fn empty_output_needs_no_input() {
        assert_eq!(decompress(&[], 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn truncated_table_is_an_error() {
        let err = decompress(&[0x99; 255], 10).unwrap_err();
        assert_eq!(err, error(0, "Huffman table truncated"));
        assert_eq!(
            err.to_string(),
            "byte 0 of the payload: Huffman table truncated"
        );
    }

    #[test]
    fn second_table_truncated_is_an_error() {
        let tokens: Vec<Token> = (0..BLOCK_OUTPUT).map(|_| Token::Literal(3)).collect();
        let payload = encode(&tokens, &flat_lengths());
        let err = decompress(&payload, BLOCK_OUTPUT + 1).unwrap_err();
        assert_eq!(err.what, "Huffman table truncated");
        assert_eq!(err.offset, payload.len());
    }

    #[test]
    fn empty_table_is_an_error() {
        let err = decompress(&[0; 300], 10).unwrap_err();
        assert_eq!(err.what, "invalid Huffman table (incomplete code lengths)");
    }

    #[test]
    fn over_subscribed_table_is_an_error() {
        let err = decompress(&[0x11; 300], 10).unwrap_err();
        assert_eq!(
            err.what,
            "invalid Huffman table (over-subscribed code lengths)"
        );
    }

    #[test]
    fn single_code_table_is_an_error() {
        let mut payload = vec![0u8; 300];
        payload[0] = 0x01;
        let err = decompress(&payload, 10).unwrap_err();
        assert_eq!(err.what, "invalid Huffman table (incomplete code lengths)");
    }

    #[test]
    fn match_before_the_start_is_an_error() {
        let tokens = [
            Token::Literal(1),
            Token::Match {
                len: 4,
                distance: 2,
            },
        ];
        let payload = encode(&tokens, &flat_lengths());
        let err = decompress(&payload, 5).unwrap_err();
        assert_eq!(err.what, "match distance before the start of the output");
    }

    #[test]
    fn missing_length_byte_is_an_error() {
        let tokens = [
            Token::Literal(1),
            Token::Match {
                len: 100,
                distance: 1,
            },
        ];
        let mut payload = encode(&tokens, &flat_lengths());
        // The 18 bits of the two symbols need a third word, then comes the length byte: keep
        // only the first two words.
        payload.truncate(256 + 4);
        let err = decompress(&payload, 101).unwrap_err();
        assert_eq!(err.what, "match length past the end of the payload");
    }

    #[test]
    fn short_long_length_is_an_error() {
        let mut payload = encode(
            &[
                Token::Literal(1),
                Token::Match {
                    len: 300,
                    distance: 1,
                },
            ],
            &flat_lengths(),
        );
        // Three words, the 255 marker, then the u16 form; 3 is below what it may hold.
        assert_eq!(payload[262], 255);
        payload[263..265].copy_from_slice(&3u16.to_le_bytes());
        let err = decompress(&payload, 301).unwrap_err();
        assert_eq!(err.what, "invalid match length");
    }

    #[test]
    fn oversized_output_is_refused() {
        let err = decompress(&[0x99; 300], (1 << 20) + 1).unwrap_err();
        assert_eq!(err.what, "uncompressed size over 1 MiB");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            input in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            out_len in 0usize..70_000,
        ) {
            let _ = decompress(&input, out_len);
        }

        #[test]
        fn arbitrary_bits_after_a_valid_table_never_panic(
            flat in proptest::bool::ANY,
            bits in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            out_len in 0usize..70_000,
        ) {
            let lengths = if flat { flat_lengths() } else { mixed_lengths() };
            let mut input: Vec<u8> =
                lengths.chunks_exact(2).map(|p| p[0] | (p[1] << 4)).collect();
            input.extend(bits);
            let _ = decompress(&input, out_len);
        }

        #[test]
        fn damaged_payloads_never_panic(
            data in proptest::collection::vec(0u8..8, 1..3000),
            damage in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
            cut in proptest::num::usize::ANY,
            out_len in 0usize..70_000,
        ) {
            // Valid payloads with a few bytes changed and the end cut somewhere reach deep
            // states (long matches, far distances) that random bytes seldom do.
            let mut payload = encode(&tokenize(&data, &flat_lengths()), &flat_lengths());
            for (at, byte) in damage {
                let at = at % payload.len();
                payload[at] = byte;
            }
            payload.truncate(cut % (payload.len() + 1));
            let _ = decompress(&payload, out_len);
            let _ = decompress(&payload, data.len());
        }

        #[test]
        fn encoded_data_round_trips(
            data in proptest::collection::vec(0u8..4, 0..3000),
        ) {
            round_trip(&data, &flat_lengths());
        }
    }
}
