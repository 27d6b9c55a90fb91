//! The streaming writer of a local object: parts written on a blocking thread, committed by
//! [`super::commit`] when the object is complete.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;

use super::commit::commit;
use super::{blocking, io_error};
use crate::storage::{ObjectMeta, ObjectWriter, Precondition, Result, StorageError};

/// Writes each part on a blocking thread straight from the `Bytes` it was given.
///
/// `tokio::fs::File` would copy every part into its own buffer first (a fresh allocation,
/// faulted in page by page), which cost as much as the write itself in `make bench`; moving
/// the file and the part to the blocking thread costs no copy.
pub(super) struct LocalWriter {
    pub(super) name: String,
    pub(super) dest: PathBuf,
    pub(super) temp: PathBuf,
    /// `None` only while a write is in flight, or after one failed.
    pub(super) file: Option<std::fs::File>,
    pub(super) precondition: Precondition,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut file = self.file.take().ok_or_else(|| StorageError::Permanent {
            op: "put",
            name: self.name.clone(),
            source: "an earlier write to this object failed".into(),
        })?;
        let name = self.name.clone();
        self.file = Some(
            blocking(move || {
                file.write_all(&data)
                    .map(|()| file)
                    .map_err(|e| io_error("put", &name, e))
            })
            .await?,
        );
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<ObjectMeta> {
        let LocalWriter {
            name,
            dest,
            temp,
            file,
            precondition,
        } = *self;
        if file.is_none() {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StorageError::Permanent {
                op: "put",
                name,
                source: "an earlier write to this object failed".into(),
            });
        }
        drop(file);
        blocking(move || commit(&temp, &dest, &name, &precondition)).await
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}
