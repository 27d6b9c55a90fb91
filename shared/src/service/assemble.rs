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

use super::{Options, Result, ServiceError};
use crate::engine::{self, ChunkName, Metadata, Pushed, Reject, SessionGuid, Stitcher};
use crate::storage::{Object, ObjectStore, Precondition, StorageError};

/// One chunk to stitch and where to read it.
pub(crate) struct Source {
    pub name: ChunkName,
    /// Where the object is (its bucket): the same name in two places is two objects.
    pub place: String,
    pub store: Arc<dyn ObjectStore>,
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

/// Stitches `sources` (any order, repeats allowed: [`engine::order`] decides) into `results/<object>`, written only if
/// `precondition` still holds when the upload completes.
pub(crate) async fn assemble(
    results: &dyn ObjectStore,
    object: &str,
    guid: &SessionGuid,
    sources: Vec<Source>,
    precondition: Precondition,
    options: &Options,
) -> Result<Assembled> {
    let sources = engine::order::in_stitch_order(sources, |s| (&s.name, s.place.as_str()));
    let buf = if options.output_gzip {
        OutBuf::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::fast()))
    } else {
        OutBuf::Plain(Vec::with_capacity(options.part_size.min(1 << 20)))
    };
    let mut stitcher = Some(Stitcher::new(buf, guid.clone())?);
    let mut writer = results
        .writer(object, precondition)
        .await
        .map_err(results_error)?;
    let mut bytes = 0u64;
    let mut missing = Vec::new();
    let mut invalid = Vec::new();
    let total = sources.len();

    let limit = options.limits.max_chunk_bytes;
    let mut reads = stream::iter(sources)
        .map(|source| async move {
            let got = source.store.get(source.name.object(), limit).await;
            (source.name, got)
        })
        .buffered(options.read_parallelism.max(1));

    let outcome: Result<()> = async {
        while let Some((name, got)) = reads.next().await {
            let object = match got {
                Ok(object) => object,
                Err(StorageError::NotFound { .. }) => {
                    tracing::warn!(chunk = %name, session_guid = %guid, "chunk listed in the index is gone");
                    missing.push(name.object().to_owned());
                    let st = stitcher.as_mut().expect("stitcher present");
                    st.warn(format!("chunk {name} is listed in the index but no longer exists; skipped"));
                    continue;
                }
                Err(StorageError::TooLarge { size, limit, .. }) => {
                    let st = stitcher.as_mut().expect("stitcher present");
                    st.warn(format!("chunk {name} is {size} bytes, over the {limit}-byte limit; skipped"));
                    invalid.push((name.object().to_owned(), Reject::TooLarge { size, limit }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let st = stitcher.take().expect("stitcher present");
            let limits = options.limits;
            let name_text = name.object().to_owned();
            let (st, pushed) = tokio::task::spawn_blocking(move || push(st, &name, &object, &limits))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            stitcher = Some(st);
            if let Some(reject) = pushed? {
                invalid.push((name_text, reject));
            }
            let out = stitcher.as_mut().expect("stitcher present").writer_mut();
            if out.pending() >= options.part_size {
                let part = out.take();
                bytes += part.len() as u64;
                writer.write(Bytes::from(part)).await.map_err(results_error)?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        writer.abort().await;
        return Err(e);
    }

    let (buf, metadata) = stitcher.take().expect("stitcher present").finish()?;
    if total > 0 && invalid.len() == total {
        // Nothing valid to stitch: no result rather than an empty one.
        writer.abort().await;
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
    let finished = async {
        writer.write(Bytes::from(tail)).await?;
        writer.finish().await
    };
    finished.await.map_err(results_error)?;
    Ok(Assembled {
        metadata,
        bytes,
        missing,
        invalid,
        written: true,
    })
}

/// A write to the results bucket failed: a missing bucket is named as the results bucket.
fn results_error(e: StorageError) -> ServiceError {
    match e {
        StorageError::NoSuchBucket { bucket } => ServiceError::MissingBucket {
            role: "results",
            bucket,
        },
        e => e.into(),
    }
}

/// Decodes, validates and appends one chunk. A chunk that does not validate becomes a
/// warning in the session and is handed back, not a failure of the session.
fn push(
    mut st: Stitcher<OutBuf>,
    name: &ChunkName,
    object: &Object,
    limits: &engine::Limits,
) -> (Stitcher<OutBuf>, io::Result<Option<Reject>>) {
    let parsed = engine::decode(&object.body, name.is_gzip(), limits)
        .and_then(|text| match engine::parse(&text) {
            Ok(chunk) => {
                let guid = st.guid().clone();
                Ok(match st.push(name, &chunk) {
                    Ok(Pushed::ForeignSession) => {
                        tracing::warn!(chunk = %name, session_guid = %guid, "chunk belongs to another session now");
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                })
            }
            Err(reject) => Err(reject),
        });
    match parsed {
        Ok(result) => (st, result.map(|()| None)),
        Err(reject) => {
            tracing::warn!(chunk = %name, kind = reject.kind(), reason = %reject, "chunk does not validate; skipped, kept");
            st.warn(format!(
                "chunk {name} does not validate ({reject}); skipped"
            ));
            (st, Ok(Some(reject)))
        }
    }
}
