//! bak-store: objects in S3 (and the stores that speak its protocol), Azure Blob Storage and
//! Google Cloud Storage as bak devices. A device named `s3://BUCKET/KEY`, `az://CONTAINER/PATH`
//! or `gs://BUCKET/KEY` reads with ranged GETs ([`ObjectReader`]) and writes with a multipart
//! upload ([`ObjectWriter`]); both implement bak-core's device traits, so the media layer
//! treats an object as it treats a file without positioned writes.
//!
//! The crate keeps its async runtime inside (the `object_store` crate needs tokio): bak-core
//! stays synchronous, and a device call blocks the calling thread until its requests are done.
//! Endpoint and credentials come from each cloud's standard environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`; `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`,
//! `AZURE_STORAGE_USE_EMULATOR`; `GOOGLE_SERVICE_ACCOUNT`, ...), never from the command line,
//! and no message names a secret or a URL's query.

mod read;
mod runtime;
mod store;
mod uploads;
mod url;
mod volumes;
mod write;

use std::io;
use std::path::Path;
use std::sync::Arc;

use bak_core::device::{ReadDevice, WriteDevice};
use bak_core::{Error, Refusal, Result};
use object_store::ObjectStoreExt;

pub use read::{ObjectReader, READ_AHEAD, READ_CHUNK};
pub use store::scrub;
pub use uploads::{abort, list_unfinished, Unfinished};
pub use url::{is_url, redact, Scheme, StoreUrl};
pub use write::{
    abort_unfinished, part_limit, ObjectWriter, WriteOptions, DEFAULT_PARTS_IN_FLIGHT,
    DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE,
};

use read::Object;
use store::{connect, describe, failure, no_bucket, Failure, Store};

fn parse(name: &Path) -> Result<StoreUrl> {
    let s = name
        .to_str()
        .ok_or_else(|| Error::refused(Refusal::Usage, "a device URL must be UTF-8"))?;
    StoreUrl::parse(s).map_err(|m| Error::refused(Refusal::Usage, m))
}

/// The object as it is now, or `None` when there is none. A bucket that does not exist, and
/// every other failure, is an error naming the URL.
fn head(store: &Store, op: &'static str) -> Result<Option<Arc<Object>>> {
    let name = store.url.shown();
    let path = store.path();
    match runtime::block_on(store.os.head(&path)) {
        Ok(meta) => Ok(Some(Arc::new(Object {
            store: store.clone(),
            path,
            name,
            len: meta.size,
        }))),
        Err(e) if failure(&e) == Failure::NotFound || no_bucket(&e) => {
            check_bucket(store, op)?;
            Ok(None)
        }
        Err(e) => Err(Error::io(
            &name,
            op,
            io::Error::new(kind_of(&e), describe(&e)),
        )),
    }
}

fn kind_of(e: &object_store::Error) -> io::ErrorKind {
    store::io_error(e).kind()
}

/// Say clearly when the bucket or container itself is missing: it is never created here.
fn check_bucket(store: &Store, op: &'static str) -> Result<()> {
    let name = store.url.shown();
    let what = match store.url.scheme {
        Scheme::Azure => "container",
        _ => "bucket",
    };
    let parent = store.path().parts().count();
    let prefix = (parent > 1).then(|| {
        let key = &store.url.key;
        object_store::path::Path::from(&key[..key.rfind('/').unwrap_or(0)])
    });
    match runtime::block_on(store.os.list_with_delimiter(prefix.as_ref())) {
        Ok(_) => Ok(()),
        Err(e) if failure(&e) == Failure::NotFound || no_bucket(&e) => Err(Error::io(
            &name,
            op,
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the {what} {:?} does not exist (the bak tools never create one)",
                    store.url.bucket
                ),
            ),
        )),
        Err(e) => Err(Error::io(
            &name,
            op,
            io::Error::new(kind_of(&e), describe(&e)),
        )),
    }
}

/// Open an object for reading. A missing object, a missing bucket, refused credentials and an
/// unreachable endpoint are I/O errors (exit 2) naming the URL.
pub fn open_read(name: &Path) -> Result<Box<dyn ReadDevice>> {
    let url = parse(name)?;
    let store = connect(&url)?;
    match head(&store, "open")? {
        Some(obj) => Ok(Box::new(ObjectReader::new(obj))),
        None => Err(Error::io(
            url.shown(),
            "open",
            io::Error::new(io::ErrorKind::NotFound, "no such object"),
        )),
    }
}

/// Open an object for writing media: nothing is uploaded until the media layer begins; what
/// the object holds now (if it exists) is what an append inspects.
pub fn open_write(name: &Path, opts: &WriteOptions) -> Result<Box<dyn WriteDevice>> {
    opts.check()
        .map_err(|m| Error::refused(Refusal::Usage, m))?;
    let url = parse(name)?;
    let store = connect(&url)?;
    let existing = head(&store, "open")?;
    Ok(Box::new(ObjectWriter::new(
        store,
        url.shown(),
        *opts,
        existing,
    )))
}
