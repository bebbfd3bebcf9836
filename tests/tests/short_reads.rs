//! The record reader fed by a reader that returns short reads, as a slow pipe does, finds the
//! same records as over the whole bytes.

use std::io::Read;

use bak_core::bytes::RecordType;
use bak_core::internals::RecordReader;
use bak_core::{backup, open_backup_devices, BackupOptions, Stop};

use crate::util::{data, temp_dir};

/// Returns at most 7 bytes per read, as a slow pipe might.
struct Trickle<R>(R, usize);
impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let k = buf.len().min(self.1);
        self.0.read(&mut buf[..k])
    }
}

#[test]
fn the_record_reader_takes_short_reads() {
    let t = temp_dir("short");
    let d = t.path().join("s.bak");
    let o = BackupOptions {
        max_transfer: 64 << 10,
        sync: false,
        ..Default::default()
    };
    let input = data(300_000, 5);
    let targets = open_backup_devices(std::slice::from_ref(&d), o.max_transfer).unwrap();
    backup(&mut &input[..], "in", targets, &o, &|_| {}, &Stop::new()).unwrap();
    let bytes = std::fs::read(&d).unwrap();
    let kinds = |r: &mut dyn Read| {
        let mut rr = RecordReader::new(r, 0, bak_core::Location::device("s"));
        rr.skip(8192, "head").unwrap();
        let mut v = Vec::new();
        while let Some(rec) = rr.next_record().unwrap() {
            if rec.kind == RecordType::BlockHeader {
                let h =
                    bak_core::bytes::BlockHeader::parse_body(&rec.body, &rr.location()).unwrap();
                rr.skip(h.stored_len as u64, "payload").unwrap();
            }
            v.push((rec.kind, rec.offset, rec.body));
        }
        v
    };
    let whole = kinds(&mut &bytes[..]);
    let short = kinds(&mut Trickle(&bytes[..], 0));
    assert_eq!(whole.len(), short.len());
    assert!(whole == short);
    assert_eq!(whole.first().map(|r| r.0), Some(RecordType::SetHeader));
    assert_eq!(whole.last().map(|r| r.0), Some(RecordType::EndOfSet));
}
