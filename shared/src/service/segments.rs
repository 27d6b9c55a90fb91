//! Segmented results in a bucket: where a stitch's segments go, the manifest that publishes
//! them, and how a re-stitch replaces them without a reader ever seeing a mix.
//!
//! Layout, under the results prefix:
//! ```text
//! <guid>/<generation>/00000.json.gz   gzip'd JSON arrays of events (Content-Encoding: gzip)
//! <guid>/<generation>/console.jsonl.gz the console entries, one JSON line each (when any)
//! <guid>/manifest.json                written last: the segments in order, the console file,
//!                                     and the metadata
//! ```
//! A stitch writes its segments under a new *generation*, then the manifest naming them,
//! then deletes older generations. A reader holding the old manifest reads the old
//! generation until it is deleted; one holding the new reads only the new.
//!
//! The manifest write is fenced like the single file: its precondition is read before the
//! finalizer's claim is renewed (see [`crate::index`]), so a stale finalizer cannot publish
//! over a newer one. A stitch that does not publish deletes the segments it wrote.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Result;
use crate::engine::console::{ConsoleFile, ConsoleInfo};
use crate::engine::segment::MANIFEST_FORMAT;
use crate::engine::{Manifest, Metadata, Segment, SegmentInfo, SessionGuid};
use crate::storage::{Encoding, ObjectStore, Precondition};

/// The manifest's name inside a session's folder, beside the generations.
pub const MANIFEST: &str = "manifest.json";

/// The manifest's object name.
pub fn manifest_name(results_prefix: &str, guid: &SessionGuid) -> String {
    format!("{results_prefix}{guid}/{MANIFEST}")
}

/// A token naming one stitch's segments. It sorts by time, then by this process's count of
/// stitches (both fixed-width hex, so string order is that order), so cleaning up can delete
/// only *older* generations; the process id keeps two processes' stitches apart.
pub(crate) fn new_generation() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{millis:012x}-{n:08x}-{:x}", std::process::id())
}

/// One stitch's segments on their way into the results bucket.
pub(crate) struct SegmentsOut {
    /// `<prefix><guid>/`
    folder: String,
    generation: String,
    written: Vec<SegmentInfo>,
    console: Option<ConsoleInfo>,
}

impl SegmentsOut {
    pub(crate) fn new(results_prefix: &str, guid: &SessionGuid, generation: String) -> Self {
        SegmentsOut {
            folder: format!("{results_prefix}{guid}/"),
            generation,
            written: Vec::new(),
            console: None,
        }
    }

    /// Stores one finished segment. Its name is new to this generation, so no precondition.
    pub(crate) async fn store(
        &mut self,
        results: &dyn ObjectStore,
        segment: Segment,
    ) -> Result<()> {
        self.put_gzip(results, &segment.info.path, segment.body)
            .await?;
        self.written.push(segment.info);
        Ok(())
    }

    /// Stores the console file in this generation, beside the segments.
    pub(crate) async fn store_console(
        &mut self,
        results: &dyn ObjectStore,
        file: ConsoleFile,
    ) -> Result<()> {
        self.put_gzip(results, &file.info.path, file.body).await?;
        self.console = Some(file.info);
        Ok(())
    }

    /// Writes a gzip body at `path` in the session's folder, served with its encoding.
    async fn put_gzip(&self, results: &dyn ObjectStore, path: &str, body: Vec<u8>) -> Result<()> {
        let name = format!("{}{path}", self.folder);
        results
            .put_encoded(&name, Bytes::from(body), Precondition::None, Encoding::Gzip)
            .await?;
        Ok(())
    }

    /// Writes the manifest (only if `precondition` still holds), then deletes the session's
    /// older generations. On a failed manifest write this stitch's segments are deleted.
    pub(crate) async fn publish(
        self,
        results: &dyn ObjectStore,
        guid: &SessionGuid,
        metadata: &Metadata,
        precondition: Precondition,
    ) -> Result<()> {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            session_guid: guid.as_str(),
            generation: &self.generation,
            segments: &self.written,
            console: self.console.as_ref(),
            metadata,
        };
        let body = serde_json::to_vec(&manifest).map_err(std::io::Error::from)?;
        let name = format!("{}{MANIFEST}", self.folder);
        if let Err(e) = results.put(&name, Bytes::from(body), precondition).await {
            self.discard(results).await;
            return Err(e.into());
        }
        // Older generations only: a newer one may be mid-write by a stitch that will publish
        // after us (or fail its own fence and clean up after itself).
        let ours = format!("{}{}/", self.folder, self.generation);
        for object in results.list(&self.folder).await? {
            let Some(rest) = object.name.strip_prefix(&self.folder) else {
                continue;
            };
            let Some((generation, _)) = rest.split_once('/') else {
                continue; // the manifest
            };
            if generation < self.generation.as_str() && !object.name.starts_with(&ours) {
                results.delete(&object.name).await?;
            }
        }
        Ok(())
    }

    /// Best effort: deletes what this stitch stored (it will not be published).
    pub(crate) async fn discard(self, results: &dyn ObjectStore) {
        let paths = self.written.iter().map(|info| &info.path);
        for path in paths.chain(self.console.as_ref().map(|c| &c.path)) {
            let name = format!("{}{}", self.folder, path);
            if let Err(e) = results.delete(&name).await {
                tracing::warn!(object = %name, error = %e, "could not delete an unpublished segment; a later stitch or erasure removes it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cleanup deletes generations that sort before its own: within one millisecond the
    /// count decides, however many digits it has.
    #[test]
    fn generations_sort_in_the_order_they_were_made() {
        let made: Vec<String> = (0..40).map(|_| new_generation()).collect();
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(sorted, made);
    }
}
