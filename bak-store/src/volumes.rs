//! The volumes of a family in object storage: objects beside the first one, named by
//! bak-core's rule (`KEY`, `KEY.v2`, `KEY.v3`, ...) in the same bucket.

use std::io;
use std::sync::Arc;

use bak_core::device::{volume_name, ReadDevice, Volumes, WriteDevice};
use bak_core::{Error, Result};
use object_store::ObjectStoreExt;

use crate::read::{Object, ObjectReader};
use crate::runtime::block_on;
use crate::store::{describe, failure, io_error, Failure, Store};
use crate::write::{ObjectWriter, WriteOptions};

pub(crate) struct ObjectVolumes {
    pub store: Store,
    pub opts: WriteOptions,
}

impl ObjectVolumes {
    fn store(&self, k: u16) -> Store {
        Store {
            url: self.store.url.with_key(volume_name(&self.store.url.key, k)),
            ..self.store.clone()
        }
    }

    fn head(&self, k: u16) -> Result<Option<Arc<Object>>> {
        let store = self.store(k);
        let (name, path) = (store.url.shown(), store.path());
        match block_on(store.os.head(&path)) {
            Ok(meta) => Ok(Some(Arc::new(Object {
                store,
                path,
                name,
                len: meta.size,
            }))),
            Err(e) if failure(&e) == Failure::NotFound => Ok(None),
            Err(e) => Err(Error::io(
                &name,
                "open",
                io::Error::new(io_error(&e).kind(), describe(&e)),
            )),
        }
    }
}

impl Volumes for ObjectVolumes {
    fn name(&self, k: u16) -> String {
        self.store(k).url.shown()
    }
    fn open(&self, k: u16) -> Result<Option<Box<dyn ReadDevice>>> {
        Ok(self
            .head(k)?
            .map(|o| Box::new(ObjectReader::new(o)) as Box<dyn ReadDevice>))
    }
    fn create(&self, k: u16) -> Result<Box<dyn WriteDevice>> {
        let existing = self.head(k)?;
        let store = self.store(k);
        let name = store.url.shown();
        Ok(Box::new(ObjectWriter::new(
            store, name, self.opts, existing,
        )))
    }
    fn remove(&self, k: u16) -> Result<()> {
        let store = self.store(k);
        match block_on(store.os.delete(&store.path())) {
            Ok(()) => Ok(()),
            Err(e) if failure(&e) == Failure::NotFound => Ok(()),
            Err(e) => Err(Error::io(store.url.shown(), "remove", io_error(&e))),
        }
    }
    fn max_len(&self) -> Option<u64> {
        Some(self.opts.part_size as u64 * self.opts.max_parts(self.store.url.scheme) as u64)
    }
}
