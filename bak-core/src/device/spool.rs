//! A stream made random-read by copying it to an anonymous temporary file, for readers that
//! need positioned reads and get a pipe (SQL Server backups read from stdin). The file is
//! unlinked from the start: nothing is left behind, whatever happens to the process.

use std::io;

use super::{FileDevice, RandomRead, ReadDevice};
use crate::error::{Error, Result};

/// The device as a positioned reader: itself where it is one, else its bytes copied to an
/// anonymous file in the temporary directory (`TMPDIR`).
pub fn spool(dev: Box<dyn ReadDevice>) -> Result<Box<dyn RandomRead>> {
    let mut dev = match dev.into_random() {
        Ok(r) => return Ok(r),
        Err(d) => d,
    };
    let name = dev.name().to_string();
    let mut file = tempfile::tempfile().map_err(|e| {
        Error::io(
            std::env::temp_dir(),
            "create a temporary file to hold the stream of",
            e,
        )
    })?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match dev.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(&name, "read", e)),
        };
        io::Write::write_all(&mut file, &buf[..n])
            .map_err(|e| Error::io(std::env::temp_dir(), "write a temporary copy", e))?;
    }
    Ok(Box::new(FileDevice::from_file(name, file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn a_stream_is_spooled_and_a_file_is_not() {
        let m = MemDevice::with_bytes("m", (0..200_000u32).map(|i| i as u8).collect());
        let r = spool(Box::new(m.stream())).unwrap();
        assert_eq!(r.len().unwrap(), 200_000);
        let mut b = [0u8; 4];
        r.read_at(&mut b, 1000).unwrap();
        assert_eq!(b, [232, 233, 234, 235]);
        let direct = spool(Box::new(m.handle())).unwrap();
        assert_eq!(direct.len().unwrap(), 200_000);
    }
}
