//! From [`Settings`] to a ready [`Service`]: the adapter wiring every binary shares, so the
//! ingest function, the finalize function and the CLI cannot disagree about configuration.

use std::sync::Arc;

use thiserror::Error;

use crate::config::{FinalizeMode, Settings};
use rrstitch::index::{self, IndexError};
use rrstitch::queue::{self, FinalizeQueue, QueueError};
use rrstitch::service::{Buckets, MissingBucket, Service};
use rrstitch::storage::{self, ObjectStore, StorageError, StorageUrl};

#[derive(Debug, Error)]
pub enum SetupError {
    #[error("{var}: {reason}")]
    Config { var: &'static str, reason: String },
    #[error(transparent)]
    MissingBucket(#[from] MissingBucket),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Opens a bucket URL, returning the store and the prefix the URL carried.
pub async fn open_bucket(
    var: &'static str,
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, String), SetupError> {
    let (url, prefix) =
        StorageUrl::parse(url).map_err(|reason| SetupError::Config { var, reason })?;
    Ok((storage::open(&url).await?, prefix))
}

/// Refuses to start on a bucket that is not there, with its role in the message; any other
/// failure to tell (no permission to list, the service briefly down) is only logged: the
/// work itself will say what is wrong, and a transient failure must not stop a start.
async fn check(role: &'static str, store: &dyn ObjectStore) -> Result<(), SetupError> {
    match store.check_bucket().await {
        Ok(()) => Ok(()),
        Err(StorageError::NoSuchBucket { bucket }) => Err(MissingBucket { role, bucket }.into()),
        Err(e) => {
            tracing::warn!(role, bucket = %store.url(), error = %e, "could not check the bucket");
            Ok(())
        }
    }
}

/// Builds the service: index, results bucket, and the configured chunk bucket (if any) kept
/// open for ingest and finalize to share.
pub async fn service(settings: &Settings) -> Result<Service, SetupError> {
    let index =
        index::open_sharded(&settings.index, settings.index_shards, settings.index_ttl).await?;
    let (results, results_prefix) = open_bucket("RRSTITCH_RESULTS", &settings.results).await?;
    check("results", results.as_ref()).await?;
    let mut options = settings.options.clone();
    if !results_prefix.is_empty() {
        options.results_prefix = results_prefix;
    }
    let mut stores = Vec::new();
    if let Some(chunks) = &settings.chunks {
        let (store, prefix) = open_bucket("RRSTITCH_CHUNKS", chunks).await?;
        check("chunk", store.as_ref()).await?;
        if !prefix.is_empty() {
            options.chunk_prefix = prefix;
        }
        options.chunk_bucket = Some(store.url().clone());
        stores.push(store);
    }
    Ok(Service::new(
        index,
        results,
        Arc::new(Buckets::with(stores)),
        options,
    ))
}

/// The queue a dispatching sweep publishes to: `None` in inline mode, where a sweep stitches
/// the idle sessions itself.
pub async fn finalize_queue(
    settings: &Settings,
) -> Result<Option<Arc<dyn FinalizeQueue>>, SetupError> {
    match &settings.finalize {
        FinalizeMode::Inline => Ok(None),
        FinalizeMode::Queue(spec) => Ok(Some(queue::open(spec).await?)),
    }
}
