//! The object storage port, and its adapters.
//!
//! Buckets are flat namespaces of immutable-ish objects; rrstitch needs seven things of one:
//! list by prefix, get (with a size cap checked *before* download), a read of an object's
//! first bytes (a ranged read: which session a chunk belongs to is written at its start),
//! stat, a small put with a precondition, a streaming writer for results too large to
//! hold, and delete. Each adapter lives in
//! its own module and is held to the same behaviour by [`conformance`].
//!
//! Preconditions exist for two reasons: create-only writes (a lost race is visible, not a
//! silent overwrite) and generation-matched writes (a stale finalizer cannot clobber a newer
//! result). A *generation* is whatever the backend uses to tell versions of an object apart:
//! GCS generations, S3 ETags, a local file's modification time in nanoseconds.
//!
//! Ingest and finalize never delete or modify a chunk. Deleting exists for erasure and
//! retention only ([`crate::service::erase`], `rrstitch prune`): [`ObjectStore::delete`] is
//! idempotent, so an erasure that was interrupted can simply be run again.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

pub mod conformance;
#[cfg(feature = "gcp")]
pub mod gcs;
pub mod local;
#[cfg(any(feature = "gcp", feature = "aws"))]
mod multipart;
#[cfg(feature = "aws")]
pub mod s3;
mod url;

pub use url::StorageUrl;

/// What a bucket says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub name: String,
    pub size: u64,
    /// Tells versions of one name apart; `None` where a backend has nothing to offer.
    pub generation: Option<String>,
}

/// One page of a listing: see [`ObjectStore::list_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub objects: Vec<ObjectMeta>,
    /// The name the following page starts after (the last of `objects`); `None` at the end.
    pub next: Option<String>,
}

impl Page {
    /// A page from up to `max + 1` objects in name order: the extra one, when there, only
    /// says that more follow. Adapters ask their backend for one more than the page so the
    /// last page says `None` rather than leaving the caller an empty page to fetch.
    pub fn from_overfull(mut objects: Vec<ObjectMeta>, max: usize) -> Page {
        let max = max.max(1);
        let next = if objects.len() > max {
            objects.truncate(max);
            objects.last().map(|m| m.name.clone())
        } else {
            None
        };
        Page { objects, next }
    }
}

/// The objects under `prefix` after `start_after`, in name order, fetched a page at a time
/// ([`ObjectStore::page_size`]): memory stays one page whatever the bucket holds. Errors end
/// the stream after being yielded.
pub fn list_pages<'a>(
    store: &'a dyn ObjectStore,
    prefix: &'a str,
    start_after: Option<String>,
) -> impl futures::Stream<Item = Result<Page>> + Send + 'a {
    futures::stream::unfold(Some(start_after), move |state| async move {
        let after = state?;
        match store
            .list_page(prefix, after.as_deref(), store.page_size())
            .await
        {
            Ok(page) => {
                let next = page.next.clone().map(Some);
                Some((Ok(page), next))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// An object read whole.
#[derive(Debug, Clone)]
pub struct Object {
    pub meta: ObjectMeta,
    pub body: Bytes,
}

/// How an object's bytes are encoded, as its `Content-Encoding` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` header value; `None` for identity (no header).
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }
}

/// A condition a write must meet, checked atomically by the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// Only if no object of that name exists.
    DoesNotExist,
    /// Only if the current object has this generation.
    GenerationMatches(String),
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{name}: no such object")]
    NotFound { name: String },
    #[error("{name}: precondition failed (the object changed or already exists)")]
    PreconditionFailed { name: String },
    #[error("{name}: {size} bytes is over the {limit}-byte limit")]
    TooLarge { name: String, size: u64, limit: u64 },
    /// The bucket itself is missing: retrying will not help, and saying "no such object"
    /// would point at the wrong thing.
    #[error("bucket \"{bucket}\" does not exist")]
    NoSuchBucket { bucket: String },
    #[error("{name}: not a valid object name: {reason}")]
    InvalidName { name: String, reason: String },
    /// Worth retrying: a timeout, a refused connection, a 5xx, throttling.
    #[error("{op} {name}: transient storage failure: {source}")]
    Transient {
        op: &'static str,
        name: String,
        #[source]
        source: BoxError,
    },
    /// Retrying will not help: bad credentials, a missing bucket, a refused request.
    #[error("{op} {name}: storage failure: {source}")]
    Permanent {
        op: &'static str,
        name: String,
        #[source]
        source: BoxError,
    },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StorageError {
    /// Whether the platform should retry the operation that failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Transient { .. })
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A bucket (or a local directory standing in for one).
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Where this store points, as a URL (`gs://b`, `s3://b`, `/abs/dir`): what the index
    /// records as a chunk's bucket, so a sweep can find the chunk again.
    fn url(&self) -> &StorageUrl;

    /// One page of the objects whose name starts with `prefix`: those named strictly after
    /// `start_after` (all of them without it), in name order, at most `max` (at least one is
    /// asked for whatever `max` says). [`Page::next`] is the bound the following page starts
    /// after, `None` when nothing follows. A bound is a plain name, not a backend token, so
    /// a caller can keep it across processes (reconcile's cursor) and every backend reads it
    /// the same way.
    async fn list_page(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Page>;

    /// How many objects a page of [`list_pages`] asks for: what one request of the backend
    /// answers (1,000 on GCS and S3). A local directory overrides it, since each of its pages
    /// re-reads the directory it stopped in.
    fn page_size(&self) -> usize {
        1_000
    }

    /// Every object whose name starts with `prefix`, in name order, collected from
    /// [`ObjectStore::list_page`]: for callers that need the whole listing at once (one
    /// session's folder). Bulk callers walk [`list_pages`] instead and hold one page at a
    /// time.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_page(prefix, after.as_deref(), self.page_size())
                .await?;
            out.extend(page.objects);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Metadata of one object.
    async fn stat(&self, name: &str) -> Result<ObjectMeta>;

    /// Reads one object whole, refusing (before downloading) one over `limit` bytes.
    async fn get(&self, name: &str, limit: u64) -> Result<Object>;

    /// Reads at most the first `len` bytes of one object (all of it when it is shorter;
    /// nothing for an empty one), downloading no more than that. Backfill's grouping pass
    /// needs only the `session_guid` a chunk starts with; reading the rest there would read
    /// every chunk twice.
    async fn get_head(&self, name: &str, len: u64) -> Result<Bytes>;

    /// Checks the bucket is there, as cheaply as the backend allows (a one-object listing,
    /// which needs only the permission to list, not to read bucket metadata):
    /// [`StorageError::NoSuchBucket`] when it is not. A local directory always is (it is
    /// created on first write).
    async fn check_bucket(&self) -> Result<()> {
        Ok(())
    }
    /// The store's reads as plain blocking calls, where a read *is* a blocking syscall (a
    /// local directory): a stitch then reads a whole session on one blocking thread rather
    /// than taking an async hop (a thread hand-off and a wake-up) per chunk, which for a
    /// bucket of small chunks cost more than the reads. `None`, the default, for network
    /// stores, which need their async clients.
    fn blocking(&self) -> Option<&dyn BlockingRead> {
        None
    }

    /// Writes one object whole, as JSON.
    async fn put(&self, name: &str, body: Bytes, precondition: Precondition) -> Result<ObjectMeta> {
        self.put_encoded(name, body, precondition, Encoding::Identity)
            .await
    }

    /// Writes one object whole, as JSON stored with `encoding`: a gzip'd segment is stored
    /// `Content-Encoding: gzip` so browsers and CDNs decode it natively. A local directory
    /// has nowhere to keep the header; its reader (`rrstitch view`) goes by the name.
    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        precondition: Precondition,
        encoding: Encoding,
    ) -> Result<ObjectMeta>;

    /// Starts a streamed write; nothing is visible under `name` until
    /// [`ObjectWriter::finish`] succeeds.
    async fn writer(&self, name: &str, precondition: Precondition)
        -> Result<Box<dyn ObjectWriter>>;

    /// Deletes one object. Idempotent: deleting an object that is not there is `Ok(false)`
    /// (`Ok(true)` when something was deleted), so a retried erasure never fails on what an
    /// earlier attempt already removed. Backends that cannot tell (S3 answers 204 either way)
    /// stat first; the answer is then only as exact as that race allows.
    async fn delete(&self, name: &str) -> Result<bool>;
}

/// Reads that block the calling thread, into a buffer the caller reuses: one open and one
/// read per object, no metadata call and no allocation once the buffer has grown.
/// Callers run them on blocking threads only.
pub trait BlockingRead: Send + Sync {
    /// Reads one object whole into `buf` (cleared first), refusing one over `limit` bytes:
    /// the same answers as [`ObjectStore::get`], without the metadata.
    fn read_into(&self, name: &str, limit: u64, buf: &mut Vec<u8>) -> Result<()>;
    /// Reads at most the first `len` bytes into `buf` (cleared first), as
    /// [`ObjectStore::get_head`].
    fn read_head_into(&self, name: &str, len: u64, buf: &mut Vec<u8>) -> Result<()>;
}

/// A streamed write in progress: parts go up as they are written, the object appears
/// atomically at `finish`.
#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, data: Bytes) -> Result<()>;
    async fn finish(self: Box<Self>) -> Result<ObjectMeta>;
    /// Best effort: drops what was uploaded so far.
    async fn abort(self: Box<Self>);
}

/// What a build without a backend says when asked for it: which feature brings it in.
pub fn not_in_this_build(what: &str, feature: &str) -> String {
    format!(
        "{what} are not in this build: rebuild with the `{feature}` feature \
         (cargo build --release -p rrstitch-cli --features {feature})"
    )
}

/// Opens the store a URL names: a local directory, `gs://bucket`, or `s3://bucket`.
///
/// Cloud adapters configure themselves from the standard variables of their SDKs
/// (`STORAGE_EMULATOR_HOST`, `AWS_ENDPOINT_URL`, credentials), so an emulator and production
/// differ only in the environment.
pub async fn open(url: &StorageUrl) -> Result<Arc<dyn ObjectStore>> {
    match url {
        StorageUrl::Local(_) => Ok(Arc::new(local::LocalStore::open(url.clone())?)),
        #[cfg(feature = "aws")]
        StorageUrl::S3 { .. } => Ok(Arc::new(s3::S3Store::open(url.clone()).await?)),
        #[cfg(feature = "gcp")]
        StorageUrl::Gcs { .. } => Ok(Arc::new(gcs::GcsStore::open(url.clone()).await?)),
        #[allow(unreachable_patterns)]
        _ => Err(StorageError::Permanent {
            op: "open",
            name: url.to_string(),
            source: not_in_this_build(&format!("{} buckets", url.scheme()), url.feature()).into(),
        }),
    }
}
