//! Device names as the tools take them: a path, `-`, or an object-store URL (`s3://`, `az://`,
//! `gs://`), in any mix. URLs are opened through bak-store, everything else through bak-core,
//! and bak-core gets the boxed devices either way.

use std::path::{Path, PathBuf};

use bak_core::device::{ReadDevice, WriteDevice};
use bak_core::{Error, Refusal};
use bak_store::WriteOptions;

/// How objects are uploaded (bak-write): the flags behind [`WriteOptions`].
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// URL devices: bytes per multipart-upload part (5M to 1G). Each URL device holds at most
    /// (--parts-in-flight + 1) x this in memory: 40 MiB with the defaults.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = crate::parse_size)]
    pub part_size: u64,
    /// URL devices: parts uploading at once per device (1 to 64).
    #[arg(long, value_name = "N", default_value_t = bak_store::DEFAULT_PARTS_IN_FLIGHT)]
    pub parts_in_flight: usize,
    /// URL devices: parts one object may have (default: the store's limit, 10000 for S3 and
    /// GCS, 50000 for Azure). A family goes on in its next volume object before an object
    /// would need more, so no set outgrows a store: --part-size x this is the largest object.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=50_000))]
    pub max_parts: Option<u64>,
}

impl StoreArgs {
    /// The upload options, checked.
    pub fn options(&self) -> anyhow::Result<WriteOptions> {
        let o = WriteOptions {
            part_size: usize::try_from(self.part_size).unwrap_or(usize::MAX),
            parts_in_flight: self.parts_in_flight,
            max_parts: self.max_parts.map(|n| n as usize),
        };
        o.check()
            .map_err(|m| anyhow::anyhow!("--part-size/--parts-in-flight: {m}"))?;
        Ok(o)
    }
}

/// True when a device name is an object-store URL.
pub fn is_url(p: &Path) -> bool {
    bak_store::is_url(p)
}

/// A device name as messages show it: a URL without its query (a SAS token is a secret).
pub fn shown(p: &Path) -> String {
    bak_store::redact(&p.to_string_lossy())
}

/// Refuse one object given twice (by the URL as shown: two SAS tokens for one blob are still
/// one blob), saying so without the query.
pub(crate) fn check_urls_distinct(paths: &[PathBuf]) -> bak_core::Result<()> {
    let urls: Vec<String> = paths
        .iter()
        .filter(|p| is_url(p))
        .map(|p| shown(p))
        .collect();
    for (i, u) in urls.iter().enumerate() {
        if urls[..i].contains(u) {
            return Err(Error::refused(
                Refusal::Usage,
                format!("{u} is given twice; give each device once"),
            ));
        }
    }
    Ok(())
}

/// Open a device for reading: a URL through bak-store, anything else through bak-core.
pub fn open_read(p: &Path) -> bak_core::Result<Box<dyn ReadDevice>> {
    if is_url(p) {
        bak_store::open_read(p)
    } else {
        bak_core::device::open_read(p)
    }
}

/// Open the devices of a mirrored backup: the main list, then each `--mirror-to` list. No
/// device may be given twice in any of the lists.
pub fn open_write_copies(
    lists: &[Vec<PathBuf>],
    max_transfer: u32,
    store: &WriteOptions,
) -> bak_core::Result<Vec<Vec<Box<dyn WriteDevice>>>> {
    let all: Vec<PathBuf> = lists.iter().flatten().cloned().collect();
    check_urls_distinct(&all)?;
    bak_core::device::check_distinct(&all)?;
    lists
        .iter()
        .map(|l| open_write_devices(l, max_transfer, store))
        .collect()
}

/// Open the devices of a backup, files, streams and URLs alike.
pub fn open_write_devices(
    paths: &[PathBuf],
    max_transfer: u32,
    store: &WriteOptions,
) -> bak_core::Result<Vec<Box<dyn WriteDevice>>> {
    check_urls_distinct(paths)?;
    bak_core::open_backup_devices_with(paths, &|p| {
        if is_url(p) {
            bak_store::open_write(p, store)
        } else {
            bak_core::device::open_write(p, 2 * max_transfer as usize)
        }
    })
}

/// Open devices for reading, in parallel (FIFOs may be fed in any order), URLs among them.
pub fn open_paths(paths: &[PathBuf]) -> bak_core::Result<Vec<bak_core::Opened>> {
    check_urls_distinct(paths)?;
    bak_core::open_paths_with(paths, &open_read)
}
