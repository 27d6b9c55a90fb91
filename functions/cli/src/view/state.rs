//! What every route of the viewer shares: where the sessions come from and the viewer's own
//! files, and the one way to read the source. Defined once here, below every route, so the
//! routes depend on it and never on each other's state.
//!
//! From a local directory it serves only regular files reached without a symlink
//! ([`inside`]): every read goes through [`read_object`] and every listing through
//! [`listing`], which both check it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use rrstitch::storage::{ObjectMeta, ObjectStore, StorageError, StorageUrl};

/// Where the sessions come from.
pub(crate) enum Source {
    File(PathBuf),
    Store(Arc<dyn ObjectStore>, String),
}

pub(crate) struct AppState {
    pub(crate) source: Source,
    /// The viewer's page and rrweb's files (see [`super::assets`]).
    pub(crate) assets: PathBuf,
}

pub(crate) type Shared = Arc<AppState>;

/// Whether the object `name` may be served: any object of a cloud bucket, but of a local
/// directory only a regular file whose path has no symlink in it, so a link planted in the
/// results directory (`evil.json -> /home/me/.ssh/…`, a linked folder) serves nothing from
/// outside it.
pub(crate) fn inside(s: &AppState, name: &str) -> bool {
    let Source::Store(store, _) = &s.source else {
        return true;
    };
    let StorageUrl::Local(root) = store.url() else {
        return true;
    };
    let path = root.join(name);
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
    regular
        && match (root.canonicalize(), path.canonicalize()) {
            (Ok(root), Ok(real)) => real == root.join(name),
            _ => false,
        }
}

/// Reads the object `name` (prefix included) of a bucket source, at most `limit` bytes;
/// `None` when it is not there or not [`inside`] the source. Every route reads through here.
pub(crate) async fn read_object(
    s: &AppState,
    name: &str,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, StorageError> {
    let Source::Store(store, _) = &s.source else {
        return Ok(None);
    };
    if !inside(s, name) {
        return Ok(None);
    }
    match store.get(name, limit).await {
        Ok(object) => Ok(Some(object.body.to_vec())),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every object of a bucket source under its prefix that may be served ([`inside`]; nothing
/// for a file): one listing serves both the manifests and the single files.
pub(crate) async fn listing(s: &AppState) -> Result<Vec<ObjectMeta>> {
    match &s.source {
        Source::File(_) => Ok(Vec::new()),
        Source::Store(store, prefix) => {
            let mut listed = store.list(prefix).await?;
            listed.retain(|meta| inside(s, &meta.name));
            Ok(listed)
        }
    }
}
