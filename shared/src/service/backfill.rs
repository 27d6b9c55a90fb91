//! Backfill: stitch a whole bucket in one batch, no index needed — the seed's batch job.
//!
//! Two passes, so memory never holds a session: the first learns every chunk's session
//! (keeping only names), the second validates and stitches each session by streaming its
//! chunks into the results bucket. SDKs write `session_guid` first, so the first pass reads
//! only a chunk's first [`HEAD_BYTES`] (a ranged read) and takes the guid from there; it
//! downloads and parses the whole chunk only when the head does not name a session (gzip, or
//! another field order). So most chunks are downloaded once and every byte is parsed once.
//! Both passes are parallel (chunks in the first, sessions in the second) with bounded
//! concurrency.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::assemble::{assemble, Fence, Source};
use super::{Options, Result};
use crate::engine::{self, ChunkName, NameClass, Reject, SessionGuid};
use crate::storage::{ObjectStore, StorageError};

/// Hooks for a progress display; every method defaults to nothing.
pub trait Progress: Send + Sync {
    /// A phase begins with this many steps.
    fn phase(&self, _name: &'static str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
    fn done(&self) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BackfillSummary {
    /// Every object under the prefix.
    pub objects_listed: u64,
    /// Chunk candidates read and checked.
    pub files_processed: u64,
    /// Objects that are not chunk candidates.
    pub ignored: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub rejected_objects: Vec<RejectedObject>,
    /// Objects that could not be read (storage errors); the run exits non-zero.
    pub unreadable: Vec<Failure>,
    pub sessions_written: u64,
    /// Sessions whose result could not be written; the run exits non-zero.
    pub sessions_failed: Vec<Failure>,
    pub events_written: u64,
    pub bytes_written: u64,
    pub duplicate_chunks_skipped: u64,
}

impl BackfillSummary {
    /// Whether everything that could be done was done.
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty() && self.sessions_failed.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedObject {
    pub name: String,
    pub kind: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// How much of a chunk the grouping pass reads: `{"session_guid":"` plus the longest valid
/// guid (128) fit with room for whitespace; a head that cuts the guid short falls back to a
/// full read.
pub const HEAD_BYTES: u64 = 512;

enum Checked {
    Chunk(ChunkName, SessionGuid),
    Rejected(String, Reject),
    Unreadable(String, StorageError),
}

/// Stitches every session found under `options.chunk_prefix` in `source` into `results`.
pub async fn backfill(
    source: Arc<dyn ObjectStore>,
    results: Arc<dyn ObjectStore>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<BackfillSummary> {
    let listed = source.list(&options.chunk_prefix).await?;
    let mut summary = BackfillSummary {
        objects_listed: listed.len() as u64,
        ..BackfillSummary::default()
    };
    let mut candidates = Vec::new();
    for meta in listed {
        match ChunkName::classify(&meta.name, &options.chunk_prefix) {
            NameClass::Ignored => summary.ignored += 1,
            NameClass::Rejected(reject) => note_reject(&mut summary, meta.name, reject),
            NameClass::Chunk(name) => candidates.push((name, meta.size)),
        }
    }

    // Pass 1: learn every candidate's session (rejecting what cannot even say that).
    progress.phase("reading chunks", candidates.len() as u64);
    let limits = options.limits;
    // A local directory: batches of chunks, each read on one blocking thread with one
    // reused buffer (a thread hand-off per chunk cost more than reading a small one).
    // Anything else: one async read per chunk, `read_parallelism` in flight.
    let mut checks = if source.blocking().is_some() {
        let batches: Vec<Vec<(ChunkName, u64)>> =
            candidates.chunks(CHECK_BATCH).map(<[_]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| {
                let source = source.clone();
                async move {
                    tokio::task::spawn_blocking(move || check_batch(source.as_ref(), batch, limits))
                        .await
                        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                }
            })
            .buffer_unordered(options.session_parallelism.max(1))
            .boxed()
    } else {
        stream::iter(candidates)
            .map(|(name, size)| {
                let source = source.clone();
                async move { vec![check(source.as_ref(), name, size, limits).await] }
            })
            .buffer_unordered(options.read_parallelism.max(1))
            .boxed()
    };
    let mut sessions: BTreeMap<SessionGuid, Vec<ChunkName>> = BTreeMap::new();
    while let Some(batch) = checks.next().await {
        progress.advance(batch.len() as u64);
        for checked in batch {
            match checked {
                Checked::Chunk(name, guid) => {
                    summary.files_processed += 1;
                    sessions.entry(guid).or_default().push(name);
                }
                Checked::Rejected(name, reject) => {
                    summary.files_processed += 1;
                    note_reject(&mut summary, name, reject);
                }
                Checked::Unreadable(name, e) => {
                    tracing::error!(object = %name, error = %e, "could not read object");
                    summary.unreadable.push(Failure {
                        name,
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    drop(checks);

    // Pass 2: stitch each session, streaming its chunks into its result.
    progress.phase("stitching sessions", sessions.len() as u64);
    let mut stitches = stream::iter(sessions)
        .map(|(guid, names)| {
            let sources = names
                .into_iter()
                .map(|name| Source {
                    name,
                    place: String::new(),
                    store: source.clone(),
                })
                .collect();
            let results = results.clone();
            async move {
                let object = options.result_name(&guid);
                let done = assemble(
                    &results,
                    &object,
                    &guid,
                    sources,
                    Fence::none(),
                    Vec::new(),
                    options,
                )
                .await;
                (guid, done)
            }
        })
        .buffer_unordered(options.session_parallelism.max(1));
    while let Some((guid, done)) = stitches.next().await {
        progress.advance(1);
        match done {
            Ok(assembled) => {
                for (name, reject) in assembled.invalid {
                    note_reject(&mut summary, name, reject);
                }
                if !assembled.written {
                    continue;
                }
                summary.sessions_written += 1;
                summary.events_written += assembled.metadata.event_count;
                summary.bytes_written += assembled.bytes;
                summary.duplicate_chunks_skipped +=
                    assembled.metadata.duplicate_chunks.len() as u64;
            }
            Err(e) => {
                tracing::error!(session_guid = %guid, error = %e, "could not write session");
                summary.sessions_failed.push(Failure {
                    name: guid.to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
    progress.done();
    tracing::info!(
        files_processed = summary.files_processed,
        ignored = summary.ignored,
        rejected = summary.rejected,
        unreadable = summary.unreadable.len(),
        sessions_written = summary.sessions_written,
        "backfill done"
    );
    Ok(summary)
}

/// Learns which session one chunk belongs to, reading as little of it as that takes.
async fn check(
    source: &dyn ObjectStore,
    name: ChunkName,
    listed_size: u64,
    limits: engine::Limits,
) -> Checked {
    let object_name = || name.object().to_owned();
    // Refused by the size the listing gave, before any byte is read.
    if let Err(reject) = limits.check_size(listed_size) {
        return Checked::Rejected(object_name(), reject);
    }
    // Most chunks name their session first thing: that is all this pass needs, and the full
    // validation happens once, when the chunk is stitched (and rejects it then if it fails).
    if !name.is_gzip() {
        match source.get_head(name.object(), HEAD_BYTES).await {
            Ok(head) => {
                if let Some(guid) = engine::peek_guid(&head) {
                    return Checked::Chunk(name, guid);
                }
            }
            Err(e) => return Checked::Unreadable(object_name(), e),
        }
    }
    let object = match source.get(name.object(), limits.max_chunk_bytes).await {
        Ok(object) => object,
        Err(StorageError::TooLarge { size, limit, .. }) => {
            return Checked::Rejected(object_name(), Reject::TooLarge { size, limit })
        }
        Err(e) => return Checked::Unreadable(object_name(), e),
    };
    tokio::task::spawn_blocking(move || group_by_parse(name, &object.body, &limits))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Chunks per blocking task in the grouping pass over a local directory: enough that the
/// hand-off is noise, few enough that progress still moves and both cores stay busy.
const CHECK_BATCH: usize = 256;

/// [`check`] for a store with blocking reads, a batch at a time on the calling thread.
fn check_batch(
    source: &dyn ObjectStore,
    batch: Vec<(ChunkName, u64)>,
    limits: engine::Limits,
) -> Vec<Checked> {
    let reads = source.blocking().expect("checked by the caller");
    let mut buf = Vec::new();
    batch
        .into_iter()
        .map(|(name, size)| {
            if let Err(reject) = limits.check_size(size) {
                return Checked::Rejected(name.object().to_owned(), reject);
            }
            if !name.is_gzip() {
                if let Err(e) = reads.read_head_into(name.object(), HEAD_BYTES, &mut buf) {
                    return Checked::Unreadable(name.object().to_owned(), e);
                }
                if let Some(guid) = engine::peek_guid(&buf) {
                    return Checked::Chunk(name, guid);
                }
            }
            match reads.read_into(name.object(), limits.max_chunk_bytes, &mut buf) {
                Ok(()) => group_by_parse(name, &buf, &limits),
                Err(StorageError::TooLarge { size, limit, .. }) => {
                    Checked::Rejected(name.object().to_owned(), Reject::TooLarge { size, limit })
                }
                Err(e) => Checked::Unreadable(name.object().to_owned(), e),
            }
        })
        .collect()
}

/// The session of a chunk whose head did not name one: the full parse says (or rejects it).
fn group_by_parse(name: ChunkName, body: &[u8], limits: &engine::Limits) -> Checked {
    let guid = engine::decode(body, name.is_gzip(), limits)
        .and_then(|text| engine::parse(&text).map(|chunk| chunk.session_guid));
    match guid {
        Ok(guid) => Checked::Chunk(name, guid),
        Err(reject) => Checked::Rejected(name.object().to_owned(), reject),
    }
}

fn note_reject(summary: &mut BackfillSummary, name: String, reject: Reject) {
    tracing::warn!(object = %name, kind = reject.kind(), reason = %reject, "chunk rejected; kept");
    summary.rejected += 1;
    *summary
        .rejected_by_reason
        .entry(reject.kind().to_owned())
        .or_default() += 1;
    summary.rejected_objects.push(RejectedObject {
        name,
        kind: reject.kind().to_owned(),
        reason: reject.to_string(),
    });
}
