//! Ingest: one bucket event in, one index record out.
//!
//! Fired for every new object. It reads the object, validates it as a chunk, and records
//! either the chunk (idempotently, re-opening a finalized session) or the rejection. The
//! object itself is never touched. Restrictions (`RRSTITCH_RESTRICT`: environments, guid
//! patterns, sampling) are decided from the chunk's head before its events are read, and a
//! refused chunk is recorded like any other rejected object (`restricted`, `sampled_out`).
//! The per-session quota (`RRSTITCH_SESSION_MAX_BYTES`) is the index's to decide, atomically
//! with recording the chunk (see [`crate::index`]): a chunk it refuses is recorded as
//! `over_quota` with its size, naming its session, so the session's result can say how much
//! was refused and an erasure of the session finds it.
//! Outcomes are *acknowledgements*: everything except a transient storage or index failure
//! ends in `Ok`, so the platform does not redeliver a bad chunk forever; a transient failure
//! is an `Err`, so it does.

use serde::Serialize;

use super::backfill::HEAD_BYTES;
use super::{Result, Service};
use crate::engine::{self, ChunkName, NameClass, Reject, SessionGuid};
use crate::index::{ChunkRecord, Recorded, RejectRecord};
use crate::metrics;
use crate::storage::{StorageError, StorageUrl};

/// The object an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: StorageUrl,
    pub name: String,
    /// The generation the event announced, if the platform says.
    pub generation: Option<String>,
}

/// What ingesting one object did; every variant is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IngestOutcome {
    /// Not a chunk candidate (suffix, prefix, directory marker).
    Ignored { name: String },
    /// Refused for good; recorded in the index, left in the bucket.
    Rejected {
        name: String,
        kind: String,
        reason: String,
    },
    /// A new chunk for a session.
    Recorded {
        name: String,
        session_guid: String,
        reopened: bool,
    },
    /// A redelivery: this exact object was recorded before.
    AlreadyKnown { name: String, session_guid: String },
    /// The object was deleted before it could be read.
    Vanished { name: String },
    /// The event names a bucket other than the configured chunk bucket: never read, never
    /// recorded.
    NotChunkBucket { name: String, bucket: String },
    /// A chunk of an erased session (its tombstone is live): refused as `deleted_session`,
    /// recorded where rejected objects are, and the object deleted unless
    /// `RRSTITCH_KEEP_CHUNKS_OF_DELETED` keeps it (`chunk_deleted` says which).
    DeletedSession {
        name: String,
        session_guid: String,
        chunk_deleted: bool,
    },
}

/// The reject kind of a chunk refused because its session was erased.
pub const DELETED_SESSION: &str = "deleted_session";

impl IngestOutcome {
    /// The outcome as a metric: its kind and reason.
    fn metric(&self) -> (metrics::ChunkOutcome, &str) {
        use metrics::ChunkOutcome as O;
        match self {
            IngestOutcome::Ignored { .. } => (O::Ignored, "not_a_chunk"),
            IngestOutcome::NotChunkBucket { .. } => (O::Ignored, "other_bucket"),
            IngestOutcome::Vanished { .. } => (O::Ignored, "vanished"),
            IngestOutcome::Rejected { kind, .. } => (O::Rejected, kind),
            IngestOutcome::DeletedSession { .. } => (O::Rejected, DELETED_SESSION),
            IngestOutcome::Recorded { .. } => (O::Recorded, "none"),
            IngestOutcome::AlreadyKnown { .. } => (O::Duplicate, "none"),
        }
    }
}

impl Service {
    /// Ingests one object, and writes its metric line.
    pub async fn ingest(&self, object: &ObjectRef) -> Result<IngestOutcome> {
        let outcome = self.ingest_object(object).await;
        match &outcome {
            Ok(done) => {
                let (kind, reason) = done.metric();
                metrics::chunk(kind, reason);
            }
            Err(e) => metrics::chunk(
                metrics::ChunkOutcome::Failed,
                if e.is_transient() {
                    "transient"
                } else {
                    "permanent"
                },
            ),
        }
        outcome
    }

    async fn ingest_object(&self, object: &ObjectRef) -> Result<IngestOutcome> {
        let name = object.name.clone();
        if let Some(ours) = &self.options.chunk_bucket {
            if &object.bucket != ours {
                tracing::warn!(
                    object = %name,
                    bucket = %object.bucket,
                    chunk_bucket = %ours,
                    "not the chunk bucket; acknowledged, not read"
                );
                return Ok(IngestOutcome::NotChunkBucket {
                    name,
                    bucket: object.bucket.to_string(),
                });
            }
        }
        let chunk_name = match ChunkName::classify(&name, &self.options.chunk_prefix) {
            NameClass::Ignored => {
                tracing::debug!(object = %name, "not a chunk object; ignored");
                return Ok(IngestOutcome::Ignored { name });
            }
            NameClass::Rejected(reject) => {
                return self
                    .reject(object, object.generation.clone(), reject, None)
                    .await;
            }
            NameClass::Chunk(chunk_name) => chunk_name,
        };
        let store = self.buckets.get(&object.bucket).await?;
        let limits = self.options.limits;
        let got = match store.get(&name, limits.max_chunk_bytes).await {
            Ok(got) => got,
            Err(StorageError::NotFound { .. }) => {
                tracing::warn!(object = %name, bucket = %object.bucket, "object vanished before it was read; acknowledged");
                return Ok(IngestOutcome::Vanished { name });
            }
            Err(StorageError::TooLarge { size, limit, .. }) => {
                let reject = Reject::TooLarge { size, limit };
                // Too large to read whole, not to say whose it is: SDKs write the guid first.
                let named = match chunk_name.is_gzip() {
                    true => None,
                    false => store.get_head(&name, HEAD_BYTES).await.ok(),
                };
                let named = named.and_then(|head| engine::peek_guid(&head));
                return self
                    .reject(object, object.generation.clone(), reject, named)
                    .await;
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                let reject = Reject::Unreadable {
                    reason: e.to_string(),
                };
                return self
                    .reject(object, object.generation.clone(), reject, None)
                    .await;
            }
        };
        // What was validated is what gets recorded: the generation actually read.
        let generation = got.meta.generation.clone().or(object.generation.clone());
        let body = got.body;
        let content_hash = crate::index::content_hash(&body);
        let is_gzip = chunk_name.is_gzip();
        let restrict = self.options.restrict.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            let text = engine::decode(&body, is_gzip, &limits).map_err(|r| (r, None))?;
            // Restrictions come first and read the head only: a dropped chunk's events are
            // never parsed, validated or stitched. Its record names the session, so an
            // erasure finds and deletes it with the rest.
            if let Some(reject) = restrict.as_deref().and_then(|r| r.refuse(&text)) {
                return Err((reject, engine::named_guid(&text)));
            }
            let chunk = engine::parse(&text).map_err(|r| (r, engine::named_guid(&text)))?;
            Ok::<_, (Reject, Option<SessionGuid>)>((
                chunk.session_guid.clone(),
                chunk.environment.clone(),
                chunk.events.len(),
            ))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (guid, environment, events) = match parsed {
            Ok(fields) => fields,
            Err((reject, named)) => return self.reject(object, generation, reject, named).await,
        };
        let record = ChunkRecord {
            guid: guid.clone(),
            bucket: object.bucket.to_string(),
            name: name.clone(),
            generation: generation.unwrap_or_default(),
            timestamp: chunk_name.timestamp().to_owned(),
            environment,
            size: got.meta.size,
            event_count: events as u64,
            content_hash,
        };
        let session_guid = guid.to_string();
        let quota = self.options.session_max_bytes;
        match self
            .index
            .record_chunk_within(&record, quota, self.now())
            .await?
        {
            Recorded::New { reopened } => {
                tracing::info!(object = %name, session_guid, events, reopened, "chunk recorded");
                Ok(IngestOutcome::Recorded {
                    name,
                    session_guid,
                    reopened,
                })
            }
            Recorded::AlreadyKnown => {
                tracing::info!(object = %name, session_guid, "chunk already recorded; nothing changed");
                Ok(IngestOutcome::AlreadyKnown { name, session_guid })
            }
            Recorded::Deleted => self.refuse_deleted(object, &guid, record.generation).await,
            Recorded::OverQuota {
                recorded_bytes,
                max_bytes,
            } => {
                let reject = Reject::OverQuota {
                    size: record.size,
                    recorded_bytes,
                    max_bytes,
                };
                let generation = Some(record.generation);
                self.reject(object, generation, reject, Some(guid)).await
            }
        }
    }

    /// A chunk whose session was erased: the erasure must not be undone by a late upload,
    /// a redelivered event or a reconcile, so the bytes go too (unless kept on purpose) and
    /// the refusal is recorded for operators like any other. A chunk refused for its own
    /// faults that names an erased session ends here too ([`Service::reject`]).
    async fn refuse_deleted(
        &self,
        object: &ObjectRef,
        guid: &SessionGuid,
        generation: String,
    ) -> Result<IngestOutcome> {
        let keep = self.options.keep_chunks_of_deleted;
        let chunk_deleted = if keep {
            false
        } else {
            let store = self.buckets.get(&object.bucket).await?;
            store.delete(&object.name).await?;
            true
        };
        tracing::warn!(
            object = %object.name,
            session_guid = %guid,
            chunk_deleted,
            "chunk of an erased session refused"
        );
        let reject = RejectRecord {
            bucket: object.bucket.to_string(),
            name: object.name.clone(),
            generation,
            kind: DELETED_SESSION.to_owned(),
            reason: format!(
                "session {guid} was deleted; its chunk was {}",
                if chunk_deleted { "deleted" } else { "kept" }
            ),
            // Linked to the session only while the object is kept: the link is how an
            // erasure finds an object to delete, and a deleted one leaves nothing to find
            // (the record of the refusal itself stays, as before, for operators).
            session_guid: (!chunk_deleted).then(|| guid.clone()),
            size: 0,
        };
        self.index.record_rejected(&reject, self.now()).await?;
        Ok(IngestOutcome::DeletedSession {
            name: object.name.clone(),
            session_guid: guid.to_string(),
            chunk_deleted,
        })
    }

    /// `guid` when it names a session erased (under a live tombstone).
    async fn erased<'g>(&self, guid: Option<&'g SessionGuid>) -> Result<Option<&'g SessionGuid>> {
        let Some(guid) = guid else {
            return Ok(None);
        };
        let session = self.index.session(guid).await?;
        Ok(session
            .is_some_and(|s| s.is_tombstone(self.now()))
            .then_some(guid))
    }

    /// Records a refused object, with the session its bytes name (`named`) when they name
    /// one, so erasing that session deletes it. When that session is erased already, the
    /// object is refused as its chunk would be ([`Service::refuse_deleted`]): a bad chunk
    /// holds the session's data as much as a good one.
    async fn reject(
        &self,
        object: &ObjectRef,
        generation: Option<String>,
        reject: Reject,
        named: Option<SessionGuid>,
    ) -> Result<IngestOutcome> {
        let generation = generation.unwrap_or_default();
        if let Some(guid) = self.erased(named.as_ref()).await? {
            return self.refuse_deleted(object, guid, generation).await;
        }
        tracing::warn!(
            object = %object.name,
            bucket = %object.bucket,
            kind = reject.kind(),
            reason = %reject,
            session_guid = named.as_ref().map(|g| g.as_str()),
            "chunk rejected; kept in the bucket"
        );
        let record = RejectRecord {
            bucket: object.bucket.to_string(),
            name: object.name.clone(),
            generation,
            kind: reject.kind().to_owned(),
            reason: reject.to_string(),
            session_guid: named,
            // What a result sums to say how much of its session was refused.
            size: match reject {
                Reject::OverQuota { size, .. } => size,
                _ => 0,
            },
        };
        self.index.record_rejected(&record, self.now()).await?;
        // An erasure that listed the session's rejects between the check above and this
        // record did not see it: its tombstone is there now, so the object goes here.
        if let Some(guid) = self.erased(record.session_guid.as_ref()).await? {
            return self.refuse_deleted(object, guid, record.generation).await;
        }
        Ok(IngestOutcome::Rejected {
            name: object.name.clone(),
            kind: record.kind,
            reason: record.reason,
        })
    }
}
