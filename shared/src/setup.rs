//! From [`Settings`] to a ready [`Service`]: the adapter wiring every binary shares, so the
//! ingest function, the finalize function and the CLI cannot disagree about configuration.

use std::sync::Arc;

use thiserror::Error;

use crate::config::Settings;
use crate::index::{self, IndexError};
use crate::service::{Buckets, Service};
use crate::storage::{self, ObjectStore, StorageError, StorageUrl};

#[derive(Debug, Error)]
pub enum SetupError {
    #[error("{var}: {reason}")]
    Config { var: &'static str, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
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

/// Builds the service: index, results bucket, and the configured chunk bucket (if any) kept
/// open for ingest and finalize to share.
pub async fn service(settings: &Settings) -> Result<Service, SetupError> {
    let index = index::open(&settings.index).await?;
    let (results, results_prefix) = open_bucket("RRSTITCH_RESULTS", &settings.results).await?;
    let mut options = settings.options.clone();
    if !results_prefix.is_empty() {
        options.results_prefix = results_prefix;
    }
    let mut stores = Vec::new();
    if let Some(chunks) = &settings.chunks {
        let (store, prefix) = open_bucket("RRSTITCH_CHUNKS", chunks).await?;
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
