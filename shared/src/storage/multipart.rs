//! The one streamed writer for buckets that take an object in parts (GCS, S3).
//!
//! Both clouds upload a large object as a sequence of parts that becomes visible only when
//! the upload completes, and both want a small object as one plain put. Buffering writes,
//! cutting the buffer into parts and choosing between the two paths is the same logic for
//! both, so it lives here once, as `object_store`'s `WriteMultipart` does over its
//! `put_part`/`complete`/`abort`; each adapter implements only [`Multipart`], the calls of
//! its own API.
//!
//! **The boundary rule: a part is sent only once more bytes follow it** (the buffer must
//! hold *more* than [`PART`] bytes). The last part then always holds at least one byte, so
//! completing an upload always sends real bytes (GCS's closing request carries the object's
//! total size with its final chunk; S3 needs no empty-part special case), and an object of
//! exactly one part's size goes up as one plain put instead of a one-part upload.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::{ObjectMeta, ObjectStore, ObjectWriter, Precondition, Result};

/// Size of one part: 8 MiB, above S3's 5 MiB minimum and a multiple of the 256 KiB GCS
/// requires of every chunk but the last.
pub(crate) const PART: usize = 8 * 1024 * 1024;

/// A bucket's multipart upload API: what [`MultipartWriter`] drives.
#[async_trait]
pub(crate) trait Multipart: ObjectStore + Clone + 'static {
    /// One upload under way.
    type Upload: Send;

    /// Starts an upload of `name`, before its first part.
    async fn start(&self, name: &str, precondition: &Precondition) -> Result<Self::Upload>;

    /// Sends the next part, [`PART`] bytes long.
    async fn put_part(&self, upload: &mut Self::Upload, name: &str, part: Bytes) -> Result<()>;

    /// Sends the last part (never empty) and makes the object visible, checking
    /// `precondition` where the backend does so at completion.
    async fn complete(
        &self,
        upload: Self::Upload,
        name: &str,
        last: Bytes,
        precondition: &Precondition,
    ) -> Result<ObjectMeta>;

    /// Best effort: drops what was uploaded so far.
    async fn abort(&self, upload: Self::Upload, name: &str);
}

/// A streamed write to a [`Multipart`] bucket: an upload once the object outgrows one part,
/// a single [`ObjectStore::put`] below that.
pub(crate) struct MultipartWriter<S: Multipart> {
    store: S,
    name: String,
    precondition: Precondition,
    buffer: BytesMut,
    /// The upload, once the object outgrew one part.
    upload: Option<S::Upload>,
}

impl<S: Multipart> MultipartWriter<S> {
    pub(crate) fn boxed(
        store: &S,
        name: &str,
        precondition: Precondition,
    ) -> Box<dyn ObjectWriter> {
        Box::new(MultipartWriter {
            store: store.clone(),
            name: name.to_owned(),
            precondition,
            buffer: BytesMut::new(),
            upload: None,
        })
    }
}

#[async_trait]
impl<S: Multipart> ObjectWriter for MultipartWriter<S> {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.buffer.extend_from_slice(&data);
        // `>`, not `>=`: keep at least one byte back, so the last part is never empty.
        while self.buffer.len() > PART {
            let part = self.buffer.split_to(PART).freeze();
            let upload = match &mut self.upload {
                Some(upload) => upload,
                None => self
                    .upload
                    .insert(self.store.start(&self.name, &self.precondition).await?),
            };
            self.store.put_part(upload, &self.name, part).await?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<ObjectMeta> {
        let MultipartWriter {
            store,
            name,
            precondition,
            buffer,
            upload,
        } = *self;
        let rest = buffer.freeze();
        match upload {
            None => store.put(&name, rest, precondition).await,
            Some(upload) => store.complete(upload, &name, rest, &precondition).await,
        }
    }

    async fn abort(self: Box<Self>) {
        let MultipartWriter {
            store,
            name,
            upload,
            ..
        } = *self;
        if let Some(upload) = upload {
            store.abort(upload, &name).await;
        }
    }
}
