//! The database files rebuilt from the page store (RESTORE ... WITH MOVE, without SQL Server):
//! every page of a data file written at page id x 8192, each page checked as it is read.

use std::os::unix::fs::FileExt;

use bak_core::error::{Error, Result};
use serde::Serialize;

use super::page::PAGE;
use super::Database;

/// A data file of the backup set (FILELISTONLY's D rows).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DataFile {
    /// File id.
    #[serde(rename = "FileID")]
    pub file_id: u16,
    /// Logical name.
    pub logical_name: String,
    /// Path on the server that wrote the backup (untrusted: only its base name is used).
    pub physical_name: String,
    /// Size in bytes the configuration records.
    pub size: u64,
}

/// What writing a file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOutcome {
    /// Pages written.
    pub pages: u64,
    /// The file's size.
    pub size: u64,
}

impl Database<'_> {
    /// The set's data files (the log file is not in a data stream).
    pub fn data_files(&self) -> Vec<DataFile> {
        self.store
            .files
            .iter()
            .filter(|f| f.data)
            .map(|f| DataFile {
                file_id: f.id,
                logical_name: f.logical.clone(),
                physical_name: f.physical.clone(),
                size: f.size,
            })
            .collect()
    }

    /// The set's log files, by logical name: not in the data stream, not written.
    pub fn log_files(&self) -> Vec<String> {
        self.store
            .files
            .iter()
            .filter(|f| !f.data)
            .map(|f| f.logical.clone())
            .collect()
    }

    /// Write data file `file_id` into `out` (an empty file, named `out_name` in messages): its
    /// full size, every page the backup holds at page id x 8192 as the media hold it (torn
    /// bits as written), each checked again as it is read. Pages the backup does not hold
    /// (unallocated extents) are zeros.
    pub fn write_file(
        &self,
        file_id: u16,
        out: &std::fs::File,
        out_name: &str,
    ) -> Result<FileOutcome> {
        let werr = |e: std::io::Error| Error::io(out_name, "write", e);
        let pages = self.store.file_pages(file_id);
        let stated = self
            .store
            .files
            .iter()
            .find(|f| f.id == file_id)
            .map_or(0, |f| f.size);
        let last = pages
            .last()
            .map_or(0, |p| (u64::from(p.page) + 1) * PAGE as u64);
        let size = stated.max(last);
        out.set_len(size).map_err(werr)?;
        let mut done = FileOutcome { pages: 0, size };
        for id in pages {
            let Some(p) = self.store.raw(id)? else {
                continue;
            };
            out.write_all_at(&p, u64::from(id.page) * PAGE as u64)
                .map_err(werr)?;
            done.pages += 1;
        }
        out.sync_data().map_err(werr)?;
        Ok(done)
    }
}
