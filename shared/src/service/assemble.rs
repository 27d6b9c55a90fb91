//! The I/O around the pure stitcher: read a session's chunks with bounded parallelism,
//! consume them strictly in order, and stream the output into a results object part by part.
//!
//! Memory is bounded by `read_parallelism` chunks in flight plus one part buffer, whatever
//! the session's size. Parsing runs on the blocking pool (a 64 MiB chunk is ~100 ms of CPU)
//! so it never stalls the async reactor.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::GzEncoder;
use futures::stream::{self, StreamExt};

use super::segments::{new_generation, SegmentsOut};
use super::{MissingBucket, Options, Result, ServiceError};
use crate::engine::console::ConsoleLog;
use crate::engine::{self, ChunkName, Metadata, Pushed, Reject, Segmenter, SessionGuid, Stitcher};
use crate::storage::{ObjectStore, ObjectWriter, Precondition, StorageError};

/// One chunk to stitch and where to read it.
pub(crate) struct Source {
    pub name: ChunkName,
    /// Where the object is (its bucket): the same name in two places is two objects.
    pub place: String,
    pub store: Arc<dyn ObjectStore>,
}

/// The conditions a stitch's writes must meet: the single file's, and the manifest's when
/// segments are written (see [`super::segments`]). Read before the claim is renewed.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    pub result: Precondition,
    pub manifest: Precondition,
}

impl Fence {
    /// No conditions: a batch stitch that owns its results.
    pub(crate) fn none() -> Self {
        Fence {
            result: Precondition::None,
            manifest: Precondition::None,
        }
    }
}

/// What one stitch wrote.
#[derive(Debug, Clone)]
pub(crate) struct Assembled {
    pub metadata: Metadata,
    pub bytes: u64,
    pub missing: Vec<String>,
    /// Chunks that did not validate when read here, skipped (and listed in `warnings`).
    pub invalid: Vec<(String, Reject)>,
    /// False when no chunk could be stitched at all: nothing was written.
    pub written: bool,
}

/// The stitcher's output: plain or gzip, drained part by part into the upload.
enum OutBuf {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Write for OutBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutBuf::Plain(v) => v.write(buf),
            OutBuf::Gzip(g) => g.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl OutBuf {
    fn pending(&self) -> usize {
        match self {
            OutBuf::Plain(v) => v.len(),
            OutBuf::Gzip(g) => g.get_ref().len(),
        }
    }

    /// Takes the bytes ready to upload, leaving the buffer empty.
    fn take(&mut self) -> Vec<u8> {
        match self {
            OutBuf::Plain(v) => std::mem::take(v),
            OutBuf::Gzip(g) => std::mem::take(g.get_mut()),
        }
    }

    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            OutBuf::Plain(v) => Ok(v),
            OutBuf::Gzip(g) => g.finish(),
        }
    }
}

/// Stitches `sources` (any order, repeats allowed: [`engine::order`] decides) into
/// `results/<object>`, written only if `fence.result` still holds when the upload completes;
/// with [`Options::segments`], also into segments published by a manifest written only if
/// `fence.manifest` holds.
///
/// `warnings` are what the caller knows about the session beyond its chunks (chunks refused
/// over its quota); they open `metadata.warnings`.
///
/// When every chunk is in a store with blocking reads (a local directory), the whole session
/// is read and stitched on one blocking thread; otherwise reads are async, `read_parallelism`
/// in flight, and each chunk is parsed on the blocking pool.
pub(crate) async fn assemble(
    results: &Arc<dyn ObjectStore>,
    object: &str,
    guid: &SessionGuid,
    sources: Vec<Source>,
    fence: Fence,
    warnings: Vec<String>,
    options: &Options,
) -> Result<Assembled> {
    let sources = engine::order::in_stitch_order(sources, |s| (&s.name, s.place.as_str()));
    let buf = if options.output_gzip {
        OutBuf::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::fast()))
    } else {
        OutBuf::Plain(Vec::with_capacity(options.part_size.min(1 << 20)))
    };
    let mut stitcher = Stitcher::new(buf, guid.clone())?;
    let mut segments = None;
    if let Some(limits) = options.segments {
        let generation = new_generation();
        stitcher = stitcher
            .with_segments(Segmenter::new(limits, generation.clone()))
            .with_console(ConsoleLog::new(generation.clone()));
        segments = Some(SegmentsOut::new(&options.results_prefix, guid, generation));
    }
    if let Some(rules) = &options.redact {
        stitcher = stitcher.with_redaction(Arc::clone(rules));
    }
    if !options.insights {
        stitcher = stitcher.without_insights();
    }
    for warning in warnings {
        stitcher.warn(warning);
    }
    let session = Session {
        stitcher,
        segments,
        writer: results
            .writer(object, fence.result)
            .await
            .map_err(results_error)?,
        bytes: 0,
        missing: Vec::new(),
        invalid: Vec::new(),
        total: sources.len(),
    };
    let (session, outcome) = if sources.iter().all(|s| s.store.blocking().is_some()) {
        let options = options.clone();
        let handle = tokio::runtime::Handle::current();
        let store = Arc::clone(results);
        tokio::task::spawn_blocking(move || {
            stitch_blocking(session, sources, &options, &handle, store.as_ref())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    } else {
        stitch_async(session, sources, options, results.as_ref()).await
    };
    if let Err(e) = outcome {
        abandon(results.as_ref(), Some(session.writer), session.segments).await;
        return Err(e);
    }
    session.finish(results.as_ref(), fence.manifest).await
}

/// One session being stitched: the stitcher, the upload it drains into, and what was
/// skipped. Both readers below feed it chunk by chunk, in order.
struct Session {
    stitcher: Stitcher<OutBuf>,
    /// Where finished segments go, when the stitch writes them.
    segments: Option<SegmentsOut>,
    writer: Box<dyn ObjectWriter>,
    bytes: u64,
    missing: Vec<String>,
    invalid: Vec<(String, Reject)>,
    total: usize,
}

impl Session {
    /// Takes one chunk's read: stitches its body, or notes why there is none. A storage
    /// failure other than a missing or oversized object fails the session (retried later).
    fn take(
        &mut self,
        name: &ChunkName,
        read: std::result::Result<&[u8], StorageError>,
        limits: &engine::Limits,
    ) -> Result<()> {
        let guid = self.stitcher.guid();
        let body = match read {
            Ok(body) => body,
            Err(StorageError::NotFound { .. }) => {
                tracing::warn!(chunk = %name, session_guid = %guid, "chunk listed in the index is gone");
                self.missing.push(name.object().to_owned());
                self.stitcher.warn(format!(
                    "chunk {name} is listed in the index but no longer exists; skipped"
                ));
                return Ok(());
            }
            Err(StorageError::TooLarge { size, limit, .. }) => {
                self.stitcher.warn(format!(
                    "chunk {name} is {size} bytes, over the {limit}-byte limit; skipped"
                ));
                self.invalid
                    .push((name.object().to_owned(), Reject::TooLarge { size, limit }));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(reject) = push(&mut self.stitcher, name, body, limits)? {
            self.invalid.push((name.object().to_owned(), reject));
        }
        Ok(())
    }

    /// The bytes to upload now, once a part's worth is buffered.
    fn part(&mut self, part_size: usize) -> Option<Bytes> {
        let out = self.stitcher.writer_mut();
        if out.pending() < part_size {
            return None;
        }
        let part = out.take();
        self.bytes += part.len() as u64;
        Some(Bytes::from(part))
    }

    /// Stores the segments the stitcher has finished so far, keeping memory to one open one.
    async fn store_segments(&mut self, results: &dyn ObjectStore) -> Result<()> {
        let Some(out) = &mut self.segments else {
            return Ok(());
        };
        while let Some(segment) = self.stitcher.take_segment() {
            out.store(results, segment).await?;
        }
        Ok(())
    }

    /// Ends the last segment and stores every one not stored yet, then the console file.
    async fn close_segments(&mut self, results: &dyn ObjectStore) -> Result<()> {
        self.stitcher.end_segments()?;
        self.store_segments(results).await?;
        let console = self.stitcher.finish_console()?;
        match (&mut self.segments, console) {
            (Some(out), Some(file)) => out.store_console(results, file).await,
            _ => Ok(()),
        }
    }

    async fn finish(
        mut self,
        results: &dyn ObjectStore,
        manifest: Precondition,
    ) -> Result<Assembled> {
        if let Err(e) = self.close_segments(results).await {
            abandon(results, Some(self.writer), self.segments).await;
            return Err(e);
        }
        let Session {
            mut stitcher,
            segments,
            writer,
            mut bytes,
            missing,
            invalid,
            total,
        } = self;
        debug_assert!(
            stitcher.take_segment().is_none(),
            "closed and drained above"
        );
        let guid = stitcher.guid().clone();
        let (buf, metadata) = stitcher.finish()?;
        if total > 0 && invalid.len() == total {
            // Nothing valid to stitch: no result rather than an empty one.
            abandon(results, Some(writer), segments).await;
            return Ok(Assembled {
                metadata,
                bytes: 0,
                missing,
                invalid,
                written: false,
            });
        }
        let tail = buf.finish()?;
        bytes += tail.len() as u64;
        let mut writer = writer;
        let finished = async {
            writer.write(Bytes::from(tail)).await?;
            writer.finish().await
        };
        if let Err(e) = finished.await {
            abandon(results, None, segments).await;
            return Err(results_error(e));
        }
        if let Some(segments) = segments {
            segments
                .publish(results, &guid, &metadata, manifest)
                .await?;
        }
        Ok(Assembled {
            metadata,
            bytes,
            missing,
            invalid,
            written: true,
        })
    }
}

/// Network stores: `read_parallelism` reads in flight, consumed in order, each chunk parsed
/// on the blocking pool so a large one never stalls the reactor.
async fn stitch_async(
    mut session: Session,
    sources: Vec<Source>,
    options: &Options,
    results: &dyn ObjectStore,
) -> (Session, Result<()>) {
    let limit = options.limits.max_chunk_bytes;
    let mut reads = stream::iter(sources)
        .map(|source| async move {
            let got = source.store.get(source.name.object(), limit).await;
            (source.name, got)
        })
        .buffered(options.read_parallelism.max(1));
    while let Some((name, got)) = reads.next().await {
        let limits = options.limits;
        let (back, taken) = tokio::task::spawn_blocking(move || {
            let taken = match got {
                Ok(object) => session.take(&name, Ok(&object.body), &limits),
                Err(e) => session.take(&name, Err(e), &limits),
            };
            (session, taken)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        session = back;
        if let Err(e) = taken {
            return (session, Err(e));
        }
        if let Some(part) = session.part(options.part_size) {
            if let Err(e) = session.writer.write(part).await {
                return (session, Err(results_error(e)));
            }
        }
        if let Err(e) = session.store_segments(results).await {
            return (session, Err(e));
        }
    }
    (session, Ok(()))
}

/// Stores with blocking reads (a local directory): the whole session on this one blocking
/// thread, one reused buffer, no hand-off per chunk. Only the upload of a full part goes
/// back to the runtime.
fn stitch_blocking(
    mut session: Session,
    sources: Vec<Source>,
    options: &Options,
    handle: &tokio::runtime::Handle,
    results: &dyn ObjectStore,
) -> (Session, Result<()>) {
    let mut buf = Vec::new();
    let limit = options.limits.max_chunk_bytes;
    for source in sources {
        let reads = source.store.blocking().expect("checked by the caller");
        let read = reads
            .read_into(source.name.object(), limit, &mut buf)
            .map(|()| buf.as_slice());
        if let Err(e) = session.take(&source.name, read, &options.limits) {
            return (session, Err(e));
        }
        if let Some(part) = session.part(options.part_size) {
            if let Err(e) = handle.block_on(session.writer.write(part)) {
                return (session, Err(results_error(e)));
            }
        }
        // Only a finished segment goes back to the runtime: most chunks finish none.
        while let Some(segment) = session.stitcher.take_segment() {
            let out = session
                .segments
                .as_mut()
                .expect("segments come only when written");
            if let Err(e) = handle.block_on(out.store(results, segment)) {
                return (session, Err(e));
            }
        }
    }
    (session, Ok(()))
}

/// Drops what a stitch that will not complete has written: the single file's upload (if
/// still open) and the segments it stored, which no manifest will name.
async fn abandon(
    results: &dyn ObjectStore,
    writer: Option<Box<dyn ObjectWriter>>,
    segments: Option<SegmentsOut>,
) {
    if let Some(writer) = writer {
        writer.abort().await;
    }
    if let Some(segments) = segments {
        segments.discard(results).await;
    }
}

/// A write to the results bucket failed: a missing bucket is named as the results bucket.
fn results_error(e: StorageError) -> ServiceError {
    match e {
        StorageError::NoSuchBucket { bucket } => MissingBucket {
            role: "results",
            bucket,
        }
        .into(),
        e => e.into(),
    }
}

/// Decodes, validates and appends one chunk. A chunk that does not validate becomes a
/// warning in the session and is handed back, not a failure of the session.
fn push(
    st: &mut Stitcher<OutBuf>,
    name: &ChunkName,
    body: &[u8],
    limits: &engine::Limits,
) -> io::Result<Option<Reject>> {
    let parsed = engine::decode(body, name.is_gzip(), limits).and_then(|text| {
        let chunk = engine::parse(&text)?;
        Ok(st.push(name, &chunk))
    });
    match parsed {
        Ok(Ok(Pushed::ForeignSession)) => {
            tracing::warn!(chunk = %name, session_guid = %st.guid(), "chunk belongs to another session now");
            Ok(None)
        }
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(reject) => {
            tracing::warn!(chunk = %name, kind = reject.kind(), reason = %reject, "chunk does not validate; skipped, kept");
            st.warn(format!(
                "chunk {name} does not validate ({reject}); skipped"
            ));
            Ok(Some(reject))
        }
    }
}
